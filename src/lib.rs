#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

// Layers, bottom up; each module imports only from the layers below it (see
// the README's layout table).
// Leaf types.
mod error;
mod event;
mod ids;
mod keys;
mod limits;
mod options;
mod track_options;
// Wire encoding.
mod annotations;
mod encoding;
mod out;
// State: interning, sequences, the emitter.
mod callstacks;
mod emitter;
mod interning;
mod sequence;
// The model: registry, nesting, async spans, the core.
mod model;
// Front ends.
mod chunked;
mod streaming;
mod trace_writer;
mod writer;
// On top of the front ends, and beside them.
pub mod import;
pub mod inspect;

pub use crate::chunked::{Chunk, ChunkedWriter};
pub use crate::emitter::TrackTemplate;
pub use crate::error::{Error, Result};
pub use crate::event::{Arg, Correlation, Event, Log, LogSeverity, StackFrame, Value};
pub use crate::ids::{
    AsyncLane, AsyncParent, CounterTrack, InstantTrack, NamedTrack, ParentTrack, ProcessTrack,
    ThreadTrack, TrackUuid,
};
pub use crate::keys::EventKey;
pub use crate::limits::{
    MAX_ARG_DEPTH, MAX_CALLSTACK_DEPTH, MAX_EVENT_COUNTERS, MAX_SPAN_DEPTH, MAX_STRING_LEN,
};
pub use crate::model::OpenSpan;
pub use crate::options::Options;
pub use crate::streaming::{IntoInnerError, PacketSink, Packets, StreamingPerfettoWriter};
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
