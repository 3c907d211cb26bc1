//! The buffered writer: the whole trace in memory.

use prost::Message;

use crate::error::Result;
use crate::model::Core;
use crate::options::Options;
use crate::protos;
use crate::trace_writer::{sealed, TraceWriter};

/// Keeps the encoded trace in memory. For small traces and tests; for long
/// ones use [`StreamingPerfettoWriter`](crate::StreamingPerfettoWriter), which
/// produces the same bytes.
pub struct Writer {
    core: Core,
}

impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Writer {
    /// A writer with default [`Options`].
    #[inline]
    pub fn new() -> Self {
        Self::with_options(Options::default())
    }

    /// A writer with the given options.
    #[inline]
    pub fn with_options(options: Options) -> Self {
        // The core's buffer starts with room for a small trace.
        Writer {
            core: Core::new(&options),
        }
    }

    /// The trace so far: a serialized `perfetto.protos.Trace`.
    pub fn bytes(&self) -> &[u8] {
        self.core.buffer()
    }

    /// The size of the trace so far, in bytes.
    pub fn len(&self) -> usize {
        self.core.buffer().len()
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.core.buffer().is_empty()
    }

    /// The trace decoded with the generated types, to inspect what was
    /// written.
    ///
    /// # Errors
    /// None in practice: the writer only produces valid traces.
    pub fn to_trace(&self) -> Result<protos::Trace, prost::DecodeError> {
        protos::Trace::decode(self.bytes())
    }

    /// The trace's bytes. Call [`finish`](TraceWriter::finish) first to
    /// write the pending ends of complete spans.
    #[inline]
    pub fn into_bytes(self) -> Vec<u8> {
        self.core.into_buffer().into_vec()
    }
}

impl sealed::Sink for Writer {
    fn core(&self) -> &Core {
        &self.core
    }

    fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }

    fn make_room(&mut self) -> Result<()> {
        Ok(())
    }

    fn flush_all(&mut self) -> Result<()> {
        Ok(())
    }
}

impl TraceWriter for Writer {}
