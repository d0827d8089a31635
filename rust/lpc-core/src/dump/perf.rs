//! `perf script` output of samples recorded with callchains (`perf record -g`).
//!
//! Grammar (tools/perf `builtin-script.c` `perf_sample__fprintf_start()` and
//! `util/evsel_fprintf.c` `sample__fprintf_callchain()`; default fields):
//!
//! ```text
//! dd 15125 [000]   453.813238:    5025125 cpu-clock:                 sample header
//! kworker/u8:0-ex    12 [000]   469.631287: sched:sched_switch: prev_comm=... prev_state=I ==> ...
//! \tffffffff81d33df7 read_zero+0x77 ([kernel.kallsyms])              kernel frame
//! \tffffffffc0a1b2c3 ext4_writepages+0x1f ([ext4])                   module frame
//! \t           f82ad read+0xd (/usr/lib/x86_64-linux-gnu/libc.so.6)  user frame (DSO-relative)
//! \t    7f511765b000 [unknown] ([unknown])                          unresolved
//! (blank line)                                                       end of the sample
//! ```
//!
//! The header is `comm pid[/tid] [cpu] time: [period] event: [fields]`; comm may
//! hold spaces, so it is everything before the id token. A lone id is the
//! thread id (perf's default `tid` field); `pid/tid` gives both.
//!
//! Semantics:
//!
//! * Every perf sample is taken in the context of the task that is *current* on
//!   the CPU (a `sched:sched_switch` sample is the outgoing task, still executing
//!   `__schedule`): `on_cpu = true`. Samples are events at past instants, not a
//!   snapshot — a warning says so. lpc needs one stack per task, so the samples
//!   of one thread are merged into one task: the thread's *last* sample (the
//!   latest timestamp; of equal ones, the later in the text) is kept whole —
//!   its header (comm, cpu, `prev_state`) and its callchain — and the others
//!   are read and dropped, a warning saying how many. Threads are told apart
//!   by tid; tid 0 (the idle task of each CPU) also by CPU. Tasks come in the
//!   order of their kept samples.
//! * `sched:sched_switch` samples also give the outgoing task's state
//!   (`prev_state=S`, first letter) when `prev_pid` is the sample's tid.
//! * Kernel frames: DSO `[kernel.kallsyms]` (vmlinux, no module) or a bracketed
//!   module name at a kernel-half address (`[ext4]`). User frames: a DSO path or
//!   a bracketed pseudo-DSO at a user address (`[vdso]`); `module` = the DSO as
//!   printed. `[unknown]` is decided by the address, and a frame after the first
//!   user frame stays user (perf prints the kernel chain, then the user chain).
//! * Offsets are hex (`+0x77`), there is no size; frames come from the kernel's
//!   unwinder (no `?` notion): `reliable = true`. ` (inlined)` (`--inline`)
//!   marks inlined frames.
//! * A header whose fields are a sample IP (no `-g`) gives a one-frame stack,
//!   marked `truncated`.

use super::lines::looks_like_frame;
use super::toolscan::{
    is_elision, is_kernel_address, is_user_address, numbered_lines, parse_0x, parse_dec, parse_hex,
    parse_id, skip_elision, sniff_window, split_symbol_offset, take_word, trailing_group,
    OffsetRadix,
};
use super::{DumpBuilder, FrameContext, FrameRef, StackStatus, TaskHeader};
use std::borrow::Cow;
use std::collections::HashMap;

/// Cheap sniffing: a sample header immediately followed by a callchain frame
/// line that names its DSO.
#[must_use]
pub fn looks_like(text: &str) -> bool {
    let mut after_header = false;
    for line in sniff_window(text).lines() {
        if after_header && parse_frame(line).is_some_and(|f| f.dso.is_some()) {
            return true;
        }
        after_header = parse_header(line).is_some();
    }
    false
}

/// The thread a sample belongs to: its tid, and its CPU for tid 0 (each CPU
/// has its own idle task).
fn thread_key(h: &Header<'_>) -> (i64, i64) {
    (h.tid, if h.tid == 0 { h.cpu.unwrap_or(-1) } else { -1 })
}

/// Per thread ([`thread_key`]), the timestamp and line of its kept sample.
type Kept = HashMap<(i64, i64), ((u64, u64), usize)>;

/// The line of each thread's kept sample (the latest; see the module docs),
/// and the number of samples.
fn kept_samples(text: &str) -> (Kept, usize) {
    let mut kept = Kept::new();
    let mut samples = 0;
    for (line_no, line) in numbered_lines(text) {
        // Frames are indented: only a line that starts with a comm can be a header.
        if line.starts_with(char::is_whitespace) {
            continue;
        }
        if let Some(h) = parse_header(line) {
            samples += 1;
            let entry = kept.entry(thread_key(&h)).or_insert((h.time, line_no));
            if h.time >= entry.0 {
                *entry = (h.time, line_no);
            }
        }
    }
    (kept, samples)
}

/// Parses `perf script` output into `b`.
pub fn parse(text: &str, b: &mut DumpBuilder) {
    let (kept, samples) = kept_samples(text);
    let mut in_sample = false;
    // Inside a sample that is not its thread's last: read, not kept.
    let mut dropping = false;
    let mut seen_user = false;
    for (line_no, line) in numbered_lines(text) {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            // A blank line ends the sample's callchain.
            in_sample = false;
            dropping = false;
            b.close_stack(line_no);
        } else if let Some(h) = parse_header(line) {
            in_sample = true;
            seen_user = false;
            dropping = kept.get(&thread_key(&h)).map(|k| k.1) != Some(line_no);
            if dropping {
                // The task before ends here, as it would at this header.
                b.end_task();
                continue;
            }
            begin_sample(b, line_no, &h);
            // perf prints a sample's callchain and nothing else until the
            // blank line: an unreadable line there is a lost frame.
            b.strict_stack();
        } else if dropping && parse_frame(line).is_some() {
            // A frame of a dropped sample: read.
        } else if let Some(f) = parse_frame(line).filter(|_| in_sample) {
            push(b, line_no, &f, &mut seen_user);
        } else if !b.has_open_task() && !dropping && samples > 0 && looks_like_frame(line) {
            // Frames with no sample header before them (a damaged or lost
            // header): a task whose header is lost.
            b.begin_unreadable_task(line_no);
            b.skip(line_no, line);
        } else if let Some(comment) = trimmed.strip_prefix('#') {
            // A note (perf's own `#` lines are its header): it ends the callchain.
            in_sample = false;
            b.close_stack(line_no);
            perf_comment(b, line_no, line, comment);
        } else if is_elision(trimmed) {
            skip_elision(b, line_no, line);
        } else {
            b.skip(line_no, line);
        }
    }
    if samples > kept.len() {
        b.warn(&format!(
            "perf: {samples} samples of {} threads, the last sample of each thread kept",
            kept.len()
        ));
    }
}

/// `perf script --header` prints `# ========` rules and `# key : value` lines;
/// any other `#` line is someone's note and is skipped.
fn perf_comment(b: &mut DumpBuilder, line_no: usize, line: &str, comment: &str) {
    let comment = comment.trim();
    if let Some((key, value)) = comment.split_once(" : ") {
        if key.trim_end() == "os release" {
            b.set_kernel_release(value.trim());
        }
    } else if comment.is_empty() || !comment.bytes().all(|c| c == b'=') {
        b.skip(line_no, line);
    }
}

/// A parsed sample header.
struct Header<'a> {
    comm: &'a str,
    /// The timestamp as (seconds, nanoseconds).
    time: (u64, u64),
    pid: Option<i64>,
    tid: i64,
    cpu: Option<i64>,
    event: &'a str,
    fields: &'a str,
}

/// `12345.678901:` — perf's timestamp token, as (seconds, nanoseconds).
fn time_token(word: &str) -> Option<(u64, u64)> {
    let (secs, frac) = word.strip_suffix(':')?.split_once('.')?;
    if frac.is_empty() || frac.len() > 9 {
        return None;
    }
    let nanos = parse_dec(frac)? * 10u64.pow(9 - frac.len() as u32);
    Some((parse_dec(secs)?, nanos))
}

fn parse_header(line: &str) -> Option<Header<'_>> {
    // Frames are indented; headers start with the comm.
    if line.starts_with(char::is_whitespace) || line.starts_with('#') {
        return None;
    }
    // Locate the timestamp: the first `digits.digits:` word.
    let mut offset = 0;
    let mut time = None;
    let mut rest = line;
    while let Some((word, after)) = take_word(rest) {
        let start = offset + (rest.len() - rest.trim_start().len());
        if let Some(t) = time_token(word) {
            time = Some((start, start + word.len(), t));
            break;
        }
        offset = start + word.len();
        rest = after;
    }
    let (time_start, time_end, stamp) = time?;
    let mut before = line[..time_start].trim_end();
    // Optional `[cpu]` just before the timestamp.
    let mut cpu = None;
    if let Some(open) = before.rfind(" [") {
        if let Some(digits) = before[open + 2..].strip_suffix(']') {
            cpu = Some(parse_id(digits)?);
            before = before[..open].trim_end();
        }
    }
    // `pid/tid` or `tid`, then the comm before it.
    let (comm, ids) = before.rsplit_once(char::is_whitespace)?;
    let comm = comm.trim_end();
    let (pid, tid) = match ids.split_once('/') {
        Some((p, t)) => (Some(parse_id(p)?), parse_id(t)?),
        None => (None, parse_id(ids)?),
    };
    if comm.is_empty() {
        return None;
    }
    // `[period] event: fields`
    let mut after = &line[time_end..];
    if let Some((word, rest)) = take_word(after) {
        if word.bytes().all(|c| c.is_ascii_digit()) {
            after = rest;
        }
    }
    let (event, fields) = take_word(after)?;
    let event = event.strip_suffix(':')?;
    Some(Header {
        comm,
        time: stamp,
        pid,
        tid,
        cpu,
        event,
        fields: fields.trim(),
    })
}

/// A parsed callchain line.
struct Frame<'a> {
    address: u64,
    symbol: Option<&'a str>,
    offset: Option<u64>,
    dso: Option<&'a str>,
    inlined: bool,
}

fn parse_frame(line: &str) -> Option<Frame<'_>> {
    if !line.starts_with(char::is_whitespace) {
        return None;
    }
    parse_frame_body(line.trim())
}

/// `ip symbol[+0xoff] (dso)` without the indentation.
fn parse_frame_body(body: &str) -> Option<Frame<'_>> {
    let (ip, rest) = take_word(body)?;
    let address = parse_hex(ip)?;
    let mut rest = rest.trim();
    let mut inlined = false;
    if let Some(r) = rest.strip_suffix(" (inlined)") {
        rest = r.trim_end();
        inlined = true;
    }
    let (mut symbol_part, dso) = match trailing_group(rest) {
        Some((before, dso)) if before.ends_with(' ') || before.is_empty() => {
            (before.trim_end(), Some(dso))
        }
        _ => (rest, None),
    };
    if let Some(r) = symbol_part.strip_suffix(" (inlined)") {
        symbol_part = r.trim_end();
        inlined = true;
    }
    if symbol_part.is_empty() {
        return None;
    }
    let (symbol, offset) = if symbol_part == "[unknown]" {
        (None, None)
    } else {
        match symbol_part.rfind("+0x") {
            Some(plus) if parse_0x(&symbol_part[plus + 1..]).is_some() => {
                let (s, off) = split_symbol_offset(symbol_part, OffsetRadix::Hex0x)?;
                (Some(s), off)
            }
            _ => (Some(symbol_part), None),
        }
    };
    Some(Frame {
        address,
        symbol,
        offset,
        dso,
        inlined,
    })
}

fn begin_sample(b: &mut DumpBuilder, line_no: usize, h: &Header<'_>) {
    b.warn("perf samples are events at past instants, not a snapshot of the system");
    let mut state = None;
    if h.event == "sched:sched_switch" {
        let field = |key: &str| {
            h.fields
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        };
        if field("prev_pid").and_then(parse_id) == Some(h.tid) {
            state = field("prev_state")
                .and_then(|s| s.chars().next())
                .filter(|c| "RSDTtZXIPKWN".contains(*c));
        }
    }
    b.begin_task(
        TaskHeader {
            pid: h.pid,
            tid: Some(h.tid),
            state,
            on_cpu: Some(true),
            cpu: h.cpu,
            line: line_no,
            ..TaskHeader::default()
        },
        h.comm,
    );
    // Without `-g` the sample's own IP is printed on the header line.
    if let Some(f) = parse_frame_body(h.fields).filter(|f| f.dso.is_some()) {
        let mut seen_user = false;
        push(b, line_no, &f, &mut seen_user);
        b.force_status(StackStatus::Truncated);
    }
}

/// The kernel image as a DSO: perf names it `[kernel.kallsyms]`, or by the
/// vmlinux file it read symbols from (`--vmlinux`, a debug package, the
/// build-id cache): `/lib/modules/6.1.0-18-amd64/build/vmlinux`,
/// `/usr/lib/debug/boot/vmlinux-6.1.0-18-amd64`.
fn is_kernel_image(dso: &str) -> bool {
    if dso.starts_with("[kernel.kallsyms]") || dso.starts_with("[guest.kernel.kallsyms]") {
        return true;
    }
    let base = dso.rsplit('/').next().unwrap_or(dso);
    dso.starts_with('/') && (base == "vmlinux" || base.starts_with("vmlinux-"))
}

/// A kernel module read from its file (`/lib/modules/6.1.0/kernel/fs/ext4/ext4.ko`,
/// `.ko.xz`, `.ko.zst`, `.ko.gz`): the module's name, as the kernel spells it
/// (`dm-mod.ko` is module `dm_mod`); `None` for any other DSO.
fn module_file(dso: &str) -> Option<Cow<'_, str>> {
    if !dso.starts_with('/') {
        return None;
    }
    let base = dso.rsplit('/').next()?;
    let name = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .find_map(|ext| base.strip_suffix(ext))?;
    if name.is_empty() {
        None
    } else if name.contains('-') {
        Some(Cow::Owned(name.replace('-', "_")))
    } else {
        Some(Cow::Borrowed(name))
    }
}

/// Where a frame ran, and its module, from its DSO and address.
fn classify<'a>(f: &Frame<'a>, seen_user: bool) -> (FrameContext, Option<Cow<'a, str>>) {
    let kernel_by_address = is_kernel_address(f.address);
    let user = match f.dso {
        Some(d) if is_kernel_image(d) => return (FrameContext::Task, None),
        Some(d) if kernel_by_address => {
            if let Some(module) = module_file(d) {
                return (FrameContext::Task, Some(module));
            }
            !d.starts_with('[')
        }
        Some("[unknown]") | None => !kernel_by_address && (seen_user || is_user_address(f.address)),
        Some(d) if d.starts_with('[') && d.ends_with(']') => !kernel_by_address,
        Some(_) => true,
    };
    if user {
        let module = f.dso.filter(|d| *d != "[unknown]").map(Cow::Borrowed);
        (FrameContext::User, module)
    } else {
        let module = f
            .dso
            .and_then(|d| d.strip_prefix('[').and_then(|d| d.strip_suffix(']')))
            .filter(|d| *d != "unknown")
            .map(Cow::Borrowed);
        (FrameContext::Task, module)
    }
}

fn push(b: &mut DumpBuilder, line_no: usize, f: &Frame<'_>, seen_user: &mut bool) {
    let (context, module) = classify(f, *seen_user);
    *seen_user |= context == FrameContext::User;
    b.push_frame_ref(&FrameRef {
        address: Some(f.address),
        function: f.symbol,
        offset: f.offset,
        module: module.as_deref(),
        reliable: true,
        context,
        inlined: f.inlined,
        line: line_no,
        ..FrameRef::default()
    });
}

#[cfg(test)]
mod tests {
    use super::super::toolscan::testing::{assert_sniffs_only_these, fuzz, run, sample};
    use super::super::{Dump, Format};
    use super::*;

    const SAMPLE: &str = "perf-script-kernel-6.18.txt";

    fn dump() -> Dump {
        run(Format::PerfScript, parse, sample(SAMPLE))
    }

    /// (function, offset, address, module, context) of frame `i`.
    fn frame(d: &Dump, i: usize) -> (Option<&str>, Option<u64>, u64, Option<&str>, FrameContext) {
        (
            d.name(d.frame_function(i)),
            (d.frame_offset(i) != u64::MAX).then_some(d.frame_offset(i)),
            d.frame_address(i),
            d.name(d.frame_module(i)),
            d.frame_context[i],
        )
    }

    #[test]
    fn sniffs_only_its_own_sample() {
        assert_sniffs_only_these(&[SAMPLE, VMLINUX], looks_like);
    }

    const VMLINUX: &str = "perf-script-vmlinux-dso-6.1.txt";

    #[test]
    fn vmlinux_and_module_files_are_kernel_dsos() {
        let d = run(Format::PerfScript, parse, sample(VMLINUX));
        assert_eq!(d.skipped_lines, 1);
        // postgres 1733 has two samples: the later (S, in do_select) is kept.
        let ids: Vec<_> = d
            .headers()
            .enumerate()
            .map(|(t, h)| (d.comm(t), h.pid, h.tid, h.state, h.line))
            .collect();
        assert_eq!(
            ids,
            vec![
                ("kworker/2:1", None, Some(88), Some('I'), 2),
                ("postgres", Some(1733), Some(1741), Some('S'), 21),
                ("postgres", Some(1733), Some(1733), Some('S'), 31),
                ("dmcrypt_write/2", None, Some(1502), Some('S'), 43),
            ]
        );
        assert!(d
            .warnings
            .iter()
            .any(|w| w == "perf: 5 samples of 4 threads, the last sample of each thread kept"));
        assert!(d.stack_status.iter().all(|&s| s == StackStatus::Complete));
        // Every frame at a kernel address is a kernel frame, the vmlinux
        // ones without a module.
        for i in 0..d.frame_count() {
            let kernel = d.frame_address(i) >= 0xffff_8000_0000_0000;
            let want = if kernel {
                FrameContext::Task
            } else {
                FrameContext::User
            };
            assert_eq!(d.frame_context[i], want, "frame {i}");
        }
        let r = d.frames_of(0);
        assert_eq!(
            frame(&d, r.start),
            (
                Some("__schedule"),
                Some(0x2f4),
                0xffff_ffff_81a1_e3c4,
                None,
                FrameContext::Task
            )
        );
        let r = d.frames_of(2);
        assert_eq!(d.frames_of(2).len(), 10);
        assert_eq!(frame(&d, r.start + 3).0, Some("do_select"));
        assert_eq!(
            frame(&d, r.start + 9).3,
            Some("/usr/lib/x86_64-linux-gnu/libc.so.6")
        );
        // `dm-crypt.ko.xz` is module dm_crypt.
        let r = d.frames_of(3);
        assert_eq!(
            frame(&d, r.start + 2),
            (
                Some("dmcrypt_write"),
                Some(0x9d),
                0xffff_ffff_c03b_1a6d,
                Some("dm_crypt"),
                FrameContext::Task
            )
        );
        // The dropped D sample of 1733 had a jbd2.ko and an [ext4] frame.
        let d = run(
            Format::PerfScript,
            parse,
            &sample(VMLINUX)
                .lines()
                .take(18)
                .map(|l| format!("{l}\n"))
                .collect::<String>(),
        );
        let r = d.frames_of(1);
        assert_eq!(d.header(1).state, Some('D'));
        assert_eq!(frame(&d, r.start + 4).3, Some("jbd2"));
        assert_eq!(frame(&d, r.start + 5).3, Some("ext4"));
        assert_eq!(frame(&d, r.start + 6).3, None);
    }

    /// Lines `from..=to` (1-based) of the sample, each with its line end.
    fn excerpt(from: usize, to: usize) -> String {
        sample(SAMPLE)
            .lines()
            .skip(from - 1)
            .take(to + 1 - from)
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[test]
    fn golden_counts() {
        let d = dump();
        // 11 samples of 6 threads: one task per thread, its latest sample.
        assert_eq!(d.task_count(), 6);
        assert_eq!(d.frame_count(), 7 + 10 + 8 + 5 + 6 + 8);
        // Skipped: line 1 (provenance) and line 41, the sample's
        // `# ---- sched:sched_switch ... ----` section note (not perf's
        // `# key : value` header form).
        assert_eq!(d.skipped_lines, 2);
        let lines: Vec<usize> = d.skipped_samples.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![1, 41]);
        assert!(d.frame_reliable.iter().all(|&r| r));
        assert!(d.headers().all(|h| h.on_cpu == Some(true)));
        assert!(d.stack_status.iter().all(|&s| s == StackStatus::Complete));
        assert_eq!(d.warnings.len(), 2);
        assert_eq!(
            d.warnings[1],
            "perf: 11 samples of 6 threads, the last sample of each thread kept"
        );
    }

    #[test]
    fn the_latest_sample_of_each_thread_is_kept() {
        let d = dump();
        let kept: Vec<_> = d
            .headers()
            .enumerate()
            .map(|(t, h)| (d.comm(t), h.tid, h.line, h.state))
            .collect();
        assert_eq!(
            kept,
            vec![
                // 456.22 after 455.71.
                ("kdamond.0", Some(77), 32, None),
                // 469.490074 (S) is later than the D sample printed after it:
                // the time decides, not the text order.
                ("sleep", Some(15752), 42, Some('S')),
                // The sched_switch sample (469.50) after two cpu-clock ones:
                // its header gives the state.
                ("dd", Some(15125), 70, Some('R')),
                ("wl-spin", Some(15137), 80, Some('R')),
                ("kworker/u8:0-ex", Some(12), 87, Some('I')),
                ("rcu_preempt", Some(15), 95, Some('I')),
            ]
        );
        // The frames are the kept sample's.
        let r = d.frames_of(2);
        assert_eq!(
            d.name(d.frame_function(r.start + 1)),
            Some("__cond_resched")
        );
        assert_eq!(d.frame_line[r.start] as usize, 71);
        assert_eq!(d.header(3).cpu, Some(1));
    }

    #[test]
    fn idle_tasks_of_each_cpu_stay_apart() {
        let text = "\
swapper     0 [000]   10.000000:  1 cycles: 
\tffffffff81e2b1c5 default_idle+0x5 ([kernel.kallsyms])

swapper     0 [001]   10.000100:  1 cycles: 
\tffffffff81e2b1c5 default_idle+0x5 ([kernel.kallsyms])

swapper     0 [000]   10.000200:  1 cycles: 
\tffffffff81e2b1d0 default_idle_call+0x30 ([kernel.kallsyms])
";
        let d = run(Format::PerfScript, parse, text);
        assert_eq!(d.task_count(), 2);
        assert_eq!((d.header(0).cpu, d.header(0).line), (Some(1), 4));
        assert_eq!((d.header(1).cpu, d.header(1).line), (Some(0), 7));
        assert_eq!(d.skipped_lines, 0);
    }

    #[test]
    fn a_lost_header_after_a_dropped_sample_is_a_task() {
        // The second sample of 7 is dropped (the third is later); the
        // frames after the damaged header make a task whose header is lost.
        let text = "\
a 7 [000] 1.000000: 1 cycles: 
\tffffffff81000001 f+0x1 ([kernel.kallsyms])

a 7 [000] 2.00000
\tffffffff81000002 g+0x1 ([kernel.kallsyms])

a 7 [000] 3.000000: 1 cycles: 
\tffffffff81000003 h+0x1 ([kernel.kallsyms])
";
        let d = run(Format::PerfScript, parse, text);
        assert_eq!(d.task_count(), 2);
        assert_eq!(
            d.header(0).lost,
            super::super::TaskLoss::HEADER | super::super::TaskLoss::FRAME_LINE
        );
        assert_eq!(d.header(1).line, 7);
    }

    #[test]
    fn cpu_clock_samples() {
        // The first dd sample alone (the later ones replace it in the whole file).
        let d = run(Format::PerfScript, parse, &excerpt(2, 9));
        let h = &d.header(0);
        assert_eq!(
            (d.comm(0), h.pid, h.tid, h.cpu, h.state),
            ("dd", None, Some(15125), Some(0), None)
        );
        let r = d.frames_of(0);
        assert_eq!(r.len(), 6);
        assert_eq!(
            frame(&d, r.start),
            (
                Some("read_zero"),
                Some(0x77),
                0xffff_ffff_81d3_3df7,
                None,
                FrameContext::Task
            )
        );
        assert_eq!(
            frame(&d, r.start + 5),
            (
                Some("read"),
                Some(0xd),
                0xf82ad,
                Some("/usr/lib/x86_64-linux-gnu/libc.so.6"),
                FrameContext::User
            )
        );
        // wl-spin: a user frame, then an unresolved one that stays user.
        let d = run(Format::PerfScript, parse, &excerpt(18, 21));
        assert_eq!(d.comm(0), "wl-spin");
        let r = d.frames_of(0);
        assert_eq!(r.len(), 2);
        assert_eq!(
            frame(&d, r.start + 1),
            (None, None, 0x7f51_1765_b000, None, FrameContext::User)
        );
        // comm right-padded before the id: `kdamond.0    77`.
        let d = run(Format::PerfScript, parse, &excerpt(22, 31));
        let kd = &d.header(0);
        assert_eq!((d.comm(0), kd.tid), ("kdamond.0", Some(77)));
        assert_eq!(d.frames_of(0).len(), 8);
        assert!(d
            .frames_of(0)
            .all(|i| d.frame_context[i] == FrameContext::Task));
    }

    #[test]
    fn sched_switch_samples_give_state() {
        let d = dump();
        let sleep = &d.header(1);
        assert_eq!(
            (d.comm(1), sleep.tid, sleep.state),
            ("sleep", Some(15752), Some('S'))
        );
        assert_eq!(sleep.line, 42);
        let r = d.frames_of(1);
        assert_eq!(r.len(), 10);
        assert_eq!(
            frame(&d, r.start),
            (
                Some("__schedule"),
                Some(0x618),
                0xffff_ffff_821f_8b58,
                None,
                FrameContext::Task
            )
        );
        // The terminating `0 [unknown] ([unknown])` after libc is user space.
        assert_eq!(
            frame(&d, r.end - 1),
            (None, None, 0, None, FrameContext::User)
        );
        // The D sample alone gives its state.
        let d = run(Format::PerfScript, parse, &excerpt(54, 69));
        assert_eq!(d.header(0).state, Some('D'));
        let kworker = &dump().header(4);
        assert_eq!((kworker.tid, kworker.cpu), (Some(12), Some(0)));
    }

    #[test]
    fn other_forms() {
        let text = "\
# ========
# captured on    : Thu Nov 26 10:00:00 2026
# os release : 6.18.44-fc-v657
# ========
Web Content  4242/4250 [003] 12.500000: cycles:P:  ffffffff81d33df7 read_zero+0x77 ([kernel.kallsyms])
swapper     0 [001] 13.000000:  1 cycles: 
\tffffffffc0a1b2c3 ext4_writepages+0x1f ([ext4])
\tffffffffc0a1b2c3 ext4_inline_helper (inlined) ([ext4])
\t    7ffd12345000 __vdso_clock_gettime+0x10 ([vdso])
\t          abcdef foo+0x1 (/tmp/x (deleted))
\tffffffff81000000 [unknown] ([unknown])
";
        let d = run(Format::PerfScript, parse, text);
        assert_eq!(d.skipped_lines, 0);
        assert_eq!(d.kernel_release.as_deref(), Some("6.18.44-fc-v657"));
        let web = &d.header(0);
        assert_eq!(
            (d.comm(0), web.pid, web.tid, web.cpu),
            ("Web Content", Some(4242), Some(4250), Some(3))
        );
        assert_eq!(d.frames_of(0).len(), 1);
        assert_eq!(d.stack_status[0], StackStatus::Truncated);
        let r = d.frames_of(1);
        assert_eq!(r.len(), 5);
        assert_eq!(
            frame(&d, r.start),
            (
                Some("ext4_writepages"),
                Some(0x1f),
                0xffff_ffff_c0a1_b2c3,
                Some("ext4"),
                FrameContext::Task
            )
        );
        assert!(d.frame_inlined[r.start + 1]);
        assert_eq!(
            d.name(d.frame_function(r.start + 1)),
            Some("ext4_inline_helper")
        );
        assert_eq!(frame(&d, r.start + 2).3, Some("[vdso]"));
        assert_eq!(frame(&d, r.start + 2).4, FrameContext::User);
        assert_eq!(frame(&d, r.start + 3).3, Some("/tmp/x (deleted)"));
        // A kernel-half address is kernel even after user frames.
        assert_eq!(frame(&d, r.start + 4).4, FrameContext::Task);
    }

    #[test]
    fn frames_outside_samples_are_skipped() {
        let d = run(
            Format::PerfScript,
            parse,
            "\tffffffff81d33df7 read_zero+0x77 ([kernel.kallsyms])\nnot perf\n",
        );
        assert_eq!((d.task_count(), d.skipped_lines), (0, 2));
    }

    #[test]
    fn survives_mutations() {
        fuzz(Format::PerfScript, parse, sample(SAMPLE), 0x9e6f, 400);
    }
}
