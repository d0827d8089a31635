//! [`DumpBuilder`]: how every parser fills a [`Dump`], one task and one
//! frame at a time, interning names, comms and frame tokens as it goes, and
//! how the dumps of consecutive chunks are merged ([`DumpBuilder::append`]).

use super::intern::{Interner, Pool, State};
use super::{
    lines::looks_like_frame, Dump, Format, FrameContext, FrameRecord, FrameRef, FrameSite,
    StackStatus, TaskColumns, TaskHeader, TaskLoss, NO_NAME, SKIPPED_SAMPLES, UNKNOWN_U64,
};
use std::hash::BuildHasher;

/// A frame token with its names already interned: the key of the token
/// [`Interner`], whose values live in the dump's `token_*` columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Token {
    address: Option<u64>,
    function: u32,
    offset: u64,
    size: u64,
    module: u32,
}

impl Token {
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

/// The dump's `token_*` columns are the token pool.
impl Pool<Token> for Dump {
    #[inline]
    fn count(&self) -> usize {
        self.token_count()
    }

    #[inline]
    fn is(&self, id: u32, key: &Token) -> bool {
        Token::of(self, id as usize) == *key
    }

    fn hash_of(&self, id: u32, state: &State) -> u64 {
        state.hash_one(Token::of(self, id as usize))
    }

    fn push(&mut self, key: &Token) {
        key.push_to(self);
    }
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
    pub(super) dump: Dump,
    /// Function and module names, into `dump.names`.
    interned: Interner<str>,
    /// Comms, into `dump.comm_names`.
    comms: Interner<str>,
    /// Frame tokens, into the `dump.token_*` columns.
    tokens: Interner<Token>,
    /// The open task's header and comm id: scattered into the task columns
    /// when it ends, so that fields learned late (`header_mut`) cost nothing.
    header: TaskHeader,
    comm: u32,
    open: bool,
    /// Status forced by the parser for the open task (unreadable, truncated…).
    forced: Option<StackStatus>,
    /// The open task's stack opened a section its format must close
    /// (`<TASK>`, bpftrace's `@[`, a perf sample): see [`DumpBuilder::expect_close`].
    expects_close: bool,
    /// The open stack's closing marker was read: see [`DumpBuilder::close_stack`].
    closed: bool,
    /// The line of that marker.
    closed_at: usize,
    /// Inside the open stack every unread line is a lost frame, not only the
    /// frame-shaped ones (formats whose stacks no other text interleaves).
    strict: bool,
    /// The last line that belonged to the open task (its header, a frame).
    last_line: usize,
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

    /// Marks the tasks a runqueue dump shows current on their CPU (see
    /// [`TaskColumns::mark_current`]); the open task is ended first.
    pub fn mark_current(&mut self, currents: &[(i64, i64)]) {
        self.end_task();
        self.dump.tasks.mark_current(currents);
    }

    /// Records the architecture a frame's syntax names (the first one stands).
    pub fn note_arch(&mut self, arch: &str) {
        if self.dump.arch.is_none() {
            self.dump.arch = Some(arch.to_owned());
        }
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
        self.last_line = header.line;
        self.header = header;
        self.open = true;
        self.forced = None;
        self.expects_close = false;
        self.closed = false;
        self.strict = false;
    }

    /// Starts a task whose header could not be read at `line` (a damaged
    /// header, or frames that come with no header): it is kept, with an
    /// unknown identity, so that the frames that follow are not given to the
    /// task before it, and it is marked [`TaskLoss::HEADER`].
    pub fn begin_unreadable_task(&mut self, line: usize) {
        self.begin_task(
            TaskHeader {
                line,
                ..TaskHeader::default()
            },
            "?",
        );
        self.lose(TaskLoss::HEADER, line);
    }

    /// Records that the open task lost `loss` at `line` (nothing when no task
    /// is open). The first loss's line is kept.
    pub fn lose(&mut self, loss: TaskLoss, line: usize) {
        if !self.open {
            return;
        }
        self.header.lost |= loss;
        if self.header.lost_line == 0 {
            self.header.lost_line = line;
        }
    }

    /// The open task's stack opened a section its format closes with a
    /// marker: if the task ends before [`DumpBuilder::close_stack`], the
    /// stack is [`TaskLoss::UNCLOSED`].
    pub fn expect_close(&mut self) {
        if self.open {
            self.expects_close = true;
            self.closed = false;
        }
    }

    /// No other text may appear inside the open task's stack (a format whose
    /// stacks nothing interleaves): every non-blank line the parser cannot
    /// read there is a lost frame, not only the frame-shaped ones.
    pub fn strict_stack(&mut self) {
        if self.open {
            self.strict = true;
        }
    }

    /// The open task's closing marker was read at `line`: its stack is whole.
    pub fn close_stack(&mut self, line: usize) {
        if self.open {
            self.closed = true;
            self.closed_at = line;
        }
    }

    /// Whether the open task's stack was closed by its marker (a frame read
    /// after it belongs to a task whose header is lost).
    #[must_use]
    pub fn stack_closed(&self) -> bool {
        self.open && self.closed
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
            offset: f.offset.unwrap_or(UNKNOWN_U64),
            size: f.size.unwrap_or(UNKNOWN_U64),
            module: f.module.map_or(NO_NAME, |m| self.intern(m)),
        };
        self.tokens.intern(&token, &mut self.dump)
    }

    /// Appends a frame given by its token id (from [`DumpBuilder::intern_token`]
    /// of this builder) to the open task.
    ///
    /// # Panics
    /// When no task is open, or `token` is not one of this builder's.
    pub fn push_token(&mut self, token: u32, site: FrameSite) {
        assert!(self.open, "push_frame without an open task");
        assert!((token as usize) < self.dump.token_count(), "unknown token");
        self.last_line = site.line;
        let d = &mut self.dump;
        d.frame_token.push(token);
        d.frame_reliable.push(site.reliable);
        d.frame_context.push(site.context);
        d.frame_inlined.push(site.inlined);
        d.frame_line
            .push(u32::try_from(site.line).unwrap_or(u32::MAX));
    }

    /// Appends a borrowed frame to the open task (no allocation unless its
    /// token is new) and returns its token.
    ///
    /// # Panics
    /// When no task is open (a parser bug: frames outside a task are `skip`ped).
    pub fn push_frame_ref(&mut self, f: &FrameRef<'_>) -> u32 {
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
        token
    }

    /// Counts a line that belongs to no known construct, keeping the first few.
    ///
    /// Inside an open stack, a skipped line that looks like a frame (see
    /// [`looks_like_frame`]; any non-blank line in a strict stack) is a frame
    /// whose function is lost: the task is marked [`TaskLoss::FRAME_LINE`].
    /// After a stack's closing marker, such a line is a frame of a task whose
    /// header is lost, which is then kept as an unreadable task.
    pub fn skip(&mut self, line: usize, text: &str) {
        self.skip_message(line, text, text);
    }

    /// [`DumpBuilder::skip`] of a line whose `message` (the line without its
    /// log prefixes) decides whether it looks like a frame; `text` is kept.
    pub fn skip_message(&mut self, line: usize, text: &str, message: &str) {
        if self.open {
            let in_strict_stack = self.strict && !self.closed && !message.trim().is_empty();
            if in_strict_stack || looks_like_frame(message) {
                if self.closed {
                    self.begin_unreadable_task(line);
                }
                self.lose(TaskLoss::FRAME_LINE, line);
            }
        }
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
        if self.expects_close && !self.closed {
            let line = self.last_line;
            self.lose(TaskLoss::UNCLOSED, line);
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
        d.last_stack_closed_at = if self.closed { self.closed_at } else { 0 };
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
                self.tokens.intern(&t, &mut self.dump)
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
            arch,
            warnings,
            last_stack_closed_at,
            ..
        } = next;
        if !tasks.is_empty() {
            self.dump.last_stack_closed_at = if last_stack_closed_at == 0 {
                0
            } else {
                last_stack_closed_at.saturating_add(lines_before)
            };
        }
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
        if d.arch.is_none() {
            d.arch = arch;
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
