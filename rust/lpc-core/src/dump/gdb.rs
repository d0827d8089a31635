//! gdb `thread apply all bt` (with `info threads`), batch mode: user-space stacks.
//!
//! Grammar (gdb `stack.c` `print_frame_info()` / `print_frame()`, `thread.c`
//! `thread apply` / `info threads`):
//!
//! ```text
//! Thread 9 (Thread 0x7f50feffd6c0 (LWP 15133) "wl-flock"):            thread header
//! Thread 2 (LWP 1235):  /  Thread 1 (process 4242):                    without libthread_db / unthreaded
//! #0  0x00007f5117116897 in __GI_flock () at ../sysdeps/unix/syscall-template.S:120
//! #1  0x00007f5116ab5ba6 in fcntl_flock_impl (module=<optimized out>, code=2, fd=16) at .../fcntlmodule.c:296
//! #2  fcntl_flock (module=<optimized out>, ...) at .../fcntlmodule.c.h:165   no address: see below
//! #3  0x00007f51170a71f5 in start_thread () from /lib/x86_64-linux-gnu/libc.so.6
//! #4  <signal handler called>                                          signal frame marker
//! Backtrace stopped: previous frame inner to this frame (corrupt stack?)
//! ```
//!
//! Semantics and choices:
//!
//! * These are user-space stacks: every frame has context `User`, `module` is
//!   the library of `from LIB` (as printed), there are no offsets; gdb has no
//!   `?` notion: `reliable = true`. A warning says the kernel stacks of these
//!   threads are not in the dump.
//! * gdb omits the `0x... in` address of a frame whose PC is where an inlined
//!   call sits: the frame *above* it (inner) is the inlined one, and both share
//!   one PC (`frame_show_address()`). So a frame without an address (other than
//!   `#0`, whose address is omitted when the PC starts a line) marks the
//!   previous frame `inlined` and takes its address.
//! * `tid` comes from `LWP n` (or `process n`); `pid` from the one process the
//!   session names (`[Inferior 1 (process 15081) detached]`, `Attaching to
//!   process N`), when there is exactly one; `comm` is the quoted thread name.
//!   gdb stops every thread it attaches to, and says nothing about where the
//!   threads were before: `on_cpu` stays unknown.
//! * `info threads` rows repeat what the thread headers say and are not tasks.
//! * `Backtrace stopped: ...` marks the stack `unwind_failure`;
//!   `(More stack frames follow...)`, a gap in `#N` or an elision mark inside a
//!   thread mark it `truncated`.

use super::toolscan::{
    close_held_task, frame_index, is_elision, is_kernel_address, numbered_lines, parse_0x,
    parse_dec, parse_id, skip_elision, sniff_window, strip_number, take_word, trailing_group,
    IndexTracker,
};
use super::{DumpBuilder, FrameContext, FrameRecord, StackStatus, TaskHeader};

/// Cheap sniffing: a thread header, or two `#N  0x... in f (` frames.
#[must_use]
pub fn looks_like(text: &str) -> bool {
    let mut frames = 0;
    for line in sniff_window(text).lines() {
        if parse_thread_header(line).is_some() || parse_cpu_thread_header(line).is_some() {
            return true;
        }
        if parse_frame(line).is_some_and(|f| f.address.is_some()) {
            frames += 1;
            if frames >= 2 {
                return true;
            }
        }
    }
    false
}

/// Parses gdb output into `b`.
pub fn parse(text: &str, b: &mut DumpBuilder) {
    let pid = session_pid(text);
    let mut p = Parser::default();
    for (line_no, line) in numbered_lines(text) {
        p.line(b, line_no, line, pid);
    }
    p.finish_task(b);
    if p.user_frames {
        b.warn("gdb stacks are user space only: the kernel stacks of these threads are not in the dump");
    }
    if p.kernel_frames {
        b.warn(
            "gdb stacks of a stopped kernel (kgdb, qemu's gdbstub): each is the task that was \
             running on its CPU when gdb stopped it",
        );
    }
}

/// The process id the session names, when it names exactly one.
fn session_pid(text: &str) -> Option<i64> {
    let mut found: Option<i64> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        let candidate = trimmed
            .strip_prefix("[Inferior ")
            .and_then(|r| r.split_once("(process ").map(|(_, r)| r))
            .or_else(|| trimmed.strip_prefix("Attaching to process "))
            .or_else(|| {
                trimmed
                    .strip_prefix("Attaching to program")
                    .and_then(|r| r.rsplit_once(", process ").map(|(_, r)| r))
            });
        let Some(rest) = candidate else { continue };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let Some(pid) = parse_id(&rest[..digits]) else {
            continue;
        };
        match found {
            None => found = Some(pid),
            Some(p) if p == pid => {}
            Some(_) => return None,
        }
    }
    found
}

/// A parsed `Thread N (...):` header.
struct ThreadHeader<'a> {
    tid: i64,
    process: bool,
    name: Option<&'a str>,
}

/// qemu's gdbstub shows each virtual CPU as a thread:
/// `Thread 1.2 (CPU#1 [halted ]):` — the CPU number. The task it shows is the
/// one on that CPU.
fn parse_cpu_thread_header(line: &str) -> Option<i64> {
    let line = line.trim();
    if !line.starts_with("Thread ") || !line.ends_with("):") {
        return None;
    }
    // `Thread 1.2 (CPU#1 [running]):`, or gdb 12+'s `Thread 2 (Thread 1.2 (CPU#1 [running])):`.
    let inner = &line[line.find("(CPU#")? + "(CPU#".len()..];
    let digits = inner.bytes().take_while(u8::is_ascii_digit).count();
    parse_id(&inner[..digits])
}

fn parse_thread_header(line: &str) -> Option<ThreadHeader<'_>> {
    let rest = line.trim().strip_prefix("Thread ")?;
    let (number, rest) = take_word(rest)?;
    parse_dec(number)?;
    let inner = rest.trim_start().strip_prefix('(')?.strip_suffix("):")?;
    let (id, process) = match inner.split_once("LWP ") {
        Some((_, r)) => (r, false),
        None => (inner.split_once("process ")?.1, true),
    };
    let digits = id.bytes().take_while(u8::is_ascii_digit).count();
    let tid = parse_id(&id[..digits])?;
    let name = match (inner.find('"'), inner.rfind('"')) {
        (Some(open), Some(close)) if close > open => Some(&inner[open + 1..close]),
        _ => None,
    };
    Some(ThreadHeader { tid, process, name })
}

/// A parsed `#N ...` frame line.
struct Frame<'a> {
    index: u64,
    address: Option<u64>,
    function: Option<&'a str>,
    library: Option<&'a str>,
    signal: bool,
    /// A frame of a kernel: its address is in the kernel half, or its source
    /// file is in a kernel tree (gdb on a vmlinux: kgdb, qemu's gdbstub).
    kernel: bool,
}

/// Top-level directories of a kernel source tree (a frame `at kernel/sched/core.c:6500`).
const KERNEL_TREE: &[&str] = &[
    "kernel/",
    "arch/",
    "mm/",
    "fs/",
    "include/",
    "drivers/",
    "net/",
    "block/",
    "lib/",
    "init/",
    "ipc/",
    "security/",
    "sound/",
    "virt/",
    "crypto/",
    "io_uring/",
];

/// Whether a frame's address or source file places it in a kernel.
fn in_kernel(address: Option<u64>, file: Option<&str>) -> bool {
    if let Some(a) = address {
        return is_kernel_address(a);
    }
    let file = file.map(|f| f.trim_start_matches("./"));
    file.is_some_and(|f| KERNEL_TREE.iter().any(|dir| f.starts_with(dir)))
}

fn parse_frame(line: &str) -> Option<Frame<'_>> {
    let (index, rest) = frame_index(line)?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let mut rest = rest.trim();
    if rest == "<signal handler called>" {
        return Some(Frame {
            index,
            address: None,
            function: None,
            library: None,
            signal: true,
            kernel: false,
        });
    }
    let mut address = None;
    if let Some((word, after)) = take_word(rest) {
        if let Some(after) = after.strip_prefix(" in ") {
            address = Some(parse_0x(word)?);
            rest = after.trim_start();
        }
    }
    // ` from LIB` (no debug info) or ` at FILE:LINE` after the argument list.
    let mut library = None;
    let from = rest.rsplit_once(" from ").filter(|(before, lib)| {
        !lib.is_empty() && !lib.contains(char::is_whitespace) && before.ends_with(')')
    });
    let at = rest.rsplit_once(" at ").filter(|(before, location)| {
        before.ends_with(')')
            && strip_number(location)
                .is_some_and(|file| !file.is_empty() && !file.contains(char::is_whitespace))
    });
    let mut file = None;
    if let Some((before, lib)) = from {
        library = Some(lib);
        rest = before;
    } else if let Some((before, location)) = at {
        file = strip_number(location);
        rest = before;
    }
    // gdb always prints the argument list, `()` when empty: without it this is
    // not a gdb frame (crash's `#0 [sp] f at pc` for one).
    let (function, _args) = trailing_group(rest).filter(|(before, _)| before.ends_with(' '))?;
    let function = function.trim_end();
    if function.is_empty() || function.starts_with('#') {
        return None;
    }
    Some(Frame {
        index,
        address,
        function: (function != "??").then_some(function),
        library,
        signal: false,
        kernel: in_kernel(address, file),
    })
}

/// gdb's own notices in brackets.
const BRACKET_NOTICES: &[&str] = &[
    "[New LWP ",
    "[New Thread ",
    "[Thread debugging using libthread_db",
    "[Inferior ",
    "[Switching to ",
    "[Current thread is ",
    "[Thread ",
];

/// gdb's banner / notice lines that say nothing about stacks.
const NOTICES: &[&str] = &[
    "Using host libthread_db library ",
    "Reading symbols from ",
    "Attaching to process ",
    "Attaching to program",
    "Remote debugging using ",
    "Detaching from program",
    "Downloading separate debug info",
    "warning: ",
    "No locals.",
    "No symbol table info available.",
];

/// `info threads`: the column header, or a row `[*] N  Thread 0x.. (LWP n) "x"  frame`.
fn is_info_threads_line(trimmed: &str) -> bool {
    if trimmed.starts_with("Id") && trimmed.contains("Target Id") {
        return true;
    }
    let row = trimmed.strip_prefix("* ").unwrap_or(trimmed);
    take_word(row).is_some_and(|(id, rest)| {
        let rest = rest.trim_start();
        parse_dec(id).is_some()
            && ["Thread ", "LWP ", "process "]
                .iter()
                .any(|p| rest.starts_with(p))
    })
}

/// The stop location gdb prints on attach (`0x... in f (...) at file:line`)
/// and the source line it lists under it (`48\t../file.c: No such file...`).
fn is_stop_location(trimmed: &str, line: &str) -> bool {
    let stop = take_word(trimmed)
        .is_some_and(|(w, rest)| parse_0x(w).is_some() && rest.starts_with(" in "));
    let listing = line
        .split_once('\t')
        .is_some_and(|(n, _)| parse_dec(n).is_some());
    stop || listing
}

#[derive(Default)]
struct Parser {
    /// The previous frame, held back until we know whether it is inlined.
    held: Option<FrameRecord>,
    index: IndexTracker,
    /// Frames of user space / of a kernel were read (for the dump's warnings).
    user_frames: bool,
    kernel_frames: bool,
}

impl Parser {
    fn line(&mut self, b: &mut DumpBuilder, line_no: usize, line: &str, pid: Option<i64>) {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return;
        }
        if trimmed.starts_with("(gdb)") {
            // A prompt: what it ran prints its own stacks.
            self.finish_task(b);
        } else if let Some(cpu) = parse_cpu_thread_header(line) {
            self.finish_task(b);
            b.begin_task(
                TaskHeader {
                    cpu: Some(cpu),
                    on_cpu: Some(true),
                    line: line_no,
                    ..TaskHeader::default()
                },
                "",
            );
        } else if let Some(h) = parse_thread_header(line) {
            self.finish_task(b);
            b.begin_task(
                TaskHeader {
                    pid: if h.process { Some(h.tid) } else { pid },
                    tid: Some(h.tid),
                    line: line_no,
                    ..TaskHeader::default()
                },
                h.name.unwrap_or(""),
            );
        } else if let Some(f) = parse_frame(line) {
            self.frame(b, line_no, line, &f);
        } else if trimmed.starts_with("Backtrace stopped:") && b.has_open_task() {
            b.force_status(StackStatus::UnwindFailure);
        } else if trimmed == "(More stack frames follow...)" && b.has_open_task() {
            b.force_status(StackStatus::Truncated);
        } else if is_elision(trimmed) {
            skip_elision(b, line_no, line);
        } else if BRACKET_NOTICES.iter().any(|p| trimmed.starts_with(p)) && trimmed.ends_with(']')
            || NOTICES.iter().any(|p| trimmed.starts_with(p))
            || is_info_threads_line(trimmed)
            || is_stop_location(trimmed, line)
        {
            // gdb's notices, `info threads`, the attach stop location.
        } else {
            b.skip(line_no, line);
        }
    }

    fn frame(&mut self, b: &mut DumpBuilder, line_no: usize, line: &str, f: &Frame<'_>) {
        if !b.has_open_task() && f.kernel {
            // gdb on a stopped kernel (kgdb, qemu's gdbstub) prints the stack
            // of the current task with no thread header: it is on its CPU.
            b.begin_task(
                TaskHeader {
                    on_cpu: Some(true),
                    line: line_no,
                    ..TaskHeader::default()
                },
                "",
            );
        }
        if !b.has_open_task() {
            b.skip(line_no, line);
            return;
        }
        if !self.index.follows(f.index) {
            b.force_status(StackStatus::Truncated);
        }
        if f.signal {
            // A context boundary, not a function.
            return;
        }
        if f.address == Some(0) && f.function.is_none() {
            // `0x0000000000000000 in ?? ()`: where a kernel unwind ends (the
            // outermost frame's return address is 0), no frame.
            return;
        }
        if f.kernel {
            self.kernel_frames = true;
        } else {
            self.user_frames = true;
        }
        let mut record = FrameRecord {
            address: f.address,
            function: f.function.map(str::to_owned),
            // A kernel frame's `from` is no library (and vmlinux is no module).
            module: f.library.filter(|_| !f.kernel).map(str::to_owned),
            reliable: true,
            context: if f.kernel {
                FrameContext::Task
            } else {
                FrameContext::User
            },
            line: line_no,
            ..FrameRecord::default()
        };
        if let Some(mut previous) = self.held.take() {
            if record.address.is_none() && f.index > 0 {
                previous.inlined = true;
                record.address = previous.address;
            }
            b.push_frame(&previous);
        }
        self.held = Some(record);
    }

    fn finish_task(&mut self, b: &mut DumpBuilder) {
        close_held_task(&mut self.held, b);
        self.index.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::super::toolscan::testing::{assert_sniffs_only_among, fuzz, run, sample};
    use super::super::{Dump, Format};
    use super::*;

    #[test]
    fn a_stopped_kernel_s_stacks_are_kernel_stacks() {
        let d = run(Format::Gdb, parse, sample("gdb-kernel-qemu-gdbstub.txt"));
        assert_eq!(d.task_count(), 3);
        // The lone `bt` (kgdb, the current task), then one task per vCPU.
        let cpus: Vec<_> = d.headers().map(|h| (h.cpu, h.on_cpu)).collect();
        assert_eq!(
            cpus,
            [
                (None, Some(true)),
                (Some(1), Some(true)),
                (Some(0), Some(true))
            ]
        );
        assert!(d.frame_context.iter().all(|&c| c == FrameContext::Task));
        assert!(d.stack_status.iter().all(|&s| s == StackStatus::Complete));
        let first = d.frames_of(1).start;
        assert_eq!(frame(&d, first).0, Some("__schedule"));
        // `do_poll` is inlined into `do_sys_poll` (no address of its own).
        assert_eq!(
            frame(&d, first + 3),
            (Some("do_poll"), Some(0xffff_ffff_8139_2f54), None, true)
        );
        assert_eq!(d.frames_of(1).len(), 11, "the 0x0 `??` end is no frame");
        assert_eq!(d.skipped_lines, 1, "only the provenance line");
        assert!(d.warnings.iter().any(|w| w.contains("stopped kernel")));
        assert!(!d.warnings.iter().any(|w| w.contains("user space only")));
        assert!(looks_like(sample("gdb-kernel-qemu-gdbstub.txt")));
    }

    const SAMPLE: &str = "gdb-thread-apply-all-bt.txt";

    fn dump() -> Dump {
        run(Format::Gdb, parse, sample(SAMPLE))
    }

    /// (function, address, module, inlined) of frame `i`.
    fn frame(d: &Dump, i: usize) -> (Option<&str>, Option<u64>, Option<&str>, bool) {
        (
            d.name(d.frame_function(i)),
            d.frame_has_address(i).then_some(d.frame_address(i)),
            d.name(d.frame_module(i)),
            d.frame_inlined[i],
        )
    }

    #[test]
    fn sniffs_only_its_own_sample() {
        assert_sniffs_only_among(&[SAMPLE, "gdb-kernel-qemu-gdbstub.txt"], looks_like);
    }

    #[test]
    fn golden_counts() {
        let d = dump();
        assert_eq!(d.task_count(), 4);
        assert_eq!(d.frame_count(), 14 + 19 + 21 + 21);
        // Skipped: line 1 (provenance) and line 5, the quoter's `[...]` elision
        // (outside any thread). Everything else is gdb's: `[New LWP n]`, the
        // attach stop location and its source line, `info threads`, the
        // `[Inferior 1 (process 15081) detached]` notice.
        let lines: Vec<usize> = d.skipped_samples.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![1, 5]);
        assert_eq!(d.skipped_lines, 2);
        assert!(d.frame_context.iter().all(|&c| c == FrameContext::User));
        assert!(d.frame_reliable.iter().all(|&r| r));
        assert!(d.stack_status.iter().all(|&s| s == StackStatus::Complete));
        assert_eq!(d.warnings.len(), 1);
    }

    #[test]
    fn thread_headers() {
        let d = dump();
        let got: Vec<(Option<i64>, Option<i64>, &str)> = d
            .headers()
            .enumerate()
            .map(|(t, h)| (h.pid, h.tid, d.comm(t)))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some(15081), Some(15137), "wl-spin"),
                (Some(15081), Some(15133), "wl-flock"),
                (Some(15081), Some(15132), "wl-accept"),
                (Some(15081), Some(15081), "python3"),
            ]
        );
        assert!(d.headers().all(|h| h.on_cpu.is_none()));
        assert_eq!(d.header(1).line, 39);
    }

    #[test]
    fn frames_and_inlining() {
        let d = dump();
        let r = d.frames_of(1);
        assert_eq!(
            frame(&d, r.start),
            (Some("__GI_flock"), Some(0x7f51_1711_6897), None, false)
        );
        // #1 fcntl_flock_impl is inlined into #2 fcntl_flock (printed without address).
        assert_eq!(
            frame(&d, r.start + 1),
            (Some("fcntl_flock_impl"), Some(0x7f51_16ab_5ba6), None, true)
        );
        assert_eq!(
            frame(&d, r.start + 2),
            (Some("fcntl_flock"), Some(0x7f51_16ab_5ba6), None, false)
        );
        assert_eq!(d.frame_line[r.start + 2], 42);
        // wl-accept: a chain of three inlined frames #1..#3 in sock_accept (#4).
        let r = d.frames_of(2);
        let inl: Vec<bool> = (r.start..r.start + 5).map(|i| d.frame_inlined[i]).collect();
        assert_eq!(inl, vec![false, true, true, true, false]);
        assert_eq!(
            frame(&d, r.start + 4),
            (Some("sock_accept"), Some(0x7f51_1696_40c8), None, false)
        );
        // python3: the outermost frame `_start ()`, empty argument list.
        let r = d.frames_of(3);
        assert_eq!(
            frame(&d, r.end - 1),
            (Some("_start"), Some(0x55f9_a60b_7081), None, false)
        );
        // No offsets in gdb frames.
        assert!((0..d.frame_count()).all(|i| d.frame_offset(i) == u64::MAX));
    }

    #[test]
    fn other_forms() {
        let text = "\
Attaching to process 4242
Thread 2 (LWP 4243):
#0  0x00007f0000001000 in poll () from /lib/x86_64-linux-gnu/libc.so.6
#1  0x00007f0000002000 in ?? ()
#2  <signal handler called>
#3  0x0000000000401000 in main (argc=1, argv=0x7ffc) at main.c:10
Backtrace stopped: previous frame inner to this frame (corrupt stack?)
Thread 1 (process 4242):
#0  __futex_abstimed_wait_common64 (private=0, cancel=true) at ./nptl/futex-internal.c:57
#1  0x00007f0000003000 in start_thread () from /lib/x86_64-linux-gnu/libc.so.6
(More stack frames follow...)
";
        let d = run(Format::Gdb, parse, text);
        assert_eq!(d.skipped_lines, 0);
        assert_eq!((d.header(0).pid, d.header(0).tid), (Some(4242), Some(4243)));
        assert_eq!(d.frames_of(0).len(), 3);
        assert_eq!(
            frame(&d, 0),
            (
                Some("poll"),
                Some(0x7f00_0000_1000),
                Some("/lib/x86_64-linux-gnu/libc.so.6"),
                false
            )
        );
        assert_eq!(frame(&d, 1), (None, Some(0x7f00_0000_2000), None, false));
        assert_eq!(d.stack_status[0], StackStatus::UnwindFailure);
        // `#0` without an address is not an inline caller.
        assert_eq!(
            frame(&d, 3),
            (Some("__futex_abstimed_wait_common64"), None, None, false)
        );
        assert_eq!(d.stack_status[1], StackStatus::Truncated);
        assert_eq!((d.header(1).pid, d.header(1).tid), (Some(4242), Some(4242)));
    }

    #[test]
    fn survives_mutations() {
        fuzz(Format::Gdb, parse, sample(SAMPLE), 0x6d6, 300);
    }
}
