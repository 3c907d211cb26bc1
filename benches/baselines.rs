//! The two designs this crate replaces, written for comparison only.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{self, Write};

use perfetto_trace_writer::protos::{
    EventCategory, EventName, InternedData, ProcessDescriptor, SourceLocation, ThreadDescriptor,
    TracePacket, TrackDescriptor, TrackEvent,
};
use prost::Message;
use xxhash_rust::xxh64::xxh64;

use crate::workload::{complete_spans, Workload, THREADS};

/// The streaming design that followed the seed: one prost `TracePacket`
/// struct per event, encoded to a `Vec`, its framing into another `Vec`, and
/// two `write_all`s.
pub struct ProstPerPacket<W: Write> {
    sink: W,
    first: bool,
    names: HashMap<String, u64>,
    categories: HashMap<String, u64>,
    locations: HashMap<(String, u32), u64>,
}

impl<W: Write> ProstPerPacket<W> {
    pub fn new(sink: W) -> Self {
        ProstPerPacket {
            sink,
            first: true,
            names: HashMap::new(),
            categories: HashMap::new(),
            locations: HashMap::new(),
        }
    }

    fn emit(&mut self, mut packet: TracePacket) -> io::Result<()> {
        packet.trusted_packet_sequence_id = Some(1);
        if self.first {
            packet.sequence_flags = Some(3);
            packet.first_packet_on_sequence = Some(true);
            self.first = false;
        }
        let body = packet.encode_to_vec();
        let mut frame = Vec::with_capacity(11);
        prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut frame);
        prost::encoding::encode_varint(body.len() as u64, &mut frame);
        self.sink.write_all(&frame)?;
        self.sink.write_all(&body)
    }

    pub fn process(&mut self, uuid: u64, pid: i32, name: &str) -> io::Result<()> {
        self.emit(TracePacket {
            track_descriptor: Some(TrackDescriptor {
                uuid: Some(uuid),
                process: Some(ProcessDescriptor {
                    pid: Some(pid),
                    process_name: Some(name.into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    pub fn thread(&mut self, uuid: u64, pid: i32, tid: i64, name: &str) -> io::Result<()> {
        self.emit(TracePacket {
            track_descriptor: Some(TrackDescriptor {
                uuid: Some(uuid),
                thread: Some(ThreadDescriptor {
                    pid: Some(pid),
                    tid: Some(tid),
                    thread_name: Some(name.into()),
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn begin(
        &mut self,
        ts: u64,
        track: u64,
        name: &str,
        category: &str,
        file: &str,
        line: u32,
    ) -> io::Result<()> {
        let mut interned = InternedData::default();
        let next = self.names.len() as u64 + 1;
        let name_iid = *self.names.entry(name.to_owned()).or_insert_with(|| {
            interned.event_names.push(EventName {
                iid: Some(next),
                name: Some(name.into()),
            });
            next
        });
        let next = self.categories.len() as u64 + 1;
        let category_iid = *self
            .categories
            .entry(category.to_owned())
            .or_insert_with(|| {
                interned.event_categories.push(EventCategory {
                    iid: Some(next),
                    name: Some(category.into()),
                });
                next
            });
        let next = self.locations.len() as u64 + 1;
        let location_iid = *self
            .locations
            .entry((file.to_owned(), line))
            .or_insert_with(|| {
                interned.source_locations.push(SourceLocation {
                    iid: Some(next),
                    file_name: Some(file.into()),
                    line_number: Some(line),
                    ..Default::default()
                });
                next
            });
        let has_interned = interned != InternedData::default();
        self.emit(TracePacket {
            timestamp: Some(ts),
            track_event: Some(TrackEvent {
                r#type: Some(1),
                track_uuid: Some(track),
                name_iid: Some(name_iid),
                category_iids: vec![category_iid],
                source_location_iid: Some(location_iid),
                ..Default::default()
            }),
            interned_data: has_interned.then_some(interned),
            sequence_flags: Some(2),
            ..Default::default()
        })
    }

    pub fn end(&mut self, ts: u64, track: u64) -> io::Result<()> {
        self.emit(TracePacket {
            timestamp: Some(ts),
            track_event: Some(TrackEvent {
                r#type: Some(2),
                track_uuid: Some(track),
                ..Default::default()
            }),
            sequence_flags: Some(2),
            ..Default::default()
        })
    }

    pub fn into_inner(self) -> W {
        self.sink
    }
}

/// The thread workload through the per-packet prost design.
pub fn prost_per_packet_threads<W: Write>(sink: W, wl: &Workload) -> io::Result<W> {
    // Ids as that design derived them: xxh64 of the process id and of each
    // thread's stream id.
    let mut w = ProstPerPacket::new(sink);
    w.process(xxh64(b"bench-process", 0), 1000, "bench")?;
    let threads: Vec<u64> = (0..THREADS)
        .map(|t| xxh64(format!("stream-{t}").as_bytes(), 0))
        .collect();
    for (t, &uuid) in threads.iter().enumerate() {
        w.thread(uuid, 1000, 1001 + t as i64, &format!("worker-{t}"))?;
    }
    let pools = &wl.pools;
    for e in &wl.events {
        let track = threads[e.track as usize];
        if e.begin {
            let (file, line) = &pools.locations[e.location as usize];
            w.begin(
                e.ts,
                track,
                &pools.names[e.name as usize],
                &pools.categories[e.category as usize],
                file,
                *line,
            )?;
        } else {
            w.end(e.ts, track)?;
        }
    }
    Ok(w.into_inner())
}

/// The thread workload through the published seed crate: its buffered
/// `Writer`, then one prost encode of the whole trace.
pub fn micromegas_threads(wl: &Workload) -> Vec<u8> {
    use prost013::Message as _;
    let spans = complete_spans(wl);
    let mut w = micromegas_perfetto::writer::Writer::new("bench-process");
    w.append_process_descriptor("bench");
    let pools = &wl.pools;
    let mut current = u32::MAX;
    for s in &spans {
        if s.thread != current {
            current = s.thread;
            w.append_thread_descriptor(
                &format!("stream-{current}"),
                1001 + current as i32,
                &format!("worker-{current}"),
            );
        }
        let (file, line) = &pools.locations[s.location as usize];
        w.append_span(
            s.begin,
            s.end,
            &pools.names[s.name as usize],
            &pools.categories[s.category as usize],
            file,
            *line,
        );
    }
    w.into_trace().encode_to_vec()
}

/// The size of the thread workload as a naive writer would write it:
/// absolute timestamps, every string inline, the track uuid on every event.
pub fn naive_threads_size(wl: &Workload) -> usize {
    use perfetto_trace_writer::protos::Trace;
    let pools = &wl.pools;
    let mut packets = Vec::with_capacity(wl.events.len());
    for e in &wl.events {
        let mut event = TrackEvent {
            r#type: Some(if e.begin { 1 } else { 2 }),
            track_uuid: Some(xxh64(format!("stream-{}", e.track).as_bytes(), 0)),
            ..Default::default()
        };
        if e.begin {
            let (file, line) = &pools.locations[e.location as usize];
            event.name = Some(pools.names[e.name as usize].clone());
            event.categories = vec![pools.categories[e.category as usize].clone()];
            event.source_location = Some(SourceLocation {
                file_name: Some(file.clone()),
                line_number: Some(*line),
                ..Default::default()
            });
        }
        packets.push(TracePacket {
            timestamp: Some(e.ts),
            trusted_packet_sequence_id: Some(1),
            track_event: Some(event),
            ..Default::default()
        });
    }
    Trace { packet: packets }.encoded_len()
}
