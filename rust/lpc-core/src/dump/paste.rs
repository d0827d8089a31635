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
//!    spacing (`> `, `>> `, `> > > `), when they start more than half of the
//!    lines: drgn's `>>> ` prompt starts a few lines of its own sessions
//!    (crash's prompt is `crash> `).
//!
//! 3. **Indentation** common to every non-blank line (a Markdown code block,
//!    a ticket that indents what it quotes): taken off as a block, so that a
//!    format's own indentation (perf's tab, crash's ` #0`) stays as printed.
//!
//! Log prefixes (timestamps, syslog, journald) and shell prompts are the
//! formats' own business (they strip what their lines may carry).
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
    (is_quoted_text(head), is_quoted_printable(head))
}

/// Whether the text is mail-quoted: at least half of its non-blank lines
/// start with `>`. A few such lines among many are content, not quoting
/// (drgn's and Python's `>>> ` prompts).
fn is_quoted_text(head: &str) -> bool {
    let (mut quoted_lines, mut lines) = (0usize, 0usize);
    for (_, line) in Lines::new(head) {
        if line.trim().is_empty() {
            continue;
        }
        lines += 1;
        quoted_lines += usize::from(quoted(line));
    }
    quoted_lines * 2 > lines
}

/// The indentation every non-blank line of `text` starts with, or "" when
/// one line starts flush.
fn common_indent(text: &str) -> &str {
    let mut common: Option<&str> = None;
    for (_, line) in Lines::new(text) {
        if line.trim().is_empty() {
            continue;
        }
        let lead = &line[..line.len() - line.trim_start_matches([' ', '\t']).len()];
        let next = match common {
            None => lead,
            Some(c) => {
                let same = c
                    .bytes()
                    .zip(lead.bytes())
                    .take_while(|(a, b)| a == b)
                    .count();
                &c[..same]
            }
        };
        if next.is_empty() {
            return "";
        }
        common = Some(next);
    }
    common.unwrap_or("")
}

/// `text` with `indent` taken off every line that starts with it (blank
/// lines may hold less), one line for one.
fn dedent(text: &str, indent: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (_, line) in Lines::new(text) {
        out.push_str(line.strip_prefix(indent).unwrap_or(line.trim_start()));
        out.push('\n');
    }
    out
}

/// Whether a text whose head is `head` has a paste layer to take off.
#[must_use]
pub fn is_paste(head: &str) -> bool {
    layers(head) != (false, false) || !common_indent(head).is_empty()
}

/// Decodes quoted-printable: soft breaks join lines, `=XX` escapes become
/// bytes, the MIME part's header lines go. The decoded text and, per line,
/// the input line it starts on.
fn decode_quoted_printable(text: &str) -> (String, Vec<u32>) {
    let mut out: Vec<u8> = Vec::with_capacity(text.len());
    let mut lines = Vec::new();
    let mut continued = false;
    for (n, line) in Lines::new(text) {
        if !continued && is_mime_header(line) {
            continue; // the part's own header, no line of the dump
        }
        if !continued {
            lines.push(u32::try_from(n).unwrap_or(u32::MAX));
        }
        match line.strip_suffix('=') {
            Some(soft) => {
                decode_qp(soft, &mut out);
                continued = true;
            }
            None => {
                decode_qp(line, &mut out);
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
    (text, lines)
}

/// How many quote markers a line starts with (`>`, each maybe followed by
/// one blank), after its indentation.
fn depth(line: &str) -> usize {
    let mut rest = line.trim_start_matches([' ', '\t']);
    let mut n = 0;
    while let Some(after) = rest.strip_prefix('>') {
        n += 1;
        rest = after.strip_prefix(' ').unwrap_or(after);
    }
    n
}

/// The line without its first `n` quote markers (see [`depth`]).
fn strip_markers(line: &str, n: usize) -> &str {
    let mut rest = line.trim_start_matches([' ', '\t']);
    for _ in 0..n {
        match rest.strip_prefix('>') {
            Some(after) => rest = after.strip_prefix(' ').unwrap_or(after),
            None => return line,
        }
    }
    rest
}

/// Takes off the quoting the text's quoted lines share: the smallest depth
/// among lines that hold more than markers, so that content starting with
/// `>` (a `>>> ` prompt quoted once) keeps its own. Lines are kept one for one.
fn unquote_block(text: &str) -> String {
    let shared = Lines::new(text)
        .filter(|(_, l)| quoted(l) && !l.trim_start_matches(['>', ' ', '\t']).is_empty())
        .map(|(_, l)| depth(l))
        .min()
        .unwrap_or(0);
    let mut out = String::with_capacity(text.len());
    for (_, line) in Lines::new(text) {
        out.push_str(if quoted(line) {
            strip_markers(line, shared.min(depth(line)))
        } else {
            line
        });
        out.push('\n');
    }
    out
}

/// The text without its paste layers, or `None` when its head shows none
/// (then parse it as it is). Layers come off outermost first: the transport
/// encoding, then the quoting (as often as the text is still quoted), then
/// the indentation.
#[must_use]
pub fn unwrap(text: &str) -> Option<Unwrapped> {
    let (quoting, qp) = layers(head(text, SNIFF));
    if !quoting && !qp && common_indent(head(text, SNIFF)).is_empty() {
        return None;
    }
    let (mut current, lines) = if qp {
        decode_quoted_printable(text)
    } else {
        let lines = (1..=Lines::new(text).count())
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            .collect();
        (text.to_owned(), lines)
    };
    // Each pass takes off one shared depth; a reply of a reply nests more.
    for _ in 0..8 {
        if !is_quoted_text(head(&current, SNIFF)) {
            break;
        }
        let next = unquote_block(&current);
        if next == current {
            break;
        }
        current = next;
    }
    let indent = common_indent(&current).to_owned();
    if !indent.is_empty() {
        current = dedent(&current, &indent);
    }
    Some(Unwrapped {
        text: current,
        lines,
    })
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
        // Line 0 ("none") stays 0: `input_line` maps it to itself.
        let column = |line: &mut i64| {
            let input = self.input_line(usize::try_from(*line).unwrap_or(0));
            *line = i64::try_from(input).unwrap_or(i64::MAX);
        };
        d.tasks.line.iter_mut().for_each(column);
        d.tasks.lost_line.iter_mut().for_each(column);
        for line in &mut d.frame_line {
            *line = u32::try_from(self.input_line(*line as usize)).unwrap_or(u32::MAX);
        }
        for (line, _) in &mut d.skipped_samples {
            *line = self.input_line(*line);
        }
        d.last_stack_closed_at = self.input_line(d.last_stack_closed_at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_of_any_depth_and_spacing() {
        assert_eq!(strip_markers("> text", 1), "text");
        assert_eq!(strip_markers(">> text", 2), "text");
        assert_eq!(strip_markers("> > > text", 3), "text");
        assert_eq!(strip_markers(">  [<0>] f+0x1/0x2", 1), " [<0>] f+0x1/0x2");
        assert_eq!(depth("> >>> prog.stack_trace(1)"), 4);
        let u = unwrap("> a\n> b\n>\n> c\n").expect("quoted");
        assert_eq!(u.text, "a\nb\n\nc\n");
        assert_eq!(u.lines, [1, 2, 3, 4]);
        // Nested: every line at depth 2.
        assert_eq!(unwrap(">> a\n> > b\n").expect("quoted").text, "a\nb\n");
        // A quoted Python prompt keeps its own `>>> `.
        let u = unwrap("> >>> prog.stack_trace(1)\n> #0  f (a.c:1:1)\n").expect("quoted");
        assert_eq!(u.text, ">>> prog.stack_trace(1)\n#0  f (a.c:1:1)\n");
    }

    #[test]
    fn common_indentation_goes_as_a_block() {
        let u = unwrap("    crash> bt\n    PID: 1  TASK: ff\n     #0 [ff] f at ff\n\n")
            .expect("indented");
        assert_eq!(u.text, "crash> bt\nPID: 1  TASK: ff\n #0 [ff] f at ff\n\n");
        assert_eq!(u.lines, [1, 2, 3, 4]);
        assert!(unwrap("\tperf 1 [000] 1.0: 1 cpu-clock:\n\tffff f+0x1 ([k])\nflush\n").is_none());
    }

    #[test]
    fn a_python_prompt_is_no_quoting() {
        let drgn = ">>> prog.stack_trace(115)\n#0  context_switch (kernel/sched/core.c:5381:2)\n\
                    #1  __schedule (kernel/sched/core.c:6695:8)\n#2  schedule (kernel/sched/core.c:6771:3)\n";
        assert!(unwrap(drgn).is_none());
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
    }
}
