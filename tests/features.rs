//! Instants, counters, flows, typed arguments and named tracks: what the
//! trace processor shows for each, in both modes and from both writers.

use perfetto_trace_writer::inspect::{self, ArgValue, Trace, TrackKind};
use perfetto_trace_writer::{
    Arg, ChildOrdering, CounterOptions, CounterUnit, Error, Event, Options, ParentTrack,
    SiblingMerge, StreamingPerfettoWriter, TraceWriter, TrackOptions, Value, Writer, MAX_ARG_DEPTH,
};

type Streaming = StreamingPerfettoWriter<Vec<u8>>;

/// Runs a scenario through both writers in both modes, checks that the
/// writers agree and the trace is clean, and returns each mode's trace.
fn run(buffered: fn(&mut Writer), streaming: fn(&mut Streaming)) -> [Trace; 2] {
    let traces = [false, true].map(|compact| {
        let options = Options::new().compact(compact);
        let mut w = Writer::with_options(options);
        buffered(&mut w);
        let mut s = StreamingPerfettoWriter::with_options(Vec::new(), options.flush_threshold(100));
        streaming(&mut s);
        assert_eq!(s.into_inner().unwrap(), w.bytes(), "writers agree");
        let t = inspect::decode(w.bytes()).unwrap();
        assert_eq!(t.problems, vec![]);
        t
    });
    assert_eq!(
        traces[0].slices, traces[1].slices,
        "both modes show the same"
    );
    assert_eq!(traces[0].counters, traces[1].counters);
    assert_eq!(traces[0].flows, traces[1].flows);
    traces
}

macro_rules! both {
    ($f:ident) => {
        run($f::<Writer>, $f::<Streaming>)
    };
}

fn instants<W: TraceWriter>(w: &mut W) {
    let p = w.process("p", Some(10), "p", &[]).unwrap();
    let t = w.thread(p, "t", Some(11), "t").unwrap();
    let lane = w.async_lane(p, "io").unwrap();
    let named = w.track(p, "markers", &TrackOptions::default()).unwrap();
    w.span_begin(t, 100, "outer", "", "", 0).unwrap();
    w.instant(
        t,
        150,
        &Event::new("inside").category("mark").location("a.rs", 3),
    )
    .unwrap();
    w.span_end(t, 200).unwrap();
    w.instant(t, 200, &Event::new("after")).unwrap();
    w.instant(t, 200, &Event::new("after, same time")).unwrap();
    w.instant(p, 120, &Event::new("on process")).unwrap();
    w.instant(lane, 130, &Event::new("on lane")).unwrap();
    w.instant(named, 140, &Event::new("on named track"))
        .unwrap();
    assert!(matches!(
        w.instant(t, 190, &Event::new("late")),
        Err(Error::TimestampBackwards { .. })
    ));
    w.finish().unwrap();
}

#[test]
fn instants_land_on_their_tracks_at_the_depth_the_trace_processor_gives() {
    let [trace, _] = both!(instants);
    let find = |n: &str| trace.slices.iter().find(|s| s.name == n).unwrap();
    let inside = find("inside");
    assert_eq!((inside.ts, inside.dur, inside.depth), (150, Some(0), 1));
    assert_eq!(inside.categories, vec!["mark".to_owned()]);
    assert_eq!(inside.source, Some(("a.rs".into(), 3)));
    assert_eq!(
        (find("after").depth, find("after, same time").depth),
        (0, 1)
    );
    let track_name = |n: &str| trace.tracks[&find(n).track].name.clone().unwrap();
    assert_eq!(track_name("on process"), "p");
    assert_eq!(track_name("on lane"), "io");
    assert_eq!(track_name("on named track"), "markers");
    assert_eq!(track_name("inside"), "t");
}

fn counters<W: TraceWriter>(w: &mut W) {
    let p = w.process("p", Some(10), "p", &[]).unwrap();
    let t = w.thread(p, "t", Some(11), "t").unwrap();
    let bytes = CounterOptions {
        unit: CounterUnit::Bytes,
        multiplier: Some(1024),
        ..Default::default()
    };
    let heap = w.counter_track(p, "heap (KiB)", &bytes).unwrap();
    let delta = CounterOptions {
        unit: CounterUnit::Count,
        incremental: true,
        ..Default::default()
    };
    let queue = w
        .counter_track(ParentTrack::Root, "queue depth", &delta)
        .unwrap();
    let load = CounterOptions {
        unit: CounterUnit::Named("load"),
        ..Default::default()
    };
    let cpu = w.counter_track(t, "cpu", &load).unwrap();
    w.counter(heap, 100, 4_i64).unwrap();
    w.counter(heap, 200, 6_i64).unwrap();
    w.counter(queue, 100, 3_i64).unwrap();
    w.counter(queue, 150, -1_i64).unwrap();
    w.counter(queue, 300, 5_i64).unwrap();
    w.counter(cpu, 100, 0.25_f64).unwrap();
    w.counter(cpu, 400, 0.75_f64).unwrap();
    assert!(matches!(
        w.counter(cpu, u64::MAX, 1.0),
        Err(Error::TimestampOutOfRange(_))
    ));
    w.finish().unwrap();
}

#[test]
fn counters_carry_units_multipliers_and_incremental_values() {
    let [trace, _] = both!(counters);
    let series = |name: &str| -> Vec<(u64, f64)> {
        let (&uuid, _) = trace
            .tracks
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some(name))
            .unwrap();
        trace
            .counters
            .iter()
            .filter(|c| c.track == uuid)
            .map(|c| (c.ts, c.value))
            .collect()
    };
    assert_eq!(series("heap (KiB)"), vec![(100, 4096.0), (200, 6144.0)]);
    assert_eq!(
        series("queue depth"),
        vec![(100, 3.0), (150, 2.0), (300, 7.0)]
    );
    assert_eq!(series("cpu"), vec![(100, 0.25), (400, 0.75)]);
    let cpu = trace
        .tracks
        .values()
        .find(|t| t.name.as_deref() == Some("cpu"))
        .unwrap();
    assert_eq!(
        cpu.counter.as_ref().unwrap().unit_name.as_deref(),
        Some("load")
    );
    let queue = trace
        .tracks
        .values()
        .find(|t| t.name.as_deref() == Some("queue depth"))
        .unwrap();
    assert_eq!(queue.parent, None, "at the root");
}

fn flows<W: TraceWriter>(w: &mut W) {
    let p = w.process("p", Some(10), "p", &[]).unwrap();
    let a = w.thread(p, "a", Some(11), "a").unwrap();
    let b = w.thread(p, "b", Some(12), "b").unwrap();
    let lane = w.async_lane(p, "io").unwrap();
    // A request handed from thread a to an async operation, then to thread b.
    w.span_begin_with(a, 100, &Event::new("receive").flows(&[7]))
        .unwrap();
    w.span_end(a, 150).unwrap();
    w.async_span_begin_with(lane, 1, 160, &Event::new("fetch").flows(&[7]))
        .unwrap();
    w.async_span_end(lane, 1, 300).unwrap();
    w.complete_span_with(b, 310, 400, &Event::new("reply").terminating_flows(&[7]))
        .unwrap();
    w.instant(b, 500, &Event::new("unrelated").flows(&[8]))
        .unwrap();
    w.finish().unwrap();
}

#[test]
fn flows_tie_events_across_threads_and_lanes() {
    let [trace, _] = both!(flows);
    let index = |n: &str| trace.slices.iter().position(|s| s.name == n).unwrap();
    let edges: Vec<_> = trace.flows.iter().map(|f| (f.id, f.from, f.to)).collect();
    assert_eq!(
        edges,
        vec![
            (7, index("receive"), index("fetch")),
            (7, index("fetch"), index("reply"))
        ]
    );
}

fn args<W: TraceWriter>(w: &mut W) {
    let p = w.process("p", Some(10), "p", &[]).unwrap();
    let t = w.thread(p, "t", Some(11), "t").unwrap();
    let lane = w.async_lane(p, "io").unwrap();
    let inner = [
        Arg::new("rows", Value::Uint(42)),
        Arg::new("ok", Value::Bool(true)),
    ];
    let list = [
        Value::Int(-1),
        Value::Double(0.5),
        Value::Str("x"),
        Value::Dict(&inner),
    ];
    let all = [
        Arg::new("query", Value::Str("select 1")),
        Arg::new("stats", Value::Dict(&inner)),
        Arg::new("list", Value::Array(&list)),
    ];
    w.span_begin_with(t, 100, &Event::new("sql").args(&all))
        .unwrap();
    w.span_end(t, 200).unwrap();
    // The same names again: defined once per sequence.
    w.instant(t, 300, &Event::new("again").args(&inner))
        .unwrap();
    // Async spans carry their id and their parent's.
    let ids = [
        Arg::new("span_id", Value::Uint(2)),
        Arg::new("parent_span_id", Value::Uint(1)),
    ];
    w.async_span_begin_with(lane, 2, 120, &Event::new("child op").args(&ids))
        .unwrap();
    w.async_span_end(lane, 2, 180).unwrap();
    w.finish().unwrap();
}

#[test]
fn typed_arguments_nest_and_their_names_are_interned() {
    let [trace, _] = both!(args);
    let find = |n: &str| trace.slices.iter().find(|s| s.name == n).unwrap();
    let got: Vec<_> = find("sql")
        .args
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("query", ArgValue::Str("select 1".into())),
            ("stats.rows", ArgValue::Uint(42)),
            ("stats.ok", ArgValue::Bool(true)),
            ("list[0]", ArgValue::Int(-1)),
            ("list[1]", ArgValue::Double(0.5)),
            ("list[2]", ArgValue::Str("x".into())),
            ("list[3].rows", ArgValue::Uint(42)),
            ("list[3].ok", ArgValue::Bool(true)),
        ]
    );
    assert_eq!(find("again").args.len(), 2);
    assert_eq!(
        find("child op").args,
        vec![
            ("span_id".into(), ArgValue::Uint(2)),
            ("parent_span_id".into(), ArgValue::Uint(1))
        ]
    );

    // Each name is defined once per sequence.
    let mut w = Writer::new();
    args(&mut w);
    let defined: Vec<String> = w
        .to_trace()
        .unwrap()
        .packet
        .iter()
        .filter_map(|p| p.interned_data.as_ref())
        .flat_map(|d| {
            d.debug_annotation_names
                .iter()
                .map(|n| n.name.clone().unwrap())
        })
        .collect();
    assert_eq!(
        defined,
        [
            "query",
            "stats",
            "rows",
            "ok",
            "list",
            "span_id",
            "parent_span_id"
        ]
    );
}

#[test]
fn arguments_nested_too_deep_are_refused() {
    let mut w = Writer::new();
    let p = w.process("p", Some(10), "p", &[]).unwrap();
    let t = w.thread(p, "t", Some(11), "t").unwrap();
    // Nest arrays MAX_ARG_DEPTH deep through leaked slices built inside out.
    let mut value = Value::Int(1);
    for _ in 0..MAX_ARG_DEPTH {
        value = Value::Array(Box::leak(Box::new([value])));
    }
    let args = [Arg::new("deep", value)];
    let before = w.len();
    assert!(matches!(
        w.span_begin_with(t, 1, &Event::new("x").args(&args)),
        Err(Error::ArgsTooDeep)
    ));
    assert_eq!(w.len(), before);
}

fn named<W: TraceWriter>(w: &mut W) {
    let p = w.process("p", Some(10), "p", &[]).unwrap();
    let explicit = TrackOptions {
        child_ordering: Some(ChildOrdering::Explicit),
        ..Default::default()
    };
    let group = w.track(ParentTrack::Root, "group", &explicit).unwrap();
    assert_eq!(
        w.track(ParentTrack::Root, "group", &explicit).unwrap(),
        group,
        "same track"
    );
    assert!(matches!(
        w.track(ParentTrack::Root, "group", &TrackOptions::default()),
        Err(Error::Redefined(_))
    ));
    let first = TrackOptions {
        sibling_rank: Some(1),
        merge: Some(SiblingMerge::None),
        ..Default::default()
    };
    let keyed = TrackOptions {
        sibling_rank: Some(2),
        merge: Some(SiblingMerge::ByKey("k")),
        ..Default::default()
    };
    let a = w.track(p, "a", &first).unwrap();
    let b = w.track(p, "b", &keyed).unwrap();
    w.instant(group, 1, &Event::new("g")).unwrap();
    w.instant(a, 2, &Event::new("a")).unwrap();
    w.instant(b, 3, &Event::new("b")).unwrap();
    w.finish().unwrap();
}

#[test]
fn named_tracks_carry_their_ordering_and_merge_options() {
    let [trace, _] = both!(named);
    let track = |n: &str| {
        trace
            .tracks
            .values()
            .find(|t| t.name.as_deref() == Some(n))
            .unwrap()
            .clone()
    };
    assert_eq!(track("group").display, (Some(3), None, None, None));
    assert_eq!(track("group").parent, None);
    assert_eq!(track("a").display, (None, Some(1), Some(2), None));
    assert_eq!(
        track("b").display,
        (None, Some(2), Some(3), Some("k".into()))
    );
    assert_eq!(track("b").kind, TrackKind::Other);
    assert_eq!(trace.slices.len(), 3);
}
