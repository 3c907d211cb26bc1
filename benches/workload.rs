//! Deterministic, seeded workloads shared by the benchmarks and the tests
//! that measure allocations, memory and sizes. Generated outside any timed
//! region.
#![allow(dead_code)]

use perfetto_trace_writer::{EventKey, Result, ThreadTrack, TraceWriter};

/// SplitMix64: a tiny deterministic generator, so workloads are the same on
/// every machine and run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Pools of names: 256 event names, 16 categories, 256 source locations.
pub struct Pools {
    pub names: Vec<String>,
    pub categories: Vec<String>,
    pub locations: Vec<(String, u32)>,
}

impl Pools {
    pub fn new() -> Self {
        Pools {
            names: (0..256)
                .map(|i| format!("module_{}::operation_{i}", i % 19))
                .collect(),
            categories: (0..16).map(|i| format!("service::component_{i}")).collect(),
            locations: (0..256)
                .map(|i| {
                    (
                        format!("src/module_{}/handler.rs", i % 32),
                        10 + (i as u32 * 37) % 900,
                    )
                })
                .collect(),
        }
    }
}

impl Default for Pools {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Clone, Copy)]
pub struct Event {
    /// Thread index, or the async span id.
    pub track: u32,
    pub begin: bool,
    pub ts: u64,
    pub name: u16,
    pub category: u8,
    pub location: u16,
}

pub struct Workload {
    pub pools: Pools,
    pub events: Vec<Event>,
    pub spans: usize,
}

pub const THREADS: u32 = 8;
pub const MAX_DEPTH: usize = 4;

fn meta(rng: &mut Rng, track: u32, ts: u64) -> Event {
    Event {
        track,
        begin: true,
        ts,
        name: rng.below(256) as u16,
        category: rng.below(16) as u8,
        location: rng.below(256) as u16,
    }
}

/// `spans` thread spans on 8 threads, nested up to depth 4, time rising by
/// 100 to 10,000 ns per event: 2 × `spans` events in time order.
pub fn thread_spans(spans: usize, seed: u64) -> Workload {
    let mut rng = Rng::new(seed);
    let mut stacks = vec![0usize; THREADS as usize];
    let mut events = Vec::with_capacity(spans * 2);
    let mut ts = 1_000_000_000u64;
    let mut begun = 0;
    while begun < spans || stacks.iter().any(|&d| d > 0) {
        ts += 100 + rng.below(9_901);
        let t = rng.below(u64::from(THREADS)) as u32;
        let depth = &mut stacks[t as usize];
        let begin = begun < spans && (*depth == 0 || (*depth < MAX_DEPTH && rng.below(2) == 0));
        if begin {
            *depth += 1;
            begun += 1;
            events.push(meta(&mut rng, t, ts));
        } else if *depth > 0 {
            *depth -= 1;
            events.push(Event {
                begin: false,
                ..meta(&mut rng, t, ts)
            });
        }
    }
    Workload {
        pools: Pools::new(),
        events,
        spans,
    }
}

/// The thread workload over a pool of `names` event names instead of 256,
/// as a service with many kinds of span has: names drawn anew, everything
/// else the same.
pub fn thread_spans_many_names(spans: usize, names: u16, seed: u64) -> Workload {
    let mut wl = thread_spans(spans, seed);
    let mut rng = Rng::new(seed ^ 0x6e61_6d65);
    for e in wl.events.iter_mut().filter(|e| e.begin) {
        e.name = rng.below(u64::from(names)) as u16;
    }
    wl.pools.names = (0..names)
        .map(|i| format!("module_{}::operation_{i}", i % 19))
        .collect();
    wl
}

/// `spans` async spans with at most `in_flight` open at once.
pub fn async_spans(spans: usize, in_flight: usize, seed: u64) -> Workload {
    let mut rng = Rng::new(seed);
    let mut open: Vec<u32> = Vec::new();
    let mut events = Vec::with_capacity(spans * 2);
    let mut ts = 1_000_000_000u64;
    let mut next_id = 0u32;
    while (next_id as usize) < spans || !open.is_empty() {
        ts += 100 + rng.below(9_901);
        let can_begin = (next_id as usize) < spans && open.len() < in_flight;
        if can_begin && (open.is_empty() || rng.below(2) == 0) {
            events.push(meta(&mut rng, next_id, ts));
            open.push(next_id);
            next_id += 1;
        } else {
            let id = open.swap_remove(rng.below(open.len() as u64) as usize);
            events.push(Event {
                begin: false,
                ..meta(&mut rng, id, ts)
            });
        }
    }
    Workload {
        pools: Pools::new(),
        events,
        spans,
    }
}

/// A workload's events as from 256 call sites: each begin's category and
/// location follow from its name (site `i` is name `i`, category `i % 16`,
/// location `i`), as in instrumented code, where a span's name, category
/// and source location are one call site. Everything else the same.
pub fn as_sites(mut wl: Workload) -> Workload {
    for e in wl.events.iter_mut() {
        e.category = (e.name % 16) as u8;
        e.location = e.name;
    }
    wl
}

/// The keys of the 256 call sites of [`as_sites`], registered with `w`.
pub fn site_keys(w: &mut impl TraceWriter, pools: &Pools) -> Result<Vec<EventKey>> {
    (0..pools.names.len())
        .map(|i| {
            let (file, line) = &pools.locations[i % pools.locations.len()];
            let category = &pools.categories[i % pools.categories.len()];
            w.event_key(&pools.names[i], category, file, *line)
        })
        .collect()
}

/// Replays a thread workload of call sites ([`as_sites`]) with event keys:
/// the bytes [`replay_threads`] writes for it.
pub fn replay_threads_keyed(w: &mut impl TraceWriter, wl: &Workload) -> Result<()> {
    replay_part_keyed(w, &wl.pools, &wl.events)
}

/// [`replay_part`] with event keys, for events of call sites ([`as_sites`]).
pub fn replay_part_keyed(w: &mut impl TraceWriter, pools: &Pools, events: &[Event]) -> Result<()> {
    let threads = bench_threads(w)?;
    let keys = site_keys(w, pools)?;
    for e in events {
        let thread = threads[e.track as usize];
        if e.begin {
            w.span_begin_key(thread, e.ts, keys[e.name as usize])?;
        } else {
            w.span_end(thread, e.ts)?;
        }
    }
    w.finish()?;
    Ok(())
}

/// Replays an async workload of call sites ([`as_sites`]) with event keys:
/// the bytes [`replay_async`] writes for it.
pub fn replay_async_keyed(w: &mut impl TraceWriter, wl: &Workload) -> Result<()> {
    let p = w.process("bench-process", Some(1000), "bench", &[])?;
    let lane = w.async_lane(p, "Async Operations")?;
    let keys = site_keys(w, &wl.pools)?;
    for e in &wl.events {
        if e.begin {
            w.async_span_begin_key(lane, u64::from(e.track), e.ts, keys[e.name as usize])?;
        } else {
            w.async_span_end(lane, u64::from(e.track), e.ts)?;
        }
    }
    w.finish()?;
    Ok(())
}

/// [`replay_complete`] with event keys, for spans of call sites
/// ([`as_sites`]).
pub fn replay_complete_keyed(
    w: &mut impl TraceWriter,
    pools: &Pools,
    spans: &[CompleteSpan],
) -> Result<()> {
    let threads = bench_threads(w)?;
    let keys = site_keys(w, pools)?;
    for s in spans {
        let key = keys[s.name as usize];
        w.complete_span_key(threads[s.thread as usize], s.begin, s.end, key)?;
    }
    w.finish()?;
    Ok(())
}

/// [`small_trace`] with event keys: its three call sites registered, then
/// used.
pub fn small_trace_keyed(w: &mut impl TraceWriter) -> Result<()> {
    let p = w.process("svc", Some(7), "svc", &[])?;
    let a = w.thread(p, "a", Some(8), "a")?;
    let b = w.thread(p, "b", Some(9), "b")?;
    let request = w.event_key("request", "http", "src/main.rs", 10)?;
    let query = w.event_key("query", "db", "src/db.rs", 20)?;
    let background = w.event_key("background", "jobs", "src/jobs.rs", 30)?;
    w.complete_span_key(a, 100, 400, request)?;
    w.complete_span_key(a, 150, 300, query)?;
    w.complete_span_key(b, 200, 350, background)?;
    w.finish()?;
    Ok(())
}

/// Replays a thread workload through any writer of this crate.
pub fn replay_threads(w: &mut impl TraceWriter, wl: &Workload) -> Result<()> {
    replay_part(w, &wl.pools, &wl.events)
}

/// Replays an async workload on one lane of one process.
pub fn replay_async(w: &mut impl TraceWriter, wl: &Workload) -> Result<()> {
    let p = w.process("bench-process", Some(1000), "bench", &[])?;
    let lane = w.async_lane(p, "Async Operations")?;
    let pools = &wl.pools;
    for e in &wl.events {
        if e.begin {
            let (file, line) = &pools.locations[e.location as usize];
            w.async_span_begin(
                lane,
                u64::from(e.track),
                e.ts,
                &pools.names[e.name as usize],
                &pools.categories[e.category as usize],
                file,
                *line,
            )?;
        } else {
            w.async_span_end(lane, u64::from(e.track), e.ts)?;
        }
    }
    w.finish()?;
    Ok(())
}

/// A small trace: a process, two threads, three spans.
pub fn small_trace(w: &mut impl TraceWriter) -> Result<()> {
    let p = w.process("svc", Some(7), "svc", &[])?;
    let a = w.thread(p, "a", Some(8), "a")?;
    let b = w.thread(p, "b", Some(9), "b")?;
    w.complete_span(a, 100, 400, "request", "http", "src/main.rs", 10)?;
    w.complete_span(a, 150, 300, "query", "db", "src/db.rs", 20)?;
    w.complete_span(b, 200, 350, "background", "jobs", "src/jobs.rs", 30)?;
    w.finish()?;
    Ok(())
}

/// The workload as complete spans per thread, in begin order: what a
/// database export yields, and what the micromegas baseline takes.
pub struct CompleteSpan {
    pub thread: u32,
    pub begin: u64,
    pub end: u64,
    pub name: u16,
    pub category: u8,
    pub location: u16,
}

pub fn complete_spans(wl: &Workload) -> Vec<CompleteSpan> {
    let mut open: Vec<Vec<usize>> = vec![Vec::new(); THREADS as usize];
    let mut spans: Vec<CompleteSpan> = Vec::with_capacity(wl.spans);
    for e in &wl.events {
        if e.begin {
            open[e.track as usize].push(spans.len());
            spans.push(CompleteSpan {
                thread: e.track,
                begin: e.ts,
                end: 0,
                name: e.name,
                category: e.category,
                location: e.location,
            });
        } else if let Some(i) = open[e.track as usize].pop() {
            spans[i].end = e.ts;
        }
    }
    // Grouped by thread, each thread's spans in begin order.
    spans.sort_by_key(|s| (s.thread, s.begin));
    spans
}

/// The thread workload's process and its threads, described.
fn bench_threads(w: &mut impl TraceWriter) -> Result<Vec<ThreadTrack>> {
    let p = w.process("bench-process", Some(1000), "bench", &[])?;
    (0..THREADS)
        .map(|t| {
            w.thread(
                p,
                &format!("stream-{t}"),
                Some(i64::from(1001 + t)),
                &format!("worker-{t}"),
            )
        })
        .collect()
}

/// Replays complete spans (from [`complete_spans`]), thread after thread:
/// the shape of a database export, and the input the micromegas baseline
/// takes.
pub fn replay_complete(
    w: &mut impl TraceWriter,
    pools: &Pools,
    spans: &[CompleteSpan],
) -> Result<()> {
    let threads = bench_threads(w)?;
    for s in spans {
        let (file, line) = &pools.locations[s.location as usize];
        w.complete_span(
            threads[s.thread as usize],
            s.begin,
            s.end,
            &pools.names[s.name as usize],
            &pools.categories[s.category as usize],
            file,
            *line,
        )?;
    }
    w.finish()?;
    Ok(())
}

/// The thread workload split between `parts` writers: part `i` gets the
/// events of the threads `t` with `t % parts == i`.
pub fn split_threads(wl: &Workload, parts: u32) -> Vec<Vec<Event>> {
    (0..parts)
        .map(|i| {
            wl.events
                .iter()
                .filter(|e| e.track % parts == i)
                .copied()
                .collect()
        })
        .collect()
}

/// Replays thread events (all of a workload's, or one part of a split).
pub fn replay_part(w: &mut impl TraceWriter, pools: &Pools, events: &[Event]) -> Result<()> {
    replay_events::<true>(w, pools, events)
}

/// Replays a thread workload with no source locations.
pub fn replay_threads_without_locations(w: &mut impl TraceWriter, wl: &Workload) -> Result<()> {
    replay_events::<false>(w, &wl.pools, &wl.events)
}

/// Replays thread events, with source locations or without (a constant, so
/// the timed loop does not test it).
fn replay_events<const LOCATIONS: bool>(
    w: &mut impl TraceWriter,
    pools: &Pools,
    events: &[Event],
) -> Result<()> {
    let threads = bench_threads(w)?;
    for e in events {
        let thread = threads[e.track as usize];
        if e.begin {
            let (file, line) = match LOCATIONS {
                true => {
                    let (file, line) = &pools.locations[e.location as usize];
                    (file.as_str(), *line)
                }
                false => ("", 0),
            };
            w.span_begin(
                thread,
                e.ts,
                &pools.names[e.name as usize],
                &pools.categories[e.category as usize],
                file,
                line,
            )?;
        } else {
            w.span_end(thread, e.ts)?;
        }
    }
    w.finish()?;
    Ok(())
}

/// Events other than thread spans, as observability exports mix them in:
/// counter samples, thread instants, and spans with typed arguments.
pub struct OtherEvents {
    pub pools: Pools,
    /// (timestamp, counter index of 4, value).
    pub counters: Vec<(u64, u8, i64)>,
    /// (timestamp, name, category).
    pub instants: Vec<(u64, u16, u8)>,
    /// (begin, end, name, row count, table name).
    pub arg_spans: Vec<(u64, u64, u16, u64, u16)>,
}

/// `n` events of each kind, time rising by 100 to 10,000 ns.
pub fn other_events(n: usize, seed: u64) -> OtherEvents {
    let mut rng = Rng::new(seed);
    let mut ts = 1_000_000;
    let mut step = |rng: &mut Rng| {
        ts += 100 + rng.below(9_901);
        ts
    };
    let counters = (0..n)
        .map(|_| {
            let value = rng.below(1 << 40) as i64 - (1 << 39);
            (step(&mut rng), rng.below(4) as u8, value)
        })
        .collect();
    let instants = (0..n)
        .map(|_| (step(&mut rng), rng.below(256) as u16, rng.below(16) as u8))
        .collect();
    let arg_spans = (0..n / 2)
        .map(|_| {
            let begin = step(&mut rng);
            let end = step(&mut rng);
            let rows = rng.below(100_000);
            (
                begin,
                end,
                rng.below(256) as u16,
                rows,
                rng.below(256) as u16,
            )
        })
        .collect();
    OtherEvents {
        pools: Pools::new(),
        counters,
        instants,
        arg_spans,
    }
}

/// Writes the counter samples of [`other_events`].
pub fn replay_counters(w: &mut impl TraceWriter, wl: &OtherEvents) -> Result<()> {
    let p = w.process("bench-process", Some(1000), "bench", &[])?;
    let names = ["memory", "queue_depth", "connections", "cpu"];
    let options = perfetto_trace_writer::CounterOptions::default();
    let tracks = names
        .iter()
        .map(|n| w.counter_track(p, n, &options))
        .collect::<Result<Vec<_>>>()?;
    write_counters(w, wl, &tracks, 0)?;
    w.finish()?;
    Ok(())
}

/// Writes the instants of [`other_events`] on one thread.
pub fn replay_instants(w: &mut impl TraceWriter, wl: &OtherEvents) -> Result<()> {
    let thread = bench_threads(w)?[0];
    write_instants(w, wl, thread, 0)?;
    w.finish()?;
    Ok(())
}

/// Writes the spans with arguments of [`other_events`] on one thread.
pub fn replay_arg_spans(w: &mut impl TraceWriter, wl: &OtherEvents) -> Result<()> {
    let thread = bench_threads(w)?[0];
    write_arg_spans(w, wl, thread, 0)?;
    w.finish()?;
    Ok(())
}

/// The counter samples of [`other_events`] on `tracks` (4), `offset` later.
pub fn write_counters(
    w: &mut impl TraceWriter,
    wl: &OtherEvents,
    tracks: &[perfetto_trace_writer::CounterTrack],
    offset: u64,
) -> Result<()> {
    for &(ts, track, value) in &wl.counters {
        w.counter(tracks[usize::from(track)], ts + offset, value)?;
    }
    Ok(())
}

/// The instants of [`other_events`] on `thread`, `offset` later.
pub fn write_instants(
    w: &mut impl TraceWriter,
    wl: &OtherEvents,
    thread: ThreadTrack,
    offset: u64,
) -> Result<()> {
    let pools = &wl.pools;
    for &(ts, name, category) in &wl.instants {
        let event = perfetto_trace_writer::Event::new(&pools.names[usize::from(name)])
            .category(&pools.categories[usize::from(category)]);
        w.instant(thread, ts + offset, &event)?;
    }
    Ok(())
}

/// The spans with arguments of [`other_events`] on `thread`, `offset`
/// later: a row count and a table name each.
pub fn write_arg_spans(
    w: &mut impl TraceWriter,
    wl: &OtherEvents,
    thread: ThreadTrack,
    offset: u64,
) -> Result<()> {
    use perfetto_trace_writer::{Arg, Event, Value};
    let pools = &wl.pools;
    for &(begin, end, name, rows, table) in &wl.arg_spans {
        let args = [
            Arg::new("rows", Value::Uint(rows)),
            Arg::new("table", Value::Str(&pools.names[usize::from(table)])),
        ];
        let event = Event::new(&pools.names[usize::from(name)])
            .category("db")
            .args(&args);
        w.span_begin_with(thread, begin + offset, &event)?;
        w.span_end(thread, end + offset)?;
    }
    Ok(())
}
