//! Kernel log reports that print task stacks: `show_state()` (SysRq-t/-w),
//! hung-task reports, RCU stall reports, NMI backtraces, `dump_stack()`.
//!
//! Sources of the grammar: `kernel/sched/core.c: sched_show_task()` (task
//! headers), `arch/x86/kernel/dumpstack.c: show_trace_log_lvl()` (call traces,
//! `? ` marks, stack-type sections), `arch/x86/kernel/process_64.c` and
//! `dumpstack.c: show_ip()/show_regs()` (`RIP:` lines), `lib/dump_stack.c:
//! dump_stack_print_info()` (`CPU: N PID: P Comm: C` lines),
//! `kernel/hung_task.c: check_hung_task()`, `lib/nmi_backtrace.c`,
//! `arch/arm64/kernel/stacktrace.c` (`Call trace:`), `kernel/printk/printk.c`
//! (line prefixes).
//!
//! The parser is a line machine:
//! 1. **Prefixes** are stripped first, in any combination: `<6>` log level,
//!    `[  123.456789]` timestamp, `[ T123]`/`[ C1]` caller id
//!    (`CONFIG_PRINTK_CALLER`), `dmesg -T` `[Mon Nov 26 10:00:00 2026]`,
//!    syslog `Nov 26 10:00:00 host kernel:` and ISO
//!    `2026-11-26T10:00:00+0000 host kernel:` forms, or a bare `kernel:`.
//!    Leading blanks are then ignored (journald drops some, `pr_cont` adds some).
//! 2. **Task headers** open a task: `task:COMM state:S ... pid:N [tgid:N]
//!    ppid:N [task_flags:0xF] flags:0xF` (5.9+), the column form `COMM STATE
//!    [PC|running task] STACKFREE PID PPID 0xFLAGS` (≤ 5.8, read from the right
//!    so that `D28344` and vendor tails parse), `CPU: N [UID: U] PID: P Comm: C`
//!    (a `dump_stack()` of the running task: `on_cpu = true`), and
//!    `NMI backtrace for cpu N skipped: idling at SYM` (the idle task).
//!    SysRq-t's `running task` is runnable (`task_is_running()`), not on a
//!    CPU; the runqueue dump after the task list (`cpu#N, …`, `runnable
//!    tasks:`, kernel/sched/debug.c) names each CPU's current task in its
//!    `>R` row, which puts that task (if runnable) on that CPU.
//!    `INFO: task COMM:PID blocked for more than N seconds` is kept aside and
//!    opens a task only when a call trace follows without a header.
//! 3. **Call traces**: `Call Trace:`/`Call trace:`/`Backtrace:` start one (a
//!    trace with no header opens an anonymous task); frames are
//!    `[[<addr>] ][? ]sym+0xoff/0xsize[ [mod]][ (T)][ file:line]`, raw `0xADDR`,
//!    and syzbot's `name file:line [inline]`. `<IRQ>`, `<SOFTIRQ>`, `<NMI>`,
//!    `<#DF>`… open a section (its frames get that context), `</…>`, `<EOI>`,
//!    `<EOE>` and `<TASK>` return to the task; pre-4.9 kernels put the marker
//!    on the same line as a frame. `<Same stack as pid N>` (a vendor dedup
//!    patch) truncates the task. 2.6.1x x86_64 frames put the module in
//!    front (`:jbd2:name+0x1/0x2`); riscv and mips print the old x86 shape.
//!    Only when a line is no such frame (nor any line below), the other
//!    architectures' shapes are tried ([`super::archtrace`]): ARM32's
//!    `[<a>] (f) from [<b>] (g+0x1/0x2)` and `f from g+0x1/0x2` pairs (no
//!    `Call trace:` line: frames follow the header; each line's function is
//!    a frame, the last line's caller too, and a caller the next line does
//!    not name again is a lost frame), powerpc's `[sp] [lr] sym` with
//!    `(unreliable)` (a `? ` frame) and `--- interrupt: N at SYM` (the
//!    interrupted instruction, a frame), s390's `([<addr>] sym)` (unreliable).
//!    `Pid: P, comm: C` (2.6/3.x `__show_regs()`) and `Process C (pid: P, …)`
//!    (ARM `__die()`, 2.6 x86) are headers of the running task like `CPU:`.
//! 4. **Registers**: `RIP: 0033:` / `EIP: 0073:` (user mode) set
//!    `user_regs`; a kernel-mode `RIP: 0010:SYM` (or arm64 `pc : SYM`) is
//!    where the task was interrupted, so it is pushed as a frame, in the
//!    position it was printed (an exact IP, not a return address). Other
//!    register, `Code:`, lockdep, hung-task, RCU-stall and NMI lines, and raw
//!    stack words, are understood and ignored; so are ARM's register,
//!    `Exception stack(…)`/`Stack: (…)` memory-dump and frame-pointer
//!    `r4:…` lines, powerpc's `NIP`/`GPRnn`/`REGS` lines, s390's `Krnl` lines
//!    and the word after `Last Breaking-Event-Address:`, mips' `Stack :`.
//!    A release is the first token after `Tainted:` that is not a group of
//!    taint letters (`G   W  OE  4.4.0` names `4.4.0`).
//! 5. Anything else is **skipped and counted** — including console text glued
//!    in front of a printk prefix (`localhost login: [ 43.9][ C6] sysrq: …`),
//!    whose foreign part is counted while the rest is parsed.
//!
//! `pid` is what the header prints under that name: the kernel's task id,
//! i.e. the thread id, so `tid == pid` here and `tgid` (6.6+) is the process.

use super::archtrace;
use super::ksym::{parse_symbol, Symbol};
use super::lines::{
    bracket_address, parse_dec, parse_hex, parse_id, scan_dec, scan_hex, trim_end_ws,
    trim_start_ws, Lines,
};
use super::procsnap::PF_KTHREAD;
use super::{
    Dump, DumpBuilder, Format, FrameContext, FrameRef, FrameSite, StackStatus, TaskHeader,
    TaskLoss, NO_ID,
};
use memchr::memchr_iter;
use memchr::memmem;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::HashSet;
use std::sync::LazyLock;

// ---------------------------------------------------------------------------
// Prefixes

/// `<N>` (console log level).
fn level_len(b: &[u8]) -> Option<usize> {
    let (_, n) = scan_dec(b.get(1..)?)?;
    (b.get(1 + n) == Some(&b'>')).then_some(n + 2)
}

/// The length of the decimal number `b` starts with, as [`scan_dec`] reads it
/// (`None`: no digit, or past `u64`), without computing its value when it
/// cannot overflow (up to 19 digits: every timestamp).
#[inline]
fn dec_len(b: &[u8]) -> Option<usize> {
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    match n {
        0 => None,
        1..=19 => Some(n),
        _ => scan_dec(b).map(|(_, n)| n),
    }
}

/// `[  123.456]` (timestamp) or `[ T123]` / `[ C1]` (caller id).
fn bracket_prefix_len(b: &[u8]) -> Option<usize> {
    let mut i = 1;
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    if i < b.len() && (b[i] == b'T' || b[i] == b'C') {
        i += 1 + dec_len(&b[i + 1..])?;
    } else {
        i += dec_len(&b[i..])?;
        if b.get(i) != Some(&b'.') {
            return None;
        }
        i += 1 + dec_len(&b[i + 1..])?;
    }
    (b.get(i) == Some(&b']')).then_some(i + 1)
}

/// `dmesg -T`: `[Mon Nov 26 10:00:00 2026]`.
fn ctime_prefix_len(b: &[u8]) -> Option<usize> {
    if b.len() < 26 || !b[1].is_ascii_uppercase() || b[4] != b' ' || b[8] != b' ' {
        return None;
    }
    let close = b[..32.min(b.len())].iter().position(|&c| c == b']')?;
    // `... hh:mm:ss yyyy]`
    (close >= 25 && b[close - 5] == b' ' && b[close - 11] == b':').then_some(close + 1)
}

/// `host kernel:` after a syslog date: the length up to the colon's end.
fn host_kernel_len(b: &[u8], date_len: usize) -> Option<usize> {
    let rest = b.get(date_len..)?;
    let host_end = rest.iter().position(|&c| c == b' ')?;
    let after = &rest[host_end + 1..];
    after
        .starts_with(b"kernel:")
        .then_some(date_len + host_end + 1 + "kernel:".len())
}

/// Syslog (`Nov 26 10:00:00 host kernel:`) or ISO
/// (`2026-11-26T10:00:00+0000 host kernel:`) journald prefixes.
fn syslog_prefix_len(b: &[u8]) -> Option<usize> {
    if b.len() > 16
        && b[0].is_ascii_uppercase()
        && b[3] == b' '
        && b[6] == b' '
        && b[9] == b':'
        && b[12] == b':'
        && b[15] == b' '
    {
        return host_kernel_len(b, 16);
    }
    if b.len() > 20 && b[0].is_ascii_digit() && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' {
        let date_end = b.iter().position(|&c| c == b' ')?;
        return host_kernel_len(b, date_end + 1);
    }
    None
}

/// The message of a log line: every prefix stripped, leading blanks dropped.
fn strip_prefix(line: &str) -> &str {
    let mut s = trim_start_ws(line);
    loop {
        let b = s.as_bytes();
        let n = match b.first() {
            Some(b'<') => level_len(b),
            Some(b'[') => bracket_prefix_len(b).or_else(|| ctime_prefix_len(b)),
            Some(b'k') => b.starts_with(b"kernel:").then_some(7),
            Some(c) if c.is_ascii_uppercase() || c.is_ascii_digit() => syslog_prefix_len(b),
            _ => None,
        };
        match n {
            Some(n) => s = trim_start_ws(&s[n..]),
            None => return s,
        }
    }
}

/// Where a printk prefix starts inside `t` (console text glued in front of a
/// log line), if anywhere after its first byte.
fn glued_prefix_at(t: &str) -> Option<usize> {
    memchr_iter(b'[', t.as_bytes())
        .filter(|&i| i > 0)
        .find(|&i| bracket_prefix_len(&t.as_bytes()[i..]).is_some())
}

// ---------------------------------------------------------------------------
// Small token helpers

/// The last whitespace-separated token of `s` and what precedes it (trimmed).
fn pop_token(s: &str) -> Option<(&str, &str)> {
    let s = trim_end_ws(s);
    if s.is_empty() {
        return None;
    }
    let start = s.rfind([' ', '\t']).map_or(0, |i| i + 1);
    Some((trim_end_ws(&s[..start]), &s[start..]))
}

/// `path/file.c:123` or `file.c:12:3` (syzbot / lineinfo source positions).
fn is_file_line(token: &str) -> bool {
    let mut parts = token.rsplitn(3, ':');
    let last = parts.next().unwrap_or("");
    if last.is_empty() || !last.bytes().all(|c| c.is_ascii_digit()) {
        return false;
    }
    match parts.next() {
        Some(p) if p.bytes().all(|c| c.is_ascii_digit()) && !p.is_empty() => {
            parts.next().is_some_and(|f| !f.is_empty())
        }
        Some(p) => !p.is_empty(),
        None => false,
    }
}

/// What may follow a frame's symbol: arm64's `(T)` unwind-source marks, a
/// `(file:line)` group, syzbot's `file:line`.
fn tail_is_benign(tail: &str) -> bool {
    tail.split_whitespace()
        .all(|tok| (tok.starts_with('(') && tok.ends_with(')')) || is_file_line(tok))
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'$'))
}

/// The release in `Not tainted 6.1.0 #1` / `Tainted: G   W  OE  6.1.0 #1`
/// / `Not tainted  (3.0.8 #1)` (ARM and i386 2.6/3.x): the first token that
/// is not a group of taint flags (`print_tainted()` prints one upper-case
/// letter per flag, blanks for the flags not set, so `OE` is two flags),
/// without the parentheses older kernels put around it.
fn release_after(s: &str) -> Option<&str> {
    s.split_whitespace()
        .find(|t| !t.bytes().all(|c| c.is_ascii_uppercase()))
        .map(|t| t.trim_start_matches('(').trim_end_matches(')'))
        .filter(|t| !t.is_empty() && !t.starts_with('#'))
}

/// `ainted`: in both `Not tainted ` and `Tainted: `. Most lines hold neither,
/// and one prebuilt searcher rejects them without building two per line.
static AINTED: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new("ainted"));

/// The kernel release a line names, if any.
fn release_in(t: &str) -> Option<&str> {
    if AINTED.find(t.as_bytes()).is_none() {
        return t
            .strip_prefix("Linux version ")
            .and_then(|r| r.split_whitespace().next());
    }
    if let Some(i) = t.find("Not tainted ") {
        return release_after(&t[i + "Not tainted ".len()..]);
    }
    if let Some(i) = t.find("Tainted: ") {
        return release_after(&t[i + "Tainted: ".len()..]);
    }
    t.strip_prefix("Linux version ")
        .and_then(|r| r.split_whitespace().next())
}

// ---------------------------------------------------------------------------
// Headers

/// `task:COMM state:S[  running task    ] stack:N pid:N [tgid:N] ppid:N
/// [task_flags:0xF] flags:0xF` — 5.9 and later (`sched_show_task`).
fn parse_task_header(t: &str, line: usize) -> Option<(TaskHeader, &str)> {
    let rest = t.strip_prefix("task:")?;
    let cut = rest.find(" state:")?;
    let comm = trim_end_ws(&rest[..cut]);
    let rest = &rest[cut + " state:".len()..];
    let state = rest.chars().next().filter(|c| !c.is_whitespace())?;
    let mut h = TaskHeader {
        state: Some(state),
        line,
        ..TaskHeader::default()
    };
    let mut tokens = rest[state.len_utf8()..].split_whitespace().peekable();
    while let Some(tok) = tokens.next() {
        if tok == "running" && tokens.peek() == Some(&"task") {
            // `task_is_running()`: runnable, not necessarily on a CPU
            // (kernel/sched/core.c sched_show_task); on-CPU needs evidence.
            tokens.next();
            continue;
        }
        let Some((key, mut value)) = tok.split_once(':') else {
            continue;
        };
        if value.is_empty() {
            // `pid:    1` (5.9's right-justified columns)
            value = tokens.next().unwrap_or("");
        }
        match key {
            "pid" => h.pid = parse_id(value),
            "tgid" => h.tgid = parse_id(value),
            "ppid" => h.ppid = parse_id(value),
            "cpu" => {
                h.cpu =
                    parse_id(value).or_else(|| parse_hex(value).and_then(|v| i64::try_from(v).ok()))
            }
            "task_flags" => h.task_flags = parse_hex(value),
            "flags" => h.thread_flags = parse_hex(value),
            _ => {}
        }
    }
    h.pid?;
    h.tid = h.pid;
    h.kthread = h.task_flags.map(|f| f & PF_KTHREAD != 0);
    Some((h, comm))
}

/// `COMM STATE[ PC| running task[ on cpu N]] STACKFREE PID PPID 0xFLAGS[ N]` —
/// the column header of kernels up to 5.8, read from the right: the state may
/// be glued to the stack-free count (`D28344`) and vendors append fields.
fn parse_column_header(t: &str, line: usize) -> Option<(TaskHeader, &str)> {
    let (mut s, mut last) = pop_token(t)?;
    if !last.starts_with("0x") && parse_dec(last).is_some() {
        (s, last) = pop_token(s)?; // vendor tail (e.g. last arrival time)
    }
    let flags = parse_hex(last.strip_prefix("0x")?)?;
    let (s, ppid) = pop_token(s)?;
    let (s, pid) = pop_token(s)?;
    let (ppid, pid) = (parse_id(ppid)?, parse_id(pid)?);
    let (mut s, stack) = pop_token(s)?;
    let mut h = TaskHeader {
        pid: Some(pid),
        tid: Some(pid),
        ppid: Some(ppid),
        thread_flags: Some(flags),
        line,
        ..TaskHeader::default()
    };
    let state = if parse_dec(stack).is_some() {
        // `... R running task on cpu   0     0  ...` (vendor) / `running task`
        if let Some((s1, cpu)) = pop_token(s) {
            if let (Some(cpu), Some((s2, "cpu"))) = (parse_id(cpu), pop_token(s1)) {
                if let Some((s3, "on")) = pop_token(s2) {
                    h.cpu = Some(cpu);
                    s = s3;
                }
            }
        }
        match pop_token(s) {
            Some((s1, "task")) => {
                let (s2, running) = pop_token(s1)?;
                if running != "running" {
                    return None;
                }
                // Runnable (the state is R): on a CPU or waiting for one.
                s = s2;
            }
            Some((s1, pc)) if (pc.len() == 16 || pc.len() == 8) && parse_hex(pc).is_some() => {
                s = s1
            }
            _ => {}
        }
        let (s1, state) = pop_token(s)?;
        s = s1;
        state
    } else {
        // `D28344`: the state letter glued to the stack-free count
        let (state, free) = stack.split_at(1);
        parse_dec(free)?;
        state
    };
    let mut chars = state.chars();
    let state = chars.next().filter(char::is_ascii_alphabetic)?;
    if chars.next().is_some() || s.is_empty() || s.chars().count() > 15 {
        return None;
    }
    h.state = Some(state);
    Some((h, s))
}

/// `CPU: N [UID: U] PID: P Comm: COMM Not tainted|Tainted: ...` —
/// `dump_stack_print_info()`: the task running on that CPU.
fn parse_cpu_header(t: &str, line: usize) -> Option<(TaskHeader, &str)> {
    let rest = t.strip_prefix("CPU: ")?;
    let (cpu, _) = scan_dec(rest.as_bytes())?;
    let pid_at = rest.find(" PID: ")?;
    let after = &rest[pid_at + " PID: ".len()..];
    let (pid, _) = scan_dec(after.as_bytes())?;
    let comm_at = after.find(" Comm: ")?;
    let comm = &after[comm_at + " Comm: ".len()..];
    let end = [" Not tainted", " Tainted:"]
        .iter()
        .filter_map(|m| comm.find(m))
        .min()
        .unwrap_or(comm.len());
    let pid = i64::try_from(pid).ok()?;
    let h = TaskHeader {
        pid: Some(pid),
        tid: Some(pid),
        cpu: i64::try_from(cpu).ok(),
        on_cpu: Some(true),
        line,
        ..TaskHeader::default()
    };
    Some((h, trim_end_ws(&comm[..end])))
}

/// `Pid: P, comm: COMM Not tainted|Tainted: ... RELEASE ...` — the 2.6/3.x
/// `__show_regs()` line (`arch/x86/kernel/process_64.c`, v2.6.32): the task
/// whose registers follow, running on its CPU.
fn parse_pid_header(t: &str, line: usize) -> Option<(TaskHeader, &str)> {
    let rest = t.strip_prefix("Pid: ")?;
    let (pid, n) = scan_dec(rest.as_bytes())?;
    let comm = rest[n..].strip_prefix(", comm: ")?;
    let end = [" Not tainted", " Tainted:"]
        .iter()
        .filter_map(|m| comm.find(m))
        .min()
        .unwrap_or(comm.len());
    let comm = trim_end_ws(&comm[..end]);
    let pid = i64::try_from(pid).ok()?;
    let h = TaskHeader {
        pid: Some(pid),
        tid: Some(pid),
        on_cpu: Some(true),
        line,
        ..TaskHeader::default()
    };
    (!comm.is_empty()).then_some((h, comm))
}

/// `Process COMM (pid: P, stack limit = 0x…)` (ARM `__die()`) or
/// `Process COMM (pid: P, threadinfo …, task …)` (2.6 x86 `show_registers()`):
/// `(pid, comm)` of the task that died, running on its CPU.
fn parse_process_line(t: &str) -> Option<(i64, &str)> {
    let rest = t.strip_prefix("Process ")?;
    let at = rest.find(" (pid: ")?;
    let (pid, n) = scan_dec(&rest.as_bytes()[at + " (pid: ".len()..])?;
    let next = rest.as_bytes().get(at + " (pid: ".len() + n)?;
    if !matches!(next, b',' | b')') || at == 0 {
        return None;
    }
    Some((i64::try_from(pid).ok()?, &rest[..at]))
}

/// `INFO: task COMM:PID blocked for more than N seconds.` (and the newer
/// `blocked in I/O wait for more than`): `(comm, pid)`.
fn parse_hung_info(t: &str) -> Option<(&str, i64)> {
    let rest = t.strip_prefix("INFO: task ")?;
    let cut = rest
        .find(" blocked for more than")
        .or_else(|| rest.find(" blocked in I/O wait"))?;
    let (comm, pid) = rest[..cut].rsplit_once(':')?;
    Some((comm, parse_id(pid)?))
}

// ---------------------------------------------------------------------------
// Recognised non-stack lines

const NOISE_PREFIXES: &[&str] = &[
    "\"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\"",
    "Sending NMI",
    "NMI backtrace for cpu",
    "Hardware name:",
    "Workqueue:",
    "task: ",
    "sysrq: ",
    "SysRq : ",
    "Showing all locks held",
    "Showing busy workqueues",
    "INFO: lockdep is turned off",
    "INFO: task ",
    "INFO: rcu_",
    "rcu: ",
    "(detected by ",
    "All QSes seen",
    "Code: ",
    "Modules linked in:",
    "lr : ",
    "sp : ",
    "pstate: ",
];

/// Whether `t` starts with one of [`NOISE_PREFIXES`]: the first byte is
/// compared before the rest, so most lines call no `memcmp` at all.
fn is_noise(t: &str) -> bool {
    let Some(&first) = t.as_bytes().first() else {
        return false;
    };
    NOISE_PREFIXES
        .iter()
        .any(|p| p.as_bytes()[0] == first && t.starts_with(p))
}

/// x86 register names printed by `__show_regs()` (`RIP:` is handled apart).
fn is_register_line(t: &str) -> bool {
    let Some(colon) = t.as_bytes().iter().take(9).position(|&c| c == b':') else {
        return false;
    };
    let name = &t[..colon];
    let b = name.as_bytes();
    let known = matches!(
        name,
        "FS" | "GS" | "CS" | "DS" | "ES" | "SS" | "PKRU" | "EFLAGS" | "ORIG_RAX"
    ) || (b.len() == 3
        && (b[0] == b'R' || b[0] == b'E')
        && b[1..].iter().all(u8::is_ascii_alphanumeric))
        || (b.len() == 3
            && (name.starts_with("CR") || name.starts_with("DR"))
            && b[2].is_ascii_digit())
        || (b.len() >= 2 && b[0] == b'x' && b[1..].iter().all(u8::is_ascii_digit)); // arm64 x0..x29
    known && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
}

/// `1 lock held by comm/pid:`, `no locks held by`, `#0: ... at: sym`, `====`.
fn is_lockdep_line(t: &str) -> bool {
    let b = t.as_bytes();
    if b[0] == b'#' {
        return scan_dec(&b[1..]).is_some_and(|(_, n)| b.get(1 + n) == Some(&b':'));
    }
    if b.iter().all(|&c| c == b'=') {
        return true;
    }
    t.contains(" lock held by ") || t.contains(" locks held by ")
}

/// Raw stack words printed before `Call Trace:` by ≤ 4.9 kernels.
fn is_stack_words(t: &str) -> bool {
    let mut any = false;
    for tok in t.split_whitespace() {
        if !(tok.len() == 16 || tok.len() == 8)
            || scan_hex(tok.as_bytes()).map(|(_, n)| n) != Some(tok.len())
        {
            return false;
        }
        any = true;
    }
    any
}

/// `task: ffff8801d85697c0 ti: …` / `task: … task.stack: …`: the pointer
/// line older `show_regs_print_info()` prints under a `CPU:` header (up to
/// 4.x), not a task header.
fn is_task_pointer_line(t: &str) -> bool {
    t.strip_prefix("task: ")
        .and_then(|rest| scan_hex(rest.as_bytes()))
        .is_some_and(|(_, digits)| digits >= 8)
}

/// The `  task                        PC stack   pid father` column title.
fn is_column_title(t: &str) -> bool {
    let t = trim_end_ws(t);
    // 2.6.x print "sibling" above the last three columns of their title.
    t == "sibling"
        || t.starts_with("task ")
            && (t.ends_with("pid father") || t.ends_with("pid father child younger older"))
}

/// The 2.6.x `show_task()` line (kernel/sched.c, up to about 2.6.24):
/// `%-13.13s %c` comm and state, the saved PC (or `running task`), free
/// stack, pid, parent pid, then the eldest child, younger and older sibling
/// pids when there are, and `(L-TLB)` — no `mm`: a kernel thread — or
/// `(NOTLB)`. Read from the left: the comm is exactly 13 columns.
fn parse_show_task_26(t: &str, line: usize) -> Option<(TaskHeader, &str)> {
    let body = trim_end_ws(t);
    let (body, kthread) = if let Some(b) = body.strip_suffix("(L-TLB)") {
        (b, true)
    } else {
        (body.strip_suffix("(NOTLB)")?, false)
    };
    let bytes = body.as_bytes();
    if bytes.len() < 16 || bytes[13] != b' ' || !body.is_char_boundary(13) {
        return None;
    }
    let comm = trim_end_ws(&body[..13]);
    let state = char::from(bytes[14]);
    if comm.is_empty() || !state.is_ascii_alphabetic() || bytes[15] != b' ' {
        return None;
    }
    let mut words = body[16..].split_whitespace();
    match words.next()? {
        "running" => {
            // 64-bit prints `running task`, 32-bit `running`: runnable
            // (`p->state == TASK_RUNNING`), on a CPU or waiting for one.
            let mut peek = words.clone();
            if peek.next() == Some("task") {
                words = peek;
            }
        }
        pc if (pc.len() == 16 || pc.len() == 8) && parse_hex(pc).is_some() => {}
        _ => return None,
    }
    parse_dec(words.next()?)?; // free stack
    let pid = parse_id(words.next()?)?;
    let ppid = parse_id(words.next()?)?;
    // Up to three relatives' pids, nothing else.
    let relatives: Vec<_> = words.collect();
    if relatives.len() > 3 || relatives.iter().any(|w| parse_id(w).is_none()) {
        return None;
    }
    let h = TaskHeader {
        pid: Some(pid),
        tid: Some(pid),
        ppid: Some(ppid),
        state: Some(state),
        kthread: Some(kthread),
        line,
        ..TaskHeader::default()
    };
    Some((h, comm))
}

// ---------------------------------------------------------------------------
// The line machine

/// What to do with a symbol token once read.
struct Parsed<'a> {
    symbol: Symbol<'a>,
    inlined: bool,
}

/// `[? ]sym...` or syzbot's `name file:line [inline]`, with its tail checked.
fn parse_frame_body(s: &str) -> Option<(Parsed<'_>, bool)> {
    let (s, reliable) = match s.strip_prefix("? ") {
        Some(rest) => (rest, false),
        None => (s, true),
    };
    if let Some(body) = trim_end_ws(s).strip_suffix(" [inline]") {
        let (name, place) = body.split_once(' ')?;
        if !is_identifier(name) || !is_file_line(place.trim()) {
            return None;
        }
        let symbol = Symbol::Named {
            name,
            offset: None,
            size: None,
            module: None,
        };
        return Some((
            Parsed {
                symbol,
                inlined: true,
            },
            reliable,
        ));
    }
    let (symbol, tail) = parse_symbol(s)?;
    if !symbol.is_kernel_shaped() || !tail_is_benign(tail) {
        return None;
    }
    Some((
        Parsed {
            symbol,
            inlined: false,
        },
        reliable,
    ))
}

fn frame_ref<'a>(
    parsed: &Parsed<'a>,
    address: Option<u64>,
    reliable: bool,
    context: FrameContext,
    line: usize,
) -> FrameRef<'a> {
    let mut f = FrameRef {
        address,
        reliable,
        context,
        inlined: parsed.inlined,
        line,
        ..FrameRef::default()
    };
    match parsed.symbol {
        Symbol::Raw(addr) => f.address = f.address.or(Some(addr)),
        Symbol::Named {
            name,
            offset,
            size,
            module,
        } => {
            f.function = Some(name);
            f.offset = offset;
            f.size = size;
            f.module = module;
        }
    }
    f
}

/// A stack-section marker's context: `<IRQ>`… open one, `</…>`, `<EOI>`,
/// `<EOE>` and `<TASK>` go back to the task (`dumpstack_64.c: stack_type_name`).
fn section_context(name: &str) -> Option<FrameContext> {
    if let Some(closed) = name.strip_prefix('/') {
        return is_section_name(closed).then_some(FrameContext::Task);
    }
    if !is_section_name(name) {
        return None;
    }
    Some(match name {
        "TASK" | "EOI" | "EOE" => FrameContext::Task,
        "IRQ" => FrameContext::Irq,
        "SOFTIRQ" => FrameContext::SoftIrq,
        "NMI" => FrameContext::Nmi,
        _ => FrameContext::Exception, // #DF #DB #MC #VC #HV ENTRY_TRAMPOLINE ...
    })
}

fn is_section_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'#' || c == b'_')
}

struct Machine<'a> {
    context: FrameContext,
    /// The open task has printed its `Call Trace:` line.
    trace_seen: bool,
    /// `INFO: task COMM:PID blocked…` not yet followed by its header.
    pending_hung: Option<(&'a str, i64, usize)>,
    same_stack_refs: usize,
    seen_tids: FxHashSet<i64>,
    /// Frame texts (without a `[<address>]`) read so far: their token,
    /// whether reliable (no `? `) and whether inlined.
    frame_tokens: FxHashMap<&'a str, (u32, bool, bool)>,
    repeated: usize,
    /// Every kernel release named so far, in order of first appearance.
    releases: Vec<&'a str>,
    /// The caller an ARM32 backtrace line named (`f from g+0x1/0x2`): the
    /// next line names it again as its function; pushed when the stack ends
    /// (it is then the outermost frame).
    pending_caller: Option<FrameRef<'a>>,
    /// The line of an s390 `Last Breaking-Event-Address:`: the frame-shaped
    /// line right after it is a branch address, not a frame.
    breaking_event_line: usize,
    /// The CPU whose runqueue the scheduler's debug dump is listing (`cpu#N,`).
    rq_cpu: Option<i64>,
    /// Inside its `runnable tasks:` table.
    rq_rows: bool,
    /// (pid, cpu) of each `>R` row: the task current on that CPU.
    currents: Vec<(i64, i64)>,
}

impl<'a> Machine<'a> {
    fn new() -> Self {
        Self {
            context: FrameContext::Task,
            trace_seen: false,
            pending_hung: None,
            same_stack_refs: 0,
            seen_tids: HashSet::default(),
            frame_tokens: FxHashMap::default(),
            repeated: 0,
            releases: Vec::new(),
            pending_caller: None,
            breaking_event_line: 0,
            rq_cpu: None,
            rq_rows: false,
            currents: Vec::new(),
        }
    }

    /// The scheduler's runqueue dump that follows SysRq-t on kernels with
    /// sched debug (kernel/sched/debug.c `print_rq`, `print_task`): `cpu#N, …`
    /// opens a CPU, `runnable tasks:` its table, whose rows are one per task
    /// of that runqueue — `>R` for the CPU's current task (`task_current()`),
    /// else a blank and the state letter, then the comm in 15 columns and the
    /// pid. The `>R` rows are the dump's own word on which task was on which
    /// CPU; the other rows are understood and not needed.
    fn runqueue_line(&mut self, t: &str) -> bool {
        if let Some(rest) = t.strip_prefix("cpu#") {
            let Some((cpu, len)) = scan_dec(rest.as_bytes()) else {
                return false;
            };
            if !rest[len..].starts_with(',') {
                return false;
            }
            self.rq_cpu = i64::try_from(cpu).ok();
            self.rq_rows = false;
            return true;
        }
        let Some(cpu) = self.rq_cpu else {
            return false;
        };
        if trim_end_ws(t) == "runnable tasks:" {
            self.rq_rows = true;
            return true;
        }
        if !self.rq_rows {
            return false;
        }
        let bytes = t.as_bytes();
        if bytes.iter().all(|&c| c == b'-') || (t.starts_with("S ") && t.contains(" PID ")) {
            return true; // the table's head and rule
        }
        if let Some(row) = t.strip_prefix(">R") {
            // `" %15s %5d "`: the pid is the first word after the comm's columns.
            if let Some(pid) = row.get(17..).and_then(|r| r.split_whitespace().next()) {
                if let Some(pid) = parse_id(pid) {
                    self.currents.push((pid, cpu));
                    return true;
                }
            }
            return false;
        }
        if bytes.len() > 2
            && b"RSDTtXZPIN".contains(&bytes[0])
            && bytes[1] == b' '
            && t.split_whitespace().count() >= 5
        {
            return true;
        }
        self.rq_rows = false;
        false
    }

    /// Ends an ARM32 chain: its last caller is the outermost frame.
    fn flush_caller(&mut self, b: &mut DumpBuilder) {
        if let Some(f) = self.pending_caller.take() {
            if b.has_open_task() && !b.stack_closed() {
                b.push_frame_ref(&f);
            }
        }
    }

    fn begin(&mut self, b: &mut DumpBuilder, (mut h, comm): (TaskHeader, &str)) {
        self.flush_caller(b);
        self.rq_cpu = None;
        self.rq_rows = false;
        // The header right after a hung-task report (its `Not tainted` and
        // `echo 0 >` lines between) is the reported task's, when the pids agree.
        if let Some((_, pid, at)) = self.pending_hung {
            h.hung |= h.pid == Some(pid) && h.line <= at + HUNG_REPORT_LINES;
        }
        if let Some(tid) = h.tid {
            if !self.seen_tids.insert(tid) {
                self.repeated += 1;
            }
        }
        b.begin_task(h, comm);
        self.context = FrameContext::Task;
        self.trace_seen = false;
        self.pending_hung = None;
    }

    /// Opens a task whose header is lost (see [`DumpBuilder::begin_unreadable_task`]).
    fn begin_unreadable(&mut self, b: &mut DumpBuilder, line: usize) {
        self.flush_caller(b);
        b.begin_unreadable_task(line);
        self.context = FrameContext::Task;
        self.trace_seen = false;
        self.pending_hung = None;
    }

    fn note_release(&mut self, b: &mut DumpBuilder, release: &'a str) {
        if !self.releases.contains(&release) {
            self.releases.push(release);
        }
        match b.kernel_release() {
            None => b.set_kernel_release(release),
            Some(known) if known != release => b.warn(&mixed_releases(known, release)),
            Some(_) => {}
        }
    }

    /// Pushes a frame to the open task. A frame with no task to take it
    /// (none yet, or the open one's `</TASK>` was read) belongs to a task
    /// whose header is lost: it opens an unreadable task, never one of its
    /// neighbours' stacks.
    /// Returns the frame's token.
    fn push(&mut self, b: &mut DumpBuilder, f: &FrameRef<'_>, line: usize) -> u32 {
        self.open_for_frame(b, line);
        b.push_frame_ref(f)
    }

    /// What [`Machine::push`] does before the frame goes in.
    fn open_for_frame(&mut self, b: &mut DumpBuilder, line: usize) {
        if self.pending_caller.is_some() {
            self.flush_caller(b);
        }
        if !b.has_open_task() || b.stack_closed() {
            self.begin_unreadable(b, line);
            self.trace_seen = true;
        }
    }

    /// A frame line; `false` when `t` is not one.
    fn frame_line(&mut self, t: &'a str, n: usize, b: &mut DumpBuilder) -> bool {
        let (address, body) = match bracket_address(t) {
            Some((addr, rest)) => ((addr != 0).then_some(addr), rest),
            None => (None, t),
        };
        let s390_branch = self.breaking_event_line != 0 && self.breaking_event_line + 1 == n;
        if address.is_none() {
            // A frame text read before: its token, without reading it again
            // (`parse_frame_body` and the token depend on the text alone).
            if let Some(&(token, reliable, inlined)) = self.frame_tokens.get(body) {
                if s390_branch {
                    return true;
                }
                self.open_for_frame(b, n);
                let context = self.context;
                let site = FrameSite {
                    reliable,
                    context,
                    inlined,
                    line: n,
                };
                b.push_token(token, site);
                return true;
            }
        }
        let Some((parsed, reliable)) = parse_frame_body(body) else {
            return false;
        };
        if s390_branch {
            return true; // s390: the last branch's address, not a frame
        }
        let f = frame_ref(&parsed, address, reliable, self.context, n);
        let token = self.push(b, &f, n);
        if address.is_none() {
            self.frame_tokens
                .insert(body, (token, reliable, parsed.inlined));
        }
        true
    }

    /// `<IRQ>`, `</NMI>`, `<IRQ>  [<addr>] frame` (pre-4.9), `<Same stack as pid N>`.
    fn angle_line(&mut self, t: &'a str, n: usize, raw: &str, b: &mut DumpBuilder) -> bool {
        if t.starts_with("<Same stack as pid ") {
            if b.has_open_task() {
                b.force_status(StackStatus::Truncated);
                self.same_stack_refs += 1;
            } else {
                b.skip(n, raw);
            }
            return true;
        }
        let Some(close) = t.find('>') else {
            return false;
        };
        let name = &t[1..close];
        let Some(context) = section_context(name) else {
            return false;
        };
        // x86 prints the task's own stack last, between `<TASK>` and
        // `</TASK>` (5.16+, arch/x86/kernel/dumpstack.c): a stack that opened
        // one ends with the other, or it was cut.
        if b.stack_closed() && !name.starts_with('/') {
            // A section opened after the open stack's `</TASK>`: a new stack
            // whose header is lost.
            self.begin_unreadable(b, n);
            self.trace_seen = true;
        }
        match name {
            "TASK" => b.expect_close(),
            "/TASK" => b.close_stack(n),
            _ => {}
        }
        self.context = context;
        let rest = trim_start_ws(&t[close + 1..]);
        rest.is_empty() || self.frame_line(rest, n, b)
    }

    /// `RIP: 0010:SYM`, `RIP: 0033:0x7f…`, `RIP: 0010:[<addr>]  [<addr>] SYM`, `EIP: …`.
    fn ip_line(&mut self, regs: &'a str, n: usize, raw: &str, b: &mut DumpBuilder) -> bool {
        let bytes = regs.as_bytes();
        let (cs, mut rest) = match scan_hex(bytes) {
            Some((cs, 4)) if bytes.get(4) == Some(&b':') => (Some(cs), &regs[5..]),
            _ => (None, regs),
        };
        let mut address = None;
        while let Some((addr, after)) = bracket_address(rest) {
            address = Some(addr);
            rest = after;
        }
        // User code selectors: 0x33 (64-bit), 0x23 (compat), 0x73 (i386).
        let user = matches!(cs, Some(0x33 | 0x23 | 0x73))
            || (cs.is_none() && address.is_some_and(|a| a < 1 << 63));
        if user {
            if let Some(h) = b.header_mut() {
                h.user_regs = true;
            }
            return true;
        }
        match parse_frame_body(rest) {
            Some((parsed, _)) => {
                let f = frame_ref(&parsed, address, true, self.context, n);
                self.push(b, &f, n);
            }
            None if address.is_some() => {
                let f = FrameRef {
                    address,
                    reliable: true,
                    context: self.context,
                    line: n,
                    ..FrameRef::default()
                };
                self.push(b, &f, n);
            }
            None => b.skip(n, raw),
        }
        true
    }

    /// arm64 `pc : SYM` (kernel) or `pc : 0000ffff…` (user).
    fn pc_line(&mut self, value: &'a str, n: usize, b: &mut DumpBuilder) -> bool {
        if let Some((parsed, _)) = parse_frame_body(value) {
            let f = frame_ref(&parsed, None, true, self.context, n);
            self.push(b, &f, n);
        } else if parse_hex(value.trim()).is_some_and(|pc| pc >> 48 == 0) {
            if let Some(h) = b.header_mut() {
                h.user_regs = true;
            }
        }
        true
    }

    fn call_trace(&mut self, n: usize, b: &mut DumpBuilder) {
        if let Some((comm, pid, line)) = self.pending_hung.take() {
            // The header was lost: the INFO line is all we know.
            self.begin(
                b,
                (
                    TaskHeader {
                        pid: Some(pid),
                        tid: Some(pid),
                        state: Some('D'),
                        line,
                        hung: true,
                        ..TaskHeader::default()
                    },
                    comm,
                ),
            );
        } else if !b.has_open_task() || self.trace_seen {
            // A second trace, or one with no header before it: the header of
            // its task was lost (or is in a form this reader does not know),
            // so who the task is and its state are unknown.
            self.begin_unreadable(b, n);
        }
        self.trace_seen = true;
        self.context = FrameContext::Task;
    }

    /// `NMI backtrace for cpu N skipped: idling at SYM`: the idle task.
    fn idle_line(&mut self, t: &'a str, n: usize, b: &mut DumpBuilder) -> bool {
        let Some(rest) = t.strip_prefix("NMI backtrace for cpu ") else {
            return false;
        };
        let Some((cpu, rest)) = rest.split_once(" skipped: idling at ") else {
            return false;
        };
        let Some(cpu) = parse_id(cpu) else {
            return false;
        };
        let idle = TaskHeader {
            pid: Some(0),
            tid: Some(0),
            state: Some('R'),
            kthread: Some(true),
            on_cpu: Some(true),
            cpu: Some(cpu),
            line: n,
            ..TaskHeader::default()
        };
        self.begin(b, (idle, &format!("swapper/{cpu}")));
        self.trace_seen = true;
        if let Some((parsed, _)) = parse_frame_body(rest) {
            let f = frame_ref(&parsed, None, true, FrameContext::Task, n);
            self.push(b, &f, n);
        }
        true
    }

    /// Every line that is neither a frame nor a section marker.
    fn other_line(&mut self, t: &'a str, n: usize, raw: &str, b: &mut DumpBuilder) -> bool {
        if self.runqueue_line(t) {
            return true;
        }
        if t.starts_with("task:") && !is_task_pointer_line(t) {
            // Only sched_show_task() prints `task:COMM` lines: one that does
            // not read is a damaged header, and its task is kept as unreadable.
            match parse_task_header(t, n) {
                Some(h) => self.begin(b, h),
                None => self.begin_unreadable(b, n),
            }
            return true;
        }
        if matches!(trim_end_ws(t), "Call Trace:" | "Call trace:" | "Backtrace:") {
            self.call_trace(n, b);
            return true;
        }
        if let Some(regs) = t.strip_prefix("RIP: ").or_else(|| t.strip_prefix("EIP: ")) {
            return self.ip_line(regs, n, raw, b);
        }
        if let Some(pc) = t.strip_prefix("pc : ") {
            return self.pc_line(pc, n, b);
        }
        if t.starts_with("CPU: ") {
            if let Some(h) = parse_cpu_header(t, n) {
                if let Some(release) = release_in(t) {
                    self.note_release(b, release);
                }
                self.begin(b, h);
                return true;
            }
        }
        if t.starts_with("Pid: ") {
            if let Some(h) = parse_pid_header(t, n) {
                if let Some(release) = release_in(t) {
                    self.note_release(b, release);
                }
                self.begin(b, h);
                return true;
            }
        }
        if let Some((comm, pid)) = parse_hung_info(t) {
            self.pending_hung = Some((comm, pid, n));
            return true;
        }
        if let Some(release) = release_in(t) {
            self.note_release(b, release);
            return true;
        }
        if self.idle_line(t, n, b) {
            return true;
        }
        if is_noise(t)
            || is_register_line(t)
            || is_lockdep_line(t)
            || is_stack_words(t)
            || is_column_title(t)
        {
            return true;
        }
        if let Some(h) = parse_column_header(t, n).or_else(|| parse_show_task_26(t, n)) {
            self.begin(b, h);
            return true;
        }
        false
    }

    /// Classifies one message (prefixes already stripped); `false` = unknown.
    fn message(&mut self, t: &'a str, n: usize, raw: &str, b: &mut DumpBuilder) -> bool {
        match t.as_bytes()[0] {
            b'<' => return self.angle_line(t, n, raw, b),
            b'#' => return is_lockdep_line(t),
            _ => {}
        }
        self.frame_line(t, n, b) || self.other_line(t, n, raw, b) || self.arch_line(t, n, b)
    }

    fn line(&mut self, raw: &'a str, n: usize, b: &mut DumpBuilder) {
        let t = strip_prefix(raw);
        if t.is_empty() || self.message(t, n, raw, b) {
            return;
        }
        if let Some(at) = glued_prefix_at(t) {
            let rest = strip_prefix(&t[at..]);
            if rest.is_empty() || self.message(rest, n, raw, b) {
                b.skip(n, &t[..at]); // the foreign text glued in front
                return;
            }
        }
        // Whether the line was a frame is the message's to say, not its
        // prefix's (an ISO timestamp's `+00:00` reads like an offset).
        b.skip_message(n, raw, t);
    }

    /// An ARM32 backtrace line (see [`archtrace`]): its function is pushed
    /// (with the offset the line before gave it as a caller), its caller
    /// kept for the next line. A caller the next line does not name again
    /// means lines between them are missing: the stack lost frames.
    fn arm_line(&mut self, t: &'a str, n: usize, b: &mut DumpBuilder) -> bool {
        let Some(line) = archtrace::parse_arm_line(t) else {
            return false;
        };
        if line.plain
            && matches!(line.caller.map(|c| c.symbol), Some(Symbol::Raw(_)))
            && !b.has_open_task()
        {
            return false; // `word from 0xADDR` outside any stack: prose
        }
        let context = self.context;
        let sym_frame = |s: archtrace::ArmSym<'a>| {
            let parsed = Parsed {
                symbol: s.symbol,
                inlined: false,
            };
            frame_ref(&parsed, s.address, true, context, n)
        };
        let mut callee = sym_frame(line.callee);
        if let Some(prev) = self.pending_caller.take() {
            let same = match (prev.function, callee.function) {
                (Some(p), Some(c)) => {
                    p == c && (prev.module == callee.module || prev.module.is_none())
                }
                _ => prev.address.is_some() && prev.address == callee.address,
            };
            if same {
                // One frame, printed twice: where it returns to is what the
                // line before said (the callee is `%ps`, or its entry).
                callee.address = prev.address.or(callee.address);
                callee.offset = prev.offset;
                callee.size = prev.size;
                callee.module = callee.module.or(prev.module);
            } else {
                self.push(b, &prev, prev.line);
                b.lose(TaskLoss::FRAME_LINE, n);
            }
        }
        self.push(b, &callee, n);
        self.pending_caller = line.caller.map(sym_frame);
        b.note_arch("arm");
        true
    }

    /// Lines of other architectures (see [`archtrace`]), tried after every
    /// other reading failed.
    fn arch_line(&mut self, t: &'a str, n: usize, b: &mut DumpBuilder) -> bool {
        match t.as_bytes()[0] {
            b'[' => {
                if let Some((ip, symbol, reliable)) = archtrace::parse_ppc_frame(t) {
                    let parsed = Parsed {
                        symbol,
                        inlined: false,
                    };
                    let f = frame_ref(&parsed, Some(ip), reliable, self.context, n);
                    self.push(b, &f, n);
                    b.note_arch("powerpc");
                    return true;
                }
                return self.arm_line(t, n, b);
            }
            b'(' => return self.s390_unreliable(t, n, b),
            b'-' => {
                return match archtrace::parse_ppc_interrupt(t) {
                    Some(Some(symbol)) => {
                        let parsed = Parsed {
                            symbol,
                            inlined: false,
                        };
                        let f = frame_ref(&parsed, None, true, self.context, n);
                        self.push(b, &f, n);
                        true
                    }
                    Some(None) => true,
                    None => false,
                };
            }
            _ => {}
        }
        if let Some(why) = t.strip_prefix("Backtrace: ") {
            // ARM's frame-pointer unwinder says why it prints no frames
            // (or, for an underflow, frames it does not vouch for).
            let why = trim_end_ws(why);
            let failed = why == "no frame pointer" || why.starts_with("invalid frame pointer");
            if !failed && why != "frame pointer underflow" {
                return false;
            }
            self.call_trace(n, b);
            b.force_status(StackStatus::UnwindFailure);
            return true;
        }
        if let Some((pid, comm)) = parse_process_line(t) {
            let same = b
                .header_mut()
                .is_some_and(|h| h.pid == Some(pid) && h.on_cpu == Some(true));
            if !same {
                let h = TaskHeader {
                    pid: Some(pid),
                    tid: Some(pid),
                    on_cpu: Some(true),
                    line: n,
                    ..TaskHeader::default()
                };
                self.begin(b, (h, comm));
            }
            return true;
        }
        if t.starts_with("Last Breaking-Event-Address:") {
            if trim_end_ws(t).len() == "Last Breaking-Event-Address:".len() {
                self.breaking_event_line = n;
            }
            return true;
        }
        archtrace::is_arch_noise(t) || self.arm_line(t, n, b)
    }

    /// s390's unreliable frame: `([<addr>] sym+0xoff/0xsize)`.
    fn s390_unreliable(&mut self, t: &'a str, n: usize, b: &mut DumpBuilder) -> bool {
        let Some(inner) = trim_end_ws(t)
            .strip_prefix('(')
            .and_then(|s| s.strip_suffix(')'))
        else {
            return false;
        };
        let Some((address, body)) = bracket_address(inner) else {
            return false;
        };
        let Some((parsed, _)) = parse_frame_body(body) else {
            return false;
        };
        let f = frame_ref(
            &parsed,
            (address != 0).then_some(address),
            false,
            self.context,
            n,
        );
        self.push(b, &f, n);
        b.note_arch("s390");
        true
    }

    fn finish(mut self, b: &mut DumpBuilder) {
        self.flush_caller(b);
        b.mark_current(&self.currents);
        for w in whole_dump_warnings(self.same_stack_refs, self.repeated) {
            b.warn(&w);
        }
    }
}

/// The warning for a log that names a second kernel release (the first is reported).
fn mixed_releases(first: &str, other: &str) -> String {
    format!("the dump mixes kernel releases ({first}, {other}); the first is reported")
}

/// The warnings only the whole dump can give: tasks whose stack is a
/// `<Same stack as pid N>` reference, and task headers seen twice.
fn whole_dump_warnings(same_stack_refs: usize, repeated: usize) -> Vec<String> {
    let mut out = Vec::new();
    if same_stack_refs > 0 {
        out.push(format!(
            "{same_stack_refs} task(s) print only '<Same stack as pid N>' (a vendor dedup \
             patch): their stacks are unknown"
        ));
    }
    if repeated > 0 {
        out.push(format!(
            "{repeated} task header(s) repeat a task already in the dump (e.g. a hung-task \
             report followed by SysRq-t): every occurrence is kept"
        ));
    }
    out
}

/// Whether a message opens or belongs to a stack report.
fn is_report_marker(t: &str) -> bool {
    matches!(trim_end_ws(t), "Call Trace:" | "Call trace:")
        || (t.starts_with("task:") && t.contains(" state:"))
        || parse_hung_info(t).is_some()
        || t.starts_with("NMI backtrace for cpu ")
        || t.starts_with("sysrq: Show")
        || t.starts_with("SysRq : Show")
        || arm_marker(t)
}

/// An ARM32 backtrace line naming its caller with an offset (ARM prints no
/// `Call trace:` line before its frames).
fn arm_marker(t: &str) -> bool {
    archtrace::parse_arm_line(t).is_some_and(|l| {
        l.caller.is_some_and(|c| {
            matches!(
                c.symbol,
                Symbol::Named {
                    offset: Some(_),
                    ..
                }
            )
        })
    })
}

/// Whether the text holds a kernel stack report: a call-trace line, a task
/// header, a hung-task line, an NMI backtrace or a SysRq dump, after prefix
/// stripping (also behind console text glued in front of a log line).
#[must_use]
pub fn looks_like(text: &str) -> bool {
    Lines::new(text).any(|(_, line)| {
        let t = strip_prefix(line);
        is_report_marker(t)
            || glued_prefix_at(t).is_some_and(|at| is_report_marker(strip_prefix(&t[at..])))
    })
}

/// Parses a kernel log; see the module docs.
pub fn parse(text: &str, b: &mut DumpBuilder) {
    let mut m = Machine::new();
    for (n, line) in Lines::new(text) {
        m.line(line, n, b);
    }
    m.flush_caller(b);
    b.end_task();
    m.finish(b);
}

// ---------------------------------------------------------------------------
// Parallel parse

/// Whether `line` is a 5.9+ `task:` header: after it the machine's state is
/// the same whatever came before (`Machine::begin` resets the section, the
/// trace and any pending hung-task line), so a chunk may start there with a
/// fresh machine. Counts kept across tasks (repeated tids, `<Same stack>`
/// references) and the kernel release are merged afterwards.
fn is_cut_line(line: &[u8]) -> bool {
    let Ok(line) = std::str::from_utf8(line) else {
        return false;
    };
    let t = strip_prefix(line);
    // `Machine::message` tries a frame before a header: a line that reads as
    // both (`task:f+0x1/0x2 state:1 …`) is a frame of the open task.
    t.starts_with("task:") && parse_task_header(t, 0).is_some() && parse_frame_body(t).is_none()
}

/// Lines from a hung-task report's `INFO: task` line to its task's header
/// (kernel/hung_task.c check_hung_task: the taint line and the `echo 0 >`
/// hint come between).
const HUNG_REPORT_LINES: usize = 3;

/// Whether the header after `before` belongs to a hung-task report (its
/// `INFO: task …` line is one of the three lines before it): a chunk must not
/// start there, or the report would not reach the task it names.
fn follows_hung_report(before: &[u8]) -> bool {
    let mut end = before.len();
    for _ in 0..HUNG_REPORT_LINES {
        let Some(stop) = end.checked_sub(1) else {
            return false;
        };
        let line_start = memchr::memrchr(b'\n', &before[..stop]).map_or(0, |i| i + 1);
        let line = std::str::from_utf8(&before[line_start..stop]).unwrap_or("");
        if strip_prefix(line).starts_with("INFO: task ") {
            return true;
        }
        end = line_start;
    }
    false
}

/// Cuts a kernel log into at most `parts` chunks, each later chunk starting
/// at a `task:` header line (see [`is_cut_line`]) at or after an even share
/// of the input. Fewer chunks when no such header lies past a target (older
/// header generations are never cut at).
#[must_use]
pub fn split_at_task_headers(data: &[u8], parts: usize) -> Vec<&[u8]> {
    let finder = memchr::memmem::Finder::new(b"task:");
    let mut chunks = Vec::with_capacity(parts.max(1));
    let mut start = 0;
    for k in 1..parts {
        let mut from = (data.len() / parts * k).max(start);
        let cut = loop {
            let Some(found) = finder.find(&data[from..]) else {
                break None;
            };
            let at = from + found;
            let line_start = memchr::memrchr(b'\n', &data[..at]).map_or(0, |i| i + 1);
            let line_end = memchr::memchr(b'\n', &data[at..]).map_or(data.len(), |i| at + i);
            if line_start > start
                && is_cut_line(&data[line_start..line_end])
                && !follows_hung_report(&data[start..line_start])
            {
                break Some(line_start);
            }
            from = at + 1;
        };
        let Some(cut) = cut else { break };
        chunks.push(&data[start..cut]);
        start = cut;
    }
    chunks.push(&data[start..]);
    chunks
}

/// What a chunk's parse leaves for the merge: its line count and the
/// machine's whole-dump counters.
struct ChunkEnd {
    lines: usize,
    same_stack_refs: usize,
    releases: Vec<String>,
    currents: Vec<(i64, i64)>,
}

/// Parses one chunk into `b` without the whole-dump warnings.
fn parse_chunk(text: &str, b: &mut DumpBuilder) -> ChunkEnd {
    let mut m = Machine::new();
    let mut lines = 0;
    for (n, line) in Lines::new(text) {
        m.line(line, n, b);
        lines = n;
    }
    m.flush_caller(b);
    b.end_task();
    ChunkEnd {
        lines,
        same_stack_refs: m.same_stack_refs,
        releases: m.releases.iter().map(|&r| r.to_owned()).collect(),
        currents: m.currents,
    }
}

/// Parses a kernel log given as consecutive chunks (from
/// [`split_at_task_headers`]), one thread per chunk, and merges them in order.
/// The result equals [`parse`] of the whole text: the kernel release, its
/// "mixes kernel releases" warnings and the repeat/reference counts are
/// computed for the whole log after the merge. `None` when a chunk is not
/// valid UTF-8 (the caller then decodes the whole text lossily).
#[must_use]
pub fn parse_chunks(chunks: &[&[u8]], reserve_for: usize) -> Option<Dump> {
    let mut b = DumpBuilder::new(Format::Dmesg);
    b.reserve(reserve_for / 150, reserve_for / 30);
    let (head, tails) = super::parse_chunks_with(chunks, Format::Dmesg, &mut b, parse_chunk);
    let mut end = head?;
    for tail in tails {
        let (more, dump) = tail?;
        b.append(dump, end.lines);
        end.lines += more.lines;
        end.same_stack_refs += more.same_stack_refs;
        end.currents.extend(more.currents);
        for r in more.releases {
            if !end.releases.contains(&r) {
                end.releases.push(r);
            }
        }
    }
    let mut d = b.finish();
    whole_log(&mut d, &end);
    Some(d)
}

/// What only the whole log knows, redone after a merge: the kernel release
/// (the first named) and one warning per other release, in order (a chunk
/// alone compared with its own first release); then [`Machine::finish`]'s
/// warnings, with a repeated task being one whose tid an earlier task had.
fn whole_log(d: &mut Dump, end: &ChunkEnd) {
    d.tasks.mark_current(&end.currents);
    let first = end.releases.first();
    d.kernel_release = first.cloned();
    let mixes = end
        .releases
        .iter()
        .skip(1)
        .map(|r| mixed_releases(first.expect("one"), r));
    let others = d
        .warnings
        .iter()
        .filter(|w| !w.starts_with("the dump mixes kernel releases"));
    d.warnings = mixes.chain(others.cloned()).collect();
    let mut seen = HashSet::new();
    let repeated = d
        .tasks
        .tid
        .iter()
        .filter(|&&tid| tid != NO_ID && !seen.insert(tid))
        .count();
    for w in whole_dump_warnings(end.same_stack_refs, repeated) {
        if !d.warnings.contains(&w) {
            d.warnings.push(w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Dump, Format, TaskLoss, NO_NAME};
    use super::*;

    macro_rules! sample {
        ($name:literal) => {
            include_str!(concat!("../../../../tests/data/", $name))
        };
    }

    fn run(text: &str) -> Dump {
        let mut b = DumpBuilder::new(Format::Dmesg);
        parse(text, &mut b);
        b.finish()
    }

    /// Every kernel-log sample, as the parse benchmark concatenates them.
    fn every_log() -> String {
        [
            sample!("hung-task-4.4-x86-addresses.txt"),
            sample!("hung-task-5.3-x86.txt"),
            sample!("hung-task-6.0-syzbot-symbolized.txt"),
            sample!("hung-task-6.18.txt"),
            sample!("hung-task-arm64-6.x-task-flags.txt"),
            sample!("rcu-stall-4.x-irq-eoi.txt"),
            sample!("rcu-stall-6.10-nmi.txt"),
            sample!("sysrq-t-5.7-orc-all-unreliable.txt"),
            sample!("sysrq-t-5.9-header-change-journald.txt"),
            sample!("sysrq-t-6.x-i915-modules.txt"),
            sample!("arm32-hung-task-4.19-unwind-verbose.txt"),
            sample!("arm32-oops-3.4-frame-pointer.txt"),
            sample!("arm32-sysrq-w-6.1-plain.txt"),
            sample!("soft-lockup-2.6.18-x86_64-module-prefix.txt"),
            sample!("hung-task-4.4-ubuntu-tainted-OE.txt"),
            sample!("ppc64le-hung-task-5.15-nmi.txt"),
            sample!("s390x-hung-task-4.19.txt"),
            sample!("riscv64-hung-task-5.10.txt"),
            sample!("riscv64-dump-stack-6.6.txt"),
            sample!("mips-hung-task-4.14-openwrt.txt"),
        ]
        .concat()
    }

    #[test]
    fn chunked_parse_equals_the_sequential_parse() {
        let unit = every_log();
        let mut merged = 0;
        for reps in [1usize, 2, 5] {
            let text = unit.repeat(reps);
            // Dropping leading lines moves every cut to another header.
            for skip in [0usize, 7, 120, 555] {
                let at = text.match_indices('\n').nth(skip).map_or(0, |(i, _)| i + 1);
                let t = &text[at..];
                let whole = run(t);
                for parts in 2..=6 {
                    let chunks = split_at_task_headers(t.as_bytes(), parts);
                    assert_eq!(chunks.concat(), t.as_bytes());
                    for chunk in &chunks[1..] {
                        let first = chunk.split(|&c| c == b'\n').next().unwrap();
                        assert!(is_cut_line(first), "{:?}", String::from_utf8_lossy(first));
                    }
                    if chunks.len() < 2 {
                        continue;
                    }
                    let d = parse_chunks(&chunks, t.len()).expect("UTF-8 chunks");
                    assert_eq!(d, whole, "reps {reps} skip {skip} parts {parts}");
                    merged += 1;
                }
            }
        }
        assert!(merged > 20, "only {merged} merged parses");
    }

    #[test]
    fn chunked_parse_counts_repeats_and_references_over_the_whole_log() {
        // A task seen in both chunks, and `<Same stack>` references in each.
        let block = "[ 1.0] task:kworker/0:1 state:I stack:0 pid:9 tgid:9 ppid:2 flags:0x4000\n\
                     [ 1.0] <Same stack as pid 8>\n";
        let text = block.repeat(8);
        let chunks = split_at_task_headers(text.as_bytes(), 3);
        assert_eq!(chunks.len(), 3);
        let d = parse_chunks(&chunks, text.len()).unwrap();
        assert_eq!(d, run(&text));
        assert!(d
            .warnings
            .iter()
            .any(|w| w.starts_with("8 task(s) print only")));
        assert!(d
            .warnings
            .iter()
            .any(|w| w.starts_with("7 task header(s) repeat")));
    }

    #[test]
    fn chunks_naming_other_releases_merge_like_the_whole_log() {
        let task = |release: &str, pid: u32| {
            format!(
                "task:a state:S stack:0 pid:{pid} ppid:0 flags:0x0\n Call Trace:\n  f+0x1/0x2\n\
                 CPU: 0 PID: {pid} Comm: a Not tainted {release} #1\n"
            )
        };
        let text = [
            ("6.1.0", 1),
            ("6.2.0", 2),
            ("6.1.0", 3),
            ("6.3.0", 4),
            ("6.2.0", 5),
        ]
        .iter()
        .map(|&(r, pid)| task(r, pid))
        .collect::<String>();
        let whole = run(&text);
        assert_eq!(whole.warnings.len(), 2 + 1, "{:?}", whole.warnings);
        for parts in 2..=5 {
            let chunks = split_at_task_headers(text.as_bytes(), parts);
            assert!(chunks.len() > 1);
            assert_eq!(
                parse_chunks(&chunks, text.len()).as_ref(),
                Some(&whole),
                "{parts}"
            );
        }
    }

    #[test]
    fn the_public_parse_is_the_same_on_any_number_of_threads() {
        let text = every_log().repeat(4);
        let one = super::super::parse_bytes_with(text.as_bytes(), None, 1).unwrap();
        assert_eq!(one.format, Some(Format::Dmesg));
        for threads in 2..=4 {
            let many = super::super::parse_bytes_with(text.as_bytes(), None, threads).unwrap();
            assert_eq!(many, one, "{threads} threads");
        }
        // Invalid UTF-8 in a chunk: the lossy sequential path, whatever `threads`.
        let mut bytes = text.into_bytes();
        let at = bytes.len() * 3 / 4;
        bytes[at] = 0xff;
        let lossy = super::super::parse_bytes_with(&bytes, None, 2).unwrap();
        assert_eq!(
            lossy,
            super::super::parse_bytes_with(&bytes, None, 1).unwrap()
        );
        assert!(lossy.warnings.iter().any(|w| w.contains("not valid UTF-8")));
    }

    /// Lines the mutation test inserts: every construct that carries state
    /// across lines (sections, pending hung-task lines, releases, registers,
    /// repeats, references), a header that also reads as a frame, noise, CRLF.
    const INSERTS: &[&str] = &[
        "[ 1.0] task:kworker/0:1 state:I stack:0 pid:9 tgid:9 ppid:2 flags:0x4000\n",
        "task:bash state:S stack:0 pid:100 tgid:100 ppid:1 task_flags:0x400100 flags:0x0\n",
        "task:f+0x1/0x2 state:1 stack:0 pid:9 ppid:2\n",
        "[ 2.0] INFO: task bash:100 blocked for more than 120 seconds.\n",
        "[ 2.0] Call Trace:\n",
        "[ 2.0]  <IRQ>\n",
        "[ 2.0]  </IRQ>\n",
        "[ 2.0]  <Same stack as pid 8>\n",
        "[ 2.0] CPU: 1 PID: 5 Comm: x Not tainted 6.1.0 #1\n",
        "[ 2.0] CPU: 1 PID: 5 Comm: x Not tainted 6.2.0 #1\n",
        "[ 2.0] Linux version 5.0.0 (x@y)\n",
        "[ 2.0] RIP: 0033:0x7f00\n",
        "[ 2.0] RIP: 0010:foo+0x1/0x2\n",
        "[ 2.0]  ? bar+0x1/0x2\n",
        "[ 2.0]  baz+0x1/0x2 [mod]\n",
        "[ 2.0] NMI backtrace for cpu 1 skipped: idling at intel_idle+0x1/0x2\n",
        "garbage line\n",
        "[ 2.0] kworker/0:1     I    0     9      2 0x80004000\n",
        "\n",
        "\r\n",
    ];

    #[test]
    fn mutated_logs_chunk_like_the_whole() {
        let unit = every_log();
        let mut state = 0x1234_5678_9abc_def1u64;
        let mut below = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut merged = 0;
        for round in 0..300 {
            let mut text = unit.repeat(1 + below(2));
            for _ in 0..below(60) {
                let at = below(text.len());
                let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                text.insert_str(line_start, INSERTS[below(INSERTS.len())]);
            }
            let whole = run(&text);
            for parts in [2, 3, 2 + below(6)] {
                let chunks = split_at_task_headers(text.as_bytes(), parts);
                if chunks.len() > 1 {
                    let d = parse_chunks(&chunks, text.len()).expect("UTF-8 chunks");
                    assert_eq!(d, whole, "round {round} parts {parts}");
                    merged += 1;
                }
            }
        }
        assert!(merged > 300, "only {merged} merged parses");
    }

    #[test]
    fn a_header_that_also_reads_as_a_frame_is_no_cut() {
        let text = "task:a state:S stack:0 pid:1 ppid:0 flags:0x0\n Call Trace:\n  f+0x1/0x2\n\
                    task:b+0x1/0x2 state:1 stack:0 pid:9 ppid:2\n  g+0x1/0x2\n";
        assert!(!is_cut_line(b"task:b+0x1/0x2 state:1 stack:0 pid:9 ppid:2"));
        assert_eq!(split_at_task_headers(text.as_bytes(), 2).len(), 1);
        assert_eq!(run(text).frame_count(), 3);
    }

    #[test]
    fn a_chunk_that_is_not_utf8_goes_back_to_the_sequential_parse() {
        let a = "task:a state:S stack:0 pid:1 ppid:0 flags:0x0\n Call Trace:\n  f+0x1/0x2\n";
        let bad: &[u8] = b"task:b state:S stack:0 pid:2 ppid:0 flags:0x0\n \xff\n";
        assert_eq!(
            parse_chunks(&[a.as_bytes(), bad], a.len() + bad.len()),
            None
        );
    }

    fn frames(d: &Dump, t: usize) -> Vec<String> {
        d.frames_of(t)
            .map(|i| {
                let name = d.name(d.frame_function(i)).unwrap_or("-");
                if d.frame_reliable[i] {
                    name.to_owned()
                } else {
                    format!("? {name}")
                }
            })
            .collect()
    }

    fn reliable(d: &Dump, t: usize) -> Vec<String> {
        frames(d, t)
            .into_iter()
            .filter(|f| !f.starts_with("? "))
            .collect()
    }

    #[test]
    fn dec_len_reads_as_scan_dec() {
        for s in [
            "",
            "x",
            "0",
            "5.1",
            "123456789012345678",
            "1234567890123456789",
            "18446744073709551615]",
            "18446744073709551616]",
            "99999999999999999999999",
        ] {
            let b = s.as_bytes();
            assert_eq!(dec_len(b), scan_dec(b).map(|(_, n)| n), "{s:?}");
        }
    }

    #[test]
    fn prefixes() {
        for (line, msg) in [
            (
                "[  416.737782]  __schedule+0x3cc/0xf50",
                "__schedule+0x3cc/0xf50",
            ),
            ("[  534.703301][   T23] INFO: x", "INFO: x"),
            ("[  146.941062][    C0] NMI", "NMI"),
            ("<6> [299.373970]  __schedule", "__schedule"),
            ("\tkernel: ? __schedule", "? __schedule"),
            ("Nov 26 10:00:01 vm kernel: task:a", "task:a"),
            ("2026-11-26T10:00:01+0000 vm kernel: [ 1.5] x", "x"),
            ("[Mon Nov 26 10:00:00 2026] Call Trace:", "Call Trace:"),
            (
                "[<ffffffff82a9df9c>] schedule",
                "[<ffffffff82a9df9c>] schedule",
            ),
            ("<IRQ>  [<ffff>] x", "<IRQ>  [<ffff>] x"),
        ] {
            assert_eq!(strip_prefix(line), msg, "{line:?}");
        }
        assert_eq!(glued_prefix_at("login: [ 43.9][ C6] sysrq"), Some(7));
    }

    #[test]
    fn headers_of_every_generation() {
        let (h, comm) = parse_task_header(
            "task:sh              state:D stack:0     pid:11816 tgid:11816 ppid:11757  task_flags:0x400000 flags:0x00080001",
            3,
        )
        .unwrap();
        assert_eq!(
            (comm, h.pid, h.tid, h.tgid, h.ppid),
            ("sh", Some(11816), Some(11816), Some(11816), Some(11757))
        );
        assert_eq!(
            (h.task_flags, h.thread_flags, h.kthread),
            (Some(0x40_0000), Some(0x8_0001), Some(false))
        );
        let (h, comm) = parse_task_header(
            "task:systemd         state:S stack:12920 pid:    1 ppid:     0 flags:0x00000000",
            1,
        )
        .unwrap();
        assert_eq!(
            (h.pid, h.ppid, h.kthread, comm),
            (Some(1), Some(0), None, "systemd")
        );
        let (h, comm) = parse_task_header(
            "task:a b            state:R  running task     stack:0 pid:7 ppid:2 flags:0x0",
            1,
        )
        .unwrap();
        // `running task` is runnable (R), not proof of a CPU.
        assert_eq!((comm, h.on_cpu), ("a b", None));
        let (h, comm) =
            parse_column_header("syz-executor865 D28344  1721   1719 0x00000000", 1).unwrap();
        assert_eq!(
            (comm, h.state, h.pid, h.ppid),
            ("syz-executor865", Some('D'), Some(1721), Some(1719))
        );
        let (h, comm) = parse_column_header(
            "init            D ffff88008ad8f5b0     0  2293      1 0x00000000",
            1,
        )
        .unwrap();
        assert_eq!((comm, h.state, h.pid), ("init", Some('D'), Some(2293)));
        let (h, comm) = parse_column_header(
            "bash            R  running task        0  1234      1 0x00000000",
            1,
        )
        .unwrap();
        assert_eq!((comm, h.on_cpu, h.pid), ("bash", None, Some(1234)));
        assert!(parse_column_header("RDX: 0000000000000000 RSI: 0000000000000001", 1).is_none());
        assert!(parse_column_header("this is a rather long comm S 1 2 3 0x0", 1).is_none());
        let (h, comm) = parse_cpu_header(
            "CPU: 1 UID: 0 PID: 31 Comm: khungtaskd Not tainted 6.18.44 #1 PREEMPT(none) ",
            1,
        )
        .unwrap();
        assert_eq!(
            (h.cpu, h.pid, comm, h.on_cpu),
            (Some(1), Some(31), "khungtaskd", Some(true))
        );
        assert_eq!(
            parse_hung_info("INFO: task kworker/u4:6:5166 blocked for more than 143 seconds."),
            Some(("kworker/u4:6", 5166))
        );
        assert_eq!(
            release_in("Tainted: G             L      syzkaller #0"),
            Some("syzkaller")
        );
        assert_eq!(release_in("Not tainted 5.3.0-rc5+ #27"), Some("5.3.0-rc5+"));
        assert_eq!(
            release_in("Linux version 6.1.0-13-amd64 (debian-kernel@lists.debian.org)"),
            Some("6.1.0-13-amd64")
        );
    }

    #[test]
    fn hung_task_6_18() {
        let d = run(sample!("hung-task-6.18.txt"));
        assert_eq!(d.kernel_release.as_deref(), Some("6.18.44-fc-v657"));
        assert_eq!(d.skipped_lines, 1, "the provenance line only");
        assert_eq!(d.task_count(), 4);
        let comms: Vec<_> = (0..d.task_count()).map(|t| d.comm(t)).collect();
        assert_eq!(comms, ["sh", "touch", "khungtaskd", "kdamond.0"]);
        let sh = &d.header(0);
        assert_eq!(
            (sh.pid, sh.tgid, sh.ppid, sh.state),
            (Some(11816), Some(11816), Some(11757), Some('D'))
        );
        assert_eq!(
            (sh.kthread, sh.on_cpu, sh.user_regs),
            (Some(false), None, true)
        );
        assert_eq!(
            reliable(&d, 0),
            [
                "__schedule",
                "schedule",
                "percpu_rwsem_wait",
                "__percpu_down_read",
                "mnt_want_write",
                "path_openat",
                "do_filp_open",
                "do_sys_openat2",
                "__x64_sys_openat",
                "do_syscall_64",
                "entry_SYSCALL_64_after_hwframe"
            ]
        );
        assert_eq!(frames(&d, 0).len(), 23);
        assert_eq!(frames(&d, 1).len(), 45);
        // NMI backtraces: the dumper and the interrupted kdamond, both on a CPU.
        assert_eq!(
            (d.header(2).pid, d.header(2).cpu, d.header(2).on_cpu),
            (Some(31), Some(1), Some(true))
        );
        assert!(frames(&d, 2).contains(&"nmi_cpu_backtrace.cold".to_owned()));
        let kdamond = d.frames_of(3);
        assert_eq!(
            d.name(d.frame_function(kdamond.start)),
            Some("__mem_cgroup_threshold")
        );
        assert_eq!(d.frame_offset(kdamond.start), 0x1b);
        assert!(!d.header(3).user_regs);
        assert!(d.stack_status.iter().all(|&s| s == StackStatus::Complete));
        assert!(d.frame_context.iter().all(|&c| c == FrameContext::Task));
    }

    #[test]
    fn hung_task_4_4_addresses_dedup_and_lockdep() {
        let d = run(sample!("hung-task-4.4-x86-addresses.txt"));
        assert_eq!(d.kernel_release.as_deref(), Some("4.4.132+"));
        // provenance + the "[... excerpt gap ...]" marker of the excerpt
        assert_eq!(d.skipped_lines, 2);
        assert_eq!(d.task_count(), 7);
        assert_eq!(d.header(0).pid, Some(2293));
        assert_eq!(d.header(0).thread_flags, Some(0));
        let first = d.frames_of(0).start;
        assert_eq!(d.frame_address(first), 0xffff_ffff_82a9_df9c);
        assert_eq!(d.name(d.frame_function(first)), Some("schedule"));
        assert_eq!(frames(&d, 0)[2], "? usleep_range");
        assert_eq!(frames(&d, 0).len(), 39);
        assert_eq!(
            reliable(&d, 0).last().map(String::as_str),
            Some("entry_SYSCALL_64_fastpath")
        );
        // the lockdep "#0: ... at: [<..>] tty_open" line is not a frame
        assert_eq!(d.frame_line[d.frames_of(0).end - 1], 48);
        let deduped: Vec<_> = (2..6)
            .map(|t| (d.header(t).pid, d.stack_status[t]))
            .collect();
        assert_eq!(
            deduped,
            [2295, 2296, 2297, 2298].map(|p| (Some(p), StackStatus::Truncated))
        );
        let nmi = 6;
        assert_eq!(
            (d.header(nmi).pid, d.comm(nmi)),
            (Some(2285), "syz-executor491")
        );
        let rip = d.frames_of(nmi).start;
        assert_eq!(d.name(d.frame_function(rip)), Some("io_serial_in"));
        assert_eq!(d.frame_address(rip), 0xffff_ffff_81f0_14b0);
        assert!(d.warnings.iter().any(|w| w.contains("Same stack")));
    }

    #[test]
    fn hung_task_5_3_glued_state_and_user_regs() {
        let d = run(sample!("hung-task-5.3-x86.txt"));
        assert_eq!(d.kernel_release.as_deref(), Some("5.3.0-rc5+"));
        assert_eq!(d.skipped_lines, 1);
        assert_eq!(d.task_count(), 1);
        let h = &d.header(0);
        assert_eq!(
            (d.comm(0), h.state, h.pid, h.ppid, h.user_regs),
            ("syz-executor865", Some('D'), Some(1721), Some(1719), true)
        );
        assert_eq!(frames(&d, 0).len(), 36);
        assert_eq!(reliable(&d, 0).len(), 11);
        assert_eq!(frames(&d, 0)[0], "? __schedule");
        assert_eq!(
            reliable(&d, 0)[..3],
            [
                "schedule",
                "schedule_timeout",
                "wait_for_completion_timeout"
            ]
        );
    }

    #[test]
    fn syzbot_symbolized_inline_frames() {
        let d = run(sample!("hung-task-6.0-syzbot-symbolized.txt"));
        assert_eq!(
            d.kernel_release.as_deref(),
            Some("6.0.0-syzkaller-09589-g55be6084c8e0")
        );
        assert_eq!(d.skipped_lines, 1);
        assert_eq!(d.task_count(), 3);
        assert_eq!(
            (d.comm(0), d.header(0).pid, d.header(0).ppid),
            ("kworker/u4:6", Some(5166), Some(2))
        );
        let t0 = d.frames_of(0);
        assert_eq!(t0.len(), 15);
        assert_eq!(d.name(d.frame_function(t0.start)), Some("context_switch"));
        assert!(d.frame_inlined[t0.start]);
        assert_eq!(d.frame_offset(t0.start), u64::MAX);
        assert!(!d.frame_inlined[t0.start + 1]);
        assert_eq!(d.frame_inlined.iter().filter(|&&i| i).count(), 10);
        // the NMI target's RIP lines are themselves inline-expanded
        let t2 = d.frames_of(2);
        assert_eq!(
            frames(&d, 2)[..3],
            ["div_u64_rem", "div_u64", "pie_calculate_probability"]
        );
        assert!(d.frame_inlined[t2.start] && !d.frame_inlined[t2.start + 2]);
        assert_eq!(d.comm(2), "ksoftirqd/1");
    }

    #[test]
    fn arm64_task_flags_and_printk_artefacts() {
        let d = run(sample!("hung-task-arm64-6.x-task-flags.txt"));
        // provenance, the torn "INFO: t" and "** replaying previous printk message **"
        assert_eq!(d.skipped_lines, 3);
        assert_eq!(d.kernel_release.as_deref(), Some("syzkaller"));
        assert_eq!(d.task_count(), 1);
        let h = &d.header(0);
        assert_eq!(
            (d.comm(0), h.pid, h.tgid, h.ppid),
            ("udevd", Some(5612), Some(5612), Some(4302))
        );
        assert_eq!(
            (h.task_flags, h.thread_flags, h.kthread),
            (Some(0x40_0140), Some(0x80_0019), Some(false))
        );
        let f = frames(&d, 0);
        assert_eq!(
            (f.len(), f[0].as_str(), f[25].as_str()),
            (26, "__switch_to", "el0t_64_sync")
        );
    }

    #[test]
    fn rcu_stall_inline_irq_markers_and_console_noise() {
        let d = run(sample!("rcu-stall-4.x-irq-eoi.txt"));
        // provenance + the interleaved "executing program"
        assert_eq!(d.skipped_lines, 2);
        assert_eq!(d.kernel_release, None);
        assert_eq!(d.task_count(), 1);
        let h = &d.header(0);
        assert_eq!(
            (d.comm(0), h.state, h.on_cpu, h.cpu, h.pid, h.ppid),
            (
                "kworker/0:0",
                Some('R'),
                None, // R: runnable; its <IRQ> section puts it on a CPU (lpc.facts)
                Some(0),
                Some(4),
                Some(2)
            )
        );
        let ctx: Vec<_> = d.frames_of(0).map(|i| d.frame_context[i]).collect();
        assert_eq!(ctx.iter().filter(|&&c| c == FrameContext::Irq).count(), 15);
        assert_eq!(ctx[15], FrameContext::Task);
        assert_eq!(frames(&d, 0)[15], "? _raw_spin_unlock_irqrestore");
        assert_eq!(frames(&d, 0).len(), 31);
    }

    #[test]
    fn rcu_stall_nmi_section() {
        let d = run(sample!("rcu-stall-6.10-nmi.txt"));
        assert_eq!(d.skipped_lines, 1);
        assert_eq!(
            d.kernel_release.as_deref(),
            Some("6.10.0-rc5-00257-g88d8f64b9f5f-dirty")
        );
        assert_eq!(d.task_count(), 2);
        let h = &d.header(0);
        assert_eq!(
            (d.comm(0), h.state, h.on_cpu, h.pid, h.tgid),
            ("rcu_preempt", Some('R'), None, Some(17), Some(17))
        );
        let t1 = d.frames_of(1);
        assert_eq!(d.name(d.frame_function(t1.start)), Some("rb_insert_color"));
        let nmi: Vec<_> = t1
            .clone()
            .filter(|&i| d.frame_context[i] == FrameContext::Nmi)
            .collect();
        assert_eq!(nmi.len(), 13);
        assert!(nmi.iter().all(|&i| !d.frame_reliable[i]));
        assert_eq!(d.frame_context[t1.end - 1], FrameContext::Task);
        assert_eq!(d.name(d.frame_function(t1.end - 1)), Some("do_syscall_64"));
    }

    #[test]
    fn sysrq_5_7_all_unreliable_is_an_unwind_failure() {
        let d = run(sample!("sysrq-t-5.7-orc-all-unreliable.txt"));
        // provenance, two "----------" rules, two "Kernel ... on an x86_64"
        // getty banners, two "localhost login: " texts glued to a log line
        assert_eq!(d.skipped_lines, 7);
        assert_eq!(d.task_count(), 2);
        assert_eq!(
            d.stack_status,
            [StackStatus::UnwindFailure, StackStatus::Complete]
        );
        assert_eq!(frames(&d, 0).len(), 11);
        assert_eq!(
            reliable(&d, 1),
            [
                "schedule",
                "schedule_hrtimeout_range_clock",
                "ep_poll",
                "do_epoll_wait",
                "__x64_sys_epoll_wait",
                "do_syscall_64",
                "entry_SYSCALL_64_after_hwframe"
            ]
        );
        assert!(d.header(1).user_regs && !d.header(0).user_regs);
        assert_eq!(
            (d.comm(0), d.header(0).pid, d.header(0).state),
            ("systemd", Some(1), Some('S'))
        );
    }

    #[test]
    fn sysrq_journald_both_header_generations() {
        let d = run(sample!("sysrq-t-5.9-header-change-journald.txt"));
        assert_eq!(d.skipped_lines, 1);
        assert_eq!(d.task_count(), 2);
        for t in 0..2 {
            assert_eq!(
                (d.comm(t), d.header(t).pid, d.header(t).ppid),
                ("systemd", Some(1), Some(0))
            );
        }
        assert_eq!(frames(&d, 0), ["? __schedule"]);
        assert_eq!(frames(&d, 1), ["__schedule"]);
    }

    #[test]
    fn sysrq_i915_module_frames() {
        let d = run(sample!("sysrq-t-6.x-i915-modules.txt"));
        // provenance, the "[IGT] Inactivity timeout" line, two "..." elisions
        assert_eq!(d.skipped_lines, 4);
        assert_eq!(d.task_count(), 1);
        let h = &d.header(0);
        assert_eq!(
            (d.comm(0), h.pid, h.tgid, h.ppid, h.state),
            (
                "i915_selftest",
                Some(5578),
                Some(5578),
                Some(873),
                Some('D')
            )
        );
        let mods: Vec<_> = d
            .frames_of(0)
            .map(|i| d.name(d.frame_module(i)).unwrap_or(""))
            .collect();
        assert_eq!(mods.iter().filter(|&&m| m == "i915").count(), 9);
        assert_eq!(mods[0], "");
        assert_eq!(d.frame_module(d.frames_of(0).start), NO_NAME);
    }

    #[test]
    fn frames_without_a_task_are_a_task_whose_header_is_lost() {
        let d = run(" schedule+0x1/0x2\nCall Trace:\n f+0x1/0x2\n");
        assert_eq!(d.skipped_lines, 0);
        assert_eq!(d.task_count(), 2);
        assert_eq!(frames(&d, 0), ["schedule"]);
        assert_eq!(
            (d.header(0).lost, d.header(0).lost_line),
            (TaskLoss::HEADER, 1)
        );
        // A trace with no header before it: its task is unknown too.
        assert_eq!(d.header(1).pid, None);
        assert_eq!(
            (d.header(1).lost, d.header(1).lost_line),
            (TaskLoss::HEADER, 2)
        );
    }

    const TASK_6_18: &str = "task:cat  state:S stack:0 pid:7 tgid:7 ppid:1 task_flags:0x400000 flags:0x00004002\n\
                             Call Trace:\n <TASK>\n __schedule+0x1/0x2\n schedule+0x1/0x2\n </TASK>\n";

    #[test]
    fn a_whole_stack_loses_nothing() {
        let d = run(TASK_6_18);
        assert_eq!(d.task_count(), 1);
        assert_eq!(d.lost_tasks(), 0);
        // Cut after `</TASK>`: the stack is whole (the dump is still cut).
        let cut = format!("{TASK_6_18}INFO: lockdep is tur");
        let d = crate::dump::parse(&cut, Some(Format::Dmesg)).unwrap();
        assert_eq!((d.lost_tasks(), d.input_cut), (0, true));
        // Cut on the marker's own line: nothing says the line was whole.
        let d = crate::dump::parse(&TASK_6_18[..TASK_6_18.len() - 1], Some(Format::Dmesg)).unwrap();
        assert_eq!(d.header(0).lost, TaskLoss::UNCLOSED);
    }

    #[test]
    fn a_stack_without_its_task_end_marker_is_unclosed() {
        let cut = TASK_6_18.replace(" </TASK>\n", "");
        let d = run(&cut);
        assert_eq!(
            (d.header(0).lost, d.header(0).lost_line),
            (TaskLoss::UNCLOSED, 5)
        );
        // The next header ends it just the same.
        let d = run(&format!("{cut}{TASK_6_18}"));
        assert_eq!(d.header(0).lost, TaskLoss::UNCLOSED);
        assert!(d.header(1).lost.is_empty());
    }

    #[test]
    fn a_cut_inside_a_stack_is_unclosed_even_without_markers() {
        let text = "task:cat  state:S stack:0 pid:7 ppid:1 flags:0x00004002\nCall Trace:\n schedule+0x1/0x2\n do_sys_poll+0x";
        let d = crate::dump::parse(text, Some(Format::Dmesg)).unwrap();
        // The half line is a lost frame, and the stack has no end.
        assert_eq!(d.header(0).lost, TaskLoss::UNCLOSED | TaskLoss::FRAME_LINE);
        let whole = crate::dump::parse(&format!("{text}1/0x2\n"), Some(Format::Dmesg)).unwrap();
        assert!(whole.header(0).lost.is_empty());
    }

    #[test]
    fn a_damaged_frame_line_inside_a_stack_is_a_lost_frame() {
        let damaged = TASK_6_18.replace(" schedule+0x1/0x2", " sch\u{1}dule+0x1/0x2");
        let d = run(&damaged);
        assert_eq!(frames(&d, 0), ["__schedule"]);
        assert_eq!(
            (d.header(0).lost, d.header(0).lost_line),
            (TaskLoss::FRAME_LINE, 5)
        );
        assert_eq!(d.skipped_lines, 1);
    }

    #[test]
    fn a_damaged_header_keeps_its_frames_apart() {
        let second = TASK_6_18.replace("task:cat  state:S stack:0 pid:7", "task:cat  sta");
        let d = run(&format!("{TASK_6_18}{second}"));
        assert_eq!(d.task_count(), 2);
        assert!(d.header(0).lost.is_empty());
        assert_eq!(frames(&d, 0).len(), 2);
        assert_eq!(
            (d.header(1).lost, d.header(1).lost_line),
            (TaskLoss::HEADER, 7)
        );
        assert_eq!(d.comm(1), "?");
        assert_eq!(frames(&d, 1).len(), 2);
        // A header line lost whole: its frames come after `</TASK>`.
        let headless = TASK_6_18.replace("task:cat  state:S stack:0 pid:7 tgid:7 ppid:1 task_flags:0x400000 flags:0x00004002\nCall Trace:\n", "");
        let d = run(&format!("{TASK_6_18}{headless}"));
        assert_eq!(d.task_count(), 2);
        assert_eq!(frames(&d, 0).len(), 2);
        assert!(d.header(1).lost.contains(TaskLoss::HEADER));
        assert_eq!(frames(&d, 1).len(), 2);
    }

    #[test]
    fn arm_without_kallsyms_prints_addresses_only() {
        let text = "INFO: task sh:88 blocked for more than 120 seconds.\n\
            sh              D c0351b70     0    88      1 0x00000000\n\
            Backtrace: \n\
            Function entered at [<c0351b70>] from [<c0352104>]\n\
            Function entered at [<c0352104>] from [<c00a1e28>]\n\
            Function entered at [<c00a1e28>] from [<c0009ec0>]\n";
        let d = run(text);
        assert_eq!(d.task_count(), 1);
        let addresses: Vec<_> = d.frames_of(0).map(|i| d.frame_address(i)).collect();
        assert_eq!(
            addresses,
            [0xc035_1b70, 0xc035_2104, 0xc00a_1e28, 0xc000_9ec0]
        );
        assert!(d.frames_of(0).all(|i| d.frame_function(i) == NO_NAME));
        assert_eq!(d.skipped_lines, 0);
    }

    #[test]
    fn show_task_of_2_6_kernels() {
        let d = run(sample!("sysrq-t-2.6.18-show-task.txt"));
        let got: Vec<_> = d
            .headers()
            .map(|h| (h.pid, h.ppid, h.state, h.kthread, h.on_cpu))
            .collect();
        assert_eq!(
            got,
            [
                (Some(1), Some(0), Some('S'), Some(false), None),
                (Some(2), Some(1), Some('S'), Some(true), None),
                (Some(412), Some(1), Some('D'), Some(true), None),
                (Some(3120), Some(3119), Some('R'), Some(false), None),
            ]
        );
        let comms: Vec<_> = (0..d.task_count()).map(|t| d.comm(t)).collect();
        assert_eq!(comms, ["init", "migration/0", "kjournald", "bash"]);
        assert_eq!(frames(&d, 2)[5], "journal_commit_transaction");
        assert_eq!(
            d.name(d.frame_module(d.frames_of(2).start + 5)),
            Some("jbd")
        );
        assert_eq!(d.frames_of(3).len(), 0, "a running task prints no trace");
        assert_eq!(d.lost_tasks(), 0);
        // Only the provenance line and the SysRq banner are left unexplained.
        assert!(d.skipped_lines <= 2, "{:?}", d.skipped_samples);
    }

    #[test]
    fn the_4x_task_pointer_line_is_no_header() {
        let d = run("CPU: 0 PID: 5 Comm: a Not tainted 4.4.1 #1\ntask: ffff8801d85697c0 ti: ffff8800bade8000 task.ti: ffff8800bade8000\nCall Trace:\n f+0x1/0x2\n");
        assert_eq!(d.task_count(), 1);
        assert_eq!(d.lost_tasks(), 0);
    }

    #[test]
    fn runqueue_dump_names_each_cpus_current_task() {
        // Debian 6.1 SysRq-t in the oracle guest: `sh` wrote the trigger and is
        // `>R` on cpu#0; cpu#1 ran its idle task (no `>R` row).
        let d = run(sample!("oracle/idle_leaf/first_sysrq.txt"));
        let on: Vec<_> = (0..d.task_count())
            .filter(|&t| d.header(t).on_cpu == Some(true))
            .map(|t| (d.comm(t).to_owned(), d.header(t).cpu))
            .collect();
        assert_eq!(on, [("sh".to_owned(), Some(0))]);
        // Its rows are read, not skipped: what is left is the debug summary.
        let rows = run("task:sh              state:R  running task     stack:0     pid:93    ppid:1      flags:0x00004000\n\
                        Call Trace:\n <TASK>\n f+0x1/0x2\n </TASK>\n\
                        task:b               state:R  running task     stack:0     pid:94    ppid:1      flags:0x00004000\n\
                        Call Trace:\n <TASK>\n f+0x1/0x2\n </TASK>\n\
                        cpu#1, 2596.097 MHz\n\
                        runnable tasks:\n \
                        S            task   PID         tree-key  switches  prio     wait-time\n\
                        ----------------------------------\n\
                        >R               b    94      1826.786746        12   120         0.000000\n \
                        R               sh    93      1826.786746        12   120         0.000000\n");
        assert_eq!(rows.skipped_lines, 0);
        assert_eq!(
            (rows.header(0).on_cpu, rows.header(1).on_cpu),
            (None, Some(true))
        );
        assert_eq!(rows.header(1).cpu, Some(1));
    }

    #[test]
    fn frame_syntax_names_the_architecture() {
        for (text, arch) in [
            (
                sample!("arm32-hung-task-4.19-unwind-verbose.txt"),
                Some("arm"),
            ),
            (sample!("arm32-oops-3.4-frame-pointer.txt"), Some("arm")),
            (sample!("ppc64le-hung-task-5.15-nmi.txt"), Some("powerpc")),
            (sample!("s390x-hung-task-4.19.txt"), Some("s390")),
            // x86 and arm64 print `sym+off/size`: no syntax of their own.
            (sample!("hung-task-6.18.txt"), None),
            (sample!("hung-task-arm64-6.x-task-flags.txt"), None),
        ] {
            assert_eq!(run(text).arch.as_deref(), arch);
        }
    }

    #[test]
    fn lost_header_uses_the_hung_task_line() {
        let d =
            run("INFO: task a b:42 blocked for more than 5 seconds.\nCall Trace:\n f+0x1/0x2\n");
        assert_eq!(
            (d.comm(0), d.header(0).pid, d.header(0).state),
            ("a b", Some(42), Some('D'))
        );
    }

    #[test]
    fn arm64_pc_exception_sections_and_32bit_eip() {
        let d = run("CPU: 2 PID: 9 Comm: a b Tainted: G        W  6.6.0 #1\n\
                     pc : foo+0x10/0x20 [mymod]\n\
                     lr : bar+0x1/0x2\n\
                     sp : ffff800080003e40\n\
                     x29: ffff800080003e40 x28: 0000000000000000\n\
                     Call trace:\n foo+0x10/0x20 [mymod] (P)\n bar+0x1/0x2 (L)\n\
                     Call Trace:\n <#DF>\n dbl+0x1/0x2\n </#DF>\n <SOFTIRQ>\n sirq+0x3/0x4\n </SOFTIRQ>\n\
                     task:u              state:S stack:0 pid:5 ppid:1 flags:0x0\n\
                     pc : 0000ffff8c3a1234\n\
                     EIP: 0073:[<b7f1c424>] 0xb7f1c424\n");
        assert_eq!(d.kernel_release.as_deref(), Some("6.6.0"));
        assert_eq!(d.skipped_lines, 0);
        assert_eq!(d.task_count(), 3);
        assert_eq!((d.comm(0), d.header(0).cpu), ("a b", Some(2)));
        assert_eq!(frames(&d, 0), ["foo", "foo", "bar"]);
        assert_eq!(d.name(d.frame_module(0)), Some("mymod"));
        let ctx: Vec<_> = d.frames_of(1).map(|i| d.frame_context[i]).collect();
        assert_eq!(ctx, [FrameContext::Exception, FrameContext::SoftIrq]);
        assert!(d.header(2).user_regs);
        assert_eq!(d.frames_of(2).len(), 0);
    }

    #[test]
    fn idle_cpu_backtrace_is_the_idle_task() {
        let d = run("NMI backtrace for cpu 3 skipped: idling at intel_idle+0x6f/0xc0\n");
        assert_eq!(
            (d.header(0).pid, d.comm(0), d.header(0).on_cpu),
            (Some(0), "swapper/3", Some(true))
        );
        assert_eq!(frames(&d, 0), ["intel_idle"]);
    }

    // ---- other architectures and older kernels (archtrace.rs)

    /// `(function, offset, module)` of each frame of task `t`; offset
    /// `None` when not printed.
    fn fom(d: &Dump, t: usize) -> Vec<(String, Option<u64>, String)> {
        d.frames_of(t)
            .map(|i| {
                let off = d.frame_offset(i);
                (
                    d.name(d.frame_function(i)).unwrap_or("-").to_owned(),
                    (off != u64::MAX).then_some(off),
                    d.name(d.frame_module(i)).unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    fn f(name: &str, off: Option<u64>, module: &str) -> (String, Option<u64>, String) {
        (name.to_owned(), off, module.to_owned())
    }

    #[test]
    fn arm32_verbose_pairs_read_each_frame_once() {
        let text = sample!("arm32-hung-task-4.19-unwind-verbose.txt");
        assert!(looks_like(text));
        let d = run(text);
        assert_eq!(d.kernel_release.as_deref(), Some("4.19.118-v7+"));
        assert_eq!(d.skipped_lines, 1); // provenance
        assert_eq!(d.task_count(), 3);
        assert_eq!(d.lost_tasks(), 0);
        let h = d.header(0);
        assert_eq!(
            (d.comm(0), h.pid, h.ppid, h.state),
            ("kworker/u8:2", Some(87), Some(2), Some('D'))
        );
        // 22 lines: 22 functions, and the last line's caller.
        let t0 = fom(&d, 0);
        assert_eq!(t0.len(), 23);
        assert_eq!(t0[0], f("__schedule", None, ""));
        assert_eq!(t0[1], f("schedule", Some(0x64), ""));
        assert_eq!(t0[22], f("ret_from_fork", Some(0x14), ""));
        assert_eq!(d.frame_address(d.frames_of(0).start + 1), 0xc088_3858);
        assert!(d.frames_of(0).all(|i| d.frame_reliable[i]));
        assert_eq!(d.stack_status[0], StackStatus::Complete);
        // Module text: `(name [mod])` callee, `(name+off/size [mod])` caller.
        let t1 = fom(&d, 1);
        assert_eq!(d.comm(1), "jbd2/mmcblk0p2-");
        assert_eq!(t1.len(), 11);
        assert_eq!(
            t1[7..9],
            [
                f("jbd2_journal_commit_transaction", Some(0x10d0), "jbd2"),
                f("kjournald2", Some(0xd4), "jbd2")
            ]
        );
        // The SysRq-l CPU: a `CPU:` header, frames down to the syscall entry.
        let h = d.header(2);
        assert_eq!(
            (d.comm(2), h.pid, h.cpu, h.on_cpu),
            ("bash", Some(934), Some(0), Some(true))
        );
        let t2 = fom(&d, 2);
        assert_eq!(t2.len(), 15);
        assert_eq!(t2[0], f("unwind_backtrace", None, ""));
        assert_eq!(t2[14], f("ret_fast_syscall", Some(0), ""));
    }

    #[test]
    fn arm32_frame_pointer_oops_with_registers_and_memory_dumps() {
        let text = sample!("arm32-oops-3.4-frame-pointer.txt");
        assert!(looks_like(text));
        let d = run(text);
        assert_eq!(d.kernel_release.as_deref(), Some("3.4.113"));
        // provenance, three page-table lines before the oops, the end marker
        assert_eq!(d.skipped_lines, 5);
        assert_eq!(d.task_count(), 2);
        assert_eq!(d.lost_tasks(), 0);
        let h = d.header(0);
        assert_eq!((d.comm(0), h.pid, h.on_cpu), ("sh", Some(612), Some(true)));
        // 2.6/3.x print the callee `%pS` (its entry, `+0x0`): the offset a
        // frame keeps is the one its callee's line gave as a return address.
        assert_eq!(
            fom(&d, 0),
            [
                f("foo_write", Some(0), "foo"),
                f("vfs_write", Some(0xb4), ""),
                f("sys_write", Some(0x4c), ""),
                f("ret_fast_syscall", Some(0), ""),
            ]
        );
        assert_eq!(d.frame_address(d.frames_of(0).start + 1), 0xc00d_86a8);
        let h = d.header(1);
        assert_eq!(
            (d.comm(1), h.pid, h.ppid, h.state),
            ("sync", Some(640), Some(612), Some('D'))
        );
        let t1 = fom(&d, 1);
        assert_eq!(t1.len(), 9);
        assert_eq!(t1[4], f("foo_sync", Some(0x1c), "foo"));
        assert_eq!(d.stack_status, [StackStatus::Complete; 2]);
    }

    #[test]
    fn arm32_plain_form_of_5x_kernels() {
        let text = sample!("arm32-sysrq-w-6.1-plain.txt");
        assert!(looks_like(text));
        let d = run(text);
        assert_eq!(d.skipped_lines, 1);
        assert_eq!(d.task_count(), 2);
        assert_eq!(d.lost_tasks(), 0);
        assert_eq!(
            (d.comm(0), d.header(0).pid, d.header(0).ppid),
            ("kworker/u8:1", Some(62), Some(2))
        );
        let t0 = fom(&d, 0);
        assert_eq!(t0.len(), 20);
        assert_eq!(t0[8], f("ext4_io_submit", Some(0x34), "ext4"));
        assert_eq!(t0[19], f("ret_from_fork", Some(0x14), ""));
        assert_eq!(
            fom(&d, 1),
            [
                f("__schedule", None, ""),
                f("schedule", Some(0x60), ""),
                f("jbd2_log_wait_commit", Some(0xd8), "jbd2"),
                f("jbd2_complete_transaction", Some(0x90), "jbd2"),
                f("ext4_sync_file", Some(0x2c8), "ext4"),
                f("do_fsync", Some(0x44), ""),
                f("ret_fast_syscall", Some(0), ""),
            ]
        );
        assert!(d.frames_of(1).all(|i| !d.frame_has_address(i)));
    }

    #[test]
    fn arm32_a_broken_chain_is_a_lost_frame() {
        let head = "task:a state:D stack:0 pid:5 ppid:1 flags:0x0\n";
        // The middle line dropped: `g` is the first line's caller, but the
        // next line runs `h`: what lies between is unknown.
        let d = run(&format!(
            "{head} f from g+0x1/0x2\n h from i+0x3/0x4\n i from j+0x5/0x6\n"
        ));
        assert_eq!(frames(&d, 0), ["f", "g", "h", "i", "j"]);
        assert_eq!(
            (d.header(0).lost, d.header(0).lost_line),
            (TaskLoss::FRAME_LINE, 3)
        );
        // A damaged pair line is a lost frame too.
        let d = run(&format!("{head} f from g+0x1/0x2\n g frum h+0x1/0x2\n"));
        assert_eq!(d.header(0).lost, TaskLoss::FRAME_LINE);
        // A zero caller ends the chain without a frame; `from 0xADDR` prose
        // outside a stack is no frame.
        let d = run(&format!(
            "{head}[<c0107f18>] (ret_from_fork) from [<00000000>] (  (null))\n"
        ));
        assert_eq!(frames(&d, 0), ["ret_from_fork"]);
        let d = run("Booting from 0x8000\n");
        assert_eq!((d.task_count(), d.skipped_lines), (0, 1));
        // The pending caller goes to its own task, before the next header.
        let d = run(&format!(
            "{head} f from g+0x1/0x2\n{head} h from i+0x1/0x2\n"
        ));
        assert_eq!(frames(&d, 0), ["f", "g"]);
        assert_eq!(frames(&d, 1), ["h", "i"]);
        // ARM's frame-pointer unwinder giving up: no stack.
        let d = run(&format!("{head}Backtrace: no frame pointer\n"));
        assert_eq!(d.stack_status[0], StackStatus::UnwindFailure);
        assert_eq!(d.skipped_lines, 0);
    }

    #[test]
    fn x86_2_6_module_prefix_and_pid_header() {
        let text = sample!("soft-lockup-2.6.18-x86_64-module-prefix.txt");
        assert!(looks_like(text));
        let d = run(text);
        assert_eq!(d.kernel_release.as_deref(), Some("2.6.18-194.el5"));
        assert_eq!(d.skipped_lines, 1);
        assert_eq!(d.task_count(), 1);
        let h = d.header(0);
        assert_eq!(
            (d.comm(0), h.pid, h.tid, h.on_cpu),
            ("jbd2/dm-2-8", Some(2283), Some(2283), Some(true))
        );
        let t = fom(&d, 0);
        assert_eq!(t.len(), 13);
        assert_eq!(t[0], f(".text.lock.spinlock", Some(2), ""));
        assert_eq!(
            t[1],
            f("jbd2_journal_commit_transaction", Some(0x191), "jbd2")
        );
        assert_eq!(d.frame_size(d.frames_of(0).start + 1), 0x1068);
        assert_eq!(t[4], f("kjournald2", Some(0xc1), "jbd2"));
        assert_eq!(t.iter().filter(|x| x.2 == "jbd2").count(), 3);
    }

    #[test]
    fn taint_letters_are_not_the_release() {
        let text = sample!("hung-task-4.4-ubuntu-tainted-OE.txt");
        assert!(looks_like(text));
        let d = run(text);
        assert_eq!(d.kernel_release.as_deref(), Some("4.4.0-140-generic"));
        assert!(d.warnings.is_empty(), "{:?}", d.warnings);
        assert_eq!(d.skipped_lines, 1);
        assert_eq!(d.task_count(), 2);
        assert_eq!(
            (d.comm(0), d.header(0).pid, d.header(0).ppid),
            ("zpool", Some(4012), Some(3998))
        );
        assert_eq!(frames(&d, 0).len(), 10);
        assert_eq!(reliable(&d, 0).len(), 9);
        assert_eq!(fom(&d, 0)[4], f("txg_wait_synced", Some(0xdb), "zfs"));
        assert_eq!(
            (d.comm(1), d.header(1).pid, d.header(1).cpu),
            ("swapper/2", Some(0), Some(2))
        );
        assert_eq!(frames(&d, 1)[0], "intel_idle");
        assert_eq!(frames(&d, 1).len(), 6);
        for (line, release) in [
            (
                "Pid: 1234, comm: foo Tainted: G           OE   4.4.0-140-generic #166-Ubuntu",
                "4.4.0-140-generic",
            ),
            (
                "CPU: 0 PID: 1 Comm: x Tainted: G        W  O      5.4.0 #1",
                "5.4.0",
            ),
            ("CPU: 0    Tainted: G           O  (3.4.113 #1)", "3.4.113"),
            (
                "REGS: c00000000ff47da0 TRAP: 0500   Not tainted  (5.15.0)",
                "5.15.0",
            ),
        ] {
            assert_eq!(release_in(line), Some(release), "{line}");
        }
        // The 2.6/3.x `Pid:` line is a task header, like `CPU: N PID: P`.
        let d = run("Pid: 4, comm: ksoftirqd/0 Not tainted 2.6.32-431.el6.x86_64 #1 Dell Inc. PowerEdge R620/0KCKR5\n\
                     RIP: 0010:[<ffffffff8152a3be>]  [<ffffffff8152a3be>] _spin_lock+0x1e/0x30\n\
                     Process ksoftirqd/0 (pid: 4, threadinfo ffff88043c5f2000, task ffff88043c5f1500)\n\
                     Stack:\n ffff88043c5f3e40 ffffffff81080a5e\n\
                     Call Trace:\n [<ffffffff81080a5e>] run_timer_softirq+0x4e/0x3a0\n");
        assert_eq!(d.kernel_release.as_deref(), Some("2.6.32-431.el6.x86_64"));
        assert_eq!(d.task_count(), 1);
        assert_eq!((d.comm(0), d.header(0).pid), ("ksoftirqd/0", Some(4)));
        assert_eq!(frames(&d, 0), ["_spin_lock", "run_timer_softirq"]);
        assert_eq!(d.skipped_lines, 0);
    }

    #[test]
    fn powerpc_frames_unreliable_marks_and_interrupts() {
        let text = sample!("ppc64le-hung-task-5.15-nmi.txt");
        assert!(looks_like(text));
        let d = run(text);
        assert_eq!(d.kernel_release.as_deref(), Some("5.15.0-60-generic"));
        assert_eq!(d.skipped_lines, 1);
        assert_eq!(d.task_count(), 2);
        assert_eq!(d.lost_tasks(), 0);
        assert_eq!(
            (d.comm(0), d.header(0).pid, d.header(0).thread_flags),
            ("kworker/u16:3", Some(1423), Some(0x800))
        );
        let t0 = d.frames_of(0);
        assert_eq!(t0.len(), 22);
        // `0xc00000001e6b3400 (unreliable)`: a raw address, like a `? ` frame
        assert!(!d.frame_reliable[t0.start]);
        assert_eq!(d.frame_function(t0.start), NO_NAME);
        assert_eq!(d.frame_address(t0.start), 0xc000_0000_1e6b_3400);
        assert_eq!(reliable(&d, 0)[0], "__switch_to");
        assert_eq!(d.frame_address(t0.start + 1), 0xc000_0000_0001_fd84);
        assert_eq!(fom(&d, 0)[10], f("ext4_io_submit", Some(0x74), "ext4"));
        assert_eq!(d.stack_status[0], StackStatus::Complete);
        // The IPI's own frames, the interrupted instruction, the idle loop.
        let f1 = frames(&d, 1);
        assert_eq!(f1.len(), 19);
        assert_eq!(f1[0], "? dump_stack_lvl");
        assert_eq!(f1[11], "plpar_hcall_norets_notrace");
        assert_eq!(f1[12], "? pseries_lpar_idle");
        assert_eq!(f1[18], "start_secondary_prolog");
        assert_eq!(
            (d.comm(1), d.header(1).pid, d.header(1).cpu),
            ("swapper/3", Some(0), Some(3))
        );
    }

    #[test]
    fn s390_parenthesised_frames_are_unreliable() {
        let text = sample!("s390x-hung-task-4.19.txt");
        assert!(looks_like(text));
        let d = run(text);
        assert_eq!(d.kernel_release.as_deref(), Some("4.19.0-21-s390x"));
        assert_eq!(d.skipped_lines, 1);
        assert_eq!(d.task_count(), 2);
        for t in 0..2 {
            assert_eq!(frames(&d, t)[0], "? __schedule");
            assert_eq!(d.frame_address(d.frames_of(t).start), 0x9f_3a4a);
            assert_eq!(reliable(&d, t)[0], "schedule");
            assert_eq!(d.stack_status[t], StackStatus::Complete);
        }
        assert_eq!(frames(&d, 0).len(), 11);
        assert_eq!(
            fom(&d, 0)[4],
            f("dasd_sleep_on_queue", Some(0x1be), "dasd_mod")
        );
        assert_eq!(
            (d.comm(1), d.header(1).pid, d.header(1).state),
            ("ext4lazyinit", Some(801), Some('D'))
        );
        // `Last Breaking-Event-Address:` is followed by an address, not a frame.
        let d = run("CPU: 1 PID: 7 Comm: a Not tainted 5.4.0 #1\n\
                     Krnl PSW : 0704d00180000000 00000000009f3a4a (__schedule+0x2ca/0x818)\n\
                     Last Breaking-Event-Address:\n [<00000000009f3fe2>] schedule+0x4a/0xb0\n\
                     Call Trace:\n ([<00000000009f3a4a>] __schedule+0x2ca/0x818)\n \
                     [<00000000009f3fe2>] schedule+0x4a/0xb0 \n");
        assert_eq!(frames(&d, 0), ["? __schedule", "schedule"]);
        assert_eq!(d.skipped_lines, 0);
    }

    #[test]
    fn riscv_and_mips_print_the_old_x86_shape() {
        for (name, text, comm, first, last, len) in [
            (
                "riscv 5.10",
                sample!("riscv64-hung-task-5.10.txt"),
                "sync",
                "__switch_to",
                "ret_from_syscall",
                14,
            ),
            (
                "riscv 6.6",
                sample!("riscv64-dump-stack-6.6.txt"),
                "bash",
                "dump_backtrace",
                "ret_from_exception",
                16,
            ),
            (
                "mips 4.14",
                sample!("mips-hung-task-4.14-openwrt.txt"),
                "kworker/0:1",
                "__schedule",
                "ret_from_kernel_thread",
                13,
            ),
        ] {
            assert!(looks_like(text), "{name}");
            let d = run(text);
            assert_eq!((d.skipped_lines, d.task_count()), (1, 1), "{name}");
            assert_eq!(d.lost_tasks(), 0, "{name}");
            let fr = reliable(&d, 0);
            assert_eq!(
                (d.comm(0), fr.len(), fr[0].as_str(), fr[len - 1].as_str()),
                (comm, len, first, last),
                "{name}"
            );
        }
        let d = run(sample!("riscv64-hung-task-5.10.txt"));
        assert_eq!(fom(&d, 0)[0], f("__switch_to", Some(0x6c), ""));
        assert_eq!(d.frame_size(d.frames_of(0).start), 0x8e);
        assert_eq!(d.frame_address(d.frames_of(0).start), 0xffff_ffe0_0000_3d6a);
        let d = run(sample!("mips-hung-task-4.14-openwrt.txt"));
        assert_eq!(d.header(0).thread_flags, Some(0x10_0000));
        assert_eq!(d.frame_address(d.frames_of(0).start), 0x8006_a8c4);
    }

    #[test]
    fn detection() {
        for text in [
            sample!("hung-task-6.18.txt"),
            sample!("sysrq-t-5.9-header-change-journald.txt"),
            sample!("sysrq-t-6.x-i915-modules.txt"),
        ] {
            assert!(looks_like(text));
        }
        assert!(!looks_like("[<0>] f+0x1/0x2\n"));
        assert!(!looks_like(
            "PID: 0      TASK: ffff889ff8c35a00  CPU: 11  COMMAND: \"swapper/11\"\n"
        ));
    }
}
