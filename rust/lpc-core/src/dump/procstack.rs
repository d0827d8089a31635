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
use super::lines::{looks_like_frame, scan_dec, scan_hex, trim_end_ws, trim_start_ws, Lines};
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

/// How much of a text detection reads for a pasted `cat .../stack` command.
const PASTE_SNIFF_BYTES: usize = 64 * 1024;

/// Whether the text looks like a `/proc/PID/stack` file: its first line that
/// is neither blank nor a `#` comment is a frame; or it is a paste, in which a
/// `cat /proc/PID/stack` command (behind a prompt) is followed by a frame.
#[must_use]
pub fn looks_like(text: &str) -> bool {
    let mut first = true;
    let mut after_stack_command = false;
    for (number, line) in Lines::new(super::lines::head(text, PASTE_SNIFF_BYTES)) {
        if let Some(cmd) = parse_command(line) {
            after_stack_command = cmd.file == "stack";
            first = false;
            continue;
        }
        if line.trim().is_empty() || (first && line.starts_with('#')) {
            continue;
        }
        let frame = matches!(
            parse_proc_line(trim_start_ws(line), number),
            ProcLine::Frame(_) | ProcLine::EndMarker
        );
        if first && frame && !line.starts_with([' ', '\t']) {
            return true;
        }
        if after_stack_command {
            return frame;
        }
        first = false;
    }
    false
}

/// A pasted `cat /proc/PID[/task/TID]/FILE` command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProcCommand<'a> {
    pid: i64,
    /// The thread of a `/task/TID/` path.
    tid: Option<i64>,
    file: &'a str,
}

impl ProcCommand<'_> {
    /// The thread the file is about.
    fn thread(&self) -> i64 {
        self.tid.unwrap_or(self.pid)
    }
}

/// Reads a `cat /proc/...` command behind an optional prompt and `sudo`: the
/// text before `cat` is empty or ends like a prompt (`$`, `#`, `%`, `>`),
/// possibly after a word a `wchan` left there without a line end.
pub(crate) fn parse_command(line: &str) -> Option<ProcCommand<'_>> {
    let at = memchr::memmem::find(line.as_bytes(), b"cat /proc/")?;
    let before = trim_end_ws(&line[..at]);
    let before = match before.strip_suffix("sudo") {
        Some(b) if b.is_empty() || b.ends_with([' ', '\t']) => trim_end_ws(b),
        _ => before,
    };
    if !(before.is_empty() || before.ends_with(['$', '#', '%', '>'])) {
        return None;
    }
    let rest = &trim_end_ws(line)[at + "cat /proc/".len()..];
    let (pid, n) = scan_dec(rest.as_bytes())?;
    let mut rest = &rest[n..];
    let mut tid = None;
    if let Some(r) = rest.strip_prefix("/task/") {
        let (t, n) = scan_dec(r.as_bytes())?;
        tid = Some(i64::try_from(t).ok()?);
        rest = &r[n..];
    }
    let file = rest.strip_prefix('/')?;
    if file.is_empty() || !file.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
        return None;
    }
    Some(ProcCommand {
        pid: i64::try_from(pid).ok()?,
        tid,
        file,
    })
}

/// A shell prompt with a command after it: `$ cmd`, `user@host:dir$ cmd`,
/// `[user@host dir]# cmd`, `host:~ # cmd` (SUSE). `# ` lines are comments
/// of the format already.
pub(crate) fn is_prompt(line: &str) -> bool {
    let t = trim_start_ws(line);
    if t.starts_with("$ ") {
        return true;
    }
    if t.starts_with('[') {
        return ["]# ", "]$ "]
            .iter()
            .filter_map(|end| t.find(end))
            .any(|close| t[..close].contains('@'));
    }
    let Some((word, rest)) = t.split_once(' ') else {
        return false;
    };
    let user_host = word.contains('@') && word.contains(':') && word.ends_with(['$', '#']);
    let suse = word.contains(':') && (rest.starts_with("# ") || rest.starts_with("$ "));
    user_host || suse
}

/// What a pasted command announced for the next line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Nothing,
    /// The comm of this thread.
    Comm(i64),
    /// One word (a wait channel, or `0`).
    Wchan,
    /// The kernel release (`uname -r`).
    Release,
}

/// The state of a paste: whether commands were seen, what the last one
/// announced, the last comm read.
struct Paste<'a> {
    seen: bool,
    expect: Expect,
    comm: Option<(i64, &'a str)>,
}

/// Handles a line that is not a frame in a paste: a command, a prompt, a
/// command's output. False when it is none of these.
fn paste_line<'a>(p: &mut Paste<'a>, number: usize, line: &'a str, b: &mut DumpBuilder) -> bool {
    if let Some(cmd) = parse_command(line) {
        close_proc_task(b);
        p.seen = true;
        p.expect = Expect::Nothing;
        match cmd.file {
            "stack" => {
                let comm = p
                    .comm
                    .filter(|(t, _)| *t == cmd.thread())
                    .map_or("", |c| c.1);
                b.begin_task(
                    TaskHeader {
                        pid: Some(cmd.pid),
                        tid: Some(cmd.thread()),
                        tgid: cmd.tid.map(|_| cmd.pid),
                        line: number,
                        ..TaskHeader::default()
                    },
                    comm,
                );
            }
            "comm" => p.expect = Expect::Comm(cmd.thread()),
            "wchan" => p.expect = Expect::Wchan,
            _ => {}
        }
        return true;
    }
    if is_prompt(line) {
        close_proc_task(b);
        p.seen = true;
        p.expect = if trim_end_ws(line).ends_with(" uname -r") {
            Expect::Release
        } else {
            Expect::Nothing
        };
        b.skip(number, line);
        return true;
    }
    let t = line.trim();
    if t.is_empty() {
        // A blank line right after `cat .../stack`: the frames may follow.
        return b.has_open_task() && b.open_frame_count() == 0;
    }
    match std::mem::replace(&mut p.expect, Expect::Nothing) {
        Expect::Comm(thread) => {
            p.comm = Some((thread, t));
            true
        }
        Expect::Wchan => !t.contains(char::is_whitespace),
        Expect::Release if !t.contains(char::is_whitespace) && b.kernel_release().is_none() => {
            b.set_kernel_release(t);
            true
        }
        Expect::Release | Expect::Nothing => false,
    }
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
    // Whether anything was read (a frame, a command): else the text is an
    // empty stack file.
    let mut read = false;
    let mut paste = Paste {
        seen: false,
        expect: Expect::Nothing,
        comm: None,
    };
    for (number, line) in Lines::new(text) {
        match parse_proc_line(trim_start_ws(line), number) {
            ProcLine::Frame(frame) => {
                paste.expect = Expect::Nothing;
                if !b.has_open_task() {
                    if paste.seen {
                        // No `cat .../stack` introduced these frames.
                        b.begin_unreadable_task(number);
                    } else {
                        b.begin_task(
                            TaskHeader {
                                line: number,
                                ..TaskHeader::default()
                            },
                            "",
                        );
                    }
                }
                read = true;
                b.push_frame_ref(&frame);
            }
            ProcLine::EndMarker => close_proc_task(b),
            // A damaged frame line inside a stack: the frame is lost, the
            // stack goes on (it must not split into two clean stacks).
            ProcLine::Other if b.has_open_task() && looks_like_frame(line) => {
                b.skip(number, line);
            }
            ProcLine::Other if paste_line(&mut paste, number, line, b) => read = true,
            ProcLine::Other => {
                close_proc_task(b);
                if !line.trim().is_empty() {
                    b.skip(number, line);
                }
            }
        }
    }
    close_proc_task(b);
    if !read {
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
    use super::super::{Dump, Format, TaskLoss, NO_NAME};
    use super::*;

    const MODERN: &str = include_str!("../../../../tests/data/proc-pid-stack-6.18.txt");
    const LEGACY: &str = include_str!("../../../../tests/data/proc-pid-stack-legacy-addresses.txt");
    const PASTED: &str = include_str!("../../../../tests/data/proc-pid-stack-pasted-tickets.txt");

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

    #[test]
    fn pasted_sample_names_its_tasks() {
        let d = run(PASTED);
        assert_eq!(d.task_count(), 6);
        let ids: Vec<_> = d.headers().map(|h| (h.pid, h.tid, h.tgid)).collect();
        assert_eq!(
            ids,
            [
                (Some(2291), Some(2291), None),
                (Some(2291), Some(2294), Some(2291)),
                (Some(412), Some(412), None),
                (Some(3016), Some(3016), None),
                (Some(1187), Some(1187), None),
                (Some(977), Some(977), None),
            ]
        );
        let comms: Vec<_> = (0..6).map(|t| d.comm(t)).collect();
        // A comm goes to the stack of its own thread only.
        assert_eq!(comms, ["rsync", "", "jbd2/sda1-8", "", "", ""]);
        let lines: Vec<_> = d.headers().map(|h| h.line).collect();
        assert_eq!(lines, [8, 17, 27, 31, 39, 48]);
        let counts: Vec<_> = (0..6).map(|t| d.frames_of(t).len()).collect();
        assert_eq!(counts, [8, 6, 3, 0, 7, 3]);
        assert_eq!(
            d.stack_status,
            [
                StackStatus::Complete,
                StackStatus::Complete,
                StackStatus::Complete,
                // `cat` printed nothing: a running task, unknown.
                StackStatus::Empty,
                StackStatus::Complete,
                StackStatus::Complete,
            ]
        );
        assert!(d.headers().all(|h| h.lost == TaskLoss::NONE));
        // Indented frames, module tags, real addresses.
        assert_eq!(names(&d, 1)[0], "do_select");
        let ext4 = d.frames_of(0).start + 3;
        assert_eq!(d.name(d.frame_module(ext4)), Some("ext4"));
        assert_eq!(d.name(d.frame_module(d.frames_of(2).start)), Some("jbd2"));
        let old = d.frames_of(4).start;
        assert_eq!(d.frame_address(old), 0xffff_ffff_c04a_1b2e);
        assert_eq!(d.name(d.frame_module(old + 1)), Some("ext4"));
        assert_eq!(d.kernel_release.as_deref(), Some("6.1.0-18-amd64"));
        // Skipped: provenance, three prose lines, the `uname -r` prompt. The
        // comm and wchan commands, their outputs (the wchan word glued to the
        // next prompt too), the release and the end markers are read.
        let skipped: Vec<_> = d.skipped_samples.iter().map(|(l, _)| *l).collect();
        assert_eq!(skipped, [1, 2, 3, 32, 35]);
    }

    #[test]
    fn pasted_commands() {
        let cmd = |l| parse_command(l).map(|c| (c.pid, c.tid, c.file));
        assert_eq!(cmd("$ cat /proc/1234/stack"), Some((1234, None, "stack")));
        assert_eq!(cmd("# cat /proc/1234/stack "), Some((1234, None, "stack")));
        assert_eq!(
            cmd("user@host:~$ sudo cat /proc/1234/task/1240/stack"),
            Some((1234, Some(1240), "stack"))
        );
        assert_eq!(
            cmd("[root@host ~]# cat /proc/7/wchan"),
            Some((7, None, "wchan"))
        );
        assert_eq!(
            cmd("futex_wait[root@host ~]# cat /proc/7/comm"),
            Some((7, None, "comm"))
        );
        assert_eq!(cmd("cat /proc/7/stack"), Some((7, None, "stack")));
        assert_eq!(cmd("please cat /proc/7/stack"), None);
        assert_eq!(cmd("$ pseudo cat /proc/7/stack"), None);
        assert_eq!(cmd("$ cat /proc/self/stack"), None);
        assert_eq!(cmd("$ cat /proc/7/stack | head"), None);
        assert!(is_prompt("user@host:~$ ls"));
        assert!(is_prompt("[root@db02 ~]# ps"));
        assert!(is_prompt("sles15:~ # uname -a"));
        assert!(is_prompt("$ echo"));
        assert!(!is_prompt("[<0>] f+0x1/0x2"));
        assert!(!is_prompt("rsync"));
    }

    #[test]
    fn pasted_shapes() {
        let text = "\
$ cat /proc/10/task/11/comm
worker
$ cat /proc/10/task/11/stack
[<0>] a+0x1/0x2

[<0>] b+0x1/0x2
[root@h ~]# cat /proc/12/stack
\t[<0>] c+0x1/0x2
  [<0>] d+0x1/0xzz
[root@h ~]# cat /proc/13/stack

[<0>] e+0x1/0x2
";
        let d = run(text);
        assert_eq!(d.task_count(), 4);
        assert_eq!(
            (d.comm(0), d.header(0).tid, d.header(0).tgid),
            ("worker", Some(11), Some(10))
        );
        assert_eq!(names(&d, 0), ["a"]);
        // Frames after a blank line, with no command of their own: their
        // task's header is lost.
        assert_eq!(names(&d, 1), ["b"]);
        assert_eq!(d.header(1).lost, TaskLoss::HEADER);
        assert_eq!(d.header(1).pid, None);
        // A damaged frame line: lost frame, the stack goes on.
        assert_eq!(names(&d, 2), ["c"]);
        assert_eq!(d.header(2).lost, TaskLoss::FRAME_LINE);
        assert_eq!(d.header(2).lost_line, 9);
        // A blank line right after the command: the frames are its.
        assert_eq!((d.header(3).pid, names(&d, 3)), (Some(13), vec!["e"]));
        assert_eq!(d.header(3).lost, TaskLoss::NONE);
        assert_eq!(d.skipped_lines, 1);
    }

    #[test]
    fn a_lone_command_is_one_unknown_task() {
        let d = run("# cat /proc/99/stack\n");
        assert_eq!(d.task_count(), 1);
        assert_eq!(d.header(0).pid, Some(99));
        assert_eq!(d.stack_status, [StackStatus::Empty]);
    }

    #[test]
    fn paste_detection() {
        assert!(looks_like(PASTED));
        assert_eq!(super::super::detect(PASTED), Some(Format::ProcStack));
        assert!(looks_like("$ cat /proc/1/stack\n    [<0>] f+0x1/0x2\n"));
        assert!(!looks_like(
            "note\nuser@h:~$ cat /proc/1/stack\nuser@h:~$ ls\n"
        ));
        assert!(!looks_like("$ cat /proc/1/status\nName: x\n"));
        assert!(!looks_like(
            "Call Trace:\n [<ffffffff82a9df9c>] schedule+0x7c/0x1b0\n"
        ));
    }
}
