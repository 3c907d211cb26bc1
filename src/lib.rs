#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod annotations;
mod chunked;
mod core;
mod emitter;
mod encoding;
mod error;
mod event;
mod ids;
pub mod import;
pub mod inspect;
mod interning;
mod limits;
mod open_async;
mod options;
mod out;
mod sequence;
mod streaming;
mod trace_writer;
mod track_options;
mod writer;

pub use crate::chunked::{Chunk, ChunkedWriter};
pub use crate::core::OpenSpan;
pub use crate::error::{Error, Result};
pub use crate::event::{Arg, Correlation, Event, Log, LogSeverity, StackFrame, Value};
pub use crate::ids::{
    AsyncLane, AsyncParent, CounterTrack, InstantTrack, NamedTrack, ParentTrack, ProcessTrack,
    ThreadTrack, TrackUuid,
};
pub use crate::limits::{
    MAX_ARG_DEPTH, MAX_CALLSTACK_DEPTH, MAX_EVENT_COUNTERS, MAX_SPAN_DEPTH, MAX_STRING_LEN,
};
pub use crate::options::Options;
pub use crate::streaming::{IntoInnerError, StreamingPerfettoWriter};
pub use crate::trace_writer::TraceWriter;
pub use crate::track_options::{
    ChildOrdering, Clock, CounterOptions, CounterSample, CounterUnit, LaneOptions, ProcessOptions,
    SiblingMerge, ThreadOptions, TrackOptions,
};
pub use crate::writer::Writer;

/// The prost types of the schema in `protos/`, to decode and inspect traces.
#[allow(missing_docs, clippy::all)]
pub mod protos {
    include!(concat!(env!("OUT_DIR"), "/perfetto.protos.rs"));
}
