//! Writes a lake of JSON-lines tables from a seeded simulation of an
//! instrumented service (see `lake_sim/mod.rs`), for `from_rows`:
//!
//! ```sh
//! cargo run --example lake_gen -- LAKE [--seed N] [--processes N] [--threads N] [--requests N] [--anomalies]
//! ```

#[path = "lake_sim/mod.rs"]
mod sim;

use std::path::PathBuf;
use std::process::ExitCode;

fn run() -> Result<(), String> {
    let usage = "usage: lake_gen LAKE [--seed N] [--processes N] [--threads N] [--requests N] [--anomalies]";
    let mut config = sim::SimConfig::default();
    let mut dir = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            let v = args.next().ok_or(format!("{name} needs a value"))?;
            v.parse().map_err(|e| format!("{name} {v}: {e}"))
        };
        match a.as_str() {
            "--seed" => config.seed = number("--seed")?,
            "--processes" => config.processes = number("--processes")? as usize,
            "--threads" => config.threads = number("--threads")? as usize,
            "--requests" => config.requests = number("--requests")? as usize,
            "--anomalies" => config.anomalies = true,
            _ if a.starts_with("--") => return Err(format!("unknown option {a}\n{usage}")),
            _ => dir = Some(PathBuf::from(a)),
        }
    }
    let dir = dir.ok_or(usage)?;
    let lake = sim::simulate(&config);
    lake.write_jsonl(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    println!(
        "{} processes, {} streams, {} thread spans, {} async events in {}",
        lake.processes.len(),
        lake.streams.len(),
        lake.thread_spans.len(),
        lake.async_events.len(),
        dir.display()
    );
    for (kind, n) in &lake.injected {
        println!("  injected: {kind} x{n}");
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lake_gen: {e}");
            ExitCode::FAILURE
        }
    }
}
