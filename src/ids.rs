//! Stable track ids and the typed handles that carry them.
//!
//! A track uuid is derived from the caller's keys with xxh64, so that the same
//! process, thread or lane gets the same uuid in every run and traces written
//! separately merge. Each kind of id has its own domain: the hash is seeded by
//! the kind, and the kind's tag fills the low four bits of the uuid, so equal
//! keys of different kinds can never collide, and no uuid is 0.

use std::fmt;

use xxhash_rust::xxh64::xxh64;

/// A track's 64-bit uuid, as written in `TrackDescriptor.uuid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackUuid(pub(crate) u64);

impl TrackUuid {
    /// The raw uuid.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl TrackUuid {
    /// The uuid of a track of the caller's own under `parent`, named by a
    /// 64-bit `key` (such as a span's serial number): the same parent and key
    /// give the same uuid in every writer and every run, so that several
    /// writers (one per thread, say) can put events on one track. Describe it
    /// with [`TraceWriter::keyed_track`](crate::TraceWriter::keyed_track).
    /// [`TrackUuid::ROOT`] as the parent puts it at the top level.
    pub fn keyed(parent: TrackUuid, key: u64) -> TrackUuid {
        track_uuid(Domain::Keyed, parent.0, &key.to_le_bytes())
    }

    /// A uuid stored as an integer (by [`get`](Self::get)) and read back,
    /// for tables of atomics shared between threads. Only a value that
    /// `get` returned names a track of this crate.
    pub const fn from_raw(raw: u64) -> TrackUuid {
        TrackUuid(raw)
    }

    /// The top of the trace, as a parent: no track has this uuid.
    pub const ROOT: TrackUuid = TrackUuid(0);
}

impl fmt::Display for TrackUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// The kind of an id, which is its domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Domain {
    Process = 1,
    Thread = 2,
    AsyncLane = 3,
    AsyncSpanTrack = 4,
    Pid = 5,
    Named = 6,
    Counter = 7,
    Keyed = 8,
}

/// Uuids keep 52 bits of hash above the 4-bit tag: 56 bits in all, so a uuid
/// costs 8 bytes as a varint instead of 10, while two of a million tracks of
/// one kind collide with odds below 1 in 10^4.
const HASH_BITS: u32 = 52;

pub(crate) fn hash_key(domain: Domain, parent: u64, key: &[u8]) -> u64 {
    // The parent is hashed as a seed, so (parent, key) pairs cannot alias the
    // way concatenated strings can.
    let seed = xxh64_word(parent, domain as u64);
    match <[u8; 8]>::try_from(key) {
        Ok(word) => xxh64_word(u64::from_le_bytes(word), seed),
        Err(_) => xxh64(key, seed),
    }
}

/// `xxh64(&v.to_le_bytes(), seed)`, inline: the hash of one 8-byte lane
/// (XXH64's steps for an input of 8 bytes, no loop), for the parents and
/// keys of uuids derived per span.
#[inline]
fn xxh64_word(v: u64, seed: u64) -> u64 {
    const P1: u64 = 0x9E37_79B1_85EB_CA87;
    const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
    const P3: u64 = 0x1656_67B1_9E37_79F9;
    const P4: u64 = 0x85EB_CA77_C2B2_AE63;
    const P5: u64 = 0x27D4_EB2F_1656_67C5;
    let lane = v.wrapping_mul(P2).rotate_left(31).wrapping_mul(P1);
    let h = seed.wrapping_add(P5).wrapping_add(8) ^ lane;
    let mut h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^ h >> 32
}

/// The uuid of a track of `domain` named by `key` under `parent` (0 for none).
pub(crate) fn track_uuid(domain: Domain, parent: u64, key: &[u8]) -> TrackUuid {
    let hash = hash_key(domain, parent, key) & ((1 << HASH_BITS) - 1);
    TrackUuid((hash << 4) | domain as u64)
}

/// The uuid of the `slot`-th async span track of `lane` in the writer whose
/// first sequence id is `writer`. Slot tracks are the writer's own: two
/// writers of one trace (distinct sequence ids) using the same lane must not
/// put their spans on one track, where they would nest into each other.
/// The key packs the writer above the slot index, so a writer with sequence
/// id 1 keeps the uuids the slot index alone gave.
pub(crate) fn async_slot_uuid(lane: TrackUuid, writer: u32, slot: u32) -> TrackUuid {
    let key = (u64::from(writer.wrapping_sub(1)) << 32) | u64::from(slot);
    track_uuid(Domain::AsyncSpanTrack, lane.0, &key.to_le_bytes())
}

/// Pids and tids derived from keys lie above Linux's largest possible pid
/// (2^22), so they never meet a real one taken from the system.
pub(crate) const DERIVED_ID_MIN: i64 = (1 << 22) + 1;

/// The `attempt`-th candidate pid (or tid) for a key: a positive `i32`.
pub(crate) fn derived_id(key: &[u8], parent: u64, attempt: u64) -> i64 {
    let span = i32::MAX as u64 - DERIVED_ID_MIN as u64 + 1;
    let h = hash_key(Domain::Pid, parent ^ attempt.rotate_left(32), key);
    DERIVED_ID_MIN + (h % span) as i64
}

/// Which writer made a handle: handles are only valid for that writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Owner(pub(crate) u32);

impl Owner {
    pub(crate) fn next() -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(1);
        Owner(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Valid only for the writer that made it; another writer answers
        /// [`Error::ForeignHandle`](crate::Error::ForeignHandle).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name {
            pub(crate) uuid: TrackUuid,
            pub(crate) index: u32,
            pub(crate) owner: Owner,
        }

        impl $name {
            /// The uuid of the track.
            pub const fn uuid(self) -> TrackUuid {
                self.uuid
            }
        }
    };
}

handle!(
    /// A process track, made by `TraceWriter::process`.
    ProcessTrack
);
handle!(
    /// A thread track, made by `TraceWriter::thread`.
    ThreadTrack
);
handle!(
    /// A named lane of async spans under a process or thread, made by
    /// `TraceWriter::async_lane`.
    AsyncLane
);
handle!(
    /// A track of the caller's own, made by `TraceWriter::track`.
    NamedTrack
);
handle!(
    /// A counter track, made by `TraceWriter::counter_track`.
    CounterTrack
);

/// An async span in flight, named by its lane and id: the parent of a
/// child span (see `TraceWriter::async_child_begin`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AsyncParent {
    /// The lane the parent was begun on.
    pub lane: AsyncLane,
    /// The parent's id on that lane.
    pub span_id: u64,
}

impl AsyncParent {
    /// Span `span_id` of `lane`.
    pub const fn new(lane: AsyncLane, span_id: u64) -> Self {
        AsyncParent { lane, span_id }
    }
}

/// Where a lane, named track or counter track sits: at the root of the
/// trace, or under a process or a thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParentTrack {
    /// The top level of the trace.
    Root,
    /// A process track.
    Process(ProcessTrack),
    /// A thread track.
    Thread(ThreadTrack),
    /// A track of the caller's own, to group tracks under it.
    Named(NamedTrack),
}

impl From<NamedTrack> for ParentTrack {
    fn from(t: NamedTrack) -> Self {
        ParentTrack::Named(t)
    }
}

impl From<ProcessTrack> for ParentTrack {
    fn from(p: ProcessTrack) -> Self {
        ParentTrack::Process(p)
    }
}

impl From<ThreadTrack> for ParentTrack {
    fn from(t: ThreadTrack) -> Self {
        ParentTrack::Thread(t)
    }
}

impl ParentTrack {
    /// The uuid of the track.
    pub const fn uuid(self) -> TrackUuid {
        match self {
            ParentTrack::Root => TrackUuid(0),
            ParentTrack::Process(p) => p.uuid,
            ParentTrack::Thread(t) => t.uuid,
            ParentTrack::Named(t) => t.uuid,
        }
    }
}

/// A track that takes instant events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InstantTrack {
    /// A process track.
    Process(ProcessTrack),
    /// A thread track: the instant nests under the spans open there.
    Thread(ThreadTrack),
    /// An async lane's own track.
    Lane(AsyncLane),
    /// A track of the caller's own.
    Named(NamedTrack),
}

impl From<ProcessTrack> for InstantTrack {
    fn from(t: ProcessTrack) -> Self {
        InstantTrack::Process(t)
    }
}

impl From<ThreadTrack> for InstantTrack {
    fn from(t: ThreadTrack) -> Self {
        InstantTrack::Thread(t)
    }
}

impl From<AsyncLane> for InstantTrack {
    fn from(t: AsyncLane) -> Self {
        InstantTrack::Lane(t)
    }
}

impl From<NamedTrack> for InstantTrack {
    fn from(t: NamedTrack) -> Self {
        InstantTrack::Named(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inline hash of a word is XXH64's: uuids stay what they were.
    #[test]
    fn a_words_hash_is_xxh64s() {
        let mut x = 0x243F_6A88_85A3_08D3u64;
        for i in 0..10_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (v, seed) = (if i % 5 == 0 { i } else { x }, x.rotate_left(17) ^ i);
            assert_eq!(
                xxh64_word(v, seed),
                xxh64(&v.to_le_bytes(), seed),
                "{v} {seed}"
            );
        }
    }

    #[test]
    fn domains_never_collide_and_uuids_are_never_zero() {
        for key in ["", "a", "worker-1", "42"] {
            let all = [
                track_uuid(Domain::Process, 0, key.as_bytes()),
                track_uuid(Domain::Thread, 0, key.as_bytes()),
                track_uuid(Domain::AsyncLane, 0, key.as_bytes()),
                track_uuid(Domain::AsyncSpanTrack, 0, key.as_bytes()),
            ];
            for (i, a) in all.iter().enumerate() {
                assert_ne!(a.get(), 0);
                assert!(a.get() < 1 << 56, "uuid fits a 8-byte varint");
                for b in &all[i + 1..] {
                    assert_ne!(a, b);
                }
            }
        }
    }

    #[test]
    fn uuids_are_stable_and_depend_on_parent() {
        let a = track_uuid(Domain::Thread, 7, b"stream");
        assert_eq!(a, track_uuid(Domain::Thread, 7, b"stream"));
        assert_ne!(a, track_uuid(Domain::Thread, 8, b"stream"));
    }

    #[test]
    fn async_slots_are_per_writer() {
        let lane = track_uuid(Domain::AsyncLane, 0, b"requests");
        let first = async_slot_uuid(lane, 1, 0);
        // Sequence id 1 keeps the derivation of the slot index alone.
        let old = track_uuid(Domain::AsyncSpanTrack, lane.0, &0u64.to_le_bytes());
        assert_eq!(first, old);
        assert_ne!(first, async_slot_uuid(lane, 1 + (1 << 16), 0));
        assert_ne!(first, async_slot_uuid(lane, 1, 1));
        assert_eq!(first, async_slot_uuid(lane, 1, 0), "stable");
    }

    #[test]
    fn derived_ids_are_positive_i32_above_real_pids() {
        for i in 0..1000u64 {
            let id = derived_id(&i.to_le_bytes(), 0, i % 3);
            assert!((DERIVED_ID_MIN..=i32::MAX as i64).contains(&id));
        }
    }
}
