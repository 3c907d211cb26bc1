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
//!
//! A key may also name its events' arguments (`'static` names, known by
//! their address): it then keeps their iids and the event's fields as
//! words ([`ArgName`], `EventWords`), set by the key's event that interned
//! them and current for its generation, from which an event with those
//! arguments is written whole (`emitter::annotated`).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::emitter::{arg_prefix, EventWords};
use crate::encoding::{iid_code, BeginFields};
use crate::error::{check_len, Error, Result};
use crate::event::Arg;
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
    /// The generation `fields` are of: `generation` once a begin's short
    /// path set them ([`Keys::cache_with_fields`]), or `u64::MAX` before
    /// and for iids `begin_packet_fields` cannot take, so that the begin's
    /// short path tests one word and never takes them.
    pub(crate) begin_generation: u64,
    pub(crate) fields: BeginFields,
    pub(crate) globals: [u32; 3],
}

/// The mark on a cache's `generation` whose name is not interned (set by
/// an event that named itself inline): its category, location and
/// argument names hold for events named inline, and nothing else takes it
/// (no generation reaches this bit).
pub(crate) const NAMELESS: u64 = 1 << 63;

impl KeyCache {
    const NONE: KeyCache = KeyCache {
        generation: u64::MAX,
        begin_generation: u64::MAX,
        fields: BeginFields::EMPTY,
        globals: [0; 3],
    };
}

/// An argument name of a key's events, and its iid in the generation its
/// site's `args_generation` says.
#[derive(Clone, Copy)]
pub(crate) struct ArgName {
    /// The name as registered: `'static`, so that an argument whose name
    /// is this very string (its address and length) is known to be named
    /// so, without reading it.
    pub(crate) name: &'static str,
    pub(crate) iid: u32,
    /// Its annotation's bytes up to the value, in a word, and their length
    /// (`annotated::arg_prefix`).
    pub(crate) prefix: u64,
    pub(crate) prefix_len: u8,
}

impl ArgName {
    /// Whether `name` is this one at the same address: the short path's
    /// test, which a copy of the name elsewhere fails (it is then looked
    /// up).
    #[inline(always)]
    pub(crate) fn is(&self, name: &str) -> bool {
        std::ptr::eq(self.name.as_ptr(), name.as_ptr()) && self.name.len() == name.len()
    }
}

/// A key's site: where its strings lie in the keys' text (name, category
/// and file end to end), and its line; its argument names (a range of the
/// keys' list of them); and its cache, kept beside it so that keys cost one
/// list, not two.
struct Site {
    cache: KeyCache,
    /// The generation the iids of its argument names, and `words`, are
    /// of; `u64::MAX` for none.
    args_generation: u64,
    words: EventWords,
    start: usize,
    lens: [u32; 3],
    line: u32,
    args: (u32, u32),
}

impl Site {
    /// Its name, category and file, read from `text` (empty if `text` is
    /// not the one they are in) and its line. One range taken from the
    /// text and cut twice: three ranges cost a first use ~80 instructions
    /// in bounds and boundary checks.
    #[inline(always)]
    fn strings<'t>(&self, text: &'t str) -> (&'t str, &'t str, &'t str, u32) {
        let [n, c, f] = self.lens.map(|l| l as usize);
        let all = text.get(self.start..self.start + n + c + f).unwrap_or("");
        let (name, rest) = all.split_at_checked(n).unwrap_or(("", ""));
        let (category, file) = rest.split_at_checked(c).unwrap_or(("", ""));
        (name, category, file, self.line)
    }

    /// Its argument names, in the keys' list of them.
    fn arg_names<'a>(&self, all: &'a [ArgName]) -> &'a [ArgName] {
        let (start, len) = (self.args.0 as usize, self.args.1 as usize);
        all.get(start..start + len).unwrap_or(&[])
    }

    /// Whether the site is `site` with argument names `args`: its lengths
    /// and line first, which tell most sites apart without reading their
    /// text. Inlined into the scan of registration, whose call passed the
    /// site through memory on every step.
    #[inline(always)]
    fn is(
        &self,
        text: &str,
        all: &[ArgName],
        site: (&str, &str, &str, u32),
        args: &[&str],
    ) -> bool {
        let (name, category, file, line) = site;
        let lens = [name.len(), category.len(), file.len()].map(|l| l as u32);
        self.line == line
            && self.lens == lens
            && self.args.1 as usize == args.len()
            && self.strings(text) == site
            && self
                .arg_names(all)
                .iter()
                .zip(args)
                .all(|(a, &b)| a.name == b)
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

/// Sites allocated with the first key: 640 bytes, which glibc serves from
/// its thread cache (blocks up to 1,032 bytes); room for 8 (1,280 bytes)
/// went to its general allocator, and cost a small trace's keys ~150
/// instructions more to allocate and free.
const FIRST_SITES: usize = 4;

/// A writer's keys, in order of registration; never removed, so a key of
/// this writer always indexes one. Their strings share one text, so that a
/// few keys cost a few allocations, as a small trace's writer has them.
pub(crate) struct Keys {
    owner: Owner,
    text: String,
    sites: Vec<Site>,
    /// The argument names of every key, each key's a range.
    args: Vec<ArgName>,
    /// Keys by a hash of their site, so that registering a site again
    /// gives its key, once there are more than [`SCAN_UP_TO`]. (Of two
    /// sites whose hashes collide, only the first is found again; the
    /// other gets a key each time.)
    by_hash: HashMap<u64, u32, BuildHasherDefault<Prehashed>>,
}

fn site_hash(name: &str, category: &str, file: &str, line: u32, args: &[&str]) -> u64 {
    // The lengths are hashed too: "ab" + "c" is not "a" + "bc".
    let seed = (name.len() as u64) << 32 ^ category.len() as u64;
    let mut h = xxh3_64_with_seed(name.as_bytes(), seed)
        ^ xxh3_64_with_seed(category.as_bytes(), seed).rotate_left(21)
        ^ xxh3_64_with_seed(file.as_bytes(), u64::from(line)).rotate_left(42);
    for (i, a) in args.iter().enumerate() {
        h = h.rotate_left(7) ^ xxh3_64_with_seed(a.as_bytes(), i as u64 + 1);
    }
    h
}

impl Keys {
    #[inline]
    pub(crate) fn new(owner: Owner) -> Self {
        Keys {
            owner,
            text: String::new(),
            sites: Vec::new(),
            args: Vec::new(),
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
        self.register_with_args(name, category, file, line, &[])
    }

    /// The key of a site whose events carry arguments named `args`, in
    /// this order, registered now if it is new (the same strings with other
    /// names are another site).
    ///
    /// # Errors
    /// [`Error::StringTooLong`]; [`Error::TooManyKeys`] past `u32::MAX` keys
    /// or argument names.
    pub(crate) fn register_with_args(
        &mut self,
        name: &str,
        category: &str,
        file: &str,
        line: u32,
        args: &[&'static str],
    ) -> Result<EventKey> {
        check_len([name, category, file])?;
        check_len(args.iter().copied())?;
        let site = (name, category, file, line);
        let (text, all) = (&self.text, &self.args[..]);
        let hash = match self.sites.len() < SCAN_UP_TO {
            true => {
                if let Some(i) = self.sites.iter().position(|s| s.is(text, all, site, args)) {
                    return Ok(self.key(i as u32));
                }
                None
            }
            false => {
                let hash = site_hash(name, category, file, line, args);
                if let Some(&i) = self.by_hash.get(&hash) {
                    if self.sites[i as usize].is(text, all, site, args) {
                        return Ok(self.key(i));
                    }
                }
                Some(hash)
            }
        };
        let index = u32::try_from(self.sites.len()).map_err(|_| Error::TooManyKeys)?;
        let args_at = u32::try_from(self.args.len()).map_err(|_| Error::TooManyKeys)?;
        let args_len = u32::try_from(args.len()).map_err(|_| Error::TooManyKeys)?;
        args_at.checked_add(args_len).ok_or(Error::TooManyKeys)?;
        if self.sites.is_empty() {
            // Room for a few sites at once: a writer registers its call
            // sites together, and a small trace's few would otherwise grow
            // the text and the sites a step per key.
            // Made anew, not reserved: the allocator is called directly,
            // not through the growth path (~60 instructions each).
            self.text = String::with_capacity(FIRST_TEXT);
            self.sites = Vec::with_capacity(FIRST_SITES);
        }
        let start = self.text.len();
        self.text.push_str(name);
        self.text.push_str(category);
        self.text.push_str(file);
        self.args.extend(args.iter().map(|&name| ArgName {
            name,
            iid: 0,
            prefix: 0,
            prefix_len: 0,
        }));
        self.sites.push(Site {
            cache: KeyCache::NONE,
            args_generation: u64::MAX,
            words: EventWords::default(),
            start,
            // Each at most `MAX_STRING_LEN`, checked above.
            lens: [name.len(), category.len(), file.len()].map(|l| l as u32),
            line,
            args: (args_at, args_len),
        });
        match hash {
            Some(hash) => {
                self.by_hash.entry(hash).or_insert(index);
            }
            None if self.sites.len() == SCAN_UP_TO => {
                // From now on through the map: the keys so far go in.
                for (i, s) in self.sites.iter().enumerate() {
                    let (n, c, f, l) = s.strings(&self.text);
                    let names: Vec<&str> = s.arg_names(&self.args).iter().map(|a| a.name).collect();
                    self.by_hash
                        .entry(site_hash(n, c, f, l, &names))
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
    /// ([`Keys::lend_text`]). Inlined into a key's first use: the call
    /// returned the strings through memory.
    #[inline(always)]
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

    /// The cache of a key of this writer whose strings are of
    /// `generation` but whose begin's fields are not set (its first event
    /// sets only its iids, since a key used once, as a small trace's are,
    /// never needs them): set now, with `flags`; `None` if its strings are
    /// of another generation, or its iids are ones `begin_packet_fields`
    /// cannot take.
    #[cold]
    #[inline(never)]
    pub(crate) fn cache_with_fields(
        &mut self,
        key: EventKey,
        generation: u64,
        flags: u8,
    ) -> Option<&KeyCache> {
        let c = &mut self.sites.get_mut(key.index as usize)?.cache;
        if c.generation != generation {
            return None;
        }
        c.fields = BeginFields::new(c.globals.map(iid_code), flags)?;
        c.begin_generation = generation;
        Some(c)
    }

    /// Sets the cache of a key of this writer.
    pub(crate) fn set_cache(&mut self, key: EventKey, cache: KeyCache) {
        if let Some(site) = self.sites.get_mut(key.index as usize) {
            // Words made from a cache without the name, in this
            // generation: made again with it.
            let was_nameless = site.cache.generation & NAMELESS != 0;
            site.cache = cache;
            if was_nameless && site.args_generation == cache.generation {
                site.words = EventWords::new(cache.globals);
            }
        }
    }

    /// Sets the cache of a key of this writer from an event of it named
    /// inline (`globals` with no name), of `generation`, unless it holds
    /// the key's strings of that generation already.
    pub(crate) fn set_nameless_cache(&mut self, key: EventKey, globals: [u32; 3], generation: u64) {
        let Some(site) = self.sites.get_mut(key.index as usize) else {
            return;
        };
        if site.cache.generation != generation {
            site.cache = KeyCache {
                generation: generation | NAMELESS,
                globals,
                ..KeyCache::NONE
            };
        }
    }

    /// [`Keys::cache_with_args`] for an event named inline: the key's
    /// cache may lack its name (any argument names, none included).
    #[inline(always)]
    pub(crate) fn cache_for_inline(
        &self,
        key: EventKey,
        generation: u64,
    ) -> Option<(&KeyCache, &EventWords, &[ArgName])> {
        let site = self.sites.get(key.index as usize)?;
        let current = key.owner == self.owner
            && site.cache.generation & !NAMELESS == generation
            && site.args_generation == generation;
        current.then(|| (&site.cache, &site.words, site.arg_names(&self.args)))
    }

    /// The cache of a key of this writer (`None` for another's), its
    /// event's words and its argument names with their iids, if all are of
    /// `generation`.
    #[inline(always)]
    pub(crate) fn cache_with_args(
        &self,
        key: EventKey,
        generation: u64,
    ) -> Option<(&KeyCache, &EventWords, &[ArgName])> {
        let site = self.sites.get(key.index as usize)?;
        let current = key.owner == self.owner
            && site.cache.generation == generation
            && site.args_generation == generation;
        current.then(|| (&site.cache, &site.words, site.arg_names(&self.args)))
    }

    /// Sets the iids of a key's argument names, and its event's words from
    /// its cache, of `generation` (the cache's), if `args` are its names
    /// (their text) and `iids` one for each: what an event of the key
    /// interned.
    #[inline]
    pub(crate) fn set_arg_iids(
        &mut self,
        key: EventKey,
        args: &[Arg<'_>],
        iids: &[u64],
        generation: u64,
    ) {
        // An event without arguments names none: no call (a key's first
        // use without arguments paid ~30 instructions for it).
        if !args.is_empty() {
            self.set_named_iids(key, args, iids, generation);
        }
    }

    /// [`Keys::set_arg_iids`] whatever the arguments, none included (an
    /// event named inline needs the words of a key without names too).
    pub(crate) fn set_named_iids(
        &mut self,
        key: EventKey,
        args: &[Arg<'_>],
        iids: &[u64],
        generation: u64,
    ) {
        let Some(site) = self.sites.get_mut(key.index as usize) else {
            return;
        };
        let (start, len) = (site.args.0 as usize, site.args.1 as usize);
        let Some(names) = self.args.get_mut(start..start + len) else {
            return;
        };
        let named = args.len() == len
            && iids.len() == len
            && names.iter().zip(args).all(|(n, a)| n.name == a.name);
        if !named {
            return;
        }
        for (n, &iid) in names.iter_mut().zip(iids) {
            // Below 2^31 (`MAX_ENTRIES`).
            n.iid = iid as u32;
            (n.prefix, n.prefix_len) = arg_prefix(n.iid);
        }
        site.words = EventWords::new(site.cache.globals);
        site.args_generation = generation;
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
