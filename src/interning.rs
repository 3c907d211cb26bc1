//! Interning tables: strings to ids from 1, in order of first use.
//!
//! Tables store their strings end to end in one text they share, so a new
//! string costs no allocation of its own (only, now and then, the growth of
//! that buffer), and dropping the tables frees a handful of blocks however
//! many strings they hold. Each string follows a header (its iid as a begin
//! writes it, its length and extra key), so that confirming a hint reads
//! one place. Lookups go, fastest first, through:
//!
//! - a hint cache keyed by the caller's string address (and an extra key
//!   such as a line): callers pass the same few strings again and
//!   again (literals, names from a pool), so this usually answers. A hint
//!   holds where its key lives in the text, and is confirmed by comparing
//!   contents, so a reused address never yields a wrong id; it only saves
//!   hashing;
//! - a linear scan while the table is small (no index allocated);
//! - an open-addressed index of (hash, id) pairs once it is not.

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::encoding::iid_code;

/// Where a stored key lives in the table's text, and its extra key: 16
/// bytes, four to a cache line. Lengths fit 32 bits because the core
/// refuses strings over `MAX_STRING_LEN` (16 MiB) before anything is
/// interned.
#[derive(Clone, Copy, Default)]
struct Entry {
    start: usize,
    len: u32,
    extra: u32,
}

impl Entry {
    const EMPTY: Entry = Entry {
        start: 0,
        len: 0,
        extra: 0,
    };
}

/// Entries kept inline before a table allocates.
const INLINE: usize = 4;

/// A table's entries: the first few inline, the rest in a `Vec`. A small
/// trace's tables hold a handful of strings each, and their three `Vec`s
/// were three of its ten allocations. Only the slow paths read entries.
struct Entries {
    inline: [Entry; INLINE],
    rest: Vec<Entry>,
    len: usize,
}

impl Entries {
    const EMPTY: Entries = Entries {
        inline: [Entry::EMPTY; INLINE],
        rest: Vec::new(),
        len: 0,
    };

    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, i: usize) -> Option<&Entry> {
        if i >= self.len {
            None
        } else if i < INLINE {
            self.inline.get(i)
        } else {
            self.rest.get(i - INLINE)
        }
    }

    fn push(&mut self, entry: Entry) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = entry,
            None => {
                if self.rest.is_empty() {
                    self.rest.reserve(SCAN_UP_TO);
                }
                self.rest.push(entry);
            }
        }
        self.len += 1;
    }

    fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.inline[..self.len.min(INLINE)].iter().chain(&self.rest)
    }
}

/// Tables up to this size are searched linearly, without an index.
const SCAN_UP_TO: usize = 8;

/// Hints are kept once a table holds this many entries.
const HINTS_FROM: usize = 4;

// A table without hints holds its entries inline (`Interner::intern_few`).
const _: () = assert!(HINTS_FROM <= INLINE);

/// The hint cache starts with 2^this sets (8 KiB)...
const HINT_SETS_BITS: u32 = 8;

/// ...and doubles while the table holds half as many entries as it has
/// sets, up to 2^this sets (2 MiB). Past a few thousand strings a cache of
/// fixed size would send most lookups down the slow path (hashing the
/// string); with two sets an entry, collisions that evict are rare.
const HINT_SETS_MAX_BITS: u32 = 16;

/// The encoder starts a new generation of the tables once they hold this
/// many entries together (see `Emitter::check_limits`); one event cannot add
/// 2^31 more, so ids always fit `u32`.
pub(crate) const MAX_ENTRIES: usize = (1 << 31) - 1;

/// The text the tables of one writer share: each key's header then its
/// bytes. The header is four little-endian `u32`s: the key's id as the
/// short path of a begin writes it ([`iid_code`]), 0, and the key's length
/// and extra key, which a hint's hit compares as one word.
pub(crate) type Text = Vec<u8>;

const HEADER: usize = 16;

/// One hint: the address a key was last passed at, and the entry found for
/// it with the place of its bytes in the text. A hit then reads the set and
/// the text, one after the other, and no entry: two dependent loads, not
/// three.
#[derive(Clone, Copy, Default)]
struct Hint {
    addr: usize,
    /// Below 2^32: keys stored further into the text get no hint.
    start: u32,
    /// 0: empty.
    id: u32,
}

/// Two hints, most recent first, in half a cache line.
#[derive(Clone, Copy, Default)]
#[repr(align(32))]
struct HintSet([Hint; 2]);

/// Open addressing with linear probing, at most half full: slot = (the high
/// half of the key's hash, id), id 0 marking an empty slot.
struct Index {
    slots: Vec<(u32, u32)>,
}

impl Index {
    const EMPTY: Index = Index { slots: Vec::new() };

    #[inline]
    fn find(&self, hash: u64, mut is: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let tag = (hash >> 32) as u32;
        let mut i = tag as usize & mask;
        loop {
            let (t, id) = self.slots[i];
            if id == 0 {
                return None;
            }
            if t == tag && is(id) {
                return Some(id);
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds `id`, the `count`-th entry, growing first to stay half empty.
    fn insert(&mut self, hash: u64, id: u32, count: usize) {
        if count * 2 > self.slots.len() {
            let old = std::mem::take(&mut self.slots);
            self.slots = vec![(0, 0); (count * 2).next_power_of_two().max(32)];
            for (t, id) in old.into_iter().filter(|&(_, id)| id != 0) {
                self.place(t, id);
            }
        }
        self.place((hash >> 32) as u32, id);
    }

    fn place(&mut self, tag: u32, id: u32) {
        let mask = self.slots.len() - 1;
        let mut i = tag as usize & mask;
        while self.slots[i].1 != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = (tag, id);
    }
}

/// Keys (a string and an extra `u32`) to ids from 1, in order of first use.
/// Ids are never reused or redefined. The strings live in a `text` buffer
/// the caller passes in, which several tables may share (one allocation for
/// all of them); it must only ever be appended to.
pub(crate) struct Interner {
    /// Bytes of the strings this table added to the text.
    bytes: usize,
    /// `entries[id - 1]`.
    entries: Entries,
    index: Index,
    /// The hint cache.
    hints: Vec<HintSet>,
    /// The hint cache holds 2^this sets.
    hint_bits: u32,
}

impl Interner {
    /// An empty table: a constant, so that a writer's tables are set up by
    /// plain stores, not built apart and copied into place.
    pub(crate) const EMPTY: Interner = Interner {
        bytes: 0,
        entries: Entries::EMPTY,
        index: Index::EMPTY,
        // The cache is allocated once the table holds `HINTS_FROM`
        // entries; until then no set is found in it.
        hints: Vec::new(),
        hint_bits: HINT_SETS_BITS,
    };
}

impl Interner {
    /// [`Interner::EMPTY`], built in place (see `Strings::new`).
    #[inline(always)]
    pub(crate) fn new() -> Self {
        Interner {
            bytes: 0,
            entries: Entries {
                inline: [Entry::EMPTY; INLINE],
                rest: Vec::new(),
                len: 0,
            },
            index: Index { slots: Vec::new() },
            hints: Vec::new(),
            hint_bits: HINT_SETS_BITS,
        }
    }
}

impl Default for Interner {
    #[inline]
    fn default() -> Self {
        Interner::EMPTY
    }
}

fn hash(s: &str, extra: u32) -> u64 {
    hash_bytes(s.as_bytes(), extra)
}

fn hash_bytes(s: &[u8], extra: u32) -> u64 {
    xxh3_64_with_seed(s, u64::from(extra))
}

impl Interner {
    /// The id of (`s`, `extra`), and whether it is new (so its definition
    /// must be written in the packet that uses it).
    #[inline(always)]
    pub(crate) fn intern(&mut self, text: &mut Text, s: &str, extra: u32) -> (u64, bool) {
        match self.hinted(text, s, extra) {
            Some(id) => (u64::from(id), false),
            None => self.intern_slow(text, s, extra),
        }
    }

    /// The id of (`s`, `extra`) if the table holds it; never adds it.
    pub(crate) fn find(&self, text: &[u8], s: &str, extra: u32) -> Option<u64> {
        self.hinted(text, s, extra)
            .or_else(|| self.search(text, s, extra))
            .map(u64::from)
    }

    #[inline(always)]
    fn is(&self, text: &[u8], id: u32, s: &str, extra: u32) -> bool {
        match self.entries.get((id as usize).wrapping_sub(1)) {
            Some(e) => {
                e.extra == extra
                    && e.len as usize == s.len()
                    && text
                        .get(e.start..e.start + s.len())
                        .is_some_and(|a| same(a, s.as_bytes()))
            }
            None => false,
        }
    }

    #[inline(always)]
    fn hint_set(&self, s: &str, extra: u32) -> usize {
        // The address in 16-byte steps and the extra key, the bits above
        // the set's folded onto it: a few operations between the caller's
        // pointer and the load of the set, which a begin waits on (a
        // multiplication would lengthen that wait). Strings
        // allocated one after another take neighbouring sets; the fold
        // keeps addresses a multiple of the cache's span apart in different
        // ones. The length is left out: keys at one address with different
        // lengths share a set, and the stored header tells them apart.
        let key = (s.as_ptr() as u64 >> 4) ^ u64::from(extra);
        (key ^ key >> self.hint_bits) as usize & self.hints.len().wrapping_sub(1)
    }

    /// The id of (`s`, `extra`) if its hint finds it: no hashing, no
    /// search, nothing added.
    #[inline(always)]
    pub(crate) fn hinted(&self, text: &[u8], s: &str, extra: u32) -> Option<u32> {
        self.hinted_code(text, s, extra).map(|(id, _)| id)
    }

    /// [`Interner::hinted`], with the id's [`iid_code`] kept in the text.
    #[inline(always)]
    pub(crate) fn hinted_code(&self, text: &[u8], s: &str, extra: u32) -> Option<(u32, u32)> {
        let set = self.hints.get(self.hint_set(s, extra))?;
        // The way is picked by address without a branch; the header (length
        // and extra key) and the bytes then confirm it.
        let [a, b] = &set.0;
        let h = if a.addr == s.as_ptr() as usize { a } else { b };
        // An empty hint's address is 0, which no `&str` has.
        if h.addr != s.as_ptr() as usize {
            return None;
        }
        let start = h.start as usize;
        let stored = text.get(start.wrapping_sub(HEADER)..start + s.len())?;
        let (header, bytes) = stored.split_at(HEADER);
        let word = |at: usize| {
            let mut w = [0; 8];
            w.copy_from_slice(&header[at..at + 8]);
            u64::from_le_bytes(w)
        };
        let key = s.len() as u64 | u64::from(extra) << 32;
        (word(8) == key && same(bytes, s.as_bytes())).then_some((h.id, word(0) as u32))
    }

    /// The id of (`s`, `extra`) if the table holds it, by scan or index:
    /// [`Interner::find`] without the hint, for callers that tried it.
    /// Inlined: a call cost a small trace's first uses 20 instructions each
    /// in saving and restoring registers, as much as their scans.
    #[inline(always)]
    pub(crate) fn search(&self, text: &[u8], s: &str, extra: u32) -> Option<u32> {
        if self.index.slots.is_empty() {
            let mut id = 0;
            while (id as usize) < self.entries.len() {
                id += 1;
                if self.is(text, id, s, extra) {
                    return Some(id);
                }
            }
            return None;
        }
        self.index
            .find(hash(s, extra), |id| self.is(text, id, s, extra))
    }

    #[cold]
    fn intern_slow(&mut self, text: &mut Text, s: &str, extra: u32) -> (u64, bool) {
        // All inline (`HINTS_FROM <= INLINE`), and no hints even with one
        // more.
        if let Some(few) = self.entries.inline.get(..self.entries.len) {
            if few.len() + 1 < HINTS_FROM {
                return self.intern_few(text, s, extra);
            }
        }
        let (id, fresh) = match self.search(text, s, extra) {
            Some(id) => (id, false),
            None => (self.add(text, s, extra), true),
        };
        let count = self.entries.len();
        if count >= HINTS_FROM {
            let bits = self.hint_bits;
            if self.hints.is_empty() || (count >> (bits - 1) != 0 && bits < HINT_SETS_MAX_BITS) {
                // Started, or doubled: emptied, it fills again as hints miss.
                let bits = bits + u32::from(!self.hints.is_empty());
                self.hints = vec![HintSet::default(); 1 << bits];
                self.hint_bits = bits;
            }
            // Most recent first: the older way is the one replaced.
            let set = self.hint_set(s, extra);
            let start = self.entries.get(id as usize - 1).map(|e| e.start);
            if let Some(Ok(start)) = start.map(u32::try_from) {
                let ways = &mut self.hints[set].0;
                ways[1] = ways[0];
                ways[0] = Hint {
                    addr: s.as_ptr() as usize,
                    start,
                    id,
                };
            }
        }
        (u64::from(id), fresh)
    }

    /// [`Interner::intern_slow`] for a table whose entries are all inline
    /// and that has no hints even with one more (a small trace's tables):
    /// its entries scanned in place, with none of the index's or the hints'
    /// work, which starts later. Inlined into `intern_slow`: the general
    /// path's tests of each entry's place and of the table's size cost a
    /// small trace's nine first uses ~45 instructions each.
    #[inline(always)]
    fn intern_few(&mut self, text: &mut Text, s: &str, extra: u32) -> (u64, bool) {
        let len = self.entries.len;
        let few = &self.entries.inline[..len.min(INLINE)];
        let found = few.iter().position(|e| {
            e.extra == extra
                && e.len as usize == s.len()
                && text
                    .get(e.start..e.start + s.len())
                    .is_some_and(|a| same(a, s.as_bytes()))
        });
        if let Some(i) = found {
            return (i as u64 + 1, false);
        }
        let id = len as u32 + 1;
        let start = self.append(text, id, s, extra);
        let entry = Entry {
            start,
            len: s.len() as u32,
            extra,
        };
        match self.entries.inline.get_mut(len) {
            Some(slot) => {
                *slot = entry;
                self.entries.len += 1;
            }
            // Never (the caller found room inline); kept whole all the same.
            None => self.entries.push(entry),
        }
        (u64::from(id), true)
    }

    /// Appends key `id`'s header and bytes to the text; where its bytes
    /// start. Counts them in the table's bytes.
    #[inline(always)]
    fn append(&mut self, text: &mut Text, id: u32, s: &str, extra: u32) -> usize {
        if text.capacity() == 0 {
            // Room for a few strings at once, rather than growth from 8
            // bytes; made anew, which calls the allocator directly where
            // `reserve` takes the growth path (~60 instructions more).
            *text = Text::with_capacity((HEADER + s.len()).max(256));
        }
        debug_assert!(s.len() <= crate::limits::MAX_STRING_LEN);
        let key = s.len() as u64 | u64::from(extra) << 32;
        let header = u128::from(iid_code(id)) | u128::from(key) << 64;
        text.extend_from_slice(&header.to_le_bytes());
        let start = text.len();
        text.extend_from_slice(s.as_bytes());
        self.bytes += s.len();
        start
    }

    fn add(&mut self, text: &mut Text, s: &str, extra: u32) -> u32 {
        // Below 2^32: see MAX_ENTRIES.
        let id = u32::try_from(self.entries.len() + 1).unwrap_or(u32::MAX);
        let start = self.append(text, id, s, extra);
        self.entries.push(Entry {
            start,
            len: s.len() as u32,
            extra,
        });
        let count = self.entries.len();
        if count > SCAN_UP_TO {
            if self.index.slots.is_empty() {
                for (i, e) in self.entries.iter().take(count - 1).enumerate() {
                    let s = &text[e.start..e.start + e.len as usize];
                    self.index
                        .insert(hash_bytes(s, e.extra), i as u32 + 1, i + 1);
                }
            }
            self.index.insert(hash(s, extra), id, count);
        }
        id
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Bytes of the strings held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The string of an id this table gave ("" for any other).
    pub(crate) fn get<'t>(&self, text: &'t [u8], id: u64) -> &'t str {
        let e = self.entries.get((id as usize).wrapping_sub(1));
        // The text holds only `str`s' bytes and headers, and an entry's
        // range is one such `str`: this never fails.
        e.and_then(|e| text.get(e.start..e.start + e.len as usize))
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }
}

/// Whether `a == b`, two slices of the same length, for the short strings
/// interning sees: up to 32 bytes, a fixed set of overlapping words
/// compared without an early exit, so that strings of varying length within
/// a size class take the same branches (a loop over words mispredicts its
/// exit whenever the length changes); longer ones through `memcmp`.
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    let len = b.len();
    if a.len() != len {
        return false;
    }
    // Longest first: names and paths are mostly 8 to 32 bytes, which this
    // order tells apart in two comparisons.
    if len > 16 {
        if len > 32 {
            return a == b;
        }
        let d = |at| diff::<8>(a, b, at);
        d(0) | d(8) | d(len - 16) | d(len - 8) == 0
    } else if len >= 8 {
        diff::<8>(a, b, 0) | diff::<8>(a, b, len - 8) == 0
    } else if len >= 4 {
        diff::<4>(a, b, 0) | diff::<4>(a, b, len - 4) == 0
    } else if len > 0 {
        (a[0] ^ b[0]) | (a[len / 2] ^ b[len / 2]) | (a[len - 1] ^ b[len - 1]) == 0
    } else {
        true
    }
}

/// The bits in which the `N`-byte words (`N` ≤ 8) at `at` of `a` and `b`
/// differ.
#[inline(always)]
fn diff<const N: usize>(a: &[u8], b: &[u8], at: usize) -> u64 {
    let word = |s: &[u8]| {
        let mut w = [0; 8];
        w[..N].copy_from_slice(&s[at..at + N]);
        u64::from_le_bytes(w)
    };
    word(a) ^ word(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table with a text of its own, as the tests use it.
    #[derive(Default)]
    struct Table {
        text: Text,
        t: Interner,
    }

    impl Table {
        fn intern(&mut self, s: &str, extra: u32) -> (u64, bool) {
            self.t.intern(&mut self.text, s, extra)
        }
        fn find(&self, s: &str, extra: u32) -> Option<u64> {
            self.t.find(&self.text, s, extra)
        }
        fn get(&self, id: u64) -> &str {
            self.t.get(&self.text, id)
        }
        fn len(&self) -> usize {
            self.t.len()
        }
        fn bytes(&self) -> usize {
            self.t.bytes()
        }
    }

    /// Tables sharing one text keep their own ids and byte counts.
    #[test]
    fn tables_share_a_text() {
        let mut text = Text::new();
        let (mut a, mut b) = (Interner::default(), Interner::default());
        assert_eq!(a.intern(&mut text, "x", 0), (1, true));
        assert_eq!(b.intern(&mut text, "yy", 0), (1, true));
        assert_eq!(b.intern(&mut text, "x", 0), (2, true));
        assert_eq!(a.intern(&mut text, "yy", 0), (2, true));
        assert_eq!((a.get(&text, 1), a.get(&text, 2)), ("x", "yy"));
        assert_eq!((b.get(&text, 1), b.get(&text, 2)), ("yy", "x"));
        // Each key's bytes after its header.
        assert_eq!((a.bytes(), b.bytes(), text.len()), (3, 3, 6 + 4 * HEADER));
        assert_eq!(a.find(&text, "x", 0), Some(1));
        assert_eq!(b.find(&text, "x", 0), Some(2));
    }

    #[test]
    fn ids_start_at_one_and_are_stable() {
        let mut t = Table::default();
        assert_eq!(t.intern("a", 0), (1, true));
        assert_eq!(t.intern("", 0), (2, true));
        assert_eq!(t.intern("a", 0), (1, false));
        assert_eq!(t.intern("a", 7), (3, true));
        assert_eq!(t.intern("a", 7), (3, false));
        assert_eq!(t.len(), 3);
        assert_eq!(t.bytes(), 2);
        assert_eq!(
            (t.get(1), t.get(2), t.get(3), t.get(0), t.get(9)),
            ("a", "", "a", "", "")
        );
    }

    /// Past the linear scan, through several growths of the index, with
    /// and without hints (fresh `String`s have fresh addresses).
    #[test]
    fn every_key_is_found_at_every_size() {
        let mut t = Table::default();
        let key = |i: u32| format!("key-{}", i * 7919);
        for i in 0..5000u32 {
            assert_eq!(t.intern(&key(i), i % 5), (u64::from(i) + 1, true));
            if i % 97 == 0 || i < 40 {
                for j in 0..=i {
                    assert_eq!(t.find(&key(j), j % 5), Some(u64::from(j) + 1));
                    assert_eq!(t.find(&key(j), j % 5 + 1), None);
                }
            }
        }
        for i in 0..5000u32 {
            assert_eq!(t.intern(&key(i), i % 5), (u64::from(i) + 1, false));
            assert_eq!(t.get(u64::from(i) + 1), key(i));
        }
        assert_eq!(t.find("absent", 0), None);
    }

    /// A pool of strings as a caller holds them (one allocation each, an
    /// allocator's stride apart), larger than the cache's first size: once
    /// every string was seen, nearly all are found through their hints.
    /// With a cache of fixed size, or sets taken from the product of the
    /// address alone, 40% or more went down the slow path.
    #[test]
    fn hints_serve_pools_larger_than_the_first_cache() {
        let mut t = Table::default();
        let pool: Vec<String> = (0..4096)
            .map(|i| format!("op_{i:05}_handler_name"))
            .collect();
        for round in 0..2 {
            for s in &pool {
                t.intern(s, 0);
            }
            if round == 1 {
                let hinted = pool.iter().filter(|s| t.t.hinted(&t.text, s, 0).is_some());
                let hinted = hinted.count();
                assert!(hinted * 10 >= pool.len() * 9, "{hinted} of 4096 hinted");
            }
        }
        assert_eq!(t.t.hint_bits, 14, "16,384 sets for 4,096 strings");
    }

    /// Keys whose hashes collide are told apart by their contents.
    #[test]
    fn colliding_hashes_are_told_apart() {
        let mut index = Index::EMPTY;
        for id in 1..=100u32 {
            index.insert(0xdead_beef_0000_0000, id, id as usize);
        }
        for id in 1..=100u32 {
            assert_eq!(index.find(0xdead_beef_0000_0000, |x| x == id), Some(id));
        }
        assert_eq!(index.find(0xdead_beef_0000_0000, |_| false), None);
        assert_eq!(index.find(0x1234_0000_0000, |_| true), None);
    }

    #[test]
    fn same_agrees_with_eq_at_every_length_and_difference() {
        for len in 0..80 {
            let a: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let text = format!("xyz{a}");
            let stored = &text.as_bytes()[3..3 + len];
            assert!(same(stored, a.as_bytes()));
            for at in 0..len {
                let mut b = a.clone().into_bytes();
                b[at] = b'#';
                let b = String::from_utf8(b).unwrap();
                assert!(!same(stored, b.as_bytes()), "len {len}, differs at {at}");
            }
            assert!(!same(stored, format!("{a}x").as_bytes()));
        }
    }

    /// Hints are keyed by address: a buffer reused for other contents must
    /// not return the old id.
    #[test]
    fn reused_buffers_never_alias() {
        let mut t = Table::default();
        let mut l = Table::default();
        let mut buf = String::with_capacity(64);
        for round in 0..3 {
            for i in 0..50u32 {
                buf.clear();
                buf.push_str(&format!("name-{i:04}"));
                assert_eq!(t.intern(&buf, 0), (u64::from(i) + 1, round == 0), "{buf}");
                assert_eq!(
                    l.intern(&buf, i % 3),
                    (u64::from(i) + 1, round == 0),
                    "{buf}"
                );
            }
        }
        assert_eq!(t.intern("name-0007", 0), (8, false));
        // The same address holding a prefix of the hinted key, or the same
        // key with another extra key, is another key.
        let mut u = Table::default();
        for i in 0..8u32 {
            u.intern(&format!("filler-{i}"), 0);
        }
        buf.clear();
        buf.push_str("abcdefghijklmnopq");
        assert_eq!(u.intern(&buf, 1), (9, true));
        assert_eq!(u.intern(&buf, 1), (9, false));
        assert_eq!(u.intern(&buf, 2), (10, true));
        buf.truncate(16);
        assert_eq!(u.intern(&buf, 1), (11, true));
        assert_eq!(u.intern(&buf, 1), (11, false));
    }
}
