//! Protobuf encoding straight into a byte buffer, protozero style.
//!
//! Every packet is appended to a caller-owned `Vec<u8>` already framed as a
//! `Trace.packet` field, so concatenated output is a `Trace`. Nested lengths
//! are back-filled: a one-byte placeholder is reserved and, in the rare case
//! the message reaches 128 bytes, the body is shifted to make room, so every
//! length is as short as protobuf allows. Fields are written in field-number
//! order, the canonical order every protobuf library re-encodes to.

/// Wire types.
const VARINT: u32 = 0;
const I64: u32 = 1;
const LEN: u32 = 2;

/// Field numbers of the upstream schema (see `protos/`).
pub(crate) mod field {
    pub const TRACE_PACKET: u32 = 1;

    pub const PACKET_TIMESTAMP: u32 = 8;
    pub const PACKET_SEQUENCE_ID: u32 = 10;
    pub const PACKET_TRACK_EVENT: u32 = 11;
    pub const PACKET_INTERNED_DATA: u32 = 12;
    pub const PACKET_SEQUENCE_FLAGS: u32 = 13;
    pub const PACKET_TRACK_DESCRIPTOR: u32 = 60;
    pub const PACKET_FIRST_ON_SEQUENCE: u32 = 87;

    pub const EVENT_CATEGORY_IIDS: u32 = 3;
    pub const EVENT_TYPE: u32 = 9;
    pub const EVENT_NAME_IID: u32 = 10;
    pub const EVENT_TRACK_UUID: u32 = 11;
    pub const EVENT_SOURCE_LOCATION_IID: u32 = 34;

    pub const INTERNED_EVENT_CATEGORIES: u32 = 1;
    pub const INTERNED_EVENT_NAMES: u32 = 2;
    pub const INTERNED_SOURCE_LOCATIONS: u32 = 4;
    pub const INTERNED_IID: u32 = 1;
    pub const INTERNED_NAME: u32 = 2;
    pub const LOCATION_FILE_NAME: u32 = 2;
    pub const LOCATION_LINE_NUMBER: u32 = 4;

    pub const TRACK_UUID: u32 = 1;
    pub const TRACK_NAME: u32 = 2;
    pub const TRACK_PROCESS: u32 = 3;
    pub const TRACK_THREAD: u32 = 4;
    pub const TRACK_PARENT_UUID: u32 = 5;

    pub const PROCESS_PID: u32 = 1;
    pub const PROCESS_CMDLINE: u32 = 2;
    pub const PROCESS_NAME: u32 = 6;

    pub const THREAD_PID: u32 = 1;
    pub const THREAD_TID: u32 = 2;
    pub const THREAD_NAME: u32 = 5;
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
}

/// Bytes of `v` as a varint.
#[inline]
pub(crate) const fn varint_len(v: u64) -> usize {
    // 1 byte per started group of 7 significant bits, at least one.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[inline]
pub(crate) fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

#[inline]
fn put_key(buf: &mut Vec<u8>, field: u32, wire: u32) {
    debug_assert!((1..1 << 29).contains(&field));
    put_varint(buf, u64::from(field << 3 | wire));
}

#[inline]
pub(crate) fn put_uint(buf: &mut Vec<u8>, field: u32, v: u64) {
    put_key(buf, field, VARINT);
    put_varint(buf, v);
}

/// `int32`/`int64`: negative values take ten bytes, as protobuf defines.
#[inline]
pub(crate) fn put_int(buf: &mut Vec<u8>, field: u32, v: i64) {
    put_uint(buf, field, v as u64);
}

#[inline]
pub(crate) fn put_bool(buf: &mut Vec<u8>, field: u32, v: bool) {
    put_uint(buf, field, u64::from(v));
}

#[inline]
#[allow(dead_code)] // used by flows and double counters
pub(crate) fn put_fixed64(buf: &mut Vec<u8>, field: u32, v: u64) {
    put_key(buf, field, I64);
    buf.extend_from_slice(&v.to_le_bytes());
}

#[inline]
pub(crate) fn put_str(buf: &mut Vec<u8>, field: u32, s: &str) {
    put_key(buf, field, LEN);
    put_varint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// A length-delimited field whose length is back-filled by [`close`].
#[must_use]
pub(crate) struct Nested(usize);

#[inline]
pub(crate) fn open(buf: &mut Vec<u8>, field: u32) -> Nested {
    put_key(buf, field, LEN);
    buf.push(0);
    Nested(buf.len() - 1)
}

#[inline]
pub(crate) fn close(buf: &mut Vec<u8>, nested: Nested) {
    let at = nested.0;
    let len = buf.len() - at - 1;
    if len < 0x80 {
        buf[at] = len as u8;
        return;
    }
    // Rare: widen the placeholder to the varint's real size.
    let width = varint_len(len as u64);
    let end = buf.len();
    buf.resize(end + width - 1, 0);
    buf.copy_within(at + 1..end, at + width);
    let mut v = len as u64;
    for b in &mut buf[at..at + width] {
        *b = v as u8 | 0x80;
        v >>= 7;
    }
    buf[at + width - 1] &= 0x7f;
}

/// What a packet carries besides its payload.
#[derive(Clone, Copy)]
pub(crate) struct PacketHeader {
    pub sequence_id: u32,
    pub flags: u32,
    pub first_on_sequence: bool,
}

/// Strings interned for the first time by the packet that carries them.
#[derive(Clone, Copy, Default)]
pub(crate) struct NewInterned<'a> {
    pub category: Option<(u64, &'a str)>,
    pub name: Option<(u64, &'a str)>,
    pub location: Option<(u64, &'a str, u32)>,
}

impl NewInterned<'_> {
    #[inline]
    fn is_empty(&self) -> bool {
        self.category.is_none() && self.name.is_none() && self.location.is_none()
    }
}

/// The fields of a `TrackEvent`; iids 0 are omitted.
#[derive(Clone, Copy)]
pub(crate) struct EventFields {
    pub ts: u64,
    pub kind: EventType,
    pub track: u64,
    pub category_iid: u64,
    pub name_iid: u64,
    pub location_iid: u64,
}

/// Appends a framed packet holding one `TrackEvent`.
#[inline]
pub(crate) fn track_event_packet(
    buf: &mut Vec<u8>,
    header: PacketHeader,
    ev: &EventFields,
    new: &NewInterned<'_>,
) {
    use field::*;
    let packet = open(buf, TRACE_PACKET);
    put_uint(buf, PACKET_TIMESTAMP, ev.ts);
    put_uint(buf, PACKET_SEQUENCE_ID, u64::from(header.sequence_id));

    let event = open(buf, PACKET_TRACK_EVENT);
    if ev.category_iid != 0 {
        put_uint(buf, EVENT_CATEGORY_IIDS, ev.category_iid);
    }
    put_uint(buf, EVENT_TYPE, ev.kind as u64);
    if ev.name_iid != 0 {
        put_uint(buf, EVENT_NAME_IID, ev.name_iid);
    }
    put_uint(buf, EVENT_TRACK_UUID, ev.track);
    if ev.location_iid != 0 {
        put_uint(buf, EVENT_SOURCE_LOCATION_IID, ev.location_iid);
    }
    close(buf, event);

    if !new.is_empty() {
        interned_data(buf, new);
    }
    packet_trailer(buf, header);
    close(buf, packet);
}

fn interned_data(buf: &mut Vec<u8>, new: &NewInterned<'_>) {
    use field::*;
    let data = open(buf, PACKET_INTERNED_DATA);
    if let Some((iid, name)) = new.category {
        let entry = open(buf, INTERNED_EVENT_CATEGORIES);
        put_uint(buf, INTERNED_IID, iid);
        put_str(buf, INTERNED_NAME, name);
        close(buf, entry);
    }
    if let Some((iid, name)) = new.name {
        let entry = open(buf, INTERNED_EVENT_NAMES);
        put_uint(buf, INTERNED_IID, iid);
        put_str(buf, INTERNED_NAME, name);
        close(buf, entry);
    }
    if let Some((iid, file, line)) = new.location {
        let entry = open(buf, INTERNED_SOURCE_LOCATIONS);
        put_uint(buf, INTERNED_IID, iid);
        put_str(buf, LOCATION_FILE_NAME, file);
        put_uint(buf, LOCATION_LINE_NUMBER, u64::from(line));
        close(buf, entry);
    }
    close(buf, data);
}

/// Fields 13 (sequence flags); the payloads above 13 come between this and
/// [`packet_end`].
#[inline]
fn packet_trailer(buf: &mut Vec<u8>, header: PacketHeader) {
    if header.flags != 0 {
        put_uint(buf, field::PACKET_SEQUENCE_FLAGS, u64::from(header.flags));
    }
    packet_end(buf, header);
}

#[inline]
fn packet_end(buf: &mut Vec<u8>, header: PacketHeader) {
    if header.first_on_sequence {
        put_bool(buf, field::PACKET_FIRST_ON_SEQUENCE, true);
    }
}

/// What kind of track a descriptor defines.
pub(crate) enum TrackKind<'a> {
    Process {
        pid: i32,
        name: &'a str,
        cmdline: &'a [&'a str],
    },
    Thread {
        pid: i32,
        tid: i64,
        name: &'a str,
    },
    /// A plain named track under a parent.
    Named {
        parent: u64,
        name: &'a str,
    },
}

/// Appends a framed packet holding one `TrackDescriptor`.
pub(crate) fn track_descriptor_packet(
    buf: &mut Vec<u8>,
    header: PacketHeader,
    uuid: u64,
    kind: &TrackKind<'_>,
) {
    use field::*;
    let packet = open(buf, TRACE_PACKET);
    put_uint(buf, PACKET_SEQUENCE_ID, u64::from(header.sequence_id));
    if header.flags != 0 {
        put_uint(buf, PACKET_SEQUENCE_FLAGS, u64::from(header.flags));
    }
    let desc = open(buf, PACKET_TRACK_DESCRIPTOR);
    put_uint(buf, TRACK_UUID, uuid);
    match *kind {
        TrackKind::Process { pid, name, cmdline } => {
            let process = open(buf, TRACK_PROCESS);
            put_int(buf, PROCESS_PID, i64::from(pid));
            for arg in cmdline {
                put_str(buf, PROCESS_CMDLINE, arg);
            }
            put_str(buf, PROCESS_NAME, name);
            close(buf, process);
        }
        TrackKind::Thread { pid, tid, name } => {
            let thread = open(buf, TRACK_THREAD);
            put_int(buf, THREAD_PID, i64::from(pid));
            put_int(buf, THREAD_TID, tid);
            put_str(buf, THREAD_NAME, name);
            close(buf, thread);
        }
        TrackKind::Named { parent, name } => {
            put_str(buf, TRACK_NAME, name);
            put_uint(buf, TRACK_PARENT_UUID, parent);
        }
    }
    close(buf, desc);
    packet_end(buf, header);
    close(buf, packet);
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), n);
        }
    }

    #[test]
    fn back_filled_lengths_are_minimal() {
        for len in [0usize, 1, 127, 128, 300, 16383, 16384, 70000] {
            let mut buf = vec![0xAA];
            let n = open(&mut buf, 5);
            buf.extend(std::iter::repeat_n(7u8, len));
            close(&mut buf, n);
            let mut want = vec![0xAA, 5 << 3 | 2];
            put_varint(&mut want, len as u64);
            want.extend(std::iter::repeat_n(7u8, len));
            assert_eq!(buf, want, "len {len}");
        }
    }
}
