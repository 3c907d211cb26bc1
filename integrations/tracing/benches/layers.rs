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
//! Each workload runs twice: with the layer's dispatcher scoped to the
//! recording threads (`with_default`, as tracing-perfetto-file's own
//! benchmark has it), and as the global default, as a program that calls
//! `init()` has it (groups `.../global`). They differ on two threads: a
//! span made under a scoped dispatcher clones its `Arc`, one count that
//! both threads write, which costs more than most layers do. A global
//! default is set once per process, so those samples are each timed in a
//! child process (this binary again, told by `CHILD` what to run), after
//! a warm-up of its own; criterion still collects and analyses them.
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

use common::{
    chrome, event, ours, perfetto_015, perfetto_file, registry_alone, span, varying, Subject,
};
use criterion::{BenchmarkId, Criterion};
use tracing::Dispatch;

/// The environment variable that makes this binary a child timing one
/// sample: `workload,subject,threads,iters` (indices into [`workloads`]).
const CHILD: &str = "PERFETTO_TRACING_BENCH_CHILD";

/// Calls a child makes before it times any, at least: the callsites
/// registered, the writers' tables filled, as criterion's warm-up has them
/// in process.
const CHILD_WARM_UP: u64 = 20_000;

/// Runs `f` under `dispatch` scoped to this thread, or under the global
/// default (`None`).
fn under<R>(dispatch: Option<&Dispatch>, f: impl FnOnce() -> R) -> R {
    match dispatch {
        Some(d) => tracing::dispatcher::with_default(d, f),
        None => f(),
    }
}

/// Time for `iters` calls on each of `threads` threads, divided by the
/// threads: per call of the process's throughput. Under `dispatch`
/// scoped to each thread, or the global default (`None`).
fn run(dispatch: Option<&Dispatch>, threads: usize, iters: u64, work: fn(u64)) -> Duration {
    if threads == 1 {
        return under(dispatch, || {
            let start = Instant::now();
            (0..iters).for_each(work);
            start.elapsed()
        });
    }
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (d, b) = (dispatch.cloned(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                under(d.as_ref(), || {
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

fn workloads() -> [Workload; 3] {
    use perfetto_tracing::View;
    use tracing_perfetto_file::SpanMode;
    [
        (
            "event",
            event,
            vec![
                || ours(View::Both, "perfetto-tracing"),
                || perfetto_file(SpanMode::Both, "tracing-perfetto-file"),
                perfetto_015,
                chrome,
                registry_alone,
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
                registry_alone,
            ],
        ),
    ]
}

/// One sample timed in a child process with the subject as the global
/// default: the child's time for `iters` calls.
fn in_child(workload: usize, subject: usize, threads: usize, iters: u64) -> Duration {
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let out = std::process::Command::new(exe)
        .env(CHILD, format!("{workload},{subject},{threads},{iters}"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("a child to time a sample");
    assert!(out.status.success(), "the child failed: {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    let nanos: u64 = text
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("the child's time, not {text:?}"));
    Duration::from_nanos(nanos)
}

/// The child's part: `spec` as [`CHILD`] gives it; prints the time in ns.
fn child(spec: &str) {
    let n: Vec<u64> = spec.split(',').map(|x| x.parse().unwrap()).collect();
    let [workload, subject, threads, iters] = n[..] else {
        panic!("{CHILD}={spec}: want workload,subject,threads,iters");
    };
    let (_, work, subjects) = &workloads()[workload as usize];
    let subject = subjects[subject as usize]();
    tracing::dispatcher::set_global_default(subject.dispatch.clone()).unwrap();
    // As many calls as are timed, too: the pool of chunk buffers then
    // holds what the timed calls need, as it does in process after
    // criterion's warm-up, and no new buffer's pages fault in the timing.
    run(None, threads as usize, iters.max(CHILD_WARM_UP), *work);
    let time = run(None, threads as usize, iters, *work);
    println!("{}", time.as_nanos());
    drop(subject);
}

fn compare(c: &mut Criterion) {
    for (w, (workload, work, subjects)) in workloads().into_iter().enumerate() {
        for threads in [1, 2] {
            let mut group = c.benchmark_group(format!("{workload}/{threads}-thread"));
            let mut names = Vec::new();
            for make in &subjects {
                let subject = make();
                names.push(subject.name);
                group.bench_function(BenchmarkId::from_parameter(subject.name), |b| {
                    b.iter_custom(|iters| run(Some(&subject.dispatch), threads, iters, work))
                });
            }
            group.finish();
            let mut group = c.benchmark_group(format!("{workload}/{threads}-thread/global"));
            // The children make their subjects; only the names are needed here.
            for (s, name) in names.into_iter().enumerate() {
                group.bench_function(BenchmarkId::from_parameter(name), |b| {
                    b.iter_custom(|iters| in_child(w, s, threads, iters))
                });
            }
            group.finish();
        }
    }
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
        return;
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .configure_from_args();
    compare(&mut c);
    c.final_summary();
}
