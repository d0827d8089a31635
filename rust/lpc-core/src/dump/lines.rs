//! Line splitting and the small number scanners every text parser shares.
//!
//! Parsers work on `&str` slices of the input: lines are found with `memchr`,
//! numbers are read byte by byte, and nothing is allocated per line.

use memchr::memchr;

/// The lines of a text with their 1-based numbers; a trailing `\r` is dropped
/// (CRLF files), the final line needs no newline.
pub struct Lines<'a> {
    rest: &'a str,
    number: usize,
}

impl<'a> Lines<'a> {
    #[must_use]
    pub fn new(text: &'a str) -> Self {
        Self {
            rest: text,
            number: 0,
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<(usize, &'a str)> {
        if self.rest.is_empty() {
            return None;
        }
        let (line, rest) = match memchr(b'\n', self.rest.as_bytes()) {
            Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
            None => (self.rest, ""),
        };
        self.rest = rest;
        self.number += 1;
        let line = match line.as_bytes().last() {
            Some(b'\r') => &line[..line.len() - 1],
            _ => line,
        };
        Some((self.number, line))
    }
}

/// The first `max` bytes of `text`, cut back to the last line end inside them
/// (the whole text when it is shorter, or when one line is longer than `max`).
#[must_use]
pub fn head(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    match memchr::memrchr(b'\n', &text.as_bytes()[..max]) {
        Some(i) => &text[..=i],
        None => text,
    }
}

/// [`head`] of raw bytes (which may not be valid UTF-8 further on).
#[must_use]
pub fn head_bytes(data: &[u8], max: usize) -> &[u8] {
    if data.len() <= max {
        return data;
    }
    match memchr::memrchr(b'\n', &data[..max]) {
        Some(i) => &data[..=i],
        None => data,
    }
}

/// Whether a line the parser could not read still *looks like* a stack frame
/// of some format: it holds a `+0x`/`/0x` offset or size, starts (after
/// blanks) with a `[<addr>]`, a `? ` mark or a `#N` frame number, or ends in
/// syzbot's ` [inline]`. Inside a stack such a line is a frame whose function
/// is lost, not noise: the task's stack is incomplete
/// ([`TaskLoss::FRAME_LINE`](super::TaskLoss::FRAME_LINE)).
#[must_use]
pub fn looks_like_frame(line: &str) -> bool {
    let t = trim_start_ws(line).as_bytes();
    let numbered = t.len() > 1 && t[0] == b'#' && t[1].is_ascii_digit();
    t.starts_with(b"[<")
        || t.starts_with(b"? ")
        || numbered
        || offset_or_size(t)
        || trim_end_ws(line).ends_with(" [inline]")
        || decimal_offset(t)
}

/// Whether `t` holds `+0x` or `/0x` (found at each `x`: no searcher built per line).
fn offset_or_size(t: &[u8]) -> bool {
    memchr::memchr_iter(b'x', t)
        .any(|i| i >= 2 && t[i - 1] == b'0' && matches!(t[i - 2], b'+' | b'/'))
}

/// `sym+123` as the first word (bpftrace's `kstack` frames).
fn decimal_offset(t: &[u8]) -> bool {
    let word = t.split(|&c| c == b' ' || c == b'\t').next().unwrap_or(t);
    word.iter()
        .position(|&c| c == b'+')
        .is_some_and(|at| at > 0 && word.get(at + 1).is_some_and(u8::is_ascii_digit))
}

/// `[<hex>]` at the start of `s` (the address form of x86 before 4.15, ARM,
/// riscv, mips): the address and the rest, leading blanks trimmed.
#[must_use]
pub fn bracket_address(s: &str) -> Option<(u64, &str)> {
    let b = s.as_bytes();
    if !b.starts_with(b"[<") {
        return None;
    }
    let (addr, n) = scan_hex(&b[2..])?;
    if !b[2 + n..].starts_with(b">]") {
        return None;
    }
    Some((addr, trim_start_ws(&s[4 + n..])))
}

/// `s` without leading spaces and tabs.
#[inline]
#[must_use]
pub fn trim_start_ws(s: &str) -> &str {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    &s[i..]
}

/// `s` without trailing spaces and tabs.
#[inline]
#[must_use]
pub fn trim_end_ws(s: &str) -> &str {
    let b = s.as_bytes();
    let mut n = b.len();
    while n > 0 && (b[n - 1] == b' ' || b[n - 1] == b'\t') {
        n -= 1;
    }
    &s[..n]
}

#[inline]
fn hex_digit(c: u8) -> Option<u64> {
    match c {
        b'0'..=b'9' => Some(u64::from(c - b'0')),
        b'a'..=b'f' => Some(u64::from(c - b'a' + 10)),
        b'A'..=b'F' => Some(u64::from(c - b'A' + 10)),
        _ => None,
    }
}

/// Reads hex digits at the start of `b`: `(value, digits used)`. `None` when
/// there is no digit or the value does not fit 64 bits.
#[inline]
#[must_use]
pub fn scan_hex(b: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    let mut n = 0;
    while n < b.len() {
        let Some(d) = hex_digit(b[n]) else { break };
        if value >> 60 != 0 {
            return None;
        }
        value = (value << 4) | d;
        n += 1;
    }
    (n > 0).then_some((value, n))
}

/// Reads decimal digits at the start of `b`: `(value, digits used)`.
#[inline]
#[must_use]
pub fn scan_dec(b: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    let mut n = 0;
    while n < b.len() && b[n].is_ascii_digit() {
        value = value.checked_mul(10)?.checked_add(u64::from(b[n] - b'0'))?;
        n += 1;
    }
    (n > 0).then_some((value, n))
}

/// The whole of `s` as a hex number (an optional `0x` allowed).
#[must_use]
pub fn parse_hex(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let b = b.strip_prefix(b"0x").unwrap_or(b);
    match scan_hex(b) {
        Some((v, n)) if n == b.len() => Some(v),
        _ => None,
    }
}

/// The whole of `s` as a decimal number.
#[must_use]
pub fn parse_dec(s: &str) -> Option<u64> {
    match scan_dec(s.as_bytes()) {
        Some((v, n)) if n == s.len() => Some(v),
        _ => None,
    }
}

/// The whole of `s` as a signed decimal id (pids, cpus): non-negative, fits `i64`.
#[must_use]
pub fn parse_id(s: &str) -> Option<i64> {
    parse_dec(s).and_then(|v| i64::try_from(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_number_from_one_and_drop_cr() {
        let got: Vec<_> = Lines::new("a\r\n\nb").collect();
        assert_eq!(got, vec![(1, "a"), (2, ""), (3, "b")]);
        assert_eq!(Lines::new("x\n").count(), 1);
        assert_eq!(Lines::new("").count(), 0);
    }

    #[test]
    fn head_cuts_at_a_line_end() {
        assert_eq!(head("ab\ncd\nef", 7), "ab\ncd\n");
        assert_eq!(head("abcdef", 3), "abcdef");
        assert_eq!(head("ab", 10), "ab");
        assert_eq!(head_bytes(b"ab\ncd\nef", 7), b"ab\ncd\n");
        assert_eq!(head_bytes(b"abcdef", 3), b"abcdef");
    }

    #[test]
    fn numbers() {
        assert_eq!(scan_hex(b"ffz"), Some((0xff, 2)));
        assert_eq!(scan_hex(b"ffffffffffffffff"), Some((u64::MAX, 16)));
        assert_eq!(scan_hex(b"1ffffffffffffffff"), None);
        assert_eq!(scan_hex(b"g"), None);
        assert_eq!(scan_dec(b"123 "), Some((123, 3)));
        assert_eq!(scan_dec(b"99999999999999999999"), None);
        assert_eq!(parse_hex("0x1f"), Some(0x1f));
        assert_eq!(parse_hex("0x"), None);
        assert_eq!(parse_dec("12a"), None);
        assert_eq!(parse_id("18446744073709551615"), None);
        assert_eq!(trim_start_ws(" \t x "), "x ");
        assert_eq!(trim_end_ws(" x \t"), " x");
    }
}
