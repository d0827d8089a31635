//! Binding of `lpc_core::symbols` (registered from `lib.rs`).

use pyo3::prelude::*;

/// Adds this file's functions and classes to `lpc._core`.
#[allow(clippy::unnecessary_wraps)]
pub(crate) fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
