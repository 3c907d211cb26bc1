//! `perfetto-trace-gen`: a Perfetto trace from a telemetry lake of Parquet,
//! CSV or JSON-lines files, through DataFusion.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::context::{SessionConfig, SessionContext};
use datafusion::execution::disk_manager::DiskManagerBuilder;
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::col;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use perfetto_trace_writer_datafusion::{
    parse_time, register_lake_in_order, window, PerfettoTraceChunks, Progress, RowOrder, SpanKinds,
    TableNames, TraceRequest,
};

/// Writes a Perfetto trace (for ui.perfetto.dev or the trace processor)
/// from telemetry tables: processes, streams (threads), thread spans and
/// async events, as an observability service stores them.
///
/// LAKE is a folder holding, for each table, a file `<table>.parquet`,
/// `<table>.csv` (with a header) or `<table>.jsonl` (one JSON object per
/// line), or a folder `<table>/` of such files: processes (process_id, exe,
/// pid, start_time, end_time), streams (stream_id, process_id, thread_name,
/// thread_id), thread_spans (stream_id, begin, end, depth, name, target,
/// filename, line) and async_events (stream_id, time, event_type, span_id,
/// parent_span_id, depth, name, filename, target, line). Times are
/// nanoseconds (integers) or timestamps.
///
/// The tables are registered in a DataFusion session under their names,
/// with the function perfetto_trace_chunks(process_id, span_kinds, begin,
/// end) that --sql queries may call.
#[derive(Parser, Debug)]
#[command(name = "perfetto-trace-gen", version, about, long_about)]
struct Cli {
    /// The folder of the four tables.
    lake: PathBuf,

    /// Where to write the trace (a .pftrace file).
    #[arg(short, long, value_name = "OUT.pftrace")]
    output: PathBuf,

    /// Only the process with this process_id; without it, every process.
    #[arg(long, value_name = "ID")]
    process: Option<String>,

    /// Which spans: thread spans, async spans, or both.
    #[arg(long, value_name = "KINDS", default_value = "both", value_parser = ["thread", "async", "both"])]
    spans: String,

    /// Start of the time window: nanoseconds, or an RFC 3339 time such as
    /// 2024-01-01T00:00:00Z. Needs --end. Spans overlapping the window are
    /// shown; async spans are cut to it and marked `clipped`.
    #[arg(long, value_name = "T", requires = "end")]
    begin: Option<String>,

    /// End of the time window (included), as --begin. Needs --begin.
    #[arg(long, value_name = "T", requires = "begin")]
    end: Option<String>,

    /// Runs this query instead, which must return a column `chunk_data`
    /// (Binary) in trace order, such as:
    /// SELECT chunk_id, chunk_data FROM perfetto_trace_chunks('p1', 'both',
    /// TIMESTAMP '2024-01-01T00:00:00Z', TIMESTAMP '2024-01-01T01:00:00Z')
    /// ORDER BY chunk_id.
    /// The chunks are written in the order the query returns them.
    #[arg(long, value_name = "QUERY", conflicts_with_all = ["process", "begin", "end"])]
    sql: Option<String>,

    /// Approximate size of each chunk of the trace, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = PerfettoTraceChunks::DEFAULT_CHUNK_SIZE)]
    chunk_size: usize,

    /// Memory DataFusion may use for sorting rows, in MiB. The sorts of
    /// the parts of the trace share it evenly; a sort that reaches its
    /// share writes its sorted rows to temporary files (in TMPDIR) and
    /// merges them at the end, so the trace is the same, only slower. The
    /// limit counts what the sorts and merges hold, not the Parquet
    /// reader's buffers, the spans in flight or the chunks being written
    /// (a few times --chunk-size per part). Too small for a few batches
    /// of rows per sort, the tool stops with "Resources exhausted" naming
    /// what asked; with --sorted nothing sorts and the limit hardly matters.
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    memory_limit: usize,

    /// Rows DataFusion reads and sorts at a time. Each sort holds at least
    /// one such batch (and its sort keys) in memory; a smaller batch lets
    /// a smaller --memory-limit work, at some cost in speed.
    #[arg(long, value_name = "ROWS", default_value_t = 8192)]
    batch_size: usize,

    /// The lake's thread_spans files each hold their rows in begin order,
    /// and its async_events files in time order (as a service appending
    /// its telemetry writes them). Nothing is sorted: rows stream from the
    /// files to the trace, in memory bounded by batches, chunks and spans
    /// in flight however large the lake. A row out of that order stops
    /// the tool with an error naming it.
    #[arg(long)]
    sorted: bool,

    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
}

/// How many of the largest memory consumers an out-of-memory error names.
const CONSUMERS_NAMED: NonZeroUsize = NonZeroUsize::new(5).unwrap();

/// How many spill files one merge pass of a sort reads at once.
const SPILL_MERGE_FAN_IN: usize = 4;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> DfResult<()> {
    // A fair pool: each of the parts' sorts may hold an even share before it
    // spills (DataFusion's greedy pool lets the first sorts take it all and
    // the next ones fail). Errors name the largest consumers.
    let pool = FairSpillPool::new(cli.memory_limit.saturating_mul(1 << 20));
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(TrackConsumersPool::new(pool, CONSUMERS_NAMED)))
        // A merge of spill files reserves memory for each file it reads at
        // once; unbounded, one sort's merge starves the others.
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_max_spill_merge_fan_in(SPILL_MERGE_FAN_IN),
        )
        .build_arc()?;
    let ctx = SessionContext::new_with_config_rt(
        SessionConfig::new().with_batch_size(cli.batch_size.max(1)),
        runtime,
    );
    let names = TableNames::default();
    let order = match cli.sorted {
        true => RowOrder::ByTime,
        false => RowOrder::Unknown,
    };
    register_lake_in_order(&ctx, &cli.lake, &names, order).await?;
    let progress = Arc::new(Progress::new());
    let function = PerfettoTraceChunks::new()
        .tables(names)
        .chunk_size(cli.chunk_size)
        .progress(Arc::clone(&progress));
    function.clone().register(&ctx);

    let frame = match &cli.sql {
        Some(query) => ctx.sql(query).await?,
        None => {
            let window = match (&cli.begin, &cli.end) {
                (Some(b), Some(e)) => Some(window(parse_time(b)?, parse_time(e)?)?),
                _ => None,
            };
            let request = TraceRequest {
                process: cli.process.clone(),
                spans: cli.spans.parse::<SpanKinds>()?,
                window,
            };
            ctx.read_table(function.table(request))?
                .sort(vec![col("chunk_id").sort(true, false)])?
        }
    };
    let data_column = frame
        .schema()
        .as_arrow()
        .index_of("chunk_data")
        .map_err(|_| DataFusionError::Plan("the query returns no column `chunk_data`".into()))?;
    let data_type = frame
        .schema()
        .as_arrow()
        .field(data_column)
        .data_type()
        .clone();
    if data_type != DataType::Binary {
        return Err(DataFusionError::Plan(format!(
            "`chunk_data` is {data_type}; expected Binary"
        )));
    }

    let bar = if cli.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let started = Instant::now();
    let show = |bar: &ProgressBar| {
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        bar.set_message(format!(
            "{} rows ({:.0} rows/s), {} chunks, {}",
            progress.rows(),
            progress.rows() as f64 / secs,
            progress.chunks(),
            indicatif::HumanBytes(progress.bytes()),
        ));
    };

    let mut out = BufWriter::new(File::create(&cli.output)?);
    let mut stream = frame.execute_stream().await?;
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    let mut written = 0u64;
    loop {
        tokio::select! {
            batch = stream.next() => {
                let Some(batch) = batch else { break };
                let batch = batch?;
                let data = batch.column(data_column).as_binary::<i32>();
                for i in 0..data.len() {
                    if !data.is_null(i) {
                        out.write_all(data.value(i))?;
                        written += data.value(i).len() as u64;
                    }
                }
            }
            _ = ticker.tick() => show(&bar),
        }
    }
    out.flush()?;
    show(&bar);
    bar.finish();
    let report = progress.report();
    if !cli.quiet {
        eprintln!(
            "wrote {} to {}",
            indicatif::HumanBytes(written),
            cli.output.display()
        );
        eprintln!("{report}");
    }
    Ok(())
}
