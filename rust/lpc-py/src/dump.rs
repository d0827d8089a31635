//! Binding of `lpc_core::dump` (registered from `lib.rs`): bytes in, columns out.
//!
//! Parsing runs without the GIL; the result is a [`PyDumpColumns`] (numpy
//! columns adopted without a copy, and tuples) that `lpc/dump.py` wraps in
//! its `Dump` class. The sentinels and code tables of those columns are
//! exported from here too, so Python never copies them by hand.

use crate::errors::{detached, to_py_at};
use lpc_core::dump::{self, Dump, Format, FrameContext, StackStatus, TaskLoss};
use numpy::{Element, IntoPyArray, PyArray1, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
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

/// A column moved into numpy without a copy (numpy adopts the `Vec`'s buffer).
fn adopt<T: Element>(py: Python<'_>, column: Vec<T>) -> Py<PyArray1<T>> {
    column.into_pyarray(py).unbind()
}

/// The columns of a parsed dump, as ``lpc.dump.Dump`` reads them.
///
/// Every array is a numpy array that owns the parser's buffer (moved, not
/// copied) and is built once: each attribute returns the same object every
/// time. Per task: ``comm`` (index into ``comm_names``), ``pid``, ``tid``,
/// ``tgid``, ``ppid``, ``cpu`` (``NO_ID`` = unknown), ``state`` (code point,
/// 0 = unknown), ``kthread``, ``on_cpu`` (-1 unknown, 0, 1), ``task_flags``,
/// ``thread_flags`` (``UNKNOWN_U64`` = unknown), ``user_regs``, ``task_line``,
/// ``task_lost`` (bits of :func:`dump_task_losses`), ``task_lost_line``,
/// ``stack_status`` (index into :func:`dump_stack_statuses`) and the CSR
/// ``frame_offsets``; per token: ``token_*`` (names as indices into ``names``,
/// ``NO_NAME`` = none); per frame: ``frame_token``, ``frame_reliable``,
/// ``frame_context`` (index into :func:`dump_frame_contexts`),
/// ``frame_inlined``, ``frame_line``.
#[pyclass(frozen, name = "DumpColumns", module = "lpc._core")]
pub(crate) struct PyDumpColumns {
    /// The format name the dump was parsed as.
    #[pyo3(get)]
    format: &'static str,
    /// The kernel release the dump names, if any.
    #[pyo3(get)]
    kernel_release: Option<String>,
    /// The architecture the frames' syntax names (ARM, powerpc, s390), if any.
    #[pyo3(get)]
    arch: Option<String>,
    /// Interned function and module names.
    #[pyo3(get)]
    names: Py<PyTuple>,
    /// Interned comms, first-occurrence order.
    #[pyo3(get)]
    comm_names: Py<PyTuple>,
    /// Lines that belong to no known construct.
    #[pyo3(get)]
    skipped_lines: usize,
    /// The first few skipped lines, ``(line number, text)``.
    #[pyo3(get)]
    skipped_samples: Py<PyTuple>,
    /// What the reader of a verdict must know about this dump.
    #[pyo3(get)]
    warnings: Py<PyTuple>,
    /// The input stops in the middle of a line: it was cut, tasks after the cut are missing.
    #[pyo3(get)]
    input_cut: bool,
    #[pyo3(get)]
    comm: Py<PyArray1<u32>>,
    #[pyo3(get)]
    pid: Py<PyArray1<i64>>,
    #[pyo3(get)]
    tid: Py<PyArray1<i64>>,
    #[pyo3(get)]
    tgid: Py<PyArray1<i64>>,
    #[pyo3(get)]
    ppid: Py<PyArray1<i64>>,
    #[pyo3(get)]
    cpu: Py<PyArray1<i64>>,
    #[pyo3(get)]
    state: Py<PyArray1<u32>>,
    #[pyo3(get)]
    kthread: Py<PyArray1<i8>>,
    #[pyo3(get)]
    on_cpu: Py<PyArray1<i8>>,
    #[pyo3(get)]
    task_flags: Py<PyArray1<u64>>,
    #[pyo3(get)]
    thread_flags: Py<PyArray1<u64>>,
    #[pyo3(get)]
    user_regs: Py<PyArray1<bool>>,
    /// Per task: reported by the kernel's hung-task detector.
    #[pyo3(get)]
    hung: Py<PyArray1<bool>>,
    #[pyo3(get)]
    task_line: Py<PyArray1<i64>>,
    /// Per task: bits of :func:`dump_task_losses` (what the parser saw go missing).
    #[pyo3(get)]
    task_lost: Py<PyArray1<u8>>,
    /// Per task: the 1-based line of its first loss, 0 when none.
    #[pyo3(get)]
    task_lost_line: Py<PyArray1<i64>>,
    #[pyo3(get)]
    stack_status: Py<PyArray1<u8>>,
    #[pyo3(get)]
    frame_offsets: Py<PyArray1<u64>>,
    #[pyo3(get)]
    frame_token: Py<PyArray1<u32>>,
    #[pyo3(get)]
    token_address: Py<PyArray1<u64>>,
    #[pyo3(get)]
    token_has_address: Py<PyArray1<bool>>,
    #[pyo3(get)]
    token_function: Py<PyArray1<u32>>,
    #[pyo3(get)]
    token_offset: Py<PyArray1<u64>>,
    #[pyo3(get)]
    token_size: Py<PyArray1<u64>>,
    #[pyo3(get)]
    token_module: Py<PyArray1<u32>>,
    #[pyo3(get)]
    frame_reliable: Py<PyArray1<bool>>,
    #[pyo3(get)]
    frame_context: Py<PyArray1<u8>>,
    #[pyo3(get)]
    frame_inlined: Py<PyArray1<bool>>,
    #[pyo3(get)]
    frame_line: Py<PyArray1<u32>>,
}

#[pymethods]
impl PyDumpColumns {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "<DumpColumns {}: {} tasks, {} frames>",
            self.format,
            PyUntypedArrayMethods::len(self.comm.bind(py)),
            PyUntypedArrayMethods::len(self.frame_token.bind(py))
        )
    }
}

impl PyDumpColumns {
    fn new(py: Python<'_>, p: Parsed) -> PyResult<Self> {
        let Parsed {
            dump: d,
            stack_status,
            frame_context,
        } = p;
        let t = d.tasks;
        Ok(Self {
            // Every parse sets its format; "" only for a default-built dump.
            format: d.format.map_or("", Format::name),
            kernel_release: d.kernel_release,
            arch: d.arch,
            names: PyTuple::new(py, d.names)?.unbind(),
            comm_names: PyTuple::new(py, d.comm_names)?.unbind(),
            skipped_lines: d.skipped_lines,
            skipped_samples: PyTuple::new(py, d.skipped_samples)?.unbind(),
            warnings: PyTuple::new(py, d.warnings)?.unbind(),
            input_cut: d.input_cut,
            comm: adopt(py, d.task_comm),
            pid: adopt(py, t.pid),
            tid: adopt(py, t.tid),
            tgid: adopt(py, t.tgid),
            ppid: adopt(py, t.ppid),
            cpu: adopt(py, t.cpu),
            state: adopt(py, t.state),
            kthread: adopt(py, t.kthread),
            on_cpu: adopt(py, t.on_cpu),
            task_flags: adopt(py, t.task_flags),
            thread_flags: adopt(py, t.thread_flags),
            user_regs: adopt(py, t.user_regs),
            hung: adopt(py, t.hung),
            task_line: adopt(py, t.line),
            task_lost: adopt(py, t.lost),
            task_lost_line: adopt(py, t.lost_line),
            stack_status: adopt(py, stack_status),
            frame_offsets: adopt(py, d.frame_offsets),
            frame_token: adopt(py, d.frame_token),
            token_address: adopt(py, d.token_address),
            token_has_address: adopt(py, d.token_has_address),
            token_function: adopt(py, d.token_function),
            token_offset: adopt(py, d.token_offset),
            token_size: adopt(py, d.token_size),
            token_module: adopt(py, d.token_module),
            frame_reliable: adopt(py, d.frame_reliable),
            frame_context: adopt(py, frame_context),
            frame_inlined: adopt(py, d.frame_inlined),
            frame_line: adopt(py, d.frame_line),
        })
    }
}

/// Parses a stack dump held in ``data`` and returns its :class:`DumpColumns`.
///
/// ``format`` is a format name (see :func:`dump_formats`) or ``None`` to
/// detect it; ``path`` only names the input in errors. Invalid UTF-8 is
/// replaced (and reported in ``warnings``), malformed lines are counted in
/// ``skipped_lines``. Raises :class:`lpc.errors.DumpParseError` when no
/// format is recognised or the format is unknown.
#[pyfunction]
#[pyo3(signature = (data, format = None, path = None))]
fn parse_dump_bytes(
    py: Python<'_>,
    data: &[u8],
    format: Option<&str>,
    path: Option<&str>,
) -> PyResult<PyDumpColumns> {
    let format = parse_format(format, path)?;
    let parsed = detached(py, || dump::parse_bytes(data, format).map(columns))?
        .map_err(|e| to_py_at(e, path))?;
    PyDumpColumns::new(py, parsed)
}

/// Reads and parses the stack-dump file at ``path`` and returns its
/// :class:`DumpColumns`.
///
/// The file is read and parsed without the GIL (large files by two threads,
/// large ``/proc`` snapshots parsed on every core). Raises
/// :class:`lpc.errors.DumpParseError` naming ``path`` when the file is
/// missing ("no such file"), a directory ("is a directory"), unreadable
/// ("cannot read: <reason>"), the format name is unknown, or no format is
/// recognised.
#[pyfunction]
#[pyo3(signature = (path, format = None))]
fn parse_dump_file(py: Python<'_>, path: PathBuf, format: Option<&str>) -> PyResult<PyDumpColumns> {
    let name = path.to_string_lossy().into_owned();
    let format = parse_format(format, Some(&name))?;
    let parsed = detached(py, || dump::parse_file(&path, format).map(columns))?
        .map_err(|e| to_py_at(e, Some(&name)))?;
    PyDumpColumns::new(py, parsed)
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

/// Task-loss names, indexed by bit position in the ``task_lost`` column.
#[pyfunction]
fn dump_task_losses() -> Vec<&'static str> {
    TaskLoss::ALL.iter().map(|&(_, name)| name).collect()
}

/// Adds this file's functions and classes to `lpc._core`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(parse_dump_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(parse_dump_file, m)?)?;
    m.add_function(wrap_pyfunction!(detect_dump_format, m)?)?;
    m.add_function(wrap_pyfunction!(dump_formats, m)?)?;
    m.add_function(wrap_pyfunction!(dump_stack_statuses, m)?)?;
    m.add_function(wrap_pyfunction!(dump_frame_contexts, m)?)?;
    m.add_function(wrap_pyfunction!(dump_task_losses, m)?)?;
    m.add_class::<PyDumpColumns>()?;
    m.add("UNKNOWN_U64", dump::UNKNOWN_U64)?;
    m.add("NO_ID", dump::NO_ID)?;
    m.add("NO_NAME", dump::NO_NAME)?;
    m.add("NO_STATE", dump::NO_STATE)?;
    Ok(())
}
