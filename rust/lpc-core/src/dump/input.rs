//! Reading a dump file into one buffer, fast.
//!
//! A 100 MB snapshot in the page cache takes tens of milliseconds to copy
//! out on one core; two threads copy the two halves of a regular file at
//! once with positional reads (`pread`), so neither waits for the other and
//! no file offset is shared. Files that report no size (pipes, `/proc` and
//! `/sys` files, whose `st_size` is 0 or a guess) are read to their end.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Regular files at least this large are read by two threads.
pub const PARALLEL_READ_MIN: u64 = 1 << 20;

/// The whole content of the file at `path`.
///
/// A regular file is read at the size `fstat` reports, by two threads for
/// large files; if it shrinks meanwhile the buffer is cut where its data
/// ends, if it grows the rest is appended, so the result is what a plain
/// `read_to_end` could have returned. Everything else is read to its end.
///
/// # Errors
/// The `io::Error` of `open`, of reading, or `IsADirectory` for a directory.
pub fn read_input(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "is a directory",
        ));
    }
    let size = meta.len();
    if !meta.is_file() || size == 0 {
        let mut data = Vec::new();
        file.read_to_end(&mut data)?;
        return Ok(data);
    }
    let size = usize::try_from(size).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    let mut data = vec![0u8; size];
    let filled = if size as u64 >= PARALLEL_READ_MIN {
        read_halves(&file, &mut data)?
    } else {
        fill_at(&file, &mut data, 0)?
    };
    data.truncate(filled);
    if filled == size {
        // The file may have grown since `fstat`: read on from where we are.
        read_rest(&file, &mut data)?;
    }
    Ok(data)
}

/// What went wrong, in the words lpc's errors use: "no such file", "is a
/// directory", "cannot read: <reason>" (the OS message without its code).
#[must_use]
pub fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".to_owned(),
        io::ErrorKind::IsADirectory => "is a directory".to_owned(),
        _ => {
            let text = e.to_string();
            let reason = text.split(" (os error").next().unwrap_or(&text);
            format!("cannot read: {reason}")
        }
    }
}

/// Reads `buf.len()` bytes at `offset`, fewer only at the end of the file.
pub(crate) fn fill_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Fills `data` from offset 0 with two threads (one per half); the length of
/// the contiguous prefix read (shorter than `data` when the file shrank).
fn read_halves(file: &File, data: &mut [u8]) -> io::Result<usize> {
    let mid = data.len() / 2;
    let (low, high) = data.split_at_mut(mid);
    let (low_read, high_read) = std::thread::scope(|scope| {
        let high_len = high.len();
        let worker = scope.spawn(move || fill_at(file, high, mid as u64).map(|n| (n, high_len)));
        let low_read = fill_at(file, low, 0);
        let high_read = worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (low_read, high_read)
    });
    let low_read = low_read?;
    let (high_read, _) = high_read?;
    // A short low half means the file ended before `mid`: whatever the high
    // thread saw came from a file that changed under us and is not after
    // the low half's data. Keep only the contiguous prefix.
    Ok(if low_read < mid {
        low_read
    } else {
        mid + high_read
    })
}

/// Appends whatever follows `data.len()` in the file.
fn read_rest(file: &File, data: &mut Vec<u8>) -> io::Result<()> {
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match file.read_at(&mut chunk, data.len() as u64) {
            Ok(0) => return Ok(()),
            Ok(n) => data.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads `file` from `start` up to `end` (or to its end of file) in pieces
/// of about `piece` bytes, each cut after its last newline (a piece grows to
/// hold a longer line), and hands each piece to `each` as text. Cutting at
/// newlines keeps every piece whole lines and UTF-8 character-aligned.
/// Returns `Ok(false)`, having stopped, when a piece is not valid UTF-8.
///
/// # Errors
/// The `io::Error` of a read.
pub(crate) fn for_each_piece(
    file: &File,
    start: u64,
    end: Option<u64>,
    piece: usize,
    mut each: impl FnMut(&str),
) -> io::Result<bool> {
    let mut buf = vec![0u8; piece.max(1)];
    let mut kept = 0; // an unfinished line at the front of `buf`
    let mut pos = start;
    loop {
        if kept == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let room = buf.len() - kept;
        let want = end.map_or(room, |end| {
            room.min(usize::try_from(end.saturating_sub(pos)).unwrap_or(room))
        });
        let n = if want == 0 {
            0
        } else {
            read_some_at(file, &mut buf[kept..kept + want], pos)?
        };
        pos += n as u64;
        let filled = kept + n;
        if n == 0 {
            // End of the range or of the file: the rest is the last line.
            if filled > 0 {
                let Ok(text) = std::str::from_utf8(&buf[..filled]) else {
                    return Ok(false);
                };
                each(text);
            }
            return Ok(true);
        }
        // Only the new bytes can hold a newline: `kept` has none.
        if let Some(i) = memchr::memrchr(b'\n', &buf[kept..filled]) {
            let cut = kept + i + 1;
            let Ok(text) = std::str::from_utf8(&buf[..cut]) else {
                return Ok(false);
            };
            each(text);
            buf.copy_within(cut..filled, 0);
            kept = filled - cut;
        } else {
            kept = filled;
        }
    }
}

/// One `pread` (retried when interrupted): bytes read, 0 at end of file.
fn read_some_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        match file.read_at(buf, offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// The offset of the first `needle` at or after `from` in `file`, reading
/// windows of 64 KiB (overlapping by the needle's length, so that none is
/// missed across a window edge).
///
/// # Errors
/// The `io::Error` of a read.
pub(crate) fn find_in_file(file: &File, from: u64, needle: &[u8]) -> io::Result<Option<u64>> {
    const WINDOW: usize = 64 * 1024;
    let finder = memchr::memmem::Finder::new(needle);
    let mut buf = vec![0u8; WINDOW.max(needle.len() * 2)];
    let mut at = from;
    loop {
        let n = fill_at(file, &mut buf, at)?;
        if let Some(i) = finder.find(&buf[..n]) {
            return Ok(Some(at + i as u64));
        }
        if n < buf.len() || n < needle.len() {
            return Ok(None);
        }
        at += (n - (needle.len() - 1)) as u64;
    }
}

/// A fresh file under the system temporary directory, removed on drop.
#[cfg(test)]
pub(crate) struct TempFile(pub(crate) std::path::PathBuf);

#[cfg(test)]
impl TempFile {
    pub(crate) fn new(tag: &str, content: &[u8]) -> Self {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("lpc-input-test-{}-{n}-{tag}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        Self(path)
    }
}

#[cfg(test)]
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Bytes that differ at every offset, so a misplaced half shows.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn small_large_and_empty_files_read_exactly() {
        for len in [0, 1, 4095, PARALLEL_READ_MIN as usize + 1, 3 << 20] {
            let content = pattern(len);
            let f = TempFile::new(&format!("size{len}"), &content);
            assert_eq!(read_input(&f.0).unwrap(), content, "{len} bytes");
        }
    }

    #[test]
    fn a_file_that_shrank_or_grew_is_read_as_it_is_now() {
        let content = pattern(3 << 20);
        let f = TempFile::new("resize", &content);
        let file = File::open(&f.0).unwrap();
        // As if fstat had said 3 MiB and the file then lost its second half:
        std::fs::OpenOptions::new()
            .write(true)
            .open(&f.0)
            .unwrap()
            .set_len(1 << 20)
            .unwrap();
        let mut data = vec![0u8; 3 << 20];
        let n = read_halves(&file, &mut data).unwrap();
        assert_eq!(&data[..n], &content[..1 << 20]);
        // ... or lost all but 100 bytes (the low half is short too):
        std::fs::OpenOptions::new()
            .write(true)
            .open(&f.0)
            .unwrap()
            .set_len(100)
            .unwrap();
        assert_eq!(read_halves(&file, &mut data).unwrap(), 100);
        // A file that grew after fstat: the tail is appended.
        let mut data = content[..100].to_vec();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&f.0)
            .unwrap()
            .write_all(b"more")
            .unwrap();
        read_rest(&file, &mut data).unwrap();
        assert_eq!(&data[100..], b"more");
        assert_eq!(read_input(&f.0).unwrap().len(), 104);
    }

    #[test]
    fn errors_name_what_went_wrong() {
        let dir = std::env::temp_dir();
        assert_eq!(
            read_input(&dir).unwrap_err().kind(),
            io::ErrorKind::IsADirectory
        );
        let missing = dir.join("lpc-read-input-no-such-file");
        assert_eq!(
            read_input(&missing).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(describe(&read_input(&dir).unwrap_err()), "is a directory");
        assert_eq!(describe(&read_input(&missing).unwrap_err()), "no such file");
        let denied = io::Error::from_raw_os_error(13);
        assert_eq!(describe(&denied), "cannot read: Permission denied");
    }

    #[test]
    fn proc_files_that_report_no_size_are_read_to_the_end() {
        let path = Path::new("/proc/self/status");
        assert_eq!(std::fs::metadata(path).unwrap().len(), 0);
        let data = read_input(path).unwrap();
        assert!(data.starts_with(b"Name:"), "{:?}", &data[..20]);
        assert!(data.len() > 100);
    }

    #[test]
    fn pipes_are_read_to_the_end() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "printf 'a\\nb\\n'"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let fd = child.stdout.take().unwrap();
        use std::os::fd::AsRawFd;
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        assert_eq!(read_input(Path::new(&path)).unwrap(), b"a\nb\n");
        child.wait().unwrap();
    }

    #[test]
    fn pieces_are_whole_lines_that_add_up_to_the_range() {
        let mut content = Vec::new();
        for i in 0..500 {
            content.extend_from_slice(format!("line {i} {}\n", "\u{e4}".repeat(i % 40)).as_bytes());
        }
        content.extend_from_slice(b"last line without newline");
        let f = TempFile::new("pieces", &content);
        let file = File::open(&f.0).unwrap();
        for piece in [1, 7, 64, 1000, 1 << 20] {
            for (start, end) in [
                (0, None),
                (0, Some(500)),
                (123, Some(4567)),
                (0, Some(1 << 30)),
            ] {
                let mut got = Vec::new();
                let whole = for_each_piece(&file, start, end, piece, |text| {
                    got.push(text.to_owned());
                })
                .unwrap();
                assert!(whole);
                let stop = end.map_or(content.len(), |e| (e as usize).min(content.len()));
                assert_eq!(
                    got.concat().as_bytes(),
                    &content[start as usize..stop],
                    "{piece}"
                );
                let (last, rest) = got.split_last().unwrap();
                assert!(rest.iter().all(|p| p.ends_with('\n')), "{piece}");
                assert!(!last.is_empty());
            }
        }
    }

    #[test]
    fn a_piece_that_is_not_utf8_stops_the_reading() {
        let f = TempFile::new("latin1", b"ok\nbad \xe4 byte\nmore\n");
        let file = File::open(&f.0).unwrap();
        let mut seen = Vec::new();
        let whole = for_each_piece(&file, 0, None, 3, |t| seen.push(t.to_owned())).unwrap();
        assert!(!whole);
        assert_eq!(seen, ["ok\n"]);
    }

    #[test]
    fn needles_are_found_across_window_edges() {
        let mut content = vec![b'x'; 200_000];
        for at in [10, 65_530, 65_536 * 2 - 3, 199_990] {
            content[at..at + 7].copy_from_slice(b"\n# pid=");
            let f = TempFile::new("needle", &content);
            let file = File::open(&f.0).unwrap();
            assert_eq!(
                find_in_file(&file, 0, b"\n# pid=").unwrap(),
                Some(at as u64)
            );
            assert_eq!(
                find_in_file(&file, at as u64 + 1, b"\n# pid=").unwrap(),
                None
            );
            content[at..at + 7].copy_from_slice(b"xxxxxxx");
        }
    }
}
