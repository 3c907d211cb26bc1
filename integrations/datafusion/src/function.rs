//! The table function and the table it returns.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::context::{SessionContext, SessionState};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use crate::exec::{chunk_schema, PerfettoChunksExec, Settings};
use crate::plan::plan;
use crate::progress::Progress;
use crate::request::TraceRequest;
use crate::tables::TableNames;

/// `perfetto_trace_chunks(process_id, span_kinds, begin, end)`: the trace of
/// a process's rows as `chunk_id: Int32, chunk_data: Binary` rows.
///
/// - `process_id`: a string, or NULL for every process of the lake;
/// - `span_kinds`: `'thread'`, `'async'` or `'both'`;
/// - `begin`, `end`: `TIMESTAMP`s or `BIGINT` nanoseconds, `begin <= end`;
///   both NULL for every row.
///
/// The rows come from the tables named by [`TableNames`] (by default
/// `processes`, `streams`, `thread_spans`, `async_events`; see the crate
/// docs for their columns). `processes` and `streams` are always needed,
/// `thread_spans` and `async_events` when their kind is asked for.
///
/// Bad arguments, missing tables or columns, columns of the wrong type and
/// an unknown process are plan errors whose message names them.
///
/// Memory: the function holds per part a batch of rows, the spans in
/// flight and a few chunks; DataFusion's sorts of each part's rows are
/// what grows with the lake. Tables that declare their rows in time order
/// (see [`RowOrder`](crate::RowOrder)) need no sort at all; otherwise give
/// the session a `FairSpillPool` so that the sorts spill (the crate's
/// README says what else a small pool needs).
#[derive(Clone, Debug)]
pub struct PerfettoTraceChunks {
    tables: TableNames,
    chunk_size: usize,
    thread_parts: Option<usize>,
    progress: Option<Arc<Progress>>,
}

impl Default for PerfettoTraceChunks {
    fn default() -> Self {
        PerfettoTraceChunks {
            tables: TableNames::default(),
            chunk_size: Self::DEFAULT_CHUNK_SIZE,
            thread_parts: None,
            progress: None,
        }
    }
}

impl PerfettoTraceChunks {
    /// The name [`register`](Self::register) gives the function.
    pub const NAME: &'static str = "perfetto_trace_chunks";

    /// The default chunk size: 256 KiB.
    pub const DEFAULT_CHUNK_SIZE: usize = 256 * 1024;

    /// Default tables, chunks of [`DEFAULT_CHUNK_SIZE`](Self::DEFAULT_CHUNK_SIZE).
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the rows from these tables.
    pub fn tables(mut self, tables: TableNames) -> Self {
        self.tables = tables;
        self
    }

    /// Chunks of about `bytes` bytes (each closes at the first packet
    /// boundary at or past it; at least 1).
    pub fn chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes.max(1);
        self
    }

    /// Writes the trace with about `parts` writers for the thread spans,
    /// each a partition of its own (default: the session's
    /// `target_partitions`): one process's streams split among them, or
    /// many processes grouped so that at most `parts` groups remain, each
    /// with one more writer for its async spans. Each writer's rows are one
    /// query with (unless the lake declares their order) one sort.
    pub fn thread_parts(mut self, parts: usize) -> Self {
        self.thread_parts = Some(parts.max(1));
        self
    }

    /// Counts rows, chunks and bytes into `progress` as the trace is made.
    pub fn progress(mut self, progress: Arc<Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// How many parts split a process's thread spans, in a session of
    /// `target_partitions`.
    pub(crate) fn parts_for(&self, target_partitions: usize) -> usize {
        self.thread_parts.unwrap_or(target_partitions)
    }

    pub(crate) fn table_names(&self) -> &TableNames {
        &self.tables
    }

    pub(crate) fn chunk_size_bytes(&self) -> usize {
        self.chunk_size
    }

    /// Registers the function in `ctx` as [`NAME`](Self::NAME).
    pub fn register(self, ctx: &SessionContext) {
        ctx.register_udtf(Self::NAME, Arc::new(self));
    }

    /// The table of one trace, for callers that build the request
    /// themselves rather than through SQL.
    pub fn table(&self, request: TraceRequest) -> Arc<dyn TableProvider> {
        Arc::new(TraceChunksTable {
            function: self.clone(),
            request,
        })
    }
}

impl TableFunctionImpl for PerfettoTraceChunks {
    fn call_with_args(&self, args: TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        let request = TraceRequest::from_args(args.exprs())?;
        Ok(self.table(request))
    }
}

/// The rows of one trace.
#[derive(Debug)]
struct TraceChunksTable {
    function: PerfettoTraceChunks,
    request: TraceRequest,
}

#[async_trait]
impl TableProvider for TraceChunksTable {
    fn schema(&self) -> SchemaRef {
        chunk_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let state = state
            .as_any()
            .downcast_ref::<SessionState>()
            .ok_or_else(|| {
                DataFusionError::Plan(
                    "perfetto_trace_chunks needs a DataFusion SessionState".into(),
                )
            })?;
        let ctx = SessionContext::new_with_state(state.clone());
        let f = &self.function;
        let parts = f.parts_for(state.config().target_partitions());
        let planned = plan(&ctx, &f.tables, &self.request, parts).await?;
        let settings = Settings {
            request: self.request.clone(),
            chunk_size: f.chunk_size,
            progress: f.progress.clone(),
        };
        Ok(Arc::new(PerfettoChunksExec::new(
            planned.parts,
            settings,
            projection.cloned(),
        )?))
    }
}
