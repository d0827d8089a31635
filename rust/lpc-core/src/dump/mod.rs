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

use std::collections::HashMap;

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

/// Fills a [`Dump`] one task and one frame at a time.
#[derive(Debug, Default)]
pub struct DumpBuilder {
    dump: Dump,
    interned: HashMap<String, u32>,
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
        if let Some(&i) = self.interned.get(name) {
            return i;
        }
        let i = u32::try_from(self.dump.names.len()).expect("fewer than 2^32 names");
        self.dump.names.push(name.to_owned());
        self.interned.insert(name.to_owned(), i);
        i
    }

    /// Sets the kernel release when the dump names it.
    pub fn set_kernel_release(&mut self, release: &str) {
        self.dump.kernel_release = Some(release.to_owned());
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
        assert!(self.open, "push_frame without an open task");
        let function = f.function.as_deref().map_or(NO_NAME, |n| self.intern(n));
        let module = f.module.as_deref().map_or(NO_NAME, |m| self.intern(m));
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
}
