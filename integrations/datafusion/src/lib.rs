#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod error;
mod exec;
mod function;
mod import;
mod lake;
mod plan;
mod progress;
mod request;
mod rows;
#[doc(hidden)]
pub mod stages;
mod tables;

pub use crate::error::Error;
pub use crate::exec::chunk_schema;
pub use crate::function::PerfettoTraceChunks;
pub use crate::lake::{register_lake, register_lake_in_order, Format, RowOrder};
pub use crate::progress::Progress;
pub use crate::request::{parse_time, window, SpanKinds, TraceRequest};
pub use crate::tables::TableNames;
