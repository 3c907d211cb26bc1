//! ns per event and per span through `tracing`, for this layer and the
//! other Perfetto and Chrome layers, in the same run, on the workloads
//! tracing-perfetto-file publishes: an event with fields, and a span
//! created, entered, exited and closed; on one thread and on two. And an
//! event whose message varies (a value formatted in), for this layer and
//! tracing-perfetto-file.
//!
//! Every layer records fields and source locations where it can, and
//! writes to a sink that discards the bytes.
//!
//! ```sh
//! cargo bench -p perfetto-trace-writer-tracing --bench layers -- --quick
//! ```
//!
//! tracing-perfetto-sdk is left out: it does not build here (see
//! BENCHMARKS.md).

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{chrome, event, ours, perfetto_015, perfetto_file, span, varying, Subject};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tracing::Dispatch;

/// Time for `iters` calls on each of `threads` threads, divided by the
/// threads: per call of the process's throughput.
fn run(dispatch: &Dispatch, threads: usize, iters: u64, work: fn(u64)) -> Duration {
    if threads == 1 {
        return tracing::dispatcher::with_default(dispatch, || {
            let start = Instant::now();
            (0..iters).for_each(work);
            start.elapsed()
        });
    }
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (d, b) = (dispatch.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    (0..100).for_each(work); // this thread's state, warm
                    b.wait();
                    (0..iters).for_each(work);
                })
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        h.join().unwrap();
    }
    start.elapsed() / threads as u32
}

/// A workload's name, one call of it, and the layers it runs under.
type Workload = (&'static str, fn(u64), Vec<fn() -> Subject>);

fn compare(c: &mut Criterion) {
    use perfetto_tracing::View;
    use tracing_perfetto_file::SpanMode;
    let workloads: [Workload; 3] = [
        (
            "event",
            event,
            vec![
                || ours(View::Both, "perfetto-tracing"),
                || perfetto_file(SpanMode::Both, "tracing-perfetto-file"),
                perfetto_015,
                chrome,
            ],
        ),
        (
            "varying",
            varying,
            vec![|| ours(View::Both, "perfetto-tracing"), || {
                perfetto_file(SpanMode::Both, "tracing-perfetto-file")
            }],
        ),
        (
            "span",
            span,
            vec![
                || ours(View::Both, "perfetto-tracing/both"),
                || perfetto_file(SpanMode::Both, "tracing-perfetto-file/both"),
                || ours(View::SpanTracks, "perfetto-tracing/span-tracks"),
                || perfetto_file(SpanMode::SpanTracks, "tracing-perfetto-file/span-tracks"),
                || ours(View::Threads, "perfetto-tracing/threads"),
                || perfetto_file(SpanMode::ThreadTracks, "tracing-perfetto-file/threads"),
                perfetto_015,
                chrome,
            ],
        ),
    ];
    for (workload, work, subjects) in workloads {
        for threads in [1, 2] {
            let mut group = c.benchmark_group(format!("{workload}/{threads}-thread"));
            for make in &subjects {
                let subject = make();
                group.bench_function(BenchmarkId::from_parameter(subject.name), |b| {
                    b.iter_custom(|iters| run(&subject.dispatch, threads, iters, work))
                });
            }
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2)).sample_size(20);
    targets = compare
}
criterion_main!(benches);
