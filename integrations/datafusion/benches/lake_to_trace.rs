//! Rows per second from a Parquet lake to trace bytes: a million thread
//! spans on 8 streams and 200,000 async spans (400,000 event rows), and
//! where the time goes. Each stage is measured on its own, on the very
//! queries and writers the function plans (`stages::Stages`):
//! - `read`: DataFusion alone: each part's query (scan, filters, casts,
//!   sort to the importer's order) run and its rows collected;
//! - `import`: the importer alone on those rows, already in memory, into
//!   `io::sink()`: Arrow columns to rows, matching, clipping and the
//!   writer's encoding;
//! - `encode`: the writer alone: the calls the importer makes for the same
//!   spans, from plain structs, into `io::sink()`;
//! - `sql`: the whole `perfetto_trace_chunks` query, its partitions running
//!   at once, chunks collected.
//!
//! `read` and `import` run the parts one after the other; `sql` runs them
//! concurrently on the runtime's threads.

#[path = "../tests/common/mod.rs"]
mod common;

use std::fs::File;
use std::io;
use std::path::Path;
use std::time::Duration;

use common::{AsyncEvent, Lake, Process, Stream, ThreadSpan, Times};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::prelude::SessionContext;
use perfetto_trace_writer::{
    AsyncLane, AsyncParent, Event, Options, StreamingPerfettoWriter, TraceWriter,
};
use perfetto_trace_writer_datafusion::stages::Stages;
use perfetto_trace_writer_datafusion::{
    register_lake, PerfettoTraceChunks, SpanKinds, TableNames, TraceRequest,
};

const STREAMS: usize = 8;
const THREAD_SPANS: usize = 1_000_000;
const ASYNC_SPANS: usize = 200_000;
/// Rows per Parquet row group: the unit DataFusion's scans split and prune.
const ROW_GROUP: usize = 64 * 1024;

/// Thread spans in trees of four (a root, two children, a grandchild), async spans up to 64 in flight, begun on one stream and
/// ended on the next, one in four a child of the span before it.
fn lake() -> Lake {
    let mut lake = Lake::default();
    lake.processes.push(Process {
        id: "bench".into(),
        exe: "bench-service".into(),
        pid: Some(1000),
        start: 0,
        end: Some(10_000_000_000_000),
    });
    let ids: Vec<String> = (0..STREAMS).map(|s| format!("stream-{s}")).collect();
    for (s, id) in ids.iter().enumerate() {
        lake.streams.push(Stream {
            id: id.clone(),
            process: "bench".into(),
            name: format!("worker-{s}"),
            tid: None,
        });
    }
    let per_stream = THREAD_SPANS / STREAMS / 4;
    for id in &ids {
        for k in 0..per_stream as i64 {
            let t = 1_000 + k * 1_000;
            let span = |b: i64, e: i64, depth: i64, name: &str, line: i64| ThreadSpan {
                stream: id.clone(),
                begin: b,
                end: e,
                depth,
                name: name.to_owned(),
                target: "app".into(),
                file: "src/handler.rs".into(),
                line,
            };
            let group = [
                span(t, t + 900, 0, "handle_request", 10),
                span(t + 100, t + 300, 1, "parse", 20),
                span(t + 500, t + 800, 1, "execute", 40),
                span(t + 550, t + 700, 2, "scan", 50),
            ];
            lake.thread_spans.extend(group);
        }
    }
    for k in 0..ASYNC_SPANS as i64 {
        let t = 1_000 + k * 50;
        let parent = if k % 4 == 1 { Some(k) } else { None };
        let ev = |stream: usize, time: i64, kind: &'static str| AsyncEvent {
            stream: ids[stream % STREAMS].clone(),
            time,
            kind,
            span: k + 1,
            parent,
            depth: i64::from(parent.is_some()),
            name: format!("fetch {}", k % 13),
            file: "src/io.rs".into(),
            target: "io".into(),
            line: 77,
        };
        lake.async_events.push(ev(k as usize, t, "begin"));
        lake.async_events
            .push(ev(k as usize + 1, t + 64 * 50 - 25, "end"));
    }
    lake.async_events.sort_by_key(|e| e.time);
    lake
}

/// The lake as Parquet files (in the order generated: thread spans by
/// stream and time, async events by time), row groups of [`ROW_GROUP`] rows.
fn write_parquet(lake: &Lake, dir: &Path) {
    for (name, b) in lake.batches(Times::Timestamps) {
        let f = File::create(dir.join(format!("{name}.parquet"))).unwrap();
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(ROW_GROUP))
            .build();
        let mut w = ArrowWriter::try_new(f, b.schema(), Some(props)).unwrap();
        w.write(&b).unwrap();
        w.close().unwrap();
    }
}

fn request() -> TraceRequest {
    TraceRequest {
        process: Some("bench".into()),
        spans: SpanKinds::Both,
        window: None,
    }
}

/// The writer's work alone: the calls the importer makes for the lake's
/// spans (thread spans at their depth, async spans on a lane per stream,
/// children beneath their parent), with the writers and chunk size of the
/// function's parts (one for the thread spans, one for the async spans).
fn encode(lake: &Lake) -> u64 {
    let chunk = PerfettoTraceChunks::DEFAULT_CHUNK_SIZE;
    let mut bytes = 0;
    let writer = |i| {
        let options = Options::new().partition(i).flush_threshold(chunk);
        StreamingPerfettoWriter::with_options(io::sink(), options)
    };
    let describe = |w: &mut StreamingPerfettoWriter<io::Sink>| {
        let p = w
            .process("bench", Some(1000), "bench-service", &[])
            .unwrap();
        (0..STREAMS)
            .map(|s| {
                w.thread(p, &format!("stream-{s}"), None, &format!("worker-{s}"))
                    .unwrap()
            })
            .collect::<Vec<_>>()
    };

    let mut w = writer(1);
    let threads = describe(&mut w);
    for (i, t) in lake.thread_spans.iter().enumerate() {
        let thread = threads[i / (THREAD_SPANS / STREAMS)];
        let event = Event::new(&t.name)
            .category(&t.target)
            .location(&t.file, t.line as u32);
        w.complete_span_at_depth(
            thread,
            t.depth as usize,
            t.begin as u64,
            t.end as u64,
            &event,
        )
        .unwrap();
    }
    w.finish().unwrap();
    bytes += w.bytes_written();

    let mut w = writer(0);
    let threads = describe(&mut w);
    let lanes: Vec<AsyncLane> = threads
        .iter()
        .map(|&t| w.async_tree_lane(t, "async").unwrap())
        .collect();
    let mut lane_of: Vec<Option<AsyncLane>> = vec![None; ASYNC_SPANS + 2];
    for e in &lake.async_events {
        let (id, ts) = (e.span as u64, e.time as u64);
        if e.kind == "begin" {
            let stream = (e.span as usize - 1) % STREAMS;
            let lane = lanes[stream];
            let event = Event::new(&e.name)
                .category(&e.target)
                .location(&e.file, e.line as u32);
            match e.parent.and_then(|p| lane_of[p as usize].map(|l| (l, p))) {
                Some((parent_lane, p)) => w
                    .async_child_begin(
                        lane,
                        id,
                        AsyncParent::new(parent_lane, p as u64),
                        ts,
                        &event,
                    )
                    .unwrap(),
                None => w.async_span_begin_with(lane, id, ts, &event).unwrap(),
            }
            lane_of[e.span as usize] = Some(lane);
        } else {
            let lane = lane_of[e.span as usize].take().unwrap();
            w.async_span_end(lane, id, ts).unwrap();
        }
    }
    w.finish().unwrap();
    bytes + w.bytes_written()
}

fn bench(c: &mut Criterion) {
    let lake = lake();
    let rows = (lake.thread_spans.len() + lake.async_events.len()) as u64;
    let dir = tempfile::tempdir().unwrap();
    write_parquet(&lake, dir.path());
    // The machine's cores (2 here), as a service's runtime would have.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let ctx = SessionContext::new();
    runtime
        .block_on(register_lake(&ctx, dir.path(), &TableNames::default()))
        .unwrap();
    let function = PerfettoTraceChunks::new();
    function.clone().register(&ctx);
    let stages = runtime
        .block_on(Stages::plan(&ctx, &function, request()))
        .unwrap();
    let read = |stages: &Stages| -> Vec<Vec<RecordBatch>> {
        runtime.block_on(async {
            let mut parts = Vec::new();
            for i in 0..stages.len() {
                parts.push(stages.read(i, &ctx).await.unwrap());
            }
            parts
        })
    };
    let collected = read(&stages);
    let read_rows: usize = collected.iter().flatten().map(|b| b.num_rows()).sum();
    assert_eq!(read_rows as u64, rows);
    let sql = || {
        runtime.block_on(async {
            let batches = ctx
                .sql("SELECT chunk_id, chunk_data FROM perfetto_trace_chunks('bench', 'both', NULL, NULL) ORDER BY chunk_id")
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            common::concat(&batches).1.iter().map(|c| c.len()).sum::<usize>()
        })
    };
    let imported: u64 = (0..stages.len())
        .map(|i| stages.import(i, &collected[i], io::sink()).unwrap())
        .sum();
    eprintln!(
        "lake_to_trace: {rows} rows, {} parts; trace {} bytes through sql, {imported} through import, {} through encode, {} from one writer",
        stages.len(),
        sql(),
        encode(&lake),
        common::direct_trace(&lake, "bench", perfetto_trace_writer::import::SpanKinds::Both, None).0.len(),
    );

    let mut g = c.benchmark_group("lake_to_trace");
    g.sample_size(10).throughput(Throughput::Elements(rows));
    // A physical plan runs once: each read plans the parts again, as the
    // function does for each query (planning reads only the small tables).
    g.bench_function("read", |b| {
        b.iter(|| {
            let fresh = runtime
                .block_on(Stages::plan(&ctx, &function, request()))
                .unwrap();
            let parts = read(&fresh);
            let n: usize = parts.iter().flatten().map(|b| b.num_rows()).sum();
            assert_eq!(n as u64, rows, "every row read");
            n
        })
    });
    g.bench_function("import", |b| {
        b.iter(|| {
            (0..stages.len())
                .map(|i| stages.import(i, &collected[i], io::sink()).unwrap())
                .sum::<u64>()
        })
    });
    g.bench_function("encode", |b| b.iter(|| encode(&lake)));
    g.bench_function("sql", |b| b.iter(sql));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(20));
    targets = bench
}
criterion_main!(benches);
