//! A seeded simulation of an instrumented service, as the rows an
//! observability service stores for it: `processes`, `streams`,
//! `thread_spans`, `async_events`. Std only, so that any crate's example or
//! test can include it:
//!
//! ```ignore
//! #[path = "../../examples/lake_sim/mod.rs"] // relative to the including file
//! mod sim;
//! let lake = sim::simulate(&sim::SimConfig::default());
//! lake.write_jsonl(std::path::Path::new("lake"))?;
//! ```
//!
//! Each process has several threads running requests: trees of nested
//! thread spans (siblings that touch, zero-length leaves, ties of begin).
//! Requests spawn async tasks on their thread, completed on another thread
//! (the end row comes from another stream); tasks spawn children, some of
//! which outlive their parent (detached); a few tasks never end (still in
//! flight when the data stops). With `anomalies`, a few rows that make no
//! sense are added, and listed in `Lake::injected`.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

/// A row of `processes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    pub process_id: String,
    pub exe: String,
    pub pid: Option<i64>,
    pub start_time: u64,
    pub end_time: Option<u64>,
}

/// A row of `streams`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stream {
    pub stream_id: String,
    pub process_id: String,
    pub thread_name: String,
    pub thread_id: Option<i64>,
}

/// A row of `thread_spans`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadSpan {
    pub stream_id: String,
    pub begin: u64,
    pub end: u64,
    pub depth: u32,
    pub name: String,
    pub target: String,
    pub filename: String,
    pub line: u32,
}

/// A row of `async_events`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsyncEvent {
    pub stream_id: String,
    pub time: u64,
    /// `"begin"` or `"end"`.
    pub event_type: &'static str,
    pub span_id: u64,
    /// 0 for none.
    pub parent_span_id: u64,
    pub depth: u32,
    pub name: String,
    pub filename: String,
    pub target: String,
    pub line: u32,
}

/// The four tables, rows in no particular order (shuffled by the seed),
/// and the anomalies put in.
#[derive(Clone, Debug, Default)]
pub struct Lake {
    pub processes: Vec<Process>,
    pub streams: Vec<Stream>,
    pub thread_spans: Vec<ThreadSpan>,
    pub async_events: Vec<AsyncEvent>,
    /// (anomaly kind, as the importer's `AnomalyKind` names it; how many).
    pub injected: Vec<(&'static str, u64)>,
}

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub processes: usize,
    /// Threads per process (at least 2: tasks complete on another thread).
    pub threads: usize,
    /// Requests per thread.
    pub requests: usize,
    /// Whether to add rows that make no sense (see [`Lake::injected`]).
    pub anomalies: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            processes: 2,
            threads: 4,
            requests: 40,
            anomalies: false,
        }
    }
}

/// xorshift64*: small, seeded, the same everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// In `lo..hi` (`lo` if empty).
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

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

const SPAN_NAMES: [&str; 8] = [
    "handle_request",
    "parse",
    "plan_query",
    "execute",
    "read_block",
    "serialize",
    "authorize",
    "compress",
];
const TASK_NAMES: [&str; 6] = [
    "fetch_partition",
    "flush_wal",
    "replicate",
    "send_response",
    "prefetch",
    "gc_sweep",
];
const TARGETS: [&str; 4] = ["server::http", "engine::exec", "storage::io", "net"];
const FILES: [&str; 4] = [
    "src/server.rs",
    "src/engine/exec.rs",
    "src/storage/io.rs",
    "src/net.rs",
];

struct Sim<'a> {
    rng: Rng,
    lake: &'a mut Lake,
    next_span: u64,
}

impl Sim<'_> {
    /// A tree of thread spans in `[begin, end]` at `depth`, children inside
    /// their parent, siblings in order (some touching, some zero-length).
    fn thread_tree(&mut self, stream: &str, begin: u64, end: u64, depth: u32) {
        let name = self.rng.pick(&SPAN_NAMES).to_owned();
        let i = (self.rng.next() % 4) as usize;
        self.lake.thread_spans.push(ThreadSpan {
            stream_id: stream.to_owned(),
            begin,
            end,
            depth,
            name,
            target: TARGETS[i].to_owned(),
            filename: FILES[i].to_owned(),
            line: self.rng.range(1, 900) as u32,
        });
        if depth >= 4 || end - begin < 8 {
            return;
        }
        let children = self.rng.range(0, 4);
        let mut t = begin;
        // A first child beginning with its parent: a tie of begin.
        if self.rng.chance(30) {
            let e = self.rng.range(t, t + (end - t) / 3 + 1);
            self.thread_tree(stream, t, e, depth + 1);
            t = e;
        }
        for _ in 0..children {
            if t >= end {
                break;
            }
            let b = if self.rng.chance(25) {
                t // touching its previous sibling
            } else {
                self.rng.range(t, t + (end - t) / 2 + 1)
            };
            let e = if self.rng.chance(10) {
                b // zero-length
            } else {
                self.rng.range(b, b + (end - b) / 2 + 1)
            };
            self.thread_tree(stream, b, e, depth + 1);
            t = e;
        }
    }

    /// An async task begun on `on` at `begin`, ended on `ends_on` (none:
    /// never ends), with children, some outliving it.
    #[allow(clippy::too_many_arguments)]
    fn task(
        &mut self,
        streams: &[String],
        on: usize,
        begin: u64,
        parent: u64,
        depth: u32,
        horizon: u64,
        never_ends: bool,
    ) {
        let id = self.next_span;
        self.next_span += 1;
        let name = self.rng.pick(&TASK_NAMES).to_owned();
        let i = (self.rng.next() % 4) as usize;
        let ends_on = (on + 1 + (self.rng.next() as usize % (streams.len() - 1))) % streams.len();
        let dur = self.rng.range(1, 40_000);
        let end = begin + dur;
        let row = |stream: &str, time, event_type| AsyncEvent {
            stream_id: stream.to_owned(),
            time,
            event_type,
            span_id: id,
            parent_span_id: parent,
            depth,
            name: name.clone(),
            filename: FILES[i].to_owned(),
            target: TARGETS[i].to_owned(),
            line: 10 + i as u32,
        };
        self.lake
            .async_events
            .push(row(&streams[on], begin, "begin"));
        if !never_ends && end <= horizon {
            // Completed in another context: the end row of another stream.
            self.lake
                .async_events
                .push(row(&streams[ends_on], end, "end"));
        }
        if depth >= 3 {
            return;
        }
        for _ in 0..self.rng.range(0, 3) {
            let b = self.rng.range(begin, end + 1);
            // Mostly inside the parent; some detached, outliving it.
            let spawn_on = if self.rng.chance(50) { on } else { ends_on };
            let never = never_ends && self.rng.chance(50);
            self.task(streams, spawn_on, b, id, depth + 1, horizon, never);
        }
    }
}

/// Simulates the service; the same config gives the same lake.
pub fn simulate(config: &SimConfig) -> Lake {
    let mut lake = Lake::default();
    let mut sim = Sim {
        rng: Rng::new(config.seed),
        lake: &mut lake,
        next_span: 1,
    };
    let threads = config.threads.max(2);
    for p in 0..config.processes {
        let process_id = format!("{:08x}-proc-{p}", sim.rng.next() as u32);
        let start = 1_000_000_000 + sim.rng.range(0, 1_000_000);
        let per_request = 100_000u64;
        let horizon = start + per_request * config.requests as u64 + 50_000;
        // The last process is still running: its spans may still be open.
        let still_running = p + 1 == config.processes;
        sim.lake.processes.push(Process {
            process_id: process_id.clone(),
            exe: format!("/usr/bin/service-{p}"),
            pid: Some(1000 + p as i64),
            start_time: start,
            end_time: (!still_running).then_some(horizon + 10_000),
        });
        let streams: Vec<String> = (0..threads)
            .map(|t| format!("{process_id}-stream-{t}"))
            .collect();
        for (t, s) in streams.iter().enumerate() {
            sim.lake.streams.push(Stream {
                stream_id: s.clone(),
                process_id: process_id.clone(),
                thread_name: if t == 0 {
                    "main".into()
                } else {
                    format!("worker-{t}")
                },
                thread_id: (t % 3 != 2).then_some(2000 + (p * 100 + t) as i64),
            });
        }
        // Span ids are per process: each process numbers its own.
        sim.next_span = 1;
        for (t, s) in streams.iter().enumerate() {
            for r in 0..config.requests as u64 {
                let b = start + r * per_request + sim.rng.range(0, 5_000);
                let e = b + sim.rng.range(10_000, 80_000);
                sim.thread_tree(s, b, e, 0);
                if sim.rng.chance(60) {
                    let at = sim.rng.range(b, e);
                    let never = r + 1 == config.requests as u64 && sim.rng.chance(50);
                    sim.task(&streams, t, at, 0, 0, horizon, never);
                }
            }
        }
    }
    if config.anomalies {
        inject(&mut sim);
    }
    let Sim { mut rng, .. } = sim;
    // Rows in any order: readers sort them as the service's queries do.
    rng.shuffle(&mut lake.thread_spans);
    rng.shuffle(&mut lake.async_events);
    rng.shuffle(&mut lake.streams);
    lake
}

/// One of each kind of row that makes no sense, far from the others'
/// times, and recorded in `injected`.
fn inject(sim: &mut Sim<'_>) {
    let Some(process) = sim.lake.processes.first().cloned() else {
        return;
    };
    let stream = sim
        .lake
        .streams
        .iter()
        .find(|s| s.process_id == process.process_id)
        .map(|s| s.stream_id.clone())
        .unwrap_or_default();
    let t = process.start_time + 1;
    let event = |time, event_type, span_id, parent_span_id, depth| AsyncEvent {
        stream_id: stream.clone(),
        time,
        event_type,
        span_id,
        parent_span_id,
        depth,
        name: "odd".into(),
        filename: String::new(),
        target: "odd".into(),
        line: 0,
    };
    let id = 1 << 40;
    // Two begins with one id, then its end.
    sim.lake.async_events.push(event(t, "begin", id, 0, 0));
    sim.lake.async_events.push(event(t + 5, "begin", id, 0, 0));
    sim.lake.async_events.push(event(t + 9, "end", id, 0, 0));
    // An end before its begin.
    sim.lake
        .async_events
        .push(event(t + 2, "end", id + 1, 0, 0));
    sim.lake
        .async_events
        .push(event(t + 7, "begin", id + 1, 0, 0));
    // A child whose depth contradicts its parent's.
    sim.lake
        .async_events
        .push(event(t + 3, "begin", id + 2, 0, 0));
    sim.lake
        .async_events
        .push(event(t + 4, "begin", id + 3, id + 2, 5));
    sim.lake
        .async_events
        .push(event(t + 6, "end", id + 3, 0, 0));
    sim.lake
        .async_events
        .push(event(t + 8, "end", id + 2, 0, 0));
    // A stream with no process, with one span.
    sim.lake.streams.push(Stream {
        stream_id: "orphan-stream".into(),
        process_id: "no-such-process".into(),
        thread_name: "lost".into(),
        thread_id: None,
    });
    sim.lake.thread_spans.push(ThreadSpan {
        stream_id: "orphan-stream".into(),
        begin: t,
        end: t + 10,
        depth: 0,
        name: "lost_work".into(),
        target: String::new(),
        filename: String::new(),
        line: 0,
    });
    sim.lake.injected = vec![
        ("AsyncDuplicateBegin", 1),
        ("AsyncEndBeforeBegin", 1),
        ("AsyncDepth", 1),
        ("StreamWithoutProcess", 1),
    ];
}

/// `s` as a JSON string.
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_opt(out: &mut String, v: Option<impl std::fmt::Display>) {
    match v {
        Some(v) => {
            let _ = write!(out, "{v}");
        }
        None => out.push_str("null"),
    }
}

impl Lake {
    /// Writes `processes.jsonl`, `streams.jsonl`, `thread_spans.jsonl` and
    /// `async_events.jsonl` into `dir` (made if missing): one JSON object a
    /// line, the tables' columns.
    pub fn write_jsonl(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut line = String::new();
        let mut f = io::BufWriter::new(std::fs::File::create(dir.join("processes.jsonl"))?);
        for p in &self.processes {
            line.clear();
            line.push_str("{\"process_id\":");
            json_str(&mut line, &p.process_id);
            line.push_str(",\"exe\":");
            json_str(&mut line, &p.exe);
            line.push_str(",\"pid\":");
            json_opt(&mut line, p.pid);
            let _ = write!(line, ",\"start_time\":{},\"end_time\":", p.start_time);
            json_opt(&mut line, p.end_time);
            line.push_str("}\n");
            f.write_all(line.as_bytes())?;
        }
        f.flush()?;
        let mut f = io::BufWriter::new(std::fs::File::create(dir.join("streams.jsonl"))?);
        for s in &self.streams {
            line.clear();
            line.push_str("{\"stream_id\":");
            json_str(&mut line, &s.stream_id);
            line.push_str(",\"process_id\":");
            json_str(&mut line, &s.process_id);
            line.push_str(",\"thread_name\":");
            json_str(&mut line, &s.thread_name);
            line.push_str(",\"thread_id\":");
            json_opt(&mut line, s.thread_id);
            line.push_str("}\n");
            f.write_all(line.as_bytes())?;
        }
        f.flush()?;
        let mut f = io::BufWriter::new(std::fs::File::create(dir.join("thread_spans.jsonl"))?);
        for s in &self.thread_spans {
            line.clear();
            line.push_str("{\"stream_id\":");
            json_str(&mut line, &s.stream_id);
            let _ = write!(
                line,
                ",\"begin\":{},\"end\":{},\"depth\":{},\"name\":",
                s.begin, s.end, s.depth
            );
            json_str(&mut line, &s.name);
            line.push_str(",\"target\":");
            json_str(&mut line, &s.target);
            line.push_str(",\"filename\":");
            json_str(&mut line, &s.filename);
            let _ = writeln!(line, ",\"line\":{}}}", s.line);
            f.write_all(line.as_bytes())?;
        }
        f.flush()?;
        let mut f = io::BufWriter::new(std::fs::File::create(dir.join("async_events.jsonl"))?);
        for e in &self.async_events {
            line.clear();
            line.push_str("{\"stream_id\":");
            json_str(&mut line, &e.stream_id);
            let _ = write!(line, ",\"time\":{},\"event_type\":", e.time);
            json_str(&mut line, e.event_type);
            let _ = write!(
                line,
                ",\"span_id\":{},\"parent_span_id\":{},\"depth\":{},\"name\":",
                e.span_id, e.parent_span_id, e.depth
            );
            json_str(&mut line, &e.name);
            line.push_str(",\"filename\":");
            json_str(&mut line, &e.filename);
            line.push_str(",\"target\":");
            json_str(&mut line, &e.target);
            let _ = writeln!(line, ",\"line\":{}}}", e.line);
            f.write_all(line.as_bytes())?;
        }
        f.flush()
    }
}
