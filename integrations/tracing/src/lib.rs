#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod callsites;
mod clock;
mod fields;
mod identity;
mod layer;
mod messages;
mod output;
mod spans;
mod thread;

pub use crate::fields::TRACK_FIELD;
pub use crate::layer::{Builder, FlushGuard, PerfettoLayer, View};
pub use crate::output::Overflow;
