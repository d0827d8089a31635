//! `lpc._core`: the PyO3 binding of lpc-core. It converts Python inputs,
//! releases the GIL around core work, and maps core errors (see `errors.rs`);
//! every algorithm lives in lpc-core.

mod convert;
mod dump;
mod errors;
mod intervals;
mod symbols;

use pyo3::pymodule;

#[pymodule]
mod _core {
    use pyo3::prelude::*;

    #[pymodule_export]
    use super::intervals::PyIntervalTree;

    #[pymodule_export]
    #[allow(non_upper_case_globals)]
    const __version__: &str = env!("CARGO_PKG_VERSION");

    /// Each binding file registers its own functions and classes, so that
    /// adding a parser or a symbol source touches one file.
    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        crate::errors::install_panic_hook();
        crate::dump::register(m)?;
        crate::symbols::register(m)
    }

    /// Panics inside the core on purpose, so tests can prove that a Rust panic
    /// surfaces as ``lpc.errors.InternalError`` instead of aborting Python.
    #[pyfunction]
    fn _panic_for_tests(py: Python<'_>, message: String) -> PyResult<()> {
        crate::errors::detached(py, move || panic!("{message}"))
    }
}
