//! The queue to the writer thread when that thread is gone: recording
//! threads that wait for room stop waiting, and what they hand over is
//! counted as dropped rather than kept.

use std::io::{self, Write};

use perfetto_tracing::{Overflow, PerfettoLayer};
use tracing::info;
use tracing_subscriber::layer::SubscriberExt;

/// A sink whose first write panics, which ends the writer thread.
struct Panics;

impl Write for Panics {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        panic!("this sink fails on purpose")
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_writer_thread_that_panicked_blocks_no_recording_thread() {
    // One chunk fills the queue: with back-pressure, every later chunk
    // would wait for room for good if the thread's end went unnoticed.
    let (layer, guard) = PerfettoLayer::builder()
        .overflow(Overflow::Block)
        .chunk_size(1024)
        .queue_chunks(1)
        .flush_interval(None)
        .build(Panics)
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..10_000u64 {
            info!(i, "step");
        }
    });
    // About 500 chunks of 1 KiB: all but the first few had nowhere to go.
    assert!(
        guard.dropped_chunks() > 100,
        "{} chunks dropped",
        guard.dropped_chunks()
    );
    assert!(guard.finish().is_err(), "the writer thread has stopped");
}
