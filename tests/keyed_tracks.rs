//! Keyed tracks: one track that several writers describe and write on, as
//! a `tracing` layer does for a span polled on several threads.

use perfetto_trace_writer::{
    inspect, Error, Event, Options, TraceWriter, TrackOptions, TrackUuid, Writer,
};

#[test]
fn keyed_uuids_are_stable_distinct_and_depend_on_parent() {
    let a = TrackUuid::keyed(TrackUuid::ROOT, 1);
    assert_eq!(a, TrackUuid::keyed(TrackUuid::ROOT, 1));
    assert_ne!(a, TrackUuid::keyed(TrackUuid::ROOT, 2));
    assert_ne!(a, TrackUuid::keyed(a, 1));
    assert_ne!(a.get(), 0);
    assert_eq!(TrackUuid::from_raw(a.get()), a);
}

#[test]
fn a_slice_begun_by_one_writer_and_ended_by_another_is_one_slice() {
    let mut w1 = Writer::with_options(Options::new().partition(0));
    let mut w2 = Writer::with_options(Options::new().partition(1));
    let p = w1.process("p", Some(10), "proc", &[]).unwrap();
    let t1 = w1.thread(p, "1", Some(11), "one").unwrap();
    let p2 = w2.process("p", Some(10), "proc", &[]).unwrap();
    let _t2 = w2.thread(p2, "2", Some(12), "two").unwrap();

    let opts = TrackOptions::default();
    let outer = w1.keyed_track(t1.uuid(), 7, "request", &opts).unwrap();
    let inner = w1.keyed_track(outer, 8, "fetch", &opts).unwrap();
    assert_eq!(outer, TrackUuid::keyed(t1.uuid(), 7));
    w1.begin_on(outer, 100, &Event::new("request").category("app"))
        .unwrap();
    w1.begin_on(inner, 110, &Event::new("fetch")).unwrap();
    // Another writer, another sequence: its strings are its own.
    w2.instant_on(outer, 150, &Event::new("progress")).unwrap();
    w2.begin_on(outer, 160, &Event::new("poll")).unwrap();
    w2.end_on(outer, 170).unwrap();
    w2.end_on(inner, 180).unwrap();
    w1.end_on(outer, 200).unwrap();

    // The describing writer's packets first, as inspect (file order) wants.
    let mut bytes = w1.into_bytes();
    bytes.extend(w2.into_bytes());
    let trace = inspect::decode(&bytes).unwrap();
    assert!(trace.problems.is_empty(), "{:?}", trace.problems);
    assert_eq!(trace.tracks[&inner.get()].parent, Some(outer.get()));
    assert_eq!(trace.tracks[&outer.get()].parent, Some(t1.uuid().get()));
    assert_eq!(trace.tracks[&outer.get()].name.as_deref(), Some("request"));
    let mut got: Vec<_> = trace
        .slices
        .iter()
        .map(|s| (s.track, s.name.as_str(), s.ts, s.dur, s.depth))
        .collect();
    got.sort_by_key(|g| (g.0, g.2));
    let mut want = vec![
        (outer.get(), "request", 100, Some(100), 0),
        (outer.get(), "progress", 150, Some(0), 1),
        (outer.get(), "poll", 160, Some(10), 1),
        (inner.get(), "fetch", 110, Some(70), 0),
    ];
    want.sort_by_key(|g| (g.0, g.2));
    assert_eq!(got, want);
}

#[test]
fn keyed_calls_refuse_bad_input_and_write_nothing() {
    let mut w = Writer::new();
    let t = TrackUuid::keyed(TrackUuid::ROOT, 1);
    let before = w.len();
    assert!(matches!(
        w.begin_on(t, u64::MAX, &Event::new("x")),
        Err(Error::TimestampOutOfRange(_))
    ));
    assert!(matches!(
        w.end_on(t, u64::MAX),
        Err(Error::TimestampOutOfRange(_))
    ));
    let long = "x".repeat(perfetto_trace_writer::MAX_STRING_LEN + 1);
    assert!(matches!(
        w.instant_on(t, 1, &Event::new(&long)),
        Err(Error::StringTooLong(_))
    ));
    assert!(matches!(
        w.keyed_track(TrackUuid::ROOT, 1, &long, &TrackOptions::default()),
        Err(Error::StringTooLong(_))
    ));
    assert_eq!(w.len(), before);
}
