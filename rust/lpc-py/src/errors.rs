//! The one place where core errors and panics become Python exceptions.
//!
//! The classes live in `lpc/errors.py` (so they carry docstrings, attributes
//! and multiple inheritance such as `InvalidRangeError(LpcError, ValueError)`);
//! Rust imports them.

use lpc_core::Error;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};

pyo3::import_exception!(lpc.errors, InvalidRangeError);
pyo3::import_exception!(lpc.errors, InternalError);
pyo3::import_exception!(lpc.errors, SymbolError);
pyo3::import_exception!(lpc.errors, DumpParseError);

/// Maps a core error to its Python exception.
pub(crate) fn to_py(err: Error) -> PyErr {
    to_py_at(err, None)
}

/// Maps a core error about the input named `path` (a file, or `None` for
/// anonymous bytes): dump errors become `DumpParseError(message, path, line)`.
pub(crate) fn to_py_at(err: Error, path: Option<&str>) -> PyErr {
    let message = err.to_string();
    match err {
        Error::InvalidRange { index, .. } | Error::NegativeId { index, .. } => {
            InvalidRangeError::new_err((message, index))
        }
        Error::TooManyRanges { .. } | Error::LengthMismatch { .. } => {
            InvalidRangeError::new_err((message, Option::<usize>::None))
        }
        Error::UnrecognizedDump { .. }
        | Error::FormatUnavailable { .. }
        | Error::Unreadable { .. } => {
            DumpParseError::new_err((message, path.map(str::to_owned), Option::<usize>::None))
        }
        Error::Parse { line, message } if path.is_some() => {
            DumpParseError::new_err((message, path.map(str::to_owned), line))
        }
        Error::InvalidOffsets { .. } | Error::Parse { .. } => PyValueError::new_err(message),
        // The line goes into its own attribute; Python adds the file name.
        Error::Symbols {
            line,
            message: text,
        } => SymbolError::new_err((text, Option::<String>::None, line)),
        Error::ZeroAddresses { .. } => {
            SymbolError::new_err((message, Option::<String>::None, Option::<usize>::None))
        }
    }
}

/// Runs core work without the GIL and turns a panic into `lpc.errors.InternalError`
/// instead of letting it unwind into the interpreter.
pub(crate) fn detached<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    py.detach(|| catch_unwind(AssertUnwindSafe(work)))
        .map_err(|payload| InternalError::new_err(panic_message(payload.as_ref())))
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(ToString::to_string)
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    format!("internal error in lpc's Rust core (please report): {what}")
}
