//! The execution plan: one partition per part of the trace, each a writer
//! of its own that turns its rows into chunks while they are read.

use std::collections::VecDeque;
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
use tokio::sync::mpsc::{self, Receiver, Sender};

use crate::error::Error;
use crate::import::{self, ChunkQueue};
use crate::plan::{part_config, Part, PartKind};
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

/// Writes the trace: part `i` runs its query and writes its rows through a
/// writer of its own (`Options::partition(i)`), each part a task of its
/// own, all at once. Their chunks come out of one partition, taken from
/// the parts in turn (a chunk of each part that has one left, part 0
/// first) and numbered in that order: each part's in its own order, so
/// the output in `chunk_id` order (its own order) is one trace, the same
/// bytes on every run.
///
/// One partition rather than one per part: over several, `ORDER BY
/// chunk_id` is a `SortPreservingMergeExec`, which holds `batch_size` rows
/// (8192 chunks by default, the whole of most traces) before it emits any.
/// Here it needs nothing, and each chunk is out as soon as its turn comes.
#[derive(Debug)]
pub(crate) struct PerfettoChunksExec {
    parts: Arc<Vec<Part>>,
    settings: Arc<Settings>,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    cache: Arc<PlanProperties>,
}

/// Batches of chunks each part, and the merge, may have ready before they
/// are taken: memory is this many batches of chunks per part beyond what
/// the writers hold.
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
            Partitioning::UnknownPartitioning(1),
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
        if partition == 0 {
            let mut parts = Vec::with_capacity(self.parts.len());
            for index in 0..self.parts.len() {
                let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
                let task = Task {
                    parts: Arc::clone(&self.parts),
                    index,
                    settings: Arc::clone(&self.settings),
                    tx,
                };
                // Aborted when the stream is dropped; it also stops at its
                // next send once the merge is gone.
                builder.spawn(task.run(Arc::clone(&context)));
                parts.push(rx);
            }
            let merge = Merge {
                parts,
                projection: self.projection.clone(),
                tx: builder.tx(),
            };
            builder.spawn(merge.run());
        }
        Ok(builder.build())
    }
}

/// Takes the parts' chunks in turn into the output, numbering them.
struct Merge {
    parts: Vec<Receiver<Vec<Vec<u8>>>>,
    projection: Option<Vec<usize>>,
    tx: Sender<DfResult<RecordBatch>>,
}

impl Merge {
    async fn run(mut self) -> DfResult<()> {
        let mut held: Vec<VecDeque<Vec<u8>>> = vec![VecDeque::new(); self.parts.len()];
        let mut live: Vec<usize> = (0..self.parts.len()).collect();
        let mut numbered = 0i32;
        let mut turn = 0;
        let mut ready = Vec::new();
        while !live.is_empty() {
            turn %= live.len();
            let i = live[turn];
            if held[i].is_empty() {
                // Out with what is ready before waiting for this part.
                if !self.send(&mut ready, &mut numbered).await? {
                    return Ok(());
                }
                match self.parts[i].recv().await {
                    Some(chunks) => held[i].extend(chunks),
                    None => {
                        // Finished (or failed: its task reports why).
                        live.remove(turn);
                        continue;
                    }
                }
                if held[i].is_empty() {
                    continue;
                }
            }
            ready.extend(held[i].pop_front());
            turn += 1;
        }
        self.send(&mut ready, &mut numbered).await?;
        Ok(())
    }

    /// Sends `ready` as one batch, numbered from `*numbered`; `false` once
    /// nobody receives.
    async fn send(&self, ready: &mut Vec<Vec<u8>>, numbered: &mut i32) -> DfResult<bool> {
        if ready.is_empty() {
            return Ok(!self.tx.is_closed());
        }
        let first = *numbered;
        let next = i32::try_from(ready.len())
            .ok()
            .and_then(|n| first.checked_add(n))
            .ok_or(Error::TooManyChunks)?;
        let ids: Int32Array = (first..next).collect();
        let data: BinaryArray = ready.iter().map(|c| Some(c.as_slice())).collect();
        ready.clear();
        let full = RecordBatch::try_new(chunk_schema(), vec![Arc::new(ids), Arc::new(data)])?;
        let batch = match &self.projection {
            Some(p) => full.project(p)?,
            None => full,
        };
        *numbered = next;
        Ok(self.tx.send(Ok(batch)).await.is_ok())
    }
}

/// The context a part's rows run in: `context` with the config they were
/// planned in (see [`part_config`]).
fn part_context(context: &TaskContext, parts: usize) -> Arc<TaskContext> {
    let config = part_config(
        context.session_config(),
        context.memory_pool().memory_limit(),
        parts,
    );
    Arc::new(TaskContext::new(
        context.task_id(),
        context.session_id(),
        config,
        context.scalar_functions().clone(),
        context.higher_order_functions().clone(),
        context.aggregate_functions().clone(),
        context.window_functions().clone(),
        context.runtime_env(),
    ))
}

/// One partition's work.
struct Task {
    parts: Arc<Vec<Part>>,
    index: usize,
    settings: Arc<Settings>,
    tx: Sender<Vec<Vec<u8>>>,
}

impl Task {
    async fn run(self, context: Arc<TaskContext>) -> DfResult<()> {
        let part = &self.parts[self.index];
        // Checked in `new`: fewer parts than u16::MAX.
        let writer_index =
            u16::try_from(self.index).map_err(|_| Error::TooManyParts(self.parts.len()))?;
        let queue = ChunkQueue::default();
        let mut writer = import::writer(writer_index, self.settings.chunk_size, &queue);
        let mut rows = execute_stream(
            Arc::clone(&part.rows),
            part_context(&context, self.parts.len()),
        )?;
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
                if !self.send(queue.take()).await? {
                    return Ok(());
                }
            }
            importer.finish().map_err(Error::from)?
        };
        writer.finish().map_err(Error::from)?;
        drop(writer);
        self.send(queue.take()).await?;
        if let Some(p) = &self.settings.progress {
            p.part_done(part.counts_definitions, report);
        }
        Ok(())
    }

    /// Hands chunks to the merge; `false` once it is gone.
    async fn send(&self, chunks: Vec<Vec<u8>>) -> DfResult<bool> {
        if chunks.is_empty() {
            return Ok(!self.tx.is_closed());
        }
        if let Some(p) = &self.settings.progress {
            for c in &chunks {
                p.add_chunk(c.len());
            }
        }
        Ok(self.tx.send(chunks).await.is_ok())
    }
}
