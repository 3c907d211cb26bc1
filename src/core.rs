//! The no-I/O core shared by both writers: tracks, spans in flight and the
//! packet sequence. It validates every call before it changes anything and
//! appends the packets a call produces to its encoder's buffer
//! ([`Emitter::out`]); the writers only decide where those bytes go.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::emitter::Emitter;
use crate::encoding::EventType;
use crate::encoding::{field, EndTemplate, Field, TrackKind};
use crate::error::{check_len, check_ts, Error, Result};
use crate::event::Event;
use crate::ids::{
    async_slot_uuid, derived_id, track_uuid, AsyncLane, AsyncParent, CounterTrack, Domain,
    InstantTrack, NamedTrack, Owner, ParentTrack, ProcessTrack, ThreadTrack, TrackUuid,
};
use crate::limits::{MAX_EVENT_COUNTERS, MAX_SPAN_DEPTH, MAX_TS};
use crate::open_async::{AsyncOpen, OpenAsync};
use crate::out::Out;
use crate::sequence::{SeqState, Sequences};
use crate::track_options::CounterSample;
use crate::track_options::{
    Clock, CounterOptions, CounterUnit, LaneOptions, ProcessOptions, SiblingMerge, ThreadOptions,
    TrackOptions,
};

/// A one-shot hasher for the core's maps, whose keys are integers.
#[derive(Default, Clone, Copy)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxh3_64_with_seed(bytes, self.0);
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

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

/// What the core looks up by key: tracks by uuid (to an index into their
/// kind's list), and the pids and tids taken.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Uuid(u64),
    Pid(i32),
    Tid(i64),
}

struct Process {
    pid: i32,
    digest: u64,
}

/// A span open on a thread. `end` is known for complete spans, whose end
/// event waits until nothing can begin inside them any more.
struct Frame {
    begin: u64,
    end: Option<u64>,
    /// The earliest known end among this frame and its ancestors: nothing
    /// inside this frame may reach past it.
    limit: u64,
}

struct Thread {
    uuid: TrackUuid,
    /// `track_uuid` as its events carry it, encoded once; none where the
    /// thread's own sequence names the track (compact mode).
    track: Option<Field>,
    /// Its slice ends, encoded but for the timestamp.
    end: EndTemplate,
    /// Its sequence: the writer's own (0) or, in compact mode once it has
    /// proved busy, one whose default track it is.
    seq: usize,
    /// Spans begun on it so far, counted in compact mode only (see `busy`).
    spans: u32,
    /// What it spent on its own sequence (compact mode).
    budget: Budget,
    tid: i64,
    digest: u64,
    /// Open spans, outermost first.
    stack: Vec<Frame>,
    /// How many frames of the stack are explicit spans (no known end); the
    /// rest are complete spans whose ends wait.
    explicit: usize,
    /// The latest timestamp written on the track.
    last_ts: u64,
    /// Instants written at `last_ts` since the thread's last other event:
    /// the trace processor stacks them, each one level below the one
    /// before, so they count towards the depth limit.
    instants: u32,
}

impl Thread {
    /// Whether complete spans wait on the stack (if not, nothing is due).
    #[inline]
    fn pending(&self) -> bool {
        self.stack.len() != self.explicit
    }

    /// How many frames at the top of the stack have ended by `ts`.
    #[inline]
    fn due(&self, ts: u64) -> usize {
        if !self.pending() {
            return 0;
        }
        self.stack
            .iter()
            .rev()
            .take_while(|f| f.end.is_some_and(|e| e <= ts))
            .count()
    }

    /// The limit that applies to something beginning after `due` frames pop.
    fn limit_after(&self, due: usize) -> u64 {
        let len = self.stack.len() - due;
        self.stack[..len].last().map_or(u64::MAX, |f| f.limit)
    }
}

/// The track of one async span in flight, reused by later spans.
struct Slot {
    /// Its uuid.
    uuid: u64,
    /// `track_uuid` as its events carry it; none once the slot writes on a
    /// sequence of its own (compact mode).
    track: Option<Field>,
    /// Its slice ends, encoded but for the timestamp.
    end: EndTemplate,
    /// Its sequence: the writer's own (0) or, in compact mode once it has
    /// proved busy, one whose default track it is.
    seq: usize,
    /// Spans begun on it so far.
    spans: u32,
    /// What it spent on its own sequence (compact mode).
    budget: Budget,
    /// The latest time written on the slot; a span may use the slot only
    /// if it begins no earlier, so each slot's events come in time order.
    last_ts: u64,
    /// Whether a span begun by `async_span_begin` (end unknown) is on it.
    streaming: bool,
    /// Complete spans on it, outermost first, whose ends wait until nothing
    /// can begin inside them any more (as on threads).
    frames: Vec<SlotFrame>,
    /// The lane of tracks nested under this one, for children of its spans
    /// that do not nest on it.
    children: Option<u32>,
}

/// How far [`Core::pop_slot`] writes ends, among the spans ended by then.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PopTo {
    /// All of them.
    Ended,
    /// Down to the frame of this (lane, id), which stays.
    Above((u32, u64)),
    /// Down to the frame of this (lane, id), which goes too.
    Through((u32, u64)),
}

/// A complete async span on a slot: its end, and its key in `open_async`.
#[derive(Clone, Copy)]
struct SlotFrame {
    end: u64,
    lane: u32,
    id: u64,
}

/// In compact mode a thread or async track moves to a sequence of its own
/// once it has had this many spans: short-lived tracks never pay for one.
const BUSY_FROM: u32 = 4;

/// What a busy track may spend on its own sequence beyond what it saved:
/// its opening packet (about 50 bytes) and the first strings it defines
/// there.
const MOVE_BUDGET: u64 = 128;

/// What each span of a busy track saves at least: its end, on the track's
/// own sequence, omits the track uuid (9 bytes) and carries a 2-byte flag,
/// with at most one byte more of sequence id.
const SAVED_PER_END: u64 = 6;

/// What a begin written on a busy track's own sequence saves at least: the
/// track uuid, less one byte more of sequence id. (Timestamps as deltas
/// save more; they are not counted.)
const SAVED_PER_BEGIN: u64 = 8;

/// The packet that opens a track's sequence, at most.
const OPENING: u64 = 64;

/// What a busy track spent on its own sequence: strings defined there. A
/// sequence of its own saves every event of the track its uuid, and costs
/// an opening packet and a definition of each string the track uses there,
/// which the writer's sequence may hold already. An event that would define
/// strings there is written there only while what the track saved covers
/// it (see [`Budget::pays`]); otherwise it goes on the writer's sequence,
/// with its track named, exactly as in default mode. So compact mode never
/// writes more than [`MOVE_BUDGET`] bytes per busy track (and generation)
/// beyond default mode, whatever the strings.
#[derive(Clone, Copy, Default)]
struct Budget {
    /// The track's span count when it moved.
    moved_at: u32,
    /// Bytes of strings defined on its sequence.
    spent: u64,
    /// Begins written on the writer's sequence since it moved.
    elsewhere: u32,
}

impl Budget {
    /// Whether an event `ev` of a track with `spans` spans so far goes on
    /// its own sequence `seq`; if it does, what it defines there is spent.
    fn pays(&mut self, enc: &Emitter, seq: &SeqState, spans: u32, ev: &Event<'_>) -> bool {
        let since = u64::from(spans.saturating_sub(self.moved_at));
        let here = since.saturating_sub(u64::from(self.elsewhere));
        let saved = SAVED_PER_END * since + SAVED_PER_BEGIN * here;
        let credit = (MOVE_BUDGET + saved).saturating_sub(self.spent + seq.opening_bytes);
        // Weighed on what the event defines, never on why the short path
        // declined it (a streaming writer's buffer may be short of room
        // where a buffered one's is not: both must write the same bytes).
        let cost = enc.definition_cost(seq, ev);
        let opening = if enc.opens(seq) { OPENING } else { 0 };
        if cost + opening > credit {
            self.elsewhere = self.elsewhere.saturating_add(1);
            return false;
        }
        self.spent = self.spent.saturating_add(cost);
        true
    }
}

struct Lane {
    uuid: TrackUuid,
    /// Whether the lane's own track (for instants) was described.
    described: bool,
    parent: TrackUuid,
    name: Box<str>,
    /// The description its tracks carry.
    description: Option<Box<str>>,
    /// Whether its tracks merge with same-named siblings in the UI (see
    /// [`UNMERGED_TRACK_OPTIONS`]).
    merged: bool,
    slots: Vec<Slot>,
    free: Vec<u32>,
}

impl Lane {
    /// The description of the lane's tracks: its own, and one per span in
    /// flight, all named like the lane under its parent.
    fn track_kind<'a>(&'a self, options: &'a TrackOptions<'a>) -> TrackKind<'a> {
        TrackKind::Named {
            parent: self.parent.0,
            name: &self.name,
            options,
            counter: None,
        }
    }

    /// The display options of the lane's tracks: its description, and
    /// whether they merge with same-named siblings.
    fn options(&self) -> TrackOptions<'_> {
        let base = if self.merged {
            DEFAULT_TRACK_OPTIONS
        } else {
            UNMERGED_TRACK_OPTIONS
        };
        TrackOptions {
            description: self.description.as_deref(),
            ..base
        }
    }
}

/// Tracks never merged with same-named siblings: the trace processor hangs
/// the children of merged siblings under the first of them, so a child's
/// track would not name its parent's.
const UNMERGED_TRACK_OPTIONS: TrackOptions<'static> = TrackOptions {
    child_ordering: None,
    sibling_rank: None,
    merge: Some(SiblingMerge::None),
    description: None,
};

const DEFAULT_TRACK_OPTIONS: TrackOptions<'static> = TrackOptions {
    child_ordering: None,
    sibling_rank: None,
    merge: None,
    description: None,
};

/// What an incremental counter's values have added up to. The trace
/// processor keeps an incremental counter's sum in the sequence's
/// incremental state, which a new interning generation clears: the first
/// value written after a clear is the total so far, not the increment, so
/// the reader's sum goes on from where it was.
#[derive(Default)]
struct RunningTotal {
    int: i128,
    double: f64,
    /// Whether any value was floating point: the total is then one too.
    doubles: bool,
    /// The generation of incremental state the last value was written in.
    generation: u64,
}

impl RunningTotal {
    /// Adds `value`; what to write, in generation `generation`.
    fn add(&mut self, value: CounterSample, generation: u64) -> CounterSample {
        match value {
            CounterSample::Int(v) => self.int += i128::from(v),
            CounterSample::Double(v) => {
                self.double += v;
                self.doubles = true;
            }
        }
        if generation == self.generation {
            return value;
        }
        self.generation = generation;
        match i64::try_from(self.int) {
            Ok(total) if !self.doubles => CounterSample::Int(total),
            _ => CounterSample::Double(self.int as f64 + self.double),
        }
    }
}

/// A span still open, as reported by `finish`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenSpan {
    /// A span begun with `span_begin` and not ended.
    Thread {
        /// Its thread.
        thread: ThreadTrack,
        /// Its begin.
        begin: u64,
        /// Its depth on the thread (0 is outermost).
        depth: usize,
    },
    /// An async span begun and not ended.
    Async {
        /// Its lane.
        lane: AsyncLane,
        /// Its id.
        span_id: u64,
        /// Its begin.
        begin: u64,
    },
}

/// Everything a writer knows, behind every emitting call.
pub struct Core {
    owner: Owner,
    base_sequence_id: u32,
    sequence_span: u32,
    pub(crate) enc: Emitter,
    /// Sequence 0, the writer's own, carries descriptors and every track's
    /// events until (compact mode) a busy track moves to a sequence of its own.
    seqs: Sequences,
    processes: Vec<Process>,
    threads: Vec<Thread>,
    lanes: Vec<Lane>,
    /// Process, thread and lane indices by uuid (domains keep them apart),
    /// and the pids and tids taken: one map, one allocation.
    keys: FastMap<Key, u32>,
    /// Named and counter tracks: encoded uuid field and description digest.
    custom: Vec<(Field, u64)>,
    /// For each of `custom`, whether it is an incremental counter.
    incremental: Vec<bool>,
    /// For each of `custom`, whether a thread is among its ancestors (its
    /// events then belong to that thread, log lines included).
    on_thread: Vec<bool>,
    /// How the root descriptor ordered processes and threads, once written.
    root: Option<(bool, bool)>,
    /// The running totals of incremental counters, by index into `custom`.
    totals: FastMap<u32, RunningTotal>,
    /// Whether the writer is one of several writing one trace
    /// (`Options::partition`, or a sequence id other than 1).
    shares_trace: bool,
    open_async: OpenAsync,
    /// Complete async spans whose ends were written at exactly the time of
    /// the call that wrote them: still parents for spans beginning then,
    /// forgotten once a later call passes their end.
    retired: Vec<(u32, u64, u64)>,
}

/// A hash of what describes a track, to tell a repeated description from a
/// conflicting one without storing it. Each part's length goes into the
/// seed of its hash, so parts cannot run into each other.
fn digest<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    digest_from(0, parts)
}

/// [`digest`] continued from a digest of earlier parts.
fn digest_from<'a>(start: u64, parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    // Each part hashed with a seed made of the digest so far and its length.
    parts.into_iter().fold(start, |h, p| {
        xxh3_64_with_seed(p, h.rotate_left(23) ^ (p.len() as u64))
    })
}

impl Core {
    pub(crate) fn new(options: &crate::options::Options) -> Self {
        let sequence_id = options.sequence_id.get();
        let compact = options.compact;
        let mut enc = Emitter::new(compact, options.intern_limits);
        enc.clock = options.clock as u32;
        enc.clock_reading = options.clock_reading;
        Core {
            owner: Owner::next(),
            base_sequence_id: sequence_id,
            sequence_span: options.sequence_span,
            enc,
            seqs: Sequences::new(sequence_id, options.sequence_span),
            processes: Vec::new(),
            threads: Vec::new(),
            lanes: Vec::new(),
            // A process and two threads (six keys) without growing.
            keys: FastMap::with_capacity_and_hasher(7, Default::default()),
            custom: Vec::new(),
            incremental: Vec::new(),
            on_thread: Vec::new(),
            root: None,
            totals: FastMap::default(),
            shares_trace: options.sequence_span != u32::MAX || sequence_id != 1,
            open_async: OpenAsync::default(),
            retired: Vec::new(),
        }
    }

    /// The packets written so far and not yet taken by the writer: whole
    /// framed packets only, between calls.
    #[inline]
    pub(crate) fn buffer(&self) -> &Out {
        &self.enc.out
    }

    /// [`Core::buffer`], for the writer to drain or cut into chunks.
    #[inline]
    pub(crate) fn buffer_mut(&mut self) -> &mut Out {
        &mut self.enc.out
    }

    /// The buffer, the core done with.
    pub(crate) fn into_buffer(self) -> Out {
        self.enc.out
    }

    pub(crate) fn packets(&self) -> u64 {
        self.enc.packets
    }

    /// Distinct interned strings (names, categories, source locations).
    pub(crate) fn interned(&self) -> usize {
        self.enc.strings.len()
    }

    pub(crate) fn generations(&self) -> u64 {
        self.enc.generations()
    }

    /// Sequences used (one in default mode).
    pub(crate) fn sequences(&self) -> usize {
        self.seqs.len()
    }

    fn own(&self, owner: Owner, uuid: TrackUuid) -> Result<()> {
        if owner != self.owner {
            return Err(Error::ForeignHandle(uuid));
        }
        Ok(())
    }

    fn id_taken(&self, id: i64) -> bool {
        self.keys.contains_key(&Key::Tid(id))
            || i32::try_from(id).is_ok_and(|p| self.keys.contains_key(&Key::Pid(p)))
    }

    fn derive_id(&self, key: &str, parent: TrackUuid) -> i64 {
        // 2^31 candidates against at most a few million taken: ends at once.
        (0..)
            .map(|attempt| derived_id(key.as_bytes(), parent.0, attempt))
            .find(|&id| !self.id_taken(id))
            .unwrap_or(crate::ids::DERIVED_ID_MIN)
    }

    pub(crate) fn process(
        &mut self,
        key: &str,
        pid: Option<i32>,
        name: &str,
        cmdline: &[&str],
        options: &ProcessOptions<'_>,
    ) -> Result<ProcessTrack> {
        check_len([key, name].into_iter().chain(cmdline.iter().copied()))?;
        check_len(options.description)?;
        check_len(options.labels.iter().copied())?;
        let uuid = track_uuid(Domain::Process, 0, key.as_bytes());
        let pid_bytes = pid.map(i32::to_le_bytes);
        let pid_bytes = pid_bytes.as_ref().map_or(&[][..], |b| &b[..]);
        // Without allocating: the parts themselves, the command line's
        // length keeping it apart from the labels.
        let mut digest = digest(
            [pid_bytes, name.as_bytes()]
                .into_iter()
                .chain(cmdline.iter().map(|s| s.as_bytes())),
        );
        if *options != ProcessOptions::default() {
            // The options' parts, the command line's length keeping it
            // apart from the labels; hashed only when there are any.
            let has_description = [u8::from(options.description.is_some())];
            let description = options.description.map_or(&[][..], str::as_bytes);
            let rank = options.sibling_rank.map(i32::to_le_bytes);
            let args = (cmdline.len() as u64).to_le_bytes();
            let parts = [
                &args[..],
                &has_description,
                description,
                rank.as_ref().map_or(&[][..], |b| &b[..]),
            ];
            let labels = options.labels.iter().map(|s| s.as_bytes());
            digest = digest_from(digest, parts.into_iter().chain(labels));
        }
        if let Some(index) = self.described(uuid, digest, |i| self.processes[i].digest)? {
            return Ok(ProcessTrack {
                uuid,
                index,
                owner: self.owner,
            });
        }
        let pid = match pid {
            Some(0) => return Err(Error::ZeroId),
            Some(p) if p < 0 => return Err(Error::NegativePid(p)),
            Some(p) if self.keys.contains_key(&Key::Pid(p)) => return Err(Error::PidInUse(p)),
            Some(p) => p,
            // Derived ids are positive i32s.
            None => self.derive_id(key, TrackUuid(0)) as i32,
        };
        let index = self.processes.len() as u32;
        let kind = TrackKind::Process {
            pid,
            name,
            cmdline,
            options,
        };
        self.enc.descriptor(&mut self.seqs[0], uuid.0, &kind);
        self.processes.push(Process { pid, digest });
        self.keys.insert(Key::Uuid(uuid.0), index);
        self.keys.insert(Key::Pid(pid), index);
        Ok(ProcessTrack {
            uuid,
            index,
            owner: self.owner,
        })
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
        match self.keys.get(&Key::Uuid(uuid.0)) {
            Some(&index) if digest_of(index as usize) != digest => Err(Error::Redefined(uuid)),
            other => Ok(other.copied()),
        }
    }

    pub(crate) fn pid(&self, process: ProcessTrack) -> Result<i32> {
        self.own(process.owner, process.uuid)?;
        Ok(self.processes[process.index as usize].pid)
    }

    pub(crate) fn tid(&self, thread: ThreadTrack) -> Result<i64> {
        self.own(thread.owner, thread.uuid)?;
        Ok(self.threads[thread.index as usize].tid)
    }

    pub(crate) fn thread(
        &mut self,
        process: ProcessTrack,
        key: &str,
        tid: Option<i64>,
        name: &str,
        options: &ThreadOptions<'_>,
    ) -> Result<ThreadTrack> {
        self.own(process.owner, process.uuid)?;
        check_len([key, name])?;
        check_len(options.description)?;
        let uuid = track_uuid(Domain::Thread, process.uuid.0, key.as_bytes());
        let tid_bytes = tid.map(i64::to_le_bytes);
        let mut digest = digest([
            tid_bytes.as_ref().map_or(&[][..], |b| &b[..]),
            name.as_bytes(),
        ]);
        if *options != ThreadOptions::default() {
            let has_description = [u8::from(options.description.is_some())];
            let rank = options.sibling_rank.map(i32::to_le_bytes);
            let parts = [
                &has_description[..],
                options.description.map_or(&[][..], str::as_bytes),
                rank.as_ref().map_or(&[][..], |b| &b[..]),
            ];
            digest = digest_from(digest, parts);
        }
        if let Some(index) = self.described(uuid, digest, |i| self.threads[i].digest)? {
            return Ok(ThreadTrack {
                uuid,
                index,
                owner: self.owner,
            });
        }
        let tid = match tid {
            Some(0) => return Err(Error::ZeroId),
            Some(t) if self.keys.contains_key(&Key::Tid(t)) => return Err(Error::TidInUse(t)),
            Some(t) => t,
            None => self.derive_id(key, process.uuid),
        };
        let pid = self.processes[process.index as usize].pid;
        let index = self.threads.len() as u32;
        // The trace processor links threads to processes by pid, not parent_uuid.
        self.enc.descriptor(
            &mut self.seqs[0],
            uuid.0,
            &TrackKind::Thread {
                pid,
                tid,
                name,
                options,
            },
        );
        // Its events go on the writer's sequence with their track named, until
        // (compact mode) it is busy enough for a sequence of its own.
        let track = Some(Field::uint(field::EVENT_TRACK_UUID, uuid.0));
        let end = self.enc.end_template(&self.seqs[0], track.as_ref());
        self.threads.push(Thread {
            uuid,
            track,
            end,
            seq: 0,
            spans: 0,
            budget: Budget::default(),
            tid,
            digest,
            stack: Vec::new(),
            explicit: 0,
            last_ts: 0,
            instants: 0,
        });
        self.keys.insert(Key::Uuid(uuid.0), index);
        self.keys.insert(Key::Tid(tid), index);
        Ok(ThreadTrack {
            uuid,
            index,
            owner: self.owner,
        })
    }

    /// Whether a track with `spans` spans so far should move to a sequence
    /// of its own (see [`BUSY_FROM`]).
    #[inline]
    fn busy(&self, spans: u32) -> bool {
        self.enc.compact && spans >= BUSY_FROM
    }

    /// In compact mode, a new sequence whose default track is `track` (the
    /// next id of the writer's span of ids, if one is left), with the
    /// template of the track's slice ends there.
    fn own_sequence(&mut self, track: u64) -> Option<(usize, EndTemplate)> {
        if !self.enc.compact {
            return None;
        }
        let seq = self.seqs.open(track)?;
        Some((seq, self.enc.end_template(&self.seqs[seq], None)))
    }

    fn parent_uuid(&self, parent: ParentTrack) -> Result<TrackUuid> {
        match parent {
            ParentTrack::Root => {}
            ParentTrack::Process(p) => self.own(p.owner, p.uuid)?,
            ParentTrack::Thread(t) => self.own(t.owner, t.uuid)?,
            ParentTrack::Named(t) => self.own(t.owner, t.uuid)?,
        }
        Ok(parent.uuid())
    }

    pub(crate) fn async_lane(
        &mut self,
        parent: ParentTrack,
        name: &str,
        options: &LaneOptions<'_>,
    ) -> Result<AsyncLane> {
        let parent = self.parent_uuid(parent)?;
        check_len([name])?;
        check_len(options.description)?;
        let uuid = track_uuid(Domain::AsyncLane, parent.0, name.as_bytes());
        if let Some(&index) = self.keys.get(&Key::Uuid(uuid.0)) {
            let lane = &self.lanes[index as usize];
            if lane.description.as_deref() != options.description || lane.merged == options.tree {
                return Err(Error::Redefined(uuid));
            }
            return Ok(AsyncLane {
                uuid,
                index,
                owner: self.owner,
            });
        }
        let index = self.lanes.len() as u32;
        self.lanes.push(Lane {
            uuid,
            described: false,
            parent,
            name: name.into(),
            description: options.description.map(Into::into),
            merged: !options.tree,
            slots: Vec::new(),
            free: Vec::new(),
        });
        self.keys.insert(Key::Uuid(uuid.0), index);
        Ok(AsyncLane {
            uuid,
            index,
            owner: self.owner,
        })
    }

    /// Writes the ends of the complete spans on top of the stack that have
    /// ended by `ts`. The check is inlined: most threads have no complete
    /// span waiting, and then a call cost each span 40 instructions.
    #[inline(always)]
    fn pop_due(&mut self, t: usize, ts: u64) {
        if self.threads[t].pending() {
            self.pop_pending(t, ts);
        }
    }

    fn pop_pending(&mut self, t: usize, ts: u64) {
        let thread = &mut self.threads[t];
        while let Some(end) = thread.stack.last().and_then(|f| f.end).filter(|&e| e <= ts) {
            thread.stack.pop();
            thread.last_ts = end;
            thread.instants = 0;
            self.enc
                .end(&mut self.seqs[thread.seq], end, &thread.track, &thread.end);
        }
    }

    /// Moves a busy thread's events to a sequence of its own, if an id is
    /// left. Spans still open there end on the new sequence: the trace
    /// processor matches ends to begins by track, whatever the sequence.
    #[cold]
    fn move_thread(&mut self, t: usize) {
        if let Some((seq, end)) = self.own_sequence(self.threads[t].uuid.0) {
            let th = &mut self.threads[t];
            (th.seq, th.track, th.end) = (seq, None, end);
            th.budget.moved_at = th.spans;
        }
    }

    fn thread_index(&self, thread: ThreadTrack) -> Result<usize> {
        self.own(thread.owner, thread.uuid)?;
        Ok(thread.index as usize)
    }

    /// Checks that a span may begin at `ts` on the thread, and nest until
    /// `end` (if known).
    fn check_begin(&self, t: usize, ts: u64, end: Option<u64>) -> Result<()> {
        check_ts(ts)?;
        let th = &self.threads[t];
        if let Some(end) = end {
            check_ts(end)?;
            if end < ts {
                return Err(Error::EndBeforeBegin { begin: ts, end });
            }
        }
        if ts < th.last_ts {
            return Err(Error::TimestampBackwards {
                track: th.uuid,
                ts,
                last: th.last_ts,
            });
        }
        let due = th.due(ts);
        let limit = th.limit_after(due);
        let reach = end.unwrap_or(ts);
        if reach > limit {
            return Err(Error::NotNested {
                track: th.uuid,
                end: reach,
                limit,
            });
        }
        if th.stack.len() - due >= MAX_SPAN_DEPTH {
            return Err(Error::TooDeep(th.uuid));
        }
        Ok(())
    }

    fn push_span(&mut self, t: usize, ts: u64, end: Option<u64>, meta: &Event<'_>) {
        self.pop_due(t, ts);
        let limit = self.threads[t].stack.last().map_or(u64::MAX, |f| f.limit);
        let limit = end.map_or(limit, |e| e.min(limit));
        self.open_frame(t, ts, end, limit, meta);
    }

    /// Counts a span begun on a thread (in compact mode, where a busy thread
    /// moves to a sequence of its own), pushes its frame and writes its
    /// begin: what every begin does once it is checked and nothing is due.
    #[inline(always)]
    fn open_frame(&mut self, t: usize, ts: u64, end: Option<u64>, limit: u64, meta: &Event<'_>) {
        if self.enc.compact {
            // Default mode never moves a thread, and needs no count.
            let th = &mut self.threads[t];
            th.spans = th.spans.saturating_add(1);
            let (seq, spans) = (th.seq, th.spans);
            if seq == 0 && self.busy(spans) {
                self.move_thread(t);
            }
        }
        let th = &mut self.threads[t];
        th.explicit += usize::from(end.is_none());
        th.stack.push(Frame {
            begin: ts,
            end,
            limit,
        });
        th.last_ts = ts;
        th.instants = 0;
        if !self
            .enc
            .begin_known(&mut self.seqs[th.seq], ts, th.track.as_ref(), meta)
        {
            self.thread_begin_general(t, ts, *meta);
        }
    }

    /// A begin on a thread that defines strings (or opens a sequence), out
    /// of line: on the thread's own sequence if that pays (compact mode),
    /// otherwise on the writer's.
    #[cold]
    #[inline(never)]
    fn thread_begin_general(&mut self, t: usize, ts: u64, meta: Event<'_>) {
        let seq = self.thread_event_sequence(t, &meta);
        let th = &self.threads[t];
        let moved = Field::uint(field::EVENT_TRACK_UUID, th.uuid.0);
        let track = if seq == th.seq {
            th.track.as_ref()
        } else {
            Some(&moved)
        };
        // Written on the writer's sequence, it may know every string.
        let on = &mut self.seqs[seq];
        if seq == th.seq || !self.enc.begin_known(on, ts, track, &meta) {
            self.enc.begin_general(on, ts, track, meta);
        }
    }

    /// The sequence an event of thread `t` that names strings goes on: the
    /// thread's (the writer's own in default mode), or the writer's where
    /// the thread's own would not pay for what it defines (see [`Budget`]).
    fn thread_event_sequence(&mut self, t: usize, ev: &Event<'_>) -> usize {
        let th = &mut self.threads[t];
        if th.seq == 0 || th.budget.pays(&self.enc, &self.seqs[th.seq], th.spans, ev) {
            th.seq
        } else {
            0
        }
    }

    /// Begins an explicit span. Inlined into the caller: the common case
    /// (only explicit spans open on the thread, a valid event) returns in a
    /// register, where a `Result` is written to memory and read back, and
    /// saves the registers the checks need; anything else takes
    /// `span_begin_slow`, which checks and reports.
    #[inline]
    pub(crate) fn span_begin(
        &mut self,
        thread: ThreadTrack,
        ts: u64,
        meta: &Event<'_>,
    ) -> Result<()> {
        if self.span_begin_fast(thread, ts, meta) {
            return Ok(());
        }
        self.span_begin_slow(thread, ts, *meta)
    }

    /// The common case of [`Core::span_begin`]: written, true; otherwise
    /// nothing written, false.
    #[inline]
    fn span_begin_fast(&mut self, thread: ThreadTrack, ts: u64, meta: &Event<'_>) -> bool {
        if thread.owner != self.owner || meta.check().is_err() || !meta.counters.is_empty() {
            return false;
        }
        let t = thread.index as usize;
        let Some(th) = self.threads.get(t) else {
            return false;
        };
        if th.pending() || ts < th.last_ts || ts > MAX_TS || th.stack.len() >= MAX_SPAN_DEPTH {
            return false;
        }
        // Only explicit spans are open: nothing is due, nothing limits the
        // new span, and no frame need be read. Reading the top frame put a
        // load, and a branch on whether the stack was empty, on every begin
        // and end.
        self.open_frame(t, ts, None, u64::MAX, meta);
        true
    }

    /// [`Core::span_begin`] where complete spans wait or the call is wrong,
    /// out of line (see `Emitter::begin_general`).
    #[cold]
    #[inline(never)]
    fn span_begin_slow(&mut self, thread: ThreadTrack, ts: u64, meta: Event<'_>) -> Result<()> {
        let t = self.thread_index(thread)?;
        meta.check()?;
        self.check_counters(meta.counters)?;
        self.check_begin(t, ts, None)?;
        self.push_span(t, ts, None, &meta);
        Ok(())
    }

    pub(crate) fn complete_span(
        &mut self,
        thread: ThreadTrack,
        begin: u64,
        end: u64,
        meta: &Event<'_>,
    ) -> Result<()> {
        let t = self.thread_index(thread)?;
        meta.check()?;
        self.check_counters(meta.counters)?;
        self.check_begin(t, begin, Some(end))?;
        self.push_span(t, begin, Some(end), meta);
        Ok(())
    }

    /// A complete span at an explicit depth: the frames at `depth` and
    /// deeper must have ended by `begin` (their ends are written first), the
    /// frames above it stay open around the span, even one that ends at
    /// `begin` when the span is zero-length there.
    pub(crate) fn complete_span_at_depth(
        &mut self,
        thread: ThreadTrack,
        depth: usize,
        begin: u64,
        end: u64,
        meta: &Event<'_>,
    ) -> Result<()> {
        let t = self.thread_index(thread)?;
        meta.check()?;
        self.check_counters(meta.counters)?;
        check_ts(begin)?;
        check_ts(end)?;
        if end < begin {
            return Err(Error::EndBeforeBegin { begin, end });
        }
        let th = &self.threads[t];
        if begin < th.last_ts {
            return Err(Error::TimestampBackwards {
                track: th.uuid,
                ts: begin,
                last: th.last_ts,
            });
        }
        // Frames that have not ended by `begin` stay; frames whose limit
        // reaches `end` may enclose the span.
        let min = th.stack.len() - th.due(begin);
        let max = th.stack.iter().take_while(|f| f.limit >= end).count();
        if max < min {
            return Err(Error::NotNested {
                track: th.uuid,
                end,
                limit: th.stack[max].limit,
            });
        }
        if depth >= MAX_SPAN_DEPTH {
            return Err(Error::TooDeep(th.uuid));
        }
        if !(min..=max).contains(&depth) {
            return Err(Error::DepthOutOfRange {
                track: th.uuid,
                depth,
                min,
                max,
            });
        }
        // The frames from `depth` up have ended by `begin` (depth >= min).
        while self.threads[t].stack.len() > depth {
            let thread = &mut self.threads[t];
            let Some(e) = thread.stack.last().and_then(|f| f.end) else {
                break;
            };
            thread.stack.pop();
            thread.last_ts = e;
            self.enc
                .end(&mut self.seqs[thread.seq], e, &thread.track, &thread.end);
        }
        let limit = self.threads[t].stack.last().map_or(u64::MAX, |f| f.limit);
        self.open_frame(t, begin, Some(end), end.min(limit), meta);
        Ok(())
    }

    /// Ends the innermost explicit span on a thread: inlined, the common
    /// case returns in a register (see [`Core::span_begin`]).
    #[inline]
    pub(crate) fn span_end(&mut self, thread: ThreadTrack, ts: u64) -> Result<()> {
        if self.span_end_fast(thread, ts) {
            return Ok(());
        }
        self.span_end_slow(thread, ts)
    }

    /// The common case of [`Core::span_end`]: written, true; otherwise
    /// nothing written, false.
    #[inline]
    fn span_end_fast(&mut self, thread: ThreadTrack, ts: u64) -> bool {
        if thread.owner != self.owner {
            return false;
        }
        let t = thread.index as usize;
        let Some(th) = self.threads.get(t) else {
            return false;
        };
        if th.explicit != 0 && !th.pending() && ts >= th.last_ts && ts <= MAX_TS {
            // Only explicit spans are open: the top one began no later than
            // the track's last time, and no complete span limits it.
            self.end_top(t, ts);
            return true;
        }
        false
    }

    #[cold]
    #[inline(never)]
    fn span_end_slow(&mut self, thread: ThreadTrack, ts: u64) -> Result<()> {
        let t = self.thread_index(thread)?;
        self.span_end_checked(t, ts, &[])
    }

    /// [`Core::span_end`] with counter values on the end event.
    pub(crate) fn span_end_with_counters(
        &mut self,
        thread: ThreadTrack,
        ts: u64,
        counters: &[(CounterTrack, CounterSample)],
    ) -> Result<()> {
        let t = self.thread_index(thread)?;
        self.check_counters(counters)?;
        self.span_end_checked(t, ts, counters)
    }

    /// Checks the counter values an event carries: at most
    /// [`MAX_EVENT_COUNTERS`], on this writer's absolute counters.
    fn check_counters(&self, counters: &[(CounterTrack, CounterSample)]) -> Result<()> {
        if counters.len() > MAX_EVENT_COUNTERS {
            return Err(Error::TooManyCounters(counters.len()));
        }
        for (track, _) in counters {
            self.own(track.owner, track.uuid)?;
            if self.incremental[track.index as usize] {
                return Err(Error::IncrementalCounterOnEvent(track.uuid));
            }
        }
        Ok(())
    }

    /// [`Core::span_end`] where complete spans wait or the call is wrong, or
    /// the end carries counter values.
    fn span_end_checked(
        &mut self,
        t: usize,
        ts: u64,
        counters: &[(CounterTrack, CounterSample)],
    ) -> Result<()> {
        check_ts(ts)?;
        let th = &self.threads[t];
        if th.explicit == 0 {
            return Err(Error::NoOpenSpan(th.uuid));
        }
        let due = th.due(ts);
        let live = &th.stack[..th.stack.len() - due];
        let Some(top) = live.last() else {
            return Err(Error::NoOpenSpan(th.uuid));
        };
        if let Some(end) = top.end {
            // A complete span begun inside the explicit one outlives `ts`.
            return Err(Error::NotNested {
                track: th.uuid,
                end: ts,
                limit: end,
            });
        }
        if ts < top.begin {
            return Err(Error::EndBeforeBegin {
                begin: top.begin,
                end: ts,
            });
        }
        if ts < th.last_ts {
            return Err(Error::TimestampBackwards {
                track: th.uuid,
                ts,
                last: th.last_ts,
            });
        }
        if ts > top.limit {
            return Err(Error::NotNested {
                track: th.uuid,
                end: ts,
                limit: top.limit,
            });
        }
        self.pop_due(t, ts);
        if counters.is_empty() {
            self.end_top(t, ts);
        } else {
            let th = &mut self.threads[t];
            th.stack.pop();
            th.explicit -= 1;
            th.last_ts = ts;
            let ev = Event::new("").counters(counters);
            self.enc
                .end_with(&mut self.seqs[th.seq], ts, th.track.as_ref(), &ev);
        }
        Ok(())
    }

    /// Ends the span on top of a thread's stack, an explicit one, at `ts`.
    /// Inlined: left a call, it cost every end a few instructions.
    #[inline(always)]
    fn end_top(&mut self, t: usize, ts: u64) {
        let th = &mut self.threads[t];
        th.stack.pop();
        th.explicit -= 1;
        th.last_ts = ts;
        th.instants = 0;
        self.enc.end(&mut self.seqs[th.seq], ts, &th.track, &th.end);
    }

    fn lane_index(&self, lane: AsyncLane) -> Result<usize> {
        self.own(lane.owner, lane.uuid)?;
        Ok(lane.index as usize)
    }

    /// Begins an async span. Inlined into the caller, like
    /// [`Core::span_begin`]: the common case (a valid event, a new id, the
    /// lane's last freed track free by `ts`) returns in a register; anything
    /// else takes `async_span_begin_slow`.
    #[inline]
    pub(crate) fn async_span_begin(
        &mut self,
        lane: AsyncLane,
        span_id: u64,
        ts: u64,
        meta: &Event<'_>,
    ) -> Result<()> {
        if self.async_span_begin_fast(lane, span_id, ts, meta) {
            return Ok(());
        }
        self.async_span_begin_slow(lane, span_id, None, ts, *meta)
    }

    /// The common case of [`Core::async_span_begin`]: written, true;
    /// otherwise nothing changed, false.
    #[inline]
    fn async_span_begin_fast(
        &mut self,
        lane: AsyncLane,
        span_id: u64,
        ts: u64,
        meta: &Event<'_>,
    ) -> bool {
        if lane.owner != self.owner
            || ts > MAX_TS
            || meta.check().is_err()
            || meta.log.is_some()
            || !meta.counters.is_empty()
        {
            return false;
        }
        let l = lane.index as usize;
        let Some(lane_state) = self.lanes.get_mut(l) else {
            return false;
        };
        let Some(&slot) = lane_state.free.last() else {
            return false;
        };
        // Taken only if it ended by `ts`, so spans on it never overlap.
        if lane_state
            .slots
            .get(slot as usize)
            .is_none_or(|s| s.last_ts > ts)
        {
            return false;
        }
        let open = AsyncOpen::streaming(lane.index, slot, ts);
        if self.open_async.insert(lane.index, span_id, open).is_some() {
            return false;
        }
        let lane_state = &mut self.lanes[l];
        lane_state.free.pop();
        lane_state.slots[slot as usize].streaming = true;
        self.begin_in_slot(l, slot, ts, meta);
        true
    }

    /// Begins an async span beneath `parent`, a span in flight: on a track
    /// nested under the parent's track (see `TraceWriter::async_child_begin`).
    pub(crate) fn async_child_begin(
        &mut self,
        lane: AsyncLane,
        span_id: u64,
        parent: AsyncParent,
        ts: u64,
        meta: &Event<'_>,
    ) -> Result<()> {
        self.async_span_begin_slow(lane, span_id, Some(parent), ts, *meta)
    }

    /// The open entry of `parent` at `ts`: in flight then, or
    /// [`Error::ParentNotOpen`].
    fn parent_entry(&self, parent: AsyncParent, ts: u64) -> Result<AsyncOpen> {
        self.lane_index(parent.lane)?;
        let not_open = Error::ParentNotOpen {
            lane: parent.lane.uuid,
            span_id: parent.span_id,
        };
        match self.open_async.get(parent.lane.index, parent.span_id) {
            // A complete span is a parent until its end, inclusive.
            Some(open) if open.is_streaming() || open.end >= ts => Ok(open),
            _ => Err(not_open),
        }
    }

    /// Checks that `span_id` is free on the lane for a span beginning at
    /// `ts`: not open, or a complete span that ended by then (which is then
    /// written out, see [`Core::retire_ended`]).
    fn check_id_free(&self, lane: AsyncLane, span_id: u64, ts: u64) -> Result<()> {
        match self.open_async.get(lane.index, span_id) {
            Some(open) if open.is_streaming() || open.end > ts => {
                Err(Error::AsyncSpanAlreadyOpen {
                    lane: lane.uuid,
                    span_id,
                })
            }
            _ => Ok(()),
        }
    }

    /// Writes out the complete span that holds `span_id` on the lane if it
    /// ended by `ts` (checked by [`Core::check_id_free`]), so the id is free.
    fn retire_ended(&mut self, lane: u32, span_id: u64, ts: u64) {
        let Some(open) = self.open_async.get(lane, span_id) else {
            return;
        };
        let key = (lane, span_id);
        let (l, slot) = (open.lane as usize, open.slot);
        // Its end is written now, with those of the spans inside it, unless
        // it was written already (a retired span).
        let frames = &self.lanes[l].slots[slot as usize].frames;
        if frames
            .iter()
            .any(|f| (f.lane, f.id) == key && f.end == open.end)
        {
            self.pop_slot(l, slot, ts, PopTo::Through(key));
        }
        self.open_async.remove(lane, span_id);
    }

    /// Forgets the complete spans that ended before `ts` (see `retired`).
    fn forget_retired(&mut self, ts: u64) {
        if self.retired.is_empty() {
            return;
        }
        let open_async = &mut self.open_async;
        self.retired.retain(|&(lane, id, end)| {
            if end >= ts {
                return true;
            }
            // Unless the id was taken again since.
            if open_async.get(lane, id).is_some_and(|o| o.end == end) {
                open_async.remove(lane, id);
            }
            false
        });
    }

    #[cold]
    #[inline(never)]
    fn async_span_begin_slow(
        &mut self,
        lane: AsyncLane,
        span_id: u64,
        parent: Option<AsyncParent>,
        ts: u64,
        meta: Event<'_>,
    ) -> Result<()> {
        let l = self.lane_index(lane)?;
        meta.check()?;
        if meta.log.is_some() {
            return Err(Error::LogOffThread(lane.uuid));
        }
        self.check_counters(meta.counters)?;
        check_ts(ts)?;
        let under = match parent {
            Some(p) => Some(self.parent_entry(p, ts)?),
            None => None,
        };
        self.check_id_free(lane, span_id, ts)?;
        // Everything is checked: from here on the call succeeds.
        self.forget_retired(ts);
        self.retire_ended(lane.index, span_id, ts);
        let track_lane = match under {
            Some(p) => self.child_lane(p.lane as usize, p.slot),
            None => l,
        };
        let slot = self.streaming_slot(track_lane, ts);
        let open = AsyncOpen::streaming(track_lane as u32, slot, ts);
        self.open_async.insert(lane.index, span_id, open);
        self.lanes[track_lane].slots[slot as usize].streaming = true;
        self.begin_in_slot(track_lane, slot, ts, &meta);
        Ok(())
    }

    /// A track of lane `l` for a span begun and ended by separate calls at
    /// `ts`: the most recently freed one that ended by `ts` (usually the
    /// top of the free list), else one whose complete spans have all ended
    /// by then, else a new one. Taken off the free list.
    fn streaming_slot(&mut self, l: usize, ts: u64) -> u32 {
        let lane = &self.lanes[l];
        if let Some(i) = lane
            .free
            .iter()
            .rposition(|&s| lane.slots[s as usize].last_ts <= ts)
        {
            return self.lanes[l].free.remove(i);
        }
        self.first_free(l, ts).unwrap_or_else(|| self.new_slot(l))
    }

    /// The first track of lane `l` (in creation order) free at `ts`: no
    /// span begun and not ended on it, every complete span on it ended by
    /// `ts` (their ends are written now), nothing written after `ts`. Taken
    /// off the free list.
    fn first_free(&mut self, l: usize, ts: u64) -> Option<u32> {
        for slot in 0..self.lanes[l].slots.len() as u32 {
            let s = &self.lanes[l].slots[slot as usize];
            if s.streaming {
                continue;
            }
            if !s.frames.is_empty() {
                self.pop_slot(l, slot, ts, PopTo::Ended);
            }
            let lane = &mut self.lanes[l];
            let s = &lane.slots[slot as usize];
            if s.frames.is_empty() && s.last_ts <= ts {
                if let Some(i) = lane.free.iter().position(|&f| f == slot) {
                    lane.free.remove(i);
                }
                return Some(slot);
            }
        }
        None
    }

    /// A new track for lane `l`, described now, named like the lane under
    /// the lane's parent.
    fn new_slot(&mut self, l: usize) -> u32 {
        let lane = &mut self.lanes[l];
        let slot = lane.slots.len() as u32;
        // Each writer's own (see `async_slot_uuid`).
        let uuid = async_slot_uuid(lane.uuid, self.base_sequence_id, slot);
        let track = Field::uint(field::EVENT_TRACK_UUID, uuid.0);
        let end = self.enc.end_template(&self.seqs[0], Some(&track));
        lane.slots.push(Slot {
            uuid: uuid.0,
            track: Some(track),
            end,
            seq: 0,
            spans: 0,
            budget: Budget::default(),
            last_ts: 0,
            streaming: false,
            frames: Vec::new(),
            children: None,
        });
        let options = lane.options();
        self.enc
            .descriptor(&mut self.seqs[0], uuid.0, &lane.track_kind(&options));
        slot
    }

    /// The lane of tracks nested under track `slot` of lane `l`, where
    /// children of its spans go when they do not nest on it; made on first
    /// use, named like `l`.
    fn child_lane(&mut self, l: usize, slot: u32) -> usize {
        if let Some(c) = self.lanes[l].slots[slot as usize].children {
            return c as usize;
        }
        let parent = TrackUuid(self.lanes[l].slots[slot as usize].uuid);
        let name = self.lanes[l].name.clone();
        // The children's tracks say what the lane's spans are, as theirs do.
        let description = self.lanes[l].description.clone();
        let uuid = track_uuid(Domain::AsyncLane, parent.0, name.as_bytes());
        let c = self.lanes.len();
        self.lanes.push(Lane {
            uuid,
            described: true,
            parent,
            name,
            description,
            merged: false,
            slots: Vec::new(),
            free: Vec::new(),
        });
        self.lanes[l].slots[slot as usize].children = Some(c as u32);
        c
    }

    /// Writes the ends of the complete spans on top of track `slot` of lane
    /// `l` that ended by `ts`, as far down as `to` says, and frees the track
    /// once nothing is left on it.
    fn pop_slot(&mut self, l: usize, slot: u32, ts: u64, to: PopTo) {
        loop {
            let s = &mut self.lanes[l].slots[slot as usize];
            let Some(&top) = s.frames.last() else { break };
            let key = (top.lane, top.id);
            if top.end > ts || to == PopTo::Above(key) {
                return;
            }
            s.frames.pop();
            s.last_ts = top.end;
            // The id may have been forgotten, or taken by a later span.
            let this = |o: AsyncOpen| o.lane as usize == l && o.slot == slot && o.end == top.end;
            if self.open_async.get(top.lane, top.id).is_some_and(this) {
                if top.end < ts {
                    self.open_async.remove(top.lane, top.id);
                } else {
                    // Ended exactly now: still a parent for spans beginning now.
                    self.retired.push((top.lane, top.id, top.end));
                }
            }
            let s = &self.lanes[l].slots[slot as usize];
            self.enc
                .end(&mut self.seqs[s.seq], top.end, &s.track, &s.end);
            if to == PopTo::Through(key) {
                return;
            }
        }
        // Emptied: free again (a track busy with a begun span has no frames).
        let lane = &mut self.lanes[l];
        if !lane.slots[slot as usize].streaming && !lane.free.contains(&slot) {
            lane.free.push(slot);
        }
    }

    /// An async span whose begin and end are both known, beneath `parent`
    /// if given (see `TraceWriter::async_complete_span`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn async_complete_span(
        &mut self,
        lane: AsyncLane,
        span_id: u64,
        parent: Option<AsyncParent>,
        begin: u64,
        end: u64,
        meta: &Event<'_>,
    ) -> Result<()> {
        let l = self.lane_index(lane)?;
        meta.check()?;
        if meta.log.is_some() {
            return Err(Error::LogOffThread(lane.uuid));
        }
        self.check_counters(meta.counters)?;
        check_ts(begin)?;
        check_ts(end)?;
        if end < begin {
            return Err(Error::EndBeforeBegin { begin, end });
        }
        let under = match parent {
            Some(p) if (p.lane.index, p.span_id) == (lane.index, span_id) => {
                return Err(Error::ParentNotOpen {
                    lane: lane.uuid,
                    span_id,
                })
            }
            Some(p) => Some((self.parent_entry(p, begin)?, p)),
            None => None,
        };
        self.check_id_free(lane, span_id, begin)?;
        // Everything is checked: from here on the call succeeds.
        self.forget_retired(begin);
        self.retire_ended(lane.index, span_id, begin);
        let (track_lane, slot) = match under {
            Some((p, parent)) => self.complete_place_under(p, parent, begin, end),
            None => (
                l,
                self.first_free(l, begin)
                    .unwrap_or_else(|| self.new_slot(l)),
            ),
        };
        let s = &mut self.lanes[track_lane].slots[slot as usize];
        s.frames.push(SlotFrame {
            end,
            lane: lane.index,
            id: span_id,
        });
        s.last_ts = begin;
        let open = AsyncOpen {
            lane: track_lane as u32,
            slot,
            begin,
            end,
        };
        self.open_async.insert(lane.index, span_id, open);
        self.begin_in_slot(track_lane, slot, begin, meta);
        Ok(())
    }

    /// Where a complete span `[begin, end]` beneath `p` goes: on the
    /// parent's track, nested, if the parent is a complete span that
    /// encloses it and is the innermost span there once the ended ones are
    /// written; otherwise on the first free track nested under the
    /// parent's track.
    fn complete_place_under(
        &mut self,
        p: AsyncOpen,
        parent: AsyncParent,
        begin: u64,
        end: u64,
    ) -> (usize, u32) {
        let (pl, ps) = (p.lane as usize, p.slot);
        let key = (parent.lane.index, parent.span_id);
        if !p.is_streaming() && end <= p.end && self.lanes[pl].slots[ps as usize].last_ts <= begin {
            self.pop_slot(pl, ps, begin, PopTo::Above(key));
            let s = &self.lanes[pl].slots[ps as usize];
            if s.frames.last().is_some_and(|f| (f.lane, f.id) == key)
                && s.frames.len() < MAX_SPAN_DEPTH
            {
                return (pl, ps);
            }
        }
        let c = self.child_lane(pl, ps);
        let slot = self
            .first_free(c, begin)
            .unwrap_or_else(|| self.new_slot(c));
        (c, slot)
    }

    /// Counts a span begun on a lane's slot (in compact mode, where a busy
    /// slot moves to a sequence of its own) and writes its begin.
    #[inline(always)]
    fn begin_in_slot(&mut self, l: usize, slot: u32, ts: u64, meta: &Event<'_>) {
        let s = &mut self.lanes[l].slots[slot as usize];
        s.spans = s.spans.saturating_add(1);
        let (spans, seq, uuid) = (s.spans, s.seq, s.uuid);
        if seq == 0 && self.busy(spans) {
            if let Some((seq, end)) = self.own_sequence(uuid) {
                let s = &mut self.lanes[l].slots[slot as usize];
                (s.seq, s.track, s.end) = (seq, None, end);
                s.budget.moved_at = s.spans;
            }
        }
        // Borrowed, not copied: the encoded track is 17 bytes.
        let s = &self.lanes[l].slots[slot as usize];
        if !self
            .enc
            .begin_known(&mut self.seqs[s.seq], ts, s.track.as_ref(), meta)
        {
            self.slot_begin_general(l, slot, ts, *meta);
        }
    }

    /// A begin on a lane's slot that defines strings (or opens a sequence),
    /// out of line: on the slot's own sequence if that pays (compact mode),
    /// otherwise on the writer's.
    #[cold]
    #[inline(never)]
    fn slot_begin_general(&mut self, l: usize, slot: u32, ts: u64, meta: Event<'_>) {
        let s = &mut self.lanes[l].slots[slot as usize];
        if s.seq != 0 && !s.budget.pays(&self.enc, &self.seqs[s.seq], s.spans, &meta) {
            let track = Field::uint(field::EVENT_TRACK_UUID, s.uuid);
            let seq = &mut self.seqs[0];
            if !self.enc.begin_known(seq, ts, Some(&track), &meta) {
                self.enc.begin_general(seq, ts, Some(&track), meta);
            }
            return;
        }
        self.enc
            .begin_general(&mut self.seqs[s.seq], ts, s.track.as_ref(), meta);
    }

    /// Ends an async span: inlined, the common case returns in a register
    /// (see [`Core::async_span_begin`]).
    #[inline]
    pub(crate) fn async_span_end(&mut self, lane: AsyncLane, span_id: u64, ts: u64) -> Result<()> {
        if self.async_span_end_fast(lane, span_id, ts) {
            return Ok(());
        }
        self.async_span_end_slow(lane, span_id, ts, &Event::new(""))
    }

    /// [`Core::async_span_end`] with what the end event carries: arguments
    /// (which the trace processor adds to the slice's) and counter values.
    /// Only `end.args` and `end.counters` are read.
    pub(crate) fn async_span_end_with(
        &mut self,
        lane: AsyncLane,
        span_id: u64,
        ts: u64,
        end: &Event<'_>,
    ) -> Result<()> {
        self.async_span_end_slow(lane, span_id, ts, end)
    }

    /// The common case of [`Core::async_span_end`]: written, true;
    /// otherwise nothing changed, false.
    #[inline]
    fn async_span_end_fast(&mut self, lane: AsyncLane, span_id: u64, ts: u64) -> bool {
        if lane.owner != self.owner || ts > MAX_TS || lane.index as usize >= self.lanes.len() {
            return false;
        }
        match self.open_async.remove(lane.index, span_id) {
            Some(open) if open.is_streaming() && ts >= open.begin => {
                self.end_slot(open.lane as usize, open.slot, ts, None);
                true
            }
            Some(open) => {
                // Put back: the slow path reports it.
                self.open_async.insert(lane.index, span_id, open);
                false
            }
            None => false,
        }
    }

    #[cold]
    #[inline(never)]
    fn async_span_end_slow(
        &mut self,
        lane: AsyncLane,
        span_id: u64,
        ts: u64,
        end: &Event<'_>,
    ) -> Result<()> {
        self.lane_index(lane)?;
        let end = Event::new("").args(end.args).counters(end.counters);
        end.check()?;
        self.check_counters(end.counters)?;
        check_ts(ts)?;
        let not_open = Error::AsyncSpanNotOpen {
            lane: lane.uuid,
            span_id,
        };
        // A complete span is not ended by a call: its end is known.
        let open = match self.open_async.get(lane.index, span_id) {
            Some(open) if open.is_streaming() => open,
            _ => return Err(not_open),
        };
        if ts < open.begin {
            return Err(Error::EndBeforeBegin {
                begin: open.begin,
                end: ts,
            });
        }
        self.open_async.remove(lane.index, span_id);
        let extras = end.has_extras().then_some(&end);
        self.end_slot(open.lane as usize, open.slot, ts, extras);
        Ok(())
    }

    /// Ends the span in flight on a lane's slot at `ts`, and frees the slot.
    /// Inlined: left a call, it cost every async end ten instructions.
    #[inline(always)]
    fn end_slot(&mut self, l: usize, slot: u32, ts: u64, extras: Option<&Event<'_>>) {
        let lane = &mut self.lanes[l];
        lane.free.push(slot);
        let s = &mut lane.slots[slot as usize];
        s.last_ts = ts;
        s.streaming = false;
        // Borrowed, not copied: the track and template are 50 bytes.
        match extras {
            None => self.enc.end(&mut self.seqs[s.seq], ts, &s.track, &s.end),
            Some(ev) => self
                .enc
                .end_with(&mut self.seqs[s.seq], ts, s.track.as_ref(), ev),
        }
    }

    /// Describes a named or counter track, or finds it described alike.
    fn custom_track(
        &mut self,
        domain: Domain,
        parent: ParentTrack,
        name: &str,
        options: &TrackOptions<'_>,
        counter: Option<&CounterOptions<'_>>,
    ) -> Result<(TrackUuid, u32)> {
        let on_thread = match parent {
            ParentTrack::Thread(_) => true,
            ParentTrack::Named(n) => self.on_thread.get(n.index as usize) == Some(&true),
            _ => false,
        };
        let parent = self.parent_uuid(parent)?;
        let key = match options.merge {
            Some(SiblingMerge::ByKey(k)) => k,
            _ => "",
        };
        let unit = match counter.map(|c| c.unit) {
            Some(CounterUnit::Named(u)) => u,
            _ => "",
        };
        check_len([name, key, unit])?;
        check_len(options.description)?;
        check_len(counter.and_then(|c| c.y_axis_share_key))?;
        let uuid = track_uuid(domain, parent.0, name.as_bytes());
        let digest = digest([
            format!("{options:?}").as_bytes(),
            format!("{counter:?}").as_bytes(),
        ]);
        if let Some(index) = self.described(uuid, digest, |i| self.custom[i].1)? {
            return Ok((uuid, index));
        }
        let kind = TrackKind::Named {
            parent: parent.0,
            name,
            options,
            counter,
        };
        self.enc.descriptor(&mut self.seqs[0], uuid.0, &kind);
        let index = self.custom.len() as u32;
        self.custom
            .push((Field::uint(field::EVENT_TRACK_UUID, uuid.0), digest));
        self.incremental
            .push(counter.is_some_and(|c| c.incremental));
        self.on_thread.push(on_thread);
        self.keys.insert(Key::Uuid(uuid.0), index);
        Ok((uuid, index))
    }

    pub(crate) fn track(
        &mut self,
        parent: ParentTrack,
        name: &str,
        options: &TrackOptions<'_>,
    ) -> Result<NamedTrack> {
        let (uuid, index) = self.custom_track(Domain::Named, parent, name, options, None)?;
        Ok(NamedTrack {
            uuid,
            index,
            owner: self.owner,
        })
    }

    pub(crate) fn counter_track(
        &mut self,
        parent: ParentTrack,
        name: &str,
        options: &CounterOptions<'_>,
    ) -> Result<CounterTrack> {
        if options.incremental && self.shares_trace {
            return Err(Error::SharedIncrementalCounter);
        }
        let (uuid, index) =
            self.custom_track(Domain::Counter, parent, name, &options.track, Some(options))?;
        if options.incremental {
            self.totals.entry(index).or_default();
        }
        Ok(CounterTrack {
            uuid,
            index,
            owner: self.owner,
        })
    }

    /// Writes the root descriptor: processes, threads ordered by rank.
    pub(crate) fn order_explicitly(&mut self, processes: bool, threads: bool) -> Result<()> {
        match self.root {
            Some(root) if root == (processes, threads) => Ok(()),
            Some(_) => Err(Error::Redefined(TrackUuid(0))),
            None => {
                let kind = TrackKind::Root {
                    processes_explicit: processes,
                    threads_explicit: threads,
                };
                self.enc.descriptor(&mut self.seqs[0], 0, &kind);
                self.root = Some((processes, threads));
                Ok(())
            }
        }
    }

    /// Writes readings of clocks taken at one instant.
    pub(crate) fn clock_snapshot(&mut self, readings: &[(Clock, u64)]) -> Result<()> {
        for (i, &(clock, ts)) in readings.iter().enumerate() {
            check_ts(ts)?;
            if readings[..i].iter().any(|&(c, _)| c == clock) {
                return Err(Error::BadClockSnapshot);
            }
        }
        if !readings.iter().any(|&(c, _)| c as u32 == self.enc.clock) {
            return Err(Error::BadClockSnapshot);
        }
        let clocks: Vec<(u32, u64)> = readings.iter().map(|&(c, ts)| (c as u32, ts)).collect();
        self.enc.clock_snapshot(&mut self.seqs[0], &clocks);
        Ok(())
    }

    /// Describes the track `TrackUuid::keyed(parent, key)`, named `name`.
    /// Describing it again (from this writer or another) describes the same
    /// track; the trace processor keeps the first description.
    pub(crate) fn keyed_track(
        &mut self,
        parent: TrackUuid,
        key: u64,
        name: &str,
        options: &TrackOptions<'_>,
    ) -> Result<TrackUuid> {
        let merge_key = match options.merge {
            Some(SiblingMerge::ByKey(k)) => k,
            _ => "",
        };
        check_len([name, merge_key])?;
        check_len(options.description)?;
        let uuid = TrackUuid::keyed(parent, key);
        let kind = TrackKind::Named {
            parent: parent.0,
            name,
            options,
            counter: None,
        };
        self.enc.descriptor(&mut self.seqs[0], uuid.0, &kind);
        Ok(uuid)
    }

    /// A slice begin, slice end or instant on a track named by its uuid.
    /// Nesting there is the caller's to keep: nothing here tracks it.
    pub(crate) fn event_on(
        &mut self,
        track: TrackUuid,
        ts: u64,
        kind: EventType,
        ev: Option<&Event<'_>>,
    ) -> Result<()> {
        if let Some(ev) = ev {
            ev.check()?;
        }
        check_ts(ts)?;
        let field = Field::uint(field::EVENT_TRACK_UUID, track.0);
        let seq = &mut self.seqs[0];
        match (kind, ev) {
            (EventType::SliceBegin, Some(ev)) => {
                if !self.enc.begin_known(seq, ts, Some(&field), ev) {
                    self.enc.begin_general(seq, ts, Some(&field), *ev);
                }
            }
            _ => self.enc.event(seq, ts, kind, Some(&field), ev, None),
        }
        Ok(())
    }

    pub(crate) fn counter(
        &mut self,
        track: CounterTrack,
        ts: u64,
        value: CounterSample,
    ) -> Result<()> {
        self.own(track.owner, track.uuid)?;
        check_ts(ts)?;
        let field = self.custom[track.index as usize].0;
        // Most writers have no incremental counter: no lookup for them.
        let total = match self.totals.is_empty() {
            true => None,
            false => self.totals.get_mut(&track.index),
        };
        let value = match total {
            Some(total) => total.add(value, self.enc.next_generation()),
            None => value,
        };
        self.enc.event(
            &mut self.seqs[0],
            ts,
            EventType::Counter,
            Some(&field),
            None,
            Some(value),
        );
        Ok(())
    }

    pub(crate) fn instant(&mut self, track: InstantTrack, ts: u64, ev: &Event<'_>) -> Result<()> {
        let field = match track {
            InstantTrack::Thread(thread) => {
                let t = self.thread_index(thread)?;
                ev.check()?;
                self.check_counters(ev.counters)?;
                // A zero-length span that pushes nothing: the same rules,
                // and instants already at `ts` stack below it.
                self.check_begin(t, ts, Some(ts))?;
                let th = &self.threads[t];
                let due = th.due(ts);
                let run = match th.last_ts == ts && due == 0 {
                    true => th.instants,
                    false => 0,
                };
                if th.stack.len() - due + run as usize >= MAX_SPAN_DEPTH {
                    return Err(Error::TooDeep(th.uuid));
                }
                self.pop_due(t, ts);
                let th = &mut self.threads[t];
                th.last_ts = ts;
                th.instants = run + 1;
                let seq = self.thread_event_sequence(t, ev);
                let th = &self.threads[t];
                let moved = Field::uint(field::EVENT_TRACK_UUID, th.uuid.0);
                let track = if seq == th.seq {
                    th.track.as_ref()
                } else {
                    Some(&moved)
                };
                self.enc.event(
                    &mut self.seqs[seq],
                    ts,
                    EventType::Instant,
                    track,
                    Some(ev),
                    None,
                );
                return Ok(());
            }
            InstantTrack::Process(p) => {
                self.own(p.owner, p.uuid)?;
                Field::uint(field::EVENT_TRACK_UUID, p.uuid.0)
            }
            InstantTrack::Named(n) => {
                self.own(n.owner, n.uuid)?;
                self.custom[n.index as usize].0
            }
            InstantTrack::Lane(lane) => {
                self.lane_index(lane)?;
                Field::uint(field::EVENT_TRACK_UUID, lane.uuid.0)
            }
        };
        ev.check()?;
        self.check_counters(ev.counters)?;
        let thread_owned = match track {
            InstantTrack::Named(n) => self.on_thread[n.index as usize],
            _ => false,
        };
        if ev.log.is_some() && !thread_owned {
            let uuid = match track {
                InstantTrack::Process(p) => p.uuid,
                InstantTrack::Named(n) => n.uuid,
                InstantTrack::Lane(l) => l.uuid,
                InstantTrack::Thread(t) => t.uuid,
            };
            return Err(Error::LogOffThread(uuid));
        }
        check_ts(ts)?;
        if let InstantTrack::Lane(lane) = track {
            // The lane's own track is described when it first gets an event.
            let lane_state = &mut self.lanes[lane.index as usize];
            if !lane_state.described {
                lane_state.described = true;
                let options = lane_state.options();
                let kind = lane_state.track_kind(&options);
                self.enc.descriptor(&mut self.seqs[0], lane.uuid.0, &kind);
            }
        }
        self.enc.event(
            &mut self.seqs[0],
            ts,
            EventType::Instant,
            Some(&field),
            Some(ev),
            None,
        );
        Ok(())
    }

    /// Writes the ends of complete spans that nothing open encloses, and
    /// lists the spans still open.
    pub(crate) fn finish(&mut self) -> Vec<OpenSpan> {
        for t in 0..self.threads.len() {
            self.pop_due(t, u64::MAX);
        }
        self.pop_all_slots();
        self.forget_retired(u64::MAX);
        self.open_spans()
    }

    /// Writes the end of every complete async span still waiting.
    fn pop_all_slots(&mut self) {
        for l in 0..self.lanes.len() {
            for slot in 0..self.lanes[l].slots.len() as u32 {
                if !self.lanes[l].slots[slot as usize].frames.is_empty() {
                    self.pop_slot(l, slot, u64::MAX, PopTo::Ended);
                }
            }
        }
    }

    pub(crate) fn open_spans(&self) -> Vec<OpenSpan> {
        let mut open = Vec::new();
        for (index, th) in self.threads.iter().enumerate() {
            let thread = ThreadTrack {
                uuid: th.uuid,
                index: index as u32,
                owner: self.owner,
            };
            for (depth, f) in th.stack.iter().enumerate() {
                if f.end.is_none() {
                    open.push(OpenSpan::Thread {
                        thread,
                        begin: f.begin,
                        depth,
                    });
                }
            }
        }
        let mut asyncs: Vec<_> = self
            .open_async
            .iter()
            .filter(|(_, o)| o.is_streaming())
            .collect();
        asyncs.sort_by_key(|&((lane, id), o)| (o.begin, lane, id));
        for ((index, span_id), o) in asyncs {
            let lane = AsyncLane {
                uuid: self.lanes[index as usize].uuid,
                index,
                owner: self.owner,
            };
            open.push(OpenSpan::Async {
                lane,
                span_id,
                begin: o.begin,
            });
        }
        open
    }

    /// Ends every open span at `ts` (and writes every pending end): all or
    /// nothing.
    pub(crate) fn close_open_spans(&mut self, ts: u64) -> Result<usize> {
        check_ts(ts)?;
        for th in &self.threads {
            let Some(lowest) = th.stack.iter().position(|f| f.end.is_none()) else {
                continue;
            };
            if ts < th.last_ts {
                return Err(Error::TimestampBackwards {
                    track: th.uuid,
                    ts,
                    last: th.last_ts,
                });
            }
            if let Some(end) = th.stack[lowest..]
                .iter()
                .filter_map(|f| f.end)
                .find(|&e| e > ts)
            {
                return Err(Error::NotNested {
                    track: th.uuid,
                    end: ts,
                    limit: end,
                });
            }
            // The innermost explicit span has the tightest limit.
            let limit = th
                .stack
                .iter()
                .rev()
                .find(|f| f.end.is_none())
                .map_or(u64::MAX, |f| f.limit);
            if ts > limit {
                return Err(Error::NotNested {
                    track: th.uuid,
                    end: ts,
                    limit,
                });
            }
        }
        let streaming = |o: &AsyncOpen| o.is_streaming();
        if let Some((_, o)) = self
            .open_async
            .iter()
            .find(|(_, o)| streaming(o) && ts < o.begin)
        {
            return Err(Error::EndBeforeBegin {
                begin: o.begin,
                end: ts,
            });
        }
        let mut closed = 0;
        for t in 0..self.threads.len() {
            loop {
                self.pop_due(t, ts);
                if self.threads[t].stack.last().is_none_or(|f| f.end.is_some()) {
                    break;
                }
                self.end_top(t, ts);
                closed += 1;
            }
            self.pop_due(t, u64::MAX);
        }
        self.pop_all_slots();
        self.forget_retired(u64::MAX);
        let mut asyncs = self.open_async.drain();
        asyncs.sort_by_key(|&((lane, id), o)| (o.begin, lane, id));
        for (_, o) in asyncs {
            self.end_slot(o.lane as usize, o.slot, ts, None);
            closed += 1;
        }
        Ok(closed)
    }
}
