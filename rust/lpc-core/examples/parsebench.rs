//! Throughput check:
//! `cargo run --release --example parsebench -- FILE FORMAT [MB] [THREADS]`.
//!
//! Repeats FILE to MB megabytes, then times, on THREADS threads (default:
//! one per core), `dump::parse_bytes_with` on the text in memory (UTF-8
//! validation included) and `dump::parse_file_with` on a copy written to a
//! temporary file (reading included; the file is in the page cache).
#![allow(clippy::print_stdout)]
use lpc_core::dump::{self, Dump, Format};
use std::time::Instant;

fn report(what: &str, megabytes: f64, seconds: f64, threads: usize, d: &Dump) {
    println!(
        "{what}: {megabytes:.0} MB in {seconds:.3} s on {threads} thread(s): {:.0} MB/s \
         ({} tasks, {} frames, {} tokens)",
        megabytes / seconds,
        d.task_count(),
        d.frame_count(),
        d.token_count()
    );
}

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
    let megabytes = text.len() as f64 / 1e6;
    let t = Instant::now();
    let ok = std::str::from_utf8(text.as_bytes()).is_ok();
    println!("utf8 check {:.3} s ({ok})", t.elapsed().as_secs_f64());
    for _ in 0..3 {
        let t = Instant::now();
        let d = dump::parse_bytes_with(text.as_bytes(), Some(format), threads).expect("parsed");
        report("bytes", megabytes, t.elapsed().as_secs_f64(), threads, &d);
    }
    let path = std::env::temp_dir().join(format!("lpc-parsebench-{}.txt", std::process::id()));
    std::fs::write(&path, &text).expect("temporary file");
    for _ in 0..3 {
        let t = Instant::now();
        let d = dump::parse_file_with(&path, Some(format), Some(threads), dump::FILE_PIECE)
            .expect("parsed");
        report("file ", megabytes, t.elapsed().as_secs_f64(), threads, &d);
        let t = Instant::now();
        drop(d);
        println!("drop {:.3} s", t.elapsed().as_secs_f64());
    }
    let _ = std::fs::remove_file(&path);
}
