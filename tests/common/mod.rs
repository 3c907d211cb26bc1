//! Shared by the integration tests: arbitrary call sequences, a reference
//! model of the documented rules that predicts each call's outcome and the
//! slices the trace must show, and sinks that misbehave.
#![allow(dead_code)]

pub mod tp;
pub mod writers;

use std::collections::HashMap;
use std::io::{self, Write};

use perfetto_trace_writer::inspect::{self, ArgValue, TrackKind};
use perfetto_trace_writer::{
    Arg, AsyncLane, ChildOrdering, CounterOptions, CounterTrack, CounterUnit, Error, Event,
    EventKey, InstantTrack, NamedTrack, PacketSink, Packets, ParentTrack, ProcessTrack,
    SiblingMerge, StackFrame, ThreadTrack, TraceWriter, TrackOptions, Value, Writer,
    MAX_SPAN_DEPTH,
};
use proptest::prelude::*;

pub const MAX_TS: u64 = i64::MAX as u64;

/// How an op picks its timestamp, relative to the driver's clock.
#[derive(Clone, Debug)]
pub enum Ts {
    Forward(u16),
    Same,
    Back(u16),
    Exactly(u64),
}

impl Ts {
    fn at(&self, clock: u64) -> u64 {
        match *self {
            Ts::Forward(d) => clock.saturating_add(u64::from(d)),
            Ts::Same => clock,
            Ts::Back(d) => clock.saturating_sub(u64::from(d)),
            Ts::Exactly(t) => t,
        }
    }
}

fn ts() -> impl Strategy<Value = Ts> {
    prop_oneof![
        12 => any::<u16>().prop_map(|d| Ts::Forward(d % 1000)),
        4 => Just(Ts::Same),
        1 => any::<u16>().prop_map(Ts::Back),
        1 => prop_oneof![
            Just(0u64),
            Just(MAX_TS - 1000),
            Just(MAX_TS),
            Just(MAX_TS + 1),
            Just(u64::MAX),
            any::<u64>(),
            (1u64 << 32)..(1u64 << 40),
        ]
        .prop_map(Ts::Exactly),
    ]
}

pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["", "a", "query", "parse", "é漢字🎉\u{10FFFF}", "\u{0}nul"])
            .prop_map(str::to_owned),
        2 => "\\PC{0,12}",
        1 => (1usize..3).prop_map(|n| "ü🎉x".repeat(n * 20_000)),
    ]
}

#[derive(Clone, Debug)]
pub struct Meta {
    pub name: String,
    pub category: String,
    pub file: String,
    pub line: u32,
    /// Flows and arguments: an index into `EXTRAS` (0: none).
    pub extras: u8,
    /// The name written inline (`Event::inline_name`), not interned.
    pub inline: bool,
}

const USER: [Arg<'static>; 2] = [
    Arg::new("user", Value::Str("ann")),
    Arg::new("n", Value::Int(-3)),
];
const IDS: [Value<'static>; 2] = [Value::Uint(7), Value::Double(0.5)];
const REQ: [Arg<'static>; 2] = [
    Arg::new("ok", Value::Bool(true)),
    Arg::new("ids", Value::Array(&IDS)),
];
const NESTED: [Arg<'static>; 1] = [Arg::new("req", Value::Dict(&REQ))];
const STACK: [StackFrame<'static>; 3] = [
    StackFrame::new("main", "src/main.rs", 3),
    StackFrame::new("serve", "src/serve.rs", 40),
    StackFrame::new("é漢字", "", 0),
];

impl Meta {
    /// The event these fields describe, with the flows and arguments of
    /// `extras`.
    pub fn event(&self) -> Event<'_> {
        let e = Event::new(&self.name)
            .category(&self.category)
            .location(&self.file, self.line);
        let e = if self.inline { e.inline_name() } else { e };
        self.with_extras(e)
    }

    /// [`Meta::event`] with the strings given by `key`, registered for them
    /// (but the name, if written inline).
    pub fn keyed_event(&self, key: EventKey) -> Event<'_> {
        match self.inline {
            true => self.with_extras(Event::from_key_named(key, &self.name)),
            false => self.with_extras(Event::from_key(key)),
        }
    }

    /// Whether the event is its strings alone: a call of the strings' or
    /// the key's own form writes it.
    fn plain(&self) -> bool {
        self.extras == 0 && !self.inline
    }

    /// [`Meta::keyed_event`] if given a key, [`Meta::event`] if not.
    pub fn any_event(&self, key: Option<EventKey>) -> Event<'_> {
        match key {
            Some(k) => self.keyed_event(k),
            None => self.event(),
        }
    }

    fn with_extras<'a>(&self, e: Event<'a>) -> Event<'a> {
        match self.extras {
            1 => e.flows(&[1, 2]),
            2 => e.terminating_flows(&[1]),
            3 => e.args(&USER),
            4 => e.args(&NESTED).flows(&[2]),
            5 => e.callstack(&STACK[..2]),
            6 => e.callstack(&STACK).args(&USER),
            _ => e,
        }
    }

    /// The arguments the trace must show, flattened as the trace processor
    /// keys them.
    fn expected_args(&self) -> Vec<(String, String)> {
        let pairs: Vec<(&str, ArgValue)> = match self.extras {
            3 => vec![
                ("user", ArgValue::Str("ann".into())),
                ("n", ArgValue::Int(-3)),
            ],
            6 => vec![
                ("user", ArgValue::Str("ann".into())),
                ("n", ArgValue::Int(-3)),
            ],
            4 => vec![
                ("req.ok", ArgValue::Bool(true)),
                ("req.ids[0]", ArgValue::Uint(7)),
                ("req.ids[1]", ArgValue::Double(0.5)),
            ],
            _ => vec![],
        };
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), format!("{v:?}")))
            .collect()
    }
}

fn meta() -> impl Strategy<Value = Meta> {
    let extras = prop_oneof![6 => Just(0u8), 1 => 1u8..7];
    let inline = prop_oneof![3 => Just(false), 1 => Just(true)];
    let any_site = (
        text(),
        text(),
        prop_oneof![Just(String::new()), text()],
        any::<u32>(),
    );
    // Most events come from a few call sites, as in instrumented code.
    let sites = vec![
        ("query", "sql", "db.rs", 10),
        ("parse", "sql", "db.rs", 20),
        ("query", "", "", 0),
        ("é漢字🎉", "io", "db.rs", 10),
    ];
    let site = prop::sample::select(sites)
        .prop_map(|(n, c, f, l)| (n.to_owned(), c.to_owned(), f.to_owned(), l));
    (prop_oneof![2 => any_site, 3 => site], extras, inline).prop_map(
        |((name, category, file, line), extras, inline)| Meta {
            name,
            category,
            file,
            line,
            extras,
            inline,
        },
    )
}

/// The track a span op is on: a thread, or a named track (`named`), picked
/// among those obtained so far by `index` (modulo).
#[derive(Clone, Copy, Debug)]
pub struct On {
    pub named: bool,
    pub index: usize,
}

fn on() -> impl Strategy<Value = On> {
    (
        prop_oneof![3 => Just(false), 1 => Just(true)],
        any::<usize>(),
    )
        .prop_map(|(named, index)| On { named, index })
}

/// A track that takes spans, as the driver holds it.
#[derive(Clone, Copy)]
enum SpanTrack {
    Thread(ThreadTrack),
    Named(NamedTrack),
}

impl SpanTrack {
    fn uuid(self) -> u64 {
        match self {
            SpanTrack::Thread(t) => t.uuid().get(),
            SpanTrack::Named(n) => n.uuid().get(),
        }
    }
}

/// One call. Indices pick among the handles obtained so far (modulo).
#[derive(Clone, Debug)]
pub enum Op {
    Process {
        key: u8,
        pid: Option<i32>,
        name: String,
        cmdline: Vec<String>,
    },
    Thread {
        process: usize,
        key: u8,
        tid: Option<i64>,
        name: String,
    },
    Lane {
        parent: usize,
        on_thread: bool,
        name: u8,
    },
    Begin {
        on: On,
        ts: Ts,
        meta: Meta,
    },
    End {
        on: On,
        ts: Ts,
    },
    Complete {
        on: On,
        ts: Ts,
        dur: u16,
        meta: Meta,
    },
    /// A complete span at an explicit depth.
    CompleteAtDepth {
        on: On,
        ts: Ts,
        dur: u16,
        depth: u8,
        meta: Meta,
    },
    AsyncBegin {
        lane: usize,
        id: u8,
        ts: Ts,
        meta: Meta,
    },
    AsyncEnd {
        lane: usize,
        id: u8,
        ts: Ts,
    },
    Foreign {
        which: u8,
    },
    Close {
        ts: Ts,
    },
    Flush,
    Finish,
    Deep {
        thread: usize,
    },
    /// An instant on a thread (0), lane (1), process (2) or named track (3).
    Instant {
        target: u8,
        index: usize,
        ts: Ts,
        meta: Meta,
    },
    /// A named track under the root (0), a process (1), a thread (2) or a
    /// named track (3), with one of four option sets.
    Named {
        parent: u8,
        index: usize,
        name: u8,
        options: u8,
    },
    /// A counter track: plain (0), incremental (1), or bytes in KiB (2).
    CounterTrack {
        parent: u8,
        index: usize,
        name: u8,
        kind: u8,
    },
    Counter {
        index: usize,
        ts: Ts,
        value: i64,
        double: bool,
    },
    /// A key of another writer on a thread (0), a lane (1) or an instant
    /// on a thread (2); or (3) a key of this writer with a name of its own.
    BadKey {
        which: u8,
        index: usize,
    },
}

pub fn op() -> impl Strategy<Value = Op> {
    let pid = prop_oneof![4 => Just(None), 2 => (1i32..6).prop_map(Some), 1 => Just(Some(0)),
        1 => prop::sample::select(vec![i32::MIN, -1, i32::MAX]).prop_map(Some)];
    let tid = prop_oneof![4 => Just(None), 2 => (1i64..8).prop_map(Some), 1 => Just(Some(0)),
        1 => prop::sample::select(vec![i64::MIN, i64::MAX]).prop_map(Some)];
    let cmdline = prop::collection::vec(text(), 0..3);
    prop_oneof![
        2 => (0u8..4, pid, text(), cmdline).prop_map(|(key, pid, name, cmdline)| Op::Process { key, pid, name, cmdline }),
        3 => (any::<usize>(), 0u8..4, tid, text()).prop_map(|(process, key, tid, name)| Op::Thread { process, key, tid, name }),
        2 => (any::<usize>(), any::<bool>(), 0u8..3).prop_map(|(parent, on_thread, name)| Op::Lane { parent, on_thread, name }),
        12 => (on(), ts(), meta()).prop_map(|(on, ts, meta)| Op::Begin { on, ts, meta }),
        10 => (on(), ts()).prop_map(|(on, ts)| Op::End { on, ts }),
        8 => (on(), ts(), any::<u16>(), meta()).prop_map(|(on, ts, dur, meta)| Op::Complete { on, ts, dur: dur % 3000, meta }),
        4 => (on(), ts(), prop_oneof![Just(0u16), any::<u16>()], 0u8..6, meta()).prop_map(|(on, ts, dur, depth, meta)| Op::CompleteAtDepth { on, ts, dur: dur % 3000, depth, meta }),
        8 => (any::<usize>(), 0u8..8, ts(), meta()).prop_map(|(lane, id, ts, meta)| Op::AsyncBegin { lane, id, ts, meta }),
        8 => (any::<usize>(), 0u8..8, ts()).prop_map(|(lane, id, ts)| Op::AsyncEnd { lane, id, ts }),
        1 => (0u8..5).prop_map(|which| Op::Foreign { which }),
        1 => ts().prop_map(|ts| Op::Close { ts }),
        1 => Just(Op::Flush),
        1 => Just(Op::Finish),
        1 => any::<usize>().prop_map(|thread| Op::Deep { thread }),
        4 => (0u8..4, any::<usize>(), ts(), meta()).prop_map(|(target, index, ts, meta)| Op::Instant { target, index, ts, meta }),
        1 => (0u8..4, any::<usize>(), 0u8..3, 0u8..4).prop_map(|(parent, index, name, options)| Op::Named { parent, index, name, options }),
        1 => (0u8..4, any::<usize>(), 0u8..3, 0u8..3).prop_map(|(parent, index, name, kind)| Op::CounterTrack { parent, index, name, kind }),
        4 => (any::<usize>(), ts(), -50i64..50, any::<bool>()).prop_map(|(index, ts, value, double)| Op::Counter { index, ts, value, double }),
        1 => (0u8..4, any::<usize>()).prop_map(|(which, index)| Op::BadKey { which, index }),
    ]
}

fn track_options(i: u8) -> TrackOptions<'static> {
    match i {
        1 => TrackOptions {
            child_ordering: Some(ChildOrdering::Explicit),
            ..Default::default()
        },
        2 => TrackOptions {
            sibling_rank: Some(5),
            merge: Some(SiblingMerge::None),
            ..Default::default()
        },
        3 => TrackOptions {
            merge: Some(SiblingMerge::ByKey("k")),
            ..Default::default()
        },
        _ => TrackOptions::default(),
    }
}

fn counter_options(kind: u8) -> CounterOptions<'static> {
    match kind {
        1 => CounterOptions {
            incremental: true,
            ..Default::default()
        },
        2 => CounterOptions {
            unit: CounterUnit::Bytes,
            multiplier: Some(1024),
            ..Default::default()
        },
        _ => CounterOptions::default(),
    }
}

/// A slice as the model expects it: thread slices by track uuid, async ones
/// by (lane parent, lane name), since the lane picks their track.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Expected {
    pub place: (u64, String),
    pub ts: u64,
    pub dur: Option<u64>,
    pub depth: usize,
    pub name: String,
    pub categories: Vec<String>,
    pub source: Option<(String, u32)>,
    pub args: Vec<(String, String)>,
}

fn expected(place: (u64, String), ts: u64, depth: usize, m: &Meta) -> Expected {
    Expected {
        place,
        ts,
        dur: None,
        depth,
        name: m.name.clone(),
        categories: if m.category.is_empty() {
            vec![]
        } else {
            vec![m.category.clone()]
        },
        source: (!m.file.is_empty()).then(|| (m.file.clone(), m.line)),
        args: m.expected_args(),
    }
}

#[derive(Default)]
struct ThreadModel {
    /// (begin, known end, index of its expected slice)
    stack: Vec<(u64, Option<u64>, usize)>,
    last: u64,
    /// Instants just written at one time: the next one there nests under
    /// them, as in the trace processor.
    run: Option<(u64, usize)>,
}

impl ThreadModel {
    fn due(&self, ts: u64) -> usize {
        self.stack
            .iter()
            .rev()
            .take_while(|f| f.1.is_some_and(|e| e <= ts))
            .count()
    }
    fn limit(&self, keep: usize) -> u64 {
        self.stack[..keep]
            .iter()
            .filter_map(|f| f.1)
            .min()
            .unwrap_or(u64::MAX)
    }
}

/// The documented rules, written plainly, and what the trace must show.
#[derive(Default)]
pub struct Model {
    processes: HashMap<u8, (Option<i32>, String, Vec<String>, usize)>,
    threads: HashMap<(usize, u8), (Option<i64>, String, usize)>,
    pids: HashMap<i32, usize>,
    tids: HashMap<i64, usize>,
    thread_state: Vec<ThreadModel>,
    open_async: HashMap<(usize, u8), (u64, usize)>,
    pub slices: Vec<Expected>,
    pub tracks: Vec<(u64, Option<String>, TrackKind)>,
    pub lanes: Vec<(u64, String)>,
    /// Named and counter tracks: (parent, name, domain) to options/kind.
    custom_defs: HashMap<(u64, u8, bool), u8>,
    /// Their uuids, parents and names.
    pub custom: Vec<(u64, Option<u64>, String)>,
    /// Instants so far per (track, time) on tracks that hold only instants.
    instant_runs: HashMap<(u64, u64), usize>,
    /// Counter values the trace must show: (track, time, value).
    pub counters: Vec<(u64, u64, f64)>,
    sums: HashMap<u64, f64>,
}

/// The outcome of one call, comparable across writers and with the model.
pub type Outcome = Result<(), String>;

pub fn kind(e: &Error) -> String {
    let s = format!("{e:?}");
    s.split(['(', ' ', '{'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn err(kind: &str) -> Outcome {
    Err(kind.to_owned())
}

/// Drives a writer and the model with the same ops; returns each op's
/// outcome as the writer reported it, and asserts the model agrees.
pub struct Driver {
    pub processes: Vec<ProcessTrack>,
    pub threads: Vec<ThreadTrack>,
    pub lanes: Vec<AsyncLane>,
    pub named: Vec<NamedTrack>,
    /// Each thread's and named track's stack in the model (`thread_state`).
    thread_stacks: Vec<usize>,
    named_stacks: Vec<usize>,
    pub counter_tracks: Vec<(CounterTrack, u8)>,
    foreign: (ProcessTrack, ThreadTrack, AsyncLane, NamedTrack),
    foreign_key: EventKey,
    /// Whether begins, complete spans and instants without extras are
    /// given as event keys, mixed with the string form (two in three).
    keyed: bool,
    /// The keys registered, by site, and how many events could have had one.
    keys: HashMap<Site, EventKey>,
    /// The keys with argument names registered, by site and names.
    named_keys: HashMap<(Site, [&'static str; 2]), EventKey>,
    turn: u32,
    clock: u64,
    pub model: Model,
    pub outcomes: Vec<Outcome>,
    /// The outcomes of span ops on named tracks, also in `outcomes`.
    pub named_outcomes: Vec<Outcome>,
}

/// A call site: name, category, file and line.
type Site = (String, String, String, u32);

impl Default for Driver {
    fn default() -> Self {
        Self::new()
    }
}

impl Driver {
    pub fn new() -> Self {
        let mut other = Writer::new();
        let p = other.process("other", None, "other", &[]).unwrap();
        let t = other.thread(p, "other", None, "other").unwrap();
        let l = other.async_lane(p, "other").unwrap();
        let n = other.track(p, "other", &TrackOptions::default()).unwrap();
        let foreign_key = other.event_key("x", "", "", 0).unwrap();
        Driver {
            foreign_key,
            keyed: false,
            keys: HashMap::new(),
            named_keys: HashMap::new(),
            turn: 0,
            processes: vec![],
            threads: vec![],
            lanes: vec![],
            named: vec![],
            thread_stacks: vec![],
            named_stacks: vec![],
            counter_tracks: vec![],
            foreign: (p, t, l, n),
            clock: 1_000,
            model: Model::default(),
            outcomes: vec![],
            named_outcomes: vec![],
        }
    }

    /// The track an op's `On` names and its stack in the model, if there is
    /// such a track yet.
    fn span_track(&self, on: On) -> Option<(SpanTrack, usize)> {
        if on.named {
            let i = on.index % self.named.len().max(1);
            let h = *self.named.get(i)?;
            Some((SpanTrack::Named(h), self.named_stacks[i]))
        } else {
            let i = on.index % self.threads.len().max(1);
            let h = *self.threads.get(i)?;
            Some((SpanTrack::Thread(h), self.thread_stacks[i]))
        }
    }

    /// [`Driver::record`] for a span op, noted apart if on a named track.
    fn record_span(&mut self, got: Result<(), Error>, want: Outcome, op: &Op, named: bool) {
        self.record(got, want, op);
        if named {
            self.named_outcomes
                .push(self.outcomes[self.outcomes.len() - 1].clone());
        }
    }

    /// A driver that gives two in three events as keys (see `keyed`).
    pub fn with_keys() -> Self {
        Driver {
            keyed: true,
            ..Self::new()
        }
    }

    /// The key of `meta`'s site, for an event to be given as a key; none
    /// for the string form.
    fn key_for<W: TraceWriter>(&mut self, w: &mut W, meta: &Meta) -> Option<EventKey> {
        if !self.keyed {
            return None;
        }
        self.turn += 1;
        if self.turn % 3 == 0 {
            return None;
        }
        let site = (
            meta.name.clone(),
            meta.category.clone(),
            meta.file.clone(),
            meta.line,
        );
        let key = match self.keys.get(&site) {
            // Registering a site again gives its key.
            Some(&k) if self.turn % 5 == 0 => {
                let again = w.event_key(&meta.name, &meta.category, &meta.file, meta.line);
                assert_eq!(again.unwrap(), k);
                k
            }
            Some(&k) => k,
            None => {
                let k = w.event_key(&meta.name, &meta.category, &meta.file, meta.line);
                let k = k.expect("sites of strings under the limit are accepted");
                self.keys.insert(site, k);
                k
            }
        };
        Some(key)
    }

    /// The key of `meta`'s site with the names of `USER`'s arguments, in
    /// their order (most often) or another, registered now if new.
    fn key_with_args<W: TraceWriter>(&mut self, w: &mut W, meta: &Meta) -> EventKey {
        let names = match self.turn % 3 {
            0 => [USER[1].name, USER[0].name],
            _ => [USER[0].name, USER[1].name],
        };
        let site = (
            meta.name.clone(),
            meta.category.clone(),
            meta.file.clone(),
            meta.line,
        );
        let k = w.event_key_with_args(&meta.name, &meta.category, &meta.file, meta.line, &names);
        let k = k.expect("sites of strings under the limit are accepted");
        // Registering a site again gives its key.
        let again = self.named_keys.entry((site, names)).or_insert(k);
        assert_eq!(*again, k);
        k
    }

    fn record(&mut self, got: Result<(), Error>, want: Outcome, op: &Op) {
        let got = got.map_err(|e| kind(&e));
        assert_eq!(got, want, "writer and model disagree on {op:?}");
        self.outcomes.push(got);
    }

    pub fn run<W: TraceWriter>(&mut self, w: &mut W, ops: &[Op]) {
        for op in ops {
            self.step(w, op);
        }
        let open = w.finish().unwrap();
        self.model_finish();
        let explicit = self
            .model
            .thread_state
            .iter()
            .flat_map(|t| &t.stack)
            .filter(|f| f.1.is_none())
            .count();
        assert_eq!(open.len(), explicit + self.model.open_async.len());
    }

    fn step<W: TraceWriter>(&mut self, w: &mut W, op: &Op) {
        let key = match op {
            Op::Begin { meta, .. }
            | Op::Complete { meta, .. }
            | Op::CompleteAtDepth { meta, .. }
            | Op::AsyncBegin { meta, .. }
            | Op::Instant { meta, .. } => self.key_for(w, meta),
            _ => None,
        };
        let m = &mut self.model;
        match op {
            Op::Process {
                key,
                pid,
                name,
                cmdline,
            } => {
                let args: Vec<&str> = cmdline.iter().map(String::as_str).collect();
                let want = match m.processes.get(key) {
                    Some(p) if (p.0, &p.1, &p.2) != (*pid, name, cmdline) => err("Redefined"),
                    Some(_) => Ok(()),
                    None => match pid {
                        Some(0) => err("ZeroId"),
                        Some(p) if *p < 0 => err("NegativePid"),
                        Some(p) if m.pids.contains_key(p) => err("PidInUse"),
                        _ => Ok(()),
                    },
                };
                let got = w.process(&format!("proc-{key}"), *pid, name, &args);
                if let Ok(h) = got {
                    if !m.processes.contains_key(key) {
                        let real = w.pid(h).unwrap();
                        if pid.is_none() {
                            assert!(real > 1 << 22, "derived pid {real} above real pids");
                        }
                        assert!(
                            m.pids.insert(real, m.tracks.len()).is_none(),
                            "pid {real} given twice"
                        );
                        m.processes.insert(
                            *key,
                            (*pid, name.clone(), cmdline.clone(), self.processes.len()),
                        );
                        m.tracks.push((
                            h.uuid().get(),
                            Some(name.clone()),
                            TrackKind::Process {
                                pid: real,
                                cmdline: cmdline.clone(),
                            },
                        ));
                        self.processes.push(h);
                    }
                }
                self.record(got.map(drop), want, op);
            }
            Op::Thread {
                process,
                key,
                tid,
                name,
            } => {
                let Some(&p) = pick(&self.processes, *process) else {
                    return;
                };
                let pi = process % self.processes.len();
                let want = match m.threads.get(&(pi, *key)) {
                    Some(t) if (t.0, &t.1) != (*tid, name) => err("Redefined"),
                    Some(_) => Ok(()),
                    None => match tid {
                        Some(0) => err("ZeroId"),
                        Some(t) if m.tids.contains_key(t) => err("TidInUse"),
                        _ => Ok(()),
                    },
                };
                let got = w.thread(p, &format!("stream-{key}"), *tid, name);
                if let Ok(h) = got {
                    if !m.threads.contains_key(&(pi, *key)) {
                        let real = w.tid(h).unwrap();
                        assert!(m.tids.insert(real, 0).is_none(), "tid {real} given twice");
                        if tid.is_none() {
                            assert!(
                                !m.pids.contains_key(&(real as i32)),
                                "derived tid {real} is a pid"
                            );
                        }
                        m.threads
                            .insert((pi, *key), (*tid, name.clone(), self.threads.len()));
                        self.thread_stacks.push(m.thread_state.len());
                        m.thread_state.push(ThreadModel::default());
                        let pid = w.pid(p).unwrap();
                        m.tracks.push((
                            h.uuid().get(),
                            Some(name.clone()),
                            TrackKind::Thread { pid, tid: real },
                        ));
                        self.threads.push(h);
                    }
                }
                self.record(got.map(drop), want, op);
            }
            Op::Lane {
                parent,
                on_thread,
                name,
            } => {
                let parent: Option<ParentTrack> = if *on_thread {
                    pick(&self.threads, *parent).map(|&t| t.into())
                } else {
                    pick(&self.processes, *parent).map(|&p| p.into())
                };
                let Some(parent) = parent else { return };
                let h = w.async_lane(parent, &format!("lane {name}"));
                let h = h.expect("lanes of own tracks are always accepted");
                if !self.lanes.contains(&h) {
                    self.lanes.push(h);
                    m.lanes.push((parent.uuid().get(), format!("lane {name}")));
                }
                self.outcomes.push(Ok(()));
            }
            Op::Begin { on, ts, meta } | Op::Complete { on, ts, meta, .. } => {
                let Some((h, ti)) = self.span_track(*on) else {
                    return;
                };
                let m = &mut self.model;
                let t = ts.at(self.clock);
                let end = match op {
                    Op::Complete { dur, .. } => Some(t.saturating_add(u64::from(*dur))),
                    _ => None,
                };
                let want = m.check_begin(ti, t, end);
                let got = match (h, key, end, meta.plain()) {
                    (SpanTrack::Named(h), k, Some(e), _) => {
                        w.track_complete_span(h, t, e, &meta.any_event(k))
                    }
                    (SpanTrack::Named(h), k, None, _) => {
                        w.track_span_begin(h, t, &meta.any_event(k))
                    }
                    (SpanTrack::Thread(h), Some(k), Some(e), true) => {
                        w.complete_span_key(h, t, e, k)
                    }
                    (SpanTrack::Thread(h), Some(k), None, true) => w.span_begin_key(h, t, k),
                    (SpanTrack::Thread(h), Some(k), Some(e), _) => {
                        w.complete_span_with(h, t, e, &meta.keyed_event(k))
                    }
                    (SpanTrack::Thread(h), Some(k), None, _) => {
                        w.span_begin_with(h, t, &meta.keyed_event(k))
                    }
                    (SpanTrack::Thread(h), None, Some(e), true) => {
                        w.complete_span(h, t, e, &meta.name, &meta.category, &meta.file, meta.line)
                    }
                    (SpanTrack::Thread(h), None, None, true) => {
                        w.span_begin(h, t, &meta.name, &meta.category, &meta.file, meta.line)
                    }
                    (SpanTrack::Thread(h), None, Some(e), _) => {
                        w.complete_span_with(h, t, e, &meta.event())
                    }
                    (SpanTrack::Thread(h), None, None, _) => w.span_begin_with(h, t, &meta.event()),
                };
                if want.is_ok() {
                    m.push(ti, h.uuid(), t, end, meta);
                    self.clock = t;
                }
                self.record_span(got, want, op, on.named);
            }
            Op::CompleteAtDepth {
                on,
                ts,
                dur,
                depth,
                meta,
            } => {
                let Some((h, ti)) = self.span_track(*on) else {
                    return;
                };
                let m = &mut self.model;
                let t = ts.at(self.clock);
                let end = t.saturating_add(u64::from(*dur));
                let depth = usize::from(*depth);
                let want = m.check_at_depth(ti, t, end, depth);
                let got = match h {
                    SpanTrack::Thread(h) => {
                        w.complete_span_at_depth(h, depth, t, end, &meta.any_event(key))
                    }
                    SpanTrack::Named(h) => {
                        w.track_complete_span_at_depth(h, depth, t, end, &meta.any_event(key))
                    }
                };
                if want.is_ok() {
                    // The frames below `depth` stay, even ended ones.
                    m.pop_to(ti, depth);
                    m.push_kept(ti, h.uuid(), t, Some(end), meta);
                    self.clock = t;
                }
                self.record_span(got, want, op, on.named);
            }
            Op::End { on, ts } => {
                let Some((h, ti)) = self.span_track(*on) else {
                    return;
                };
                let m = &mut self.model;
                let t = ts.at(self.clock);
                let want = m.check_end(ti, t);
                let got = match h {
                    SpanTrack::Thread(h) => w.span_end(h, t),
                    SpanTrack::Named(h) => w.track_span_end(h, t),
                };
                if want.is_ok() {
                    m.end(ti, t);
                    self.clock = t;
                }
                self.record_span(got, want, op, on.named);
            }
            Op::AsyncBegin { lane, id, ts, meta } => {
                let Some(&h) = pick(&self.lanes, *lane) else {
                    return;
                };
                let li = lane % self.lanes.len();
                let t = ts.at(self.clock);
                let want = if t > MAX_TS {
                    err("TimestampOutOfRange")
                } else if m.open_async.contains_key(&(li, *id)) {
                    err("AsyncSpanAlreadyOpen")
                } else {
                    Ok(())
                };
                let got = if let Some(k) = key {
                    match meta.plain() {
                        true => w.async_span_begin_key(h, u64::from(*id), t, k),
                        false => {
                            w.async_span_begin_with(h, u64::from(*id), t, &meta.keyed_event(k))
                        }
                    }
                } else if meta.plain() {
                    w.async_span_begin(
                        h,
                        u64::from(*id),
                        t,
                        &meta.name,
                        &meta.category,
                        &meta.file,
                        meta.line,
                    )
                } else {
                    w.async_span_begin_with(h, u64::from(*id), t, &meta.event())
                };
                if want.is_ok() {
                    m.open_async.insert((li, *id), (t, m.slices.len()));
                    m.slices.push(expected(m.lanes[li].clone(), t, 0, meta));
                    self.clock = t;
                }
                self.record(got, want, op);
            }
            Op::AsyncEnd { lane, id, ts } => {
                let Some(&h) = pick(&self.lanes, *lane) else {
                    return;
                };
                let li = lane % self.lanes.len();
                let t = ts.at(self.clock);
                let want = match m.open_async.get(&(li, *id)) {
                    _ if t > MAX_TS => err("TimestampOutOfRange"),
                    None => err("AsyncSpanNotOpen"),
                    Some(&(b, _)) if t < b => err("EndBeforeBegin"),
                    Some(_) => Ok(()),
                };
                let got = w.async_span_end(h, u64::from(*id), t);
                if want.is_ok() {
                    let (b, i) = m.open_async.remove(&(li, *id)).unwrap();
                    m.slices[i].dur = Some(t - b);
                    self.clock = t;
                }
                self.record(got, want, op);
            }
            Op::Foreign { which } => {
                let (p, t, l, n) = self.foreign;
                let got = match which {
                    0 => w.thread(p, "x", None, "x").map(drop),
                    1 => w.span_begin(t, self.clock, "x", "", "", 0),
                    2 => w.async_span_begin(l, 1, self.clock, "x", "", "", 0),
                    4 => w.track_span_begin(n, self.clock, &Event::new("x")),
                    _ => w.async_lane(t, "x").map(drop),
                };
                self.record(got, err("ForeignHandle"), op);
            }
            Op::BadKey { which, index } => {
                let (foreign, t) = (self.foreign_key, self.clock);
                let got = match which {
                    0 | 2 | 3 => {
                        let Some(&h) = pick(&self.threads, *index) else {
                            return;
                        };
                        match which {
                            0 => w.span_begin_key(h, t, foreign),
                            2 => w.instant_key(h, t, foreign),
                            _ => {
                                let own = w.event_key("x", "", "", 0).unwrap();
                                // A name of its own, or a category beside
                                // a name inline.
                                let named = match index % 2 {
                                    0 => Event {
                                        name: "x",
                                        ..Event::from_key(own)
                                    },
                                    _ => Event::from_key_named(own, "x").category("c"),
                                };
                                let got = w.span_begin_with(h, t, &named);
                                self.record(got, err("KeyAndStrings"), op);
                                return;
                            }
                        }
                    }
                    _ => {
                        let Some(&h) = pick(&self.lanes, *index) else {
                            return;
                        };
                        w.async_span_begin_key(h, 1, t, foreign)
                    }
                };
                self.record(got, err("ForeignKey"), op);
            }
            Op::Close { ts } => {
                let t = ts.at(self.clock);
                // The writer checks threads, then named tracks, each in the
                // order they were described, and reports the first failure.
                let order: Vec<usize> = self
                    .thread_stacks
                    .iter()
                    .chain(&self.named_stacks)
                    .copied()
                    .collect();
                let want = m.check_close(t, &order);
                let got = w.close_open_spans(t).map(drop);
                if want.is_ok() {
                    m.close(t);
                    self.clock = self.clock.max(t);
                }
                self.record(got, want, op);
            }
            Op::Flush => {
                let got = w.flush();
                self.record(got, Ok(()), op);
            }
            Op::Finish => {
                let got = w.finish().map(drop);
                self.model_finish();
                self.record(got, Ok(()), op);
            }
            Op::Instant {
                target,
                index,
                ts,
                meta,
            } => {
                let t = ts.at(self.clock);
                let on = On {
                    named: target % 4 == 3,
                    index: *index,
                };
                let (track, want, place) = match target % 4 {
                    0 | 3 => {
                        let Some((h, ti)) = self.span_track(on) else {
                            return;
                        };
                        let m = &mut self.model;
                        let th = &m.thread_state[ti];
                        // Instants already at `t` stack below this one.
                        let run = match th.run {
                            Some((at, n)) if at == t && th.due(t) == 0 => n,
                            _ => 0,
                        };
                        let want = match m.check_begin(ti, t, Some(t)) {
                            Ok(()) if th.stack.len() - th.due(t) + run >= MAX_SPAN_DEPTH => {
                                err("TooDeep")
                            }
                            other => other,
                        };
                        let track = match h {
                            SpanTrack::Thread(h) => InstantTrack::Thread(h),
                            SpanTrack::Named(h) => InstantTrack::Named(h),
                        };
                        (track, want, (h.uuid(), String::new()))
                    }
                    1 => {
                        let Some(&h) = pick(&self.lanes, *index) else {
                            return;
                        };
                        let li = index % self.lanes.len();
                        (InstantTrack::Lane(h), ok_ts(t), m.lanes[li].clone())
                    }
                    2 => {
                        let Some(&h) = pick(&self.processes, *index) else {
                            return;
                        };
                        (
                            InstantTrack::Process(h),
                            ok_ts(t),
                            (h.uuid().get(), String::new()),
                        )
                    }
                    _ => unreachable!(),
                };
                let stack = self.span_track(on).map(|(_, ti)| ti);
                // On a process, now and then by its uuid and a key with its
                // arguments' names (`USER`'s, or others), or none.
                let on_uuid = match (key, meta.extras, track) {
                    (Some(k), 0 | 3, InstantTrack::Process(h)) if self.turn % 2 == 0 => {
                        let k = match meta.extras {
                            3 => self.key_with_args(w, meta),
                            _ => k,
                        };
                        Some((h.uuid(), k))
                    }
                    _ => None,
                };
                let m = &mut self.model;
                let args: &[Arg<'_>] = if meta.extras == 3 { &USER } else { &[] };
                let got = match (key, on_uuid) {
                    (_, Some((uuid, k))) if meta.inline => {
                        w.instant_on_key_named(uuid, t, k, &meta.name, args)
                    }
                    (_, Some((uuid, k))) => w.instant_on_key(uuid, t, k, args),
                    (Some(k), None) if meta.plain() => w.instant_key(track, t, k),
                    (Some(k), None) => w.instant(track, t, &meta.keyed_event(k)),
                    (None, None) => w.instant(track, t, &meta.event()),
                };
                if want.is_ok() {
                    let depth = match track {
                        InstantTrack::Thread(_) | InstantTrack::Named(_) => {
                            let ti = stack.unwrap();
                            m.pop_due(ti, t);
                            let th = &mut m.thread_state[ti];
                            th.last = t;
                            let run = match th.run {
                                Some((at, n)) if at == t => n,
                                _ => 0,
                            };
                            th.run = Some((t, run + 1));
                            th.stack.len() + run
                        }
                        other => {
                            let uuid = match other {
                                InstantTrack::Lane(l) => l.uuid().get(),
                                InstantTrack::Process(p) => p.uuid().get(),
                                InstantTrack::Named(_) | InstantTrack::Thread(_) => {
                                    unreachable!()
                                }
                            };
                            let n = m.instant_runs.entry((uuid, t)).or_default();
                            *n += 1;
                            *n - 1
                        }
                    };
                    let mut e = expected(place, t, depth, meta);
                    e.dur = Some(0);
                    m.slices.push(e);
                    self.clock = self.clock.max(t).min(MAX_TS);
                }
                self.record(got, want, op);
            }
            Op::Named {
                parent,
                index,
                name,
                options,
            } => {
                let Some(parent) =
                    parent_of(&self.processes, &self.threads, &self.named, *parent, *index)
                else {
                    return;
                };
                let key = (parent.uuid().get(), *name, false);
                let want = match m.custom_defs.get(&key) {
                    Some(&o) if o != *options => err("Redefined"),
                    _ => Ok(()),
                };
                let got = w.track(parent, &format!("track {name}"), &track_options(*options));
                if let Ok(h) = got {
                    if m.custom_defs.insert(key, *options).is_none() {
                        self.named.push(h);
                        self.named_stacks.push(m.thread_state.len());
                        m.thread_state.push(ThreadModel::default());
                        let p = parent.uuid().get();
                        m.custom.push((
                            h.uuid().get(),
                            (p != 0).then_some(p),
                            format!("track {name}"),
                        ));
                    }
                }
                self.record(got.map(drop), want, op);
            }
            Op::CounterTrack {
                parent,
                index,
                name,
                kind,
            } => {
                let Some(parent) =
                    parent_of(&self.processes, &self.threads, &self.named, *parent, *index)
                else {
                    return;
                };
                let key = (parent.uuid().get(), *name, true);
                let want = match m.custom_defs.get(&key) {
                    Some(&k) if k != *kind => err("Redefined"),
                    _ => Ok(()),
                };
                let got =
                    w.counter_track(parent, &format!("counter {name}"), &counter_options(*kind));
                if let Ok(h) = got {
                    if m.custom_defs.insert(key, *kind).is_none() {
                        self.counter_tracks.push((h, *kind));
                        let p = parent.uuid().get();
                        m.custom.push((
                            h.uuid().get(),
                            (p != 0).then_some(p),
                            format!("counter {name}"),
                        ));
                    }
                }
                self.record(got.map(drop), want, op);
            }
            Op::Counter {
                index,
                ts,
                value,
                double,
            } => {
                let Some(&(h, kind)) = pick(&self.counter_tracks, *index) else {
                    return;
                };
                let t = ts.at(self.clock);
                let want = ok_ts(t);
                let double = *double && kind == 0;
                let got = if double {
                    w.counter(h, t, *value as f64 / 4.0)
                } else {
                    w.counter(h, t, *value)
                };
                if want.is_ok() {
                    let uuid = h.uuid().get();
                    let v = if double {
                        *value as f64 / 4.0
                    } else {
                        *value as f64
                    };
                    let v = match kind {
                        1 => {
                            let sum = m.sums.entry(uuid).or_default();
                            *sum += v;
                            *sum
                        }
                        2 => v * 1024.0,
                        _ => v,
                    };
                    m.counters.push((uuid, t, v));
                }
                self.record(got, want, op);
            }
            Op::Deep { thread } => {
                // Nest to the limit and one past it, then unwind.
                let Some(&h) = pick(&self.threads, *thread) else {
                    return;
                };
                let ti = self.thread_stacks[thread % self.threads.len()];
                let t = self.clock;
                let meta = Meta {
                    name: "deep".into(),
                    category: String::new(),
                    file: String::new(),
                    line: 0,
                    extras: 0,
                    inline: false,
                };
                let mut pushed = 0;
                let last = loop {
                    let want = m.check_begin(ti, t, None);
                    let got = w.span_begin(h, t, "deep", "", "", 0);
                    let stop = want.is_err();
                    if want.is_ok() {
                        m.push(ti, h.uuid().get(), t, None, &meta);
                        pushed += 1;
                    }
                    let got = got.map_err(|e| kind(&e));
                    assert_eq!(got, want, "deep nesting");
                    if stop || pushed > MAX_SPAN_DEPTH {
                        break got;
                    }
                };
                for _ in 0..pushed {
                    let want = m.check_end(ti, t);
                    assert_eq!(w.span_end(h, t).map_err(|e| kind(&e)), want);
                    m.end(ti, t);
                }
                self.outcomes.push(last);
            }
        }
    }

    fn model_finish(&mut self) {
        let m = &mut self.model;
        for ti in 0..m.thread_state.len() {
            m.pop_due(ti, u64::MAX);
        }
    }

    /// Asserts that the trace shows exactly what the model expects.
    pub fn check_trace(&self, bytes: &[u8]) {
        let trace = inspect::decode(bytes).expect("decodes as a Trace");
        assert_eq!(trace.problems, vec![], "the trace has problems");
        let mut want_tracks = self.model.tracks.clone();
        want_tracks.sort_by_key(|t| t.0);
        let mut got_tracks = vec![];
        let mut lane_tracks = HashMap::new();
        let custom: HashMap<u64, (Option<u64>, String)> = self
            .model
            .custom
            .iter()
            .map(|(u, p, n)| (*u, (*p, n.clone())))
            .collect();
        for (uuid, parent, name) in &self.model.custom {
            let t = &trace.tracks[uuid];
            assert_eq!(
                (&t.parent, t.name.as_ref()),
                (parent, Some(name)),
                "named or counter track"
            );
        }
        for (&uuid, t) in &trace.tracks {
            match t.kind {
                TrackKind::Other if custom.contains_key(&uuid) => {}
                TrackKind::Other => {
                    let place = (
                        t.parent.expect("async tracks have a parent"),
                        t.name.clone().unwrap_or_default(),
                    );
                    assert!(
                        self.model.lanes.contains(&place),
                        "async track {place:?} of no lane"
                    );
                    lane_tracks.insert(uuid, place);
                }
                _ => got_tracks.push((uuid, t.name.clone(), t.kind.clone())),
            }
            assert!(t.parent.is_none_or(|p| trace.tracks.contains_key(&p)));
        }
        assert_eq!(got_tracks, want_tracks, "process and thread tracks");

        let mut got: Vec<Expected> = trace
            .slices
            .iter()
            .map(|s| Expected {
                place: lane_tracks
                    .get(&s.track)
                    .cloned()
                    .unwrap_or((s.track, String::new())),
                ts: s.ts,
                dur: s.dur,
                depth: s.depth,
                name: s.name.clone(),
                categories: s.categories.clone(),
                source: s.source.clone(),
                args: s
                    .args
                    .iter()
                    .map(|(k, v)| (k.clone(), format!("{v:?}")))
                    .collect(),
            })
            .collect();
        let mut want = self.model.slices.clone();
        got.sort();
        want.sort();
        assert_eq!(got.len(), want.len(), "slice count");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w);
        }

        let key = |&(track, ts, v): &(u64, u64, f64)| (track, ts, v.to_bits());
        let mut got: Vec<_> = trace
            .counters
            .iter()
            .map(|c| key(&(c.track, c.ts, c.value)))
            .collect();
        let mut want: Vec<_> = self.model.counters.iter().map(key).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "counter values");
    }
}

/// The parent an op names: the root (0), a process (1), a thread (2) or a
/// named track (3); none if there is no such track yet.
fn parent_of(
    processes: &[ProcessTrack],
    threads: &[ThreadTrack],
    named: &[NamedTrack],
    kind: u8,
    index: usize,
) -> Option<ParentTrack> {
    match kind % 4 {
        0 => Some(ParentTrack::Root),
        1 => pick(processes, index).map(|&p| p.into()),
        2 => pick(threads, index).map(|&t| t.into()),
        _ => pick(named, index).map(|&n| n.into()),
    }
}

fn ok_ts(t: u64) -> Outcome {
    if t > MAX_TS {
        err("TimestampOutOfRange")
    } else {
        Ok(())
    }
}

fn pick<T>(v: &[T], i: usize) -> Option<&T> {
    (!v.is_empty()).then(|| &v[i % v.len()])
}

impl Model {
    fn check_begin(&self, ti: usize, t: u64, end: Option<u64>) -> Outcome {
        let th = &self.thread_state[ti];
        if t > MAX_TS || end.is_some_and(|e| e > MAX_TS) {
            return err("TimestampOutOfRange");
        }
        if t < th.last {
            return err("TimestampBackwards");
        }
        let keep = th.stack.len() - th.due(t);
        if end.unwrap_or(t) > th.limit(keep) {
            return err("NotNested");
        }
        if keep >= MAX_SPAN_DEPTH {
            return err("TooDeep");
        }
        Ok(())
    }

    /// The rules of `complete_span_at_depth`: the frames not ended by `t`
    /// hold the depths below `min`; the frames whose ends (and their
    /// ancestors') reach `end` may enclose the span.
    fn check_at_depth(&self, ti: usize, t: u64, end: u64, depth: usize) -> Outcome {
        let th = &self.thread_state[ti];
        if t > MAX_TS || end > MAX_TS {
            return err("TimestampOutOfRange");
        }
        if t < th.last {
            return err("TimestampBackwards");
        }
        let min = th.stack.len() - th.due(t);
        let max = (0..=th.stack.len())
            .take_while(|&k| th.limit(k) >= end)
            .last()
            .unwrap_or(0);
        if max < min {
            return err("NotNested");
        }
        if depth >= MAX_SPAN_DEPTH {
            return err("TooDeep");
        }
        if depth < min || depth > max {
            return err("DepthOutOfRange");
        }
        Ok(())
    }

    /// Ends the frames above `depth` (all ended by then).
    fn pop_to(&mut self, ti: usize, depth: usize) {
        let th = &mut self.thread_state[ti];
        while th.stack.len() > depth {
            let Some((b, Some(e), i)) = th.stack.pop() else {
                panic!("the model popped an open span");
            };
            th.last = e;
            th.run = None;
            self.slices[i].dur = Some(e - b);
        }
    }

    fn pop_due(&mut self, ti: usize, t: u64) {
        let th = &mut self.thread_state[ti];
        while let Some(&(b, Some(e), i)) = th.stack.last() {
            if e > t {
                break;
            }
            th.stack.pop();
            th.last = e;
            th.run = None;
            self.slices[i].dur = Some(e - b);
        }
    }

    fn push(&mut self, ti: usize, uuid: u64, t: u64, end: Option<u64>, meta: &Meta) {
        self.pop_due(ti, t);
        self.push_kept(ti, uuid, t, end, meta);
    }

    /// Pushes a span over the frames as they are.
    fn push_kept(&mut self, ti: usize, uuid: u64, t: u64, end: Option<u64>, meta: &Meta) {
        let th = &mut self.thread_state[ti];
        let depth = th.stack.len();
        th.stack.push((t, end, self.slices.len()));
        th.last = t;
        th.run = None;
        self.slices
            .push(expected((uuid, String::new()), t, depth, meta));
    }

    fn check_end(&self, ti: usize, t: u64) -> Outcome {
        let th = &self.thread_state[ti];
        if t > MAX_TS {
            return err("TimestampOutOfRange");
        }
        let keep = th.stack.len() - th.due(t);
        let live = &th.stack[..keep];
        if live.iter().all(|f| f.1.is_some()) {
            return err("NoOpenSpan");
        }
        let top = live[keep - 1];
        if top.1.is_some() {
            return err("NotNested");
        }
        if t < top.0 {
            return err("EndBeforeBegin");
        }
        if t < th.last {
            return err("TimestampBackwards");
        }
        if t > th.limit(keep - 1) {
            return err("NotNested");
        }
        Ok(())
    }

    fn end(&mut self, ti: usize, t: u64) {
        self.pop_due(ti, t);
        let th = &mut self.thread_state[ti];
        let (b, _, i) = th.stack.pop().unwrap();
        th.last = t;
        th.run = None;
        self.slices[i].dur = Some(t - b);
    }

    fn check_close(&self, t: u64, order: &[usize]) -> Outcome {
        if t > MAX_TS {
            return err("TimestampOutOfRange");
        }
        for th in order.iter().map(|&i| &self.thread_state[i]) {
            let Some(lowest) = th.stack.iter().position(|f| f.1.is_none()) else {
                continue;
            };
            if t < th.last {
                return err("TimestampBackwards");
            }
            let innermost = th.stack.iter().rposition(|f| f.1.is_none()).unwrap();
            if th.stack[lowest..]
                .iter()
                .any(|f| f.1.is_some_and(|e| e > t))
                || t > th.limit(innermost)
            {
                return err("NotNested");
            }
        }
        if self.open_async.values().any(|&(b, _)| t < b) {
            return err("EndBeforeBegin");
        }
        Ok(())
    }

    fn close(&mut self, t: u64) {
        for ti in 0..self.thread_state.len() {
            loop {
                self.pop_due(ti, t);
                let th = &mut self.thread_state[ti];
                match th.stack.last() {
                    Some(&(b, None, i)) => {
                        th.stack.pop();
                        th.last = t;
                        th.run = None;
                        self.slices[i].dur = Some(t - b);
                    }
                    _ => break,
                }
            }
            self.pop_due(ti, u64::MAX);
        }
        for (_, (b, i)) in self.open_async.drain() {
            self.slices[i].dur = Some(t - b);
        }
    }
}

/// Accepts at most `max` bytes per write.
pub struct Trickle {
    pub data: Vec<u8>,
    pub max: usize,
    pub calls: usize,
}

impl Write for Trickle {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.calls += 1;
        let n = buf.len().min(self.max);
        self.data.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Answers `Interrupted` on every `every`-th call (writes and flushes).
pub struct Interrupting {
    pub data: Vec<u8>,
    pub every: usize,
    pub calls: usize,
}

impl Interrupting {
    fn interrupt(&mut self) -> bool {
        self.calls += 1;
        self.calls % self.every == 0
    }
}

impl Write for Interrupting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.interrupt() {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = buf.len().min(7);
        self.data.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.interrupt() {
            return Err(io::ErrorKind::Interrupted.into());
        }
        Ok(())
    }
}

/// Keeps each write as a chunk of its own: where a writer cut its output.
#[derive(Default)]
pub struct Writes {
    pub chunks: Vec<Vec<u8>>,
}

impl Write for Writes {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.chunks.push(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A [`PacketSink`] that keeps a copy of each buffer it is handed and
/// hands back spent ones, every other one with its old bytes still in it
/// (the writer must empty what it is given), answering `Interrupted` on
/// every `every`-th take; its `write` must not be called.
pub struct Handoff {
    pub chunks: Vec<Vec<u8>>,
    pub spent: Vec<Packets>,
    pub every: usize,
    pub calls: usize,
}

impl Handoff {
    pub fn new(every: usize) -> Self {
        Handoff {
            chunks: Vec::new(),
            spent: Vec::new(),
            every,
            calls: 0,
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.chunks.concat()
    }
}

impl PacketSink for Handoff {
    fn take_packets(&mut self, packets: &mut Packets) -> io::Result<()> {
        self.calls += 1;
        if self.calls % self.every == 0 {
            return Err(io::ErrorKind::Interrupted.into());
        }
        // A spent buffer with old bytes in it: the writer must empty it.
        let next = self.spent.pop().unwrap_or_default();
        let mut taken = std::mem::replace(packets, next);
        self.chunks.push(taken.to_vec());
        if self.calls % 2 == 0 {
            taken.clear();
        }
        self.spent.push(taken);
        Ok(())
    }
}

impl Write for Handoff {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::other("a packet sink's write was called"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
