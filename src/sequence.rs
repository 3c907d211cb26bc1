//! Packet sequences: what each `trusted_packet_sequence_id` has defined
//! (interned strings, defaults, its incremental clock), and the encoder that
//! turns one event into one packet of a sequence.
//!
//! Strings are interned once per writer (`Strings`), whose id is their iid
//! on every sequence; each sequence defines a string the first time it uses
//! it. So a cache of string addresses serves every sequence, and each
//! sequence defines only what it uses.

use crate::encoding::{
    begin_packet, close, end_packet, field, open, put_bool, put_double, put_fixed64, put_int,
    put_str, put_uint, sequence_start_packet, track_descriptor_packet, track_event_packet,
    track_event_packet_with, EndTemplate, EventFields, EventType, Field, NewInterned, PacketHeader,
    TrackKind, SEQ_INCREMENTAL_STATE_CLEARED, SEQ_NEEDS_INCREMENTAL_STATE, TRACE_CLOCK,
};
use crate::event::{for_each_name, Arg, Event, Value};
use crate::interning::{Interner, Text, MAX_ENTRIES};
use crate::out::Out;

/// The writer-wide string tables: string to a global id (from 1). Source
/// locations are keyed by file name and line.
#[derive(Default)]
pub(crate) struct Strings {
    /// The text of every table.
    text: Text,
    names: Interner,
    categories: Interner,
    locations: Interner,
    arg_names: Interner,
}

impl Strings {
    pub(crate) fn len(&self) -> usize {
        self.names.len() + self.categories.len() + self.locations.len() + self.arg_names.len()
    }

    /// Bytes of the strings held.
    pub(crate) fn bytes(&self) -> usize {
        self.names.bytes()
            + self.categories.bytes()
            + self.locations.bytes()
            + self.arg_names.bytes()
    }
}

pub(crate) use crate::track_options::CounterSample as CounterValue;

/// Which of the writer's strings (by global id) one sequence has defined: a
/// bit each. A string's iid is its global id on every sequence, so a
/// sequence needs no map of its own, only these bits, which stay in cache
/// however many sequences there are.
#[derive(Default)]
struct Defined {
    bits: Vec<u64>,
}

impl Defined {
    fn clear(&mut self) {
        self.bits.clear();
    }

    /// Whether a string (its global id, and whether it is new to the
    /// writer) is new to this sequence, so the packet must define it; it is
    /// marked defined, and counted in `count`. `caught_up`: the sequence had
    /// defined every string of the writer when the event began.
    #[inline(always)]
    fn first_use(
        &mut self,
        (global, new): (u64, bool),
        single: bool,
        caught_up: bool,
        count: &mut usize,
    ) -> bool {
        if single {
            // The writer's only sequence: new to the writer is new here.
            return new;
        }
        if caught_up && !new {
            // Defined here already, like every string the writer had.
            return false;
        }
        let g = global as usize - 1;
        let (word, bit) = (g / 64, 1u64 << (g % 64));
        match self.bits.get_mut(word) {
            Some(w) if *w & bit != 0 => false,
            Some(w) => {
                *w |= bit;
                *count += 1;
                true
            }
            None => {
                *count += 1;
                self.grow(word, bit)
            }
        }
    }

    /// Interns `key` (a string and its extra key) in the writer's `table`:
    /// its iid, and whether the packet must define it on this sequence (see
    /// `first_use`).
    #[inline(always)]
    fn intern(
        &mut self,
        table: &mut Interner,
        text: &mut Text,
        (s, extra): (&str, u32),
        scope: Scope,
        count: &mut usize,
    ) -> (u64, bool) {
        let global = table.intern(text, s, extra);
        let fresh = self.first_use(global, scope.single, scope.caught_up, count);
        (global.0, fresh)
    }

    /// Whether a string (its global id) is defined here; marks nothing.
    #[inline(always)]
    fn has(&self, global: u32) -> bool {
        let g = global as usize - 1;
        self.bits
            .get(g / 64)
            .is_some_and(|w| w & (1 << (g % 64)) != 0)
    }

    #[cold]
    fn grow(&mut self, word: usize, bit: u64) -> bool {
        self.bits.resize(word + 1, 0);
        self.bits[word] |= bit;
        true
    }
}

/// How a sequence takes an event's strings: `single`, it is the writer's
/// only sequence; `caught_up`, it had defined every string of the writer
/// when the event began (see `Defined::first_use`).
#[derive(Clone, Copy)]
struct Scope {
    single: bool,
    caught_up: bool,
}

/// What one sequence has defined.
pub(crate) struct SeqState {
    /// `trusted_packet_sequence_id`, encoded once.
    id: Field,
    /// Whether its incremental state is set up in the current generation.
    started: bool,
    /// Whether it ever wrote a packet (`first_packet_on_sequence`).
    opened: bool,
    /// The generation of the writer's string tables its iids belong to.
    generation: u64,
    /// The writer's `epoch` when the sequence was last set up, tables not
    /// full (see `Encoder::ready`); 0: never.
    ready_at: u64,
    /// The track its events belong to unless they name one (compact mode).
    default_track: Option<u64>,
    /// The value of its incremental clock: the last timestamp written as a
    /// delta (compact mode); always 0 on a sequence of absolute times, so
    /// that `ts - clock` is what either kind writes.
    clock: u64,
    /// What of a timestamp the clock keeps: all of it where timestamps are
    /// deltas, nothing where they are absolute. One code path, no branch on
    /// the kind of sequence (tracks of both kinds interleave in compact mode).
    keep: u64,
    names: Defined,
    categories: Defined,
    locations: Defined,
    arg_names: Defined,
    /// How many strings the four sets of bits hold (compact mode). Once it
    /// is the writer's count, every string is defined here, and an event
    /// that names none new to the writer skips the bits: most events of a
    /// busy track.
    defined: usize,
    /// Bytes of the packets that opened it, in every generation (compact
    /// mode: what a busy track paid for its sequence).
    pub(crate) opening_bytes: u64,
}

impl SeqState {
    pub(crate) fn new(id: u32, default_track: Option<u64>) -> Self {
        SeqState {
            id: Field::uint(field::PACKET_SEQUENCE_ID, u64::from(id)),
            started: false,
            opened: false,
            generation: 0,
            ready_at: 0,
            default_track,
            clock: 0,
            keep: if default_track.is_some() { u64::MAX } else { 0 },
            names: Defined::default(),
            categories: Defined::default(),
            locations: Defined::default(),
            arg_names: Defined::default(),
            defined: 0,
            opening_bytes: 0,
        }
    }
}

/// The writer's sequences: its own (index 0) held inline, since every
/// writer has it, and in compact mode one per busy track.
pub(crate) struct Sequences {
    first: SeqState,
    rest: Vec<SeqState>,
}

impl Sequences {
    pub(crate) fn new(first: SeqState) -> Self {
        Sequences {
            first,
            rest: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        1 + self.rest.len()
    }

    /// Adds a sequence; its index.
    pub(crate) fn push(&mut self, seq: SeqState) -> usize {
        self.rest.push(seq);
        self.rest.len()
    }
}

impl std::ops::Index<usize> for Sequences {
    type Output = SeqState;

    #[inline]
    fn index(&self, i: usize) -> &SeqState {
        match i.checked_sub(1) {
            None => &self.first,
            Some(i) => &self.rest[i],
        }
    }
}

impl std::ops::IndexMut<usize> for Sequences {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut SeqState {
        match i.checked_sub(1) {
            None => &mut self.first,
            Some(i) => &mut self.rest[i],
        }
    }
}

/// The output buffer and what every sequence shares.
pub(crate) struct Encoder {
    pub(crate) out: Out,
    pub(crate) packets: u64,
    /// Compact mode: busy tracks move to sequences of their own, with default
    /// tracks and timestamps as deltas on an incremental clock.
    pub(crate) compact: bool,
    pub(crate) strings: Strings,
    /// The iids of the argument names first used by the packet being
    /// written. Kept between packets so that it does not allocate again.
    new_arg_names: Vec<u64>,
    /// The iid of every argument name of the packet being written, in
    /// encoding order: each name is looked up once. Kept between packets.
    arg_iids: Vec<u64>,
    /// The caps on the string tables: entries and bytes.
    limits: (usize, usize),
    /// Whether the tables reached a cap: checked after an event defines new
    /// strings, acted on before the next event.
    full: bool,
    /// Bumped each time the tables are emptied at a cap; every sequence then
    /// clears its incremental state before its next packet.
    generation: u64,
    /// Bumped each time the tables reach a cap: a sequence whose `ready_at`
    /// is the current epoch is set up in this generation, with tables not
    /// full (see `ready`).
    epoch: u64,
}

impl Encoder {
    pub(crate) fn new(compact: bool, limits: (usize, usize)) -> Self {
        Encoder {
            // Room for a small trace whole, so that one never reallocates.
            // Not 1024: in isolated runs here, a buffer grown by doubling
            // from a power of two was 25% slower to append to once tens of MB
            // long (thread_spans/buffered_writer, 116 against 91 ms), an
            // effect of the allocator, not of this code.
            out: Out::with_room(1000),
            packets: 0,
            compact,
            strings: Strings::default(),
            new_arg_names: Vec::new(),
            arg_iids: Vec::new(),
            limits: (limits.0.min(MAX_ENTRIES), limits.1),
            full: false,
            generation: 0,
            epoch: 1,
        }
    }

    /// Generations of interned state so far (1 until a cap is reached).
    pub(crate) fn generations(&self) -> u64 {
        self.generation + 1
    }

    /// The generation the next event is written in (the tables are emptied
    /// before it if they reached a cap).
    pub(crate) fn next_generation(&self) -> u64 {
        self.generation + u64::from(self.full)
    }

    /// Empties the string tables once they reached a cap, before the next
    /// event: they never hold more than the cap and the strings of one event.
    #[inline(always)]
    fn enforce_limits(&mut self) {
        if self.full {
            self.full = false;
            self.strings = Strings::default();
            self.generation += 1;
        }
    }

    /// Notes whether the tables reached a cap; called once an event defined
    /// new strings (nothing else makes them grow).
    #[cold]
    fn check_limits(&mut self) {
        let (entries, bytes) = self.limits;
        self.full = self.strings.len() >= entries || self.strings.bytes() >= bytes;
        self.epoch += u64::from(self.full);
    }

    /// Whether a sequence is set up in the current generation, with tables
    /// that are not due to be emptied: then a packet needs no header work
    /// and its iids hold (the short paths of begins and ends). One
    /// comparison: `header` records the epoch when it sets a sequence up
    /// with the tables not full, and the epoch moves on when they fill,
    /// before the generation can change.
    #[inline(always)]
    fn ready(&self, seq: &SeqState) -> bool {
        let ready = seq.ready_at == self.epoch;
        debug_assert_eq!(
            ready,
            !self.full && seq.started && seq.generation == self.generation
        );
        ready
    }

    /// Brings a sequence into the current generation: what it defined is
    /// forgotten and its next packet clears incremental state.
    #[inline]
    fn sync(&self, seq: &mut SeqState) {
        if seq.generation != self.generation {
            seq.generation = self.generation;
            seq.started = false;
            seq.names.clear();
            seq.categories.clear();
            seq.locations.clear();
            seq.arg_names.clear();
            seq.defined = 0;
        }
    }

    /// The header of the next packet of `seq`, opening the sequence first if
    /// this is its first packet. `t0` is the time the opening packet reads
    /// the incremental clock at.
    #[inline]
    fn header(&mut self, seq: &mut SeqState, event: bool, t0: u64) -> PacketHeader {
        self.sync(seq);
        let mut first = false;
        let mut first_on_sequence = false;
        if !seq.started {
            seq.started = true;
            first_on_sequence = !seq.opened;
            seq.opened = true;
            if seq.default_track.is_some() {
                self.packets += 1;
                let header = PacketHeader {
                    sequence: seq.id,
                    flags: SEQ_INCREMENTAL_STATE_CLEARED | SEQ_NEEDS_INCREMENTAL_STATE,
                    first_on_sequence,
                };
                let at = self.out.len();
                sequence_start_packet(&mut self.out, header, seq.default_track, t0);
                seq.opening_bytes += (self.out.len() - at) as u64;
                seq.clock = t0;
            } else {
                first = true;
            }
        }
        self.packets += 1;
        seq.ready_at = if self.full { 0 } else { self.epoch };
        let flags = if first {
            SEQ_INCREMENTAL_STATE_CLEARED | SEQ_NEEDS_INCREMENTAL_STATE
        } else if event && seq.default_track.is_some() {
            // Its clock and default track are incremental state.
            SEQ_NEEDS_INCREMENTAL_STATE
        } else {
            0
        };
        PacketHeader {
            sequence: seq.id,
            flags,
            first_on_sequence: first && first_on_sequence,
        }
    }

    /// How `ts` is written on `seq`: on a track's own sequence, a delta on
    /// its incremental clock (absolute, with the clock named, where that
    /// would be negative: the core never lets time go back on a track, so
    /// this is defence only); on the writer's own sequence, which tracks
    /// share and whose time may go back and forth, absolute.
    #[inline(always)]
    fn time(&self, seq: &mut SeqState, ts: u64) -> (u64, u32) {
        if ts >= seq.clock {
            let delta = ts - seq.clock;
            seq.clock = ts & seq.keep;
            (delta, 0)
        } else {
            (ts, TRACE_CLOCK)
        }
    }

    pub(crate) fn descriptor(&mut self, seq: &mut SeqState, uuid: u64, kind: &TrackKind<'_>) {
        let header = self.header(seq, false, 0);
        track_descriptor_packet(&mut self.out, header, uuid, kind);
    }

    /// A slice begin. Most begins name strings the sequence has defined
    /// already, on a sequence set up in this generation, with time going
    /// forward: those take a short path that interns through the hints only
    /// and writes a small packet; any other goes through [`Encoder::event`].
    /// (The core takes the two paths itself, to choose the sequence of the
    /// general one.)
    #[cfg(test)]
    pub(crate) fn begin(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        track: Option<&Field>,
        ev: &Event<'_>,
    ) {
        if !self.begin_known(seq, ts, track, ev) {
            self.begin_general(seq, ts, track, *ev);
        }
    }

    /// The general path of a slice begin, out of line: inlined, its
    /// registers and stack spilled into the short path's. The event comes
    /// by value, copied here only: taking its address on the short path
    /// made the caller build it in memory on every call.
    #[cold]
    #[inline(never)]
    pub(crate) fn begin_general(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        track: Option<&Field>,
        ev: Event<'_>,
    ) {
        self.event(seq, ts, EventType::SliceBegin, track, Some(&ev), None);
    }

    /// The short path of a slice begin: writes the packet and returns
    /// true, or writes nothing and returns false.
    #[inline(always)]
    pub(crate) fn begin_known(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        track: Option<&Field>,
        ev: &Event<'_>,
    ) -> bool {
        if !self.ready(seq) || ts < seq.clock || ev.has_extras() {
            return false;
        }
        let strings = &self.strings;
        // On the writer's only sequence, a string the writer holds is
        // defined; on one of several, it must be defined there too.
        let single = !self.compact;
        let caught_up = single || seq.defined == strings.len();
        // The iids as `begin_packet` writes them, kept beside the strings.
        let known = |hit: Option<(u32, u32)>, defined: &Defined| match hit {
            Some((g, code)) if caught_up || defined.has(g) => Some(code),
            _ => None,
        };
        let text = &strings.text;
        let Some(name) = known(strings.names.hinted_code(text, ev.name, 0), &seq.names) else {
            return false;
        };
        let category = match ev.category {
            "" => 0,
            c => match known(strings.categories.hinted_code(text, c, 0), &seq.categories) {
                Some(code) => code,
                None => return false,
            },
        };
        let location = match ev.file {
            "" => 0,
            f => match known(
                strings.locations.hinted_code(text, f, ev.line),
                &seq.locations,
            ) {
                Some(code) => code,
                None => return false,
            },
        };
        // A begin uses interned strings, and on a track's own sequence its
        // clock and default track.
        let flags = SEQ_NEEDS_INCREMENTAL_STATE as u8;
        let iids = [category, name, location];
        if !begin_packet(&mut self.out, ts - seq.clock, &seq.id, track, iids, flags) {
            return false;
        }
        self.packets += 1;
        seq.clock = ts & seq.keep;
        true
    }

    /// About how many bytes `ev` would add to a packet of `seq` beyond its
    /// own fields: the strings it names that `seq` has not defined in this
    /// generation, each entry a few bytes more than its text. Reads only.
    pub(crate) fn definition_cost(&self, seq: &SeqState, ev: &Event<'_>) -> u64 {
        /// An interned entry's framing, iid and length: its text aside.
        const ENTRY: u64 = 8;
        let fresh = seq.generation != self.next_generation();
        let strings = &self.strings;
        let text = &strings.text[..];
        let cost = |table: &Interner, defined: &Defined, s: &str, extra: u32| -> u64 {
            match table.find(text, s, extra) {
                Some(g) if !fresh && defined.has(g as u32) => 0,
                _ => s.len() as u64 + ENTRY,
            }
        };
        let mut total = cost(&strings.names, &seq.names, ev.name, 0);
        if !ev.category.is_empty() {
            total += cost(&strings.categories, &seq.categories, ev.category, 0);
        }
        if !ev.file.is_empty() {
            total += cost(&strings.locations, &seq.locations, ev.file, ev.line);
        }
        for_each_name(ev.args, &mut |name| {
            total += cost(&strings.arg_names, &seq.arg_names, name, 0);
        });
        total
    }

    /// Whether the next packet of `seq` first opens it (in this generation).
    pub(crate) fn opens(&self, seq: &SeqState) -> bool {
        !seq.started || seq.generation != self.next_generation()
    }

    /// A slice end on `track`, whose [`EndTemplate`] (from
    /// [`Encoder::end_template`]) is `template`. `track` is only read on the
    /// general path: the caller's `Option`, not one made for the call, which
    /// cost every end a few instructions.
    #[inline(always)]
    pub(crate) fn end(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        track: &Option<Field>,
        template: &EndTemplate,
    ) {
        // The template holds when the sequence is set up in this generation
        // and the time can be written plainly.
        if self.ready(seq) && ts >= seq.clock && end_packet(&mut self.out, ts - seq.clock, template)
        {
            self.packets += 1;
            seq.clock = ts & seq.keep;
        } else {
            self.end_general(seq, ts, track.as_ref());
        }
    }

    /// The general path of a slice end, out of line (see `begin_general`).
    #[cold]
    #[inline(never)]
    fn end_general(&mut self, seq: &mut SeqState, ts: u64, track: Option<&Field>) {
        self.event(seq, ts, EventType::SliceEnd, track, None, None);
    }

    /// A slice end carrying arguments (only `ev.args` is read), which the
    /// trace processor adds to the slice's own.
    #[cold]
    pub(crate) fn end_with(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        track: Option<&Field>,
        ev: &Event<'_>,
    ) {
        self.event(seq, ts, EventType::SliceEnd, track, Some(ev), None);
    }

    /// The template of slice ends on `track` in `seq`.
    pub(crate) fn end_template(&self, seq: &SeqState, track: Option<&Field>) -> EndTemplate {
        // Events on a track's own sequence need its defaults and clock.
        let flags = if seq.default_track.is_some() {
            SEQ_NEEDS_INCREMENTAL_STATE
        } else {
            0
        };
        EndTemplate::new(&seq.id, track, flags)
    }

    /// One track event: a slice begin or an instant (with `ev`), a slice end,
    /// or a counter sample. Interns what it names, defining new strings in the
    /// same packet.
    #[inline]
    pub(crate) fn event(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        kind: EventType,
        track: Option<&Field>,
        ev: Option<&Event<'_>>,
        counter: Option<CounterValue>,
    ) {
        // One copy for each mode: what only compact mode does (several
        // sequences, each with its bits of defined strings) costs default
        // mode nothing, not even its checks.
        if self.compact {
            self.event_in::<true>(seq, ts, kind, track, ev, counter);
        } else {
            self.event_in::<false>(seq, ts, kind, track, ev, counter);
        }
    }

    #[inline(always)]
    fn event_in<const COMPACT: bool>(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        kind: EventType,
        track: Option<&Field>,
        ev: Option<&Event<'_>>,
        counter: Option<CounterValue>,
    ) {
        self.enforce_limits();
        self.sync(seq);
        let single = !COMPACT;
        // A sequence that has caught up (defined every string the writer
        // had when the event began) needs no look at its bits.
        let caught_up = COMPACT && seq.defined == self.strings.len();
        let mut new = NewInterned::default();
        let (mut name_iid, mut category_iid, mut location_iid) = (0, 0, 0);
        if let Some(ev) = ev {
            let scope = Scope { single, caught_up };
            let Strings {
                text,
                names,
                categories,
                locations,
                ..
            } = &mut self.strings;
            let count = &mut seq.defined;
            // An end carries no name: the reader would match it by name.
            if kind != EventType::SliceEnd {
                let (iid, fresh) = seq.names.intern(names, text, (ev.name, 0), scope, count);
                name_iid = iid;
                new.name = fresh.then_some((iid, ev.name));
            }
            if !ev.category.is_empty() {
                let key = (ev.category, 0);
                let (iid, fresh) = seq.categories.intern(categories, text, key, scope, count);
                category_iid = iid;
                new.category = fresh.then_some((iid, ev.category));
            }
            if !ev.file.is_empty() {
                let key = (ev.file, ev.line);
                let (iid, fresh) = seq.locations.intern(locations, text, key, scope, count);
                location_iid = iid;
                new.location = fresh.then_some((iid, ev.file, ev.line));
            }
            if !new.is_empty() {
                self.check_limits();
            }
        }
        let mut header = self.header(seq, true, ts);
        if ev.is_some() {
            header.flags |= SEQ_NEEDS_INCREMENTAL_STATE;
        }
        let (ts, clock_id) = self.time(seq, ts);
        let fields = EventFields {
            ts,
            clock_id,
            kind,
            track,
            category_iid,
            name_iid,
            location_iid,
            counter,
        };
        match ev {
            Some(ev) if ev.has_extras() => self.rich_event(seq, header, &fields, new, ev),
            _ => track_event_packet(&mut self.out, header, &fields, &new),
        }
    }

    /// An event with flows or arguments: the general path.
    #[cold]
    fn rich_event(
        &mut self,
        seq: &mut SeqState,
        header: PacketHeader,
        fields: &EventFields<'_>,
        new: NewInterned<'_>,
        ev: &Event<'_>,
    ) {
        let single = !self.compact;
        let Encoder {
            out,
            strings,
            new_arg_names,
            arg_iids,
            ..
        } = self;
        new_arg_names.clear();
        arg_iids.clear();
        let mut fresh_global = false;
        for_each_name(ev.args, &mut |name| {
            let global = strings.arg_names.intern(&mut strings.text, name, 0);
            fresh_global |= global.1;
            if seq
                .arg_names
                .first_use(global, single, false, &mut seq.defined)
            {
                new_arg_names.push(global.0);
            }
            arg_iids.push(global.0);
        });
        let strings = &*strings;
        // Allocates only when the packet defines new argument names.
        let defined: Vec<(u64, &str)> = new_arg_names
            .iter()
            .map(|&iid| (iid, strings.arg_names.get(&strings.text, iid)))
            .collect();
        let new = NewInterned {
            arg_names: &defined,
            ..new
        };
        // The names come back in the order they were interned.
        let mut iids = arg_iids.iter().copied();
        let mut next_iid = || iids.next().unwrap_or(0);
        track_event_packet_with(
            out,
            header,
            fields,
            &new,
            |buf| {
                for arg in ev.args {
                    let a = open(buf, field::EVENT_DEBUG_ANNOTATIONS);
                    put_arg(buf, arg, &mut next_iid);
                    close(buf, a);
                }
            },
            |buf| {
                for &id in ev.flows {
                    put_fixed64(buf, field::EVENT_FLOW_IDS, id);
                }
                for &id in ev.terminating_flows {
                    put_fixed64(buf, field::EVENT_TERMINATING_FLOW_IDS, id);
                }
            },
        );
        if fresh_global {
            self.check_limits();
        }
    }
}

/// The fields of one `DebugAnnotation` (its name and value), in field-number
/// order. `next_iid` gives the iids of the names met, in the order of
/// [`for_each_name`].
fn put_arg(buf: &mut Out, arg: &Arg<'_>, next_iid: &mut impl FnMut() -> u64) {
    put_uint(buf, field::ARG_NAME_IID, next_iid());
    put_value(buf, &arg.value, next_iid);
}

fn put_value(buf: &mut Out, value: &Value<'_>, next_iid: &mut impl FnMut() -> u64) {
    match *value {
        Value::Bool(v) => put_bool(buf, field::ARG_BOOL, v),
        Value::Uint(v) => put_uint(buf, field::ARG_UINT, v),
        Value::Int(v) => put_int(buf, field::ARG_INT, v),
        Value::Double(v) => put_double(buf, field::ARG_DOUBLE, v),
        Value::Str(v) => put_str(buf, field::ARG_STRING, v),
        Value::Dict(entries) => {
            for entry in entries {
                let e = open(buf, field::ARG_DICT_ENTRIES);
                put_arg(buf, entry, next_iid);
                close(buf, e);
            }
        }
        Value::Array(values) => {
            for v in values {
                let e = open(buf, field::ARG_ARRAY_VALUES);
                put_value(buf, v, next_iid);
                close(buf, e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protos;
    use prost::Message;

    /// On a track's own sequence, a time before the clock is written
    /// absolute with the trace clock named, never as a negative delta. (The
    /// core never sends one, so this is tested here.)
    #[test]
    fn time_going_back_on_a_delta_sequence_is_written_absolute() {
        let mut enc = Encoder::new(true, (usize::MAX, usize::MAX));
        let mut seq = SeqState::new(2, Some(77));
        let template = enc.end_template(&seq, None);
        let ev = Event::new("a");
        enc.begin(&mut seq, 1_000, None, &ev);
        enc.end(&mut seq, 1_500, &None, &template);
        enc.begin(&mut seq, 400, None, &ev);
        enc.end(&mut seq, 1_600, &None, &template);
        let trace = protos::Trace::decode(&enc.out[..]).unwrap();
        let times: Vec<_> = trace
            .packet
            .iter()
            .map(|p| (p.timestamp, p.timestamp_clock_id))
            .collect();
        assert_eq!(
            times,
            [
                (None, None), // the opening packet: defaults and clock
                (Some(0), None),
                (Some(500), None),
                (Some(400), Some(TRACE_CLOCK)),
                (Some(100), None),
            ]
        );
    }
}
