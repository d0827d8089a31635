//! The public surface of `IntervalTree` that the unit tests leave unchecked:
//! the sorted columns, input validation of `from_arrays`, and `nbytes`.
//! Written to kill cargo-mutants survivors (see docs/testing.md); every test
//! sits in `mod intervals` so that `cargo mutants ... -- -- intervals symbols`
//! runs it.

mod intervals {
    use lpc_core::{Error, IntervalTree, Range};

    fn r(start: u64, end: u64, id: i64) -> Range {
        Range { start, end, id }
    }

    #[test]
    fn columns_are_sorted_by_start_then_id() {
        let tree = IntervalTree::new(vec![
            r(0x3000, 0x3100, 7),
            r(0x1000, 0x1800, 9),
            r(0x1000, 0x1200, 2),
            r(0x2000, 0x2400, 5),
        ])
        .unwrap();
        assert_eq!(tree.starts(), &[0x1000, 0x1000, 0x2000, 0x3000]);
        assert_eq!(tree.ends(), &[0x1200, 0x1800, 0x2400, 0x3100]);
        assert_eq!(tree.ids(), &[2, 9, 5, 7]);
        assert_eq!(tree.len(), 4);
        assert!(!tree.is_disjoint());
        let ranges = tree.ranges();
        assert_eq!(ranges[1], r(0x1000, 0x1800, 9));
        // The columns round-trip through from_arrays.
        let again =
            IntervalTree::from_arrays(tree.starts(), tree.ends(), Some(tree.ids())).unwrap();
        assert_eq!(again.ranges(), ranges);
    }

    #[test]
    fn contains_is_find_is_some() {
        let tree = IntervalTree::from_arrays(&[10, 20], &[15, 30], None).unwrap();
        for q in [0, 9, 10, 14, 15, 19, 20, 29, 30, u64::MAX] {
            assert_eq!(tree.contains(q), tree.find(q).is_some(), "q = {q}");
        }
        assert!(tree.contains(10) && tree.contains(29) && !tree.contains(15));
        assert!(!IntervalTree::new(Vec::new()).unwrap().contains(10));
    }

    #[test]
    fn from_arrays_checks_every_length() {
        let tree = IntervalTree::from_arrays(&[10, 20], &[15, 30], Some(&[4, 3])).unwrap();
        assert_eq!(tree.ids(), &[4, 3]);
        assert_eq!(tree.find(12), Some(4));
        let positions = IntervalTree::from_arrays(&[20, 10], &[30, 15], None).unwrap();
        assert_eq!(positions.ids(), &[1, 0]);
        match IntervalTree::from_arrays(&[10, 20], &[15], None) {
            Err(Error::LengthMismatch { what, left, right }) => {
                assert_eq!((what, left, right), ("starts and ends", 2, 1));
            }
            other => panic!("expected a length mismatch, got {other:?}"),
        }
        match IntervalTree::from_arrays(&[10, 20], &[15, 30], Some(&[1, 2, 3])) {
            Err(Error::LengthMismatch { what, left, right }) => {
                assert_eq!((what, left, right), ("starts and ids", 2, 3));
            }
            other => panic!("expected a length mismatch, got {other:?}"),
        }
    }

    /// Heap bytes of three disjoint ranges, counted by hand: three columns of
    /// three words, no running max (disjoint), one max-end level of one word,
    /// and a bucket table of 4 u32 slots (base 0x1000, last start 0x2000
    /// above it: 2^12-byte buckets, 3 of them, plus the end slot).
    #[test]
    fn nbytes_counts_every_buffer() {
        let disjoint =
            IntervalTree::from_arrays(&[0x1000, 0x2000, 0x3000], &[0x1100, 0x2100, 0x3100], None)
                .unwrap();
        assert!(disjoint.is_disjoint());
        assert_eq!(disjoint.nbytes(), (3 + 3 + 3 + 1) * 8 + 4 * 4);
        // Overlapping: the running max of ends adds at least one word per range
        // (its buffer may be a little larger: it is collected from a scan).
        let nested =
            IntervalTree::from_arrays(&[0x1000, 0x1010, 0x3000], &[0x2800, 0x1020, 0x3100], None)
                .unwrap();
        assert!(!nested.is_disjoint());
        assert!(nested.nbytes() >= (3 + 3 + 3 + 3 + 1) * 8 + 4 * 4);
        assert!(nested.nbytes() <= (3 + 3 + 3 + 8 + 1) * 8 + 4 * 4);
        assert_eq!(IntervalTree::new(Vec::new()).unwrap().nbytes(), 0);
    }

    /// Every range of a long, nested set is found where a brute force finds
    /// it: the max-end tree climbs levels (more than FANOUT^2 ranges).
    #[test]
    fn deep_nesting_matches_brute_force() {
        let mut ranges = vec![r(0, 1 << 40, 10_000)];
        for i in 0..600u64 {
            ranges.push(r(1000 + i * 100, 1000 + i * 100 + 50, i as i64));
        }
        let tree = IntervalTree::new(ranges.clone()).unwrap();
        for q in [
            0,
            999,
            1000,
            1049,
            1050,
            30_000,
            60_949,
            60_950,
            1 << 39,
            (1 << 40) - 1,
            1 << 40,
        ] {
            let want = ranges
                .iter()
                .filter(|x| x.start <= q && q < x.end)
                .max_by_key(|x| (x.start, x.id))
                .map(|x| x.id);
            assert_eq!(tree.find(q), want, "q = {q}");
            let mut all: Vec<&Range> = ranges
                .iter()
                .filter(|x| x.start <= q && q < x.end)
                .collect();
            all.sort_by_key(|x| std::cmp::Reverse((x.start, x.id)));
            assert_eq!(
                tree.find_all(q),
                all.iter().map(|x| x.id).collect::<Vec<_>>()
            );
        }
    }
}
