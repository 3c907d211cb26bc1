//! The short path of a named track's descriptor (no counter) on a sequence
//! set up in this generation, under 128 bytes: written forward, each
//! length a byte, with none of the general encoder's header work and
//! length checks. A `tracing` program describes a track per span this way
//! ([`TraceWriter::keyed_track`](crate::TraceWriter::keyed_track)). Its
//! bytes are the general path's
//! (`tests::the_short_path_writes_what_the_general_one_does`).

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use crate::encoding::{
    field as f, key_bytes, track_descriptor_packet, Field, TrackKind, LEN, VARINT,
};
use crate::error::{check_len, Error, Result};
use crate::ids::Owner;
use crate::sequence::SeqState;
use crate::track_options::{ChildOrdering, SiblingMerge, TrackOptions};

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
    pub const FLAGS: u8 = k(f::PACKET_SEQUENCE_FLAGS, VARINT);
    pub const FIRST_ON_SEQUENCE: [u8; 2] = key_bytes(f::PACKET_FIRST_ON_SEQUENCE, VARINT);
    pub const PROCESS: u8 = k(f::TRACK_PROCESS, LEN);
    pub const THREAD: u8 = k(f::TRACK_THREAD, LEN);
    pub const PID: u8 = k(f::PROCESS_PID, VARINT);
    pub const CMDLINE: u8 = k(f::PROCESS_CMDLINE, LEN);
    pub const PROCESS_NAME: u8 = k(f::PROCESS_NAME, LEN);
    pub const LABEL: u8 = k(f::PROCESS_LABELS, LEN);
    pub const THREAD_PID: u8 = k(f::THREAD_PID, VARINT);
    pub const TID: u8 = k(f::THREAD_TID, VARINT);
    pub const THREAD_NAME: u8 = k(f::THREAD_NAME, LEN);
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
    #[inline]
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

    /// The `track_uuid` field [`KeyedFields::track`] gave last.
    #[inline(always)]
    pub(crate) fn track_field(&self) -> &Field {
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
        let desc_at = put_packet_head(&mut c, &seq.id);
        put_uuid(&mut c, self.keyed.track(uuid));
        put_name(&mut c, name);
        if parent != 0 {
            c.field(self.keyed.parent(parent));
        }
        put_options(&mut c, options, merge);
        let n = put_lengths(&mut c, desc_at);
        self.commit_descriptor(n);
        true
    }

    /// Commits a descriptor's packet of `n` bytes written in the window.
    #[inline(always)]
    fn commit_descriptor(&mut self, n: usize) {
        self.out.commit(n);
        self.packets += 1;
    }
}

/// Fills in the lengths of a descriptor's packet written by
/// [`put_packet_head`] (its descriptor's length at `desc_at`); its bytes.
#[inline(always)]
fn put_lengths(c: &mut Cursor<'_>, desc_at: usize) -> usize {
    c.b[desc_at] = (c.n - desc_at - 1) as u8;
    c.b[1] = (c.n - 2) as u8;
    c.n
}

/// A descriptor's packet up to its uuid: the packet's key and a length
/// byte to fill in, the sequence, the descriptor's key and its length byte
/// to fill in, whose place it returns.
#[inline(always)]
fn put_packet_head(c: &mut Cursor<'_>, sequence: &Field) -> usize {
    // Each run of constant bytes as one word.
    c.word(u64::from(key::PACKET), 2);
    c.field(sequence);
    let [d0, d1] = key::DESCRIPTOR;
    c.word(u64::from(d0) | u64::from(d1) << 8, 3);
    c.n - 1
}

/// The descriptor's uuid: the `track_uuid` field of events on the track
/// (kept encoded), its key replaced.
#[inline(always)]
fn put_uuid(c: &mut Cursor<'_>, track: &Field) {
    let uuid_at = c.n;
    c.field(track);
    c.b[uuid_at] = key::UUID;
}

#[inline(always)]
fn put_name(c: &mut Cursor<'_>, name: &str) {
    c.uint(key::NAME, name.len() as u64);
    c.bytes(name.as_bytes());
}

/// A named track's options, the fields after its parent.
#[inline(always)]
fn put_options(c: &mut Cursor<'_>, options: &TrackOptions<'_>, merge: Option<(u64, Option<&str>)>) {
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
}

/// The name and options of keyed tracks registered with a writer
/// ([`TraceWriter::track_template`](crate::TraceWriter::track_template)):
/// everything of their descriptors but the uuid and the parent, so that
/// [`keyed_track_from`](crate::TraceWriter::keyed_track_from) describes a
/// track with what [`keyed_track`](crate::TraceWriter::keyed_track) would
/// write for the same name and options, byte for byte, without encoding
/// them again. A `tracing` layer registers one per span callsite.
///
/// Valid only for the writer that made it, in every generation of its
/// interning tables and on every sequence; another writer answers
/// [`Error::ForeignTemplate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TrackTemplate {
    pub(crate) owner: Owner,
    pub(crate) index: u32,
}

/// A template's name and options, as given (for the general encoder), and
/// their fields encoded (for the short path).
struct Template {
    /// The most bytes of a descriptor of it beside its sequence id:
    /// `usize::MAX` if that reaches 128, when it never takes the short
    /// path.
    bound: usize,
    /// The name's field, the fields before the parent.
    head: Piece,
    /// The options' fields, after the parent.
    tail: Piece,
    name: Box<str>,
    child_ordering: Option<ChildOrdering>,
    sibling_rank: Option<i32>,
    merge: Option<OwnedMerge>,
    description: Option<Box<str>>,
}

/// Fields encoded once: in a word of 16 bytes if they fit (copied whole,
/// the excess written over next), else as bytes.
struct Piece {
    word: u128,
    len: u8,
    bytes: Box<[u8]>,
}

impl Piece {
    fn new(fields: &[u8]) -> Self {
        match fields.len() <= 16 {
            true => {
                let mut w = [0u8; 16];
                w[..fields.len()].copy_from_slice(fields);
                Piece {
                    word: u128::from_le_bytes(w),
                    len: fields.len() as u8,
                    bytes: Box::default(),
                }
            }
            false => Piece {
                word: 0,
                len: 0,
                bytes: fields.into(),
            },
        }
    }

    #[inline(always)]
    fn put(&self, c: &mut Cursor<'_>) {
        match self.bytes.is_empty() {
            true => c.wide(self.word, self.len),
            false => c.bytes(&self.bytes),
        }
    }
}

/// [`SiblingMerge`] with its key kept.
enum OwnedMerge {
    ByName,
    None,
    ByKey(Box<str>),
}

impl Template {
    fn options(&self) -> TrackOptions<'_> {
        TrackOptions {
            child_ordering: self.child_ordering,
            sibling_rank: self.sibling_rank,
            merge: self.merge.as_ref().map(|m| match m {
                OwnedMerge::ByName => SiblingMerge::ByName,
                OwnedMerge::None => SiblingMerge::None,
                OwnedMerge::ByKey(k) => SiblingMerge::ByKey(k),
            }),
            description: self.description.as_deref(),
        }
    }
}

/// A writer's track templates, never removed, so a template of this
/// writer always indexes one. Boxed, made with the first: a writer without
/// templates (a small trace's) pays a word for them.
pub(crate) struct Templates {
    owner: Owner,
    tables: Option<Box<Tables>>,
}

#[derive(Default)]
struct Tables {
    list: Vec<Template>,
    /// Templates by a hash of their name and options, so that registering
    /// them again gives the same template. (Of two whose hashes collide,
    /// only the first is found again; the other gets a template each time.)
    /// Hashed with fixed keys: these keys are hashes already.
    by_hash: HashMap<u64, u32, BuildHasherDefault<DefaultHasher>>,
}

impl Templates {
    #[inline]
    pub(crate) fn new(owner: Owner) -> Self {
        Templates {
            owner,
            tables: None,
        }
    }

    /// The templates, in order of registration.
    #[inline(always)]
    fn list(&self) -> &[Template] {
        self.tables.as_deref().map_or(&[], |t| &t.list)
    }

    /// The template of `name` and `options`, registered now if new.
    ///
    /// # Errors
    /// [`Error::StringTooLong`]; [`Error::TooManyTemplates`] past
    /// `u32::MAX` templates.
    pub(crate) fn register(
        &mut self,
        name: &str,
        options: &TrackOptions<'_>,
    ) -> Result<TrackTemplate> {
        let merge = merge(options);
        check_len([name, merge.and_then(|(_, k)| k).unwrap_or("")])?;
        check_len(options.description)?;
        let mut h = DefaultHasher::new();
        (name, options).hash(&mut h);
        let hash = h.finish();
        let Tables { list, by_hash } = &mut **self.tables.get_or_insert_with(Box::default);
        let found = by_hash.get(&hash).copied();
        let same = |i: u32| list.get(i as usize).is_some_and(|t| t.is(name, options));
        let index = match found {
            Some(i) if same(i) => i,
            found => {
                let i = u32::try_from(list.len()).map_err(|_| Error::TooManyTemplates)?;
                list.push(Template::new(name, options));
                if found.is_none() {
                    by_hash.insert(hash, i);
                }
                i
            }
        };
        Ok(TrackTemplate {
            owner: self.owner,
            index,
        })
    }

    /// The place of `template`, if it is this writer's.
    ///
    /// # Errors
    /// [`Error::ForeignTemplate`].
    #[inline(always)]
    pub(crate) fn check(&self, template: TrackTemplate) -> Result<usize> {
        let index = template.index as usize;
        match template.owner == self.owner && index < self.list().len() {
            true => Ok(index),
            false => Err(Error::ForeignTemplate),
        }
    }
}

impl Template {
    fn new(name: &str, options: &TrackOptions<'_>) -> Self {
        let merge = merge(options);
        let text = |s: Option<&str>| s.map_or(0, str::len);
        let bound =
            SMALL + name.len() + text(options.description) + text(merge.and_then(|(_, k)| k));
        // Encoded only if the short path may take it: then its fields are
        // under 128 bytes, well within a window.
        let (bound, head, tail) = match bound < 0x80 {
            true => {
                let mut b = [0u8; WINDOW + SPARE];
                let mut c = Cursor { b: &mut b, n: 0 };
                put_name(&mut c, name);
                let split = c.n;
                put_options(&mut c, options, merge);
                let n = c.n;
                (bound, Piece::new(&b[..split]), Piece::new(&b[split..n]))
            }
            false => (usize::MAX, Piece::new(&[]), Piece::new(&[])),
        };
        Template {
            bound,
            head,
            tail,
            name: name.into(),
            child_ordering: options.child_ordering,
            sibling_rank: options.sibling_rank,
            merge: options.merge.map(|m| match m {
                SiblingMerge::ByName => OwnedMerge::ByName,
                SiblingMerge::None => OwnedMerge::None,
                SiblingMerge::ByKey(k) => OwnedMerge::ByKey(k.into()),
            }),
            description: options.description.map(Into::into),
        }
    }

    fn is(&self, name: &str, options: &TrackOptions<'_>) -> bool {
        *self.name == *name && self.options() == *options
    }
}

impl Emitter {
    /// [`Emitter::named_descriptor_known`] of the keyed track `uuid` of a
    /// template (`index`, checked): its name's and options' fields copied
    /// as they were encoded, the uuid and parent written around them.
    #[inline]
    pub(crate) fn template_descriptor_known(
        &mut self,
        seq: &mut SeqState,
        uuid: u64,
        parent: u64,
        index: usize,
    ) -> bool {
        if !self.ready(seq) {
            return false;
        }
        let Some(t) = self.templates.list().get(index) else {
            return false;
        };
        if t.bound >= 0x80 - seq.id.len() {
            return false;
        }
        let Some(b) = self.out.window_in_room::<{ WINDOW + SPARE }>() else {
            return false;
        };
        let mut c = Cursor { b, n: 0 };
        let desc_at = put_packet_head(&mut c, &seq.id);
        put_uuid(&mut c, self.keyed.track(uuid));
        t.head.put(&mut c);
        if parent != 0 {
            c.field(self.keyed.parent(parent));
        }
        t.tail.put(&mut c);
        let n = put_lengths(&mut c, desc_at);
        self.commit_descriptor(n);
        true
    }

    /// [`Emitter::template_descriptor_known`] by the general encoder, from
    /// the template's name and options.
    #[cold]
    #[inline(never)]
    pub(crate) fn template_descriptor_general(
        &mut self,
        seq: &mut SeqState,
        uuid: u64,
        parent: u64,
        index: usize,
    ) {
        // Out of the emitter while the descriptor borrows it.
        let tables = self.templates.tables.take();
        if let Some(t) = tables.as_deref().and_then(|t| t.list.get(index)) {
            let options = t.options();
            let kind = TrackKind::Named {
                parent,
                name: &t.name,
                options: &options,
                counter: None,
            };
            self.descriptor_general(seq, uuid, &kind);
        }
        self.templates.tables = tables;
    }
}

impl Emitter {
    /// Writes the descriptor of a process or a thread (after the header's
    /// work, as the general path does) and returns true, if the packet is
    /// under 128 bytes; otherwise writes nothing and returns false. The
    /// general encoder's bytes, assembled forward like a named track's
    /// (`tests::processes_and_threads_take_the_general_paths_bytes`).
    #[inline]
    pub(crate) fn process_or_thread_descriptor(
        &mut self,
        seq: &mut SeqState,
        uuid: u64,
        kind: &TrackKind<'_>,
    ) -> bool {
        let texts = |all: &[&str]| all.iter().map(|s| 2 + s.len()).sum::<usize>();
        let text = |s: Option<&str>| s.map_or(0, str::len);
        let bound = match *kind {
            TrackKind::Process {
                name,
                cmdline,
                options,
                ..
            } => name.len() + texts(cmdline) + texts(options.labels) + text(options.description),
            TrackKind::Thread { name, options, .. } => name.len() + text(options.description),
            _ => return false,
        };
        if bound + SMALL_TASK + seq.id.len() >= 0x80 || self.out.room() < WINDOW + SPARE {
            return false;
        }
        let header = self.header(seq, false, 0);
        let Some(b) = self.out.window_in_room::<{ WINDOW + SPARE }>() else {
            // The header's own packet (a sequence's first, naming a clock)
            // took the room: the general encoder, after the same header.
            track_descriptor_packet(&mut self.out, header, uuid, kind);
            return true;
        };
        let mut c = Cursor { b, n: 0 };
        c.byte(key::PACKET);
        c.byte(0);
        c.field(&header.sequence);
        if header.flags != 0 {
            c.uint(key::FLAGS, u64::from(header.flags));
        }
        c.bytes(&key::DESCRIPTOR);
        let desc_at = c.n;
        c.byte(0);
        c.uint(key::UUID, uuid);
        let (rank, description) = match *kind {
            TrackKind::Process {
                pid,
                name,
                cmdline,
                options,
            } => {
                c.byte(key::PROCESS);
                let at = c.n;
                c.byte(0);
                c.uint(key::PID, i64::from(pid) as u64);
                for arg in cmdline {
                    c.uint(key::CMDLINE, arg.len() as u64);
                    c.bytes(arg.as_bytes());
                }
                c.uint(key::PROCESS_NAME, name.len() as u64);
                c.bytes(name.as_bytes());
                for label in options.labels {
                    c.uint(key::LABEL, label.len() as u64);
                    c.bytes(label.as_bytes());
                }
                c.b[at] = (c.n - at - 1) as u8;
                (options.sibling_rank, options.description)
            }
            TrackKind::Thread {
                pid,
                tid,
                name,
                options,
            } => {
                c.byte(key::THREAD);
                let at = c.n;
                c.byte(0);
                c.uint(key::THREAD_PID, i64::from(pid) as u64);
                c.uint(key::TID, tid as u64);
                c.uint(key::THREAD_NAME, name.len() as u64);
                c.bytes(name.as_bytes());
                c.b[at] = (c.n - at - 1) as u8;
                (options.sibling_rank, options.description)
            }
            _ => (None, None),
        };
        if let Some(rank) = rank {
            c.uint(key::RANK, i64::from(rank) as u64);
        }
        if let Some(d) = description {
            c.uint(key::DESCRIPTION, d.len() as u64);
            c.bytes(d.as_bytes());
        }
        c.b[desc_at] = (c.n - desc_at - 1) as u8;
        if header.first_on_sequence {
            c.bytes(&key::FIRST_ON_SEQUENCE);
            c.byte(1);
        }
        c.b[1] = (c.n - 2) as u8;
        let n = c.n;
        self.out.commit(n);
        true
    }
}

/// The most bytes of a process's or thread's descriptor beside its
/// sequence id and texts: the packet's key and length (2), the flags (2),
/// the descriptor's key and length (3), the uuid (11), the process's or
/// thread's key and length (2), the pid and tid (22), the name's key and
/// length (2), the rank (11), the description's key and length (2), the
/// first-on-sequence mark (3).
const SMALL_TASK: usize = 60;

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
    use crate::track_options::{ChildOrdering, ProcessOptions, ThreadOptions};
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

    /// Processes and threads, of any options, on a sequence new or set up,
    /// with its own clock or not: the same bytes and packets through the
    /// short path as through the general encoder after the header.
    fn tasks(short: bool, clock: u32, seq_id: u32, names: &[String]) -> (Vec<u8>, u64, usize) {
        let mut enc = Emitter::new(false, (usize::MAX, usize::MAX));
        enc.clock = clock;
        enc.out.reserve_exact(1 << 20);
        let mut seq = SeqState::new(seq_id, None);
        let mut shorts = 0;
        let labels = ["canary", "eu"];
        for (i, name) in names.iter().enumerate() {
            let cmdline = ["svc", "--port", name.as_str()];
            let process = ProcessOptions {
                description: (i % 3 == 0).then_some(name.as_str()),
                labels: if i % 2 == 0 { &labels } else { &[] },
                sibling_rank: (i % 4 == 1).then_some(-(i as i32)),
            };
            let thread = ThreadOptions {
                description: (i % 3 == 1).then_some(name.as_str()),
                sibling_rank: (i % 5 == 2).then_some(i as i32 * 1000),
            };
            let kind = match i % 2 {
                0 => TrackKind::Process {
                    pid: [7, -1, i32::MAX][i % 3],
                    name,
                    cmdline: &cmdline[..i % 4],
                    options: &process,
                },
                _ => TrackKind::Thread {
                    pid: 7,
                    tid: [8, -9, i64::MAX, 1 << 40][i % 4],
                    name,
                    options: &thread,
                },
            };
            let uuid = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let before = (enc.out.len(), enc.packets);
            if short && enc.process_or_thread_descriptor(&mut seq, uuid, &kind) {
                shorts += 1;
                continue;
            }
            assert_eq!((enc.out.len(), enc.packets), before, "wrote and refused");
            let header = enc.header(&mut seq, false, 0);
            track_descriptor_packet(&mut enc.out, header, uuid, &kind);
        }
        (enc.out[..].to_vec(), enc.packets, shorts)
    }

    #[test]
    fn processes_and_threads_take_the_general_paths_bytes() {
        let names: Vec<String> = [0, 1, 5, 16, 40, 70, 127, 300]
            .iter()
            .cycle()
            .take(40)
            .enumerate()
            .map(|(i, &n)| "t".repeat(n) + &i.to_string())
            .collect();
        for clock in [crate::encoding::TRACE_CLOCK, 1] {
            for seq_id in [1, 300] {
                let (general, packets, _) = tasks(false, clock, seq_id, &names);
                let (short, short_packets, shorts) = tasks(true, clock, seq_id, &names);
                assert_eq!(short, general, "clock {clock}, sequence {seq_id}");
                assert_eq!(short_packets, packets);
                assert!(shorts >= 20, "{shorts} short");
                let trace = protos::Trace::decode(&short[..]).unwrap();
                assert_eq!(trace.packet.len() as u64, packets);
            }
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
