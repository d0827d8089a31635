use super::registry::{detect_head, parser_for, DETECT_WINDOW};
use super::*;
use crate::error::Error;

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
        hung: true,
        lost: TaskLoss::FRAME_LINE | TaskLoss::HEADER,
        lost_line: 4,
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
    (
        sample!("proc-pid-stack-pasted-tickets.txt"),
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
    (
        sample!("arm32-hung-task-4.19-unwind-verbose.txt"),
        Format::Dmesg,
    ),
    (sample!("arm32-oops-3.4-frame-pointer.txt"), Format::Dmesg),
    (sample!("arm32-sysrq-w-6.1-plain.txt"), Format::Dmesg),
    (
        sample!("hung-task-4.4-ubuntu-tainted-OE.txt"),
        Format::Dmesg,
    ),
    (sample!("mips-hung-task-4.14-openwrt.txt"), Format::Dmesg),
    (sample!("ppc64le-hung-task-5.15-nmi.txt"), Format::Dmesg),
    (sample!("riscv64-dump-stack-6.6.txt"), Format::Dmesg),
    (sample!("riscv64-hung-task-5.10.txt"), Format::Dmesg),
    (sample!("s390x-hung-task-4.19.txt"), Format::Dmesg),
    (
        sample!("soft-lockup-2.6.18-x86_64-module-prefix.txt"),
        Format::Dmesg,
    ),
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
        sample!("drgn-user-frames-0.0.27.txt"),
        sample!("perf-script-kernel-6.18.txt"),
        sample!("perf-script-vmlinux-dso-6.1.txt"),
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

// ---------------------------------------------------------------------------
// Evidence a parser sees go missing (TaskLoss), format by format

fn parsed(text: &str, format: Format) -> Dump {
    parse(text, Some(format)).expect("parses")
}

fn losses(d: &Dump) -> Vec<(TaskLoss, usize)> {
    d.headers().map(|h| (h.lost, h.lost_line)).collect()
}

#[test]
fn a_damaged_proc_stack_line_is_a_lost_frame_not_a_second_stack() {
    let d = parsed(
        "[<0>] do_wait+0x1/0x2\n[<0>] kernel_w\u{1}it4+0x1/0x2\n[<0>] __x64_sys_wait4+0x1/0x2\n",
        Format::ProcStack,
    );
    assert_eq!(d.task_count(), 1);
    assert_eq!(d.frame_count(), 2);
    assert_eq!(losses(&d), [(TaskLoss::FRAME_LINE, 2)]);
    // A prompt or a note still ends a stack, and is no frame.
    let d = parsed(
        "[<0>] do_wait+0x1/0x2\n$ cat /proc/2/stack\n[<0>] kthreadd+0x1/0x2\n",
        Format::ProcStack,
    );
    assert_eq!(d.task_count(), 2);
    assert_eq!(d.lost_tasks(), 0);
}

#[test]
fn a_proc_stack_cut_mid_line_is_unclosed() {
    let d = parsed("[<0>] do_wait+0x1/0x2\n[<0>] kernel_wa", Format::ProcStack);
    assert!(d.header(0).lost.contains(TaskLoss::UNCLOSED));
    assert_eq!(d.header(0).lost_line, 2);
}

#[test]
fn bpftrace_keys_lose_their_unreadable_lines_and_their_end() {
    let whole = "@[\n    __schedule+1\n    schedule+2\n]: 3\n";
    assert_eq!(parsed(whole, Format::Bpftrace).lost_tasks(), 0);
    let damaged = whole.replace("schedule+2", "sch\u{1}dule");
    let d = parsed(&damaged, Format::Bpftrace);
    assert_eq!(losses(&d), [(TaskLoss::FRAME_LINE, 3)]);
    let open = "@[\n    __schedule+1\n    schedule+2\n";
    let d = parsed(open, Format::Bpftrace);
    assert_eq!(losses(&d), [(TaskLoss::UNCLOSED, 3)]);
    assert_eq!(d.stack_status, [StackStatus::Truncated]);
}

#[test]
fn perf_samples_lose_unreadable_lines_and_headerless_frames() {
    let sample = "cat 7 [000] 1.000000: 1 cpu-clock: \n\tffffffff81000000 __schedule+0x1 ([kernel.kallsyms])\n\tffffffff81000100 schedule+0x2 ([kernel.kallsyms])\n\n";
    assert_eq!(parsed(sample, Format::PerfScript).lost_tasks(), 0);
    let damaged = sample.replace(
        "\tffffffff81000100 schedule",
        "\tffffffff81000100\u{1}schedule",
    );
    assert_eq!(
        losses(&parsed(&damaged, Format::PerfScript)),
        [(TaskLoss::FRAME_LINE, 3)]
    );
    // The second sample's header is lost whole: its frames are no one's.
    let headless = sample.replacen("cat 7 [000] 1.000000: 1 cpu-clock: \n", "", 1);
    let d = parsed(
        &format!(
            "{sample}{}",
            headless.replace(
                "ffffffff81000000 __schedule+0x1",
                "ffffffff81000000 __sch\u{1}dule+0x1"
            )
        ),
        Format::PerfScript,
    );
    assert_eq!(d.task_count(), 2);
    assert!(d.header(1).lost.contains(TaskLoss::HEADER));
    // Cut to the blank start of its next frame line: the blank proves no end.
    let cut = &sample[..sample.find("\tffffffff81000100").expect("frame") + 1];
    let d = parsed(cut, Format::PerfScript);
    assert!(d.input_cut);
    assert_eq!(losses(&d), [(TaskLoss::UNCLOSED, 2)]);
}

#[test]
fn a_damaged_crash_header_keeps_its_frames_apart() {
    let task = "PID: 7  TASK: ffff888100000000  CPU: 0  COMMAND: \"cat\"\n #0 [ffffc90000000000] __schedule at ffffffff81000000\n #1 [ffffc90000000010] schedule at ffffffff81000100\n";
    let whole = parsed(&format!("{task}{task}"), Format::Crash);
    assert_eq!((whole.task_count(), whole.lost_tasks()), (2, 0));
    let damaged = task.replace("CPU: 0  COMMAND: \"cat\"", "CPU: 0  COMM\u{1}");
    let d = parsed(&format!("{task}{damaged}"), Format::Crash);
    assert_eq!(d.task_count(), 2);
    assert_eq!(d.frames_of(0).len(), 2);
    assert_eq!(losses(&d)[1], (TaskLoss::HEADER, 4));
}

#[test]
fn a_cut_input_marks_its_last_stack_in_every_parse_path() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/hung-task-6.18.txt"
    ))
    .expect("sample");
    let big = text.repeat(4000);
    // Cut inside the last frame line of the last task (after its `</TASK>`
    // nothing is lost).
    let end = big.rfind(" </TASK>").expect("marker");
    let cut = &big.as_bytes()[..end - 3];
    let sequential = parse_bytes_with(cut, None, 1).expect("parses");
    let chunked = parse_bytes_with(cut, None, 2).expect("parses");
    assert_eq!(sequential, chunked);
    let last = sequential.task_count() - 1;
    assert!(sequential.header(last).lost.contains(TaskLoss::UNCLOSED));
    assert_eq!(
        sequential.lost_tasks(),
        4000 * parse_bytes_with(text.as_bytes(), None, 1)
            .unwrap()
            .lost_tasks()
            + 1
    );
}

#[test]
fn a_cut_snapshot_file_read_in_pieces_marks_its_last_stack() {
    let dir = std::env::temp_dir().join(format!("lpc-cut-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let path = dir.join("snap");
    let block = "# pid=1 tid=1 comm=a state=S status=ok\n[<0>] do_wait+0x1/0x2\n[<0>] kernel_wait4+0x1/0x2\n";
    let mut text = block.repeat(20_000);
    text.truncate(text.len() - 5);
    std::fs::write(&path, &text).expect("write");
    let pieces = parse_file_with(&path, None, Some(2), 4096).expect("parses");
    let whole = parse(&text, None).expect("parses");
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(pieces, whole);
    assert_eq!(pieces.lost_tasks(), 1);
    let last = pieces.task_count() - 1;
    assert!(pieces.header(last).lost.contains(TaskLoss::UNCLOSED));
}

#[test]
fn task_losses_are_named_in_bit_order() {
    for (i, (loss, _)) in TaskLoss::ALL.iter().enumerate() {
        assert_eq!(loss.bits(), 1 << i);
    }
}

#[test]
fn invalid_utf8_is_repaired_in_place_byte_for_byte() {
    let mut bytes = b"ok \xff\xfe then \xe2\x82 cut \xf0".to_vec();
    assert_eq!(repair_utf8(&mut bytes), 5);
    assert_eq!(bytes, b"ok \x1a\x1a then \x1a\x1a cut \x1a");
    let mut valid = "caf\u{e9} \u{2026}".as_bytes().to_vec();
    assert_eq!(repair_utf8(&mut valid), 0);
    assert_eq!(valid, "caf\u{e9} \u{2026}".as_bytes());
}

#[test]
fn a_bad_byte_costs_its_frame_in_every_parse_path() {
    let text = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/hung-task-6.18.txt"
    ))
    .expect("sample");
    let mut big = text.repeat(3000);
    // Inside the first frame name of some task's stack, far into the file.
    let at = big.len() / 2
        + memchr::memmem::find(&big[big.len() / 2..], b" __schedule+").expect("frame")
        + 3;
    big[at] = 0xff;
    let one = parse_bytes_with(&big, None, 1).expect("parses");
    let two = parse_bytes_with(&big, None, 2).expect("parses");
    assert_eq!(one, two);
    assert!(one.warnings.iter().any(|w| w == WARN_NOT_UTF8));
    assert_eq!(
        one.lost_tasks(),
        3000 * parse_bytes_with(&text, None, 1).unwrap().lost_tasks() + 1
    );
    let dir = std::env::temp_dir().join(format!("lpc-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let path = dir.join("kern.log");
    std::fs::write(&path, &big).expect("write");
    let from_file = parse_file(&path, None).expect("parses");
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(from_file, one);
}
