//! Small hand-written scanners shared by the tool-format parsers (crash, perf,
//! bpftrace, gdb, eu-stack, drgn).
//!
//! Everything here works on `&str` and only ever slices at positions of ASCII
//! bytes it found itself (or at ends of `str` methods), so arbitrary UTF-8 input
//! can never make a slice cut inside a character. Numbers are parsed by hand with
//! checked arithmetic: `u64::from_str_radix` would accept a leading `+`, which
//! no tool prints.

use super::{DumpBuilder, FrameRecord, StackStatus};

/// How much of a text `looks_like` may read.
pub(crate) const SNIFF_BYTES: usize = 64 * 1024;

/// The first [`SNIFF_BYTES`] of `text`, cut back to a character boundary.
pub(crate) fn sniff_window(text: &str) -> &str {
    if text.len() <= SNIFF_BYTES {
        return text;
    }
    let mut end = SNIFF_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Lines with their 1-based numbers (`\r\n` endings tolerated).
/// Closes a task whose last frame was held back (gdb and eu-stack hold each
/// frame until the next one says whether it was inlined): pushes it, then
/// ends the open task.
pub(crate) fn close_held_task(held: &mut Option<FrameRecord>, b: &mut DumpBuilder) {
    if let Some(previous) = held.take() {
        b.push_frame(&previous);
    }
    if b.has_open_task() {
        b.end_task();
    }
}

/// The parenthesised group that ends `s`, with nested parentheses balanced
/// (`(/tmp/x (deleted))`, `(args (nested))`): `(before, inside)`.
pub(crate) fn trailing_group(s: &str) -> Option<(&str, &str)> {
    let body = s.strip_suffix(')')?;
    let mut depth = 1usize;
    for (i, c) in body.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth -= 1;
                if depth == 0 {
                    return Some((&body[..i], &body[i + 1..]));
                }
            }
            _ => {}
        }
    }
    None
}

pub(crate) fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, line)| (i + 1, line))
}

/// A non-empty run of hex digits (no `0x`), at most 64 bits.
pub(crate) fn parse_hex(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u64, |acc, b| {
        let digit = char::from(b).to_digit(16)?;
        acc.checked_mul(16)?.checked_add(u64::from(digit))
    })
}

/// A non-empty run of decimal digits, at most 64 bits.
pub(crate) fn parse_dec(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u64, |acc, b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// A decimal id (pid, tid, cpu) as the model stores it.
pub(crate) fn parse_id(s: &str) -> Option<i64> {
    parse_dec(s).and_then(|v| i64::try_from(v).ok())
}

/// `0x` followed by hex digits.
pub(crate) fn parse_0x(s: &str) -> Option<u64> {
    parse_hex(s.strip_prefix("0x")?)
}

/// `s` without a trailing `:number` (`file.c:48` -> `file.c`).
pub(crate) fn strip_number(s: &str) -> Option<&str> {
    s.rsplit_once(':')
        .filter(|(_, n)| parse_dec(n).is_some())
        .map(|(head, _)| head)
}

/// ASCII case-insensitive substring test.
pub(crate) fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    !needle.is_empty()
        && haystack
            .as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// How a format writes the number after `sym+`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OffsetRadix {
    /// Always hex with `0x` (perf, `%pS`-style).
    Hex0x,
    /// Always decimal (bpftrace).
    Decimal,
    /// `0x..` is hex, bare digits are decimal (crash: `bt -sx` vs `bt -sd` /
    /// `[exception RIP: f+120]` in crash's default output radix 10).
    Either,
}

/// Splits `sym+off` at the last `+` when what follows is an offset in `radix`;
/// otherwise the whole token is the symbol. The symbol is never empty.
pub(crate) fn split_symbol_offset(token: &str, radix: OffsetRadix) -> Option<(&str, Option<u64>)> {
    // No tool prints a control character or U+FFFD in a symbol: a token
    // that holds one is a damaged line, not a frame.
    if token.is_empty() || token.chars().any(|c| c.is_control() || c == '\u{fffd}') {
        return None;
    }
    let Some(plus) = token.rfind('+') else {
        return Some((token, None));
    };
    let (sym, off) = (&token[..plus], &token[plus + 1..]);
    let value = match radix {
        OffsetRadix::Hex0x => parse_0x(off),
        OffsetRadix::Decimal => parse_dec(off),
        OffsetRadix::Either => parse_0x(off).or_else(|| parse_dec(off)),
    };
    match value {
        Some(v) if !sym.is_empty() => Some((sym, Some(v))),
        _ => Some((token, None)),
    }
}

/// The first whitespace-delimited word of `s` and what follows it.
pub(crate) fn take_word(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    if s.is_empty() {
        return None;
    }
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    Some((&s[..end], &s[end..]))
}

/// `#N` frame index at the start of `s` (after optional indentation), and the rest.
pub(crate) fn frame_index(s: &str) -> Option<(u64, &str)> {
    let rest = s.trim_start().strip_prefix('#')?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    Some((parse_dec(&rest[..digits])?, &rest[digits..]))
}

/// An elision mark left by whoever quoted the output (`...`, `[...]`, `…`).
/// No tool prints it: it says lines were cut here.
pub(crate) fn is_elision(trimmed: &str) -> bool {
    matches!(trimmed, "..." | "[...]" | "\u{2026}")
}

/// Skips an elision mark and, when it falls inside a task, marks that task's
/// stack truncated: whatever was cut may have held frames.
pub(crate) fn skip_elision(b: &mut DumpBuilder, line_no: usize, line: &str) {
    if b.has_open_task() {
        b.force_status(StackStatus::Truncated);
    }
    b.skip(line_no, line);
}

/// x86-64 / arm64 kernel half of the address space.
pub(crate) fn is_kernel_address(addr: u64) -> bool {
    addr >= 0xffff_8000_0000_0000
}

/// Clearly a 64-bit user-space address: above 4 GiB (PIE and library mappings)
/// and below the end of the lower canonical half. Smaller values stay unclassified
/// on purpose: a 32-bit kernel address (`c0113000`) must not pass for user space.
pub(crate) fn is_user_address(addr: u64) -> bool {
    (0x1_0000_0000..0x0000_8000_0000_0000).contains(&addr)
}

/// Tracks `#N` numbering inside one stack: a gap means frames were lost.
#[derive(Debug, Default)]
pub(crate) struct IndexTracker {
    last: Option<u64>,
}

impl IndexTracker {
    /// Forgets the previous stack.
    pub(crate) fn reset(&mut self) {
        self.last = None;
    }

    /// Records frame `index`; false when it does not follow the previous one
    /// (or a stack does not start at `#0`).
    pub(crate) fn follows(&mut self, index: u64) -> bool {
        let expected = self.last.map_or(0, |last| last.saturating_add(1));
        self.last = Some(index);
        index == expected
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Shared test helpers: the sample corpus, a tiny RNG, mutations, invariants.

    use crate::dump::{Dump, DumpBuilder, Format, NO_NAME, SKIPPED_SAMPLES};

    /// Every sample in tests/data, by file name.
    pub(crate) const SAMPLES: &[(&str, &str)] = &[
        (
            "arm32-hung-task-4.19-unwind-verbose.txt",
            include_str!("../../../../tests/data/arm32-hung-task-4.19-unwind-verbose.txt"),
        ),
        (
            "arm32-oops-3.4-frame-pointer.txt",
            include_str!("../../../../tests/data/arm32-oops-3.4-frame-pointer.txt"),
        ),
        (
            "arm32-sysrq-w-6.1-plain.txt",
            include_str!("../../../../tests/data/arm32-sysrq-w-6.1-plain.txt"),
        ),
        (
            "hung-task-4.4-ubuntu-tainted-OE.txt",
            include_str!("../../../../tests/data/hung-task-4.4-ubuntu-tainted-OE.txt"),
        ),
        (
            "mips-hung-task-4.14-openwrt.txt",
            include_str!("../../../../tests/data/mips-hung-task-4.14-openwrt.txt"),
        ),
        (
            "ppc64le-hung-task-5.15-nmi.txt",
            include_str!("../../../../tests/data/ppc64le-hung-task-5.15-nmi.txt"),
        ),
        (
            "riscv64-dump-stack-6.6.txt",
            include_str!("../../../../tests/data/riscv64-dump-stack-6.6.txt"),
        ),
        (
            "riscv64-hung-task-5.10.txt",
            include_str!("../../../../tests/data/riscv64-hung-task-5.10.txt"),
        ),
        (
            "s390x-hung-task-4.19.txt",
            include_str!("../../../../tests/data/s390x-hung-task-4.19.txt"),
        ),
        (
            "soft-lockup-2.6.18-x86_64-module-prefix.txt",
            include_str!("../../../../tests/data/soft-lockup-2.6.18-x86_64-module-prefix.txt"),
        ),
        (
            "bpftrace-kstack-6.18.txt",
            include_str!("../../../../tests/data/bpftrace-kstack-6.18.txt"),
        ),
        (
            "crash-bt-foreach.txt",
            include_str!("../../../../tests/data/crash-bt-foreach.txt"),
        ),
        (
            "drgn-stack-trace.txt",
            include_str!("../../../../tests/data/drgn-stack-trace.txt"),
        ),
        (
            "drgn-user-frames-0.0.27.txt",
            include_str!("../../../../tests/data/drgn-user-frames-0.0.27.txt"),
        ),
        (
            "eu-stack.txt",
            include_str!("../../../../tests/data/eu-stack.txt"),
        ),
        (
            "gdb-kernel-qemu-gdbstub.txt",
            include_str!("../../../../tests/data/gdb-kernel-qemu-gdbstub.txt"),
        ),
        (
            "gdb-thread-apply-all-bt.txt",
            include_str!("../../../../tests/data/gdb-thread-apply-all-bt.txt"),
        ),
        (
            "hung-task-4.4-x86-addresses.txt",
            include_str!("../../../../tests/data/hung-task-4.4-x86-addresses.txt"),
        ),
        (
            "hung-task-5.3-x86.txt",
            include_str!("../../../../tests/data/hung-task-5.3-x86.txt"),
        ),
        (
            "hung-task-6.0-syzbot-symbolized.txt",
            include_str!("../../../../tests/data/hung-task-6.0-syzbot-symbolized.txt"),
        ),
        (
            "hung-task-6.18.txt",
            include_str!("../../../../tests/data/hung-task-6.18.txt"),
        ),
        (
            "hung-task-arm64-6.x-task-flags.txt",
            include_str!("../../../../tests/data/hung-task-arm64-6.x-task-flags.txt"),
        ),
        (
            "perf-script-kernel-6.18.txt",
            include_str!("../../../../tests/data/perf-script-kernel-6.18.txt"),
        ),
        (
            "perf-script-vmlinux-dso-6.1.txt",
            include_str!("../../../../tests/data/perf-script-vmlinux-dso-6.1.txt"),
        ),
        (
            "proc-pid-stack-6.18.txt",
            include_str!("../../../../tests/data/proc-pid-stack-6.18.txt"),
        ),
        (
            "proc-pid-stack-pasted-tickets.txt",
            include_str!("../../../../tests/data/proc-pid-stack-pasted-tickets.txt"),
        ),
        (
            "proc-pid-stack-legacy-addresses.txt",
            include_str!("../../../../tests/data/proc-pid-stack-legacy-addresses.txt"),
        ),
        (
            "procdump-6.18/stacks.txt",
            include_str!("../../../../tests/data/procdump-6.18/stacks.txt"),
        ),
        (
            "rcu-stall-4.x-irq-eoi.txt",
            include_str!("../../../../tests/data/rcu-stall-4.x-irq-eoi.txt"),
        ),
        (
            "rcu-stall-6.10-nmi.txt",
            include_str!("../../../../tests/data/rcu-stall-6.10-nmi.txt"),
        ),
        (
            "sysrq-t-5.7-orc-all-unreliable.txt",
            include_str!("../../../../tests/data/sysrq-t-5.7-orc-all-unreliable.txt"),
        ),
        (
            "sysrq-t-5.9-header-change-journald.txt",
            include_str!("../../../../tests/data/sysrq-t-5.9-header-change-journald.txt"),
        ),
        (
            "sysrq-t-6.x-i915-modules.txt",
            include_str!("../../../../tests/data/sysrq-t-6.x-i915-modules.txt"),
        ),
    ];

    /// The sample named `name`.
    pub(crate) fn sample(name: &str) -> &'static str {
        SAMPLES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| *text)
            .expect("sample is listed")
    }

    /// `looks_like` claims its own sample and no other one.
    pub(crate) fn assert_sniffs_only(own: &str, looks_like: fn(&str) -> bool) {
        assert_sniffs_only_these(&[own], looks_like);
    }

    /// `looks_like` claims its own samples and no other one.
    pub(crate) fn assert_sniffs_only_these(own: &[&str], looks_like: fn(&str) -> bool) {
        for (name, text) in SAMPLES {
            assert_eq!(looks_like(text), own.contains(name), "looks_like on {name}");
        }
        // Empty and pure-noise inputs are nobody's.
        assert!(!looks_like(""));
        assert!(!looks_like("hello\nworld\n"));
    }

    /// `looks_like` claims its own samples and no other one.
    pub(crate) fn assert_sniffs_only_among(own: &[&str], looks_like: fn(&str) -> bool) {
        for (name, text) in SAMPLES {
            assert_eq!(looks_like(text), own.contains(name), "looks_like on {name}");
        }
        assert!(!looks_like(""));
        assert!(!looks_like("hello\nworld\n"));
    }

    /// Runs a parser into a fresh builder.
    pub(crate) fn run(format: Format, parse: fn(&str, &mut DumpBuilder), text: &str) -> Dump {
        let mut b = DumpBuilder::new(format);
        parse(text, &mut b);
        b.finish()
    }

    /// splitmix64: small, deterministic, good enough to drive mutations.
    pub(crate) struct SplitMix64(pub(crate) u64);

    impl SplitMix64 {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        /// Uniform-ish in `0..n` (`n > 0`).
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Characters that stress the scanners: structure bytes of every format,
    /// digits, whitespace, and multi-byte UTF-8.
    const NASTY: &[char] = &[
        '#', '[', ']', '(', ')', '+', '-', ':', '/', '@', ',', '"', '<', '>', ' ', '\t', '\n', '0',
        '7', 'f', 'x', 'é', '€', '𝄞', '\u{2026}', '\r', '\u{a0}', '\u{3000}', '\u{2028}',
    ];

    /// One random edit of `text`: char insertions/deletions, line duplication,
    /// deletion and swapping, truncation.
    pub(crate) fn mutate(text: &str, rng: &mut SplitMix64) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        for _ in 0..=rng.below(8) {
            match rng.below(6) {
                0 if !chars.is_empty() => {
                    let at = rng.below(chars.len());
                    let len = rng.below(16).min(chars.len() - at);
                    chars.drain(at..at + len);
                }
                1 => {
                    let at = rng.below(chars.len() + 1);
                    let c = NASTY[rng.below(NASTY.len())];
                    chars.insert(at, c);
                }
                2 if !chars.is_empty() => {
                    let at = rng.below(chars.len());
                    chars[at] = NASTY[rng.below(NASTY.len())];
                }
                3 => {
                    let s: String = chars.iter().collect();
                    let mut lines: Vec<&str> = s.split('\n').collect();
                    let i = rng.below(lines.len());
                    let j = rng.below(lines.len());
                    lines.swap(i, j);
                    if rng.below(2) == 0 {
                        let dup = lines[i];
                        lines.insert(j, dup);
                    } else {
                        lines.remove(i);
                    }
                    chars = lines.join("\n").chars().collect();
                }
                4 if !chars.is_empty() => {
                    let keep = rng.below(chars.len());
                    chars.truncate(keep);
                }
                _ => {
                    let at = rng.below(chars.len() + 1);
                    let junk: String = (0..rng.below(40))
                        .map(|_| NASTY[rng.below(NASTY.len())])
                        .collect();
                    for (k, c) in junk.chars().enumerate() {
                        chars.insert(at + k, c);
                    }
                }
            }
        }
        chars.into_iter().collect()
    }

    /// The structural promises every dump keeps, whatever the input.
    pub(crate) fn check_invariants(d: &Dump, input: &str) {
        let tasks = d.task_count();
        let frames = d.frame_count();
        assert_eq!(d.stack_status.len(), tasks, "{input:?}");
        assert_eq!(d.frame_offsets.len(), tasks + 1, "{input:?}");
        assert_eq!(d.frame_offsets[0], 0, "{input:?}");
        assert!(
            d.frame_offsets.windows(2).all(|w| w[0] <= w[1]),
            "{input:?}"
        );
        assert_eq!(*d.frame_offsets.last().unwrap(), frames as u64, "{input:?}");
        for column in [
            d.frame_token.len(),
            d.frame_reliable.len(),
            d.frame_context.len(),
            d.frame_inlined.len(),
            d.frame_line.len(),
        ] {
            assert_eq!(column, frames, "{input:?}");
        }
        let tokens = d.token_count();
        for column in [
            d.token_address.len(),
            d.token_has_address.len(),
            d.token_offset.len(),
            d.token_size.len(),
            d.token_module.len(),
        ] {
            assert_eq!(column, tokens, "{input:?}");
        }
        assert!(d.frame_token.iter().all(|&t| (t as usize) < tokens));
        for &n in d.token_function.iter().chain(&d.token_module) {
            assert!(n == NO_NAME || (n as usize) < d.names.len(), "{input:?}");
        }
        assert_eq!(d.task_comm.len(), tasks, "{input:?}");
        assert!(d
            .task_comm
            .iter()
            .all(|&c| (c as usize) < d.comm_names.len()));
        let line_count = input.lines().count();
        assert!(d.skipped_lines <= line_count, "{input:?}");
        assert_eq!(
            d.skipped_samples.len(),
            d.skipped_lines.min(SKIPPED_SAMPLES),
            "{input:?}"
        );
        // Frames come from distinct lines, except the ones a format derives
        // from a neighbour; none can come from beyond the input.
        assert!(
            d.frame_line.iter().all(|&l| (l as usize) <= line_count),
            "{input:?}"
        );
        assert!(
            d.headers().all(|h| h.line <= line_count.max(1)),
            "{input:?}"
        );
    }

    /// Feeds `rounds` mutations of `text` through `parse` and checks invariants.
    /// `LPC_FUZZ_ROUNDS` overrides `rounds` for a longer local run.
    pub(crate) fn fuzz(
        format: Format,
        parse: fn(&str, &mut DumpBuilder),
        text: &str,
        seed: u64,
        rounds: usize,
    ) {
        let rounds = std::env::var("LPC_FUZZ_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(rounds);
        let mut rng = SplitMix64(seed);
        for _ in 0..rounds {
            let input = mutate(text, &mut rng);
            let d = run(format, parse, &input);
            check_invariants(&d, &input);
        }
        // Pure noise too: every NASTY char in random order.
        for _ in 0..rounds / 4 {
            let input: String = (0..rng.below(400))
                .map(|_| NASTY[rng.below(NASTY.len())])
                .collect();
            let d = run(format, parse, &input);
            check_invariants(&d, &input);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{check_invariants, mutate, run, SplitMix64, SAMPLES};
    use super::*;
    use crate::dump::{bpftrace, crash, drgn, eustack, gdb, perf, Format};

    type Parse = fn(&str, &mut DumpBuilder);

    const PARSERS: &[(Format, Parse)] = &[
        (Format::Crash, crash::parse),
        (Format::PerfScript, perf::parse),
        (Format::Bpftrace, bpftrace::parse),
        (Format::Gdb, gdb::parse),
        (Format::EuStack, eustack::parse),
        (Format::Drgn, drgn::parse),
    ];

    #[test]
    fn every_parser_survives_every_sample() {
        let mut rng = SplitMix64(0x5eed);
        for (name, text) in SAMPLES {
            for &(format, parse) in PARSERS {
                let d = run(format, parse, text);
                check_invariants(&d, text);
                // A foreign format is never silently accepted: its lines are
                // either read as something or counted.
                assert!(
                    d.skipped_lines > 0 || d.task_count() > 0,
                    "{name} as {format:?}"
                );
                for _ in 0..20 {
                    let input = mutate(text, &mut rng);
                    check_invariants(&run(format, parse, &input), &input);
                }
            }
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_hex("ffffffff815df272"), Some(0xffff_ffff_815d_f272));
        assert_eq!(parse_hex("1ffffffffffffffff"), None);
        assert_eq!(parse_hex("+5"), None);
        assert_eq!(parse_dec("1560"), Some(1560));
        assert_eq!(parse_dec("18446744073709551616"), None);
        assert_eq!(parse_dec(""), None);
        assert_eq!(parse_0x("0x7c"), Some(0x7c));
        assert_eq!(parse_id("9223372036854775808"), None);
        assert_eq!(
            split_symbol_offset("foo.cold+0x1f", OffsetRadix::Hex0x),
            Some(("foo.cold", Some(0x1f)))
        );
        assert_eq!(
            split_symbol_offset("foo+12", OffsetRadix::Hex0x),
            Some(("foo+12", None))
        );
        assert_eq!(
            split_symbol_offset("foo+12", OffsetRadix::Decimal),
            Some(("foo", Some(12)))
        );
        assert_eq!(
            split_symbol_offset("foo+0xb", OffsetRadix::Either),
            Some(("foo", Some(0xb)))
        );
        assert_eq!(
            split_symbol_offset("+12", OffsetRadix::Decimal),
            Some(("+12", None))
        );
        assert_eq!(strip_number("a/b.c:48"), Some("a/b.c"));
        assert_eq!(frame_index(" #10 x"), Some((10, " x")));
        assert!(is_user_address(0x7f33_4407_2af7) && !is_user_address(0xc011_3000));
        assert!(is_kernel_address(0xffff_ffff_8100_0000) && !is_kernel_address(0x7fff_ffff_ffff));
        assert!(contains_ignore_case("NMI exception", "nmi") && !contains_ignore_case("x", ""));
    }

    #[test]
    fn sniff_window_cuts_on_a_char_boundary() {
        let text = format!("{}€tail", "a".repeat(SNIFF_BYTES - 1));
        let window = sniff_window(&text);
        assert_eq!(window.len(), SNIFF_BYTES - 1);
        assert_eq!(sniff_window("short"), "short");
    }
}
