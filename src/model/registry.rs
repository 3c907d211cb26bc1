//! The track registry: which processes, threads, lanes and named or
//! counter tracks a writer has described, under which uuid and id, and
//! whether a handle is this writer's. Bookkeeping only: the core writes the
//! descriptors.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::encoding::{field, Field};
use crate::error::{Error, Result};
use crate::ids::{derived_id, CounterTrack, Owner, ParentTrack, TrackUuid, DERIVED_ID_MIN};
use crate::limits::MAX_EVENT_COUNTERS;
use crate::track_options::CounterSample;

/// A one-shot hasher for the registry's maps, whose keys are integers, and
/// for description digests.
#[derive(Default, Clone, Copy)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Names and keys of up to 16 bytes, most of what a description
        // holds, mixed in as words with their length, without a call (a
        // small trace's descriptions paid ~100 instructions in calls).
        let len = bytes.len();
        match (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
            (Some(head), Some(tail)) if len <= 16 => {
                self.write_u64(u64::from_le_bytes(*head));
                self.write_u64(u64::from_le_bytes(*tail) ^ (len as u64) << 56);
            }
            _ if len < 8 => {
                let word = bytes.iter().fold(0u64, |w, &b| w << 8 | u64::from(b));
                self.write_u64(word ^ (len as u64) << 56);
            }
            _ => self.0 = xxh3_64_with_seed(bytes, self.0),
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    fn write_isize(&mut self, i: isize) {
        self.write_u64(i as u64);
    }

    fn write_i32(&mut self, i: i32) {
        self.write_u64(i as u64);
    }

    fn write_i64(&mut self, i: i64) {
        self.write_u64(i as u64);
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(29) ^ i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 ^= self.0 >> 32;
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

/// A hash of what describes a track, to tell a repeated description from a
/// conflicting one without storing it: the description's own `Hash`, whose
/// strings carry their length, so parts cannot run into each other.
pub(crate) fn digest(description: &impl Hash) -> u64 {
    let mut h = KeyHasher::default();
    description.hash(&mut h);
    h.finish()
}

/// What the registry looks up by key: tracks by uuid (to an index into their
/// kind's list), and the pids and tids taken.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Uuid(u64),
    Pid(i32),
    Tid(i64),
}

/// The two kinds of track that carry an id the trace processor reads: a
/// process's pid, a thread's tid.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdKind {
    Pid,
    Tid,
}

/// A described process or thread: its id, the digest of its description,
/// and what the model keeps for it (kept here, so that a thread costs one
/// allocation, not two).
struct Described<T> {
    id: i64,
    digest: u64,
    state: T,
}

/// A named or counter track.
struct CustomTrack {
    /// Its `track_uuid` field, encoded once.
    field: Field,
    digest: u64,
    /// An incremental counter: its values are totalled, and events may not
    /// carry them.
    incremental: bool,
    /// A thread is among its ancestors: its events belong to that thread,
    /// log lines included.
    on_thread: bool,
    /// A named track's index in the stacks of named tracks; none for a
    /// counter track.
    stack: Option<u32>,
}

/// A stack of spans, by index into its kind's list: a thread's, or a
/// named track's (whose spans nest by the same rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stack {
    Thread(u32),
    Track(u32),
}

/// Outcome of [`Registry::claim`].
#[derive(Clone, Copy)]
pub(crate) enum Registered {
    /// Described before, alike: nothing to write.
    Again(u32),
    /// New, with its id: the caller describes it.
    New { index: u32, id: i64 },
}

impl Registered {
    pub(crate) fn index(self) -> u32 {
        match self {
            Registered::Again(index) | Registered::New { index, .. } => index,
        }
    }
}

/// Keys held in place before [`TrackKeys`] uses its map: a process and a
/// few threads (two keys each).
const FEW_KEYS: usize = 8;

/// The registry's keys: the first [`FEW_KEYS`] in a list searched in place,
/// the rest in a map. A small trace's process and threads then cost no
/// hashing and no allocation.
struct TrackKeys {
    few: [(Key, u32); FEW_KEYS],
    /// Keys held in `few`.
    len: usize,
    more: FastMap<Key, u32>,
}

impl TrackKeys {
    #[inline]
    fn new() -> Self {
        TrackKeys {
            few: [(Key::Uuid(0), 0); FEW_KEYS],
            len: 0,
            more: FastMap::default(),
        }
    }

    fn get(&self, key: Key) -> Option<u32> {
        let few = self.few[..self.len].iter().find(|(k, _)| *k == key);
        match few {
            Some(&(_, v)) => Some(v),
            None if self.more.is_empty() => None,
            None => self.more.get(&key).copied(),
        }
    }

    fn contains(&self, key: Key) -> bool {
        self.get(key).is_some()
    }

    /// Records `key` (new to the registry: each is inserted once).
    fn insert(&mut self, key: Key, value: u32) {
        debug_assert!(!self.contains(key));
        match self.few.get_mut(self.len) {
            Some(slot) => {
                *slot = (key, value);
                self.len += 1;
            }
            None => {
                self.more.insert(key, value);
            }
        }
    }
}

/// Processes kept in place before a list is allocated: a writer has
/// one or two processes as a rule.
const FEW_PROCESSES: usize = 2;

/// The described processes' (pid, digest), by index: the first
/// [`FEW_PROCESSES`] in place, so that a small trace's process allocates
/// nothing (its list was one of the trace's six allocations), the rest
/// in a list.
struct Processes {
    few: [(i64, u64); FEW_PROCESSES],
    len: usize,
    more: Vec<(i64, u64)>,
}

impl Processes {
    const EMPTY: Processes = Processes {
        few: [(0, 0); FEW_PROCESSES],
        len: 0,
        more: Vec::new(),
    };

    fn len(&self) -> usize {
        self.len
    }

    /// Process `i`'s (pid, digest): one of those recorded.
    fn get(&self, i: usize) -> (i64, u64) {
        debug_assert!(i < self.len);
        match self.few.get(i) {
            Some(&p) => p,
            None => self.more[i - FEW_PROCESSES],
        }
    }

    fn push(&mut self, process: (i64, u64)) {
        match self.few.get_mut(self.len) {
            Some(slot) => *slot = process,
            None => self.more.push(process),
        }
        self.len += 1;
    }
}

/// Every track a writer described, by uuid and id; `T` is the model's state
/// of a thread.
pub(crate) struct Registry<T> {
    owner: Owner,
    processes: Processes,
    threads: Vec<Described<T>>,
    custom: Vec<CustomTrack>,
    /// The model's state of each named track, with the track's index in
    /// `custom`: the same state as a thread's, since spans nest alike there.
    tracks: Vec<(u32, T)>,
    /// Process, thread, lane and custom indices by uuid (domains keep them
    /// apart), and the pids and tids taken.
    keys: TrackKeys,
}

impl<T> Registry<T> {
    /// An empty registry, whose handles `owner` marks.
    #[inline]
    pub(crate) fn new(owner: Owner) -> Self {
        Registry {
            owner,
            processes: Processes::EMPTY,
            threads: Vec::new(),
            custom: Vec::new(),
            tracks: Vec::new(),
            keys: TrackKeys::new(),
        }
    }

    /// The writer the registry's handles belong to.
    #[inline(always)]
    pub(crate) fn owner(&self) -> Owner {
        self.owner
    }

    /// [`Error::ForeignHandle`] unless a handle naming `uuid` is this
    /// writer's.
    #[inline]
    pub(crate) fn check_owner(&self, owner: Owner, uuid: TrackUuid) -> Result<()> {
        if owner != self.owner {
            return Err(Error::ForeignHandle(uuid));
        }
        Ok(())
    }

    /// The uuid a parent names, if the parent is this writer's.
    pub(crate) fn parent_uuid(&self, parent: ParentTrack) -> Result<TrackUuid> {
        match parent {
            ParentTrack::Root => {}
            ParentTrack::Process(p) => self.check_owner(p.owner, p.uuid)?,
            ParentTrack::Thread(t) => self.check_owner(t.owner, t.uuid)?,
            ParentTrack::Named(t) => self.check_owner(t.owner, t.uuid)?,
        }
        Ok(parent.uuid())
    }

    /// The index of the track described under `uuid`, if any.
    pub(crate) fn index_of(&self, uuid: TrackUuid) -> Option<u32> {
        self.keys.get(Key::Uuid(uuid.0))
    }

    /// Records a track described under `uuid`, at `index` of its kind.
    pub(crate) fn insert(&mut self, uuid: TrackUuid, index: u32) {
        self.keys.insert(Key::Uuid(uuid.0), index);
    }

    /// The index of the track already described under `uuid`, if any;
    /// [`Error::Redefined`] if it was described otherwise (`digest_of` gives
    /// the digest stored at an index).
    fn described(
        &self,
        uuid: TrackUuid,
        digest: u64,
        digest_of: impl Fn(usize) -> u64,
    ) -> Result<Option<u32>> {
        match self.index_of(uuid) {
            Some(index) if digest_of(index as usize) != digest => Err(Error::Redefined(uuid)),
            other => Ok(other),
        }
    }

    fn id_taken(&self, id: i64) -> bool {
        self.keys.contains(Key::Tid(id))
            || i32::try_from(id).is_ok_and(|p| self.keys.contains(Key::Pid(p)))
    }

    /// An id for a track that asked for none, derived from its key and
    /// parent, and taken by no process or thread of the writer.
    fn derive_id(&self, key: &str, parent: TrackUuid) -> i64 {
        // 2^31 candidates against at most a few million taken: ends at once.
        (0..)
            .map(|attempt| derived_id(key.as_bytes(), parent.0, attempt))
            .find(|&id| !self.id_taken(id))
            .unwrap_or(DERIVED_ID_MIN)
    }

    /// The one registration path of processes and threads, reading only:
    /// found under `uuid` with the same `digest`, the track is described
    /// already; otherwise its id is `requested` if that is valid and free,
    /// or one derived from `key` under `parent` (positive, below 2^31, so a
    /// pid too), and the caller describes it, then records it with
    /// [`Registry::add_process`] or [`Registry::add_thread`].
    ///
    /// # Errors
    /// [`Error::Redefined`], [`Error::ZeroId`], [`Error::NegativePid`],
    /// [`Error::PidInUse`], [`Error::TidInUse`].
    pub(crate) fn claim(
        &self,
        kind: IdKind,
        uuid: TrackUuid,
        digest: u64,
        requested: Option<i64>,
        key: &str,
        parent: TrackUuid,
    ) -> Result<Registered> {
        let (found, len) = match kind {
            IdKind::Pid => {
                let digest_of = |i: usize| self.processes.get(i).1;
                (
                    self.described(uuid, digest, digest_of)?,
                    self.processes.len(),
                )
            }
            IdKind::Tid => {
                let digest_of = |i: usize| self.threads[i].digest;
                (self.described(uuid, digest, digest_of)?, self.threads.len())
            }
        };
        if let Some(index) = found {
            return Ok(Registered::Again(index));
        }
        let id = match (kind, requested) {
            (_, Some(0)) => return Err(Error::ZeroId),
            (IdKind::Pid, Some(p)) => {
                // A requested pid came as an i32.
                let p = p as i32;
                if p < 0 {
                    return Err(Error::NegativePid(p));
                }
                if self.keys.contains(Key::Pid(p)) {
                    return Err(Error::PidInUse(p));
                }
                i64::from(p)
            }
            (IdKind::Tid, Some(t)) if self.keys.contains(Key::Tid(t)) => {
                return Err(Error::TidInUse(t))
            }
            (IdKind::Tid, Some(t)) => t,
            (_, None) => self.derive_id(key, parent),
        };
        Ok(Registered::New {
            index: len as u32,
            id,
        })
    }

    /// Records a process claimed (see [`Registry::claim`]) and described.
    pub(crate) fn add_process(&mut self, uuid: TrackUuid, digest: u64, pid: i64) {
        let index = self.processes.len() as u32;
        self.processes.push((pid, digest));
        self.record(uuid, Key::Pid(pid as i32), index);
    }

    /// Records a thread claimed (see [`Registry::claim`]) and described,
    /// with the model's state of it.
    pub(crate) fn add_thread(&mut self, uuid: TrackUuid, digest: u64, tid: i64, state: T) {
        let index = self.threads.len() as u32;
        if self.threads.capacity() == 0 {
            // Room for a few, made anew: the allocator called directly, not
            // through `push`'s growth path (~60 instructions more).
            self.threads = Vec::with_capacity(4);
        }
        self.threads.push(Described {
            id: tid,
            digest,
            state,
        });
        self.record(uuid, Key::Tid(tid), index);
    }

    fn record(&mut self, uuid: TrackUuid, id: Key, index: u32) {
        self.keys.insert(Key::Uuid(uuid.0), index);
        self.keys.insert(id, index);
    }

    /// The model's state of thread `index`, if there is one.
    #[inline(always)]
    pub(crate) fn thread(&self, index: u32) -> Option<&T> {
        self.threads.get(index as usize).map(|d| &d.state)
    }

    /// The model's state of thread `index`, a registered one.
    #[inline(always)]
    pub(crate) fn thread_at(&self, index: u32) -> &T {
        &self.threads[index as usize].state
    }

    /// [`Registry::thread_at`], mutably.
    #[inline(always)]
    pub(crate) fn thread_mut(&mut self, index: u32) -> &mut T {
        &mut self.threads[index as usize].state
    }

    /// Every thread's state, in registration order.
    pub(crate) fn threads(&self) -> impl Iterator<Item = &T> {
        self.threads.iter().map(|d| &d.state)
    }

    /// A registered process's pid.
    pub(crate) fn pid(&self, index: u32) -> i32 {
        // Registered pids are i32s.
        self.processes.get(index as usize).0 as i32
    }

    /// A registered thread's tid.
    pub(crate) fn tid(&self, index: u32) -> i64 {
        self.threads[index as usize].id
    }

    /// Registers a named or counter track; its index, and whether it is
    /// new (then the caller describes it).
    ///
    /// # Errors
    /// [`Error::Redefined`] if `uuid` was described otherwise.
    pub(crate) fn register_custom(
        &mut self,
        uuid: TrackUuid,
        digest: u64,
        incremental: bool,
        on_thread: bool,
    ) -> Result<(u32, bool)> {
        let custom = &self.custom;
        if let Some(index) = self.described(uuid, digest, |i| custom[i].digest)? {
            return Ok((index, false));
        }
        let index = self.custom.len() as u32;
        self.custom.push(CustomTrack {
            field: Field::uint(field::EVENT_TRACK_UUID, uuid.0),
            digest,
            incremental,
            on_thread,
            stack: None,
        });
        self.keys.insert(Key::Uuid(uuid.0), index);
        Ok((index, true))
    }

    /// Gives the new named track `custom` its state (once, right after
    /// [`Registry::register_custom`]).
    pub(crate) fn add_track_stack(&mut self, custom: u32, state: T) {
        self.custom[custom as usize].stack = Some(self.tracks.len() as u32);
        self.tracks.push((custom, state));
    }

    /// The stack of the named track `custom`, a registered one.
    pub(crate) fn track_stack(&self, custom: u32) -> Stack {
        // Every named track got one when it was registered.
        Stack::Track(self.custom[custom as usize].stack.unwrap_or(u32::MAX))
    }

    /// The model's state of a stack.
    #[inline(always)]
    pub(crate) fn stack(&self, stack: Stack) -> &T {
        match stack {
            Stack::Thread(i) => &self.threads[i as usize].state,
            Stack::Track(i) => &self.tracks[i as usize].1,
        }
    }

    /// [`Registry::stack`], mutably.
    #[inline(always)]
    pub(crate) fn stack_mut(&mut self, stack: Stack) -> &mut T {
        match stack {
            Stack::Thread(i) => &mut self.threads[i as usize].state,
            Stack::Track(i) => &mut self.tracks[i as usize].1,
        }
    }

    /// Every stack's state: the threads', then the named tracks', each in
    /// registration order.
    pub(crate) fn stacks(&self) -> impl Iterator<Item = &T> {
        self.threads().chain(self.tracks.iter().map(|(_, t)| t))
    }

    /// [`Registry::stacks`], mutably.
    pub(crate) fn stacks_mut(&mut self) -> impl Iterator<Item = &mut T> {
        let tracks = self.tracks.iter_mut().map(|(_, t)| t);
        self.threads.iter_mut().map(|d| &mut d.state).chain(tracks)
    }

    /// Every named track's state, with its index in the custom tracks.
    pub(crate) fn track_stacks(&self) -> impl Iterator<Item = (u32, &T)> {
        self.tracks.iter().map(|(i, t)| (*i, t))
    }

    /// A custom track's `track_uuid` field.
    #[inline]
    pub(crate) fn custom_field(&self, index: u32) -> Field {
        self.custom[index as usize].field
    }

    /// Whether a thread is among a custom track's ancestors.
    pub(crate) fn custom_on_thread(&self, index: u32) -> bool {
        self.custom[index as usize].on_thread
    }

    /// Whether `parent` is a thread or a custom track under one.
    pub(crate) fn parent_on_thread(&self, parent: ParentTrack) -> bool {
        match parent {
            ParentTrack::Thread(_) => true,
            ParentTrack::Named(n) => self
                .custom
                .get(n.index as usize)
                .is_some_and(|c| c.on_thread),
            _ => false,
        }
    }

    /// Checks the counter values an event carries: at most
    /// [`MAX_EVENT_COUNTERS`], on this writer's absolute counters.
    ///
    /// # Errors
    /// [`Error::TooManyCounters`], [`Error::ForeignHandle`],
    /// [`Error::IncrementalCounterOnEvent`].
    pub(crate) fn check_counters(&self, counters: &[(CounterTrack, CounterSample)]) -> Result<()> {
        if counters.len() > MAX_EVENT_COUNTERS {
            return Err(Error::TooManyCounters(counters.len()));
        }
        for (track, _) in counters {
            self.check_owner(track.owner, track.uuid)?;
            if self.custom[track.index as usize].incremental {
                return Err(Error::IncrementalCounterOnEvent(track.uuid));
            }
        }
        Ok(())
    }
}
