//! Counters a caller can watch while a trace is produced (the tool's
//! progress bar reads them).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use perfetto_trace_writer::import::ImportReport;

/// What the partitions have done so far. Shared by every query of the
/// function it is given to; read it from any thread.
#[derive(Debug, Default)]
pub struct Progress {
    rows: AtomicU64,
    chunks: AtomicU64,
    bytes: AtomicU64,
    parts_done: AtomicU64,
    report: Mutex<Option<ImportReport>>,
}

impl Progress {
    /// Zero everywhere.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rows read from the span tables.
    pub fn rows(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }

    /// Chunks handed out.
    pub fn chunks(&self) -> u64 {
        self.chunks.load(Ordering::Relaxed)
    }

    /// Trace bytes handed out.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Partitions that wrote their last chunk.
    pub fn parts_done(&self) -> u64 {
        self.parts_done.load(Ordering::Relaxed)
    }

    /// The importer's reports of the partitions finished so far, merged:
    /// spans shown and clipped, and the rows that made no sense, counted
    /// with examples. Process and stream rows, which every partition is
    /// given, are counted once.
    pub fn report(&self) -> ImportReport {
        self.report
            .lock()
            .ok()
            .and_then(|r| r.clone())
            .unwrap_or_default()
    }

    pub(crate) fn add_rows(&self, n: usize) {
        self.rows.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn add_chunk(&self, bytes: usize) {
        self.chunks.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A partition finished with `report`; `definitions` for the one part
    /// of each process whose process and stream anomalies count (every part
    /// of a process is given the same process and stream rows).
    pub(crate) fn part_done(&self, definitions: bool, report: ImportReport) {
        self.parts_done.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut merged) = self.report.lock() {
            let m = merged.get_or_insert_with(ImportReport::default);
            if definitions {
                m.merge(&report);
            } else {
                m.merge_spans(&report);
            }
        }
    }
}
