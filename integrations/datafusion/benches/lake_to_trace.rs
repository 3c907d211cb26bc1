//! Rows per second from a Parquet lake to trace bytes: a million thread
//! spans on 8 streams and 200,000 async spans (400,000 event rows), and
//! where the time goes:
//! - `read`: DataFusion alone, the same filtered and sorted queries the
//!   function runs, rows decoded and dropped;
//! - `import`: the importer alone on rows already in memory (matching,
//!   clipping, and the writer's encoding);
//! - `encode`: the writer alone, the same spans as complete spans;
//! - `sql`: the whole `perfetto_trace_chunks` query, chunks collected.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::{AsyncEvent, Lake, Process, Stream, ThreadSpan, Times};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use datafusion::execution::context::SessionConfig;
use datafusion::prelude::SessionContext;
use perfetto_trace_writer::import::SpanKinds;
use perfetto_trace_writer::{TraceWriter, Writer};
use perfetto_trace_writer_datafusion::{register_lake, Format, PerfettoTraceChunks, TableNames};

const STREAMS: usize = 8;
const THREAD_SPANS: usize = 1_000_000;
const ASYNC_SPANS: usize = 200_000;

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

fn bench(c: &mut Criterion) {
    let lake = lake();
    let rows = (lake.thread_spans.len() + lake.async_events.len()) as u64;
    let dir = tempfile::tempdir().unwrap();
    lake.write(dir.path(), Format::Parquet, Times::Timestamps, false);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let ctx = SessionContext::new_with_config(SessionConfig::new());
    runtime
        .block_on(register_lake(&ctx, dir.path(), &TableNames::default()))
        .unwrap();
    PerfettoTraceChunks::new().register(&ctx);

    let mut g = c.benchmark_group("lake_to_trace");
    g.sample_size(10).throughput(Throughput::Elements(rows));
    g.bench_function("read", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let n = |sql: &'static str| {
                    let ctx = ctx.clone();
                    async move { ctx.sql(sql).await.unwrap().collect().await.unwrap().iter().map(|b| b.num_rows()).sum::<usize>() }
                };
                let t = n("SELECT stream_id, CAST(\"begin\" AS BIGINT) AS b, CAST(\"end\" AS BIGINT) AS e, depth, name, target, filename, line \
                           FROM thread_spans ORDER BY stream_id, \"begin\", depth").await;
                let a = n("SELECT stream_id, CAST(time AS BIGINT) AS t, event_type, span_id, parent_span_id, depth, name, filename, target, line \
                           FROM async_events ORDER BY time, stream_id, span_id").await;
                assert_eq!((t + a) as u64, rows);
            })
        })
    });
    g.bench_function("import", |b| {
        b.iter(|| {
            common::direct_trace(&lake, "bench", SpanKinds::Both, None)
                .0
                .len()
        })
    });
    g.bench_function("encode", |b| {
        b.iter(|| {
            let mut w = Writer::new();
            let p = w
                .process("bench", Some(1000), "bench-service", &[])
                .unwrap();
            let threads: Vec<_> = (0..STREAMS)
                .map(|s| {
                    w.thread(p, &format!("stream-{s}"), None, &format!("worker-{s}"))
                        .unwrap()
                })
                .collect();
            let lane = w.async_lane(p, "async").unwrap();
            for (i, t) in lake.thread_spans.iter().enumerate() {
                let th = threads[i / (THREAD_SPANS / STREAMS)];
                w.complete_span(
                    th,
                    t.begin as u64,
                    t.end as u64,
                    &t.name,
                    &t.target,
                    &t.file,
                    t.line as u32,
                )
                .unwrap();
            }
            for e in &lake.async_events {
                if e.kind == "begin" {
                    w.async_span_begin(
                        lane,
                        e.span as u64,
                        e.time as u64,
                        &e.name,
                        &e.target,
                        &e.file,
                        e.line as u32,
                    )
                    .unwrap();
                } else {
                    w.async_span_end(lane, e.span as u64, e.time as u64)
                        .unwrap();
                }
            }
            w.finish().unwrap();
            w.bytes().len()
        })
    });
    g.bench_function("sql", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let batches = ctx
                    .sql("SELECT chunk_id, chunk_data FROM perfetto_trace_chunks('bench', 'both', NULL, NULL) ORDER BY chunk_id")
                    .await
                    .unwrap()
                    .collect()
                    .await
                    .unwrap();
                batches.iter().map(|b| b.num_rows()).sum::<usize>()
            })
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(20));
    targets = bench
}
criterion_main!(benches);
