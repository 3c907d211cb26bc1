//! Packet sequences: what each `trusted_packet_sequence_id` has defined
//! (interned strings, defaults, its incremental clock), and the writer-wide
//! string tables they share. The emitter (`emitter.rs`) writes packets on
//! them.
//!
//! Strings are interned once per writer (`Strings`), whose id is their iid
//! on every sequence; each sequence defines a string the first time it uses
//! it. So a cache of string addresses serves every sequence, and each
//! sequence defines only what it uses.

use crate::callstacks::Callstacks;
use crate::encoding::{field, Field, TimeHigh};
use crate::interning::{Interner, Text};

/// The writer-wide string tables: string to a global id (from 1). Source
/// locations are keyed by file name and line.
pub(crate) struct Strings {
    /// The text of every table.
    pub(crate) text: Text,
    pub(crate) names: Interner,
    pub(crate) categories: Interner,
    pub(crate) locations: Interner,
    pub(crate) arg_names: Interner,
    /// Log message bodies (extra key 0) and correlation names (1): one
    /// table, whose ids are iids in either `InternedData` field. Made with
    /// its first entry, as `callstacks`: most writers never use either, and
    /// a writer's state, moved as it is built, stays smaller without them.
    pub(crate) more: Option<Box<Interner>>,
    /// Callstacks and what they are made of.
    pub(crate) callstacks: Option<Box<Callstacks>>,
    /// Entries of `more` and `callstacks` ([`Strings::recount`]), so that
    /// [`Strings::len`], read by every compact-mode begin, looks in neither.
    rare: usize,
}

impl Strings {
    /// No strings: a constant, so that a writer's tables are set up by
    /// plain stores in place, not each built apart and copied in.
    pub(crate) const EMPTY: Strings = Strings {
        text: Vec::new(),
        names: Interner::EMPTY,
        categories: Interner::EMPTY,
        locations: Interner::EMPTY,
        arg_names: Interner::EMPTY,
        more: None,
        callstacks: None,
        rare: 0,
    };

    /// [`Strings::EMPTY`] built field by field where it is wanted: a
    /// writer's constructor then stores its words in place, where the
    /// constant was copied into a temporary and then into place (two
    /// copies of 688 bytes).
    #[inline(always)]
    pub(crate) fn new() -> Self {
        Strings {
            text: Vec::new(),
            names: Interner::new(),
            categories: Interner::new(),
            locations: Interner::new(),
            arg_names: Interner::new(),
            more: None,
            callstacks: None,
            rare: 0,
        }
    }

    /// Entries of every table; read by every compact-mode begin.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.names.len()
            + self.categories.len()
            + self.locations.len()
            + self.arg_names.len()
            + self.rare
    }

    /// Counts `more` and `callstacks` again: after an event interned
    /// anything new there.
    pub(crate) fn recount(&mut self) {
        self.rare = self.more.as_ref().map_or(0, |m| m.len())
            + self.callstacks.as_ref().map_or(0, |c| c.len());
    }

    /// Bytes of the strings held.
    pub(crate) fn bytes(&self) -> usize {
        self.names.bytes()
            + self.categories.bytes()
            + self.locations.bytes()
            + self.arg_names.bytes()
            + self.more.as_ref().map_or(0, |m| m.bytes())
            + self.callstacks.as_ref().map_or(0, |c| c.bytes())
    }
}

/// Which of the writer's strings (by global id) one sequence has defined: a
/// bit each. A string's iid is its global id on every sequence, so a
/// sequence needs no map of its own, only these bits, which stay in cache
/// however many sequences there are.
#[derive(Default)]
pub(crate) struct Defined {
    bits: Vec<u64>,
}

impl Defined {
    pub(crate) fn clear(&mut self) {
        self.bits.clear();
    }

    /// Whether a string (its global id, and whether it is new to the
    /// writer) is new to this sequence, so the packet must define it; it is
    /// marked defined, and counted in `count`. `has_all`: the sequence had
    /// defined every string of the writer when the event began.
    #[inline(always)]
    pub(crate) fn first_use(
        &mut self,
        (global, new): (u64, bool),
        only_sequence: bool,
        has_all: bool,
        count: &mut usize,
    ) -> bool {
        if only_sequence {
            // The writer's only sequence: new to the writer is new here.
            return new;
        }
        if has_all && !new {
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
    pub(crate) fn intern(
        &mut self,
        table: &mut Interner,
        text: &mut Text,
        (s, extra): (&str, u32),
        scope: Scope,
        count: &mut usize,
    ) -> (u64, bool) {
        let global = table.intern(text, s, extra);
        let fresh = self.first_use(global, scope.only_sequence, scope.has_all, count);
        (global.0, fresh)
    }

    /// Whether a string (its global id) is defined here; marks nothing.
    #[inline(always)]
    pub(crate) fn has(&self, global: u32) -> bool {
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

/// What a sequence is known to have defined when an event begins, so that
/// `Defined::first_use` may skip its bits.
#[derive(Clone, Copy)]
pub(crate) struct Scope {
    /// It is the writer's only sequence (default mode): a string it has
    /// not defined is one new to the writer.
    pub(crate) only_sequence: bool,
    /// It had defined every string the writer held (its `defined` count was
    /// the writer's): a string not new to the writer is defined there.
    pub(crate) has_all: bool,
}

/// What one sequence has defined.
pub(crate) struct SeqState {
    /// `trusted_packet_sequence_id`, encoded once.
    pub(crate) id: Field,
    /// Whether its incremental state is set up in the current generation.
    pub(crate) started: bool,
    /// Whether it ever wrote a packet (`first_packet_on_sequence`).
    pub(crate) opened: bool,
    /// The generation of the writer's string tables its iids belong to
    /// (`Emitter::generation`: bumped each time the tables are emptied);
    /// behind the writer's, its bits are stale and cleared before its next
    /// packet.
    pub(crate) generation: u64,
    /// The writer's `fill_epoch` when a packet last set the sequence up
    /// with the tables not full, 0 when the tables were full. Invariant:
    /// `ready_at == fill_epoch` exactly when the sequence is started in the
    /// current generation and the tables are not full (see
    /// `Emitter::ready`), so the short paths test one word.
    pub(crate) ready_at: u64,
    /// The track its events belong to unless they name one (compact mode).
    pub(crate) default_track: Option<u64>,
    /// The value of its incremental clock: the last timestamp written as a
    /// delta (compact mode); always 0 on a sequence of absolute times, so
    /// that `ts - clock` is what either kind writes.
    pub(crate) clock: u64,
    /// What of a timestamp the clock keeps: all of it where timestamps are
    /// deltas, nothing where they are absolute. One code path, no branch on
    /// the kind of sequence (tracks of both kinds interleave in compact mode).
    pub(crate) clock_mask: u64,
    /// The high groups of the last time written on it (see [`TimeHigh`]).
    pub(crate) time_high: TimeHigh,
    pub(crate) names: Defined,
    pub(crate) categories: Defined,
    pub(crate) locations: Defined,
    pub(crate) arg_names: Defined,
    pub(crate) more: Defined,
    /// The callstack tables' entries: function names, source paths,
    /// frames, callstacks.
    pub(crate) functions: Defined,
    pub(crate) paths: Defined,
    pub(crate) frames: Defined,
    pub(crate) callstacks: Defined,
    /// How many strings the sets of bits hold (compact mode). Once it
    /// is the writer's count, every string is defined here, and an event
    /// that names none new to the writer skips the bits: most events of a
    /// busy track.
    pub(crate) defined: usize,
    /// Bytes of the packets that opened it, in every generation (compact
    /// mode: what a busy track paid for its sequence).
    pub(crate) opening_bytes: u64,
}

impl SeqState {
    #[inline]
    pub(crate) fn new(id: u32, default_track: Option<u64>) -> Self {
        SeqState {
            id: Field::uint(field::PACKET_SEQUENCE_ID, u64::from(id)),
            started: false,
            opened: false,
            generation: 0,
            ready_at: 0,
            default_track,
            clock: 0,
            clock_mask: if default_track.is_some() { u64::MAX } else { 0 },
            time_high: TimeHigh::NONE,
            names: Defined::default(),
            categories: Defined::default(),
            locations: Defined::default(),
            arg_names: Defined::default(),
            more: Defined::default(),
            functions: Defined::default(),
            paths: Defined::default(),
            frames: Defined::default(),
            callstacks: Defined::default(),
            defined: 0,
            opening_bytes: 0,
        }
    }
}

/// The writer's sequences: its own (index 0) held inline, since every
/// writer has it, and in compact mode one per busy track, with the span of
/// `trusted_packet_sequence_id`s they take their ids from.
pub(crate) struct Sequences {
    first: SeqState,
    rest: Vec<SeqState>,
    /// The writer's own sequence id, the first of its span.
    base_id: u32,
    /// How many ids the writer may use (`Options::partition`).
    span: u32,
}

impl Sequences {
    /// The writer's own sequence, `base_id`, and room for `span - 1` more.
    #[inline]
    pub(crate) fn new(base_id: u32, span: u32) -> Self {
        Sequences {
            first: SeqState::new(base_id, None),
            rest: Vec::new(),
            base_id,
            span,
        }
    }

    pub(crate) fn len(&self) -> usize {
        1 + self.rest.len()
    }

    /// The writer's own sequence id.
    pub(crate) fn base_id(&self) -> u32 {
        self.base_id
    }

    /// A new sequence whose default track is `track`, with the next id of
    /// the span; its index, or none once the span is used up.
    pub(crate) fn open(&mut self, track: u64) -> Option<usize> {
        let n = self.len() as u32;
        if n >= self.span {
            return None;
        }
        let id = self.base_id.checked_add(n)?;
        self.rest.push(SeqState::new(id, Some(track)));
        Some(self.rest.len())
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
