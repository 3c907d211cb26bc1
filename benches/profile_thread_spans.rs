//! A plain binary for profilers (perf, valgrind --tool=callgrind): replays
//! the thread-span workload once through the streaming writer into a sink,
//! or (`async N`) the async workload with N spans, or (`small N`) writes N
//! small traces (`small-keys N`: their spans given as event keys), or
//! (`other N`) N counter samples then N thread instants. `keys ...` replays
//! the thread or async workload as from 256 call sites with event keys,
//! `sites ...` the same events as strings.
//!
//! ```sh
//! cargo bench --bench profile_thread_spans --no-run
//! valgrind --tool=callgrind target/release/deps/profile_thread_spans-* 200000
//! valgrind --tool=callgrind target/release/deps/profile_thread_spans-* 200000 compact
//! valgrind --tool=callgrind target/release/deps/profile_thread_spans-* async 200000 compact
//! valgrind --tool=callgrind target/release/deps/profile_thread_spans-* small 10000
//! valgrind --tool=callgrind target/release/deps/profile_thread_spans-* other 200000
//! valgrind --tool=callgrind target/release/deps/profile_thread_spans-* keys 200000
//! valgrind --tool=callgrind target/release/deps/profile_thread_spans-* sites async 200000
//! ```

mod workload;

fn main() {
    if let Some(form @ ("small" | "small-keys")) = std::env::args().nth(1).as_deref() {
        let n: usize = std::env::args()
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(10_000);
        for _ in 0..n {
            let mut w = perfetto_trace_writer::Writer::new();
            match form {
                "small" => workload::small_trace(&mut w).unwrap(),
                _ => workload::small_trace_keyed(&mut w).unwrap(),
            }
            std::hint::black_box(w.into_bytes());
        }
        return;
    }
    if std::env::args().nth(1).as_deref() == Some("other") {
        let n: usize = std::env::args()
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(200_000);
        let wl = workload::other_events(n, 0x07e5);
        let mut w = perfetto_trace_writer::StreamingPerfettoWriter::new(std::io::sink());
        workload::replay_counters(&mut w, &wl).unwrap();
        let mut w2 = perfetto_trace_writer::StreamingPerfettoWriter::new(std::io::sink());
        workload::replay_instants(&mut w2, &wl).unwrap();
        std::hint::black_box((w.into_inner().unwrap(), w2.into_inner().unwrap()));
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `keys`: the workload as from call sites, given as event keys;
    // `sites`: the same events given as strings.
    let form = args.first().map(String::as_str);
    let (keys, sites) = (form == Some("keys"), form == Some("sites"));
    let args = &args[usize::from(keys || sites)..];
    let asyncs = args.first().map(String::as_str) == Some("async");
    let args = &args[usize::from(asyncs)..];
    let spans = args
        .first()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let compact = args.get(1).map(String::as_str) == Some("compact");
    let options = perfetto_trace_writer::Options::new().compact(compact);
    let mut w =
        perfetto_trace_writer::StreamingPerfettoWriter::with_options(std::io::sink(), options);
    let wl = match asyncs {
        true => workload::async_spans(spans, 64, 0x5eed),
        false => workload::thread_spans(spans, 0x5eed),
    };
    let wl = match keys || sites {
        true => workload::as_sites(wl),
        false => wl,
    };
    match (asyncs, keys) {
        (true, true) => workload::replay_async_keyed(&mut w, &wl).unwrap(),
        (true, false) => workload::replay_async(&mut w, &wl).unwrap(),
        (false, true) => workload::replay_threads_keyed(&mut w, &wl).unwrap(),
        (false, false) => workload::replay_threads(&mut w, &wl).unwrap(),
    }
    let sink = w.into_inner().unwrap();
    std::hint::black_box(sink);
}
