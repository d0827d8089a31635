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

pub use input::read_input;

pub mod dmesg;
mod input;
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
/// The comm is not here: [`DumpBuilder::begin_task`] interns it into
/// [`Dump::comm_names`] (see [`Dump::comm`]).
///
/// A dump does not keep these: the builder scatters the open task's header
/// into the [`TaskColumns`] when the task ends, and [`Dump::header`] rebuilds
/// one from them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskHeader {
    pub pid: Option<i64>,
    pub tid: Option<i64>,
    pub tgid: Option<i64>,
    pub ppid: Option<i64>,
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

/// Sentinel of the `i64` id columns (pid, tid, tgid, ppid, cpu) for "unknown".
pub const NO_ID: i64 = -1;

/// Sentinel of the flag columns (`task_flags`, `thread_flags`) for "unknown".
pub const NO_FLAGS: u64 = u64::MAX;

/// Sentinel of the `state` column for "unknown" (code point 0).
pub const NO_STATE: u32 = 0;

/// `Option<bool>` as the `i8` of the `kthread` / `on_cpu` columns: -1 unknown.
fn tristate(value: Option<bool>) -> i8 {
    value.map_or(-1, i8::from)
}

fn from_tristate(value: i8) -> Option<bool> {
    (value >= 0).then_some(value != 0)
}

/// The header fields of every task, one column each, with a sentinel for
/// "unknown" instead of an `Option`: these are the arrays the Python
/// binding hands to numpy as they are (no copy), so their element types and
/// sentinels are the ones `lpc/dump.py` reads. A header value equal to its
/// column's sentinel (a pid of -1, a `\0` state, flags of `u64::MAX`) reads
/// back as unknown; no format prints those.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskColumns {
    /// [`NO_ID`] when unknown, as are `tid`, `tgid`, `ppid` and `cpu`.
    pub pid: Vec<i64>,
    pub tid: Vec<i64>,
    pub tgid: Vec<i64>,
    pub ppid: Vec<i64>,
    pub cpu: Vec<i64>,
    /// The state letter's code point, [`NO_STATE`] when unknown.
    pub state: Vec<u32>,
    /// -1 unknown, 0 no, 1 yes.
    pub kthread: Vec<i8>,
    /// -1 unknown, 0 no, 1 yes.
    pub on_cpu: Vec<i8>,
    /// [`NO_FLAGS`] when unknown.
    pub task_flags: Vec<u64>,
    /// [`NO_FLAGS`] when unknown.
    pub thread_flags: Vec<u64>,
    pub user_regs: Vec<bool>,
    /// 1-based source line of the header.
    pub line: Vec<i64>,
}

impl TaskColumns {
    /// Number of tasks.
    #[must_use]
    pub fn len(&self) -> usize {
        self.pid.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pid.is_empty()
    }

    fn reserve(&mut self, tasks: usize) {
        self.pid.reserve(tasks);
        self.tid.reserve(tasks);
        self.tgid.reserve(tasks);
        self.ppid.reserve(tasks);
        self.cpu.reserve(tasks);
        self.state.reserve(tasks);
        self.kthread.reserve(tasks);
        self.on_cpu.reserve(tasks);
        self.task_flags.reserve(tasks);
        self.thread_flags.reserve(tasks);
        self.user_regs.reserve(tasks);
        self.line.reserve(tasks);
    }

    /// Appends one task's row.
    fn push(&mut self, h: &TaskHeader) {
        self.pid.push(h.pid.unwrap_or(NO_ID));
        self.tid.push(h.tid.unwrap_or(NO_ID));
        self.tgid.push(h.tgid.unwrap_or(NO_ID));
        self.ppid.push(h.ppid.unwrap_or(NO_ID));
        self.cpu.push(h.cpu.unwrap_or(NO_ID));
        self.state.push(h.state.map_or(NO_STATE, u32::from));
        self.kthread.push(tristate(h.kthread));
        self.on_cpu.push(tristate(h.on_cpu));
        self.task_flags.push(h.task_flags.unwrap_or(NO_FLAGS));
        self.thread_flags.push(h.thread_flags.unwrap_or(NO_FLAGS));
        self.user_regs.push(h.user_regs);
        self.line.push(i64::try_from(h.line).unwrap_or(i64::MAX));
    }

    /// Task `t`'s row as a header.
    #[must_use]
    pub fn header(&self, t: usize) -> TaskHeader {
        let id = |v: i64| (v != NO_ID).then_some(v);
        let flags = |v: u64| (v != NO_FLAGS).then_some(v);
        TaskHeader {
            pid: id(self.pid[t]),
            tid: id(self.tid[t]),
            tgid: id(self.tgid[t]),
            ppid: id(self.ppid[t]),
            state: char::from_u32(self.state[t]).filter(|&c| c != '\0'),
            kthread: from_tristate(self.kthread[t]),
            on_cpu: from_tristate(self.on_cpu[t]),
            cpu: id(self.cpu[t]),
            task_flags: flags(self.task_flags[t]),
            thread_flags: flags(self.thread_flags[t]),
            line: usize::try_from(self.line[t]).unwrap_or(0),
            user_regs: self.user_regs[t],
        }
    }

    /// Appends `next`'s rows, their lines `lines_before` further on.
    fn append(&mut self, next: &TaskColumns, lines_before: usize) {
        self.pid.extend_from_slice(&next.pid);
        self.tid.extend_from_slice(&next.tid);
        self.tgid.extend_from_slice(&next.tgid);
        self.ppid.extend_from_slice(&next.ppid);
        self.cpu.extend_from_slice(&next.cpu);
        self.state.extend_from_slice(&next.state);
        self.kthread.extend_from_slice(&next.kthread);
        self.on_cpu.extend_from_slice(&next.on_cpu);
        self.task_flags.extend_from_slice(&next.task_flags);
        self.thread_flags.extend_from_slice(&next.thread_flags);
        self.user_regs.extend_from_slice(&next.user_regs);
        // As `push` would have stored the shifted line (saturating the same way).
        self.line.extend(next.line.iter().map(|&l| {
            let l = usize::try_from(l).unwrap_or(0);
            i64::try_from(l.saturating_add(lines_before)).unwrap_or(i64::MAX)
        }));
    }
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
///
/// Frames are stored as *tokens*: everything about a frame except where it
/// occurred (address, function, symbol offset and size, module) is interned
/// into the `token_*` table, and a frame keeps only its token id plus what
/// varies per occurrence (reliability, context, inlining, line). A 100 MB
/// `/proc` snapshot holds ~2M frames but only a few thousand distinct tokens.
/// Comms are interned the same way into `comm_names`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dump {
    pub format: Option<Format>,
    pub kernel_release: Option<String>,
    // ---- per task
    /// The header fields (see [`Dump::header`]).
    pub tasks: TaskColumns,
    /// Index into `comm_names`.
    pub task_comm: Vec<u32>,
    pub stack_status: Vec<StackStatus>,
    /// CSR: task `t`'s frames are `frame_offsets[t]..frame_offsets[t + 1]`.
    pub frame_offsets: Vec<u64>,
    // ---- per frame
    /// Index into the `token_*` columns.
    pub frame_token: Vec<u32>,
    pub frame_reliable: Vec<bool>,
    pub frame_context: Vec<FrameContext>,
    pub frame_inlined: Vec<bool>,
    pub frame_line: Vec<u32>,
    // ---- per token (distinct frame symbol), first-occurrence order
    /// 0 when unknown; see `token_has_address`.
    pub token_address: Vec<u64>,
    pub token_has_address: Vec<bool>,
    /// Index into `names`, or [`NO_NAME`].
    pub token_function: Vec<u32>,
    /// `u64::MAX` when unknown.
    pub token_offset: Vec<u64>,
    /// `u64::MAX` when unknown.
    pub token_size: Vec<u64>,
    /// Index into `names`, or [`NO_NAME`] (vmlinux).
    pub token_module: Vec<u32>,
    // ---- shared
    /// Interned function and module names.
    pub names: Vec<String>,
    /// Interned comms, first-occurrence order.
    pub comm_names: Vec<String>,
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
        self.tasks.len()
    }

    /// Task `t`'s header, rebuilt from the task columns.
    #[must_use]
    pub fn header(&self, t: usize) -> TaskHeader {
        self.tasks.header(t)
    }

    /// Every task's header, in order (see [`Dump::header`]).
    pub fn headers(&self) -> impl ExactSizeIterator<Item = TaskHeader> + '_ {
        (0..self.task_count()).map(|t| self.header(t))
    }

    /// Number of frames over all tasks.
    #[must_use]
    pub fn frame_count(&self) -> usize {
        self.frame_token.len()
    }

    /// Number of distinct frame tokens.
    #[must_use]
    pub fn token_count(&self) -> usize {
        self.token_function.len()
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

    /// Task `t`'s comm.
    #[must_use]
    pub fn comm(&self, t: usize) -> &str {
        &self.comm_names[self.task_comm[t] as usize]
    }

    fn token_of(&self, frame: usize) -> usize {
        self.frame_token[frame] as usize
    }

    /// Frame `i`'s address, 0 when unknown (see [`Dump::frame_has_address`]).
    #[must_use]
    pub fn frame_address(&self, i: usize) -> u64 {
        self.token_address[self.token_of(i)]
    }

    /// Whether frame `i`'s address is known.
    #[must_use]
    pub fn frame_has_address(&self, i: usize) -> bool {
        self.token_has_address[self.token_of(i)]
    }

    /// Frame `i`'s function name id, or [`NO_NAME`].
    #[must_use]
    pub fn frame_function(&self, i: usize) -> u32 {
        self.token_function[self.token_of(i)]
    }

    /// Frame `i`'s `+0xoff`, `u64::MAX` when not printed.
    #[must_use]
    pub fn frame_offset(&self, i: usize) -> u64 {
        self.token_offset[self.token_of(i)]
    }

    /// Frame `i`'s `/0xsize`, `u64::MAX` when not printed.
    #[must_use]
    pub fn frame_size(&self, i: usize) -> u64 {
        self.token_size[self.token_of(i)]
    }

    /// Frame `i`'s module name id, or [`NO_NAME`] (vmlinux).
    #[must_use]
    pub fn frame_module(&self, i: usize) -> u32 {
        self.token_module[self.token_of(i)]
    }
}

/// The hash of a name for the intern table: its length, first and last
/// eight bytes (overlapping for short names), mixed by two multiplications.
/// Constant time whatever the length; names sharing both ends only collide
/// in the table, where the full comparison settles them.
#[inline]
pub(crate) fn name_hash(b: &[u8]) -> u64 {
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
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
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

/// A frame token with its names already interned: the key of [`TokenTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Token {
    address: Option<u64>,
    function: u32,
    offset: u64,
    size: u64,
    module: u32,
}

impl Token {
    #[inline]
    fn hash(&self) -> u64 {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut h = u64::from(self.function) | (u64::from(self.module) << 32);
        for word in [
            self.offset,
            self.size,
            self.address.map_or(u64::MAX - 1, |a| a.rotate_left(17)),
        ] {
            h = (h ^ word).wrapping_mul(K).rotate_left(31);
        }
        h.wrapping_mul(K)
    }

    fn of(d: &Dump, id: usize) -> Self {
        Self {
            address: d.token_has_address[id].then_some(d.token_address[id]),
            function: d.token_function[id],
            offset: d.token_offset[id],
            size: d.token_size[id],
            module: d.token_module[id],
        }
    }

    fn push_to(self, d: &mut Dump) {
        d.token_address.push(self.address.unwrap_or(0));
        d.token_has_address.push(self.address.is_some());
        d.token_function.push(self.function);
        d.token_offset.push(self.offset);
        d.token_size.push(self.size);
        d.token_module.push(self.module);
    }
}

/// Open-addressing intern table of frame tokens, like [`NameTable`]: `(hash
/// tag, token id)` slots, linear probing, at most half full. The tokens live
/// in the `Dump::token_*` columns.
#[derive(Debug, Default)]
struct TokenTable {
    slots: Vec<(u32, u32)>,
    shift: u32,
}

impl TokenTable {
    const EMPTY: u32 = u32::MAX;

    fn rebuild(&mut self, capacity: usize, d: &Dump) {
        self.slots = vec![(0, Self::EMPTY); capacity];
        self.shift = 64 - capacity.trailing_zeros();
        for id in 0..d.token_count() {
            let h = Token::of(d, id).hash();
            let mut i = (h >> self.shift) as usize;
            while self.slots[i].1 != Self::EMPTY {
                i = (i + 1) & (capacity - 1);
            }
            self.slots[i] = (h as u32, u32::try_from(id).expect("fewer than 2^32 tokens"));
        }
    }

    fn intern(&mut self, token: Token, d: &mut Dump) -> u32 {
        if d.token_count() * 2 >= self.slots.len() {
            self.rebuild((self.slots.len() * 2).max(1024), d);
        }
        let h = token.hash();
        let mask = self.slots.len() - 1;
        let mut i = (h >> self.shift) as usize;
        loop {
            let (tag, id) = self.slots[i];
            if id == Self::EMPTY {
                let new = u32::try_from(d.token_count()).expect("fewer than 2^32 tokens");
                token.push_to(d);
                self.slots[i] = (h as u32, new);
                return new;
            }
            if tag == h as u32 && Token::of(d, id as usize) == token {
                return id;
            }
            i = (i + 1) & mask;
        }
    }
}

/// What varies per occurrence of a frame token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameSite {
    pub reliable: bool,
    pub context: FrameContext,
    pub inlined: bool,
    /// 1-based source line.
    pub line: usize,
}

/// From this many frames on, [`DumpBuilder::append`] copies the task and
/// the frame columns on two threads.
pub(crate) const PARALLEL_APPEND_FRAMES: usize = 1 << 16;

/// The per-task columns [`DumpBuilder::append`] extends.
struct TaskSide<'a> {
    tasks: &'a mut TaskColumns,
    task_comm: &'a mut Vec<u32>,
    stack_status: &'a mut Vec<StackStatus>,
    frame_offsets: &'a mut Vec<u64>,
}

impl TaskSide<'_> {
    /// Appends the next dump's task rows: comm ids renamed by `comms`, frame
    /// offsets moved past the frames already here.
    fn append(
        self,
        tasks: &TaskColumns,
        task_comm: &[u32],
        stack_status: &[StackStatus],
        frame_offsets: &[u64],
        comms: &[u32],
        lines_before: usize,
    ) {
        self.tasks.append(tasks, lines_before);
        self.task_comm
            .extend(task_comm.iter().map(|&c| comms[c as usize]));
        self.stack_status.extend_from_slice(stack_status);
        let base = *self.frame_offsets.last().expect("offsets start with 0");
        self.frame_offsets
            .extend(frame_offsets[1..].iter().map(|&o| o + base));
    }
}

/// The per-frame columns [`DumpBuilder::append`] extends.
struct FrameSide<'a> {
    frame_token: &'a mut Vec<u32>,
    frame_reliable: &'a mut Vec<bool>,
    frame_context: &'a mut Vec<FrameContext>,
    frame_inlined: &'a mut Vec<bool>,
    frame_line: &'a mut Vec<u32>,
}

impl FrameSide<'_> {
    /// Appends the next dump's frames: token ids renamed by `tokens`, lines
    /// shifted by `lines_before`.
    #[allow(clippy::too_many_arguments)]
    fn append(
        self,
        frame_token: &[u32],
        frame_reliable: &[bool],
        frame_context: &[FrameContext],
        frame_inlined: &[bool],
        frame_line: &[u32],
        tokens: &[u32],
        lines_before: usize,
    ) {
        self.frame_token
            .extend(frame_token.iter().map(|&t| tokens[t as usize]));
        self.frame_reliable.extend_from_slice(frame_reliable);
        self.frame_context.extend_from_slice(frame_context);
        self.frame_inlined.extend_from_slice(frame_inlined);
        self.frame_line.extend(frame_line.iter().map(|&l| {
            u32::try_from((l as usize).saturating_add(lines_before)).unwrap_or(u32::MAX)
        }));
    }
}

/// Fills a [`Dump`] one task and one frame at a time.
#[derive(Debug, Default)]
pub struct DumpBuilder {
    dump: Dump,
    interned: NameTable,
    comms: NameTable,
    tokens: TokenTable,
    /// The open task's header and comm id: scattered into the task columns
    /// when it ends, so that fields learned late (`header_mut`) cost nothing.
    header: TaskHeader,
    comm: u32,
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
        d.tasks.reserve(tasks);
        d.task_comm.reserve(tasks);
        d.stack_status.reserve(tasks);
        d.frame_offsets.reserve(tasks);
        d.frame_token.reserve(frames);
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

    /// Starts a new task named `comm` (closing the previous one). The comm is
    /// interned: a task costs no string allocation unless its comm is new.
    pub fn begin_task(&mut self, header: TaskHeader, comm: &str) {
        self.end_task();
        self.comm = self.comms.intern(comm, &mut self.dump.comm_names);
        self.header = header;
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
        self.open.then_some(&mut self.header)
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
        self.dump.frame_token.len() - first
    }

    /// The token id of a frame's symbol part, interning it (and its names)
    /// when new. Parsers that see the same symbol text again may keep the id
    /// and use [`DumpBuilder::push_token`].
    pub fn intern_token(&mut self, f: &FrameRef<'_>) -> u32 {
        let token = Token {
            address: f.address,
            function: f.function.map_or(NO_NAME, |n| self.intern(n)),
            offset: f.offset.unwrap_or(u64::MAX),
            size: f.size.unwrap_or(u64::MAX),
            module: f.module.map_or(NO_NAME, |m| self.intern(m)),
        };
        self.tokens.intern(token, &mut self.dump)
    }

    /// Appends a frame given by its token id (from [`DumpBuilder::intern_token`]
    /// of this builder) to the open task.
    ///
    /// # Panics
    /// When no task is open, or `token` is not one of this builder's.
    pub fn push_token(&mut self, token: u32, site: FrameSite) {
        assert!(self.open, "push_frame without an open task");
        assert!((token as usize) < self.dump.token_count(), "unknown token");
        let d = &mut self.dump;
        d.frame_token.push(token);
        d.frame_reliable.push(site.reliable);
        d.frame_context.push(site.context);
        d.frame_inlined.push(site.inlined);
        d.frame_line
            .push(u32::try_from(site.line).unwrap_or(u32::MAX));
    }

    /// Appends a borrowed frame to the open task (no allocation unless its
    /// token is new).
    ///
    /// # Panics
    /// When no task is open (a parser bug: frames outside a task are `skip`ped).
    pub fn push_frame_ref(&mut self, f: &FrameRef<'_>) {
        assert!(self.open, "push_frame without an open task");
        let token = self.intern_token(f);
        self.push_token(
            token,
            FrameSite {
                reliable: f.reliable,
                context: f.context,
                inlined: f.inlined,
                line: f.line,
            },
        );
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
        let frames = first..d.frame_token.len();
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
        d.frame_offsets.push(d.frame_token.len() as u64);
        d.tasks.push(&self.header);
        d.task_comm.push(self.comm);
        self.open = false;
        self.forced = None;
    }

    /// Appends a whole dump parsed from the text that follows this builder's
    /// (`lines_before` lines further on), as if this builder had parsed it:
    /// names, comms and tokens are re-interned into this builder's tables,
    /// line numbers shifted, skipped lines summed (the first
    /// [`SKIPPED_SAMPLES`] kept), warnings deduplicated.
    ///
    /// The open task, if any, is closed first, so `next` must start at a task
    /// boundary of the format (the parallel snapshot parse cuts at headers).
    pub fn append(&mut self, next: Dump, lines_before: usize) {
        self.end_task();
        let names: Vec<u32> = next.names.iter().map(|n| self.intern(n)).collect();
        let rename = |id: u32| {
            if id == NO_NAME {
                NO_NAME
            } else {
                names[id as usize]
            }
        };
        let tokens: Vec<u32> = (0..next.token_count())
            .map(|id| {
                let t = Token::of(&next, id);
                let t = Token {
                    function: rename(t.function),
                    module: rename(t.module),
                    ..t
                };
                self.tokens.intern(t, &mut self.dump)
            })
            .collect();
        let comms: Vec<u32> = next
            .comm_names
            .iter()
            .map(|c| self.comms.intern(c, &mut self.dump.comm_names))
            .collect();
        let shift = |line: usize| line.saturating_add(lines_before);
        let Dump {
            tasks,
            task_comm,
            stack_status,
            frame_offsets,
            frame_token,
            frame_reliable,
            frame_context,
            frame_inlined,
            frame_line,
            skipped_lines,
            skipped_samples,
            kernel_release,
            warnings,
            ..
        } = next;
        let d = &mut self.dump;
        let task_side = TaskSide {
            tasks: &mut d.tasks,
            task_comm: &mut d.task_comm,
            stack_status: &mut d.stack_status,
            frame_offsets: &mut d.frame_offsets,
        };
        let frame_side = FrameSide {
            frame_token: &mut d.frame_token,
            frame_reliable: &mut d.frame_reliable,
            frame_context: &mut d.frame_context,
            frame_inlined: &mut d.frame_inlined,
            frame_line: &mut d.frame_line,
        };
        let append_tasks = move || {
            task_side.append(
                &tasks,
                &task_comm,
                &stack_status,
                &frame_offsets,
                &comms,
                lines_before,
            );
        };
        let frame_count = frame_token.len();
        let append_frames = move || {
            frame_side.append(
                &frame_token,
                &frame_reliable,
                &frame_context,
                &frame_inlined,
                &frame_line,
                &tokens,
                lines_before,
            );
        };
        // The copy writes fresh memory, and page faults are most of its
        // cost: a large merge faults in the task and frame columns on two
        // threads (each also frees its sources there).
        if frame_count >= PARALLEL_APPEND_FRAMES {
            std::thread::scope(|scope| {
                scope.spawn(append_frames);
                append_tasks();
            });
        } else {
            append_tasks();
            append_frames();
        }
        d.skipped_lines += skipped_lines;
        for (line, text) in skipped_samples {
            if d.skipped_samples.len() < SKIPPED_SAMPLES {
                d.skipped_samples.push((shift(line), text));
            }
        }
        if d.kernel_release.is_none() {
            d.kernel_release = kernel_release;
        }
        for w in &warnings {
            self.warn(w);
        }
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

/// Warning added when the input had to be decoded lossily.
pub const WARN_NOT_UTF8: &str =
    "the input is not valid UTF-8: invalid bytes were replaced by U+FFFD before parsing";

/// Inputs at least this large are parsed on several threads when their
/// format allows it (below, thread start-up and the merge cost more than
/// they save).
pub const PARALLEL_MIN_BYTES: usize = 4 << 20;

/// The threading of a chunked parse: `chunks[0]` is parsed into `head` on
/// this thread while every later chunk gets a scoped thread and a fresh
/// builder of `format`; `parse` returns what the caller's merge needs besides
/// the columns. A chunk that is not UTF-8 gives `None` (the caller then takes
/// the lossy, sequential path). Every thread is joined before this returns.
pub(crate) fn parse_chunks_with<E: Send>(
    chunks: &[&[u8]],
    format: Format,
    head: &mut DumpBuilder,
    parse: impl Fn(&str, &mut DumpBuilder) -> E + Sync,
) -> (Option<E>, Vec<Option<(E, Dump)>>) {
    let Some((first, rest)) = chunks.split_first() else {
        return (None, Vec::new());
    };
    let parse = &parse;
    std::thread::scope(|scope| {
        let workers: Vec<_> = rest
            .iter()
            .map(|&chunk| {
                scope.spawn(move || {
                    let text = std::str::from_utf8(chunk).ok()?;
                    let mut b = DumpBuilder::new(format);
                    b.reserve(text.len() / 150, text.len() / 30);
                    let end = parse(text, &mut b);
                    Some((end, b.finish()))
                })
            })
            .collect();
        let head_end = std::str::from_utf8(first)
            .ok()
            .map(|text| parse(text, head));
        let tails = workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect();
        (head_end, tails)
    })
}

/// The threads a parse of `len` bytes uses: one per core for large inputs.
#[must_use]
pub fn parse_threads(len: usize) -> usize {
    if len < PARALLEL_MIN_BYTES {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// Parses a dump held as bytes, in `format` or the detected one, on
/// [`parse_threads`] threads. See [`parse_bytes_with`].
///
/// # Errors
/// As [`parse`].
pub fn parse_bytes(data: &[u8], format: Option<Format>) -> Result<Dump> {
    parse_bytes_with(data, format, parse_threads(data.len()))
}

/// Reads and parses the dump file at `path` (see [`read_input`] and
/// [`parse_bytes`]).
///
/// # Errors
/// [`Error::Unreadable`] when the file cannot be read, else as [`parse`].
pub fn parse_file(path: &std::path::Path, format: Option<Format>) -> Result<Dump> {
    parse_file_with(path, format, None, FILE_PIECE)
}

/// How much of a file a thread reads at a time when it parses while
/// reading: small enough to stay in the cache between the read and the
/// parse, large enough that the `pread` calls cost nothing.
pub const FILE_PIECE: usize = 256 * 1024;

fn unreadable(e: &std::io::Error) -> Error {
    Error::Unreadable {
        message: input::describe(e),
    }
}

/// [`parse_file`] on `threads` threads (`None`: [`parse_threads`] of the
/// file's size), reading `piece` bytes at a time when the file is parsed
/// while it is read.
///
/// A regular file holding a recorded `/proc` snapshot, when it is large or
/// `threads` > 1, is never held whole in memory: each thread reads and
/// parses its chunk piece by piece (see [`procsnap`]). Anything else is read by [`read_input`] and parsed by
/// [`parse_bytes_with`]. The result is the same either way.
///
/// # Errors
/// As [`parse_file`].
pub fn parse_file_with(
    path: &std::path::Path,
    format: Option<Format>,
    threads: Option<usize>,
    piece: usize,
) -> Result<Dump> {
    let file = std::fs::File::open(path).map_err(|e| unreadable(&e))?;
    let meta = file.metadata().map_err(|e| unreadable(&e))?;
    let size = usize::try_from(meta.len()).unwrap_or(usize::MAX);
    let threads = threads.unwrap_or_else(|| parse_threads(size));
    // Parsing while reading pays from a few MB on, on any number of threads:
    // no buffer the size of the file, no page faults to fill one.
    if meta.is_file() && (threads > 1 || size >= PARALLEL_MIN_BYTES) {
        let mut head = vec![0u8; DETECT_WINDOW.min(size)];
        let n = input::fill_at(&file, &mut head, 0).map_err(|e| unreadable(&e))?;
        head.truncate(n);
        // Detect on whole lines only, as `detect` does on text: half a line
        // can look like another format's header (no line end at all: no fast path).
        if (n as u64) < meta.len() {
            let whole_lines = memchr::memrchr(b'\n', &head).map_or(0, |i| i + 1);
            head.truncate(whole_lines);
        }
        if format.or_else(|| detect_head(&head)) == Some(Format::ProcSnapshot) {
            let parsed = procsnap::parse_file_chunks(&file, meta.len(), threads, piece)
                .map_err(|e| unreadable(&e))?;
            if let Some(d) = parsed {
                return Ok(d);
            }
        }
    }
    drop(file);
    let data = read_input(path).map_err(|e| unreadable(&e))?;
    parse_bytes_with(&data, format, threads)
}

/// The format detected in the first [`DETECT_WINDOW`] bytes of a dump, if
/// they are UTF-8 and some parser recognises them.
fn detect_head(data: &[u8]) -> Option<Format> {
    let head = std::str::from_utf8(lines::head_bytes(data, DETECT_WINDOW)).ok()?;
    PARSERS
        .iter()
        .find(|p| (p.looks_like)(head))
        .map(|p| p.format)
}

/// Parses a dump held as bytes on up to `threads` threads.
///
/// Valid UTF-8 is parsed in place; otherwise invalid bytes are replaced by
/// U+FFFD and [`WARN_NOT_UTF8`] is added. A recorded `/proc` snapshot (at its
/// `# pid=` headers) and a kernel log (at its 5.9+ `task:` headers) are cut
/// into one chunk per thread, each chunk validated and parsed by its own
/// thread, and the chunks merged in order: the result is the same (`==`) as
/// the sequential parse, whatever `threads`.
///
/// # Errors
/// As [`parse`].
pub fn parse_bytes_with(data: &[u8], format: Option<Format>, threads: usize) -> Result<Dump> {
    let known = format.or_else(|| detect_head(data));
    if threads > 1 && known == Some(Format::ProcSnapshot) {
        let chunks = procsnap::split_at_headers(data, threads);
        if chunks.len() > 1 {
            if let Some(d) = procsnap::parse_chunks(&chunks, data.len()) {
                return Ok(d);
            }
        }
    }
    if threads > 1 && known == Some(Format::Dmesg) {
        let chunks = dmesg::split_at_task_headers(data, threads);
        if chunks.len() > 1 {
            if let Some(d) = dmesg::parse_chunks(&chunks, data.len()) {
                return Ok(d);
            }
        }
    }
    match std::str::from_utf8(data) {
        Ok(text) => parse(text, known),
        Err(_) => {
            let text = String::from_utf8_lossy(data);
            let mut d = parse(&text, known)?;
            d.warnings.push(WARN_NOT_UTF8.to_owned());
            Ok(d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_detected_on_whole_lines_like_its_bytes() {
        // A kernel log whose 256 KiB detection window ends inside a line that,
        // cut there, reads as a snapshot header: the file must not be taken
        // for a snapshot when its bytes are not.
        let task = "[ 1.0] task:a state:S stack:0 pid:1 ppid:0 flags:0x0\n[ 1.0] Call Trace:\n\
                    [ 1.0]  f+0x1/0x2\n";
        let header = "# pid=1 tid=1 comm=a state=S flags=0x0 kthread=0 cpu=0 status=ok\n";
        let header_at = DETECT_WINDOW - "# pid=1 tid=1 comm=a state=S".len();
        let mut text = task.repeat((header_at - 1) / task.len());
        text.push_str(&" ".repeat(header_at - 1 - text.len()));
        text.push('\n');
        text.push_str(header);
        text.push_str(&task.repeat((5 << 20) / task.len()));
        // Cut inside the header, the window alone reads as a snapshot.
        assert_eq!(
            detect_head(&text.as_bytes()[..DETECT_WINDOW]),
            Some(Format::ProcSnapshot)
        );
        let path = std::env::temp_dir().join(format!("lpc-detect-{}", std::process::id()));
        std::fs::write(&path, &text).unwrap();
        let from_file = parse_file(&path, None);
        std::fs::remove_file(&path).unwrap();
        let from_bytes = parse_bytes(text.as_bytes(), None).unwrap();
        assert_eq!(from_bytes.format, Some(Format::Dmesg));
        assert_eq!(from_file.unwrap(), from_bytes);
    }

    #[test]
    fn builder_fills_csr_columns_and_statuses() {
        let mut b = DumpBuilder::new(Format::ProcStack);
        b.begin_task(
            TaskHeader {
                pid: Some(1),
                ..TaskHeader::default()
            },
            "a",
        );
        for name in ["worker_thread", "kthread"] {
            b.push_frame(&FrameRecord {
                function: Some(name.into()),
                reliable: true,
                ..FrameRecord::default()
            });
        }
        b.begin_task(TaskHeader::default(), "");
        b.begin_task(TaskHeader::default(), "");
        b.push_frame(&FrameRecord {
            address: Some(0xffff),
            reliable: false,
            ..FrameRecord::default()
        });
        b.begin_task(TaskHeader::default(), "");
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
        assert_eq!(d.name(d.frame_function(1)), Some("kthread"));
        assert_eq!(d.name(d.frame_function(2)), None);
        assert_eq!(d.skipped_lines, 1);
        assert_eq!(d.frames_of(0), 0..2);
    }

    /// Headers with every field set, unset, and set late through
    /// `header_mut`, read back from the columns; the raw columns hold the
    /// sentinels the binding hands to numpy.
    #[test]
    fn task_columns_keep_every_header_field() {
        let full = TaskHeader {
            pid: Some(7),
            tid: Some(8),
            tgid: Some(7),
            ppid: Some(1),
            state: Some('D'),
            kthread: Some(false),
            on_cpu: Some(true),
            cpu: Some(0),
            task_flags: Some(0x0020_0040),
            thread_flags: Some(0),
            line: 3,
            user_regs: true,
        };
        let unknown = TaskHeader {
            line: 9,
            ..TaskHeader::default()
        };
        let mut b = DumpBuilder::new(Format::Dmesg);
        b.begin_task(full.clone(), "a");
        b.begin_task(unknown.clone(), "b");
        b.begin_task(unknown.clone(), "c");
        // Learned after the frames, as dmesg's register dumps are.
        b.push_frame(&FrameRecord::default());
        let late = b.header_mut().expect("open task");
        late.on_cpu = Some(false);
        late.kthread = Some(true);
        late.user_regs = true;
        let d = b.finish();
        assert!(DumpBuilder::new(Format::Dmesg).header_mut().is_none());
        let late = TaskHeader {
            on_cpu: Some(false),
            kthread: Some(true),
            user_regs: true,
            ..unknown.clone()
        };
        assert_eq!(d.headers().collect::<Vec<_>>(), [full, unknown, late]);
        assert_eq!(d.task_comm, [0, 1, 2]);
        let c = &d.tasks;
        assert_eq!(c.len(), 3);
        assert_eq!(c.pid, [7, NO_ID, NO_ID]);
        assert_eq!(c.cpu, [0, NO_ID, NO_ID]);
        assert_eq!(c.state, [u32::from('D'), NO_STATE, NO_STATE]);
        assert_eq!(c.kthread, [0, -1, 1]);
        assert_eq!(c.on_cpu, [1, -1, 0]);
        assert_eq!(c.task_flags, [0x0020_0040, NO_FLAGS, NO_FLAGS]);
        assert_eq!(c.thread_flags, [0, NO_FLAGS, NO_FLAGS]);
        assert_eq!(c.user_regs, [true, false, true]);
        assert_eq!(c.line, [3, 9, 9]);
    }

    #[test]
    fn append_shifts_task_lines_like_a_longer_parse() {
        let task = |line| TaskHeader {
            pid: Some(1),
            line,
            ..TaskHeader::default()
        };
        let mut whole = DumpBuilder::new(Format::ProcStack);
        whole.begin_task(task(1), "x");
        whole.begin_task(task(105), "y");
        let mut tail = DumpBuilder::new(Format::ProcStack);
        tail.begin_task(task(5), "y");
        let mut head = DumpBuilder::new(Format::ProcStack);
        head.begin_task(task(1), "x");
        head.append(tail.finish(), 100);
        let merged = head.finish();
        assert_eq!(merged, whole.finish());
        assert_eq!(merged.tasks.line, [1, 105]);
    }

    /// The frame a token table must reproduce, read back through the accessors.
    fn frame_back(d: &Dump, i: usize) -> FrameRecord {
        FrameRecord {
            address: d.frame_has_address(i).then(|| d.frame_address(i)),
            function: d.name(d.frame_function(i)).map(str::to_owned),
            offset: Some(d.frame_offset(i)).filter(|&o| o != u64::MAX),
            size: Some(d.frame_size(i)).filter(|&s| s != u64::MAX),
            module: d.name(d.frame_module(i)).map(str::to_owned),
            reliable: d.frame_reliable[i],
            context: d.frame_context[i],
            inlined: d.frame_inlined[i],
            line: d.frame_line[i] as usize,
        }
    }

    #[test]
    fn tokens_are_shared_by_equal_symbols_only() {
        let base = FrameRecord {
            function: Some("worker_thread".into()),
            offset: Some(0x98),
            size: Some(0x310),
            reliable: true,
            ..FrameRecord::default()
        };
        let frames = [
            base.clone(),
            FrameRecord {
                reliable: false,
                context: FrameContext::Irq,
                inlined: true,
                line: 9,
                ..base.clone()
            },
            FrameRecord {
                offset: Some(0x99),
                ..base.clone()
            },
            FrameRecord {
                size: None,
                ..base.clone()
            },
            FrameRecord {
                address: Some(0),
                ..base.clone()
            },
            FrameRecord {
                address: Some(0xffff_ffff_8100_0000),
                ..base.clone()
            },
            FrameRecord {
                module: Some("ext4".into()),
                ..base.clone()
            },
            FrameRecord {
                function: Some("ext4".into()),
                module: Some("worker_thread".into()),
                ..base.clone()
            },
            FrameRecord::default(),
            base.clone(),
        ];
        let mut b = DumpBuilder::new(Format::ProcStack);
        b.begin_task(TaskHeader::default(), "t");
        for f in &frames {
            b.push_frame(f);
        }
        let d = b.finish();
        // Only the last frame (and the second: same symbol, other site) repeat one.
        assert_eq!(d.token_count(), frames.len() - 2);
        assert_eq!(d.frame_token[0], d.frame_token[1]);
        assert_eq!(d.frame_token[0], d.frame_token[9]);
        let mut distinct = d.frame_token[..9].to_vec();
        distinct.dedup();
        assert_eq!(distinct.len(), 8);
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(&frame_back(&d, i), f, "frame {i}");
        }
    }

    #[test]
    fn many_tokens_survive_table_growth() {
        let mut b = DumpBuilder::new(Format::ProcStack);
        b.begin_task(TaskHeader::default(), "");
        let frame = |i: u64| FrameRecord {
            function: Some(format!("f{}", i % 7)),
            offset: Some(i),
            size: Some(i % 3),
            address: i.is_multiple_of(5).then_some(i),
            reliable: true,
            ..FrameRecord::default()
        };
        for round in 0..2 {
            for i in 0..3000 {
                b.push_frame(&frame(i));
            }
            assert_eq!(b.dump.token_count(), 3000, "round {round}");
        }
        let d = b.finish();
        for i in 0..6000 {
            assert_eq!(frame_back(&d, i), frame(i as u64 % 3000));
        }
    }

    #[test]
    fn comms_are_interned_in_first_occurrence_order() {
        let mut b = DumpBuilder::new(Format::ProcSnapshot);
        let comms = ["kworker/0:1", "bash", "", "kworker/0:1", "bash", "ä b"];
        for c in comms {
            b.begin_task(TaskHeader::default(), c);
        }
        let d = b.finish();
        assert_eq!(d.comm_names, ["kworker/0:1", "bash", "", "ä b"]);
        assert_eq!(d.task_comm, [0, 1, 2, 0, 1, 3]);
        for (t, c) in comms.iter().enumerate() {
            assert_eq!(d.comm(t), *c);
        }
    }

    #[test]
    fn interning_survives_growth_and_collisions() {
        let mut b = DumpBuilder::new(Format::ProcStack);
        b.begin_task(TaskHeader::default(), "");
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
            assert_eq!(d.name(d.frame_function(i)), Some(n.as_str()));
            assert_eq!(d.frame_function(i), d.frame_function(i + names.len()));
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
