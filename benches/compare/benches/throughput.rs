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

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use perfetto_trace_writer::{Options, StreamingPerfettoWriter, TraceWriter, Writer};
use workload::{
    async_spans, complete_spans, other_events, replay_arg_spans, replay_async, replay_complete,
    replay_counters, replay_instants, replay_threads, small_trace, thread_spans, OtherEvents,
};

fn per_event(bytes: usize, events: usize) -> String {
    format!("{:.2} bytes/event", bytes as f64 / events as f64)
}

fn thread_spans_bench(c: &mut Criterion) {
    let wl = thread_spans(1_000_000, 0x5eed);
    let events = wl.events.len();
    let mut w = Writer::new();
    replay_threads(&mut w, &wl).unwrap();
    let mut compact = Writer::with_options(Options::new().compact(true));
    replay_threads(&mut compact, &wl).unwrap();
    let prost = baselines::prost_per_packet_threads(Vec::new(), &wl).unwrap();
    println!("thread_spans: {events} events");
    println!("  this crate:          {}", per_event(w.len(), events));
    println!(
        "  this crate, compact: {}",
        per_event(compact.len(), events)
    );
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
    drop((w, compact, prost, protozero));

    let mut g = c.benchmark_group("thread_spans");
    g.throughput(Throughput::Elements(events as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("streaming_into_sink", |b| {
        b.iter(|| {
            let mut w = StreamingPerfettoWriter::new(io::sink());
            replay_threads(&mut w, &wl).unwrap();
            w.into_inner().unwrap()
        })
    });
    g.bench_function("streaming_into_sink_compact", |b| {
        b.iter(|| {
            let options = Options::new().compact(true);
            let mut w = StreamingPerfettoWriter::with_options(io::sink(), options);
            replay_threads(&mut w, &wl).unwrap();
            w.into_inner().unwrap()
        })
    });
    g.bench_function("streaming_into_vec", |b| {
        b.iter(|| {
            let mut w = StreamingPerfettoWriter::new(Vec::new());
            replay_threads(&mut w, &wl).unwrap();
            w.into_inner().unwrap()
        })
    });
    g.bench_function("buffered_writer", |b| {
        b.iter(|| {
            let mut w = Writer::new();
            replay_threads(&mut w, &wl).unwrap();
            w.into_bytes()
        })
    });
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
    let mut w = Writer::new();
    replay_threads(&mut w, &wl).unwrap();
    let seed = baselines::micromegas_threads(&wl);
    println!("thread_spans_100k: {events} events");
    println!("  this crate:          {}", per_event(w.len(), events));
    println!("  micromegas-perfetto: {}", per_event(seed.len(), events));
    drop((w, seed));

    let mut g = c.benchmark_group("thread_spans_100k");
    g.throughput(Throughput::Elements(events as u64));
    g.sample_size(10);
    g.bench_function("streaming_into_sink", |b| {
        b.iter(|| {
            let mut w = StreamingPerfettoWriter::new(io::sink());
            replay_threads(&mut w, &wl).unwrap();
            w.into_inner().unwrap()
        })
    });
    // The same complete spans the baseline is given, thread after thread.
    let spans = complete_spans(&wl);
    g.bench_function("complete_spans_into_sink", |b| {
        b.iter(|| {
            let mut w = StreamingPerfettoWriter::new(io::sink());
            replay_complete(&mut w, &wl.pools, &spans).unwrap();
            w.into_inner().unwrap()
        })
    });
    g.bench_function("baseline_micromegas_perfetto_0_11", |b| {
        b.iter(|| baselines::micromegas_threads(&wl))
    });
    g.finish();
}

fn async_spans_bench(c: &mut Criterion) {
    let wl = async_spans(200_000, 64, 0xa57c);
    let events = wl.events.len();
    let mut w = Writer::new();
    replay_async(&mut w, &wl).unwrap();
    let mut compact = Writer::with_options(Options::new().compact(true));
    replay_async(&mut compact, &wl).unwrap();
    println!("async_spans: {events} events");
    println!("  this crate:          {}", per_event(w.len(), events));
    println!(
        "  this crate, compact: {}",
        per_event(compact.len(), events)
    );
    drop((w, compact));

    let mut g = c.benchmark_group("async_spans");
    g.throughput(Throughput::Elements(events as u64));
    g.sample_size(20);
    g.bench_function("streaming_into_sink", |b| {
        b.iter(|| {
            let mut w = StreamingPerfettoWriter::new(io::sink());
            replay_async(&mut w, &wl).unwrap();
            w.into_inner().unwrap()
        })
    });
    g.bench_function("streaming_into_sink_compact", |b| {
        b.iter(|| {
            let options = Options::new().compact(true);
            let mut w = StreamingPerfettoWriter::with_options(io::sink(), options);
            replay_async(&mut w, &wl).unwrap();
            w.into_inner().unwrap()
        })
    });
    g.bench_function("buffered_writer", |b| {
        b.iter(|| {
            let mut w = Writer::new();
            replay_async(&mut w, &wl).unwrap();
            w.into_bytes()
        })
    });
    g.finish();
}

fn small_traces_bench(c: &mut Criterion) {
    const TRACES: u64 = 100_000;
    let mut w = Writer::new();
    small_trace(&mut w).unwrap();
    println!("small_traces: {} bytes per trace", w.len());

    let mut g = c.benchmark_group("small_traces");
    g.throughput(Throughput::Elements(TRACES));
    g.sample_size(20);
    g.bench_function("streaming_into_vec", |b| {
        b.iter(|| {
            for _ in 0..TRACES {
                let mut w = StreamingPerfettoWriter::new(Vec::new());
                small_trace(&mut w).unwrap();
                black_box(w.into_inner().unwrap());
            }
        })
    });
    g.bench_function("buffered_writer", |b| {
        b.iter(|| {
            for _ in 0..TRACES {
                let mut w = Writer::new();
                small_trace(&mut w).unwrap();
                black_box(w.into_bytes());
            }
        })
    });
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
    let mut w = Writer::new();
    replay_threads(&mut w, &wl).unwrap();
    println!("large_pool: {events} events, 4,096 names");
    println!("  this crate:       {}", per_event(w.len(), events));
    drop(w);
    let mut g = c.benchmark_group("large_pool");
    g.throughput(Throughput::Elements(events as u64));
    g.sample_size(20);
    g.bench_function("streaming_into_sink", |b| {
        b.iter(|| {
            let mut w = StreamingPerfettoWriter::new(io::sink());
            replay_threads(&mut w, &wl).unwrap();
            w.into_inner().unwrap()
        })
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
    let events = wl.events.len() as u64;
    let mut g = c.benchmark_group("parallel_writers");
    g.throughput(Throughput::Elements(events));
    g.sample_size(10);
    for writers in [1u16, 2] {
        let parts = workload::split_threads(&wl, u32::from(writers));
        g.bench_function(format!("{writers}_writers_into_sink"), |b| {
            b.iter(|| {
                std::thread::scope(|s| {
                    for (i, part) in parts.iter().enumerate() {
                        let pools = &wl.pools;
                        s.spawn(move || {
                            let options = Options::new().partition(i as u16);
                            let mut w = StreamingPerfettoWriter::with_options(io::sink(), options);
                            workload::replay_part(&mut w, pools, part).unwrap();
                        });
                    }
                })
            })
        });
    }
    g.finish();
}

/// Counter samples, thread instants and spans with arguments: 200,000
/// events of each kind.
fn other_events_bench(c: &mut Criterion) {
    fn replay(kind: &str, w: &mut impl TraceWriter, wl: &OtherEvents) {
        match kind {
            "counters" => replay_counters(w, wl),
            "instants" => replay_instants(w, wl),
            _ => replay_arg_spans(w, wl),
        }
        .unwrap()
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
        let mut w = Writer::new();
        replay(kind, &mut w, &wl);
        println!("other_events/{kind}: {}", per_event(w.len(), events));
        g.throughput(Throughput::Elements(events as u64));
        g.bench_function(format!("{kind}_into_sink"), |b| {
            b.iter(|| {
                let mut w = StreamingPerfettoWriter::new(io::sink());
                replay(kind, &mut w, &wl);
                w.into_inner().unwrap()
            })
        });
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

    let mut g = c.benchmark_group("event_keys");
    g.sample_size(10);
    g.throughput(Throughput::Elements(threads.events.len() as u64));
    g.bench_function("thread_spans_keys_into_sink", |b| {
        b.iter(|| {
            let mut w = StreamingPerfettoWriter::new(io::sink());
            replay_threads_keyed(&mut w, &threads).unwrap();
            w.into_inner().unwrap()
        })
    });
    g.bench_function("thread_spans_strings_into_sink", |b| {
        b.iter(|| {
            let mut w = StreamingPerfettoWriter::new(io::sink());
            replay_threads(&mut w, &threads).unwrap();
            w.into_inner().unwrap()
        })
    });
    g.bench_function("thread_spans_keys_into_sink_compact", |b| {
        b.iter(|| {
            let options = Options::new().compact(true);
            let mut w = StreamingPerfettoWriter::with_options(io::sink(), options);
            replay_threads_keyed(&mut w, &threads).unwrap();
            w.into_inner().unwrap()
        })
    });
    g.bench_function("thread_spans_baseline_prost_per_packet_into_sink", |b| {
        b.iter(|| baselines::prost_per_packet_threads(io::sink(), &threads).unwrap())
    });
    g.bench_function("thread_spans_baseline_protozero_perfetto_sdk", |b| {
        b.iter(|| baselines::protozero_threads(&threads))
    });
    for writers in [1u16, 2] {
        let parts = workload::split_threads(&threads, u32::from(writers));
        g.bench_function(
            format!("thread_spans_keys_{writers}_writers_into_sink"),
            |b| {
                b.iter(|| {
                    std::thread::scope(|s| {
                        for (i, part) in parts.iter().enumerate() {
                            let pools = &threads.pools;
                            s.spawn(move || {
                                let options = Options::new().partition(i as u16);
                                let mut w =
                                    StreamingPerfettoWriter::with_options(io::sink(), options);
                                replay_part_keyed(&mut w, pools, part).unwrap();
                            });
                        }
                    })
                })
            },
        );
    }
    let spans = complete_spans(&threads);
    g.throughput(Throughput::Elements(spans.len() as u64 * 2));
    g.bench_function("complete_spans_keys_into_sink", |b| {
        b.iter(|| {
            let mut w = StreamingPerfettoWriter::new(io::sink());
            replay_complete_keyed(&mut w, &threads.pools, &spans).unwrap();
            w.into_inner().unwrap()
        })
    });
    g.bench_function("complete_spans_strings_into_sink", |b| {
        b.iter(|| {
            let mut w = StreamingPerfettoWriter::new(io::sink());
            replay_complete(&mut w, &threads.pools, &spans).unwrap();
            w.into_inner().unwrap()
        })
    });
    g.throughput(Throughput::Elements(asyncs.events.len() as u64));
    g.bench_function("async_spans_keys_into_sink", |b| {
        b.iter(|| {
            let mut w = StreamingPerfettoWriter::new(io::sink());
            replay_async_keyed(&mut w, &asyncs).unwrap();
            w.into_inner().unwrap()
        })
    });
    g.bench_function("async_spans_strings_into_sink", |b| {
        b.iter(|| {
            let mut w = StreamingPerfettoWriter::new(io::sink());
            replay_async(&mut w, &asyncs).unwrap();
            w.into_inner().unwrap()
        })
    });
    const TRACES: u64 = 100_000;
    g.throughput(Throughput::Elements(TRACES));
    g.bench_function("small_traces_keys_buffered_writer", |b| {
        b.iter(|| {
            for _ in 0..TRACES {
                let mut w = Writer::new();
                small_trace_keyed(&mut w).unwrap();
                black_box(w.into_bytes());
            }
        })
    });
    g.bench_function("small_traces_strings_buffered_writer", |b| {
        b.iter(|| {
            for _ in 0..TRACES {
                let mut w = Writer::new();
                small_trace(&mut w).unwrap();
                black_box(w.into_bytes());
            }
        })
    });
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
