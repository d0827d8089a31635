//! The `crash` utility's backtraces: `bt`, `bt -a`, `bt -c`, `bt -s[x|d]`,
//! `bt -l`, `bt -t`, `foreach bt`.
//!
//! Grammar (crash-utility/crash: `task.c print_task_header()`,
//! `x86_64.c x86_64_print_stack_entry()` / `x86_64_exception_frame()`, the
//! arm64/ppc64 equivalents, and the EXAMPLES of `help bt` / `help foreach`):
//!
//! ```text
//! PID: 428    TASK: ffff880036b6c560  CPU: 1   COMMAND: "jbd2/dm-1-8"     task header
//!  #0 [ffff880035779a70] __schedule at ffffffff815df272                 frame (#0..#9 indented)
//! #10 [ffff880035779ee8] kthread at ffffffff8108fb9c
//!  #0 [ffff8800664a1c90] machine_kexec+0x167 at ffffffff810327b7         bt -sx (bt -sd: +359)
//!  #2 [d1547f0c] error_code (via invalid_op) at c01073dc                 exception vector note
//! #10 [ffffc900460a7d70] xlog_cil_committed at ffffffffc21e85af [xfs]    module frame
//!  #3 [c5601fec] (nfsd module) at c806e303                               module text, no symbol
//!   [ffff88003c84fd38] __schedule at ffffffff8160d7a8                    bt -t: raw text word
//!     [exception RIP: native_safe_halt+0xb]                              interrupted IP (pt_regs)
//!     RIP: ffffffff8103eacb  RSP: ffffffff81a01ea8  RFLAGS: 00000296     register dump
//! --- <NMI exception stack> ---                                          stack switch
//!  (active)                                                              live system, running task
//! ```
//!
//! Semantics, and the choices made where the text is not explicit:
//!
//! * A `--- <X stack> ---` line is printed when the unwinder *leaves* stack X,
//!   so it labels the frames printed since the previous marker (or the header):
//!   `#0..#8` then `--- <IRQ stack> ---` means `#0..#8` ran on the IRQ stack.
//!   Frames are therefore buffered per segment and pushed when the segment's
//!   context is known. A task with frames on an IRQ/NMI/exception stack was
//!   executing on its CPU when the dump was taken: `on_cpu = true`.
//! * `[exception RIP: f+off]` is where the interrupted code really was (the
//!   pt_regs IP). It is kept as a frame, placed before the next numbered frame
//!   (x86-64 crash prints the block either before or after the stack-switch
//!   marker); its address comes from the `RIP:` register that follows. When the
//!   next numbered frame is the same function (older crash repeats the
//!   interrupted function as a frame after the NMI marker) the copy is dropped.
//! * arm64 register dumps (`PC: addr [sym+off]`) are not turned into frames:
//!   crash already prints the interrupted function as the next numbered frame.
//! * A register dump whose `CS` has RPL 3 (`0033`, 32-bit `0023`) is the user
//!   entry frame: `user_regs = true`.
//! * `bt -t` / `-T` lines (`[sp] sym at addr` without `#N`) are every text
//!   address found on the stack, vouched for by nothing: `reliable = false`.
//! * Offsets: `+0x..` is hex (`bt -sx`), bare digits decimal (`bt -sd`, and
//!   `[exception RIP: f+120]` in crash's default output radix 10). No size.
//! * `PID:` is `task_struct.pid`, the kernel's thread id: it fills both `pid`
//!   and `tid` (crash's header has no tgid).
//! * `bt: ...` messages mean the unwinder gave up or doubted a frame: the task's
//!   stack is `unwind_failure`. A gap in `#N` numbering, or an elision mark
//!   (`...`) inside a task, makes it `truncated`.

use super::toolscan::{
    contains_ignore_case, frame_index, is_elision, numbered_lines, parse_dec, parse_hex, parse_id,
    skip_elision, sniff_window, split_symbol_offset, take_word, IndexTracker, OffsetRadix,
};
use super::{DumpBuilder, FrameContext, FrameRecord, StackStatus, TaskHeader};

/// Cheap sniffing: a crash task header, or two crash frame lines.
#[must_use]
pub fn looks_like(text: &str) -> bool {
    let mut frames = 0;
    for line in sniff_window(text).lines() {
        if parse_header(line).is_some() {
            return true;
        }
        if parse_frame(line).is_some() {
            frames += 1;
            if frames >= 2 {
                return true;
            }
        }
    }
    false
}

/// Parses crash backtrace output into `b`.
pub fn parse(text: &str, b: &mut DumpBuilder) {
    let mut p = Parser::default();
    for (line_no, line) in numbered_lines(text) {
        p.line(b, line_no, line);
    }
    p.finish_task(b);
}

/// A parsed `PID: .. TASK: .. CPU: .. COMMAND: ".."` line.
struct Header<'a> {
    pid: i64,
    cpu: Option<i64>,
    comm: &'a str,
}

fn parse_header(line: &str) -> Option<Header<'_>> {
    let rest = line.trim_start().strip_prefix("PID:")?;
    let (pid, rest) = take_word(rest)?;
    let rest = rest.trim_start().strip_prefix("TASK:")?;
    let (task, rest) = take_word(rest)?;
    parse_hex(task)?;
    let rest = rest.trim_start().strip_prefix("CPU:")?;
    let (cpu, rest) = take_word(rest)?;
    let cpu = if cpu == "-" {
        None
    } else {
        Some(parse_id(cpu)?)
    };
    let quoted = rest.trim_start().strip_prefix("COMMAND:")?.trim();
    // comm may itself contain quotes: it runs to the last one.
    let comm = quoted.strip_prefix('"')?.strip_suffix('"')?;
    Some(Header {
        pid: parse_id(pid)?,
        cpu,
        comm,
    })
}

/// A parsed frame line.
struct Frame<'a> {
    /// `None` for `bt -t` raw text words (no `#N`).
    index: Option<u64>,
    function: Option<&'a str>,
    offset: Option<u64>,
    address: u64,
    module: Option<&'a str>,
}

fn parse_frame(line: &str) -> Option<Frame<'_>> {
    let (index, rest) = match frame_index(line) {
        Some((n, rest)) => (Some(n), rest.strip_prefix(' ')?),
        None => (None, line),
    };
    // `[stack pointer]`
    let rest = rest.trim_start().strip_prefix('[')?;
    let close = rest.find(']')?;
    parse_hex(&rest[..close])?;
    let body = rest[close + 1..].strip_prefix(' ')?.trim_end();
    // `<what> at <pc>[ [module]][ *]`: symbols never hold spaces, so the last
    // " at " separates them (the `(nfsd module)` form has no " at " inside).
    let at = body.rfind(" at ")?;
    let (what, tail) = (&body[..at], &body[at + 4..]);
    let (pc, mut tail) = take_word(tail)?;
    let address = parse_hex(pc)?;
    let mut module = None;
    if let Some((word, rest)) = take_word(tail) {
        if let Some(m) = word.strip_prefix('[').and_then(|w| w.strip_suffix(']')) {
            module = Some(m);
            tail = rest;
        }
    }
    // A trailing `*` (crash flags a frame it had to search for) is tolerated.
    match tail.trim() {
        "" | "*" => {}
        _ => return None,
    }
    // `error_code (via invalid_op)`: the exception vector the frame came through.
    let what = match what.find(" (via ") {
        Some(via) if what.ends_with(')') => &what[..via],
        _ => what,
    };
    if let Some(inner) = what
        .strip_prefix('(')
        .and_then(|w| w.strip_suffix(" module)"))
    {
        // Module text crash has no symbol for.
        return Some(Frame {
            index,
            function: None,
            offset: None,
            address,
            module: Some(inner).filter(|m| !m.is_empty() && !m.contains(' ')),
        });
    }
    if what.is_empty() || what.contains(char::is_whitespace) {
        return None;
    }
    let (function, offset) = split_symbol_offset(what, OffsetRadix::Either)?;
    Some(Frame {
        index,
        function: Some(function),
        offset,
        address,
        module,
    })
}

/// The stack a `--- <...> ---` marker closes.
fn marker_context(trimmed: &str) -> Option<FrameContext> {
    let name = trimmed.strip_prefix("--- <")?.strip_suffix("> ---")?;
    Some(if contains_ignore_case(name, "NMI") {
        FrameContext::Nmi
    } else if contains_ignore_case(name, "SOFT") {
        FrameContext::SoftIrq
    } else if contains_ignore_case(name, "IRQ") {
        FrameContext::Irq
    } else {
        // DOUBLEFAULT, STACKFAULT, DEBUG, MCE, #VC, OVERFLOW...
        FrameContext::Exception
    })
}

/// What a register-dump line says, when it is one.
#[derive(Default)]
struct Registers {
    ip: Option<u64>,
    user_cs: bool,
}

/// `NAME: hexvalue` pairs (x86-64 `RIP: .. RSP: ..`, i386 `EAX: ..`, arm64
/// `X29: ..` / `PC: addr [sym+off]`). Names are upper-case register names.
fn parse_registers(trimmed: &str) -> Option<Registers> {
    let mut regs = Registers::default();
    let mut rest = trimmed;
    let mut pairs = 0;
    while !rest.is_empty() {
        let colon = rest.find(':')?;
        let name = &rest[..colon];
        let valid = !name.is_empty()
            && name.len() <= 10
            && name
                .bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_');
        if !valid {
            return None;
        }
        let (value, after) = take_word(&rest[colon + 1..])?;
        let value = parse_hex(value)?;
        match name {
            "RIP" | "EIP" => regs.ip = Some(value),
            // Requested privilege level 3 = user code segment.
            "CS" => regs.user_cs = value & 3 == 3,
            _ => {}
        }
        pairs += 1;
        rest = after.trim_start();
        // arm64 annotates PC/LR with `[sym+off]`.
        if let Some(annotated) = rest.strip_prefix('[') {
            let close = annotated.find(']')?;
            rest = annotated[close + 1..].trim_start();
        }
    }
    (pairs > 0).then_some(regs)
}

/// `bt -l`: a source location under a frame (`/path/file.c: 3091`).
fn is_source_line(trimmed: &str) -> bool {
    trimmed.rsplit_once(": ").is_some_and(|(path, line)| {
        path.contains('/') && !path.contains(char::is_whitespace) && parse_dec(line).is_some()
    })
}

/// Keys of crash's `sys` banner (printed at session start and by `sys`).
const SYS_BANNER_KEYS: &[&str] = &[
    "KERNEL",
    "DUMPFILE",
    "DUMPFILES",
    "CPUS",
    "DATE",
    "UPTIME",
    "LOAD AVERAGE",
    "TASKS",
    "NODENAME",
    "RELEASE",
    "VERSION",
    "MACHINE",
    "MEMORY",
    "PANIC",
    "PID",
    "COMMAND",
    "TASK",
    "CPU",
    "STATE",
];

/// What the command a session ran says about every task it prints: crash
/// selects them, so its words are facts (help.c, `help bt` / `help foreach`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Selection {
    /// `bt -a`, `foreach active bt`: the active task of each CPU, on it.
    on_cpu: Option<bool>,
    /// `foreach RU|IN|UN|ST|TR|ZO|DE|ID|PA|NE|WA bt`: the tasks in that state.
    state: Option<char>,
    /// `foreach kernel bt` / `foreach user bt`.
    kthread: Option<bool>,
}

/// The state letter `ps` prints for crash's `foreach` state name.
fn state_of(word: &str) -> Option<char> {
    Some(match word {
        "RU" => 'R',
        "IN" => 'S',
        "UN" => 'D',
        "ST" => 'T',
        "TR" => 't',
        "ZO" => 'Z',
        "DE" => 'X',
        "ID" => 'I',
        "PA" => 'P',
        "NE" => 'N',
        "WA" => 'W',
        _ => return None,
    })
}

impl Selection {
    /// What `crash> COMMAND` selects (nothing for commands that select no task set).
    fn of(command: &str) -> Self {
        let mut words = command.split_whitespace();
        let mut out = Selection::default();
        match words.next() {
            Some("bt") => {
                // `-a` (every CPU's active task), `-c CPUS` (those CPUs' active task).
                let active = |w: &str| {
                    w.strip_prefix('-').is_some_and(|f| {
                        !f.starts_with('-') && (f.contains('a') || f.starts_with('c'))
                    })
                };
                if words.any(active) {
                    out.on_cpu = Some(true);
                }
            }
            Some("foreach") => {
                for w in words.take_while(|&w| w != "bt") {
                    match w {
                        "active" => out.on_cpu = Some(true),
                        "kernel" => out.kthread = Some(true),
                        "user" => out.kthread = Some(false),
                        _ => out.state = out.state.or(state_of(w)),
                    }
                }
            }
            _ => {}
        }
        out
    }
}

#[derive(Default)]
struct Parser {
    /// Frames since the last stack-switch marker, context not yet known.
    segment: Vec<FrameRecord>,
    /// An `[exception RIP: ..]` waiting for the next numbered frame.
    exception: Option<FrameRecord>,
    index: IndexTracker,
    /// What the last `crash>` command says about the tasks it prints.
    selection: Selection,
}

impl Parser {
    fn line(&mut self, b: &mut DumpBuilder, line_no: usize, line: &str) {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return;
        }
        if let Some(h) = parse_header(line) {
            self.begin_task(b, line_no, &h);
        } else if trimmed.starts_with("PID:") {
            // A damaged task header: its task is kept, unreadable, so that
            // its frames are not given to the task before it.
            self.finish_task(b);
            b.begin_unreadable_task(line_no);
        } else if let Some(f) = parse_frame(line) {
            self.frame(b, line_no, line, &f);
        } else if let Some(ctx) = marker_context(trimmed) {
            self.close_segment(b, ctx);
        } else if let Some(inner) = trimmed
            .strip_prefix("[exception RIP: ")
            .and_then(|t| t.strip_suffix(']'))
        {
            self.exception_rip(b, line_no, line, inner);
        } else if let Some(regs) = parse_registers(trimmed).filter(|_| b.has_open_task()) {
            // A register dump (exception frame or user entry frame).
            self.registers(b, &regs);
        } else if is_elision(trimmed) {
            skip_elision(b, line_no, line);
        } else if trimmed == "(active)" && b.has_open_task() {
            // Live session, task running on a CPU: crash cannot unwind it.
            if let Some(h) = b.header_mut() {
                h.on_cpu = Some(true);
            }
        } else if trimmed.starts_with('(') && trimmed.ends_with(')') && b.has_open_task() {
            // Old `foreach bt`: the arguments of the frame above.
        } else if is_source_line(trimmed) && b.has_open_task() {
            // `bt -l`: file and line of the frame above.
        } else if trimmed.starts_with("START: ") && b.has_open_task() {
            // `bt -t`: where the raw text-word scan starts.
        } else if trimmed.starts_with("bt: ") {
            self.bt_message(b, line_no, line);
        } else if trimmed == "crash>" || trimmed.starts_with("crash> ") {
            // The command prompt, echoed in captured sessions: what it ran
            // says what the tasks it prints are.
            self.selection = Selection::of(trimmed.trim_start_matches("crash>"));
        } else if let Some(release) = sys_banner_value(trimmed, "RELEASE") {
            b.set_kernel_release(release);
        } else if !is_sys_banner(trimmed) {
            b.skip(line_no, line);
        }
    }

    fn begin_task(&mut self, b: &mut DumpBuilder, line_no: usize, h: &Header<'_>) {
        self.finish_task(b);
        let Selection {
            on_cpu,
            state,
            kthread,
        } = self.selection;
        b.begin_task(
            TaskHeader {
                pid: Some(h.pid),
                tid: Some(h.pid),
                cpu: h.cpu,
                line: line_no,
                on_cpu,
                state,
                kthread,
                ..TaskHeader::default()
            },
            h.comm,
        );
    }

    fn frame(&mut self, b: &mut DumpBuilder, line_no: usize, line: &str, f: &Frame<'_>) {
        if !b.has_open_task() {
            b.skip(line_no, line);
            return;
        }
        if let Some(index) = f.index {
            if !self.index.follows(index) {
                b.force_status(StackStatus::Truncated);
            }
        }
        if let Some(exception) = self.exception.take() {
            if exception.function.as_deref() != f.function {
                self.segment.push(exception);
            }
        }
        self.segment.push(FrameRecord {
            address: Some(f.address),
            function: f.function.map(str::to_owned),
            offset: f.offset,
            module: f.module.map(str::to_owned),
            reliable: f.index.is_some(),
            line: line_no,
            ..FrameRecord::default()
        });
    }

    fn exception_rip(&mut self, b: &mut DumpBuilder, line_no: usize, line: &str, inner: &str) {
        if !b.has_open_task() {
            b.skip(line_no, line);
            return;
        }
        // `unknown or invalid address` and the like: an IP with no symbol.
        let (function, offset) = if inner.contains(char::is_whitespace) {
            (None, None)
        } else {
            match split_symbol_offset(inner, OffsetRadix::Either) {
                Some((sym, off)) => (Some(sym.to_owned()), off),
                None => (None, None),
            }
        };
        if let Some(previous) = self.exception.replace(FrameRecord {
            function,
            offset,
            reliable: true,
            line: line_no,
            ..FrameRecord::default()
        }) {
            self.segment.push(previous);
        }
    }

    fn registers(&mut self, b: &mut DumpBuilder, regs: &Registers) {
        if let (Some(exception), Some(ip)) = (self.exception.as_mut(), regs.ip) {
            exception.address.get_or_insert(ip);
        }
        if regs.user_cs {
            if let Some(h) = b.header_mut() {
                h.user_regs = true;
            }
        }
    }

    fn bt_message(&mut self, b: &mut DumpBuilder, line_no: usize, line: &str) {
        if b.has_open_task() {
            b.force_status(StackStatus::UnwindFailure);
            b.warn("crash `bt` reported unwind errors; those tasks are marked unwind_failure");
        } else {
            b.skip(line_no, line);
        }
    }

    /// A stack-switch marker: the buffered frames ran on the stack it names.
    fn close_segment(&mut self, b: &mut DumpBuilder, ctx: FrameContext) {
        if !b.has_open_task() {
            return;
        }
        self.flush(b, ctx);
        if let Some(h) = b.header_mut() {
            h.on_cpu = Some(true);
        }
    }

    fn flush(&mut self, b: &mut DumpBuilder, ctx: FrameContext) {
        for mut f in self.segment.drain(..) {
            f.context = ctx;
            b.push_frame(&f);
        }
    }

    fn finish_task(&mut self, b: &mut DumpBuilder) {
        if b.has_open_task() {
            if let Some(exception) = self.exception.take() {
                self.segment.push(exception);
            }
            self.flush(b, FrameContext::Task);
            b.end_task();
        }
        self.segment.clear();
        self.exception = None;
        self.index.reset();
    }
}

/// `KEY: value` of crash's `sys` banner.
fn sys_banner_value<'a>(trimmed: &'a str, key: &str) -> Option<&'a str> {
    let value = trimmed.strip_prefix(key)?.strip_prefix(':')?.trim();
    (!value.is_empty()).then_some(value)
}

fn is_sys_banner(trimmed: &str) -> bool {
    SYS_BANNER_KEYS.iter().any(|key| {
        trimmed
            .strip_prefix(key)
            .is_some_and(|rest| rest.starts_with(':'))
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn bt_l_source_lines_and_author_notes_are_no_frames() {
        let text = "Here is what crash showed for the stuck task:\n\
            crash> bt -l 1234\n\
            PID: 1234   TASK: ffff888104a3c000  CPU: 2   COMMAND: \"kworker/2:1\"\n \
            #0 [ffffc90000c27d08] __schedule at ffffffff81b2a3f1\n    \
            /usr/src/debug/kernel-6.1.0/linux-6.1.0/kernel/sched/core.c: 5357\n \
            #1 [ffffc90000c27d90] schedule at ffffffff81b2a8a3\n    \
            /usr/src/debug/kernel-6.1.0/linux-6.1.0/kernel/sched/core.c: 6558\n \
            #2 [ffffc90000c27da8] worker_thread at ffffffff810c2b5e\n    \
            /usr/src/debug/kernel-6.1.0/linux-6.1.0/kernel/workqueue.c: 2456\n\
            and a second one, same state:\n\
            crash> bt -sx 1240\n\
            PID: 1240   TASK: ffff888104a3d000  CPU: 3   COMMAND: \"kworker/3:1\"\n \
            #0 [ffffc90000c37d08] __schedule+0x2a1 at ffffffff81b2a3f1\n \
            #1 [ffffc90000c37d90] schedule+0x63 at ffffffff81b2a8a3\n";
        let d = crate::dump::parse(text, Some(crate::dump::Format::Crash)).expect("parses");
        assert_eq!(d.task_count(), 2);
        assert_eq!(d.frames_of(0).len(), 3);
        assert_eq!(d.frames_of(1).len(), 2);
        assert_eq!(d.frame_offset(d.frames_of(1).start), 0x2a1);
        assert_eq!(d.lost_tasks(), 0);
        // The two notes are counted, nothing else.
        assert_eq!(d.skipped_lines, 2);
    }

    #[test]
    fn the_command_of_a_session_says_what_its_tasks_are() {
        let task = |pid: u32| {
            format!(
                "PID: {pid}  TASK: ffff888100000000  CPU: 0  COMMAND: \"t{pid}\"\n #0 [ffffc90000000000] __schedule at ffffffff81000000\n"
            )
        };
        let text = format!(
            "crash> foreach UN bt\n{}{}crash> bt -a\n{}crash> foreach kernel IN bt\n{}crash> bt 7\n{}",
            task(1),
            task(2),
            task(3),
            task(4),
            task(5)
        );
        let d = crate::dump::parse(&text, Some(crate::dump::Format::Crash)).expect("parses");
        let got: Vec<_> = d
            .headers()
            .map(|h| (h.state, h.on_cpu, h.kthread))
            .collect();
        assert_eq!(
            got,
            [
                (Some('D'), None, None),
                (Some('D'), None, None),
                (None, Some(true), None),
                (Some('S'), None, Some(true)),
                (None, None, None),
            ]
        );
        assert_eq!(Selection::of(" bt -c 0,1").on_cpu, Some(true));
        assert_eq!(Selection::of(" bt -sx").on_cpu, None);
    }

    use super::super::toolscan::testing::{assert_sniffs_only, fuzz, run, sample};
    use super::super::{Dump, Format};
    use super::*;

    const SAMPLE: &str = "crash-bt-foreach.txt";

    fn dump() -> Dump {
        run(Format::Crash, parse, sample(SAMPLE))
    }

    /// (function, offset, address, module, reliable, context) of one frame.
    type FrameView<'a> = (
        Option<&'a str>,
        Option<u64>,
        Option<u64>,
        Option<&'a str>,
        bool,
        FrameContext,
    );

    fn frame(d: &Dump, i: usize) -> FrameView<'_> {
        (
            d.name(d.frame_function(i)),
            (d.frame_offset(i) != u64::MAX).then_some(d.frame_offset(i)),
            d.frame_has_address(i).then_some(d.frame_address(i)),
            d.name(d.frame_module(i)),
            d.frame_reliable[i],
            d.frame_context[i],
        )
    }

    fn task_named(d: &Dump, comm: &str) -> usize {
        (0..d.task_count())
            .position(|t| d.comm(t) == comm)
            .expect("task present")
    }

    #[test]
    fn sniffs_only_its_own_sample() {
        assert_sniffs_only(SAMPLE, looks_like);
    }

    #[test]
    fn golden_counts() {
        let d = dump();
        assert_eq!(d.task_count(), 10);
        assert_eq!(d.frame_count(), 57);
        // Skipped, all explained: line 1 (provenance), the 5 `# ---- crash> ...
        // ----` section comments of the sample (lines 2, 27, 55, 82, 112) and the
        // 4 elision marks `...` the quoter left (line 3 outside any task; 26 in
        // `bash`, 111 in `mingetty`, 126 in `jbd2/dm-1-8`, which therefore become
        // truncated).
        assert_eq!(d.skipped_lines, 10);
        let lines: Vec<usize> = d.skipped_samples.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![1, 2, 3, 26, 27, 55, 82, 111, 112, 126]);
        assert!(d
            .skipped_samples
            .iter()
            .all(|(_, t)| t.starts_with("# ") || t == "..."));
        let truncated: Vec<&str> = (0..d.task_count())
            .filter(|&t| d.stack_status[t] == StackStatus::Truncated)
            .map(|t| d.comm(t))
            .collect();
        assert_eq!(truncated, vec!["bash", "mingetty", "jbd2/dm-1-8"]);
    }

    #[test]
    fn headers_carry_pid_cpu_comm() {
        let d = dump();
        let idle = &d.header(0);
        assert_eq!((idle.pid, idle.tid, idle.cpu), (Some(0), Some(0), Some(11)));
        assert_eq!(d.comm(0), "swapper/11");
        assert_eq!(d.stack_status[0], StackStatus::Empty);
        let jbd2 = &d.header(task_named(&d, "jbd2/dm-1-8"));
        assert_eq!((jbd2.pid, jbd2.cpu), (Some(428), Some(1)));
        let bash = task_named(&d, "bash");
        assert_eq!(d.header(bash).pid, Some(150_773));
        assert_eq!(d.header(bash).cpu, Some(13));
        // `CS: 0033` closes bash's syscall register dump: user entry frame.
        assert!(d.header(bash).user_regs);
        assert_eq!(d.stack_status[bash], StackStatus::Truncated);
        assert_eq!(d.frames_of(bash).len(), 10);
    }

    #[test]
    fn plain_frames_are_reliable_with_exact_addresses() {
        let d = dump();
        let jbd2 = task_named(&d, "jbd2/dm-1-8");
        let r = d.frames_of(jbd2);
        assert_eq!(r.len(), 12);
        assert_eq!(
            frame(&d, r.start),
            (
                Some("__schedule"),
                None,
                Some(0xffff_ffff_815d_f272),
                None,
                true,
                FrameContext::Task
            )
        );
        // `#10` (no leading space) and `#11` continue the numbering.
        assert_eq!(d.name(d.frame_function(r.start + 10)), Some("kthread"));
        assert_eq!(
            d.name(d.frame_function(r.end - 1)),
            Some("kernel_thread_helper")
        );
        // The trailing `...` says more was cut.
        assert_eq!(d.stack_status[jbd2], StackStatus::Truncated);
        let bash = task_named(&d, "bash");
        assert_eq!(
            d.name(d.frame_function(d.frames_of(bash).start + 4)),
            Some("__handle_sysrq.cold.12")
        );
    }

    #[test]
    fn nmi_segment_and_exception_rip() {
        let d = dump();
        let swapper = task_named(&d, "swapper");
        let r = d.frames_of(swapper);
        // #0..#5 on the NMI stack, the duplicate exception RIP dropped, #6..#8 task.
        assert_eq!(r.len(), 9);
        for i in r.start..r.start + 6 {
            assert_eq!(d.frame_context[i], FrameContext::Nmi);
        }
        assert_eq!(
            frame(&d, r.start + 6),
            (
                Some("native_safe_halt"),
                None,
                Some(0xffff_ffff_8103_eacb),
                None,
                true,
                FrameContext::Task
            )
        );
        assert_eq!(d.name(d.frame_function(r.end - 1)), Some("cpu_idle"));
        let h = &d.header(swapper);
        assert_eq!((h.pid, h.cpu, h.on_cpu), (Some(0), Some(0), Some(true)));
        assert!(!h.user_regs);
        assert_eq!(d.stack_status[swapper], StackStatus::Complete);
        // khungtaskd has no stack switch: nothing says it was running.
        let k = task_named(&d, "khungtaskd");
        assert_eq!(d.header(k).on_cpu, None);
        assert_eq!(d.frames_of(k).len(), 6);
    }

    #[test]
    fn symbol_offsets_and_interrupted_ip() {
        let d = dump();
        let su = task_named(&d, "su");
        let r = d.frames_of(su);
        // #0..#3, then the exception RIP (kmem_cache_alloc is on no numbered
        // line: the pt_regs IP is the only trace of it), then #4..#8.
        assert_eq!(r.len(), 10);
        assert_eq!(
            frame(&d, r.start),
            (
                Some("machine_kexec"),
                Some(0x167),
                Some(0xffff_ffff_8103_27b7),
                None,
                true,
                FrameContext::Task
            )
        );
        assert_eq!(
            frame(&d, r.start + 4),
            (
                Some("kmem_cache_alloc"),
                Some(120),
                Some(0xffff_ffff_8113_cf88),
                None,
                true,
                FrameContext::Task
            )
        );
        assert_eq!(
            d.name(d.frame_function(r.start + 5)),
            Some("get_empty_filp")
        );
        assert_eq!(d.frame_offset(r.start + 5), 0x74);
        assert!(d.header(su).user_regs);
    }

    #[test]
    fn old_foreach_bt_arguments_and_module_text() {
        let d = dump();
        let xterm = task_named(&d, "xterm");
        assert_eq!(d.frames_of(xterm).len(), 5);
        // 32-bit `CS:  0023` user segment.
        assert!(d.header(xterm).user_regs);
        let nfsd = task_named(&d, "nfsd");
        let r = d.frames_of(nfsd);
        assert_eq!(r.len(), 5);
        assert_eq!(
            frame(&d, r.start + 3),
            (
                None,
                None,
                Some(0xc806_e303),
                Some("nfsd"),
                true,
                FrameContext::Task
            )
        );
        assert_eq!(d.stack_status[nfsd], StackStatus::Complete);
        let mingetty = task_named(&d, "mingetty");
        assert_eq!(d.frames_of(mingetty).len(), 0);
        assert_eq!(d.stack_status[mingetty], StackStatus::Truncated);
    }

    #[test]
    fn irq_stack_marker_labels_the_frames_before_it() {
        let text = "\
PID: 1899   TASK: ffff95545a28bf40  CPU: 0   COMMAND: \"insmod\"
 #0 [ffff95546ce03d38] machine_kexec at ffffffff84460b2a
 #1 [ffff95546ce03ff0] apic_timer_interrupt at ffffffff84b207f2
--- <IRQ stack> ---
 #2 [ffff9550f5423c88] apic_timer_interrupt at ffffffff84b207f2
    [exception RIP: init_module+4]
    RIP: ffffffffc00b8004  RSP: ffff9550f5423d30  RFLAGS: 00000246
    ORIG_RAX: ffffffffffffff10  CS: 0010  SS: 0018
 #3 [ffff9550f5423d38] do_one_initcall at ffffffff8440210a
 #4 [ffffc900460a7d70] xlog_cil_committed+0x1f at ffffffffc21e85af [xfs]
";
        let d = run(Format::Crash, parse, text);
        assert_eq!(d.skipped_lines, 0);
        let ctx: Vec<_> = d.frame_context.clone();
        use FrameContext::{Irq, Task};
        assert_eq!(ctx, vec![Irq, Irq, Task, Task, Task, Task]);
        assert_eq!(
            frame(&d, 3),
            (
                Some("init_module"),
                Some(4),
                Some(0xffff_ffff_c00b_8004),
                None,
                true,
                Task
            )
        );
        assert_eq!(
            frame(&d, 5),
            (
                Some("xlog_cil_committed"),
                Some(0x1f),
                Some(0xffff_ffff_c21e_85af),
                Some("xfs"),
                true,
                Task
            )
        );
        assert_eq!(d.header(0).on_cpu, Some(true));
        assert!(!d.header(0).user_regs);
    }

    #[test]
    fn raw_text_scan_active_errors_and_banner() {
        let text = "\
     RELEASE: 3.10.0-862.el7.x86_64
crash> bt -t 1
PID: 1      TASK: ffff88003c840000  CPU: 0   COMMAND: \"systemd\"
              START: __schedule at ffffffff8160d7a8
  [ffff88003c84fd38] __schedule at ffffffff8160d7a8
  [ffff88003c84fd90] schedule_hrtimeout_range at ffffffff8160f1c4
PID: 2      TASK: ffff88003c841000  CPU: 1   COMMAND: \"kthreadd\"
 (active)
PID: 3      TASK: ffff88003c842000  CPU: 1   COMMAND: \"ksoftirqd/1\"
 #0 [ffff880035779a70] __schedule at ffffffff815df272
bt: cannot transition from exception stack to current process stack
 #1 [ffff880035779b18] io_schedule at ffffffff815dfb7f
    /usr/src/debug/kernel-3.10.0/linux/kernel/sched/core.c: 3091
";
        let d = run(Format::Crash, parse, text);
        assert_eq!(d.skipped_lines, 0);
        assert_eq!(d.kernel_release.as_deref(), Some("3.10.0-862.el7.x86_64"));
        assert_eq!(d.frames_of(0).len(), 2);
        assert!(!d.frame_reliable[0] && !d.frame_reliable[1]);
        assert_eq!(d.stack_status[0], StackStatus::UnwindFailure);
        assert_eq!(d.header(1).on_cpu, Some(true));
        assert_eq!(d.stack_status[1], StackStatus::Empty);
        assert_eq!(d.stack_status[2], StackStatus::UnwindFailure);
        assert_eq!(d.warnings.len(), 1);
    }

    #[test]
    fn frames_outside_tasks_and_gaps() {
        let text = " #0 [ffff880035779a70] __schedule at ffffffff815df272\n\
PID: 3      TASK: ffff88003c842000  CPU: 1   COMMAND: \"a \\\"b\\\"\"\n\
 #1 [ffff880035779a70] schedule at ffffffff815df272\n";
        let d = run(Format::Crash, parse, text);
        assert_eq!(d.skipped_lines, 1);
        assert_eq!(d.comm(0), "a \\\"b\\\"");
        // Starts at #1: something before it is missing.
        assert_eq!(d.stack_status[0], StackStatus::Truncated);
    }

    #[test]
    fn survives_mutations() {
        fuzz(Format::Crash, parse, sample(SAMPLE), 0xc7a5, 400);
    }
}
