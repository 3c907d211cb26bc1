//! What the layer's tests share: a sink to read back, and the trace
//! processor's verdict.
#![allow(dead_code)]

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

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
mod tp;
pub use tp::query;

/// Asserts the trace processor counts no error, data loss or import
/// problem in the trace (when it is there to ask).
pub fn assert_clean(trace: &[u8]) {
    let sql = "select name, idx, value from stats where value > 0 and severity in ('error', 'data_loss');";
    if let Some(rows) = query(trace, sql) {
        assert!(rows.len() <= 1, "trace processor stats: {rows:#?}");
    }
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
