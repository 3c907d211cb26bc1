//! The execution plan: one partition per part of the trace, each a writer
//! of its own that turns its rows into chunks while they are read.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{BinaryArray, Int32Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result as DfResult;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;
use datafusion::physical_plan::{
    displayable, execute_stream, DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning,
    PlanProperties, SendableRecordBatchStream,
};
use futures::StreamExt;
use perfetto_trace_writer::import::Importer;
use perfetto_trace_writer::TraceWriter;
use tokio::sync::mpsc::Sender;

use crate::error::Error;
use crate::import::{self, ChunkQueue};
use crate::plan::{Part, PartKind};
use crate::progress::Progress;
use crate::request::TraceRequest;

/// The schema of the function's rows: `chunk_id: Int32, chunk_data: Binary`.
pub fn chunk_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("chunk_id", DataType::Int32, false),
        Field::new("chunk_data", DataType::Binary, false),
    ]))
}

/// How the partitions write.
#[derive(Debug)]
pub(crate) struct Settings {
    pub request: TraceRequest,
    pub chunk_size: usize,
    pub progress: Option<Arc<Progress>>,
}

/// Writes the trace: partition `i` runs the query of part `i` and writes its
/// rows through a writer of its own (`Options::partition(i)`), yielding
/// chunks as they fill. Partition `i`'s `k`-th chunk has id `k * n + i` for
/// `n` partitions, so each partition is sorted by `chunk_id` and the chunks
/// of all of them in `chunk_id` order (or any order that keeps each
/// partition's order) make one trace.
#[derive(Debug)]
pub(crate) struct PerfettoChunksExec {
    parts: Arc<Vec<Part>>,
    settings: Arc<Settings>,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    cache: Arc<PlanProperties>,
}

/// Output batches a partition may have ready before its reader takes them:
/// memory is this many chunks' worth beyond what the writer holds.
const CHANNEL_BATCHES: usize = 2;

impl PerfettoChunksExec {
    pub fn new(
        parts: Vec<Part>,
        settings: Settings,
        projection: Option<Vec<usize>>,
    ) -> DfResult<Self> {
        if parts.len() > usize::from(u16::MAX) {
            return Err(Error::TooManyParts(parts.len()).into());
        }
        let full = chunk_schema();
        let schema = match &projection {
            Some(p) => Arc::new(full.project(p)?),
            None => full,
        };
        let mut eq = EquivalenceProperties::new(Arc::clone(&schema));
        if let Ok(i) = schema.index_of("chunk_id") {
            let id: Arc<dyn PhysicalExpr> = Arc::new(Column::new("chunk_id", i));
            eq = EquivalenceProperties::new_with_orderings(
                Arc::clone(&schema),
                [[PhysicalSortExpr::new_default(id)]],
            );
        }
        let cache = Arc::new(PlanProperties::new(
            eq,
            Partitioning::UnknownPartitioning(parts.len().max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(PerfettoChunksExec {
            parts: Arc::new(parts),
            settings: Arc::new(settings),
            projection,
            schema,
            cache,
        })
    }
}

impl DisplayAs for PerfettoChunksExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.settings.request;
        write!(f, "PerfettoChunksExec: spans={}", r.spans)?;
        if let Some(w) = r.window {
            write!(f, ", window=[{}, {}]", w.begin, w.end)?;
        }
        write!(
            f,
            ", parts={}, chunk_size={}",
            self.parts.len(),
            self.settings.chunk_size
        )?;
        if let DisplayFormatType::Verbose = t {
            for (i, p) in self.parts.iter().enumerate() {
                let plan = displayable(p.rows.as_ref()).indent(false).to_string();
                let what = match p.kind {
                    PartKind::Async => "async",
                    PartKind::Threads => "threads",
                };
                write!(
                    f,
                    "; part {i} ({what} of '{}'): {}",
                    p.process_ids.join("', '"),
                    plan.trim().replace('\n', " <- ")
                )?;
            }
        }
        Ok(())
    }
}

impl ExecutionPlan for PerfettoChunksExec {
    fn name(&self) -> &str {
        "PerfettoChunksExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.cache
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let mut builder =
            RecordBatchReceiverStreamBuilder::new(Arc::clone(&self.schema), CHANNEL_BATCHES);
        if partition < self.parts.len() {
            let task = Task {
                parts: Arc::clone(&self.parts),
                index: partition,
                settings: Arc::clone(&self.settings),
                projection: self.projection.clone(),
                tx: builder.tx(),
            };
            // Aborted when the stream is dropped; it also stops at its next
            // send once nobody receives.
            builder.spawn(task.run(context));
        }
        Ok(builder.build())
    }
}

/// One partition's work.
struct Task {
    parts: Arc<Vec<Part>>,
    index: usize,
    settings: Arc<Settings>,
    projection: Option<Vec<usize>>,
    tx: Sender<DfResult<RecordBatch>>,
}

impl Task {
    async fn run(self, context: Arc<TaskContext>) -> DfResult<()> {
        let part = &self.parts[self.index];
        // Checked in `new`: fewer parts than u16::MAX.
        let writer_index =
            u16::try_from(self.index).map_err(|_| Error::TooManyParts(self.parts.len()))?;
        let queue = ChunkQueue::default();
        let mut writer = import::writer(writer_index, self.settings.chunk_size, &queue);
        let mut rows = execute_stream(Arc::clone(&part.rows), context)?;
        let mut numbered = 0u64;
        let report = {
            let config = import::config(part, self.settings.request.window);
            let mut importer = Importer::new(&mut writer, config).map_err(Error::from)?;
            import::describe(&mut importer, part)?;
            while let Some(batch) = rows.next().await {
                let batch = batch?;
                import::feed(&mut importer, part, &batch)?;
                if let Some(p) = &self.settings.progress {
                    p.add_rows(batch.num_rows());
                }
                if !self.send(queue.take(), &mut numbered).await? {
                    return Ok(());
                }
            }
            importer.finish().map_err(Error::from)?
        };
        writer.finish().map_err(Error::from)?;
        drop(writer);
        self.send(queue.take(), &mut numbered).await?;
        if let Some(p) = &self.settings.progress {
            p.part_done(part.counts_definitions, report);
        }
        Ok(())
    }

    /// Sends chunks as one batch, numbering them from `*numbered` on;
    /// `false` once nobody receives.
    async fn send(&self, chunks: Vec<Vec<u8>>, numbered: &mut u64) -> DfResult<bool> {
        if chunks.is_empty() {
            return Ok(!self.tx.is_closed());
        }
        let n = self.parts.len() as u64;
        let mut ids = Vec::with_capacity(chunks.len());
        for _ in &chunks {
            let id = numbered
                .checked_mul(n)
                .and_then(|x| x.checked_add(self.index as u64))
                .and_then(|x| i32::try_from(x).ok())
                .ok_or(Error::TooManyChunks)?;
            ids.push(id);
            *numbered += 1;
        }
        let data: BinaryArray = chunks.iter().map(|c| Some(c.as_slice())).collect();
        let full = RecordBatch::try_new(
            chunk_schema(),
            vec![Arc::new(Int32Array::from(ids)), Arc::new(data)],
        )?;
        let batch = match &self.projection {
            Some(p) => full.project(p)?,
            None => full,
        };
        if let Some(p) = &self.settings.progress {
            for c in &chunks {
                p.add_chunk(c.len());
            }
        }
        Ok(self.tx.send(Ok(batch)).await.is_ok())
    }
}
