//! Keyed tracks: one track that several writers describe and write on, as
//! a `tracing` layer does for a span polled on several threads.

mod common;

use perfetto_trace_writer::{
    inspect, Arg, ChildOrdering, ChunkedWriter, Error, Event, Options, SiblingMerge,
    StreamingPerfettoWriter, TraceWriter, TrackOptions, TrackUuid, Value, Writer,
};
use proptest::prelude::*;

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

/// Names of tracks: short, empty, and long enough that a descriptor takes
/// the general encoder.
fn names() -> [String; 4] {
    [
        "span".into(),
        String::new(),
        "n".repeat(40),
        "long ".repeat(30),
    ]
}

/// Options of tracks: none, a span track's, every field, and a merge key
/// long enough that a descriptor takes the general encoder.
fn options<'a>(long_key: &'a str) -> [TrackOptions<'a>; 5] {
    [
        TrackOptions::default(),
        TrackOptions {
            merge: Some(SiblingMerge::None),
            ..Default::default()
        },
        TrackOptions {
            child_ordering: Some(ChildOrdering::Explicit),
            sibling_rank: Some(-3),
            merge: Some(SiblingMerge::ByKey("k")),
            description: Some("what the track shows"),
        },
        TrackOptions {
            child_ordering: Some(ChildOrdering::Chronological),
            merge: Some(SiblingMerge::ByName),
            ..Default::default()
        },
        TrackOptions {
            merge: Some(SiblingMerge::ByKey(long_key)),
            ..Default::default()
        },
    ]
}

/// One step: a keyed track described (its name's and options' places in
/// the pools, its parent: the root, the thread, or the track described
/// before; its key), with a slice on it that ends, or an instant of a name
/// new to the writer, which with a small interning cap starts a new
/// generation now and then.
#[derive(Clone, Debug)]
enum Step {
    Track {
        name: usize,
        options: usize,
        parent: u8,
        key: u64,
    },
    Instant(u16),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..4usize, 0..5usize, 0..3u8, prop_oneof![0..4u64, any::<u64>()]).prop_map(
            |(name, options, parent, key)| Step::Track { name, options, parent, key }
        ),
        1 => any::<u16>().prop_map(Step::Instant),
    ]
}

/// Runs `steps` on `w`, describing each track by a template
/// (`templates`) or by its name and options; the uuids described.
fn describe<W: TraceWriter>(w: &mut W, steps: &[Step], templates: bool) -> Vec<TrackUuid> {
    let p = w.process("svc", Some(7), "service", &[]).unwrap();
    let t = w.thread(p, "main", Some(7), "main").unwrap();
    let names = names();
    let long_key = "k".repeat(120);
    let options = options(&long_key);
    let rows = "rows";
    let key = w
        .event_key_with_args("work", "app", "src/work.rs", 3, &[rows])
        .unwrap();
    let mut uuids = Vec::new();
    let mut last = TrackUuid::ROOT;
    for (i, s) in steps.iter().enumerate() {
        let ts = 1_000 + 10 * i as u64;
        match *s {
            Step::Track {
                name,
                options: o,
                parent,
                key: k,
            } => {
                let parent = [TrackUuid::ROOT, t.uuid(), last][usize::from(parent)];
                // A track of its own each step (a uuid described again
                // with another name is a problem for the reader).
                let k = k ^ (i as u64) << 48;
                let (name, o) = (&names[name], &options[o]);
                last = match templates {
                    true => {
                        let template = w.track_template(name, o).unwrap();
                        w.keyed_track_from(template, parent, k).unwrap()
                    }
                    false => w.keyed_track(parent, k, name, o).unwrap(),
                };
                uuids.push(last);
                // Its slice by the key's short path, which shares the
                // uuid's encoding with the descriptor.
                let args = [Arg::new(rows, Value::Uint(i as u64))];
                w.begin_on_key(last, ts, key, &args).unwrap();
                w.end_on(last, ts + 5).unwrap();
            }
            Step::Instant(n) => {
                let name = format!("instant {n}");
                w.instant(t, ts, &Event::new(&name)).unwrap();
            }
        }
    }
    w.finish().unwrap();
    uuids
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Tracks described by templates write the bytes and uuids of
    /// `keyed_track` with the same names and options, on every writer kind,
    /// in either mode, through new generations of the interning tables.
    #[test]
    fn templates_write_what_keyed_track_does(
        steps in prop::collection::vec(step(), 1..40),
        compact in any::<bool>(),
        small in any::<bool>(),
    ) {
        let mut options = Options::new().compact(compact);
        if small {
            options = options.intern_limit(4, usize::MAX);
        }
        let mut strings = Writer::with_options(options);
        let uuids = describe(&mut strings, &steps, false);
        let want = strings.into_bytes();

        let mut w = Writer::with_options(options);
        prop_assert_eq!(&describe(&mut w, &steps, true), &uuids);
        prop_assert_eq!(&w.into_bytes(), &want);

        let mut s = StreamingPerfettoWriter::with_options(Vec::new(), options.flush_threshold(100));
        prop_assert_eq!(&describe(&mut s, &steps, true), &uuids);
        prop_assert_eq!(&s.into_inner().unwrap(), &want);

        let mut c = ChunkedWriter::with_options(64, options);
        prop_assert_eq!(&describe(&mut c, &steps, true), &uuids);
        let chunks = c.finish_chunks().unwrap();
        let joined: Vec<u8> = chunks.into_iter().flat_map(|c| c.data).collect();
        prop_assert_eq!(&joined, &want);

        let trace = inspect::decode(&want).unwrap();
        prop_assert!(trace.problems.is_empty(), "{:?}", trace.problems);
    }
}

/// A trace of many templates' tracks, nested, loads in the trace processor
/// without an error, each track named and placed as described.
#[test]
fn tracks_of_templates_load_cleanly() {
    let steps: Vec<Step> = (0..60u64)
        .map(|i| match i % 7 {
            6 => Step::Instant(i as u16),
            _ => Step::Track {
                name: (i % 4) as usize,
                options: (i % 5) as usize,
                parent: (i % 3) as u8,
                key: i,
            },
        })
        .collect();
    let mut w = Writer::new();
    let uuids = describe(&mut w, &steps, true);
    let bytes = w.into_bytes();
    let trace = inspect::decode(&bytes).unwrap();
    assert!(trace.problems.is_empty(), "{:?}", trace.problems);
    assert!(uuids.iter().all(|u| trace.tracks.contains_key(&u.get())));
    let sql = "select count(*) from slice where name = 'work';";
    if let Some(rows) = common::tp::clean_query(&bytes, sql) {
        assert_eq!(rows, [uuids.len().to_string()]);
    }
}

#[test]
fn a_template_of_another_writer_is_refused_and_writes_nothing() {
    let mut a = Writer::new();
    let mut b = Writer::new();
    let template = a.track_template("span", &TrackOptions::default()).unwrap();
    b.keyed_track(TrackUuid::ROOT, 1, "set up", &TrackOptions::default())
        .unwrap();
    let before = b.len();
    assert!(matches!(
        b.keyed_track_from(template, TrackUuid::ROOT, 2),
        Err(Error::ForeignTemplate)
    ));
    assert_eq!(b.len(), before);
    // Its own writer takes it.
    a.keyed_track_from(template, TrackUuid::ROOT, 2).unwrap();
}

#[test]
fn templates_refuse_long_strings_and_are_found_again() {
    let mut w = Writer::new();
    let long = "x".repeat(perfetto_trace_writer::MAX_STRING_LEN + 1);
    let of = |description, merge| TrackOptions {
        description,
        merge,
        ..Default::default()
    };
    for (name, options) in [
        (long.as_str(), of(None, None)),
        ("a", of(Some(long.as_str()), None)),
        ("a", of(None, Some(SiblingMerge::ByKey(long.as_str())))),
    ] {
        assert!(matches!(
            w.track_template(name, &options),
            Err(Error::StringTooLong(_))
        ));
    }
    assert_eq!(w.len(), 0);
    let plain = w.track_template("a", &of(None, None)).unwrap();
    assert_eq!(w.track_template("a", &of(None, None)).unwrap(), plain);
    let described = w.track_template("a", &of(Some("d"), None)).unwrap();
    assert_ne!(described, plain);
    assert_ne!(w.track_template("b", &of(None, None)).unwrap(), plain);
    assert_eq!(
        w.track_template("a", &of(Some("d"), None)).unwrap(),
        described
    );
    assert_eq!(w.len(), 0, "registering writes nothing");
}
