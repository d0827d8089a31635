//! The one place where core errors and panics become Python exceptions.
//!
//! The classes live in `lpc/errors.py` (so they carry docstrings, attributes
//! and multiple inheritance such as `InvalidRangeError(LpcError, ValueError)`);
//! Rust imports them.

use lpc_core::Error;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

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
        Error::InvalidOffsets { .. }
        | Error::OffsetsEnd { .. }
        | Error::TokenOutOfRange { .. }
        | Error::Parse { .. } => PyValueError::new_err(message),
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
/// instead of letting it unwind into the interpreter. The panic's message goes
/// into the exception; the panic hook (see [`install_panic_hook`]) does not
/// also print it.
pub(crate) fn detached<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    py.detach(|| {
        let _catching = Catching::enter();
        catch_unwind(AssertUnwindSafe(work))
    })
    .map_err(|payload| InternalError::new_err(panic_message(payload.as_ref())))
}

thread_local! {
    /// How many `detached` calls this thread is inside.
    static CATCHING_HERE: Cell<u32> = const { Cell::new(0) };
}

/// How many `detached` calls are running on any thread: their worker
/// threads (rayon, the parsers' scoped threads) hand a panic to the caller,
/// which catches it.
static CATCHING_ANYWHERE: AtomicUsize = AtomicUsize::new(0);

/// Marks the current thread as inside a panic-catching call while alive.
struct Catching;

impl Catching {
    fn enter() -> Self {
        CATCHING_HERE.with(|c| c.set(c.get() + 1));
        CATCHING_ANYWHERE.fetch_add(1, Ordering::SeqCst);
        Catching
    }
}

impl Drop for Catching {
    fn drop(&mut self) {
        CATCHING_ANYWHERE.fetch_sub(1, Ordering::SeqCst);
        CATCHING_HERE.with(|c| c.set(c.get() - 1));
    }
}

/// Installs (once) a panic hook that stays silent for the panics that
/// [`detached`] catches — on its own thread, or on a worker thread while a
/// catching call runs — since their message reaches Python in the
/// `InternalError`. Any other panic, and every panic when `RUST_BACKTRACE`
/// is set (to anything but `0`), goes to the previous hook as before.
///
/// The hook is this extension's own: the extension links its own copy of
/// `std`, so other Rust extensions in the interpreter keep theirs.
pub(crate) fn install_panic_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let verbose = std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0");
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let caught =
                CATCHING_HERE.with(Cell::get) > 0 || CATCHING_ANYWHERE.load(Ordering::SeqCst) > 0;
            if verbose || !caught {
                previous(info);
            }
        }));
    });
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(ToString::to_string)
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    format!("internal error in lpc's Rust core (please report): {what}")
}
