//! The format registry: one table ([`FORMATS`]) says, for every format, its
//! stable name, how it is recognised, how it is parsed, and whether it can be
//! parsed in chunks on several threads; detection and [`parse`] read it.

use super::{bpftrace, crash, drgn, eustack, gdb, perf};
use super::{dmesg, lines, procsnap, procstack};
use super::{Dump, DumpBuilder};
use crate::error::{Error, Result};

/// The text formats lpc reads. Each one's entry in [`FORMATS`] is at index
/// `format as usize`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `lpc capture`'s recorded form: `# pid=.. tid=.. comm=.. state=..` blocks.
    ProcSnapshot,
    /// One `/proc/PID/stack` file (`[<0>] sym+off/size` or real addresses).
    ProcStack,
    /// dmesg `show_state()` / SysRq-t / hung-task / RCU-stall reports.
    Dmesg,
    /// crash `bt` / `foreach bt`.
    Crash,
    /// `perf script` callchains.
    PerfScript,
    /// bpftrace `kstack` output.
    Bpftrace,
    /// gdb `thread apply all bt`.
    Gdb,
    /// elfutils `eu-stack`.
    EuStack,
    /// drgn's `StackTrace` text.
    Drgn,
}

/// How a format is parsed on several threads.
#[derive(Clone, Copy)]
pub(crate) struct Chunked {
    /// Cuts the bytes into about `parts` chunks, each starting at a task boundary.
    pub(crate) split: fn(&[u8], usize) -> Vec<&[u8]>,
    /// Parses each chunk on its own thread and merges them in order (the
    /// second argument is the whole input's length, for reservations);
    /// `None` when a chunk is not UTF-8.
    pub(crate) parse: fn(&[&[u8]], usize) -> Option<Dump>,
    /// Reads and parses a regular file piece by piece, one chunk per thread
    /// (`file, size, threads, piece`), never holding it whole; `Ok(None)`
    /// when that cannot be done and the file must be read whole.
    pub(crate) file: Option<FileChunks>,
}

/// See [`Chunked::file`].
pub(crate) type FileChunks = fn(&std::fs::File, u64, usize, usize) -> std::io::Result<Option<Dump>>;

/// One format of the registry.
#[derive(Clone, Copy)]
pub(crate) struct FormatSpec {
    pub(crate) format: Format,
    /// The stable name used by the Python API and the CLI.
    pub(crate) name: &'static str,
    /// Whether a text looks like this format (detection).
    pub(crate) looks_like: fn(&str) -> bool,
    /// The sequential parser.
    pub(crate) parse: fn(&str, &mut DumpBuilder),
    /// The multi-threaded parse, for formats that can be cut at task boundaries.
    pub(crate) chunked: Option<Chunked>,
}

const fn spec(
    format: Format,
    name: &'static str,
    looks_like: fn(&str) -> bool,
    parse: fn(&str, &mut DumpBuilder),
) -> FormatSpec {
    FormatSpec {
        format,
        name,
        looks_like,
        parse,
        chunked: None,
    }
}

/// Every format, in auto-detection priority order (the order of the enum):
/// the first whose `looks_like` accepts the text wins, so the specific
/// formats come before the forgiving ones.
pub(crate) const FORMATS: [FormatSpec; 9] = [
    FormatSpec {
        chunked: Some(Chunked {
            split: procsnap::split_at_headers,
            parse: procsnap::parse_chunks,
            file: Some(procsnap::parse_file_chunks),
        }),
        ..spec(
            Format::ProcSnapshot,
            "proc_snapshot",
            procsnap::looks_like,
            procsnap::parse,
        )
    },
    spec(
        Format::ProcStack,
        "proc_stack",
        procstack::looks_like,
        procstack::parse,
    ),
    FormatSpec {
        chunked: Some(Chunked {
            split: dmesg::split_at_task_headers,
            parse: dmesg::parse_chunks,
            file: None,
        }),
        ..spec(Format::Dmesg, "dmesg", dmesg::looks_like, dmesg::parse)
    },
    spec(Format::Crash, "crash", crash::looks_like, crash::parse),
    spec(
        Format::PerfScript,
        "perf_script",
        perf::looks_like,
        perf::parse,
    ),
    spec(
        Format::Bpftrace,
        "bpftrace",
        bpftrace::looks_like,
        bpftrace::parse,
    ),
    spec(Format::Gdb, "gdb", gdb::looks_like, gdb::parse),
    spec(
        Format::EuStack,
        "eu_stack",
        eustack::looks_like,
        eustack::parse,
    ),
    spec(Format::Drgn, "drgn", drgn::looks_like, drgn::parse),
];

impl Format {
    /// Every format, in auto-detection priority order (read from [`FORMATS`]).
    pub const ALL: [Format; FORMATS.len()] = {
        let mut all = [Format::ProcSnapshot; FORMATS.len()];
        let mut i = 0;
        while i < all.len() {
            // The registry is indexed by the enum: a misplaced entry fails the build.
            assert!(FORMATS[i].format as usize == i, "FORMATS out of enum order");
            all[i] = FORMATS[i].format;
            i += 1;
        }
        all
    };

    /// This format's registry entry.
    #[must_use]
    pub(crate) fn spec(self) -> &'static FormatSpec {
        &FORMATS[self as usize]
    }

    /// The stable name used by the Python API and the CLI.
    #[must_use]
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The format with this stable name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Format> {
        FORMATS.iter().find(|s| s.name == name).map(|s| s.format)
    }
}

/// How much text detection looks at first: enough for every header, small
/// enough that a 1 GB dump is not scanned twice.
pub(crate) const DETECT_WINDOW: usize = 256 * 1024;

/// The parser of `format`, when this build has one.
pub(crate) fn parser_for(format: Format) -> Option<&'static FormatSpec> {
    FORMATS.iter().find(|s| s.format == format)
}

/// The formats whose parser is compiled in, in detection order.
#[must_use]
pub fn available_formats() -> Vec<Format> {
    FORMATS.iter().map(|s| s.format).collect()
}

/// The first format, in detection order, whose `looks_like` accepts `text`.
fn first_match(text: &str) -> Option<Format> {
    FORMATS
        .iter()
        .find(|s| (s.looks_like)(text))
        .map(|s| s.format)
}

/// The format of a dump, or `None` when no parser recognises it.
///
/// Looks at the first [`DETECT_WINDOW`] bytes (cut at a line end) first and at
/// the whole text only when that finds nothing, so that a dmesg whose first
/// trace comes after a long boot log is still recognised.
#[must_use]
pub fn detect(text: &str) -> Option<Format> {
    let head = lines::head(text, DETECT_WINDOW);
    let found = first_match(head);
    if found.is_some() || head.len() == text.len() {
        return found;
    }
    first_match(text)
}

/// The format detected in the first [`DETECT_WINDOW`] bytes of a dump, if
/// they are UTF-8 and some parser recognises them.
pub(crate) fn detect_head(data: &[u8]) -> Option<Format> {
    let head = std::str::from_utf8(lines::head_bytes(data, DETECT_WINDOW)).ok()?;
    first_match(head)
}

/// Parses a dump in `format`, or in the detected format when `None`.
///
/// Malformed lines never fail the parse: they are counted in
/// [`Dump::skipped_lines`]. Only a text in which no format is recognised, or a
/// format whose parser is not compiled in, is an error.
///
/// # Errors
/// [`Error::UnrecognizedDump`] when auto-detection finds no format,
/// [`Error::FormatUnavailable`] when `format` has no parser in this build.
pub fn parse(text: &str, format: Option<Format>) -> Result<Dump> {
    // Only an undeclared format may be several (a paste mixing formats).
    let mixed = if format.is_none() {
        super::segments::parse_mixed(text)
    } else {
        None
    };
    let mut d = match mixed {
        Some(d) => d,
        None => parse_one(text, format)?,
    };
    mark_if_cut(&mut d, text.as_bytes());
    Ok(d)
}

/// [`parse`] of a text in one format.
fn parse_one(text: &str, format: Option<Format>) -> Result<Dump> {
    let parser = match format {
        Some(f) => parser_for(f).ok_or(Error::FormatUnavailable { format: f.name() })?,
        None => {
            let f = detect(text).ok_or_else(|| Error::UnrecognizedDump {
                tried: available_formats()
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
            parser_for(f).expect("detect only returns compiled-in formats")
        }
    };
    let mut b = DumpBuilder::new(parser.format);
    // Kernel frame lines are 30-60 bytes and task blocks 150 or more: an
    // upper-side guess spares large dumps the regrowth copies, and pages
    // reserved but never written cost no memory.
    b.reserve(text.len() / 150, text.len() / 30);
    (parser.parse)(text, &mut b);
    Ok(b.finish())
}

/// Marks `d`, parsed from `data` (whole), as cut when `data` stops in the
/// middle of a line (see [`Dump::mark_cut`]).
pub(crate) fn mark_if_cut(d: &mut Dump, data: &[u8]) {
    if ends_mid_line(data) {
        d.mark_cut(Some(line_count(data)));
    }
}

/// Whether the input stops in the middle of a line: every tool, and the
/// kernel, ends the text it writes with a line end, so a final line without
/// one was cut (a full disk, a truncated paste, `head -c`).
pub(crate) fn ends_mid_line(data: &[u8]) -> bool {
    data.last().is_some_and(|&c| c != b'\n')
}

/// The number of lines of a text that does not end with a line end (the
/// number of its last line).
pub(crate) fn line_count(data: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', data).count() + 1
}
