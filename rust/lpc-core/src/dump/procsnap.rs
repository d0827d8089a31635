//! The recorded `/proc` snapshot: lpc's own capture format (`stacks.txt`).
//!
//! One block per thread: a header line, the raw `/proc/PID/task/TID/stack`
//! lines (see [`super::procstack`]), a blank line.
//!
//! ```text
//! # pid=P tid=T comm=C state=S flags=0xF kthread=0|1 cpu=N status=ok|unreadable|gone|truncated
//! ```
//!
//! Header grammar (what the writer guarantees and the reader relies on):
//! * `pid`, `tid` come first, in that order, as decimal numbers.
//! * `comm` is **everything between `comm=` and the last ` state=`** of the
//!   line, so a comm may hold spaces, `=` and parentheses. The writer escapes
//!   `\` as `\\`, a newline as `\n` and a carriage return as `\r` (comm is
//!   set by `prctl(PR_SET_NAME)` and may hold any byte but NUL); the reader
//!   undoes exactly these three escapes.
//! * After `state=` comes one state character (`?` = unknown), then
//!   space-separated `key=value` fields in any order: `flags` (hex PF_* flags,
//!   `/proc/PID/stat` field 9), `kthread` (`0`/`1`, PF_KTHREAD), `cpu` (stat
//!   field 39, the last CPU), `status`, and optionally `ppid`, `tgid`.
//!   Unknown keys are ignored, so the format can grow.
//! * `status=unreadable` (EACCES, the ptrace check) and `status=gone` (the
//!   task exited between listing and reading) make the stack `Unreadable`;
//!   `status=truncated` makes it `Truncated`.
//!
//! `on_cpu` rule: `/proc` cannot say whether a task is on a CPU, except in one
//! case. x86's unwinders refuse to walk a task running on another CPU
//! (`arch/x86/kernel/unwind_orc.c: __unwind_start`, `task_on_another_cpu`), so
//! a readable, **empty** stack of a task in state `R` means it was on a CPU
//! when read: `on_cpu = true`. Everything else leaves `on_cpu` unknown (state
//! `R` alone only means runnable; a non-empty stack was walked while the task
//! was off-CPU, but it may have been scheduled in right after).

use std::borrow::Cow;

use super::lines::{parse_hex, parse_id, scan_dec, Lines};
use super::procstack::{
    close_proc_task, parse_proc_line, FrameMemo, ProcLine, WARN_IDLE, WARN_NOSCHED,
};
use super::{DumpBuilder, StackStatus, TaskHeader, TaskLoss};

/// The header prefix that opens a block.
pub const HEADER_PREFIX: &str = "# pid=";

/// PF_KTHREAD (`include/linux/sched.h`).
pub const PF_KTHREAD: u64 = 0x0020_0000;

/// A header's `status=` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Ok,
    Unreadable,
    Gone,
    Truncated,
}

/// A parsed header line.
#[derive(Debug)]
struct Header<'a> {
    task: TaskHeader,
    /// Borrowed from the line unless it held an escape.
    comm: Cow<'a, str>,
    status: Status,
    /// The `status=` field was read: the writer puts it in every header, so
    /// a header without one was cut short.
    complete: bool,
}

/// Undoes the writer's three escapes (`\\`, `\n`, `\r`); borrows when
/// there is none (the common case: no allocation per task).
#[must_use]
pub fn unescape_comm(raw: &str) -> Cow<'_, str> {
    if memchr::memchr(b'\\', raw.as_bytes()).is_none() {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.clone().next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            _ => {
                out.push('\\');
                continue;
            }
        }
        chars.next();
    }
    Cow::Owned(out)
}

/// `"<key><digits>"` at the start of `s`: the number and the rest.
fn number_after<'a>(s: &'a str, key: &str) -> Option<(i64, &'a str)> {
    let s = s.strip_prefix(key)?;
    let (value, n) = scan_dec(s.as_bytes())?;
    if n < s.len() && s.as_bytes()[n] != b' ' {
        return None;
    }
    Some((i64::try_from(value).ok()?, &s[n..]))
}

/// The space-separated `key=value` fields of `s` (byte scans: hot path).
/// `None` for a field without `=`.
fn fields(s: &str) -> impl Iterator<Item = Option<(&str, &str)>> {
    let mut rest = s;
    std::iter::from_fn(move || {
        let start = rest.bytes().position(|c| c != b' ')?;
        rest = &rest[start..];
        let end = memchr::memchr(b' ', rest.as_bytes()).unwrap_or(rest.len());
        let field = &rest[..end];
        rest = &rest[end..];
        Some(memchr::memchr(b'=', field.as_bytes()).map(|eq| (&field[..eq], &field[eq + 1..])))
    })
}

/// Where the last ` state=` of `s` starts: found by walking the spaces back
/// from the end (a handful of fields follow it), not with a substring searcher.
fn last_state_key(s: &str) -> Option<usize> {
    memchr::memrchr_iter(b' ', s.as_bytes()).find(|&i| s.as_bytes()[i..].starts_with(b" state="))
}

fn parse_header(line: &str, number: usize) -> Option<Header<'_>> {
    let rest = line.strip_prefix("# ")?;
    let (pid, rest) = number_after(rest, "pid=")?;
    let (tid, rest) = number_after(rest, " tid=")?;
    let rest = rest.strip_prefix(" comm=")?;
    let cut = last_state_key(rest)?;
    let comm = unescape_comm(&rest[..cut]);
    let rest = &rest[cut + " state=".len()..];
    let mut chars = rest.chars();
    let state = chars.next().filter(|&c| c != ' ' && c != '?');
    if state.is_none() && !rest.starts_with('?') {
        return None;
    }
    let mut task = TaskHeader {
        pid: Some(pid),
        tid: Some(tid),
        tgid: Some(pid),
        state,
        line: number,
        ..TaskHeader::default()
    };
    let mut status = Status::Ok;
    let mut complete = false;
    for field in fields(chars.as_str()) {
        let (key, value) = field?;
        match key {
            "flags" => task.task_flags = Some(parse_hex(value)?),
            "kthread" => {
                task.kthread = match value {
                    "0" => Some(false),
                    "1" => Some(true),
                    _ => None,
                }
            }
            "cpu" => task.cpu = parse_id(value),
            "ppid" => task.ppid = parse_id(value),
            "tgid" => task.tgid = parse_id(value),
            "status" => {
                complete = true;
                status = match value {
                    "ok" => Status::Ok,
                    "gone" => Status::Gone,
                    "truncated" => Status::Truncated,
                    // "unreadable" and anything this reader does not know:
                    // the conservative reading is "could not be read".
                    _ => Status::Unreadable,
                }
            }
            _ => {}
        }
    }
    if task.kthread.is_none() {
        task.kthread = task.task_flags.map(|f| f & PF_KTHREAD != 0);
    }
    Some(Header {
        task,
        comm,
        status,
        complete,
    })
}

/// Whether the text holds at least one snapshot header (`# pid=.. comm=..`).
#[must_use]
pub fn looks_like(text: &str) -> bool {
    Lines::new(text).any(|(number, line)| {
        line.starts_with(HEADER_PREFIX) && parse_header(line, number).is_some()
    })
}

/// The per-dump state of the block being read.
struct Open {
    running: bool,
    readable: bool,
}

fn close(b: &mut DumpBuilder, open: &mut Option<Open>) {
    if let Some(o) = open.take() {
        if o.running && o.readable && b.open_frame_count() == 0 {
            if let Some(h) = b.header_mut() {
                h.on_cpu = Some(true);
            }
        }
    }
    close_proc_task(b);
}

/// What the whole-dump warnings count, summed over the chunks of a parallel parse.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    gone: usize,
    unreadable: usize,
    /// Lines read (the last line number), to shift the next chunk's numbers.
    lines: usize,
}

/// Parses a recorded snapshot; see the module docs for the grammar.
pub fn parse(text: &str, b: &mut DumpBuilder) {
    b.warn(WARN_NOSCHED);
    b.warn(WARN_IDLE);
    let counts = parse_blocks(text, b, true);
    warn_counts(counts, b);
}

/// The blocks of `text` into `b`, without the per-dump warnings. `memo`
/// false parses every frame line in full (the reference the memo is tested
/// against).
fn parse_blocks(text: &str, b: &mut DumpBuilder, memo: bool) -> Counts {
    let mut p = BlockParser::new(memo);
    p.feed(text, b);
    p.finish(b)
}

/// A snapshot parse that can be fed its text piece by piece (each piece
/// whole lines), so that a file need not be held in memory at once.
struct BlockParser {
    counts: Counts,
    open: Option<Open>,
    frames: FrameMemo,
    memo: bool,
}

impl BlockParser {
    fn new(memo: bool) -> Self {
        Self {
            counts: Counts::default(),
            open: None,
            frames: FrameMemo::default(),
            memo,
        }
    }

    /// Parses the next whole lines of the input.
    fn feed(&mut self, text: &str, b: &mut DumpBuilder) {
        let before = self.counts.lines;
        for (n, line) in Lines::new(text) {
            let number = before + n;
            self.counts.lines = number;
            self.line(line, number, b);
        }
    }

    fn line(&mut self, line: &str, number: usize, b: &mut DumpBuilder) {
        if line.starts_with(HEADER_PREFIX) {
            close(b, &mut self.open);
            let Some(h) = parse_header(line, number) else {
                // A damaged header: its task is kept, unreadable, so that its
                // frames are not given to the task before it.
                b.begin_unreadable_task(number);
                b.skip(number, line);
                b.strict_stack();
                self.open = Some(Open {
                    running: false,
                    readable: false,
                });
                return;
            };
            let running = h.task.state == Some('R');
            b.begin_task(h.task, &h.comm);
            if !h.complete {
                // The writer ends every header with `status=`: a header
                // without it was cut, and its last field may be cut too.
                b.lose(TaskLoss::HEADER, number);
            }
            // `lpc capture` writes each stack file's lines and nothing else.
            b.strict_stack();
            match h.status {
                Status::Ok => {}
                Status::Gone => {
                    self.counts.gone += 1;
                    b.force_status(StackStatus::Unreadable);
                }
                Status::Unreadable => {
                    self.counts.unreadable += 1;
                    b.force_status(StackStatus::Unreadable);
                }
                Status::Truncated => b.force_status(StackStatus::Truncated),
            }
            self.open = Some(Open {
                running,
                readable: h.status == Status::Ok,
            });
            return;
        }
        if self.memo && b.has_open_task() && self.frames.push_known(line, number, b) {
            return;
        }
        match parse_proc_line(line, number) {
            ProcLine::Frame(frame) if b.has_open_task() => {
                if self.memo {
                    self.frames.push_new(line, &frame, b);
                } else {
                    b.push_frame_ref(&frame);
                }
            }
            // A pre-5.2 capture may keep the ULONG_MAX end marker: understood.
            ProcLine::EndMarker if b.has_open_task() => {}
            _ if line.bytes().all(|c| c.is_ascii_whitespace()) => {}
            _ => b.skip(number, line),
        }
    }

    /// Closes the last block; the counts of everything fed.
    fn finish(mut self, b: &mut DumpBuilder) -> Counts {
        close(b, &mut self.open);
        self.counts
    }
}

/// The warnings about the whole dump's statuses (after every chunk is read).
fn warn_counts(counts: Counts, b: &mut DumpBuilder) {
    let Counts {
        gone, unreadable, ..
    } = counts;
    if unreadable > 0 {
        b.warn(&format!(
            "{unreadable} task(s) had an unreadable stack (status=unreadable): unknown"
        ));
    }
    if gone > 0 {
        b.warn(&format!(
            "{gone} task(s) exited while the snapshot was taken (status=gone)"
        ));
    }
}

/// Where a parse of `len` bytes on `parts` threads would like its chunks to
/// start (the first at 0 is implied): equal shares. (The first thread also
/// merges the others' chunks, but only after they are done, so a smaller
/// first share would only make the merged chunks larger: measured slower.)
fn chunk_targets(len: usize, parts: usize) -> Vec<usize> {
    (1..parts).map(|k| len / parts * k).collect()
}

/// The needle that starts a block after the line before it.
const BLOCK_START: &[u8] = b"\n# pid=";

/// Cuts a snapshot's bytes into at most `parts` chunks, each cut just before
/// a line that starts with [`HEADER_PREFIX`] (so every chunk but the first
/// starts a block) at about the sizes [`chunk_targets`] wants. Cutting after
/// a `\n` keeps the chunks UTF-8 character-aligned. Fewer chunks when
/// headers are far apart.
#[must_use]
pub fn split_at_headers(data: &[u8], parts: usize) -> Vec<&[u8]> {
    let needle = memchr::memmem::Finder::new(BLOCK_START);
    let mut chunks = Vec::with_capacity(parts.max(1));
    let mut start = 0;
    for target in chunk_targets(data.len(), parts) {
        let from = target.saturating_sub(1).max(start);
        let Some(found) = needle.find(&data[from..]) else {
            break;
        };
        let cut = from + found + 1;
        chunks.push(&data[start..cut]);
        start = cut;
    }
    chunks.push(&data[start..]);
    chunks
}

/// A parsed chunk: its counts and columns, `None` when it was not UTF-8.
type Chunk = Option<(Counts, super::Dump)>;

/// Parses a snapshot given as consecutive chunks (from [`split_at_headers`]),
/// one thread per chunk, and merges them in order: the result equals
/// [`parse`] of the whole text (`reserve_for` = its length, to size the
/// columns once). `None` when a chunk is not valid UTF-8: the caller then
/// takes the lossy sequential path.
#[must_use]
pub fn parse_chunks(chunks: &[&[u8]], reserve_for: usize) -> Option<super::Dump> {
    let mut b = result_builder(reserve_for);
    let (head, tails) =
        super::parse_chunks_with(chunks, super::Format::ProcSnapshot, &mut b, |text, b| {
            parse_blocks(text, b, true)
        });
    merge(b, head, tails.into_iter())
}

/// The builder of the first chunk, which becomes the result: sized for the
/// whole input, so that only the later chunks are copied by the merge.
fn result_builder(reserve_for: usize) -> DumpBuilder {
    let mut b = DumpBuilder::new(super::Format::ProcSnapshot);
    b.reserve(reserve_for / 150, reserve_for / 30);
    b.warn(WARN_NOSCHED);
    b.warn(WARN_IDLE);
    b
}

/// Appends the later chunks to the first (in `b`), shifting their line
/// numbers, and adds the whole-dump warnings. `None` when any chunk is.
fn merge(
    mut b: DumpBuilder,
    head: Option<Counts>,
    tails: impl Iterator<Item = Chunk>,
) -> Option<super::Dump> {
    let mut counts = head;
    // One chunk that is not UTF-8 fails the merge: the caller decodes lossily.
    for tail in tails {
        let (Some(c), Some((more, dump))) = (counts.as_mut(), tail) else {
            counts = None;
            continue;
        };
        b.append(dump, c.lines);
        c.gone += more.gone;
        c.unreadable += more.unreadable;
        c.lines += more.lines;
    }
    warn_counts(counts?, &mut b);
    Some(b.finish())
}

/// The most input a file parse reserves column space for up front (4 GiB).
const RESERVE_CAP: u64 = 1 << 32;

/// Parses the snapshot file `file` (`size` bytes by `fstat`) on `threads`
/// threads without reading it into memory: each thread reads its chunk in
/// pieces of about `piece` bytes (see [`super::input::for_each_piece`]) and
/// parses them as they come; the chunks are cut at block headers found near
/// the [`chunk_targets`]. The result equals [`parse`] of the file's text.
/// `Ok(None)` when a piece is not valid UTF-8 (the caller reads the file
/// whole and decodes it lossily).
///
/// # Errors
/// The `io::Error` of a read.
pub(crate) fn parse_file_chunks(
    file: &std::fs::File,
    size: u64,
    threads: usize,
    piece: usize,
) -> std::io::Result<Option<super::Dump>> {
    // `st_size` sizes the columns before anything is read: capped, so that a
    // file claiming an absurd size cannot make the reservation fail.
    let size_hint = usize::try_from(size.min(RESERVE_CAP)).unwrap_or(0);
    let mut starts = vec![0u64];
    for target in chunk_targets(size_hint, threads) {
        let from = (target as u64)
            .saturating_sub(1)
            .max(*starts.last().expect("0"));
        match super::input::find_in_file(file, from, BLOCK_START)? {
            Some(at) => starts.push(at + 1),
            None => break,
        }
    }
    let ranges: Vec<(u64, Option<u64>)> = starts
        .iter()
        .enumerate()
        .map(|(k, &start)| (start, starts.get(k + 1).copied()))
        .collect();
    let read_chunk = |b: &mut DumpBuilder, (start, end): (u64, Option<u64>)| {
        let mut p = BlockParser::new(true);
        let whole = super::input::for_each_piece(file, start, end, piece, |text| p.feed(text, b))?;
        Ok::<_, std::io::Error>(whole.then(|| p.finish(b)))
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = ranges[1..]
            .iter()
            .map(|&range| {
                scope.spawn(move || {
                    let mut b = DumpBuilder::new(super::Format::ProcSnapshot);
                    let len = range.1.unwrap_or(size).saturating_sub(range.0);
                    let len = usize::try_from(len.min(RESERVE_CAP)).unwrap_or(0);
                    b.reserve(len / 150, len / 30);
                    let counts = read_chunk(&mut b, range)?;
                    Ok::<_, std::io::Error>(counts.map(|c| (c, b.finish())))
                })
            })
            .collect();
        let mut b = result_builder(size_hint);
        let head = read_chunk(&mut b, ranges[0]);
        let tails: Vec<std::io::Result<Chunk>> = workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect();
        let head = head?;
        let tails = tails.into_iter().collect::<std::io::Result<Vec<_>>>()?;
        Ok(merge(b, head, tails.into_iter()))
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Dump, Format, TaskLoss, SKIPPED_SAMPLES};
    use super::*;

    const STACKS: &str = include_str!("../../../../tests/data/procdump-6.18/stacks.txt");
    const TASKS: &str = include_str!("../../../../tests/data/procdump-6.18/tasks.tsv");
    const EXCERPT: &str = include_str!("../../../../tests/data/proc-pid-stack-6.18.txt");

    fn run(text: &str) -> Dump {
        let mut b = DumpBuilder::new(Format::ProcSnapshot);
        parse(text, &mut b);
        b.finish()
    }

    #[test]
    fn recorded_snapshot_agrees_with_tasks_tsv() {
        let d = run(STACKS);
        assert_eq!(d.skipped_lines, 0);
        let rows: Vec<Vec<&str>> = TASKS
            .lines()
            .skip(1)
            .map(|l| l.split('\t').collect())
            .collect();
        assert_eq!(d.task_count(), rows.len());
        for (t, row) in rows.iter().enumerate() {
            let h = &d.header(t);
            assert_eq!(h.pid, row[0].parse().ok());
            assert_eq!(h.tid, row[1].parse().ok());
            assert_eq!(d.comm(t), row[2]);
            assert_eq!(h.state, row[3].chars().next());
            assert_eq!(h.task_flags, parse_hex(row[4]));
            assert_eq!(h.kthread, Some(row[5] == "1"));
            assert_eq!(h.cpu, row[6].parse().ok());
            assert_eq!(d.frames_of(t).len(), row[7].parse::<usize>().unwrap());
            assert_eq!(h.kthread, h.task_flags.map(|f| f & PF_KTHREAD != 0));
        }
    }

    #[test]
    fn running_task_with_empty_stack_is_on_cpu() {
        let d = run(EXCERPT);
        assert_eq!(d.skipped_lines, 1, "the provenance line");
        assert_eq!(d.task_count(), 12);
        let spin = (0..d.task_count())
            .position(|t| d.comm(t) == "wl-spin")
            .unwrap();
        assert_eq!(d.header(spin).on_cpu, Some(true));
        assert_eq!(d.stack_status[spin], StackStatus::Empty);
        let zombie = d.headers().position(|h| h.state == Some('Z')).unwrap();
        assert_eq!(d.header(zombie).on_cpu, None);
        assert_eq!(d.stack_status[zombie], StackStatus::Empty);
        assert!((0..d.task_count())
            .filter(|&t| d.comm(t) != "wl-spin")
            .all(|t| d.header(t).on_cpu.is_none()));
    }

    #[test]
    fn header_grammar_round_trips_awkward_comms() {
        let text = "# pid=5 tid=6 comm=a state=b (x) state=c\\\\d\\n state=? flags=0x0 \
                    kthread=0 cpu=3 status=gone extra=1\n[<0>] f+0x1/0x2\n";
        let d = run(text);
        assert_eq!(d.comm(0), "a state=b (x) state=c\\d\n");
        assert_eq!(d.header(0).state, None);
        assert_eq!(d.header(0).cpu, Some(3));
        assert_eq!(d.stack_status, [StackStatus::Unreadable]);
        assert!(d.warnings.iter().any(|w| w.contains("exited")));
    }

    #[test]
    fn a_malformed_header_is_a_task_whose_header_is_lost() {
        let d = run("# pid=1 tid=1 comm=a state=S status=ok\n[<0>] g+0x1/0x2\n# pid=x tid=1 comm=a state=S status=ok\n[<0>] f+0x1/0x2\n# note\n");
        assert_eq!(d.task_count(), 2);
        assert!(d.header(0).lost.is_empty());
        assert_eq!(d.frames_of(0).len(), 1);
        // Its frames stay with it, and the note inside its stack is a lost line.
        assert_eq!(d.frames_of(1).len(), 1);
        assert_eq!(d.header(1).lost, TaskLoss::HEADER | TaskLoss::FRAME_LINE);
        assert_eq!(d.header(1).lost_line, 3);
        assert_eq!(d.skipped_lines, 2);
    }

    #[test]
    fn a_header_without_its_status_field_was_cut() {
        let d = run("# pid=1 tid=1 comm=a state=S flags=0x04\n[<0>] g+0x1/0x2\n");
        assert_eq!(d.frames_of(0).len(), 1);
        assert_eq!(
            (d.header(0).lost, d.header(0).lost_line),
            (TaskLoss::HEADER, 1)
        );
    }

    #[test]
    fn any_unreadable_line_inside_a_recorded_stack_is_a_lost_frame() {
        let d = run("# pid=1 tid=1 comm=a state=S status=ok\n[<0>] g+0x1/0x2\n[<0>] \u{1b}garbage\n[<0>] h+0x1/0x2\n\n");
        assert_eq!(d.frames_of(0).len(), 2);
        assert_eq!(
            (d.header(0).lost, d.header(0).lost_line),
            (TaskLoss::FRAME_LINE, 3)
        );
    }

    /// A tiny deterministic generator (xorshift) for the split properties.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// Lines a mutation may insert: every construct the parser handles
    /// differently (statuses, malformed headers, end markers, `?` frames,
    /// module frames, escaped and non-ASCII comms, noise, blanks).
    const INSERTS: &[&str] = &[
        "garbage that is no frame\n",
        "# pid=7 tid=7 comm=gone one state=R flags=0x0 kthread=0 cpu=1 status=gone\n",
        "# pid=8 tid=9 comm=unread state=S flags=0x200000 cpu=1 status=unreadable\n",
        "# pid=10 tid=10 comm=cut state=D flags=0x0 kthread=0 cpu=0 status=truncated\n",
        "# pid=x tid=1 comm=bad state=S\n",
        "# pid=11 tid=11 comm=\u{e4} b\\n state=R flags=0x0 kthread=0 cpu=0 status=ok\n",
        "[<ffffffffffffffff>] 0xffffffffffffffff\n",
        "[<0>] ? foo+0x1/0x2 [mymod]\n",
        "[<ffffffff811aadc6>] bar+0x10/0x20\n",
        "[<0>] worker_thread+0x98/0x310\n",
        "[<0>] worker_thread+0x98/0x310 (kernel/workqueue.c:3361)\n",
        "\n",
    ];

    /// The sample repeated and mutated: inserted lines and replaced bytes.
    fn mutated(rng: &mut Rng) -> String {
        let mut text = STACKS.repeat(1 + rng.below(3));
        for _ in 0..rng.below(40) {
            let at = rng.below(text.len());
            let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            text.insert_str(line_start, INSERTS[rng.below(INSERTS.len())]);
        }
        let mut bytes = text.into_bytes();
        for _ in 0..rng.below(20) {
            let at = rng.below(bytes.len());
            if bytes[at].is_ascii() {
                bytes[at] = b" \n#=[]<>?+/0x9afpidcomm"[rng.below(23)];
            }
        }
        String::from_utf8(bytes).expect("ASCII replaced by ASCII")
    }

    /// Cuts `text` before `cuts` randomly chosen header lines.
    fn random_chunks<'t>(text: &'t str, rng: &mut Rng, cuts: usize) -> Vec<&'t [u8]> {
        let headers: Vec<usize> = memchr::memmem::find_iter(text.as_bytes(), "\n# pid=")
            .map(|i| i + 1)
            .collect();
        let mut at: Vec<usize> = (0..cuts.min(headers.len()))
            .map(|_| headers[rng.below(headers.len())])
            .collect();
        at.sort_unstable();
        at.dedup();
        let mut chunks = Vec::new();
        let mut start = 0;
        for cut in at {
            chunks.push(&text.as_bytes()[start..cut]);
            start = cut;
        }
        chunks.push(&text.as_bytes()[start..]);
        chunks
    }

    fn sequential(text: &str, memo: bool) -> Dump {
        let mut b = DumpBuilder::new(Format::ProcSnapshot);
        b.warn(WARN_NOSCHED);
        b.warn(WARN_IDLE);
        let counts = parse_blocks(text, &mut b, memo);
        warn_counts(counts, &mut b);
        b.finish()
    }

    #[test]
    fn the_frame_memo_changes_nothing() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for text in [STACKS.to_owned(), EXCERPT.to_owned()]
            .into_iter()
            .chain((0..40).map(|_| mutated(&mut rng)))
        {
            let fast = sequential(&text, true);
            assert_eq!(fast, sequential(&text, false));
            assert_eq!(fast, run(&text));
        }
    }

    #[test]
    fn chunked_parse_equals_the_sequential_parse() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..60 {
            let text = if round == 0 {
                STACKS.to_owned()
            } else {
                mutated(&mut rng)
            };
            let whole = run(&text);
            for cuts in [1, 2, 1 + rng.below(7)] {
                let chunks = random_chunks(&text, &mut rng, cuts);
                let merged = parse_chunks(&chunks, text.len()).expect("valid UTF-8");
                assert_eq!(merged, whole, "round {round}, {} chunks", chunks.len());
            }
            let parts = 1 + rng.below(8);
            let chunks = split_at_headers(text.as_bytes(), parts);
            assert!(chunks.len() <= parts);
            assert_eq!(chunks.concat(), text.as_bytes());
            assert!(chunks[1..].iter().all(|c| c.starts_with(b"# pid=")));
            assert_eq!(parse_chunks(&chunks, text.len()).unwrap(), whole);
        }
    }

    /// A merge large enough to copy the task and frame columns on two threads.
    #[test]
    fn a_large_merge_equals_the_sequential_parse() {
        let text = STACKS.repeat(320);
        let whole = run(&text);
        let chunks = split_at_headers(text.as_bytes(), 2);
        assert_eq!(chunks.len(), 2);
        let tail = run(std::str::from_utf8(chunks[1]).unwrap());
        assert!(tail.frame_count() >= super::super::PARALLEL_APPEND_FRAMES);
        assert_eq!(parse_chunks(&chunks, text.len()).unwrap(), whole);
    }

    #[test]
    fn merged_counts_and_samples_cover_the_whole_dump() {
        let bad =
            "# pid=1 tid=1 comm=a state=S flags=0x0 kthread=0 cpu=0 status=unreadable\nnoise\n";
        let text = bad.repeat(30);
        let whole = run(&text);
        assert_eq!(whole.skipped_lines, 30);
        assert_eq!(whole.skipped_samples.len(), SKIPPED_SAMPLES);
        assert!(whole
            .warnings
            .iter()
            .any(|w| w.starts_with("30 task(s) had an unreadable")));
        for parts in 2..6 {
            let chunks = split_at_headers(text.as_bytes(), parts);
            assert_eq!(chunks.len(), parts);
            assert_eq!(parse_chunks(&chunks, text.len()).unwrap(), whole);
        }
    }

    #[test]
    fn invalid_utf8_in_any_chunk_refuses_the_parallel_path() {
        let mut bytes = STACKS.repeat(2).into_bytes();
        let last = bytes.len() - 3;
        bytes[last] = 0xff;
        let chunks = split_at_headers(&bytes, 2);
        assert_eq!(chunks.len(), 2);
        assert!(parse_chunks(&chunks, bytes.len()).is_none());
        let lossy = super::super::parse_bytes_with(&bytes, None, 2).unwrap();
        assert_eq!(
            lossy,
            super::super::parse_bytes_with(&bytes, None, 1).unwrap()
        );
        assert!(lossy
            .warnings
            .iter()
            .any(|w| w == super::super::WARN_NOT_UTF8));
        assert_eq!(lossy.task_count(), run(STACKS).task_count() * 2);
    }

    #[test]
    fn parse_bytes_is_the_same_on_any_thread_count() {
        let text = STACKS.repeat(5);
        let one = super::super::parse_bytes_with(text.as_bytes(), None, 1).unwrap();
        assert_eq!(one, run(&text));
        for threads in 2..5 {
            let many = super::super::parse_bytes_with(text.as_bytes(), None, threads).unwrap();
            assert_eq!(many, one, "{threads} threads");
        }
    }

    #[test]
    fn parsing_a_file_while_reading_it_equals_parsing_its_text() {
        use super::super::input::TempFile;
        use super::super::{parse_bytes_with, parse_file_with};
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for round in 0..12 {
            let text = if round == 0 {
                STACKS.to_owned()
            } else {
                mutated(&mut rng)
            };
            let f = TempFile::new("snapshot", text.as_bytes());
            let whole = run(&text);
            for (threads, piece) in [
                (2, 1 << 18),
                (2, 61),
                (3, 4096),
                (1 + rng.below(5), 1 + rng.below(3000)),
            ] {
                let from_file = parse_file_with(&f.0, None, Some(threads), piece).unwrap();
                assert_eq!(
                    from_file, whole,
                    "round {round}, {threads} threads, pieces of {piece}"
                );
            }
            // One thread reading piece by piece (what files of 4 MB and more get).
            let file = std::fs::File::open(&f.0).unwrap();
            let single = parse_file_chunks(&file, text.len() as u64, 1, 97).unwrap();
            assert_eq!(single.unwrap(), whole, "round {round}, one thread");
        }
        // Invalid UTF-8: the file is read whole and decoded lossily, as bytes are.
        let mut bytes = STACKS.repeat(3).into_bytes();
        let at = bytes.len() / 2;
        bytes[at] = 0xe4;
        let f = TempFile::new("latin1", &bytes);
        let lossy = parse_file_with(&f.0, None, Some(2), 100).unwrap();
        assert_eq!(lossy, parse_bytes_with(&bytes, None, 1).unwrap());
        assert!(lossy
            .warnings
            .iter()
            .any(|w| w == super::super::WARN_NOT_UTF8));
    }

    #[test]
    fn detection() {
        assert!(looks_like(STACKS));
        assert!(looks_like(EXCERPT));
        assert!(!looks_like("[<0>] f+0x1/0x2\n"));
        assert!(!looks_like("# pid=1\n"));
    }
}
