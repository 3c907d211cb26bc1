//! Rows read by DataFusion handed to the crate's importer
//! (`perfetto_trace_writer::import`), and its output gathered into chunks.
//!
//! The importer borrows its writer for as long as it runs, so chunks are
//! taken from the writer's sink instead: a streaming writer whose flush
//! threshold is the chunk size hands its sink whole packets, one write per
//! full buffer, and the sink queues each write as a chunk.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};

use datafusion::arrow::record_batch::RecordBatch;
use perfetto_trace_writer::import::{
    AsyncEventRow, ImportConfig, ImportError, Importer, ProcessRow, SpanKinds, StreamRow,
    ThreadSpanRow, Window,
};
use perfetto_trace_writer::{Options, StreamingPerfettoWriter, TraceWriter};

use crate::error::Error;
use crate::plan::{Part, PartKind};
use crate::rows::Columns;
use crate::tables::{ASYNC_EVENTS, THREAD_SPANS};

/// The chunks a writer has handed out and nobody took yet.
#[derive(Clone, Default)]
pub(crate) struct ChunkQueue(Arc<Mutex<VecDeque<Vec<u8>>>>);

impl ChunkQueue {
    /// Every chunk queued, oldest first.
    pub fn take(&self) -> Vec<Vec<u8>> {
        self.0
            .lock()
            .map(|mut q| q.drain(..).collect())
            .unwrap_or_default()
    }
}

impl io::Write for ChunkQueue {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !buf.is_empty() {
            let mut q = self
                .0
                .lock()
                .map_err(|_| io::Error::other("chunk queue poisoned"))?;
            q.push_back(buf.to_vec());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The writer of partition `index`: its own sequence ids, writes of
/// `chunk_size` bytes into `queue`.
pub(crate) fn writer(
    index: u16,
    chunk_size: usize,
    queue: &ChunkQueue,
) -> StreamingPerfettoWriter<ChunkQueue> {
    StreamingPerfettoWriter::with_options(queue.clone(), options(index, chunk_size))
}

/// The options of partition `index`'s writer.
pub(crate) fn options(index: u16, chunk_size: usize) -> Options {
    Options::new().partition(index).flush_threshold(chunk_size)
}

/// What the importer of a part writes.
pub(crate) fn config(part: &Part, window: Option<Window>) -> ImportConfig {
    let kinds = match part.kind {
        PartKind::Async => SpanKinds::Async,
        PartKind::Threads => SpanKinds::Thread,
    };
    let config = ImportConfig::new().spans(kinds);
    match window {
        Some(w) => config.window(w.begin, w.end),
        None => config,
    }
}

/// Describes the part's processes and streams.
pub(crate) fn describe<W: TraceWriter>(
    importer: &mut Importer<'_, W>,
    part: &Part,
) -> Result<(), Error> {
    for p in &part.processes {
        let key = p.process_id.as_str();
        let time = |column: &'static str, value: i64| {
            u64::try_from(value).map_err(|_| Error::OutOfRange {
                table: "processes".into(),
                column,
                value,
                key: key.to_owned(),
            })
        };
        importer.process(&ProcessRow {
            process_id: key,
            exe: &p.exe,
            pid: p.pid,
            start_time: time("start_time", p.start_time)?,
            end_time: p.end_time.map(|t| time("end_time", t)).transpose()?,
        })?;
    }
    for s in &part.streams {
        importer.stream(&StreamRow {
            stream_id: &s.stream_id,
            process_id: &s.process_id,
            thread_name: &s.thread_name,
            thread_id: s.thread_id,
        })?;
    }
    Ok(())
}

/// Hands a batch of the part's rows to the importer.
pub(crate) fn feed<W: TraceWriter>(
    importer: &mut Importer<'_, W>,
    part: &Part,
    batch: &RecordBatch,
) -> Result<(), Error> {
    match part.kind {
        PartKind::Threads => {
            thread_spans(importer, &Columns::new(&THREAD_SPANS, &part.table, batch))
        }
        PartKind::Async => async_events(importer, &Columns::new(&ASYNC_EVENTS, &part.table, batch)),
    }
}

fn thread_spans<W: TraceWriter>(
    importer: &mut Importer<'_, W>,
    c: &Columns<'_>,
) -> Result<(), Error> {
    let (stream, name, target, file) = (c.str(0), c.str(4), c.str(5), c.str(6));
    for r in 0..c.len() {
        let stream_id = stream.value(r);
        let begin = c.req(1, r, stream_id)?;
        let end = c.req(2, r, stream_id)?;
        let depth = c.req(3, r, stream_id)?;
        let line = c.opt(7, r).unwrap_or(0);
        importer.thread_span(&ThreadSpanRow {
            stream_id,
            begin: c.fit(1, begin, stream_id)?,
            end: c.fit(2, end, stream_id)?,
            depth: c.fit(3, depth, stream_id)?,
            name: text(name, r),
            target: text(target, r),
            filename: text(file, r),
            line: c.fit(7, line, stream_id)?,
        })?;
    }
    Ok(())
}

fn async_events<W: TraceWriter>(
    importer: &mut Importer<'_, W>,
    c: &Columns<'_>,
) -> Result<(), Error> {
    let (stream, kind, name, file, target) = (c.str(0), c.str(2), c.str(6), c.str(7), c.str(8));
    for r in 0..c.len() {
        let stream_id = stream.value(r);
        let time = c.req(1, r, stream_id)?;
        let span_id = c.req(3, r, stream_id)?;
        let depth = c.req(5, r, stream_id)?;
        let line = c.opt(9, r).unwrap_or(0);
        importer.async_event(&AsyncEventRow {
            stream_id,
            time: c.fit(1, time, stream_id)?,
            event_type: text(kind, r),
            span_id: c.fit(3, span_id, stream_id)?,
            parent_span_id: c.opt(4, r).map(|p| c.fit(4, p, stream_id)).transpose()?,
            depth: c.fit(5, depth, stream_id)?,
            name: text(name, r),
            filename: text(file, r),
            target: text(target, r),
            line: c.fit(9, line, stream_id)?,
        })?;
    }
    Ok(())
}

fn text(a: &datafusion::arrow::array::StringViewArray, row: usize) -> &str {
    use datafusion::arrow::array::Array;
    if a.is_null(row) {
        ""
    } else {
        a.value(row)
    }
}

impl From<ImportError> for Error {
    fn from(e: ImportError) -> Self {
        Error::Import(e.to_string())
    }
}
