//! Mixed pastes: one text holding parts in different formats (a hung-task
//! report, then a `crash> bt` of another task; SysRq-t, then `crash> foreach
//! bt`). Each part is read by its own format's parser and the tasks of all
//! parts are kept, in order, with the input's line numbers.
//!
//! A part starts at a line only one format prints, and prints only to open a
//! report or a task: a kernel log's report markers (`Call Trace:`, `task:`
//! headers, hung-task and SysRq lines), crash's `PID: … TASK: …` header and
//! `crash>` prompt, gdb's `Thread N (…)` header and `(gdb)` prompt, a recorded
//! snapshot's `# pid=` header. Lines before the first such line belong to the
//! first part. Frame lines open nothing (the old `[<addr>] sym` form is
//! common to several formats).

use super::lines::Lines;
use super::registry::parser_for;
use super::{crash, dmesg, gdb, procsnap, Dump, DumpBuilder, Format};

/// Texts larger than this are read as one format (a paste is small; a large
/// kernel log is one log).
pub const SEGMENT_MAX: usize = 16 << 20;

/// The format a line opens a part of, if it is such a line.
fn opens(line: &str) -> Option<Format> {
    let t = line.trim_start();
    if t.starts_with("crash> ") || t == "crash>" {
        return Some(Format::Crash);
    }
    if t.starts_with("(gdb) ") || t == "(gdb)" {
        return Some(Format::Gdb);
    }
    if procsnap::looks_like(line) {
        return Some(Format::ProcSnapshot);
    }
    if crash::looks_like(line) {
        return Some(Format::Crash);
    }
    if gdb::looks_like(line) {
        return Some(Format::Gdb);
    }
    dmesg::looks_like(line).then_some(Format::Dmesg)
}

/// One part: its format, its text, and the number of input lines before it.
struct Part<'a> {
    format: Format,
    text: &'a str,
    lines_before: usize,
}

/// Whether the text holds an opener of a format other than a kernel log's:
/// without one it cannot mix formats (a kernel log is one part), and the
/// line-by-line look is spared (a few `memmem` scans instead).
pub(crate) fn may_mix(b: &[u8]) -> bool {
    ["crash>", "(gdb)", "# pid=", "TASK: ", "Thread "]
        .iter()
        .any(|m| memchr::memmem::find(b, m.as_bytes()).is_some())
}

/// The parts of `text` when it mixes formats (two parts or more), else `None`.
fn parts(text: &str) -> Option<Vec<Part<'_>>> {
    if !may_mix(text.as_bytes()) {
        return None;
    }
    let mut parts: Vec<Part<'_>> = Vec::new();
    let mut start = 0; // byte offset of the current part
    let mut start_line = 0; // lines before it
    let mut current: Option<Format> = None;
    for (n, line) in Lines::new(text) {
        // `line` is a slice of `text`: its offset is where it starts.
        let line_start = line.as_ptr() as usize - text.as_ptr() as usize;
        let Some(format) = opens(line) else { continue };
        match current {
            None => current = Some(format),
            Some(f) if f == format => {}
            Some(f) => {
                parts.push(Part {
                    format: f,
                    text: &text[start..line_start],
                    lines_before: start_line,
                });
                start = line_start;
                start_line = n - 1;
                current = Some(format);
            }
        }
    }
    let last = current?;
    if parts.is_empty() {
        return None;
    }
    parts.push(Part {
        format: last,
        text: &text[start..],
        lines_before: start_line,
    });
    Some(parts)
}

/// The text read part by part when it mixes formats (see the module docs),
/// else `None` (read it in its one format).
#[must_use]
pub fn parse_mixed(text: &str) -> Option<Dump> {
    if text.len() > SEGMENT_MAX {
        return None;
    }
    let parts = parts(text)?;
    let mut merged: Option<DumpBuilder> = None;
    let mut said = Vec::new();
    for part in &parts {
        let spec = parser_for(part.format)?;
        let mut b = DumpBuilder::new(part.format);
        (spec.parse)(part.text, &mut b);
        let lines = part.text.lines().count();
        said.push(format!(
            "{} (lines {}-{})",
            part.format.name(),
            part.lines_before + 1,
            part.lines_before + lines
        ));
        match merged.as_mut() {
            None => merged = Some(b),
            Some(m) => m.append(b.finish(), part.lines_before),
        }
    }
    let mut b = merged?;
    b.warn(&format!(
        "the input mixes formats, each part read in its own: {}",
        said.join(", ")
    ));
    Some(b.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HUNG: &str = "INFO: task cat:7 blocked for more than 120 seconds.\n\
        task:cat             state:D stack:0     pid:7     tgid:7     ppid:1      flags:0x00004002\n\
        Call Trace:\n <TASK>\n __schedule+0x1/0x2\n schedule+0x1/0x2\n </TASK>\n";
    const CRASH: &str = "crash> bt 8\n\
        PID: 8      TASK: ffff888100000000  CPU: 1   COMMAND: \"dd\"\n \
        #0 [ffffc90000000000] __schedule at ffffffff81000000\n \
        #1 [ffffc90000000010] schedule at ffffffff81000100\n";

    #[test]
    fn a_hung_task_report_then_a_crash_session() {
        let text = format!("{HUNG}{CRASH}");
        let d = crate::dump::parse(&text, None).expect("parses");
        assert_eq!(d.task_count(), 2);
        assert_eq!((d.header(0).pid, d.comm(0)), (Some(7), "cat"));
        assert_eq!((d.header(1).pid, d.comm(1)), (Some(8), "dd"));
        // Line numbers are the input's.
        assert_eq!(d.header(1).line, 9);
        assert_eq!(d.frame_line[d.frames_of(1).start], 10);
        assert!(d
            .warnings
            .iter()
            .any(|w| w.contains("dmesg (lines 1-7), crash (lines 8-11)")));
        assert_eq!(d.skipped_lines, 0);
    }

    #[test]
    fn one_format_is_one_part() {
        assert!(parts(&format!("{HUNG}{HUNG}")).is_none());
        assert!(parts(CRASH).is_none());
        // A crash session that runs `log` shows a kernel log: a part of its own.
        let text = format!("{CRASH}crash> log\n{HUNG}");
        let p = parts(&text).expect("mixed");
        let formats: Vec<_> = p.iter().map(|p| p.format).collect();
        assert_eq!(formats, [Format::Crash, Format::Dmesg]);
    }
}
