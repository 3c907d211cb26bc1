//! A writer that hands the trace out as numbered chunks: no I/O, no async
//! runtime, for services that send a trace in pieces (rows of a SQL result,
//! HTTP chunks, messages on a queue).

use std::collections::VecDeque;

use crate::error::Result;
use crate::model::Core;
use crate::options::Options;
use crate::out::{frame_end, Out};
use crate::trace_writer::{sealed, TraceWriter};

/// One piece of a trace. Chunks end on packet boundaries, so each decodes
/// alone as a `Trace`, and the chunks of a writer concatenated in `id` order
/// are byte for byte what [`Writer`](crate::Writer) makes of the same calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Its place in the trace, from 0.
    pub id: u64,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// Gathers packets into chunks of `chunk_size` bytes or a little more: a
/// chunk closes at the first packet boundary at or past `chunk_size`, so
/// every chunk but the last holds at least `chunk_size` bytes and exceeds it
/// by less than its last packet (a packet larger than the size makes a chunk
/// of its own). A call that writes several packets may be split between two
/// chunks. Take chunks with [`take_chunk`](Self::take_chunk) as they fill
/// (a chunk is complete once the call after the one that filled it began, or
/// at [`finish_chunks`](Self::finish_chunks)), and the last with
/// `finish_chunks`; chunks not taken stay queued.
pub struct ChunkedWriter {
    core: Core,
    chunk_size: usize,
    next_id: u64,
    ready: VecDeque<Chunk>,
    /// A packet boundary in the buffer below `chunk_size` (where the last
    /// call began): boundaries are walked from here, not from the start.
    boundary: usize,
}

impl ChunkedWriter {
    /// Chunks of about `chunk_size` bytes, default [`Options`].
    pub fn new(chunk_size: usize) -> Self {
        Self::with_options(chunk_size, Options::default())
    }

    /// Chunks of about `chunk_size` bytes (at least 1).
    pub fn with_options(chunk_size: usize, options: Options) -> Self {
        ChunkedWriter {
            core: Core::new(&options),
            chunk_size: chunk_size.max(1),
            next_id: 0,
            ready: VecDeque::new(),
            boundary: 0,
        }
    }

    /// The oldest full chunk not yet taken.
    pub fn take_chunk(&mut self) -> Option<Chunk> {
        self.ready.pop_front()
    }

    /// Finishes (see [`TraceWriter::finish`]) and returns every chunk not
    /// yet taken, the last one partly full.
    ///
    /// # Errors
    /// None in practice: no I/O happens here.
    pub fn finish_chunks(mut self) -> Result<Vec<Chunk>> {
        TraceWriter::finish(&mut self)?;
        self.seal_full();
        let out = self.core.buffer_mut();
        if !out.is_empty() {
            let data = std::mem::replace(out, Out::with_room(0)).into_vec();
            self.push(data);
        }
        Ok(self.ready.into())
    }

    /// Closes every full chunk in the buffer, each at the first packet
    /// boundary at or past `chunk_size`.
    fn seal_full(&mut self) {
        while self.core.buffer().len() >= self.chunk_size {
            let out = self.core.buffer();
            let mut at = self.boundary;
            while at < self.chunk_size {
                // The core writes whole frames only, so a next one is there.
                at = frame_end(out, at).map_or(out.len(), |end| end.min(out.len()));
            }
            let rest = Out::with_room(self.chunk_size + 1024);
            let mut whole = std::mem::replace(self.core.buffer_mut(), rest);
            // The packets past the boundary start the next chunk.
            self.core.buffer_mut().extend_from_slice(&whole[at..]);
            whole.truncate(at);
            self.boundary = 0;
            self.push(whole.into_vec());
        }
    }

    fn push(&mut self, data: Vec<u8>) {
        self.ready.push_back(Chunk {
            id: self.next_id,
            data,
        });
        self.next_id += 1;
    }
}

impl sealed::Sink for ChunkedWriter {
    fn core(&self) -> &Core {
        &self.core
    }

    fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }

    fn make_room(&mut self) -> Result<()> {
        if self.core.buffer().len() >= self.chunk_size {
            self.seal_full();
        }
        self.boundary = self.core.buffer().len();
        Ok(())
    }

    fn flush_all(&mut self) -> Result<()> {
        Ok(())
    }
}

impl TraceWriter for ChunkedWriter {}
