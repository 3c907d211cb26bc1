//! The importer over random span trees (nesting, ties, overlapping
//! siblings, detached children, spans that never end), windows cutting
//! anywhere, all rows or only the window's, both modes: the decoded trace
//! shows every span of the window exactly once, at its times, with its
//! name and location, beneath its parent or its thread, cut ones marked,
//! and nothing else.

#[path = "../examples/lake_sim/mod.rs"]
mod sim;

use std::collections::HashMap;

use perfetto_trace_writer::import::{
    AnomalyKind, AsyncEventRow, ImportConfig, ImportError, ImportReport, Importer, ProcessRow,
    SpanKinds, StreamRow, Table, ThreadSpanRow,
};
use perfetto_trace_writer::inspect::{self, ArgValue, Slice, Trace, TrackKind};
use perfetto_trace_writer::{Options, TraceWriter, Writer};
use proptest::prelude::*;

/// xorshift, to grow trees from a seed proptest picks.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            lo + self.next() % (hi - lo)
        }
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

#[derive(Clone, Debug)]
struct Span {
    stream: usize,
    begin: u64,
    end: u64,
    depth: u32,
    name: String,
}

#[derive(Clone, Debug)]
struct Task {
    id: u64,
    stream: usize,
    end_stream: usize,
    begin: u64,
    end: Option<u64>,
    parent: Option<usize>,
    depth: u32,
    name: String,
}

#[derive(Clone, Debug)]
struct Proc {
    key: String,
    pid: i32,
    start: u64,
    end: Option<u64>,
    tasks: Vec<Task>,
}

#[derive(Clone, Debug)]
struct Case {
    procs: Vec<Proc>,
    /// (key, process index, tid).
    streams: Vec<(String, usize, i64)>,
    spans: Vec<Span>,
    window: Option<(u64, u64)>,
    /// The caller hands over only the rows inside the window.
    only_window: bool,
}

const HORIZON: u64 = 4_000;

/// Times on a grid of 10 ns: many ties.
fn grid(rng: &mut Rng, lo: u64, hi: u64) -> u64 {
    rng.range(lo / 10, hi / 10 + 1) * 10
}

fn thread_tree(rng: &mut Rng, spans: &mut Vec<Span>, stream: usize, b: u64, e: u64, depth: u32) {
    spans.push(Span {
        stream,
        begin: b,
        end: e,
        depth,
        name: format!("t{}", rng.next() % 5),
    });
    if depth >= 5 || e - b < 20 {
        return;
    }
    let mut t = b;
    for _ in 0..rng.range(0, 4) {
        if t >= e {
            break;
        }
        // Ties with the parent's begin and with the previous sibling's end,
        // zero-length children.
        let cb = if rng.chance(30) {
            t
        } else {
            grid(rng, t, e - 10)
        };
        let ce = if rng.chance(15) { cb } else { grid(rng, cb, e) };
        let ce = if ce == cb && cb == e { cb } else { ce.min(e) };
        if cb >= e {
            break;
        }
        thread_tree(rng, spans, stream, cb, ce, depth + 1);
        t = ce;
    }
    // A zero-length child at the very end, ahead of any sibling there.
    if rng.chance(20) {
        thread_tree(rng, spans, stream, e, e, depth + 1);
    }
}

#[allow(clippy::too_many_arguments)]
fn task(
    rng: &mut Rng,
    tasks: &mut Vec<Task>,
    streams: usize,
    b: u64,
    parent: Option<usize>,
    depth: u32,
    next_id: &mut u64,
) {
    let id = *next_id;
    *next_id += 1;
    let end = (!rng.chance(12)).then(|| grid(rng, b, (b + 1500).min(HORIZON)));
    let index = tasks.len();
    tasks.push(Task {
        id,
        stream: (rng.next() as usize) % streams,
        end_stream: (rng.next() as usize) % streams,
        begin: b,
        end,
        parent,
        depth,
        name: format!("a{}", rng.next() % 4),
    });
    if depth >= 3 {
        return;
    }
    for _ in 0..rng.range(0, 3) {
        // Within the parent's life (ties at both ends), outliving it or not.
        let until = end.unwrap_or(HORIZON);
        let cb = grid(rng, b, until);
        task(rng, tasks, streams, cb, Some(index), depth + 1, next_id);
    }
}

fn case(seed: u64, procs: usize, window: Option<(u64, u64)>, only_window: bool) -> Case {
    let mut rng = Rng(seed | 1);
    let mut c = Case {
        procs: Vec::new(),
        streams: Vec::new(),
        spans: Vec::new(),
        window,
        only_window,
    };
    for p in 0..procs {
        let nstreams = rng.range(1, 4) as usize;
        let first = c.streams.len();
        for s in 0..nstreams {
            let tid = 1000 + c.streams.len() as i64;
            c.streams.push((format!("p{p}-s{s}"), p, tid));
        }
        let streams: Vec<usize> = (first..first + nstreams).collect();
        for &s in &streams {
            let mut t = grid(&mut rng, 0, 200);
            while t < HORIZON - 100 {
                let e = grid(&mut rng, t, t + 600);
                thread_tree(&mut rng, &mut c.spans, s, t, e, 0);
                t = if rng.chance(30) {
                    e
                } else {
                    grid(&mut rng, e, e + 300)
                };
            }
        }
        let mut tasks = Vec::new();
        // Ids per process: every process numbers from 1.
        let mut next_id = 1;
        for _ in 0..rng.range(1, 8) {
            let b = grid(&mut rng, 0, HORIZON - 200);
            task(&mut rng, &mut tasks, nstreams, b, None, 0, &mut next_id);
        }
        for t in &mut tasks {
            t.stream = streams[t.stream];
            t.end_stream = streams[t.end_stream];
        }
        c.procs.push(Proc {
            key: format!("proc-{p}"),
            pid: 10 + p as i32,
            start: rng.range(0, 10),
            end: rng.chance(50).then_some(HORIZON + 100),
            tasks,
        });
    }
    c
}

/// An async event row, owned.
#[derive(Clone, Debug)]
struct Ev {
    stream: usize,
    time: u64,
    begin: bool,
    id: u64,
    parent: u64,
    depth: u32,
    name: String,
}

impl Case {
    fn in_window(&self, t: u64) -> bool {
        self.window.is_none_or(|(b, e)| (b..=e).contains(&t))
    }

    fn given(&self, t: u64) -> bool {
        !self.only_window || self.in_window(t)
    }

    /// The async rows of process `p` as the service returns them: by time,
    /// ties in an order of `shuffle`'s choosing.
    fn events(&self, p: usize, shuffle: u64) -> Vec<Ev> {
        let proc = &self.procs[p];
        let mut evs = Vec::new();
        for t in &proc.tasks {
            let parent = t.parent.map_or(0, |i| proc.tasks[i].id);
            let ev = |stream, time, begin| Ev {
                stream,
                time,
                begin,
                id: t.id,
                parent,
                depth: t.depth,
                name: t.name.clone(),
            };
            evs.push(ev(t.stream, t.begin, true));
            if let Some(e) = t.end {
                evs.push(ev(t.end_stream, e, false));
            }
        }
        evs.retain(|e| self.given(e.time));
        let mut rng = Rng(shuffle | 1);
        for i in (1..evs.len()).rev() {
            let j = (rng.next() % (i as u64 + 1)) as usize;
            evs.swap(i, j);
        }
        evs.sort_by_key(|e| e.time);
        evs
    }

    fn config(&self, spans: SpanKinds) -> ImportConfig {
        let c = ImportConfig::new().spans(spans);
        match self.window {
            Some((b, e)) => c.window(b, e),
            None => c,
        }
    }

    /// Feeds everything (`kinds` decides what is written) to one writer.
    fn import(&self, w: &mut Writer, spans: SpanKinds, shuffle: u64) -> ImportReport {
        let mut im = Importer::new(w, self.config(spans)).unwrap();
        self.feed_definitions(&mut im);
        self.feed_spans(&mut im, |_| true);
        for p in 0..self.procs.len() {
            self.feed_events(&mut im, p, shuffle);
        }
        im.finish().unwrap()
    }

    fn feed_definitions(&self, im: &mut Importer<'_, Writer>) {
        for p in &self.procs {
            let row = ProcessRow {
                process_id: &p.key,
                exe: "exe",
                pid: Some(i64::from(p.pid)),
                start_time: p.start,
                end_time: p.end,
            };
            im.process(&row).unwrap();
        }
        for (key, p, tid) in &self.streams {
            let row = StreamRow {
                stream_id: key,
                process_id: &self.procs[*p].key,
                thread_name: key,
                thread_id: Some(*tid),
            };
            im.stream(&row).unwrap();
        }
    }

    fn feed_spans(&self, im: &mut Importer<'_, Writer>, keep: impl Fn(usize) -> bool) {
        let mut spans: Vec<&Span> = self
            .spans
            .iter()
            .filter(|s| keep(s.stream))
            .filter(|s| !self.only_window || self.overlaps(s))
            .collect();
        // ORDER BY begin per stream; ties left as generated, reversed for
        // half of them (the importer puts the outer one first).
        spans.sort_by_key(|s| (s.stream, s.begin, s.depth % 2 == 0));
        for s in spans {
            let row = ThreadSpanRow {
                stream_id: &self.streams[s.stream].0,
                begin: s.begin,
                end: s.end,
                depth: s.depth,
                name: &s.name,
                target: "tgt",
                filename: "src/t.rs",
                line: s.depth + 1,
            };
            im.thread_span(&row).unwrap();
        }
    }

    fn feed_events(&self, im: &mut Importer<'_, Writer>, p: usize, shuffle: u64) {
        for e in self.events(p, shuffle) {
            let row = AsyncEventRow {
                stream_id: &self.streams[e.stream].0,
                time: e.time,
                event_type: if e.begin { "begin" } else { "end" },
                span_id: e.id,
                parent_span_id: Some(e.parent),
                depth: e.depth,
                name: &e.name,
                filename: "src/a.rs",
                target: "atgt",
                line: 7,
            };
            im.async_event(&row).unwrap();
        }
    }

    fn overlaps(&self, s: &Span) -> bool {
        self.window.is_none_or(|(b, e)| s.begin <= e && s.end >= b)
    }

    /// Where the importer cuts spans of process `p` still in flight.
    fn cut_time(&self, p: usize) -> u64 {
        let proc = &self.procs[p];
        let last = self.events(p, 1).last().map_or(0, |e| e.time);
        match (self.window, proc.end) {
            (Some((_, we)), Some(pe)) => we.min(pe),
            (Some((_, we)), None) => we,
            (None, Some(pe)) => pe,
            (None, None) => last,
        }
    }
}

/// What the trace must show for one async span.
#[derive(Debug, PartialEq)]
struct Shown {
    ts: u64,
    dur: u64,
    clipped: Option<&'static str>,
    /// The task index of its parent, or none: beneath its thread.
    parent: Option<usize>,
    /// The stream whose thread it is beneath (if top-level).
    stream: usize,
}

/// The documented rules, written plainly for one task.
fn expected(c: &Case, p: usize, i: usize) -> Option<Shown> {
    let proc = &c.procs[p];
    let t = &proc.tasks[i];
    let cut = c.cut_time(p);
    let begin_given = c.given(t.begin);
    let end_given = t.end.filter(|&e| c.given(e));
    // Whether the importer sees the span's begin, and when it shows it.
    let (ts, cut_begin) = match c.window {
        Some((wb, we)) => {
            if !begin_given {
                // Only the window's rows: an end alone begins at the window.
                return end_given.map(|e| Shown {
                    ts: wb,
                    dur: e - wb,
                    clipped: Some("begin"),
                    parent: None,
                    stream: t.end_stream,
                });
            }
            if t.begin > we || t.end.is_some_and(|e| e < wb) {
                return None;
            }
            (t.begin.max(wb), t.begin < wb)
        }
        None => (t.begin, false),
    };
    let (end, cut_end) = match end_given {
        Some(e) if c.window.is_none_or(|(_, we)| e <= we) => (e, false),
        _ => (cut.max(ts), true),
    };
    let clipped = match (cut_begin, cut_end) {
        (true, true) => Some("both"),
        (true, false) => Some("begin"),
        (false, true) => Some("end"),
        (false, false) => None,
    };
    // Beneath its parent if the parent is in flight when it is begun: its
    // begin seen, and its end (if seen) no earlier than the child's begin
    // as shown (ends at a time come after begins at that time).
    let parent = t.parent.filter(|&pi| {
        let parent = &proc.tasks[pi];
        c.given(parent.begin) && parent.end.filter(|&e| c.given(e)).is_none_or(|e| e >= ts)
    });
    Some(Shown {
        ts,
        dur: end - ts,
        clipped,
        parent,
        stream: t.stream,
    })
}

fn arg<'a>(s: &'a Slice, key: &str) -> Option<&'a ArgValue> {
    s.args.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// The pid of the process a track lies under.
fn pid_of(trace: &Trace, mut track: u64) -> Option<i32> {
    loop {
        let t = &trace.tracks[&track];
        match t.kind {
            TrackKind::Thread { pid, .. } | TrackKind::Process { pid, .. } => return Some(pid),
            TrackKind::Other => track = t.parent?,
        }
    }
}

fn thread_uuid(trace: &Trace, tid: i64) -> u64 {
    *trace
        .tracks
        .iter()
        .find(|(_, t)| matches!(t.kind, TrackKind::Thread { tid: x, .. } if x == tid))
        .map(|(u, _)| u)
        .expect("every stream is a thread")
}

/// Checks the trace against the rules; returns how many async spans and
/// thread spans it must show, and how many cut.
fn check(c: &Case, trace: &Trace, kinds: SpanKinds) -> (u64, u64, u64) {
    assert_eq!(trace.problems, vec![], "the trace reads cleanly");
    assert!(
        trace.slices.iter().all(|s| s.dur.is_some()),
        "every span ends"
    );
    let is_async = |s: &Slice| arg(s, "span_id").is_some();
    // Async spans by (pid, span id): each exactly once.
    let mut by_id: HashMap<(i32, u64), Vec<&Slice>> = HashMap::new();
    for s in trace.slices.iter().filter(|s| is_async(s)) {
        let Some(ArgValue::Uint(id)) = arg(s, "span_id") else {
            panic!("span_id is a uint");
        };
        by_id
            .entry((pid_of(trace, s.track).unwrap(), *id))
            .or_default()
            .push(s);
    }
    let mut shown_async = 0;
    let mut clipped = 0;
    if kinds != SpanKinds::Thread {
        for (p, proc) in c.procs.iter().enumerate() {
            for (i, t) in proc.tasks.iter().enumerate() {
                let got = by_id.remove(&(proc.pid, t.id)).unwrap_or_default();
                let Some(want) = expected(c, p, i) else {
                    assert!(
                        got.is_empty(),
                        "task {t:?} outside the window shown: {got:?}"
                    );
                    continue;
                };
                shown_async += 1;
                clipped += u64::from(want.clipped.is_some());
                assert_eq!(got.len(), 1, "task {t:?} shown once, as {want:?}: {got:?}");
                let s = got[0];
                assert_eq!((s.ts, s.dur), (want.ts, Some(want.dur)), "{t:?}");
                assert_eq!(s.name, t.name);
                assert_eq!(s.categories, vec!["atgt".to_owned()]);
                assert_eq!(s.source, Some(("src/a.rs".to_owned(), 7)));
                assert_eq!(s.depth, 0, "async spans begun by rows never share a track");
                let cut = arg(s, "clipped").cloned();
                assert_eq!(cut, want.clipped.map(|v| ArgValue::Str(v.into())), "{t:?}");
                let under = trace.tracks[&s.track].parent;
                match want.parent {
                    Some(pi) => {
                        let parent = by_id_track(trace, proc.pid, proc.tasks[pi].id);
                        assert_eq!(under, Some(parent), "{t:?} beneath its parent's track");
                    }
                    None => {
                        let thread = thread_uuid(trace, c.streams[want.stream].2);
                        assert_eq!(under, Some(thread), "{t:?} beneath its thread");
                    }
                }
            }
        }
    }
    assert!(by_id.is_empty(), "no other async span: {by_id:?}");
    // Thread spans: shown whole when they overlap, at their row's depth.
    let mut want_thread: Vec<(u64, u64, u64, usize, String)> = Vec::new();
    if kinds != SpanKinds::Async {
        for s in c.spans.iter().filter(|s| c.overlaps(s)) {
            let track = thread_uuid(trace, c.streams[s.stream].2);
            want_thread.push((
                track,
                s.begin,
                s.end - s.begin,
                s.depth as usize,
                s.name.clone(),
            ));
        }
    }
    let mut got_thread: Vec<(u64, u64, u64, usize, String)> = trace
        .slices
        .iter()
        .filter(|s| !is_async(s))
        .map(|s| {
            assert_eq!(s.categories, vec!["tgt".to_owned()]);
            assert_eq!(s.source, Some(("src/t.rs".to_owned(), s.depth as u32 + 1)));
            (s.track, s.ts, s.dur.unwrap(), s.depth, s.name.clone())
        })
        .collect();
    want_thread.sort();
    got_thread.sort();
    assert_eq!(got_thread, want_thread, "thread spans");
    (shown_async, want_thread.len() as u64, clipped)
}

fn by_id_track(trace: &Trace, pid: i32, id: u64) -> u64 {
    trace
        .slices
        .iter()
        .find(|s| {
            arg(s, "span_id") == Some(&ArgValue::Uint(id)) && pid_of(trace, s.track) == Some(pid)
        })
        .expect("the parent is shown")
        .track
}

fn run(c: &Case, kinds: SpanKinds, compact: bool, shuffle: u64) {
    let mut w = Writer::with_options(Options::new().compact(compact));
    let report = c.import(&mut w, kinds, shuffle);
    assert!(
        w.finish().unwrap().is_empty(),
        "the importer ends every span"
    );
    let trace = inspect::decode(w.bytes()).unwrap();
    let (asyncs, threads, clipped) = check(c, &trace, kinds);
    assert_eq!(report.anomalies, Default::default(), "{report}");
    assert_eq!(
        (report.async_spans, report.thread_spans, report.clipped),
        (asyncs, threads, clipped)
    );
}

fn window() -> impl Strategy<Value = Option<(u64, u64)>> {
    prop_oneof![
        1 => Just(None),
        3 => (0u64..HORIZON + 200, 0u64..HORIZON).prop_map(|(b, len)| Some((b, b + len))),
        // On the grid: begins and ends exactly at the window's edges.
        2 => (0u64..HORIZON / 10, 0u64..HORIZON / 20).prop_map(|(b, len)| Some((b * 10, (b + len) * 10))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn every_span_of_the_window_is_shown_once_where_it_belongs(
        seed in any::<u64>(),
        procs in 1usize..3,
        window in window(),
        only_window in any::<bool>(),
        compact in any::<bool>(),
        shuffle in any::<u64>(),
    ) {
        let c = case(seed, procs, window, only_window);
        run(&c, SpanKinds::Both, compact, shuffle);
    }

    #[test]
    fn each_kind_alone_shows_exactly_its_spans(
        seed in any::<u64>(),
        window in window(),
        thread in any::<bool>(),
    ) {
        let c = case(seed, 1, window, false);
        run(&c, if thread { SpanKinds::Thread } else { SpanKinds::Async }, false, seed);
    }

    /// Thread spans of each stream in a writer of their own, async events in
    /// another, concatenated: the same slices as one writer.
    #[test]
    fn split_across_partition_writers_shows_the_same(
        seed in any::<u64>(),
        window in window(),
        compact in any::<bool>(),
    ) {
        let c = case(seed, 2, window, false);
        let mut whole = Writer::with_options(Options::new().compact(compact));
        let want = c.import(&mut whole, SpanKinds::Both, 7);
        whole.finish().unwrap();

        let mut bytes = Vec::new();
        let mut report = ImportReport::default();
        let mut w = Writer::with_options(Options::new().partition(0).compact(compact));
        let mut im = Importer::new(&mut w, c.config(SpanKinds::Async)).unwrap();
        c.feed_definitions(&mut im);
        for p in 0..c.procs.len() {
            c.feed_events(&mut im, p, 7);
        }
        report.merge(&im.finish().unwrap());
        w.finish().unwrap();
        bytes.extend_from_slice(w.bytes());
        for s in 0..c.streams.len() {
            let options = Options::new().partition(1 + s as u16).compact(compact);
            let mut w = Writer::with_options(options);
            let mut im = Importer::new(&mut w, c.config(SpanKinds::Thread)).unwrap();
            c.feed_definitions(&mut im);
            c.feed_spans(&mut im, |x| x == s);
            report.merge_spans(&im.finish().unwrap());
            w.finish().unwrap();
            bytes.extend_from_slice(w.bytes());
        }
        prop_assert_eq!(&report, &want);
        let trace = inspect::decode(&bytes).unwrap();
        check(&c, &trace, SpanKinds::Both);
    }
}

/// The rows sorted as the service's queries sort them, fed in.
fn import_lake(lake: &sim::Lake, w: &mut Writer, config: ImportConfig) -> ImportReport {
    let mut im = Importer::new(w, config).unwrap();
    for p in &lake.processes {
        let row = ProcessRow {
            process_id: &p.process_id,
            exe: &p.exe,
            pid: p.pid,
            start_time: p.start_time,
            end_time: p.end_time,
        };
        im.process(&row).unwrap();
    }
    let mut process_of = HashMap::new();
    for s in &lake.streams {
        process_of.insert(s.stream_id.as_str(), s.process_id.as_str());
        let row = StreamRow {
            stream_id: &s.stream_id,
            process_id: &s.process_id,
            thread_name: &s.thread_name,
            thread_id: s.thread_id,
        };
        im.stream(&row).unwrap();
    }
    let mut spans: Vec<&sim::ThreadSpan> = lake.thread_spans.iter().collect();
    spans.sort_by_key(|s| (&s.stream_id, s.begin));
    for s in spans {
        let row = ThreadSpanRow {
            stream_id: &s.stream_id,
            begin: s.begin,
            end: s.end,
            depth: s.depth,
            name: &s.name,
            target: &s.target,
            filename: &s.filename,
            line: s.line,
        };
        im.thread_span(&row).unwrap();
    }
    let mut events: Vec<&sim::AsyncEvent> = lake.async_events.iter().collect();
    events.sort_by_key(|e| (process_of[e.stream_id.as_str()], e.time));
    for e in events {
        let row = AsyncEventRow {
            stream_id: &e.stream_id,
            time: e.time,
            event_type: e.event_type,
            span_id: e.span_id,
            parent_span_id: Some(e.parent_span_id),
            depth: e.depth,
            name: &e.name,
            filename: &e.filename,
            target: &e.target,
            line: e.line,
        };
        im.async_event(&row).unwrap();
    }
    im.finish().unwrap()
}

#[test]
fn the_report_counts_exactly_the_anomalies_put_in() {
    for seed in 1..6 {
        let config = sim::SimConfig {
            seed,
            anomalies: true,
            ..Default::default()
        };
        let lake = sim::simulate(&config);
        // The injected rows lie at the first process's start: no window, a
        // window after them (rows before a window are read in full), one
        // opening among them.
        let start = lake.processes[0].start_time;
        for window in [
            None,
            Some((start + 20_000, start + 2_000_000)),
            Some((start + 3, start + 100_000)),
        ] {
            let mut w = Writer::new();
            let mut c = ImportConfig::new();
            if let Some((b, e)) = window {
                c = c.window(b, e);
            }
            let report = import_lake(&lake, &mut w, c);
            w.finish().unwrap();
            let got: Vec<(String, u64)> = report
                .anomalies
                .iter()
                .map(|(k, a)| (format!("{k:?}"), a.count))
                .collect();
            let mut got = got;
            got.sort();
            let mut want: Vec<(String, u64)> = lake
                .injected
                .iter()
                .map(|&(k, n)| (k.to_owned(), n))
                .collect();
            want.sort();
            assert_eq!(got, want, "seed {seed}, window {window:?}:\n{report}");
            let trace = inspect::decode(w.bytes()).unwrap();
            assert_eq!(trace.problems, vec![]);
            assert!(report.async_spans > 0 && report.thread_spans > 0);
        }
    }
}

fn one_stream(w: &mut Writer) -> Importer<'_, Writer> {
    let mut im = Importer::new(w, ImportConfig::new()).unwrap();
    let p = ProcessRow {
        process_id: "p",
        exe: "e",
        pid: Some(5),
        start_time: 0,
        end_time: None,
    };
    im.process(&p).unwrap();
    for s in ["s", "t"] {
        let row = StreamRow {
            stream_id: s,
            process_id: "p",
            thread_name: s,
            thread_id: None,
        };
        im.stream(&row).unwrap();
    }
    im
}

fn ev<'a>(stream: &'a str, time: u64, kind: &'a str, id: u64) -> AsyncEventRow<'a> {
    AsyncEventRow {
        stream_id: stream,
        time,
        event_type: kind,
        span_id: id,
        name: "x",
        ..Default::default()
    }
}

#[test]
fn rows_out_of_order_are_an_error_naming_the_row_and_keep_what_came_before() {
    let mut w = Writer::new();
    let mut im = one_stream(&mut w);
    im.async_event(&ev("s", 100, "begin", 1)).unwrap();
    // Another stream of the same process: the order is per process.
    let err = im.async_event(&ev("t", 90, "end", 1)).unwrap_err();
    match &err {
        ImportError::OutOfOrder {
            table,
            row,
            key,
            time,
            previous,
            ..
        } => assert_eq!(
            (*table, *row, key.as_str(), *time, *previous),
            (Table::AsyncEvents, 1, "p", 90, 100)
        ),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("row 1"), "{err}");
    let span = |begin| ThreadSpanRow {
        stream_id: "s",
        begin,
        end: begin + 5,
        name: "t",
        ..Default::default()
    };
    im.thread_span(&span(50)).unwrap();
    // Another stream has an order of its own.
    im.thread_span(&ThreadSpanRow {
        stream_id: "t",
        ..span(10)
    })
    .unwrap();
    let err = im.thread_span(&span(40)).unwrap_err();
    assert!(matches!(
        err,
        ImportError::OutOfOrder {
            table: Table::ThreadSpans,
            row: 2,
            ..
        }
    ));
    im.async_event(&ev("t", 120, "end", 1)).unwrap();
    let report = im.finish().unwrap();
    assert_eq!((report.async_spans, report.thread_spans), (1, 2));
    w.finish().unwrap();
    let trace = inspect::decode(w.bytes()).unwrap();
    assert_eq!(trace.problems, vec![]);
    let a = trace.slices.iter().find(|s| s.name == "x").unwrap();
    assert_eq!((a.ts, a.dur), (100, Some(20)));
}

#[test]
fn anomalies_are_counted_each_by_kind_and_the_rest_is_shown() {
    let mut w = Writer::new();
    let mut im = one_stream(&mut w);
    let row = |begin, end, depth| ThreadSpanRow {
        stream_id: "s",
        begin,
        end,
        depth,
        name: "t",
        ..Default::default()
    };
    im.thread_span(&row(0, 100, 0)).unwrap();
    im.thread_span(&row(10, 20, 3)).unwrap(); // depth contradicts: shown at 1
    im.thread_span(&row(30, 150, 1)).unwrap(); // crosses its parent's end
    im.thread_span(&row(40, 35, 1)).unwrap(); // ends before it begins
    im.thread_span(&ThreadSpanRow {
        stream_id: "nowhere",
        ..row(50, 60, 0)
    })
    .unwrap();
    im.stream(&StreamRow {
        stream_id: "s",
        process_id: "p",
        thread_name: "renamed",
        thread_id: None,
    })
    .unwrap();
    im.async_event(&ev("s", 100, "begin", 1)).unwrap();
    im.async_event(&ev("s", 110, "begin", 1)).unwrap(); // two begins, one id
    im.async_event(&ev("s", 115, "pause", 1)).unwrap();
    let child = AsyncEventRow {
        parent_span_id: Some(1),
        depth: 4,
        ..ev("t", 120, "begin", 2)
    };
    im.async_event(&child).unwrap(); // depth contradicts the parent's
    im.async_event(&ev("t", 130, "end", 3)).unwrap();
    im.async_event(&ev("t", 140, "begin", 3)).unwrap(); // the end came first
    im.async_event(&ev("s", 150, "end", 1)).unwrap();
    im.async_event(&ev("s", 160, "end", 2)).unwrap();
    let report = im.finish().unwrap();
    let counts: Vec<(AnomalyKind, u64)> = report
        .anomalies
        .iter()
        .map(|(&k, a)| (k, a.count))
        .collect();
    assert_eq!(
        counts,
        vec![
            (AnomalyKind::UnknownStream, 1),
            (AnomalyKind::DuplicateStream, 1),
            (AnomalyKind::ThreadSpanEndBeforeBegin, 1),
            (AnomalyKind::ThreadSpanNotNested, 1),
            (AnomalyKind::ThreadSpanDepth, 1),
            (AnomalyKind::AsyncDuplicateBegin, 1),
            (AnomalyKind::AsyncEndBeforeBegin, 1),
            (AnomalyKind::AsyncDepth, 1),
            (AnomalyKind::UnknownEventType, 1),
        ]
    );
    assert!(report.anomalies.values().all(|a| a.examples.len() == 1));
    assert_eq!((report.thread_spans, report.async_spans), (2, 2));
    w.finish().unwrap();
    let trace = inspect::decode(w.bytes()).unwrap();
    assert_eq!(trace.problems, vec![]);
    let inner = trace.slices.iter().find(|s| s.ts == 10).unwrap();
    assert_eq!(inner.depth, 1);
    let child = trace.slices.iter().find(|s| s.ts == 120).unwrap();
    let parent = trace.slices.iter().find(|s| s.ts == 100).unwrap();
    assert_eq!(trace.tracks[&child.track].parent, Some(parent.track));
    assert_eq!((parent.dur, child.dur), (Some(50), Some(40)));
}

#[test]
fn a_stream_without_its_process_is_shown_under_one_made_from_its_id() {
    let mut w = Writer::new();
    let mut im = Importer::new(&mut w, ImportConfig::new()).unwrap();
    im.stream(&StreamRow {
        stream_id: "s",
        process_id: "lost",
        thread_name: "main",
        thread_id: Some(77),
    })
    .unwrap();
    im.thread_span(&ThreadSpanRow {
        stream_id: "s",
        begin: 5,
        end: 9,
        name: "work",
        ..Default::default()
    })
    .unwrap();
    let report = im.finish().unwrap();
    assert_eq!(report.count(AnomalyKind::StreamWithoutProcess), 1);
    w.finish().unwrap();
    let trace = inspect::decode(w.bytes()).unwrap();
    let process = trace
        .tracks
        .values()
        .find(|t| matches!(t.kind, TrackKind::Process { .. }))
        .unwrap();
    assert_eq!(process.name.as_deref(), Some("lost"));
    assert_eq!(trace.slices.len(), 1);
}

#[test]
fn a_bad_window_is_refused() {
    let mut w = Writer::new();
    let err = Importer::new(&mut w, ImportConfig::new().window(10, 5)).err();
    assert!(matches!(
        err,
        Some(ImportError::BadWindow { begin: 10, end: 5 })
    ));
}

/// A sink that fails once it took `room` bytes.
struct Failing {
    room: usize,
}

impl std::io::Write for Failing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.room == 0 {
            return Err(std::io::Error::other("disk full"));
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failing_sink_stops_the_import_with_the_writer_error() {
    let options = Options::new().flush_threshold(64);
    let mut w = perfetto_trace_writer::StreamingPerfettoWriter::with_options(
        Failing { room: 500 },
        options,
    );
    let mut im = Importer::new(&mut w, ImportConfig::new()).unwrap();
    im.process(&ProcessRow {
        process_id: "p",
        exe: "e",
        pid: Some(5),
        start_time: 0,
        end_time: None,
    })
    .unwrap();
    im.stream(&StreamRow {
        stream_id: "s",
        process_id: "p",
        thread_name: "s",
        thread_id: None,
    })
    .unwrap();
    let err = (0..1_000u64)
        .find_map(|i| {
            im.thread_span(&ThreadSpanRow {
                stream_id: "s",
                begin: i * 10,
                end: i * 10 + 5,
                name: "work",
                ..Default::default()
            })
            .err()
        })
        .expect("the sink fills up");
    assert!(
        matches!(
            err,
            ImportError::Writer(perfetto_trace_writer::Error::Io(_))
        ),
        "{err}"
    );
}
