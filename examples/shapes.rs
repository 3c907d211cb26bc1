//! Writes traces of many shapes, in both modes, for independent checkers
//! (CI runs Perfetto's official schema over them):
//!
//! ```sh
//! cargo run --example shapes -- OUT_DIR
//! ```

#[path = "../benches/workload.rs"]
mod workload;

use std::path::{Path, PathBuf};

use perfetto_trace_writer::{
    Arg, AsyncParent, ChildOrdering, Clock, Correlation, CounterOptions, CounterSample,
    CounterUnit, Event, LaneOptions, LogSeverity, Options, ParentTrack, ProcessOptions, Result,
    StackFrame, ThreadOptions, TraceWriter, TrackOptions, Value, Writer,
};

fn extremes(w: &mut Writer) -> Result<()> {
    let max = i64::MAX as u64;
    let p = w.process(
        "extremes",
        Some(i32::MAX),
        "extremes ✓ 漢字",
        &["a", "", "🎉"],
    )?;
    let t = w.thread(p, "t", Some(i64::from(i32::MAX) - 1), "")?;
    let lane = w.async_lane(t, "")?;
    w.complete_span(t, 0, 0, "", "", "", 0)?;
    w.complete_span(t, 0, 10, "tie-outer", "c", "f.rs", u32::MAX)?;
    w.complete_span(t, 0, 10, "tie-inner", "c", "f.rs", 0)?;
    w.complete_span(
        t,
        (1 << 33) + 7,
        (1 << 40) + 1,
        &"long ".repeat(100_000),
        "",
        "",
        0,
    )?;
    w.span_begin(t, max - 5, "late", "", "", 0)?;
    w.span_end(t, max)?;
    w.async_span_begin(lane, 1, 1_000_000, "a", "", "", 0)?;
    w.async_span_begin(lane, 2, 10, "b", "", "", 0)?;
    w.async_span_end(lane, 2, 20)?;
    w.async_span_end(lane, 1, 2_000_000)?;
    w.async_span_begin(lane, 3, 5, "c", "", "", 0)?;
    w.async_span_end(lane, 3, max)?;
    w.finish()?;
    Ok(())
}

fn deep(w: &mut Writer) -> Result<()> {
    let p = w.process("deep", None, "deep", &[])?;
    let t = w.thread(p, "t", None, "t")?;
    let mut depth = 0;
    while w.span_begin(t, 100 + depth, "level", "", "", 0).is_ok() {
        depth += 1;
    }
    for i in 0..depth {
        w.span_end(t, 10_000 + i)?;
    }
    w.finish()?;
    Ok(())
}

fn many_threads(w: &mut Writer) -> Result<()> {
    for p in 0..20 {
        let process = w.process(&format!("proc-{p}"), None, &format!("process {p}"), &[])?;
        let lane = w.async_lane(process, "requests")?;
        for t in 0..50u64 {
            let thread = w.thread(
                process,
                &format!("stream-{t}"),
                None,
                &format!("worker {t}"),
            )?;
            w.complete_span(
                thread,
                1_000 + t,
                2_000 + t,
                "work",
                "pool",
                "src/pool.rs",
                42,
            )?;
            w.async_span_begin(lane, t, 1_000 + t, "request", "rpc", "", 0)?;
        }
        for t in 0..50u64 {
            w.async_span_end(lane, t, 5_000 - t)?;
        }
    }
    w.finish()?;
    Ok(())
}

fn features(w: &mut Writer) -> Result<()> {
    let p = w.process("svc", Some(100), "service", &[])?;
    let a = w.thread(p, "a", Some(101), "receiver")?;
    let b = w.thread(p, "b", Some(102), "worker")?;
    let lane = w.async_lane(p, "io")?;
    let group = w.track(
        ParentTrack::Root,
        "markers",
        &TrackOptions {
            child_ordering: Some(ChildOrdering::Explicit),
            ..Default::default()
        },
    )?;
    let marks = w.track(
        group,
        "deploys",
        &TrackOptions {
            sibling_rank: Some(1),
            ..Default::default()
        },
    )?;
    let alerts = w.track(
        group,
        "alerts",
        &TrackOptions {
            sibling_rank: Some(0),
            ..Default::default()
        },
    )?;
    let heap = w.counter_track(
        p,
        "heap",
        &CounterOptions {
            unit: CounterUnit::Bytes,
            multiplier: Some(1024),
            ..Default::default()
        },
    )?;
    let queue = w.counter_track(
        ParentTrack::Root,
        "queue",
        &CounterOptions {
            incremental: true,
            ..Default::default()
        },
    )?;
    let stats = [
        Arg::new("rows", Value::Uint(42)),
        Arg::new("cached", Value::Bool(false)),
    ];
    let list = [
        Value::Int(-3),
        Value::Double(2.5),
        Value::Str("s"),
        Value::Dict(&stats),
    ];
    let args = [
        Arg::new("query", Value::Str("select 1")),
        Arg::new("stats", Value::Dict(&stats)),
        Arg::new("list", Value::Array(&list)),
    ];
    for i in 0..50u64 {
        let t0 = 1_000 + i * 1_000;
        let flow = [i + 1];
        w.span_begin_with(
            a,
            t0,
            &Event::new("receive")
                .category("rpc")
                .flows(&flow)
                .args(&args),
        )?;
        w.instant(a, t0 + 10, &Event::new("parsed"))?;
        w.span_end(a, t0 + 100)?;
        let ids = [
            Arg::new("span_id", Value::Uint(i)),
            Arg::new("parent_span_id", Value::Uint(i / 2)),
        ];
        w.async_span_begin_with(
            lane,
            i,
            t0 + 120,
            &Event::new("fetch").flows(&flow).args(&ids),
        )?;
        w.async_span_end(lane, i, t0 + 600)?;
        w.complete_span_with(
            b,
            t0 + 610,
            t0 + 900,
            &Event::new("reply").terminating_flows(&flow),
        )?;
        w.counter(heap, t0, (100 + i) as i64)?;
        w.counter(queue, t0, if i % 3 == 0 { -1_i64 } else { 2 })?;
        w.instant(lane, t0 + 130, &Event::new("retry"))?;
        w.instant(p, t0 + 5, &Event::new("gc"))?;
        if i % 10 == 0 {
            w.instant(marks, t0, &Event::new("deploy"))?;
            w.instant(alerts, t0 + 1, &Event::new("alert"))?;
        }
    }
    w.finish()?;
    Ok(())
}

/// What Perfetto's SDK says beyond spans: descriptions on every kind of
/// track, correlation ids, log lines, counter values on slices, wall-clock
/// time, process labels and ranks, callstacks (interned).
///
/// Not here: `order_explicitly`, whose root descriptor (uuid 0, as upstream
/// defines it) the trace processor (v58) reads without an error but
/// `pfcheck` refuses; `tests/sdk_features.rs` checks it with `inspect`.
fn sdk(w: &mut Writer) -> Result<()> {
    let p = w.process_with(
        "sdk",
        Some(300),
        "sdk",
        &[],
        &ProcessOptions {
            description: Some("a process described"),
            labels: &["tenant=a", "canary"],
            sibling_rank: Some(1),
        },
    )?;
    let t = w.thread_with(
        p,
        "main",
        Some(301),
        "main",
        &ThreadOptions {
            description: Some("a thread described"),
            sibling_rank: Some(2),
        },
    )?;
    let first = w.process_with(
        "sdk-first",
        Some(310),
        "shown first",
        &[],
        &ProcessOptions {
            sibling_rank: Some(-1),
            ..Default::default()
        },
    )?;
    let early = w.thread_with(
        p,
        "early",
        Some(302),
        "shown before main",
        &ThreadOptions {
            sibling_rank: Some(0),
            ..Default::default()
        },
    )?;
    w.complete_span(early, 100, 200, "early", "", "", 0)?;
    w.instant(first, 100, &Event::new("first"))?;
    let lane = w.async_lane_with(
        p,
        "io",
        &LaneOptions {
            description: Some("a lane described"),
            ..Default::default()
        },
    )?;
    let marks = w.track(
        t,
        "marks",
        &TrackOptions {
            description: Some("a named track described"),
            ..Default::default()
        },
    )?;
    let heap = w.counter_track(
        p,
        "heap",
        &CounterOptions {
            track: TrackOptions {
                description: Some("a counter described"),
                ..Default::default()
            },
            ..Default::default()
        },
    )?;
    // 2026-01-01T00:00:00Z at the trace's 500 ns.
    w.clock_snapshot(&[
        (Clock::Boottime, 500),
        (Clock::Realtime, 1_767_225_600_000_000_000),
        (Clock::Monotonic, 400),
    ])?;
    let cpu = w.counter_track(t, "cpu ns", &CounterOptions::default())?;
    let shared = CounterOptions {
        y_axis_share_key: Some("memory"),
        ..Default::default()
    };
    let rss = w.counter_track(p, "rss", &shared)?;
    let cache = w.counter_track(p, "cache", &shared)?;
    let severities = [LogSeverity::Info, LogSeverity::Warn, LogSeverity::Error];
    for i in 0..20u64 {
        let t0 = 1_000 + i * 1_000;
        let request = format!("req-{}", i % 4);
        let at_begin = [
            (cpu, CounterSample::Int(100 * i as i64)),
            (rss, CounterSample::Double(0.5 * i as f64)),
            (cache, CounterSample::Int((i % 3) as i64)),
        ];
        let stack = [
            StackFrame::new("main", "src/main.rs", 3),
            StackFrame::new("serve", "src/serve.rs", 40 + (i % 2) as u32),
        ];
        let correlated = Event::new("work")
            .correlation(Correlation::Name(&request))
            .counters(&at_begin)
            .callstack(&stack);
        w.span_begin_with(t, t0, &correlated)?;
        let read = Event::new("read").correlation(Correlation::Id(i % 4));
        w.async_span_begin_with(lane, i, t0 + 10, &read)?;
        w.instant(marks, t0 + 20, &Event::new("mark"))?;
        let body = format!("step {}", i % 5);
        let line = Event::new("log")
            .location("src/sdk.rs", 10 + (i % 2) as u32)
            .log(severities[i as usize % 3], &body);
        w.instant(t, t0 + 30, &line)?;
        w.counter(heap, t0, i as i64)?;
        w.async_span_end(lane, i, t0 + 500)?;
        let at_end = [(cpu, CounterSample::Int(100 * i as i64 + 70))];
        w.span_end_with_counters(t, t0 + 900, &at_end)?;
    }
    w.finish()?;
    Ok(())
}

/// Async span trees: complete spans in begin order (children nested on
/// their parent's track or beneath it), begun children outliving their
/// parent, end arguments.
fn async_tree(w: &mut Writer) -> Result<()> {
    let p = w.process("tree", Some(300), "tree", &[])?;
    let main = w.thread(p, "main", Some(301), "main")?;
    let worker = w.thread(p, "worker", Some(302), "worker")?;
    let tasks = w.async_tree_lane(main, "tasks")?;
    let io = w.async_tree_lane(worker, "io")?;
    let clipped = [Arg::new("clipped", Value::Str("end"))];
    for i in 0..200u64 {
        let t = 1_000 + i * 1_000;
        let id = i * 10;
        let root = AsyncParent::new(tasks, id);
        w.async_complete_span(tasks, id, t, t + 900, None, &Event::new("request"))?;
        w.async_complete_span(tasks, id + 1, t, t + 300, Some(root), &Event::new("parse"))?;
        // Overlapping siblings: the second goes beneath the parent's track.
        w.async_complete_span(
            tasks,
            id + 2,
            t + 300,
            t + 700,
            Some(root),
            &Event::new("plan"),
        )?;
        w.async_complete_span(
            tasks,
            id + 3,
            t + 350,
            t + 600,
            Some(root),
            &Event::new("fetch"),
        )?;
        // A child outliving its parent, on another lane.
        w.async_complete_span(io, id, t + 800, t + 1_500, Some(root), &Event::new("flush"))?;
        // A zero-length child at its parent's very end.
        w.async_complete_span(
            tasks,
            id + 4,
            t + 900,
            t + 900,
            Some(root),
            &Event::new("done"),
        )?;
    }
    let streaming = w.async_tree_lane(p, "streaming")?;
    for i in 0..100u64 {
        let t = 300_000 + i * 100;
        w.async_span_begin(streaming, i, t, "op", "", "", 0)?;
        let parent = AsyncParent::new(streaming, i);
        w.async_child_begin(
            streaming,
            1_000 + i,
            parent,
            t + 10,
            &Event::new("detached"),
        )?;
        w.async_span_end(streaming, i, t + 50)?;
        w.async_span_end_with(streaming, 1_000 + i, t + 500, &clipped)?;
    }
    w.finish()?;
    Ok(())
}

/// Rows with a depth column, sorted by begin: zero-length children at their
/// parents' very ends; same-time instants; an incremental counter through
/// many generations of interning (with the cap below).
fn rows(w: &mut Writer) -> Result<()> {
    let p = w.process("rows", Some(11), "rows", &[])?;
    let t = w.thread(p, "t", Some(11), "t")?;
    let c = w.counter_track(
        p,
        "rows read",
        &CounterOptions {
            incremental: true,
            ..Default::default()
        },
    )?;
    for k in 0..2_000u64 {
        let b = k * 1_000;
        let name = format!("row {}", k % 300);
        for (depth, begin, end) in [
            (0, b, b + 200),
            (1, b + 100, b + 200),
            (2, b + 200, b + 200),
        ] {
            w.complete_span_at_depth(t, depth, begin, end, &Event::new(&name))?;
        }
        w.instant(t, b + 500, &Event::new("mark"))?;
        w.instant(t, b + 500, &Event::new("mark"))?;
        w.counter(c, b + 600, 1_i64)?;
    }
    w.finish()?;
    Ok(())
}

/// Timestamps in REALTIME, with many generations of incremental state.
fn realtime(w: &mut Writer) -> Result<()> {
    let p = w.process("rt", Some(400), "realtime", &[])?;
    let t = w.thread(p, "main", Some(401), "main")?;
    let lane = w.async_lane(p, "io")?;
    for i in 0..40u64 {
        let t0 = NEW_YEAR + i * 1_000;
        w.span_begin(t, t0, &format!("step {}", i % 7), "", "", 0)?;
        w.async_span_begin(lane, i, t0 + 10, "read", "", "", 0)?;
        w.async_span_end(lane, i, t0 + 400)?;
        w.span_end(t, t0 + 900)?;
    }
    w.finish()?;
    Ok(())
}

/// 2026-01-01T00:00:00Z, in nanoseconds since the Unix epoch.
/// Spans on the caller's own named tracks (under the root, a process and a
/// thread: begun, complete in begin order, at explicit depths, with
/// instants inside), and callstacks on them and on a thread's, many of
/// them distinct (with the cap below, through generations of interning).
fn named_spans_and_callstacks(w: &mut Writer) -> Result<()> {
    let p = w.process("stacks", Some(500), "stacks", &[])?;
    let t = w.thread(p, "main", Some(501), "main")?;
    let gpu = w.track(ParentTrack::Root, "gpu queue", &TrackOptions::default())?;
    let requests = w.track(p, "requests", &TrackOptions::default())?;
    let phases = w.track(t, "phases", &TrackOptions::default())?;
    let functions: Vec<String> = (0..30).map(|i| format!("handler_{i}")).collect();
    for i in 0..300u64 {
        let t0 = 1_000 + i * 1_000;
        let k = (i % 30) as usize;
        let stack = [
            StackFrame::new("main", "src/main.rs", 3),
            StackFrame::new("serve", "src/serve.rs", 40),
            StackFrame::new(&functions[k], "src/handlers.rs", 10 + k as u32),
        ];
        w.track_span_begin(gpu, t0, &Event::new("frame").callstack(&stack[..2]))?;
        w.track_complete_span(gpu, t0 + 10, t0 + 400, &Event::new("draw"))?;
        w.instant(gpu, t0 + 20, &Event::new("fence").callstack(&stack))?;
        w.track_span_end(gpu, t0 + 900)?;
        let request = Event::new("request").callstack(&stack);
        w.track_complete_span_at_depth(requests, 0, t0, t0 + 500, &request)?;
        w.track_complete_span_at_depth(requests, 1, t0 + 500, t0 + 500, &Event::new("reply"))?;
        w.track_span_begin(phases, t0 + 100, &Event::new("parse"))?;
        w.span_begin_with(t, t0 + 150, &Event::new("work").callstack(&stack))?;
        w.track_span_end(phases, t0 + 200)?;
        w.span_end(t, t0 + 300)?;
    }
    w.finish()?;
    Ok(())
}

const NEW_YEAR: u64 = 1_767_225_600_000_000_000;

fn write(dir: &Path, name: &str, build: impl Fn(&mut Writer) -> Result<()>) -> Result<()> {
    write_with(dir, name, Options::new(), build)
}

fn write_with(
    dir: &Path,
    name: &str,
    base: Options,
    build: impl Fn(&mut Writer) -> Result<()>,
) -> Result<()> {
    for (mode, options) in [("default", base), ("compact", base.compact(true))] {
        let mut w = Writer::with_options(options);
        build(&mut w)?;
        let path = dir.join(format!("{name}-{mode}.pftrace"));
        std::fs::write(&path, w.bytes())?;
        println!("{:>10} bytes  {}", w.len(), path.display());
    }
    Ok(())
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os().nth(1).map_or_else(
        || std::env::temp_dir().join("perfetto-shapes"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir)?;
    let threads = workload::thread_spans(50_000, 1);
    let asyncs = workload::async_spans(20_000, 64, 2);
    write(&dir, "thread-spans", |w| {
        workload::replay_threads(w, &threads)
    })?;
    write(&dir, "async-spans", |w| workload::replay_async(w, &asyncs))?;
    write(&dir, "small", workload::small_trace)?;
    write(&dir, "extremes", extremes)?;
    write(&dir, "deep", deep)?;
    write(&dir, "many-threads", many_threads)?;
    write(&dir, "features", features)?;
    write(&dir, "sdk", sdk)?;
    write_with(
        &dir,
        "realtime",
        Options::new()
            .timestamp_clock(Clock::Realtime, NEW_YEAR, 1_000)
            .intern_limit(4, 4096),
        realtime,
    )?;
    write(&dir, "async-tree", async_tree)?;
    write(&dir, "named-spans", named_spans_and_callstacks)?;
    write_with(
        &dir,
        "named-spans-capped",
        Options::new().intern_limit(40, 1 << 20),
        named_spans_and_callstacks,
    )?;
    // A tiny interning cap: many generations of incremental state.
    write_with(
        &dir,
        "capped",
        Options::new().intern_limit(50, 4096),
        features,
    )?;
    write_with(&dir, "rows", Options::new().intern_limit(40, 1 << 20), rows)?;
    // Two partition writers, one lane name, overlapping spans: one trace.
    for (mode, compact) in [("default", false), ("compact", true)] {
        let mut joined = Vec::new();
        for i in 0..2u16 {
            let mut w = Writer::with_options(Options::new().compact(compact).partition(i));
            let p = w.process("service", Some(10), "service", &[])?;
            let lane = w.async_lane(p, "requests")?;
            for k in 0..100u64 {
                let ts = 100 + u64::from(i) * 100 + k * 1_000;
                w.async_span_begin(lane, k, ts, &format!("writer {i}"), "", "", 0)?;
                w.async_span_end(lane, k, ts + 200)?;
            }
            w.finish()?;
            joined.extend(w.into_bytes());
        }
        let path = dir.join(format!("partitions-{mode}.pftrace"));
        std::fs::write(&path, &joined)?;
        println!("{:>10} bytes  {}", joined.len(), path.display());
    }
    Ok(())
}
