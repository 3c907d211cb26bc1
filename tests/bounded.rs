//! Bounded interning: a writer fed endless distinct names stays within its
//! cap, and every name still resolves.

#[path = "common/counting.rs"]
mod counting;

use std::fmt::Write as _;
use std::io;

use perfetto_trace_writer::{inspect, Options, StreamingPerfettoWriter, TraceWriter, Writer};

const CAP: usize = 1_000;

/// Writes `n` spans with distinct names on two threads.
fn distinct_names(w: &mut impl TraceWriter, n: u64) {
    let p = w.process("p", Some(1), "p", &[]).unwrap();
    let threads = [
        w.thread(p, "a", Some(2), "a").unwrap(),
        w.thread(p, "b", Some(3), "b").unwrap(),
    ];
    let mut name = String::new();
    for i in 0..n {
        name.clear();
        write!(name, "operation-{i}").unwrap();
        let t = threads[(i % 2) as usize];
        w.complete_span(
            t,
            i * 10,
            i * 10 + 5,
            &name,
            "cat",
            "src/x.rs",
            (i % 50) as u32,
        )
        .unwrap();
    }
    w.finish().unwrap();
}

fn peak(n: u64, compact: bool) -> i64 {
    counting::peak_during(|| {
        let options = Options::new().compact(compact).intern_limit(CAP, 1 << 20);
        let mut w = StreamingPerfettoWriter::with_options(io::sink(), options);
        distinct_names(&mut w, n);
        assert!(w.interning_generations() > n / CAP as u64);
        assert!(w.interned_count() <= CAP + 3);
        w.into_inner().unwrap();
    })
}

#[test]
fn a_million_distinct_names_under_a_small_cap_keep_memory_flat() {
    for compact in [false, true] {
        let small = peak(100_000, compact);
        let large = peak(1_000_000, compact);
        assert!(
            (large - small).abs() <= 8 * 1024,
            "peak {small} for 100k names, {large} for 1M (compact {compact})"
        );
    }
}

#[test]
fn every_name_resolves_across_generations() {
    for compact in [false, true] {
        let options = Options::new().compact(compact).intern_limit(CAP, 1 << 20);
        let mut w = Writer::with_options(options);
        distinct_names(&mut w, 20_000);
        let trace = inspect::decode(w.bytes()).unwrap();
        assert_eq!(trace.problems, vec![]);
        assert_eq!(trace.slices.len(), 20_000);
        for (i, s) in trace.slices.iter().enumerate() {
            assert_eq!(s.name, format!("operation-{i}"));
            assert_eq!(s.categories, vec!["cat".to_owned()]);
            assert_eq!(s.source, Some(("src/x.rs".into(), (i % 50) as u32)));
        }
        // The generations show in the trace as clears of incremental state.
        let clears = w
            .to_trace()
            .unwrap()
            .packet
            .iter()
            .filter(|p| p.sequence_flags.unwrap_or(0) & 1 == 1)
            .count();
        assert!(clears as u64 >= w.interning_generations());
    }
}

#[test]
fn a_million_capped_names_all_resolve_by_decoding() {
    let options = Options::new().intern_limit(CAP, 1 << 20);
    let mut w = StreamingPerfettoWriter::with_options(Vec::new(), options);
    distinct_names(&mut w, 1_000_000);
    let generations = w.interning_generations();
    let bytes = w.into_inner().unwrap();
    let trace = inspect::decode(&bytes).unwrap();
    assert_eq!(trace.problems, vec![]);
    assert_eq!(trace.slices.len(), 1_000_000);
    assert!(generations >= 1_000_000 / CAP as u64);
    let mut name = String::new();
    for (i, s) in trace.slices.iter().enumerate() {
        name.clear();
        write!(name, "operation-{i}").unwrap();
        assert_eq!(s.name, name);
    }
}

#[test]
fn a_byte_cap_works_like_an_entry_cap() {
    let mut w = Writer::with_options(Options::new().intern_limit(usize::MAX, 4096));
    distinct_names(&mut w, 2_000);
    assert!(w.interning_generations() > 5);
    let trace = inspect::decode(w.bytes()).unwrap();
    assert_eq!(trace.problems, vec![]);
    assert!(trace
        .slices
        .iter()
        .enumerate()
        .all(|(i, s)| s.name == format!("operation-{i}")));
}
