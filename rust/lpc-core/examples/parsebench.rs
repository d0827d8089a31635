//! Throughput check:
//! `cargo run --release --example parsebench -- FILE FORMAT [MB] [THREADS]`.
//!
//! Repeats FILE to MB megabytes and times `dump::parse_bytes_with` (UTF-8
//! validation included) on THREADS threads (default: one per core), and the
//! reading of the repeated text back from a file with `dump::read_input`.
#![allow(clippy::print_stdout)]
use lpc_core::dump::{self, Format};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let unit = std::fs::read_to_string(&args[1]).expect("readable UTF-8 file");
    let format = Format::from_name(&args[2]).expect("format name");
    let mb: usize = args.get(3).map_or(100, |s| s.parse().expect("MB"));
    let text = unit.repeat(mb * 1_000_000 / unit.len() + 1);
    let threads = args.get(4).map_or_else(
        || dump::parse_threads(text.len()),
        |s| s.parse().expect("threads"),
    );
    let t = Instant::now();
    let ok = std::str::from_utf8(text.as_bytes()).is_ok();
    println!("utf8 check {:.3} s ({ok})", t.elapsed().as_secs_f64());
    for _ in 0..3 {
        let t = Instant::now();
        let d = dump::parse_bytes_with(text.as_bytes(), Some(format), threads).expect("parsed");
        let dt = t.elapsed().as_secs_f64();
        println!(
            "{:.0} MB in {:.3} s on {threads} thread(s): {:.0} MB/s ({} tasks, {} frames, {} tokens)",
            text.len() as f64 / 1e6,
            dt,
            text.len() as f64 / 1e6 / dt,
            d.task_count(),
            d.frame_count(),
            d.token_count()
        );
        let t = Instant::now();
        drop(d);
        println!("drop {:.3} s", t.elapsed().as_secs_f64());
    }
}
