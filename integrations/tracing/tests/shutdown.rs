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

/// A sink slower than the program: each write waits a little, and the
/// writes are counted.
struct Slow {
    bytes: SharedBuf,
    writes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Write for Slow {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        std::thread::sleep(Duration::from_micros(200));
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.bytes.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A flush asked for while another thread floods a slow sink returns after
/// a few of the flood's chunks, with what the asking thread recorded: the
/// flooding thread holds its state through back to back calls, each
/// waiting on the full queue, and once held the flush until a gap between
/// two calls happened to come (seconds, thousands of chunks), behind a
/// request that itself queued behind the flood's chunks.
#[test]
fn a_flush_returns_while_another_thread_floods_a_slow_sink() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    const QUEUE: usize = 2;
    let bytes = SharedBuf::default();
    let writes = Arc::new(AtomicUsize::new(0));
    let sink = Slow {
        bytes: bytes.clone(),
        writes: writes.clone(),
    };
    let (layer, guard) = PerfettoLayer::builder()
        .chunk_size(4 << 10)
        .queue_chunks(QUEUE)
        .flush_interval(None)
        .build(sink)
        .unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let (d, stop) = (dispatch.clone(), stop.clone());
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            tracing::dispatcher::with_default(&d, || {
                // Bounded, so that a stalled flush fails the test rather
                // than hangs it.
                while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(60) {
                    info!(n = 1u64, "flood");
                }
            })
        })
    };
    while writes.load(Ordering::Relaxed) < 50 {
        std::thread::sleep(Duration::from_millis(1));
    }
    tracing::dispatcher::with_default(&dispatch, || info!("asked for a flush"));
    let before = writes.load(Ordering::Relaxed);
    guard.flush().unwrap();
    let during = writes.load(Ordering::Relaxed) - before;
    let flushed = holds(&bytes.bytes(), b"asked for a flush");
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap();
    guard.finish().unwrap();
    assert!(
        flushed,
        "the flush returned before the asking thread's event was written"
    );
    // The write under way, the queue drained a few times while the
    // flooding thread ends its call and hands its buffer over, the asking
    // thread's buffer.
    assert!(
        during <= 4 * QUEUE + 4,
        "the flush waited for {during} of the flood's chunks"
    );
}

/// A field whose `Debug` impl asks the guard for a flush: the thread is
/// inside the layer, whose call cannot end while the flush waits for it,
/// so the flush is refused with an error instead of waiting for ever, and
/// the event and the layer carry on.
#[test]
fn a_flush_from_inside_the_layer_is_refused_not_waited_for() {
    use std::sync::{Arc, Mutex};
    struct Flushes {
        guard: Arc<perfetto_tracing::FlushGuard>,
        errors: Arc<Mutex<Vec<String>>>,
    }
    impl std::fmt::Debug for Flushes {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            if let Err(e) = self.guard.flush() {
                self.errors.lock().unwrap().push(e.to_string());
            }
            f.write_str("asked")
        }
    }
    let bytes = SharedBuf::default();
    let (layer, guard) = PerfettoLayer::builder()
        .flush_interval(None)
        .build(bytes.clone())
        .unwrap();
    let guard = Arc::new(guard);
    let errors = Arc::new(Mutex::new(Vec::new()));
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let value = Flushes {
        guard: guard.clone(),
        errors: errors.clone(),
    };
    tracing::dispatcher::with_default(&dispatch, || {
        info!(v = ?value, "flushing from a field");
        info!("after it");
    });
    drop(value);
    let errors = errors.lock().unwrap().clone();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("inside the tracing layer"), "{errors:?}");
    // Outside the layer the same guard flushes.
    guard.flush().unwrap();
    let written = bytes.bytes();
    assert!(holds(&written, b"flushing from a field") && holds(&written, b"after it"));
    Arc::into_inner(guard).unwrap().finish().unwrap();
}

/// Scoped threads that record and end just as the guard finishes: a
/// scoped thread's thread-locals are dropped after its scope returned, so
/// its last chunk is handed over while the guard's stop may be under way.
/// Every thread's event is in the trace, in every round.
#[test]
fn threads_ending_as_the_guard_finishes_lose_nothing() {
    const THREADS: usize = 16;
    for round in 0..20 {
        let bytes = SharedBuf::default();
        let (layer, guard) = PerfettoLayer::builder()
            .flush_interval(None)
            .build(bytes.clone())
            .unwrap();
        let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let d = dispatch.clone();
                s.spawn(move || tracing::dispatcher::with_default(&d, || info!(t, "last word")));
            }
        });
        drop(dispatch);
        guard.finish().unwrap();
        let trace = common::decode(&bytes.bytes());
        let said = trace
            .slices
            .iter()
            .filter(|s| s.name == "last word")
            .count();
        assert_eq!(said, THREADS, "round {round}");
    }
}
