//! What the trace processor shows for specific shapes of calls: ties,
//! zero-length spans, overlapping async spans, ids, and misuse.

use perfetto_trace_writer::inspect::{self, Slice, TrackKind};
use perfetto_trace_writer::{protos, Error, Options, StreamingPerfettoWriter, TraceWriter, Writer};

fn slices(w: &Writer) -> Vec<(u64, String, u64, Option<u64>, usize)> {
    let trace = inspect::decode(w.bytes()).unwrap();
    assert_eq!(trace.problems, vec![]);
    trace
        .slices
        .iter()
        .map(|s: &Slice| (s.track, s.name.clone(), s.ts, s.dur, s.depth))
        .collect()
}

fn setup(
    compact: bool,
) -> (
    Writer,
    perfetto_trace_writer::ProcessTrack,
    perfetto_trace_writer::ThreadTrack,
) {
    let mut w = Writer::with_options(Options::new().compact(compact));
    let p = w.process("p", Some(100), "proc", &[]).unwrap();
    let t = w.thread(p, "t", Some(101), "thread").unwrap();
    (w, p, t)
}

#[test]
fn spans_beginning_together_nest_outer_first() {
    for compact in [false, true] {
        let (mut w, _, t) = setup(compact);
        let u = t.uuid().get();
        w.complete_span(t, 10, 50, "outer", "", "", 0).unwrap();
        w.complete_span(t, 10, 30, "inner", "", "", 0).unwrap();
        w.complete_span(t, 10, 10, "zero", "", "", 0).unwrap();
        w.finish().unwrap();
        assert_eq!(
            slices(&w),
            vec![
                (u, "outer".into(), 10, Some(40), 0),
                (u, "inner".into(), 10, Some(20), 1),
                (u, "zero".into(), 10, Some(0), 2),
            ]
        );
    }
}

#[test]
fn inner_span_first_at_a_tie_is_refused_and_writes_nothing() {
    for compact in [false, true] {
        let (mut w, _, t) = setup(compact);
        w.complete_span(t, 10, 30, "inner", "", "", 0).unwrap();
        let before = w.bytes().to_vec();
        let e = w.complete_span(t, 10, 50, "outer", "", "", 0).unwrap_err();
        assert!(
            matches!(
                e,
                Error::NotNested {
                    end: 50,
                    limit: 30,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(w.bytes(), before);
    }
}

#[test]
fn a_span_ending_at_t_closes_before_one_beginning_at_t() {
    for compact in [false, true] {
        let (mut w, _, t) = setup(compact);
        let u = t.uuid().get();
        w.span_begin(t, 0, "root", "", "", 0).unwrap();
        w.complete_span(t, 5, 20, "a", "", "", 0).unwrap();
        w.complete_span(t, 20, 20, "b", "", "", 0).unwrap(); // zero-length, after a
        w.span_begin(t, 20, "c", "", "", 0).unwrap();
        w.span_end(t, 20).unwrap();
        w.span_begin(t, 20, "d", "", "", 0).unwrap();
        w.span_end(t, 25).unwrap();
        w.span_end(t, 25).unwrap();
        w.finish().unwrap();
        assert_eq!(
            slices(&w),
            vec![
                (u, "root".into(), 0, Some(25), 0),
                (u, "a".into(), 5, Some(15), 1),
                (u, "b".into(), 20, Some(0), 1),
                (u, "c".into(), 20, Some(0), 1),
                (u, "d".into(), 20, Some(5), 1),
            ]
        );
    }
}

#[test]
fn complete_spans_in_begin_order_nest_like_a_database_export() {
    for compact in [false, true] {
        let (mut w, _, t) = setup(compact);
        // Sorted by begin, parents first: the ends are written when due.
        let rows = [
            (0, 100, "req"),
            (10, 40, "parse"),
            (12, 20, "lex"),
            (40, 90, "exec"),
            (95, 100, "reply"),
        ];
        for (b, e, name) in rows {
            w.complete_span(t, b, e, name, "db", "", 0).unwrap();
        }
        assert!(w.finish().unwrap().is_empty());
        let got: Vec<_> = slices(&w)
            .into_iter()
            .map(|s| (s.1, s.2, s.3, s.4))
            .collect();
        assert_eq!(
            got,
            vec![
                ("req".into(), 0, Some(100), 0),
                ("parse".into(), 10, Some(30), 1),
                ("lex".into(), 12, Some(8), 2),
                ("exec".into(), 40, Some(50), 1),
                ("reply".into(), 95, Some(5), 1),
            ]
        );
    }
}

#[test]
fn overlapping_async_spans_get_tracks_of_their_own_named_like_the_lane() {
    for compact in [false, true] {
        let (mut w, p, _) = setup(compact);
        let lane = w.async_lane(p, "Async Operations").unwrap();
        w.async_span_begin(lane, 1, 100, "A", "io", "", 0).unwrap();
        w.async_span_begin(lane, 2, 200, "B", "io", "", 0).unwrap();
        w.async_span_end(lane, 1, 300).unwrap(); // A ends while B runs
        w.async_span_begin(lane, 3, 300, "C", "io", "", 0).unwrap(); // reuses A's track
        w.async_span_end(lane, 2, 400).unwrap();
        w.async_span_end(lane, 3, 500).unwrap();
        w.async_span_begin(lane, 4, 50, "D", "io", "", 0).unwrap(); // earlier than every end
        w.async_span_end(lane, 4, 60).unwrap();
        w.finish().unwrap();

        let trace = inspect::decode(w.bytes()).unwrap();
        assert_eq!(trace.problems, vec![]);
        let mut by_name = std::collections::HashMap::new();
        for s in &trace.slices {
            let track = &trace.tracks[&s.track];
            assert_eq!(track.parent, Some(p.uuid().get()));
            assert_eq!(track.name.as_deref(), Some("Async Operations"));
            assert_eq!(track.kind, TrackKind::Other);
            assert_eq!(s.depth, 0, "async spans never nest");
            by_name.insert(s.name.clone(), (s.track, s.ts, s.dur));
        }
        assert_eq!(
            by_name["A"].1..by_name["A"].1 + by_name["A"].2.unwrap(),
            100..300
        );
        assert_ne!(by_name["A"].0, by_name["B"].0);
        assert_eq!(by_name["C"].0, by_name["A"].0, "a free track is reused");
        assert_ne!(
            by_name["D"].0, by_name["A"].0,
            "not by a span earlier than its last end"
        );
        assert_ne!(by_name["D"].0, by_name["B"].0);
        // Three tracks for at most two spans in flight plus the out-of-order one.
        let lanes = trace
            .tracks
            .values()
            .filter(|t| t.kind == TrackKind::Other)
            .count();
        assert_eq!(lanes, 3);
    }
}

#[test]
fn first_packet_clears_state_and_interned_strings_are_defined_once() {
    let (mut w, _, t) = setup(false);
    for i in 0..3 {
        w.complete_span(t, i * 10, i * 10 + 5, "same", "cat", "f.rs", 7)
            .unwrap();
    }
    w.finish().unwrap();
    let trace = w.to_trace().unwrap();
    let first = &trace.packet[0];
    assert_eq!(first.sequence_flags, Some(3));
    assert_eq!(first.first_packet_on_sequence, Some(true));
    assert!(
        trace.packet[0].track_descriptor.is_some(),
        "descriptors come first"
    );
    let mut names = 0;
    for p in &trace.packet {
        assert_eq!(p.trusted_packet_sequence_id, Some(1));
        if let Some(d) = &p.interned_data {
            names += d.event_names.len();
            assert!(d.event_names.iter().all(|n| n.iid == Some(1)));
            assert_eq!(d.source_locations[0].line_number, Some(7));
        }
        if let Some(e) = &p.track_event {
            if e.name_iid.is_some() {
                assert_eq!(p.sequence_flags.unwrap() & 2, 2, "uses interned data");
                assert_eq!(e.category_iids, vec![1]);
            }
        }
    }
    assert_eq!(names, 1);
}

#[test]
fn threads_link_to_processes_by_pid_and_ids_are_stable() {
    for compact in [false, true] {
        let mut a = Writer::with_options(Options::new().compact(compact));
        let mut b = Writer::with_options(Options::new().compact(compact));
        let pa = a.process("svc", None, "svc", &["svc", "--flag"]).unwrap();
        let pb = b.process("svc", None, "svc", &["svc", "--flag"]).unwrap();
        assert_eq!(pa.uuid(), pb.uuid(), "same key, same uuid in every run");
        assert_eq!(a.pid(pa).unwrap(), b.pid(pb).unwrap());
        let ta = a.thread(pa, "stream-1", None, "worker").unwrap();
        let other = a.process("other", None, "other", &[]).unwrap();
        let to = a.thread(other, "stream-1", None, "worker").unwrap();
        assert_ne!(ta.uuid(), to.uuid(), "thread keys are scoped by process");
        assert_ne!(a.tid(ta).unwrap(), a.tid(to).unwrap());
        assert_ne!(a.pid(pa).unwrap(), a.pid(other).unwrap());

        let trace = inspect::decode(a.bytes()).unwrap();
        let pid = a.pid(pa).unwrap();
        assert_eq!(
            trace.tracks[&pa.uuid().get()].kind,
            TrackKind::Process {
                pid,
                cmdline: vec!["svc".into(), "--flag".into()]
            }
        );
        assert_eq!(
            trace.tracks[&ta.uuid().get()].kind,
            TrackKind::Thread {
                pid,
                tid: a.tid(ta).unwrap()
            }
        );
    }
}

#[test]
fn repeated_descriptions_are_idempotent_and_conflicts_are_errors() {
    for compact in [false, true] {
        let (mut w, p, t) = setup(compact);
        let len = w.len();
        assert_eq!(w.process("p", Some(100), "proc", &[]).unwrap(), p);
        assert_eq!(w.thread(p, "t", Some(101), "thread").unwrap(), t);
        assert_eq!(w.len(), len, "nothing written again");
        assert!(matches!(
            w.process("p", Some(100), "renamed", &[]),
            Err(Error::Redefined(_))
        ));
        assert!(matches!(
            w.process("q", Some(100), "q", &[]),
            Err(Error::PidInUse(100))
        ));
        assert!(matches!(
            w.thread(p, "u", Some(101), "u"),
            Err(Error::TidInUse(101))
        ));
        assert!(matches!(
            w.process("z", Some(0), "z", &[]),
            Err(Error::ZeroId)
        ));
        assert_eq!(w.len(), len);
    }
}

#[test]
fn misuse_is_an_error_that_writes_nothing() {
    for compact in [false, true] {
        let (mut w, p, t) = setup(compact);
        let lane = w.async_lane(p, "lane").unwrap();
        w.span_begin(t, 100, "s", "", "", 0).unwrap();
        w.async_span_begin(lane, 7, 100, "a", "", "", 0).unwrap();
        let before = w.bytes().to_vec();

        let mut other = Writer::with_options(Options::new().compact(compact));
        let op = other.process("p", Some(100), "proc", &[]).unwrap();
        let ot = other.thread(op, "t", Some(101), "thread").unwrap();

        let errors = [
            w.span_end(t, 50).unwrap_err(),
            w.span_begin(t, 50, "x", "", "", 0).unwrap_err(),
            w.span_begin(t, u64::MAX, "x", "", "", 0).unwrap_err(),
            w.complete_span(t, 200, 150, "x", "", "", 0).unwrap_err(),
            w.async_span_end(lane, 8, 200).unwrap_err(),
            w.async_span_end(lane, 7, 50).unwrap_err(),
            w.async_span_begin(lane, 7, 200, "x", "", "", 0)
                .unwrap_err(),
            w.span_begin(ot, 200, "x", "", "", 0).unwrap_err(),
            w.thread(op, "t2", None, "x").unwrap_err(),
        ];
        let kinds: Vec<String> = errors
            .iter()
            .map(|e| format!("{e:?}").split(['(', ' ']).next().unwrap().into())
            .collect();
        assert_eq!(
            kinds,
            [
                "EndBeforeBegin",
                "TimestampBackwards",
                "TimestampOutOfRange",
                "EndBeforeBegin",
                "AsyncSpanNotOpen",
                "EndBeforeBegin",
                "AsyncSpanAlreadyOpen",
                "ForeignHandle",
                "ForeignHandle",
            ]
        );
        for e in &errors {
            assert!(!e.to_string().is_empty());
        }
        assert_eq!(w.bytes(), before);
        // The refused calls left async span 7 open as it was, begun at 100.
        w.async_span_end(lane, 7, 150).unwrap();
        w.span_end(t, 200).unwrap();
        assert!(matches!(w.span_end(t, 300), Err(Error::NoOpenSpan(_))));
    }
}

#[test]
fn finish_reports_open_spans_and_close_open_spans_ends_them() {
    for compact in [false, true] {
        let (mut w, p, t) = setup(compact);
        let lane = w.async_lane(p, "lane").unwrap();
        w.span_begin(t, 10, "outer", "", "", 0).unwrap();
        w.complete_span(t, 20, 30, "done", "", "", 0).unwrap();
        w.span_begin(t, 40, "inner", "", "", 0).unwrap();
        w.async_span_begin(lane, 9, 15, "io", "", "", 0).unwrap();
        let open = w.finish().unwrap();
        assert_eq!(open.len(), 3);
        assert!(matches!(
            w.close_open_spans(35),
            Err(Error::TimestampBackwards { .. })
        ));
        assert_eq!(w.close_open_spans(100).unwrap(), 3);
        assert!(w.finish().unwrap().is_empty());
        let got: Vec<_> = slices(&w).into_iter().map(|s| (s.1, s.2, s.3)).collect();
        assert_eq!(
            got,
            vec![
                ("outer".into(), 10, Some(90)),
                ("io".into(), 15, Some(85)),
                ("done".into(), 20, Some(10)),
                ("inner".into(), 40, Some(60)),
            ]
        );
    }
}

#[test]
fn streaming_writer_hands_large_writes_and_matches_buffered() {
    struct Counting(Vec<u8>, usize);
    impl std::io::Write for Counting {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.1 += 1;
            self.0.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    fn build(w: &mut impl TraceWriter) {
        let p = w.process("p", None, "p", &[]).unwrap();
        let t = w.thread(p, "t", None, "t").unwrap();
        for i in 0..50_000u64 {
            w.complete_span(t, i * 10, i * 10 + 5, "span", "cat", "f.rs", (i % 7) as u32)
                .unwrap();
        }
        w.finish().unwrap();
    }
    let mut s = StreamingPerfettoWriter::new(Counting(Vec::new(), 0));
    build(&mut s);
    let sink = s.into_inner().unwrap();
    let mut b = Writer::new();
    build(&mut b);
    assert_eq!(sink.0, b.bytes());
    let average = sink.0.len() / sink.1;
    assert!(
        average >= 32 * 1024,
        "{} writes of {average} bytes on average",
        sink.1
    );
}

#[test]
fn huge_and_empty_strings_round_trip() {
    for compact in [false, true] {
        let (mut w, _, t) = setup(compact);
        let huge = "漢".repeat(1 << 20);
        w.complete_span(t, 1, 2, &huge, &huge, &huge, u32::MAX)
            .unwrap();
        w.complete_span(t, 3, 4, "", "", "", 0).unwrap();
        w.finish().unwrap();
        let trace = inspect::decode(w.bytes()).unwrap();
        assert_eq!(trace.problems, vec![]);
        assert_eq!(trace.slices[0].name, huge);
        assert_eq!(trace.slices[0].categories, vec![huge.clone()]);
        assert_eq!(trace.slices[0].source, Some((huge.clone(), u32::MAX)));
        assert_eq!(trace.slices[1].name, "");
        assert_eq!(trace.slices[1].categories, Vec::<String>::new());
        assert_eq!(trace.slices[1].source, None);
        let decoded = <protos::Trace as prost::Message>::decode(w.bytes()).unwrap();
        assert_eq!(prost::Message::encode_to_vec(&decoded), w.bytes());
    }
}
