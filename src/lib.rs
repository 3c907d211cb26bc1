#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod chunked;
mod core;
mod encoding;
mod error;
mod event;
mod ids;
pub mod import;
pub mod inspect;
mod interning;
mod open_async;
mod options;
mod out;
mod sequence;
mod streaming;
mod trace_writer;
mod track_options;
mod writer;

pub use crate::chunked::{Chunk, ChunkedWriter};
pub use crate::core::{OpenSpan, MAX_SPAN_DEPTH, MAX_STRING_LEN};
pub use crate::error::{Error, Result};
pub use crate::event::{Arg, Event, Value, MAX_ARG_DEPTH};
pub use crate::ids::{
    AsyncLane, AsyncParent, CounterTrack, InstantTrack, NamedTrack, ParentTrack, ProcessTrack,
    ThreadTrack, TrackUuid,
};
pub use crate::options::Options;
pub use crate::streaming::{IntoInnerError, StreamingPerfettoWriter};
pub use crate::trace_writer::TraceWriter;
pub use crate::track_options::{
    ChildOrdering, CounterOptions, CounterSample, CounterUnit, SiblingMerge, TrackOptions,
};
pub use crate::writer::Writer;

/// The prost types of the schema in `protos/`, to decode and inspect traces.
#[allow(missing_docs, clippy::all)]
pub mod protos {
    include!(concat!(env!("OUT_DIR"), "/perfetto.protos.rs"));
}
