//! lpc-core: the hot paths of lpc, with no Python in sight.
//!
//! * [`intervals`] — `within_patched_set(ip)`: an immutable, flat, augmented
//!   interval structure with batch and stack-scan queries.
//!
//! Everything here is usable from `cargo test` and criterion alone; the PyO3
//! binding (`lpc-py`) only converts, releases the GIL and maps [`Error`].

pub mod dump;
pub mod error;
pub mod intervals;
pub mod symbols;

pub use error::{Error, Result};
pub use intervals::{IntervalTree, Range};
