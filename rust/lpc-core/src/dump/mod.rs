//! Stack-dump parsers: every format a live-patch engineer has, into one columnar model.
//!
//! A parsed dump is a [`Dump`]: per-task columns plus per-frame columns in CSR
//! layout (`frame_offsets[t]..frame_offsets[t + 1]` are task `t`'s frames,
//! innermost first). Strings that repeat (function and module names) are
//! interned into `names`; frames refer to them by index. Nothing here knows
//! a consistency model: parsers report what the text says, conservatively
//! (an empty or unreadable stack is never "clean").
//!
//! Parsers build a dump through [`DumpBuilder`], so that every format fills
//! the same columns the same way, and every line that belongs to no known
//! construct goes through [`DumpBuilder::skip`] — counted, never dropped.

pub use input::read_input;

mod archtrace;
pub mod dmesg;
mod input;
pub mod ksym;
pub mod lines;
pub mod paste;
pub mod procsnap;
pub mod procstack;

pub mod bpftrace;
pub mod crash;
pub mod drgn;
pub mod eustack;
pub mod gdb;
pub mod perf;
mod toolscan;

mod builder;
mod intern;
mod model;
mod parallel;
mod registry;
pub mod segments;

pub use builder::DumpBuilder;
#[cfg(test)]
pub(crate) use builder::PARALLEL_APPEND_FRAMES;
pub use model::{
    Dump, FrameContext, FrameRecord, FrameRef, FrameSite, StackStatus, TaskColumns, TaskHeader,
    TaskLoss, NO_FLAGS, NO_ID, NO_NAME, NO_STATE, SKIPPED_SAMPLES, UNKNOWN_U64,
};
pub(crate) use parallel::parse_chunks_with;
pub use parallel::{
    parse_bytes, parse_bytes_with, parse_file, parse_file_with, parse_threads, repair_utf8,
    FILE_PIECE, PARALLEL_MIN_BYTES, WARN_NOT_UTF8,
};
pub use registry::{available_formats, detect, parse, Format};

#[cfg(test)]
mod tests;
