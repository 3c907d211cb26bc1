//! A plain binary for profilers: runs one workload of the `layers`
//! benchmark under one layer, after a warm-up, inside `measured` (which
//! callgrind can collect alone, for instruction counts per call that the
//! shared machine's load does not disturb).
//!
//! ```sh
//! cargo bench -p perfetto-trace-writer-tracing --bench profile --no-run
//! valgrind --tool=callgrind --toggle-collect='*measured*' \
//!     target/release/deps/profile-* ours-both event 100000
//! ```
//!
//! Subjects: `ours-both`, `ours-threads`, `ours-spans` (and
//! `ours-both-reuse`, `ours-spans-reuse`: `reuse_span_tracks`), `file-both`,
//! `file-threads`, `file-spans` (tracing-perfetto-file's span modes),
//! `registry` (tracing-subscriber's registry under a layer doing nothing);
//! workloads: `event`, `span`, `varying` (an event whose message varies);
//! a fourth argument `varied` first records from other callsites (see
//! `common::other_callsites`); a fifth, a number, runs the workload on that
//! many threads at once; a sixth, `global`, sets the subject as the global
//! default instead of scoping it to each thread.

mod common;

use common::{
    event, other_callsites, ours, ours_with, perfetto_file, registry_alone, span, varying, Subject,
};

#[inline(never)]
fn measured(work: fn(u64), iters: u64) {
    (0..iters).for_each(work);
}

/// Not `measured`'s body, which the compiler would then call for both.
#[inline(never)]
fn warm_up(work: fn(u64), iters: u64) {
    for i in (0..iters).rev() {
        work(i);
    }
}

fn main() {
    use perfetto_tracing::View;
    use tracing_perfetto_file::SpanMode;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let subject: Subject = match args.first().map(String::as_str).unwrap_or("ours-both") {
        "ours-both" => ours(View::Both, "ours-both"),
        "ours-threads" => ours(View::Threads, "ours-threads"),
        "ours-spans" => ours(View::SpanTracks, "ours-spans"),
        "ours-both-reuse" | "ours-spans-reuse" => {
            let view = match args[0].as_str() {
                "ours-both-reuse" => View::Both,
                _ => View::SpanTracks,
            };
            let settings = perfetto_tracing::PerfettoLayer::builder()
                .view(view)
                .reuse_span_tracks(true);
            ours_with(settings, "ours-reuse")
        }
        "file-both" => perfetto_file(SpanMode::Both, "file-both"),
        "file-threads" => perfetto_file(SpanMode::ThreadTracks, "file-threads"),
        "file-spans" => perfetto_file(SpanMode::SpanTracks, "file-spans"),
        "registry" => registry_alone(),
        other => panic!("unknown subject {other}"),
    };
    let work: fn(u64) = match args.get(1).map(String::as_str).unwrap_or("event") {
        "event" => event,
        "span" => span,
        "varying" => varying,
        other => panic!("unknown workload {other}"),
    };
    let iters: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let varied = args.get(3).map(String::as_str) == Some("varied");
    // A sixth, `global`: the subject as the global default, as a program
    // that calls `init()` has it, rather than scoped to each thread (whose
    // spans then each clone the dispatcher's `Arc`, one count that threads
    // recording at once contend for).
    let global = args.get(5).map(String::as_str) == Some("global");
    if global {
        tracing::dispatcher::set_global_default(subject.dispatch.clone()).unwrap();
    }
    let body = || {
        if varied {
            other_callsites();
        }
        warm_up(work, iters.min(20_000));
        measured(work, iters);
    };
    let run = || match global {
        true => body(),
        false => tracing::dispatcher::with_default(&subject.dispatch, body),
    };
    // A fifth argument: that many threads at once, each `iters` calls.
    match args.get(4).and_then(|s| s.parse::<usize>().ok()) {
        Some(threads) if threads > 1 => std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(run);
            }
        }),
        _ => run(),
    }
    drop(subject);
}
