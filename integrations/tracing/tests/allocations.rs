//! Recording allocates nothing per event or span once warm: counted by a
//! global allocator on the recording thread (counts are deterministic;
//! speed is for the benchmarks).

#[path = "../../../tests/common/counting.rs"]
mod counting;

use std::io::{self, Write};

use counting::allocations_during;
use perfetto_tracing::{PerfettoLayer, View};
use tracing::{info, info_span};
use tracing_subscriber::layer::SubscriberExt;

struct Null;

impl Write for Null {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn event(i: u64) {
    info!(i, ok = true, ratio = 0.25, name = "x", "event with fields");
}

/// An event whose message varies: formatted each time, named inline.
fn varying(i: u64) {
    info!(i, ok = true, "loaded {} rows", i);
}

/// An event with a message and no field.
fn bare(_: u64) {
    info!("event without fields");
}

fn span(i: u64) {
    let s = info_span!("span", i);
    let _e = s.enter();
}

fn nested(i: u64) {
    let s = info_span!("outer", i);
    let _e = s.enter();
    span(i);
    event(i);
}

#[test]
fn events_and_spans_allocate_nothing_once_warm() {
    for view in [View::Both, View::Threads, View::SpanTracks] {
        // Chunks large enough that none fills while counting: the
        // per-event path alone.
        let (layer, guard) = PerfettoLayer::builder()
            .view(view)
            .chunk_size(64 << 20)
            .flush_interval(None)
            .build(Null)
            .unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            for workload in [event as fn(u64), varying, bare, span, nested] {
                // Warm: the thread's buffer grows to more than the counted
                // calls need, then is emptied (keeping its capacity).
                (0..20_000).for_each(workload);
                guard.flush().unwrap();
                let n = allocations_during(|| (0..10_000).for_each(workload));
                assert_eq!(n, 0, "{view:?}: {n} allocations in 10,000 calls");
            }
        });
        guard.finish().unwrap();
    }
}

#[test]
fn chunk_buffers_are_bounded_by_the_queue_not_the_trace() {
    let queue = 4;
    let (layer, guard) = PerfettoLayer::builder()
        .chunk_size(4096)
        .queue_chunks(queue)
        .flush_interval(None)
        .build(Null)
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        (0..1000).for_each(nested);
        // About 2,000 chunks of 4 KiB: buffers come back to the pool, so
        // at most a queue's worth is ever made, and the channel's waits
        // (when the writer thread is behind) allocate now and then: far
        // fewer than one per chunk, not one per event.
        let n = allocations_during(|| (0..100_000).for_each(nested));
        assert!(
            n <= 4 * queue as u64 + 16,
            "{n} allocations for about 2,000 chunks"
        );
    });
    guard.finish().unwrap();
}
