//! Memory: a Parquet lake several times DataFusion's memory pool gives the
//! trace an unlimited session gives, through the function and through the
//! tool (the sorts spill); a lake declared in time order plans no sort at
//! all, so no pool size matters.

mod common;

use std::process::Command;
use std::sync::{Arc, OnceLock};

use common::{concat, direct_trace, generate, processor_view, slices, Lake, Times};
use datafusion::execution::context::SessionConfig;
use datafusion::execution::disk_manager::DiskManagerBuilder;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::displayable;
use datafusion::prelude::SessionContext;
use perfetto_trace_writer::import::SpanKinds;
use perfetto_trace_writer_datafusion::{
    register_lake, register_lake_in_order, Format, PerfettoTraceChunks, RowOrder, TableNames,
};

/// The pool the limited runs of the function get.
const POOL: usize = 3 << 19;

/// The tool's `--memory-limit` (MiB) for the lake as it is.
const TOOL_MIB: usize = 2;

/// The pool of runs over the lake in time order: less than a sort of its
/// rows would need to even begin.
const SORTED_POOL: usize = 1 << 20;

/// Rows DataFusion reads at a time: a 32nd of its default, so that the
/// pool fits a few batches per sort while the lake stays small enough to
/// make in a debug build.
const BATCH: usize = 256;

/// Small chunks: the trace comes in many.
const CHUNK: usize = 32 * 1024;

/// One process of 4 streams with about 65,000 thread spans and 55,000
/// async events: each span table as Arrow is several times the pools.
fn big_lake() -> &'static Lake {
    static LAKE: OnceLock<Lake> = OnceLock::new();
    LAKE.get_or_init(|| generate(13, 1, 4, 5_000, 30_000))
}

/// The slices the importer writes from the lake's rows directly (what
/// the other tests show every unlimited run gives); the same for the lake
/// in time order, as the importer takes the rows sorted.
fn want(window: Option<(u64, u64)>) -> Vec<String> {
    slices(&direct_trace(big_lake(), "proc-0", SpanKinds::Both, window).0)
}

/// [`want`] of the whole lake, made once for every test.
fn want_all() -> &'static [String] {
    static WANT: OnceLock<Vec<String>> = OnceLock::new();
    WANT.get_or_init(|| want(None))
}

/// A session of 2 partitions and small batches, with a fair pool of
/// `pool` bytes and merges of at most 4 spill files at once (an
/// unlimited merge reserves what it can for every file, starving the
/// other parts' sorts).
fn session(pool: usize) -> SessionContext {
    let config = SessionConfig::new()
        .with_target_partitions(2)
        .with_batch_size(BATCH);
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(pool)))
        .with_disk_manager_builder(DiskManagerBuilder::default().with_max_spill_merge_fan_in(4))
        .build_arc()
        .unwrap();
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    PerfettoTraceChunks::new().chunk_size(CHUNK).register(&ctx);
    ctx
}

const QUERY: &str = "SELECT chunk_id, chunk_data FROM perfetto_trace_chunks('proc-0', 'both', NULL, NULL) ORDER BY chunk_id";

async fn trace(ctx: &SessionContext, sql: &str) -> Vec<u8> {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    concat(&batches).1.concat()
}

async fn plan_text(ctx: &SessionContext, sql: &str) -> String {
    let plan = ctx
        .sql(sql)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let text = displayable(plan.as_ref()).indent(true).to_string();
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lake_several_times_the_pool_gives_the_unlimited_trace_through_the_function() {
    let lake = big_lake();
    let b = lake.batches(Times::Nanos);
    let (threads, asyncs) = (
        b[2].1.get_array_memory_size(),
        b[3].1.get_array_memory_size(),
    );
    let tool = TOOL_MIB << 20;
    assert!(
        threads.min(asyncs) > 3 * POOL.max(tool),
        "each span table ({threads} and {asyncs} bytes as Arrow) is several times the pools ({POOL}, {tool})"
    );
    let dir = tempfile::tempdir().unwrap();
    lake.write(dir.path(), Format::Parquet, Times::Nanos, false);
    let ctx = session(POOL);
    register_lake(&ctx, dir.path(), &TableNames::default())
        .await
        .unwrap();
    assert!(
        plan_text(&ctx, QUERY).await.contains("SortExec"),
        "the lake is not in time order: its rows are sorted"
    );
    let got = slices(&trace(&ctx, QUERY).await);
    assert_eq!(got.len(), want_all().len());
    assert!(got == want_all(), "the limited run's slices differ");
}

/// The queries of a lake declared in time order, and their window form.
const WINDOWED: &str = "SELECT chunk_id, chunk_data FROM perfetto_trace_chunks('proc-0', 'both', 2000000, 6000000) ORDER BY chunk_id";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lake_in_time_order_plans_no_sort_and_needs_no_pool_to_speak_of() {
    let lake = big_lake().by_time();
    let dir = tempfile::tempdir().unwrap();
    // Two files per table: the scan merges them in order.
    lake.write(dir.path(), Format::Parquet, Times::Timestamps, true);
    // A pool too small for any sort of these rows to even begin: a batch
    // of rows and its sort keys take more.
    let ctx = session(SORTED_POOL);
    register_lake_in_order(&ctx, dir.path(), &TableNames::default(), RowOrder::ByTime)
        .await
        .unwrap();
    for sql in [QUERY, WINDOWED] {
        let text = plan_text(&ctx, sql).await;
        assert!(!text.contains("SortExec"), "no sort:\n{text}");
        assert!(!text.contains("HashJoinExec"), "no join:\n{text}");
        assert!(text.contains("output_ordering"), "ordered scans:\n{text}");
    }
    assert!(slices(&trace(&ctx, QUERY).await) == want_all());
    let window = want(Some((2_000_000, 6_000_000)));
    assert!(slices(&trace(&ctx, WINDOWED).await) == window);
}

fn tool(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_perfetto-trace-gen"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_tool_under_a_memory_limit_writes_the_unlimited_trace() {
    let lake = big_lake();
    let dir = tempfile::tempdir().unwrap();
    let unsorted = dir.path().join("unsorted");
    lake.write(&unsorted, Format::Parquet, Times::Nanos, false);
    let sorted = dir.path().join("sorted");
    lake.by_time()
        .write(&sorted, Format::Parquet, Times::Nanos, false);
    let (mib, sorted_mib) = (TOOL_MIB.to_string(), (SORTED_POOL >> 20).to_string());
    let (batch, chunk) = (BATCH.to_string(), CHUNK.to_string());
    for (lake_dir, extra) in [
        (&unsorted, vec!["--memory-limit", mib.as_str()]),
        (
            &sorted,
            vec!["--memory-limit", sorted_mib.as_str(), "--sorted"],
        ),
    ] {
        let out = lake_dir.join("out.pftrace");
        let mut args = vec![
            lake_dir.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "-q",
        ];
        args.extend(["--batch-size", &batch, "--chunk-size", &chunk]);
        args.extend(extra.iter().copied());
        let (ok, err) = tool(&args);
        assert!(ok, "{args:?}: {err}");
        let trace = std::fs::read(&out).unwrap();
        assert!(slices(&trace) == want_all(), "{args:?}: the slices differ");
        if let Some((errors, n)) = processor_view(&out) {
            assert!(
                !errors.lines().any(|l| l.contains('=')),
                "error stats: {errors}"
            );
            assert_eq!(n, want_all().len(), "the trace processor shows every slice");
        }
    }
}

/// A lake declared in time order whose files are not: the query fails with
/// the importer's error naming the first row out of order, rather than
/// writing a trace that is not what the rows say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lake_declared_in_time_order_that_is_not_is_an_error_naming_the_row() {
    let mut lake = generate(5, 1, 2, 20, 40).by_time();
    lake.thread_spans.reverse();
    lake.async_events.reverse();
    let dir = tempfile::tempdir().unwrap();
    lake.write(dir.path(), Format::Parquet, Times::Nanos, false);
    for kinds in ["thread", "async"] {
        let ctx = session(64 << 20);
        register_lake_in_order(&ctx, dir.path(), &TableNames::default(), RowOrder::ByTime)
            .await
            .unwrap();
        let sql = format!(
            "SELECT chunk_id, chunk_data FROM perfetto_trace_chunks('proc-0', '{kinds}', NULL, NULL) ORDER BY chunk_id"
        );
        let err = ctx.sql(&sql).await.unwrap().collect().await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("must come in time order") && text.contains(" row "),
            "{kinds}: {text}"
        );
    }
}
