//! The short path of an instant or slice begin that carries typed
//! arguments and nothing else (no flows, counters, log line, correlation or
//! callstack): the common event of a `tracing` program. When every string
//! it names is defined on its sequence already (its name, category and
//! source location, by its key's cache or looked up without adding, and
//! each argument's name), the packet is sized first and then written in one
//! pass, every length in place: no definitions to gather, no lengths to
//! back-fill. Anything else is left to the general path, whose bytes this
//! path writes exactly (`tests::the_short_path_writes_what_the_general_one_does`).
//!
//! An event of a key registered with its arguments' names goes shorter
//! still (`Emitter::keyed_args_on`, `Emitter::keyed_args_with`): nothing is
//! looked up or sized, the fields of its iids are copied as words from the
//! key's cache, its values written between them.

use crate::encoding::{
    put_text, varint_into, varint_len, EventType, Field, FIELD_CAP, SEQ_NEEDS_INCREMENTAL_STATE,
};
use crate::event::{Arg, Event, Value};
use crate::interning::Interner;
use crate::keys::EventKey;
use crate::limits::MAX_TS;
use crate::sequence::{Defined, SeqState};

use super::Emitter;

/// The most arguments the short path takes (most call sites have a few);
/// more go the general way.
const MAX_ARGS: usize = 16;

/// The most bytes a packet of the short path takes; a longer one (a long
/// string argument) goes the general way.
pub(super) const WINDOW: usize = 512;

/// Keys of the fields the packet writes (field number and wire type),
/// for the other short paths too.
pub(super) mod key {
    use crate::encoding::{field as f, key_bytes, I64, LEN, VARINT};

    const fn k(field: u32, wire: u32) -> u8 {
        key_bytes::<1>(field, wire)[0]
    }
    pub const PACKET: u8 = k(f::TRACE_PACKET, LEN);
    pub const TIMESTAMP: u8 = k(f::PACKET_TIMESTAMP, VARINT);
    pub const TRACK_EVENT: u8 = k(f::PACKET_TRACK_EVENT, LEN);
    pub const CATEGORY_IID: u8 = k(f::EVENT_CATEGORY_IIDS, VARINT);
    pub const ANNOTATION: u8 = k(f::EVENT_DEBUG_ANNOTATIONS, LEN);
    pub const TYPE: u8 = k(f::EVENT_TYPE, VARINT);
    pub const NAME_IID: u8 = k(f::EVENT_NAME_IID, VARINT);
    pub const LOCATION_IID: [u8; 2] = key_bytes(f::EVENT_SOURCE_LOCATION_IID, VARINT);
    pub const FLAGS: u8 = k(f::PACKET_SEQUENCE_FLAGS, VARINT);
    pub const ARG_NAME_IID: u8 = k(f::ARG_NAME_IID, VARINT);
    pub const ARG_BOOL: u8 = k(f::ARG_BOOL, VARINT);
    pub const ARG_UINT: u8 = k(f::ARG_UINT, VARINT);
    pub const ARG_INT: u8 = k(f::ARG_INT, VARINT);
    pub const ARG_DOUBLE: u8 = k(f::ARG_DOUBLE, I64);
    pub const ARG_STRING: u8 = k(f::ARG_STRING, LEN);
    pub const NAME: [u8; 2] = key_bytes(f::EVENT_NAME, LEN);
}

/// The inline name's key as the low bytes of a word.
const NAME_HEAD: [u8; 8] = [key::NAME[0], key::NAME[1], 0, 0, 0, 0, 0, 0];

/// Bytes of a field of varint `v` whose key is one byte. Most are iids and
/// lengths below 128: one comparison.
#[inline(always)]
fn uint_len(v: u64) -> usize {
    if v < 0x80 {
        2
    } else {
        1 + varint_len(v)
    }
}

/// Bytes of an argument's value field (flat values only).
#[inline(always)]
fn value_len(value: &Value<'_>) -> Option<usize> {
    Some(match *value {
        Value::Bool(_) => 2,
        Value::Uint(v) => uint_len(v),
        Value::Int(v) => uint_len(v as u64),
        Value::Double(_) => 9,
        Value::Str(s) => uint_len(s.len() as u64) + s.len(),
        Value::Dict(_) | Value::Array(_) => return None,
    })
}

/// The id of a string interned already and defined on the sequence, found
/// without adding it.
#[inline(always)]
fn defined_id(
    table: &Interner,
    text: &[u8],
    s: &str,
    extra: u32,
    bits: &Defined,
    has_all: bool,
) -> Option<u64> {
    // The hint inline (it answers for a string passed again at the same
    // address), the search out of line.
    let id = match table.hinted(text, s, extra) {
        Some(id) => u64::from(id),
        None => u64::from(table.search(text, s, extra)?),
    };
    (has_all || bits.has(id as u32)).then_some(id)
}

/// Appends bytes to a window known to hold them (sized before), with
/// room to spare past the packet: varints are stored as whole words.
/// Indices are masked to the window, which the compiler then sees are in
/// bounds (the packet is at most [`WINDOW`] bytes, so the mask never cuts).
pub(super) struct Cursor<'a> {
    pub(super) b: &'a mut [u8; WINDOW + SPARE],
    pub(super) n: usize,
}

/// Room past the window: a word for a varint, or an encoded field whole.
pub(super) const SPARE: usize = FIELD_CAP;

const MASK: usize = WINDOW - 1;

impl Cursor<'_> {
    #[inline(always)]
    pub(super) fn byte(&mut self, v: u8) {
        self.b[self.n & MASK] = v;
        self.n += 1;
    }

    #[inline(always)]
    pub(super) fn varint(&mut self, v: u64) {
        // Most are iids and lengths below 128; times take a word.
        if v < 0x80 {
            return self.byte(v as u8);
        }
        let at = self.n & MASK;
        self.n += varint_into(&mut self.b[at..at + 10], v);
    }

    /// The head of a timed event's packet: its key and a length byte to
    /// fill in (at 1), the time as a delta on the sequence's clock, the
    /// sequence's id and the event's key.
    #[inline(always)]
    pub(super) fn event_packet_head(&mut self, delta: u64, sequence: &Field) {
        self.byte(key::PACKET);
        self.byte(0);
        self.uint(key::TIMESTAMP, delta);
        self.field(sequence);
        self.byte(key::TRACK_EVENT);
    }

    /// Appends `s` ([`put_text`]: the window has room past the packet for
    /// what a short copy writes beyond `s`).
    #[inline(always)]
    pub(super) fn bytes(&mut self, s: &[u8]) {
        put_text(&mut self.b[..], self.n & MASK, s);
        self.n += s.len();
    }

    /// A field encoded once: its padded bytes copied whole (a few moves,
    /// no call to memcpy) and the padding written over next.
    #[inline(always)]
    pub(super) fn field(&mut self, f: &Field) {
        let at = self.n & MASK;
        self.b[at..at + FIELD_CAP].copy_from_slice(f.padded());
        self.n += f.len();
    }

    /// Appends the low `len` bytes of `w` (little-endian), at most 8.
    #[inline(always)]
    pub(super) fn word(&mut self, w: u64, len: u8) {
        let at = self.n & MASK;
        self.b[at..at + 8].copy_from_slice(&w.to_le_bytes());
        self.n += usize::from(len);
    }

    /// Appends the low `len` bytes of `w` (little-endian), at most 16.
    #[inline(always)]
    pub(super) fn wide(&mut self, w: u128, len: u8) {
        let at = self.n & MASK;
        self.b[at..at + 16].copy_from_slice(&w.to_le_bytes());
        self.n += usize::from(len);
    }

    #[inline(always)]
    pub(super) fn uint(&mut self, key: u8, v: u64) {
        self.byte(key);
        self.varint(v);
    }
}

impl Emitter {
    /// Writes an instant or slice begin that carries only arguments, all of
    /// whose strings `seq` has defined, and returns true; otherwise writes
    /// nothing and returns false. The caller checked the event.
    #[inline]
    pub(crate) fn annotated_known(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        kind: EventType,
        track: Option<&Field>,
        ev: &Event<'_>,
    ) -> bool {
        if ev.args.is_empty()
            || ev.args.len() > MAX_ARGS
            || !matches!(kind, EventType::Instant | EventType::SliceBegin)
            || !self.ready(seq)
            || ts < seq.clock
            || !ev.only_args()
        {
            return false;
        }
        self.annotated_write(seq, ts, kind, track, ev)
    }

    fn annotated_write(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        kind: EventType,
        track: Option<&Field>,
        ev: &Event<'_>,
    ) -> bool {
        let strings = &self.strings;
        let text = &strings.text[..];
        // On the writer's only sequence a string interned is defined; on
        // one of several, by its bits unless it has them all.
        let has_all = !self.compact || seq.defined == strings.len();
        let [category, name, location] = match ev.key {
            Some(key) => {
                let Some(c) = self.keys.cache(key) else {
                    return false;
                };
                let [c_, n_, l_] = c.globals;
                let defined = |g: u32, bits: &Defined| g == 0 || has_all || bits.has(g);
                if c.generation != self.generation
                    || !(defined(n_, &seq.names)
                        && defined(c_, &seq.categories)
                        && defined(l_, &seq.locations))
                {
                    return false;
                }
                [c_, n_, l_].map(u64::from)
            }
            None => {
                let find = |table: &Interner, s: &str, extra, bits: &Defined| match s {
                    "" => Some(0),
                    s => defined_id(table, text, s, extra, bits, has_all),
                };
                let (Some(n), Some(c), Some(l)) = (
                    defined_id(&strings.names, text, ev.name, 0, &seq.names, has_all),
                    find(&strings.categories, ev.category, 0, &seq.categories),
                    find(&strings.locations, ev.file, ev.line, &seq.locations),
                ) else {
                    return false;
                };
                [c, n, l]
            }
        };
        let iids = [category, name, location];
        // Most events are small: every length then takes one byte, and the
        // packet is written forward with its lengths filled in after.
        let mut bound = SMALL_HEAD + seq.id.len() + track.map_or(0, Field::len);
        for arg in ev.args {
            bound += SMALL_ARG
                + match arg.value {
                    Value::Str(s) => s.len(),
                    _ => 0,
                };
        }
        if bound < 0x80 {
            return self.annotated_small(seq, ts, kind, track, ev, iids, has_all);
        }
        // Each argument: its name's iid and its length as a DebugAnnotation.
        let mut arg_iids = [0u32; MAX_ARGS];
        let mut event_len = 0;
        for (arg, iid) in ev.args.iter().zip(&mut arg_iids) {
            let Some(id) = defined_id(
                &strings.arg_names,
                text,
                arg.name,
                0,
                &seq.arg_names,
                has_all,
            ) else {
                return false;
            };
            let Some(value) = value_len(&arg.value) else {
                return false;
            };
            // Below 2^31 (`MAX_ENTRIES`).
            *iid = id as u32;
            let len = uint_len(id) + value;
            event_len += uint_len(len as u64) + len;
        }
        if category != 0 {
            event_len += uint_len(category);
        }
        event_len += 2; // the type
        event_len += uint_len(name);
        event_len += track.map_or(0, Field::len);
        if location != 0 {
            event_len += 1 + uint_len(location);
        }
        let delta = ts - seq.clock;
        let packet_len =
            uint_len(delta) + seq.id.len() + uint_len(event_len as u64) + event_len + 2;
        let total = uint_len(packet_len as u64) + packet_len;
        if total > WINDOW {
            return false;
        }
        // Without growing the buffer: the general path grows it as it needs.
        let Some(b) = self.out.window_in_room::<{ WINDOW + SPARE }>() else {
            return false;
        };
        let mut c = Cursor { b, n: 0 };
        c.uint(key::PACKET, packet_len as u64);
        c.uint(key::TIMESTAMP, delta);
        c.field(&seq.id);
        c.uint(key::TRACK_EVENT, event_len as u64);
        if category != 0 {
            c.uint(key::CATEGORY_IID, category);
        }
        for (arg, &iid) in ev.args.iter().zip(&arg_iids) {
            put_annotation(&mut c, arg, u64::from(iid));
        }
        c.uint(key::TYPE, kind as u64);
        c.uint(key::NAME_IID, name);
        if let Some(track) = track {
            c.field(track);
        }
        if location != 0 {
            c.bytes(&key::LOCATION_IID);
            c.varint(location);
        }
        c.uint(key::FLAGS, u64::from(SEQ_NEEDS_INCREMENTAL_STATE));
        debug_assert_eq!(c.n, total);
        let n = c.n;
        self.out.commit(n);
        self.packets += 1;
        seq.clock = ts & seq.clock_mask;
        true
    }
}

impl Emitter {
    /// An instant or slice begin (`kind`, which the caller checked) on the
    /// track `track` (a uuid) of a key registered with its arguments' names,
    /// carrying those arguments (each named by the very string registered)
    /// and nothing else: its fields
    /// but for the time, the values and the track come assembled from the
    /// key's cache ([`EventWords`], [`ArgName`](crate::keys::ArgName)), nothing is looked up.
    /// Written (true) only if everything the general path checks holds and
    /// the packet is under 128 bytes; otherwise nothing is written (false)
    /// and the event goes the usual way, which writes the same bytes
    /// (`tests::keyed_arguments_write_what_the_general_path_does`) and
    /// reports the errors.
    #[inline(always)]
    pub(crate) fn keyed_args_on(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        kind: EventType,
        track: u64,
        key: EventKey,
        args: &[Arg<'_>],
    ) -> bool {
        self.keyed_args(seq, ts, kind, KeyedTrack::Uuid(track), key, args)
    }

    /// [`Emitter::keyed_args_on`] of an event whose track field is given
    /// (none on a track's own sequence), as the model's tracks keep it: a
    /// thread's instants and begins, a lane's.
    #[inline(always)]
    pub(crate) fn keyed_args_with(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        kind: EventType,
        track: Option<&Field>,
        key: EventKey,
        args: &[Arg<'_>],
    ) -> bool {
        self.keyed_args(seq, ts, kind, KeyedTrack::Field(track), key, args)
    }

    /// [`Emitter::keyed_args_on`] of an event named `name` inline (in
    /// place of the key's name, which it need not have interned), with the
    /// arguments the key names (none, for a key registered without
    /// names): the key's category, location and argument names come from
    /// its cache, which the key's first event named inline in a generation
    /// sets (`Keys::set_nameless_cache`). The name is written after the
    /// track (`TrackEvent.name`, field 23), as the general path writes it
    /// (`tests::inline_names_write_what_the_general_path_does`).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn keyed_named_on(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        kind: EventType,
        track: u64,
        key: EventKey,
        name: &str,
        args: &[Arg<'_>],
    ) -> bool {
        self.keyed(
            seq,
            ts,
            kind,
            KeyedTrack::Uuid(track),
            key,
            Some(name),
            args,
        )
    }

    /// [`Emitter::keyed_named_on`] of an event of a key named inline, on a
    /// track whose field is given (as [`Emitter::keyed_args_with`]), if it
    /// carries nothing but arguments.
    #[inline]
    pub(crate) fn keyed_named_event(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        kind: EventType,
        track: Option<&Field>,
        key: EventKey,
        ev: &Event<'_>,
    ) -> bool {
        (ev.category.len() | ev.file.len()) == 0
            && ev.no_more_than_args()
            && self.keyed(
                seq,
                ts,
                kind,
                KeyedTrack::Field(track),
                key,
                Some(ev.name),
                ev.args,
            )
    }

    #[inline(always)]
    fn keyed_args(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        kind: EventType,
        track: KeyedTrack<'_>,
        key: EventKey,
        args: &[Arg<'_>],
    ) -> bool {
        self.keyed(seq, ts, kind, track, key, None, args)
    }

    /// The keyed short path: the key's name interned (`inline` none), or
    /// `inline` written in its place. Each caller's `inline` is known at
    /// compile time, so each form compiles to its own path.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn keyed(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        kind: EventType,
        track: KeyedTrack<'_>,
        key: EventKey,
        inline: Option<&str>,
        args: &[Arg<'_>],
    ) -> bool {
        if !self.ready(seq) || ts < seq.clock || ts > MAX_TS {
            return false;
        }
        let found = match inline {
            // A key's begins without arguments take the begin's short path.
            None if args.is_empty() && kind != EventType::Instant => return false,
            None => self.keys.cache_with_args(key, self.generation),
            // Its length in a byte, as every length here.
            Some(name) if name.len() >= 0x80 || kind == EventType::SliceEnd => return false,
            Some(_) => self.keys.cache_for_inline(key, self.generation),
        };
        let Some((cache, words, names)) = found else {
            return false;
        };
        if names.len() != args.len() {
            return false;
        }
        // `track_uuid` encoded once for the track described, ended or
        // written on last by its uuid (a span's new track, which its
        // lifetime slice's begin follows): one cache for all of them.
        if let KeyedTrack::Uuid(uuid) = track {
            self.keyed.track(uuid);
        }
        // Defined on the sequence: on the writer's only one, by being
        // interned; on one of several, by its bits unless it has them all.
        // An inline name is not interned.
        let has_all = !self.compact || seq.defined == self.strings.len();
        if !has_all {
            let defined = |g: u32, bits: &Defined| g == 0 || bits.has(g);
            let [c, n, l] = cache.globals;
            let known = (inline.is_some() || defined(n, &seq.names))
                && defined(c, &seq.categories)
                && defined(l, &seq.locations)
                && names.iter().all(|a| seq.arg_names.has(a.iid));
            if !known {
                return false;
            }
        }
        let Some(b) = self.out.window_in_room::<{ WINDOW + SPARE }>() else {
            return false;
        };
        // Each length a byte, filled in once what it measures is written;
        // a packet of 128 bytes or more is refused at the end, before
        // anything is committed (a length past the window wraps in it and
        // is cut off with the rest).
        let mut c = Cursor { b, n: 0 };
        // The packet's key, its length's place and the time's key.
        c.word(u64::from(key::PACKET) | u64::from(key::TIMESTAMP) << 16, 3);
        let delta = ts - seq.clock;
        match seq.time_high.varint_word(delta) {
            Some((w, len)) => c.word(w, len as u8),
            None => c.varint(delta),
        }
        c.field(&seq.id);
        let event_at = c.n + 1;
        c.word(words.head, words.lens[0]);
        for (arg, name) in args.iter().zip(names) {
            if !name.is(arg.name) {
                return false;
            }
            let at = c.n + 1;
            c.word(name.prefix, name.prefix_len);
            if !put_value(&mut c, &arg.value) {
                return false;
            }
            c.b[at & MASK] = (c.n - at - 1) as u8;
        }
        let kind = u64::from(key::TYPE) | (kind as u64) << 8;
        match inline {
            None => c.word(kind | words.name << 16, words.lens[1] + 2),
            Some(_) => c.word(kind, 2),
        }
        match track {
            KeyedTrack::Uuid(_) => c.field(self.keyed.track_field()),
            KeyedTrack::Field(Some(f)) => c.field(f),
            KeyedTrack::Field(None) => {}
        }
        if let Some(name) = inline {
            // Its key (two bytes) and length (one).
            c.word(u64::from_le_bytes(NAME_HEAD) | (name.len() as u64) << 16, 3);
            c.bytes(name.as_bytes());
        }
        let event_end = c.n + usize::from(words.lens[3]);
        c.wide(words.tail, words.lens[2]);
        c.b[event_at & MASK] = (event_end - event_at - 1) as u8;
        let n = c.n;
        if n - 2 >= 0x80 {
            return false;
        }
        c.b[1] = (n - 2) as u8;
        self.out.commit(n);
        self.packets += 1;
        seq.clock = ts & seq.clock_mask;
        true
    }

    /// [`Emitter::annotated_write`] of a packet under 128 bytes (`iids`:
    /// category, name, location): each length a byte, left blank and
    /// filled in once what it measures is written, so nothing is sized
    /// twice.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn annotated_small(
        &mut self,
        seq: &mut SeqState,
        ts: u64,
        kind: EventType,
        track: Option<&Field>,
        ev: &Event<'_>,
        [category, name, location]: [u64; 3],
        has_all: bool,
    ) -> bool {
        let strings = &self.strings;
        let text = &strings.text[..];
        let Some(b) = self.out.window_in_room::<{ WINDOW + SPARE }>() else {
            return false;
        };
        let mut c = Cursor { b, n: 0 };
        // A refusal below leaves the window written and nothing committed.
        c.event_packet_head(ts - seq.clock, &seq.id);
        let event_at = c.n;
        c.byte(0);
        if category != 0 {
            c.uint(key::CATEGORY_IID, category);
        }
        for arg in ev.args {
            let names = &strings.arg_names;
            let Some(id) = defined_id(names, text, arg.name, 0, &seq.arg_names, has_all) else {
                return false;
            };
            c.byte(key::ANNOTATION);
            let at = c.n;
            c.byte(0);
            c.uint(key::ARG_NAME_IID, id);
            if !put_value(&mut c, &arg.value) {
                return false;
            }
            c.b[at & MASK] = (c.n - at - 1) as u8;
        }
        c.uint(key::TYPE, kind as u64);
        c.uint(key::NAME_IID, name);
        if let Some(track) = track {
            c.field(track);
        }
        if location != 0 {
            c.bytes(&key::LOCATION_IID);
            c.varint(location);
        }
        c.b[event_at & MASK] = (c.n - event_at - 1) as u8;
        c.uint(key::FLAGS, u64::from(SEQ_NEEDS_INCREMENTAL_STATE));
        c.b[1] = (c.n - 2) as u8;
        let n = c.n;
        self.out.commit(n);
        self.packets += 1;
        seq.clock = ts & seq.clock_mask;
        true
    }
}

/// The most bytes of a packet of [`Emitter::annotated_small`] beside its
/// arguments, the sequence id and the track: the packet's key and length
/// (2), the time (11), the event's key and length (2), the category (6),
/// type (2), name (6) and location (7), and the flags (2). Iids are below
/// 2^31 (`MAX_ENTRIES`): five bytes.
const SMALL_HEAD: usize = 38;

/// Where a keyed event's track field comes from: its uuid (encoded in
/// `Emitter::keyed`), or the field its track keeps.
#[derive(Clone, Copy)]
enum KeyedTrack<'a> {
    Uuid(u64),
    Field(Option<&'a Field>),
}

/// A keyed event's fields of its iids, assembled once per generation of
/// the tables (`Emitter::keyed_args_on` writes them whole), each the low
/// bytes of a word: the track event's key, its length's place and its
/// category; its name (the event's type goes before it); its source
/// location and the packet's sequence flags after it.
#[derive(Clone, Copy, Default)]
pub(crate) struct EventWords {
    head: u64,
    name: u64,
    tail: u128,
    /// The lengths of `head`, `name` and `tail`, and of the location in
    /// `tail` (where the track event ends).
    lens: [u8; 4],
}

/// The varint field of `key` (its bytes) and `v` as the low bytes of a
/// word; its length. `v` is an iid, below 2^31: at most 8 bytes in all.
fn field_word(key: &[u8], v: u64) -> (u64, u8) {
    let mut b = [0u8; 16];
    b[..key.len()].copy_from_slice(key);
    let len = key.len() + varint_into(&mut b[key.len()..], v);
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    (
        u64::from_le_bytes(w) & (u64::MAX >> (64 - 8 * len.min(8))),
        len as u8,
    )
}

impl EventWords {
    /// The words of iids `[category, name, location]` (0: none).
    pub(crate) fn new([category, name, location]: [u32; 3]) -> Self {
        let word = |key: &[u8], iid: u32| match iid {
            0 => (0, 0),
            iid => field_word(key, u64::from(iid)),
        };
        let (c, cl) = word(&[key::CATEGORY_IID], category);
        let (n, nl) = field_word(&[key::NAME_IID], u64::from(name));
        let (l, ll) = word(&key::LOCATION_IID, location);
        let flags = u128::from(key::FLAGS) | u128::from(SEQ_NEEDS_INCREMENTAL_STATE) << 8;
        EventWords {
            head: u64::from(key::TRACK_EVENT) | c << 16,
            name: n,
            tail: u128::from(l) | flags << (8 * ll),
            lens: [cl + 2, nl, ll + 2, ll],
        }
    }
}

/// An argument's `DebugAnnotation` up to its value, as the low bytes of a
/// word: its key, a length byte left blank, and its name's iid field; its
/// length.
pub(crate) fn arg_prefix(iid: u32) -> (u64, u8) {
    let (name, len) = field_word(&[key::ARG_NAME_IID], u64::from(iid));
    (u64::from(key::ANNOTATION) | name << 16, len + 2)
}

/// The most bytes of an argument beside a string's text: the annotation's
/// key and length (2), its name (6) and its value (11: an integer of ten
/// bytes, or a string's key and length of one).
const SMALL_ARG: usize = 19;

/// One `DebugAnnotation` field: its length, name iid and value.
#[inline(always)]
fn put_annotation(c: &mut Cursor<'_>, arg: &Arg<'_>, iid: u64) {
    let value = value_len(&arg.value).unwrap_or(0);
    c.uint(key::ANNOTATION, (uint_len(iid) + value) as u64);
    c.uint(key::ARG_NAME_IID, iid);
    put_value(c, &arg.value);
}

/// An argument's value field; false for a nested one, which the short path
/// does not write.
#[inline(always)]
fn put_value(c: &mut Cursor<'_>, value: &Value<'_>) -> bool {
    match *value {
        Value::Bool(v) => c.uint(key::ARG_BOOL, u64::from(v)),
        Value::Uint(v) => c.uint(key::ARG_UINT, v),
        Value::Int(v) => c.uint(key::ARG_INT, v as u64),
        Value::Double(v) => {
            c.byte(key::ARG_DOUBLE);
            c.bytes(&v.to_bits().to_le_bytes());
        }
        Value::Str(s) => {
            c.uint(key::ARG_STRING, s.len() as u64);
            c.bytes(s.as_bytes());
        }
        Value::Dict(_) | Value::Array(_) => return false,
    }
    true
}

// The masks need powers of two.
const _: () = assert!(WINDOW.is_power_of_two() && MAX_ARGS.is_power_of_two());

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::field;
    use crate::ids::Owner;
    use crate::keys::Keys;
    use crate::protos;
    use proptest::prelude::*;
    use prost::Message;

    const NAMES: [&str; 4] = [
        "query",
        "parse",
        "",
        "a name that is longer than the others",
    ];
    const CATEGORIES: [&str; 3] = ["", "info,db", "warn"];
    const FILES: [&str; 3] = ["", "src/db.rs", "src/main.rs"];
    const ARG_NAMES: [&str; 5] = ["rows", "table", "", "ok", "ratio"];

    /// A long string argument: over the short path's window when there are
    /// two of them, or one and some more.
    fn long() -> &'static str {
        static LONG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        LONG.get_or_init(|| "x".repeat(300))
    }

    #[derive(Clone, Debug)]
    enum V {
        Bool(bool),
        Int(i64),
        Uint(u64),
        Double(f64),
        Str(usize),
        Nested,
    }

    fn value() -> impl Strategy<Value = V> {
        prop_oneof![
            any::<bool>().prop_map(V::Bool),
            any::<i64>().prop_map(V::Int),
            any::<u64>().prop_map(V::Uint),
            any::<f64>().prop_map(V::Double),
            (0..4usize).prop_map(V::Str),
            Just(V::Nested),
        ]
    }

    #[derive(Clone, Debug)]
    struct Op {
        instant: bool,
        keyed: bool,
        name: usize,
        category: usize,
        file: usize,
        line: u32,
        args: Vec<(usize, V)>,
        /// Time forward (or, now and then, back).
        step: i64,
        track: Option<u64>,
        /// The sequence, in compact mode.
        seq: usize,
        /// A keyed event's key: registered without argument names (0),
        /// with its arguments' (1), or with them in another order (2).
        named: u8,
        /// Its name written inline, keyed or not.
        inline: bool,
    }

    fn op() -> impl Strategy<Value = Op> {
        (
            (
                any::<bool>(),
                any::<bool>(),
                0..4usize,
                0..3usize,
                0..3usize,
                0..3u32,
            ),
            prop::collection::vec((0..5usize, value()), 0..5),
            prop_oneof![9 => 0..1i64 << 40, 1 => -1000..0i64],
            prop::option::of(prop_oneof![Just(1u64), Just(u64::MAX), Just(1 << 40)]),
            (0..2usize, 0..3u8, any::<bool>()),
        )
            .prop_map(
                |(
                    (instant, keyed, name, category, file, line),
                    args,
                    step,
                    track,
                    (seq, named, inline),
                )| Op {
                    instant,
                    keyed,
                    name,
                    category,
                    file,
                    line,
                    args,
                    step,
                    track,
                    seq,
                    named,
                    inline,
                },
            )
    }

    /// Runs `ops` on an emitter, through `event` (`short`, which takes this
    /// path, or that of keys with argument names, where it can) or its general path alone; the bytes, the packet
    /// count, and how many took a short path and how many the keyed one.
    fn run(
        ops: &[Op],
        compact: bool,
        limits: (usize, usize),
        short: bool,
    ) -> (Vec<u8>, u64, usize, usize) {
        let mut enc = Emitter::new(compact, limits);
        // Room for every packet: the short path never grows the buffer.
        enc.out.reserve_exact(1 << 20);
        enc.keys = Keys::new(Owner(1));
        let mut seqs = [SeqState::new(1, None), SeqState::new(2, Some(77))];
        let nested = [Arg::new("inner", Value::Uint(1))];
        let strs = ["", "users", long(), "ready"];
        let mut ts = 1_000_000u64;
        let (mut shorts, mut keyed_shorts) = (0, 0);
        for op in ops {
            ts = ts.saturating_add_signed(op.step);
            let args: Vec<Arg<'_>> = op
                .args
                .iter()
                .map(|(n, v)| {
                    let value = match *v {
                        V::Bool(b) => Value::Bool(b),
                        V::Int(i) => Value::Int(i),
                        V::Uint(u) => Value::Uint(u),
                        V::Double(d) => Value::Double(d),
                        V::Str(s) => Value::Str(strs[s]),
                        V::Nested => Value::Dict(&nested),
                    };
                    Arg::new(ARG_NAMES[*n], value)
                })
                .collect();
            let (name, category, file) = (NAMES[op.name], CATEGORIES[op.category], FILES[op.file]);
            let mut names: Vec<&'static str> = op.args.iter().map(|(n, _)| ARG_NAMES[*n]).collect();
            match op.named {
                0 => names.clear(),
                1 => {}
                _ => names.reverse(),
            }
            let key = enc
                .keys
                .register_with_args(name, category, file, op.line, &names)
                .unwrap();
            let ev = match (op.keyed, op.inline) {
                (true, false) => Event::from_key(key),
                (true, true) => Event::from_key_named(key, name),
                (false, false) => Event::new(name).category(category).location(file, op.line),
                (false, true) => Event::new(name)
                    .category(category)
                    .location(file, op.line)
                    .inline_name(),
            }
            .args(&args);
            let kind = match op.instant {
                true => EventType::Instant,
                false => EventType::SliceBegin,
            };
            let track = op.track.map(|t| Field::uint(field::EVENT_TRACK_UUID, t));
            let seq = &mut seqs[if compact { op.seq } else { 0 }];
            let (before, packets) = (enc.out.len(), enc.packets);
            // Instants by their track's uuid, begins by its field.
            // Named inline, instants by uuid, begins by the event.
            let keyed = match (op.keyed, op.inline, op.instant, op.track) {
                (true, false, true, Some(uuid)) if short => {
                    enc.keyed_args_on(seq, ts, kind, uuid, key, &args)
                }
                (true, false, false, _) if short => {
                    enc.keyed_args_with(seq, ts, kind, track.as_ref(), key, &args)
                }
                (true, true, true, Some(uuid)) if short => {
                    enc.keyed_named_on(seq, ts, kind, uuid, key, name, &args)
                }
                (true, true, _, _) if short => {
                    enc.keyed_named_event(seq, ts, kind, track.as_ref(), key, &ev)
                }
                _ => false,
            };
            keyed_shorts += usize::from(keyed);
            let took = keyed || short && enc.annotated_known(seq, ts, kind, track.as_ref(), &ev);
            if took {
                shorts += 1;
                assert_eq!(enc.packets, packets + 1);
                assert!(enc.out.len() > before);
            } else {
                assert_eq!(
                    (enc.out.len(), enc.packets),
                    (before, packets),
                    "wrote and refused"
                );
                enc.event_general(seq, ts, kind, track.as_ref(), Some(&ev), None);
            }
        }
        (enc.out[..].to_vec(), enc.packets, shorts, keyed_shorts)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Any run of events, in either mode, with tables that fill (new
        /// generations) or not: the same bytes and packets either way.
        #[test]
        fn the_short_path_writes_what_the_general_one_does(
            ops in prop::collection::vec(op(), 1..60),
            compact in any::<bool>(),
            small in any::<bool>(),
        ) {
            let limits = if small { (12, 400) } else { (usize::MAX, usize::MAX) };
            let (general, packets, _, _) = run(&ops, compact, limits, false);
            let (short, short_packets, _, _) = run(&ops, compact, limits, true);
            prop_assert_eq!(&short, &general);
            prop_assert_eq!(short_packets, packets);
            let trace = protos::Trace::decode(&short[..]).unwrap();
            prop_assert_eq!(trace.packet.len() as u64, packets);
        }
    }

    /// The path is taken: an event repeated once its strings are defined,
    /// keyed or not, on either kind of sequence.
    #[test]
    fn repeated_events_with_arguments_take_the_short_path() {
        for compact in [false, true] {
            for keyed in [false, true] {
                let op = Op {
                    instant: keyed,
                    keyed,
                    name: 0,
                    category: 1,
                    file: 1,
                    line: 7,
                    args: vec![
                        (0, V::Uint(12)),
                        (1, V::Str(1)),
                        (3, V::Bool(true)),
                        (4, V::Double(0.5)),
                    ],
                    step: 100,
                    track: Some(1 << 40),
                    seq: 1,
                    named: 0,
                    inline: false,
                };
                let ops = vec![op; 10];
                let (bytes, _, shorts, _) = run(&ops, compact, (usize::MAX, usize::MAX), true);
                assert_eq!(shorts, 9, "compact {compact}, keyed {keyed}");
                assert_eq!(bytes, run(&ops, compact, (usize::MAX, usize::MAX), false).0);
            }
        }
    }

    /// Keys with their arguments' names take the keyed path once their
    /// first event has interned them, on either kind of sequence, instants
    /// and begins, through new generations of the tables; keys whose names
    /// are not the arguments' never do. The same bytes as the general path.
    #[test]
    fn keyed_arguments_take_their_path_and_write_what_the_general_path_does() {
        for compact in [false, true] {
            for named in [1, 2] {
                let ops: Vec<Op> = (0..40)
                    .map(|i| Op {
                        instant: i % 3 != 0,
                        keyed: true,
                        name: i % 2,
                        category: 1,
                        file: 2,
                        line: 7,
                        args: vec![
                            (0, V::Uint(1 << (i % 40))),
                            (1, V::Str(3)),
                            (4, V::Double(0.25)),
                        ],
                        step: 1 << 20,
                        track: Some(if i % 4 == 0 { 1 } else { 1 << 40 }),
                        seq: i / 2 % 2,
                        named,
                        inline: false,
                    })
                    .collect();
                for limits in [(usize::MAX, usize::MAX), (8, usize::MAX)] {
                    let (bytes, packets, _, keyed) = run(&ops, compact, limits, true);
                    let (general, general_packets, _, _) = run(&ops, compact, limits, false);
                    assert_eq!(bytes, general, "compact {compact}, named {named}");
                    assert_eq!(packets, general_packets);
                    let want = match (named, limits.0) {
                        // Each name's first event (on each sequence in
                        // compact mode) goes the general way.
                        (1, usize::MAX) => 40 - 2 - 2 * usize::from(compact),
                        (1, _) => keyed.max(1),
                        _ => 0,
                    };
                    assert_eq!(
                        keyed, want,
                        "compact {compact}, named {named}, limits {limits:?}"
                    );
                }
            }
        }
    }

    /// Keyed instants without arguments (a message and nothing else) take
    /// the keyed path once their key's first event set its words, through
    /// new generations; begins without arguments leave it to theirs.
    #[test]
    fn keyed_instants_without_arguments_take_the_keyed_path() {
        for compact in [false, true] {
            let ops: Vec<Op> = (0..30)
                .map(|i| Op {
                    instant: i % 5 != 4,
                    keyed: true,
                    name: i / 8 % 4,
                    category: 1,
                    file: 2,
                    line: 7,
                    args: vec![],
                    step: 1 << 20,
                    track: Some(1 << 40),
                    seq: 0,
                    named: 0,
                    inline: false,
                })
                .collect();
            for limits in [(usize::MAX, usize::MAX), (5, usize::MAX)] {
                let (bytes, _, _, keyed) = run(&ops, compact, limits, true);
                assert_eq!(bytes, run(&ops, compact, limits, false).0);
                // 24 instants of 4 names, each name's first the general
                // way (the last name's first event is a begin, which sets
                // no words: its next instant too).
                match limits.0 {
                    usize::MAX => assert_eq!(keyed, 20, "compact {compact}"),
                    _ => assert!(keyed > 0 && keyed < 20, "compact {compact}: {keyed}"),
                }
            }
        }
    }

    /// Events of keys named inline take the keyed path once a first event
    /// named inline (or not) set the key's cache in the generation, with
    /// no arguments or with the key's, on either kind of sequence, through
    /// new generations; the same bytes as the general path, which writes
    /// the name after the track and interns no name.
    #[test]
    fn inline_names_write_what_the_general_path_does() {
        for compact in [false, true] {
            for named in [0, 1] {
                let ops: Vec<Op> = (0..40)
                    .map(|i| Op {
                        instant: i % 3 != 0,
                        keyed: true,
                        name: i % 4,
                        category: 1 + i % 2,
                        file: i % 3,
                        line: 7,
                        args: match named {
                            0 => vec![],
                            _ => vec![(0, V::Uint(1 << (i % 40))), (1, V::Str(3))],
                        },
                        step: 1 << 20,
                        track: Some(if i % 4 == 0 { 1 } else { 1 << 40 }),
                        seq: i / 2 % 2,
                        named,
                        // The first event of each key interns its name.
                        inline: i >= 4,
                    })
                    .collect();
                for limits in [(usize::MAX, usize::MAX), (8, usize::MAX)] {
                    let (bytes, packets, _, keyed) = run(&ops, compact, limits, true);
                    let (general, general_packets, _, _) = run(&ops, compact, limits, false);
                    assert_eq!(bytes, general, "compact {compact}, named {named}");
                    assert_eq!(packets, general_packets);
                    if limits.0 == usize::MAX {
                        // Each of the 12 keys' first event named inline
                        // goes the general way and sets its cache, but
                        // for the keys whose event before (interned) set
                        // their arguments' iids: the 4 with arguments, or
                        // without, the 2 whose event was an instant.
                        let want = 36 - 12 + if named == 1 { 4 } else { 2 };
                        assert_eq!(keyed, want, "compact {compact}, named {named}");
                    } else {
                        assert!(keyed > 0, "compact {compact}, named {named}");
                    }
                    let trace = protos::Trace::decode(&bytes[..]).unwrap();
                    let inline = trace
                        .packet
                        .iter()
                        .filter_map(|p| p.track_event.as_ref())
                        .filter(|e| e.name.is_some())
                        .inspect(|e| assert_eq!(e.name_iid, None))
                        .count();
                    assert_eq!(inline, 36);
                }
            }
        }
    }
}
