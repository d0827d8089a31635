//! Quick throughput check of the interval structure on a real kallsyms, with
//! the workload of `shared/bench/ivlimit.c` (K random functions patched, 1M
//! return-address-like queries, 10% hits). Not a test: timing only.
//!
//! `cargo run --release -p lpc-core --example lookup_bench -- KALLSYMS [K...]`

use lpc_core::IntervalTree;
use std::time::Instant;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn functions(path: &str) -> Vec<(u64, u64)> {
    let text = std::fs::read_to_string(path).expect("read kallsyms");
    let mut rows: Vec<(String, u64, bool)> = Vec::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.len() < 3 || !matches!(parts[1], "t" | "T" | "w" | "W") {
            continue;
        }
        let Ok(a) = u64::from_str_radix(parts[0], 16) else {
            continue;
        };
        let seg = parts.get(3).copied().unwrap_or("[vmlinux]").to_owned();
        rows.push((seg, a, parts[2].starts_with("__pfx_")));
    }
    rows.sort();
    let mut out = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let mut j = i;
        let mut all_pfx = true;
        while j < rows.len() && rows[j].0 == rows[i].0 && rows[j].1 == rows[i].1 {
            all_pfx &= rows[j].2;
            j += 1;
        }
        if j < rows.len() && rows[j].0 == rows[i].0 {
            let size = rows[j].1 - rows[i].1;
            if size <= 65536 && !all_pfx {
                out.push((rows[i].1, rows[j].1));
            }
        }
        i = j;
    }
    out.sort_unstable();
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let funcs = functions(&args[1]);
    let ks: Vec<usize> = if args.len() > 2 {
        args[2..].iter().map(|k| k.parse().expect("K")).collect()
    } else {
        vec![10, 1000, 10_000, funcs.len()]
    };
    let n = funcs.len();
    for k in ks {
        let k = k.min(n);
        let mut rng = Rng(12_345 + k as u64);
        let mut perm: Vec<usize> = (0..n).collect();
        for i in 0..k {
            let j = i + (rng.next() % (n - i) as u64) as usize;
            perm.swap(i, j);
        }
        let patched = &perm[..k];
        let ranges: Vec<lpc_core::Range> = patched
            .iter()
            .map(|&f| lpc_core::Range {
                start: funcs[f].0,
                end: funcs[f].1,
                id: f as i64,
            })
            .collect();
        let t = Instant::now();
        let tree = IntervalTree::new(ranges).expect("valid");
        let build = t.elapsed();
        let t = Instant::now();
        let grown = tree
            .with_ranges(vec![lpc_core::Range {
                start: 1,
                end: 2,
                id: i64::MAX,
            }])
            .expect("valid");
        let add = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let shrunk = grown.without_ids(&[i64::MAX]);
        let remove = t.elapsed().as_secs_f64();
        assert_eq!(shrunk.len(), tree.len());
        let mut is_patched = vec![false; n];
        for &f in patched {
            is_patched[f] = true;
        }
        let nq = 1_000_000;
        let mut qs = Vec::with_capacity(nq);
        let mut truth = Vec::with_capacity(nq);
        for _ in 0..nq {
            let hit = k == n || (rng.next() >> 11) as f64 / 9_007_199_254_740_992.0 < 0.10;
            let f = if hit {
                perm[(rng.next() % k as u64) as usize]
            } else {
                perm[k + (rng.next() % (n - k) as u64) as usize]
            };
            let size = funcs[f].1 - funcs[f].0;
            let off = if size > 1 {
                1 + rng.next() % (size - 1)
            } else {
                0
            };
            qs.push(funcs[f].0 + off);
            truth.push(if is_patched[f] { f as i64 } else { -1 });
        }
        let mut out = vec![0i64; nq];
        let mut best = f64::MAX;
        for _ in 0..7 {
            let t = Instant::now();
            tree.find_many_into(&qs, &mut out, false);
            best = best.min(t.elapsed().as_secs_f64());
        }
        assert_eq!(out, truth, "wrong answers");
        let mut lat = f64::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            // Each query depends on the previous answer (through a zero the
            // compiler cannot see), so this measures one lookup's latency.
            let zero = std::hint::black_box(0u64);
            let mut r = 0i64;
            for &q in &qs {
                r = tree.find(q | (r as u64 & zero)).unwrap_or(-1);
                std::hint::black_box(r);
            }
            lat = lat.min(t.elapsed().as_secs_f64());
        }
        eprintln!(
            "K={k:6} build {:.3} ms  batch {:.2} ns  latency {:.2} ns  bytes/range {:.1}  rebuild(+1) {:.3} ms  rebuild(-1) {:.3} ms",
            build.as_secs_f64() * 1e3,
            best / nq as f64 * 1e9,
            lat / nq as f64 * 1e9,
            tree.nbytes() as f64 / k as f64,
            add * 1e3,
            remove * 1e3
        );
    }
}
