//! A [`tracing_subscriber::Layer`] that writes [Perfetto](https://perfetto.dev)
//! traces of a program's threads and async tasks through
//! [`perfetto_trace_writer`].
#![deny(missing_docs)]

mod callsites;
mod clock;
mod fields;
mod identity;
mod layer;
mod output;
mod spans;
mod thread;

pub use crate::fields::TRACK_FIELD;
pub use crate::layer::{Builder, FlushGuard, PerfettoLayer, View};
pub use crate::output::Overflow;
