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
use super::procstack::{close_proc_task, parse_proc_line, ProcLine, WARN_IDLE, WARN_NOSCHED};
use super::{DumpBuilder, StackStatus, TaskHeader};

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
    Some(Header { task, comm, status })
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

/// Parses a recorded snapshot; see the module docs for the grammar.
pub fn parse(text: &str, b: &mut DumpBuilder) {
    b.warn(WARN_NOSCHED);
    b.warn(WARN_IDLE);
    let (mut gone, mut unreadable) = (0usize, 0usize);
    let mut open: Option<Open> = None;
    for (number, line) in Lines::new(text) {
        if line.starts_with(HEADER_PREFIX) {
            close(b, &mut open);
            let Some(h) = parse_header(line, number) else {
                b.skip(number, line);
                continue;
            };
            let running = h.task.state == Some('R');
            b.begin_task(h.task, &h.comm);
            match h.status {
                Status::Ok => {}
                Status::Gone => {
                    gone += 1;
                    b.force_status(StackStatus::Unreadable);
                }
                Status::Unreadable => {
                    unreadable += 1;
                    b.force_status(StackStatus::Unreadable);
                }
                Status::Truncated => b.force_status(StackStatus::Truncated),
            }
            open = Some(Open {
                running,
                readable: h.status == Status::Ok,
            });
            continue;
        }
        match parse_proc_line(line, number) {
            ProcLine::Frame(frame) if b.has_open_task() => b.push_frame_ref(&frame),
            // A pre-5.2 capture may keep the ULONG_MAX end marker: understood.
            ProcLine::EndMarker if b.has_open_task() => {}
            _ if line.bytes().all(|c| c.is_ascii_whitespace()) => {}
            _ => b.skip(number, line),
        }
    }
    close(b, &mut open);
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

#[cfg(test)]
mod tests {
    use super::super::{Dump, Format};
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
            let h = &d.headers[t];
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
        assert_eq!(d.headers[spin].on_cpu, Some(true));
        assert_eq!(d.stack_status[spin], StackStatus::Empty);
        let zombie = d.headers.iter().position(|h| h.state == Some('Z')).unwrap();
        assert_eq!(d.headers[zombie].on_cpu, None);
        assert_eq!(d.stack_status[zombie], StackStatus::Empty);
        assert!((0..d.task_count())
            .filter(|&t| d.comm(t) != "wl-spin")
            .all(|t| d.headers[t].on_cpu.is_none()));
    }

    #[test]
    fn header_grammar_round_trips_awkward_comms() {
        let text = "# pid=5 tid=6 comm=a state=b (x) state=c\\\\d\\n state=? flags=0x0 \
                    kthread=0 cpu=3 status=gone extra=1\n[<0>] f+0x1/0x2\n";
        let d = run(text);
        assert_eq!(d.comm(0), "a state=b (x) state=c\\d\n");
        assert_eq!(d.headers[0].state, None);
        assert_eq!(d.headers[0].cpu, Some(3));
        assert_eq!(d.stack_status, [StackStatus::Unreadable]);
        assert!(d.warnings.iter().any(|w| w.contains("exited")));
    }

    #[test]
    fn malformed_headers_are_skipped_with_their_frames() {
        let d = run("# pid=x tid=1 comm=a state=S\n[<0>] f+0x1/0x2\n# note\n");
        assert_eq!(d.task_count(), 0);
        assert_eq!(d.skipped_lines, 3);
    }

    #[test]
    fn detection() {
        assert!(looks_like(STACKS));
        assert!(looks_like(EXCERPT));
        assert!(!looks_like("[<0>] f+0x1/0x2\n"));
        assert!(!looks_like("# pid=1\n"));
    }
}
