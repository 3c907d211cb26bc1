//! Bytes per event against the designs this crate replaces and against
//! Google's protozero encoder, on the same seeded workload.

use perfetto_trace_writer::{protos, Writer};
use perfetto_trace_writer_compare::{baselines, workload};
use prost::Message;

#[test]
fn fewer_bytes_per_event_than_the_designs_it_replaces() {
    let wl = workload::thread_spans(100_000, 3);
    let mut w = Writer::new();
    workload::replay_threads(&mut w, &wl).unwrap();
    let ours = w.len();
    let prost = baselines::prost_per_packet_threads(Vec::new(), &wl)
        .unwrap()
        .len();
    let seed = baselines::micromegas_threads(&wl).len();
    let protozero = baselines::protozero_threads(&wl);
    assert!(
        ours <= protozero.len(),
        "{ours} bytes against {} for Google's protozero",
        protozero.len()
    );
    // The protozero baseline writes the same trace: the same slices.
    let theirs = perfetto_trace_writer::inspect::decode(&protozero).unwrap();
    let mine = perfetto_trace_writer::inspect::decode(w.bytes()).unwrap();
    assert_eq!(theirs.problems, vec![]);
    assert_eq!(theirs.slices.len(), mine.slices.len());
    let key = |s: &perfetto_trace_writer::inspect::Slice| (s.ts, s.dur, s.depth, s.name.clone());
    let mut a: Vec<_> = theirs.slices.iter().map(key).collect();
    let mut b: Vec<_> = mine.slices.iter().map(key).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert!(
        ours <= prost,
        "{ours} bytes against {prost} for one prost packet per event"
    );
    assert!(
        ours <= seed,
        "{ours} bytes against {seed} for micromegas-perfetto"
    );

    // Every field as short as protobuf allows: prost, which never pads,
    // re-encodes the decoded trace to the same bytes.
    let decoded = protos::Trace::decode(w.bytes()).unwrap();
    assert_eq!(decoded.encode_to_vec(), w.bytes());
    assert_eq!(
        decoded.packet.len(),
        wl.events.len() + 1 + workload::THREADS as usize
    );
}
