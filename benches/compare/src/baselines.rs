//! The two designs this crate replaces, written for comparison only.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt::Write as _;
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

/// The thread workload through Google's protozero, as the `perfetto-sdk`
/// crate exposes it: the Perfetto C API's message writer and heap buffer,
/// nested messages with length fields reserved as 4-byte redundant varints
/// and patched when the message ends, as protozero does. One `TracePacket`
/// per event, the same fields and interning as `prost_per_packet_threads`,
/// strings looked up without allocating when already interned. The bytes
/// are read out of the heap buffer once, at the end.
pub fn protozero_threads(wl: &Workload) -> Vec<u8> {
    use perfetto_sdk::heap_buffer::HeapBuffer;
    use perfetto_sdk::pb_msg::{PbMsg, PbMsgWriter};

    fn iid(table: &mut HashMap<String, u64>, s: &str) -> (u64, bool) {
        match table.get(s) {
            Some(&iid) => (iid, false),
            None => {
                let iid = table.len() as u64 + 1;
                table.insert(s.to_owned(), iid);
                (iid, true)
            }
        }
    }

    let writer = PbMsgWriter::new();
    let heap = HeapBuffer::new(writer.stream_writer());
    let mut trace = PbMsg::new(&writer).expect("the heap buffer is the writer's output");
    let descriptor = |trace: &mut PbMsg, uuid: u64, first: bool, body: &dyn Fn(&mut PbMsg)| {
        trace.append_nested(1, |p| {
            p.append_type0_field(10, 1); // trusted_packet_sequence_id
            p.append_nested(60, |d| {
                d.append_type0_field(1, uuid);
                body(d);
            });
            if first {
                p.append_type0_field(13, 3); // sequence_flags
                p.append_type0_field(87, 1); // first_packet_on_sequence
            }
        });
    };
    descriptor(&mut trace, xxh64(b"bench-process", 0), true, &|d| {
        d.append_nested(3, |pd| {
            pd.append_type0_field(1, 1000);
            pd.append_cstr_field(6, "bench");
        });
    });
    let threads: Vec<u64> = (0..THREADS)
        .map(|t| xxh64(format!("stream-{t}").as_bytes(), 0))
        .collect();
    for (t, &uuid) in threads.iter().enumerate() {
        let name = format!("worker-{t}");
        descriptor(&mut trace, uuid, false, &|d| {
            d.append_nested(4, |td| {
                td.append_type0_field(1, 1000);
                td.append_type0_field(2, 1001 + t as u64);
                td.append_cstr_field(5, &name);
            });
        });
    }

    let (mut names, mut categories) = (HashMap::new(), HashMap::new());
    let mut locations: HashMap<String, u64> = HashMap::new();
    let mut location_key = String::new();
    let pools = &wl.pools;
    for e in &wl.events {
        let track = threads[e.track as usize];
        if !e.begin {
            trace.append_nested(1, |p| {
                p.append_type0_field(8, e.ts);
                p.append_type0_field(10, 1);
                p.append_nested(11, |te| {
                    te.append_type0_field(9, 2); // type: SLICE_END
                    te.append_type0_field(11, track);
                });
                p.append_type0_field(13, 2);
            });
            continue;
        }
        let name = pools.names[e.name as usize].as_str();
        let category = pools.categories[e.category as usize].as_str();
        let (file, line) = &pools.locations[e.location as usize];
        // Source locations keyed by file and line, in one reused buffer.
        location_key.clear();
        let _ = write!(location_key, "{file}:{line}");
        let (name_iid, new_name) = iid(&mut names, name);
        let (category_iid, new_category) = iid(&mut categories, category);
        let (location_iid, new_location) = iid(&mut locations, &location_key);
        trace.append_nested(1, |p| {
            p.append_type0_field(8, e.ts);
            p.append_type0_field(10, 1);
            p.append_nested(11, |te| {
                te.append_type0_field(3, category_iid);
                te.append_type0_field(9, 1); // type: SLICE_BEGIN
                te.append_type0_field(10, name_iid);
                te.append_type0_field(11, track);
                te.append_type0_field(34, location_iid);
            });
            if new_name || new_category || new_location {
                p.append_nested(12, |data| {
                    if new_category {
                        data.append_nested(1, |c| {
                            c.append_type0_field(1, category_iid);
                            c.append_cstr_field(2, category);
                        });
                    }
                    if new_name {
                        data.append_nested(2, |n| {
                            n.append_type0_field(1, name_iid);
                            n.append_cstr_field(2, name);
                        });
                    }
                    if new_location {
                        data.append_nested(4, |l| {
                            l.append_type0_field(1, location_iid);
                            l.append_cstr_field(2, file);
                            l.append_type0_field(4, u64::from(*line));
                        });
                    }
                });
            }
            p.append_type0_field(13, 2);
        });
    }
    trace.finalize();
    let mut out = vec![0; writer.stream_writer().get_written_size()];
    heap.copy_into(&mut out);
    out
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

// The categories of the thread workload (`Pools::categories`), as the
// Perfetto SDK wants them: declared up front.
perfetto_sdk::track_event_categories! {
    pub mod sdk_categories {
        ("service::component_0", "", []), ("service::component_1", "", []),
        ("service::component_2", "", []), ("service::component_3", "", []),
        ("service::component_4", "", []), ("service::component_5", "", []),
        ("service::component_6", "", []), ("service::component_7", "", []),
        ("service::component_8", "", []), ("service::component_9", "", []),
        ("service::component_10", "", []), ("service::component_11", "", []),
        ("service::component_12", "", []), ("service::component_13", "", []),
        ("service::component_14", "", []), ("service::component_15", "", []),
    }
}

/// A `TraceConfig` with one buffer of `size_kb` and the `track_event` data
/// source, every category enabled, encoded by hand (the field numbers of
/// Perfetto's `trace_config.proto` and `data_source_config.proto`).
fn sdk_trace_config(size_kb: u64) -> Vec<u8> {
    use prost::encoding::{encode_key, encode_varint, WireType};
    let nested = |field: u32, body: &[u8]| {
        let mut out = Vec::new();
        encode_key(field, WireType::LengthDelimited, &mut out);
        encode_varint(body.len() as u64, &mut out);
        out.extend_from_slice(body);
        out
    };
    let mut buffer = Vec::new();
    encode_key(1, WireType::Varint, &mut buffer); // BufferConfig.size_kb
    encode_varint(size_kb, &mut buffer);
    let track_event_config = nested(2, b"*"); // enabled_categories
    let data_source = [nested(1, b"track_event"), nested(113, &track_event_config)].concat();
    // TraceConfig.buffers = 1, .data_sources = 2 { config = 1 }.
    [nested(1, &buffer), nested(2, &nested(1, &data_source))].concat()
}

/// The thread workload through Perfetto's own SDK (its C API, through the
/// `perfetto-sdk` crate), recorded by an in-process tracing session: what
/// the SDK writes for the same slices, with its own sequences per thread,
/// defaults, interning and incremental timestamps. Each workload thread's
/// events are emitted on an OS thread of their own, one thread after the
/// other, with the workload's timestamps (boot clock). Without source
/// locations, which the SDK's C API cannot intern; compare with this
/// crate's writers given no source locations either.
pub fn perfetto_sdk_threads(wl: &Workload) -> Vec<u8> {
    use perfetto_sdk::producer::{Backends, Producer, ProducerInitArgsBuilder};
    use perfetto_sdk::tracing_session::TracingSession;
    use perfetto_sdk::track_event::{
        EventContext, TrackEvent, TrackEventTimestamp, TrackEventType,
    };
    use std::ffi::CString;
    use std::sync::{Arc, Mutex, Once};

    // The SDK's state is process-wide and set up once.
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        Producer::init(
            ProducerInitArgsBuilder::new()
                .backends(Backends::IN_PROCESS)
                .build(),
        );
        TrackEvent::init();
        sdk_categories::register().expect("categories registered once");
    });
    for (i, c) in wl.pools.categories.iter().enumerate() {
        assert_eq!(c, &format!("service::component_{i}"), "declared categories");
    }
    let names: Vec<CString> = wl
        .pools
        .names
        .iter()
        .map(|n| CString::new(n.as_str()).expect("no NUL in names"))
        .collect();
    let mut session = TracingSession::in_process().expect("an in-process session");
    let size_kb = (wl.events.len() as u64 * 64).div_ceil(1024) + 1024;
    session.setup(&sdk_trace_config(size_kb));
    session.start_blocking();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let names = &names;
            s.spawn(move || {
                for e in wl.events.iter().filter(|e| e.track == t) {
                    let mut ctx = EventContext::default();
                    let ts = std::time::Duration::from_nanos(e.ts);
                    ctx.set_timestamp(TrackEventTimestamp::Boot(ts));
                    let (category, kind) = if e.begin {
                        let name = names[e.name as usize].as_ptr();
                        (e.category as usize, TrackEventType::SliceBegin(name))
                    } else {
                        (0, TrackEventType::SliceEnd)
                    };
                    sdk_categories::emit(category, kind, &mut ctx);
                }
            })
            .join()
            .expect("an SDK thread");
        }
    });
    session.flush_blocking(std::time::Duration::from_secs(10));
    session.stop_blocking();
    let trace = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&trace);
    session.read_trace_blocking(move |data, _| sink.lock().unwrap().extend_from_slice(data));
    let trace = trace.lock().unwrap();
    trace.clone()
}
