//! The importer's memory is bounded by the spans in flight: a streaming
//! writer fed ten times the rows, with as many spans in flight at once,
//! peaks at the same heap. (Deterministic: heap bytes, not time.)

#[path = "common/counting.rs"]
mod counting;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use perfetto_trace_writer::import::{
    AsyncEventRow, ImportConfig, Importer, ProcessRow, StreamRow, ThreadSpanRow,
};
use perfetto_trace_writer::{StreamingPerfettoWriter, TraceWriter};

/// Imports `requests` requests of a service into a streaming writer whose
/// sink discards, and returns the peak heap above what was live before.
/// Each request: three nested thread spans, a task begun on one thread and
/// ended on another, and a detached child outliving it by a request and a
/// half. Rows are made on the fly, in the service's order.
fn peak(requests: u64) -> i64 {
    counting::peak_during(|| {
        let mut w = StreamingPerfettoWriter::new(std::io::sink());
        let mut im = Importer::new(&mut w, ImportConfig::new()).unwrap();
        im.process(&ProcessRow {
            process_id: "p",
            exe: "svc",
            pid: Some(7),
            start_time: 0,
            end_time: None,
        })
        .unwrap();
        for s in ["s0", "s1"] {
            im.stream(&StreamRow {
                stream_id: s,
                process_id: "p",
                thread_name: s,
                thread_id: None,
            })
            .unwrap();
        }
        const NAMES: [&str; 4] = ["handle", "parse", "plan", "fetch"];
        // Ends due later: (time, span id).
        let mut ends: BinaryHeap<Reverse<(u64, u64)>> = BinaryHeap::new();
        let event = |im: &mut Importer<'_, _>, stream, time, kind, id, parent| {
            let row = AsyncEventRow {
                stream_id: stream,
                time,
                event_type: kind,
                span_id: id,
                parent_span_id: parent,
                depth: u32::from(parent.is_some()),
                name: NAMES[(id % 4) as usize],
                target: "svc",
                filename: "src/svc.rs",
                line: 3,
            };
            im.async_event(&row).unwrap();
        };
        for i in 0..requests {
            let t = 1_000 + i * 1_000;
            for (d, (b, e)) in [(t, t + 500), (t + 10, t + 200), (t + 20, t + 100)]
                .into_iter()
                .enumerate()
            {
                let row = ThreadSpanRow {
                    stream_id: "s0",
                    begin: b,
                    end: e,
                    depth: d as u32,
                    name: NAMES[d],
                    target: "svc",
                    filename: "src/svc.rs",
                    line: d as u32,
                };
                im.thread_span(&row).unwrap();
            }
            let (task, child) = (2 * i + 1, 2 * i + 2);
            for (time, kind, id, parent) in [
                (t + 50, "begin", task, None),
                (t + 60, "begin", child, Some(task)),
            ] {
                while let Some(&Reverse((due, id))) = ends.peek().filter(|e| e.0 .0 <= time) {
                    ends.pop();
                    event(&mut im, "s1", due, "end", id, None);
                }
                event(&mut im, "s0", time, kind, id, parent);
            }
            ends.push(Reverse((t + 400, task)));
            ends.push(Reverse((t + 2_500, child)));
        }
        while let Some(Reverse((due, id))) = ends.pop() {
            event(&mut im, "s1", due, "end", id, None);
        }
        let report = im.finish().unwrap();
        assert_eq!(report.async_spans, 2 * requests);
        assert_eq!(report.total(), 0);
        assert!(w.finish().unwrap().is_empty());
        drop(w);
    })
}

#[test]
fn peak_heap_does_not_grow_with_the_rows() {
    let small = peak(2_000);
    let large = peak(20_000);
    // The same spans in flight: the same tables, the same buffer.
    assert!(
        large <= small + small / 20,
        "peak heap {large} bytes for 20,000 requests against {small} for 2,000"
    );
}
