//! Binding of `lpc_core::dump` (registered from `lib.rs`): bytes in, columns out.
//!
//! Parsing runs without the GIL; the result is a dict of numpy columns and
//! small lists that `lpc/dump.py` wraps in its `Dump` class.

use crate::errors::{detached, to_py_at};
use lpc_core::dump::{self, Dump, Format, FrameContext, StackStatus};
use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::borrow::Cow;
use std::path::PathBuf;

pyo3::import_exception!(lpc.errors, DumpParseError);

fn parse_format(name: Option<&str>, path: Option<&str>) -> PyResult<Option<Format>> {
    let Some(name) = name else { return Ok(None) };
    Format::from_name(name).map(Some).ok_or_else(|| {
        let known: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
        DumpParseError::new_err((
            format!(
                "unknown dump format name {name:?} (known: {})",
                known.join(", ")
            ),
            path.map(str::to_owned),
            Option::<usize>::None,
        ))
    })
}

/// Everything the parse produced, ready to hand to Python.
struct Parsed {
    dump: Dump,
    stack_status: Vec<u8>,
    frame_context: Vec<u8>,
}

/// The input as text: borrowed when it is valid UTF-8 (the fast validator),
/// lossily decoded otherwise (`from_utf8_lossy` alone walks chunk by chunk).
fn as_text(data: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(data) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(data),
    }
}

/// The columns Python needs as integer codes, which the core keeps as
/// enums; built without the GIL, after the parse. (Every other column is
/// moved into numpy as it is.)
fn columns(mut d: Dump) -> Parsed {
    let stack_status = std::mem::take(&mut d.stack_status)
        .into_iter()
        .map(|s| s as u8)
        .collect();
    let frame_context = std::mem::take(&mut d.frame_context)
        .into_iter()
        .map(|c| c as u8)
        .collect();
    Parsed {
        dump: d,
        stack_status,
        frame_context,
    }
}

fn to_dict<'py>(py: Python<'py>, p: Parsed) -> PyResult<Bound<'py, PyDict>> {
    let Parsed {
        dump: d,
        stack_status,
        frame_context,
    } = p;
    let t = d.tasks;
    let out = PyDict::new(py);
    out.set_item("format", d.format.map(Format::name))?;
    out.set_item("kernel_release", d.kernel_release)?;
    out.set_item("names", PyList::new(py, d.names)?)?;
    out.set_item("comm_names", PyList::new(py, d.comm_names)?)?;
    out.set_item("comm", d.task_comm.into_pyarray(py))?;
    out.set_item("pid", t.pid.into_pyarray(py))?;
    out.set_item("tid", t.tid.into_pyarray(py))?;
    out.set_item("tgid", t.tgid.into_pyarray(py))?;
    out.set_item("ppid", t.ppid.into_pyarray(py))?;
    out.set_item("cpu", t.cpu.into_pyarray(py))?;
    out.set_item("state", t.state.into_pyarray(py))?;
    out.set_item("kthread", t.kthread.into_pyarray(py))?;
    out.set_item("on_cpu", t.on_cpu.into_pyarray(py))?;
    out.set_item("task_flags", t.task_flags.into_pyarray(py))?;
    out.set_item("thread_flags", t.thread_flags.into_pyarray(py))?;
    out.set_item("user_regs", t.user_regs.into_pyarray(py))?;
    out.set_item("task_line", t.line.into_pyarray(py))?;
    out.set_item("stack_status", stack_status.into_pyarray(py))?;
    out.set_item("frame_offsets", d.frame_offsets.into_pyarray(py))?;
    out.set_item("frame_token", d.frame_token.into_pyarray(py))?;
    out.set_item("token_address", d.token_address.into_pyarray(py))?;
    out.set_item("token_has_address", d.token_has_address.into_pyarray(py))?;
    out.set_item("token_function", d.token_function.into_pyarray(py))?;
    out.set_item("token_offset", d.token_offset.into_pyarray(py))?;
    out.set_item("token_size", d.token_size.into_pyarray(py))?;
    out.set_item("token_module", d.token_module.into_pyarray(py))?;
    out.set_item("frame_reliable", d.frame_reliable.into_pyarray(py))?;
    out.set_item("frame_context", frame_context.into_pyarray(py))?;
    out.set_item("frame_inlined", d.frame_inlined.into_pyarray(py))?;
    out.set_item("frame_line", d.frame_line.into_pyarray(py))?;
    out.set_item("skipped_lines", d.skipped_lines)?;
    out.set_item("skipped_samples", PyList::new(py, d.skipped_samples)?)?;
    out.set_item("warnings", PyList::new(py, d.warnings)?)?;
    Ok(out)
}

/// Parses a stack dump held in ``data`` and returns its columns as a dict.
///
/// ``format`` is a format name (see :func:`dump_formats`) or ``None`` to
/// detect it; ``path`` only names the input in errors. Invalid UTF-8 is
/// replaced (and reported in ``warnings``), malformed lines are counted in
/// ``skipped_lines``. Raises :class:`lpc.errors.DumpParseError` when no
/// format is recognised or the format is unknown.
#[pyfunction]
#[pyo3(signature = (data, format = None, path = None))]
fn parse_dump_bytes<'py>(
    py: Python<'py>,
    data: &[u8],
    format: Option<&str>,
    path: Option<&str>,
) -> PyResult<Bound<'py, PyDict>> {
    let format = parse_format(format, path)?;
    let parsed = detached(py, || dump::parse_bytes(data, format).map(columns))?
        .map_err(|e| to_py_at(e, path))?;
    to_dict(py, parsed)
}

/// Reads and parses the stack-dump file at ``path`` and returns its columns
/// as a dict (the same keys as :func:`parse_dump_bytes`).
///
/// The file is read and parsed without the GIL (large files by two threads,
/// large ``/proc`` snapshots parsed on every core). Raises
/// :class:`lpc.errors.DumpParseError` naming ``path`` when the file is
/// missing ("no such file"), a directory ("is a directory"), unreadable
/// ("cannot read: <reason>"), the format name is unknown, or no format is
/// recognised.
#[pyfunction]
#[pyo3(signature = (path, format = None))]
fn parse_dump_file<'py>(
    py: Python<'py>,
    path: PathBuf,
    format: Option<&str>,
) -> PyResult<Bound<'py, PyDict>> {
    let name = path.to_string_lossy().into_owned();
    let format = parse_format(format, Some(&name))?;
    let parsed = detached(py, || dump::parse_file(&path, format).map(columns))?
        .map_err(|e| to_py_at(e, Some(&name)))?;
    to_dict(py, parsed)
}

/// The format name of the dump in ``data``, or ``None`` when none is recognised.
#[pyfunction]
fn detect_dump_format(py: Python<'_>, data: &[u8]) -> PyResult<Option<&'static str>> {
    detached(py, || dump::detect(&as_text(data)).map(Format::name))
}

/// The dump formats this build can parse, in detection order.
#[pyfunction]
fn dump_formats() -> Vec<&'static str> {
    dump::available_formats()
        .into_iter()
        .map(Format::name)
        .collect()
}

/// Stack-status names, indexed by the codes of the ``stack_status`` column.
#[pyfunction]
fn dump_stack_statuses() -> Vec<&'static str> {
    StackStatus::ALL.iter().map(|s| s.name()).collect()
}

/// Frame-context names, indexed by the codes of the ``frame_context`` column.
#[pyfunction]
fn dump_frame_contexts() -> Vec<&'static str> {
    FrameContext::ALL.iter().map(|c| c.name()).collect()
}

/// Adds this file's functions and classes to `lpc._core`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(parse_dump_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(parse_dump_file, m)?)?;
    m.add_function(wrap_pyfunction!(detect_dump_format, m)?)?;
    m.add_function(wrap_pyfunction!(dump_formats, m)?)?;
    m.add_function(wrap_pyfunction!(dump_stack_statuses, m)?)?;
    m.add_function(wrap_pyfunction!(dump_frame_contexts, m)?)?;
    Ok(())
}
