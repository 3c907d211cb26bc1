//! Packet sequences: what each `trusted_packet_sequence_id` has defined
//! (interned strings, defaults, its incremental clock), and the encoder that
//! turns one event into one packet of a sequence.
//!
//! Strings are interned once per writer (`Strings`), then given an iid per
//! sequence the first time that sequence uses them, so a cache of string
//! addresses serves every sequence and each sequence defines only what it
//! uses.

use crate::core::SpanMeta;
use crate::encoding::{
    field, sequence_start_packet, track_descriptor_packet, track_event_packet, EventFields,
    EventType, Field, NewInterned, PacketHeader, TrackKind, SEQ_INCREMENTAL_STATE_CLEARED,
    SEQ_NEEDS_INCREMENTAL_STATE, TRACE_CLOCK,
};
use crate::interning::{LocationTable, StringTable};

/// The writer-wide string tables: string to a global id (from 1).
#[derive(Default)]
pub(crate) struct Strings {
    names: StringTable,
    categories: StringTable,
    locations: LocationTable,
}

impl Strings {
    pub(crate) fn len(&self) -> usize {
        self.names.len() + self.categories.len() + self.locations.len()
    }
}

/// Global ids to this sequence's iids (0: not defined on the sequence yet).
#[derive(Default)]
struct LocalIids {
    by_global: Vec<u32>,
    next: u32,
}

impl LocalIids {
    /// The sequence's iid for a global id, and whether it is new here.
    #[inline(always)]
    fn get(&mut self, (global, new): (u64, bool), single: bool) -> (u64, bool) {
        if single {
            // The writer's only sequence: global ids are its iids.
            return (global, new);
        }
        let g = global as usize - 1;
        match self.by_global.get(g) {
            Some(&iid) if iid != 0 => (u64::from(iid), false),
            _ => self.assign(g),
        }
    }

    #[cold]
    fn assign(&mut self, g: usize) -> (u64, bool) {
        if self.by_global.len() <= g {
            self.by_global.resize(g + 1, 0);
        }
        self.next += 1;
        self.by_global[g] = self.next;
        (u64::from(self.next), true)
    }
}

/// What one sequence has defined.
pub(crate) struct SeqState {
    /// `trusted_packet_sequence_id`, encoded once.
    id: Field,
    started: bool,
    /// The track its events belong to unless they name one (compact mode).
    default_track: Option<u64>,
    /// The value of its incremental clock: the last timestamp written as a
    /// delta (compact mode).
    clock: u64,
    names: LocalIids,
    categories: LocalIids,
    locations: LocalIids,
}

impl SeqState {
    pub(crate) fn new(id: u32, default_track: Option<u64>) -> Self {
        SeqState {
            id: Field::uint(field::PACKET_SEQUENCE_ID, u64::from(id)),
            started: false,
            default_track,
            clock: 0,
            names: LocalIids::default(),
            categories: LocalIids::default(),
            locations: LocalIids::default(),
        }
    }
}

/// The output buffer and what every sequence shares.
pub(crate) struct Encoder {
    pub(crate) out: Vec<u8>,
    pub(crate) packets: u64,
    /// Compact mode: per-thread sequences with default tracks, timestamps as
    /// deltas on an incremental clock.
    pub(crate) compact: bool,
    pub(crate) strings: Strings,
}

impl Encoder {
    pub(crate) fn new(compact: bool) -> Self {
        Encoder {
            out: Vec::new(),
            packets: 0,
            compact,
            strings: Strings::default(),
        }
    }

    /// The header of the next packet of `seq`, opening the sequence first if
    /// this is its first packet. `t0` is the time the opening packet reads
    /// the incremental clock at.
    #[inline]
    fn header(&mut self, seq: &mut SeqState, event: bool, t0: u64) -> PacketHeader {
        let mut first = false;
        if !seq.started {
            seq.started = true;
            if self.compact {
                self.packets += 1;
                let header = PacketHeader {
                    sequence: seq.id,
                    flags: SEQ_INCREMENTAL_STATE_CLEARED | SEQ_NEEDS_INCREMENTAL_STATE,
                    first_on_sequence: true,
                };
                sequence_start_packet(&mut self.out, header, seq.default_track, t0);
                seq.clock = t0;
            } else {
                first = true;
            }
        }
        self.packets += 1;
        let flags = if first {
            SEQ_INCREMENTAL_STATE_CLEARED | SEQ_NEEDS_INCREMENTAL_STATE
        } else if event && self.compact {
            // Its clock and default track are incremental state.
            SEQ_NEEDS_INCREMENTAL_STATE
        } else {
            0
        };
        PacketHeader {
            sequence: seq.id,
            flags,
            first_on_sequence: first,
        }
    }

    /// How `ts` is written on `seq`: a delta on the incremental clock, or,
    /// where that would be negative (and always in default mode), absolute.
    #[inline(always)]
    fn time(&self, seq: &mut SeqState, ts: u64) -> (u64, u32) {
        if !self.compact {
            return (ts, 0);
        }
        if ts >= seq.clock {
            let delta = ts - seq.clock;
            seq.clock = ts;
            (delta, 0)
        } else {
            (ts, TRACE_CLOCK)
        }
    }

    pub(crate) fn descriptor(&mut self, seq: &mut SeqState, uuid: u64, kind: &TrackKind<'_>) {
        let header = self.header(seq, false, 0);
        track_descriptor_packet(&mut self.out, header, uuid, kind);
    }

    /// A slice begin; interns what it names, defining new strings in the
    /// same packet.
    #[inline]
    pub(crate) fn begin(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        track: Option<&Field>,
        meta: &SpanMeta<'_>,
    ) {
        let mut new = NewInterned::default();
        let single = !self.compact;
        let (name_iid, fresh) = seq.names.get(self.strings.names.intern(meta.name), single);
        if fresh {
            new.name = Some((name_iid, meta.name));
        }
        let mut category_iid = 0;
        if !meta.category.is_empty() {
            let global = self.strings.categories.intern(meta.category);
            let (iid, fresh) = seq.categories.get(global, single);
            category_iid = iid;
            if fresh {
                new.category = Some((iid, meta.category));
            }
        }
        let mut location_iid = 0;
        if !meta.file.is_empty() {
            let global = self.strings.locations.intern(meta.file, meta.line);
            let (iid, fresh) = seq.locations.get(global, single);
            location_iid = iid;
            if fresh {
                new.location = Some((iid, meta.file, meta.line));
            }
        }
        let mut header = self.header(seq, true, ts);
        header.flags |= SEQ_NEEDS_INCREMENTAL_STATE;
        let (ts, clock_id) = self.time(seq, ts);
        let ev = EventFields {
            ts,
            clock_id,
            kind: EventType::SliceBegin,
            track,
            category_iid,
            name_iid,
            location_iid,
        };
        track_event_packet(&mut self.out, header, &ev, &new);
    }

    #[inline]
    pub(crate) fn end(&mut self, seq: &mut SeqState, ts: u64, track: Option<&Field>) {
        let header = self.header(seq, true, ts);
        let (ts, clock_id) = self.time(seq, ts);
        let ev = EventFields {
            ts,
            clock_id,
            kind: EventType::SliceEnd,
            track,
            category_iid: 0,
            name_iid: 0,
            location_iid: 0,
        };
        track_event_packet(&mut self.out, header, &ev, &NewInterned::default());
    }
}
