//! Chunked and parallel parsing: the entry points on bytes and files, which
//! cut large inputs at task boundaries (formats whose registry entry has a
//! [`Chunked`](super::registry::Chunked) parser), parse the chunks on one
//! thread each and merge them in order.

use super::input::{self, read_input};
use super::lines::head_bytes;
use super::registry::{detect_head, ends_mid_line, mark_if_cut, parse, DETECT_WINDOW};
use super::{paste, segments, Dump, DumpBuilder, Format};
use crate::error::{Error, Result};

/// Warning added when the input held invalid UTF-8 (see [`repair_utf8`]).
pub const WARN_NOT_UTF8: &str = "the input is not valid UTF-8: each invalid byte was replaced by \
     SUB (0x1A) before parsing, so a frame or header that held one cannot be read";

/// Inputs at least this large are parsed on several threads when their
/// format allows it (below, thread start-up and the merge cost more than
/// they save).
pub const PARALLEL_MIN_BYTES: usize = 4 << 20;

/// The threading of a chunked parse: `chunks[0]` is parsed into `head` on
/// this thread while every later chunk gets a scoped thread and a fresh
/// builder of `format`; `parse` returns what the caller's merge needs besides
/// the columns. A chunk that is not UTF-8 gives `None` (the caller then takes
/// the lossy, sequential path). Every thread is joined before this returns.
pub(crate) fn parse_chunks_with<E: Send>(
    chunks: &[&[u8]],
    format: Format,
    head: &mut DumpBuilder,
    parse: impl Fn(&str, &mut DumpBuilder) -> E + Sync,
) -> (Option<E>, Vec<Option<(E, Dump)>>) {
    let Some((first, rest)) = chunks.split_first() else {
        return (None, Vec::new());
    };
    let parse = &parse;
    std::thread::scope(|scope| {
        let workers: Vec<_> = rest
            .iter()
            .map(|&chunk| {
                scope.spawn(move || {
                    let text = std::str::from_utf8(chunk).ok()?;
                    let mut b = DumpBuilder::new(format);
                    b.reserve(text.len() / 150, text.len() / 30);
                    let end = parse(text, &mut b);
                    Some((end, b.finish()))
                })
            })
            .collect();
        let head_end = std::str::from_utf8(first)
            .ok()
            .map(|text| parse(text, head));
        let tails = workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect();
        (head_end, tails)
    })
}

/// The threads a parse of `len` bytes uses: one per core for large inputs.
#[must_use]
pub fn parse_threads(len: usize) -> usize {
    if len < PARALLEL_MIN_BYTES {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// Parses a dump held as bytes, in `format` or the detected one, on
/// [`parse_threads`] threads. See [`parse_bytes_with`].
///
/// # Errors
/// As [`parse`].
pub fn parse_bytes(data: &[u8], format: Option<Format>) -> Result<Dump> {
    parse_bytes_with(data, format, parse_threads(data.len()))
}

/// Reads and parses the dump file at `path` (see [`read_input`] and
/// [`parse_bytes`]).
///
/// # Errors
/// [`Error::Unreadable`] when the file cannot be read, else as [`parse`].
pub fn parse_file(path: &std::path::Path, format: Option<Format>) -> Result<Dump> {
    parse_file_with(path, format, None, FILE_PIECE)
}

/// How much of a file a thread reads at a time when it parses while
/// reading: small enough to stay in the cache between the read and the
/// parse, large enough that the `pread` calls cost nothing.
pub const FILE_PIECE: usize = 256 * 1024;

fn unreadable(e: &std::io::Error) -> Error {
    Error::Unreadable {
        message: input::describe(e),
    }
}

/// [`parse_file`] on `threads` threads (`None`: [`parse_threads`] of the
/// file's size), reading `piece` bytes at a time when the file is parsed
/// while it is read.
///
/// A regular file holding a recorded `/proc` snapshot, when it is large or
/// `threads` > 1, is never held whole in memory: each thread reads and
/// parses its chunk piece by piece (see [`procsnap`](super::procsnap)). Anything else is read by [`read_input`] and parsed by
/// [`parse_bytes_with`]. The result is the same either way.
///
/// # Errors
/// As [`parse_file`].
pub fn parse_file_with(
    path: &std::path::Path,
    format: Option<Format>,
    threads: Option<usize>,
    piece: usize,
) -> Result<Dump> {
    let file = std::fs::File::open(path).map_err(|e| unreadable(&e))?;
    let meta = file.metadata().map_err(|e| unreadable(&e))?;
    let size = usize::try_from(meta.len()).unwrap_or(usize::MAX);
    let threads = threads.unwrap_or_else(|| parse_threads(size));
    // Parsing while reading pays from a few MB on, on any number of threads:
    // no buffer the size of the file, no page faults to fill one.
    if meta.is_file() && (threads > 1 || size >= PARALLEL_MIN_BYTES) {
        let mut head = vec![0u8; DETECT_WINDOW.min(size)];
        let n = input::fill_at(&file, &mut head, 0).map_err(|e| unreadable(&e))?;
        head.truncate(n);
        // Detect on whole lines only, as `detect` does on text: half a line
        // can look like another format's header (no line end at all: no fast path).
        if (n as u64) < meta.len() {
            let whole_lines = memchr::memrchr(b'\n', &head).map_or(0, |i| i + 1);
            head.truncate(whole_lines);
        }
        let known = format.or_else(|| detect_head(&head));
        if let Some(file_chunks) = known.and_then(|f| f.spec().chunked?.file) {
            let parsed =
                file_chunks(&file, meta.len(), threads, piece).map_err(|e| unreadable(&e))?;
            if let Some(mut d) = parsed {
                let mut last = [b'\n'];
                if meta.len() > 0 {
                    input::fill_at(&file, &mut last, meta.len() - 1).map_err(|e| unreadable(&e))?;
                }
                if ends_mid_line(&last) {
                    // The line count is not known without reading the file
                    // again: no closing marker counts (snapshots have none).
                    d.mark_cut(None);
                }
                return Ok(d);
            }
        }
    }
    drop(file);
    let mut data = read_input(path).map_err(|e| unreadable(&e))?;
    parse_owned(&mut data, format, threads)
}

/// Parses a dump held as bytes on up to `threads` threads.
///
/// Valid UTF-8 is parsed in place; otherwise the bytes are copied once and
/// every invalid byte is replaced by SUB (0x1A) before parsing, and
/// [`WARN_NOT_UTF8`] is added (see [`repair_utf8`]). A format with a chunked parser in
/// the registry — a recorded `/proc` snapshot (at its `# pid=` headers) and a
/// kernel log (at its 5.9+ `task:` headers) — is cut into one chunk per thread, each chunk validated and parsed by its own
/// thread, and the chunks merged in order: the result is the same (`==`) as
/// the sequential parse, whatever `threads`.
///
/// # Errors
/// As [`parse`].
pub fn parse_bytes_with(data: &[u8], format: Option<Format>, threads: usize) -> Result<Dump> {
    if let Some(d) = parse_if_utf8(data, format, threads)? {
        return Ok(d);
    }
    parse_repaired(&mut data.to_vec(), format, threads)
}

/// [`parse_bytes_with`] of bytes the caller owns: invalid UTF-8 is repaired
/// in place, so a large file costs no second copy.
fn parse_owned(data: &mut [u8], format: Option<Format>, threads: usize) -> Result<Dump> {
    if let Some(d) = parse_if_utf8(data, format, threads)? {
        return Ok(d);
    }
    parse_repaired(data, format, threads)
}

/// Repairs `data` (see [`repair_utf8`]) and parses it, with the warning.
fn parse_repaired(data: &mut [u8], format: Option<Format>, threads: usize) -> Result<Dump> {
    repair_utf8(data);
    let mut d = parse_if_utf8(data, format, threads)?.ok_or_else(|| Error::Unreadable {
        message: "invalid UTF-8 remained after its repair".to_owned(),
    })?;
    d.warnings.push(WARN_NOT_UTF8.to_owned());
    Ok(d)
}

/// Parses `data` when it is valid UTF-8 (chunk by chunk on `threads` threads
/// where the format allows); `Ok(None)` when it is not.
fn parse_if_utf8(data: &[u8], format: Option<Format>, threads: usize) -> Result<Option<Dump>> {
    if let Some(d) = parse_paste(data, format)? {
        return Ok(Some(d));
    }
    if format.is_none() && data.len() <= segments::SEGMENT_MAX && segments::may_mix(data) {
        // Small enough to be a paste, and holding another format's opener:
        // read as one text, part by part.
        return match std::str::from_utf8(data) {
            Ok(text) => parse(text, None).map(Some),
            Err(_) => Ok(None),
        };
    }
    let known = format.or_else(|| detect_head(data));
    if let Some(chunked) = known.and_then(|f| f.spec().chunked) {
        if threads > 1 {
            let chunks = (chunked.split)(data, threads);
            if chunks.len() > 1 {
                if let Some(mut d) = (chunked.parse)(&chunks, data.len()) {
                    mark_if_cut(&mut d, data);
                    return Ok(Some(d));
                }
            }
        }
    }
    match std::str::from_utf8(data) {
        Ok(text) => parse(text, known).map(Some),
        Err(_) => Ok(None),
    }
}

/// Parses a pasted dump (quoted, quoted-printable: see [`paste`]) with its
/// paste layers taken off, its line numbers the input's; `Ok(None)` when the
/// head of `data` shows no paste layer (or `data` is not UTF-8 yet).
fn parse_paste(data: &[u8], format: Option<Format>) -> Result<Option<Dump>> {
    let Ok(head) = std::str::from_utf8(head_bytes(data, paste::SNIFF)) else {
        return Ok(None);
    };
    if !paste::is_paste(head) {
        return Ok(None);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return Ok(None);
    };
    let Some(unwrapped) = paste::unwrap(text) else {
        return Ok(None);
    };
    let mut d = parse(&unwrapped.text, format)?;
    unwrapped.restore_lines(&mut d);
    mark_if_cut(&mut d, data);
    Ok(Some(d))
}

/// Replaces every byte of every invalid UTF-8 sequence in `data` by SUB
/// (0x1A), in place, and returns how many were replaced. SUB is a control
/// character: no name, number or marker of any format holds one, so a frame
/// or header line that held a bad byte cannot be read, and its task loses
/// that evidence visibly (U+FFFD would need three bytes: a second copy).
pub fn repair_utf8(data: &mut [u8]) -> usize {
    let mut at = 0;
    let mut replaced = 0;
    while at < data.len() {
        match std::str::from_utf8(&data[at..]) {
            Ok(_) => break,
            Err(e) => {
                let bad_start = at + e.valid_up_to();
                let bad_len = e.error_len().unwrap_or(data.len() - bad_start);
                data[bad_start..bad_start + bad_len].fill(0x1a);
                replaced += bad_len;
                at = bad_start + bad_len;
            }
        }
    }
    replaced
}
