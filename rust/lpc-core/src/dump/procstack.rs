//! One `/proc/PID/task/TID/stack` file (`fs/proc/base.c: proc_pid_stack()`).
//!
//! Grammar, one frame per line, innermost first:
//!
//! ```text
//! v4.17+  : [<0>] name+0xoff/0xsize[ [module]]
//! ..v4.16 : [<ffffffff811aadc6>] name+0xoff/0xsize[ [module]]   ("[<%pK>] %pB": real address,
//!           or zeros under kptr_restrict)      [<ffffffffffffffff>] 0xffffffffffffffff  (ULONG_MAX
//!           end marker, printed when the saved trace had room for it)
//! ```
//!
//! A file holds one task's stack; pid, tid and comm come from its path and
//! `stat`, not from the text. Collections of such files (one stack after the
//! other) are read too: a blank line, a `#` comment line or the ULONG_MAX
//! marker ends a stack, and each stack becomes a task without pid. Comment
//! lines are counted as skipped, blank lines are not.
//!
//! What the text cannot say, and the parser therefore reports:
//! * `/proc` stacks come from `stack_trace_save_tsk()`, which drops every
//!   `.sched.text`/`.lock.text` address (`kernel/stacktrace.c:
//!   stack_trace_consume_entry_nosched`), never marks unreliable words and is
//!   cut at 64 entries (`MAX_STACK_TRACE_DEPTH` in `fs/proc/base.c`): a stack of
//!   64 frames or more is `Truncated`, an empty one `Empty` (unknown).
//! * Idle tasks (pid 0) have no `/proc` entry at all.

use super::intern::{Arena, Interner};
use super::ksym::{parse_symbol, Symbol};
use super::lines::{looks_like_frame, scan_hex, trim_end_ws, Lines};
use super::{DumpBuilder, FrameRef, FrameSite, StackStatus, TaskHeader};

/// `MAX_STACK_TRACE_DEPTH` of `fs/proc/base.c`: a stack this deep may be cut.
pub const PROC_STACK_DEPTH: usize = 64;

/// Warning attached to every dump read from `/proc` stacks.
pub const WARN_NOSCHED: &str = "/proc stacks omit .sched.text and .lock.text functions \
(schedule, __schedule, mutex/rwsem slow paths, _raw_spin_lock*...): a patch to one of them \
cannot be judged from this dump";
/// Warning attached to every dump read from `/proc` stacks.
pub const WARN_IDLE: &str = "idle tasks (pid 0, swapper/N) have no /proc entry: \
they are not in this dump, although a livepatch transition must switch them too";

/// What one `/proc` stack line is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ProcLine<'a> {
    Frame(FrameRef<'a>),
    /// `[<ffffffffffffffff>] 0xffffffffffffffff`: the pre-5.2 end-of-trace marker.
    EndMarker,
    Other,
}

/// Reads `[<addr>] [? ]symbol` (the `? ` is not printed by the kernel; lpc's
/// snapshot writer uses it for frames it got from a format that has it).
pub(crate) fn parse_proc_line(line: &str, number: usize) -> ProcLine<'_> {
    let b = line.as_bytes();
    if b.len() < 6 || b[0] != b'[' || b[1] != b'<' {
        return ProcLine::Other;
    }
    let Some((bracket, n)) = scan_hex(&b[2..]) else {
        return ProcLine::Other;
    };
    let after = 2 + n;
    if b.len() < after + 3 || b[after] != b'>' || b[after + 1] != b']' || b[after + 2] != b' ' {
        return ProcLine::Other;
    }
    let mut rest = &line[after + 3..];
    let reliable = match rest.strip_prefix("? ") {
        Some(r) => {
            rest = r;
            false
        }
        None => true,
    };
    let Some((symbol, tail)) = parse_symbol(rest) else {
        return ProcLine::Other;
    };
    if !tail_is_benign(tail) {
        return ProcLine::Other;
    }
    let mut frame = FrameRef {
        address: (bracket != 0).then_some(bracket),
        reliable,
        line: number,
        ..FrameRef::default()
    };
    match symbol {
        Symbol::Raw(addr) => {
            if bracket == u64::MAX && addr == u64::MAX {
                return ProcLine::EndMarker;
            }
            frame.address = frame.address.or((addr != 0).then_some(addr));
        }
        Symbol::Named {
            name,
            offset,
            size,
            module,
        } => {
            frame.function = Some(name);
            frame.offset = offset;
            frame.size = size;
            frame.module = module;
        }
    }
    ProcLine::Frame(frame)
}

/// The prefix of a modern (4.17+) `/proc` stack line: the address is hidden.
const HIDDEN_ADDRESS: &str = "[<0>] ";

/// Remembers, for each `[<0>] ` line text already seen, the frame token and
/// reliability it parsed to: a snapshot repeats a few thousand distinct
/// frame texts two million times, and a hit skips the symbol parse and three
/// intern lookups. Only `[<0>] ` lines are remembered: for them the frame is
/// a function of the text alone (no address from the brackets). The texts
/// are copied into one arena, so the memo outlives the piece of input it
/// saw them in (files are parsed piece by piece).
#[derive(Default)]
pub(crate) struct FrameMemo {
    texts: Interner<str>,
    arena: Arena,
    /// `(token, reliable)` per text id.
    values: Vec<(u32, bool)>,
}

impl FrameMemo {
    /// Pushes `line` as a frame of the open task when its text was seen
    /// before; false when it must be parsed (and then given to [`FrameMemo::push_new`]).
    pub(crate) fn push_known(&mut self, line: &str, number: usize, b: &mut DumpBuilder) -> bool {
        let Some(key) = line.strip_prefix(HIDDEN_ADDRESS) else {
            return false;
        };
        if self.values.is_empty() {
            return false;
        }
        match self.texts.get(key, self.texts.hash(key), &self.arena) {
            Some(id) => {
                let (token, reliable) = self.values[id as usize];
                b.push_token(
                    token,
                    FrameSite {
                        reliable,
                        line: number,
                        ..FrameSite::default()
                    },
                );
                true
            }
            None => false,
        }
    }

    /// Parses a frame line and pushes it to the open task, remembering its
    /// token when the line is a `[<0>] ` one.
    pub(crate) fn push_new(&mut self, line: &str, frame: &FrameRef<'_>, b: &mut DumpBuilder) {
        let token = b.intern_token(frame);
        b.push_token(
            token,
            FrameSite {
                reliable: frame.reliable,
                context: frame.context,
                inlined: frame.inlined,
                line: frame.line,
            },
        );
        let Some(key) = line.strip_prefix(HIDDEN_ADDRESS) else {
            return;
        };
        let id = self.texts.intern(key, &mut self.arena);
        if id as usize == self.values.len() {
            self.values.push((token, frame.reliable));
        }
    }
}

/// What may follow a frame's symbol: nothing, or a `(file:line)` group
/// (the proposed `CONFIG_KALLSYMS_LINEINFO` suffix).
fn tail_is_benign(tail: &str) -> bool {
    let t = trim_end_ws(tail);
    t.is_empty() || {
        let t = t.trim_start();
        t.starts_with('(') && t.ends_with(')')
    }
}

/// Whether the text looks like a `/proc/PID/stack` file: its first line that
/// is neither blank nor a `#` comment is a frame.
#[must_use]
pub fn looks_like(text: &str) -> bool {
    for (number, line) in Lines::new(text) {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        return matches!(
            parse_proc_line(line, number),
            ProcLine::Frame(_) | ProcLine::EndMarker
        );
    }
    false
}

/// Closes the open task with the `/proc` rules (64 frames = maybe cut).
pub(crate) fn close_proc_task(b: &mut DumpBuilder) {
    if b.has_open_task() && b.open_frame_count() >= PROC_STACK_DEPTH {
        b.force_status(StackStatus::Truncated);
    }
    b.end_task();
}

/// Parses `/proc/PID/stack` text; see the module docs for what ends a stack.
pub fn parse(text: &str, b: &mut DumpBuilder) {
    b.warn(WARN_NOSCHED);
    b.warn(WARN_IDLE);
    let mut tasks = 0usize;
    for (number, line) in Lines::new(text) {
        match parse_proc_line(line, number) {
            ProcLine::Frame(frame) => {
                if !b.has_open_task() {
                    b.begin_task(
                        TaskHeader {
                            line: number,
                            ..TaskHeader::default()
                        },
                        "",
                    );
                    tasks += 1;
                }
                b.push_frame_ref(&frame);
            }
            ProcLine::EndMarker => close_proc_task(b),
            // A damaged frame line inside a stack: the frame is lost, the
            // stack goes on (it must not split into two clean stacks).
            ProcLine::Other if b.has_open_task() && looks_like_frame(line) => {
                b.skip(number, line);
            }
            ProcLine::Other => {
                close_proc_task(b);
                if !line.trim().is_empty() {
                    b.skip(number, line);
                }
            }
        }
    }
    close_proc_task(b);
    if tasks == 0 {
        // An empty stack file is a real answer (a running task, a zombie):
        // one task whose stack is unknown, never "no task".
        b.begin_task(
            TaskHeader {
                line: 1,
                ..TaskHeader::default()
            },
            "",
        );
        b.end_task();
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Dump, Format, NO_NAME};
    use super::*;

    const MODERN: &str = include_str!("../../../../tests/data/proc-pid-stack-6.18.txt");
    const LEGACY: &str = include_str!("../../../../tests/data/proc-pid-stack-legacy-addresses.txt");

    fn run(text: &str) -> Dump {
        let mut b = DumpBuilder::new(Format::ProcStack);
        parse(text, &mut b);
        b.finish()
    }

    fn names(d: &Dump, t: usize) -> Vec<&str> {
        d.frames_of(t)
            .map(|i| d.name(d.frame_function(i)).unwrap_or("?"))
            .collect()
    }

    #[test]
    fn single_modern_stack() {
        let d = run("[<0>] futex_do_wait+0x46/0x90\n[<0>] do_syscall_64+0x71/0x280\n");
        assert_eq!(d.task_count(), 1);
        assert_eq!(names(&d, 0), ["futex_do_wait", "do_syscall_64"]);
        assert_eq!(d.frame_offset(0), 0x46);
        assert_eq!(d.frame_size(0), 0x90);
        assert!(!d.frame_has_address(0));
        assert_eq!(d.stack_status, [StackStatus::Complete]);
        assert_eq!(d.skipped_lines, 0);
        assert_eq!(d.warnings.len(), 2);
    }

    #[test]
    fn empty_file_is_one_unknown_task() {
        let d = run("");
        assert_eq!(d.task_count(), 1);
        assert_eq!(d.stack_status, [StackStatus::Empty]);
    }

    #[test]
    fn legacy_sample_has_four_stacks_with_addresses() {
        let d = run(LEGACY);
        assert_eq!(d.task_count(), 4);
        let counts: Vec<_> = (0..4).map(|t| d.frames_of(t).len()).collect();
        assert_eq!(counts, [20, 13, 5, 12]);
        // five provenance comment lines and two section comments; the four
        // ULONG_MAX markers are understood, not skipped.
        assert_eq!(d.skipped_lines, 7);
        let first = d.frames_of(1).start + 1;
        assert_eq!(d.name(d.frame_module(first)), Some("ext4"));
        assert_eq!(d.frame_address(first), 0xffff_ffff_a02f_1e47);
        assert!((0..d.frame_count()).all(|i| d.frame_has_address(i)));
        assert_eq!(
            (0..d.frame_count())
                .filter(|&i| d.frame_module(i) != NO_NAME)
                .count(),
            1
        );
        assert_eq!(names(&d, 2)[4], "entry_SYSCALL_64_fastpath");
    }

    #[test]
    fn modern_sample_read_as_plain_stacks() {
        let d = run(MODERN);
        // 12 headers + 1 provenance line are comments; the R and Z tasks'
        // empty stacks leave no task behind because nothing marks them.
        assert_eq!(d.skipped_lines, 13);
        assert_eq!(d.task_count(), 10);
        assert!(d.stack_status.iter().all(|&s| s == StackStatus::Complete));
    }

    #[test]
    fn deep_stacks_are_truncated() {
        let text = "[<0>] f+0x1/0x2\n".repeat(PROC_STACK_DEPTH);
        assert_eq!(run(&text).stack_status, [StackStatus::Truncated]);
    }

    #[test]
    fn detection() {
        assert!(looks_like(LEGACY));
        assert!(looks_like("[<0>] f+0x1/0x2\n"));
        assert!(!looks_like(" [<ffffffff82a9df9c>] schedule+0x7c/0x1b0\n"));
        assert!(!looks_like("Call Trace:\n[<0>] f+0x1/0x2"));
        assert!(!looks_like(""));
    }
}
