//! Hostile and extreme input: each case is either a typed error or
//! documented behaviour, and nothing panics.

use perfetto_trace_writer::inspect::{self, TrackKind};
use perfetto_trace_writer::{
    Error, Options, StreamingPerfettoWriter, TraceWriter, Writer, MAX_SPAN_DEPTH, MAX_STRING_LEN,
};

fn thread(w: &mut Writer) -> perfetto_trace_writer::ThreadTrack {
    let p = w.process("p", Some(1), "p", &[]).unwrap();
    w.thread(p, "t", Some(2), "t").unwrap()
}

#[test]
fn strings_up_to_the_limit_are_written_and_longer_ones_refused() {
    let mut w = Writer::new();
    let t = thread(&mut w);
    let big = "é".repeat(3 << 20); // 6 MiB
    w.complete_span(t, 1, 2, &big, &big, &big, 1).unwrap();
    let limit = "x".repeat(MAX_STRING_LEN);
    w.complete_span(t, 3, 4, &limit, "", "", 0).unwrap();
    let before = w.len();
    let over = "x".repeat(MAX_STRING_LEN + 1);
    assert!(
        matches!(w.complete_span(t, 5, 6, &over, "", "", 0), Err(Error::StringTooLong(n)) if n == MAX_STRING_LEN + 1)
    );
    assert!(matches!(
        w.span_begin(t, 5, "", &over, "", 0),
        Err(Error::StringTooLong(_))
    ));
    assert!(matches!(
        w.process("k", None, &over, &[]),
        Err(Error::StringTooLong(_))
    ));
    assert!(matches!(
        w.process(&over, None, "", &[]),
        Err(Error::StringTooLong(_))
    ));
    assert!(matches!(
        w.process("k", None, "", &["", &over]),
        Err(Error::StringTooLong(_))
    ));
    assert_eq!(w.len(), before);
    w.finish().unwrap();
    let trace = inspect::decode(w.bytes()).unwrap();
    assert_eq!(trace.problems, vec![]);
    assert_eq!(trace.slices[0].name, big);
    assert_eq!(trace.slices[1].name.len(), MAX_STRING_LEN);
}

#[test]
fn every_unicode_plane_round_trips() {
    let mut w = Writer::with_options(Options::new().compact(true));
    let t = thread(&mut w);
    let mut names = Vec::new();
    for plane in 0..=16u32 {
        // Characters from the start, middle and end of each plane (no surrogates).
        let s: String = [0x20, 0x8000, 0xFFFD]
            .iter()
            .filter_map(|&o| char::from_u32(plane << 16 | o))
            .chain(['\u{0}', '\u{7f}', '\u{80}', '\u{10FFFF}'])
            .collect();
        names.push(s);
    }
    for (i, n) in names.iter().enumerate() {
        let ts = i as u64 * 10;
        w.complete_span(t, ts, ts + 5, n, n, n, i as u32).unwrap();
    }
    w.finish().unwrap();
    let trace = inspect::decode(w.bytes()).unwrap();
    assert_eq!(trace.problems, vec![]);
    let got: Vec<_> = trace.slices.iter().map(|s| s.name.clone()).collect();
    assert_eq!(got, names);
}

#[test]
fn a_million_distinct_names_stream_and_resolve() {
    // Memory grows with distinct names (bounded interning is separate work);
    // every name must still resolve.
    let mut w = StreamingPerfettoWriter::new(Vec::new());
    let p = w.process("p", Some(1), "p", &[]).unwrap();
    let t = w.thread(p, "t", Some(2), "t").unwrap();
    let mut name = String::new();
    for i in 0..1_000_000u64 {
        name.clear();
        use std::fmt::Write;
        write!(name, "op-{i}").unwrap();
        w.complete_span(t, i * 2, i * 2 + 1, &name, "", "", 0)
            .unwrap();
    }
    assert_eq!(w.interned_count(), 1_000_000);
    let bytes = w.into_inner().unwrap();
    let trace = inspect::decode(&bytes).unwrap();
    assert_eq!(trace.problems, vec![]);
    assert_eq!(trace.slices.len(), 1_000_000);
    for (i, s) in trace.slices.iter().enumerate().step_by(997) {
        assert_eq!(s.name, format!("op-{i}"));
        assert_eq!(s.ts, i as u64 * 2);
    }
}

#[test]
fn extreme_pids_and_tids() {
    let mut w = Writer::new();
    let a = w.process("a", Some(i32::MAX), "max", &[]).unwrap();
    let b = w.process("b", Some(1), "min", &[]).unwrap();
    let c = w.process("c", Some(i32::MAX - 1), "max - 1", &[]).unwrap();
    assert!(matches!(
        w.process("d", Some(0), "zero", &[]),
        Err(Error::ZeroId)
    ));
    // The trace processor reads a process's pid unsigned and its threads'
    // signed: a negative pid would part them.
    for pid in [-1, i32::MIN] {
        assert!(matches!(
            w.process("e", Some(pid), "negative", &[]),
            Err(Error::NegativePid(p)) if p == pid
        ));
    }
    let ta = w.thread(a, "t", Some(i64::MAX), "t").unwrap();
    let tb = w.thread(b, "t", Some(i64::MIN), "t").unwrap();
    let tc = w.thread(c, "t", Some(i64::from(i32::MAX)), "t").unwrap();
    assert!(matches!(w.thread(c, "u", Some(0), "u"), Err(Error::ZeroId)));
    for (i, t) in [ta, tb, tc].into_iter().enumerate() {
        w.complete_span(t, i as u64, i as u64 + 1, "s", "", "", 0)
            .unwrap();
    }
    w.finish().unwrap();
    let trace = inspect::decode(w.bytes()).unwrap();
    assert_eq!(trace.problems, vec![]);
    assert_eq!(
        trace.tracks[&tb.uuid().get()].kind,
        TrackKind::Thread {
            pid: 1,
            tid: i64::MIN
        }
    );
    assert_eq!(trace.slices.len(), 3);
}

#[test]
fn thousands_of_processes_and_threads_keep_distinct_ids() {
    let mut w = Writer::with_options(Options::new().compact(true));
    let mut pids = std::collections::HashSet::new();
    let mut tids = std::collections::HashSet::new();
    for p in 0..2_000 {
        let process = w
            .process(&format!("process-{p}"), None, "svc", &[])
            .unwrap();
        assert!(pids.insert(w.pid(process).unwrap()));
        for t in 0..3 {
            let thread = w
                .thread(process, &format!("thread-{t}"), None, "worker")
                .unwrap();
            assert!(tids.insert(w.tid(thread).unwrap()));
            // Busy enough for a sequence of its own in compact mode.
            for k in 0..4 {
                w.complete_span(thread, 10 + k * 10, 20 + k * 10, "s", "", "", 0)
                    .unwrap();
            }
        }
    }
    w.finish().unwrap();
    assert_eq!(w.sequence_count(), 1 + 6_000);
    let trace = inspect::decode(w.bytes()).unwrap();
    assert_eq!(trace.problems, vec![]);
    assert_eq!(trace.slices.len(), 24_000);
    assert!(
        pids.iter().all(|p| !tids.contains(&i64::from(*p))),
        "derived tids avoid pids"
    );
}

#[test]
fn nesting_stops_at_the_depth_the_trace_processor_accepts() {
    let mut w = Writer::new();
    let t = thread(&mut w);
    for d in 0..MAX_SPAN_DEPTH as u64 {
        w.span_begin(t, d, "level", "", "", 0).unwrap();
    }
    let before = w.len();
    assert!(matches!(
        w.span_begin(t, 1_000, "too deep", "", "", 0),
        Err(Error::TooDeep(_))
    ));
    assert!(matches!(
        w.complete_span(t, 1_000, 1_001, "too deep", "", "", 0),
        Err(Error::TooDeep(_))
    ));
    assert_eq!(w.len(), before);
    assert_eq!(w.close_open_spans(2_000).unwrap(), MAX_SPAN_DEPTH);
    let trace = inspect::decode(w.bytes()).unwrap();
    assert_eq!(trace.problems, vec![]);
    assert_eq!(
        trace.slices.iter().map(|s| s.depth).max(),
        Some(MAX_SPAN_DEPTH - 1)
    );
}

/// Slices begun and ended at times on either side of every varint length
/// the encoders treat apart (the short paths take times below 2^56 as one
/// word), up to the largest accepted: both writers, both modes, the same
/// bytes, canonical protobuf (prost re-encodes them unchanged), and every
/// slice where it was put.
#[test]
fn times_at_every_varint_length_round_trip() {
    use prost::Message;
    let mut times: Vec<u64> = (1..=9).map(|k| 1u64 << (7 * k)).collect();
    times.extend([(1 << 56) - 1, 1 << 56, (1 << 63) - 2, i64::MAX as u64]);
    times.sort_unstable();
    times.dedup();
    for compact in [false, true] {
        let options = Options::new().compact(compact);
        let mut bytes = Vec::new();
        let mut w = Writer::with_options(options);
        let mut s = StreamingPerfettoWriter::with_options(&mut bytes, options);
        for w in [&mut w as &mut dyn TraceWriter, &mut s] {
            let p = w.process("p", Some(1), "p", &[]).unwrap();
            let t = w.thread(p, "t", Some(2), "t").unwrap();
            // Enough spans for compact mode to move the thread to a
            // sequence of its own, where times are deltas.
            for pair in times.windows(2) {
                w.span_begin(t, pair[0] - 1, "s", "c", "f.rs", 1).unwrap();
                w.span_end(t, pair[0]).unwrap();
                w.span_begin(t, pair[0], "s", "c", "f.rs", 1).unwrap();
                w.span_end(t, pair[1] - 1).unwrap();
            }
            w.finish().unwrap();
        }
        drop(s);
        let trace = w.into_bytes();
        assert_eq!(bytes, trace, "compact {compact}");
        let decoded = perfetto_trace_writer::protos::Trace::decode(&trace[..]).unwrap();
        assert_eq!(decoded.encode_to_vec(), trace, "compact {compact}");
        let rebuilt = inspect::decode(&trace).unwrap();
        assert_eq!(rebuilt.problems, vec![], "compact {compact}");
        let mut want = Vec::new();
        for pair in times.windows(2) {
            want.push((pair[0] - 1, Some(1)));
            want.push((pair[0], Some(pair[1] - 1 - pair[0])));
        }
        let got: Vec<_> = rebuilt.slices.iter().map(|s| (s.ts, s.dur)).collect();
        assert_eq!(got, want, "compact {compact}");
    }
}

/// A trace cut at any byte (a program killed while it wrote) keeps its
/// whole packets: `whole_packets` ends at the last packet boundary before
/// the cut, the place where the cut prefix still decodes; garbage after a
/// whole trace is not taken for packets.
#[test]
fn a_trace_cut_anywhere_keeps_its_whole_packets() {
    let mut w = Writer::new();
    let t = thread(&mut w);
    for i in 0..4u64 {
        let name = "é".repeat(40 * i as usize); // lengths of one and two bytes
        w.complete_span(t, 10 * i + 1, 10 * i + 5, &name, "c", "f.rs", 1)
            .unwrap();
    }
    w.finish().unwrap();
    let bytes = w.bytes();
    let mut boundary = 0;
    for cut in 0..=bytes.len() {
        let prefix = &bytes[..cut];
        if <perfetto_trace_writer::protos::Trace as prost::Message>::decode(prefix).is_ok() {
            boundary = cut;
        }
        assert_eq!(inspect::whole_packets(prefix), boundary, "cut at {cut}");
    }
    assert_eq!(boundary, bytes.len());
    let mut tailed = bytes.to_vec();
    tailed.extend_from_slice(&[0x12, 0x01, 0x00]); // field 2: not a packet
    assert_eq!(inspect::whole_packets(&tailed), bytes.len());
    tailed.truncate(bytes.len());
    tailed.extend_from_slice(&[
        0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ]);
    assert_eq!(inspect::whole_packets(&tailed), bytes.len());
}
