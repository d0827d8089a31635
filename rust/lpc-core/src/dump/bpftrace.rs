//! bpftrace `kstack` / `ustack` output: printed stacks and map keys.
//!
//! Grammar (bpftrace `src/resolve` / `output.cpp`, modes of `kstack(mode, n)`):
//!
//! ```text
//! Attaching 2 probes...                       banner
//! dd 15125                                    printf label (script-defined; see below)
//!                                             kstack text starts with a newline
//!         __schedule+1560                     kstack(bpftrace): sym+DECIMAL offset
//!         0xffffffffc0a1b2c3                  unresolved address
//! @perf[                                      map key holding a stack
//! \tffffffff821f8b58 __schedule+1560          kstack(perf): address, sym+DECIMAL
//! \tffffffff821f8b58                          kstack(raw): address only
//! ]: 75                                       end of key, count
//! @[                                          tuple key: kstack, ustack, comm
//!     __schedule+1560
//! ,                                           next tuple element
//!     0x55f872099b7f
//! , dd]: 1                                    trailing non-stack keys, count
//! ```
//!
//! Semantics and choices:
//!
//! * `kstack` is always the stack of the task current on the CPU at probe time
//!   (bpftrace's `kstack` has no task-iterator mode): `on_cpu = true`. Stacks are
//!   events, not a snapshot (a warning says so); a map key aggregates many
//!   events into one record (the count is not kept).
//! * Offsets are DECIMAL (`+1560` == `+0x618`); there is no size and no module;
//!   no `?` notion: `reliable = true`.
//! * Each map key is one task record; its `comm` holds the key's non-stack
//!   elements as printed (for the common `@[kstack, ustack, comm]` this is the
//!   comm). A printed stack is one task record; a label line `<comm> <pid>`
//!   right before it (the usual `printf("%s %d\n", comm, pid)`) names it, `pid`
//!   being bpftrace's `pid` builtin (the process id). A label not followed by a
//!   stack is skipped.
//! * Kernel and user stacks print alike. An element (one stack of a tuple key,
//!   or one printed stack) is user space only when its addresses say so (a
//!   64-bit user address and no kernel-half one); otherwise it is taken as a
//!   kernel stack, which can only over-report kernel frames, never hide them.

use super::lines::looks_like_frame;
use super::toolscan::{
    is_elision, is_kernel_address, is_user_address, numbered_lines, parse_0x, parse_dec, parse_hex,
    parse_id, skip_elision, sniff_window, split_symbol_offset, take_word, OffsetRadix,
};
use super::{DumpBuilder, FrameContext, FrameRecord, StackStatus, TaskHeader, TaskLoss};

/// Cheap sniffing: the `Attaching N probes...` banner, or a map-key opener
/// directly followed by a stack frame.
#[must_use]
pub fn looks_like(text: &str) -> bool {
    let mut after_opener = false;
    for line in sniff_window(text).lines() {
        if is_banner(line.trim()) || after_opener && parse_frame(line).is_some() {
            return true;
        }
        after_opener = map_opener(line).is_some();
    }
    false
}

/// Parses bpftrace output into `b`.
pub fn parse(text: &str, b: &mut DumpBuilder) {
    let mut p = Parser::default();
    for (line_no, line) in numbered_lines(text) {
        p.line(b, line_no, line);
    }
    p.end_block(b);
    p.drop_label(b);
    if let Some(key) = p.key.take() {
        // The key never closed: its stack may be cut.
        key.finish(b, None, true);
    }
}

fn is_banner(trimmed: &str) -> bool {
    trimmed
        .strip_prefix("Attaching ")
        .and_then(|r| {
            r.strip_suffix(" probes...")
                .or_else(|| r.strip_suffix(" probe..."))
        })
        .is_some_and(|n| parse_dec(n).is_some())
}

/// `@name[` (optionally with leading non-stack keys: `@[comm, `): the keys.
fn map_opener(line: &str) -> Option<&str> {
    let line = line.trim_end();
    let rest = line.strip_prefix('@')?;
    let open = rest.find('[')?;
    let name = &rest[..open];
    if !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
        return None;
    }
    let keys = &rest[open + 1..];
    if keys.is_empty() {
        Some("")
    } else {
        keys.strip_suffix(',').map(str::trim)
    }
}

/// A parsed stack line.
struct Frame<'a> {
    address: Option<u64>,
    function: Option<&'a str>,
    offset: Option<u64>,
}

fn parse_frame(line: &str) -> Option<Frame<'_>> {
    if !line.starts_with(char::is_whitespace) {
        return None;
    }
    let (first, rest) = take_word(line)?;
    let second = match take_word(rest) {
        Some((word, tail)) if tail.trim().is_empty() => Some(word),
        Some(_) => return None,
        None => None,
    };
    match second {
        // kstack(perf): `address symbol+off` (or `[unknown]`).
        Some(sym) => {
            let address = parse_hex(first)?;
            let (function, offset) = symbol(sym)?;
            Some(Frame {
                address: Some(address),
                function,
                offset,
            })
        }
        None => {
            if let Some(address) = parse_0x(first) {
                return Some(Frame {
                    address: Some(address),
                    function: None,
                    offset: None,
                });
            }
            // kstack(raw): a bare address; 8+ digits so that a symbol made of
            // hex letters (`add`) is not taken for one.
            if first.len() >= 8 {
                if let Some(address) = parse_hex(first) {
                    return Some(Frame {
                        address: Some(address),
                        function: None,
                        offset: None,
                    });
                }
            }
            let (function, offset) = symbol(first)?;
            Some(Frame {
                address: None,
                function,
                offset,
            })
        }
    }
}

/// `sym+123` (decimal) or `[unknown]`.
fn symbol(word: &str) -> Option<(Option<&str>, Option<u64>)> {
    if word == "[unknown]" {
        return Some((None, None));
    }
    if word.starts_with(['@', ']', ',', '[', '#']) {
        return None;
    }
    let (sym, offset) = split_symbol_offset(word, OffsetRadix::Decimal)?;
    Some((Some(sym), offset))
}

/// `comm pid`: a printf label.
fn parse_label(line: &str) -> Option<(&str, i64)> {
    if line.starts_with(char::is_whitespace) || line.starts_with(['@', '#', ']', ',']) {
        return None;
    }
    let line = line.trim_end();
    let (comm, pid) = line.rsplit_once(char::is_whitespace)?;
    let comm = comm.trim_end();
    (!comm.is_empty()).then_some(())?;
    Some((comm, parse_id(pid)?))
}

/// One stack: frames whose context is decided when the stack ends.
#[derive(Default)]
struct Element {
    frames: Vec<FrameRecord>,
    kernel_address: bool,
    user_address: bool,
}

impl Element {
    fn add(&mut self, line_no: usize, f: &Frame<'_>) {
        if let Some(a) = f.address {
            self.kernel_address |= is_kernel_address(a);
            self.user_address |= is_user_address(a);
        }
        self.frames.push(FrameRecord {
            address: f.address,
            function: f.function.map(str::to_owned),
            offset: f.offset,
            reliable: true,
            line: line_no,
            ..FrameRecord::default()
        });
    }

    /// User space only on address evidence; kernel otherwise.
    fn context(&self) -> FrameContext {
        if self.user_address && !self.kernel_address {
            FrameContext::User
        } else {
            FrameContext::Task
        }
    }

    fn push_all(self, b: &mut DumpBuilder) {
        let ctx = self.context();
        for mut f in self.frames {
            f.context = ctx;
            b.push_frame(&f);
        }
    }
}

/// A map key being read.
struct MapKey {
    line: usize,
    keys: String,
    done: Vec<Element>,
    current: Element,
    /// The first line inside the key that could not be read (0: none).
    lost_line: usize,
    /// The key's last line read so far.
    last_line: usize,
}

impl MapKey {
    fn new(line: usize, keys: &str) -> Self {
        Self {
            line,
            keys: keys.to_owned(),
            done: Vec::new(),
            current: Element::default(),
            lost_line: 0,
            last_line: line,
        }
    }

    /// Emits the key as one task; `tail` = trailing non-stack keys.
    fn finish(mut self, b: &mut DumpBuilder, tail: Option<&str>, cut: bool) {
        let mut keys = std::mem::take(&mut self.keys);
        if let Some(t) = tail.filter(|t| !t.is_empty()) {
            if !keys.is_empty() {
                keys.push_str(", ");
            }
            keys.push_str(t);
        }
        self.done.push(self.current);
        b.begin_task(
            TaskHeader {
                on_cpu: Some(true),
                line: self.line,
                ..TaskHeader::default()
            },
            &keys,
        );
        b.warn(EVENTS_WARNING);
        let guessed = self.done.iter().skip(1).any(|e| {
            !e.frames.is_empty() && e.context() == FrameContext::Task && !e.kernel_address
        });
        if guessed {
            b.warn(
                "bpftrace map keys hold several stacks; those without a user-space address are taken as kernel stacks",
            );
        }
        for e in self.done {
            e.push_all(b);
        }
        if self.lost_line != 0 {
            b.lose(TaskLoss::FRAME_LINE, self.lost_line);
        }
        if cut {
            // No `]: N` closed the key: its stack may be cut.
            b.force_status(StackStatus::Truncated);
            b.lose(TaskLoss::UNCLOSED, self.last_line);
        }
        b.end_task();
    }
}

/// Said once per dump that has a stack.
const EVENTS_WARNING: &str =
    "bpftrace stacks are events at probe time, not a snapshot of the system";

#[derive(Default)]
struct Parser<'a> {
    /// A printf label waiting for its stack: (line number, line, comm, pid).
    label: Option<(usize, &'a str, &'a str, i64)>,
    /// The printed stack being read (a task is open for it).
    block: Option<Element>,
    key: Option<MapKey>,
}

impl<'a> Parser<'a> {
    fn line(&mut self, b: &mut DumpBuilder, line_no: usize, line: &'a str) {
        let trimmed = line.trim();
        if self.key.is_some() {
            self.key_line(b, line_no, line, trimmed);
            return;
        }
        if trimmed.is_empty() {
            // A blank line ends a printed stack (kstack text also starts with one).
            self.end_block(b);
            return;
        }
        if let Some(f) = parse_frame(line) {
            self.block_frame(b, line_no, &f);
            return;
        }
        if self.block.is_some() && looks_like_frame(line) {
            // A damaged frame line inside a printed stack: the frame is lost
            // (the builder marks the open task), the stack goes on.
            b.skip(line_no, line);
            return;
        }
        self.end_block(b);
        self.drop_label(b);
        if let Some(keys) = map_opener(line) {
            self.key = Some(MapKey::new(line_no, keys));
        } else if let Some((comm, pid)) = parse_label(line) {
            self.label = Some((line_no, line, comm, pid));
        } else if is_banner(trimmed) || is_scalar_map_line(trimmed) {
            // bpftrace's banner; a map entry printed without any stack.
        } else if is_elision(trimmed) {
            skip_elision(b, line_no, line);
        } else {
            b.skip(line_no, line);
        }
    }

    fn block_frame(&mut self, b: &mut DumpBuilder, line_no: usize, f: &Frame<'_>) {
        if self.block.is_none() {
            let (header, comm) = match self.label.take() {
                Some((label_line, _, comm, pid)) => (
                    TaskHeader {
                        pid: Some(pid),
                        line: label_line,
                        on_cpu: Some(true),
                        ..TaskHeader::default()
                    },
                    comm,
                ),
                None => (
                    TaskHeader {
                        line: line_no,
                        on_cpu: Some(true),
                        ..TaskHeader::default()
                    },
                    "",
                ),
            };
            b.begin_task(header, comm);
            b.warn(EVENTS_WARNING);
            self.block = Some(Element::default());
        }
        if let Some(block) = self.block.as_mut() {
            block.add(line_no, f);
        }
    }

    fn end_block(&mut self, b: &mut DumpBuilder) {
        if let Some(block) = self.block.take() {
            block.push_all(b);
            b.end_task();
        }
    }

    /// A label whose stack never came: counted as skipped.
    fn drop_label(&mut self, b: &mut DumpBuilder) {
        if let Some((line_no, line, _, _)) = self.label.take() {
            b.skip(line_no, line);
        }
    }

    fn key_line(&mut self, b: &mut DumpBuilder, line_no: usize, line: &str, trimmed: &str) {
        let Some(key) = self.key.as_mut() else {
            return;
        };
        key.last_line = line_no;
        if let Some(f) = parse_frame(line) {
            key.current.add(line_no, &f);
        } else if trimmed == "," {
            let element = std::mem::take(&mut key.current);
            key.done.push(element);
        } else if let Some(tail) = key_end(trimmed) {
            if let Some(key) = self.key.take() {
                key.finish(b, Some(tail), false);
            }
        } else if trimmed.is_empty() {
            // Tolerated inside a key.
        } else if let Some(keys) = map_opener(line) {
            // A new key before this one closed: this one was cut.
            if let Some(key) = self.key.take() {
                key.finish(b, None, true);
            }
            self.key = Some(MapKey::new(line_no, keys));
        } else if is_elision(trimmed) {
            b.skip(line_no, line);
            if let Some(key) = self.key.take() {
                key.finish(b, None, true);
            }
        } else {
            // Inside a key bpftrace prints only frames and separators: an
            // unreadable line there is a lost frame.
            if key.lost_line == 0 {
                key.lost_line = line_no;
            }
            b.skip(line_no, line);
        }
    }
}

/// `]: 75` or `, dd]: 1`: the key's trailing non-stack keys (possibly empty).
/// The value is not checked: counts, sums, `stats()` text, or nothing before a
/// `hist()` body.
fn key_end(trimmed: &str) -> Option<&str> {
    let (keys, _value) = trimmed.rsplit_once("]:")?;
    if keys.is_empty() {
        return Some("");
    }
    Some(keys.strip_prefix(',')?.trim())
}

/// `@name: 5`, `@name[key]: 5`: a map entry without a stack.
fn is_scalar_map_line(trimmed: &str) -> bool {
    trimmed.starts_with('@')
        && trimmed
            .rsplit_once(": ")
            .is_some_and(|(_, v)| v.trim().parse::<f64>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::super::toolscan::testing::{assert_sniffs_only, fuzz, run, sample};
    use super::super::{Dump, Format};
    use super::*;

    const SAMPLE: &str = "bpftrace-kstack-6.18.txt";

    fn dump() -> Dump {
        run(Format::Bpftrace, parse, sample(SAMPLE))
    }

    fn names(d: &Dump, t: usize) -> Vec<&str> {
        d.frames_of(t)
            .map(|i| d.name(d.frame_function(i)).unwrap_or("?"))
            .collect()
    }

    #[test]
    fn sniffs_only_its_own_sample() {
        assert_sniffs_only(SAMPLE, looks_like);
    }

    #[test]
    fn golden_counts() {
        let d = dump();
        // 4 printed stacks, 4 `@perf` keys, 7 `@[kstack, ustack, comm]` keys.
        assert_eq!(d.task_count(), 15);
        assert_eq!(d.frame_count(), 25 + 20 + 41);
        // Skipped: line 1 (provenance); line 40, the fifth `dd 15125` label
        // whose stack the quoter elided, and line 42, that `...` mark; line 72,
        // the sample's `# ---- second run ... ----` note.
        let lines: Vec<usize> = d.skipped_samples.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![1, 40, 42, 72]);
        assert_eq!(d.skipped_lines, 4);
        assert!(d.headers().all(|h| h.on_cpu == Some(true)));
        assert!(d.frame_reliable.iter().all(|&r| r));
        assert!(d.stack_status.iter().all(|&s| s == StackStatus::Complete));
        assert_eq!(d.warnings.len(), 2);
    }

    #[test]
    fn printed_stacks_with_labels() {
        let d = dump();
        let h = &d.header(0);
        assert_eq!(
            (d.comm(0), h.pid, h.tid, h.line),
            ("dd", Some(15125), None, 3)
        );
        assert_eq!(
            names(&d, 0),
            vec![
                "__schedule",
                "__cond_resched",
                "read_zero",
                "vfs_read",
                "ksys_read",
                "do_syscall_64",
                "entry_SYSCALL_64_after_hwframe"
            ]
        );
        let r = d.frames_of(0);
        // Decimal offsets, no address in bpftrace mode.
        assert_eq!(d.frame_offset(r.start), 1560);
        assert_eq!(d.frame_offset(r.start + 2), 156);
        assert!(!d.frame_has_address(r.start));
        assert_eq!(d.frame_size(r.start), u64::MAX);
        assert_eq!(d.frame_context[r.start], FrameContext::Task);
        assert_eq!(
            names(&d, 1).last(),
            Some(&"asm_sysvec_apic_timer_interrupt")
        );
    }

    #[test]
    fn perf_mode_keys() {
        let d = dump();
        let t = 4;
        assert_eq!(d.comm(t), "");
        assert_eq!(d.header(t).line, 43);
        let r = d.frames_of(t);
        assert_eq!(r.len(), 4);
        assert_eq!(d.frame_address(r.start), 0xffff_ffff_821f_8b58);
        assert_eq!(d.frame_offset(r.start), 1560);
        assert_eq!(
            d.name(d.frame_function(r.end - 1)),
            Some("asm_sysvec_irq_work")
        );
        assert_eq!(d.frame_offset(r.end - 1), 22);
        assert_eq!(d.frames_of(7).len(), 7);
    }

    #[test]
    fn tuple_keys_kernel_then_user() {
        let d = dump();
        let first = 8;
        assert_eq!(d.comm(first), "dd");
        let r = d.frames_of(first);
        assert_eq!(r.len(), 5);
        assert!(d.frame_context[r.start..r.start + 4]
            .iter()
            .all(|&c| c == FrameContext::Task));
        // `0x55f872099b7f`: a user address makes the second stack user space.
        assert_eq!(d.frame_context[r.start + 4], FrameContext::User);
        assert_eq!(d.frame_address(r.start + 4), 0x55f8_7209_9b7f);
        // `__GI___write+16`: nothing proves user space, so it stays a kernel
        // frame (over-reporting is the safe error).
        let second = first + 1;
        let r = d.frames_of(second);
        assert_eq!(d.name(d.frame_function(r.end - 1)), Some("__GI___write"));
        assert_eq!(d.frame_context[r.end - 1], FrameContext::Task);
        let last = d.task_count() - 1;
        assert_eq!(names(&d, last).last(), Some(&"__libc_read"));
        assert_eq!(d.frames_of(last).len(), 8);
    }

    #[test]
    fn other_forms() {
        let text = "\
@[comm_x,
\tffffffffc0a1b2c3
\tffffffff821f8b58 [unknown]
    0xffffffffc0001234
]: 3
@start[15125]: 1234
@count: 7
@cut[
    foo+1
";
        let d = run(Format::Bpftrace, parse, text);
        assert_eq!(d.skipped_lines, 0);
        assert_eq!(d.task_count(), 2);
        assert_eq!(d.comm(0), "comm_x");
        assert_eq!(d.frames_of(0).len(), 3);
        assert!((0..3).all(|i| d.frame_function(i) == super::super::NO_NAME));
        assert_eq!(d.frame_address(2), 0xffff_ffff_c000_1234);
        assert_eq!(d.stack_status[1], StackStatus::Truncated);
    }

    #[test]
    fn survives_mutations() {
        fuzz(Format::Bpftrace, parse, sample(SAMPLE), 0xb9f, 400);
    }
}
