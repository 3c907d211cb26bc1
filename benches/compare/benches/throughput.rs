//! Throughput of both writers against the designs they replace.
//!
//! ```sh
//! cargo bench -p perfetto-trace-writer-compare --bench throughput            # everything
//! cargo bench -p perfetto-trace-writer-compare --bench throughput -- thread  # one group
//! ```
//! Criterion prints events per second ("thrpt"); bytes per event are printed
//! before each group. BENCHMARKS.md has this machine's figures.

use perfetto_trace_writer_compare::{baselines, workload};

use std::hint::black_box;
use std::io;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, Throughput,
};
use perfetto_trace_writer::{Options, Result, StreamingPerfettoWriter, TraceWriter, Writer};
use workload::{
    async_spans, complete_spans, other_events, replay_arg_spans, replay_async, replay_complete,
    replay_counters, replay_instants, replay_threads, small_trace, thread_spans, Event,
    OtherEvents, Pools,
};

type Group<'a> = BenchmarkGroup<'a, WallTime>;

fn per_event(bytes: usize, events: usize) -> String {
    format!("{:.2} bytes/event", bytes as f64 / events as f64)
}

/// A group counting `elements` events (or traces) an iteration, of
/// `samples` samples.
fn group<'a>(c: &'a mut Criterion, name: &str, elements: u64, samples: usize) -> Group<'a> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(elements));
    g.sample_size(samples);
    g
}

/// The bytes `replay` writes into a buffered writer of these options.
fn written(options: Options, replay: impl Fn(&mut Writer) -> Result<()>) -> usize {
    let mut w = Writer::with_options(options);
    replay(&mut w).unwrap();
    w.len()
}

/// `id`: `replay` into a streaming writer of these options over the sink
/// `sink` makes, which it hands back (so it is dropped outside the timing).
fn streaming<W: io::Write>(
    g: &mut Group,
    id: &str,
    sink: impl Fn() -> W,
    options: Options,
    replay: impl Fn(&mut StreamingPerfettoWriter<W>) -> Result<()>,
) {
    g.bench_function(id, |b| {
        b.iter(|| {
            let mut w = StreamingPerfettoWriter::with_options(sink(), options);
            replay(&mut w).unwrap();
            w.into_inner().unwrap()
        })
    });
}

/// [`streaming`] over `io::sink()`.
fn into_sink(
    g: &mut Group,
    id: &str,
    options: Options,
    replay: impl Fn(&mut StreamingPerfettoWriter<io::Sink>) -> Result<()>,
) {
    streaming(g, id, io::sink, options, replay);
}

/// `id`: `replay` into a buffered writer, whose bytes it hands back.
fn buffered(g: &mut Group, id: &str, replay: impl Fn(&mut Writer) -> Result<()>) {
    g.bench_function(id, |b| {
        b.iter(|| {
            let mut w = Writer::new();
            replay(&mut w).unwrap();
            w.into_bytes()
        })
    });
}

/// Small traces an iteration of the groups that time them.
const TRACES: u64 = 100_000;

/// `id`: [`TRACES`] small traces, each by `trace` into a writer `new`
/// makes and `end` ends.
fn small_traces<W>(
    g: &mut Group,
    id: &str,
    new: impl Fn() -> W,
    trace: impl Fn(&mut W) -> Result<()>,
    end: impl Fn(W) -> Vec<u8>,
) {
    g.bench_function(id, |b| {
        b.iter(|| {
            for _ in 0..TRACES {
                let mut w = new();
                trace(&mut w).unwrap();
                black_box(end(w));
            }
        })
    });
}

/// [`small_traces`] into buffered writers.
fn small_traces_buffered(g: &mut Group, id: &str, trace: impl Fn(&mut Writer) -> Result<()>) {
    small_traces(g, id, Writer::new, trace, Writer::into_bytes);
}

/// `id`: the parts of a split workload, each by `replay` into a streaming
/// writer of its own partition over `io::sink()`, on a thread of its own.
fn parallel(
    g: &mut Group,
    id: &str,
    pools: &Pools,
    parts: &[Vec<Event>],
    replay: impl Fn(&mut StreamingPerfettoWriter<io::Sink>, &Pools, &[Event]) -> Result<()> + Sync,
) {
    g.bench_function(id, |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                for (i, part) in parts.iter().enumerate() {
                    let replay = &replay;
                    s.spawn(move || {
                        let options = Options::new().partition(i as u16);
                        let mut w = StreamingPerfettoWriter::with_options(io::sink(), options);
                        replay(&mut w, pools, part).unwrap();
                    });
                }
            })
        })
    });
}

fn thread_spans_bench(c: &mut Criterion) {
    let wl = thread_spans(1_000_000, 0x5eed);
    let events = wl.events.len();
    let (options, compact) = (Options::new(), Options::new().compact(true));
    let replay = |w: &mut _| replay_threads(w, &wl);
    let prost = baselines::prost_per_packet_threads(Vec::new(), &wl).unwrap();
    println!("thread_spans: {events} events");
    let bytes = written(options, |w| replay_threads(w, &wl));
    println!("  this crate:          {}", per_event(bytes, events));
    let bytes = written(compact, |w| replay_threads(w, &wl));
    println!("  this crate, compact: {}", per_event(bytes, events));
    println!("  prost per packet:    {}", per_event(prost.len(), events));
    let protozero = baselines::protozero_threads(&wl);
    println!(
        "  protozero:           {}",
        per_event(protozero.len(), events)
    );
    println!(
        "  naive writer:        {}",
        per_event(baselines::naive_threads_size(&wl), events)
    );
    drop((prost, protozero));

    let mut g = group(c, "thread_spans", events as u64, 10);
    g.measurement_time(Duration::from_secs(8));
    into_sink(&mut g, "streaming_into_sink", options, replay);
    into_sink(&mut g, "streaming_into_sink_compact", compact, replay);
    let into_vec = |w: &mut _| replay_threads(w, &wl);
    streaming(&mut g, "streaming_into_vec", Vec::new, options, into_vec);
    buffered(&mut g, "buffered_writer", |w| replay_threads(w, &wl));
    g.bench_function("baseline_prost_per_packet_into_sink", |b| {
        b.iter(|| baselines::prost_per_packet_threads(io::sink(), &wl).unwrap())
    });
    // Google's protozero writes into its heap buffer, read out at the end:
    // compare with `buffered_writer`.
    g.bench_function("baseline_protozero_perfetto_sdk", |b| {
        b.iter(|| baselines::protozero_threads(&wl))
    });
    g.finish();
}

/// The seed crate keeps every event as a prost struct (kilobytes each), so it
/// runs on the first tenth of the workload: 100,000 spans, 200,000 events.
fn seed_crate_bench(c: &mut Criterion) {
    let wl = thread_spans(100_000, 0x5eed);
    let events = wl.events.len();
    let options = Options::new();
    let seed = baselines::micromegas_threads(&wl);
    println!("thread_spans_100k: {events} events");
    let bytes = written(options, |w| replay_threads(w, &wl));
    println!("  this crate:          {}", per_event(bytes, events));
    println!("  micromegas-perfetto: {}", per_event(seed.len(), events));
    drop(seed);

    let mut g = group(c, "thread_spans_100k", events as u64, 10);
    into_sink(&mut g, "streaming_into_sink", options, |w| {
        replay_threads(w, &wl)
    });
    // The same complete spans the baseline is given, thread after thread.
    let spans = complete_spans(&wl);
    into_sink(&mut g, "complete_spans_into_sink", options, |w| {
        replay_complete(w, &wl.pools, &spans)
    });
    g.bench_function("baseline_micromegas_perfetto_0_11", |b| {
        b.iter(|| baselines::micromegas_threads(&wl))
    });
    g.finish();
}

fn async_spans_bench(c: &mut Criterion) {
    let wl = async_spans(200_000, 64, 0xa57c);
    let events = wl.events.len();
    let (options, compact) = (Options::new(), Options::new().compact(true));
    let replay = |w: &mut _| replay_async(w, &wl);
    println!("async_spans: {events} events");
    let bytes = written(options, |w| replay_async(w, &wl));
    println!("  this crate:          {}", per_event(bytes, events));
    let bytes = written(compact, |w| replay_async(w, &wl));
    println!("  this crate, compact: {}", per_event(bytes, events));

    let mut g = group(c, "async_spans", events as u64, 20);
    into_sink(&mut g, "streaming_into_sink", options, replay);
    into_sink(&mut g, "streaming_into_sink_compact", compact, replay);
    buffered(&mut g, "buffered_writer", |w| replay_async(w, &wl));
    g.finish();
}

fn small_traces_bench(c: &mut Criterion) {
    let bytes = written(Options::new(), small_trace);
    println!("small_traces: {bytes} bytes per trace");

    let mut g = group(c, "small_traces", TRACES, 20);
    let new = || StreamingPerfettoWriter::new(Vec::new());
    let end = |w: StreamingPerfettoWriter<_>| w.into_inner().unwrap();
    small_traces(&mut g, "streaming_into_vec", new, small_trace, end);
    small_traces_buffered(&mut g, "buffered_writer", small_trace);
    g.finish();
}

fn interning_bench(c: &mut Criterion) {
    const SPANS: usize = 10_000;
    let fresh: Vec<String> = (0..SPANS)
        .map(|i| format!("handler::operation_{i:08}"))
        .collect();
    let setup = || {
        let mut w = StreamingPerfettoWriter::new(io::sink());
        let p = w.process("p", Some(1), "p", &[]).unwrap();
        let t = w.thread(p, "t", Some(2), "t").unwrap();
        w.span_begin(t, 1, "handler::operation_known", "cat", "src/a.rs", 1)
            .unwrap();
        w.span_end(t, 2).unwrap();
        (w, t)
    };
    let mut g = c.benchmark_group("interning");
    g.throughput(Throughput::Elements(SPANS as u64 * 2));
    g.bench_function("name_seen_first_time", |b| {
        b.iter_batched(
            setup,
            |(mut w, t)| {
                for (i, name) in fresh.iter().enumerate() {
                    let ts = 10 + i as u64 * 10;
                    w.span_begin(t, ts, name, "cat", "src/a.rs", 1).unwrap();
                    w.span_end(t, ts + 5).unwrap();
                }
                w
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("name_already_interned", |b| {
        b.iter_batched(
            setup,
            |(mut w, t)| {
                for i in 0..SPANS {
                    let ts = 10 + i as u64 * 10;
                    w.span_begin(t, ts, "handler::operation_known", "cat", "src/a.rs", 1)
                        .unwrap();
                    w.span_end(t, ts + 5).unwrap();
                }
                w
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// The thread workload over 4,096 event names: more strings than the first
/// size of the interning caches, as a service with many kinds of span has.
fn large_pool_bench(c: &mut Criterion) {
    let wl = workload::thread_spans_many_names(200_000, 4096, 0x9001);
    let events = wl.events.len();
    println!("large_pool: {events} events, 4,096 names");
    let bytes = written(Options::new(), |w| replay_threads(w, &wl));
    println!("  this crate:       {}", per_event(bytes, events));
    let mut g = group(c, "large_pool", events as u64, 20);
    into_sink(&mut g, "streaming_into_sink", Options::new(), |w| {
        replay_threads(w, &wl)
    });
    g.bench_function("baseline_prost_per_packet_into_sink", |b| {
        b.iter(|| baselines::prost_per_packet_threads(io::sink(), &wl).unwrap())
    });
    g.finish();
}

/// The thread workload split across 1 and 2 writers, each on a thread of
/// its own (this machine has 2 cores).
fn parallel_bench(c: &mut Criterion) {
    let wl = thread_spans(1_000_000, 0x5eed);
    let mut g = group(c, "parallel_writers", wl.events.len() as u64, 10);
    for writers in [1u16, 2] {
        let parts = workload::split_threads(&wl, u32::from(writers));
        let id = format!("{writers}_writers_into_sink");
        parallel(&mut g, &id, &wl.pools, &parts, |w, pools, part| {
            workload::replay_part(w, pools, part)
        });
    }
    g.finish();
}

/// Counter samples, thread instants and spans with arguments: 200,000
/// events of each kind.
fn other_events_bench(c: &mut Criterion) {
    fn replay(kind: &str, w: &mut impl TraceWriter, wl: &OtherEvents) -> Result<()> {
        match kind {
            "counters" => replay_counters(w, wl),
            "instants" => replay_instants(w, wl),
            _ => replay_arg_spans(w, wl),
        }
    }
    let wl = other_events(200_000, 0x07e5);
    let kinds = [
        ("counters", wl.counters.len()),
        ("instants", wl.instants.len()),
        ("spans_with_args", wl.arg_spans.len() * 2),
    ];
    let mut g = c.benchmark_group("other_events");
    g.sample_size(20);
    for (kind, events) in kinds {
        let bytes = written(Options::new(), |w| replay(kind, w, &wl));
        println!("other_events/{kind}: {}", per_event(bytes, events));
        g.throughput(Throughput::Elements(events as u64));
        let id = format!("{kind}_into_sink");
        into_sink(&mut g, &id, Options::new(), |w| replay(kind, w, &wl));
    }
    g.finish();
}

/// Event keys against the string form, on the thread and async workloads
/// as from 256 call sites (`workload::as_sites`: each span's category and
/// location follow from its name), in one run with the baselines given the
/// same events. Both forms write the same bytes (checked here).
fn event_keys_bench(c: &mut Criterion) {
    use workload::{
        as_sites, replay_async_keyed, replay_complete_keyed, replay_part_keyed,
        replay_threads_keyed, small_trace_keyed,
    };
    let threads = as_sites(thread_spans(1_000_000, 0x5eed));
    let asyncs = as_sites(async_spans(200_000, 64, 0xa57c));
    let mut keyed = Writer::new();
    replay_threads_keyed(&mut keyed, &threads).unwrap();
    let mut strings = Writer::new();
    replay_threads(&mut strings, &threads).unwrap();
    assert_eq!(keyed.bytes(), strings.bytes());
    println!(
        "event_keys: thread spans {}",
        per_event(keyed.len(), threads.events.len())
    );
    drop((keyed, strings));

    let mut g = group(c, "event_keys", threads.events.len() as u64, 10);
    let (options, compact) = (Options::new(), Options::new().compact(true));
    let keys = |w: &mut _| replay_threads_keyed(w, &threads);
    into_sink(&mut g, "thread_spans_keys_into_sink", options, keys);
    into_sink(&mut g, "thread_spans_strings_into_sink", options, |w| {
        replay_threads(w, &threads)
    });
    into_sink(&mut g, "thread_spans_keys_into_sink_compact", compact, keys);
    g.bench_function("thread_spans_baseline_prost_per_packet_into_sink", |b| {
        b.iter(|| baselines::prost_per_packet_threads(io::sink(), &threads).unwrap())
    });
    g.bench_function("thread_spans_baseline_protozero_perfetto_sdk", |b| {
        b.iter(|| baselines::protozero_threads(&threads))
    });
    for writers in [1u16, 2] {
        let parts = workload::split_threads(&threads, u32::from(writers));
        let id = format!("thread_spans_keys_{writers}_writers_into_sink");
        parallel(&mut g, &id, &threads.pools, &parts, |w, pools, part| {
            replay_part_keyed(w, pools, part)
        });
    }
    let spans = complete_spans(&threads);
    g.throughput(Throughput::Elements(spans.len() as u64 * 2));
    into_sink(&mut g, "complete_spans_keys_into_sink", options, |w| {
        replay_complete_keyed(w, &threads.pools, &spans)
    });
    into_sink(&mut g, "complete_spans_strings_into_sink", options, |w| {
        replay_complete(w, &threads.pools, &spans)
    });
    g.throughput(Throughput::Elements(asyncs.events.len() as u64));
    into_sink(&mut g, "async_spans_keys_into_sink", options, |w| {
        replay_async_keyed(w, &asyncs)
    });
    into_sink(&mut g, "async_spans_strings_into_sink", options, |w| {
        replay_async(w, &asyncs)
    });
    g.throughput(Throughput::Elements(TRACES));
    let id = "small_traces_keys_buffered_writer";
    small_traces_buffered(&mut g, id, small_trace_keyed);
    let id = "small_traces_strings_buffered_writer";
    small_traces_buffered(&mut g, id, small_trace);
    g.finish();
}

/// This machine's memory bandwidth for a plain copy, the bound on any
/// writer's bytes per second: 64 MiB copied from one buffer into another
/// (larger than the caches, as a long trace's buffer is).
fn memory_copy_bench(c: &mut Criterion) {
    const LEN: usize = 64 << 20;
    let from: Vec<u8> = (0..LEN).map(|i| i as u8).collect();
    let mut to = vec![0u8; LEN];
    let mut g = c.benchmark_group("memory_copy");
    g.throughput(Throughput::Bytes(LEN as u64));
    g.sample_size(10);
    g.bench_function("copy_64_mib", |b| {
        b.iter(|| {
            to.copy_from_slice(black_box(&from));
            black_box(&to);
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    event_keys_bench,
    memory_copy_bench,
    parallel_bench,
    thread_spans_bench,
    seed_crate_bench,
    async_spans_bench,
    small_traces_bench,
    interning_bench,
    large_pool_bench,
    other_events_bench
);
criterion_main!(benches);
