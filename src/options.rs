//! Settings chosen when a writer is created.

use std::num::NonZeroU32;

use crate::track_options::Clock;

/// How a writer encodes and buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    pub(crate) sequence_id: NonZeroU32,
    pub(crate) flush_threshold: usize,
    pub(crate) compact: bool,
    /// How many sequence ids from `sequence_id` on this writer may use.
    pub(crate) sequence_span: u32,
    /// Caps on the interning tables: entries, bytes.
    pub(crate) intern_limits: (usize, usize),
    /// The clock the caller's timestamps are in, and a reading of it and of
    /// BOOTTIME at one instant.
    pub(crate) clock: Clock,
    pub(crate) clock_reading: (u64, u64),
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sequence_id: NonZeroU32::MIN,
            flush_threshold: 64 * 1024,
            compact: false,
            sequence_span: u32::MAX,
            intern_limits: (usize::MAX, usize::MAX),
            clock: Clock::Boottime,
            clock_reading: (0, 0),
        }
    }
}

impl Options {
    /// Default options: sequence id 1, 64 KiB writes.
    pub fn new() -> Self {
        Self::default()
    }

    /// The `trusted_packet_sequence_id` of every packet. Writers whose
    /// outputs are concatenated into one trace need distinct ids.
    pub fn sequence_id(mut self, id: NonZeroU32) -> Self {
        self.sequence_id = id;
        self
    }

    /// Settings for the `index`-th of several writers producing one trace
    /// together (one per process, per worker thread, per partition of a
    /// query): sequence ids `1 + index * 65536` up to 65,536 of them, so that
    /// the writers' sequences never meet. Concatenate their outputs, in any
    /// order, into one trace (see the crate docs). Indices up to 65,534.
    pub fn partition(mut self, index: u16) -> Self {
        self.sequence_id = NonZeroU32::MIN.saturating_add(u32::from(index) << 16);
        self.sequence_span = 1 << 16;
        self
    }

    /// Caps the interning tables at `entries` strings and source locations,
    /// or `bytes` bytes of them, whichever comes first, for writers fed
    /// forever. At a cap the tables are emptied and every sequence starts a
    /// new generation of incremental state (`SEQ_INCREMENTAL_STATE_CLEARED`,
    /// with its defaults and clock sent again in compact mode) before its
    /// next event; strings used after that are defined again. Memory then
    /// stays bounded however many distinct names pass through. Unbounded by
    /// default.
    pub fn intern_limit(mut self, entries: usize, bytes: usize) -> Self {
        self.intern_limits = (entries.max(1), bytes.max(1));
        self
    }

    /// Compact encoding: each busy thread or async track (one that has had
    /// 4 spans) moves to a sequence of its own (ids `sequence_id + 1`, `+ 2`,
    /// ... in order of moving, within the writer's span of ids) whose
    /// defaults name its track, with timestamps as deltas on a
    /// sequence-scoped incremental clock. Everything else is written as in
    /// default mode. A track defines strings again on its own sequence only
    /// as far as what it saved there pays for them, so compact mode never
    /// writes more than 128 bytes per busy track beyond default mode (and an
    /// opening packet per track and generation under
    /// [`intern_limit`](Self::intern_limit)), whatever the strings. About
    /// 0.64 of the bytes per event of default mode on long-running threads,
    /// the same bytes on short traces; a few percent slower per event. The
    /// trace shows exactly the same (see the README's "Compact mode").
    pub fn compact(mut self, compact: bool) -> Self {
        self.compact = compact;
        self
    }

    /// The clock the writer's timestamps are in (BOOTTIME by default), for
    /// callers that read another one, with a reading of it (`reading`) and
    /// of BOOTTIME (`boottime`) taken at one instant. It becomes the trace's
    /// clock (`ClockSnapshot.primary_trace_clock`), the writer's sequences
    /// name it in their defaults, and the writer's first packet holds the
    /// two readings, which relate the trace to BOOTTIME, the clock the trace
    /// processor otherwise assumes (without them it reports the clocks
    /// unrelated). With [`Clock::Realtime`], times are dates as they are.
    /// Writers of one trace should be given the same clock and readings.
    ///
    /// ```
    /// use perfetto_trace_writer::{inspect, Clock, Options, TraceWriter, Writer};
    /// let now = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z
    /// let options = Options::new().timestamp_clock(Clock::Realtime, now, 42_000_000_000);
    /// let mut w = Writer::with_options(options);
    /// let p = w.process("svc", Some(7), "service", &[])?;
    /// let t = w.thread(p, "main", Some(7), "main")?;
    /// w.complete_span(t, now, now + 1_000, "work", "", "", 0)?;
    /// w.finish()?;
    /// let trace = inspect::decode(w.bytes()).unwrap();
    /// assert_eq!(trace.slices[0].ts, now);
    /// assert_eq!(trace.realtime(now), Some(now));
    /// # Ok::<(), perfetto_trace_writer::Error>(())
    /// ```
    pub fn timestamp_clock(mut self, clock: Clock, reading: u64, boottime: u64) -> Self {
        self.clock = clock;
        self.clock_reading = (reading, boottime);
        self
    }

    /// How many bytes a streaming writer gathers before it hands them to its
    /// sink in one write (default 64 KiB; at least 1). Memory stays within
    /// this plus one packet.
    pub fn flush_threshold(mut self, bytes: usize) -> Self {
        self.flush_threshold = bytes.max(1);
        self
    }
}
