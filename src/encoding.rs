//! Protobuf encoding straight into a byte buffer, protozero style.
//!
//! Every packet is appended to a caller-owned buffer ([`Out`]) already framed as a
//! `Trace.packet` field, so concatenated output is a `Trace`. Nested lengths
//! are back-filled: a one-byte placeholder is reserved and, in the rare case
//! the message reaches 128 bytes, the body is shifted to make room, so every
//! length is as short as protobuf allows. Fields are written in field-number
//! order, the canonical order every protobuf library re-encodes to.

use crate::out::Out;
use crate::track_options::{
    CounterOptions, CounterSample, CounterUnit, ProcessOptions, SiblingMerge, ThreadOptions,
    TrackOptions,
};

/// Wire types.
pub(crate) const VARINT: u32 = 0;
pub(crate) const I64: u32 = 1;
pub(crate) const LEN: u32 = 2;

/// Field numbers of the upstream schema (see `protos/`).
pub(crate) mod field {
    pub const TRACE_PACKET: u32 = 1;

    pub const PACKET_TIMESTAMP: u32 = 8;
    pub const PACKET_SEQUENCE_ID: u32 = 10;
    pub const PACKET_TRACK_EVENT: u32 = 11;
    pub const PACKET_INTERNED_DATA: u32 = 12;
    pub const PACKET_SEQUENCE_FLAGS: u32 = 13;
    pub const PACKET_TRACK_DESCRIPTOR: u32 = 60;
    pub const PACKET_TIMESTAMP_CLOCK_ID: u32 = 58;
    pub const PACKET_DEFAULTS: u32 = 59;
    pub const PACKET_FIRST_ON_SEQUENCE: u32 = 87;
    pub const PACKET_CLOCK_SNAPSHOT: u32 = 6;

    pub const SNAPSHOT_CLOCKS: u32 = 1;
    pub const SNAPSHOT_PRIMARY_TRACE_CLOCK: u32 = 2;
    pub const CLOCK_ID: u32 = 1;
    pub const CLOCK_TIMESTAMP: u32 = 2;
    pub const CLOCK_IS_INCREMENTAL: u32 = 3;

    pub const DEFAULTS_TRACK_EVENT: u32 = 11;
    pub const DEFAULTS_CLOCK_ID: u32 = 58;
    pub const EVENT_DEFAULTS_TRACK_UUID: u32 = 11;

    pub const EVENT_CATEGORY_IIDS: u32 = 3;
    pub const EVENT_TYPE: u32 = 9;
    pub const EVENT_NAME_IID: u32 = 10;
    /// The name written inline, in `name_iid`'s oneof (`name_field`).
    pub const EVENT_NAME: u32 = 23;
    pub const EVENT_TRACK_UUID: u32 = 11;
    pub const EVENT_SOURCE_LOCATION_IID: u32 = 34;

    pub const EVENT_DEBUG_ANNOTATIONS: u32 = 4;
    pub const EVENT_COUNTER_VALUE: u32 = 30;
    pub const EVENT_DOUBLE_COUNTER_VALUE: u32 = 44;
    pub const EVENT_FLOW_IDS: u32 = 47;
    pub const EVENT_TERMINATING_FLOW_IDS: u32 = 48;
    pub const EVENT_LOG_MESSAGE: u32 = 21;
    pub const EVENT_EXTRA_COUNTER_VALUES: u32 = 12;
    pub const EVENT_EXTRA_COUNTER_TRACK_UUIDS: u32 = 31;
    pub const EVENT_EXTRA_DOUBLE_COUNTER_TRACK_UUIDS: u32 = 45;
    pub const EVENT_EXTRA_DOUBLE_COUNTER_VALUES: u32 = 46;
    pub const EVENT_CORRELATION_ID: u32 = 52;
    pub const EVENT_CORRELATION_ID_STR_IID: u32 = 54;
    pub const EVENT_CALLSTACK_IID: u32 = 56;

    pub const LOG_SOURCE_LOCATION_IID: u32 = 1;
    pub const LOG_BODY_IID: u32 = 2;
    pub const LOG_PRIO: u32 = 3;

    pub const ARG_NAME_IID: u32 = 1;
    pub const ARG_BOOL: u32 = 2;
    pub const ARG_UINT: u32 = 3;
    pub const ARG_INT: u32 = 4;
    pub const ARG_DOUBLE: u32 = 5;
    pub const ARG_STRING: u32 = 6;
    pub const ARG_DICT_ENTRIES: u32 = 11;
    pub const ARG_ARRAY_VALUES: u32 = 12;

    pub const INTERNED_EVENT_CATEGORIES: u32 = 1;
    pub const INTERNED_EVENT_NAMES: u32 = 2;
    pub const INTERNED_DEBUG_ANNOTATION_NAMES: u32 = 3;
    pub const INTERNED_SOURCE_LOCATIONS: u32 = 4;
    pub const INTERNED_FUNCTION_NAMES: u32 = 5;
    pub const INTERNED_FRAMES: u32 = 6;
    pub const INTERNED_CALLSTACKS: u32 = 7;
    pub const INTERNED_SOURCE_PATHS: u32 = 18;
    pub const INTERNED_LOG_MESSAGE_BODY: u32 = 20;
    pub const INTERNED_CORRELATION_ID_STR: u32 = 43;
    pub const INTERNED_IID: u32 = 1;
    pub const INTERNED_NAME: u32 = 2;
    pub const LOCATION_FILE_NAME: u32 = 2;
    pub const LOCATION_LINE_NUMBER: u32 = 4;
    pub const FRAME_FUNCTION_NAME_ID: u32 = 2;
    pub const FRAME_SOURCE_PATH_IID: u32 = 5;
    pub const FRAME_LINE_NUMBER: u32 = 6;
    pub const CALLSTACK_FRAME_IDS: u32 = 2;

    pub const TRACK_UUID: u32 = 1;
    pub const TRACK_NAME: u32 = 2;
    pub const TRACK_PROCESS: u32 = 3;
    pub const TRACK_THREAD: u32 = 4;
    pub const TRACK_PARENT_UUID: u32 = 5;
    pub const TRACK_COUNTER: u32 = 8;
    pub const TRACK_CHILD_ORDERING: u32 = 11;
    pub const TRACK_SIBLING_ORDER_RANK: u32 = 12;
    pub const TRACK_DESCRIPTION: u32 = 14;
    pub const TRACK_SIBLING_MERGE_BEHAVIOR: u32 = 15;
    pub const TRACK_SIBLING_MERGE_KEY: u32 = 16;
    pub const TRACK_PROCESS_ORDERING: u32 = 19;
    pub const TRACK_THREAD_ORDERING: u32 = 20;

    pub const COUNTER_UNIT: u32 = 3;
    pub const COUNTER_UNIT_MULTIPLIER: u32 = 4;
    pub const COUNTER_IS_INCREMENTAL: u32 = 5;
    pub const COUNTER_UNIT_NAME: u32 = 6;
    pub const COUNTER_Y_AXIS_SHARE_KEY: u32 = 7;

    pub const PROCESS_PID: u32 = 1;
    pub const PROCESS_CMDLINE: u32 = 2;
    pub const PROCESS_NAME: u32 = 6;
    pub const PROCESS_LABELS: u32 = 8;

    pub const THREAD_PID: u32 = 1;
    pub const THREAD_TID: u32 = 2;
    pub const THREAD_NAME: u32 = 5;
}

/// Bytes known at compile time, at most eight, in the low bytes of a word
/// (little-endian, the order they are written in): keys and the fixed
/// fields around them, for the encoders that assemble packets from words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bytes {
    word: u64,
    len: usize,
}

impl Bytes {
    /// A field's key: the varint of `field << 3 | wire`. Keys of the fields
    /// this crate writes take one or two bytes.
    const fn key(field: u32, wire: u32) -> Bytes {
        let mut v = (field << 3 | wire) as u64;
        let mut word = 0;
        let mut len = 0;
        while v >= 0x80 {
            word |= (v & 0x7f | 0x80) << (8 * len);
            v >>= 7;
            len += 1;
        }
        Bytes {
            word: word | v << (8 * len),
            len: len + 1,
        }
    }

    /// The key's bytes, at compile time; `N` must be its length.
    const fn array<const N: usize>(self) -> [u8; N] {
        assert!(self.len == N);
        let mut out = [0; N];
        let mut i = 0;
        while i < N {
            out[i] = (self.word >> (8 * i)) as u8;
            i += 1;
        }
        out
    }

    /// One byte: a value below 128, or a length to be filled in later.
    const fn byte(v: u8) -> Bytes {
        Bytes {
            word: v as u64,
            len: 1,
        }
    }

    /// These bytes, then `next`'s.
    const fn then(self, next: Bytes) -> Bytes {
        assert!(self.len + next.len <= 8);
        Bytes {
            word: self.word | next.word << (8 * self.len),
            len: self.len + next.len,
        }
    }

    #[inline(always)]
    fn byte_at(self, i: usize) -> u8 {
        (self.word >> (8 * i)) as u8
    }
}

/// The keys and fixed fields of the assembled encoders, each derived from
/// its field number in [`field`].
/// A field's key (`field << 3 | wire` as a varint) as the `N` bytes it
/// takes, at compile time: for encoders that write keys as constants (a
/// wrong `N` fails the build).
pub(crate) const fn key_bytes<const N: usize>(field: u32, wire: u32) -> [u8; N] {
    Bytes::key(field, wire).array()
}

mod key {
    use super::{field, Bytes, EventType, I64, LEN, VARINT};

    pub const PACKET: Bytes = Bytes::key(field::TRACE_PACKET, LEN);
    pub const TIMESTAMP: Bytes = Bytes::key(field::PACKET_TIMESTAMP, VARINT);
    pub const TRACK_EVENT: Bytes = Bytes::key(field::PACKET_TRACK_EVENT, LEN);
    pub const CATEGORY_IID: Bytes = Bytes::key(field::EVENT_CATEGORY_IIDS, VARINT);
    pub const TYPE: Bytes = Bytes::key(field::EVENT_TYPE, VARINT);
    pub const NAME_IID: Bytes = Bytes::key(field::EVENT_NAME_IID, VARINT);
    pub const COUNTER_VALUE: Bytes = Bytes::key(field::EVENT_COUNTER_VALUE, VARINT);
    pub const LOCATION_IID: Bytes = Bytes::key(field::EVENT_SOURCE_LOCATION_IID, VARINT);
    pub const DOUBLE_COUNTER_VALUE: Bytes = Bytes::key(field::EVENT_DOUBLE_COUNTER_VALUE, I64);
    pub const SEQUENCE_FLAGS: Bytes = Bytes::key(field::PACKET_SEQUENCE_FLAGS, VARINT);
    pub const CLOCK_ID: Bytes = Bytes::key(field::PACKET_TIMESTAMP_CLOCK_ID, VARINT);
    pub const FIRST_ON_SEQUENCE: Bytes = Bytes::key(field::PACKET_FIRST_ON_SEQUENCE, VARINT);

    /// A length placeholder, filled in once the message is written.
    const LENGTH: Bytes = Bytes::byte(0);
    /// `Trace.packet`, its length, and the timestamp's key: how every
    /// packet of the assembled encoders starts.
    pub const PACKET_HEAD: Bytes = PACKET.then(LENGTH).then(TIMESTAMP);
    /// `TracePacket.track_event` and its length.
    pub const EVENT_HEAD: Bytes = TRACK_EVENT.then(LENGTH);
    pub const TYPE_BEGIN: Bytes = TYPE.then(Bytes::byte(EventType::SliceBegin as u8));
    pub const TYPE_END: Bytes = TYPE.then(Bytes::byte(EventType::SliceEnd as u8));
    /// `TracePacket.interned_data` and its length.
    pub const INTERNED_HEAD: Bytes = Bytes::key(field::PACKET_INTERNED_DATA, LEN).then(LENGTH);
    /// `InternedData`'s entries and their lengths.
    pub const CATEGORY_ENTRY: Bytes =
        Bytes::key(field::INTERNED_EVENT_CATEGORIES, LEN).then(LENGTH);
    pub const NAME_ENTRY: Bytes = Bytes::key(field::INTERNED_EVENT_NAMES, LEN).then(LENGTH);
    pub const LOCATION_ENTRY: Bytes =
        Bytes::key(field::INTERNED_SOURCE_LOCATIONS, LEN).then(LENGTH);
    /// An entry's iid, and its string's key (a name's or a file's).
    pub const ENTRY_IID: Bytes = Bytes::key(field::INTERNED_IID, VARINT);
    pub const ENTRY_NAME: Bytes = Bytes::key(field::INTERNED_NAME, LEN);
    pub const LINE: Bytes = Bytes::key(field::LOCATION_LINE_NUMBER, VARINT);
}

/// `TracePacket.sequence_flags` bits.
pub(crate) const SEQ_INCREMENTAL_STATE_CLEARED: u32 = 1;
pub(crate) const SEQ_NEEDS_INCREMENTAL_STATE: u32 = 2;

/// `TrackEvent.Type` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum EventType {
    SliceBegin = 1,
    SliceEnd = 2,
    Instant = 3,
    Counter = 4,
}

/// Bytes of `v` as a varint.
#[inline]
pub(crate) const fn varint_len(v: u64) -> usize {
    // 1 byte per started group of 7 significant bits, at least one.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[inline]
pub(crate) fn put_varint(buf: &mut Out, mut v: u64) {
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

#[inline]
fn put_key(buf: &mut Out, field: u32, wire: u32) {
    debug_assert!((1..1 << 29).contains(&field));
    put_varint(buf, u64::from(field << 3 | wire));
}

#[inline]
pub(crate) fn put_uint(buf: &mut Out, field: u32, v: u64) {
    put_key(buf, field, VARINT);
    put_varint(buf, v);
}

/// `int32`/`int64`: negative values take ten bytes, as protobuf defines.
#[inline]
pub(crate) fn put_int(buf: &mut Out, field: u32, v: i64) {
    put_uint(buf, field, v as u64);
}

#[inline]
pub(crate) fn put_bool(buf: &mut Out, field: u32, v: bool) {
    put_uint(buf, field, u64::from(v));
}

#[inline]
pub(crate) fn put_fixed64(buf: &mut Out, field: u32, v: u64) {
    put_key(buf, field, I64);
    buf.extend_from_slice(&v.to_le_bytes());
}

#[inline]
pub(crate) fn put_double(buf: &mut Out, field: u32, v: f64) {
    put_fixed64(buf, field, v.to_bits());
}

#[inline(always)]
pub(crate) fn put_str(buf: &mut Out, field: u32, s: &str) {
    put_key(buf, field, LEN);
    put_varint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// A length-delimited field whose length is back-filled by [`close`].
#[must_use]
pub(crate) struct Nested(usize);

#[inline]
pub(crate) fn open(buf: &mut Out, field: u32) -> Nested {
    put_key(buf, field, LEN);
    buf.push(0);
    Nested(buf.len() - 1)
}

#[inline]
pub(crate) fn close(buf: &mut Out, nested: Nested) {
    let at = nested.0;
    let len = buf.len() - at - 1;
    match buf.written_mut(at) {
        Some(b) if len < 0x80 => *b = len as u8,
        _ => widen(buf, at, len),
    }
}

/// Rare: widens the placeholder at `at` to the varint of `len`, the length
/// of what follows it.
#[cold]
fn widen(buf: &mut Out, at: usize, len: usize) {
    let width = varint_len(len as u64);
    let end = buf.len();
    buf.extend_zeros(width - 1);
    buf.copy_within(at + 1..end, at + width);
    let mut v = len as u64;
    for b in &mut buf[at..at + width] {
        *b = v as u8 | 0x80;
        v >>= 7;
    }
    buf[at + width - 1] &= 0x7f;
}

/// A varint field encoded once (key and value), for fields repeated in
/// many packets: a packet's sequence id, an event's track uuid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    bytes: [u8; FIELD_CAP],
    len: u8,
}

pub(crate) const FIELD_CAP: usize = 16;

impl Field {
    #[inline]
    pub(crate) fn uint(field: u32, v: u64) -> Self {
        // A key (field numbers < 2^29: at most 5 bytes) and a value (at
        // most 10): 15 bytes.
        let mut bytes = [0; FIELD_CAP];
        let key = varint_into(&mut bytes, u64::from(field << 3 | VARINT));
        let len = key + varint_into(&mut bytes[key & 7..], v);
        Field {
            bytes,
            len: len as u8,
        }
    }

    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// The field's bytes and the padding after them: [`Field::len`] of
    /// them are the field.
    #[inline(always)]
    pub(crate) fn padded(&self) -> &[u8; FIELD_CAP] {
        &self.bytes
    }

    /// Appends the field. The whole fixed-size array is copied (a few
    /// register moves instead of a call to memcpy) and the excess cut off.
    #[inline(always)]
    fn put(&self, buf: &mut Out) {
        if let Some(w) = buf.window::<FIELD_CAP>() {
            *w = self.bytes;
            buf.commit(self.len());
        }
    }
}

/// What a packet carries besides its payload.
#[derive(Clone, Copy)]
pub(crate) struct PacketHeader {
    /// `trusted_packet_sequence_id`, encoded.
    pub sequence: Field,
    pub flags: u32,
    pub first_on_sequence: bool,
}

/// Strings interned for the first time by the packet that carries them.
#[derive(Clone, Copy, Default)]
pub(crate) struct NewInterned<'a> {
    pub category: Option<(u64, &'a str)>,
    pub name: Option<(u64, &'a str)>,
    pub location: Option<(u64, &'a str, u32)>,
    /// Argument names: (iid, name).
    pub arg_names: &'a [(u64, &'a str)],
    /// What a callstack defines, written between source locations and
    /// `more`.
    pub stack: NewCallstack<'a>,
    /// Entries of the `InternedData` fields after source paths, each an
    /// iid (field 1) and a string (field 2): (field, iid, string), in
    /// field-number order.
    pub more: &'a [(u32, u64, &'a str)],
}

/// The callstack entries a packet defines: function names and source paths
/// (iid, string), frames (iid, function iid, path iid, line; 0 for none),
/// and the callstack itself (iid, frame iids).
#[derive(Clone, Copy, Default)]
pub(crate) struct NewCallstack<'a> {
    pub functions: &'a [(u64, &'a str)],
    pub paths: &'a [(u64, &'a str)],
    pub frames: &'a [(u64, u64, u64, u32)],
    pub stack: Option<(u64, &'a [u64])>,
}

impl NewCallstack<'_> {
    fn is_empty(&self) -> bool {
        self.functions.is_empty()
            && self.paths.is_empty()
            && self.frames.is_empty()
            && self.stack.is_none()
    }
}

impl NewInterned<'_> {
    /// Whether it defines at most its event's category, name and location.
    #[inline]
    pub(crate) fn names_only(&self) -> bool {
        self.arg_names.is_empty() && self.stack.is_empty() && self.more.is_empty()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.category.is_none()
            && self.name.is_none()
            && self.location.is_none()
            && self.arg_names.is_empty()
            && self.stack.is_empty()
            && self.more.is_empty()
    }
}

/// The fields of a `TrackEvent` packet; iids 0 are omitted.
#[derive(Clone, Copy)]
pub(crate) struct EventFields<'a> {
    /// The packet timestamp: absolute, or a delta on an incremental clock.
    pub ts: u64,
    /// `timestamp_clock_id`, when the sequence default does not apply (0: none).
    pub clock_id: u32,
    pub kind: EventType,
    /// `track_uuid`, encoded; none when the sequence default names the track.
    pub track: Option<&'a Field>,
    pub category_iid: u64,
    pub name_iid: u64,
    pub location_iid: u64,
    /// A counter event's value.
    pub counter: Option<CounterSample>,
}

/// Appends a framed packet holding a counter sample or an instant and no
/// interned data: their short encoder, pinned to the general one by
/// `small_packets_equal_back_filled_ones`.
///
/// Such a packet is at most 89 bytes, its event at most 62, so both lengths
/// fit one byte: they are left as placeholders and filled in at the end,
/// with nothing computed up front. The packet is written in place, in a
/// window at the end of `buf` (see [`Out::window`]), with a cursor the compiler
/// keeps in a register and indices masked to the window, which it sees are
/// in bounds: no checks, no panics, no copy.
#[inline(always)]
fn small_event_packet(buf: &mut Out, header: PacketHeader, ev: &EventFields<'_>) {
    const MASK: usize = 127;
    let Some(b) = buf.window::<{ MASK + 1 + FIELD_CAP }>() else {
        return;
    };
    let mut n = 0usize;
    macro_rules! byte {
        ($v:expr) => {{
            b[n & MASK] = $v;
            n += 1;
        }};
    }
    macro_rules! varint {
        ($v:expr) => {
            varint!($v, 2)
        };
        // Values below 2^(7 × $short) take the short form (`short_varint`).
        ($v:expr, $short:literal) => {{
            let v: u64 = $v;
            if v < 1 << (7 * $short) {
                let (bytes, len) = short_varint::<$short>(v);
                for (i, x) in bytes.into_iter().enumerate() {
                    b[(n + i) & MASK] = x;
                }
                n += len;
            } else {
                let at = n & MASK;
                n += varint_into(&mut b[at..at + 10], v);
            }
        }};
    }
    macro_rules! field {
        ($f:expr) => {{
            let at = n & MASK;
            b[at..at + FIELD_CAP].copy_from_slice(&$f.bytes);
            n += $f.len();
        }};
    }
    // A constant's bytes; the loop unrolls, its length being known.
    macro_rules! bytes {
        ($k:expr) => {{
            const K: Bytes = $k;
            for i in 0..K.len {
                byte!(K.byte_at(i));
            }
        }};
    }

    bytes!(key::PACKET_HEAD); // the packet's length is filled in below
    varint!(ev.ts, 3); // deltas on a busy trace's threads: often 2^14 ns and more
    field!(header.sequence);
    bytes!(key::EVENT_HEAD);
    let event_start = n;
    if ev.category_iid != 0 {
        bytes!(key::CATEGORY_IID);
        varint!(ev.category_iid);
    }
    bytes!(key::TYPE);
    byte!(ev.kind as u8);
    if ev.name_iid != 0 {
        bytes!(key::NAME_IID);
        varint!(ev.name_iid);
    }
    if let Some(track) = ev.track {
        field!(track);
    }
    if let Some(CounterSample::Int(v)) = ev.counter {
        bytes!(key::COUNTER_VALUE);
        varint!(v as u64);
    }
    if ev.location_iid != 0 {
        bytes!(key::LOCATION_IID);
        varint!(ev.location_iid);
    }
    if let Some(CounterSample::Double(v)) = ev.counter {
        bytes!(key::DOUBLE_COUNTER_VALUE);
        for x in v.to_le_bytes() {
            byte!(x);
        }
    }
    b[(event_start - 1) & MASK] = (n - event_start) as u8;
    if header.flags != 0 {
        bytes!(key::SEQUENCE_FLAGS);
        byte!(header.flags as u8);
    }
    if ev.clock_id != 0 {
        bytes!(key::CLOCK_ID);
        varint!(u64::from(ev.clock_id));
    }
    if header.first_on_sequence {
        bytes!(key::FIRST_ON_SEQUENCE);
        byte!(1);
    }
    debug_assert!(n - 2 < 0x80 && n - event_start < 0x80 && header.flags < 0x80);
    b[1] = (n - 2) as u8;
    buf.commit(n & MASK);
}

/// `v`, below 2^(7 × `N`), as a varint: `N` bytes (those not needed are
/// written anyway, to be cut off) and its length. Most varints of a packet
/// are that small (iids, time deltas), and their length changes from event
/// to event (iids about 127, deltas about 2^14), so it is computed without
/// a branch, which would mispredict.
#[inline(always)]
fn short_varint<const N: usize>(v: u64) -> ([u8; N], usize) {
    let mut bytes = [0; N];
    let mut len = 1;
    for (i, byte) in bytes.iter_mut().enumerate() {
        let more = i + 1 < N && v >> (7 * (i + 1)) != 0;
        *byte = (v >> (7 * i)) as u8 & 0x7f | u8::from(more) << 7;
        len += usize::from(more);
    }
    (bytes, len)
}

/// `s` into `b` at `at`, for the short encoders: up to 16 bytes (names,
/// short values) as two overlapping words or halves, no call to memcpy,
/// into the [`FIELD_CAP`] bytes from `at` (which the caller's window has
/// room for, past what `s` takes); longer strings copied.
#[inline(always)]
pub(crate) fn put_text(b: &mut [u8], at: usize, s: &[u8]) {
    let len = s.len();
    let w = &mut b[at..at + FIELD_CAP];
    if (8..=16).contains(&len) {
        // Both words read before either is written: two loads, two stores
        // (written one after the other, the compiler calls memcpy for the
        // second).
        let (head, tail) = (chunk::<8>(s.first_chunk()), chunk::<8>(s.last_chunk()));
        put_chunk(w, 0, head);
        put_chunk(w, len - 8, tail);
    } else if (4..8).contains(&len) {
        let (head, tail) = (chunk::<4>(s.first_chunk()), chunk::<4>(s.last_chunk()));
        put_chunk(w, 0, head);
        put_chunk(w, len - 4, tail);
    } else if len < 4 {
        for (d, &c) in w.iter_mut().zip(s) {
            *d = c;
        }
    } else if let Some(dst) = b.get_mut(at..at + len) {
        dst.copy_from_slice(s);
    }
}

/// `N` bytes (if any) by value.
#[inline(always)]
fn chunk<const N: usize>(bytes: Option<&[u8; N]>) -> [u8; N] {
    bytes.copied().unwrap_or([0; N])
}

/// `bytes` into `b` at `at`: a copy of a size known at compile time.
#[inline(always)]
fn put_chunk<const N: usize>(b: &mut [u8], at: usize, bytes: [u8; N]) {
    if let Some(dst) = b.get_mut(at..at + N) {
        dst.copy_from_slice(&bytes);
    }
}

/// `v` (below 2^56) as a varint in the low bytes of a word, and its
/// length: its 7-bit groups spread to bytes in three steps (halves,
/// quarters, eighths), continuation bits on all but the last byte. No loop,
/// no branch.
#[inline(always)]
pub(crate) fn varint_word(v: u64) -> (u64, usize) {
    debug_assert!(v < 1 << 56);
    let x = (v & 0x0fff_ffff) | (v >> 28) << 32;
    let x = (x & 0x0000_3fff_0000_3fff) | (x & 0x0fff_c000_0fff_c000) << 2;
    let x = (x & 0x007f_007f_007f_007f) | (x & 0x3f80_3f80_3f80_3f80) << 1;
    // The highest byte holding a bit of `v` is the last: its index from the
    // spread word's highest bit, and the continuation bits of the bytes
    // before it from a table (shifts by a variable amount tie up a register
    // the caller wants).
    let last = ((63 - (x | 1).leading_zeros()) >> 3) as usize & 7;
    (x | CONTINUED[last], last + 1)
}

/// The continuation bits of a varint whose last byte is byte `i`.
const CONTINUED: [u64; 8] = {
    let mut t = [0; 8];
    let mut i = 1;
    while i < 8 {
        t[i] = t[i - 1] | 0x80 << (8 * (i - 1));
        i += 1;
    }
    t
};

/// The varint of a time's groups above its low four (bits 28 and up), kept
/// per sequence from the last time written: times within a quarter second
/// of each other (2^28 ns) share them, so the next time's varint is its
/// low four groups spread into bytes, then these. Cheaper than
/// [`varint_word`], which must find the varint's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimeHigh {
    /// `v >> 28` of the times it serves; `u64::MAX` (no time's) for none.
    /// Times below 2^28 have no high groups and never use it.
    high: u64,
    /// The varint's bytes from the fifth on, in place in a word, with the
    /// continuation bits of the four bytes before them.
    word: u64,
    len: usize,
}

impl TimeHigh {
    pub(crate) const NONE: TimeHigh = TimeHigh {
        high: u64::MAX,
        word: 0,
        len: 0,
    };

    /// `v` as [`varint_word`] gives it; none from 2^56 on (its varint is
    /// longer than a word). The common case, the kept high groups, proves
    /// `v` below 2^56 by itself (they are kept only of such times), so it
    /// needs no test of its own.
    #[inline(always)]
    pub(crate) fn varint_word(&mut self, v: u64) -> Option<(u64, usize)> {
        if v >> 28 != self.high {
            // Small times (deltas on an incremental clock) have no high
            // groups: the plain varint, inline.
            return match v >> 28 {
                0 => Some(varint_word(v)),
                _ => self.refill(v),
            };
        }
        let x = (v & 0x3fff) | (v & 0x0fff_c000) << 2;
        let x = (x & 0x007f_007f) | (x & 0x3f80_3f80) << 1;
        Some((x | self.word, self.len))
    }

    /// The varint of a time whose high groups are not the kept ones, kept
    /// in their place; none from 2^56 on, the kept ones left.
    #[cold]
    #[inline(never)]
    fn refill(&mut self, v: u64) -> Option<(u64, usize)> {
        if v >= 1 << 56 {
            return None;
        }
        let (word, len) = varint_word(v);
        *self = TimeHigh {
            high: v >> 28,
            word: word & !0x7f7f_7f7f,
            len,
        };
        Some((word, len))
    }
}

/// Writes `v` as a varint at the start of `dst` (ten bytes), leaving what
/// follows its length to be overwritten or cut off; its length. Below 2^56
/// (every time delta, iid and absolute time of this century) it is one word
/// (`varint_word`); larger values write ten bytes, the first eight as one
/// word, the last one kept only for the top bit: no loop on the length.
#[inline(always)]
pub(crate) fn varint_into(dst: &mut [u8], v: u64) -> usize {
    if v < 1 << 56 {
        let (w, len) = varint_word(v);
        dst[..8].copy_from_slice(&w.to_le_bytes());
        return len;
    }
    // Eight groups, all continued, then the top eight bits in one byte or
    // two (hashes, such as most track uuids, take ten).
    let (w, _) = varint_word(v & ((1 << 56) - 1));
    dst[..8].copy_from_slice(&(w | 0x8080_8080_8080_8080).to_le_bytes());
    let top = v >> 56;
    let wide = top >> 7;
    dst[8] = (top & 0x7f | wide << 7) as u8;
    dst[9] = wide as u8;
    9 + wide as usize
}

/// An iid below 2^14 as the varint `begin_packet` writes, in the low two
/// bytes (the second 0 for iids below 128); [`NO_CODE`] for any other.
/// Computed once, when a string is interned, and kept beside it.
pub(crate) const fn iid_code(iid: u32) -> u32 {
    if iid >= 1 << 14 {
        return NO_CODE;
    }
    let more = (iid >= 0x80) as u32;
    (iid & 0x7f) | more << 7 | (iid >> 7) << 8
}

/// The code of an iid `begin_packet` cannot take.
pub(crate) const NO_CODE: u32 = u32::MAX;

/// A field of an iid (its key, and the iid as its [`iid_code`]): the field
/// in the low bytes of a word and its length, or nothing for code 0 (no iid).
#[inline(always)]
fn iid_field(key: Bytes, code: u32) -> (u64, usize) {
    let code = u64::from(code);
    if code == 0 {
        (0, 0)
    } else {
        // The varint is two bytes if the first has its continuation bit.
        (
            key.word | code << (8 * key.len),
            key.len + 1 + (code >> 7 & 1) as usize,
        )
    }
}

/// The fields of a slice-begin packet that follow from its iids and
/// flags alone, assembled: what [`begin_packet_fields`] stores around the
/// timestamp, sequence and track. Built once per event key and kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BeginFields {
    /// The event's key and length byte (filled in per packet), its
    /// category, its type and its name (at most 10 bytes), stored with one
    /// copy.
    head: [u8; 16],
    head_len: u8,
    /// The location's field, the event's last, then the packet's flags.
    tail: u64,
    tail_len: u8,
    location_len: u8,
}

impl BeginFields {
    /// Fields of no begin: a placeholder that nothing writes.
    pub(crate) const EMPTY: BeginFields = BeginFields {
        head: [0; 16],
        head_len: 0,
        tail: 0,
        tail_len: 0,
        location_len: 0,
    };

    /// The fields of a begin with the category, name and location iids as
    /// their [`iid_code`]s (0: none), and `flags`; none for codes
    /// `begin_packet` cannot take.
    #[inline(always)]
    pub(crate) fn new([category, name, location]: [u32; 3], flags: u8) -> Option<Self> {
        if (category | name | location) > 0xffff {
            return None;
        }
        const HEAD: Bytes = key::EVENT_HEAD;
        const TYPE: Bytes = key::TYPE_BEGIN;
        const FLAGS: Bytes = key::SEQUENCE_FLAGS;
        let (c, c_len) = iid_field(key::CATEGORY_IID, category);
        let (v, v_len) = iid_field(key::NAME_IID, name);
        let (l, l_len) = iid_field(key::LOCATION_IID, location);
        let head = HEAD.word | c << (8 * HEAD.len) | TYPE.word << (8 * (HEAD.len + c_len));
        let head_len = HEAD.len + c_len + TYPE.len;
        let head = u128::from(head) | u128::from(v) << (8 * head_len);
        Some(BeginFields {
            head: head.to_le_bytes(),
            head_len: (head_len + v_len) as u8,
            tail: l | (FLAGS.word | u64::from(flags) << (8 * FLAGS.len)) << (8 * l_len),
            tail_len: (l_len + FLAGS.len + 1) as u8,
            location_len: l_len as u8,
        })
    }
}

/// Appends a slice-begin packet (no interned data, flags and no clock
/// named): the same bytes as [`small_event_packet`], assembled as a few
/// words and stored whole, where that writes them one by one. Takes the
/// category, name and location iids as their [`iid_code`]s (0: none) and a
/// time below 2^56; returns false, writing nothing, for any other, or if
/// the buffer has not the room (see [`Out::window_in_room`]).
#[inline(always)]
pub(crate) fn begin_packet(
    buf: &mut Out,
    ts: u64,
    high: &mut TimeHigh,
    sequence: &Field,
    track: Option<&Field>,
    [category, name, location]: [u32; 3],
    flags: u8,
) -> bool {
    if (category | name | location) > 0xffff {
        return false;
    }
    const MASK: usize = 63;
    let Some(b) = buf.window_in_room::<{ MASK + 1 + FIELD_CAP }>() else {
        return false;
    };
    let Some((t, t_len)) = high.varint_word(ts) else {
        return false;
    };
    let mut n = 0usize;
    macro_rules! word {
        ($w:expr, $len:expr) => {{
            let at = n & MASK;
            b[at..at + 8].copy_from_slice(&u64::to_le_bytes($w));
            n += $len;
        }};
    }
    macro_rules! field {
        ($f:expr) => {{
            let at = n & MASK;
            b[at..at + FIELD_CAP].copy_from_slice(&$f.bytes);
            n += $f.len();
        }};
    }
    // The packet's length is filled in below.
    word!(key::PACKET_HEAD.word, key::PACKET_HEAD.len);
    word!(t, t_len);
    field!(sequence);
    // The event (its length filled in below), its category and its type.
    let event = n;
    let (c, c_len) = iid_field(key::CATEGORY_IID, category);
    const HEAD: Bytes = key::EVENT_HEAD;
    const TYPE: Bytes = key::TYPE_BEGIN;
    word!(
        HEAD.word | c << (8 * HEAD.len) | TYPE.word << (8 * (HEAD.len + c_len)),
        HEAD.len + c_len + TYPE.len
    );
    let (v, v_len) = iid_field(key::NAME_IID, name);
    word!(v, v_len);
    if let Some(track) = track {
        field!(track);
    }
    // The location, the event's last field; then the packet's flags.
    let (l, l_len) = iid_field(key::LOCATION_IID, location);
    b[(event + HEAD.len - 1) & MASK] = (n + l_len - event - HEAD.len) as u8;
    const FLAGS: Bytes = key::SEQUENCE_FLAGS;
    word!(
        l | (FLAGS.word | u64::from(flags) << (8 * FLAGS.len)) << (8 * l_len),
        l_len + FLAGS.len + 1
    );
    b[1] = (n - 2) as u8;
    buf.commit(n & MASK);
    true
}

/// [`begin_packet`] with its iids' and flags' fields assembled already
/// (kept per event key); the same bytes (tested), a copy of its own so that
/// the string form's begin keeps the code it was tuned with.
#[inline(always)]
pub(crate) fn begin_packet_fields(
    buf: &mut Out,
    ts: u64,
    high: &mut TimeHigh,
    sequence: &Field,
    track: Option<&Field>,
    fields: &BeginFields,
) -> bool {
    let Some((t, t_len)) = high.varint_word(ts) else {
        return false;
    };
    const MASK: usize = 63;
    let Some(b) = buf.window_in_room::<{ MASK + 1 + FIELD_CAP }>() else {
        return false;
    };
    let mut n = 0usize;
    macro_rules! word {
        ($w:expr, $len:expr) => {{
            let at = n & MASK;
            b[at..at + 8].copy_from_slice(&u64::to_le_bytes($w));
            n += $len;
        }};
    }
    macro_rules! field {
        ($f:expr) => {{
            let at = n & MASK;
            b[at..at + FIELD_CAP].copy_from_slice(&$f.bytes);
            n += $f.len();
        }};
    }
    // The packet's length is filled in below.
    word!(key::PACKET_HEAD.word, key::PACKET_HEAD.len);
    word!(t, t_len);
    field!(sequence);
    // The event (its length filled in below), its category and its type,
    // its name, its track.
    let event = n;
    let at = n & MASK;
    b[at..at + 16].copy_from_slice(&fields.head);
    n += usize::from(fields.head_len);
    if let Some(track) = track {
        field!(track);
    }
    // The location, the event's last field; then the packet's flags.
    const HEAD_LEN: usize = key::EVENT_HEAD.len;
    let event_len = n + usize::from(fields.location_len) - event - HEAD_LEN;
    b[(event + HEAD_LEN - 1) & MASK] = event_len as u8;
    word!(fields.tail, usize::from(fields.tail_len));
    b[1] = (n - 2) as u8;
    buf.commit(n & MASK);
    true
}

/// Everything of a packet after its timestamp, for packets that differ
/// only in it: a track's slice ends (the sequence id, the event's type and
/// track uuid, the sequence flags), encoded once per track, and a track's
/// begins of one event key, kept as first written
/// ([`PacketTail::of_packet`]). Such a packet is then a timestamp and one
/// fixed-size copy ([`tail_packet`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PacketTail {
    bytes: [u8; TEMPLATE_CAP],
    len: u8,
}

/// An end's tail is at most 23 bytes: a sequence id field (at most 6),
/// the event's key, length and type (4), its track uuid field (at most 11)
/// and the flags (2). A begin's adds its category, name and location
/// fields (up to 10 bytes with iids below 2^14): begins whose tail is
/// longer keep none.
const TEMPLATE_CAP: usize = 32;

impl PacketTail {
    /// No packet's tail: a placeholder that nothing writes.
    pub(crate) const EMPTY: PacketTail = PacketTail {
        bytes: [0; TEMPLATE_CAP],
        len: 0,
    };

    /// The tail of `packet`, a whole packet as [`begin_packet`] or
    /// [`begin_packet_fields`] wrote it (framed, its timestamp first): what
    /// follows the time's varint; none if that is longer than a tail holds.
    pub(crate) fn of_packet(packet: &[u8]) -> Option<Self> {
        const HEAD: Bytes = key::PACKET_HEAD;
        debug_assert_eq!(packet.first(), Some(&(HEAD.word as u8)));
        debug_assert_eq!(
            packet.get(1).map(|&l| usize::from(l) + 2),
            Some(packet.len())
        );
        let time = packet.get(HEAD.len..)?;
        // The time's length from its first word (times below 2^56, whose
        // varint ends in it): the first byte without a continuation bit.
        let stops = !u64::from_le_bytes(*time.first_chunk::<8>()?) & 0x8080_8080_8080_8080;
        let time_len = match stops {
            0 => time.iter().position(|&b| b < 0x80)? + 1,
            s => s.trailing_zeros() as usize / 8 + 1,
        };
        let rest = time.get(time_len..)?;
        let mut bytes = [0; TEMPLATE_CAP];
        let len = rest.len();
        if (16..=TEMPLATE_CAP).contains(&len) {
            // A begin's tail is 16 to 32 bytes: two overlapping halves, no
            // call to memcpy.
            bytes[..16].copy_from_slice(&rest[..16]);
            bytes[len - 16..len].copy_from_slice(&rest[len - 16..]);
        } else {
            bytes.get_mut(..len)?.copy_from_slice(rest);
        }
        Some(PacketTail {
            bytes,
            len: len as u8,
        })
    }

    #[inline]
    pub(crate) fn new(sequence: &Field, track: Option<&Field>, flags: u32) -> Self {
        debug_assert!(flags < 0x80);
        let event_len = key::TYPE_END.len + track.map_or(0, Field::len);
        let event = key::TRACK_EVENT
            .then(Bytes::byte(event_len as u8))
            .then(key::TYPE_END);
        let flags = match flags {
            0 => Bytes { word: 0, len: 0 },
            f => key::SEQUENCE_FLAGS.then(Bytes::byte(f as u8)),
        };
        // Each part copied whole at a fixed size over the padding of the
        // one before (a few moves, no call to memcpy): the parts end by
        // byte 23, and the last copy by byte 32.
        let mut bytes = [0; TEMPLATE_CAP];
        bytes[..FIELD_CAP].copy_from_slice(sequence.padded());
        let mut len = sequence.len();
        bytes[len..len + 8].copy_from_slice(&event.word.to_le_bytes());
        len += event.len;
        if let Some(track) = track {
            bytes[len..len + FIELD_CAP].copy_from_slice(track.padded());
            len += track.len();
        }
        bytes[len..len + 8].copy_from_slice(&flags.word.to_le_bytes());
        len += flags.len;
        PacketTail {
            bytes,
            len: len as u8,
        }
    }
}

/// Appends a packet at `ts` (absolute, or a delta on the sequence's clock)
/// from its tail: the same bytes as [`track_event_packet`] writes for a
/// slice end from an end's tail, and as the begin the tail was taken from
/// at another time. Returns false, writing nothing, if the buffer has not
/// the room (see [`Out::window_in_room`]), or if `ts` is from 2^63 on: no
/// time is (times are at most `i64::MAX`), so it is a delta that went
/// below zero, the caller's time behind the sequence's clock, which the
/// caller then writes the general way. Told on the path of times from
/// 2^56 on, so the short path has no test of its own for it.
#[inline(always)]
pub(crate) fn tail_packet(buf: &mut Out, ts: u64, high: &mut TimeHigh, tail: &PacketTail) -> bool {
    const MASK: usize = 15;
    let Some(b) = buf.window_in_room::<{ 8 + MASK + 1 + TEMPLATE_CAP }>() else {
        return false;
    };
    // The packet's length is filled in below.
    const HEAD: Bytes = key::PACKET_HEAD;
    b[..8].copy_from_slice(&u64::to_le_bytes(HEAD.word));
    let time_len = match high.varint_word(ts) {
        Some((t, len)) => {
            b[HEAD.len..HEAD.len + 8].copy_from_slice(&t.to_le_bytes());
            len
        }
        None if ts >> 63 != 0 => return false,
        None => varint_into(&mut b[HEAD.len..HEAD.len + 10], ts),
    };
    let n = (HEAD.len + time_len) & MASK;
    b[n..n + TEMPLATE_CAP].copy_from_slice(&tail.bytes);
    let n = n + usize::from(tail.len);
    b[1] = (n - 2) as u8;
    buf.commit(n);
    true
}

/// Appends a framed packet holding one `TrackEvent`.
#[inline(always)]
pub(crate) fn track_event_packet(
    buf: &mut Out,
    header: PacketHeader,
    ev: &EventFields<'_>,
    new: &NewInterned<'_>,
) {
    // Counters and instants have one short encoder, begins and ends theirs
    // (`begin_packet`, `tail_packet`): those reach here only off their short
    // paths, rarely, so they take the general one.
    if new.is_empty() {
        if matches!(ev.kind, EventType::Counter | EventType::Instant) {
            return small_event_packet(buf, header, ev);
        }
    } else if ev.counter.is_none()
        && new.names_only()
        && defining_event_packet(buf, header, ev, new)
    {
        // A first use (a begin defining its strings): most of a small trace.
        return;
    }
    track_event_packet_with(buf, header, ev, new, |_| {}, |_| {});
}

/// A `TrackEvent` packet with no counter value whose interned data, if
/// any, is its own category, name and location, assembled from words as
/// [`begin_packet`] assembles a begin: the general encoder's bytes
/// (tested). For packets under 128 bytes (every length one byte) with
/// iids below 2^14, times below 2^56, flags and clock ids below 128 and
/// at most 64 bytes of strings; returns false for any other, having
/// written nothing (only past the buffer's end, in room not yet taken).
#[inline(never)]
fn defining_event_packet(
    buf: &mut Out,
    header: PacketHeader,
    ev: &EventFields<'_>,
    new: &NewInterned<'_>,
) -> bool {
    // Each string's length and iid (an entry's iid is written even if 0,
    // which no string has: 0 is refused, as 2^14 and above are).
    let entry = |e: Option<(u64, &str)>| e.map_or((0, 1), |(iid, s)| (s.len(), iid));
    let (c_text, c_iid) = entry(new.category);
    let (n_text, n_iid) = entry(new.name);
    let (l_text, l_iid) = entry(new.location.map(|(iid, file, _)| (iid, file)));
    let small = |iid: u64| iid.wrapping_sub(1) < (1 << 14) - 1;
    let iids = ev.category_iid | ev.name_iid | ev.location_iid;
    if c_text + n_text + l_text > 64
        || !(small(c_iid) && small(n_iid) && small(l_iid))
        || iids >= 1 << 14
        || ev.ts >= 1 << 56
        || (header.flags | ev.clock_id) >= 0x80
    {
        return false;
    }
    // The fixed parts take at most 100 bytes, the strings 64: in bounds
    // without masks' wrapping.
    const MASK: usize = 255;
    let Some(b) = buf.window::<{ MASK + 1 + FIELD_CAP }>() else {
        return false;
    };
    let mut n = 0usize;
    macro_rules! word {
        ($w:expr, $len:expr) => {{
            let at = n & MASK;
            b[at..at + 8].copy_from_slice(&u64::to_le_bytes($w));
            n += $len;
        }};
    }
    macro_rules! field {
        ($f:expr) => {{
            let at = n & MASK;
            b[at..at + FIELD_CAP].copy_from_slice(&$f.bytes);
            n += $f.len();
        }};
    }
    // A string (the window has room past the packet for what a short copy
    // writes beyond it).
    macro_rules! text {
        ($s:expr) => {{
            let s: &[u8] = $s.as_bytes();
            put_text(&mut b[..], n & MASK, s);
            n += s.len();
        }};
    }
    // An iid's field (nothing for 0), from its code.
    #[inline(always)]
    fn iid(key: Bytes, iid: u64) -> (u64, usize) {
        iid_field(key, iid_code(iid as u32))
    }
    // The length of what was written from `from` on, at `from - 1`.
    macro_rules! close {
        ($from:expr) => {{
            let from: usize = $from;
            b[(from - 1) & MASK] = (n - from) as u8;
        }};
    }
    word!(key::PACKET_HEAD.word, key::PACKET_HEAD.len);
    let (t, t_len) = varint_word(ev.ts);
    word!(t, t_len);
    field!(header.sequence);
    word!(key::EVENT_HEAD.word, key::EVENT_HEAD.len);
    let event = n;
    let (c, c_len) = iid(key::CATEGORY_IID, ev.category_iid);
    word!(c, c_len);
    word!(
        key::TYPE.then(Bytes::byte(ev.kind as u8)).word,
        key::TYPE.len + 1
    );
    let (v, v_len) = iid(key::NAME_IID, ev.name_iid);
    word!(v, v_len);
    if let Some(track) = ev.track {
        field!(track);
    }
    let (l, l_len) = iid(key::LOCATION_IID, ev.location_iid);
    word!(l, l_len);
    close!(event);
    // Only these three: see `names_only`.
    if new.category.is_some() || new.name.is_some() || new.location.is_some() {
        word!(key::INTERNED_HEAD.word, key::INTERNED_HEAD.len);
        let data = n;
        let names = [
            (key::CATEGORY_ENTRY, new.category),
            (key::NAME_ENTRY, new.name),
        ];
        for (head, entry) in names {
            if let Some((id, s)) = entry {
                word!(head.word, head.len);
                let at = n;
                let (i, i_len) = iid(key::ENTRY_IID, id);
                word!(
                    i | (key::ENTRY_NAME.word | (s.len() as u64) << 8) << (8 * i_len),
                    i_len + 2
                );
                text!(s);
                close!(at);
            }
        }
        if let Some((id, file, line)) = new.location {
            word!(key::LOCATION_ENTRY.word, key::LOCATION_ENTRY.len);
            let at = n;
            let (i, i_len) = iid(key::ENTRY_IID, id);
            word!(
                i | (key::ENTRY_NAME.word | (file.len() as u64) << 8) << (8 * i_len),
                i_len + 2
            );
            text!(file);
            word!(key::LINE.word, key::LINE.len);
            let (w, w_len) = varint_word(line.into());
            word!(w, w_len);
            close!(at);
        }
        close!(data);
    }
    if header.flags != 0 {
        word!(
            key::SEQUENCE_FLAGS
                .then(Bytes::byte(header.flags as u8))
                .word,
            2
        );
    }
    if ev.clock_id != 0 {
        word!(key::CLOCK_ID.then(Bytes::byte(ev.clock_id as u8)).word, 3);
    }
    if header.first_on_sequence {
        word!(key::FIRST_ON_SEQUENCE.then(Bytes::byte(1)).word, 3);
    }
    if n - 2 >= 0x80 {
        return false;
    }
    b[1] = (n - 2) as u8;
    buf.commit(n);
    true
}

/// Appends a framed packet holding one `TrackEvent`, the general way:
/// `annotations` writes field 4 (debug annotations) and `tail` the fields
/// from 30 on (counter values, flows) in field-number order. Counter events
/// carry no source location (34), so the order holds.
pub(crate) fn track_event_packet_with(
    buf: &mut Out,
    header: PacketHeader,
    ev: &EventFields<'_>,
    new: &NewInterned<'_>,
    annotations: impl FnOnce(&mut Out),
    tail: impl FnOnce(&mut Out),
) {
    track_event_packet_full(buf, header, ev, new, annotations, |_| {}, tail);
}

/// [`track_event_packet_with`] where `middle` also writes the fields
/// between the track uuid (11) and the counter value (30), such as a log
/// message (21); `tail` may then write fields up to 56. Events with such
/// fields are never counter events, so the order holds.
pub(crate) fn track_event_packet_full(
    buf: &mut Out,
    header: PacketHeader,
    ev: &EventFields<'_>,
    new: &NewInterned<'_>,
    annotations: impl FnOnce(&mut Out),
    middle: impl FnOnce(&mut Out),
    tail: impl FnOnce(&mut Out),
) {
    use field::*;
    let packet = open(buf, TRACE_PACKET);
    put_uint(buf, PACKET_TIMESTAMP, ev.ts);
    header.sequence.put(buf);

    let event = open(buf, PACKET_TRACK_EVENT);
    if ev.category_iid != 0 {
        put_uint(buf, EVENT_CATEGORY_IIDS, ev.category_iid);
    }
    annotations(buf);
    put_uint(buf, EVENT_TYPE, ev.kind as u64);
    if ev.name_iid != 0 {
        put_uint(buf, EVENT_NAME_IID, ev.name_iid);
    }
    if let Some(track) = ev.track {
        track.put(buf);
    }
    middle(buf);
    if let Some(CounterSample::Int(v)) = ev.counter {
        put_int(buf, EVENT_COUNTER_VALUE, v);
    }
    if ev.location_iid != 0 {
        put_uint(buf, EVENT_SOURCE_LOCATION_IID, ev.location_iid);
    }
    if let Some(CounterSample::Double(v)) = ev.counter {
        put_double(buf, EVENT_DOUBLE_COUNTER_VALUE, v);
    }
    tail(buf);
    close(buf, event);

    if !new.is_empty() {
        interned_data(buf, new);
    }
    if header.flags != 0 {
        put_uint(buf, PACKET_SEQUENCE_FLAGS, u64::from(header.flags));
    }
    if ev.clock_id != 0 {
        put_uint(buf, PACKET_TIMESTAMP_CLOCK_ID, u64::from(ev.clock_id));
    }
    packet_end(buf, header);
    close(buf, packet);
}

fn interned_data(buf: &mut Out, new: &NewInterned<'_>) {
    use field::*;
    let data = open(buf, PACKET_INTERNED_DATA);
    if let Some((iid, name)) = new.category {
        interned_name(buf, INTERNED_EVENT_CATEGORIES, iid, name);
    }
    if let Some((iid, name)) = new.name {
        interned_name(buf, INTERNED_EVENT_NAMES, iid, name);
    }
    for &(iid, name) in new.arg_names {
        interned_name(buf, INTERNED_DEBUG_ANNOTATION_NAMES, iid, name);
    }
    if let Some((iid, file, line)) = new.location {
        let entry = open(buf, INTERNED_SOURCE_LOCATIONS);
        put_uint(buf, INTERNED_IID, iid);
        put_str(buf, LOCATION_FILE_NAME, file);
        put_uint(buf, LOCATION_LINE_NUMBER, u64::from(line));
        close(buf, entry);
    }
    let stack = &new.stack;
    for &(iid, name) in stack.functions {
        interned_name(buf, INTERNED_FUNCTION_NAMES, iid, name);
    }
    for &(iid, function, path, line) in stack.frames {
        let entry = open(buf, INTERNED_FRAMES);
        put_uint(buf, INTERNED_IID, iid);
        put_uint(buf, FRAME_FUNCTION_NAME_ID, function);
        if path != 0 {
            put_uint(buf, FRAME_SOURCE_PATH_IID, path);
        }
        if line != 0 {
            put_uint(buf, FRAME_LINE_NUMBER, u64::from(line));
        }
        close(buf, entry);
    }
    if let Some((iid, frames)) = stack.stack {
        let entry = open(buf, INTERNED_CALLSTACKS);
        put_uint(buf, INTERNED_IID, iid);
        for &frame in frames {
            put_uint(buf, CALLSTACK_FRAME_IDS, frame);
        }
        close(buf, entry);
    }
    for &(iid, path) in stack.paths {
        interned_name(buf, INTERNED_SOURCE_PATHS, iid, path);
    }
    for &(field, iid, text) in new.more {
        interned_name(buf, field, iid, text);
    }
    close(buf, data);
}

/// One interned string entry (`iid` and `name`) in field `field` of
/// `InternedData`: every kind of interned name has this shape.
#[inline]
fn interned_name(buf: &mut Out, field: u32, iid: u64, name: &str) {
    let entry = open(buf, field);
    put_uint(buf, field::INTERNED_IID, iid);
    put_str(buf, field::INTERNED_NAME, name);
    close(buf, entry);
}

#[inline]
fn packet_end(buf: &mut Out, header: PacketHeader) {
    if header.first_on_sequence {
        put_bool(buf, field::PACKET_FIRST_ON_SEQUENCE, true);
    }
}

/// The sequence-scoped clock whose packet timestamps are deltas from the
/// previous one (the id Perfetto's own SDK uses for the same purpose).
pub(crate) const INCREMENTAL_CLOCK: u32 = 64;
/// BOOTTIME, the trace processor's default trace clock.
pub(crate) const TRACE_CLOCK: u32 = 6;

/// Appends the packet that opens a compact sequence: it clears incremental
/// state, makes [`INCREMENTAL_CLOCK`] the default clock (and `default_track`
/// the default track), and reads that clock as `t0` against the trace clock.
/// `trace_clock` is the clock timestamps are read in (BOOTTIME unless
/// [`Options::timestamp_clock`](crate::Options::timestamp_clock) said
/// otherwise).
pub(crate) fn sequence_start_packet(
    buf: &mut Out,
    header: PacketHeader,
    default_track: Option<u64>,
    t0: u64,
    trace_clock: u32,
) {
    use field::*;
    let packet = open(buf, TRACE_PACKET);
    let snapshot = open(buf, PACKET_CLOCK_SNAPSHOT);
    for (id, incremental) in [(trace_clock, false), (INCREMENTAL_CLOCK, true)] {
        let clock = open(buf, SNAPSHOT_CLOCKS);
        put_uint(buf, CLOCK_ID, u64::from(id));
        put_uint(buf, CLOCK_TIMESTAMP, t0);
        if incremental {
            put_bool(buf, CLOCK_IS_INCREMENTAL, true);
        }
        close(buf, clock);
    }
    close(buf, snapshot);
    header.sequence.put(buf);
    put_uint(buf, PACKET_SEQUENCE_FLAGS, u64::from(header.flags));
    let defaults = open(buf, PACKET_DEFAULTS);
    if let Some(track) = default_track {
        let event_defaults = open(buf, DEFAULTS_TRACK_EVENT);
        put_uint(buf, EVENT_DEFAULTS_TRACK_UUID, track);
        close(buf, event_defaults);
    }
    put_uint(buf, DEFAULTS_CLOCK_ID, u64::from(INCREMENTAL_CLOCK));
    close(buf, defaults);
    packet_end(buf, header);
    close(buf, packet);
}

/// Appends a packet holding a `ClockSnapshot` of `clocks` (id, reading),
/// read at one instant, naming `trace_clock` the trace's clock unless it is
/// BOOTTIME (which the trace processor takes from a snapshot that has it).
pub(crate) fn clock_snapshot_packet(
    buf: &mut Out,
    header: PacketHeader,
    clocks: &[(u32, u64)],
    trace_clock: u32,
) {
    use field::*;
    let packet = open(buf, TRACE_PACKET);
    let snapshot = open(buf, PACKET_CLOCK_SNAPSHOT);
    for &(id, ts) in clocks {
        let clock = open(buf, SNAPSHOT_CLOCKS);
        put_uint(buf, CLOCK_ID, u64::from(id));
        put_uint(buf, CLOCK_TIMESTAMP, ts);
        close(buf, clock);
    }
    if trace_clock != TRACE_CLOCK {
        put_uint(buf, SNAPSHOT_PRIMARY_TRACE_CLOCK, u64::from(trace_clock));
    }
    close(buf, snapshot);
    header.sequence.put(buf);
    if header.flags != 0 {
        put_uint(buf, PACKET_SEQUENCE_FLAGS, u64::from(header.flags));
    }
    packet_end(buf, header);
    close(buf, packet);
}

/// Appends the packet that opens the writer's own sequence when timestamps
/// are in another clock than BOOTTIME: it clears incremental state, names
/// `trace_clock` the trace's clock and the sequence's default clock, and
/// holds `reading`, a reading of that clock and of BOOTTIME, if given.
pub(crate) fn clock_defaults_packet(
    buf: &mut Out,
    header: PacketHeader,
    trace_clock: u32,
    reading: Option<(u64, u64)>,
) {
    use field::*;
    let packet = open(buf, TRACE_PACKET);
    let snapshot = open(buf, PACKET_CLOCK_SNAPSHOT);
    if let Some((at, boottime)) = reading {
        for (id, ts) in [(TRACE_CLOCK, boottime), (trace_clock, at)] {
            let clock = open(buf, SNAPSHOT_CLOCKS);
            put_uint(buf, CLOCK_ID, u64::from(id));
            put_uint(buf, CLOCK_TIMESTAMP, ts);
            close(buf, clock);
        }
    }
    put_uint(buf, SNAPSHOT_PRIMARY_TRACE_CLOCK, u64::from(trace_clock));
    close(buf, snapshot);
    header.sequence.put(buf);
    put_uint(buf, PACKET_SEQUENCE_FLAGS, u64::from(header.flags));
    let defaults = open(buf, PACKET_DEFAULTS);
    put_uint(buf, DEFAULTS_CLOCK_ID, u64::from(trace_clock));
    close(buf, defaults);
    packet_end(buf, header);
    close(buf, packet);
}

/// What kind of track a descriptor defines.
pub(crate) enum TrackKind<'a> {
    Process {
        pid: i32,
        name: &'a str,
        cmdline: &'a [&'a str],
        options: &'a ProcessOptions<'a>,
    },
    Thread {
        pid: i32,
        tid: i64,
        name: &'a str,
        options: &'a ThreadOptions<'a>,
    },
    /// A track of the caller's own under a parent (0: the root), maybe a
    /// counter.
    Named {
        parent: u64,
        name: &'a str,
        options: &'a TrackOptions<'a>,
        counter: Option<&'a CounterOptions<'a>>,
    },
    /// The root (uuid 0): how processes and threads are ordered.
    Root {
        processes_explicit: bool,
        threads_explicit: bool,
    },
}

/// Appends a framed packet holding one `TrackDescriptor`.
pub(crate) fn track_descriptor_packet(
    buf: &mut Out,
    header: PacketHeader,
    uuid: u64,
    kind: &TrackKind<'_>,
) {
    use field::*;
    let packet = open(buf, TRACE_PACKET);
    header.sequence.put(buf);
    if header.flags != 0 {
        put_uint(buf, PACKET_SEQUENCE_FLAGS, u64::from(header.flags));
    }
    let desc = open(buf, PACKET_TRACK_DESCRIPTOR);
    put_uint(buf, TRACK_UUID, uuid);
    match *kind {
        TrackKind::Root {
            processes_explicit,
            threads_explicit,
        } => {
            if processes_explicit {
                put_uint(buf, TRACK_PROCESS_ORDERING, 1);
            }
            if threads_explicit {
                put_uint(buf, TRACK_THREAD_ORDERING, 1);
            }
        }
        TrackKind::Process {
            pid,
            name,
            cmdline,
            options,
        } => {
            let process = open(buf, TRACK_PROCESS);
            put_int(buf, PROCESS_PID, i64::from(pid));
            for arg in cmdline {
                put_str(buf, PROCESS_CMDLINE, arg);
            }
            put_str(buf, PROCESS_NAME, name);
            for label in options.labels {
                put_str(buf, PROCESS_LABELS, label);
            }
            close(buf, process);
            if let Some(rank) = options.sibling_rank {
                put_int(buf, TRACK_SIBLING_ORDER_RANK, i64::from(rank));
            }
            if let Some(d) = options.description {
                put_str(buf, TRACK_DESCRIPTION, d);
            }
        }
        TrackKind::Thread {
            pid,
            tid,
            name,
            options,
        } => {
            let thread = open(buf, TRACK_THREAD);
            put_int(buf, THREAD_PID, i64::from(pid));
            put_int(buf, THREAD_TID, tid);
            put_str(buf, THREAD_NAME, name);
            close(buf, thread);
            if let Some(rank) = options.sibling_rank {
                put_int(buf, TRACK_SIBLING_ORDER_RANK, i64::from(rank));
            }
            if let Some(d) = options.description {
                put_str(buf, TRACK_DESCRIPTION, d);
            }
        }
        TrackKind::Named {
            parent,
            name,
            options,
            counter,
        } => {
            put_str(buf, TRACK_NAME, name);
            if parent != 0 {
                put_uint(buf, TRACK_PARENT_UUID, parent);
            }
            if let Some(c) = counter {
                let desc = open(buf, TRACK_COUNTER);
                let unit = match c.unit {
                    CounterUnit::None | CounterUnit::Named(_) => 0,
                    CounterUnit::TimeNs => 1,
                    CounterUnit::Count => 2,
                    CounterUnit::Bytes => 3,
                };
                if unit != 0 {
                    put_uint(buf, COUNTER_UNIT, unit);
                }
                if let Some(m) = c.multiplier {
                    put_int(buf, COUNTER_UNIT_MULTIPLIER, m);
                }
                if c.incremental {
                    put_bool(buf, COUNTER_IS_INCREMENTAL, true);
                }
                if let CounterUnit::Named(name) = c.unit {
                    put_str(buf, COUNTER_UNIT_NAME, name);
                }
                if let Some(key) = c.y_axis_share_key {
                    put_str(buf, COUNTER_Y_AXIS_SHARE_KEY, key);
                }
                close(buf, desc);
            }
            if let Some(o) = options.child_ordering {
                put_uint(buf, TRACK_CHILD_ORDERING, o as u64);
            }
            if let Some(rank) = options.sibling_rank {
                put_int(buf, TRACK_SIBLING_ORDER_RANK, i64::from(rank));
            }
            if let Some(d) = options.description {
                put_str(buf, TRACK_DESCRIPTION, d);
            }
            match options.merge {
                None => {}
                Some(SiblingMerge::ByName) => put_uint(buf, TRACK_SIBLING_MERGE_BEHAVIOR, 1),
                Some(SiblingMerge::None) => put_uint(buf, TRACK_SIBLING_MERGE_BEHAVIOR, 2),
                Some(SiblingMerge::ByKey(key)) => {
                    put_uint(buf, TRACK_SIBLING_MERGE_BEHAVIOR, 3);
                    put_str(buf, TRACK_SIBLING_MERGE_KEY, key);
                }
            }
        }
    }
    close(buf, desc);
    packet_end(buf, header);
    close(buf, packet);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No high groups kept: each packet of these tests finds its own.
    fn no_high() -> TimeHigh {
        TimeHigh::NONE
    }

    /// An event's header and fields as most of these tests write them: no
    /// clock, no counter value, not the first packet on its sequence.
    fn event<'a>(
        kind: EventType,
        sequence: Field,
        ts: u64,
        track: Option<&'a Field>,
        [category_iid, name_iid, location_iid]: [u64; 3],
        flags: u32,
    ) -> (PacketHeader, EventFields<'a>) {
        let header = PacketHeader {
            sequence,
            flags,
            first_on_sequence: false,
        };
        let ev = EventFields {
            ts,
            clock_id: 0,
            kind,
            track,
            category_iid,
            name_iid,
            location_iid,
            counter: None,
        };
        (header, ev)
    }

    /// Packets that define strings, short and long (lengths of one, two and
    /// three bytes): prost reads back every string, iid and line, and
    /// re-encodes the packet to the same bytes (so every length is exact,
    /// widened where it had to be, and fields are in order).
    #[test]
    fn interned_data_is_exact() {
        use crate::protos;
        use prost::Message;
        let long = "x".repeat(20_000);
        let arg_names = [(3, "rows"), (4, &long[..200])];
        for len in [0, 1, 100, 127, 128, 300, 20_000] {
            let s = &long[..len];
            let cases = [
                NewInterned {
                    name: Some((1, s)),
                    ..Default::default()
                },
                NewInterned {
                    category: Some((300, s)),
                    name: Some((2, "n")),
                    location: Some((1 << 20, s, u32::MAX)),
                    ..Default::default()
                },
                NewInterned {
                    location: Some((5, s, 7)),
                    arg_names: &arg_names,
                    ..Default::default()
                },
            ];
            for new in cases {
                let track = Field::uint(field::EVENT_TRACK_UUID, 99);
                let iids = [
                    new.category.map_or(0, |c| c.0),
                    new.name.map_or(1, |c| c.0),
                    new.location.map_or(0, |c| c.0),
                ];
                let sequence = Field::uint(field::PACKET_SEQUENCE_ID, 1);
                let begin = EventType::SliceBegin;
                let (header, ev) = event(begin, sequence, 12_345, Some(&track), iids, 2);
                let mut fast = Out::from(Vec::new());
                track_event_packet(&mut fast, header, &ev, &new);
                let trace = protos::Trace::decode(&fast[..]).unwrap();
                assert_eq!(trace.encode_to_vec(), fast[..], "len {len}");
                let data = trace.packet[0].interned_data.clone().unwrap();
                let names: Vec<_> = data
                    .event_names
                    .iter()
                    .map(|e| (e.iid(), e.name()))
                    .collect();
                assert_eq!(names, new.name.into_iter().collect::<Vec<_>>());
                let cats: Vec<_> = data
                    .event_categories
                    .iter()
                    .map(|e| (e.iid(), e.name()))
                    .collect();
                assert_eq!(cats, new.category.into_iter().collect::<Vec<_>>());
                let locs: Vec<_> = data
                    .source_locations
                    .iter()
                    .map(|l| (l.iid(), l.file_name(), l.line_number()))
                    .collect();
                assert_eq!(locs, new.location.into_iter().collect::<Vec<_>>());
                let args: Vec<_> = data
                    .debug_annotation_names
                    .iter()
                    .map(|e| (e.iid(), e.name()))
                    .collect();
                assert_eq!(args, new.arg_names.to_vec());
            }
        }
    }

    /// The encoder of first uses writes the general encoder's bytes, for
    /// every shape it takes: each of the three strings defined or not, iids
    /// and strings on either side of the one-byte boundaries (of entries,
    /// of the interned data, of the packet), with and without a track,
    /// flags, a clock and the first-on-sequence mark, each event type.
    #[test]
    fn first_uses_encode_like_the_general_encoder() {
        let long = "y".repeat(300);
        let kinds = [
            EventType::SliceBegin,
            EventType::SliceEnd,
            EventType::Instant,
        ];
        let track = Field::uint(field::EVENT_TRACK_UUID, 1 << 40);
        let (mut cases, mut shorts) = (0, 0);
        for len in [0, 1, 10, 30, 60, 120, 127, 128, 300] {
            let s = &long[..len];
            for iid in [1u64, 127, 128, 1 << 14, 1 << 35] {
                for defines in 0..8u8 {
                    for (i, kind) in kinds.into_iter().enumerate() {
                        let new = NewInterned {
                            category: (defines & 1 != 0).then_some((iid, s)),
                            name: (defines & 2 != 0).then_some((iid + 1, "query")),
                            location: (defines & 4 != 0).then_some((iid, s, 20 + i as u32 * 500)),
                            ..Default::default()
                        };
                        let sequence = Field::uint(field::PACKET_SEQUENCE_ID, 1 + iid);
                        let ts = iid * 1000 + len as u64;
                        let track = (defines & 2 == 0).then_some(&track);
                        let category = if defines & 1 != 0 { iid } else { 0 };
                        let location = if i == 1 { 0 } else { iid };
                        let iids = [category, iid + 1, location];
                        let (mut header, mut ev) = event(kind, sequence, ts, track, iids, i as u32);
                        header.first_on_sequence = defines == 7;
                        ev.clock_id = if i == 2 { 64 } else { 0 };
                        let mut fast = Out::from(vec![9]);
                        let short = defining_event_packet(&mut fast, header, &ev, &new);
                        if !short {
                            assert_eq!(fast[..], [9]);
                            track_event_packet(&mut fast, header, &ev, &new);
                        }
                        shorts += usize::from(short);
                        let mut general = Out::from(vec![9]);
                        track_event_packet_with(&mut general, header, &ev, &new, |_| {}, |_| {});
                        assert_eq!(
                            fast[..],
                            general[..],
                            "len {len}, iid {iid}, {defines}, {i}"
                        );
                        cases += 1;
                    }
                }
            }
        }
        assert_eq!(cases, 9 * 5 * 8 * 3);
        // The short encoder took its share, and left the rest.
        assert!(shorts > 100 && shorts < cases / 2, "{shorts} of {cases}");
    }

    #[test]
    fn varint_lengths() {
        for (v, n) in [
            (0, 1),
            (127, 1),
            (128, 2),
            (16383, 2),
            (16384, 3),
            (u64::MAX, 10),
        ] {
            assert_eq!(varint_len(v), n, "{v}");
            let mut b = Out::from(Vec::new());
            put_varint(&mut b, v);
            assert_eq!(b.len(), n);
        }
    }

    /// A sequence's kept high groups give every time's varint as
    /// `varint_word` does, whether times share them, change them, go back
    /// or drop below 2^28.
    #[test]
    fn kept_high_groups_give_the_same_varints() {
        let mut high = TimeHigh::NONE;
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut ts = 1u64 << 28;
        for step in 0..100_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ts = match step % 997 {
                0 => x >> 8,        // anywhere below 2^56
                1 => x % (1 << 28), // no high groups
                2 => ts.saturating_sub(x % (1 << 30)),
                _ => (ts + x % 20_000) % (1 << 56),
            };
            assert_eq!(high.varint_word(ts), Some(varint_word(ts)), "ts {ts:#x}");
        }
        for ts in [
            0,
            1,
            (1 << 28) - 1,
            1 << 28,
            (1 << 35) - 1,
            1 << 35,
            (1 << 56) - 1,
        ] {
            let want = Some(varint_word(ts));
            assert_eq!(high.varint_word(ts), want, "ts {ts:#x}");
            assert_eq!(high.varint_word(ts), want, "ts {ts:#x} again");
        }
        // From 2^56 on, none, and the kept groups stay.
        let kept = high;
        for ts in [1 << 56, 1 << 63, u64::MAX] {
            assert_eq!(high.varint_word(ts), None, "ts {ts:#x}");
            assert_eq!(high, kept);
        }
    }

    /// A begin's tail is what follows its time, whatever the time's
    /// length: times of one byte to ten (past 2^56, whose varint does not
    /// end in the packet's first word after its head) give one tail, which
    /// writes each packet again; tails of fewer than 16 bytes and of more.
    #[test]
    fn tails_of_packets_follow_their_times() {
        let sequence = Field::uint(field::PACKET_SEQUENCE_ID, 1);
        let tracks = [None, Some(Field::uint(field::EVENT_TRACK_UUID, u64::MAX))];
        for track in &tracks {
            let mut tails = vec![];
            for ts in [
                0,
                127,
                1 << 28,
                (1 << 56) - 1,
                1 << 56,
                1 << 62,
                i64::MAX as u64,
            ] {
                let mut packet = Out::from(vec![9]);
                let begin = EventType::SliceBegin;
                let (header, ev) = event(begin, sequence, ts, track.as_ref(), [3, 200, 0], 2);
                track_event_packet(&mut packet, header, &ev, &NewInterned::default());
                let tail = PacketTail::of_packet(&packet[1..]).unwrap();
                let mut again = Out::from(vec![9]);
                again.reserve_exact(64);
                assert!(tail_packet(&mut again, ts, &mut no_high(), &tail));
                assert_eq!(again[..], packet[..], "ts {ts}, track {track:?}");
                tails.push(tail);
            }
            assert!(tails.iter().all(|t| *t == tails[0]));
            assert_eq!(usize::from(tails[0].len) >= 16, track.is_some());
        }
    }

    /// Ends from templates are byte for byte the general encoder's.
    #[test]
    fn end_templates_match_the_general_encoding() {
        for seq in [1u64, 127, 128, 1 << 20, u64::from(u32::MAX)] {
            let sequence = Field::uint(field::PACKET_SEQUENCE_ID, seq);
            for track in [None, Some(1u64), Some(u64::MAX), Some(0x1234_5678_9abc)] {
                let track = track.map(|t| Field::uint(field::EVENT_TRACK_UUID, t));
                for flags in [0, SEQ_NEEDS_INCREMENTAL_STATE] {
                    let template = PacketTail::new(&sequence, track.as_ref(), flags);
                    // From 2^63 on, a delta below zero: nothing written.
                    for ts in [1 << 63, u64::MAX - 1, u64::MAX] {
                        let mut fast = Out::from(vec![7]);
                        fast.reserve_exact(64);
                        assert!(!tail_packet(&mut fast, ts, &mut no_high(), &template));
                        assert_eq!(fast[..], [7]);
                    }
                    let times = [0, 1, 127, 128, 1 << 35, (1 << 56) - 1, 1 << 56];
                    for ts in times.into_iter().chain([i64::MAX as u64]) {
                        let mut fast = Out::from(vec![7]);
                        // Without room, nothing; with it, the packet.
                        assert!(!tail_packet(&mut fast, ts, &mut no_high(), &template));
                        assert_eq!(fast[..], [7]);
                        fast.reserve_exact(64);
                        assert!(tail_packet(&mut fast, ts, &mut no_high(), &template));
                        let mut general = Out::from(vec![7]);
                        let end = EventType::SliceEnd;
                        let (header, ev) = event(end, sequence, ts, track.as_ref(), [0; 3], flags);
                        track_event_packet(&mut general, header, &ev, &NewInterned::default());
                        assert_eq!(fast[..], general[..], "seq {seq}, track {track:?}, ts {ts}");
                    }
                }
            }
        }
    }

    #[test]
    fn fields_encode_like_put_uint() {
        for f in [1, 10, 15, 16, 2047, 2048, (1 << 29) - 1] {
            // Around the widths' edges: seven bits, 56 (the last of one
            // word), 63 (nine bytes or ten).
            let edges = [0, 1, 127, 128, 1 << 35, (1 << 56) - 1, 1 << 56];
            let wide = [(1 << 63) - 1, 1 << 63, 0x7f << 56 | 5, 0xff << 56, u64::MAX];
            for v in edges.into_iter().chain(wide) {
                let mut b = Out::from(Vec::new());
                put_uint(&mut b, f, v);
                let field = Field::uint(f, v);
                assert_eq!(&field.bytes[..field.len()], &b[..], "field {f}, value {v}");
            }
        }
    }

    /// The keys of the assembled encoders are the keys `put_key` writes, on
    /// either side of the one- and two-byte boundaries (fields 15/16 and
    /// 2047/2048), and `then` concatenates.
    #[test]
    fn compile_time_keys_equal_written_ones() {
        for f in [1, 8, 15, 16, 34, 87, 2047] {
            for wire in [VARINT, I64, LEN] {
                let mut b = Out::from(Vec::new());
                put_key(&mut b, f, wire);
                let k = Bytes::key(f, wire);
                match k.len {
                    1 => assert_eq!(key_bytes::<1>(f, wire)[..], b[..]),
                    _ => assert_eq!(key_bytes::<2>(f, wire)[..], b[..]),
                }
                let bytes = k.word.to_le_bytes();
                assert_eq!(&bytes[..k.len], &b[..], "field {f}, wire type {wire}");
                assert_eq!(k.word >> (8 * k.len), 0);
            }
        }
        let both = Bytes::key(87, VARINT).then(Bytes::byte(1));
        assert_eq!(&both.word.to_le_bytes()[..both.len], &[0xb8, 0x05, 0x01]);
        assert_eq!(
            key::PACKET_HEAD,
            Bytes {
                word: 0x40_00_0a,
                len: 3
            }
        );
    }

    /// Slice begins assembled from words are the bytes of the general
    /// encoding, on either side of every length boundary they handle, and
    /// are refused past them.
    #[test]
    fn word_begins_equal_back_filled_ones() {
        let times = [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            (1 << 21) - 1,
            1 << 21,
            (1 << 28) - 1,
            1 << 28,
            (1 << 35) + 3,
            (1 << 49) - 1,
            1 << 49,
            (1 << 56) - 1,
        ];
        let iids = [0u64, 1, 127, 128, 255, 16_383];
        let tracks = [
            None,
            Some(Field::uint(field::EVENT_TRACK_UUID, u64::MAX)),
            Some(Field::uint(field::EVENT_TRACK_UUID, 5)),
        ];
        for sequence in [1, 300, u64::from(u32::MAX)] {
            let sequence = Field::uint(field::PACKET_SEQUENCE_ID, sequence);
            for ts in times {
                for (i, &category) in iids.iter().enumerate() {
                    // The name never 0 (a begin always has one); the
                    // location crossing the category's boundaries.
                    let name = iids[(i + 1) % iids.len()].max(1);
                    let location = iids[(i + 3) % iids.len()];
                    for track in &tracks {
                        for flags in [2u8, 3] {
                            let mut words = Out::from(vec![9]);
                            words.reserve_exact(128);
                            let iids = [category, name, location];
                            let code = |iid: u64| if iid == 0 { 0 } else { iid_code(iid as u32) };
                            assert!(begin_packet(
                                &mut words,
                                ts,
                                &mut no_high(),
                                &sequence,
                                track.as_ref(),
                                iids.map(code),
                                flags
                            ));
                            let (header, ev) = event(
                                EventType::SliceBegin,
                                sequence,
                                ts,
                                track.as_ref(),
                                [category, name, location],
                                u32::from(flags),
                            );
                            // The same bytes from fields assembled ahead.
                            let mut kept = Out::from(vec![9]);
                            kept.reserve_exact(128);
                            let fields = BeginFields::new(iids.map(code), flags).unwrap();
                            let written = begin_packet_fields(
                                &mut kept,
                                ts,
                                &mut no_high(),
                                &sequence,
                                track.as_ref(),
                                &fields,
                            );
                            assert!(written);
                            assert_eq!(kept[..], words[..], "ts {ts} iids {iids:?}");
                            // Its tail, kept, writes the same begin at any
                            // other time, past 2^56 too.
                            let tail = PacketTail::of_packet(&kept[1..]);
                            assert!(tail.is_some() || sequence.len() > 4, "{iids:?} {track:?}");
                            for later in tail.map_or(vec![], |_| vec![ts / 3, 1 << 56, 1 << 62]) {
                                let mut from_tail = Out::from(vec![9]);
                                from_tail.reserve_exact(128);
                                let tail = tail.as_ref().unwrap();
                                assert!(tail_packet(&mut from_tail, later, &mut no_high(), tail));
                                let mut general = Out::from(vec![9]);
                                let ev = EventFields { ts: later, ..ev };
                                let new = NewInterned::default();
                                track_event_packet_with(
                                    &mut general,
                                    header,
                                    &ev,
                                    &new,
                                    |_| {},
                                    |_| {},
                                );
                                assert_eq!(from_tail[..], general[..], "at {later}, {iids:?}");
                            }
                            let mut general = Out::from(vec![9]);
                            track_event_packet_with(
                                &mut general,
                                header,
                                &ev,
                                &NewInterned::default(),
                                |_| {},
                                |_| {},
                            );
                            assert_eq!(words[..], general[..], "ts {ts} iids {iids:?}");
                        }
                    }
                }
            }
        }
        let seq = Field::uint(field::PACKET_SEQUENCE_ID, 1);
        let code = iid_code(1);
        let mut buf = Out::from(vec![9]);
        // No room: the general path will write it.
        assert!(!begin_packet(
            &mut buf,
            0,
            &mut no_high(),
            &seq,
            None,
            [0, code, 0],
            2
        ));
        buf.reserve_exact(128);
        assert!(!begin_packet(
            &mut buf,
            1 << 56,
            &mut no_high(),
            &seq,
            None,
            [0, code, 0],
            2
        ));
        assert!(!begin_packet(
            &mut buf,
            0,
            &mut no_high(),
            &seq,
            None,
            [NO_CODE, code, 0],
            2
        ));
        assert_eq!(BeginFields::new([NO_CODE, code, 0], 2), None);
        assert_eq!(BeginFields::new([0, code, NO_CODE], 2), None);
        let fields = BeginFields::new([0, code, 0], 2).unwrap();
        assert!(!begin_packet_fields(
            &mut buf,
            1 << 56,
            &mut no_high(),
            &seq,
            None,
            &fields
        ));
        assert!(!begin_packet(
            &mut buf,
            0,
            &mut no_high(),
            &seq,
            None,
            [0, code, NO_CODE],
            2
        ));
        assert_eq!(buf[..], [9]);
    }

    #[test]
    fn varint_words_are_varints() {
        for shift in 0..56 {
            for v in [1u64 << shift, (1u64 << shift) - 1, (1 << shift) | 0x55] {
                let v = v & ((1 << 56) - 1);
                let (w, len) = varint_word(v);
                let mut expect = Out::from(Vec::new());
                put_varint(&mut expect, v);
                assert_eq!(&w.to_le_bytes()[..len], &expect[..], "{v}");
                assert!(len == 8 || w >> (8 * len) == 0);
            }
        }
    }

    #[test]
    fn small_packets_equal_back_filled_ones() {
        let cases = [
            (0u64, 1u64, 0u64, 0u64),
            (1, 2, 3, 4),
            (u64::MAX, u64::MAX, 300, 1 << 56),
            // Either side of where iids and timestamps take another byte,
            // and of the small iids' and the 5-byte varints' fast paths.
            (127, 5, 127, 128),
            (128, 6, 16_383, 16_384),
            ((1 << 35) - 1, 7, 16_384, (1 << 35) - 1),
            (1 << 35, 8, 1 << 35, u64::from(u32::MAX)),
        ];
        let values = [
            None,
            Some(CounterSample::Int(0)),
            Some(CounterSample::Int(-1)),
            Some(CounterSample::Int(i64::MAX)),
            Some(CounterSample::Double(-0.5)),
            Some(CounterSample::Double(f64::MAX)),
        ];
        for (ts, track, iid, loc) in cases {
            let track = Field::uint(field::EVENT_TRACK_UUID, track);
            for kind in [EventType::Instant, EventType::Counter] {
                for (flags, first) in [(0, false), (2, false), (3, true)] {
                    for counter in values {
                        if (kind == EventType::Counter) != counter.is_some() {
                            continue;
                        }
                        let sequence = Field::uint(field::PACKET_SEQUENCE_ID, u64::from(u32::MAX));
                        let track = (iid != 127).then_some(&track);
                        let (mut header, mut ev) =
                            event(kind, sequence, ts, track, [iid, iid, loc], flags);
                        header.first_on_sequence = first;
                        ev.clock_id = if first { 6 } else { 0 };
                        ev.counter = counter;
                        let mut fast = Out::from(vec![9]);
                        small_event_packet(&mut fast, header, &ev);
                        let mut general = Out::from(vec![9]);
                        let none = NewInterned::default();
                        track_event_packet_with(&mut general, header, &ev, &none, |_| {}, |_| {});
                        assert_eq!(fast[..], general[..], "{kind:?} {counter:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn back_filled_lengths_are_minimal() {
        for len in [0usize, 1, 127, 128, 300, 16383, 16384, 70000] {
            let mut buf = Out::from(vec![0xAA]);
            let n = open(&mut buf, 5);
            buf.extend_from_slice(&vec![7u8; len]);
            close(&mut buf, n);
            let mut want = Out::from(vec![0xAA, 5 << 3 | 2]);
            put_varint(&mut want, len as u64);
            want.extend_from_slice(&vec![7u8; len]);
            assert_eq!(buf[..], want[..], "len {len}");
        }
    }
}
