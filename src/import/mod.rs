//! From stored telemetry to a trace: rows as an observability service
//! stores them (processes, streams, thread spans, async events), written
//! through any [`TraceWriter`](crate::TraceWriter).
//!
//! (Work in progress: the API below is the committed one; the bodies land next.)

mod report;
mod rows;

pub use report::{Anomalies, AnomalyKind, ImportReport, EXAMPLES_KEPT};
pub use rows::{AsyncEventRow, ProcessRow, StreamRow, ThreadSpanRow};

use crate::error::Error;
use crate::trace_writer::TraceWriter;

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
    /// The writer failed (its sink, for a streaming writer).
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

/// Writes rows through a writer; see the module docs.
pub struct Importer<'w, W: TraceWriter> {
    writer: &'w mut W,
    config: ImportConfig,
    report: ImportReport,
}

impl<'w, W: TraceWriter> Importer<'w, W> {
    /// An importer writing through `writer`.
    ///
    /// # Errors
    /// [`ImportError::BadWindow`].
    pub fn new(writer: &'w mut W, config: ImportConfig) -> Result<Self, ImportError> {
        if let Some(w) = config.window {
            if w.end < w.begin {
                return Err(ImportError::BadWindow {
                    begin: w.begin,
                    end: w.end,
                });
            }
        }
        Ok(Importer {
            writer,
            config,
            report: ImportReport::default(),
        })
    }

    /// A process row.
    pub fn process(&mut self, row: &ProcessRow<'_>) -> Result<(), ImportError> {
        let _ = (row, &mut self.writer);
        todo!()
    }

    /// A stream row.
    pub fn stream(&mut self, row: &StreamRow<'_>) -> Result<(), ImportError> {
        let _ = row;
        todo!()
    }

    /// A thread span row.
    pub fn thread_span(&mut self, row: &ThreadSpanRow<'_>) -> Result<(), ImportError> {
        let _ = row;
        todo!()
    }

    /// An async event row.
    pub fn async_event(&mut self, row: &AsyncEventRow<'_>) -> Result<(), ImportError> {
        let _ = row;
        todo!()
    }

    /// Closes what is still open and returns the report.
    pub fn finish(self) -> Result<ImportReport, ImportError> {
        let _ = self.config;
        Ok(self.report)
    }
}
