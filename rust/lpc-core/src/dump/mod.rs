//! Stack-dump parsers: every format a live-patch engineer has, into one columnar model.
//!
//! A parsed dump is a [`Dump`]: per-task columns plus per-frame columns in CSR
//! layout (`frame_offsets[t]..frame_offsets[t + 1]` are task `t`'s frames,
//! innermost first). Strings that repeat (function and module names) are
//! interned into `names`; frames refer to them by index. Nothing here knows
//! a consistency model: parsers report what the text says, conservatively
//! (an empty or unreadable stack is never "clean").
//!
//! Parsers build a dump through [`DumpBuilder`], so that every format fills
//! the same columns the same way, and every line that belongs to no known
//! construct goes through [`DumpBuilder::skip`] — counted, never dropped.

use crate::error::{Error, Result};

pub mod dmesg;
pub mod ksym;
pub mod lines;
pub mod procsnap;
pub mod procstack;

pub mod bpftrace;
pub mod crash;
pub mod drgn;
pub mod eustack;
pub mod gdb;
pub mod perf;
mod toolscan;

/// Sentinel for "no name" in `frame_function` / `frame_module`.
pub const NO_NAME: u32 = u32::MAX;

/// The text formats lpc reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `lpc capture`'s recorded form: `# pid=.. tid=.. comm=.. state=..` blocks.
    ProcSnapshot,
    /// One `/proc/PID/stack` file (`[<0>] sym+off/size` or real addresses).
    ProcStack,
    /// dmesg `show_state()` / SysRq-t / hung-task / RCU-stall reports.
    Dmesg,
    /// crash `bt` / `foreach bt`.
    Crash,
    /// `perf script` callchains.
    PerfScript,
    /// bpftrace `kstack` output.
    Bpftrace,
    /// gdb `thread apply all bt`.
    Gdb,
    /// elfutils `eu-stack`.
    EuStack,
    /// drgn's `StackTrace` text.
    Drgn,
}

impl Format {
    /// Every format, in auto-detection priority order.
    pub const ALL: [Format; 9] = [
        Format::ProcSnapshot,
        Format::ProcStack,
        Format::Dmesg,
        Format::Crash,
        Format::PerfScript,
        Format::Bpftrace,
        Format::Gdb,
        Format::EuStack,
        Format::Drgn,
    ];

    /// The stable name used by the Python API and the CLI.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Format::ProcSnapshot => "proc_snapshot",
            Format::ProcStack => "proc_stack",
            Format::Dmesg => "dmesg",
            Format::Crash => "crash",
            Format::PerfScript => "perf_script",
            Format::Bpftrace => "bpftrace",
            Format::Gdb => "gdb",
            Format::EuStack => "eu_stack",
            Format::Drgn => "drgn",
        }
    }

    /// The format with this stable name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// What is known about a task's stack as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum StackStatus {
    /// Frames were printed and nothing says the unwind failed.
    Complete = 0,
    /// No frame at all (a running task, a zombie, a kthread that never ran…): unknown.
    Empty = 1,
    /// The stack could not be read (permissions, task gone mid-read): unknown.
    Unreadable = 2,
    /// The unwinder said it failed, or every frame is `?`: unknown.
    UnwindFailure = 3,
    /// The dump cut the stack short (depth limit, dedup reference): unknown.
    Truncated = 4,
}

impl StackStatus {
    /// Every status, in `repr(u8)` order.
    pub const ALL: [StackStatus; 5] = [
        StackStatus::Complete,
        StackStatus::Empty,
        StackStatus::Unreadable,
        StackStatus::UnwindFailure,
        StackStatus::Truncated,
    ];

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            StackStatus::Complete => "complete",
            StackStatus::Empty => "empty",
            StackStatus::Unreadable => "unreadable",
            StackStatus::UnwindFailure => "unwind_failure",
            StackStatus::Truncated => "truncated",
        }
    }
}

/// Where a frame was executing, from `<IRQ>`/`<NMI>`/`<SOFTIRQ>` sections and
/// exception markers; `User` for user-space frames of tools that print both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum FrameContext {
    #[default]
    Task = 0,
    Irq = 1,
    SoftIrq = 2,
    Nmi = 3,
    Exception = 4,
    User = 5,
}

impl FrameContext {
    /// Every context, in `repr(u8)` order.
    pub const ALL: [FrameContext; 6] = [
        FrameContext::Task,
        FrameContext::Irq,
        FrameContext::SoftIrq,
        FrameContext::Nmi,
        FrameContext::Exception,
        FrameContext::User,
    ];

    /// The stable name used by the Python API.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            FrameContext::Task => "task",
            FrameContext::Irq => "irq",
            FrameContext::SoftIrq => "softirq",
            FrameContext::Nmi => "nmi",
            FrameContext::Exception => "exception",
            FrameContext::User => "user",
        }
    }
}

/// One task header as a parser read it. `None` = the format did not say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskHeader {
    pub pid: Option<i64>,
    pub tid: Option<i64>,
    pub tgid: Option<i64>,
    pub ppid: Option<i64>,
    pub comm: String,
    /// One-letter state as `ps` prints it (`R S D T t Z X I P`), when known.
    pub state: Option<char>,
    /// PF_KTHREAD when the format shows it (`/proc/PID/stat` flags); else `None`.
    pub kthread: Option<bool>,
    /// Whether the task was on a CPU at capture time, when the format says.
    pub on_cpu: Option<bool>,
    /// The CPU it ran on last (or runs on), when known.
    pub cpu: Option<i64>,
    /// Raw flags as printed: `/proc` `flags`, SysRq `task_flags:` (PF_*).
    pub task_flags: Option<u64>,
    /// Thread-info flags (`flags:` in 5.9+ SysRq headers): TIF_*, not PF_*.
    pub thread_flags: Option<u64>,
    /// 1-based source line of the header.
    pub line: usize,
    /// A user-mode register dump (`RIP: 0033:`, `pc` in user space) was seen.
    pub user_regs: bool,
}

/// One frame as a parser read it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrameRecord {
    pub address: Option<u64>,
    pub function: Option<String>,
    pub offset: Option<u64>,
    pub size: Option<u64>,
    pub module: Option<String>,
    /// False for `?` frames (stale words the unwinder could not vouch for).
    pub reliable: bool,
    pub context: FrameContext,
    /// An inlined frame (drgn, gdb, eu-stack, syzbot `[inline]`): no return address of its own.
    pub inlined: bool,
    /// 1-based source line.
    pub line: usize,
}

/// A frame borrowed from the input text: what the hot parsers push, so that a
/// frame costs no allocation (names are interned straight from the slice).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameRef<'a> {
    pub address: Option<u64>,
    pub function: Option<&'a str>,
    pub offset: Option<u64>,
    pub size: Option<u64>,
    pub module: Option<&'a str>,
    pub reliable: bool,
    pub context: FrameContext,
    pub inlined: bool,
    pub line: usize,
}

/// A parsed dump, columnar.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dump {
    pub format: Option<Format>,
    pub kernel_release: Option<String>,
    // ---- per task
    pub headers: Vec<TaskHeader>,
    pub stack_status: Vec<StackStatus>,
    /// CSR: task `t`'s frames are `frame_offsets[t]..frame_offsets[t + 1]`.
    pub frame_offsets: Vec<u64>,
    // ---- per frame
    /// 0 when unknown; see `frame_has_address`.
    pub frame_address: Vec<u64>,
    pub frame_has_address: Vec<bool>,
    /// Index into `names`, or [`NO_NAME`].
    pub frame_function: Vec<u32>,
    /// `u64::MAX` when unknown.
    pub frame_offset: Vec<u64>,
    /// `u64::MAX` when unknown.
    pub frame_size: Vec<u64>,
    /// Index into `names`, or [`NO_NAME`] (vmlinux).
    pub frame_module: Vec<u32>,
    pub frame_reliable: Vec<bool>,
    pub frame_context: Vec<FrameContext>,
    pub frame_inlined: Vec<bool>,
    pub frame_line: Vec<u32>,
    // ---- shared
    /// Interned function and module names.
    pub names: Vec<String>,
    /// Lines that belong to no known construct.
    pub skipped_lines: usize,
    /// The first few skipped lines, `(line number, text)`, for the report.
    pub skipped_samples: Vec<(usize, String)>,
    /// Things the reader of the verdict must know (e.g. "/proc stacks hide .sched.text").
    pub warnings: Vec<String>,
}

/// How many skipped lines a dump keeps verbatim.
pub const SKIPPED_SAMPLES: usize = 20;

impl Dump {
    /// Number of tasks.
    #[must_use]
    pub fn task_count(&self) -> usize {
        self.headers.len()
    }

    /// Number of frames over all tasks.
    #[must_use]
    pub fn frame_count(&self) -> usize {
        self.frame_address.len()
    }

    /// Frame index range of task `t`.
    #[must_use]
    pub fn frames_of(&self, t: usize) -> std::ops::Range<usize> {
        self.frame_offsets[t] as usize..self.frame_offsets[t + 1] as usize
    }

    /// The interned name, if any.
    #[must_use]
    pub fn name(&self, index: u32) -> Option<&str> {
        (index != NO_NAME).then(|| self.names[index as usize].as_str())
    }
}

/// The hash of a name for the intern table: its length, first and last
/// eight bytes (overlapping for short names), mixed by two multiplications.
/// Constant time whatever the length; names sharing both ends only collide
/// in the table, where the full comparison settles them.
#[inline]
fn name_hash(b: &[u8]) -> u64 {
    const K1: u64 = 0x9e37_79b9_7f4a_7c15;
    const K2: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let n = b.len();
    let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    let half = |at: usize| {
        u64::from(u32::from_le_bytes(
            b[at..at + 4].try_into().expect("4 bytes"),
        ))
    };
    let (first, last) = if n >= 8 {
        (word(0), word(n - 8))
    } else if n >= 4 {
        (half(0), half(n - 4))
    } else {
        (b.iter().fold(0u64, |h, &c| (h << 8) | u64::from(c)), 0)
    };
    let h = (first ^ (n as u64).rotate_left(40)).wrapping_mul(K1);
    (h.rotate_left(29) ^ last).wrapping_mul(K2)
}

/// Byte equality without a `memcmp` call: names are a dozen bytes or two.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i + 8 <= a.len() {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().expect("8 bytes"));
        let y = u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        if x != y {
            return false;
        }
        i += 8;
    }
    a[i..].iter().zip(&b[i..]).all(|(x, y)| x == y)
}

/// Open-addressing intern table: `(hash tag, name id)` slots, linear probing,
/// at most half full. The names themselves live in `Dump::names`.
#[derive(Debug, Default)]
struct NameTable {
    slots: Vec<(u32, u32)>,
    shift: u32,
}

impl NameTable {
    const EMPTY: u32 = u32::MAX;

    fn rebuild(&mut self, capacity: usize, names: &[String]) {
        self.slots = vec![(0, Self::EMPTY); capacity];
        self.shift = 64 - capacity.trailing_zeros();
        for (id, name) in names.iter().enumerate() {
            let h = name_hash(name.as_bytes());
            let mut i = (h >> self.shift) as usize;
            while self.slots[i].1 != Self::EMPTY {
                i = (i + 1) & (capacity - 1);
            }
            self.slots[i] = (h as u32, u32::try_from(id).expect("fewer than 2^32 names"));
        }
    }

    fn intern(&mut self, name: &str, names: &mut Vec<String>) -> u32 {
        if names.len() * 2 >= self.slots.len() {
            self.rebuild((self.slots.len() * 2).max(1024), names);
        }
        let h = name_hash(name.as_bytes());
        let mask = self.slots.len() - 1;
        let mut i = (h >> self.shift) as usize;
        loop {
            let (tag, id) = self.slots[i];
            if id == Self::EMPTY {
                let new = u32::try_from(names.len()).expect("fewer than 2^32 names");
                names.push(name.to_owned());
                self.slots[i] = (h as u32, new);
                return new;
            }
            if tag == h as u32 && same_bytes(names[id as usize].as_bytes(), name.as_bytes()) {
                return id;
            }
            i = (i + 1) & mask;
        }
    }
}

/// Fills a [`Dump`] one task and one frame at a time.
#[derive(Debug, Default)]
pub struct DumpBuilder {
    dump: Dump,
    interned: NameTable,
    open: bool,
    /// Status forced by the parser for the open task (unreadable, truncated…).
    forced: Option<StackStatus>,
}

impl DumpBuilder {
    #[must_use]
    pub fn new(format: Format) -> Self {
        let mut b = Self::default();
        b.dump.format = Some(format);
        b.dump.frame_offsets.push(0);
        b
    }

    fn intern(&mut self, name: &str) -> u32 {
        self.interned.intern(name, &mut self.dump.names)
    }

    /// Reserves room for about `tasks` tasks and `frames` frames, so that the
    /// columns of a large dump are not copied over and over while they grow.
    pub fn reserve(&mut self, tasks: usize, frames: usize) {
        let d = &mut self.dump;
        d.headers.reserve(tasks);
        d.stack_status.reserve(tasks);
        d.frame_offsets.reserve(tasks);
        d.frame_address.reserve(frames);
        d.frame_has_address.reserve(frames);
        d.frame_function.reserve(frames);
        d.frame_offset.reserve(frames);
        d.frame_size.reserve(frames);
        d.frame_module.reserve(frames);
        d.frame_reliable.reserve(frames);
        d.frame_context.reserve(frames);
        d.frame_inlined.reserve(frames);
        d.frame_line.reserve(frames);
    }

    /// Sets the kernel release when the dump names it.
    pub fn set_kernel_release(&mut self, release: &str) {
        self.dump.kernel_release = Some(release.to_owned());
    }

    /// The kernel release set so far, if any.
    #[must_use]
    pub fn kernel_release(&self) -> Option<&str> {
        self.dump.kernel_release.as_deref()
    }

    /// Starts a new task (closing the previous one).
    pub fn begin_task(&mut self, header: TaskHeader) {
        self.end_task();
        self.dump.headers.push(header);
        self.open = true;
        self.forced = None;
    }

    /// Whether a task is open (frames may be pushed).
    #[must_use]
    pub fn has_open_task(&self) -> bool {
        self.open
    }

    /// The open task's header, for parsers that learn fields late
    /// (a register dump after the header, `running task` lines).
    pub fn header_mut(&mut self) -> Option<&mut TaskHeader> {
        if self.open {
            self.dump.headers.last_mut()
        } else {
            None
        }
    }

    /// Marks the open task's stack as unreadable / truncated / failed.
    /// The most pessimistic status wins when called more than once.
    pub fn force_status(&mut self, status: StackStatus) {
        self.forced = Some(match self.forced {
            Some(StackStatus::Unreadable) => StackStatus::Unreadable,
            _ => status,
        });
    }

    /// Appends a frame to the open task.
    ///
    /// # Panics
    /// When no task is open (a parser bug: frames outside a task are `skip`ped).
    pub fn push_frame(&mut self, f: &FrameRecord) {
        self.push_frame_ref(&FrameRef {
            address: f.address,
            function: f.function.as_deref(),
            offset: f.offset,
            size: f.size,
            module: f.module.as_deref(),
            reliable: f.reliable,
            context: f.context,
            inlined: f.inlined,
            line: f.line,
        });
    }

    /// Number of frames pushed to the open task so far (0 when none is open).
    #[must_use]
    pub fn open_frame_count(&self) -> usize {
        if !self.open {
            return 0;
        }
        let first = *self
            .dump
            .frame_offsets
            .last()
            .expect("offsets start with 0") as usize;
        self.dump.frame_address.len() - first
    }

    /// Appends a borrowed frame to the open task (no allocation unless a name is new).
    ///
    /// # Panics
    /// When no task is open (a parser bug: frames outside a task are `skip`ped).
    pub fn push_frame_ref(&mut self, f: &FrameRef<'_>) {
        assert!(self.open, "push_frame without an open task");
        let function = f.function.map_or(NO_NAME, |n| self.intern(n));
        let module = f.module.map_or(NO_NAME, |m| self.intern(m));
        let d = &mut self.dump;
        d.frame_address.push(f.address.unwrap_or(0));
        d.frame_has_address.push(f.address.is_some());
        d.frame_function.push(function);
        d.frame_offset.push(f.offset.unwrap_or(u64::MAX));
        d.frame_size.push(f.size.unwrap_or(u64::MAX));
        d.frame_module.push(module);
        d.frame_reliable.push(f.reliable);
        d.frame_context.push(f.context);
        d.frame_inlined.push(f.inlined);
        d.frame_line.push(u32::try_from(f.line).unwrap_or(u32::MAX));
    }

    /// Counts a line that belongs to no known construct, keeping the first few.
    pub fn skip(&mut self, line: usize, text: &str) {
        self.dump.skipped_lines += 1;
        if self.dump.skipped_samples.len() < SKIPPED_SAMPLES {
            self.dump.skipped_samples.push((line, text.to_owned()));
        }
    }

    /// Adds a warning once.
    pub fn warn(&mut self, message: &str) {
        if !self.dump.warnings.iter().any(|w| w == message) {
            self.dump.warnings.push(message.to_owned());
        }
    }

    /// Closes the open task, deciding its stack status conservatively.
    pub fn end_task(&mut self) {
        if !self.open {
            return;
        }
        let d = &mut self.dump;
        let first = *d.frame_offsets.last().expect("offsets start with 0") as usize;
        let frames = first..d.frame_address.len();
        let status = if let Some(forced) = self.forced {
            forced
        } else if frames.is_empty() {
            StackStatus::Empty
        } else if d.frame_reliable[frames].iter().all(|&r| !r) {
            // Every frame `?`: the unwinder found nothing it could vouch for.
            StackStatus::UnwindFailure
        } else {
            StackStatus::Complete
        };
        d.stack_status.push(status);
        d.frame_offsets.push(d.frame_address.len() as u64);
        self.open = false;
        self.forced = None;
    }

    /// Closes the last task and returns the dump.
    #[must_use]
    pub fn finish(mut self) -> Dump {
        self.end_task();
        self.dump
    }
}

// ---------------------------------------------------------------------------
// Dispatcher: format detection and parsing.

/// One parser: every format module exposes `looks_like` and `parse` with these types.
#[derive(Clone, Copy)]
struct Parser {
    format: Format,
    looks_like: fn(&str) -> bool,
    parse: fn(&str, &mut DumpBuilder),
}

/// The parsers compiled in, in auto-detection priority order (the order of
/// [`Format::ALL`]): the first whose `looks_like` accepts the text wins, so the
/// specific formats come before the forgiving ones.
const PARSERS: &[Parser] = &[
    Parser {
        format: Format::ProcSnapshot,
        looks_like: procsnap::looks_like,
        parse: procsnap::parse,
    },
    Parser {
        format: Format::ProcStack,
        looks_like: procstack::looks_like,
        parse: procstack::parse,
    },
    Parser {
        format: Format::Dmesg,
        looks_like: dmesg::looks_like,
        parse: dmesg::parse,
    },
    Parser {
        format: Format::Crash,
        looks_like: crash::looks_like,
        parse: crash::parse,
    },
    Parser {
        format: Format::PerfScript,
        looks_like: perf::looks_like,
        parse: perf::parse,
    },
    Parser {
        format: Format::Bpftrace,
        looks_like: bpftrace::looks_like,
        parse: bpftrace::parse,
    },
    Parser {
        format: Format::Gdb,
        looks_like: gdb::looks_like,
        parse: gdb::parse,
    },
    Parser {
        format: Format::EuStack,
        looks_like: eustack::looks_like,
        parse: eustack::parse,
    },
    Parser {
        format: Format::Drgn,
        looks_like: drgn::looks_like,
        parse: drgn::parse,
    },
];

/// How much text detection looks at first: enough for every header, small
/// enough that a 1 GB dump is not scanned twice.
const DETECT_WINDOW: usize = 256 * 1024;

fn parser_for(format: Format) -> Option<&'static Parser> {
    PARSERS.iter().find(|p| p.format == format)
}

/// The formats whose parser is compiled in, in detection order.
#[must_use]
pub fn available_formats() -> Vec<Format> {
    PARSERS.iter().map(|p| p.format).collect()
}

/// The format of a dump, or `None` when no parser recognises it.
///
/// Looks at the first [`DETECT_WINDOW`] bytes (cut at a line end) first and at
/// the whole text only when that finds nothing, so that a dmesg whose first
/// trace comes after a long boot log is still recognised.
#[must_use]
pub fn detect(text: &str) -> Option<Format> {
    let head = lines::head(text, DETECT_WINDOW);
    let found = PARSERS.iter().find(|p| (p.looks_like)(head));
    if found.is_some() || head.len() == text.len() {
        return found.map(|p| p.format);
    }
    PARSERS
        .iter()
        .find(|p| (p.looks_like)(text))
        .map(|p| p.format)
}

/// Parses a dump in `format`, or in the detected format when `None`.
///
/// Malformed lines never fail the parse: they are counted in
/// [`Dump::skipped_lines`]. Only a text in which no format is recognised, or a
/// format whose parser is not compiled in, is an error.
///
/// # Errors
/// [`Error::UnrecognizedDump`] when auto-detection finds no format,
/// [`Error::FormatUnavailable`] when `format` has no parser in this build.
pub fn parse(text: &str, format: Option<Format>) -> Result<Dump> {
    let parser = match format {
        Some(f) => parser_for(f).ok_or(Error::FormatUnavailable { format: f.name() })?,
        None => {
            let f = detect(text).ok_or_else(|| Error::UnrecognizedDump {
                tried: available_formats()
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
            parser_for(f).expect("detect only returns compiled-in formats")
        }
    };
    let mut b = DumpBuilder::new(parser.format);
    // Kernel frame lines are 30-60 bytes and task blocks 150 or more: an
    // upper-side guess spares large dumps the regrowth copies, and pages
    // reserved but never written cost no memory.
    b.reserve(text.len() / 150, text.len() / 30);
    (parser.parse)(text, &mut b);
    Ok(b.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_fills_csr_columns_and_statuses() {
        let mut b = DumpBuilder::new(Format::ProcStack);
        b.begin_task(TaskHeader {
            pid: Some(1),
            comm: "a".into(),
            ..TaskHeader::default()
        });
        for name in ["worker_thread", "kthread"] {
            b.push_frame(&FrameRecord {
                function: Some(name.into()),
                reliable: true,
                ..FrameRecord::default()
            });
        }
        b.begin_task(TaskHeader::default());
        b.begin_task(TaskHeader::default());
        b.push_frame(&FrameRecord {
            address: Some(0xffff),
            reliable: false,
            ..FrameRecord::default()
        });
        b.begin_task(TaskHeader::default());
        b.force_status(StackStatus::Unreadable);
        b.skip(7, "garbage");
        let d = b.finish();
        assert_eq!(d.frame_offsets, vec![0, 2, 2, 3, 3]);
        assert_eq!(
            d.stack_status,
            vec![
                StackStatus::Complete,
                StackStatus::Empty,
                StackStatus::UnwindFailure,
                StackStatus::Unreadable
            ]
        );
        assert_eq!(d.name(d.frame_function[1]), Some("kthread"));
        assert_eq!(d.name(d.frame_function[2]), None);
        assert_eq!(d.skipped_lines, 1);
        assert_eq!(d.frames_of(0), 0..2);
    }

    #[test]
    fn interning_survives_growth_and_collisions() {
        let mut b = DumpBuilder::new(Format::ProcStack);
        b.begin_task(TaskHeader::default());
        let names: Vec<String> = (0..5000)
            .map(|i| format!("f{i}_{}", "x".repeat(i % 23)))
            .collect();
        for round in 0..2 {
            for n in &names {
                b.push_frame_ref(&FrameRef {
                    function: Some(n),
                    ..FrameRef::default()
                });
            }
            assert_eq!(b.dump.names.len(), names.len(), "round {round}");
        }
        let d = b.finish();
        for (i, n) in names.iter().enumerate() {
            assert_eq!(d.name(d.frame_function[i]), Some(n.as_str()));
            assert_eq!(d.frame_function[i], d.frame_function[i + names.len()]);
        }
        assert!(same_bytes(b"abcdefghij", b"abcdefghij"));
        assert!(!same_bytes(b"abcdefghij", b"abcdefghik"));
        assert!(!same_bytes(b"abc", b"abcd"));
    }

    macro_rules! sample {
        ($name:literal) => {
            include_str!(concat!("../../../../tests/data/", $name))
        };
    }

    const KERNEL_SAMPLES: &[(&str, Format)] = &[
        (sample!("procdump-6.18/stacks.txt"), Format::ProcSnapshot),
        (sample!("proc-pid-stack-6.18.txt"), Format::ProcSnapshot),
        (
            sample!("proc-pid-stack-legacy-addresses.txt"),
            Format::ProcStack,
        ),
        (sample!("hung-task-4.4-x86-addresses.txt"), Format::Dmesg),
        (sample!("hung-task-5.3-x86.txt"), Format::Dmesg),
        (
            sample!("hung-task-6.0-syzbot-symbolized.txt"),
            Format::Dmesg,
        ),
        (sample!("hung-task-6.18.txt"), Format::Dmesg),
        (sample!("hung-task-arm64-6.x-task-flags.txt"), Format::Dmesg),
        (sample!("rcu-stall-4.x-irq-eoi.txt"), Format::Dmesg),
        (sample!("rcu-stall-6.10-nmi.txt"), Format::Dmesg),
        (sample!("sysrq-t-5.7-orc-all-unreliable.txt"), Format::Dmesg),
        (
            sample!("sysrq-t-5.9-header-change-journald.txt"),
            Format::Dmesg,
        ),
        (sample!("sysrq-t-6.x-i915-modules.txt"), Format::Dmesg),
    ];

    #[test]
    fn every_kernel_sample_is_detected() {
        for (text, format) in KERNEL_SAMPLES {
            assert_eq!(detect(text), Some(*format), "{}", &text[..80]);
            let d = parse(text, None).unwrap();
            assert_eq!(d.format, Some(*format));
            assert!(d.task_count() > 0);
        }
    }

    /// The tool formats come after the kernel ones in detection order, so the
    /// kernel parsers must not claim a tool's output.
    #[test]
    fn kernel_parsers_leave_tool_outputs_alone() {
        for text in [
            sample!("crash-bt-foreach.txt"),
            sample!("drgn-stack-trace.txt"),
            sample!("perf-script-kernel-6.18.txt"),
            sample!("bpftrace-kstack-6.18.txt"),
            sample!("gdb-thread-apply-all-bt.txt"),
            sample!("eu-stack.txt"),
        ] {
            assert!(!procsnap::looks_like(text), "{}", &text[..60]);
            assert!(!procstack::looks_like(text), "{}", &text[..60]);
            assert!(!dmesg::looks_like(text), "{}", &text[..60]);
        }
    }

    #[test]
    fn detection_looks_past_the_first_window() {
        let mut text = "boot message\n".repeat(DETECT_WINDOW / 10);
        text.push_str("Call Trace:\n schedule+0x1/0x2\n");
        assert_eq!(detect(&text), Some(Format::Dmesg));
    }

    #[test]
    fn unknown_text_is_an_error_not_an_empty_dump() {
        assert!(matches!(
            parse("hello\nworld\n", None),
            Err(Error::UnrecognizedDump { .. })
        ));
        assert!(matches!(
            parse("", None),
            Err(Error::UnrecognizedDump { .. })
        ));
        let forced = parse("hello\n", Some(Format::Dmesg)).unwrap();
        assert_eq!((forced.task_count(), forced.skipped_lines), (0, 1));
    }

    #[test]
    fn unwired_formats_are_refused() {
        for f in Format::ALL {
            if parser_for(f).is_none() {
                assert_eq!(
                    parse("x", Some(f)),
                    Err(Error::FormatUnavailable { format: f.name() })
                );
            }
        }
    }

    /// A tiny deterministic generator (xorshift) for the mutation test.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    const ALPHABET: &[u8] = b" \t\n[]<>?#:+-/x0123456789abcdefTCRSD.=()";

    #[test]
    fn mutated_samples_never_panic_and_keep_the_columns_consistent() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for (text, _) in KERNEL_SAMPLES {
            for _ in 0..60 {
                let mut bytes = text.as_bytes().to_vec();
                for _ in 0..=rng.below(12) {
                    let at = rng.below(bytes.len());
                    match rng.below(3) {
                        0 => bytes[at] = ALPHABET[rng.below(ALPHABET.len())],
                        1 => {
                            bytes.remove(at);
                        }
                        _ => {
                            let end = (at + rng.below(200)).min(bytes.len());
                            let piece = bytes[at..end].to_vec();
                            let to = rng.below(bytes.len());
                            bytes.splice(to..to, piece);
                        }
                    }
                }
                let text = String::from_utf8_lossy(&bytes);
                for format in [
                    None,
                    Some(Format::ProcSnapshot),
                    Some(Format::ProcStack),
                    Some(Format::Dmesg),
                ] {
                    if let Ok(d) = parse(&text, format) {
                        assert_eq!(d.frame_offsets.len(), d.task_count() + 1);
                        assert_eq!(d.stack_status.len(), d.task_count());
                        assert_eq!(*d.frame_offsets.last().unwrap() as usize, d.frame_count());
                        assert!(d.frame_offsets.windows(2).all(|w| w[0] <= w[1]));
                    }
                }
            }
        }
    }
}
