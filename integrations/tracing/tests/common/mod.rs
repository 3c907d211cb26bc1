//! What the layer's tests share: a sink to read back, and the trace
//! processor's verdict.
#![allow(dead_code)]

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use perfetto_tracing::{PerfettoLayer, View};
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

/// A sink the test keeps a handle to.
#[derive(Clone, Default)]
pub struct SharedBuf(pub Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
}

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// The root crate's trace-processor helper, shared rather than copied.
#[path = "../../../../tests/common/tp.rs"]
pub mod tp;
pub use tp::query;

/// Asserts the trace processor counts no error, data loss or import
/// problem in the trace (when it is there to ask).
pub fn assert_clean(trace: &[u8]) {
    let sql = "select name, idx, value from stats where value > 0 and severity in ('error', 'data_loss');";
    if let Some(rows) = query(trace, sql) {
        assert!(rows.len() <= 1, "trace processor stats: {rows:#?}");
    }
}

/// The whole packets of a file a killed program was writing, `chunk_size`
/// its layer's chunk size: all of the file but what the kill cut off in the
/// middle of its last write, which the kernel may stop between two pages.
/// Nothing before that write is cut, so less than one write is lost.
pub fn whole_packets_of_killed(bytes: &[u8], chunk_size: usize) -> &[u8] {
    let kept = perfetto_trace_writer::inspect::whole_packets(bytes);
    assert!(
        bytes.len() - kept < chunk_size,
        "{} bytes cut off after {kept}: more than a write's",
        bytes.len() - kept
    );
    &bytes[..kept]
}

/// The trace read back by `inspect`, which must find nothing wrong but
/// events that precede their track's descriptor in the file, and tracks
/// that precede their parent's: a span's track is described by the thread
/// that created it, and another thread's chunk with events on it (or with
/// a child span's track) may reach the file first. The trace processor
/// reads every descriptor before it reads events, so that is no error
/// there (`assert_clean` checks it).
pub fn decode(bytes: &[u8]) -> perfetto_trace_writer::inspect::Trace {
    let t = perfetto_trace_writer::inspect::decode(bytes).expect("the trace decodes");
    let wrong: Vec<_> = t
        .problems
        .iter()
        .filter(|p| {
            !p.what.ends_with("before its descriptor") && !p.what.contains("before its parent")
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:?}");
    t
}

/// Runs `f` with the layer as the default subscriber of this thread and of
/// the threads `f` starts through `on_thread` (std threads and tokio workers
/// do not inherit a thread's default).
pub fn record(view: View, f: impl FnOnce(&Dispatch)) -> Vec<u8> {
    record_with(PerfettoLayer::builder().view(view), f)
}

/// [`record`] with a layer of these settings.
pub fn record_with(settings: perfetto_tracing::Builder, f: impl FnOnce(&Dispatch)) -> Vec<u8> {
    record_composed(
        settings,
        |layer| tracing_subscriber::registry().with(layer),
        f,
    )
}

/// [`record_with`] under the subscriber `compose` makes of the layer
/// (filters and other layers, as a user composes them).
pub fn record_composed<S>(
    settings: perfetto_tracing::Builder,
    compose: impl FnOnce(PerfettoLayer) -> S,
    f: impl FnOnce(&Dispatch),
) -> Vec<u8>
where
    S: tracing::Subscriber + Send + Sync + 'static,
{
    let sink = SharedBuf::default();
    let (layer, guard) = settings.build(sink.clone()).unwrap();
    let dispatch = Dispatch::new(compose(layer));
    tracing::dispatcher::with_default(&dispatch, || f(&dispatch));
    drop(dispatch);
    guard.finish().unwrap();
    sink.bytes()
}

/// Runs `f` on a new thread with `dispatch` as its default, and waits for
/// it: what `f` does happens on a thread other than the caller's.
pub fn on_thread<T: Send + 'static>(
    dispatch: &Dispatch,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    spawn_on(std::thread::Builder::new(), dispatch, f)
        .join()
        .unwrap()
}

/// Starts `f` on a thread made by `thread` (named or not) with `dispatch`
/// as its default, which a new thread does not inherit.
pub fn spawn_on<T: Send + 'static>(
    thread: std::thread::Builder,
    dispatch: &Dispatch,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let d = dispatch.clone();
    thread
        .spawn(move || tracing::dispatcher::with_default(&d, f))
        .unwrap()
}

pub fn runtime(dispatch: &Dispatch) -> tokio::runtime::Runtime {
    let d = dispatch.clone();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&d)))
        .build()
        .unwrap()
}

/// The flow ids the trace's events start and end, from the packets
/// themselves: (started, ended), each sorted.
pub fn flow_ends(bytes: &[u8]) -> (Vec<u64>, Vec<u64>) {
    use prost::Message as _;
    let trace = perfetto_trace_writer::protos::Trace::decode(bytes).unwrap();
    let (mut started, mut ended) = (Vec::new(), Vec::new());
    for p in &trace.packet {
        if let Some(e) = &p.track_event {
            started.extend(&e.flow_ids);
            ended.extend(&e.terminating_flow_ids);
        }
    }
    started.sort_unstable();
    ended.sort_unstable();
    (started, ended)
}

/// Every flow the trace starts ends once, and the trace processor links
/// each one (its `flow` table has a row per flow): none left dangling.
pub fn assert_flows_whole(bytes: &[u8]) -> usize {
    let (started, ended) = flow_ends(bytes);
    assert_eq!(started, ended, "flows with one end");
    let mut distinct = started.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), started.len(), "a flow id used twice");
    if let Some(rows) = query(bytes, "select count(*) from flow;") {
        assert_eq!(
            rows[1],
            started.len().to_string(),
            "flows the trace processor links"
        );
    }
    started.len()
}
