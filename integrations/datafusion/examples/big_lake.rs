//! A large telemetry lake as Parquet from the tests' seeded generator, for
//! measuring `perfetto-trace-gen`'s memory: the span tables as they come
//! (thread spans stream by stream) or in time order (`--by-time`).
//!
//! `cargo run --release -p perfetto-trace-writer-datafusion --example big_lake -- OUT_DIR [TREES_PER_STREAM] [--by-time]`
//!
//! Then, for instance,
//! `/usr/bin/time -v perfetto-trace-gen OUT_DIR -o out.pftrace --memory-limit 64`
//! (add `--sorted` for a lake written `--by-time`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;

use common::{generate, Times};
use perfetto_trace_writer_datafusion::Format;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let by_time = args.iter().any(|a| a == "--by-time");
    let mut plain = args.iter().filter(|a| !a.starts_with("--"));
    let Some(out) = plain.next().map(PathBuf::from) else {
        eprintln!("usage: big_lake OUT_DIR [TREES_PER_STREAM] [--by-time]");
        std::process::exit(2);
    };
    let trees: usize = plain.next().and_then(|n| n.parse().ok()).unwrap_or(40_000);
    // 4 processes of 8 streams; as many async tasks per process as trees
    // per stream times 2.
    let mut lake = generate(16, 4, 8, trees, trees * 2);
    if by_time {
        lake = lake.by_time();
    }
    // One file per table: the generator's rows fit in memory here.
    lake.write(&out, Format::Parquet, Times::Timestamps, false);
    let b = lake.batches(Times::Timestamps);
    println!(
        "{}: {} thread spans ({} MiB as Arrow), {} async events ({} MiB){}",
        out.display(),
        lake.thread_spans.len(),
        b[2].1.get_array_memory_size() >> 20,
        lake.async_events.len(),
        b[3].1.get_array_memory_size() >> 20,
        if by_time { ", in time order" } else { "" },
    );
}
