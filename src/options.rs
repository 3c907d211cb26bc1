//! Settings chosen when a writer is created.

use std::num::NonZeroU32;

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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sequence_id: NonZeroU32::MIN,
            flush_threshold: 64 * 1024,
            compact: false,
            sequence_span: u32::MAX,
            intern_limits: (usize::MAX, usize::MAX),
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

    /// How many bytes a streaming writer gathers before it hands them to its
    /// sink in one write (default 64 KiB; at least 1). Memory stays within
    /// this plus one packet.
    pub fn flush_threshold(mut self, bytes: usize) -> Self {
        self.flush_threshold = bytes.max(1);
        self
    }
}
