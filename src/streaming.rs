//! The streaming writer: packets go to any `std::io::Write` as they are made.

use std::fmt;
use std::io::{self, Write};

use crate::error::{Error, Result};
use crate::model::Core;
use crate::options::Options;
use crate::out::frame_end;
use crate::trace_writer::{sealed, TraceWriter};

/// Hands the trace to a sink `W` as it is produced, in writes of about
/// [`Options::flush_threshold`] bytes, so `W` may be an unbuffered file or
/// socket. Its memory does not grow with the number of events, only with the
/// distinct strings interned and the spans in flight.
///
/// For the same calls it produces the same bytes as [`Writer`](crate::Writer).
///
/// # Sink failures
///
/// `Interrupted` is retried at once. Any other error of `W` (`WouldBlock`
/// included) is returned as [`Error::Io`] by the call that needed room, which
/// then did nothing, or by `flush`/`finish`. The writer stays usable: the
/// bytes `W` did not take stay buffered, and the next call that writes offers
/// them again from the first byte `W` did not take, so the sink never sees a
/// byte twice or misses one. Calling [`flush`](TraceWriter::flush) until it
/// succeeds therefore delivers every event accepted so far.
///
/// Whatever happens, the sink holds a prefix of the trace.
/// [`bytes_written`](Self::bytes_written) counts the bytes it accepted, and
/// [`whole_bytes`](Self::whole_bytes) how many of them end on a packet
/// boundary: a file cut there is a valid trace holding every packet the sink
/// received whole.
///
/// # Dropping
///
/// Like `std::io::BufWriter`, a dropped writer makes one best-effort attempt
/// to hand the sink what it holds (pending ends of complete spans included),
/// ignoring errors. Call [`finish`](TraceWriter::finish) or
/// [`into_inner`](Self::into_inner) to know that it arrived.
pub struct StreamingPerfettoWriter<W: Write> {
    core: Core,
    sink: Option<W>,
    threshold: usize,
    /// Below this many bytes buffered, a call needs neither a drain nor
    /// room: one comparison per call (see `make_room`). Recomputed when
    /// either is done; the buffer never shrinks, so a stale value is only
    /// too low.
    fits_below: usize,
    /// Bytes the sink accepted.
    written: u64,
    /// Of those, the bytes up to the last packet boundary.
    whole: u64,
    /// Bytes of a packet the sink took only in part that are still at the
    /// front of the buffer (0: the buffer starts on a packet boundary).
    partial: usize,
}

impl<W: Write> StreamingPerfettoWriter<W> {
    /// A writer into `sink` with default [`Options`].
    pub fn new(sink: W) -> Self {
        Self::with_options(sink, Options::default())
    }

    /// A writer into `sink` with the given options.
    pub fn with_options(sink: W, options: Options) -> Self {
        let core = Core::new(&options);
        StreamingPerfettoWriter {
            core,
            sink: Some(sink),
            threshold: options.flush_threshold,
            fits_below: 0,
            written: 0,
            whole: 0,
            partial: 0,
        }
    }

    /// Bytes the sink has accepted.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Bytes of the sink that are whole packets: the prefix of what it
    /// accepted up to the last packet boundary, always a valid trace.
    pub fn whole_bytes(&self) -> u64 {
        self.whole
    }

    /// Bytes encoded but not yet handed to the sink.
    pub fn buffered(&self) -> usize {
        self.core.buffer().len()
    }

    /// The sink.
    pub fn get_ref(&self) -> &W {
        self.sink.as_ref().expect(SINK)
    }

    /// The sink, mutably: writing to it directly corrupts the trace.
    pub fn get_mut(&mut self) -> &mut W {
        self.sink.as_mut().expect(SINK)
    }

    /// Finishes (see [`TraceWriter::finish`]) and gives the sink back.
    ///
    /// # Errors
    /// An [`IntoInnerError`] if the sink fails (its [`error`](IntoInnerError::error)
    /// is an [`Error::Io`]). It holds the writer, with every byte the sink
    /// did not take: call `into_inner` on it again to retry, or take the sink
    /// as it is with [`IntoInnerError::into_sink`] to salvage or close it.
    /// It converts into an [`Error`], so `?` works in functions returning
    /// this crate's [`Result`].
    pub fn into_inner(mut self) -> Result<W, IntoInnerError<W>> {
        match TraceWriter::finish(&mut self) {
            Ok(_) => match self.sink.take() {
                Some(sink) => Ok(sink),
                None => Err(IntoInnerError {
                    writer: Box::new(self),
                    error: Error::Finished,
                }),
            },
            Err(error) => Err(IntoInnerError {
                writer: Box::new(self),
                error,
            }),
        }
    }

    /// Records that the sink took the first `done` bytes of the buffer.
    fn advance(&mut self, done: usize) {
        let out = self.core.buffer_mut();
        self.written += done as u64;
        if done == out.len() {
            // The buffer always ends on a packet boundary.
            self.whole = self.written;
            self.partial = 0;
            out.clear();
            return;
        }
        // Walk the packets the sink took whole; the core writes only framed
        // `Trace.packet` fields (key 0x0a, then a varint length).
        let mut at = self.partial;
        if at <= done {
            while let Some(next) = frame_end(out, at).filter(|&next| next <= done) {
                at = next;
            }
            self.whole = self.written - (done - at) as u64;
            self.partial = match frame_end(out, at) {
                Some(next) if at < done => next - done,
                _ => 0,
            };
        } else {
            self.partial = at - done;
        }
        out.consume(done);
    }

    fn drain(&mut self) -> Result<()> {
        let sink = self.sink.as_mut().ok_or(Error::Finished)?;
        let out = self.core.buffer();
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
        self.advance(done);
        result.map_err(Error::Io)
    }
}

/// What [`StreamingPerfettoWriter::into_inner`] returns when the final
/// flush fails: the error, and the writer with everything it still holds,
/// as `std::io::IntoInnerError` does for `BufWriter`.
pub struct IntoInnerError<W: Write> {
    /// Boxed: the writer is large, and this is only the failure path.
    writer: Box<StreamingPerfettoWriter<W>>,
    error: Error,
}

impl<W: Write> IntoInnerError<W> {
    /// Why the final flush failed.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The writer, unchanged by the failure: the bytes the sink did not take
    /// are still buffered, so `into_inner` may be called on it again.
    pub fn writer(&self) -> &StreamingPerfettoWriter<W> {
        &self.writer
    }

    /// The writer, to retry (`into_inner` again) or go on writing.
    pub fn into_writer(self) -> StreamingPerfettoWriter<W> {
        *self.writer
    }

    /// The error, dropping the writer (which then tries once more to hand
    /// its bytes to the sink, like any dropped writer).
    pub fn into_error(self) -> Error {
        self.error
    }

    /// The sink as it is, without another attempt to write to it: it holds
    /// [`bytes_written`](StreamingPerfettoWriter::bytes_written) bytes of the
    /// trace, of which the first [`whole_bytes`](StreamingPerfettoWriter::whole_bytes)
    /// are whole packets (read them from [`writer`](Self::writer) first).
    /// The bytes the sink did not take are dropped.
    pub fn into_sink(mut self) -> W {
        self.writer.sink.take().expect(SINK)
    }
}

impl<W: Write> fmt::Debug for IntoInnerError<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoInnerError")
            .field("error", &self.error)
            .field("bytes_written", &self.writer.written)
            .field("buffered", &self.writer.buffered())
            .finish()
    }
}

impl<W: Write> fmt::Display for IntoInnerError<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl<W: Write> std::error::Error for IntoInnerError<W> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<W: Write> From<IntoInnerError<W>> for Error {
    fn from(e: IntoInnerError<W>) -> Self {
        e.into_error()
    }
}

/// Room kept free ahead of the encoder: more than most packets need.
const ROOM: usize = 512;

impl<W: Write> StreamingPerfettoWriter<W> {
    /// Drains the buffer once it reached the threshold, or grows it when
    /// it has less than [`ROOM`] left.
    #[cold]
    #[inline(never)]
    fn make_room_slow(&mut self) -> Result<()> {
        let out = self.core.buffer();
        if out.len() >= self.threshold {
            self.drain()?;
        } else if out.room() < ROOM {
            self.grow();
        }
        // Neither is needed while the length stays below both bounds.
        let capacity = self.core.buffer().capacity();
        self.fits_below = self.threshold.min((capacity + 1).saturating_sub(ROOM));
        Ok(())
    }

    /// Grows the buffer by doubling, as `Vec` would, but never past the
    /// threshold plus [`ROOM`]: small traces stay small, and long ones reach
    /// their final size in a few steps without overshooting it twofold.
    #[cold]
    fn grow(&mut self) {
        let out = self.core.buffer_mut();
        let target = (out.capacity() * 2)
            .min(self.threshold + ROOM)
            .max(out.len() + ROOM);
        out.reserve_exact(target - out.len());
    }
}

/// The sink is only taken by `into_inner` and `IntoInnerError::into_sink`,
/// which consume the writer.
const SINK: &str = "a writer keeps its sink until into_inner";

impl<W: Write> Drop for StreamingPerfettoWriter<W> {
    fn drop(&mut self) {
        if self.sink.is_some() {
            self.core.finish();
            let _ = self.drain();
        }
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
        if self.core.buffer().len() >= self.fits_below {
            self.make_room_slow()?;
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
