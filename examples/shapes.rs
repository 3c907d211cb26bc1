//! Writes traces of many shapes, in both modes, for independent checkers
//! (CI runs Perfetto's official schema over them):
//!
//! ```sh
//! cargo run --example shapes -- OUT_DIR
//! ```

#[path = "../benches/workload.rs"]
mod workload;

use std::path::{Path, PathBuf};

use perfetto_trace_writer::{Options, Result, TraceWriter, Writer};

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

fn write(dir: &Path, name: &str, build: impl Fn(&mut Writer) -> Result<()>) -> Result<()> {
    for (mode, options) in [
        ("default", Options::new()),
        ("compact", Options::new().compact(true)),
    ] {
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
    Ok(())
}
