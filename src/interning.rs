//! Interning tables: strings to iids, per sequence.
//!
//! A table hands out iids from 1 in order of first use and never redefines
//! one. Looking up a known string allocates nothing; only a miss stores a copy.
//!
//! Callers usually pass the same few strings again and again (string
//! literals, or names from a pool), so in front of each hash map sits a small
//! direct-mapped cache keyed by the string's address and length. A cache hit
//! is confirmed by comparing the contents with the stored string, so a reused
//! address never yields a wrong iid; it only saves hashing.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// A one-shot hasher for short keys: xxh3 over each written slice, chained.
#[derive(Default, Clone, Copy)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxh3_64_with_seed(bytes, self.0);
    }

    fn write_u8(&mut self, i: u8) {
        // `str` hashing ends with a 0xff marker byte; mixing it cheaply is enough.
        self.0 = (self.0 ^ u64::from(i)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(29) ^ i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 ^= self.0 >> 32;
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

/// The direct-mapped cache in front of a table. The slot is chosen by the
/// caller's string address (and length, and an extra key such as a line);
/// the entry holds the stored copy, so a hit is confirmed by comparing
/// contents with a single indirection. Allocated once a table holds a few
/// entries, so that tiny traces do not pay for it.
#[derive(Default)]
struct Hints(Vec<Option<Hint>>);

struct Hint {
    stored: Arc<str>,
    extra: u32,
    iid: u64,
}

const HINT_BITS: u32 = 10;
const HINTS_FROM: usize = 4;

impl Hints {
    #[inline(always)]
    fn slot(s: &str, extra: u32) -> usize {
        let key = (s.as_ptr() as u64) ^ ((s.len() as u64) << 40) ^ u64::from(extra).rotate_left(20);
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - HINT_BITS)) as usize
    }

    /// The iid of `s` (with `extra`) if the cache holds it.
    #[inline(always)]
    fn get(&self, s: &str, extra: u32) -> Option<u64> {
        let hint = self.0.get(Self::slot(s, extra))?.as_ref()?;
        (hint.extra == extra && same(&hint.stored, s)).then_some(hint.iid)
    }

    #[inline]
    fn set(&mut self, s: &str, stored: &Arc<str>, extra: u32, iid: u64, entries: usize) {
        if self.0.is_empty() {
            if entries < HINTS_FROM {
                return;
            }
            self.0.resize_with(1 << HINT_BITS, || None);
        }
        self.0[Self::slot(s, extra)] = Some(Hint {
            stored: stored.clone(),
            extra,
            iid,
        });
    }
}

/// `a == b` for the short strings interning sees: 8-byte words compared
/// inline (the last one overlapping the previous) rather than through a call
/// to `memcmp`.
#[inline(always)]
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let len = a.len();
    if len != b.len() {
        return false;
    }
    if !(8..=64).contains(&len) {
        return a == b;
    }
    let mut i = 0;
    while i + 8 < len {
        if a[i..i + 8] != b[i..i + 8] {
            return false;
        }
        i += 8;
    }
    a[len - 8..] == b[len - 8..]
}

/// Strings to iids. iids start at 1, in order of first use.
#[derive(Default)]
pub(crate) struct StringTable {
    /// Bytes of the strings stored.
    bytes: usize,
    ids: FastMap<Arc<str>, u64>,
    /// `strings[iid - 1]`, sharing storage with the map's keys.
    strings: Vec<Arc<str>>,
    hints: Hints,
}

impl StringTable {
    /// The iid of `s`, and whether it is new (so its definition must be
    /// written in the packet that uses it).
    #[inline]
    pub(crate) fn intern(&mut self, s: &str) -> (u64, bool) {
        match self.hints.get(s, 0) {
            Some(iid) => (iid, false),
            None => self.intern_slow(s),
        }
    }

    fn intern_slow(&mut self, s: &str) -> (u64, bool) {
        let (iid, fresh) = match self.ids.get(s) {
            Some(&iid) => (iid, false),
            None => {
                let iid = self.strings.len() as u64 + 1;
                self.bytes += s.len();
                let stored: Arc<str> = s.into();
                self.ids.insert(stored.clone(), iid);
                self.strings.push(stored);
                (iid, true)
            }
        };
        let stored = &self.strings[iid as usize - 1];
        self.hints.set(s, stored, 0, iid, self.strings.len());
        (iid, fresh)
    }

    pub(crate) fn len(&self) -> usize {
        self.strings.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The string of an iid this table gave.
    pub(crate) fn get(&self, iid: u64) -> Arc<str> {
        self.strings
            .get(iid as usize - 1)
            .cloned()
            .unwrap_or_else(|| "".into())
    }
}

/// Source locations (file, line) to iids. Files are stored once however many
/// lines refer to them.
#[derive(Default)]
pub(crate) struct LocationTable {
    /// Bytes of the file names stored.
    bytes: usize,
    files: FastMap<Arc<str>, u32>,
    file_names: Vec<Arc<str>>,
    ids: FastMap<(u32, u32), u64>,
    /// `locations[iid - 1]`: (file index, line).
    locations: Vec<(u32, u32)>,
    hints: Hints,
}

impl LocationTable {
    #[inline]
    pub(crate) fn intern(&mut self, file: &str, line: u32) -> (u64, bool) {
        match self.hints.get(file, line) {
            Some(iid) => (iid, false),
            None => self.intern_slow(file, line),
        }
    }

    fn intern_slow(&mut self, file: &str, line: u32) -> (u64, bool) {
        let file_id = match self.files.get(file) {
            Some(&id) => id,
            None => {
                let id = self.file_names.len() as u32;
                self.bytes += file.len();
                let stored: Arc<str> = file.into();
                self.files.insert(stored.clone(), id);
                self.file_names.push(stored);
                id
            }
        };
        let next = self.locations.len() as u64 + 1;
        let (iid, fresh) = match self.ids.entry((file_id, line)) {
            std::collections::hash_map::Entry::Occupied(e) => (*e.get(), false),
            std::collections::hash_map::Entry::Vacant(e) => {
                self.locations.push((file_id, line));
                (*e.insert(next), true)
            }
        };
        let stored = &self.file_names[file_id as usize];
        self.hints
            .set(file, stored, line, iid, self.locations.len());
        (iid, fresh)
    }

    pub(crate) fn len(&self) -> usize {
        self.locations.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iids_start_at_one_and_are_stable() {
        let mut t = StringTable::default();
        assert_eq!(t.intern("a"), (1, true));
        assert_eq!(t.intern(""), (2, true));
        assert_eq!(t.intern("a"), (1, false));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn locations_share_files() {
        let mut t = LocationTable::default();
        assert_eq!(t.intern("f.rs", 1), (1, true));
        assert_eq!(t.intern("f.rs", 2), (2, true));
        assert_eq!(t.intern("g.rs", 1), (3, true));
        assert_eq!(t.intern("f.rs", 2), (2, false));
        assert_eq!(t.len(), 3);
        assert_eq!(t.file_names.len(), 2);
    }

    #[test]
    fn same_agrees_with_eq_at_every_length_and_difference() {
        for len in 0..80 {
            let a: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            assert!(same(&a, &a.clone()));
            for at in 0..len {
                let mut b = a.clone().into_bytes();
                b[at] = b'#';
                let b = String::from_utf8(b).unwrap();
                assert!(!same(&a, &b), "len {len}, differs at {at}");
            }
            assert!(!same(&a, &format!("{a}x")));
        }
    }

    /// The cache is keyed by address: a buffer reused for other contents
    /// must not return the old iid.
    #[test]
    fn reused_buffers_never_alias() {
        let mut t = StringTable::default();
        let mut l = LocationTable::default();
        let mut buf = String::with_capacity(64);
        for round in 0..3 {
            for i in 0..50u32 {
                buf.clear();
                buf.push_str(&format!("name-{i:04}"));
                assert_eq!(t.intern(&buf), (u64::from(i) + 1, round == 0), "{buf}");
                assert_eq!(
                    l.intern(&buf, i % 3),
                    (u64::from(i) + 1, round == 0),
                    "{buf}"
                );
            }
        }
        let literal = "name-0007";
        assert_eq!(t.intern(literal), (8, false));
    }
}
