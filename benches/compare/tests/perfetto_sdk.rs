//! Against Perfetto's own SDK: the same thread spans recorded through its C
//! API (the `perfetto-sdk` crate, an in-process tracing session) and through
//! this crate. (A file of its own: the SDK's state is process-wide.)

use perfetto_trace_writer_compare::{baselines, workload};

use perfetto_trace_writer::inspect::decode;
use perfetto_trace_writer::{Options, Writer};

/// Compact mode writes well under the SDK's bytes for the same slices, and
/// default mode no more than the SDK. Both without source locations, which
/// the SDK's C API cannot intern.
#[test]
fn fewer_bytes_than_perfetto_sdk_for_the_same_slices() {
    let wl = workload::thread_spans(20_000, 0x5eed);
    let sdk = baselines::perfetto_sdk_threads(&wl);
    let ours = |compact| {
        let mut w = Writer::with_options(Options::new().compact(compact));
        workload::replay_threads_without_locations(&mut w, &wl).unwrap();
        w.into_bytes()
    };
    let (default, compact) = (ours(false), ours(true));
    // Kept for the trace processor when asked (its stats on each).
    if let Some(dir) = std::env::var_os("PTW_TRACE_DIR") {
        let dir = std::path::Path::new(&dir);
        for (name, bytes) in [
            ("sdk", &sdk),
            ("ours-default", &default),
            ("ours-compact", &compact),
        ] {
            std::fs::write(dir.join(format!("{name}.pftrace")), bytes).unwrap();
        }
    }
    let ratio = |b: &[u8]| b.len() as f64 / sdk.len() as f64;
    assert!(
        ratio(&default) <= 1.0 && ratio(&compact) <= 0.7,
        "default {} and compact {} bytes against the SDK's {}",
        default.len(),
        compact.len(),
        sdk.len()
    );
    // The same slices: times, durations, depths, names and categories.
    let slices = |bytes: &[u8]| {
        let mut s: Vec<_> = decode(bytes)
            .unwrap()
            .slices
            .into_iter()
            .map(|s| (s.ts, s.dur, s.depth, s.name, s.categories))
            .collect();
        s.sort();
        s
    };
    let theirs = slices(&sdk);
    assert_eq!(theirs.len(), 20_000);
    assert_eq!(theirs, slices(&default));
    assert_eq!(theirs, slices(&compact));
}
