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
    Arg, AsyncParent, ChildOrdering, CounterOptions, CounterUnit, Event, Options, ParentTrack,
    Result, TraceWriter, TrackOptions, Value, Writer,
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
    write(&dir, "async-tree", async_tree)?;
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
