//! The public surface of `lpc_core::symbols`, checked on a small kallsyms
//! text whose every column is worked out by hand. Written to kill
//! cargo-mutants survivors (see docs/testing.md); every test sits in
//! `mod symbols` so that `cargo mutants ... -- -- intervals symbols` runs it.

mod symbols {
    use lpc_core::symbols::{
        compiler_parent, is_marker_name, is_padding_name, is_text_type, parse_kallsyms,
        parse_system_map, NameIndex, SymbolKind, SymbolTable, NO_MODULE, NO_SYMBOL,
    };

    const TEXT: &str = "\
# recorded by hand
ffffffff81000000 T _stext
ffffffff81000000 T start_kernel
ffffffff81000000 T start_alias
ffffffff810000f0 t __pfx_helper
ffffffff81000100 t helper
ffffffff81000140 t helper.cold
ffffffff81000180 t dup
ffffffff810001c0 t dup
ffffffff81000200 T __sched_text_start
ffffffff81000200 T schedule
ffffffff81000280 T __sched_text_end
ffffffff81000280 T __lock_text_start
ffffffff81000280 T _raw_spin_lock
ffffffff810002c0 T __lock_text_end
ffffffff810002c0 T _etext
0000000000000000 t zero_fn
ffffffff82000000 D some_data
this line is not a symbol
ffffffffc0001000 t dup\t[ext4 0123456789abcdef0123456789abcdef01234567]
ffffffffc0001100 t mod_last\t[ext4 0123456789abcdef0123456789abcdef01234567]
ffffffffc0002010 t other_fn\t[nfs]
";

    fn table() -> SymbolTable {
        parse_kallsyms(TEXT.as_bytes()).expect("parses")
    }

    fn row(t: &SymbolTable, name: &str, nth: usize) -> usize {
        (0..t.len())
            .filter(|&i| t.name(i) == name)
            .nth(nth)
            .unwrap_or_else(|| panic!("no {name} #{nth}"))
    }

    #[test]
    fn reads_every_line_and_reports_the_rest() {
        let t = table();
        assert_eq!(t.len(), 20);
        assert!(!t.is_empty());
        assert_eq!(t.comment_lines, 1);
        assert_eq!(t.malformed_lines, 1);
        assert_eq!(t.malformed_samples.len(), 1);
        assert_eq!(t.malformed_samples[0].0, 19);
        assert!(t.malformed_samples[0]
            .1
            .contains("this line is not a symbol"));
        assert_eq!(t.zero_address_text, 1);
        assert_eq!(t.modules, ["ext4", "nfs"]);
        assert_eq!(
            t.module_build_ids,
            [
                Some("0123456789abcdef0123456789abcdef01234567".to_owned()),
                None
            ]
        );
        assert_eq!(t.line[row(&t, "start_kernel", 0)], 3);
        assert_eq!(t.module_name(row(&t, "other_fn", 0)), Some("nfs"));
        assert_eq!(t.module_name(row(&t, "helper", 0)), None);
        assert_eq!(t.module[row(&t, "helper", 0)], NO_MODULE);
    }

    #[test]
    fn kinds_sizes_and_ranges() {
        let t = table();
        let kind = |name: &str| t.kind[row(&t, name, 0)];
        assert_eq!(kind("_stext"), SymbolKind::Marker);
        assert_eq!(kind("__pfx_helper"), SymbolKind::Padding);
        assert_eq!(kind("helper"), SymbolKind::Function);
        assert_eq!(kind("some_data"), SymbolKind::Data);
        assert_eq!(kind("zero_fn"), SymbolKind::Ignored);
        let size = |name: &str, nth: usize| t.size[row(&t, name, nth)];
        // Each function ends where the next symbol with a higher address starts,
        // padding and markers included (kernel/kallsyms.c get_symbol_pos).
        assert_eq!(size("start_kernel", 0), 0xf0);
        assert_eq!(size("start_alias", 0), 0xf0);
        assert_eq!(size("helper", 0), 0x40);
        assert_eq!(size("dup", 1), 0x40);
        assert_eq!(size("schedule", 0), 0x80);
        assert_eq!(size("_raw_spin_lock", 0), 0x40);
        // A module's symbols end at the next one of the module; its last one
        // at the next page boundary, flagged as a bound.
        assert_eq!(size("dup", 2), 0x100);
        assert!(t.size_exact[row(&t, "dup", 2)]);
        assert_eq!(size("mod_last", 0), 0xf00);
        assert!(!t.size_exact[row(&t, "mod_last", 0)]);
        assert_eq!(size("other_fn", 0), 0xff0);
        assert!(!t.size_exact[row(&t, "other_fn", 0)]);
        assert_eq!(
            t.sched_text,
            Some((0xffff_ffff_8100_0200, 0xffff_ffff_8100_0280))
        );
        assert_eq!(
            t.lock_text,
            Some((0xffff_ffff_8100_0280, 0xffff_ffff_8100_02c0))
        );
        let functions: Vec<&str> = t.functions.iter().map(|&i| t.name(i as usize)).collect();
        assert_eq!(
            functions,
            [
                "start_kernel",
                "start_alias",
                "helper",
                "helper.cold",
                "dup",
                "dup",
                "schedule",
                "_raw_spin_lock",
                "dup",
                "mod_last",
                "other_fn"
            ]
        );
        assert!(t.primary[row(&t, "start_kernel", 0)]);
        assert!(!t.primary[row(&t, "start_alias", 0)]);
        assert!(t.primary[row(&t, "dup", 2)]);
    }

    #[test]
    fn positions_counts_and_name_chains() {
        let t = table();
        let (d0, d1, d2) = (row(&t, "dup", 0), row(&t, "dup", 1), row(&t, "dup", 2));
        // sympos and name_count are per object: the module's dup is alone there.
        assert_eq!((t.sympos[d0], t.sympos[d1], t.sympos[d2]), (1, 2, 1));
        assert_eq!(
            (t.name_count[d0], t.name_count[d1], t.name_count[d2]),
            (2, 2, 1)
        );
        assert_eq!(t.sympos[row(&t, "helper", 0)], 1);
        assert_eq!(t.name_count[row(&t, "helper", 0)], 1);
        // prev_same_name chains every holder of a name, any object.
        assert_eq!(t.prev_same_name[d2], d1 as u32);
        assert_eq!(t.prev_same_name[d1], d0 as u32);
        assert_eq!(t.prev_same_name[d0], NO_SYMBOL);
        assert_eq!(t.parent_len[row(&t, "helper.cold", 0)], 6);
        assert_eq!(t.parent_len[row(&t, "helper", 0)], 0);
        let index = NameIndex::new(&t);
        assert_eq!(index.rows(&t, "dup"), [d0 as u32, d1 as u32, d2 as u32]);
        assert_eq!(index.last_row(&t, "dup"), Some(d2 as u32));
        assert_eq!(index.rows(&t, "helper"), [row(&t, "helper", 0) as u32]);
        assert_eq!(index.rows(&t, "absent"), Vec::<u32>::new());
        assert_eq!(index.last_row(&t, "absent"), None);
        // Every name of the table is found, at every row it has.
        for i in 0..t.len() {
            assert!(
                index.rows(&t, t.name(i)).contains(&(i as u32)),
                "{}",
                t.name(i)
            );
        }
        let empty = SymbolTable::default();
        assert_eq!(NameIndex::new(&empty).last_row(&empty, "x"), None);
    }

    #[test]
    fn system_map_has_no_modules() {
        let t = parse_system_map(
            b"ffffffff81000000 T _stext\nffffffff81000000 T start_kernel\nffffffff81000100 T _etext\n",
        )
        .unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t.size[1], 0x100);
        assert!(t.modules.is_empty());
        assert!(parse_system_map(b"ffffffff81000000 T f\t[mod]\n").is_err());
    }

    /// Only `0-9a-fA-F` are hex digits: each neighbour of those ranges in
    /// ASCII makes the address, and so the line, malformed.
    #[test]
    fn addresses_take_hex_digits_only() {
        let good = parse_kallsyms(b"ffffffff8100000a T a\nFFFFFFFF8100000F T b\n").unwrap();
        assert_eq!(good.address, [0xffff_ffff_8100_000a, 0xffff_ffff_8100_000f]);
        assert_eq!(good.malformed_lines, 0);
        for bad in [b'/', b':', b'@', b'G', b'`', b'g'] {
            let mut text = b"ffffffff81000000 T ok\nffffffff8100000".to_vec();
            text.push(bad);
            text.extend_from_slice(b" T bad\n");
            let t = parse_kallsyms(&text).unwrap();
            assert_eq!((t.len(), t.malformed_lines), (1, 1), "{}", bad as char);
        }
    }

    /// The line grammar's edges: leading blanks and short addresses take the
    /// general path, `?` is a type letter and a digit is not, and `[...]`
    /// holds a module name and at most a hex build id.
    #[test]
    fn line_grammar_edges() {
        let t = parse_kallsyms(b" fffffffff100000 T spaced\nffffffff81000100 ? odd\n").unwrap();
        assert_eq!(t.malformed_lines, 0);
        assert_eq!(t.address[0], 0x0fff_ffff_ff10_0000);
        assert_eq!(t.name(0), "spaced");
        assert_eq!((t.type_letter[1], t.kind[1]), (b'?', SymbolKind::Ignored));
        for bad in [
            &b"ffffffff81000200 1 digit_type"[..],
            b"ffffffff81000200 T f\t[ext4 0123abcd extra]",
            b"ffffffff81000200 T f\t[ext[4]",
            b"ffffffff81000200 T f\t[ext4 xyz]",
            b"ffffffff81000200 T f\t[]",
            b"ffffffff81000200 TT f",
        ] {
            let mut text = b"ffffffff81000000 T ok\n".to_vec();
            text.extend_from_slice(bad);
            text.push(b'\n');
            let t = parse_kallsyms(&text).unwrap();
            assert_eq!(
                (t.len(), t.malformed_lines),
                (1, 1),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// Absolute, undefined and debugging symbols and ELF mapping symbols
    /// (`$x`, `.L*`, `L0`) are not in the kernel's table: they neither count
    /// as functions nor end the function before them.
    #[test]
    fn ignored_symbols_do_not_end_a_function() {
        let t = parse_kallsyms(
            b"ffffffff81000000 T f\n\
              ffffffff81000010 A abs_sym\n\
              ffffffff81000014 U undef_sym\n\
              ffffffff81000018 N debug_sym\n\
              ffffffff8100001c t $x\n\
              ffffffff81000020 t .L_local\n\
              ffffffff81000024 t L0_tmp\n\
              ffffffff81000040 T g\n\
              ffffffff81000080 T _etext\n",
        )
        .unwrap();
        assert_eq!(t.size[0], 0x40);
        for i in 1..7 {
            assert_eq!(t.kind[i], SymbolKind::Ignored, "{}", t.name(i));
        }
        assert_eq!(t.kind[7], SymbolKind::Function);
        let functions: Vec<&str> = t.functions.iter().map(|&i| t.name(i as usize)).collect();
        assert_eq!(functions, ["f", "g"]);
        // A data symbol is in the table: it does end the function before it.
        let d = parse_kallsyms(
            b"ffffffff81000000 T f\nffffffff81000010 r f_table\nffffffff81000040 T _etext\n",
        )
        .unwrap();
        assert_eq!((d.size[0], d.kind[1]), (0x10, SymbolKind::Data));
    }

    /// In a module, data lives in other allocations: a function followed by
    /// a data symbol gets a bound (the next symbol anywhere, at most the page
    /// boundary), flagged as not exact, even when a text symbol comes later.
    #[test]
    fn a_module_function_before_module_data_is_bounded() {
        let t = parse_kallsyms(
            b"ffffffffc0001000 t f\t[m]\n\
              ffffffffc0001100 d f_data\t[m]\n\
              ffffffffc0003000 t g\t[m]\n",
        )
        .unwrap();
        assert_eq!(t.size[0], 0x100);
        assert!(!t.size_exact[0]);
        assert_eq!(t.kind[1], SymbolKind::Data);
    }

    #[test]
    fn classification_helpers() {
        for letter in *b"tTwW" {
            assert!(is_text_type(letter));
        }
        for letter in *b"dDbBrRvVaAuU?" {
            assert!(!is_text_type(letter));
        }
        assert!(is_padding_name("__pfx_schedule") && is_padding_name("__cfi_schedule"));
        assert!(!is_padding_name("schedule") && !is_padding_name("pfx_schedule"));
        for marker in [
            "_text",
            "_stext",
            "_etext",
            "_sinittext",
            "_einittext",
            "__sched_text_start",
            "__sched_text_end",
            "__pi__stext",
            "__lock_text_start",
            "__irqentry_text_end",
        ] {
            assert!(is_marker_name(marker), "{marker}");
        }
        for name in [
            "__text_start",
            "___text_end",
            "__sched_text",
            "sched_text_start",
            "__sched-x_text_start",
            "_textx",
            "start_kernel",
        ] {
            assert!(!is_marker_name(name), "{name}");
        }
    }

    #[test]
    fn compiler_parts() {
        assert_eq!(compiler_parent("foo.cold"), Some(("foo", "cold")));
        assert_eq!(compiler_parent("foo.cold.3"), Some(("foo", "cold")));
        assert_eq!(
            compiler_parent("foo.isra.0.cold"),
            Some(("foo.isra.0", "cold"))
        );
        assert_eq!(compiler_parent("foo.part.12"), Some(("foo", "part")));
        assert_eq!(compiler_parent("foo.isra.0"), Some(("foo", "isra")));
        assert_eq!(
            compiler_parent("foo.constprop.1"),
            Some(("foo", "constprop"))
        );
        assert_eq!(compiler_parent("foo.llvm.123456"), Some(("foo", "llvm")));
        for plain in [
            "foo",
            ".cold",
            "foo.cold.",
            "foo.3",
            "foo.bar.3",
            ".isra.0",
            "foo.isra.x1",
            "ext4",
            "foo.isra.",
        ] {
            assert_eq!(compiler_parent(plain), None, "{plain}");
        }
    }
}
