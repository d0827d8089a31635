//! The one error type of the core. The binding maps each variant to one Python
//! exception class in one place (`lpc-py/src/errors.rs`).

use thiserror::Error;

/// Everything the core can refuse.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// A range whose start is not below its end. Half-open `[start, end)`
    /// ranges must hold at least one address.
    #[error("range {index}: start {start:#x} is not below end {end:#x}")]
    InvalidRange { index: usize, start: u64, end: u64 },

    /// More ranges than the bucket table's 32-bit slots can count.
    #[error("{count} ranges: at most 4294967295 fit one tree")]
    TooManyRanges { count: usize },

    /// Parallel input arrays whose lengths disagree.
    #[error("{what}: lengths differ ({left} vs {right})")]
    LengthMismatch {
        what: &'static str,
        left: usize,
        right: usize,
    },

    /// A CSR offsets array that does not describe a partition of the frames.
    #[error("offsets[{index}] = {value} is invalid: {reason}")]
    InvalidOffsets {
        index: usize,
        value: u64,
        reason: &'static str,
    },

    /// A stack dump in which no known format was recognised.
    #[error("no known stack-dump format recognised (tried: {tried})")]
    UnrecognizedDump { tried: String },

    /// A dump format whose parser is not part of this build.
    #[error("no parser for dump format {format:?} in this build")]
    FormatUnavailable { format: &'static str },

    /// A text input that could not be parsed at a given line (1-based).
    #[error("line {line}: {message}")]
    Parse { line: usize, message: String },
}

/// Result alias of the core.
pub type Result<T> = std::result::Result<T, Error>;
