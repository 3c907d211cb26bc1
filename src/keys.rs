//! Event keys: a call site's name, category and source location registered
//! once with a writer, and the iids they had when last written.
//!
//! A key holds no iids of its own: the writer's string tables assign them
//! in order of first use, as for strings, so a key's events write the bytes
//! the same strings would. What a key saves is the lookup: each key caches
//! the global ids and iid codes its strings have in the current generation
//! of the tables, and a begin that finds its cache current (one comparison)
//! writes them without looking anything up. A cache from an older
//! generation (the tables were emptied at `Options::intern_limit`) is
//! refreshed by the next event that interns the key's strings again.

use std::collections::HashMap;

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::error::{check_len, Error, Result};
use crate::ids::Owner;

/// A call site registered with a writer
/// ([`TraceWriter::event_key`](crate::TraceWriter::event_key)): its name,
/// category and source location, given to begins, complete spans and
/// instants in place of the three strings
/// ([`span_begin_key`](crate::TraceWriter::span_begin_key),
/// [`Event::from_key`](crate::Event::from_key)). The trace is byte for byte the
/// one the strings would give; the writer skips looking them up.
///
/// Valid only for the writer that made it, in every generation of its
/// interning tables and on every sequence; another writer answers
/// [`Error::ForeignKey`](crate::Error::ForeignKey).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EventKey {
    pub(crate) owner: Owner,
    pub(crate) index: u32,
}

/// A key's strings, end to end in one allocation: name, category, file.
struct Site {
    text: Box<str>,
    name_len: u32,
    category_len: u32,
    line: u32,
}

impl Site {
    fn strings(&self) -> (&str, &str, &str, u32) {
        let (name, rest) = self.text.split_at(self.name_len as usize);
        let (category, file) = rest.split_at(self.category_len as usize);
        (name, category, file, self.line)
    }
}

/// What a key's strings are in one generation of the writer's tables:
/// their global ids (0 for none), for the bits of defined strings a
/// sequence keeps, and their iids as the short begin encoder takes them
/// (`iid_code`). Ordered category, name, location, as `begin_packet` takes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cached {
    /// The generation of the tables these ids belong to; `u64::MAX` for
    /// none.
    pub(crate) generation: u64,
    pub(crate) globals: [u32; 3],
    pub(crate) codes: [u32; 3],
}

impl Cached {
    const NONE: Cached = Cached {
        generation: u64::MAX,
        globals: [0; 3],
        codes: [0; 3],
    };
}

/// A writer's keys, in order of registration; never removed, so a key of
/// this writer always indexes one.
pub(crate) struct Keys {
    owner: Owner,
    sites: Vec<Site>,
    /// Beside the strings, so that a begin reads one small entry.
    cache: Vec<Cached>,
    /// Keys by a hash of their strings, so that registering a site again
    /// gives its key. (Two sites whose hashes collide both get keys; only
    /// the first is found again.)
    by_hash: HashMap<u64, u32>,
}

impl Keys {
    pub(crate) fn new(owner: Owner) -> Self {
        Keys {
            owner,
            sites: Vec::new(),
            cache: Vec::new(),
            by_hash: HashMap::new(),
        }
    }

    /// The key of a site, registered now if it is new.
    ///
    /// # Errors
    /// [`Error::StringTooLong`]; [`Error::TooManyKeys`] past `u32::MAX` keys.
    pub(crate) fn register(
        &mut self,
        name: &str,
        category: &str,
        file: &str,
        line: u32,
    ) -> Result<EventKey> {
        check_len([name, category, file])?;
        let mut text = String::with_capacity(name.len() + category.len() + file.len());
        text.push_str(name);
        text.push_str(category);
        text.push_str(file);
        // The lengths and line are hashed too: "ab" + "c" is not "a" + "bc".
        let seed = (name.len() as u64) << 32 ^ category.len() as u64;
        let hash = xxh3_64_with_seed(text.as_bytes(), seed)
            ^ u64::from(line).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        if let Some(&index) = self.by_hash.get(&hash) {
            if self.sites[index as usize].strings() == (name, category, file, line) {
                return Ok(EventKey {
                    owner: self.owner,
                    index,
                });
            }
        }
        let index = u32::try_from(self.sites.len()).map_err(|_| Error::TooManyKeys)?;
        self.sites.push(Site {
            text: text.into_boxed_str(),
            name_len: name.len() as u32,
            category_len: category.len() as u32,
            line,
        });
        self.cache.push(Cached::NONE);
        self.by_hash.entry(hash).or_insert(index);
        Ok(EventKey {
            owner: self.owner,
            index,
        })
    }

    /// Whether `key` (if any) is one of this writer's: the fast paths'
    /// check, which [`Keys::check`] turns into an error.
    #[inline(always)]
    pub(crate) fn holds(&self, key: Option<EventKey>) -> bool {
        key.is_none_or(|k| k.owner == self.owner)
    }

    /// [`Error::ForeignKey`] for a key of another writer.
    pub(crate) fn check(&self, key: Option<EventKey>) -> Result<()> {
        match key {
            Some(k) if k.owner != self.owner || k.index as usize >= self.sites.len() => {
                Err(Error::ForeignKey)
            }
            _ => Ok(()),
        }
    }

    /// A key's name, category, file and line ("" and 0 for a foreign key,
    /// which the core refuses before anything is written).
    pub(crate) fn strings(&self, key: EventKey) -> (&str, &str, &str, u32) {
        match self.sites.get(key.index as usize) {
            Some(site) if key.owner == self.owner => site.strings(),
            _ => ("", "", "", 0),
        }
    }

    /// What the key's strings were when last interned.
    #[inline(always)]
    pub(crate) fn cached(&self, key: EventKey) -> Option<&Cached> {
        self.cache.get(key.index as usize)
    }

    /// Records what the key's strings are in generation `generation`.
    pub(crate) fn store(&mut self, key: EventKey, cached: Cached) {
        if let Some(c) = self.cache.get_mut(key.index as usize) {
            *c = cached;
        }
    }

    /// Keys registered.
    pub(crate) fn len(&self) -> usize {
        self.sites.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_registered_again_has_its_key() {
        let mut keys = Keys::new(Owner(7));
        let a = keys.register("query", "sql", "db.rs", 10).unwrap();
        let b = keys.register("parse", "sql", "db.rs", 10).unwrap();
        assert_ne!(a, b);
        assert_eq!(keys.register("query", "sql", "db.rs", 10).unwrap(), a);
        // Same text, cut elsewhere; or another line: other sites.
        let c = keys.register("querys", "ql", "db.rs", 10).unwrap();
        let d = keys.register("query", "sql", "db.rs", 11).unwrap();
        assert_eq!(keys.len(), 4);
        assert_eq!(keys.strings(c), ("querys", "ql", "db.rs", 10));
        assert_eq!(keys.strings(d), ("query", "sql", "db.rs", 11));
        assert_eq!(keys.strings(a), ("query", "sql", "db.rs", 10));
    }

    #[test]
    fn keys_of_another_writer_are_refused() {
        let mut mine = Keys::new(Owner(1));
        let mut theirs = Keys::new(Owner(2));
        let k = theirs.register("x", "", "", 0).unwrap();
        mine.register("x", "", "", 0).unwrap();
        assert!(!mine.holds(Some(k)));
        assert!(matches!(mine.check(Some(k)), Err(Error::ForeignKey)));
        assert_eq!(mine.strings(k), ("", "", "", 0));
        assert!(mine.holds(None) && mine.check(None).is_ok());
    }
}
