//! The streaming writer: packets go to any `std::io::Write` as they are made.

use std::io::{self, Write};

use crate::core::Core;
use crate::error::{Error, Result};
use crate::options::Options;
use crate::trace_writer::{sealed, TraceWriter};

/// Hands the trace to a sink `W` as it is produced, in writes of about
/// [`Options::flush_threshold`] bytes, so `W` may be an unbuffered file or
/// socket. Its memory does not grow with the number of events, only with the
/// distinct strings interned and the spans in flight.
///
/// For the same calls it produces the same bytes as [`Writer`](crate::Writer).
///
/// # Sink failures
/// `Interrupted` is retried. Any other error of `W` is returned as
/// [`Error::Io`] by the call that needed room (which then did nothing) or by
/// `flush`/`finish`; bytes `W` did not take stay buffered and are offered
/// again by the next write, so nothing is lost or duplicated.
/// [`bytes_written`](Self::bytes_written) counts what `W` accepted.
///
/// Dropping the writer discards what is still buffered; call
/// [`finish`](TraceWriter::finish) or [`into_inner`](Self::into_inner).
pub struct StreamingPerfettoWriter<W: Write> {
    core: Core,
    sink: Option<W>,
    threshold: usize,
    written: u64,
}

impl<W: Write> StreamingPerfettoWriter<W> {
    /// A writer into `sink` with default [`Options`].
    pub fn new(sink: W) -> Self {
        Self::with_options(sink, Options::default())
    }

    /// A writer into `sink` with the given options.
    pub fn with_options(sink: W, options: Options) -> Self {
        let mut core = Core::new(options.sequence_id.get(), options.compact);
        // One allocation up front: the buffer never grows past the threshold
        // plus one packet.
        core.enc.out.reserve(options.flush_threshold + 1024);
        StreamingPerfettoWriter {
            core,
            sink: Some(sink),
            threshold: options.flush_threshold,
            written: 0,
        }
    }

    /// Bytes the sink has accepted.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Bytes encoded but not yet handed to the sink.
    pub fn buffered(&self) -> usize {
        self.core.enc.out.len()
    }

    /// The sink.
    pub fn get_ref(&self) -> Option<&W> {
        self.sink.as_ref()
    }

    /// Finishes (see [`TraceWriter::finish`]) and gives the sink back.
    ///
    /// # Errors
    /// [`Error::Io`] if the sink fails; the writer is then dropped with the
    /// bytes it still held.
    pub fn into_inner(mut self) -> Result<W> {
        TraceWriter::finish(&mut self)?;
        self.sink.take().ok_or(Error::Finished)
    }

    fn drain(&mut self) -> Result<()> {
        let sink = self.sink.as_mut().ok_or(Error::Finished)?;
        let out = &mut self.core.enc.out;
        let mut done = 0;
        let result = loop {
            if done == out.len() {
                break Ok(());
            }
            match sink.write(&out[done..]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.written += done as u64;
        if done == out.len() {
            out.clear();
        } else {
            out.drain(..done);
        }
        result.map_err(Error::Io)
    }
}

impl<W: Write> sealed::Sink for StreamingPerfettoWriter<W> {
    fn core(&self) -> &Core {
        &self.core
    }

    fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }

    #[inline]
    fn make_room(&mut self) -> Result<()> {
        if self.core.enc.out.len() >= self.threshold {
            self.drain()?;
        }
        Ok(())
    }

    fn flush_all(&mut self) -> Result<()> {
        self.drain()?;
        let sink = self.sink.as_mut().ok_or(Error::Finished)?;
        loop {
            match sink.flush() {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r.map_err(Error::Io),
            }
        }
    }
}

impl<W: Write> TraceWriter for StreamingPerfettoWriter<W> {}
