//! A tokio service traced through the layer: concurrent tasks across a
//! multi-threaded runtime, nested spans, events with fields, a task that
//! outlives the request that spawned it, a span on a named track, and a
//! `follows_from` link.
//!
//! ```sh
//! cargo run -p perfetto-trace-writer-tracing --example tokio_tasks -- /tmp/tokio.pftrace [REQUESTS]
//! ```
//!
//! It prints how many task spans it made; CI checks that the trace
//! processor reads the trace with no error and shows each of them as one
//! finished slice on a track of its own.

use std::time::Duration;

use perfetto_tracing::PerfettoLayer;
use tracing::{info, info_span, warn, Instrument as _};
use tracing_subscriber::layer::SubscriberExt;

async fn query(table: &'static str, id: u64) -> u64 {
    // A span on a track named by the caller: every query shows under "db".
    let span = info_span!("query", perfetto.track = "db", table, id);
    async move {
        tokio::time::sleep(Duration::from_millis(1 + id % 4)).await;
        let rows = id * 10;
        info!(rows, table, "query done");
        rows
    }
    .instrument(span)
    .await
}

async fn handle(id: u64) -> u64 {
    {
        let _parse = info_span!("parse", bytes = 512 + id).entered();
        info!(valid = true, "parsed");
    }
    let rows = query("users", id).await + query("orders", id + 1).await;
    // Work that goes on after the request has answered.
    tokio::spawn(
        async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            info!(id, "background done");
        }
        .instrument(info_span!("background", id)),
    );
    if rows > 150 {
        warn!(rows, ratio = rows as f64 / 100.0, "large answer");
    }
    rows
}

fn main() -> std::io::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tokio_tasks.pftrace".into());
    let requests: u64 = std::env::args()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(12);
    let (layer, guard) = PerfettoLayer::file(&path)?;
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
        .expect("no other subscriber is set");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()?;
    runtime.block_on(
        async {
            let mut tasks = Vec::new();
            for id in 0..requests {
                tasks.push(tokio::spawn(
                    handle(id).instrument(info_span!("request", id)),
                ));
            }
            let mut total = 0;
            for t in tasks {
                total += t.await.expect("requests do not panic");
            }
            let flush = info_span!("flush", total);
            flush.follows_from(tracing::Span::current());
            async {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            .instrument(flush)
            .await;
            // The background tasks outlive their requests; wait for them.
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        .instrument(info_span!("serve")),
    );
    drop(runtime);
    guard.finish()?;
    // request, background (one each), query (two per request), serve, flush.
    println!("task spans: {}", requests * 4 + 2);
    println!("wrote {path}");
    Ok(())
}
