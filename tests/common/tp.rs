//! The trace processor beside the project (`../shared/tools/tp`), when it
//! is there: its rows for a query, and its verdict on a trace.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The trace processor, if there is one; says so when there is not. It
/// sits in `shared/` beside the repository, looked for above the crate's
/// folder so that the workspace's other members (which include this file)
/// find it too.
pub fn tp() -> Option<PathBuf> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = crate_dir
        .ancestors()
        .map(|d| d.join("../shared/tools/tp"))
        .find(|p| p.exists());
    if found.is_none() {
        eprintln!(
            "skipped: no trace processor in a shared/tools beside {} or above",
            crate_dir.display()
        );
    }
    found
}

/// Runs `sql` over `trace`: its rows as text lines (each statement's header
/// first), or `None` when there is no trace processor here.
pub fn query(trace: &[u8], sql: &str) -> Option<Vec<String>> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let tp = tp()?;
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ptw-tp-{}-{n}", std::process::id()));
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

/// [`query`] after asserting the trace processor counts no error or data
/// loss in the trace: the rows of `sql` without its header.
pub fn clean_query(trace: &[u8], sql: &str) -> Option<Vec<String>> {
    let stats = "select name, idx, value from stats \
                 where value > 0 and severity in ('error', 'data_loss');";
    let rows = query(trace, stats)?;
    assert!(rows.len() <= 1, "trace processor stats: {rows:#?}");
    let mut rows = query(trace, sql)?;
    rows.remove(0);
    Some(rows)
}
