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
fn fill_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A fresh file under the system temporary directory, removed on drop.
    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn new(tag: &str, content: &[u8]) -> Self {
            let path = std::env::temp_dir().join(format!(
                "lpc-read-input-{}-{tag}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::write(&path, content).unwrap();
            Self(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

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
}
