//! Spans on the caller's own named tracks (`TraceWriter::track`), under the
//! root, a process or a thread: they nest by a thread's rules, with its
//! errors, on every writer and in both modes, and the trace processor shows
//! them on their tracks at their depths.

mod common;

use perfetto_trace_writer::inspect::Trace;
use perfetto_trace_writer::{
    CounterOptions, CounterSample, Error, Event, LogSeverity, NamedTrack, OpenSpan, ParentTrack,
    TraceWriter, TrackOptions, Writer, MAX_SPAN_DEPTH,
};

/// The slices on `track`: (name, ts, dur, depth), in time order.
fn on(t: &Trace, track: NamedTrack) -> Vec<(String, u64, Option<u64>, usize)> {
    t.slices
        .iter()
        .filter(|s| s.track == track.uuid().get())
        .map(|s| (s.name.clone(), s.ts, s.dur, s.depth))
        .collect()
}

fn row(name: &str, ts: u64, dur: u64, depth: usize) -> (String, u64, Option<u64>, usize) {
    (name.to_owned(), ts, Some(dur), depth)
}

struct Tracks {
    global: NamedTrack,
    under_process: NamedTrack,
    under_thread: NamedTrack,
}

fn tracks<W: TraceWriter>(w: &mut W) -> Tracks {
    let p = w.process("p", Some(10), "svc", &[]).unwrap();
    let t = w.thread(p, "t", Some(11), "main").unwrap();
    let options = TrackOptions::default();
    Tracks {
        global: w.track(ParentTrack::Root, "gpu queue", &options).unwrap(),
        under_process: w.track(p, "requests", &options).unwrap(),
        under_thread: w.track(t, "phases", &options).unwrap(),
    }
}

/// Begun and ended spans, complete spans in begin order (parents first), a
/// span at an explicit depth, and instants inside them, on each kind of
/// named track; enough spans on one for compact mode to move it.
fn nesting<W: TraceWriter>(w: &mut W) {
    let Tracks {
        global,
        under_process,
        under_thread,
    } = tracks(w);
    for i in 0..6u64 {
        let t0 = 1_000 * i;
        w.track_span_begin(global, t0, &Event::new("frame"))
            .unwrap();
        w.track_complete_span(global, t0 + 10, t0 + 500, &Event::new("draw"))
            .unwrap();
        w.track_complete_span(global, t0 + 20, t0 + 100, &Event::new("upload"))
            .unwrap();
        w.instant(global, t0 + 50, &Event::new("fence")).unwrap();
        w.track_span_end(global, t0 + 900).unwrap();
    }
    w.track_complete_span_at_depth(under_process, 0, 100, 200, &Event::new("request"))
        .unwrap();
    w.track_complete_span_at_depth(under_process, 1, 200, 200, &Event::new("reply"))
        .unwrap();
    w.track_complete_span_at_depth(under_process, 0, 200, 300, &Event::new("next"))
        .unwrap();
    // A log line is the thread's on a track under it.
    let log = Event::new("parse").log(LogSeverity::Info, "parsing");
    w.track_span_begin(under_thread, 50, &log).unwrap();
    w.track_span_begin(under_thread, 60, &Event::new("lex"))
        .unwrap();
    w.track_span_end(under_thread, 70).unwrap();
    w.track_span_end(under_thread, 80).unwrap();
    w.finish().unwrap();
}

#[test]
fn spans_on_named_tracks_nest_like_a_threads() {
    let traces = on_every_writer!(nesting);
    let t = &traces.decoded[0];
    let Tracks {
        global,
        under_process,
        under_thread,
    } = tracks(&mut Writer::new());
    let mut want = vec![];
    for i in 0..6u64 {
        let t0 = 1_000 * i;
        want.push(row("frame", t0, 900, 0));
        want.push(row("draw", t0 + 10, 490, 1));
        want.push(row("upload", t0 + 20, 80, 2));
        want.push(row("fence", t0 + 50, 0, 3));
    }
    assert_eq!(on(t, global), want);
    assert_eq!(
        on(t, under_process),
        [
            row("request", 100, 100, 0),
            row("reply", 200, 0, 1),
            row("next", 200, 100, 0)
        ]
    );
    assert_eq!(
        on(t, under_thread),
        [row("parse", 50, 30, 0), row("lex", 60, 10, 1)]
    );
    assert_eq!(t.logs.len(), 1);
    // Compact mode moved the busy track to a sequence of its own.
    let sequences = |bytes: &[u8]| {
        use prost::Message;
        let trace = perfetto_trace_writer::protos::Trace::decode(bytes).unwrap();
        let mut ids: Vec<_> = trace
            .packet
            .iter()
            .filter_map(|p| p.trusted_packet_sequence_id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    };
    assert_eq!(sequences(&traces.bytes[0]), 1);
    assert_eq!(sequences(&traces.bytes[1]), 2);

    let sql = "select t.name, s.name, s.ts, s.dur, s.depth from slice s \
               join track t on s.track_id = t.id \
               where t.name in ('requests', 'phases') or (t.name = 'gpu queue' and s.ts < 1000) \
               order by t.name, s.id;";
    let want = [
        "\"gpu queue\",\"frame\",0,900,0",
        "\"gpu queue\",\"draw\",10,490,1",
        "\"gpu queue\",\"upload\",20,80,2",
        "\"gpu queue\",\"fence\",50,0,3",
        "\"phases\",\"parse\",50,30,0",
        "\"phases\",\"lex\",60,10,1",
        "\"requests\",\"request\",100,100,0",
        "\"requests\",\"reply\",200,0,1",
        "\"requests\",\"next\",200,100,0",
    ];
    for bytes in &traces.bytes {
        if let Some(rows) = common::tp::clean_query(bytes, sql) {
            assert_eq!(rows, want);
        }
        let count = "select count(*) from slice s join track t on s.track_id = t.id \
                     where t.name = 'gpu queue';";
        if let Some(rows) = common::tp::clean_query(bytes, count) {
            assert_eq!(rows, ["24"]);
        }
    }
}

/// Every misuse a thread refuses, refused on a named track with the same
/// error, and nothing written for it: the trace is that of the calls
/// accepted.
fn misuse<W: TraceWriter>(w: &mut W) {
    let Tracks {
        global,
        under_process,
        ..
    } = tracks(w);
    let e = Event::new("x");
    let err = |r: Result<(), Error>| r.unwrap_err();
    assert!(matches!(
        err(w.track_span_end(global, 10)),
        Error::NoOpenSpan(u) if u == global.uuid()
    ));
    w.track_span_begin(global, 100, &e).unwrap();
    assert!(matches!(
        err(w.track_span_end(global, 50)),
        Error::EndBeforeBegin {
            begin: 100,
            end: 50
        }
    ));
    assert!(matches!(
        err(w.track_span_begin(global, 90, &e)),
        Error::TimestampBackwards {
            ts: 90,
            last: 100,
            ..
        }
    ));
    assert!(matches!(
        err(w.instant(global, 90, &e)),
        Error::TimestampBackwards { ts: 90, .. }
    ));
    assert!(matches!(
        err(w.track_complete_span(global, 200, 150, &e)),
        Error::EndBeforeBegin {
            begin: 200,
            end: 150
        }
    ));
    w.track_complete_span(global, 200, 300, &e).unwrap();
    // Past the end of the enclosing complete span.
    assert!(matches!(
        err(w.track_complete_span(global, 250, 400, &e)),
        Error::NotNested {
            end: 400,
            limit: 300,
            ..
        }
    ));
    // Ending the explicit span would cross the complete one inside it.
    assert!(matches!(
        err(w.track_span_end(global, 250)),
        Error::NotNested { .. }
    ));
    assert!(matches!(
        err(w.track_complete_span_at_depth(global, 0, 250, 260, &e)),
        Error::DepthOutOfRange { min: 2, max: 2, .. }
    ));
    assert!(matches!(
        err(w.track_span_begin(global, u64::MAX, &e)),
        Error::TimestampOutOfRange(_)
    ));
    // Log lines belong to threads.
    let log = Event::new("x").log(LogSeverity::Warn, "no thread here");
    assert!(matches!(
        err(w.track_span_begin(under_process, 10, &log)),
        Error::LogOffThread(u) if u == under_process.uuid()
    ));
    let mut other = Writer::new();
    let foreign = other
        .track(ParentTrack::Root, "gpu queue", &TrackOptions::default())
        .unwrap();
    assert!(matches!(
        err(w.track_span_begin(foreign, 1_000, &e)),
        Error::ForeignHandle(_)
    ));
    assert!(matches!(
        err(w.track_span_end(foreign, 1_000)),
        Error::ForeignHandle(_)
    ));
    let incremental = CounterOptions {
        incremental: true,
        ..Default::default()
    };
    let sum = w
        .counter_track(ParentTrack::Root, "sum", &incremental)
        .unwrap();
    let counted = [(sum, CounterSample::Int(1))];
    assert!(matches!(
        err(w.track_span_end_with_counters(global, 400, &counted)),
        Error::IncrementalCounterOnEvent(_)
    ));
    w.track_span_end(global, 400).unwrap();
    // As deep as a thread, and no deeper.
    let mut depth = 0;
    let refused = loop {
        match w.track_span_begin(under_process, 1_000, &e) {
            Ok(()) => depth += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(depth, MAX_SPAN_DEPTH);
    assert!(matches!(refused, Error::TooDeep(u) if u == under_process.uuid()));
    for i in 0..depth {
        w.track_span_end(under_process, 2_000 + i as u64).unwrap();
    }
    w.finish().unwrap();
}

/// The calls of [`misuse`] that were accepted, alone.
fn accepted<W: TraceWriter>(w: &mut W) {
    let Tracks {
        global,
        under_process,
        ..
    } = tracks(w);
    let e = Event::new("x");
    w.track_span_begin(global, 100, &e).unwrap();
    w.track_complete_span(global, 200, 300, &e).unwrap();
    let incremental = CounterOptions {
        incremental: true,
        ..Default::default()
    };
    w.counter_track(ParentTrack::Root, "sum", &incremental)
        .unwrap();
    w.track_span_end(global, 400).unwrap();
    for _ in 0..MAX_SPAN_DEPTH {
        w.track_span_begin(under_process, 1_000, &e).unwrap();
    }
    for i in 0..MAX_SPAN_DEPTH {
        w.track_span_end(under_process, 2_000 + i as u64).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn misuse_on_a_named_track_is_refused_as_on_a_thread_and_writes_nothing() {
    let refused = on_every_writer!(misuse);
    let clean = on_every_writer!(accepted);
    assert_eq!(refused.bytes, clean.bytes);
    for bytes in &refused.bytes {
        let sql = "select max(depth) from slice;";
        if let Some(rows) = common::tp::clean_query(bytes, sql) {
            assert_eq!(rows, [(MAX_SPAN_DEPTH - 1).to_string()]);
        }
    }
}

/// Spans left open on named tracks are reported like a thread's, and
/// closed by `close_open_spans`; counter values ride on begins and ends.
fn left_open<W: TraceWriter>(w: &mut W) {
    let Tracks {
        global,
        under_thread,
        ..
    } = tracks(w);
    let cpu = w
        .counter_track(ParentTrack::Root, "cpu", &CounterOptions::default())
        .unwrap();
    let at_begin = [(cpu, CounterSample::Int(5))];
    w.track_span_begin(global, 10, &Event::new("outer").counters(&at_begin))
        .unwrap();
    w.track_complete_span(global, 20, 30, &Event::new("done"))
        .unwrap();
    w.track_span_begin(global, 40, &Event::new("inner"))
        .unwrap();
    w.track_span_begin(under_thread, 15, &Event::new("phase"))
        .unwrap();
    w.track_span_end_with_counters(under_thread, 25, &[(cpu, CounterSample::Double(7.5))])
        .unwrap();
    let open = w.finish().unwrap();
    assert_eq!(
        open,
        [
            OpenSpan::Track {
                track: global,
                begin: 10,
                depth: 0
            },
            OpenSpan::Track {
                track: global,
                begin: 40,
                depth: 1
            },
        ]
    );
    assert_eq!(w.open_spans(), open);
    assert!(matches!(
        w.close_open_spans(35),
        Err(Error::TimestampBackwards { .. })
    ));
    assert_eq!(w.close_open_spans(100).unwrap(), 2);
    assert!(w.finish().unwrap().is_empty());
}

#[test]
fn spans_left_open_on_named_tracks_are_reported_and_closed() {
    let traces = on_every_writer!(left_open);
    let t = &traces.decoded[0];
    let Tracks {
        global,
        under_thread,
        ..
    } = tracks(&mut Writer::new());
    assert_eq!(
        on(t, global),
        [
            row("outer", 10, 90, 0),
            row("done", 20, 10, 1),
            row("inner", 40, 60, 1)
        ]
    );
    assert_eq!(on(t, under_thread), [row("phase", 15, 10, 0)]);
    let values: Vec<_> = t.counters.iter().map(|c| (c.ts, c.value)).collect();
    assert_eq!(values, [(10, 5.0), (25, 7.5)]);
    for bytes in &traces.bytes {
        let sql = "select c.ts, c.value from counter c join counter_track t \
                   on c.track_id = t.id where t.name = 'cpu' order by c.ts;";
        if let Some(rows) = common::tp::clean_query(bytes, sql) {
            assert_eq!(rows, ["10,5.000000", "25,7.500000"]);
        }
    }
}

/// A named track under a thread has a stack of its own: its spans may
/// overlap the thread's.
fn beside_a_thread<W: TraceWriter>(w: &mut W) {
    let p = w.process("p", Some(10), "svc", &[]).unwrap();
    let t = w.thread(p, "t", Some(11), "main").unwrap();
    let phases = w.track(t, "phases", &TrackOptions::default()).unwrap();
    w.span_begin(t, 10, "work", "", "", 0).unwrap();
    w.track_span_begin(phases, 20, &Event::new("phase"))
        .unwrap();
    w.span_end(t, 30).unwrap();
    w.span_begin(t, 35, "more", "", "", 0).unwrap();
    w.track_span_end(phases, 40).unwrap();
    w.span_end(t, 50).unwrap();
    w.finish().unwrap();
}

#[test]
fn a_named_track_under_a_thread_nests_apart_from_it() {
    let traces = on_every_writer!(beside_a_thread);
    let depths: Vec<_> = traces.decoded[0]
        .slices
        .iter()
        .map(|s| (s.name.as_str(), s.ts, s.dur, s.depth))
        .collect();
    assert_eq!(
        depths,
        [
            ("work", 10, Some(20), 0),
            ("phase", 20, Some(20), 0),
            ("more", 35, Some(15), 0)
        ]
    );
    for bytes in &traces.bytes {
        // Both tracks are the thread's; the thread's own is unnamed.
        let sql = "select s.name, s.depth, coalesce(t.name, th.name) from slice s \
                   join thread_track t on s.track_id = t.id join thread th using (utid) \
                   order by s.ts;";
        if let Some(rows) = common::tp::clean_query(bytes, sql) {
            let want = [
                "\"work\",0,\"main\"",
                "\"phase\",0,\"phases\"",
                "\"more\",0,\"main\"",
            ];
            assert_eq!(rows, want);
        }
    }
}
