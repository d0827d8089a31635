//! The paste layer: what mail and tickets wrap around a dump, taken off
//! before any format is detected, so that every format reads pasted text the
//! way it reads its tool's own output.
//!
//! Two layers, undone in this order:
//! 1. **Quoted-printable** (RFC 2045 §6.7), as mail archives keep it: a line
//!    ending in `=` continues on the next (a soft line break), and `=XX` is
//!    the byte `XX` (`=3D` is `=`). Taken off only when the text says it is
//!    QP (a `Content-Transfer-Encoding: quoted-printable` header) or holds
//!    its escapes (`=3D`, `=20`, `=09`) and soft breaks: a kernel line may end
//!    in `=` by itself. The MIME part's own header lines (`Content-Type:`…)
//!    go with the layer.
//! 2. **Mail quoting**: `>` markers at the start of lines, in any depth and
//!    spacing (`> `, `>> `, `> > > `). No format's line starts with `>`
//!    (crash's prompt is `crash> `), so every leading run of them is quoting.
//!
//! Indentation, log prefixes (timestamps, syslog, journald) and shell prompts
//! are the formats' own business (they strip what their lines may carry).
//!
//! The unwrapped text is a new string; [`Unwrapped::lines`] maps each of its
//! lines back to the line of the input it starts on, so that every line
//! number a dump reports (tasks, frames, losses, skipped lines) is the
//! input's. Text with no paste layer is parsed in place: [`unwrap`] looks at
//! its head only and answers `None`.

use super::lines::{head, Lines};
use super::Dump;
use memchr::memmem;

/// How much of the input tells whether it is a paste.
pub(crate) const SNIFF: usize = 64 * 1024;

/// A text with its paste layers taken off.
#[derive(Debug)]
pub struct Unwrapped {
    pub text: String,
    /// `lines[i]`: the 1-based input line that unwrapped line `i + 1` starts on.
    pub lines: Vec<u32>,
}

/// Whether a line starts with mail quoting (after blanks).
fn quoted(line: &str) -> bool {
    line.trim_start_matches([' ', '\t']).starts_with('>')
}

/// The line without its leading quote markers (`>`, with blanks between and
/// one blank after).
fn unquote(line: &str) -> &str {
    let mut rest = line.trim_start_matches([' ', '\t']);
    if !rest.starts_with('>') {
        return line;
    }
    while let Some(after) = rest.strip_prefix('>') {
        rest = after.trim_start_matches(' ');
        if !rest.starts_with('>') {
            // `>  text`: one blank belongs to the marker, the rest to the text.
            let indent = after.len() - after.trim_start_matches(' ').len();
            return &after[indent.min(1)..];
        }
    }
    rest
}

/// A MIME part header a pasted mail part starts with (`Content-Type:`,
/// `Content-Transfer-Encoding:`…): the paste's, taken off with it.
fn is_mime_header(line: &str) -> bool {
    [
        "Content-Type:",
        "Content-Transfer-Encoding:",
        "Content-Disposition:",
        "MIME-Version:",
    ]
    .iter()
    .any(|h| line.starts_with(h))
}

/// Whether the text is quoted-printable (see the module docs).
fn is_quoted_printable(head: &str) -> bool {
    let b = head.as_bytes();
    if memmem::find(b, b"Content-Transfer-Encoding: quoted-printable").is_some() {
        return true;
    }
    let escapes = [&b"=3D"[..], b"=20", b"=09"]
        .iter()
        .any(|e| memmem::find(b, e).is_some());
    escapes && memmem::find(b, b"=\n").is_some()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Decodes one line's `=XX` escapes into `out` (a bad escape stays as it is).
fn decode_qp(line: &str, out: &mut Vec<u8>) {
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            if let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
}

/// Whether the head of a text (its first [`SNIFF`] bytes) shows a paste
/// layer: `(quoting, quoted-printable)`.
fn layers(head: &str) -> (bool, bool) {
    (
        Lines::new(head).any(|(_, l)| quoted(l)),
        is_quoted_printable(head),
    )
}

/// Whether a text whose head is `head` has a paste layer to take off.
#[must_use]
pub fn is_paste(head: &str) -> bool {
    layers(head) != (false, false)
}

/// The text without its paste layers, or `None` when its head shows none
/// (then parse it as it is).
#[must_use]
pub fn unwrap(text: &str) -> Option<Unwrapped> {
    let (quoting, qp) = layers(head(text, SNIFF));
    if !quoting && !qp {
        return None;
    }
    let mut out: Vec<u8> = Vec::with_capacity(text.len());
    let mut lines = Vec::new();
    let mut continued = false;
    for (n, line) in Lines::new(text) {
        // A soft break's next line continues the encoded line: not quoted again.
        if qp && !continued && is_mime_header(line) {
            continue; // the part's own header, no line of the dump
        }
        let line = if quoting && !continued {
            unquote(line)
        } else {
            line
        };
        if !continued {
            lines.push(u32::try_from(n).unwrap_or(u32::MAX));
        }
        match line.strip_suffix('=').filter(|_| qp) {
            Some(soft) => {
                decode_qp(soft, &mut out);
                continued = true;
            }
            None => {
                if qp {
                    decode_qp(line, &mut out);
                } else {
                    out.extend_from_slice(line.as_bytes());
                }
                out.push(b'\n');
                continued = false;
            }
        }
    }
    if continued {
        out.push(b'\n');
    }
    // QP may decode to bytes that are not UTF-8: they become U+FFFD, which no
    // name or number holds (the line is then lost, visibly).
    let text = match String::from_utf8(out) {
        Ok(t) => t,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    Some(Unwrapped { text, lines })
}

impl Unwrapped {
    fn input_line(&self, line: usize) -> usize {
        match line.checked_sub(1).and_then(|i| self.lines.get(i)) {
            Some(&n) => n as usize,
            None => line,
        }
    }

    /// Moves every line number of `d` (parsed from [`Unwrapped::text`]) back
    /// to the input's lines.
    pub fn restore_lines(&self, d: &mut Dump) {
        for line in &mut d.tasks.line {
            *line = i64::try_from(self.input_line(usize::try_from(*line).unwrap_or(0)))
                .unwrap_or(i64::MAX);
        }
        for line in &mut d.tasks.lost_line {
            if *line != 0 {
                *line = i64::try_from(self.input_line(usize::try_from(*line).unwrap_or(0)))
                    .unwrap_or(i64::MAX);
            }
        }
        for line in &mut d.frame_line {
            *line = u32::try_from(self.input_line(*line as usize)).unwrap_or(u32::MAX);
        }
        for (line, _) in &mut d.skipped_samples {
            *line = self.input_line(*line);
        }
        if d.last_stack_closed_at != 0 {
            d.last_stack_closed_at = self.input_line(d.last_stack_closed_at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_of_any_depth_and_spacing() {
        assert_eq!(unquote("> text"), "text");
        assert_eq!(unquote(">> text"), "text");
        assert_eq!(unquote("> > > text"), "text");
        assert_eq!(unquote(">  [<0>] f+0x1/0x2"), " [<0>] f+0x1/0x2");
        assert_eq!(unquote(">"), "");
        let u = unwrap("> a\n>> b\nc\n").expect("quoted");
        assert_eq!(u.text, "a\nb\nc\n");
        assert_eq!(u.lines, [1, 2, 3]);
    }

    #[test]
    fn plain_text_is_left_alone() {
        assert!(unwrap("task:a state:S\n schedule+0x1/0x2\n").is_none());
        // A line that ends in `=` is no soft break without QP escapes.
        assert!(unwrap("prev_state=\n").is_none());
    }

    #[test]
    fn quoted_printable_soft_breaks_and_escapes() {
        let qp = "Content-Transfer-Encoding: quoted-printable\n\
                  [  1.0] task:cat state:S pid:7 ppid:1 flags:0x0000400=\n2\n x=3Dy=20\n";
        let u = unwrap(qp).expect("qp");
        assert_eq!(
            u.text,
            "[  1.0] task:cat state:S pid:7 ppid:1 flags:0x00004002\n x=y \n"
        );
        assert_eq!(u.lines, [2, 4]);
        assert_eq!(unquote(" not quoted"), " not quoted");
    }
}
