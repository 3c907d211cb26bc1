//! The shapes of an independent check (issue 14) that showed something other
//! than what the caller asked for, each in both modes and, where the writer
//! matters, through every writer. Set `PTW_TRACE_DIR` to keep the traces,
//! to load them in the trace processor.

use std::io::{self, Write};

use prost::Message;

use perfetto_trace_writer::inspect::{self, Trace};
use perfetto_trace_writer::{
    ChunkedWriter, CounterOptions, CounterSample, Error, Event, Options, StreamingPerfettoWriter,
    TraceWriter, TrackOptions, Writer,
};

fn modes() -> [(Options, &'static str); 2] {
    [
        (Options::new(), "default"),
        (Options::new().compact(true), "compact"),
    ]
}

/// Keeps a trace in `PTW_TRACE_DIR`, if set.
fn keep(name: &str, bytes: &[u8]) {
    if let Some(dir) = std::env::var_os("PTW_TRACE_DIR") {
        let path = std::path::Path::new(&dir).join(format!("{name}.pftrace"));
        std::fs::write(path, bytes).unwrap();
    }
}

fn read(bytes: &[u8]) -> Trace {
    let t = inspect::decode(bytes).unwrap();
    assert_eq!(t.problems, vec![], "the reader finds no problem");
    t
}

/// Runs `$body` (with `$w` a writer of `$options`) through the buffered,
/// streaming and chunked writers; checks that they wrote the same bytes,
/// and gives them.
macro_rules! all_writers {
    ($options:expr, |$w:ident| $body:block) => {{
        let options: Options = $options;
        let mut buffered = Writer::with_options(options);
        {
            let $w = &mut buffered;
            $body
        }
        let mut streaming = StreamingPerfettoWriter::with_options(Vec::new(), options);
        {
            let $w = &mut streaming;
            $body
        }
        let mut chunked = ChunkedWriter::with_options(1000, options);
        {
            let $w = &mut chunked;
            $body
        }
        let bytes = buffered.into_bytes();
        assert_eq!(streaming.into_inner().unwrap(), bytes, "streaming agrees");
        let chunks: Vec<u8> = chunked
            .finish_chunks()
            .unwrap()
            .into_iter()
            .flat_map(|c| c.data)
            .collect();
        assert_eq!(chunks, bytes, "chunked agrees");
        bytes
    }};
}

// 1. Tracks a writer makes on its own are its own.

/// Writer `i` of a trace: spans on a lane that every writer names alike,
/// instants on a shared named track and a thread of a shared process.
fn lane_writer(w: &mut impl TraceWriter, i: u64, spans: u64) {
    let p = w.process("service", Some(10), "service", &[]).unwrap();
    let lane = w.async_lane(p, "requests").unwrap();
    let deploys = w.track(p, "deploys", &TrackOptions::default()).unwrap();
    let t = w.thread(p, "main", Some(10), "main").unwrap();
    for k in 0..spans {
        // Writer 0's spans run from 100, writer 1's from 200, 200 long:
        // each overlaps the other writer's.
        let ts = 100 + i * 100 + k * 1_000;
        w.async_span_begin(lane, k, ts, &format!("w{i}"), "", "", 0)
            .unwrap();
        w.async_span_end(lane, k, ts + 200).unwrap();
    }
    w.instant(deploys, 50 + i, &Event::new("deploy")).unwrap();
    w.complete_span(t, 10 + i * 5, 12 + i * 5, "tick", "", "", 0)
        .unwrap();
    w.finish().unwrap();
}

#[test]
fn writers_of_one_trace_never_share_an_async_span_track() {
    for (options, mode) in modes() {
        for spans in [1, 50] {
            let parts: Vec<Vec<u8>> = (0..2u16)
                .map(|i| {
                    all_writers!(options.partition(i), |w| {
                        lane_writer(w, u64::from(i), spans)
                    })
                })
                .collect();
            for order in [[0, 1], [1, 0]] {
                let joined = [&parts[order[0]][..], &parts[order[1]][..]].concat();
                keep(&format!("lanes-{spans}-{mode}-{}", order[0]), &joined);
                let t = read(&joined);
                let spans_read: Vec<_> = t
                    .slices
                    .iter()
                    .filter(|s| s.name.starts_with('w'))
                    .collect();
                assert_eq!(spans_read.len() as u64, 2 * spans);
                for s in &spans_read {
                    assert_eq!((s.depth, s.dur), (0, Some(200)), "{mode}: {s:?}");
                }
                // Each writer's spans are on tracks of its own.
                for s in &spans_read {
                    for o in &spans_read {
                        if s.name != o.name {
                            assert_ne!(s.track, o.track, "{mode}");
                        }
                    }
                }
                // The process, its thread and the named track are one each.
                let named = |n: &str| {
                    t.tracks
                        .values()
                        .filter(|d| d.name.as_deref() == Some(n))
                        .count()
                };
                assert_eq!(named("service"), 1);
                assert_eq!(named("main"), 1);
                assert_eq!(named("deploys"), 1);
                let deploys: Vec<_> = t.slices.iter().filter(|s| s.name == "deploy").collect();
                assert_eq!(deploys.len(), 2);
                assert_eq!(deploys[0].track, deploys[1].track);
                let ticks: Vec<_> = t.slices.iter().filter(|s| s.name == "tick").collect();
                assert_eq!(ticks.len(), 2);
                assert_eq!(ticks[0].track, ticks[1].track);
            }
        }
    }
}

// 2. Incremental counters through interning generations.

#[test]
fn an_incremental_counter_shows_the_running_total_across_generations() {
    let incremental = CounterOptions {
        incremental: true,
        ..Default::default()
    };
    for (options, mode) in modes() {
        for n in [3u64, 10_000] {
            let bytes = all_writers!(options.intern_limit(1, usize::MAX), |w| {
                let p = w.process("p", Some(3), "p", &[]).unwrap();
                let t = w.thread(p, "t", Some(3), "t").unwrap();
                let c = w.counter_track(p, "served", &incremental).unwrap();
                let f = w.counter_track(p, "seconds", &incremental).unwrap();
                for k in 0..n {
                    w.complete_span(t, k * 10, k * 10 + 5, &format!("span {k}"), "", "", 0)
                        .unwrap();
                    w.counter(c, k * 10 + 1, 1_i64).unwrap();
                    w.counter(f, k * 10 + 2, 0.5_f64).unwrap();
                }
                assert!(w.interning_generations() >= n);
                w.finish().unwrap();
            });
            keep(&format!("incremental-{n}-{mode}"), &bytes);
            let t = read(&bytes);
            let values = |name: &str| -> Vec<f64> {
                let (&uuid, _) = t
                    .tracks
                    .iter()
                    .find(|(_, d)| d.name.as_deref() == Some(name))
                    .unwrap();
                t.counters
                    .iter()
                    .filter(|c| c.track == uuid)
                    .map(|c| c.value)
                    .collect()
            };
            let want: Vec<f64> = (1..=n).map(|k| k as f64).collect();
            assert_eq!(values("served"), want, "{mode}");
            let halves: Vec<f64> = (1..=n).map(|k| k as f64 / 2.0).collect();
            assert_eq!(values("seconds"), halves, "{mode}");
        }
    }
}

#[test]
fn incremental_counters_keep_their_bytes_when_interning_is_unbounded() {
    // Without a new generation, increments are written as given.
    let mut w = Writer::new();
    let p = w.process("p", Some(3), "p", &[]).unwrap();
    let c = w
        .counter_track(
            p,
            "c",
            &CounterOptions {
                incremental: true,
                ..Default::default()
            },
        )
        .unwrap();
    for k in 0..5 {
        w.counter(c, k, 2_i64).unwrap();
    }
    let trace = w.to_trace().unwrap();
    let written: Vec<_> = trace
        .packet
        .iter()
        .filter_map(|p| p.track_event.as_ref()?.counter_value)
        .collect();
    assert_eq!(written, [2, 2, 2, 2, 2]);
}

// 3. Incremental counters and writers that share a trace.

#[test]
fn incremental_counters_are_refused_where_writers_share_a_trace() {
    let incremental = CounterOptions {
        incremental: true,
        ..Default::default()
    };
    for (options, _) in modes() {
        for shared in [
            options.partition(0),
            options.partition(3),
            options.sequence_id(std::num::NonZeroU32::new(9).unwrap()),
        ] {
            let mut w = Writer::with_options(shared);
            let p = w.process("p", Some(3), "p", &[]).unwrap();
            let before = w.len();
            assert!(matches!(
                w.counter_track(p, "served", &incremental),
                Err(Error::SharedIncrementalCounter)
            ));
            assert_eq!(w.len(), before, "nothing written");
            // Absolute counters are fine: the same track in every writer.
            w.counter_track(p, "served", &CounterOptions::default())
                .unwrap();
        }
        let mut alone = Writer::with_options(options);
        alone
            .counter_track(perfetto_trace_writer::ParentTrack::Root, "c", &incremental)
            .unwrap();
    }
}

// 4. Negative pids.

#[test]
fn negative_pids_are_refused_and_negative_tids_link_to_their_process() {
    for (options, mode) in modes() {
        let bytes = all_writers!(options, |w| {
            let before = w.packet_count();
            assert!(matches!(
                w.process("p", Some(-1), "p", &[]),
                Err(Error::NegativePid(-1))
            ));
            assert!(matches!(
                w.process("p", Some(i32::MIN), "p", &[]),
                Err(Error::NegativePid(i32::MIN))
            ));
            assert_eq!(w.packet_count(), before, "nothing written");
            let p = w.process("p", Some(77), "named", &[]).unwrap();
            let t = w.thread(p, "t", Some(-5), "negative tid").unwrap();
            w.complete_span(t, 1, 2, "s", "", "", 0).unwrap();
            w.finish().unwrap();
        });
        keep(&format!("negative-tid-{mode}"), &bytes);
        let t = read(&bytes);
        let thread = t
            .tracks
            .values()
            .find(|d| d.name.as_deref() == Some("negative tid"))
            .unwrap();
        assert_eq!(thread.kind, inspect::TrackKind::Thread { pid: 77, tid: -5 });
    }
}

// 5. Explicit depths for complete spans.

#[test]
fn a_depth_makes_a_zero_length_span_at_its_parents_end_its_child() {
    for (options, mode) in modes() {
        let bytes = all_writers!(options, |w| {
            let p = w.process("db", Some(9), "db", &[]).unwrap();
            let t = w.thread(p, "rows", Some(9), "rows").unwrap();
            // Enough rows for compact mode to move the thread.
            for k in 0..20u64 {
                let b = k * 1_000;
                // (depth, begin, end, name), sorted by begin.
                let rows = [
                    (0, b, b + 200, "P"),
                    (1, b + 100, b + 200, "C"),
                    (2, b + 200, b + 200, "G"),
                    (1, b + 200, b + 200, "C2"),
                    (0, b + 200, b + 300, "Q"),
                    (0, b + 300, b + 300, "Z"),
                ];
                for (depth, begin, end, name) in rows {
                    w.complete_span_at_depth(t, depth, begin, end, &Event::new(name))
                        .unwrap();
                }
            }
            w.finish().unwrap();
        });
        keep(&format!("depth-{mode}"), &bytes);
        let t = read(&bytes);
        let got: Vec<_> = t
            .slices
            .iter()
            .take(6)
            .map(|s| (s.name.as_str(), s.depth, s.ts, s.dur))
            .collect();
        assert_eq!(
            got,
            [
                ("P", 0, 0, Some(200)),
                ("C", 1, 100, Some(100)),
                ("G", 2, 200, Some(0)),
                ("C2", 1, 200, Some(0)),
                ("Q", 0, 200, Some(100)),
                ("Z", 0, 300, Some(0)),
            ],
            "{mode}"
        );
        assert_eq!(t.slices.len(), 120);
    }
}

#[test]
fn a_depth_that_cannot_be_taken_is_refused_and_writes_nothing() {
    for (options, _) in modes() {
        let mut w = Writer::with_options(options);
        let p = w.process("db", Some(9), "db", &[]).unwrap();
        let t = w.thread(p, "rows", Some(9), "rows").unwrap();
        let ev = Event::new("x");
        w.complete_span_at_depth(t, 0, 100, 200, &ev).unwrap();
        let before = w.len();
        let range = |r: Result<(), Error>| match r {
            Err(Error::DepthOutOfRange {
                depth, min, max, ..
            }) => (depth, min, max),
            other => panic!("{other:?}"),
        };
        // Inside the parent, depth 0 is taken and depth 2 has no parent.
        assert_eq!(
            range(w.complete_span_at_depth(t, 0, 150, 160, &ev)),
            (0, 1, 1)
        );
        assert_eq!(
            range(w.complete_span_at_depth(t, 2, 150, 160, &ev)),
            (2, 1, 1)
        );
        // At the parent's end, a zero-length span may take depth 0 or 1;
        // a longer one only 0.
        assert_eq!(
            range(w.complete_span_at_depth(t, 2, 200, 200, &ev)),
            (2, 0, 1)
        );
        assert_eq!(
            range(w.complete_span_at_depth(t, 1, 200, 210, &ev)),
            (1, 0, 0)
        );
        // Crossing the parent's end is NotNested, as for complete_span.
        assert!(matches!(
            w.complete_span_at_depth(t, 1, 150, 250, &ev),
            Err(Error::NotNested { .. })
        ));
        assert!(matches!(
            w.complete_span_at_depth(t, 0, 50, 60, &ev),
            Err(Error::TimestampBackwards { .. })
        ));
        assert!(matches!(
            w.complete_span_at_depth(t, 600, 150, 160, &ev),
            Err(Error::TooDeep(_))
        ));
        assert_eq!(w.len(), before, "nothing written");
        // An explicit span holds its depth until it ends.
        w.span_begin(t, 300, "open", "", "", 0).unwrap();
        assert_eq!(
            range(w.complete_span_at_depth(t, 0, 300, 300, &ev)),
            (0, 1, 1)
        );
        w.complete_span_at_depth(t, 1, 300, 300, &ev).unwrap();
        w.span_end(t, 400).unwrap();
        w.finish().unwrap();
        let t = read(w.bytes());
        let got: Vec<_> = t.slices.iter().map(|s| (s.ts, s.depth)).collect();
        assert_eq!(got, [(100, 0), (300, 0), (300, 1)]);
    }
}

// 6. Instants at one time on a thread.

#[test]
fn instants_at_one_time_on_a_thread_stack_until_anything_else_happens() {
    for (options, mode) in modes() {
        let bytes = all_writers!(options, |w| {
            let p = w.process("p", Some(4), "p", &[]).unwrap();
            let t = w.thread(p, "t", Some(4), "t").unwrap();
            w.span_begin(t, 100, "outer", "", "", 0).unwrap();
            w.instant(t, 150, &Event::new("i1")).unwrap();
            w.instant(t, 150, &Event::new("i2")).unwrap();
            w.instant(t, 150, &Event::new("i3")).unwrap();
            // A span beginning at that time closes them.
            w.complete_span(t, 150, 150, "zero", "", "", 0).unwrap();
            w.instant(t, 150, &Event::new("i4")).unwrap();
            w.instant(t, 160, &Event::new("i5")).unwrap();
            w.span_end(t, 200).unwrap();
            w.finish().unwrap();
        });
        keep(&format!("instants-{mode}"), &bytes);
        let t = read(&bytes);
        let got: Vec<_> = t
            .slices
            .iter()
            .map(|s| (s.name.as_str(), s.depth))
            .collect();
        assert_eq!(
            got,
            [
                ("outer", 0),
                ("i1", 1),
                ("i2", 2),
                ("i3", 3),
                ("zero", 1),
                ("i4", 1),
                ("i5", 1),
            ],
            "{mode}"
        );
    }
}

/// Same-time instants stack, so they count towards the depth the trace
/// processor accepts: past it, the writer refuses them (it wrote them all,
/// and the reader dropped 88 of 600 with an error).
#[test]
fn same_time_instants_stop_at_the_depth_limit() {
    for (options, mode) in modes() {
        let bytes = all_writers!(options, |w| {
            let p = w.process("p", Some(4), "p", &[]).unwrap();
            let t = w.thread(p, "t", Some(4), "t").unwrap();
            w.span_begin(t, 50, "outer", "", "", 0).unwrap();
            let mut accepted = 0;
            for _ in 0..600 {
                match w.instant(t, 100, &Event::new("i")) {
                    Ok(()) => accepted += 1,
                    Err(Error::TooDeep(_)) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(accepted, perfetto_trace_writer::MAX_SPAN_DEPTH - 1);
            // Anything else at that time closes them: room again.
            w.complete_span(t, 100, 100, "zero", "", "", 0).unwrap();
            w.instant(t, 100, &Event::new("after")).unwrap();
            w.span_end(t, 200).unwrap();
            w.finish().unwrap();
        });
        keep(&format!("instants-deep-{mode}"), &bytes);
        let t = read(&bytes);
        let deepest = t.slices.iter().map(|s| s.depth).max().unwrap();
        assert_eq!(deepest, perfetto_trace_writer::MAX_SPAN_DEPTH - 1, "{mode}");
        let after = t.slices.iter().find(|s| s.name == "after").unwrap();
        assert_eq!(after.depth, 1);
    }
}

/// An end at the instants' time closes them, whether or not it carries
/// counters: as many instants fit after it either way.
#[test]
fn an_end_with_counters_closes_same_time_instants_as_a_plain_end_does() {
    for (options, mode) in modes() {
        let mut fitted = Vec::new();
        for with_counters in [false, true] {
            let mut after = Vec::new();
            let bytes = all_writers!(options, |w| {
                let p = w.process("p", Some(4), "p", &[]).unwrap();
                let t = w.thread(p, "t", Some(4), "t").unwrap();
                let c = w.counter_track(p, "c", &CounterOptions::default()).unwrap();
                w.span_begin(t, 50, "outer", "", "", 0).unwrap();
                w.span_begin(t, 60, "inner", "", "", 0).unwrap();
                while w.instant(t, 100, &Event::new("before")).is_ok() {}
                match with_counters {
                    true => w
                        .span_end_with_counters(t, 100, &[(c, CounterSample::Int(1))])
                        .unwrap(),
                    false => w.span_end(t, 100).unwrap(),
                }
                let mut n = 0;
                while w.instant(t, 100, &Event::new("after")).is_ok() {
                    n += 1;
                }
                after.push(n);
                w.span_end(t, 200).unwrap();
                w.finish().unwrap();
            });
            keep(&format!("instants-end-{with_counters}-{mode}"), &bytes);
            let t = read(&bytes);
            let deepest = t.slices.iter().map(|s| s.depth).max().unwrap();
            assert!(deepest < perfetto_trace_writer::MAX_SPAN_DEPTH, "{mode}");
            assert!(after.windows(2).all(|w| w[0] == w[1]), "{mode}");
            fitted.push(after[0]);
        }
        assert_eq!(fitted[0], fitted[1], "{mode}");
        assert_eq!(
            fitted[0],
            perfetto_trace_writer::MAX_SPAN_DEPTH - 1,
            "{mode}"
        );
    }
}

// 10. Chunk boundaries.

#[test]
fn every_chunk_closes_at_the_first_packet_boundary_past_its_size() {
    for (options, _) in modes() {
        for size in [1, 64, 700, 2048, 4096] {
            let mut w = ChunkedWriter::with_options(size, options);
            let p = w.process("p", Some(4), "p", &[]).unwrap();
            let t = w.thread(p, "t", Some(4), "t").unwrap();
            let mut chunks = Vec::new();
            for k in 0..3_000u64 {
                // Complete spans whose ends are written by the next call:
                // calls of several packets.
                let name = format!("span {}", k % 50);
                w.complete_span(t, k * 10, k * 10 + 5, &name, "c", "f.rs", 1)
                    .unwrap();
                chunks.extend(std::iter::from_fn(|| w.take_chunk()));
            }
            chunks.extend(w.finish_chunks().unwrap());
            let last = chunks.len() - 1;
            for (i, c) in chunks.iter().enumerate() {
                let trace = perfetto_trace_writer::protos::Trace::decode(&c.data[..]).unwrap();
                assert!(!trace.packet.is_empty(), "each chunk decodes alone");
                let ends = frame_ends(&c.data);
                assert_eq!(*ends.last().unwrap(), c.data.len(), "whole packets");
                if i < last {
                    // At least the size, and the packet before the last
                    // ended short of it.
                    assert!(c.data.len() >= size, "chunk {i} of {size}");
                    let before_last = ends.len().checked_sub(2).map_or(0, |j| ends[j]);
                    assert!(before_last < size, "chunk {i} of {size}: {ends:?}");
                }
            }
        }
    }
}

/// Where each packet of a trace ends.
fn frame_ends(data: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut at = 0;
    while at < data.len() {
        assert_eq!(data[at], 0x0a, "a framed packet");
        let (mut len, mut i) = (0usize, at + 1);
        loop {
            let b = data[i];
            len |= usize::from(b & 0x7f) << (7 * (i - at - 1));
            i += 1;
            if b < 0x80 {
                break;
            }
        }
        at = i + len;
        ends.push(at);
    }
    ends
}

// 11. into_inner gives the writer back with the error.

/// Fails every write while `broken`.
#[derive(Debug)]
struct Flaky {
    data: Vec<u8>,
    broken: bool,
}

impl Write for Flaky {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.broken {
            return Err(io::Error::other("disk full"));
        }
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn calls(w: &mut impl TraceWriter) {
    let p = w.process("p", Some(4), "p", &[]).unwrap();
    let t = w.thread(p, "t", Some(4), "t").unwrap();
    for k in 0..100 {
        w.complete_span(t, k * 10, k * 10 + 5, "s", "", "", 0)
            .unwrap();
    }
}

#[test]
fn into_inner_gives_the_writer_back_when_the_last_flush_fails() {
    for (options, _) in modes() {
        let mut whole = Writer::with_options(options);
        calls(&mut whole);
        whole.finish().unwrap();
        let sink = Flaky {
            data: Vec::new(),
            broken: false,
        };
        let mut w = StreamingPerfettoWriter::with_options(sink, options.flush_threshold(1 << 20));
        calls(&mut w);
        w.get_mut().broken = true;
        let err = w.into_inner().unwrap_err();
        assert!(matches!(err.error(), Error::Io(e) if e.to_string() == "disk full"));
        assert!(err.to_string().contains("disk full"));
        assert_eq!(err.writer().bytes_written(), 0);
        // Retried once the sink works again: every byte, once.
        let mut w = err.into_writer();
        w.get_mut().broken = false;
        let sink = w.into_inner().unwrap();
        assert_eq!(sink.data, whole.bytes());
        // Or the sink taken as it is, to close it: a prefix of whole packets.
        let mut w = StreamingPerfettoWriter::with_options(
            Flaky {
                data: Vec::new(),
                broken: false,
            },
            options.flush_threshold(100),
        );
        calls(&mut w);
        w.get_mut().broken = true;
        let err = w.into_inner().unwrap_err();
        let whole_bytes = err.writer().whole_bytes() as usize;
        let sink = err.into_sink();
        assert!(!sink.data.is_empty());
        assert_eq!(sink.data[..whole_bytes], whole.bytes()[..whole_bytes]);
        // `?` turns it into the crate's error.
        fn question_mark(
            w: StreamingPerfettoWriter<Flaky>,
        ) -> perfetto_trace_writer::Result<Flaky> {
            Ok(w.into_inner()?)
        }
        let mut w = StreamingPerfettoWriter::with_options(
            Flaky {
                data: Vec::new(),
                broken: true,
            },
            options,
        );
        calls(&mut w);
        assert!(matches!(question_mark(w), Err(Error::Io(_))));
    }
}
