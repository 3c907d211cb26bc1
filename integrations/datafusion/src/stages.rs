//! The function's work one stage at a time, for the crate's benchmark (not
//! a stable API): the rows of each part read by DataFusion and collected,
//! then imported and encoded apart, so that the time of each is measured
//! on its own.

use std::io;
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result as DfResult;
use datafusion::execution::context::SessionContext;
use datafusion::physical_plan::collect;
use perfetto_trace_writer::import::Importer;
use perfetto_trace_writer::{StreamingPerfettoWriter, TraceWriter};

use crate::error::Error;
use crate::function::PerfettoTraceChunks;
use crate::import;
use crate::plan::{plan, Part};
use crate::request::TraceRequest;

/// The parts the function plans for one request, each a query and a writer.
#[derive(Debug)]
pub struct Stages {
    parts: Vec<Part>,
    request: TraceRequest,
    chunk_size: usize,
}

impl Stages {
    /// The parts `function` plans for `request` in `ctx`.
    ///
    /// # Errors
    /// The plan errors of the function.
    pub async fn plan(
        ctx: &SessionContext,
        function: &PerfettoTraceChunks,
        request: TraceRequest,
    ) -> DfResult<Stages> {
        let parts = function.parts_for(ctx.state().config().target_partitions());
        let planned = plan(ctx, function.table_names(), &request, parts).await?;
        Ok(Stages {
            parts: planned.parts,
            request,
            chunk_size: function.chunk_size_bytes(),
        })
    }

    /// How many parts (partitions) the trace has.
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Reading: part `i`'s query run by DataFusion, its rows collected.
    ///
    /// # Errors
    /// DataFusion's.
    pub async fn read(&self, i: usize, ctx: &SessionContext) -> DfResult<Vec<RecordBatch>> {
        collect(Arc::clone(&self.parts[i].rows), ctx.task_ctx()).await
    }

    /// Matching and encoding: rows of part `i` (as [`read`](Self::read)
    /// gives them) through its importer and writer, the trace written to
    /// `sink` as the function's partition `i` writes it; the bytes written.
    ///
    /// # Errors
    /// The execution errors of the function.
    pub fn import<S: io::Write>(
        &self,
        i: usize,
        batches: &[RecordBatch],
        sink: S,
    ) -> Result<u64, Error> {
        let part = &self.parts[i];
        let index = u16::try_from(i).map_err(|_| Error::TooManyParts(self.parts.len()))?;
        let options = import::options(index, self.chunk_size);
        let mut writer = StreamingPerfettoWriter::with_options(sink, options);
        {
            let config = import::config(part, self.request.window);
            let mut importer = Importer::new(&mut writer, config)?;
            import::describe(&mut importer, part)?;
            for b in batches {
                import::feed(&mut importer, part, b)?;
            }
            importer.finish()?;
        }
        writer.finish()?;
        Ok(writer.bytes_written())
    }
}
