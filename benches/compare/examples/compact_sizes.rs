//! Prints the bytes default and compact mode write for a few shapes of
//! trace: the table in the README's "Compact mode" section; then both
//! against Perfetto's own SDK on the thread workload.
//!
//! ```sh
//! cargo run --release -p perfetto-trace-writer-compare --example compact_sizes
//! ```

use perfetto_trace_writer_compare::{baselines, workload};

use perfetto_trace_writer::{Options, Result, TraceWriter, Writer};

/// 1,000 threads of one span each.
fn many_short_threads(w: &mut Writer) -> Result<()> {
    let p = w.process("p", Some(1), "p", &[])?;
    for i in 0..1000u64 {
        let t = w.thread(p, &format!("t{i}"), Some(10 + i as i64), "worker")?;
        let t0 = 1_000 + i * 10;
        w.complete_span(t, t0, t0 + 5, "job", "work", "src/job.rs", 7)?;
    }
    w.finish()?;
    Ok(())
}

fn main() -> Result<()> {
    let threads = workload::thread_spans(1_000_000, 0x5eed);
    let asyncs = workload::async_spans(200_000, 64, 0x5eed);
    let few_asyncs = workload::async_spans(200_000, 4, 0x5eed);
    let mut rows: Vec<(&str, [f64; 2], &str)> = Vec::new();
    let mut sizes = |name, unit, build: &dyn Fn(&mut Writer) -> Result<f64>| -> Result<()> {
        let mut out = [0.0; 2];
        for (i, compact) in [false, true].into_iter().enumerate() {
            let mut w = Writer::with_options(Options::new().compact(compact));
            out[i] = build(&mut w)?;
        }
        rows.push((name, out, unit));
        Ok(())
    };
    sizes("1M thread spans, 8 threads", "bytes/event", &|w| {
        workload::replay_threads(w, &threads)?;
        Ok(w.len() as f64 / threads.events.len() as f64)
    })?;
    sizes("200k async spans, 64 in flight", "bytes/event", &|w| {
        workload::replay_async(w, &asyncs)?;
        Ok(w.len() as f64 / 400_000.0)
    })?;
    sizes("200k async spans, 4 in flight", "bytes/event", &|w| {
        workload::replay_async(w, &few_asyncs)?;
        Ok(w.len() as f64 / 400_000.0)
    })?;
    sizes("3 spans on 2 threads", "bytes", &|w| {
        workload::small_trace(w)?;
        Ok(w.len() as f64)
    })?;
    sizes("1000 threads of 1 span each", "bytes", &|w| {
        many_short_threads(w)?;
        Ok(w.len() as f64)
    })?;
    println!("| workload | default | compact |");
    println!("| --- | --- | --- |");
    for (name, [plain, compact], unit) in rows {
        println!(
            "| {name} | {plain:.2} {unit} | {compact:.2} {unit} ({:.2}) |",
            compact / plain
        );
    }

    // The same thread spans, without source locations (the SDK's C API
    // cannot intern them), through Perfetto's SDK and both modes.
    let events = threads.events.len() as f64;
    let sdk = baselines::perfetto_sdk_threads(&threads).len() as f64 / events;
    println!();
    println!("| 1M thread spans, no source locations | bytes/event | against the SDK |");
    println!("| --- | --- | --- |");
    println!("| Perfetto SDK (C API, in-process session) | {sdk:.2} | 1.00 |");
    for compact in [false, true] {
        let mut w = Writer::with_options(Options::new().compact(compact));
        workload::replay_threads_without_locations(&mut w, &threads)?;
        let ours = w.len() as f64 / events;
        let mode = if compact { "compact" } else { "default" };
        println!("| this crate, {mode} | {ours:.2} | {:.2} |", ours / sdk);
    }
    Ok(())
}
