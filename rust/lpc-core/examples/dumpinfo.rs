//! Debug helper: prints what the parser made of a file.
#![allow(clippy::print_stdout)]
use lpc_core::dump;

fn main() {
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path).expect("readable file");
        let text = String::from_utf8_lossy(&bytes);
        let d = match dump::parse(&text, None) {
            Ok(d) => d,
            Err(e) => {
                println!("{path}: {e}");
                continue;
            }
        };
        println!(
            "== {path}: {:?} release={:?} tasks={} frames={} skipped={}",
            d.format,
            d.kernel_release,
            d.task_count(),
            d.frame_count(),
            d.skipped_lines
        );
        for (line, text) in &d.skipped_samples {
            println!("   skip {line}: {text}");
        }
        for w in &d.warnings {
            println!("   warn: {w}");
        }
        for t in 0..d.task_count() {
            let h = &d.header(t);
            println!(
                "  task pid={:?} tgid={:?} comm={:?} state={:?} kthread={:?} on_cpu={:?} cpu={:?} pf={:?} tif={:?} user={} line={} status={:?}",
                h.pid, h.tgid, d.comm(t), h.state, h.kthread, h.on_cpu, h.cpu, h.task_flags, h.thread_flags, h.user_regs, h.line, d.stack_status[t]
            );
            for i in d.frames_of(t) {
                println!(
                    "      {}{:?} {} +{:x}/{:x} [{}] {:?}{} L{}",
                    if d.frame_reliable[i] { "" } else { "? " },
                    d.frame_has_address(i).then_some(d.frame_address(i)),
                    d.name(d.frame_function(i)).unwrap_or("-"),
                    d.frame_offset(i),
                    d.frame_size(i),
                    d.name(d.frame_module(i)).unwrap_or(""),
                    d.frame_context[i],
                    if d.frame_inlined[i] { " inline" } else { "" },
                    d.frame_line[i]
                );
            }
        }
    }
}
