//! What the layer's tests share: a sink to read back, and the trace
//! processor's verdict.
#![allow(dead_code)]

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
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

/// The trace processor beside the project, if there is one.
pub fn tp() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tools/tp");
    p.exists().then_some(p)
}

/// Runs `sql` over `trace` in the trace processor: its rows as text lines
/// (header first), or `None` when there is no trace processor here.
pub fn query(trace: &[u8], sql: &str) -> Option<Vec<String>> {
    let tp = tp()?;
    let dir = std::env::temp_dir().join(format!(
        "perfetto-tracing-{}-{}",
        std::process::id(),
        rand()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("trace.pftrace");
    std::fs::write(&file, trace).unwrap();
    let q = dir.join("q.sql");
    std::fs::write(&q, sql).unwrap();
    let out = Command::new(tp)
        .arg("query")
        .arg("-f")
        .arg(&q)
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "tp failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    Some(
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

/// Asserts the trace processor counts no error, data loss or import
/// problem in the trace (when it is there to ask).
pub fn assert_clean(trace: &[u8]) {
    let sql = "select name, idx, value from stats where value > 0 and severity in ('error', 'data_loss');";
    if let Some(rows) = query(trace, sql) {
        assert!(rows.len() <= 1, "trace processor stats: {rows:#?}");
    }
}

fn rand() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
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
