//! The table function through SQL: the trace it yields against the
//! importer's own, chunk by chunk, from memory and from Parquet, CSV and
//! JSON lakes; its plan; its errors; cancellation.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{concat, direct_trace, generate, slices, Lake, Times};
use datafusion::execution::context::SessionConfig;
use datafusion::physical_plan::displayable;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use perfetto_trace_writer::import::SpanKinds as ImportKinds;
use perfetto_trace_writer::protos;
use perfetto_trace_writer_datafusion::{
    register_lake, Format, PerfettoTraceChunks, Progress, TableNames,
};
use prost::Message;

fn session(partitions: usize) -> SessionContext {
    SessionContext::new_with_config(SessionConfig::new().with_target_partitions(partitions))
}

/// A session of `partitions` with `lake`'s tables registered from memory.
fn with_lake(lake: &Lake, times: Times, partitions: usize) -> SessionContext {
    let ctx = session(partitions);
    lake.register(&ctx, times);
    ctx
}

/// A session of `partitions` over `lake` written to `dir` in `format`
/// (each table in two files if `split`), registered from the files.
async fn with_files(
    lake: &Lake,
    dir: &Path,
    (format, times, split): (Format, Times, bool),
    partitions: usize,
) -> SessionContext {
    lake.write(dir, format, times, split);
    let ctx = session(partitions);
    register_lake(&ctx, dir, &TableNames::default())
        .await
        .unwrap();
    ctx
}

fn small_lake() -> Lake {
    generate(7, 2, 3, 4, 60)
}

async fn run(ctx: &SessionContext, sql: &str) -> (Vec<i32>, Vec<Vec<u8>>) {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    concat(&batches)
}

fn joined(chunks: &[Vec<u8>]) -> Vec<u8> {
    chunks.concat()
}

/// The window of the test lake's first process: cuts thread span trees
/// and async spans on both sides.
const WINDOW: (u64, u64) = (50_000, 150_000);

#[tokio::test]
async fn chunks_in_order_are_the_trace_the_importer_writes_from_the_rows() {
    let lake = small_lake();
    for partitions in [1, 4] {
        let ctx = with_lake(&lake, Times::Nanos, partitions);
        PerfettoTraceChunks::new().chunk_size(512).register(&ctx);
        for (kinds, import_kinds) in [
            ("both", ImportKinds::Both),
            ("thread", ImportKinds::Thread),
            ("async", ImportKinds::Async),
        ] {
            for window in [None, Some(WINDOW)] {
                let (b, e) = window.map_or(("NULL".to_string(), "NULL".to_string()), |(b, e)| {
                    (b.to_string(), e.to_string())
                });
                let sql = format!("SELECT chunk_id, chunk_data FROM perfetto_trace_chunks('proc-0', '{kinds}', {b}, {e}) ORDER BY chunk_id");
                let (ids, chunks) = run(&ctx, &sql).await;
                let sizes: Vec<usize> = chunks.iter().map(Vec::len).collect();
                assert!(
                    chunks.len() > 1,
                    "{kinds}: the trace comes in several chunks: {sizes:?}"
                );
                assert!(
                    ids.windows(2).all(|w| w[0] < w[1]),
                    "ordered by chunk_id: {ids:?}"
                );
                for c in &chunks {
                    let alone = protos::Trace::decode(&c[..]).expect("each chunk decodes alone");
                    assert!(!alone.packet.is_empty());
                }
                let (direct, report) = direct_trace(&lake, "proc-0", import_kinds, window);
                let want = slices(&direct);
                assert!(
                    want.len() > 5,
                    "{kinds}: the lake shows spans ({})",
                    want.len()
                );
                assert_eq!(
                    slices(&joined(&chunks)),
                    want,
                    "{kinds}, window {window:?}, {partitions} partitions (direct report: {report})"
                );
            }
        }
    }
}

#[tokio::test]
async fn timestamps_and_nanoseconds_give_the_same_trace() {
    let lake = small_lake();
    let mut traces = Vec::new();
    for times in [Times::Nanos, Times::Timestamps] {
        let ctx = with_lake(&lake, times, 2);
        PerfettoTraceChunks::new().register(&ctx);
        let sql = "SELECT chunk_id, chunk_data FROM perfetto_trace_chunks('proc-1', 'both', \
                   TIMESTAMP '1970-01-01T00:00:00.000050Z', TIMESTAMP '1970-01-01T00:00:00.000150Z') ORDER BY chunk_id";
        let (_, chunks) = run(&ctx, sql).await;
        traces.push(slices(&joined(&chunks)));
    }
    assert_eq!(traces[0], traces[1]);
    let (direct, _) = direct_trace(&lake, "proc-1", ImportKinds::Both, Some(WINDOW));
    assert_eq!(traces[0], slices(&direct));
}

#[tokio::test]
async fn parquet_csv_and_json_lakes_give_the_same_trace() {
    let lake = generate(11, 3, 2, 3, 40);
    let dir = tempfile::tempdir().unwrap();
    let mut traces = Vec::new();
    for (i, (format, times, split)) in [
        (Format::Parquet, Times::Timestamps, false),
        (Format::Parquet, Times::Nanos, true),
        (Format::Csv, Times::Nanos, false),
        (Format::Csv, Times::Nanos, true),
        (Format::JsonLines, Times::Nanos, false),
        (Format::JsonLines, Times::Nanos, true),
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.path().join(format!("lake-{i}"));
        let ctx = with_files(&lake, &path, (format, times, split), 2).await;
        PerfettoTraceChunks::new().chunk_size(4096).register(&ctx);
        let (_, chunks) = run(
            &ctx,
            "SELECT chunk_id, chunk_data FROM perfetto_trace_chunks('proc-2', 'both', 50000, 150000) ORDER BY chunk_id",
        )
        .await;
        traces.push((
            format!("{format:?} {times:?} split {split}"),
            joined(&chunks),
        ));
    }
    let (direct, _) = direct_trace(&lake, "proc-2", ImportKinds::Both, Some(WINDOW));
    let want = slices(&direct);
    for (what, t) in &traces {
        assert_eq!(slices(t), want, "{what}");
        assert_eq!(t, &traces[0].1, "{what}: the same bytes");
    }
}

#[tokio::test]
async fn order_by_chunk_id_needs_no_sort_nor_merge_and_filters_are_pushed_down() {
    let lake = generate(3, 1, 4, 3, 30);
    let dir = tempfile::tempdir().unwrap();
    let parquet = (Format::Parquet, Times::Timestamps, false);
    let ctx = with_files(&lake, dir.path(), parquet, 3).await;
    PerfettoTraceChunks::new().register(&ctx);
    let df = ctx
        .sql("SELECT chunk_id, chunk_data FROM perfetto_trace_chunks('proc-0', 'both', 300000, 900000) ORDER BY chunk_id")
        .await
        .unwrap();
    let plan = df.create_physical_plan().await.unwrap();
    let text = displayable(plan.as_ref()).indent(true).to_string();
    // A merge would hold `batch_size` chunks before emitting any.
    let above: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("PerfettoChunksExec:"))
        .collect();
    assert!(
        above.iter().all(|l| l.starts_with("CooperativeExec")),
        "no sort or merge of the chunks:\n{text}"
    );
    assert!(
        text.contains("parts=4"),
        "3 thread parts and 1 async part:\n{text}"
    );
    // The window and the streams reach the Parquet scans as predicates.
    let scans = text.matches("file_type=parquet").count();
    let pruned = text.matches("predicate=").count();
    assert!(
        scans >= 4 && pruned >= scans,
        "{scans} scans, {pruned} predicates:\n{text}"
    );
    assert!(text.contains("stream_id"), "{text}");
}

fn error_of(
    result: datafusion::error::Result<Vec<datafusion::arrow::record_batch::RecordBatch>>,
) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

async fn sql_error(ctx: &SessionContext, sql: &str) -> String {
    match ctx.sql(sql).await {
        Err(e) => e.to_string(),
        Ok(df) => error_of(df.collect().await),
    }
}

#[tokio::test]
async fn bad_arguments_are_plan_errors_that_name_them() {
    let ctx = with_lake(&small_lake(), Times::Nanos, 2);
    PerfettoTraceChunks::new().register(&ctx);
    let cases = [
        (
            "perfetto_trace_chunks('proc-0', 'both', 0)",
            "takes 4 arguments (process_id, span_kinds, begin, end), got 3",
        ),
        (
            "perfetto_trace_chunks(7, 'both', 0, 1)",
            "argument 1 (process_id) must be a string",
        ),
        (
            "perfetto_trace_chunks('proc-0', 'threads', 0, 1)",
            "span kinds must be 'thread', 'async' or 'both', got 'threads'",
        ),
        (
            "perfetto_trace_chunks('proc-0', 3, 0, 1)",
            "argument 2 (span_kinds) must be",
        ),
        (
            "perfetto_trace_chunks('proc-0', 'both', 10, 5)",
            "begin (10 ns) is after end (5 ns)",
        ),
        (
            "perfetto_trace_chunks('proc-0', 'both', 'noon', 5)",
            "argument 3 (begin) must be a TIMESTAMP or BIGINT",
        ),
        (
            "perfetto_trace_chunks('proc-0', 'both', 0, 1.5)",
            "argument 4 (end) must be a TIMESTAMP or BIGINT",
        ),
        (
            "perfetto_trace_chunks('proc-0', 'both', NULL, 5)",
            "both be times or both be NULL",
        ),
        (
            "perfetto_trace_chunks('proc-0', 'both', -5, 5)",
            "begin is negative (-5 ns)",
        ),
        (
            "perfetto_trace_chunks('nobody', 'both', 0, 5)",
            "unknown process 'nobody'",
        ),
    ];
    for (call, message) in cases {
        let e = sql_error(&ctx, &format!("SELECT * FROM {call}")).await;
        assert!(e.contains(message), "{call}: {e}");
        assert!(
            e.contains("Error during planning"),
            "{call} is a plan error: {e}"
        );
    }
}

#[tokio::test]
async fn missing_tables_and_columns_and_wrong_types_are_named() {
    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    let lake = small_lake();
    let sql = "SELECT * FROM perfetto_trace_chunks('proc-0', 'both', NULL, NULL)";

    let ctx = with_lake(&lake, Times::Nanos, 2);
    ctx.deregister_table("async_events").unwrap();
    PerfettoTraceChunks::new().register(&ctx);
    let e = sql_error(&ctx, sql).await;
    assert!(
        e.contains("no table named `async_events` is registered (the async_events table"),
        "{e}"
    );
    // Thread spans alone do not need it.
    let (_, chunks) = run(
        &ctx,
        "SELECT * FROM perfetto_trace_chunks('proc-0', 'thread', NULL, NULL)",
    )
    .await;
    assert!(!chunks.is_empty());

    // Configured names are looked up instead.
    let ctx = with_lake(&lake, Times::Nanos, 2);
    let names = TableNames {
        thread_spans: "calls".into(),
        ..TableNames::default()
    };
    PerfettoTraceChunks::new().tables(names).register(&ctx);
    let e = sql_error(&ctx, sql).await;
    assert!(
        e.contains("no table named `calls` is registered (the thread_spans table"),
        "{e}"
    );

    let replace = |ctx: &SessionContext, name: &str, b: RecordBatch| {
        ctx.deregister_table(name).unwrap();
        ctx.register_batch(name, b).unwrap();
    };
    let ctx = with_lake(&lake, Times::Nanos, 2);
    PerfettoTraceChunks::new().register(&ctx);
    let streams = RecordBatch::try_from_iter([
        ("stream_id", Arc::new(StringArray::from(vec!["s"])) as _),
        (
            "process_id",
            Arc::new(StringArray::from(vec!["proc-0"])) as _,
        ),
        ("thread_id", Arc::new(Int64Array::from(vec![1])) as _),
    ])
    .unwrap();
    replace(&ctx, "streams", streams);
    let e = sql_error(&ctx, sql).await;
    assert!(e.contains("table `streams` has no column `thread_name` (its columns: stream_id, process_id, thread_id)"), "{e}");

    let ctx = with_lake(&lake, Times::Nanos, 2);
    PerfettoTraceChunks::new().register(&ctx);
    let [_, _, (_, spans), _] = lake.batches(Times::Nanos);
    let mut columns: Vec<(&str, datafusion::arrow::array::ArrayRef)> = Vec::new();
    let schema = spans.schema();
    for (i, f) in schema.fields().iter().enumerate() {
        let c = if f.name() == "begin" {
            Arc::new(StringArray::from_iter_values(
                (0..spans.num_rows()).map(|_| "x"),
            )) as _
        } else {
            Arc::clone(spans.column(i))
        };
        columns.push((f.name().as_str(), c));
    }
    replace(
        &ctx,
        "thread_spans",
        RecordBatch::try_from_iter(columns).unwrap(),
    );
    let e = sql_error(&ctx, sql).await;
    assert!(
        e.contains("column `thread_spans.begin` is Utf8; expected Timestamp(Nanosecond) (any unit) or Int64 nanoseconds"),
        "{e}"
    );
}

#[tokio::test]
async fn a_null_time_is_an_execution_error_naming_the_column() {
    let mut lake = small_lake();
    let ctx = with_lake(&lake, Times::Nanos, 1);
    // A thread span row with a null end: rebuilt with the column nullable.
    let [_, _, (_, spans), _] = lake.batches(Times::Nanos);
    let ends: datafusion::arrow::array::Int64Array = (0..spans.num_rows())
        .map(|i| {
            if i == 3 {
                None
            } else {
                Some(lake.thread_spans[i].end)
            }
        })
        .collect();
    let mut columns: Vec<(&str, datafusion::arrow::array::ArrayRef)> = Vec::new();
    let schema = spans.schema();
    for (i, f) in schema.fields().iter().enumerate() {
        let c = if f.name() == "end" {
            Arc::new(ends.clone()) as _
        } else {
            Arc::clone(spans.column(i))
        };
        columns.push((f.name().as_str(), c));
    }
    ctx.deregister_table("thread_spans").unwrap();
    ctx.register_batch(
        "thread_spans",
        datafusion::arrow::array::RecordBatch::try_from_iter(columns).unwrap(),
    )
    .unwrap();
    PerfettoTraceChunks::new().register(&ctx);
    let process = lake
        .streams
        .iter()
        .find(|s| s.id == lake.thread_spans[3].stream)
        .unwrap()
        .process
        .clone();
    let e = sql_error(
        &ctx,
        &format!("SELECT * FROM perfetto_trace_chunks('{process}', 'thread', NULL, NULL)"),
    )
    .await;
    assert!(e.contains("`thread_spans.end` is null in a row"), "{e}");
    lake.thread_spans.clear();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_arrive_while_rows_are_read_and_dropping_the_stream_stops_the_work() {
    let lake = generate(5, 1, 2, 3000, 20_000);
    let total = lake.thread_spans.len() + lake.async_events.len();
    let ctx = SessionContext::new_with_config(
        SessionConfig::new()
            .with_target_partitions(2)
            .with_batch_size(256),
    );
    lake.register(&ctx, Times::Nanos);
    let progress = Arc::new(Progress::new());
    PerfettoTraceChunks::new()
        .chunk_size(1024)
        .progress(Arc::clone(&progress))
        .register(&ctx);
    let df = ctx
        .sql("SELECT chunk_id, chunk_data FROM perfetto_trace_chunks('proc-0', 'both', NULL, NULL) ORDER BY chunk_id")
        .await
        .unwrap();
    let mut stream = df.execute_stream().await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert!(first.num_rows() > 0);
    assert_eq!(
        progress.parts_done(),
        0,
        "the first chunks come before any part is done"
    );
    assert!(
        (progress.rows() as usize) < total,
        "{} of {total} rows read",
        progress.rows()
    );
    drop(stream);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = progress.rows();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        progress.rows(),
        stopped,
        "nothing is read once the stream is dropped"
    );
    assert!((stopped as usize) < total, "{stopped} of {total} rows read");
    assert_eq!(progress.parts_done(), 0);
}

/// DataFusion's default batch is 8192 rows: more than this trace's chunks,
/// which a merge of partitions (`ORDER BY chunk_id` over several) would
/// hold until it had them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_by_chunk_id_does_not_hold_chunks_back() {
    let lake = generate(5, 1, 2, 300, 2000);
    let ctx = with_lake(&lake, Times::Nanos, 2);
    PerfettoTraceChunks::new().chunk_size(1024).register(&ctx);
    let batches = ctx
        .sql("SELECT chunk_id, chunk_data FROM perfetto_trace_chunks('proc-0', 'both', NULL, NULL) ORDER BY chunk_id")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let chunks: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert!(chunks > 100, "{chunks} chunks");
    assert!(
        batches[0].num_rows() < chunks / 4,
        "the first batch holds {} of {chunks} chunks",
        batches[0].num_rows()
    );
}

#[tokio::test]
async fn chunks_are_about_the_size_asked_and_progress_counts_them() {
    let lake = generate(9, 1, 3, 50, 300);
    let ctx = with_lake(&lake, Times::Nanos, 2);
    let progress = Arc::new(Progress::new());
    PerfettoTraceChunks::new()
        .chunk_size(8192)
        .progress(Arc::clone(&progress))
        .register(&ctx);
    let (_, chunks) = run(
        &ctx,
        "SELECT * FROM perfetto_trace_chunks('proc-0', 'both', NULL, NULL) ORDER BY chunk_id",
    )
    .await;
    assert!(chunks.len() > 4);
    assert!(
        chunks.iter().all(|c| c.len() < 8192 + 1024),
        "no chunk far past the size"
    );
    assert_eq!(progress.chunks() as usize, chunks.len());
    assert_eq!(
        progress.bytes() as usize,
        chunks.iter().map(Vec::len).sum::<usize>()
    );
    assert_eq!(
        progress.rows() as usize,
        lake.thread_spans.len() + lake.async_events.len()
    );
    let report = progress.report();
    let (_, direct) = direct_trace(&lake, "proc-0", ImportKinds::Both, None);
    assert_eq!(report.thread_spans, direct.thread_spans);
    assert_eq!(report.async_spans, direct.async_spans);
    assert_eq!(report.clipped, direct.clipped);
}

#[tokio::test]
async fn every_process_when_process_id_is_null() {
    let lake = small_lake();
    let ctx = with_lake(&lake, Times::Nanos, 2);
    PerfettoTraceChunks::new().register(&ctx);
    let (_, chunks) = run(
        &ctx,
        "SELECT * FROM perfetto_trace_chunks(NULL, 'both', NULL, NULL) ORDER BY chunk_id",
    )
    .await;
    let mut want = Vec::new();
    for p in &lake.processes {
        want.extend(slices(
            &direct_trace(&lake, &p.id, ImportKinds::Both, None).0,
        ));
    }
    want.sort();
    assert_eq!(slices(&joined(&chunks)), want);
}

#[tokio::test]
async fn the_simulated_service_through_sql_is_the_importers_trace() {
    let simulated = common::sim::simulate(&common::sim::SimConfig {
        seed: 20,
        processes: 2,
        threads: 3,
        requests: 15,
        anomalies: true,
    });
    let lake = Lake::from_sim(&simulated);
    let dir = tempfile::tempdir().unwrap();
    let parquet = (Format::Parquet, Times::Timestamps, false);
    let ctx = with_files(&lake, dir.path(), parquet, 3).await;
    let progress = Arc::new(Progress::new());
    PerfettoTraceChunks::new()
        .chunk_size(4096)
        .progress(Arc::clone(&progress))
        .register(&ctx);
    let p = &lake
        .processes
        .iter()
        .min_by_key(|p| p.id.clone())
        .unwrap()
        .id;
    let first = lake.async_events.iter().map(|e| e.time).min().unwrap();
    let last = lake.async_events.iter().map(|e| e.time).max().unwrap();
    for window in [
        None,
        Some((first + (last - first) / 3, first + (last - first) * 2 / 3)),
    ] {
        let (b, e) = window.map_or(("NULL".to_string(), "NULL".to_string()), |(b, e)| {
            (b.to_string(), e.to_string())
        });
        let sql = format!("SELECT chunk_id, chunk_data FROM perfetto_trace_chunks('{p}', 'both', {b}, {e}) ORDER BY chunk_id");
        let before = progress.report();
        let (_, chunks) = run(&ctx, &sql).await;
        let window = window.map(|(b, e)| (b as u64, e as u64));
        let (direct, report) = direct_trace(&lake, p, ImportKinds::Both, window);
        assert_eq!(
            slices(&joined(&chunks)),
            slices(&direct),
            "window {window:?}"
        );
        let mut got = progress.report();
        got.thread_spans -= before.thread_spans;
        got.async_spans -= before.async_spans;
        got.clipped -= before.clipped;
        assert_eq!(
            (got.thread_spans, got.async_spans, got.clipped),
            (report.thread_spans, report.async_spans, report.clipped)
        );
        if window.is_some() {
            assert!(report.clipped > 0, "the window cuts async spans: {report}");
        }
    }
}
