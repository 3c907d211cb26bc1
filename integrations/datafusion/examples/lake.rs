//! A small telemetry lake as Parquet, from the importer's seeded simulation
//! of a service; registered in a DataFusion session, the trace of its first
//! process over a window made with the SQL function, written to a file.
//!
//! `cargo run -p perfetto-trace-writer-datafusion --example lake [-- OUT_DIR]`

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{sim, Lake, Times};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::prelude::SessionContext;
use perfetto_trace_writer_datafusion::{
    register_lake, Format, PerfettoTraceChunks, Progress, TableNames,
};

#[tokio::main]
async fn main() -> datafusion::error::Result<()> {
    let out: PathBuf = std::env::args()
        .nth(1)
        .map_or_else(|| std::env::temp_dir().join("perfetto-lake"), PathBuf::from);
    let simulated = sim::simulate(&sim::SimConfig {
        seed: 16,
        processes: 2,
        threads: 4,
        requests: 40,
        anomalies: false,
    });
    let lake = Lake::from_sim(&simulated);
    let dir = out.join("lake");
    lake.write(&dir, Format::Parquet, Times::Timestamps, false);
    println!(
        "lake: {} ({} processes, {} streams, {} thread spans, {} async events)",
        dir.display(),
        lake.processes.len(),
        lake.streams.len(),
        lake.thread_spans.len(),
        lake.async_events.len()
    );

    let ctx = SessionContext::new();
    register_lake(&ctx, &dir, &TableNames::default()).await?;
    let progress = Arc::new(Progress::new());
    PerfettoTraceChunks::new()
        .progress(Arc::clone(&progress))
        .register(&ctx);

    // The first process, over the middle third of the lake's async events.
    let mut processes = lake.processes.clone();
    processes.sort_by(|a, b| a.id.cmp(&b.id));
    let p = &processes[0];
    let first = lake
        .async_events
        .iter()
        .map(|e| e.time)
        .min()
        .unwrap_or(p.start);
    let last = lake
        .async_events
        .iter()
        .map(|e| e.time)
        .max()
        .unwrap_or(p.start);
    let (begin, end) = (first + (last - first) / 3, first + (last - first) * 2 / 3);
    let sql = format!(
        "SELECT chunk_id, chunk_data FROM perfetto_trace_chunks('{}', 'both', {begin}, {end}) ORDER BY chunk_id",
        p.id
    );
    println!("{sql}");
    let batches = ctx.sql(&sql).await?.collect().await?;
    let mut trace = Vec::new();
    for b in &batches {
        let data = b.column(1).as_binary::<i32>();
        for i in 0..data.len() {
            trace.extend_from_slice(data.value(i));
        }
    }
    let path = out.join("lake.pftrace");
    std::fs::write(&path, &trace)?;
    println!(
        "trace: {} ({} bytes in {} chunks)",
        path.display(),
        trace.len(),
        progress.chunks()
    );
    println!("{}", progress.report());
    Ok(())
}
