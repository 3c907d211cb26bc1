//! The streaming writer: packets go to any `std::io::Write` as they are made.

use std::fmt;
use std::io::{self, Write};
use std::ops::Deref;

use crate::error::{Error, Result};
use crate::model::Core;
use crate::options::Options;
use crate::out::{frame_end, Out};
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
/// received whole. A [`PacketSink`] takes a buffer whole or not at all, so
/// there the two counts are always equal.
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
    /// Set by [`with_packet_sink`](Self::with_packet_sink): the sink takes
    /// the buffer whole instead of its bytes through `write`.
    take: Option<Take<W>>,
}

/// [`PacketSink::take_packets`] of the sink's type, kept as a pointer so
/// that the writer needs no bound beyond `Write` for it.
type Take<W> = fn(&mut W, &mut Packets) -> io::Result<()>;

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
            take: None,
        }
    }

    /// A writer into `sink` with the given options that hands the sink its
    /// buffer of packets whole ([`PacketSink::take_packets`]) wherever
    /// another writer would write the buffer's bytes to it, and goes on in
    /// the buffer the sink gives back: no copy. Everything else is as with
    /// [`with_options`](Self::with_options): the same bytes, cut at the
    /// same places, the same errors (a failed hand-over keeps every byte
    /// buffered, to be offered again), and the sink's `flush` is called as
    /// there; its `write` is not called.
    ///
    /// ```
    /// use std::io::{self, Write};
    /// use perfetto_trace_writer::{
    ///     Options, PacketSink, Packets, StreamingPerfettoWriter, TraceWriter, Writer,
    /// };
    ///
    /// /// Keeps the buffers the writer fills; one that sends them to another
    /// /// thread would hand back the buffers it has written out.
    /// #[derive(Default)]
    /// struct Buffers {
    ///     full: Vec<Packets>,
    ///     spent: Vec<Packets>,
    /// }
    ///
    /// impl PacketSink for Buffers {
    ///     fn take_packets(&mut self, packets: &mut Packets) -> io::Result<()> {
    ///         let next = self.spent.pop().unwrap_or_default();
    ///         self.full.push(std::mem::replace(packets, next));
    ///         Ok(())
    ///     }
    /// }
    ///
    /// impl Write for Buffers {
    ///     // Not called by the writer; a copy, for other callers.
    ///     fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
    ///         self.full.push(Packets::from(buf.to_vec()));
    ///         Ok(buf.len())
    ///     }
    ///
    ///     fn flush(&mut self) -> io::Result<()> {
    ///         Ok(())
    ///     }
    /// }
    ///
    /// fn record(w: &mut impl TraceWriter) -> perfetto_trace_writer::Result<()> {
    ///     let p = w.process("svc", Some(7), "service", &[])?;
    ///     let t = w.thread(p, "main", Some(7), "main")?;
    ///     for i in 0..1_000 {
    ///         w.complete_span(t, i * 10, i * 10 + 5, "work", "app", "src/main.rs", 3)?;
    ///     }
    ///     w.finish()?;
    ///     Ok(())
    /// }
    ///
    /// let options = Options::new().flush_threshold(4096);
    /// let mut w = StreamingPerfettoWriter::with_packet_sink(Buffers::default(), options);
    /// record(&mut w)?;
    /// let sink = w.into_inner()?;
    /// assert!(sink.full.len() > 1);
    /// // Each buffer is whole packets, and together they are the trace.
    /// let trace: Vec<u8> = sink.full.iter().flat_map(|p| p.iter().copied()).collect();
    /// let mut all = Writer::new();
    /// record(&mut all)?;
    /// assert_eq!(trace, all.bytes());
    /// # Ok::<(), perfetto_trace_writer::Error>(())
    /// ```
    pub fn with_packet_sink(sink: W, options: Options) -> Self
    where
        W: PacketSink,
    {
        let mut w = Self::with_options(sink, options);
        w.take = Some(W::take_packets);
        w
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
        if let Some(take) = self.take {
            return self.hand_over(take);
        }
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

    /// [`drain`](Self::drain) into a [`PacketSink`]: the buffer goes to the
    /// sink whole, and the one it puts in its place becomes the buffer.
    fn hand_over(&mut self, take: Take<W>) -> Result<()> {
        let sink = self.sink.as_mut().ok_or(Error::Finished)?;
        let len = self.core.buffer().len();
        if len == 0 {
            return Ok(());
        }
        let mut packets = Packets {
            out: std::mem::replace(self.core.buffer_mut(), Out::with_room(0)),
        };
        let result = loop {
            match take(sink, &mut packets) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => break r,
            }
        };
        // Failed, the sink left the bytes where they were: they stay.
        let mut out = packets.out;
        if result.is_ok() {
            // What the sink handed back is room only; the buffer it took
            // ended on a packet boundary, as every buffer between calls.
            out.clear();
            self.written += len as u64;
            self.whole = self.written;
            self.partial = 0;
            // Its room may be less than the last buffer's.
            self.fits_below = 0;
        }
        *self.core.buffer_mut() = out;
        result.map_err(Error::Io)
    }
}

/// A writer's buffer of whole packets, handed to a [`PacketSink`] by a
/// [`StreamingPerfettoWriter`] made with
/// [`with_packet_sink`](StreamingPerfettoWriter::with_packet_sink). It
/// dereferences to its bytes. Its room stays allocated through
/// [`clear`](Self::clear), and so does the writer's preparation of it: a
/// spent buffer handed back to the writer is filled again without an
/// allocation.
pub struct Packets {
    out: Out,
}

impl Packets {
    /// An empty buffer, without room: no allocation.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty buffer with room for `capacity` bytes, allocated now.
    pub fn with_capacity(capacity: usize) -> Self {
        Packets {
            out: Out::with_room(capacity),
        }
    }

    /// The bytes the buffer holds room for, its own included, before it
    /// grows.
    pub fn capacity(&self) -> usize {
        self.out.capacity()
    }

    /// Empties the buffer, keeping its room.
    pub fn clear(&mut self) {
        self.out.clear();
    }

    /// The bytes, as a `Vec`.
    pub fn into_vec(self) -> Vec<u8> {
        self.out.into_vec()
    }
}

impl Default for Packets {
    fn default() -> Self {
        Self::new()
    }
}

impl From<Vec<u8>> for Packets {
    /// A buffer holding `bytes`, with their `Vec`'s room.
    fn from(bytes: Vec<u8>) -> Self {
        Packets {
            out: Out::from(bytes),
        }
    }
}

impl Deref for Packets {
    type Target = [u8];

    /// The bytes.
    fn deref(&self) -> &[u8] {
        &self.out
    }
}

impl fmt::Debug for Packets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packets")
            .field("len", &self.out.len())
            .finish()
    }
}

/// A sink that takes a [`StreamingPerfettoWriter`]'s buffer whole instead
/// of a copy of its bytes (see
/// [`with_packet_sink`](StreamingPerfettoWriter::with_packet_sink)), to
/// pass it on (to another thread, say) and hand back a spent one.
pub trait PacketSink: Write {
    /// Takes `packets`, the trace's next bytes (whole packets, in order),
    /// and puts in its place the buffer the writer goes on in: any buffer
    /// will do (the writer empties it first), and a spent one of about the
    /// same room saves the writer an allocation. A sink may also copy the
    /// bytes and leave the buffer as it is.
    ///
    /// # Errors
    /// Any I/O error: the writer's call returns it as
    /// [`Error::Io`](crate::Error::Io), and `Interrupted` is retried at
    /// once. The sink must then leave `packets` as it was given: the writer
    /// keeps those bytes and hands them over again with the next call that
    /// writes, or with `flush`, so that the sink sees no byte twice and
    /// misses none.
    fn take_packets(&mut self, packets: &mut Packets) -> io::Result<()>;
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
