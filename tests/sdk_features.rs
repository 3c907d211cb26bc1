//! What Perfetto's own SDK can say beyond spans: track descriptions,
//! correlation ids, log messages. Each scenario runs on the three writers in
//! both modes; the writers must agree byte for byte, the trace must read
//! back clean, and both modes must show the same.
//!
//! Set `SDK_FEATURES_OUT=DIR` to keep the traces (for the trace processor).

use perfetto_trace_writer::inspect::{self, ArgValue, Frame, Trace};
use perfetto_trace_writer::{
    Arg, AsyncParent, ChunkedWriter, Clock, Correlation, CounterOptions, CounterSample, Error,
    Event, LaneOptions, LogSeverity, Options, ParentTrack, ProcessOptions, StackFrame,
    ThreadOptions, TraceWriter, TrackOptions, Value, Writer,
};

#[path = "common/writers.rs"]
mod writers;

use writers::Streaming;

/// Runs a scenario on every writer in both modes; each mode's trace.
fn run(
    name: &str,
    buffered: fn(&mut Writer),
    streaming: fn(&mut Streaming),
    chunked: fn(&mut ChunkedWriter),
) -> [Trace; 2] {
    run_with(Options::new(), name, buffered, streaming, chunked)
}

/// [`run`] from other base options.
fn run_with(
    base: Options,
    name: &str,
    buffered: fn(&mut Writer),
    streaming: fn(&mut Streaming),
    chunked: fn(&mut ChunkedWriter),
) -> [Trace; 2] {
    let traces = writers::run_all(base, buffered, streaming, chunked);
    if let Some(dir) = std::env::var_os("SDK_FEATURES_OUT") {
        for (mode, bytes) in ["default", "compact"].iter().zip(&traces.bytes) {
            let path = std::path::Path::new(&dir).join(format!("{name}-{mode}.pftrace"));
            std::fs::write(path, bytes).unwrap();
        }
    }
    traces.decoded
}

macro_rules! all_writers {
    ($f:ident) => {
        run(
            stringify!($f),
            $f::<Writer>,
            $f::<Streaming>,
            $f::<ChunkedWriter>,
        )
    };
}

fn descriptions<W: TraceWriter>(w: &mut W) {
    let about_p = ProcessOptions {
        description: Some("answers queries"),
        ..Default::default()
    };
    let p = w.process_with("p", Some(10), "svc", &[], &about_p).unwrap();
    // The same description again is the same process; another is refused.
    assert_eq!(
        w.process_with("p", Some(10), "svc", &[], &about_p).unwrap(),
        p
    );
    assert!(matches!(
        w.process("p", Some(10), "svc", &[]),
        Err(Error::Redefined(_))
    ));
    let about_t = ThreadOptions {
        description: Some("parses requests"),
        ..Default::default()
    };
    let t = w.thread_with(p, "t", Some(11), "main", &about_t).unwrap();
    assert!(matches!(
        w.thread_with(p, "t", Some(11), "main", &ThreadOptions::default()),
        Err(Error::Redefined(_))
    ));
    let lane = w
        .async_lane_with(
            p,
            "io",
            &LaneOptions {
                description: Some("block reads"),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(matches!(w.async_lane(p, "io"), Err(Error::Redefined(_))));
    let named = w
        .track(
            ParentTrack::Root,
            "deploys",
            &TrackOptions {
                description: Some("one instant per release"),
                ..Default::default()
            },
        )
        .unwrap();
    let counter = w
        .counter_track(
            p,
            "heap",
            &CounterOptions {
                track: TrackOptions {
                    description: Some("bytes live after each collection"),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .unwrap();
    let plain = w.thread(p, "u", Some(12), "plain").unwrap();
    for i in 0..6 {
        let ts = 100 + i * 100;
        // Two spans in flight at once: the lane has two tracks.
        w.async_span_begin(lane, 2 * i, ts, "read", "", "", 0)
            .unwrap();
        w.async_span_begin(lane, 2 * i + 1, ts + 1, "read", "", "", 0)
            .unwrap();
        w.async_span_end(lane, 2 * i, ts + 50).unwrap();
        w.async_span_end(lane, 2 * i + 1, ts + 60).unwrap();
        w.complete_span(t, ts, ts + 10, "parse", "", "", 0).unwrap();
        w.complete_span(plain, ts, ts + 10, "idle", "", "", 0)
            .unwrap();
        w.counter(counter, ts, i as i64).unwrap();
    }
    w.instant(lane, 150, &Event::new("retry")).unwrap();
    w.instant(named, 50, &Event::new("v1")).unwrap();
    let long = "d".repeat(perfetto_trace_writer::MAX_STRING_LEN + 1);
    let too_long = TrackOptions {
        description: Some(&long),
        ..Default::default()
    };
    assert!(matches!(
        w.track(ParentTrack::Root, "x", &too_long),
        Err(Error::StringTooLong(_))
    ));
    w.finish().unwrap();
}

#[test]
fn every_kind_of_track_carries_its_description() {
    let [t, _] = all_writers!(descriptions);
    let described = |name: &str| -> Vec<Option<&str>> {
        t.tracks
            .values()
            .filter(|tr| tr.name.as_deref() == Some(name))
            .map(|tr| tr.description.as_deref())
            .collect()
    };
    assert_eq!(described("svc"), [Some("answers queries")]);
    assert_eq!(described("main"), [Some("parses requests")]);
    assert_eq!(described("plain"), [None]);
    assert_eq!(described("deploys"), [Some("one instant per release")]);
    assert_eq!(
        described("heap"),
        [Some("bytes live after each collection")]
    );
    // The lane's own track and its two span tracks.
    assert_eq!(described("io"), [Some("block reads"); 3]);
    assert!(!t.tracks.values().any(|tr| tr.name.as_deref() == Some("x")));
}

fn correlations<W: TraceWriter>(w: &mut W) {
    let p = w.process("p", Some(10), "svc", &[]).unwrap();
    let t = w.thread(p, "t", Some(11), "main").unwrap();
    let u = w.thread(p, "u", Some(12), "worker").unwrap();
    let lane = w.async_lane(p, "io").unwrap();
    let marks = w.track(p, "marks", &TrackOptions::default()).unwrap();
    for i in 0..12u64 {
        let ts = 1_000 * (i + 1);
        // Names repeat (interned once per sequence), ids vary.
        let name = format!("req-{}", i % 3);
        let by_name = Event::new("handle").correlation(Correlation::Name(&name));
        w.span_begin_with(t, ts, &by_name).unwrap();
        w.complete_span_with(
            u,
            ts + 10,
            ts + 20,
            &Event::new("query").correlation(Correlation::Name(&name)),
        )
        .unwrap();
        w.span_end(t, ts + 100).unwrap();
        let by_id = Event::new("fetch").correlation(Correlation::Id(i));
        w.async_span_begin_with(lane, i, ts + 5, &by_id).unwrap();
        w.async_span_end(lane, i, ts + 50).unwrap();
        w.instant(
            marks,
            ts,
            &Event::new("mark").correlation(Correlation::Id(7)),
        )
        .unwrap();
    }
    // A plain span has none.
    w.complete_span(t, 50_000, 50_001, "plain", "", "", 0)
        .unwrap();
    let long = "c".repeat(perfetto_trace_writer::MAX_STRING_LEN + 1);
    assert!(matches!(
        w.span_begin_with(
            t,
            60_000,
            &Event::new("x").correlation(Correlation::Name(&long))
        ),
        Err(Error::StringTooLong(_))
    ));
    w.finish().unwrap();
}

#[test]
fn slices_carry_their_correlation() {
    let [t, _] = all_writers!(correlations);
    let of = |name: &str| -> Vec<Option<&str>> {
        t.slices
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.correlation.as_deref())
            .collect()
    };
    let names: Vec<String> = (0..12).map(|i| format!("req-{}", i % 3)).collect();
    let names: Vec<Option<&str>> = names.iter().map(|s| Some(s.as_str())).collect();
    assert_eq!(of("handle"), names);
    assert_eq!(of("query"), names);
    let ids: Vec<String> = (0..12).map(|i| format!("tp:#{i}")).collect();
    let ids: Vec<Option<&str>> = ids.iter().map(|s| Some(s.as_str())).collect();
    assert_eq!(of("fetch"), ids);
    assert_eq!(of("mark"), [Some("tp:#7"); 12]);
    assert_eq!(of("plain"), [None]);
    assert!(of("x").is_empty());
}

fn logs<W: TraceWriter>(w: &mut W) {
    let p = w.process("p", Some(10), "svc", &[]).unwrap();
    let t = w.thread(p, "t", Some(11), "main").unwrap();
    let u = w.thread(p, "u", Some(12), "worker").unwrap();
    let lane = w.async_lane(p, "io").unwrap();
    let marks = w.track(t, "marks", &TrackOptions::default()).unwrap();
    let beside = w.track(p, "beside", &TrackOptions::default()).unwrap();
    let severities = [
        LogSeverity::Verbose,
        LogSeverity::Debug,
        LogSeverity::Info,
        LogSeverity::Warn,
        LogSeverity::Error,
        LogSeverity::Fatal,
    ];
    for i in 0..12u64 {
        let ts = 1_000 * (i + 1);
        let severity = severities[i as usize % 6];
        let body = format!("line {}", i % 4);
        w.span_begin(t, ts, "request", "", "", 0).unwrap();
        // Inside the span, with a source location; then one without.
        let line = Event::new("log")
            .location("src/server.rs", 40 + i as u32 % 2)
            .log(severity, &body);
        w.instant(t, ts + 10, &line).unwrap();
        w.instant(
            u,
            ts + 20,
            &Event::new("log").log(LogSeverity::Info, "tick"),
        )
        .unwrap();
        // A named track under a thread: the line is the thread's.
        let marked = Event::new("log").log(LogSeverity::Warn, "marked");
        w.instant(marks, ts + 25, &marked).unwrap();
        // A span's begin may carry one too.
        w.span_begin_with(
            t,
            ts + 30,
            &Event::new("flush").log(LogSeverity::Debug, "flushing"),
        )
        .unwrap();
        w.span_end(t, ts + 40).unwrap();
        w.span_end(t, ts + 100).unwrap();
    }
    // Off a thread: refused, nothing written.
    let line = Event::new("log").log(LogSeverity::Error, "lost");
    for e in [
        w.instant(p, 1, &line),
        w.instant(lane, 1, &line),
        w.instant(beside, 1, &line),
        w.async_span_begin_with(lane, 1, 1, &line),
    ] {
        assert!(matches!(e, Err(Error::LogOffThread(_))), "{e:?}");
    }
    assert!(w.open_spans().is_empty());
    w.finish().unwrap();
}

#[test]
fn log_lines_reach_the_log_table_with_severity_body_and_location() {
    let [t, _] = all_writers!(logs);
    let main = t
        .tracks
        .iter()
        .find(|(_, tr)| tr.name.as_deref() == Some("main"))
        .map(|(&u, _)| u)
        .unwrap();
    let from_main: Vec<_> = t
        .logs
        .iter()
        .filter(|l| l.track == main && l.body.starts_with("line"))
        .map(|l| (l.ts, l.severity, l.body.clone(), l.source.clone()))
        .collect();
    let want: Vec<_> = (0..12u64)
        .map(|i| {
            (
                1_000 * (i + 1) + 10,
                2 + (i % 6) as i32,
                format!("line {}", i % 4),
                Some(("src/server.rs".to_owned(), 40 + i as u32 % 2)),
            )
        })
        .collect();
    assert_eq!(from_main, want);
    assert_eq!(t.logs.iter().filter(|l| l.body == "tick").count(), 12);
    let marked: Vec<_> = t.logs.iter().filter(|l| l.body == "marked").collect();
    assert_eq!(marked.len(), 12);
    assert!(marked
        .iter()
        .all(|l| t.tracks[&l.track].parent == Some(main)));
    let flushing: Vec<_> = t.logs.iter().filter(|l| l.body == "flushing").collect();
    assert_eq!(flushing.len(), 12);
    assert!(flushing
        .iter()
        .all(|l| l.severity == 3 && l.source.is_none()));
    assert!(!t.logs.iter().any(|l| l.body == "lost"));
    // Each log instant is a slice on its thread too, nested in its span.
    let logs_in_spans = t
        .slices
        .iter()
        .filter(|s| s.name == "log" && s.track == main)
        .all(|s| s.depth == 1);
    assert!(logs_in_spans);
}

fn counters_beside_slices<W: TraceWriter>(w: &mut W) {
    let p = w.process("p", Some(10), "svc", &[]).unwrap();
    let t = w.thread(p, "t", Some(11), "main").unwrap();
    let lane = w.async_lane(p, "io").unwrap();
    let shared = CounterOptions {
        y_axis_share_key: Some("memory"),
        ..Default::default()
    };
    let cpu = w
        .counter_track(t, "cpu ns", &CounterOptions::default())
        .unwrap();
    let heap = w.counter_track(p, "heap", &shared).unwrap();
    let rss = w.counter_track(p, "rss", &shared).unwrap();
    let bytes = w
        .counter_track(p, "bytes read", &CounterOptions::default())
        .unwrap();
    let sum = w
        .counter_track(
            p,
            "sum",
            &CounterOptions {
                incremental: true,
                ..Default::default()
            },
        )
        .unwrap();
    for i in 0..10u64 {
        let ts = 1_000 * (i + 1);
        let v = i as i64;
        let begin = [
            (cpu, CounterSample::Int(100 * v)),
            (heap, CounterSample::Double(0.5 + v as f64)),
        ];
        w.span_begin_with(t, ts, &Event::new("work").counters(&begin))
            .unwrap();
        w.complete_span_with(
            t,
            ts + 10,
            ts + 20,
            &Event::new("step").counters(&[(rss, CounterSample::Int(7 * v))]),
        )
        .unwrap();
        let end = [
            (heap, CounterSample::Double(0.25 + v as f64)),
            (cpu, CounterSample::Int(100 * v + 50)),
        ];
        w.span_end_with_counters(t, ts + 100, &end).unwrap();
        w.async_span_begin_with(
            lane,
            i,
            ts + 5,
            &Event::new("read").counters(&[(bytes, CounterSample::Int(10 * v))]),
        )
        .unwrap();
        w.async_span_end_with_counters(
            lane,
            i,
            ts + 50,
            &[(bytes, CounterSample::Int(10 * v + 5))],
        )
        .unwrap();
    }
    // Ends that cannot be: refused, nothing written.
    assert!(matches!(
        w.span_end_with_counters(t, 90_000, &[(cpu, CounterSample::Int(1))]),
        Err(Error::NoOpenSpan(_))
    ));
    assert!(matches!(
        w.async_span_end_with_counters(lane, 99, 90_000, &[(cpu, CounterSample::Int(1))]),
        Err(Error::AsyncSpanNotOpen { .. })
    ));
    // Incremental counters sum per sequence in the trace processor: refused.
    assert!(matches!(
        w.instant(
            t,
            90_000,
            &Event::new("x").counters(&[(sum, CounterSample::Int(1))])
        ),
        Err(Error::IncrementalCounterOnEvent(_))
    ));
    let nine = [(cpu, CounterSample::Int(1)); 9];
    assert!(matches!(
        w.instant(t, 90_000, &Event::new("x").counters(&nine)),
        Err(Error::TooManyCounters(9))
    ));
    // Eight, zeros among them: every one reaches its track.
    let eight = [
        (cpu, CounterSample::Int(0)),
        (heap, CounterSample::Double(0.0)),
        (rss, CounterSample::Int(3)),
        (bytes, CounterSample::Double(2.5)),
        (cpu, CounterSample::Int(-1)),
        (heap, CounterSample::Double(-0.5)),
        (rss, CounterSample::Int(0)),
        (bytes, CounterSample::Double(4.0)),
    ];
    w.instant(t, 91_000, &Event::new("eight").counters(&eight))
        .unwrap();
    let mut other = Writer::new();
    let q = other.process("q", Some(20), "other", &[]).unwrap();
    let foreign = other
        .counter_track(q, "x", &CounterOptions::default())
        .unwrap();
    let stray = [(foreign, CounterSample::Int(1))];
    w.span_begin(t, 95_000, "open", "", "", 0).unwrap();
    assert!(matches!(
        w.span_begin_with(t, 95_000, &Event::new("x").counters(&stray)),
        Err(Error::ForeignHandle(_))
    ));
    assert!(matches!(
        w.span_end_with_counters(t, 95_001, &stray),
        Err(Error::ForeignHandle(_))
    ));
    assert!(matches!(
        w.instant(p, 95_000, &Event::new("x").counters(&stray)),
        Err(Error::ForeignHandle(_))
    ));
    w.span_end(t, 95_002).unwrap();
    w.finish().unwrap();
}

#[test]
fn counter_values_on_slices_reach_their_counter_tracks() {
    let [t, _] = all_writers!(counters_beside_slices);
    let track = |name: &str| {
        t.tracks
            .iter()
            .find(|(_, tr)| tr.name.as_deref() == Some(name))
            .map(|(&u, _)| u)
            .unwrap()
    };
    let values = |name: &str| -> Vec<(u64, f64)> {
        let u = track(name);
        t.counters
            .iter()
            .filter(|c| c.track == u)
            .map(|c| (c.ts, c.value))
            .collect()
    };
    let cpu: Vec<_> = (0..10u64)
        .flat_map(|i| {
            let ts = 1_000 * (i + 1);
            [(ts, 100.0 * i as f64), (ts + 100, 100.0 * i as f64 + 50.0)]
        })
        .collect();
    assert_eq!(values("cpu ns")[..20], cpu);
    let heap: Vec<_> = (0..10u64)
        .flat_map(|i| {
            let ts = 1_000 * (i + 1);
            [(ts, 0.5 + i as f64), (ts + 100, 0.25 + i as f64)]
        })
        .collect();
    assert_eq!(values("heap")[..20], heap);
    let rss: Vec<_> = (0..10u64)
        .map(|i| (1_000 * (i + 1) + 10, 7.0 * i as f64))
        .collect();
    assert_eq!(values("rss")[..10], rss);
    let mut bytes: Vec<_> = (0..10u64)
        .flat_map(|i| {
            let ts = 1_000 * (i + 1);
            [(ts + 5, 10.0 * i as f64), (ts + 50, 10.0 * i as f64 + 5.0)]
        })
        .collect();
    bytes.extend([(91_000, 2.5), (91_000, 4.0)]);
    assert_eq!(values("bytes read"), bytes);
    let at = |name: &str| -> Vec<f64> {
        let u = track(name);
        let mut v: Vec<f64> = t
            .counters
            .iter()
            .filter(|c| c.track == u && c.ts == 91_000)
            .map(|c| c.value)
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    assert_eq!(at("cpu ns"), [-1.0, 0.0]);
    assert_eq!(at("heap"), [-0.5, 0.0]);
    assert_eq!(at("rss"), [0.0, 3.0]);
    let key = |name: &str| {
        t.tracks[&track(name)]
            .counter
            .as_ref()
            .and_then(|c| c.y_axis_share_key.clone())
    };
    assert_eq!(key("heap").as_deref(), Some("memory"));
    assert_eq!(key("rss").as_deref(), Some("memory"));
    assert_eq!(key("cpu ns"), None);
    // The slices themselves are as without counters.
    let work: Vec<_> = t.slices.iter().filter(|s| s.name == "work").collect();
    assert_eq!(work.len(), 10);
    assert!(work.iter().all(|s| s.dur == Some(100) && s.depth == 0));
    assert!(!t.slices.iter().any(|s| s.name == "x"));
}

/// 2026-01-01T00:00:00Z, in nanoseconds since the Unix epoch.
const NEW_YEAR: u64 = 1_767_225_600_000_000_000;

fn wall_clock<W: TraceWriter>(w: &mut W) {
    let p = w.process("p", Some(10), "svc", &[]).unwrap();
    let t = w.thread(p, "t", Some(11), "main").unwrap();
    // Refused: no BOOTTIME reading, a clock twice, a reading out of range.
    for bad in [
        &[(Clock::Realtime, NEW_YEAR)][..],
        &[
            (Clock::Boottime, 1),
            (Clock::Realtime, 2),
            (Clock::Realtime, 3),
        ],
    ] {
        assert!(matches!(
            w.clock_snapshot(bad),
            Err(Error::BadClockSnapshot)
        ));
    }
    assert!(matches!(
        w.clock_snapshot(&[(Clock::Boottime, u64::MAX)]),
        Err(Error::TimestampOutOfRange(_))
    ));
    w.clock_snapshot(&[
        (Clock::Boottime, 1_000),
        (Clock::Realtime, NEW_YEAR),
        (Clock::Monotonic, 900),
    ])
    .unwrap();
    for i in 0..10u64 {
        w.complete_span(t, 1_000 + i * 100, 1_050 + i * 100, "tick", "", "", 0)
            .unwrap();
    }
    // A second snapshot: REALTIME was stepped a second forward.
    w.clock_snapshot(&[
        (Clock::Boottime, 5_000),
        (Clock::Realtime, NEW_YEAR + 1_000_004_000),
    ])
    .unwrap();
    w.complete_span(t, 6_000, 6_500, "later", "", "", 0)
        .unwrap();
    w.finish().unwrap();
}

#[test]
fn clock_snapshots_turn_trace_times_into_dates() {
    let [t, c] = all_writers!(wall_clock);
    assert_eq!(t.clock_snapshots, c.clock_snapshots);
    assert_eq!(
        t.clock_snapshots,
        [
            vec![(6, 1_000), (1, NEW_YEAR), (3, 900)],
            vec![(6, 5_000), (1, NEW_YEAR + 1_000_004_000)],
        ]
    );
    let first = &t.slices[0];
    assert_eq!(t.realtime(first.ts), Some(NEW_YEAR));
    let later = t.slices.iter().find(|s| s.name == "later").unwrap();
    assert_eq!(t.realtime(later.ts), Some(NEW_YEAR + 1_000_005_000));
}

/// Spans stamped in REALTIME; a snapshot relating it to MONOTONIC.
fn realtime_stamps<W: TraceWriter>(w: &mut W) {
    let p = w.process("p", Some(10), "svc", &[]).unwrap();
    let t = w.thread(p, "t", Some(11), "main").unwrap();
    let lane = w.async_lane(p, "io").unwrap();
    let heap = w
        .counter_track(p, "heap", &CounterOptions::default())
        .unwrap();
    // The snapshot needs the writer's own clock.
    assert!(matches!(
        w.clock_snapshot(&[(Clock::Boottime, 1), (Clock::Monotonic, 2)]),
        Err(Error::BadClockSnapshot)
    ));
    w.clock_snapshot(&[(Clock::Realtime, NEW_YEAR), (Clock::Monotonic, 77)])
        .unwrap();
    for i in 0..10u64 {
        let ts = NEW_YEAR + i * 1_000;
        w.span_begin(t, ts, "tick", "", "", 0).unwrap();
        w.complete_span(t, ts + 10, ts + 20, "inner", "", "", 0)
            .unwrap();
        w.span_end(t, ts + 500).unwrap();
        w.async_span_begin(lane, i, ts + 5, "read", "", "", 0)
            .unwrap();
        w.async_span_end(lane, i, ts + 700).unwrap();
        w.counter(heap, ts, i as i64).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn timestamps_in_another_clock_are_the_trace_clock() {
    let base = Options::new().timestamp_clock(Clock::Realtime, NEW_YEAR - 500, 1_000);
    let [t, c] = run_with(
        base,
        "realtime_stamps",
        realtime_stamps::<Writer>,
        realtime_stamps::<Streaming>,
        realtime_stamps::<ChunkedWriter>,
    );
    assert_eq!((t.trace_clock, c.trace_clock), (1, 1));
    let ticks: Vec<_> = t
        .slices
        .iter()
        .filter(|s| s.name == "tick")
        .map(|s| (s.ts, s.dur))
        .collect();
    let want: Vec<_> = (0..10).map(|i| (NEW_YEAR + i * 1_000, Some(500))).collect();
    assert_eq!(ticks, want);
    assert_eq!(t.slices.iter().filter(|s| s.name == "read").count(), 10);
    assert_eq!(t.counters.len(), 10);
    assert_eq!(t.counters[3].ts, NEW_YEAR + 3_000);
    assert_eq!(t.realtime(NEW_YEAR + 5), Some(NEW_YEAR + 5));
    assert_eq!(
        t.clock_snapshots,
        [
            vec![(6, 1_000), (1, NEW_YEAR - 500)],
            vec![(1, NEW_YEAR), (3, 77)]
        ]
    );
}

/// The default clock writes exactly what it wrote before the option.
#[test]
fn boottime_by_option_is_the_default() {
    let mut a = Writer::new();
    let mut b = Writer::with_options(Options::new().timestamp_clock(Clock::Boottime, 5, 5));
    descriptions(&mut a);
    descriptions(&mut b);
    assert_eq!(a.bytes(), b.bytes());
}

fn process_metadata<W: TraceWriter>(w: &mut W) {
    w.order_explicitly(true, true).unwrap();
    // Again alike: nothing; otherwise refused.
    w.order_explicitly(true, true).unwrap();
    assert!(matches!(
        w.order_explicitly(false, true),
        Err(Error::Redefined(_))
    ));
    let ranks = [(30, "zeta", 2), (31, "alpha", 1), (32, "mid", -5)];
    for (pid, name, rank) in ranks {
        let options = ProcessOptions {
            labels: &["tenant=a", name],
            sibling_rank: Some(rank),
            ..Default::default()
        };
        let p = w
            .process_with(name, Some(pid), name, &[], &options)
            .unwrap();
        for (i, thread_rank) in [3, -1, 0].into_iter().enumerate() {
            let t = w
                .thread_with(
                    p,
                    &format!("t{i}"),
                    Some(i64::from(pid) * 100 + i as i64),
                    &format!("{name}-t{i}"),
                    &ThreadOptions {
                        sibling_rank: Some(thread_rank),
                        ..Default::default()
                    },
                )
                .unwrap();
            w.complete_span(t, 100, 200, "work", "", "", 0).unwrap();
        }
    }
    let long = "l".repeat(perfetto_trace_writer::MAX_STRING_LEN + 1);
    let labels = [long.as_str()];
    let bad = ProcessOptions {
        labels: &labels,
        ..Default::default()
    };
    assert!(matches!(
        w.process_with("bad", Some(99), "bad", &[], &bad),
        Err(Error::StringTooLong(_))
    ));
    w.finish().unwrap();
}

#[test]
fn processes_carry_labels_and_ranks_and_the_root_orders_by_them() {
    let [t, _] = all_writers!(process_metadata);
    assert_eq!(t.root_ordering, (Some(1), Some(1)));
    let of = |name: &str| {
        t.tracks
            .values()
            .find(|tr| tr.name.as_deref() == Some(name))
            .unwrap()
    };
    assert_eq!(of("zeta").labels, ["tenant=a", "zeta"]);
    assert_eq!(of("zeta").display.1, Some(2));
    assert_eq!(of("mid").display.1, Some(-5));
    assert_eq!(of("alpha-t1").display.1, Some(-1));
    assert!(of("alpha-t1").labels.is_empty());
    assert!(!t
        .tracks
        .values()
        .any(|tr| tr.name.as_deref() == Some("bad")));
}

fn callstacks<W: TraceWriter>(w: &mut W) {
    let p = w.process("p", Some(10), "svc", &[]).unwrap();
    let t = w.thread(p, "t", Some(11), "main").unwrap();
    let lane = w.async_lane(p, "io").unwrap();
    let outer = StackFrame::new("main", "src/main.rs", 10);
    let serve = StackFrame::new("serve", "src/serve.rs", 42);
    let alloc = StackFrame::new("alloc", "", 0);
    for i in 0..8u64 {
        let ts = 1_000 * (i + 1);
        let stack = [outer, serve];
        w.span_begin_with(t, ts, &Event::new("request").callstack(&stack))
            .unwrap();
        let deeper = [outer, serve, alloc];
        w.instant(t, ts + 10, &Event::new("alloc").callstack(&deeper))
            .unwrap();
        w.span_end(t, ts + 100).unwrap();
        w.async_span_begin_with(lane, i, ts, &Event::new("read").callstack(&[serve]))
            .unwrap();
        w.async_span_end(lane, i, ts + 50).unwrap();
    }
    let deep = vec![alloc; perfetto_trace_writer::MAX_CALLSTACK_DEPTH + 1];
    assert!(matches!(
        w.instant(t, 20_000, &Event::new("x").callstack(&deep)),
        Err(Error::CallstackTooDeep(_))
    ));
    w.finish().unwrap();
}

#[test]
fn events_carry_their_callstacks() {
    let [t, _] = all_writers!(callstacks);
    let frames = |name: &str| -> Vec<Vec<Frame>> {
        t.slices
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.callstack.clone())
            .collect()
    };
    let frame = |function: &str, file: Option<&str>, line: Option<u32>| Frame {
        function: function.to_owned(),
        file: file.map(str::to_owned),
        line,
    };
    let main = frame("main", Some("src/main.rs"), Some(10));
    let serve = frame("serve", Some("src/serve.rs"), Some(42));
    let alloc = frame("alloc", None, None);
    assert_eq!(
        frames("request"),
        vec![vec![main.clone(), serve.clone()]; 8]
    );
    assert_eq!(frames("alloc"), vec![vec![main, serve.clone(), alloc]; 8]);
    assert_eq!(frames("read"), vec![vec![serve]; 8]);
    assert!(frames("x").is_empty());
}

/// `inspect` reports what the trace processor would drop: a counter value
/// after a zero one on the same event (another writer's trace, say).
#[test]
fn inspect_reports_counter_values_after_a_zero() {
    use perfetto_trace_writer::protos;
    let mut w = Writer::new();
    let p = w.process("p", Some(10), "svc", &[]).unwrap();
    let t = w.thread(p, "t", Some(11), "main").unwrap();
    let a = w.counter_track(p, "a", &CounterOptions::default()).unwrap();
    let b = w.counter_track(p, "b", &CounterOptions::default()).unwrap();
    let counters = [(a, CounterSample::Int(0)), (b, CounterSample::Int(5))];
    w.instant(t, 10, &Event::new("x").counters(&counters))
        .unwrap();
    // As written: the zero last, read in full.
    let trace = inspect::decode(w.bytes()).unwrap();
    assert_eq!(trace.problems, vec![]);
    assert_eq!(trace.counters.len(), 2);
    // The zero first, as another writer might put it.
    let mut decoded = <protos::Trace as prost::Message>::decode(w.bytes()).unwrap();
    let event = decoded
        .packet
        .iter_mut()
        .find_map(|p| p.track_event.as_mut().filter(|e| e.r#type == Some(3)))
        .unwrap();
    event.extra_counter_track_uuids = vec![a.uuid().get(), b.uuid().get()];
    event.extra_counter_values = vec![0, 5];
    event.extra_double_counter_track_uuids.clear();
    event.extra_double_counter_values.clear();
    let rebuilt = inspect::rebuild(&decoded);
    assert_eq!(rebuilt.problems.len(), 1, "{:?}", rebuilt.problems);
    assert!(rebuilt.problems[0].what.contains("after a zero"));
}

/// A tree lane with a description, whose spans end with arguments and
/// counter values: issue 18's descriptions and end counters on issue 20's
/// span trees.
fn described_tree<W: TraceWriter>(w: &mut W) {
    let p = w.process("p", Some(40), "svc", &[]).unwrap();
    let about = LaneOptions {
        description: Some("request trees"),
        tree: true,
    };
    let lane = w.async_lane_with(p, "tasks", &about).unwrap();
    // The same lane again: found, not redefined; made merged: refused.
    assert_eq!(w.async_lane_with(p, "tasks", &about).unwrap(), lane);
    let merged = LaneOptions {
        tree: false,
        ..about
    };
    assert!(matches!(
        w.async_lane_with(p, "tasks", &merged),
        Err(Error::Redefined(_))
    ));
    assert!(matches!(
        w.async_tree_lane(p, "tasks"),
        Err(Error::Redefined(_))
    ));
    let queue = w
        .counter_track(p, "queue", &CounterOptions::default())
        .unwrap();
    for i in 0..5u64 {
        let ts = 1_000 * (i + 1);
        w.async_span_begin_with(lane, i, ts, &Event::new("request"))
            .unwrap();
        // Overlaps its earlier sibling: on a track nested under the parent's.
        let parent = AsyncParent::new(lane, i);
        w.async_child_begin(lane, 100 + i, parent, ts + 10, &Event::new("fetch"))
            .unwrap();
        w.async_child_begin(lane, 200 + i, parent, ts + 20, &Event::new("parse"))
            .unwrap();
        let depth = [(queue, CounterSample::Int(i as i64))];
        w.async_span_end_with_counters(lane, 200 + i, ts + 30, &depth)
            .unwrap();
        let status = [Arg::new("status", Value::Int(200))];
        w.async_span_end_with(lane, 100 + i, ts + 40, &status)
            .unwrap();
        w.async_span_end(lane, i, ts + 50).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn tree_lanes_carry_descriptions_and_end_counters_and_arguments() {
    let [trace, _] = all_writers!(described_tree);
    assert_eq!(trace.slices.len(), 15);
    for s in &trace.slices {
        let track = &trace.tracks[&s.track];
        assert_eq!(
            track.description.as_deref(),
            Some("request trees"),
            "{}",
            s.name
        );
        // Never merged with same-named siblings (SIBLING_MERGE_BEHAVIOR_NONE).
        assert_eq!(track.display.2, Some(2), "{}", s.name);
    }
    let fetches: Vec<_> = trace.slices.iter().filter(|s| s.name == "fetch").collect();
    assert_eq!(fetches.len(), 5);
    for f in &fetches {
        assert_eq!(f.args, vec![("status".to_owned(), ArgValue::Int(200))]);
        assert_eq!(f.dur, Some(30));
    }
    let values: Vec<_> = trace.counters.iter().map(|c| (c.ts, c.value)).collect();
    let expected: Vec<_> = (0..5u64)
        .map(|i| (1_000 * (i + 1) + 30, i as f64))
        .collect();
    assert_eq!(values, expected);
}
