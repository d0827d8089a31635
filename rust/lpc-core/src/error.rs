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

    /// A negative id: batch answers use -1 for "no range", so ids must be >= 0.
    #[error("range {index}: id {id} is negative (ids must be >= 0; -1 marks a miss)")]
    NegativeId { index: usize, id: i64 },

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

    /// A CSR offsets array whose last offset is not the number of frames
    /// (or that is empty while there are frames).
    #[error(
        "offsets: the last offset must be the number of frames ({frames}), got {}",
        last.map_or_else(|| "no offset at all".to_owned(), |v| v.to_string())
    )]
    OffsetsEnd { last: Option<u64>, frames: usize },

    /// A frame token id with no entry in the token table.
    #[error("tokens[{index}] = {token} is out of range: there are {tokens} token addresses")]
    TokenOutOfRange {
        index: usize,
        token: u32,
        tokens: usize,
    },

    /// A stack dump in which no known format was recognised.
    #[error("no known stack-dump format recognised (tried: {tried})")]
    UnrecognizedDump { tried: String },

    /// A dump format whose parser is not part of this build.
    #[error("no parser for dump format {format:?} in this build")]
    FormatUnavailable { format: &'static str },

    /// An input file that could not be read: "no such file", "is a
    /// directory", "cannot read: <reason>".
    #[error("{message}")]
    Unreadable { message: String },

    /// A text input that could not be parsed at a given line (1-based).
    #[error("line {line}: {message}")]
    Parse { line: usize, message: String },

    /// A symbol source that cannot be used (no symbol, no text symbol, more
    /// names than 32-bit offsets hold); `line` (1-based) when one line is to blame.
    #[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    Symbols {
        line: Option<usize>,
        message: String,
    },

    /// Every text symbol reads as address 0: kallsyms was read without the
    /// privilege to see addresses (`kernel.kptr_restrict`, CAP_SYSLOG).
    #[error(
        "all {symbols} text symbols have address 0: the addresses were hidden \
         (kernel.kptr_restrict >= 1 without CAP_SYSLOG, or kptr_restrict = 2); \
         read /proc/kallsyms as root with kptr_restrict <= 1"
    )]
    ZeroAddresses { symbols: usize },
}

/// Result alias of the core.
pub type Result<T> = std::result::Result<T, Error>;
