//! drgn's `StackTrace` text (`print(prog.stack_trace(task))`, `stack_trace(pid)`
//! in the drgn CLI).
//!
//! Grammar (osandov/drgn `libdrgn/stack_trace.c`: `drgn_format_stack_trace()`
//! and `drgn_format_stack_frame()`):
//!
//! ```text
//! #0  context_switch (./kernel/sched/core.c:4683:2)          DWARF function name (+ source)
//! #12 entry_SYSCALL_64+0x7c/0x15b (./arch/x86/entry/entry_64.S:113)   symbol+off/size
//! #13 0x7f3344072af7                                          no symbol: bare PC
//! #3  ???                                                     PC unknown
//! #5 at 0xffffffff8a5a32d0 (do_sys_poll+0x400/0x578) in do_poll at ./fs/select.c:961:8 (inlined)
//!                                                             one StackFrame's repr
//! >>> trace = stack_trace(115)                                REPL prompt
//! ```
//!
//! Semantics and choices:
//!
//! * The text has no task header: a trace starts at `#0`. A REPL prompt calling
//!   `stack_trace(<pid>)` names the pid of the next trace. `comm`, `cpu` and
//!   `on_cpu` are not in the text.
//! * With DWARF, inlined functions are separate frames that share the caller's
//!   PC, but the trace text does not mark them (only a single frame's repr says
//!   `(inlined)`): `inlined` stays false, and DWARF-named frames carry neither
//!   offset nor address. `sym+0xoff/0xsize` frames (code without DWARF, e.g. asm
//!   entry code) carry hex offset and size. No module is printed.
//! * A bare PC in the 64-bit user range is the user-mode PC of the task's
//!   pt_regs: context `User`. So is a lower bare PC (a non-PIE program at
//!   `0x401136`, a 32-bit task) that follows an entry from user space
//!   (`entry_SYSCALL_64`, `entry_INT80_compat`, arm64 `el0t_64_sync`…) or
//!   another user frame: the user part ends the kernel stack, it does not
//!   damage it. Any other frame is kernel (`Task`).
//! * drgn unwinds with DWARF CFI / ORC, no `?` notion: `reliable = true`.
//! * StackFrame repr lines (`#N at 0x...`) restate a frame already printed in a
//!   trace and are not frames. A gap in `#N` or an elision mark inside a trace
//!   marks it `truncated`.

use super::toolscan::{
    frame_index, is_elision, is_kernel_address, is_user_address, numbered_lines, parse_0x,
    parse_hex, parse_id, skip_elision, sniff_window, strip_number, IndexTracker,
};
use super::{DumpBuilder, FrameContext, FrameRecord, StackStatus, TaskHeader};

/// Cheap sniffing: a `#0` trace frame and one more, at least one of them with a
/// source location or a `sym+0xoff/0xsize` symbol (shapes gdb and eu-stack
/// never print).
#[must_use]
pub fn looks_like(text: &str) -> bool {
    let (mut frames, mut first, mut distinctive) = (0, false, false);
    for line in sniff_window(text).lines() {
        if let Some(f) = parse_frame(line) {
            frames += 1;
            first |= f.index == 0;
            distinctive |= f.source || f.size.is_some();
            if frames >= 2 && first && distinctive {
                return true;
            }
        }
    }
    false
}

/// Parses drgn stack-trace text into `b`.
pub fn parse(text: &str, b: &mut DumpBuilder) {
    let mut index = IndexTracker::default();
    let mut next_pid: Option<i64> = None;
    // The last frame pushed came from user space or entered from it.
    let mut from_user = false;
    for (line_no, line) in numbered_lines(text) {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if let Some(f) = parse_frame(line) {
            if f.index == 0 || !b.has_open_task() {
                b.begin_task(
                    TaskHeader {
                        pid: next_pid.take(),
                        line: line_no,
                        ..TaskHeader::default()
                    },
                    "",
                );
                index.reset();
                from_user = false;
            }
            if !index.follows(f.index) {
                b.force_status(StackStatus::Truncated);
            }
            let frame = record(line_no, &f, from_user);
            from_user =
                frame.context == FrameContext::User || f.function.is_some_and(enters_from_user);
            b.push_frame(&frame);
        } else if let Some(code) = trimmed.strip_prefix(">>>") {
            // The drgn REPL prompt: remember what `stack_trace(...)` was given.
            if let Some(args) = stack_trace_args(code) {
                next_pid = parse_id(args.trim());
            }
        } else if is_frame_repr(line) {
            // A single StackFrame's repr: restates a frame of a trace.
        } else if is_elision(trimmed) {
            skip_elision(b, line_no, line);
        } else {
            b.skip(line_no, line);
        }
    }
    b.end_task();
}

/// The argument of `stack_trace(...)` / `prog.stack_trace(...)` in a prompt line.
fn stack_trace_args(code: &str) -> Option<&str> {
    let (_, args) = code.split_once("stack_trace(")?;
    Some(args.split_once(')')?.0)
}

struct Frame<'a> {
    index: u64,
    function: Option<&'a str>,
    offset: Option<u64>,
    size: Option<u64>,
    address: Option<u64>,
    source: bool,
}

/// The kernel's entry points from user space (system calls, exceptions and
/// interrupts taken in user mode): the frame below one is user code.
fn enters_from_user(function: &str) -> bool {
    [
        "entry_SYSCALL",
        "entry_INT80",
        "entry_SYSENTER",
        "el0t_",
        "el0_",
        "ret_to_user",
        "system_call",
    ]
    .iter()
    .any(|p| function.starts_with(p))
}

/// `from_user`: the frame before was user code or an entry from it.
fn record(line_no: usize, f: &Frame<'_>, from_user: bool) -> FrameRecord {
    let user = f.function.is_none()
        && f.address.is_some_and(|pc| {
            is_user_address(pc) || (from_user && pc != 0 && !is_kernel_address(pc))
        });
    FrameRecord {
        address: f.address,
        function: f.function.map(str::to_owned),
        offset: f.offset,
        size: f.size,
        reliable: true,
        context: if user {
            FrameContext::User
        } else {
            FrameContext::Task
        },
        line: line_no,
        ..FrameRecord::default()
    }
}

/// ` (file:line[:col])` at the end of a trace line: the body before it, and
/// whether there was one.
fn split_source(body: &str) -> (&str, bool) {
    let before = body.strip_suffix(')').and_then(|inner| {
        let open = inner.rfind(" (")?;
        let location = &inner[open + 2..];
        let head = strip_number(location)?;
        let file = strip_number(head).unwrap_or(head);
        (!file.is_empty() && !location.contains(char::is_whitespace)).then_some(&inner[..open])
    });
    match before {
        Some(b) => (b, true),
        None => (body, false),
    }
}

fn parse_frame(line: &str) -> Option<Frame<'_>> {
    let (index, rest) = frame_index(line)?;
    if !rest.starts_with(' ') {
        return None;
    }
    let (body, source) = split_source(rest.trim());
    if body.is_empty() || body.contains(char::is_whitespace) {
        return None;
    }
    let mut f = Frame {
        index,
        function: None,
        offset: None,
        size: None,
        address: None,
        source,
    };
    if body == "???" {
        return Some(f);
    }
    if let Some(pc) = parse_0x(body) {
        f.address = Some(pc);
        return Some(f);
    }
    if let Some((sym, off_size)) = body.rsplit_once("+0x") {
        let (off, size) = off_size.split_once("/0x")?;
        if sym.is_empty() {
            return None;
        }
        f.function = Some(sym);
        f.offset = Some(parse_hex(off)?);
        f.size = Some(parse_hex(size)?);
        return Some(f);
    }
    if body.starts_with(['#', '(', '<', '[']) {
        return None;
    }
    f.function = Some(body);
    Some(f)
}

/// `#N at 0x... (sym+off/size) in f at file:line:col [(inlined)]`, `#N at ???`.
fn is_frame_repr(line: &str) -> bool {
    frame_index(line).is_some_and(|(_, rest)| {
        rest.strip_prefix(" at ")
            .is_some_and(|r| r.starts_with("0x") || r.starts_with("???"))
    })
}

#[cfg(test)]
mod tests {
    use super::super::toolscan::testing::{assert_sniffs_only_these, fuzz, run, sample};
    use super::super::{Dump, Format};
    use super::*;

    const SAMPLE: &str = "drgn-stack-trace.txt";

    fn dump() -> Dump {
        run(Format::Drgn, parse, sample(SAMPLE))
    }

    /// (function, offset, size, address, context) of frame `i`.
    fn frame(
        d: &Dump,
        i: usize,
    ) -> (
        Option<&str>,
        Option<u64>,
        Option<u64>,
        Option<u64>,
        FrameContext,
    ) {
        (
            d.name(d.frame_function(i)),
            (d.frame_offset(i) != u64::MAX).then_some(d.frame_offset(i)),
            (d.frame_size(i) != u64::MAX).then_some(d.frame_size(i)),
            d.frame_has_address(i).then_some(d.frame_address(i)),
            d.frame_context[i],
        )
    }

    #[test]
    fn sniffs_only_its_own_sample() {
        assert_sniffs_only_these(&[SAMPLE, USER], looks_like);
    }

    const USER: &str = "drgn-user-frames-0.0.27.txt";

    #[test]
    fn user_frames_end_the_kernel_stack() {
        let d = run(Format::Drgn, parse, sample(USER));
        assert_eq!(d.task_count(), 3);
        let pids: Vec<_> = d.headers().map(|h| h.pid).collect();
        assert_eq!(pids, [Some(4107), Some(4122), Some(63)]);
        assert_eq!(d.skipped_lines, 1);
        // Not truncated, not unreliable: the user PC is where the kernel
        // stack ends.
        assert!(d.stack_status.iter().all(|&s| s == StackStatus::Complete));
        assert!(d.frame_reliable.iter().all(|&r| r));
        assert!(d.headers().all(|h| h.lost == super::super::TaskLoss::NONE));
        let last = d.frames_of(0).end - 1;
        assert_eq!(
            frame(&d, last),
            (None, None, None, Some(0x7f2c_5e4e_57fa), FrameContext::User)
        );
        // A non-PIE program's PC, below 4 GiB, after the syscall entry.
        let last = d.frames_of(1).end - 1;
        assert_eq!(
            frame(&d, last),
            (None, None, None, Some(0x40_1b3e), FrameContext::User)
        );
        let user = d
            .frame_context
            .iter()
            .filter(|&&c| c == FrameContext::User)
            .count();
        assert_eq!(user, 2);
        // A low bare PC with no entry frame before it stays kernel.
        let d = run(Format::Drgn, parse, "#0  schedule (a.c:1)\n#1  0x401b3e\n");
        assert_eq!(d.frame_context[1], FrameContext::Task);
    }

    #[test]
    fn golden_counts() {
        let d = dump();
        assert_eq!(d.task_count(), 3);
        assert_eq!(d.frame_count(), 14 + 14 + 10);
        // Skipped: line 1 (provenance), the sample's three `# ---- ... ----`
        // section notes (lines 2, 21, 38), and line 22 `PID 1 process name:
        // systemd`, printed by the PR's own script, not by drgn.
        let lines: Vec<usize> = d.skipped_samples.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![1, 2, 21, 22, 38]);
        assert_eq!(d.skipped_lines, 5);
        assert!(d.frame_reliable.iter().all(|&r| r));
        assert!(!d.frame_inlined.iter().any(|&i| i));
        assert!(d.stack_status.iter().all(|&s| s == StackStatus::Complete));
    }

    #[test]
    fn user_guide_trace() {
        let d = dump();
        // `>>> trace = stack_trace(115)` names the pid.
        assert_eq!(d.header(0).pid, Some(115));
        assert_eq!(d.header(0).line, 5);
        let r = d.frames_of(0);
        assert_eq!(
            frame(&d, r.start),
            (Some("context_switch"), None, None, None, FrameContext::Task)
        );
        assert_eq!(
            frame(&d, r.start + 12),
            (
                Some("entry_SYSCALL_64"),
                Some(0x7c),
                Some(0x15b),
                None,
                FrameContext::Task
            )
        );
        assert_eq!(
            frame(&d, r.start + 13),
            (None, None, None, Some(0x7f33_4407_2af7), FrameContext::User)
        );
    }

    #[test]
    fn later_traces() {
        let d = dump();
        // No prompt names PR #518's pid (its script printed it: skipped).
        assert_eq!(d.header(1).pid, None);
        let r = d.frames_of(1);
        assert_eq!(
            frame(&d, r.start + 12),
            (
                Some("entry_SYSCALL_64"),
                Some(0xaf),
                Some(0x14c),
                None,
                FrameContext::Task
            )
        );
        // `prog.stack_trace(task)`: not a pid.
        assert_eq!(d.header(2).pid, None);
        let names: Vec<&str> = d
            .frames_of(2)
            .map(|i| d.name(d.frame_function(i)).unwrap())
            .collect();
        assert_eq!(names[0], "queued_spin_lock_slowpath");
        assert_eq!(names[9], "submit_bio");
    }

    #[test]
    fn other_forms() {
        let text = "\
#0  ???
#1  foo+0x10/0x20
#3  bar
...
#0  0xffffffffc0001234
";
        let d = run(Format::Drgn, parse, text);
        assert_eq!(d.skipped_lines, 1);
        assert_eq!(d.task_count(), 2);
        assert_eq!(frame(&d, 0), (None, None, None, None, FrameContext::Task));
        assert_eq!(d.stack_status[0], StackStatus::Truncated);
        assert_eq!(
            frame(&d, 3),
            (
                None,
                None,
                None,
                Some(0xffff_ffff_c000_1234),
                FrameContext::Task
            )
        );
    }

    #[test]
    fn survives_mutations() {
        fuzz(Format::Drgn, parse, sample(SAMPLE), 0xd26, 300);
    }
}
