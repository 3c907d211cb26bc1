//! A sink slower than the program: back-pressure loses nothing; dropping
//! loses whole chunks, says so in the trace, and keeps memory bounded.

mod common;

use std::io::{self, Write};
use std::time::Duration;

use common::SharedBuf;
use perfetto_tracing::{Overflow, PerfettoLayer};
use tracing::{info, info_span};
use tracing_subscriber::layer::SubscriberExt;

/// Takes a while over each write.
#[derive(Clone, Default)]
struct Slow(SharedBuf);

impl Write for Slow {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        std::thread::sleep(Duration::from_millis(2));
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn run(overflow: Overflow, events: u64) -> (Vec<u8>, u64) {
    let sink = Slow::default();
    let (layer, guard) = PerfettoLayer::builder()
        .overflow(overflow)
        .chunk_size(2048)
        .queue_chunks(2)
        .reuse_span_tracks(true)
        .build(sink.clone())
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        // Open across every loss: its slice outlives the writers.
        let _outer = info_span!("outer").entered();
        for i in 0..events {
            let _s = info_span!("work", i).entered();
            info!(i, "step");
        }
    });
    let dropped = guard.dropped_chunks();
    guard.finish().unwrap();
    (sink.0.bytes(), dropped)
}

#[test]
fn back_pressure_loses_nothing() {
    let (bytes, dropped) = run(Overflow::Block, 5_000);
    assert_eq!(dropped, 0);
    let t = common::decode(&bytes);
    assert_eq!(t.slices.iter().filter(|s| s.name == "step").count(), 5_000);
    common::assert_clean(&bytes);
}

#[test]
fn dropping_counts_what_it_lost_in_the_trace() {
    let (bytes, dropped) = run(Overflow::Drop, 50_000);
    assert!(dropped > 0, "a 2 ms sink cannot keep up with 50,000 spans");
    let t = perfetto_trace_writer::inspect::decode(&bytes).expect("whole packets");
    let steps = t.slices.iter().filter(|s| s.name == "step").count();
    assert!(steps < 50_000 && steps > 0, "{steps}");
    let marks: Vec<_> = t
        .slices
        .iter()
        .filter(|s| s.name == "chunks dropped")
        .collect();
    assert!(!marks.is_empty());
    let last = marks
        .iter()
        .filter_map(|s| s.args.iter().find(|(k, _)| k.ends_with("dropped_chunks")))
        .count();
    assert_eq!(
        last,
        marks.len(),
        "each mark says how many chunks were lost"
    );
    // What the trace processor shows of them: the test below.
}

/// Every mark in the file is also a slice for the trace processor, and the
/// thread's slices nest no deeper than the program's spans: a slice that a
/// delivered chunk left open and whose end was lost is ended on the next
/// sequence. (Left open, each loss nested every later slice one level
/// deeper, until past 512 the trace processor dropped them, marks
/// included.)
#[test]
fn the_trace_processor_shows_every_mark_and_slices_nest_as_spans_do() {
    let (bytes, dropped) = run(Overflow::Drop, 50_000);
    assert!(dropped > 0);
    let t = perfetto_trace_writer::inspect::decode(&bytes).expect("whole packets");
    let marks = t
        .slices
        .iter()
        .filter(|s| s.name == "chunks dropped")
        .count();
    assert!(marks > 0);
    let Some(shown) = marks_shown(&bytes) else {
        return;
    };
    assert_eq!(shown, marks);
    // `outer` at depth 0, `work` at 1; `step`, and a mark made inside
    // `work`, at 2.
    let rows = common::query(
        &bytes,
        "select max(s.depth) as d from slice s join thread_track t on s.track_id = t.id;",
    )
    .unwrap();
    assert_eq!(rows[1], "2", "thread slices nest deeper than spans");
    let rows = common::query(
        &bytes,
        "select count(*) from slice where name = 'outer' and dur > 0;",
    )
    .unwrap();
    assert_eq!(
        rows[1], "2",
        "one slice on the thread, one on its own track"
    );
    let rows = common::query(
        &bytes,
        "select count(*) from stats where name = 'slice_max_depth_exceeded' and value > 0;",
    )
    .unwrap();
    assert_eq!(rows[1], "0");
    // The `work` spans' tracks serve one span after another, never one
    // inside another, across every loss: a track is used again only by the
    // writer that described it, since its sequence began.
    let rows = common::query(
        &bytes,
        "select count(distinct s.track_id) > 0, sum(s.depth > 0) from slice s \
         join track t on s.track_id = t.id where t.name = 'work';",
    )
    .unwrap();
    assert_eq!(rows[1], "1,0", "span tracks nest after a loss");
}

/// How many `chunks dropped` marks the trace processor shows, if it is here.
fn marks_shown(bytes: &[u8]) -> Option<usize> {
    let rows = common::query(
        bytes,
        "select count(*) as n from slice where name = 'chunks dropped';",
    )?;
    Some(rows[1].trim_matches('"').parse().unwrap())
}
