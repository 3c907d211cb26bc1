//! From stored telemetry to a trace: the rows an observability service
//! stores for its instrumented processes (processes, streams, thread spans,
//! async events), written through any [`TraceWriter`](crate::TraceWriter)
//! in one pass, in memory bounded by the spans in flight. No I/O: the
//! caller reads the rows (from files, a database, Arrow batches) and hands
//! them over one by one as borrowed [`ProcessRow`], [`StreamRow`],
//! [`ThreadSpanRow`] and [`AsyncEventRow`] views.
//!
//! ```
//! use perfetto_trace_writer::import::*;
//! use perfetto_trace_writer::{inspect, TraceWriter, Writer};
//!
//! let mut w = Writer::new();
//! let mut im = Importer::new(&mut w, ImportConfig::new())?;
//! im.process(&ProcessRow { process_id: "p1", exe: "server", pid: Some(42), start_time: 0, end_time: None })?;
//! im.stream(&StreamRow { process_id: "p1", stream_id: "s1", thread_name: "main", thread_id: Some(43) })?;
//! im.stream(&StreamRow { process_id: "p1", stream_id: "s2", thread_name: "worker", thread_id: Some(44) })?;
//! im.thread_span(&ThreadSpanRow { stream_id: "s1", begin: 10, end: 90, depth: 0, name: "handle", ..Default::default() })?;
//! let ev = |stream_id, time, event_type, span_id, parent| AsyncEventRow {
//!     stream_id, time, event_type, span_id, parent_span_id: parent, depth: parent.map_or(0, |_| 1),
//!     name: if span_id == 1 { "request" } else { "fetch" }, ..Default::default()
//! };
//! im.async_event(&ev("s1", 20, "begin", 1, None))?;
//! im.async_event(&ev("s1", 30, "begin", 2, Some(1)))?; // spawned on s1...
//! im.async_event(&ev("s2", 50, "end", 1, None))?;
//! im.async_event(&ev("s2", 70, "end", 2, None))?;      // ...completed on s2, after its parent
//! let report = im.finish()?;
//! assert_eq!((report.thread_spans, report.async_spans, report.total()), (1, 2, 0));
//! w.finish()?;
//!
//! let trace = inspect::decode(w.bytes())?;
//! let fetch = trace.slices.iter().find(|s| s.name == "fetch").unwrap();
//! let request = trace.slices.iter().find(|s| s.name == "request").unwrap();
//! assert_eq!((fetch.ts, fetch.dur), (30, Some(40)));
//! // The child's track is nested under its parent's track.
//! assert_eq!(trace.tracks[&fetch.track].parent, Some(request.track));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Order
//!
//! - A process row before the streams naming it, a stream row before the
//!   rows naming it (simplest: all processes, then all streams).
//! - [`thread_span`](Importer::thread_span) rows: per stream, in
//!   non-decreasing `begin` (the service's `ORDER BY begin` per stream).
//! - [`async_event`](Importer::async_event) rows: per process, in
//!   non-decreasing `time` (`ORDER BY time` over the process's streams: an
//!   end row often comes from another stream than its begin, so matching
//!   is per process).
//! - Streams, processes and the two tables may interleave in any way.
//! - Rows of a table the [`SpanKinds`] leave out are not read at all (not
//!   checked for order, not counted).
//! - Rows of equal time may come in any order: the importer reorders them
//!   (bounded by the rows of one time): thread spans of one begin outer
//!   first (by `depth`, then longest); async events of one time begins
//!   first, a child after its parent, then ends.
//! - A row earlier than the previous one of its stream (thread spans) or
//!   process (async events) is [`ImportError::OutOfOrder`], naming the
//!   table, the row's index in it, its stream or process and both times.
//!   Nothing of that row is written; everything before stays valid.
//!
//! # What is shown
//!
//! - A process is a process track named by its `exe`; a stream is a thread
//!   of it named by `thread_name`. Keys are the ids, so tracks are stable
//!   across runs and writers.
//! - Thread spans nest on their thread as their times say, at the row's
//!   `depth` wherever the times leave a choice
//!   ([`complete_span_at_depth`](crate::TraceWriter::complete_span_at_depth)):
//!   a span beginning where another ends is its sibling, unless its depth
//!   makes it that span's zero-length child at its very end. `target` is
//!   the category, `filename`/`line` the source location.
//! - Async spans: begin and end matched by `span_id` within the process,
//!   whichever streams their rows come from. A top-level span (no
//!   `parent_span_id`, or 0) goes on a track of the lane [`ASYNC_LANE`]
//!   under the thread whose row began it, one track per span in flight. A
//!   span whose begin row names a parent in flight goes on a track nested
//!   under its parent's track (`TrackDescriptor.parent_uuid`), and stays
//!   there if it outlives the parent. (Spans are written as their rows
//!   come, so a child is never a nested slice on its parent's own track:
//!   neither its end nor its parent's is known at its begin row; see
//!   [`TraceWriter::async_child_begin`](crate::TraceWriter::async_child_begin).) A span whose parent is not in flight
//!   (ended, or outside the window) is top-level. End rows' parents are
//!   ignored (work completes in other contexts). Each async span carries
//!   the argument `span_id` (and `parent_span_id` when its row names one).
//!
//! # Window
//!
//! With [`ImportConfig::window`] `[begin, end]` (both included):
//! - thread spans overlapping it are shown whole (their rows hold both
//!   times); others are skipped;
//! - every async span overlapping it is shown, cut to it: a span begun
//!   before the window begins at its start, one still in flight at its end
//!   ends there (or at the process's `end_time` when that is earlier);
//! - async rows before the window are read to know what is in flight when
//!   it opens (memory bounded by the spans in flight). A caller that hands
//!   over only the window's rows cannot show spans that begin before the
//!   window and end after it (no row of theirs is in the window): give the
//!   rows from earlier (for instance from the process's start) to show them.
//!   Rows after the window are checked for order and skipped.
//!
//! Without a window, a span with no end ends at the process's `end_time`,
//! else at the process's latest async row; an end with no begin begins at
//! the process's `start_time` (or at its first async row when its process
//! row is missing or starts later); with a window, at the window's start.
//! Every span cut in one of these ways carries the argument `clipped` =
//! `"begin"`, `"end"` or `"both"` (written on its end event, which the
//! trace processor merges into the slice's arguments).
//!
//! # Rows that make no sense
//!
//! They never fail the import: each is counted in the [`ImportReport`] by
//! [`AnomalyKind`] (whose docs give what is done with it), with a few
//! examples. Duplicate begins are found among spans in flight, and ends
//! before their begin among ends whose begin was not seen: finding every
//! reuse of an id would take memory growing with the trace.
//!
//! # Several writers
//!
//! To split one import across writers (threads, machines), give writer
//! `i` `Options::new().partition(i)` and an importer each, with the same
//! window; give every importer the process and stream rows; the thread
//! spans of a stream to exactly one importer with [`SpanKinds::Thread`];
//! all async events of a process to one importer with [`SpanKinds::Async`].
//! The writers' outputs, concatenated in any order, are one trace. Merge
//! the reports with [`ImportReport::merge_spans`], taking the process and
//! stream anomalies from one importer.

mod importer;
mod report;
mod rows;

pub use importer::{Importer, ASYNC_LANE};
pub use report::{Anomalies, AnomalyKind, ImportReport, EXAMPLES_KEPT};
pub use rows::{AsyncEventRow, ProcessRow, StreamRow, ThreadSpanRow};

use crate::error::Error;

/// Which spans an import writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SpanKinds {
    /// Thread spans only.
    Thread,
    /// Async spans only.
    Async,
    /// Both.
    #[default]
    Both,
}

/// A time window, both ends included (ns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Its first instant.
    pub begin: u64,
    /// Its last instant.
    pub end: u64,
}

/// What an import writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportConfig {
    /// Which spans.
    pub spans: SpanKinds,
    /// Only what overlaps this window; the whole of it when none.
    pub window: Option<Window>,
}

impl ImportConfig {
    /// Both kinds of spans, no window.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets which spans are written.
    pub fn spans(mut self, spans: SpanKinds) -> Self {
        self.spans = spans;
        self
    }

    /// Sets the window, both ends included.
    pub fn window(mut self, begin: u64, end: u64) -> Self {
        self.window = Some(Window { begin, end });
        self
    }
}

/// The table a row came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    /// `thread_spans`.
    ThreadSpans,
    /// `async_events`.
    AsyncEvents,
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The writer failed (its sink, for a streaming writer). Rows never
    /// cause it. The import cannot go on (rows held for reordering are
    /// lost); what the writer accepted stays a valid trace.
    #[error(transparent)]
    Writer(#[from] Error),
    /// A row came before one it should follow.
    #[error("{table:?} row {row} ({key}) at {time} comes after a row at {previous}: rows must come in time order per {scope}")]
    OutOfOrder {
        /// Its table.
        table: Table,
        /// Its index among the rows of its table given so far (from 0).
        row: u64,
        /// The stream (thread spans) or process (async events) it belongs to.
        key: String,
        /// Its time (`begin` or `time`).
        time: u64,
        /// The time of the row before it.
        previous: u64,
        /// What the order is kept per: "stream" or "process".
        scope: &'static str,
    },
    /// A window that ends before it begins.
    #[error("the window ends at {end}, before its begin at {begin}")]
    BadWindow {
        /// Its begin.
        begin: u64,
        /// Its end.
        end: u64,
    },
}
