//! Throughput check: `cargo run --release --example parsebench -- FILE FORMAT [MB]`.
#![allow(clippy::print_stdout)]
use lpc_core::dump::{self, Format};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let unit = std::fs::read_to_string(&args[1]).expect("readable UTF-8 file");
    let format = Format::from_name(&args[2]).expect("format name");
    let mb: usize = args.get(3).map_or(100, |s| s.parse().expect("MB"));
    let text = unit.repeat(mb * 1_000_000 / unit.len() + 1);
    let t = Instant::now();
    let ok = std::str::from_utf8(text.as_bytes()).is_ok();
    println!("utf8 check {:.3} s ({ok})", t.elapsed().as_secs_f64());
    for _ in 0..3 {
        let t = Instant::now();
        let d = dump::parse(&text, Some(format)).expect("parsed");
        let dt = t.elapsed().as_secs_f64();
        println!(
            "{:.0} MB in {:.3} s: {:.0} MB/s ({} tasks, {} frames)",
            text.len() as f64 / 1e6,
            dt,
            text.len() as f64 / 1e6 / dt,
            d.task_count(),
            d.frame_count()
        );
        let t = Instant::now();
        drop(d);
        println!("drop {:.3} s", t.elapsed().as_secs_f64());
    }
}
