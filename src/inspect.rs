//! Reading a trace back the way the Perfetto trace processor does: sequences
//! and their incremental state, interning, packet defaults, sequence-scoped
//! incremental clocks, then events sorted by time and replayed per track.
//!
//! It exists so that tests (and users) can check that a trace shows what its
//! writer meant, and it reports every inconsistency it meets as a
//! [`Problem`] rather than guessing.
//!
//! ```
//! use perfetto_trace_writer::{inspect, TraceWriter, Writer};
//!
//! let mut w = Writer::new();
//! let p = w.process("svc", Some(10), "service", &[])?;
//! let t = w.thread(p, "main", Some(11), "main")?;
//! w.complete_span(t, 100, 250, "work", "app", "src/lib.rs", 7)?;
//! w.finish()?;
//!
//! let trace = inspect::decode(w.bytes())?;
//! assert!(trace.problems.is_empty());
//! let s = &trace.slices[0];
//! assert_eq!((s.name.as_str(), s.ts, s.dur), ("work", 100, Some(150)));
//! assert_eq!(trace.tracks[&s.track].name.as_deref(), Some("main"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, HashMap};

use prost::Message;

use crate::protos::{self, TracePacket};

/// The primary trace clock (BOOTTIME) in which decoded times are given.
const TRACE_CLOCK: u32 = 6;

/// A trace read back.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    /// Tracks by uuid, as first described.
    pub tracks: BTreeMap<u64, Track>,
    /// Slices in order of (begin time, file order).
    pub slices: Vec<Slice>,
    /// Counter values in order of (time, file order), with each track's
    /// multiplier applied and incremental values added up.
    pub counters: Vec<CounterPoint>,
    /// Flow arrows between slices (indices into `slices`).
    pub flows: Vec<FlowEdge>,
    /// Log lines in order of (time, file order), as the trace processor's
    /// log table holds them.
    pub logs: Vec<LogLine>,
    /// The root descriptor's `process_ordering` and `thread_ordering`.
    pub root_ordering: (Option<i32>, Option<i32>),
    /// Clock snapshots in file order, other than a compact sequence's own:
    /// each a list of (clock id, reading).
    pub clock_snapshots: Vec<Vec<(u32, u64)>>,
    /// The clock of the trace's times (`BuiltinClock` id): BOOTTIME (6),
    /// unless a clock snapshot named another (`primary_trace_clock`).
    pub trace_clock: u32,
    /// Packets read.
    pub packets: usize,
    /// What the trace processor would count as an error.
    pub problems: Vec<Problem>,
}

impl Trace {
    /// A trace time (in [`trace_clock`](Self::trace_clock)) as REALTIME, nanoseconds since the Unix
    /// epoch, by the latest clock snapshot at or before it (the first one
    /// for earlier times), as the UI turns times into dates.
    pub fn realtime(&self, ts: u64) -> Option<u64> {
        if self.trace_clock == 1 {
            return Some(ts);
        }
        let pairs: Vec<(u64, u64)> = self
            .clock_snapshots
            .iter()
            .filter_map(|s| {
                let at = |id| s.iter().find(|c| c.0 == id).map(|c| c.1);
                Some((at(self.trace_clock)?, at(1)?))
            })
            .collect();
        let &(boot, real) = pairs.iter().rev().find(|p| p.0 <= ts).or(pairs.first())?;
        u64::try_from(i128::from(real) + i128::from(ts) - i128::from(boot)).ok()
    }
}

/// What a track is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackKind {
    /// A process.
    Process {
        /// Its pid.
        pid: i32,
        /// Its command line.
        cmdline: Vec<String>,
    },
    /// A thread of process `pid`.
    Thread {
        /// Its process's pid.
        pid: i32,
        /// Its tid.
        tid: i64,
    },
    /// Any other track.
    Other,
}

/// A track descriptor read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Track {
    /// The parent track's uuid.
    pub parent: Option<u64>,
    /// The process, thread or track name.
    pub name: Option<String>,
    /// Its kind.
    pub kind: TrackKind,
    /// Its counter description, for counter tracks.
    pub counter: Option<CounterInfo>,
    /// `child_ordering`, `sibling_order_rank`, `sibling_merge_behavior`,
    /// `sibling_merge_key`, as written.
    pub display: (Option<i32>, Option<i32>, Option<i32>, Option<String>),
    /// `description`.
    pub description: Option<String>,
    /// A process's labels (`process_labels`).
    pub labels: Vec<String>,
}

/// What a counter track's descriptor says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterInfo {
    /// `unit` as written (0: unspecified).
    pub unit: i32,
    /// `unit_name`.
    pub unit_name: Option<String>,
    /// `unit_multiplier` (1 when absent).
    pub multiplier: i64,
    /// `is_incremental`.
    pub incremental: bool,
    /// `y_axis_share_key`.
    pub y_axis_share_key: Option<String>,
}

/// A counter value as the trace processor stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct CounterPoint {
    /// The counter track.
    pub track: u64,
    /// Its time.
    pub ts: u64,
    /// Its value.
    pub value: f64,
}

/// A log line carried by a track event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// The uuid of the event's track.
    pub track: u64,
    /// Its time.
    pub ts: u64,
    /// `prio` as written (4, info, when absent, as the trace processor
    /// reads it).
    pub severity: i32,
    /// Its text.
    pub body: String,
    /// Its source file and line.
    pub source: Option<(String, u32)>,
}

/// A flow arrow from one slice to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowEdge {
    /// The flow id.
    pub id: u64,
    /// The slice it leaves (index into [`Trace::slices`]).
    pub from: usize,
    /// The slice it reaches.
    pub to: usize,
}

/// An argument value.
#[derive(Clone, Debug, PartialEq)]
pub enum ArgValue {
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    Uint(u64),
    /// A double.
    Double(f64),
    /// A string.
    Str(String),
}

/// A slice as the trace processor rebuilds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Slice {
    /// The uuid of its track.
    pub track: u64,
    /// Its begin, in nanoseconds of the trace clock.
    pub ts: u64,
    /// Its duration; `None` if it never ended.
    pub dur: Option<u64>,
    /// Its depth on the track.
    pub depth: usize,
    /// Its name.
    pub name: String,
    /// Its categories.
    pub categories: Vec<String>,
    /// Its source file and line.
    pub source: Option<(String, u32)>,
    /// Its arguments, flattened as the trace processor keys them: `a.b` for
    /// dictionary entries, `a[0]` for array items.
    pub args: Vec<(String, ArgValue)>,
    /// Its correlation, as the trace processor's `correlation_id` arg
    /// shows it: the string, or `tp:#N` for a number.
    pub correlation: Option<String>,
    /// Its callstack, outermost frame first.
    pub callstack: Vec<Frame>,
}

/// A frame of an event's callstack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The function's name.
    pub function: String,
    /// Its source file.
    pub file: Option<String>,
    /// Its line.
    pub line: Option<u32>,
}

/// An inconsistency: something the trace processor would drop, misread or
/// count in its `stats` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The index of the packet.
    pub packet: usize,
    /// What is wrong.
    pub what: String,
}

#[derive(Default)]
struct Clock {
    incremental: bool,
    multiplier: u64,
    /// The clock's latest value (incremental clocks add deltas to it).
    value: u64,
    /// A reading of this clock and of the trace clock at the same instant.
    reference: Option<(u64, u64)>,
}

#[derive(Default)]
struct Sequence {
    valid: bool,
    names: HashMap<u64, String>,
    categories: HashMap<u64, String>,
    arg_names: HashMap<u64, String>,
    log_bodies: HashMap<u64, String>,
    correlations: HashMap<u64, String>,
    /// Running sums of incremental counters, by track.
    sums: HashMap<u64, f64>,
    locations: HashMap<u64, (String, u32)>,
    function_names: HashMap<u64, String>,
    source_paths: HashMap<u64, String>,
    /// Interned frames: their function name's iid, source path's iid, line.
    frames: HashMap<u64, (u64, Option<u64>, Option<u32>)>,
    /// Interned callstacks: their frames' iids.
    callstacks: HashMap<u64, Vec<u64>>,
    default_track: Option<u64>,
    default_clock: Option<u32>,
    clocks: HashMap<u32, Clock>,
}

struct Event {
    ts: u64,
    order: usize,
    track: u64,
    kind: i32,
    name: String,
    categories: Vec<String>,
    source: Option<(String, u32)>,
    args: Vec<(String, ArgValue)>,
    flows: Vec<u64>,
    terminating: Vec<u64>,
    correlation: Option<String>,
    callstack: Vec<Frame>,
}

/// Decodes a serialized `Trace` and rebuilds its tracks and slices.
///
/// # Errors
/// The bytes are not a `Trace` message.
pub fn decode(bytes: &[u8]) -> Result<Trace, prost::DecodeError> {
    let trace = protos::Trace::decode(bytes)?;
    Ok(rebuild(&trace))
}

/// How many bytes at the start of `bytes` are whole framed packets (field 1
/// of `Trace`, as every writer of this crate writes): the trace a file cut
/// in the middle of a write holds whole, which [`decode`] reads.
///
/// A program killed while it writes a trace (SIGKILL, a crash) can leave
/// part of a packet at the file's end: the kernel may stop a write between
/// two pages. The trace processor ignores such a tail; this finds it.
///
/// ```
/// use perfetto_trace_writer::{inspect, TraceWriter, Writer};
///
/// let mut w = Writer::new();
/// let p = w.process("svc", Some(10), "service", &[])?;
/// w.thread(p, "main", Some(11), "main")?;
/// let whole = w.bytes().to_vec();
/// let cut = &whole[..whole.len() - 3];
/// let kept = inspect::whole_packets(cut);
/// assert!(kept < cut.len());
/// assert!(inspect::decode(&cut[..kept]).is_ok());
/// assert_eq!(inspect::whole_packets(&whole), whole.len());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn whole_packets(bytes: &[u8]) -> usize {
    /// Field 1, length-delimited: one framed `TracePacket`.
    const PACKET_TAG: u64 = 1 << 3 | 2;
    let mut rest = bytes;
    let mut kept = 0;
    while !rest.is_empty() {
        let Ok(PACKET_TAG) = prost::encoding::decode_varint(&mut rest) else {
            break;
        };
        let Ok(len) = prost::encoding::decode_varint(&mut rest) else {
            break;
        };
        let Some(after) = usize::try_from(len).ok().and_then(|n| rest.get(n..)) else {
            break;
        };
        rest = after;
        kept = bytes.len() - rest.len();
    }
    kept
}

/// Rebuilds the tracks and slices of a decoded trace.
pub fn rebuild(trace: &protos::Trace) -> Trace {
    let mut out = Trace {
        packets: trace.packet.len(),
        trace_clock: TRACE_CLOCK,
        ..Trace::default()
    };
    let mut sequences: HashMap<u32, Sequence> = HashMap::new();
    let mut events = Vec::new();
    for (index, packet) in trace.packet.iter().enumerate() {
        let mut problem = |what: String| {
            out.problems.push(Problem {
                packet: index,
                what,
            })
        };
        let seq_id = packet.trusted_packet_sequence_id.unwrap_or(0);
        let seq = sequences.entry(seq_id).or_default();
        read_state(packet, seq, &mut problem);
        if let Some(desc) = &packet.track_descriptor {
            describe(desc, &mut out.tracks, &mut out.root_ordering, &mut problem);
        }
        if let Some(snapshot) = &packet.clock_snapshot {
            if let Some(clock) = snapshot.primary_trace_clock {
                out.trace_clock = clock as u32;
            }
            read_snapshot(snapshot, seq, out.trace_clock);
            // Sequence-scoped clocks (ids 64 and up) are a sequence's own.
            let clocks = &snapshot.clocks;
            if !clocks.is_empty() && clocks.iter().all(|c| c.clock_id.unwrap_or(0) < 64) {
                let readings = snapshot
                    .clocks
                    .iter()
                    .map(|c| (c.clock_id.unwrap_or(0), c.timestamp.unwrap_or(0)))
                    .collect();
                out.clock_snapshots.push(readings);
            }
        }
        let Some(event) = &packet.track_event else {
            continue;
        };
        if seq_id == 0 {
            problem("track event without a sequence id".into());
            continue;
        }
        if !seq.valid {
            problem("track event on a sequence before its incremental state was cleared".into());
            continue;
        }
        let Some(ts) = timestamp(packet, seq, out.trace_clock, &mut problem) else {
            continue;
        };
        let Some(track) = event.track_uuid.or(seq.default_track) else {
            problem("track event without a track".into());
            continue;
        };
        if !out.tracks.contains_key(&track) {
            problem(format!("event on track {track:#x} before its descriptor"));
            continue;
        }
        let mut resolve = |table: &HashMap<u64, String>, iid: u64, what: &str| {
            table.get(&iid).cloned().unwrap_or_else(|| {
                problem(format!("unresolved {what} iid {iid}"));
                String::new()
            })
        };
        let name = match (event.name_iid, &event.name) {
            (Some(iid), _) => resolve(&seq.names, iid, "name"),
            (None, Some(name)) => name.clone(),
            (None, None) => String::new(),
        };
        let mut categories: Vec<String> = event
            .category_iids
            .iter()
            .map(|&iid| resolve(&seq.categories, iid, "category"))
            .collect();
        categories.extend(event.categories.iter().cloned());
        let source = match event.source_location_iid {
            Some(iid) => seq.locations.get(&iid).cloned().or_else(|| {
                problem(format!("unresolved source location iid {iid}"));
                None
            }),
            None => event.source_location.as_ref().map(|l| {
                (
                    l.file_name.clone().unwrap_or_default(),
                    l.line_number.unwrap_or(0),
                )
            }),
        };
        let kind = event.r#type.unwrap_or(0);
        if kind == 4 {
            counter_point(&mut out, seq, event, track, ts, index);
            continue;
        }
        let mut args = Vec::new();
        for a in &event.debug_annotations {
            flatten(a, "", &seq.arg_names, &mut args, &mut problem);
        }
        let correlation = match (
            event.correlation_id,
            &event.correlation_id_str,
            event.correlation_id_str_iid,
        ) {
            (None, None, None) => None,
            (Some(id), None, None) => Some(format!("tp:#{id}")),
            (None, Some(s), None) => Some(s.clone()),
            (None, None, Some(iid)) => seq.correlations.get(&iid).cloned().or_else(|| {
                problem(format!("unresolved correlation iid {iid}"));
                None
            }),
            _ => {
                problem("more than one correlation id".into());
                None
            }
        };
        if let Some(log) = &event.log_message {
            let thread = out.tracks.get(&track).is_some_and(|t| {
                matches!(t.kind, TrackKind::Thread { .. })
                    || t.parent
                        .and_then(|p| out.tracks.get(&p))
                        .is_some_and(|p| matches!(p.kind, TrackKind::Thread { .. }))
            });
            if !thread {
                problem(format!("log message on track {track:#x}, not a thread's"));
            }
            let body = match log.body_iid {
                Some(iid) => seq.log_bodies.get(&iid).cloned().unwrap_or_else(|| {
                    problem(format!("unresolved log body iid {iid}"));
                    String::new()
                }),
                None => {
                    problem("log message without body".into());
                    String::new()
                }
            };
            let source = log.source_location_iid.and_then(|iid| {
                seq.locations.get(&iid).cloned().or_else(|| {
                    problem(format!("unresolved log source location iid {iid}"));
                    None
                })
            });
            out.logs.push(LogLine {
                track,
                ts,
                severity: log.prio.unwrap_or(4),
                body,
                source,
            });
        }
        let callstack = callstack(seq, event, &mut problem);
        extra_counters(&mut out, seq, event, ts, index);
        events.push(Event {
            ts,
            order: index,
            track,
            kind,
            name,
            categories,
            source,
            args,
            flows: event.flow_ids.clone(),
            terminating: event.terminating_flow_ids.clone(),
            correlation,
            callstack,
        });
    }
    replay(events, &mut out);
    out
}

fn read_state(packet: &TracePacket, seq: &mut Sequence, problem: &mut impl FnMut(String)) {
    let flags = packet.sequence_flags.unwrap_or(0);
    if flags & 1 != 0 || packet.incremental_state_cleared == Some(true) {
        // A clear drops interning and defaults; clocks are kept until a new
        // snapshot redefines them.
        *seq = Sequence {
            valid: true,
            ..Sequence::default()
        };
    } else if flags & 2 != 0 && !seq.valid {
        problem("packet needs incremental state before the sequence was cleared".into());
    }
    if let Some(defaults) = &packet.trace_packet_defaults {
        seq.default_track = defaults
            .track_event_defaults
            .as_ref()
            .and_then(|d| d.track_uuid);
        seq.default_clock = defaults.timestamp_clock_id;
    }
    let Some(data) = &packet.interned_data else {
        return;
    };
    if !seq.valid {
        problem("interned data before the sequence was cleared".into());
        return;
    }
    let mut define =
        |table: &mut HashMap<u64, String>, iid: Option<u64>, value: &Option<String>| {
            let (Some(iid), value) = (iid, value.clone().unwrap_or_default()) else {
                problem("interned entry without iid".into());
                return;
            };
            if iid == 0 {
                problem("interned entry with iid 0".into());
            }
            match table.get(&iid) {
                Some(old) if *old != value => problem(format!("iid {iid} redefined")),
                Some(_) => {}
                None => {
                    table.insert(iid, value);
                }
            }
        };
    for e in &data.event_names {
        define(&mut seq.names, e.iid, &e.name);
    }
    for e in &data.event_categories {
        define(&mut seq.categories, e.iid, &e.name);
    }
    for e in &data.debug_annotation_names {
        define(&mut seq.arg_names, e.iid, &e.name);
    }
    for e in &data.log_message_body {
        define(&mut seq.log_bodies, e.iid, &e.body);
    }
    let text = |e: &protos::InternedString| {
        e.str
            .as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    for e in &data.correlation_id_str {
        define(&mut seq.correlations, e.iid, &text(e));
    }
    for e in &data.function_names {
        define(&mut seq.function_names, e.iid, &text(e));
    }
    for e in &data.source_paths {
        define(&mut seq.source_paths, e.iid, &text(e));
    }
    for f in &data.frames {
        let value = (
            f.function_name_id.unwrap_or(0),
            f.source_path_iid,
            f.line_number,
        );
        match f.iid {
            None | Some(0) => problem("frame without iid".into()),
            Some(iid) => match seq.frames.insert(iid, value) {
                Some(old) if old != value => problem(format!("frame iid {iid} redefined")),
                _ => {}
            },
        }
    }
    for c in &data.callstacks {
        match c.iid {
            None | Some(0) => problem("callstack without iid".into()),
            Some(iid) => match seq.callstacks.insert(iid, c.frame_ids.clone()) {
                Some(old) if old != c.frame_ids => {
                    problem(format!("callstack iid {iid} redefined"))
                }
                _ => {}
            },
        }
    }
    for l in &data.source_locations {
        let Some(iid) = l.iid else {
            problem("source location without iid".into());
            continue;
        };
        let value = (
            l.file_name.clone().unwrap_or_default(),
            l.line_number.unwrap_or(0),
        );
        match seq.locations.get(&iid) {
            Some(old) if *old != value => problem(format!("source location iid {iid} redefined")),
            Some(_) => {}
            None => {
                seq.locations.insert(iid, value);
            }
        }
    }
}

/// An event's callstack, inline or interned.
fn callstack(
    seq: &Sequence,
    event: &protos::TrackEvent,
    problem: &mut impl FnMut(String),
) -> Vec<Frame> {
    match (&event.callstack, event.callstack_iid) {
        (Some(c), None) => c
            .frames
            .iter()
            .map(|f| Frame {
                function: f.function_name.clone().unwrap_or_default(),
                file: f.source_file.clone(),
                line: f.line_number,
            })
            .collect(),
        (None, Some(iid)) => {
            let Some(frames) = seq.callstacks.get(&iid) else {
                problem(format!("unresolved callstack iid {iid}"));
                return Vec::new();
            };
            let mut out = Vec::new();
            for f in frames {
                let Some(&(function, path, line)) = seq.frames.get(f) else {
                    problem(format!("unresolved frame iid {f}"));
                    continue;
                };
                let function = match function {
                    0 => String::new(),
                    iid => seq.function_names.get(&iid).cloned().unwrap_or_else(|| {
                        problem(format!("unresolved function name iid {iid}"));
                        String::new()
                    }),
                };
                let file = path.and_then(|iid| {
                    seq.source_paths.get(&iid).cloned().or_else(|| {
                        problem(format!("unresolved source path iid {iid}"));
                        None
                    })
                });
                out.push(Frame {
                    function,
                    file,
                    line,
                });
            }
            out
        }
        (None, None) => Vec::new(),
        (Some(_), Some(_)) => {
            problem("both an inline and an interned callstack".into());
            Vec::new()
        }
    }
}

fn read_snapshot(snapshot: &protos::ClockSnapshot, seq: &mut Sequence, trace_clock: u32) {
    let trace_value = snapshot
        .clocks
        .iter()
        .find(|c| c.clock_id == Some(trace_clock))
        .and_then(|c| c.timestamp);
    for c in &snapshot.clocks {
        let (Some(id), Some(value)) = (c.clock_id, c.timestamp) else {
            continue;
        };
        if id == trace_clock {
            continue;
        }
        let clock = seq.clocks.entry(id).or_default();
        clock.incremental = c.is_incremental.unwrap_or(false);
        clock.multiplier = c.unit_multiplier_ns.unwrap_or(1).max(1);
        clock.value = value;
        clock.reference = trace_value.map(|t| (value, t));
    }
}

/// The packet's time in the trace clock.
fn timestamp(
    packet: &TracePacket,
    seq: &mut Sequence,
    trace_clock: u32,
    problem: &mut impl FnMut(String),
) -> Option<u64> {
    let Some(raw) = packet.timestamp else {
        problem("track event without timestamp".into());
        return None;
    };
    let clock_id = packet
        .timestamp_clock_id
        .or(seq.default_clock)
        .unwrap_or(TRACE_CLOCK);
    if clock_id == trace_clock {
        return Some(raw);
    }
    let Some(clock) = seq.clocks.get_mut(&clock_id) else {
        problem(format!("timestamp in undefined clock {clock_id}"));
        return None;
    };
    let value = if clock.incremental {
        clock.value = clock.value.wrapping_add(raw);
        clock.value
    } else {
        raw
    };
    let Some((at, trace_at)) = clock.reference else {
        problem(format!(
            "clock {clock_id} has no reading of the trace clock"
        ));
        return None;
    };
    let delta = i128::from(value) - i128::from(at);
    let ts = i128::from(trace_at) + delta * i128::from(clock.multiplier);
    match u64::try_from(ts) {
        Ok(ts) if ts <= i64::MAX as u64 => Some(ts),
        _ => {
            problem(format!("timestamp {ts} out of range"));
            None
        }
    }
}

fn describe(
    desc: &protos::TrackDescriptor,
    tracks: &mut BTreeMap<u64, Track>,
    root: &mut (Option<i32>, Option<i32>),
    problem: &mut impl FnMut(String),
) {
    if desc.uuid == Some(0) && desc.process.is_none() && desc.thread.is_none() {
        // The root: only how processes and threads are ordered.
        *root = (desc.process_ordering, desc.thread_ordering);
        return;
    }
    let Some(uuid) = desc.uuid.filter(|&u| u != 0) else {
        problem("track descriptor without uuid".into());
        return;
    };
    let (kind, name) = match (&desc.process, &desc.thread) {
        (_, Some(t)) => {
            let (Some(pid), Some(tid)) = (t.pid, t.tid) else {
                problem(format!("thread {uuid:#x} without pid or tid"));
                return;
            };
            (
                TrackKind::Thread { pid, tid },
                t.thread_name.clone().or(desc.name.clone()),
            )
        }
        (Some(p), None) => {
            let Some(pid) = p.pid else {
                problem(format!("process {uuid:#x} without pid"));
                return;
            };
            let kind = TrackKind::Process {
                pid,
                cmdline: p.cmdline.clone(),
            };
            (kind, p.process_name.clone().or(desc.name.clone()))
        }
        (None, None) => (TrackKind::Other, desc.name.clone()),
    };
    let counter = desc.counter.as_ref().map(|c| CounterInfo {
        unit: c.unit.unwrap_or(0),
        unit_name: c.unit_name.clone(),
        multiplier: c.unit_multiplier.unwrap_or(1),
        incremental: c.is_incremental.unwrap_or(false),
        y_axis_share_key: c.y_axis_share_key.clone(),
    });
    let display = (
        desc.child_ordering,
        desc.sibling_order_rank,
        desc.sibling_merge_behavior,
        desc.sibling_merge_key.clone(),
    );
    let track = Track {
        parent: desc.parent_uuid,
        name,
        kind,
        counter,
        display,
        description: desc.description.clone(),
        labels: desc
            .process
            .as_ref()
            .map_or_else(Vec::new, |p| p.process_labels.clone()),
    };
    if let Some(parent) = track.parent {
        if !tracks.contains_key(&parent) {
            problem(format!("track {uuid:#x} before its parent {parent:#x}"));
        }
    }
    match tracks.get(&uuid) {
        Some(old) if *old != track => problem(format!("track {uuid:#x} redefined differently")),
        Some(_) => {}
        None => {
            tracks.insert(uuid, track);
        }
    }
}

fn replay(mut events: Vec<Event>, out: &mut Trace) {
    // The trace processor's sort: by time, ties in file order.
    events.sort_by_key(|e| (e.ts, e.order));
    out.counters.sort_by_key(|c| c.ts);
    out.logs.sort_by_key(|l| l.ts);
    let mut stacks: HashMap<u64, Vec<usize>> = HashMap::new();
    // Instants at one time on one track nest under each other, as the
    // trace processor leaves an instant on its stack until the next event.
    let mut instants: HashMap<u64, (u64, usize)> = HashMap::new();
    let mut last_of_flow: HashMap<u64, usize> = HashMap::new();
    for e in events {
        let stack = stacks.entry(e.track).or_default();
        let run = instants
            .remove(&e.track)
            .filter(|&(ts, _)| ts == e.ts && e.kind == 3);
        let slice = match e.kind {
            1 | 3 => {
                let instant = e.kind == 3;
                let depth = stack.len() + run.map_or(0, |(_, n)| n);
                out.slices.push(Slice {
                    track: e.track,
                    ts: e.ts,
                    dur: instant.then_some(0),
                    depth,
                    name: e.name,
                    categories: e.categories,
                    source: e.source,
                    args: e.args,
                    correlation: e.correlation,
                    callstack: e.callstack,
                });
                let index = out.slices.len() - 1;
                if instant {
                    instants.insert(e.track, (e.ts, run.map_or(1, |(_, n)| n + 1)));
                } else {
                    stack.push(index);
                }
                Some(index)
            }
            2 => match stack.pop() {
                Some(i) => {
                    out.slices[i].dur = Some(e.ts - out.slices[i].ts);
                    // The trace processor adds an end's arguments to its slice.
                    out.slices[i].args.extend(e.args);
                    Some(i)
                }
                None => {
                    out.problems.push(Problem {
                        packet: e.order,
                        what: format!("end on track {:#x} with no open slice", e.track),
                    });
                    None
                }
            },
            other => {
                out.problems.push(Problem {
                    packet: e.order,
                    what: format!("unsupported event type {other}"),
                });
                None
            }
        };
        let Some(slice) = slice else { continue };
        for &id in &e.flows {
            if let Some(from) = last_of_flow.insert(id, slice) {
                out.flows.push(FlowEdge {
                    id,
                    from,
                    to: slice,
                });
            }
        }
        for &id in &e.terminating {
            if let Some(from) = last_of_flow.remove(&id) {
                out.flows.push(FlowEdge {
                    id,
                    from,
                    to: slice,
                });
            }
        }
    }
}

/// The values of other counter tracks an event carries.
fn extra_counters(
    out: &mut Trace,
    seq: &mut Sequence,
    event: &protos::TrackEvent,
    ts: u64,
    index: usize,
) {
    let ints = (
        &event.extra_counter_track_uuids,
        event
            .extra_counter_values
            .iter()
            .map(|&v| v as f64)
            .collect(),
    );
    let doubles = (
        &event.extra_double_counter_track_uuids,
        event.extra_double_counter_values.clone(),
    );
    let mut zero = false;
    let mut read = 0;
    for (tracks, values) in [ints, doubles] {
        let values: Vec<f64> = values;
        read += values.len();
        // The trace processor reads the values, integers then doubles, up
        // to the first that is zero.
        if zero && !values.is_empty()
            || values
                .iter()
                .rev()
                .skip_while(|&&v| v == 0.0)
                .any(|&v| v == 0.0)
        {
            out.problems.push(Problem {
                packet: index,
                what: "extra counter value after a zero one (the trace processor drops it)".into(),
            });
        }
        zero |= values.contains(&0.0);
        if tracks.len() != values.len() {
            out.problems.push(Problem {
                packet: index,
                what: "extra counter tracks and values differ in number".into(),
            });
            continue;
        }
        for (&track, &raw) in tracks.iter().zip(&values) {
            push_counter(out, seq, track, ts, raw, index);
        }
    }
    if read > 8 {
        out.problems.push(Problem {
            packet: index,
            what: format!("{read} extra counter values, more than the trace processor reads"),
        });
    }
}

/// A counter value on `track`, read as the trace processor reads it.
fn push_counter(out: &mut Trace, seq: &mut Sequence, track: u64, ts: u64, raw: f64, index: usize) {
    let Some(info) = out.tracks.get(&track).and_then(|t| t.counter.clone()) else {
        out.problems.push(Problem {
            packet: index,
            what: format!("counter value on non-counter track {track:#x}"),
        });
        return;
    };
    let mut value = raw * info.multiplier as f64;
    if info.incremental {
        let sum = seq.sums.entry(track).or_insert(0.0);
        *sum += value;
        value = *sum;
    }
    out.counters.push(CounterPoint { track, ts, value });
}

/// A counter event's value, as the trace processor reads it in file order.
fn counter_point(
    out: &mut Trace,
    seq: &mut Sequence,
    event: &protos::TrackEvent,
    track: u64,
    ts: u64,
    index: usize,
) {
    match event
        .counter_value
        .map(|v| v as f64)
        .or(event.double_counter_value)
    {
        Some(raw) => push_counter(out, seq, track, ts, raw, index),
        None => out.problems.push(Problem {
            packet: index,
            what: "counter event without value".into(),
        }),
    }
}

/// Flattens a debug annotation into `key = value` pairs.
fn flatten(
    a: &protos::DebugAnnotation,
    prefix: &str,
    names: &HashMap<u64, String>,
    out: &mut Vec<(String, ArgValue)>,
    problem: &mut impl FnMut(String),
) {
    let name = match (a.name_iid, &a.name) {
        (Some(iid), _) => names.get(&iid).cloned().unwrap_or_else(|| {
            problem(format!("unresolved debug annotation name iid {iid}"));
            String::new()
        }),
        (None, Some(n)) => n.clone(),
        (None, None) => String::new(),
    };
    let key = if prefix.is_empty() {
        name
    } else if name.is_empty() {
        prefix.to_owned()
    } else {
        format!("{prefix}.{name}")
    };
    flatten_value(a, &key, names, out, problem);
}

fn flatten_value(
    a: &protos::DebugAnnotation,
    key: &str,
    names: &HashMap<u64, String>,
    out: &mut Vec<(String, ArgValue)>,
    problem: &mut impl FnMut(String),
) {
    let value = if let Some(v) = a.bool_value {
        Some(ArgValue::Bool(v))
    } else if let Some(v) = a.uint_value {
        Some(ArgValue::Uint(v))
    } else if let Some(v) = a.int_value {
        Some(ArgValue::Int(v))
    } else if let Some(v) = a.double_value {
        Some(ArgValue::Double(v))
    } else {
        a.string_value.clone().map(ArgValue::Str)
    };
    if let Some(v) = value {
        out.push((key.to_owned(), v));
    }
    for entry in &a.dict_entries {
        flatten(entry, key, names, out, problem);
    }
    for (i, item) in a.array_values.iter().enumerate() {
        flatten_value(item, &format!("{key}[{i}]"), names, out, problem);
    }
}
