//! Reading the lake through DataFusion: the tables checked, the process and
//! its streams read at planning time, and one physical plan per part of the
//! trace, with the process and the window pushed down as filters and rows
//! in the order the importer takes them.

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::JoinType;
use datafusion::dataframe::DataFrame;
use datafusion::error::Result as DfResult;
use datafusion::execution::context::{SessionConfig, SessionContext, SessionState};
use datafusion::execution::memory_pool::MemoryLimit;
use datafusion::logical_expr::{col, in_list, lit, Expr, SortExpr};
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::ExecutionPlan;

use crate::error::Error;
use perfetto_trace_writer::import::Window;

use crate::request::TraceRequest;
use crate::rows::Columns;
use crate::tables::{
    quoted, Bound, Checked, Spec, TableNames, ASYNC_EVENTS, PROCESSES, STREAMS, THREAD_SPANS,
};

/// A process row, as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProcessRow {
    pub process_id: String,
    pub exe: String,
    pub pid: Option<i64>,
    pub start_time: i64,
    pub end_time: Option<i64>,
}

/// A stream row, as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StreamRow {
    pub stream_id: String,
    pub process_id: String,
    pub thread_name: String,
    pub thread_id: Option<i64>,
}

/// What one partition writes.
#[derive(Debug)]
pub(crate) enum PartKind {
    /// The async spans of the process.
    Async,
    /// The thread spans of some of its streams.
    Threads,
}

/// One partition of the trace: one writer over one query's rows.
#[derive(Debug)]
pub(crate) struct Part {
    pub kind: PartKind,
    /// The ids of the processes it covers, for `EXPLAIN VERBOSE`.
    pub process_ids: Vec<String>,
    /// Their rows; a process whose streams name it but that has no row has
    /// none (the importer counts its streams and shows them under a process
    /// of that id).
    pub processes: Vec<ProcessRow>,
    /// The streams it describes: those whose spans it writes, or for async
    /// spans every stream of its processes (a top-level span lies beneath
    /// the stream that began it).
    pub streams: Vec<StreamRow>,
    /// The rows: thread spans or async events, in spec order and read types.
    pub rows: Arc<dyn ExecutionPlan>,
    /// The table the rows come from, for errors.
    pub table: String,
    /// Whether its importer's process and stream anomalies count: true for
    /// the first part of each group of processes.
    pub counts_definitions: bool,
}

/// Everything the plan needs, found at planning time.
#[derive(Debug)]
pub(crate) struct Planned {
    pub parts: Vec<Part>,
}

/// A part before its rows are planned physically.
struct Draft {
    kind: PartKind,
    process_ids: Vec<String>,
    processes: Vec<ProcessRow>,
    streams: Vec<StreamRow>,
    rows: DataFrame,
    table: String,
    counts_definitions: bool,
}

/// Checks the tables the request needs, reads its processes and streams, and
/// plans a query per part. The processes (those with streams) fall into at
/// most `parts` groups of consecutive ids; each group has a part for its
/// async events and splits its streams' thread spans into
/// `parts / groups` (rounded up) parts. So the parts, and the sorts running
/// at once, number about `2 * parts` at most however many processes the
/// lake holds, and one process alone still has `parts` writers for its
/// threads.
///
/// Each part's rows are planned as one partition (the parts are the
/// parallelism: one sort each, not one per partition of each), and with a
/// finite memory pool a sort's merge reservation
/// (`sort_spill_reservation_bytes`) is cut to fit the pool shared by all
/// the parts' sorts (see [`part_state`]).
///
/// # Errors
/// [`Error::MissingTable`], [`Error::MissingColumn`], [`Error::ColumnType`],
/// [`Error::UnknownProcess`], and DataFusion's own.
pub(crate) async fn plan(
    ctx: &SessionContext,
    names: &TableNames,
    request: &TraceRequest,
    parts: usize,
) -> DfResult<Planned> {
    let processes = checked(ctx, &PROCESSES, &names.processes).await?;
    let streams = checked(ctx, &STREAMS, &names.streams).await?;
    let thread_spans = match request.spans.thread() {
        true => Some(checked(ctx, &THREAD_SPANS, &names.thread_spans).await?),
        false => None,
    };
    let async_events = match request.spans.asynchronous() {
        true => Some(checked(ctx, &ASYNC_EVENTS, &names.async_events).await?),
        false => None,
    };

    let process_rows = read_processes(ctx, &processes, request.process.as_deref()).await?;
    if let (Some(p), true) = (&request.process, process_rows.is_empty()) {
        return Err(Error::UnknownProcess {
            process: p.clone(),
            table: processes.name.clone(),
        }
        .into());
    }
    // Every process: every stream too, those naming no known process included.
    let filter = request
        .process
        .as_deref()
        .map(|p| col(quoted("process_id")).eq(lit(p)));
    let stream_rows = read_streams(ctx, &streams, filter).await?;
    // The processes that have streams (a process without any shows nothing).
    let mut process_ids: Vec<&str> = stream_rows.iter().map(|s| s.process_id.as_str()).collect();
    process_ids.sort_unstable();
    process_ids.dedup();

    let parts = parts.max(1);
    let groups = parts.min(process_ids.len());
    let threads_per_group = parts.div_ceil(groups.max(1));
    let mut drafts = Vec::new();
    for g in 0..groups {
        let ids =
            &process_ids[g * process_ids.len() / groups..(g + 1) * process_ids.len() / groups];
        let group_processes: Vec<ProcessRow> = process_rows
            .iter()
            .filter(|p| ids.contains(&p.process_id.as_str()))
            .cloned()
            .collect();
        let own: Vec<StreamRow> = stream_rows
            .iter()
            .filter(|s| ids.contains(&s.process_id.as_str()))
            .cloned()
            .collect();
        let draft = |kind, streams: Vec<StreamRow>, rows, table: &Checked, first| Draft {
            kind,
            process_ids: ids.iter().map(|&i| i.to_owned()).collect(),
            processes: group_processes.clone(),
            streams,
            rows,
            table: table.name.clone(),
            counts_definitions: first,
        };
        if let Some(t) = &async_events {
            let rows = async_rows(ctx, t, &own, request.window).await?;
            drafts.push(draft(PartKind::Async, own.clone(), rows, t, true));
        }
        if let Some(t) = &thread_spans {
            let split = threads_per_group.min(own.len());
            for k in 0..split {
                // Contiguous groups of about equal size, in stream id order.
                let group = own[k * own.len() / split..(k + 1) * own.len() / split].to_vec();
                let rows = thread_rows(ctx, t, &group, request.window).await?;
                let first = k == 0 && async_events.is_none();
                drafts.push(draft(PartKind::Threads, group, rows, t, first));
            }
        }
    }

    let state = part_state(&ctx.state(), drafts.len());
    let mut planned = Vec::with_capacity(drafts.len());
    for d in drafts {
        let (_, logical) = d.rows.into_parts();
        planned.push(Part {
            kind: d.kind,
            process_ids: d.process_ids,
            processes: d.processes,
            streams: d.streams,
            rows: state.create_physical_plan(&logical).await?,
            table: d.table,
            counts_definitions: d.counts_definitions,
        });
    }
    Ok(Planned { parts: planned })
}

/// The config the parts' rows are planned and run in: one partition each,
/// and with a finite memory pool a merge reservation of at most a quarter
/// of each of the `sorts` sorts' even share of it. A sort that may spill
/// first reserves `sort_spill_reservation_bytes` for its final merge;
/// DataFusion's default (10 MiB) for each of a dozen sorts would take a
/// pool of 100 MiB before a row is sorted. (A sort reads it when it runs,
/// so the parts run with this config too.)
pub(crate) fn part_config(
    config: &SessionConfig,
    pool: MemoryLimit,
    sorts: usize,
) -> SessionConfig {
    let mut config = config.clone();
    let options = config.options_mut();
    options.execution.target_partitions = 1;
    if let MemoryLimit::Finite(bytes) = pool {
        let fair = bytes / (4 * sorts.max(1));
        let reservation = &mut options.execution.sort_spill_reservation_bytes;
        *reservation = (*reservation).min(fair);
    }
    config
}

/// The session of [`part_config`].
fn part_state(state: &SessionState, sorts: usize) -> SessionState {
    let mut state = state.clone();
    let pool = state.runtime_env().memory_pool.memory_limit();
    *state.config_mut() = part_config(state.config(), pool, sorts);
    state
}

async fn checked(ctx: &SessionContext, spec: &Spec, name: &str) -> DfResult<Checked> {
    if !ctx.table_exist(name)? {
        return Err(Error::MissingTable {
            role: spec.role,
            table: name.to_owned(),
        }
        .into());
    }
    let df = ctx.table(name).await?;
    Ok(spec.check(name, df.schema().as_arrow())?)
}

async fn read_processes(
    ctx: &SessionContext,
    t: &Checked,
    process: Option<&str>,
) -> DfResult<Vec<ProcessRow>> {
    let mut df = ctx.table(t.name.as_str()).await?;
    if let Some(p) = process {
        df = df.filter(col(quoted("process_id")).eq(lit(p)))?;
    }
    // Sorted here: a DataFusion sort would reserve its merge memory from a
    // pool meant for the spans.
    let batches = df.select(t.reads.clone())?.collect().await?;
    let mut rows = Vec::new();
    for b in &batches {
        let c = Columns::new(&PROCESSES, &t.name, b);
        for r in 0..c.len() {
            let process_id = c.text(0, r).to_owned();
            rows.push(ProcessRow {
                exe: c.text(1, r).to_owned(),
                pid: c.opt(2, r),
                start_time: c.req(3, r, &process_id)?,
                end_time: c.opt(4, r),
                process_id,
            });
        }
    }
    rows.sort_by(|a, b| a.process_id.cmp(&b.process_id));
    Ok(rows)
}

async fn read_streams(
    ctx: &SessionContext,
    t: &Checked,
    filter: Option<Expr>,
) -> DfResult<Vec<StreamRow>> {
    let mut df = ctx.table(t.name.as_str()).await?;
    if let Some(f) = filter {
        df = df.filter(f)?;
    }
    let batches: Vec<RecordBatch> = df.select(t.reads.clone())?.collect().await?;
    let mut rows = Vec::new();
    for b in &batches {
        let c = Columns::new(&STREAMS, &t.name, b);
        for r in 0..c.len() {
            rows.push(StreamRow {
                stream_id: c.text(0, r).to_owned(),
                process_id: c.text(1, r).to_owned(),
                thread_name: c.text(2, r).to_owned(),
                thread_id: c.opt(3, r),
            });
        }
    }
    rows.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
    Ok(rows)
}

fn of_streams(streams: &[StreamRow]) -> Expr {
    let ids = streams.iter().map(|s| lit(s.stream_id.as_str())).collect();
    in_list(col(quoted("stream_id")), ids, false)
}

fn asc(column: &str) -> SortExpr {
    col(quoted(column)).sort(true, false)
}

/// The thread spans of `streams` overlapping the window, by `begin`: the
/// importer wants each stream's rows in `begin` order and sorts rows of
/// one stream that begin together itself, and one integer key sorts and
/// merges much faster than (stream, begin, depth) with its string. Sorted
/// on the column as stored, so that files declared in `begin` order need
/// no sort.
async fn thread_rows(
    ctx: &SessionContext,
    t: &Checked,
    streams: &[StreamRow],
    window: Option<Window>,
) -> DfResult<DataFrame> {
    let mut filter = of_streams(streams);
    if let Some(w) = window {
        filter = filter
            .and(t.time_bound("begin", Bound::AtMost, end_of(w)))
            .and(t.time_bound("end", Bound::AtLeast, begin_of(w)));
    }
    ctx.table(t.name.as_str())
        .await?
        .filter(filter)?
        .sort(vec![asc("begin")])?
        .select(t.reads.clone())
}

/// The async events of `streams` by `time` (the importer takes the rows of
/// one time in any order), sorted on the column as stored.
///
/// With a window: when the table's rows come in `time` order (a declared
/// file order), every row up to the window's end, no sort: the importer
/// reads those before the window to know what is in flight when it
/// opens, in memory bounded by the spans in flight. Otherwise the events
/// inside it, and the begins before it of spans not ended before it (so
/// that a span crossing the whole window is shown), sorted: a smaller
/// sort, but a join whose memory grows with the spans ended before the
/// window.
async fn async_rows(
    ctx: &SessionContext,
    t: &Checked,
    streams: &[StreamRow],
    window: Option<Window>,
) -> DfResult<DataFrame> {
    let all = ctx
        .table(t.name.as_str())
        .await?
        .filter(of_streams(streams))?;
    let Some(w) = window else {
        return all.sort(vec![asc("time")])?.select(t.reads.clone());
    };
    let streamed = all
        .clone()
        .filter(t.time_bound("time", Bound::AtMost, end_of(w)))?
        .sort(vec![asc("time")])?
        .select(t.reads.clone())?;
    if !sorts(&part_state(&ctx.state(), 1), &streamed).await? {
        return Ok(streamed);
    }
    let inside = all
        .clone()
        .filter(
            t.time_bound("time", Bound::AtLeast, begin_of(w))
                .and(t.time_bound("time", Bound::AtMost, end_of(w))),
        )?
        .select(t.reads.clone())?;
    let before = all.filter(t.time_bound("time", Bound::Below, begin_of(w)))?;
    let ended = before
        .clone()
        .filter(col(quoted("event_type")).eq(lit("end")))?
        .select(t.reads.clone())?
        .select(vec![col(quoted("span_id")).alias("ended_span_id")])?;
    let open = before
        .filter(col(quoted("event_type")).eq(lit("begin")))?
        .select(t.reads.clone())?
        .join(
            ended,
            JoinType::LeftAnti,
            &["span_id"],
            &["ended_span_id"],
            None,
        )?;
    open.union(inside)?.sort(vec![asc("time")])
}

/// Whether `rows`, planned in `state`, sort (rather than merely read rows
/// already in order).
async fn sorts(state: &SessionState, rows: &DataFrame) -> DfResult<bool> {
    let plan = state.create_physical_plan(rows.logical_plan()).await?;
    let mut found = false;
    plan.apply(|node| {
        found |= node.downcast_ref::<SortExec>().is_some();
        Ok(match found {
            true => TreeNodeRecursion::Stop,
            false => TreeNodeRecursion::Continue,
        })
    })?;
    Ok(found)
}

/// The window's ends as the `Int64` nanoseconds of the tables (a window
/// past `i64::MAX` holds no row beyond it anyway).
fn begin_of(w: Window) -> i64 {
    i64::try_from(w.begin).unwrap_or(i64::MAX)
}

fn end_of(w: Window) -> i64 {
    i64::try_from(w.end).unwrap_or(i64::MAX)
}
