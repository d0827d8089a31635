//! `within_patched_set(ip)`: which patched function, if any, holds a return address.
//!
//! The seed mail asks for "an efficient data structure, like an interval tree"
//! behind `within_patched_set(parent_ip)`. Kernel functions do not overlap, so
//! the common question is a predecessor search over sorted starts plus one
//! compare with that range's end. Stacked patches and nested old/new versions
//! do overlap, though, and the answer must stay exact there.
//!
//! The layout (all flat arrays, no pointers):
//!
//! * `starts`, `ends`, `ids` — the ranges sorted by `(start, id)`, structure of
//!   arrays. Sorting ties by id puts the newest patch (highest id) last among
//!   equal starts, so "the rightmost covering range" is the answer `find` owes:
//!   largest start, ties to the highest id — klp's `func_stack`, newest first.
//! * `block_max` — an implicit augmented tree of fanout [`FANOUT`] over `ends`:
//!   level 1 holds the max end of each block of `FANOUT` ranges, level 2 the max
//!   of each block of level 1, and so on. This is cgranges' "max end of the
//!   subtree" augmentation with a cache-line-friendly fanout instead of a binary
//!   shape; it bounds the "rightmost range at or left of `i` whose end is above
//!   `q`" search to `O(FANOUT · log_FANOUT n)` compares however the ranges nest.
//!   It costs 8/15 bytes per range.
//! * `reach` — the running max of `ends`, kept only when ranges overlap: one
//!   load rejects a miss without touching the tree.
//! * `table` — a first-level bucket table in front of the predecessor search,
//!   the trick the kernel's ORC unwinder uses (arch/x86/include/asm/orc_lookup.h):
//!   the high bits of `ip - base` select a small window of candidate starts, so
//!   a lookup is one table load and a couple of branch-free steps instead of
//!   `log2 n` dependent loads.
//!
//! With disjoint ranges (the normal case, flagged at build time) a lookup is the
//! table load, a short branch-free search and one compare with the end. Batch
//! lookups run [`LANES`] searches in lock-step so that their loads overlap.

use crate::error::{Error, Result};
use rayon::prelude::*;

/// Children per node of the max-end augmentation.
pub const FANOUT: usize = 16;
/// Independent searches interleaved by the batch loops.
pub const LANES: usize = 16;
/// Up to this many ranges, a batch searches the whole (L1-resident) start
/// array; above it, the bucket table's short windows win (measured with
/// `examples/lookup_bench.rs` on a real kallsyms: the crossover is 300–1000).
const SMALL_SET: usize = 512;
/// Batches at least this long are split across threads when asked to.
const PARALLEL_MIN: usize = 1 << 16;
/// Work unit of one thread in a parallel batch.
const PARALLEL_CHUNK: usize = 1 << 14;

/// One half-open range `[start, end)` with its caller-chosen id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Range {
    pub start: u64,
    pub end: u64,
    pub id: i64,
}

/// First-level index: bucket `b` covers starts in `[base + b << shift, base + (b+1) << shift)`.
#[derive(Clone, Debug, Default)]
struct BucketTable {
    base: u64,
    shift: u32,
    /// `slots[b]` = how many starts lie below bucket `b`; `slots.len() = buckets + 1`.
    slots: Vec<u32>,
}

impl BucketTable {
    fn build(starts: &[u64]) -> Self {
        let n = starts.len();
        if n == 0 {
            return Self::default();
        }
        let base = starts[0];
        let last = starts[n - 1] - base;
        // Smallest power-of-two bucket that gives at most one bucket per range:
        // 4 bytes a range, and ~1 candidate per window when starts are spread.
        let mut shift = 0u32;
        while shift < 63 && (last >> shift) + 1 > n as u64 {
            shift += 1;
        }
        let buckets = usize::try_from((last >> shift) + 1).expect("bucket count fits usize");
        let mut slots = Vec::with_capacity(buckets + 1);
        let mut below = 0usize;
        for b in 0..=buckets {
            // Bucket b starts at base + (b << shift); count the starts before it.
            let edge = (b as u128) << shift;
            while below < n && u128::from(starts[below] - base) < edge {
                below += 1;
            }
            slots.push(u32::try_from(below).expect("range count checked at build"));
        }
        Self { base, shift, slots }
    }

    /// The candidate window `(first, len)` holding the predecessor of `q`.
    ///
    /// The predecessor (last start `<= q`) lies in `[slots[b] - 1, slots[b+1] - 1]`
    /// for `q`'s bucket `b`; addresses below `base` land in bucket 0 and fail
    /// the final compare, addresses past the last bucket land in the last one.
    #[inline(always)]
    fn window(&self, q: u64) -> (usize, usize) {
        let last_bucket = (self.slots.len() - 2) as u64;
        let b = if q < self.base {
            0
        } else {
            ((q - self.base) >> self.shift).min(last_bucket)
        } as usize;
        let lo = self.slots[b] as usize;
        let hi = self.slots[b + 1] as usize;
        let first = lo.saturating_sub(1);
        (first, hi - first)
    }

    fn nbytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<u32>()
    }
}

/// An immutable set of half-open ranges answering point and overlap queries.
///
/// Cheap to share between threads (`Send + Sync`); updates derive a new tree.
#[derive(Clone, Debug, Default)]
pub struct IntervalTree {
    starts: Vec<u64>,
    ends: Vec<u64>,
    ids: Vec<i64>,
    /// `block_max[k]` is level `k + 1` of the max-end tree (level 0 is `ends`).
    block_max: Vec<Vec<u64>>,
    /// Running max of `ends`; empty when the ranges are disjoint.
    reach: Vec<u64>,
    disjoint: bool,
    table: BucketTable,
}

impl IntervalTree {
    /// Builds a tree from ranges in any order. Errors name the first range
    /// (by input position) whose start is not below its end.
    pub fn new(mut ranges: Vec<Range>) -> Result<Self> {
        validate(&ranges)?;
        if u32::try_from(ranges.len()).is_err() {
            return Err(Error::TooManyRanges {
                count: ranges.len(),
            });
        }
        // pdqsort: linear on the already-sorted input a rebuild usually sees.
        ranges.sort_unstable_by_key(|r| (r.start, r.id));
        Ok(Self::from_sorted(ranges))
    }

    /// Builds a tree from three parallel arrays (`ids` defaults to positions).
    pub fn from_arrays(starts: &[u64], ends: &[u64], ids: Option<&[i64]>) -> Result<Self> {
        if starts.len() != ends.len() {
            return Err(Error::LengthMismatch {
                what: "starts and ends",
                left: starts.len(),
                right: ends.len(),
            });
        }
        if let Some(ids) = ids {
            if ids.len() != starts.len() {
                return Err(Error::LengthMismatch {
                    what: "starts and ids",
                    left: starts.len(),
                    right: ids.len(),
                });
            }
        }
        let ranges = (0..starts.len())
            .map(|i| Range {
                start: starts[i],
                end: ends[i],
                id: ids.map_or(i as i64, |ids| ids[i]),
            })
            .collect();
        Self::new(ranges)
    }

    fn from_sorted(ranges: Vec<Range>) -> Self {
        let starts: Vec<u64> = ranges.iter().map(|r| r.start).collect();
        let ends: Vec<u64> = ranges.iter().map(|r| r.end).collect();
        let ids: Vec<i64> = ranges.iter().map(|r| r.id).collect();
        Self::from_sorted_columns(starts, ends, ids)
    }

    fn from_sorted_columns(starts: Vec<u64>, ends: Vec<u64>, ids: Vec<i64>) -> Self {
        // Disjoint iff every start is at or past the furthest end before it;
        // then a miss at the predecessor is a miss everywhere.
        let mut furthest = 0u64;
        let mut disjoint = true;
        for (&s, &e) in starts.iter().zip(&ends) {
            disjoint &= s >= furthest;
            furthest = furthest.max(e);
        }
        let reach = if disjoint {
            Vec::new()
        } else {
            ends.iter()
                .scan(0u64, |m, &e| {
                    *m = (*m).max(e);
                    Some(*m)
                })
                .collect()
        };
        let mut block_max: Vec<Vec<u64>> = Vec::new();
        let mut below: &[u64] = &ends;
        while below.len() > 1 {
            let level: Vec<u64> = below
                .chunks(FANOUT)
                .map(|c| c.iter().copied().max().unwrap_or(0))
                .collect();
            block_max.push(level);
            below = block_max.last().expect("just pushed");
        }
        let table = BucketTable::build(&starts);
        Self {
            starts,
            ends,
            ids,
            block_max,
            reach,
            disjoint,
            table,
        }
    }

    /// A new tree holding these ranges as well (old ones keep their ids).
    pub fn with_ranges(&self, extra: Vec<Range>) -> Result<Self> {
        validate(&extra)?;
        let mut ranges = self.ranges();
        let offset = ranges.len();
        ranges.extend(extra);
        if u32::try_from(ranges.len()).is_err() {
            return Err(Error::TooManyRanges {
                count: ranges.len(),
            });
        }
        // Both halves are sorted runs: the sort merges them in linear time.
        ranges[offset..].sort_unstable_by_key(|r| (r.start, r.id));
        ranges.sort_by_key(|r| (r.start, r.id));
        Ok(Self::from_sorted(ranges))
    }

    /// A new tree without any range whose id is in `ids`.
    #[must_use]
    pub fn without_ids(&self, ids: &[i64]) -> Self {
        let mut gone = ids.to_vec();
        gone.sort_unstable();
        let keep: Vec<usize> = (0..self.len())
            .filter(|&i| gone.binary_search(&self.ids[i]).is_err())
            .collect();
        Self::from_sorted_columns(
            keep.iter().map(|&i| self.starts[i]).collect(),
            keep.iter().map(|&i| self.ends[i]).collect(),
            keep.iter().map(|&i| self.ids[i]).collect(),
        )
    }

    /// Number of ranges.
    #[must_use]
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// True when the tree holds no range.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// True when no two ranges overlap (the fast path applies to every query).
    #[must_use]
    pub fn is_disjoint(&self) -> bool {
        self.disjoint
    }

    /// Sorted starts (by `(start, id)`).
    #[must_use]
    pub fn starts(&self) -> &[u64] {
        &self.starts
    }

    /// Ends, in the order of [`Self::starts`].
    #[must_use]
    pub fn ends(&self) -> &[u64] {
        &self.ends
    }

    /// Ids, in the order of [`Self::starts`].
    #[must_use]
    pub fn ids(&self) -> &[i64] {
        &self.ids
    }

    /// The ranges in sorted order.
    #[must_use]
    pub fn ranges(&self) -> Vec<Range> {
        (0..self.len())
            .map(|i| Range {
                start: self.starts[i],
                end: self.ends[i],
                id: self.ids[i],
            })
            .collect()
    }

    /// Heap bytes held by the tree.
    #[must_use]
    pub fn nbytes(&self) -> usize {
        let words = self.starts.capacity()
            + self.ends.capacity()
            + self.ids.capacity()
            + self.reach.capacity()
            + self.block_max.iter().map(Vec::capacity).sum::<usize>();
        words * 8 + self.table.nbytes()
    }

    /// Index of the last start `<= q`, or 0 when every start is above `q`
    /// (callers compare `starts[i] <= q` anyway). Branch-free inside the window.
    #[inline(always)]
    fn candidate(&self, q: u64) -> usize {
        let (mut first, mut n) = self.table.window(q);
        while n > 1 {
            let half = n / 2;
            // A plain `if` here may compile to a branch that mispredicts half
            // the time; select_unpredictable asks for a conditional move.
            first = std::hint::select_unpredictable(
                self.starts[first + half] <= q,
                first + half,
                first,
            );
            n -= half;
        }
        first
    }

    /// Resolves a candidate to the sorted index of the answer for `q`.
    #[inline(always)]
    fn resolve(&self, i: usize, q: u64) -> Option<usize> {
        if self.starts[i] > q {
            return None;
        }
        if q < self.ends[i] {
            return Some(i);
        }
        if self.disjoint || self.reach[i] <= q {
            return None;
        }
        self.rightmost_above(i, q)
    }

    /// The rightmost sorted index `j <= i` with `ends[j] > q`, climbing the
    /// max-end tree only as far as needed and descending into the first block
    /// whose max exceeds `q`.
    fn rightmost_above(&self, i: usize, q: u64) -> Option<usize> {
        let mut level = 0usize;
        let mut pos = i;
        loop {
            let values = self.level(level);
            let group = pos - pos % FANOUT;
            if let Some(j) = (group..=pos).rev().find(|&j| values[j] > q) {
                return Some(self.descend(level, j, q));
            }
            if group == 0 {
                return None;
            }
            pos = group / FANOUT - 1;
            level += 1;
        }
    }

    fn descend(&self, mut level: usize, mut j: usize, q: u64) -> usize {
        while level > 0 {
            let below = self.level(level - 1);
            let first = j * FANOUT;
            let last = (first + FANOUT).min(below.len());
            j = (first..last)
                .rev()
                .find(|&c| below[c] > q)
                .expect("a block's max comes from one of its children");
            level -= 1;
        }
        j
    }

    fn level(&self, level: usize) -> &[u64] {
        if level == 0 {
            &self.ends
        } else {
            &self.block_max[level - 1]
        }
    }

    /// Sorted index of the range `find` reports for `q`.
    #[must_use]
    pub fn find_index(&self, q: u64) -> Option<usize> {
        if self.is_empty() {
            return None;
        }
        self.resolve(self.candidate(q), q)
    }

    /// The id of the containing range with the largest start (ties: highest id).
    #[must_use]
    pub fn find(&self, q: u64) -> Option<i64> {
        self.find_index(q).map(|i| self.ids[i])
    }

    /// Whether any range contains `q`.
    #[must_use]
    pub fn contains(&self, q: u64) -> bool {
        self.find_index(q).is_some()
    }

    /// Sorted indices `j` with `starts[j] <= last` and `ends[j] > above`,
    /// rightmost (largest start, then highest id) first.
    fn collect(&self, last: u64, above: u64) -> Vec<usize> {
        let mut out = Vec::new();
        if self.is_empty() {
            return out;
        }
        let i = self.candidate(last);
        if self.starts[i] > last {
            return out;
        }
        if !self.disjoint && self.reach[i] <= above {
            return out;
        }
        let mut pos = i;
        while let Some(j) = self.rightmost_above(pos, above) {
            out.push(j);
            if j == 0 {
                break;
            }
            pos = j - 1;
        }
        out
    }

    /// Ids of every range containing `q`, in the order `find` ranks them.
    #[must_use]
    pub fn find_all(&self, q: u64) -> Vec<i64> {
        self.collect(q, q)
            .into_iter()
            .map(|j| self.ids[j])
            .collect()
    }

    /// Ids of every range meeting `[start, end)`, ranked as `find_all` ranks them.
    pub fn overlapping(&self, start: u64, end: u64) -> Result<Vec<i64>> {
        if start >= end {
            return Err(Error::InvalidRange {
                index: 0,
                start,
                end,
            });
        }
        Ok(self
            .collect(end - 1, start)
            .into_iter()
            .map(|j| self.ids[j])
            .collect())
    }

    /// `find` for every address: the id, or -1 for a miss.
    ///
    /// # Panics
    /// When `out` and `qs` differ in length (the binding checks first).
    pub fn find_many_into(&self, qs: &[u64], out: &mut [i64], parallel: bool) {
        assert_eq!(qs.len(), out.len(), "find_many_into: output length");
        if parallel && qs.len() >= PARALLEL_MIN {
            qs.par_chunks(PARALLEL_CHUNK)
                .zip(out.par_chunks_mut(PARALLEL_CHUNK))
                .for_each(|(q, o)| self.find_many_serial(q, o));
        } else {
            self.find_many_serial(qs, out);
        }
    }

    /// `find` for every address into a new vector.
    #[must_use]
    pub fn find_many(&self, qs: &[u64], parallel: bool) -> Vec<i64> {
        let mut out = vec![0i64; qs.len()];
        self.find_many_into(qs, &mut out, parallel);
        out
    }

    /// `LANES` searches at a time in lock-step: each step issues `LANES`
    /// independent loads, so the core overlaps their latencies instead of
    /// waiting on one dependent chain (the `bs_x16` layout of ivlimit.c).
    fn find_many_serial(&self, qs: &[u64], out: &mut [i64]) {
        if self.is_empty() {
            out.fill(-1);
            return;
        }
        let mut q_chunks = qs.chunks_exact(LANES);
        let mut o_chunks = out.chunks_exact_mut(LANES);
        for (q, o) in (&mut q_chunks).zip(&mut o_chunks) {
            let q: &[u64; LANES] = q.try_into().expect("exact chunk");
            let o: &mut [i64; LANES] = o.try_into().expect("exact chunk");
            let first = if self.len() <= SMALL_SET {
                self.lockstep_predecessors(q)
            } else {
                self.lockstep_table(q)
            };
            for j in 0..LANES {
                o[j] = self.answer(first[j], q[j]);
            }
        }
        for (&q, o) in q_chunks.remainder().iter().zip(o_chunks.into_remainder()) {
            *o = self.answer(self.candidate(q), q);
        }
    }

    /// Candidates of `LANES` queries by branch-free binary search over all
    /// starts. The trip count depends on the tree alone, so the lanes stay in
    /// step and the compiler unrolls the inner loop.
    #[inline(always)]
    fn lockstep_predecessors(&self, q: &[u64; LANES]) -> [usize; LANES] {
        let starts = self.starts.as_slice();
        let mut first = [0usize; LANES];
        let mut len = starts.len();
        while len > 1 {
            let half = len / 2;
            for j in 0..LANES {
                // first[j] + half < first[j] + len <= starts.len().
                let probe = first[j] + half;
                first[j] = std::hint::select_unpredictable(starts[probe] <= q[j], probe, first[j]);
            }
            len -= half;
        }
        first
    }

    /// Candidates of `LANES` queries through the bucket table: each lane gets
    /// its own window, and the lanes take as many steps as this chunk's widest
    /// window needs (a tree-wide maximum would let one dense bucket slow all).
    #[inline(always)]
    fn lockstep_table(&self, q: &[u64; LANES]) -> [usize; LANES] {
        let starts = self.starts.as_slice();
        let mut first = [0usize; LANES];
        let mut len = [0usize; LANES];
        let mut widest = 1usize;
        for j in 0..LANES {
            (first[j], len[j]) = self.table.window(q[j]);
            widest = widest.max(len[j]);
        }
        let steps = usize::BITS - (widest - 1).leading_zeros();
        for _ in 0..steps {
            for j in 0..LANES {
                let half = len[j] / 2;
                let probe = first[j] + half;
                first[j] = std::hint::select_unpredictable(starts[probe] <= q[j], probe, first[j]);
                len[j] -= half;
            }
        }
        first
    }

    /// The id `find` owes for `q` given its candidate, or -1.
    #[inline(always)]
    fn answer(&self, i: usize, q: u64) -> i64 {
        let (s, e) = (self.starts[i], self.ends[i]);
        if s <= q && q < e {
            return self.ids[i];
        }
        if self.disjoint {
            return -1;
        }
        self.resolve(i, q).map_or(-1, |i| self.ids[i])
    }

    /// The kernel's `klp_check_stack` question for many stacks at once.
    ///
    /// Stack `s` is `ips[offsets[s]..offsets[s + 1]]`, innermost frame first.
    /// For each stack, returns the position (within the stack) of the first
    /// frame inside the set and that frame's id, or `(-1, -1)`.
    pub fn first_hit_per_stack(
        &self,
        ips: &[u64],
        offsets: &[u64],
        parallel: bool,
    ) -> Result<(Vec<i64>, Vec<i64>)> {
        check_offsets(offsets, ips.len())?;
        let stacks = offsets.len().saturating_sub(1);
        if stacks == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        let scan = |first_stack: usize, frame: &mut [i64], id: &mut [i64]| {
            let lo = offsets[first_stack] as usize;
            let hi = offsets[first_stack + frame.len()] as usize;
            let hits = self.find_many(&ips[lo..hi], false);
            for s in 0..frame.len() {
                let a = offsets[first_stack + s] as usize - lo;
                let b = offsets[first_stack + s + 1] as usize - lo;
                if let Some(k) = hits[a..b].iter().position(|&h| h >= 0) {
                    frame[s] = k as i64;
                    id[s] = hits[a + k];
                }
            }
        };
        Ok(scan_stacks(stacks, ips.len(), parallel, scan))
    }

    /// [`first_hit_per_stack`](Self::first_hit_per_stack) over an interned
    /// dump: frame `f`'s address is `token_ips[tokens[f]]`, and frames whose
    /// `mask[f]` is false (`?` and inlined frames) are passed over.
    ///
    /// A dump repeats a few thousand distinct frames over millions of lines,
    /// so each token is looked up once and the scan reads one `u32` and one
    /// `bool` per frame instead of an address.
    ///
    /// # Errors
    /// [`Error::InvalidOffsets`] as for `first_hit_per_stack`;
    /// [`Error::LengthMismatch`] when `mask` and `tokens` differ in length or a
    /// token id is not below `token_ips.len()`.
    pub fn first_hit_per_token_stack(
        &self,
        token_ips: &[u64],
        tokens: &[u32],
        mask: Option<&[bool]>,
        offsets: &[u64],
        parallel: bool,
    ) -> Result<(Vec<i64>, Vec<i64>)> {
        check_offsets(offsets, tokens.len())?;
        if let Some(m) = mask {
            if m.len() != tokens.len() {
                return Err(Error::LengthMismatch {
                    what: "mask and tokens",
                    left: m.len(),
                    right: tokens.len(),
                });
            }
        }
        if let Some(index) = tokens.iter().position(|&t| t as usize >= token_ips.len()) {
            return Err(Error::TokenOutOfRange {
                index,
                token: tokens[index],
                tokens: token_ips.len(),
            });
        }
        let token_ids = self.find_many(token_ips, false);
        let stacks = offsets.len().saturating_sub(1);
        let scan = |first_stack: usize, frame: &mut [i64], id: &mut [i64]| {
            for s in 0..frame.len() {
                let lo = offsets[first_stack + s] as usize;
                let hi = offsets[first_stack + s + 1] as usize;
                let hit = (lo..hi)
                    .find(|&f| mask.is_none_or(|m| m[f]) && token_ids[tokens[f] as usize] >= 0);
                if let Some(f) = hit {
                    frame[s] = (f - lo) as i64;
                    id[s] = token_ids[tokens[f] as usize];
                }
            }
        };
        Ok(scan_stacks(stacks, tokens.len(), parallel, scan))
    }
}

/// Runs a per-stack `scan(first_stack, frame, id)` over every stack, filling
/// the `(frame, id)` answers (-1 = no hit): on chunks of stacks holding about
/// `PARALLEL_CHUNK` frames each, in parallel, when asked and worth it.
fn scan_stacks<F>(stacks: usize, frames: usize, parallel: bool, scan: F) -> (Vec<i64>, Vec<i64>)
where
    F: Fn(usize, &mut [i64], &mut [i64]) + Sync,
{
    let mut frame = vec![-1i64; stacks];
    let mut id = vec![-1i64; stacks];
    if parallel && frames >= PARALLEL_MIN && stacks > 1 {
        let per = (stacks * PARALLEL_CHUNK / frames).max(1);
        frame
            .par_chunks_mut(per)
            .zip(id.par_chunks_mut(per))
            .enumerate()
            .for_each(|(c, (f, i))| scan(c * per, f, i));
    } else {
        scan(0, &mut frame, &mut id);
    }
    (frame, id)
}

/// Every range must hold an address, and ids must be non-negative: batch
/// results use -1 for "no range", so a negative id would read as a miss.
fn validate(ranges: &[Range]) -> Result<()> {
    for (index, r) in ranges.iter().enumerate() {
        if r.start >= r.end {
            return Err(Error::InvalidRange {
                index,
                start: r.start,
                end: r.end,
            });
        }
        if r.id < 0 {
            return Err(Error::NegativeId { index, id: r.id });
        }
    }
    Ok(())
}

/// Offsets must partition the frames: non-decreasing, inside the frame
/// array, from 0 to the number of frames (no frame left out of every stack).
/// An empty array is a partition of no frames only.
fn check_offsets(offsets: &[u64], frames: usize) -> Result<()> {
    for (index, &value) in offsets.iter().enumerate() {
        if value > frames as u64 {
            return Err(Error::InvalidOffsets {
                index,
                value,
                reason: "past the end of the frame array",
            });
        }
        if index > 0 && value < offsets[index - 1] {
            return Err(Error::InvalidOffsets {
                index,
                value,
                reason: "below the previous offset",
            });
        }
    }
    if let Some(&first) = offsets.first() {
        if first != 0 {
            return Err(Error::InvalidOffsets {
                index: 0,
                value: first,
                reason: "the first offset must be 0",
            });
        }
    }
    let last = offsets.last().copied();
    if last.unwrap_or(0) != frames as u64 {
        return Err(Error::OffsetsEnd { last, frames });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64, id: i64) -> Range {
        Range { start, end, id }
    }

    /// Brute force: containing ranges ranked by (start, id) descending.
    fn brute_all(ranges: &[Range], q: u64) -> Vec<i64> {
        let mut hits: Vec<&Range> = ranges
            .iter()
            .filter(|x| x.start <= q && q < x.end)
            .collect();
        hits.sort_by_key(|x| std::cmp::Reverse((x.start, x.id)));
        hits.iter().map(|x| x.id).collect()
    }

    /// splitmix64, so the tests need no extra crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn check_against_brute(ranges: &[Range], queries: &[u64]) {
        let tree = IntervalTree::new(ranges.to_vec()).unwrap();
        let many = tree.find_many(queries, false);
        let par = tree.find_many(queries, true);
        for (k, &q) in queries.iter().enumerate() {
            let want = brute_all(ranges, q);
            assert_eq!(tree.find_all(q), want, "find_all({q:#x})");
            assert_eq!(tree.find(q), want.first().copied(), "find({q:#x})");
            assert_eq!(many[k], want.first().copied().unwrap_or(-1));
            assert_eq!(par[k], many[k]);
        }
    }

    #[test]
    fn empty_tree_misses_everything() {
        let tree = IntervalTree::new(vec![]).unwrap();
        assert_eq!(tree.find(0), None);
        assert_eq!(tree.find(u64::MAX), None);
        assert_eq!(tree.find_many(&[0, 5, u64::MAX], false), vec![-1, -1, -1]);
        assert!(tree.find_all(3).is_empty());
        assert!(tree.overlapping(0, u64::MAX).unwrap().is_empty());
    }

    #[test]
    fn inverted_range_names_its_index() {
        let err = IntervalTree::new(vec![r(0, 5, 0), r(9, 9, 1)]).unwrap_err();
        assert_eq!(
            err,
            Error::InvalidRange {
                index: 1,
                start: 9,
                end: 9
            }
        );
    }

    #[test]
    fn negative_ids_are_refused_because_minus_one_means_miss() {
        let err = IntervalTree::new(vec![r(0, 5, 0), r(6, 9, -1)]).unwrap_err();
        assert_eq!(err, Error::NegativeId { index: 1, id: -1 });
        let tree = IntervalTree::new(vec![r(0, 5, 0)]).unwrap();
        assert!(matches!(
            tree.with_ranges(vec![r(7, 8, -3)]),
            Err(Error::NegativeId { index: 0, id: -3 })
        ));
    }

    #[test]
    fn edges_of_disjoint_ranges() {
        let ranges = vec![
            r(10, 20, 1),
            r(20, 30, 2),
            r(40, 41, 3),
            r(u64::MAX - 1, u64::MAX, 4),
        ];
        let mut qs = vec![0, u64::MAX, u64::MAX - 2];
        for x in &ranges {
            qs.extend([x.start.saturating_sub(1), x.start, x.end - 1, x.end]);
        }
        check_against_brute(&ranges, &qs);
        let tree = IntervalTree::new(ranges).unwrap();
        assert!(tree.is_disjoint());
        assert_eq!(tree.find(19), Some(1));
        assert_eq!(tree.find(20), Some(2));
        assert_eq!(tree.find(30), None);
    }

    #[test]
    fn stacked_patches_prefer_the_newest_id() {
        // The same function patched three times, plus a nested new version.
        let ranges = vec![
            r(100, 200, 1),
            r(100, 200, 3),
            r(100, 200, 2),
            r(150, 160, 0),
        ];
        let tree = IntervalTree::new(ranges.clone()).unwrap();
        assert!(!tree.is_disjoint());
        assert_eq!(tree.find(120), Some(3));
        assert_eq!(tree.find(155), Some(0));
        assert_eq!(tree.find_all(155), vec![0, 3, 2, 1]);
        assert_eq!(tree.overlapping(159, 161).unwrap(), vec![0, 3, 2, 1]);
        assert_eq!(tree.overlapping(160, 161).unwrap(), vec![3, 2, 1]);
        check_against_brute(&ranges, &[99, 100, 149, 150, 159, 160, 199, 200]);
    }

    #[test]
    fn deep_nesting_is_exact() {
        // [i, 2n - i): each range nests in the one before; the tree must skip
        // whole blocks whose ends are too small.
        let n = 5000u64;
        let ranges: Vec<Range> = (0..n).map(|i| r(i, 2 * n - i, i as i64)).collect();
        let qs: Vec<u64> = (0..2 * n + 2).step_by(7).collect();
        check_against_brute(&ranges, &qs);
    }

    #[test]
    fn random_sets_match_brute_force() {
        let mut rng = Rng(7);
        for round in 0..60 {
            let n = rng.below(300) as usize;
            let span = if round % 2 == 0 {
                1 << 12
            } else {
                u64::MAX / 2
            };
            let ranges: Vec<Range> = (0..n)
                .map(|i| {
                    let s = rng.below(span);
                    let len = 1 + rng.below(if round % 3 == 0 { span / 4 } else { 64 });
                    r(s, s.saturating_add(len).max(s + 1), (i % 17) as i64)
                })
                .collect();
            let mut qs: Vec<u64> = (0..200).map(|_| rng.below(span)).collect();
            for x in &ranges {
                qs.extend([x.start.saturating_sub(1), x.start, x.end - 1, x.end]);
            }
            check_against_brute(&ranges, &qs);
            let tree = IntervalTree::new(ranges.clone()).unwrap();
            for _ in 0..50 {
                let a = rng.below(span);
                let b = a + 1 + rng.below(1000);
                let mut want: Vec<&Range> =
                    ranges.iter().filter(|x| x.start < b && x.end > a).collect();
                want.sort_by_key(|x| std::cmp::Reverse((x.start, x.id)));
                let want: Vec<i64> = want.iter().map(|x| x.id).collect();
                assert_eq!(tree.overlapping(a, b).unwrap(), want);
            }
        }
    }

    #[test]
    fn clustered_starts_far_apart_still_resolve() {
        // Kernel text and modules sit ~1 GiB apart: wide buckets, long windows.
        let mut ranges = Vec::new();
        for i in 0..3000u64 {
            ranges.push(r(
                0xffff_ffff_8100_0000 + i * 64,
                0xffff_ffff_8100_0000 + i * 64 + 48,
                i as i64,
            ));
        }
        for i in 0..50u64 {
            ranges.push(r(
                0xffff_ffff_c000_0000 + i * 256,
                0xffff_ffff_c000_0000 + i * 256 + 200,
                10_000 + i as i64,
            ));
        }
        let qs: Vec<u64> = ranges
            .iter()
            .flat_map(|x| [x.start - 1, x.start, x.end - 1, x.end])
            .collect();
        check_against_brute(&ranges, &qs);
    }

    #[test]
    fn derived_trees_add_and_remove() {
        let tree = IntervalTree::new(vec![r(0, 10, 1), r(20, 30, 2)]).unwrap();
        let more = tree.with_ranges(vec![r(5, 25, 3)]).unwrap();
        assert_eq!(more.find_all(7), vec![3, 1]);
        let less = more.without_ids(&[1, 3]);
        assert_eq!(less.find(7), None);
        assert_eq!(less.find(21), Some(2));
        assert!(less.is_disjoint());
        assert_eq!(tree.len(), 2, "the original is unchanged");
        assert!(matches!(
            tree.with_ranges(vec![r(4, 3, 9)]),
            Err(Error::InvalidRange { index: 0, .. })
        ));
    }

    #[test]
    fn token_scan_equals_the_address_scan_of_the_gathered_frames() {
        let tree = IntervalTree::new(vec![r(100, 200, 7), r(150, 160, 9), r(300, 400, 2)]).unwrap();
        let token_ips = [5u64, 155, 120, 350, 0, 199];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for parallel in [false, true] {
            for frames in [0usize, 7, 5000, 300_000] {
                let tokens: Vec<u32> = (0..frames).map(|_| next(6) as u32).collect();
                let mask: Vec<bool> = (0..frames).map(|_| next(4) != 0).collect();
                let mut offsets = vec![0u64];
                while (*offsets.last().unwrap() as usize) < frames {
                    let step = next(9).min((frames as u64) - offsets.last().unwrap());
                    offsets.push(offsets.last().unwrap() + step);
                }
                let masked: Vec<u64> = tokens
                    .iter()
                    .zip(&mask)
                    .map(|(&t, &m)| if m { token_ips[t as usize] } else { 0 })
                    .collect();
                let want = tree.first_hit_per_stack(&masked, &offsets, false).unwrap();
                let got = tree
                    .first_hit_per_token_stack(&token_ips, &tokens, Some(&mask), &offsets, parallel)
                    .unwrap();
                assert_eq!(got, want, "{frames} frames, parallel={parallel}");
                let gathered: Vec<u64> = tokens.iter().map(|&t| token_ips[t as usize]).collect();
                assert_eq!(
                    tree.first_hit_per_token_stack(&token_ips, &tokens, None, &offsets, parallel)
                        .unwrap(),
                    tree.first_hit_per_stack(&gathered, &offsets, false)
                        .unwrap()
                );
            }
        }
    }

    #[test]
    fn token_scan_refuses_bad_tokens_masks_and_offsets() {
        let tree = IntervalTree::new(vec![r(100, 200, 7)]).unwrap();
        let ips = [150u64, 5];
        assert_eq!(
            tree.first_hit_per_token_stack(&ips, &[0, 2], None, &[0, 2], false),
            Err(Error::TokenOutOfRange {
                index: 1,
                token: 2,
                tokens: 2
            })
        );
        assert!(matches!(
            tree.first_hit_per_token_stack(&ips, &[0, 1], Some(&[true]), &[0, 2], false),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(matches!(
            tree.first_hit_per_token_stack(&ips, &[0, 1], None, &[0, 3], false),
            Err(Error::InvalidOffsets { .. })
        ));
        assert_eq!(
            tree.first_hit_per_token_stack(&ips, &[1, 0], Some(&[true, false]), &[0, 2], false),
            Ok((vec![-1], vec![-1]))
        );
    }

    #[test]
    fn first_hit_per_stack_reports_position_and_id() {
        let tree = IntervalTree::new(vec![r(100, 200, 7), r(300, 400, 8)]).unwrap();
        let ips = [1, 2, 150, 350, /* */ 5, /* */ 350, 150];
        let offsets = [0, 4, 5, 5, 7];
        let (frame, id) = tree.first_hit_per_stack(&ips, &offsets, false).unwrap();
        assert_eq!(frame, vec![2, -1, -1, 0]);
        assert_eq!(id, vec![7, -1, -1, 8]);
        assert!(matches!(
            tree.first_hit_per_stack(&ips, &[0, 3, 2], false),
            Err(Error::InvalidOffsets { index: 2, .. })
        ));
        assert!(matches!(
            tree.first_hit_per_stack(&ips, &[0, 8], false),
            Err(Error::InvalidOffsets { index: 1, .. })
        ));
    }

    #[test]
    fn offsets_must_cover_every_frame_from_zero() {
        let tree = IntervalTree::new(vec![r(100, 200, 7)]).unwrap();
        let ips = [150u64, 5, 7];
        assert!(matches!(
            tree.first_hit_per_stack(&ips, &[1, 3], false),
            Err(Error::InvalidOffsets {
                index: 0,
                value: 1,
                ..
            })
        ));
        for (offsets, last) in [(&[0u64, 2][..], Some(2)), (&[][..], None)] {
            assert_eq!(
                tree.first_hit_per_stack(&ips, offsets, false),
                Err(Error::OffsetsEnd { last, frames: 3 })
            );
        }
        assert_eq!(
            tree.first_hit_per_stack(&[], &[], false),
            Ok((vec![], vec![]))
        );
        assert_eq!(
            tree.first_hit_per_stack(&[], &[0], false),
            Ok((vec![], vec![]))
        );
        assert!(tree.first_hit_per_stack(&ips, &[0, 0, 3, 3], true).is_ok());
    }

    #[test]
    fn parallel_stack_scan_matches_serial() {
        let mut rng = Rng(11);
        let ranges: Vec<Range> = (0..1000)
            .map(|i| r(i * 1000, i * 1000 + 300, i as i64))
            .collect();
        let tree = IntervalTree::new(ranges).unwrap();
        let stacks = 20_000usize;
        let mut offsets = vec![0u64];
        let mut ips = Vec::new();
        for _ in 0..stacks {
            let depth = rng.below(12);
            for _ in 0..depth {
                ips.push(rng.below(1_000_000));
            }
            offsets.push(ips.len() as u64);
        }
        let serial = tree.first_hit_per_stack(&ips, &offsets, false).unwrap();
        let parallel = tree.first_hit_per_stack(&ips, &offsets, true).unwrap();
        assert_eq!(serial, parallel);
    }
}
