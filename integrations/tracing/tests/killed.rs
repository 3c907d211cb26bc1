//! A program killed while it traces leaves a trace that is valid up to
//! the last chunk it wrote whole.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use perfetto_tracing::PerfettoLayer;
use tracing::{info, info_span};
use tracing_subscriber::layer::SubscriberExt;

const CHILD: &str = "PERFETTO_TRACING_KILLED_CHILD";
/// The child's chunk size: no write is larger.
const CHUNK: usize = 8 << 10;

/// The child: traces on three threads until it is killed.
#[test]
fn child_traces_until_killed() {
    let Ok(path) = std::env::var(CHILD) else {
        return;
    };
    let (layer, _guard) = PerfettoLayer::builder()
        .chunk_size(CHUNK)
        .flush_interval(Some(Duration::from_millis(20)))
        .build_file(&path)
        .unwrap();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer)).unwrap();
    let work = |t: u64| {
        for i in 0u64.. {
            let _s = info_span!("work", t, i).entered();
            info!(i, "step");
            if i % 64 == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    };
    let a = std::thread::spawn(move || work(1));
    let b = std::thread::spawn(move || work(2));
    work(0);
    let _ = (a.join(), b.join());
}

#[test]
fn a_killed_program_leaves_a_valid_trace() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("perfetto-tracing-killed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("killed.pftrace");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_traces_until_killed", "--nocapture"])
        .env(CHILD, &path)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::fs::metadata(&path).map_or(0, |m| m.len()) < 256 << 10 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the child wrote too little"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL: no guard, no destructor runs.
    child.wait().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    // Whole packets to the last write, which the kill may have cut.
    let whole = common::whole_packets_of_killed(&bytes, CHUNK);
    let trace = perfetto_trace_writer::inspect::decode(whole).expect("a valid trace");
    assert!(trace.slices.iter().filter(|s| s.name == "step").count() > 1000);
    // The trace processor reads the file as it is, a cut tail included.
    common::assert_clean(&bytes);
}
