//! The short path of a named track's descriptor (no counter) on a sequence
//! set up in this generation, under 128 bytes: written forward, each
//! length a byte, with none of the general encoder's header work and
//! length checks. A `tracing` program describes a track per span this way
//! ([`TraceWriter::keyed_track`](crate::TraceWriter::keyed_track)). Its
//! bytes are the general path's
//! (`tests::the_short_path_writes_what_the_general_one_does`).

use crate::encoding::{field as f, key_bytes, Field, LEN, VARINT};
use crate::sequence::SeqState;
use crate::track_options::{SiblingMerge, TrackOptions};

use super::annotated::{Cursor, SPARE, WINDOW};
use super::Emitter;

mod key {
    use super::*;

    const fn k(field: u32, wire: u32) -> u8 {
        key_bytes::<1>(field, wire)[0]
    }
    pub const PACKET: u8 = k(f::TRACE_PACKET, LEN);
    pub const DESCRIPTOR: [u8; 2] = key_bytes(f::PACKET_TRACK_DESCRIPTOR, LEN);
    pub const UUID: u8 = k(f::TRACK_UUID, VARINT);
    pub const NAME: u8 = k(f::TRACK_NAME, LEN);
    pub const CHILD_ORDERING: u8 = k(f::TRACK_CHILD_ORDERING, VARINT);
    pub const RANK: u8 = k(f::TRACK_SIBLING_ORDER_RANK, VARINT);
    pub const DESCRIPTION: u8 = k(f::TRACK_DESCRIPTION, LEN);
    pub const MERGE: u8 = k(f::TRACK_SIBLING_MERGE_BEHAVIOR, VARINT);
    pub const MERGE_KEY: [u8; 2] = key_bytes(f::TRACK_SIBLING_MERGE_KEY, LEN);
}

/// `sibling_merge_behavior` as the descriptor writes it, and the key.
#[inline(always)]
fn merge<'a>(options: &TrackOptions<'a>) -> Option<(u64, Option<&'a str>)> {
    Some(match options.merge? {
        SiblingMerge::ByName => (1, None),
        SiblingMerge::None => (2, None),
        SiblingMerge::ByKey(k) => (3, Some(k)),
    })
}

/// Encodings that tracks described one after another share, kept between
/// calls: the `track_uuid` field of events on the track described (or
/// ended) last, which its begin follows, and the `parent_uuid` field of
/// the last parent, which a thread's spans share. Each pair always holds a
/// uuid and its field, so a hit or a miss writes the same bytes.
#[derive(Clone, Copy)]
pub(crate) struct KeyedFields {
    track: (u64, Field),
    parent: (u64, Field),
}

impl KeyedFields {
    pub(crate) fn new() -> Self {
        KeyedFields {
            track: (0, Field::uint(f::EVENT_TRACK_UUID, 0)),
            parent: (0, Field::uint(f::TRACK_PARENT_UUID, 0)),
        }
    }

    /// The `track_uuid` field of events on the track `uuid`.
    #[inline(always)]
    pub(crate) fn track(&mut self, uuid: u64) -> &Field {
        if self.track.0 != uuid {
            self.track = (uuid, Field::uint(f::EVENT_TRACK_UUID, uuid));
        }
        &self.track.1
    }

    /// The `parent_uuid` field of a descriptor under `parent`.
    #[inline(always)]
    fn parent(&mut self, parent: u64) -> &Field {
        if self.parent.0 != parent {
            self.parent = (parent, Field::uint(f::TRACK_PARENT_UUID, parent));
        }
        &self.parent.1
    }
}

// The descriptor's uuid is the event's `track_uuid` with its key replaced:
// both keys are a byte.
const _: () = assert!(f::TRACK_UUID < 16 && f::EVENT_TRACK_UUID < 16);

impl Emitter {
    /// Writes the descriptor of a named track that is not a counter and
    /// returns true, if `seq` is set up in this generation (the packet then
    /// needs no header work) and the packet is under 128 bytes (each
    /// length a byte, filled in once what it measures is written);
    /// otherwise writes nothing and returns false.
    #[inline]
    pub(crate) fn named_descriptor_known(
        &mut self,
        seq: &mut SeqState,
        uuid: u64,
        parent: u64,
        name: &str,
        options: &TrackOptions<'_>,
    ) -> bool {
        if !self.ready(seq) {
            return false;
        }
        let merge = merge(options);
        let text = |s: Option<&str>| s.map_or(0, str::len);
        let bound = SMALL
            + seq.id.len()
            + name.len()
            + text(options.description)
            + text(merge.and_then(|(_, k)| k));
        if bound >= 0x80 {
            return false;
        }
        let Some(b) = self.out.window_in_room::<{ WINDOW + SPARE }>() else {
            return false;
        };
        let mut c = Cursor { b, n: 0 };
        c.byte(key::PACKET);
        c.byte(0);
        c.field(&seq.id);
        c.bytes(&key::DESCRIPTOR);
        let desc_at = c.n;
        c.byte(0);
        let uuid_at = c.n;
        c.field(self.keyed.track(uuid));
        c.b[uuid_at] = key::UUID;
        c.uint(key::NAME, name.len() as u64);
        c.bytes(name.as_bytes());
        if parent != 0 {
            c.field(self.keyed.parent(parent));
        }
        if let Some(o) = options.child_ordering {
            c.uint(key::CHILD_ORDERING, o as u64);
        }
        if let Some(rank) = options.sibling_rank {
            c.uint(key::RANK, i64::from(rank) as u64);
        }
        if let Some(d) = options.description {
            c.uint(key::DESCRIPTION, d.len() as u64);
            c.bytes(d.as_bytes());
        }
        if let Some((behaviour, merge_key)) = merge {
            c.uint(key::MERGE, behaviour);
            if let Some(k) = merge_key {
                c.bytes(&key::MERGE_KEY);
                c.varint(k.len() as u64);
                c.bytes(k.as_bytes());
            }
        }
        c.b[desc_at] = (c.n - desc_at - 1) as u8;
        c.b[1] = (c.n - 2) as u8;
        let n = c.n;
        self.out.commit(n);
        self.packets += 1;
        true
    }
}

/// The most bytes of a descriptor beside its sequence id and texts: the
/// packet's key and length (2), the descriptor's (3), the uuid (11), the
/// name's key and length (2), the parent (11), the ordering (2), the rank
/// (11), the description's key and length (2), the merge behaviour (2) and
/// its key's key and length (3).
const SMALL: usize = 49;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{track_descriptor_packet, TrackKind};
    use crate::protos;
    use crate::track_options::ChildOrdering;
    use proptest::prelude::*;
    use prost::Message;

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            "[a-z ]{1,20}",
            (100..600usize).prop_map(|n| "n".repeat(n)),
        ]
    }

    #[derive(Clone, Debug)]
    struct Desc {
        uuid: u64,
        parent: u64,
        name: String,
        ordering: Option<u8>,
        rank: Option<i32>,
        description: Option<String>,
        merge: Option<Option<String>>,
        by_name: bool,
    }

    fn desc() -> impl Strategy<Value = Desc> {
        let id = prop_oneof![Just(0u64), 1..200u64, any::<u64>()];
        (
            (id.clone(), id, text()),
            (
                prop::option::of(0..3u8),
                prop::option::of(any::<i32>()),
                prop::option::of(text()),
                prop::option::of(prop::option::of(text())),
                any::<bool>(),
            ),
        )
            .prop_map(
                |((uuid, parent, name), (ordering, rank, description, merge, by_name))| Desc {
                    uuid,
                    parent,
                    name,
                    ordering,
                    rank,
                    description,
                    merge,
                    by_name,
                },
            )
    }

    /// Describes `descs` on one sequence, through the short path where it
    /// holds (`short`) or the general encoder alone, the way
    /// `Emitter::descriptor` does; the bytes and how many took the short
    /// path.
    fn run(descs: &[Desc], short: bool) -> (Vec<u8>, u64, usize) {
        let mut enc = Emitter::new(false, (usize::MAX, usize::MAX));
        enc.out.reserve_exact(1 << 20);
        let mut seq = SeqState::new(3, None);
        let mut shorts = 0;
        for d in descs {
            let ordering = d.ordering.map(|o| match o {
                0 => ChildOrdering::Lexicographic,
                1 => ChildOrdering::Chronological,
                _ => ChildOrdering::Explicit,
            });
            let merge = d.merge.as_ref().map(|m| match (m, d.by_name) {
                (Some(k), _) => SiblingMerge::ByKey(k),
                (None, true) => SiblingMerge::ByName,
                (None, false) => SiblingMerge::None,
            });
            let options = TrackOptions {
                child_ordering: ordering,
                sibling_rank: d.rank,
                merge,
                description: d.description.as_deref(),
            };
            let before = (enc.out.len(), enc.packets);
            if short && enc.named_descriptor_known(&mut seq, d.uuid, d.parent, &d.name, &options) {
                shorts += 1;
                continue;
            }
            assert_eq!((enc.out.len(), enc.packets), before, "wrote and refused");
            let kind = TrackKind::Named {
                parent: d.parent,
                name: &d.name,
                options: &options,
                counter: None,
            };
            let header = enc.header(&mut seq, false, 0);
            track_descriptor_packet(&mut enc.out, header, d.uuid, &kind);
        }
        (enc.out[..].to_vec(), enc.packets, shorts)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Any run of descriptors: the same bytes and packets either way.
        #[test]
        fn the_short_path_writes_what_the_general_one_does(
            descs in prop::collection::vec(desc(), 1..20),
        ) {
            let (general, packets, _) = run(&descs, false);
            let (short, short_packets, _) = run(&descs, true);
            prop_assert_eq!(&short, &general);
            prop_assert_eq!(short_packets, packets);
            let trace = protos::Trace::decode(&short[..]).unwrap();
            prop_assert_eq!(trace.packet.len() as u64, packets);
        }
    }

    /// The path is taken once the sequence is set up, and refuses a packet
    /// of 128 bytes or more.
    #[test]
    fn descriptors_after_the_first_take_the_short_path() {
        let d = |name: &str| Desc {
            uuid: u64::MAX - 5,
            parent: 1 << 60,
            name: name.into(),
            ordering: None,
            rank: None,
            description: None,
            merge: Some(None),
            by_name: false,
        };
        let descs = [d("span"), d("span"), d(&"x".repeat(600)), d("poll")];
        let (bytes, _, shorts) = run(&descs, true);
        assert_eq!(shorts, 2);
        assert_eq!(bytes, run(&descs, false).0);
    }
}
