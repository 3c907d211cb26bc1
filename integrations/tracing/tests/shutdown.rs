//! The guard's requests reach the writer thread while it may be busy
//! flushing on its timer: each is answered only by a flush that began after
//! it arrived, and a stop always stops the thread (so that `finish` and the
//! guard's drop return).

mod common;

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use common::SharedBuf;
use perfetto_tracing::PerfettoLayer;
use tracing::{info, Dispatch};
use tracing_subscriber::layer::SubscriberExt;

/// A sink whose first write holding `needle` says it has begun and then
/// waits for a word: it holds the writer thread inside a flush, at the
/// thread whose packets hold the needle, for as long as the test needs.
struct Gate {
    needle: &'static [u8],
    entered: Option<Sender<()>>,
    release: Receiver<()>,
    bytes: SharedBuf,
}

/// A gate on `needle`: it, the signal that a write is held, the word that
/// lets it go, and what it has written.
fn gate(needle: &'static str) -> (Gate, Receiver<()>, Sender<()>, SharedBuf) {
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let bytes = SharedBuf::default();
    let gate = Gate {
        needle: needle.as_bytes(),
        entered: Some(entered_tx),
        release: release_rx,
        bytes: bytes.clone(),
    };
    (gate, entered, release, bytes)
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

impl Write for Gate {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.entered.is_some() && holds(buf, self.needle) {
            let _ = self.entered.take().map(|e| e.send(()));
            let _ = self.release.recv();
        }
        self.bytes.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A stop that arrives while the writer thread flushes on its timer: the
/// timer's flush once answered it on the way (as if it had stopped) and
/// went on running, so `finish`, waiting for the thread to end, never
/// returned (the hang seen under callgrind, whose slowness makes the
/// timer's flushes long).
#[test]
fn a_stop_during_a_timed_flush_stops_the_writer_thread() {
    let (sink, entered, release, bytes) = gate("before the stop");
    let (layer, guard) = PerfettoLayer::builder()
        .flush_interval(Some(Duration::from_millis(1)))
        .build(sink)
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        info!(n = 1u64, "before the stop");
    });
    // The timer's flush writes this thread's packets: it is held there.
    entered
        .recv_timeout(Duration::from_secs(20))
        .expect("the timer never flushed");
    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(guard.finish());
    });
    // Time for the stop to be queued behind the held flush.
    std::thread::sleep(Duration::from_millis(200));
    release.send(()).unwrap();
    let finished = done.recv_timeout(Duration::from_secs(20));
    assert!(
        matches!(finished, Ok(Ok(()))),
        "finish did not return: {finished:?}"
    );
    let trace = common::decode(&bytes.bytes());
    assert!(trace.slices.iter().any(|s| s.name == "before the stop"));
}

/// A flush asked for while the timer's flush is under way: what the asking
/// thread recorded before it asked is in the sink when the flush returns,
/// even though the timer's flush had passed that thread already.
#[test]
fn a_flush_during_a_timed_flush_covers_what_came_before_it() {
    let (sink, entered, release, bytes) = gate("hold the flush here");
    let (layer, guard) = PerfettoLayer::builder()
        .flush_interval(Some(Duration::from_millis(1)))
        .build(sink)
        .unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let (step, step_rx) = mpsc::channel::<()>();
    let (ready, ready_rx) = mpsc::channel::<()>();
    let written = std::thread::scope(|s| {
        let (d, guard, bytes) = (dispatch.clone(), &guard, &bytes);
        // Its writer is made first, so flushes take it first.
        let first = s.spawn(move || {
            tracing::dispatcher::with_default(&d, || {
                info!("first thread starts");
                ready.send(()).unwrap();
                step_rx.recv().unwrap();
                info!("first thread, before its flush");
                guard.flush().unwrap();
                // Read before this thread ends (which hands over its
                // packets anyway).
                bytes.bytes()
            })
        });
        ready_rx.recv().unwrap();
        tracing::dispatcher::with_default(&dispatch, || info!("hold the flush here"));
        // The timer's flush is held at this thread's packets, past the
        // first thread's.
        entered
            .recv_timeout(Duration::from_secs(20))
            .expect("the timer never flushed");
        step.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        release.send(()).unwrap();
        first.join().unwrap()
    });
    assert!(
        holds(&written, b"first thread, before its flush"),
        "flush returned before the thread's event was written"
    );
    drop(dispatch);
    guard.finish().unwrap();
}
