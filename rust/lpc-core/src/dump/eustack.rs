//! elfutils `eu-stack -p PID` (optionally `-i` inlines, `-m` modules, `-s`
//! source lines): user-space stacks.
//!
//! Grammar (elfutils `src/stack.c`: `print_frame()`, `print_thread()`,
//! `frame_callback()`):
//!
//! ```text
//! PID 15081 - process                       process (or `- core` for a core file)
//! TID 15081:                                one thread
//! #0  0x00007f51170ed545 clock_nanosleep@GLIBC_2.2.5
//! #2  0x0000559aad04e4af - /usr/bin/sleep   no symbol, module (-m)
//! #0  0x00007f8ce8d2f503 __GI___clock_nanosleep - /usr/lib/x86_64-linux-gnu/libc.so.6
//!     ../sysdeps/unix/sysv/linux/clock_nanosleep.c:71:10     source line (-s)
//! eu-stack: dwfl_thread_getframes tid 15129 at 0x...: ...    unwind error (stderr)
//! ```
//!
//! Semantics and choices:
//!
//! * User-space stacks: context `User`, `module` = the `- path` as printed,
//!   names kept verbatim (symbol versions `@GLIBC_2.2.5` included), no offsets,
//!   no `?` notion (`reliable = true`). A warning says the kernel stacks are not
//!   in the dump. `pid` from the `PID n -` line, `tid` from `TID n:`; eu-stack
//!   prints no thread names (`comm` empty) and nothing about CPUs.
//! * `-i` prints each inlined function as its own frame with the PC of the frame
//!   that contains it, innermost first: in a run of frames with one address and
//!   different names, all but the last are `inlined`. (Direct self-recursion
//!   repeats an address with the *same* name and is not inlining.)
//! * An `eu-stack:` error line inside a thread marks its stack `unwind_failure`;
//!   a gap in `#N` or an elision mark inside a thread marks it `truncated`.

use super::toolscan::{
    close_held_task, frame_index, is_elision, numbered_lines, parse_0x, parse_id, skip_elision,
    sniff_window, strip_number, take_word, IndexTracker,
};
use super::{DumpBuilder, FrameContext, FrameRecord, StackStatus, TaskHeader};

/// Cheap sniffing: a `TID n:` line directly followed by an eu-stack frame.
#[must_use]
pub fn looks_like(text: &str) -> bool {
    let mut after_tid = false;
    for line in sniff_window(text).lines() {
        if after_tid && parse_frame(line).is_some() {
            return true;
        }
        after_tid = parse_tid(line).is_some();
    }
    false
}

/// Parses eu-stack output into `b`.
pub fn parse(text: &str, b: &mut DumpBuilder) {
    let mut p = Parser::default();
    for (line_no, line) in numbered_lines(text) {
        p.line(b, line_no, line);
    }
    p.finish_task(b);
}

/// `PID n - process` / `PID n - core`.
fn parse_pid(line: &str) -> Option<i64> {
    let rest = line.trim().strip_prefix("PID ")?;
    let (pid, kind) = rest.split_once(" - ")?;
    matches!(kind.trim(), "process" | "core").then_some(())?;
    parse_id(pid)
}

/// `TID n:`.
fn parse_tid(line: &str) -> Option<i64> {
    parse_id(line.trim().strip_prefix("TID ")?.strip_suffix(':')?)
}

struct Frame<'a> {
    index: u64,
    address: u64,
    function: Option<&'a str>,
    module: Option<&'a str>,
}

fn parse_frame(line: &str) -> Option<Frame<'_>> {
    let (index, rest) = frame_index(line)?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let (pc, rest) = take_word(rest)?;
    let address = parse_0x(pc)?;
    let rest = rest.trim();
    let (function, module) = if let Some(module) = rest.strip_prefix("- ") {
        (None, Some(module.trim()))
    } else if let Some((function, module)) = rest.rsplit_once(" - ") {
        (Some(function.trim()), Some(module.trim()))
    } else if rest.is_empty() || rest == "-" {
        (None, None)
    } else {
        (Some(rest), None)
    };
    if function.is_some_and(|f| f.is_empty() || f.contains(char::is_whitespace))
        || module.is_some_and(str::is_empty)
    {
        return None;
    }
    Some(Frame {
        index,
        address,
        function,
        module,
    })
}

/// `-s`: `    file:line[:col]` under a frame.
fn is_source_line(line: &str) -> bool {
    if !line.starts_with(char::is_whitespace) {
        return false;
    }
    let Some(head) = strip_number(line.trim()) else {
        return false;
    };
    let file = strip_number(head).unwrap_or(head);
    !file.is_empty() && !file.contains(char::is_whitespace)
}

#[derive(Default)]
struct Parser {
    pid: Option<i64>,
    held: Option<FrameRecord>,
    index: IndexTracker,
}

impl Parser {
    fn line(&mut self, b: &mut DumpBuilder, line_no: usize, line: &str) {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return;
        }
        if let Some(pid) = parse_pid(line) {
            self.finish_task(b);
            self.pid = Some(pid);
        } else if let Some(tid) = parse_tid(line) {
            self.finish_task(b);
            b.begin_task(
                TaskHeader {
                    pid: self.pid,
                    tid: Some(tid),
                    line: line_no,
                    ..TaskHeader::default()
                },
                "",
            );
            b.warn("eu-stack stacks are user space only: the kernel stacks of these threads are not in the dump");
        } else if let Some(f) = parse_frame(line) {
            self.frame(b, line_no, line, &f);
        } else if is_source_line(line) && b.has_open_task() {
            // `-s`: the source location of the frame above.
        } else if trimmed.starts_with("eu-stack: ") && b.has_open_task() {
            b.force_status(StackStatus::UnwindFailure);
        } else if is_elision(trimmed) {
            skip_elision(b, line_no, line);
        } else {
            b.skip(line_no, line);
        }
    }

    fn frame(&mut self, b: &mut DumpBuilder, line_no: usize, line: &str, f: &Frame<'_>) {
        if !b.has_open_task() {
            b.skip(line_no, line);
            return;
        }
        if !self.index.follows(f.index) {
            b.force_status(StackStatus::Truncated);
        }
        let record = FrameRecord {
            address: Some(f.address),
            function: f.function.map(str::to_owned),
            module: f.module.map(str::to_owned),
            reliable: true,
            context: FrameContext::User,
            line: line_no,
            ..FrameRecord::default()
        };
        if let Some(mut previous) = self.held.take() {
            // `-i`: same PC, another name = the previous one is inlined here.
            let named = previous.function.is_some() && record.function.is_some();
            if named && previous.address == record.address && previous.function != record.function {
                previous.inlined = true;
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
    use super::super::toolscan::testing::{assert_sniffs_only, fuzz, run, sample};
    use super::super::{Dump, Format};
    use super::*;

    const SAMPLE: &str = "eu-stack.txt";

    fn dump() -> Dump {
        run(Format::EuStack, parse, sample(SAMPLE))
    }

    /// (function, address, module, inlined) of frame `i`.
    fn frame(d: &Dump, i: usize) -> (Option<&str>, u64, Option<&str>, bool) {
        (
            d.name(d.frame_function(i)),
            d.frame_address(i),
            d.name(d.frame_module(i)),
            d.frame_inlined[i],
        )
    }

    #[test]
    fn sniffs_only_its_own_sample() {
        assert_sniffs_only(SAMPLE, looks_like);
    }

    #[test]
    fn golden_counts() {
        let d = dump();
        assert_eq!(d.task_count(), 6);
        assert_eq!(d.frame_count(), 12 + 13 + 11 + 22 + 8);
        // Skipped: line 1 (provenance) and the sample's two `# ---- eu-stack ...
        // ----` section notes (lines 42 and 67).
        let lines: Vec<usize> = d.skipped_samples.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![1, 42, 67]);
        assert_eq!(d.skipped_lines, 3);
        assert!(d.frame_context.iter().all(|&c| c == FrameContext::User));
        assert!((0..d.frame_count()).all(|i| d.frame_has_address(i)));
        assert_eq!(d.warnings.len(), 1);
    }

    #[test]
    fn threads_and_frames() {
        let d = dump();
        let ids: Vec<(Option<i64>, Option<i64>)> = d.headers().map(|h| (h.pid, h.tid)).collect();
        assert_eq!(
            ids,
            vec![
                (Some(15081), Some(15081)),
                (Some(15081), Some(15126)),
                (Some(15081), Some(15127)),
                (Some(15081), Some(15128)),
                (Some(15081), Some(15129)),
                (Some(15122), Some(15122)),
            ]
        );
        assert_eq!(
            frame(&d, 0),
            (
                Some("clock_nanosleep@GLIBC_2.2.5"),
                0x7f51_170e_d545,
                None,
                false
            )
        );
        assert_eq!(
            d.name(d.frame_function(10)),
            Some("__libc_start_main@@GLIBC_2.34")
        );
        // TID 15129 printed no frame (the quoter cut the thread): unknown.
        assert_eq!(d.frames_of(4).len(), 0);
        assert_eq!(d.stack_status[4], StackStatus::Empty);
    }

    #[test]
    fn inline_runs() {
        let d = dump();
        let r = d.frames_of(3);
        assert_eq!(r.len(), 22);
        // #0/#1 share 0x...3f16: __futex_abstimed_wait_common64 is inlined.
        assert_eq!(
            frame(&d, r.start),
            (
                Some("__futex_abstimed_wait_common64"),
                0x7f51_170a_3f16,
                None,
                true
            )
        );
        assert_eq!(
            frame(&d, r.start + 1),
            (
                Some("__futex_abstimed_wait_common"),
                0x7f51_170a_3f16,
                None,
                false
            )
        );
        let inlined: Vec<usize> = r
            .clone()
            .filter(|&i| d.frame_inlined[i])
            .map(|i| i - r.start)
            .collect();
        assert_eq!(inlined, vec![0, 7, 10, 12, 14, 16]);
        // Without -i nothing is inlined (#5/#7 repeat an address, not adjacent).
        assert!(d.frames_of(1).all(|i| !d.frame_inlined[i]));
    }

    #[test]
    fn modules_and_source_lines() {
        let d = dump();
        let r = d.frames_of(5);
        assert_eq!(r.len(), 8);
        let libc = Some("/usr/lib/x86_64-linux-gnu/libc.so.6");
        assert_eq!(
            frame(&d, r.start),
            (
                Some("__GI___clock_nanosleep"),
                0x7f8c_e8d2_f503,
                libc,
                false
            )
        );
        assert_eq!(
            frame(&d, r.start + 2),
            (None, 0x559a_ad04_e4af, Some("/usr/bin/sleep"), false)
        );
        assert_eq!(d.stack_status[5], StackStatus::Complete);
    }

    #[test]
    fn errors_and_gaps() {
        let text = "\
TID 7:
#0  0x0000000000401000 main
eu-stack: dwfl_thread_getframes tid 7 at 0x401000 in /bin/x: No DWARF information found
TID 8:
#1  0x0000000000401000
#2  0x0000000000401000 f
#3  0x0000000000401000 f
";
        let d = run(Format::EuStack, parse, text);
        assert_eq!(d.skipped_lines, 0);
        assert_eq!(d.stack_status[0], StackStatus::UnwindFailure);
        assert_eq!(d.stack_status[1], StackStatus::Truncated);
        // #1 (no name), then f, f at one address: an unnamed frame says
        // nothing about inlining, and self-recursion is not inlining.
        assert!(d.frames_of(1).all(|i| !d.frame_inlined[i]));
    }

    #[test]
    fn survives_mutations() {
        fuzz(Format::EuStack, parse, sample(SAMPLE), 0xe5, 300);
    }
}
