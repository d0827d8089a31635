//! The symbol token every kernel-produced format shares: `%pS` / `%pB`.
//!
//! `kernel/kallsyms.c: __sprint_symbol()` prints `name+0xoff/0xsize`, then
//! ` [module]` (or ` [module buildid]` with `CONFIG_STACKTRACE_BUILD_ID`) for
//! module text, or just `0x<address>` when no symbol covers the address. A
//! short-lived kallsyms patch printed `name-0xoff/0xsize`; it is read too.
//! x86_64 kernels of the 2.6.1x era (`arch/x86_64/kernel/traps.c:
//! printk_address()`, e.g. v2.6.18) put the module in front of the name
//! instead: `:jbd2:jbd2_journal_commit_transaction+0x191/0x1068`.

use super::lines::scan_hex;

/// A symbol token as printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Symbol<'a> {
    /// `name[+0xoff[/0xsize]] [module]` — offset and size are `None` when absent
    /// (the kernel always prints both; lpc's own snapshot writer may not).
    Named {
        name: &'a str,
        offset: Option<u64>,
        size: Option<u64>,
        module: Option<&'a str>,
    },
    /// `0x<address>`: no symbol covers the address.
    Raw(u64),
}

impl Symbol<'_> {
    /// Whether the token carries both `+0xoff` and `/0xsize`, the shape every
    /// kernel frame has (what tells a frame from a word of prose).
    #[must_use]
    pub fn is_kernel_shaped(&self) -> bool {
        match self {
            Symbol::Named { offset, size, .. } => offset.is_some() && size.is_some(),
            Symbol::Raw(_) => true,
        }
    }
}

/// Bytes that may end a symbol name (`-` only when an offset follows).
const NAME_STOP: [bool; 256] = {
    let mut t = [false; 256];
    t[b' ' as usize] = true;
    t[b'\t' as usize] = true;
    t[b'+' as usize] = true;
    t[b'[' as usize] = true;
    t[b']' as usize] = true;
    t[b'-' as usize] = true;
    t
};

/// Bytes a kernel symbol name is made of: C identifiers with the compiler's
/// `.` suffixes (`.cold`, `.constprop.0`), which is all kallsyms holds, plus
/// `$`, `-` and `:` seen in older and vendor dumps. Anything else (a control
/// character, a byte of a damaged line, U+FFFD) is no name: the line is not a
/// frame, and a stack that holds it has lost one.
const NAME_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'$' | b'-' | b':');
        c += 1;
    }
    t
};

/// `0x` + hex digits at the start of `b`: `(value, bytes used)`.
#[inline]
fn hex_0x(b: &[u8]) -> Option<(u64, usize)> {
    if b.len() < 3 || b[0] != b'0' || b[1] != b'x' {
        return None;
    }
    scan_hex(&b[2..]).map(|(v, n)| (v, n + 2))
}

/// Reads one symbol token at the start of `s` and returns it with the rest of
/// the line (starting at the first byte after the token and its module tag).
#[must_use]
pub fn parse_symbol(s: &str) -> Option<(Symbol<'_>, &str)> {
    let b = s.as_bytes();
    if let Some((addr, n)) = hex_0x(b) {
        if n == b.len() || b[n] == b' ' || b[n] == b'\t' {
            return Some((Symbol::Raw(addr), &s[n..]));
        }
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        // `name-0xoff/0xsize`: a '-' followed by an offset ends the name.
        if NAME_STOP[c as usize]
            && (c != b'-' || (i > 0 && b.get(i + 1) == Some(&b'0') && b.get(i + 2) == Some(&b'x')))
        {
            break;
        }
        i += 1;
    }
    if i == 0 || !b[..i].iter().all(|&c| NAME_BYTE[c as usize]) {
        return None;
    }
    let name = &s[..i];
    let (mut offset, mut size) = (None, None);
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        let (off, n) = hex_0x(&b[i + 1..])?;
        offset = Some(off);
        i += 1 + n;
        if i < b.len() && b[i] == b'/' {
            let (sz, n) = hex_0x(&b[i + 1..])?;
            size = Some(sz);
            i += 1 + n;
        }
    }
    let mut module = None;
    if offset.is_some() && b.len() > i + 2 && b[i] == b' ' && b[i + 1] == b'[' {
        if let Some(close) = b[i + 2..].iter().position(|&c| c == b']') {
            let tag = &s[i + 2..i + 2 + close];
            // `[module]` or `[module buildid]`.
            let m = tag.split(' ').next().unwrap_or("");
            if !m.is_empty() {
                module = Some(m);
                i += 3 + close;
            }
        }
    }
    if i < b.len() && !matches!(b[i], b' ' | b'\t') {
        return None; // e.g. `foo+0x1/0x2junk`, `foo]`
    }
    // `:module:name` (2.6.1x x86_64): the module in front of the name.
    let (name, module) = match name.strip_prefix(':').and_then(|r| r.split_once(':')) {
        Some((m, f)) if module.is_none() && !m.is_empty() && !f.is_empty() => (f, Some(m)),
        _ => (name, module),
    };
    Some((
        Symbol::Named {
            name,
            offset,
            size,
            module,
        },
        &s[i..],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(s: &str) -> (&str, Option<u64>, Option<u64>, Option<&str>, &str) {
        match parse_symbol(s) {
            Some((
                Symbol::Named {
                    name,
                    offset,
                    size,
                    module,
                },
                rest,
            )) => (name, offset, size, module, rest),
            other => panic!("{s:?} -> {other:?}"),
        }
    }

    #[test]
    fn kernel_tokens() {
        assert_eq!(
            named("futex_do_wait+0x46/0x90"),
            ("futex_do_wait", Some(0x46), Some(0x90), None, "")
        );
        assert_eq!(
            named("mpage_prepare_extent_to_map+0x2e7/0x310 [ext4]"),
            (
                "mpage_prepare_extent_to_map",
                Some(0x2e7),
                Some(0x310),
                Some("ext4"),
                ""
            )
        );
        assert_eq!(
            named("foo+0x10/0x20 [mod 0123456789abcdef0123456789abcdef01234567] (T)"),
            ("foo", Some(0x10), Some(0x20), Some("mod"), " (T)")
        );
        assert_eq!(
            named("nmi_cpu_backtrace.cold+0x71/0xaa"),
            ("nmi_cpu_backtrace.cold", Some(0x71), Some(0xaa), None, "")
        );
        assert_eq!(
            named("foo-0x10/0x20"),
            ("foo", Some(0x10), Some(0x20), None, "")
        );
        assert_eq!(named("a-b+0x1/0x2"), ("a-b", Some(1), Some(2), None, ""));
        assert_eq!(
            named(":jbd2:jbd2_journal_commit_transaction+0x191/0x1068"),
            (
                "jbd2_journal_commit_transaction",
                Some(0x191),
                Some(0x1068),
                Some("jbd2"),
                ""
            )
        );
        // Not a `:module:` prefix: the name stays whole.
        assert_eq!(named("::f+0x1/0x2").0, "::f");
        assert_eq!(named(":f+0x1/0x2").0, ":f");
        assert_eq!(
            named("context_switch kernel/sched/core.c:5178 [inline]").0,
            "context_switch"
        );
        assert_eq!(
            parse_symbol("0xffffffffffffffff"),
            Some((Symbol::Raw(u64::MAX), ""))
        );
    }

    #[test]
    fn refuses_what_is_not_a_token() {
        assert_eq!(parse_symbol(""), None);
        assert_eq!(parse_symbol("+0x1/0x2"), None);
        assert_eq!(parse_symbol("foo+0xzz/0x2"), None);
        assert_eq!(parse_symbol("foo+0x1/0x2junk"), None);
        // A damaged name is no name.
        assert_eq!(parse_symbol("sch\u{1}dule+0x1/0x2"), None);
        assert_eq!(parse_symbol("sch\u{fffd}dule+0x1/0x2"), None);
        assert_eq!(parse_symbol("sch(dule+0x1/0x2"), None);
        let (sym, _) = parse_symbol("Call Trace:").unwrap();
        assert!(!sym.is_kernel_shaped());
    }
}
