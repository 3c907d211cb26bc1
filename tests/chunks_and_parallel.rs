//! Chunked output and several writers producing one trace.

#[path = "../benches/workload.rs"]
mod workload;

use perfetto_trace_writer::{inspect, protos, ChunkedWriter, Options, TraceWriter, Writer};
use prost::Message;

#[test]
fn chunks_end_on_packet_boundaries_and_concatenate_to_the_trace() {
    let wl = workload::thread_spans(20_000, 9);
    for compact in [false, true] {
        for size in [1, 100, 4096, 1 << 20] {
            let options = Options::new().compact(compact);
            let mut w = ChunkedWriter::with_options(size, options);
            let mut chunks = Vec::new();
            w.process("bench-process", Some(1000), "bench", &[])
                .unwrap();
            while let Some(c) = w.take_chunk() {
                chunks.push(c);
            }
            workload::replay_threads(&mut w, &wl).unwrap();
            while let Some(c) = w.take_chunk() {
                chunks.push(c);
            }
            chunks.extend(w.finish_chunks().unwrap());

            let mut whole = Writer::with_options(options);
            whole
                .process("bench-process", Some(1000), "bench", &[])
                .unwrap();
            workload::replay_threads(&mut whole, &wl).unwrap();

            let mut joined = Vec::new();
            for (i, c) in chunks.iter().enumerate() {
                assert_eq!(c.id, i as u64, "numbered in order");
                assert!(!c.data.is_empty());
                let alone = protos::Trace::decode(&c.data[..]).expect("each chunk decodes alone");
                assert!(!alone.packet.is_empty());
                if i + 1 < chunks.len() {
                    assert!(c.data.len() >= size, "only the last chunk is short");
                }
                joined.extend_from_slice(&c.data);
            }
            assert_eq!(joined, whole.bytes(), "compact {compact}, size {size}");
            if size == 4096 {
                assert!(
                    chunks.iter().all(|c| c.data.len() < 4096 + 200),
                    "about the size asked"
                );
            }
        }
    }
}

/// The calls of partition `i`: its own process with threads, a lane and
/// spans, and a thread of a process every partition describes alike.
fn partition_calls(w: &mut impl TraceWriter, i: u64) {
    let shared = w.process("shared", Some(7), "shared service", &[]).unwrap();
    let own = w
        .process(&format!("proc-{i}"), None, &format!("process {i}"), &[])
        .unwrap();
    let worker = w
        .thread(shared, &format!("worker-{i}"), None, &format!("worker {i}"))
        .unwrap();
    let main = w.thread(own, "main", None, "main").unwrap();
    let lane = w.async_lane(own, "io").unwrap();
    for k in 0..2_000u64 {
        let ts = 1_000 + k * 100 + i;
        w.complete_span(worker, ts, ts + 50, "task", "pool", "src/pool.rs", 3)
            .unwrap();
        w.complete_span(main, ts, ts + 80, &format!("step {}", k % 7), "app", "", 0)
            .unwrap();
        w.async_span_begin(lane, k, ts + 10, "fetch", "io", "", 0)
            .unwrap();
        w.async_span_end(lane, k, ts + 300).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn writers_on_threads_concatenate_into_the_trace_one_writer_makes() {
    const WRITERS: u16 = 4;
    for compact in [false, true] {
        let outputs: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..WRITERS)
                .map(|i| {
                    s.spawn(move || {
                        let mut w =
                            Writer::with_options(Options::new().compact(compact).partition(i));
                        partition_calls(&mut w, u64::from(i));
                        w.into_bytes()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let joined: Vec<u8> = outputs.concat();

        let mut one = Writer::with_options(Options::new().compact(compact));
        for i in 0..WRITERS {
            partition_calls(&mut one, u64::from(i));
        }

        let (a, b) = (
            inspect::decode(&joined).unwrap(),
            inspect::decode(one.bytes()).unwrap(),
        );
        assert_eq!(a.problems, vec![]);
        assert_eq!(b.problems, vec![]);
        // Processes and threads keep their uuids across writers; the tracks
        // of async spans are each writer's own, so they are compared by
        // what they are (parent and name), not by uuid.
        let described = |t: &inspect::Trace| {
            let mut v: Vec<_> = t
                .tracks
                .iter()
                .map(|(&uuid, d)| match d.kind {
                    inspect::TrackKind::Other => (0, format!("{d:?}")),
                    _ => (uuid, format!("{d:?}")),
                })
                .collect();
            v.sort();
            v
        };
        assert_eq!(described(&a), described(&b), "the same tracks");
        let place = |t: &inspect::Trace, uuid: u64| match t.tracks[&uuid].kind {
            inspect::TrackKind::Other => (t.tracks[&uuid].parent, t.tracks[&uuid].name.clone()),
            _ => (Some(uuid), None),
        };
        let mut sa: Vec<_> = a
            .slices
            .iter()
            .map(|s| (place(&a, s.track), s.ts, s.depth, s.name.clone(), s.dur))
            .collect();
        let mut sb: Vec<_> = b
            .slices
            .iter()
            .map(|s| (place(&b, s.track), s.ts, s.depth, s.name.clone(), s.dur))
            .collect();
        sa.sort();
        sb.sort();
        assert_eq!(sa, sb);
        assert_eq!(sa.len(), usize::from(WRITERS) * 6_000);

        // Every writer kept to its own sequence ids.
        let trace = protos::Trace::decode(&joined[..]).unwrap();
        let mut seen = std::collections::HashMap::new();
        let mut offset = 0;
        for (i, out) in outputs.iter().enumerate() {
            let n = protos::Trace::decode(&out[..]).unwrap().packet.len();
            for p in &trace.packet[offset..offset + n] {
                let id = p.trusted_packet_sequence_id.unwrap();
                assert_eq!(
                    *seen.entry(id).or_insert(i),
                    i,
                    "sequence {id} shared by two writers"
                );
                assert_eq!((id - 1) >> 16, i as u32);
            }
            offset += n;
        }
    }
}

#[test]
fn writers_move_between_threads() {
    fn send<T: Send>() {}
    send::<Writer>();
    send::<ChunkedWriter>();
    send::<perfetto_trace_writer::StreamingPerfettoWriter<std::fs::File>>();
}
