//! Deterministic resource figures: heap allocations per event, peak heap
//! against trace length, and the size of the writes a sink receives. (Bytes
//! against other writers are compared in `benches/compare`; times are
//! measured in benchmarks, never in tests.)

#[path = "common/counting.rs"]
mod counting;
#[path = "../benches/workload.rs"]
mod workload;

use std::io;

use counting::{allocations, peak_during};
use perfetto_trace_writer::{
    ProcessTrack, StreamingPerfettoWriter, ThreadTrack, TraceWriter, Writer,
};

type Sink = StreamingPerfettoWriter<io::Sink>;

/// A streaming writer into `io::sink()` with the process "p" in it.
fn writer() -> (Sink, ProcessTrack) {
    let mut w = StreamingPerfettoWriter::new(io::sink());
    let p = w.process("p", Some(1), "p", &[]).unwrap();
    (w, p)
}

/// [`writer`] with the thread "t" of "p".
fn writer_with_thread() -> (Sink, ProcessTrack, ThreadTrack) {
    let (mut w, p) = writer();
    let t = w.thread(p, "t", Some(2), "t").unwrap();
    (w, p, t)
}

/// The workload's threads in `p`.
fn workload_threads(w: &mut Sink, p: ProcessTrack) -> Vec<ThreadTrack> {
    (0..workload::THREADS)
        .map(|t| {
            w.thread(p, &format!("t{t}"), Some(i64::from(t) + 2), "t")
                .unwrap()
        })
        .collect()
}

/// The allocations of `replay` at a later offset, once a first replay at 0
/// has interned every string and grown every buffer and table.
fn allocations_once_warm(w: &mut Sink, replay: impl Fn(&mut Sink, u64)) -> u64 {
    replay(w, 0);
    let before = allocations();
    replay(w, 1 << 40);
    allocations() - before
}

#[test]
fn no_allocation_per_event_once_names_are_interned() {
    let threads = workload::thread_spans(50_000, 7);
    let asyncs = workload::async_spans(50_000, 64, 8);
    let (mut w, p) = writer();
    let ts = workload_threads(&mut w, p);
    let lane = w.async_lane(p, "lane").unwrap();
    let pools = workload::Pools::new();
    let replay = |w: &mut Sink, offset: u64| {
        for e in &threads.events {
            let t = ts[e.track as usize];
            if e.begin {
                let (file, line) = &pools.locations[e.location as usize];
                let (name, cat) = (
                    &pools.names[e.name as usize],
                    &pools.categories[e.category as usize],
                );
                w.span_begin(t, e.ts + offset, name, cat, file, *line)
                    .unwrap();
            } else {
                w.span_end(t, e.ts + offset).unwrap();
            }
        }
        for e in &asyncs.events {
            let id = u64::from(e.track);
            if e.begin {
                let (file, line) = &pools.locations[e.location as usize];
                let (name, cat) = (
                    &pools.names[e.name as usize],
                    &pools.categories[e.category as usize],
                );
                w.async_span_begin(lane, id, e.ts + offset, name, cat, file, *line)
                    .unwrap();
            } else {
                w.async_span_end(lane, id, e.ts + offset).unwrap();
            }
        }
    };
    // Warm-up: every name, category and location interned, stacks grown.
    let allocated = allocations_once_warm(&mut w, replay);
    let events = threads.events.len() + asyncs.events.len();
    assert!(events >= 100_000);
    assert_eq!(allocated, 0, "allocations over {events} events");
}

/// The same with event keys: thread spans, async spans and complete spans
/// of call sites.
#[test]
fn no_allocation_per_keyed_event() {
    let threads = workload::as_sites(workload::thread_spans(50_000, 7));
    let asyncs = workload::as_sites(workload::async_spans(50_000, 64, 8));
    let (mut w, p) = writer();
    let ts = workload_threads(&mut w, p);
    let lane = w.async_lane(p, "lane").unwrap();
    let keys = workload::site_keys(&mut w, &threads.pools).unwrap();
    let replay = |w: &mut Sink, offset: u64| {
        for e in &threads.events {
            let t = ts[e.track as usize];
            match e.begin {
                true => w.span_begin_key(t, e.ts + offset, keys[e.name as usize]),
                false => w.span_end(t, e.ts + offset),
            }
            .unwrap();
        }
        for e in &asyncs.events {
            let id = u64::from(e.track);
            match e.begin {
                true => w.async_span_begin_key(lane, id, e.ts + offset, keys[e.name as usize]),
                false => w.async_span_end(lane, id, e.ts + offset),
            }
            .unwrap();
        }
        let t = ts[0];
        for (i, k) in keys.iter().enumerate() {
            let at = offset + (1 << 38) + 10 * i as u64;
            w.complete_span_key(t, at, at + 5, *k).unwrap();
        }
    };
    assert_eq!(
        allocations_once_warm(&mut w, replay),
        0,
        "allocations over keyed events"
    );
}

/// The same for events with callstacks (their frames and stacks interned
/// once) and for spans on a named track.
#[test]
fn no_allocation_per_callstack_or_named_track_event() {
    use perfetto_trace_writer::{Event, ParentTrack, StackFrame, TrackOptions};
    let (mut w, _, t) = writer_with_thread();
    let queue = w
        .track(ParentTrack::Root, "queue", &TrackOptions::default())
        .unwrap();
    let functions: Vec<String> = (0..50).map(|i| format!("handler_{i}")).collect();
    let replay = |w: &mut Sink, offset: u64| {
        for i in 0..20_000u64 {
            let ts = offset + i * 100;
            let k = (i % 50) as usize;
            let stack = [
                StackFrame::new("main", "src/main.rs", 3),
                StackFrame::new(&functions[k], "src/handlers.rs", k as u32),
            ];
            let ev = Event::new("work").callstack(&stack);
            w.span_begin_with(t, ts, &ev).unwrap();
            w.instant(t, ts + 10, &ev).unwrap();
            w.span_end(t, ts + 20).unwrap();
            w.track_span_begin(queue, ts, &Event::new("job")).unwrap();
            w.track_complete_span(queue, ts + 5, ts + 15, &Event::new("step"))
                .unwrap();
            w.track_span_end(queue, ts + 30).unwrap();
        }
    };
    assert_eq!(
        allocations_once_warm(&mut w, replay),
        0,
        "allocations over 120,000 events"
    );
}

/// The same for counter samples, thread instants and spans with typed
/// arguments (a number and a string).
#[test]
fn no_allocation_per_counter_instant_or_argument_event() {
    use perfetto_trace_writer::CounterOptions;
    let wl = workload::other_events(20_000, 9);
    let (mut w, p, t) = writer_with_thread();
    let counter = w
        .counter_track(p, "queue", &CounterOptions::default())
        .unwrap();
    let replay = |w: &mut Sink, offset: u64| {
        workload::write_counters(w, &wl, &[counter; 4], offset).unwrap();
        workload::write_instants(w, &wl, t, offset).unwrap();
        workload::write_arg_spans(w, &wl, t, offset).unwrap();
    };
    assert_eq!(
        allocations_once_warm(&mut w, replay),
        0,
        "allocations over 60,000 events"
    );
}

/// The same for instants and slices with typed arguments on tracks named
/// by uuid (`instant_on`, `begin_on`, `end_on`: what the `tracing` layer
/// writes per event and per span), by strings and by key, each argument of
/// every kind, short strings and long.
#[test]
fn no_allocation_per_argument_event_on_a_uuid_track() {
    use perfetto_trace_writer::{Arg, Event, TrackOptions, TrackUuid, Value};
    let (mut w, _, t) = writer_with_thread();
    let span_key = w.event_key("span", "info,app", "src/app.rs", 10).unwrap();
    let long = "y".repeat(700);
    let messages: Vec<String> = (0..8).map(|i| format!("message {i}")).collect();
    let replay = |w: &mut Sink, offset: u64| {
        for i in 0..20_000u64 {
            let ts = offset + i * 100;
            let text: &str = if i % 97 == 0 { &long } else { "ready" };
            let args = [
                Arg::new("index", Value::Uint(i)),
                Arg::new("delta", Value::Int(-(i as i64))),
                Arg::new("ratio", Value::Double(i as f64 / 3.0)),
                Arg::new("ok", Value::Bool(i % 2 == 0)),
                Arg::new("state", Value::Str(text)),
            ];
            let message = &messages[(i % 8) as usize];
            let event = Event::new(message)
                .category("info,app")
                .location("src/app.rs", 20)
                .args(&args[..1 + (i % 5) as usize]);
            w.instant_on(t.uuid(), ts, &event).unwrap();
            let track = w
                .keyed_track(t.uuid(), i % 64, "span", &TrackOptions::default())
                .unwrap();
            let begin = Event::from_key(span_key).args(&args[..2]);
            w.begin_on(track, ts + 10, &begin).unwrap();
            w.end_on(TrackUuid::keyed(t.uuid(), i % 64), ts + 20)
                .unwrap();
        }
    };
    assert_eq!(
        allocations_once_warm(&mut w, replay),
        0,
        "allocations over 60,000 events"
    );
}

fn streaming_peak(spans: usize) -> i64 {
    let wl = workload::thread_spans(spans, 11);
    peak_during(|| {
        let mut w = StreamingPerfettoWriter::new(io::sink());
        workload::replay_threads(&mut w, &wl).unwrap();
        w.into_inner().unwrap();
    })
}

#[test]
fn streaming_memory_is_flat_in_trace_length() {
    let small = streaming_peak(50_000); // 100,000 events
    let large = streaming_peak(500_000); // 1,000,000 events
    assert!(small > 0);
    assert!(
        (large - small).abs() <= 4 * 1024,
        "peak heap {small} bytes for 100k events, {large} for 1M"
    );
    // And small in absolute terms: the 64 KiB buffer, the tables, the stacks.
    assert!(large < 256 * 1024, "peak heap {large} bytes");
    eprintln!("peak heap: {small} bytes for 100k events, {large} for 1M");
}

#[test]
fn the_sink_receives_large_writes() {
    struct Calls(u64, usize);
    impl io::Write for Calls {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0 += b.len() as u64;
            self.1 += 1;
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let wl = workload::thread_spans(100_000, 5);
    let mut w = StreamingPerfettoWriter::new(Calls(0, 0));
    workload::replay_threads(&mut w, &wl).unwrap();
    let sink = w.into_inner().unwrap();
    let average = sink.0 / sink.1 as u64;
    assert!(
        average >= 60 * 1024,
        "{} writes averaging {average} bytes",
        sink.1
    );
}

#[test]
fn small_traces_allocate_little() {
    // Setting a writer up is part of every small trace: count what it costs.
    // The buffer, the thread list, a stack per thread (made with its
    // thread) and the strings' text: 5 (string tables of up to four entries
    // keep their entries inline, the registry its first eight keys and two
    // processes). Exactly: one more is a regression, one fewer a change to
    // write down (BENCHMARKS.md, "Event keys").
    let before = allocations();
    let mut w = Writer::new();
    workload::small_trace(&mut w).unwrap();
    let buffered = allocations() - before;
    let bytes = w.into_bytes();

    let mut sink = Vec::with_capacity(bytes.len());
    let before = allocations();
    let mut s = StreamingPerfettoWriter::new(&mut sink);
    workload::small_trace(&mut s).unwrap();
    drop(s);
    let streaming = allocations() - before;
    assert_eq!(sink, bytes);
    eprintln!("small trace: {buffered} allocations buffered, {streaming} streaming");
    assert!(buffered > 0, "the counter counts");
    assert!(
        buffered == 5 && streaming == 5,
        "{buffered} (buffered) and {streaming} (streaming) allocations for a process, \
         two threads and three spans"
    );

    // Its spans as event keys: two more, the keys' text and their sites
    // (room for four, from the allocator's thread cache), and the same bytes.
    let before = allocations();
    let mut k = Writer::new();
    workload::small_trace_keyed(&mut k).unwrap();
    let keyed = allocations() - before;
    assert_eq!(k.into_bytes(), bytes);
    eprintln!("small trace with keys: {keyed} allocations");
    assert!(
        keyed == 7,
        "{keyed} allocations for a small trace with keys"
    );
}
