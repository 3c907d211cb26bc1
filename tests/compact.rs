//! Compact mode: busy threads and async tracks write on sequences of their
//! own, with default tracks and delta timestamps. The trace must show exactly
//! what default mode shows, in fewer bytes, and never more.

#[path = "../benches/workload.rs"]
mod workload;

use perfetto_trace_writer::inspect::{self, Trace};
use perfetto_trace_writer::{protos, Options, StreamingPerfettoWriter, TraceWriter, Writer};
use prost::Message;

fn both(build: impl Fn(&mut Writer)) -> (Writer, Writer) {
    let mut plain = Writer::new();
    build(&mut plain);
    let mut compact = Writer::with_options(Options::new().compact(true));
    build(&mut compact);
    (plain, compact)
}

fn decoded(w: &Writer) -> Trace {
    let t = inspect::decode(w.bytes()).unwrap();
    assert_eq!(t.problems, vec![]);
    t
}

fn assert_same_picture(plain: &Writer, compact: &Writer) {
    let (a, b) = (decoded(plain), decoded(compact));
    assert_eq!(a.tracks, b.tracks);
    assert_eq!(a.slices, b.slices);
    let reencoded = protos::Trace::decode(compact.bytes())
        .unwrap()
        .encode_to_vec();
    assert_eq!(reencoded, compact.bytes(), "canonical encoding");
}

#[test]
fn thread_workload_shows_the_same_in_fewer_bytes() {
    let wl = workload::thread_spans(100_000, 21);
    let (plain, compact) = both(|w| workload::replay_threads(w, &wl).unwrap());
    assert_same_picture(&plain, &compact);
    // The uuid and most of the timestamp go; what stays is per packet
    // (framing, sequence id, event type, flags) and the interned iids.
    // Each thread moves once busy (after as many spans as distinct strings,
    // 528 here, of 12,500): 0.64 at 1M spans, a little more at 100k.
    let ratio = compact.len() as f64 / plain.len() as f64;
    assert!(ratio <= 0.68, "compact is {ratio:.3} of default");
    assert_eq!(compact.sequence_count(), 1 + workload::THREADS as usize);
    assert_eq!(plain.sequence_count(), 1);

    // Streaming produces the same bytes in compact mode too.
    let mut s = StreamingPerfettoWriter::with_options(Vec::new(), Options::new().compact(true));
    workload::replay_threads(&mut s, &wl).unwrap();
    assert_eq!(s.into_inner().unwrap(), compact.bytes());
}

/// The thread workload given as complete spans, thread after thread (the
/// shape of a database export), shows the same slices as given as begins
/// and ends in time order, in both modes.
#[test]
fn complete_spans_show_what_begins_and_ends_show() {
    let wl = workload::thread_spans(20_000, 24);
    let spans = workload::complete_spans(&wl);
    let (plain, compact) = both(|w| workload::replay_threads(w, &wl).unwrap());
    let (plain_c, compact_c) = both(|w| workload::replay_complete(w, &wl.pools, &spans).unwrap());
    let sorted = |w: &Writer| {
        let mut slices = decoded(w).slices;
        slices.sort_by_key(|s| (s.track, s.ts, s.depth));
        slices
    };
    let reference = sorted(&plain);
    assert_eq!(reference.len(), 20_000);
    assert_eq!(sorted(&compact), reference);
    assert_eq!(sorted(&plain_c), reference);
    assert_eq!(sorted(&compact_c), reference);
}

#[test]
fn async_workload_shows_the_same() {
    let wl = workload::async_spans(20_000, 64, 22);
    let (plain, compact) = both(|w| workload::replay_async(w, &wl).unwrap());
    assert_same_picture(&plain, &compact);
    // 64 tracks of about 300 spans each, against 528 distinct strings: few
    // are busy enough for a sequence (one, busy early while few strings were
    // known), and compact costs at most a trifle more.
    let ratio = compact.len() as f64 / plain.len() as f64;
    assert!(ratio <= 1.01, "compact is {ratio:.4} of default");
}

/// Busy async tracks move to sequences of their own, whose default track
/// they are: a few spans in flight over a long trace take about the bytes
/// of thread spans, and the trace shows the same.
#[test]
fn busy_async_tracks_get_sequences_of_their_own() {
    let wl = workload::async_spans(50_000, 4, 23);
    let (plain, compact) = both(|w| workload::replay_async(w, &wl).unwrap());
    assert_same_picture(&plain, &compact);
    let ratio = compact.len() as f64 / plain.len() as f64;
    assert!(ratio <= 0.68, "compact is {ratio:.3} of default");
    // The writer's own sequence, and one per async track (4 in flight).
    assert_eq!(compact.sequence_count(), 1 + 4);

    // Streaming writes the same bytes.
    let mut s = StreamingPerfettoWriter::with_options(Vec::new(), Options::new().compact(true));
    workload::replay_async(&mut s, &wl).unwrap();
    assert_eq!(s.into_inner().unwrap(), compact.bytes());
}

#[test]
fn a_busy_thread_gets_a_sequence_that_names_its_track_and_clock() {
    let (_, w) = both(|w| {
        let p = w.process("p", Some(1), "p", &[]).unwrap();
        let t = w.thread(p, "t", Some(2), "t").unwrap();
        for k in 0..5 {
            let t0 = 5_000 + k * 2_000;
            w.complete_span(t, t0, t0 + 1_000, "s", "c", "", 0).unwrap();
        }
        w.finish().unwrap();
    });
    let trace = w.to_trace().unwrap();
    let thread_uuid = trace
        .packet
        .iter()
        .find_map(|p| p.track_descriptor.as_ref().filter(|d| d.thread.is_some()))
        .unwrap()
        .uuid
        .unwrap();
    // The first three spans go on the writer's sequence with the thread's
    // uuid; from the fourth (busy: 4 spans, more than its 2 strings) on, the
    // thread writes on sequence 2, which opens with a packet that clears
    // state, sets the defaults and reads the clock.
    let named = trace
        .packet
        .iter()
        .filter_map(|p| p.track_event.as_ref())
        .filter(|e| e.track_uuid == Some(thread_uuid))
        .count();
    assert_eq!(named, 6);
    let on_thread: Vec<_> = trace
        .packet
        .iter()
        .filter(|p| p.trusted_packet_sequence_id == Some(2))
        .collect();
    assert_eq!(on_thread.len(), 5);
    let start = on_thread[0];
    assert_eq!(start.sequence_flags, Some(3));
    assert_eq!(start.first_packet_on_sequence, Some(true));
    let defaults = start.trace_packet_defaults.as_ref().unwrap();
    assert_eq!(defaults.timestamp_clock_id, Some(64));
    assert_eq!(
        defaults.track_event_defaults.as_ref().unwrap().track_uuid,
        Some(thread_uuid)
    );
    let clocks = &start.clock_snapshot.as_ref().unwrap().clocks;
    assert_eq!(
        (clocks[0].clock_id, clocks[0].timestamp),
        (Some(6), Some(11_000))
    );
    assert_eq!(
        (clocks[1].clock_id, clocks[1].is_incremental),
        (Some(64), Some(true))
    );
    let begin = on_thread[1];
    assert_eq!(begin.timestamp, Some(0), "a delta from the snapshot");
    assert_eq!(
        begin.track_event.as_ref().unwrap().track_uuid,
        None,
        "the default applies"
    );
    assert_eq!(begin.sequence_flags, Some(2));
    let end = on_thread[2];
    assert_eq!(end.timestamp, Some(1_000));
    assert_eq!(
        end.sequence_flags,
        Some(2),
        "deltas and defaults are incremental state"
    );
    let slices = decoded(&w).slices;
    assert_eq!(slices.len(), 5);
    assert!(slices.iter().all(|s| s.dur == Some(1_000) && s.depth == 0));
}

/// A thread that turns busy inside an open span moves anyway: the span
/// begins on the writer's sequence and ends on the thread's own, and the
/// trace processor pairs them by track.
#[test]
fn a_thread_moves_with_a_span_open() {
    let (plain, compact) = both(|w| {
        let p = w.process("p", Some(1), "p", &[]).unwrap();
        let t = w.thread(p, "t", Some(2), "t").unwrap();
        w.span_begin(t, 100, "outer", "c", "", 0).unwrap();
        for k in 0..6 {
            let t0 = 200 + k * 100;
            w.complete_span(t, t0, t0 + 50, "inner", "c", "", 0)
                .unwrap();
        }
        w.span_end(t, 2_000).unwrap();
        w.finish().unwrap();
    });
    assert_same_picture(&plain, &compact);
    assert_eq!(compact.sequence_count(), 2);
    let slices = decoded(&compact).slices;
    let outer = slices.iter().find(|s| s.name == "outer").unwrap();
    assert_eq!((outer.ts, outer.dur, outer.depth), (100, Some(1_900), 0));
    assert_eq!(slices.iter().filter(|s| s.depth == 1).count(), 6);
}

/// A thread with a few spans stays on the writer's sequence: compact mode
/// costs short-lived threads nothing.
#[test]
fn short_lived_threads_stay_on_the_writers_sequence() {
    let (plain, compact) = both(|w| {
        let p = w.process("p", Some(1), "p", &[]).unwrap();
        for i in 0..100 {
            let t = w.thread(p, &format!("t{i}"), Some(10 + i), "w").unwrap();
            let t0 = 1_000_000 + i as u64 * 100;
            w.complete_span(t, t0, t0 + 50, "job", "work", "src/job.rs", 7)
                .unwrap();
        }
        w.finish().unwrap();
    });
    assert_same_picture(&plain, &compact);
    assert_eq!(compact.sequence_count(), 1);
    assert!(
        compact.len() <= plain.len(),
        "{} > {}",
        compact.len(),
        plain.len()
    );
}

#[test]
fn extreme_timestamps_in_compact_mode() {
    let max = i64::MAX as u64;
    let (plain, compact) = both(|w| {
        let p = w.process("p", Some(1), "p", &[]).unwrap();
        let t = w.thread(p, "t", Some(2), "t").unwrap();
        let lane = w.async_lane(p, "io").unwrap();
        // Ties and zero at the start of time.
        w.complete_span(t, 0, 0, "zero", "", "", 0).unwrap();
        w.complete_span(t, 0, 10, "tie-outer", "", "", 0).unwrap();
        w.complete_span(t, 0, 10, "tie-inner", "", "", 0).unwrap();
        // A jump of more than 2^32 ns, then the largest time there is.
        w.complete_span(t, (1 << 33) + 7, (1 << 40) + 1, "jump", "", "", 0)
            .unwrap();
        w.span_begin(t, max - 5, "late", "", "", 0).unwrap();
        w.span_end(t, max).unwrap();
        assert!(w.span_begin(t, max + 1, "too late", "", "", 0).is_err());
        assert!(w.span_begin(t, u64::MAX, "too late", "", "", 0).is_err());
        // Async events going back in time on one sequence.
        w.async_span_begin(lane, 1, 1_000_000, "a", "", "", 0)
            .unwrap();
        w.async_span_begin(lane, 2, 10, "b", "", "", 0).unwrap();
        w.async_span_end(lane, 2, 20).unwrap();
        w.async_span_end(lane, 1, 2_000_000).unwrap();
        w.async_span_begin(lane, 3, 5, "c", "", "", 0).unwrap();
        w.async_span_end(lane, 3, max).unwrap();
        w.async_span_begin(lane, 4, 0, "d", "", "", 0).unwrap();
        w.async_span_end(lane, 4, 0).unwrap();
        assert!(w.finish().unwrap().is_empty());
    });
    assert_same_picture(&plain, &compact);
    let slices = decoded(&compact).slices;
    let find = |n: &str| slices.iter().find(|s| s.name == n).unwrap();
    assert_eq!((find("late").ts, find("late").dur), (max - 5, Some(5)));
    assert_eq!((find("b").ts, find("b").dur), (10, Some(10)));
    assert_eq!((find("c").ts, find("c").dur), (5, Some(max - 5)));
    assert_eq!((find("tie-inner").depth, find("zero").depth), (1, 0));
    assert_eq!(find("jump").dur, Some((1 << 40) + 1 - (1 << 33) - 7));

    // Time goes back only on the writer's own sequence, which tracks share
    // and which writes absolute times: no delta is ever negative, and no
    // packet needs a clock of its own.
    let trace = compact.to_trace().unwrap();
    assert!(trace.packet.iter().all(|p| p.timestamp_clock_id.is_none()));
}

/// One span named `name` on `t` at `*ts`.
fn span(w: &mut Writer, t: perfetto_trace_writer::ThreadTrack, ts: &mut u64, name: &str) {
    w.span_begin(t, *ts, name, "cat", "src/f.rs", 7).unwrap();
    w.span_end(t, *ts + 5).unwrap();
    *ts += 10;
}

/// A track's sequence that has defined every string of the writer skips its
/// bits of defined strings; it must still define, before naming them, the
/// strings new to the writer and those another thread's sequence added.
#[test]
fn caught_up_sequences_still_define_what_is_new_to_them() {
    let (plain, compact) = both(|w| {
        let p = w.process("p", Some(1), "p", &[]).unwrap();
        let a = w.thread(p, "a", Some(2), "a").unwrap();
        let b = w.thread(p, "b", Some(3), "b").unwrap();
        let mut ts = 1_000;
        // `a` turns busy and defines all there is.
        for i in 0..40 {
            span(w, a, &mut ts, ["x", "y"][i % 2]);
        }
        // `b` adds strings that `a` has not defined.
        for name in ["p", "q", "r"] {
            for _ in 0..8 {
                span(w, b, &mut ts, name);
            }
        }
        // `a` names them, its own again, and one new to the writer.
        for name in ["q", "x", "r", "z", "p", "y", "z"] {
            span(w, a, &mut ts, name);
        }
    });
    assert_eq!(compact.sequence_count(), 3, "both threads moved");
    assert_same_picture(&plain, &compact);
}

/// What compact mode may write beyond default mode, per busy track: its
/// opening packet and strings defined before its savings paid for them
/// (`MOVE_BUDGET` in the core).
const BOUND_PER_TRACK: usize = 128;

/// Eight threads, each with `spans` spans named by `name(thread, k)`, at a
/// random source line when `lines`.
/// Keeps both traces in `PTW_TRACE_DIR`, if set, for the trace processor.
fn keep(name: &str, plain: &Writer, compact: &Writer) {
    if let Some(dir) = std::env::var_os("PTW_TRACE_DIR") {
        let dir = std::path::Path::new(&dir);
        std::fs::write(dir.join(format!("{name}-default.pftrace")), plain.bytes()).unwrap();
        std::fs::write(dir.join(format!("{name}-compact.pftrace")), compact.bytes()).unwrap();
    }
}

fn threads_named(w: &mut Writer, spans: u64, lines: bool, name: &dyn Fn(u64, u64) -> String) {
    let p = w.process("p", Some(1), "p", &[]).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|i| w.thread(p, &format!("t{i}"), None, "worker").unwrap())
        .collect();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for k in 0..spans {
        for (i, &t) in threads.iter().enumerate() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ts = 1_000_000_000 + k * 10_000 + i as u64 * 100;
            let line = if lines { (x % 1_000) as u32 } else { 0 };
            let file = if lines {
                "src/service/handlers/requests.rs"
            } else {
                ""
            };
            w.complete_span(t, ts, ts + 50, &name(i as u64, k), "rpc", file, line)
                .unwrap();
        }
    }
    w.finish().unwrap();
}

/// Compact mode pays off on long-running threads however many strings
/// there are: a new name and a random line on every span (the old rule,
/// as many spans as distinct strings, never moved these threads).
#[test]
fn compact_pays_off_on_busy_threads_with_a_new_string_every_span() {
    let (plain, compact) =
        both(|w| threads_named(w, 10_000, true, &|i, k| format!("request {i}-{k}")));
    assert_same_picture(&plain, &compact);
    keep("new-string-every-span", &plain, &compact);
    assert_eq!(compact.sequence_count(), 9, "every thread moved");
    let ratio = compact.len() as f64 / plain.len() as f64;
    assert!(ratio < 0.9, "compact is {ratio:.3} of default");
    eprintln!("new string every span: compact is {ratio:.3} of default");
}

/// Long names shared by every thread: each sequence of its own would define
/// each name again. Compact mode defines a string on a track's sequence
/// only once what the track saved covers it, so it never writes more than
/// the bound beyond default mode (the old rule wrote 7% more here), and
/// still saves once the names are known.
#[test]
fn compact_stays_within_its_bound_on_long_shared_strings() {
    for (pool, spans) in [(500u64, 4_000u64), (4_000, 1_000), (50, 200), (2_000, 6)] {
        let long = |i: u64| {
            format!(
                "{}{i}",
                "a long operation name shared by every worker ".repeat(4)
            )
        };
        let (plain, compact) = both(|w| threads_named(w, spans, false, &|_, k| long(k % pool)));
        assert_same_picture(&plain, &compact);
        keep(&format!("long-shared-{pool}"), &plain, &compact);
        let busy = compact.sequence_count() - 1;
        assert!(
            compact.len() <= plain.len() + BOUND_PER_TRACK * busy,
            "pool {pool}, {spans} spans: compact {} against default {}",
            compact.len(),
            plain.len()
        );
        if spans >= 4_000 {
            let ratio = compact.len() as f64 / plain.len() as f64;
            assert!(
                ratio < 0.95,
                "pool {pool}: compact is {ratio:.3} of default"
            );
        }
    }
}
