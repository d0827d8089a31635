//! The data model of a parsed dump: the [`Dump`] columns, the task header and
//! frame records parsers produce, the enums and the "unknown" sentinels that
//! the Python binding exports as they are.

use super::Format;

/// Sentinel for "no name" in `frame_function` / `frame_module`.
pub const NO_NAME: u32 = u32::MAX;

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
    /// The kernel's hung-task detector reported the task (`INFO: task C:P blocked
    /// for more than N seconds`, kernel/hung_task.c check_hung_task): its D
    /// sleep has lasted that long already.
    pub hung: bool,
    /// What the task's stack lost while it was read ([`TaskLoss`] bits).
    pub lost: TaskLoss,
    /// 1-based source line of the first loss (0 when nothing was lost).
    pub lost_line: usize,
}

/// What a task lost while its text was read, as bits: evidence the parser
/// saw go missing, which makes the task's stack incomplete whatever its
/// frames say (a model never judges such a stack clean).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TaskLoss(u8);

impl TaskLoss {
    pub const NONE: TaskLoss = TaskLoss(0);
    /// A line inside the stack reads like a frame but not as one: a frame of
    /// unknown function is missing from the stack.
    pub const FRAME_LINE: TaskLoss = TaskLoss(1);
    /// The stack does not end as its format ends one: its closing marker
    /// (`</TASK>`, bpftrace's `]: N`, perf's blank line) is missing, or the
    /// input stops in the middle of a line inside it.
    pub const UNCLOSED: TaskLoss = TaskLoss(2);
    /// The task's header could not be read (a damaged header, or frames with
    /// no header before them): who the task is, and its state, are unknown.
    pub const HEADER: TaskLoss = TaskLoss(4);

    /// Every loss with its stable name, in bit order (the Python binding
    /// exports these names).
    pub const ALL: [(TaskLoss, &'static str); 3] = [
        (TaskLoss::FRAME_LINE, "frame_line"),
        (TaskLoss::UNCLOSED, "unclosed"),
        (TaskLoss::HEADER, "header"),
    ];

    /// The bits as stored in [`TaskColumns::lost`].
    #[must_use]
    pub const fn bits(self) -> u8 {
        self.0
    }

    #[must_use]
    pub const fn from_bits(bits: u8) -> Self {
        TaskLoss(bits)
    }

    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    #[must_use]
    pub const fn contains(self, other: TaskLoss) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for TaskLoss {
    type Output = TaskLoss;
    fn bitor(self, rhs: TaskLoss) -> TaskLoss {
        TaskLoss(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for TaskLoss {
    fn bitor_assign(&mut self, rhs: TaskLoss) {
        self.0 |= rhs.0;
    }
}

/// Sentinel of the `i64` id columns (pid, tid, tgid, ppid, cpu) for "unknown".
pub const NO_ID: i64 = -1;

/// Sentinel of every `u64` column for "unknown": symbol offsets and sizes
/// (`token_offset`, `token_size`) and flags.
pub const UNKNOWN_U64: u64 = u64::MAX;

/// Sentinel of the flag columns (`task_flags`, `thread_flags`) for "unknown".
pub const NO_FLAGS: u64 = UNKNOWN_U64;

/// Sentinel of the `state` column for "unknown" (code point 0).
pub const NO_STATE: u32 = 0;

/// A 1-based line number as the `i64` line columns store it.
fn line_column(line: usize) -> i64 {
    i64::try_from(line).unwrap_or(i64::MAX)
}

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
    /// Reported by the hung-task detector.
    pub hung: Vec<bool>,
    /// 1-based source line of the header.
    pub line: Vec<i64>,
    /// [`TaskLoss`] bits: what the task lost while it was read.
    pub lost: Vec<u8>,
    /// 1-based source line of the task's first loss, 0 when none.
    pub lost_line: Vec<i64>,
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

    pub(crate) fn reserve(&mut self, tasks: usize) {
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
        self.hung.reserve(tasks);
        self.line.reserve(tasks);
        self.lost.reserve(tasks);
        self.lost_line.reserve(tasks);
    }

    /// Appends one task's row.
    pub(crate) fn push(&mut self, h: &TaskHeader) {
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
        self.hung.push(h.hung);
        self.line.push(line_column(h.line));
        self.lost.push(h.lost.bits());
        self.lost_line.push(line_column(h.lost_line));
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
            hung: self.hung[t],
            lost: TaskLoss::from_bits(self.lost[t]),
            lost_line: usize::try_from(self.lost_line[t]).unwrap_or(0),
        }
    }

    /// Appends `next`'s rows, their lines `lines_before` further on.
    pub(crate) fn append(&mut self, next: &TaskColumns, lines_before: usize) {
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
        self.hung.extend_from_slice(&next.hung);
        // As `push` would have stored the shifted lines (saturating the same way).
        let shift =
            |&l: &i64| line_column(usize::try_from(l).unwrap_or(0).saturating_add(lines_before));
        self.line.extend(next.line.iter().map(shift));
        self.lost.extend_from_slice(&next.lost);
        // 0 = no loss stays 0.
        self.lost_line.extend(
            next.lost_line
                .iter()
                .map(|l| if *l == 0 { 0 } else { shift(l) }),
        );
    }

    /// Adds `loss` at `line` to the last task's row (the first loss's line is kept).
    /// Puts the runnable tasks the scheduler's runqueue dump shows as their
    /// CPU's current task (`pid`, `cpu` pairs) on that CPU, where nothing else
    /// said whether they were on one.
    pub(crate) fn mark_current(&mut self, currents: &[(i64, i64)]) {
        if currents.is_empty() {
            return;
        }
        let on: std::collections::HashMap<i64, i64> = currents.iter().copied().collect();
        for t in 0..self.len() {
            if self.on_cpu[t] != -1 || self.state[t] != u32::from('R') {
                continue;
            }
            if let Some(&cpu) = on.get(&self.pid[t]) {
                self.on_cpu[t] = 1;
                if self.cpu[t] == NO_ID {
                    self.cpu[t] = cpu;
                }
            }
        }
    }

    pub(crate) fn lose_last(&mut self, loss: TaskLoss, line: usize) {
        let (Some(lost), Some(at)) = (self.lost.last_mut(), self.lost_line.last_mut()) else {
            return;
        };
        *lost |= loss.bits();
        if *at == 0 {
            *at = line_column(line);
        }
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
    /// The architecture the frames' own syntax names (ARM's `(sym) from`,
    /// powerpc's `[sp] [lr] sym`, s390's `([<addr>] sym)`), when one does.
    pub arch: Option<String>,
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
    /// [`UNKNOWN_U64`] when unknown.
    pub token_offset: Vec<u64>,
    /// [`UNKNOWN_U64`] when unknown.
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
    /// The line of the closing marker the last task's stack ended with, 0
    /// when it had none (see [`Dump::mark_cut`]).
    pub last_stack_closed_at: usize,
    /// The input stops in the middle of a line: it was cut, and whatever
    /// followed the cut (more tasks) is missing (see [`Dump::mark_cut`]).
    pub input_cut: bool,
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

    /// Tasks that lost evidence while they were read (see [`TaskLoss`]).
    #[must_use]
    pub fn lost_tasks(&self) -> usize {
        self.tasks.lost.iter().filter(|&&l| l != 0).count()
    }

    /// Marks the input as cut: it stops in the middle of a line (no final
    /// line end), so tasks after the cut are missing ([`Dump::input_cut`])
    /// and the stack read last may be missing its end. Its task is
    /// [`TaskLoss::UNCLOSED`] unless its format's closing marker was read on
    /// a line before the cut one, `last_line` (a marker on the cut line
    /// itself, a blank that was the start of a frame line, proves nothing;
    /// `None`: the line is not known, and no marker counts). The loss's line
    /// is the last line read of that task.
    pub fn mark_cut(&mut self, last_line: Option<usize>) {
        self.input_cut = true;
        let Some(t) = self.task_count().checked_sub(1) else {
            return;
        };
        let closed = self.last_stack_closed_at;
        if closed != 0 && last_line.is_some_and(|last| closed < last) {
            return;
        }
        let frames = self.frames_of(t);
        let line = if frames.is_empty() {
            usize::try_from(self.tasks.line[t]).unwrap_or(0)
        } else {
            self.frame_line[frames.end - 1] as usize
        };
        self.tasks.lose_last(TaskLoss::UNCLOSED, line);
    }

    /// Task `t`'s comm.
    #[must_use]
    pub fn comm(&self, t: usize) -> &str {
        &self.comm_names[self.task_comm[t] as usize]
    }

    pub(crate) fn token_of(&self, frame: usize) -> usize {
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

    /// Frame `i`'s `+0xoff`, [`UNKNOWN_U64`] when not printed.
    #[must_use]
    pub fn frame_offset(&self, i: usize) -> u64 {
        self.token_offset[self.token_of(i)]
    }

    /// Frame `i`'s `/0xsize`, [`UNKNOWN_U64`] when not printed.
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
/// What varies per occurrence of a frame token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameSite {
    pub reliable: bool,
    pub context: FrameContext,
    pub inlined: bool,
    /// 1-based source line.
    pub line: usize,
}
