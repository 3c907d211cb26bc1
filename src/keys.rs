//! Event keys: a call site's name, category and source location registered
//! once with a writer, and the iids they had when last written.
//!
//! A key holds no iids of its own: the writer's string tables assign them
//! in order of first use, as for strings, so a key's events write the bytes
//! the same strings would. What a key saves is the lookup: the emitter
//! caches, per key, what its strings are in the current generation of the
//! tables ([`KeyCache`]), and a begin that finds the cache current
//! (one comparison) writes them without looking anything up. A cache from
//! an older generation (the tables were emptied at `Options::intern_limit`)
//! is refreshed by the next event that interns the key's strings again.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::encoding::BeginFields;
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
/// [`Error::ForeignKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EventKey {
    pub(crate) owner: Owner,
    pub(crate) index: u32,
}

/// What a key's strings are in one generation of the writer's tables: a
/// begin's fields of their iids, and their global ids (category, name,
/// location; 0 for none), for the bits of defined strings a sequence keeps.
/// The emitter sets it when it writes the key's strings.
#[derive(Clone, Copy)]
pub(crate) struct KeyCache {
    /// The generation of the tables `globals` belong to; `u64::MAX` for
    /// none.
    pub(crate) generation: u64,
    /// The generation `fields` are of: `generation`, or `u64::MAX` for iids
    /// `begin_packet_fields` cannot take, so that the begin's short path
    /// tests one word and never takes them.
    pub(crate) begin_generation: u64,
    pub(crate) fields: BeginFields,
    pub(crate) globals: [u32; 3],
}

impl KeyCache {
    const NONE: KeyCache = KeyCache {
        generation: u64::MAX,
        begin_generation: u64::MAX,
        fields: BeginFields::EMPTY,
        globals: [0; 3],
    };
}

/// A key's site: where its strings lie in the keys' text (name, category
/// and file end to end), and its line; and its cache, kept beside it so
/// that keys cost one list, not two.
struct Site {
    cache: KeyCache,
    start: usize,
    lens: [u32; 3],
    line: u32,
}

impl Site {
    fn strings<'t>(&self, text: &'t str) -> (&'t str, &'t str, &'t str, u32) {
        let [n, c, f] = self.lens.map(|l| l as usize);
        let at = self.start;
        let part = |from: usize, len: usize| text.get(from..from + len).unwrap_or("");
        (part(at, n), part(at + n, c), part(at + n + c, f), self.line)
    }

    /// Whether the site is `site`: its lengths and line first, which tell
    /// most sites apart without reading their text.
    fn is(&self, text: &str, site: (&str, &str, &str, u32)) -> bool {
        let (name, category, file, line) = site;
        let lens = [name.len(), category.len(), file.len()].map(|l| l as u32);
        self.line == line && self.lens == lens && self.strings(text) == site
    }
}

/// The hasher of a map whose keys are hashes already: it keeps them.
/// Built for free, where `HashMap::new` seeds a random state on every
/// writer.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
}

/// Keys found by a scan up to this many; past it, through a hash map.
const SCAN_UP_TO: usize = 8;

/// Bytes of the keys' text allocated with the first key.
const FIRST_TEXT: usize = 256;

/// A writer's keys, in order of registration; never removed, so a key of
/// this writer always indexes one. Their strings share one text, so that a
/// few keys cost a few allocations, as a small trace's writer has them.
pub(crate) struct Keys {
    owner: Owner,
    text: String,
    sites: Vec<Site>,
    /// Keys by a hash of their site, so that registering a site again
    /// gives its key, once there are more than [`SCAN_UP_TO`]. (Of two
    /// sites whose hashes collide, only the first is found again; the
    /// other gets a key each time.)
    by_hash: HashMap<u64, u32, BuildHasherDefault<Prehashed>>,
}

fn site_hash(name: &str, category: &str, file: &str, line: u32) -> u64 {
    // The lengths are hashed too: "ab" + "c" is not "a" + "bc".
    let seed = (name.len() as u64) << 32 ^ category.len() as u64;
    xxh3_64_with_seed(name.as_bytes(), seed)
        ^ xxh3_64_with_seed(category.as_bytes(), seed).rotate_left(21)
        ^ xxh3_64_with_seed(file.as_bytes(), u64::from(line)).rotate_left(42)
}

impl Keys {
    #[inline]
    pub(crate) fn new(owner: Owner) -> Self {
        Keys {
            owner,
            text: String::new(),
            sites: Vec::new(),
            by_hash: HashMap::default(),
        }
    }

    fn key(&self, index: u32) -> EventKey {
        EventKey {
            owner: self.owner,
            index,
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
        let site = (name, category, file, line);
        let text = &self.text;
        let hash = match self.sites.len() < SCAN_UP_TO {
            true => {
                if let Some(i) = self.sites.iter().position(|s| s.is(text, site)) {
                    return Ok(self.key(i as u32));
                }
                None
            }
            false => {
                let hash = site_hash(name, category, file, line);
                if let Some(&i) = self.by_hash.get(&hash) {
                    if self.sites[i as usize].is(text, site) {
                        return Ok(self.key(i));
                    }
                }
                Some(hash)
            }
        };
        let index = u32::try_from(self.sites.len()).map_err(|_| Error::TooManyKeys)?;
        if self.sites.is_empty() {
            // Room for a few sites at once: a writer registers its call
            // sites together, and a small trace's few would otherwise grow
            // the text and the sites a step per key.
            self.text.reserve(FIRST_TEXT);
            self.sites.reserve(SCAN_UP_TO);
        }
        let start = self.text.len();
        self.text.push_str(name);
        self.text.push_str(category);
        self.text.push_str(file);
        self.sites.push(Site {
            cache: KeyCache::NONE,
            start,
            // Each at most `MAX_STRING_LEN`, checked above.
            lens: [name.len(), category.len(), file.len()].map(|l| l as u32),
            line,
        });
        match hash {
            Some(hash) => {
                self.by_hash.entry(hash).or_insert(index);
            }
            None if self.sites.len() == SCAN_UP_TO => {
                // From now on through the map: the keys so far go in.
                for (i, s) in self.sites.iter().enumerate() {
                    let (n, c, f, l) = s.strings(&self.text);
                    self.by_hash
                        .entry(site_hash(n, c, f, l))
                        .or_insert(i as u32);
                }
            }
            None => {}
        }
        Ok(self.key(index))
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
        self.strings_in(key, &self.text)
    }

    /// [`Keys::strings`] read from the keys' text lent out
    /// ([`Keys::lend_text`]).
    pub(crate) fn strings_in<'t>(
        &self,
        key: EventKey,
        text: &'t str,
    ) -> (&'t str, &'t str, &'t str, u32) {
        match self.sites.get(key.index as usize) {
            Some(site) if key.owner == self.owner => site.strings(text),
            _ => ("", "", "", 0),
        }
    }

    /// The keys' text, lent out while an event of a key is written: its
    /// strings borrow it while the emitter changes. Until it is given back
    /// ([`Keys::give_back`]), a key's strings read as empty.
    pub(crate) fn lend_text(&mut self) -> String {
        std::mem::take(&mut self.text)
    }

    /// Gives back the text [`Keys::lend_text`] lent.
    pub(crate) fn give_back(&mut self, text: String) {
        self.text = text;
    }

    /// Keys registered.
    pub(crate) fn len(&self) -> usize {
        self.sites.len()
    }

    /// The cache of a key of this writer (whose owner the caller checked).
    #[inline(always)]
    pub(crate) fn cache(&self, key: EventKey) -> Option<&KeyCache> {
        self.sites.get(key.index as usize).map(|s| &s.cache)
    }

    /// Sets the cache of a key of this writer.
    pub(crate) fn set_cache(&mut self, key: EventKey, cache: KeyCache) {
        if let Some(site) = self.sites.get_mut(key.index as usize) {
            site.cache = cache;
        }
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
        // Past the scan, through the map: every site found again.
        let more: Vec<_> = (0..100)
            .map(|i| keys.register(&format!("op{i}"), "c", "f", i).unwrap())
            .collect();
        for (i, &k) in more.iter().enumerate() {
            let again = keys
                .register(&format!("op{i}"), "c", "f", i as u32)
                .unwrap();
            assert_eq!(again, k);
            assert_eq!(keys.strings(k), (&*format!("op{i}"), "c", "f", i as u32));
        }
        assert_eq!(keys.register("query", "sql", "db.rs", 10).unwrap(), a);
        assert_eq!(keys.len(), 104);
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
