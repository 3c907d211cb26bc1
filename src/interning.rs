//! Interning tables: strings to iids, per sequence.
//!
//! A table hands out iids from 1 in order of first use and never redefines
//! one. Looking up a known string allocates nothing; only a miss stores a copy.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

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

/// Strings to iids. iids start at 1, in order of first use.
#[derive(Default)]
pub(crate) struct StringTable {
    ids: FastMap<Box<str>, u64>,
}

impl StringTable {
    /// The iid of `s`, and whether it is new (so its definition must be
    /// written in the packet that uses it).
    #[inline]
    pub(crate) fn intern(&mut self, s: &str) -> (u64, bool) {
        if let Some(&iid) = self.ids.get(s) {
            return (iid, false);
        }
        let iid = self.ids.len() as u64 + 1;
        self.ids.insert(s.into(), iid);
        (iid, true)
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }
}

/// Source locations (file, line) to iids. Files are stored once however many
/// lines refer to them.
#[derive(Default)]
pub(crate) struct LocationTable {
    files: FastMap<Box<str>, u32>,
    ids: FastMap<(u32, u32), u64>,
}

impl LocationTable {
    #[inline]
    pub(crate) fn intern(&mut self, file: &str, line: u32) -> (u64, bool) {
        let file_id = match self.files.get(file) {
            Some(&id) => id,
            None => {
                let id = self.files.len() as u32;
                self.files.insert(file.into(), id);
                id
            }
        };
        let next = self.ids.len() as u64 + 1;
        match self.ids.entry((file_id, line)) {
            std::collections::hash_map::Entry::Occupied(e) => (*e.get(), false),
            std::collections::hash_map::Entry::Vacant(e) => (*e.insert(next), true),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
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
    }
}
