//! The emitter: turns one event into one packet of a sequence, interning
//! what the event names (through the writer's string tables and each
//! sequence's bits of defined strings) and choosing the short encoder where
//! it holds. It owns the output buffer; the model above says which sequence
//! and track each event goes on.

use crate::annotations::rich_event_packet;
use crate::encoding::{
    begin_packet, begin_packet_fields, clock_defaults_packet, clock_snapshot_packet, field,
    sequence_start_packet, tail_packet, track_descriptor_packet, track_event_packet, BeginFields,
    EventFields, EventType, Field, NewCallstack, NewInterned, PacketHeader, PacketTail, TrackKind,
    SEQ_INCREMENTAL_STATE_CLEARED, SEQ_NEEDS_INCREMENTAL_STATE, TRACE_CLOCK,
};
use crate::event::{for_each_name, Correlation, Event};
use crate::ids::Owner;
use crate::interning::{Interner, MAX_ENTRIES};
use crate::keys::{EventKey, KeyCache, Keys};
use crate::limits::MAX_TS;
use crate::options::Options;
use crate::out::Out;
use crate::sequence::{Defined, Scope, SeqState, Strings};
use crate::track_options::CounterSample;

mod annotated;
mod descriptor;
mod keyed;

pub(crate) use annotated::{arg_prefix, EventWords};
pub use descriptor::TrackTemplate;

/// The flags of every begin: it uses interned strings, and on a track's own
/// sequence its clock and default track.
const BEGIN_FLAGS: u8 = SEQ_NEEDS_INCREMENTAL_STATE as u8;

/// An event's interned strings, apart from the event: what a key's first
/// use writes, its strings read from the keys' text.
#[derive(Clone, Copy)]
struct Named<'a> {
    name: &'a str,
    category: &'a str,
    file: &'a str,
    line: u32,
    inline_name: bool,
}

/// What `Emitter::named_event` reads of an event's strings: an event's
/// own, each read through its reference where it is used (the strings
/// read at once and held across the interning calls cost the string form
/// ~15 an event in spills), or a key's ([`Named`]).
trait EventStrings<'a>: Copy {
    fn name(self) -> &'a str;
    fn category(self) -> &'a str;
    fn file(self) -> &'a str;
    fn line(self) -> u32;
    fn inline_name(self) -> bool;
}

impl<'a> EventStrings<'a> for Named<'a> {
    #[inline(always)]
    fn name(self) -> &'a str {
        self.name
    }
    #[inline(always)]
    fn category(self) -> &'a str {
        self.category
    }
    #[inline(always)]
    fn file(self) -> &'a str {
        self.file
    }
    #[inline(always)]
    fn line(self) -> u32 {
        self.line
    }
    #[inline(always)]
    fn inline_name(self) -> bool {
        self.inline_name
    }
}

impl<'a> EventStrings<'a> for &Event<'a> {
    #[inline(always)]
    fn name(self) -> &'a str {
        self.name
    }
    #[inline(always)]
    fn category(self) -> &'a str {
        self.category
    }
    #[inline(always)]
    fn file(self) -> &'a str {
        self.file
    }
    #[inline(always)]
    fn line(self) -> u32 {
        self.line
    }
    #[inline(always)]
    fn inline_name(self) -> bool {
        self.inline_name
    }
}

/// The output buffer and what every sequence shares.
pub(crate) struct Emitter {
    pub(crate) out: Out,
    pub(crate) packets: u64,
    /// Compact mode: busy tracks move to sequences of their own, with default
    /// tracks and timestamps as deltas on an incremental clock.
    pub(crate) compact: bool,
    pub(crate) strings: Strings,
    /// The writer's event keys, each with what its strings are in
    /// `strings` (its cache).
    pub(crate) keys: Keys,
    /// The iids of the argument names first used by the packet being
    /// written. Kept between packets so that it does not allocate again.
    new_arg_names: Vec<u64>,
    /// The iid of every argument name of the packet being written, in
    /// encoding order: each name is looked up once. Kept between packets.
    arg_iids: Vec<u64>,
    /// What the callstack of the packet being written interns. Kept between
    /// packets.
    stack: StackEntries,
    /// The caps on the string tables: entries and bytes.
    limits: (usize, usize),
    /// Whether the tables reached a cap: checked after an event defines new
    /// strings, acted on before the next event.
    full: bool,
    /// Bumped each time the tables are emptied at a cap; every sequence then
    /// clears its incremental state before its next packet.
    generation: u64,
    /// The clock timestamps are in (`BuiltinClock` id): BOOTTIME unless the
    /// options said otherwise.
    pub(crate) clock: u32,
    /// A reading of that clock and of BOOTTIME at one instant (when the
    /// clock is not BOOTTIME).
    pub(crate) clock_reading: (u64, u64),
    /// Bumped each time the tables reach a cap (before `generation` moves
    /// on): a sequence whose `ready_at` is the current value is set up in
    /// this generation, with tables not full (see `ready`). Starts at 1, so
    /// that a sequence never set up (`ready_at` 0) is not ready.
    fill_epoch: u64,
    /// The encoded uuids of the last track named by its uuid (described,
    /// ended or written on) and of the last keyed track's parent.
    pub(crate) keyed: descriptor::KeyedFields,
    /// The writer's track templates.
    pub(crate) templates: descriptor::Templates,
}

impl Emitter {
    /// An emitter of default options but `compact` and `limits`, its keys
    /// of no writer (for tests of the emitter alone).
    #[cfg(test)]
    pub(crate) fn new(compact: bool, limits: (usize, usize)) -> Self {
        let options = Options {
            compact,
            intern_limits: limits,
            ..Options::default()
        };
        Self::with_options(&options, Owner(0))
    }

    /// The emitter of a writer of `options`, whose handles `owner` marks.
    /// Every field set here, in one literal: a writer's state is built in
    /// place, not built apart and copied in.
    #[inline]
    pub(crate) fn with_options(options: &Options, owner: Owner) -> Self {
        let limits = options.intern_limits;
        // Room for a small trace whole, so that one never reallocates;
        // not a power of two, which the allocator served slower once
        // doubled to tens of MB (see BENCHMARKS.md). The calls made before
        // the literal, so that it is built in place: a call among its
        // fields had it built aside and copied (1.1 KB).
        let out = Out::with_room(1000);
        let keyed = descriptor::KeyedFields::new();
        let templates = descriptor::Templates::new(owner);
        Emitter {
            out,
            packets: 0,
            compact: options.compact,
            strings: Strings::new(),
            keys: Keys::new(owner),
            new_arg_names: Vec::new(),
            arg_iids: Vec::new(),
            stack: StackEntries::default(),
            limits: (limits.0.min(MAX_ENTRIES), limits.1),
            full: false,
            generation: 0,
            fill_epoch: 1,
            clock: options.clock as u32,
            clock_reading: options.clock_reading,
            keyed,
            templates,
        }
    }

    /// The fill epoch (see `fill_epoch`): while it stays, the tables keep
    /// their iids, and a sequence set up in it stays ready.
    #[inline(always)]
    pub(crate) fn fill_epoch(&self) -> u64 {
        self.fill_epoch
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
            self.empty_tables();
        }
    }

    /// [`Emitter::enforce_limits`]'s work, out of line: inlined, replacing
    /// the tables (a copy of their 700 bytes and the drop of the old ones)
    /// cost every general event a few instructions in register moves.
    #[cold]
    #[inline(never)]
    fn empty_tables(&mut self) {
        self.full = false;
        self.strings = Strings::EMPTY;
        self.generation += 1;
    }

    /// Notes whether the tables reached a cap; called once an event defined
    /// new strings (nothing else makes them grow).
    #[cold]
    fn check_limits(&mut self) {
        let (entries, bytes) = self.limits;
        // No table's bytes reach `usize::MAX` (no cap): not summed then.
        let bytes_full = bytes != usize::MAX && self.strings.bytes() >= bytes;
        self.full = self.strings.len() >= entries || bytes_full;
        self.fill_epoch += u64::from(self.full);
    }

    /// Whether a sequence is set up in the current generation, with tables
    /// that are not due to be emptied: then a packet needs no header work
    /// and its iids hold (the short paths of begins and ends). One
    /// comparison: `header` records the fill epoch when it sets a sequence up
    /// with the tables not full, and the fill epoch moves on when they fill,
    /// before the generation can change.
    #[inline(always)]
    fn ready(&self, seq: &SeqState) -> bool {
        let ready = seq.ready_at == self.fill_epoch;
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
            seq.more.clear();
            seq.functions.clear();
            seq.paths.clear();
            seq.frames.clear();
            seq.callstacks.clear();
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
                sequence_start_packet(&mut self.out, header, seq.default_track, t0, self.clock);
                seq.opening_bytes += (self.out.len() - at) as u64;
                seq.clock = t0;
            } else if self.clock != TRACE_CLOCK {
                // The writer's own sequence names its clock first.
                self.packets += 1;
                let header = PacketHeader {
                    sequence: seq.id,
                    flags: SEQ_INCREMENTAL_STATE_CLEARED | SEQ_NEEDS_INCREMENTAL_STATE,
                    first_on_sequence,
                };
                // The readings once: again in a later generation, they could
                // follow later readings of the caller's.
                let reading = first_on_sequence.then_some(self.clock_reading);
                clock_defaults_packet(&mut self.out, header, self.clock, reading);
            } else {
                first = true;
            }
        }
        self.packets += 1;
        seq.ready_at = if self.full { 0 } else { self.fill_epoch };
        let flags = if first {
            SEQ_INCREMENTAL_STATE_CLEARED | SEQ_NEEDS_INCREMENTAL_STATE
        } else if event && (seq.default_track.is_some() || self.clock != TRACE_CLOCK) {
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
            seq.clock = ts & seq.clock_mask;
            (delta, 0)
        } else {
            (ts, self.clock)
        }
    }

    /// A clock snapshot: readings of clocks at one instant.
    pub(crate) fn clock_snapshot(&mut self, seq: &mut SeqState, clocks: &[(u32, u64)]) {
        let header = self.header(seq, false, 0);
        clock_snapshot_packet(&mut self.out, header, clocks, self.clock);
    }

    pub(crate) fn descriptor(&mut self, seq: &mut SeqState, uuid: u64, kind: &TrackKind<'_>) {
        if let TrackKind::Named {
            parent,
            name,
            options,
            counter: None,
        } = *kind
        {
            if self.named_descriptor_known(seq, uuid, parent, name, options) {
                return;
            }
        }
        if self.process_or_thread_descriptor(seq, uuid, kind) {
            return;
        }
        self.descriptor_general(seq, uuid, kind);
    }

    /// [`Emitter::descriptor`] by the general encoder.
    #[cold]
    #[inline(never)]
    pub(crate) fn descriptor_general(
        &mut self,
        seq: &mut SeqState,
        uuid: u64,
        kind: &TrackKind<'_>,
    ) {
        let header = self.header(seq, false, 0);
        track_descriptor_packet(&mut self.out, header, uuid, kind);
    }

    /// A slice begin. Most begins name strings the sequence has defined
    /// already, on a sequence set up in this generation, with time going
    /// forward: those take a short path that interns through the hints only
    /// and writes a small packet; any other goes through [`Emitter::event`].
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

    /// The general path of a slice begin, out of line so that its registers
    /// stay out of the short path's. The event comes by value, copied here
    /// only, so that the short path never needs it in memory.
    #[cold]
    #[inline(never)]
    pub(crate) fn begin_general(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        track: Option<&Field>,
        ev: Event<'_>,
    ) {
        self.begin_event(seq, ts, track, &ev);
    }

    /// A slice begin through [`Emitter::event`], out of line (the callers'
    /// paths are inlined): for begins with arguments, whose first try there
    /// is their short path, and for callers on a cold path already, which
    /// hold the event copied (a second copy cost a small trace's spans 29
    /// instructions each).
    #[inline(never)]
    pub(crate) fn begin_event(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        track: Option<&Field>,
        ev: &Event<'_>,
    ) {
        self.event(seq, ts, EventType::SliceBegin, track, Some(ev), None);
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
        // Known at compile time where the call gives strings or a key: each
        // form keeps a path of its own.
        if let Some(key) = ev.key {
            return self.begin_keyed(seq, ts, track, ev, key);
        }
        if !self.ready(seq) || ts < seq.clock || ev.has_extras() {
            return false;
        }
        let strings = &self.strings;
        // On the writer's only sequence, a string the writer holds is
        // defined; on one of several, it must be defined there too.
        let only_sequence = !self.compact;
        let has_all = only_sequence || seq.defined == strings.len();
        // The iids as `begin_packet` writes them, kept beside the strings.
        let known = |hit: Option<(u32, u32)>, defined: &Defined| match hit {
            Some((g, code)) if has_all || defined.has(g) => Some(code),
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
        let iids = [category, name, location];
        if !begin_packet(
            &mut self.out,
            ts - seq.clock,
            &mut seq.time_high,
            &seq.id,
            track,
            iids,
            BEGIN_FLAGS,
        ) {
            return false;
        }
        self.packets += 1;
        seq.clock = ts & seq.clock_mask;
        true
    }

    /// [`Emitter::begin_known`] for an event of a key: its fields as
    /// cached, if that was in this generation, with no lookup.
    #[inline(always)]
    fn begin_keyed(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        track: Option<&Field>,
        ev: &Event<'_>,
        key: EventKey,
    ) -> bool {
        if !self.ready(seq) || ts < seq.clock || ev.has_extras() {
            return false;
        }
        let generation = self.generation;
        let c = match self.keys.cache(key) {
            Some(c) if c.begin_generation == generation => c,
            // The key's second begin in this generation: its fields, from
            // its iids (its first left them). Tested here, not in the call:
            // a first use paid ~19 instructions for the call's `None`.
            Some(c) if c.generation == generation => {
                match self.keys.cache_with_fields(key, generation, BEGIN_FLAGS) {
                    Some(c) => c,
                    None => return false,
                }
            }
            _ => return false,
        };
        // Defined on the sequence: on the writer's only one, by being
        // interned; on one of several, by its bits, unless it has them all.
        let has_all = !self.compact || seq.defined == self.strings.len();
        let [category, name, location] = c.globals;
        let defined = |g: u32, bits: &Defined| g == 0 || bits.has(g);
        let all_defined = has_all
            || defined(name, &seq.names)
                && defined(category, &seq.categories)
                && defined(location, &seq.locations);
        if !all_defined {
            return false;
        }
        let fields = c.fields;
        self.begin_written(seq, ts, track, &fields)
    }

    /// The short path of a keyed begin, its fields cached: as
    /// [`Emitter::begin_known`].
    #[inline(always)]
    fn begin_written(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        track: Option<&Field>,
        fields: &BeginFields,
    ) -> bool {
        if !begin_packet_fields(
            &mut self.out,
            ts - seq.clock,
            &mut seq.time_high,
            &seq.id,
            track,
            fields,
        ) {
            return false;
        }
        self.packets += 1;
        seq.clock = ts & seq.clock_mask;
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
        let (name, category, file, line) = match ev.key {
            Some(key) => self.keys.strings(key),
            None => (ev.name, ev.category, ev.file, ev.line),
        };
        // An inline name is the event's own field.
        let mut total = match ev.inline_name {
            true => 0,
            false => cost(&strings.names, &seq.names, name, 0),
        };
        if !category.is_empty() {
            total += cost(&strings.categories, &seq.categories, category, 0);
        }
        if !file.is_empty() {
            total += cost(&strings.locations, &seq.locations, file, line);
        }
        for_each_name(ev.args, &mut |name| {
            total += cost(&strings.arg_names, &seq.arg_names, name, 0);
        });
        // A callstack's strings; its frames and itself are a few bytes each.
        let none = Interner::EMPTY;
        let (functions, paths) = match strings.callstacks.as_deref() {
            Some(stacks) => (&stacks.functions, &stacks.paths),
            None => (&none, &none),
        };
        for f in ev.callstack {
            total += cost(functions, &seq.functions, f.function, 0);
            if !f.file.is_empty() {
                total += cost(paths, &seq.paths, f.file, 0);
            }
        }
        total
    }

    /// Whether the next packet of `seq` first opens it (in this generation).
    pub(crate) fn opens(&self, seq: &SeqState) -> bool {
        !seq.started || seq.generation != self.next_generation()
    }

    /// A slice end on `track`, whose [`PacketTail`] (from
    /// [`Emitter::end_template`]) is `template`. `track` is only read on the
    /// general path: the caller's `Option`, so that no `Option` is built for
    /// the call.
    #[inline(always)]
    pub(crate) fn end(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        track: &Option<Field>,
        template: &PacketTail,
    ) {
        if !self.tail_known(seq, ts, template) {
            self.end_general(seq, ts, track.as_ref());
        }
    }

    /// Writes a packet of `seq` at `ts` from its tail (an end's template),
    /// if the tail holds: the sequence set up in this generation, and the
    /// time written plainly. Writes nothing and returns false otherwise.
    #[inline(always)]
    fn tail_known(&mut self, seq: &mut SeqState, ts: u64, tail: &PacketTail) -> bool {
        self.ready(seq) && self.tail_kept(seq, ts, tail)
    }

    /// [`Emitter::tail_known`] for a sequence known ready: the tail of a
    /// keyed begin kept on it in the current fill epoch (see `BeginTails`),
    /// since a sequence set up in an epoch stays so until the epoch ends.
    /// A time behind the sequence's clock (its delta wraps past 2^63,
    /// which `tail_packet` refuses) takes the general path.
    #[inline(always)]
    pub(crate) fn tail_kept(&mut self, seq: &mut SeqState, ts: u64, tail: &PacketTail) -> bool {
        debug_assert!(self.ready(seq));
        debug_assert!(seq.clock <= MAX_TS);
        let delta = ts.wrapping_sub(seq.clock);
        if tail_packet(&mut self.out, delta, &mut seq.time_high, tail) {
            self.packets += 1;
            seq.clock = ts & seq.clock_mask;
            return true;
        }
        false
    }

    /// [`Emitter::end`] on a sequence whose times are absolute (the
    /// writer's own): no clock to read or move.
    #[inline(always)]
    pub(crate) fn end_absolute(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        track: &Option<Field>,
        template: &PacketTail,
    ) {
        if !(self.ready(seq) && self.tail_absolute(seq, ts, template)) {
            self.end_general(seq, ts, track.as_ref());
        }
    }

    /// [`Emitter::tail_kept`] on a sequence whose times are absolute: its
    /// clock stays 0 (its mask is 0), so the time is written as it is.
    #[inline(always)]
    pub(crate) fn tail_absolute(&mut self, seq: &mut SeqState, ts: u64, tail: &PacketTail) -> bool {
        debug_assert!(self.ready(seq));
        debug_assert!(seq.clock == 0 && seq.clock_mask == 0);
        if tail_packet(&mut self.out, ts, &mut seq.time_high, tail) {
            self.packets += 1;
            return true;
        }
        false
    }

    /// The general path of a slice end, out of line (see `begin_general`).
    #[cold]
    #[inline(never)]
    fn end_general(&mut self, seq: &mut SeqState, ts: u64, track: Option<&Field>) {
        self.event(seq, ts, EventType::SliceEnd, track, None, None);
    }

    /// A slice end carrying what an event may carry besides its name
    /// (arguments, which the trace processor adds to the slice's own, and
    /// counter values), out of line.
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
    pub(crate) fn end_template(&self, seq: &SeqState, track: Option<&Field>) -> PacketTail {
        // Events on a track's own sequence need its defaults and clock, as
        // do those of a writer whose clock its defaults name.
        let flags = if seq.default_track.is_some() || self.clock != TRACE_CLOCK {
            SEQ_NEEDS_INCREMENTAL_STATE
        } else {
            0
        };
        PacketTail::new(&seq.id, track, flags)
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
        counter: Option<CounterSample>,
    ) {
        if let Some(ev) = ev {
            if counter.is_none() {
                // A key with its arguments' names, and nothing else (strings
                // beside a key were refused before).
                let keyed_only = (ev.name.len() | ev.category.len() | ev.file.len()) == 0;
                // With arguments, or an instant with nothing at all (known
                // at compile time for begins: they skip the test).
                let bare_instant = || kind == EventType::Instant && !ev.has_extras();
                let keyed = match ev.key {
                    Some(key) if keyed_only && (ev.only_args() || bare_instant()) => {
                        matches!(kind, EventType::Instant | EventType::SliceBegin)
                            && self.keyed_args_with(seq, ts, kind, track, key, ev.args)
                    }
                    Some(key) if ev.inline_name => {
                        self.keyed_named_event(seq, ts, kind, track, key, ev)
                    }
                    _ => false,
                };
                if keyed || self.annotated_known(seq, ts, kind, track, ev) {
                    return;
                }
            }
        }
        self.event_general(seq, ts, kind, track, ev, counter);
    }

    /// [`Emitter::event`] without the short path of events with arguments.
    #[inline]
    fn event_general(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        kind: EventType,
        track: Option<&Field>,
        ev: Option<&Event<'_>>,
        counter: Option<CounterSample>,
    ) {
        if let Some((ev, key)) = ev.and_then(|e| Some((e, e.key?))) {
            return match ev.inline_name {
                false => self.keyed_event(seq, ts, kind, track, ev, key),
                true => self.keyed_inline_event(seq, ts, kind, track, ev, key),
            };
        }
        // One copy for each mode: what only compact mode does (several
        // sequences, each with its bits of defined strings) costs default
        // mode nothing, not even its checks.
        if self.compact {
            self.event_in::<true>(seq, ts, kind, track, ev, counter);
        } else {
            self.event_in::<false>(seq, ts, kind, track, ev, counter);
        }
    }

    /// [`Emitter::event`] for an event of a key: written as its strings
    /// would be, and the key's cache set to what they are now.
    #[cold]
    #[inline(never)]
    fn keyed_event(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        kind: EventType,
        track: Option<&Field>,
        ev: &Event<'_>,
        key: EventKey,
    ) {
        let globals = self.keyed_by_strings::<false>(seq, ts, kind, track, ev, key);
        if kind != EventType::SliceEnd {
            // Below 2^31 (`MAX_ENTRIES`).
            // The begin's fields are set by its next begin's short path
            // (`Keys::cache_with_fields`): a key used once never needs them.
            let globals = globals.map(|g| u32::try_from(g).unwrap_or(u32::MAX));
            let cached = KeyCache {
                generation: self.generation,
                begin_generation: u64::MAX,
                fields: BeginFields::EMPTY,
                globals,
            };
            self.keys.set_cache(key, cached);
            // The argument names' iids, one each when flat: `rich_event`
            // looked them up in encoding order. An instant without
            // arguments sets its key's words too, for the keyed short path
            // (a key without names: `info!("done")`).
            let generation = self.generation;
            match (kind, ev.args) {
                (EventType::Instant, []) => self.keys.set_named_iids(key, &[], &[], generation),
                (_, args) => self
                    .keys
                    .set_arg_iids(key, args, &self.arg_iids, generation),
            }
        }
    }

    /// [`Emitter::keyed_event`] of an event named inline: the key's name
    /// is not interned, so its cache is set without it, with the argument
    /// names' iids (none, maybe), for the inline short path. Apart, so
    /// that the other keyed events' first uses test nothing of it.
    #[cold]
    #[inline(never)]
    fn keyed_inline_event(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        kind: EventType,
        track: Option<&Field>,
        ev: &Event<'_>,
        key: EventKey,
    ) {
        let globals = self.keyed_by_strings::<true>(seq, ts, kind, track, ev, key);
        if kind != EventType::SliceEnd {
            let globals = globals.map(|g| u32::try_from(g).unwrap_or(u32::MAX));
            let generation = self.generation;
            self.keys.set_nameless_cache(key, globals, generation);
            self.keys
                .set_named_iids(key, ev.args, &self.arg_iids, generation);
        }
    }

    /// Writes an event of a key by the key's strings (its name but for
    /// one written inline, `INLINE`); their global ids.
    #[inline(always)]
    fn keyed_by_strings<const INLINE: bool>(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        kind: EventType,
        track: Option<&Field>,
        ev: &Event<'_>,
        key: EventKey,
    ) -> [u64; 3] {
        // Out of the emitter while its strings are in use, which the
        // packet's definitions borrow.
        let text = self.keys.lend_text();
        let (key_name, category, file, line) = self.keys.strings_in(key, &text);
        let named = Named {
            name: if INLINE { ev.name } else { key_name },
            category,
            file,
            line,
            inline_name: ev.inline_name,
        };
        // Without extras the strings alone are written: the event rebuilt
        // around them cost a first use ~50 instructions of copying.
        let globals = match ev.has_extras() {
            false => match self.compact {
                true => self.named_event::<true, _>(seq, ts, kind, track, Some(named), None, None),
                false => {
                    self.named_event::<false, _>(seq, ts, kind, track, Some(named), None, None)
                }
            },
            true => {
                let ev = Event {
                    name: named.name,
                    category,
                    file,
                    line,
                    key: None,
                    ..*ev
                };
                match self.compact {
                    true => self.event_in::<true>(seq, ts, kind, track, Some(&ev), None),
                    false => self.event_in::<false>(seq, ts, kind, track, Some(&ev), None),
                }
            }
        };
        self.keys.give_back(text);
        globals
    }

    #[inline(always)]
    fn event_in<const COMPACT: bool>(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        kind: EventType,
        track: Option<&Field>,
        ev: Option<&Event<'_>>,
        counter: Option<CounterSample>,
    ) -> [u64; 3] {
        self.named_event::<COMPACT, _>(seq, ts, kind, track, ev, ev, counter)
    }

    /// [`Emitter::event_in`] of an event's strings, `ev`, and its extras,
    /// `rich` (the same event; `None` for none).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn named_event<'a, const COMPACT: bool, S: EventStrings<'a>>(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        kind: EventType,
        track: Option<&Field>,
        ev: Option<S>,
        rich: Option<&Event<'_>>,
        counter: Option<CounterSample>,
    ) -> [u64; 3] {
        self.enforce_limits();
        self.sync(seq);
        let only_sequence = !COMPACT;
        // A sequence that has caught up (defined every string the writer
        // had when the event began) needs no look at its bits.
        let has_all = COMPACT && seq.defined == self.strings.len();
        let mut new = NewInterned::default();
        let (mut name_iid, mut category_iid, mut location_iid) = (0, 0, 0);
        if let Some(ev) = ev {
            let scope = Scope {
                only_sequence,
                has_all,
            };
            let Strings {
                text,
                names,
                categories,
                locations,
                ..
            } = &mut self.strings;
            let count = &mut seq.defined;
            // An end carries no name: the reader would match it by name.
            // An inline name is the rich encoder's to write.
            if kind != EventType::SliceEnd && !ev.inline_name() {
                let (iid, fresh) = seq.names.intern(names, text, (ev.name(), 0), scope, count);
                name_iid = iid;
                new.name = fresh.then_some((iid, ev.name()));
            }
            if !ev.category().is_empty() {
                let key = (ev.category(), 0);
                let (iid, fresh) = seq.categories.intern(categories, text, key, scope, count);
                category_iid = iid;
                new.category = fresh.then_some((iid, ev.category()));
            }
            if !ev.file().is_empty() {
                let key = (ev.file(), ev.line());
                let (iid, fresh) = seq.locations.intern(locations, text, key, scope, count);
                location_iid = iid;
                new.location = fresh.then_some((iid, ev.file(), ev.line()));
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
        match rich {
            Some(ev) if ev.has_extras() => self.rich_event(seq, header, &fields, new, ev),
            _ => track_event_packet(&mut self.out, header, &fields, &new),
        }
        [category_iid, name_iid, location_iid]
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
        let only_sequence = !self.compact;
        let Emitter {
            out,
            strings,
            new_arg_names,
            arg_iids,
            stack,
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
                .first_use(global, only_sequence, false, &mut seq.defined)
            {
                new_arg_names.push(global.0);
            }
            arg_iids.push(global.0);
        });
        // The log body and correlation name: an iid each, and whether this
        // packet defines it.
        let mut more_iid = |s: &str, kind: u32| {
            let table = strings.more.get_or_insert_with(Box::default);
            let global = table.intern(&mut strings.text, s, kind);
            fresh_global |= global.1;
            let fresh = seq
                .more
                .first_use(global, only_sequence, false, &mut seq.defined);
            (global.0, fresh)
        };
        let body = ev.log.map(|l| more_iid(l.body, 0));
        let correlation_name = match ev.correlation {
            Some(Correlation::Name(s)) => Some(more_iid(s, 1)),
            _ => None,
        };
        stack.clear();
        if !ev.callstack.is_empty() {
            fresh_global |= stack.intern(strings, seq, only_sequence, ev);
        }
        let strings = &*strings;
        // Allocates only when the packet defines new argument names.
        let defined: Vec<(u64, &str)> = new_arg_names
            .iter()
            .map(|&iid| (iid, strings.arg_names.get(&strings.text, iid)))
            .collect();
        let mut more = Vec::new();
        if let (Some((iid, true)), Some(log)) = (body, ev.log) {
            more.push((field::INTERNED_LOG_MESSAGE_BODY, iid, log.body));
        }
        if let (Some((iid, true)), Some(Correlation::Name(s))) = (correlation_name, ev.correlation)
        {
            more.push((field::INTERNED_CORRELATION_ID_STR, iid, s));
        }
        // Without a callstack, no table is made for one.
        let (functions, paths) = match strings.callstacks.as_deref() {
            Some(c) => (
                named(&stack.functions, &c.functions, &strings.text),
                named(&stack.paths, &c.paths, &strings.text),
            ),
            None => (Vec::new(), Vec::new()),
        };
        let new = NewInterned {
            arg_names: &defined,
            stack: NewCallstack {
                functions: &functions,
                paths: &paths,
                frames: &stack.frames,
                stack: stack.fresh.then_some((stack.iid, &stack.frame_iids[..])),
            },
            more: &more,
            ..new
        };
        let body_iid = body.map(|(iid, _)| iid);
        let correlation_iid = correlation_name.map(|(iid, _)| iid);
        rich_event_packet(
            out,
            header,
            fields,
            &new,
            ev,
            arg_iids,
            body_iid,
            correlation_iid,
            (!ev.callstack.is_empty()).then_some(stack.iid),
        );
        if fresh_global {
            self.strings.recount();
            self.check_limits();
        }
    }
}

/// What an event's callstack interns: its iid, its frames' iids, and the
/// entries the packet defines on its sequence (function names and paths by
/// iid, frames whole, the callstack if `fresh`).
#[derive(Default)]
struct StackEntries {
    iid: u64,
    fresh: bool,
    frame_iids: Vec<u64>,
    functions: Vec<u64>,
    paths: Vec<u64>,
    frames: Vec<(u64, u64, u64, u32)>,
}

impl StackEntries {
    fn clear(&mut self) {
        self.fresh = false;
        self.frame_iids.clear();
        self.functions.clear();
        self.paths.clear();
        self.frames.clear();
    }

    /// Interns `ev`'s callstack on `seq`; whether anything was new to the
    /// writer (the tables may then have reached their cap).
    fn intern(
        &mut self,
        strings: &mut Strings,
        seq: &mut SeqState,
        only_sequence: bool,
        ev: &Event<'_>,
    ) -> bool {
        let Strings {
            text, callstacks, ..
        } = strings;
        let callstacks = callstacks.get_or_insert_with(Box::default);
        let count = &mut seq.defined;
        let mut fresh_global = false;
        let mut first_use = |defined: &mut Defined, global: (u64, bool)| {
            fresh_global |= global.1;
            defined.first_use(global, only_sequence, false, count)
        };
        for f in ev.callstack {
            let function = callstacks.function(text, f.function);
            if first_use(&mut seq.functions, function) {
                self.functions.push(function.0);
            }
            let path = match f.file {
                "" => 0,
                file => {
                    let path = callstacks.path(text, file);
                    if first_use(&mut seq.paths, path) {
                        self.paths.push(path.0);
                    }
                    path.0
                }
            };
            let frame = callstacks.frame((function.0, path, f.line));
            if first_use(&mut seq.frames, frame) {
                self.frames.push((frame.0, function.0, path, f.line));
            }
            self.frame_iids.push(frame.0);
        }
        let stack = callstacks.stack(&self.frame_iids);
        self.fresh = first_use(&mut seq.callstacks, stack);
        self.iid = stack.0;
        fresh_global
    }
}

/// The strings of the iids `of` in `table`, with them.
fn named<'s>(of: &[u64], table: &Interner, text: &'s [u8]) -> Vec<(u64, &'s str)> {
    of.iter().map(|&iid| (iid, table.get(text, iid))).collect()
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
        let mut enc = Emitter::new(true, (usize::MAX, usize::MAX));
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
