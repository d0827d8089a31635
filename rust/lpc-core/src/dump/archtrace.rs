//! Backtrace lines of other architectures than x86 and arm64, as the kernel
//! log prints them (the line machine is in [`super::dmesg`]; these are the
//! pure readers of one line each, tried only on lines that are not x86
//! frames).
//!
//! * ARM32 (`arch/arm/kernel/traps.c: dump_backtrace_entry()`): each line
//!   names the function executing at an address and its caller —
//!   `[<c0882f18>] (__schedule) from [<c0883858>] (schedule+0x64/0xe4)`
//!   (≤ 5.x, and later with `CONFIG_BACKTRACE_VERBOSE`), with the callee
//!   printed `%pS` (`(__schedule+0x0/0x5c4)`) by 2.6/3.x kernels, and
//!   `__schedule from schedule+0x20/0xac` (5.x+ default, callee `%ps`).
//!   Register, memory-dump and `Exception stack(…)` lines come between them.
//! * powerpc (`arch/powerpc/kernel/process.c: show_stack()`):
//!   `[SP] [LR] SYM[ (SYM)][ (unreliable)]` and `--- interrupt: TRAP at SYM`.
//! * s390 (`arch/s390/kernel/dumpstack.c`): an unreliable frame is printed in
//!   parentheses, `([<000000000012f3a6>] __schedule+0x2d6/0x6c8)`.
//!
//! riscv and mips print the old x86 shape (`[<addr>] sym+off/size`), which
//! the x86 frame reader takes.

use super::ksym::{parse_symbol, Symbol};
use super::lines::{bracket_address, parse_hex, scan_hex, trim_end_ws, trim_start_ws};

/// One end of an ARM32 backtrace line: an address (when printed) and a symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ArmSym<'a> {
    pub address: Option<u64>,
    pub symbol: Symbol<'a>,
}

/// An ARM32 backtrace line: the function executing and its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ArmLine<'a> {
    pub callee: ArmSym<'a>,
    /// `None` when the caller is address 0 (`from [<00000000>] (  (null))`,
    /// `from 0x0`): the end of the chain, no frame.
    pub caller: Option<ArmSym<'a>>,
    /// The 5.x+ form without addresses (`f from g+0x1/0x2`).
    pub plain: bool,
}

/// A module name (`[mod]` tags): a C identifier, `-` allowed.
fn is_module_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// `%ps` / `%pS` output: `name[+0xoff/0xsize][ [mod[ buildid]]]`, `0xADDR`,
/// or (NULL) `(null)`, read as address 0.
fn arm_symbol(s: &str) -> Option<Symbol<'_>> {
    let s = trim_end_ws(trim_start_ws(s));
    if s == "(null)" {
        return Some(Symbol::Raw(0));
    }
    let (symbol, tail) = parse_symbol(s)?;
    let tail = trim_start_ws(tail);
    if tail.is_empty() {
        return Some(symbol);
    }
    // `%ps` of module text: `name [module]` (no offset, so not read above).
    let Symbol::Named {
        name,
        offset: None,
        size: None,
        module: None,
    } = symbol
    else {
        return None;
    };
    let tag = tail.strip_prefix('[')?.strip_suffix(']')?;
    let module = tag.split(' ').next().filter(|m| is_module_name(m))?;
    Some(Symbol::Named {
        name,
        offset: None,
        size: None,
        module: Some(module),
    })
}

fn arm_end(address: Option<u64>, symbol: Symbol<'_>) -> Option<ArmSym<'_>> {
    let zero = address == Some(0) || symbol == Symbol::Raw(0);
    (!zero).then_some(ArmSym { address, symbol })
}

/// An ARM32 backtrace line, in either form (see the module docs).
pub(super) fn parse_arm_line(t: &str) -> Option<ArmLine<'_>> {
    if let Some(rest) = t.strip_prefix("Function entered at ") {
        // Kernels without kallsyms print only the addresses
        // (arch/arm/kernel/traps.c dump_backtrace_entry, !CONFIG_KALLSYMS).
        let (a, rest) = bracket_address(rest)?;
        let (b, rest) = bracket_address(rest.trim_start().strip_prefix("from ")?)?;
        if !trim_end_ws(rest).is_empty() {
            return None;
        }
        return Some(ArmLine {
            callee: ArmSym {
                address: Some(a),
                symbol: Symbol::Raw(a),
            },
            caller: arm_end(Some(b), Symbol::Raw(b)),
            plain: false,
        });
    }
    if t.starts_with("[<") {
        // `[<A>] (CALLEE) from [<B>] (CALLER)`
        let (a, rest) = bracket_address(t)?;
        let rest = rest.strip_prefix('(')?;
        let cut = rest.find(") from ")?;
        let callee = arm_symbol(&rest[..cut])?;
        let (b, rest) = bracket_address(&rest[cut + ") from ".len()..])?;
        let inner = trim_end_ws(rest).strip_prefix('(')?.strip_suffix(')')?;
        let caller = arm_symbol(inner)?;
        return Some(ArmLine {
            callee: ArmSym {
                address: Some(a),
                symbol: callee,
            },
            caller: arm_end(Some(b), caller),
            plain: false,
        });
    }
    // `CALLEE from CALLER`: the caller is `%pS`, so a name carries its offset.
    let cut = memchr::memmem::find(t.as_bytes(), b" from ")?;
    let callee = arm_symbol(&t[..cut])?;
    let caller = arm_symbol(&t[cut + " from ".len()..])?;
    if !caller.is_kernel_shaped() {
        return None;
    }
    Some(ArmLine {
        callee: ArmSym {
            address: None,
            symbol: callee,
        },
        caller: arm_end(None, caller),
        plain: true,
    })
}

/// A powerpc frame: `[SP] [LR] SYM[ (SYM)][ (unreliable)]` — the return
/// address, its symbol (ftrace's real return address in parentheses replaces
/// `return_to_handler`), and whether the line is marked `(unreliable)`.
pub(super) fn parse_ppc_frame(t: &str) -> Option<(u64, Symbol<'_>, bool)> {
    let b = t.as_bytes();
    let word = |at: usize| -> Option<(u64, usize)> {
        let (v, n) = scan_hex(b.get(at + 1..)?)?;
        ((n == 8 || n == 16) && b[at] == b'[' && b.get(at + 1 + n) == Some(&b']'))
            .then_some((v, at + n + 2))
    };
    let (_sp, end) = word(0)?;
    if b.get(end) != Some(&b' ') {
        return None;
    }
    let (ip, end) = word(end + 1)?;
    let rest = t.get(end..)?.strip_prefix(' ')?;
    let (mut symbol, tail) = parse_symbol(rest)?;
    if !symbol.is_kernel_shaped() {
        return None;
    }
    let mut reliable = true;
    for tok in tail.split_whitespace() {
        if tok == "(unreliable)" {
            reliable = false;
            continue;
        }
        let inner = tok.strip_prefix('(')?.strip_suffix(')')?;
        match parse_symbol(inner) {
            Some((real, "")) if real.is_kernel_shaped() => symbol = real,
            _ => return None,
        }
    }
    Some((ip, symbol, reliable))
}

/// powerpc `--- interrupt: 901 at SYM` (5.x+) / `--- Exception: 901 at SYM`
/// (older): `Some(Some(SYM))`, the interrupted instruction; the closing
/// `--- interrupt: 901` (5.12+, after the registers): `Some(None)`.
pub(super) fn parse_ppc_interrupt(t: &str) -> Option<Option<Symbol<'_>>> {
    let rest = t
        .strip_prefix("--- interrupt: ")
        .or_else(|| t.strip_prefix("--- Exception: "))?;
    let rest = trim_end_ws(rest);
    let (trap, at) = match rest.split_once(" at ") {
        Some((trap, at)) => (trap, Some(at)),
        None => (rest, None),
    };
    parse_hex(trap)?;
    match at {
        None => Some(None),
        Some(at) => match parse_symbol(at) {
            Some((sym, tail)) if sym.is_kernel_shaped() && tail.trim().is_empty() => {
                Some(Some(sym))
            }
            _ => None,
        },
    }
}

/// ARM32 register lines: `r10: c0b0cd4c  r9 : c0b00000  r8 : c0b04e8c`
/// (`__show_regs()`) and the frame-pointer unwinder's saved registers
/// ` r7:c0c12340 r6:c0c10000` (`dump_backtrace_stm()`).
pub(super) fn is_arm_register_line(t: &str) -> bool {
    let b = t.as_bytes();
    if b.len() < 4 || b[0] != b'r' || !b[1].is_ascii_digit() {
        return false;
    }
    t.split_whitespace().all(|tok| {
        if tok == ":" {
            return true;
        }
        let (reg, value) = tok.split_once(':').unwrap_or((tok, ""));
        let is_reg = reg.is_empty()
            || (reg.len() <= 3
                && reg.starts_with('r')
                && reg[1..].bytes().all(|c| c.is_ascii_digit())
                && reg.len() > 1);
        let is_word = |w: &str| w.len() == 8 && parse_hex(w).is_some();
        if reg.is_empty() {
            return false;
        }
        if tok.contains(':') {
            is_reg && (value.is_empty() || is_word(value))
        } else {
            is_reg || is_word(tok)
        }
    })
}

/// ARM `dump_mem()` lines: `1f40: 00000000 c0b04e80 ????????` (the offset,
/// then 32-bit words), under `Exception stack(0x… to 0x…)` and `Stack: (…)`.
pub(super) fn is_mem_dump_line(t: &str) -> bool {
    let mut tokens = t.split_whitespace();
    let Some(offset) = tokens.next().and_then(|o| o.strip_suffix(':')) else {
        return false;
    };
    if offset.len() != 4 || parse_hex(offset).is_none() {
        return false;
    }
    let mut any = false;
    for w in tokens {
        if w.len() != 8 || !(w == "????????" || parse_hex(w).is_some()) {
            return false;
        }
        any = true;
    }
    any
}

/// Register and report lines of these architectures that carry no frame:
/// ARM `__show_regs()`/`__die()`, powerpc `show_regs()`, s390
/// `show_registers()`, mips `show_stacktrace()`, and the 2.6-era soft-lockup
/// report.
pub(super) fn is_arch_noise(t: &str) -> bool {
    const PREFIXES: &[&str] = &[
        // ARM
        "PC is at ",
        "LR is at ",
        "Flags: ",
        "Control: ",
        "Internal error: ",
        "Exception stack(",
        "Stack: (",
        // powerpc
        "NIP:  ",
        "NIP [",
        "LR [",
        "LR = ",
        "MSR:  ",
        "CFAR: ",
        "REGS: ",
        "TASK = ",
        "Instruction dump:",
        // s390
        "Krnl PSW : ",
        "Krnl GPRS: ",
        "Krnl Code: ",
        // mips
        "Stack : ",
        // 2.6 x86
        "BUG: soft lockup",
        "watchdog: BUG: soft lockup",
    ];
    if PREFIXES.iter().any(|p| t.starts_with(p)) || t == "Stack:" {
        return true;
    }
    // powerpc `GPR00: …`
    if let Some(rest) = t.strip_prefix("GPR") {
        let b = rest.as_bytes();
        return b.len() > 3 && b[..2].iter().all(u8::is_ascii_digit) && b[2] == b':';
    }
    // `CPU 3` / `CPU 1:` (2.6 x86_64 show_regs)
    if let Some(rest) = t.strip_prefix("CPU ") {
        let rest = trim_end_ws(rest);
        let rest = rest.strip_suffix(':').unwrap_or(rest);
        return !rest.is_empty() && rest.bytes().all(|c| c.is_ascii_digit());
    }
    is_arm_register_line(t) || is_mem_dump_line(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named<'a>(s: &Symbol<'a>) -> (&'a str, Option<u64>, Option<&'a str>) {
        match *s {
            Symbol::Named {
                name,
                offset,
                module,
                ..
            } => (name, offset, module),
            Symbol::Raw(_) => ("<raw>", None, None),
        }
    }

    #[test]
    fn arm_lines() {
        // No kallsyms: addresses only.
        let l = parse_arm_line("Function entered at [<c0104b2c>] from [<c0104e1c>]").expect("arm");
        assert_eq!(
            (l.callee.address, l.callee.symbol),
            (Some(0xc010_4b2c), Symbol::Raw(0xc010_4b2c))
        );
        assert_eq!(l.caller.map(|c| c.address), Some(Some(0xc010_4e1c)));
        assert!(
            parse_arm_line("Function entered at [<c0104b2c>] from [<c0104e1c>] junk").is_none()
        );

        let l = parse_arm_line("[<c0882f18>] (__schedule) from [<c0883858>] (schedule+0x64/0xe4)")
            .unwrap();
        assert_eq!(l.callee.address, Some(0xc088_2f18));
        assert_eq!(named(&l.callee.symbol), ("__schedule", None, None));
        let caller = l.caller.unwrap();
        assert_eq!(caller.address, Some(0xc088_3858));
        assert_eq!(named(&caller.symbol), ("schedule", Some(0x64), None));
        assert!(!l.plain);

        let l = parse_arm_line(
            "[<c0882f18>] (__schedule+0x0/0x5c4) from [<c0883858>] (schedule+0x64/0xe4)",
        )
        .unwrap();
        assert_eq!(named(&l.callee.symbol), ("__schedule", Some(0), None));

        let l =
            parse_arm_line("[<c0107f18>] (ret_from_fork) from [<00000000>] (  (null))").unwrap();
        assert_eq!(l.caller, None);

        let l = parse_arm_line("foo_poll [foo] from do_sys_poll+0x1f8/0x4c8").unwrap();
        assert_eq!(named(&l.callee.symbol), ("foo_poll", None, Some("foo")));
        assert!(l.plain && l.callee.address.is_none());
        let l = parse_arm_line("bar [foo] from baz+0x10/0x20 [foo]").unwrap();
        assert_eq!(
            named(&l.caller.unwrap().symbol),
            ("baz", Some(0x10), Some("foo"))
        );
        assert_eq!(
            parse_arm_line("ret_from_fork from 0x0").unwrap().caller,
            None
        );

        // Prose, and a caller without its offset, are no frames.
        for t in [
            "Freeing unused kernel memory: 1024K from 0x1",
            "Booting from schedule",
            "__schedule from schedule",
            "[<c0882f18>] (__schedule) from [<c0883858>] schedule+0x64/0xe4",
            "[<c0882f18>] (__sch\u{1}edule) from [<c0883858>] (schedule+0x64/0xe4)",
        ] {
            assert_eq!(parse_arm_line(t), None, "{t}");
        }
    }

    #[test]
    fn powerpc_lines() {
        let (ip, sym, reliable) =
            parse_ppc_frame("[c0000000fe2bfb00] [c000000000021b5c] __switch_to+0x2bc/0x3f0")
                .unwrap();
        assert_eq!(ip, 0xc000_0000_0002_1b5c);
        assert_eq!(named(&sym), ("__switch_to", Some(0x2bc), None));
        assert!(reliable);
        let (_, sym, reliable) =
            parse_ppc_frame("[c7a2bd50] [c0012345] xfs_buf_lock+0x40/0x120 [xfs] (unreliable)")
                .unwrap();
        assert_eq!(named(&sym), ("xfs_buf_lock", Some(0x40), Some("xfs")));
        assert!(!reliable);
        let (_, sym, _) = parse_ppc_frame(
            "[c00000000f38fad0] [c00000000000b8a0] return_to_handler+0x0/0x40 (do_sys_poll+0x3c0/0x5e0)",
        )
        .unwrap();
        assert_eq!(named(&sym), ("do_sys_poll", Some(0x3c0), None));
        assert_eq!(
            parse_ppc_frame("[c0000000fe2bfb00] [c000000000021b5c] f+0x1/0x2 (unreliabla)"),
            None
        );
        assert_eq!(
            parse_ppc_interrupt("--- interrupt: 901 at arch_local_irq_restore+0x74/0x90")
                .map(|s| s.map(|s| named(&s).0)),
            Some(Some("arch_local_irq_restore"))
        );
        assert_eq!(parse_ppc_interrupt("--- interrupt: 900"), Some(None));
        assert_eq!(parse_ppc_interrupt("--- interrupt: x at f+0x1/0x2"), None);
    }

    #[test]
    fn register_and_dump_lines() {
        for t in [
            "r10: c0b0cd4c  r9 : c0b00000  r8 : c0b04e8c",
            "r7 : 00000000  r6 : c0b04e28  r5 : c0b00000  r4 : c0b04e28",
            "r7:c0c12340 r6:c0c10000 r5:00000000 r4:ef1d0a00",
            "1f40:                   00000000 00000001 c0b04e80 c0b01f90",
            "ff60: c0b01f74 ???????? 00000000 00000000 00000000 00000000 00000000 00000000",
            "GPR00: c000000000016e5c c0000000fe2bfb90 c000000001a3e300 0000000000000000",
            "CPU 3",
            "CPU 1:",
            "Stack:",
        ] {
            assert!(is_arch_noise(t), "{t}");
        }
        for t in ["r10", "rcu: foo", "1f40:", "ff60: c0b01f7 x", "CPU 3 stuck"] {
            assert!(!is_arch_noise(t), "{t}");
        }
    }
}
