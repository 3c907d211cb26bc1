//! Each thread's recording state: its own writer (its own packet
//! sequence, so interning needs no coordination), the spans entered on it
//! and the buffers its fields are gathered in. The owning thread reaches it
//! through a thread-local, and the writer thread only to flush it.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::io::{self, Write};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use perfetto_trace_writer::{
    Arg, Event, EventKey, Options, PacketSink, Packets, ParentTrack, ProcessTrack,
    StreamingPerfettoWriter, ThreadTrack, TraceWriter, TrackOptions, TrackTemplate, TrackUuid,
    Value,
};
use tracing_core::Metadata;

use crate::callsites::event;
use crate::clock::ThreadClock;
use crate::fields::ArgBuf;
use crate::identity;
use crate::layer::Inner;
use crate::messages::MessageKeys;
use crate::output::{Output, ON_WRITER_THREAD};
use crate::spans::SpanInfo;

/// The sink of a thread's writer: each buffer the writer hands over is a
/// chunk of whole packets, passed on to the writer thread without a copy.
///
/// It also keeps count of the slices open on the thread's track, as written
/// and as the reader of the trace will see them: after a lost chunk, the
/// slices the delivered chunks left open that have since ended must be
/// ended on the next sequence, or every later slice on the thread nests one
/// level deeper, until the trace processor drops them all (it nests at most
/// 512 deep).
pub(crate) struct ChunkOut {
    output: Arc<Output>,
    /// A chunk was dropped: the sequence's incremental state is lost.
    lost: bool,
    /// Writes are thrown away: after a loss (what follows refers to strings
    /// the lost chunk defined, and the reader would take it for whole), and
    /// in a writer retired after one.
    discard: bool,
    /// Slices open on the thread's track after what was written here, those
    /// inherited from the writer before it included.
    open: u32,
    /// Of those, the slices open after the last chunk delivered.
    delivered_open: u32,
    /// The fewest slices open since that chunk: the ones below are the
    /// same slices then and now.
    low: u32,
    /// The writer is being dropped: its last chunk needs no buffer after it.
    last: bool,
}

impl ChunkOut {
    /// Counts a slice begun on the thread's track.
    #[inline]
    fn began(&mut self) {
        self.open += 1;
    }

    /// Counts a slice ended on the thread's track.
    #[inline]
    fn ended(&mut self) {
        self.open = self.open.saturating_sub(1);
        self.low = self.low.min(self.open);
    }

    /// Counts a chunk handed to the writer thread, or lost.
    fn submitted(&mut self, delivered: bool) {
        if delivered {
            self.delivered_open = self.open;
            self.low = self.open;
        } else {
            self.lost = true;
            self.discard = true;
        }
    }
}

impl PacketSink for ChunkOut {
    fn take_packets(&mut self, packets: &mut Packets) -> io::Result<()> {
        // Discarded, the bytes go with the writer's emptying the buffer.
        if !self.discard {
            let delivered = match self.last {
                true => self.output.submit_last(packets),
                false => self.output.submit(packets),
            };
            self.submitted(delivered);
        }
        Ok(())
    }
}

impl Write for ChunkOut {
    /// Not called by the writer, which hands its buffers over: a copy.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.discard {
            let delivered = self.output.submit_copy(buf);
            self.submitted(delivered);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A span entered on this thread.
#[derive(Clone, Copy)]
pub(crate) struct Entered {
    pub id: u64,
    pub meta: &'static Metadata<'static>,
    /// Whether its slice began (the trace processor nests at most 512
    /// deep).
    pub began: bool,
    /// Whether the slice ends on the thread's track by uuid: begun by a
    /// writer before a loss and carried over (see
    /// [`ThreadState::recover`]), so this writer's thread never saw its
    /// begin.
    pub adopted: bool,
}

/// A span created on this thread, in a view with thread slices, whose
/// creation is not written yet: if the thread enters it before anything
/// else happens here, in its parent's slice, the nesting shows the link
/// and nothing is written; otherwise an instant at its creation starts a
/// flow to where it first runs (written before anything else on this
/// thread, so its time is in order).
#[derive(Clone, Copy)]
pub(crate) struct Pending {
    pub key: u64,
    pub ts: u64,
    pub meta: &'static Metadata<'static>,
    pub flow: u64,
}

pub(crate) struct ThreadState {
    pub writer: StreamingPerfettoWriter<ChunkOut>,
    pub process: ProcessTrack,
    pub thread: ThreadTrack,
    /// Spans entered here, innermost last.
    pub stack: Vec<Entered>,
    pub args: ArgBuf,
    pub pending: Option<Pending>,
    /// The thread's clock: its copy of the conversion, and its last time
    /// (so that its slices nest, whatever the CPU reorders).
    clock: ThreadClock,
    /// Named tracks (the `perfetto.track` field) described by this writer.
    named: Vec<(Box<str>, TrackUuid)>,
    /// Each span callsite's event key and track template with this
    /// writer, found by the metadata's address (direct-mapped): registered
    /// the first time the thread needs either.
    keys: Box<[Option<(usize, EventKey, TrackTemplate)>; KEY_SLOTS]>,
    /// Each event callsite's key named by its message, with this writer.
    pub messages: MessageKeys,
    serial_base: u64,
    next_serial: u64,
    /// Span tracks this writer described whose spans closed here, free for
    /// the next span of their callsite beneath the same track.
    free: Vec<FreeTrack>,
    /// Whether tracks are used again ([`crate::Builder::reuse_span_tracks`]):
    /// if not, none is ever free.
    reuse_tracks: bool,
    /// Serials (counts) up to this one are of spans made before this
    /// writer's sequence began (after a lost chunk): their tracks'
    /// descriptors may have been lost, so they are not used again.
    fresh_from: u64,
    tid: i64,
    name: String,
}

/// A span track free again: described by this thread's writer beneath
/// `under` for a span of the callsite `meta` (an address), which closed.
#[derive(Clone, Copy)]
struct FreeTrack {
    under: u64,
    meta: usize,
    uuid: u64,
}

/// The most free span tracks a thread keeps (more are not used again).
const FREE_TRACKS: usize = 64;

/// Serial numbers: the thread's index above this many bits, its count below.
const SERIAL_BITS: u32 = 40;

/// The callsites whose keys a thread finds at once (more are registered
/// again, which the writer answers from its own table).
pub(crate) const KEY_SLOTS: usize = 256;

/// A callsite's address, and its place in a table of [`KEY_SLOTS`]
/// direct-mapped by it.
#[inline(always)]
pub(crate) fn key_slot(meta: &'static Metadata<'static>) -> (usize, usize) {
    let addr = meta as *const Metadata<'static> as usize;
    let slot = ((addr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize % KEY_SLOTS;
    (addr, slot)
}

/// The most slices open at once on a thread's track: the trace processor
/// drops slices (and instants) nested 512 deep or more.
const MAX_OPEN: u32 = 511;

impl ThreadState {
    fn new(inner: &Inner) -> Option<Self> {
        let tid = identity::os_tid();
        let name = identity::thread_name(tid);
        let index = inner.next_thread();
        let (mut writer, _) = Self::writer(inner);
        let (process, thread) = describe(&mut writer, inner, tid, &name)?;
        Some(ThreadState {
            writer,
            process,
            thread,
            stack: Vec::with_capacity(32),
            args: ArgBuf::default(),
            pending: None,
            clock: ThreadClock::new(),
            named: Vec::new(),
            keys: Box::new([None; KEY_SLOTS]),
            messages: MessageKeys::default(),
            serial_base: (u64::from(index) + 1) << SERIAL_BITS,
            next_serial: 0,
            // Room for every free track up front (none per span), if any.
            free: Vec::with_capacity(match inner.config.reuse_span_tracks {
                true => FREE_TRACKS,
                false => 0,
            }),
            reuse_tracks: inner.config.reuse_span_tracks,
            fresh_from: 0,
            tid,
            name,
        })
    }

    /// A writer on a sequence of its own, and that sequence's id.
    fn writer(inner: &Inner) -> (StreamingPerfettoWriter<ChunkOut>, u32) {
        let sequence = inner.next_sequence();
        let options = Options::new()
            .sequence_id(sequence)
            .flush_threshold(inner.config.chunk_size)
            .intern_limit(inner.config.intern_entries, inner.config.intern_bytes);
        let out = ChunkOut {
            output: Arc::clone(&inner.output),
            lost: false,
            discard: false,
            open: 0,
            delivered_open: 0,
            low: 0,
            last: false,
        };
        (
            StreamingPerfettoWriter::with_packet_sink(out, options),
            sequence.get(),
        )
    }

    /// The time now (BOOTTIME nanoseconds), never before the thread's last.
    #[inline(always)]
    pub(crate) fn now(&mut self) -> u64 {
        self.clock.now()
    }

    /// This thread's clock, for tests that make threads' clocks disagree.
    #[cfg(test)]
    pub(crate) fn clock(&mut self) -> &mut ThreadClock {
        &mut self.clock
    }

    /// The time kept in `ts`, read now the first time.
    #[inline]
    pub(crate) fn time(&mut self, ts: &mut Option<u64>) -> u64 {
        match *ts {
            Some(t) => t,
            None => *ts.insert(self.now()),
        }
    }

    /// A number no other span of the trace has.
    #[inline]
    pub(crate) fn next_serial(&mut self) -> u64 {
        self.next_serial += 1;
        self.serial_base | self.next_serial
    }

    /// A free span track for a span of `meta` beneath `under`, taken.
    #[inline]
    pub(crate) fn reuse_track(&mut self, under: u64, meta: usize) -> Option<u64> {
        let at = self
            .free
            .iter()
            .rposition(|f| f.under == under && f.meta == meta)?;
        Some(self.free.swap_remove(at).uuid)
    }

    /// Keeps the track of a span whose lifetime slice has ended (or never
    /// began) for a later span of its callsite beneath the same track, if
    /// tracks are used again and this writer described it: a span made on
    /// this thread since its sequence began.
    #[inline]
    pub(crate) fn free_track(&mut self, info: &SpanInfo) {
        if !self.reuse_tracks {
            return;
        }
        let mine = info.serial > (self.serial_base | self.fresh_from)
            && info.serial <= (self.serial_base | self.next_serial);
        if mine && info.track != 0 && self.free.len() < FREE_TRACKS {
            self.free.push(FreeTrack {
                under: info.under,
                meta: info.meta,
                uuid: info.track,
            });
        }
    }

    /// The uuid of the named track under the process that the fields in
    /// `args` ask for ([`crate::TRACK_FIELD`]), described on this writer the
    /// first time; `None` if they ask for none.
    #[inline]
    pub(crate) fn named_track(&mut self) -> Option<TrackUuid> {
        // Most fields name no track: one test, inline.
        match self.args.names_track() {
            true => self.find_named_track(),
            false => None,
        }
    }

    #[cold]
    fn find_named_track(&mut self) -> Option<TrackUuid> {
        let name = self.args.track()?;
        if let Some((_, uuid)) = self.named.iter().find(|(n, _)| &**n == name) {
            return Some(*uuid);
        }
        let name: Box<str> = name.into();
        let track = self
            .writer
            .track(
                ParentTrack::Process(self.process),
                &name,
                &TrackOptions::default(),
            )
            .ok()?;
        self.named.push((name, track.uuid()));
        Some(track.uuid())
    }

    /// Begins a slice of a callsite on the thread; whether it began.
    #[inline]
    pub(crate) fn begin_slice(&mut self, ts: u64, meta: &'static Metadata<'static>) -> bool {
        if self.writer.get_ref().open >= MAX_OPEN {
            return false;
        }
        let Some(key) = self.key(meta) else {
            return false;
        };
        // A chunk this call hands over ends before the begin: counted after.
        let began = self.writer.span_begin_key(self.thread, ts, key).is_ok();
        if began {
            self.writer.get_mut().began();
        }
        began
    }

    /// The callsite's event key with this writer.
    #[inline]
    pub(crate) fn key(&mut self, meta: &'static Metadata<'static>) -> Option<EventKey> {
        let (addr, slot) = key_slot(meta);
        match self.keys[slot] {
            Some((a, key, _)) if a == addr => Some(key),
            _ => self.register_site(slot, meta).map(|(key, _)| key),
        }
    }

    /// The callsite's event key and the template of its spans' tracks
    /// with this writer.
    #[inline]
    pub(crate) fn site(
        &mut self,
        meta: &'static Metadata<'static>,
    ) -> Option<(EventKey, TrackTemplate)> {
        let (addr, slot) = key_slot(meta);
        match self.keys[slot] {
            Some((a, key, template)) if a == addr => Some((key, template)),
            _ => self.register_site(slot, meta),
        }
    }

    #[cold]
    fn register_site(
        &mut self,
        slot: usize,
        meta: &'static Metadata<'static>,
    ) -> Option<(EventKey, TrackTemplate)> {
        // With the names of the callsite's fields as a span records them
        // (but the message and the track, which are not arguments there):
        // a lifetime slice whose fields all have values then begins
        // without a lookup.
        let names: Vec<&'static str> = meta
            .fields()
            .iter()
            .map(|f| f.name())
            .filter(|&n| n != "message" && n != crate::TRACK_FIELD)
            .collect();
        let key = self
            .writer
            .event_key_with_args(
                meta.name(),
                crate::callsites::category(meta),
                meta.file().unwrap_or(""),
                meta.line().unwrap_or(0),
                &names,
            )
            .ok()?;
        let template = self
            .writer
            .track_template(meta.name(), &crate::layer::SPAN_TRACK)
            .ok()?;
        self.keys[slot] = Some((meta as *const Metadata<'static> as usize, key, template));
        Some((key, template))
    }

    /// Ends the slice of `e`, entered on this thread.
    #[inline]
    pub(crate) fn end_slice(&mut self, ts: u64, e: &Entered) {
        if !e.began {
            return;
        }
        let ended = if e.adopted {
            self.writer.end_on(self.thread.uuid(), ts)
        } else {
            self.writer.span_end(self.thread, ts)
        };
        if ended.is_ok() {
            self.writer.get_mut().ended();
        }
    }

    /// An instant on the thread's track.
    #[inline]
    pub(crate) fn thread_instant(&mut self, ts: u64, ev: &Event<'_>) {
        let _ = self.writer.instant_on(self.thread.uuid(), ts, ev);
    }

    /// Writes the creation waiting on this thread, if any: called before
    /// anything else is written here.
    #[inline]
    pub(crate) fn settle(&mut self) {
        if let Some(p) = self.pending.take() {
            self.write_pending(p);
        }
    }

    #[cold]
    fn write_pending(&mut self, p: Pending) {
        let flows = [p.flow];
        let ev = event(p.meta, p.meta.name()).flows(&flows);
        self.thread_instant(p.ts, &ev);
    }

    /// Hands what the writer holds to the writer thread (called there, or
    /// by the owner when the writer thread asks).
    pub(crate) fn flush_to_writer_thread(&mut self) {
        self.settle();
        let _ = self.writer.flush();
    }

    /// Whether the writer lost a chunk since the last look.
    #[inline]
    pub(crate) fn lost(&self) -> bool {
        self.writer.get_ref().lost
    }

    /// After a dropped chunk: a new sequence (its incremental state starts
    /// afresh), its first packet marked `previous_packet_dropped`, the
    /// thread described again, and an instant saying what was lost. The
    /// thread's slices are mended so that they nest as they do here: those
    /// the delivered chunks left open that have ended since end now, and
    /// those begun in what was lost that are still open begin again, so
    /// that their exits match.
    #[cold]
    pub(crate) fn recover(&mut self, inner: &Inner, ts: u64) {
        let (delivered, still_open) = {
            let out = self.writer.get_ref();
            (out.delivered_open, out.low)
        };
        let (mut fresh, sequence) = Self::writer(inner);
        // What the reader has open carries over to the new sequence.
        let out = fresh.get_mut();
        (out.open, out.delivered_open, out.low) = (delivered, delivered, delivered);
        std::mem::swap(&mut self.writer, &mut fresh);
        // What the old writer still holds refers to strings it defined in
        // the lost chunk: thrown away.
        fresh.get_mut().discard = true;
        drop(fresh);
        inner.output.submit_copy(&dropped_marker(sequence));
        let Some((process, thread)) = describe(&mut self.writer, inner, self.tid, &self.name)
        else {
            return;
        };
        (self.process, self.thread) = (process, thread);
        self.named.clear();
        // Their descriptors may be in what was lost.
        self.free.clear();
        self.fresh_from = self.next_serial;
        // Keys belong to the writer that made them.
        self.keys.fill(None);
        self.messages.clear();
        // A creation made before the loss comes before the slices below.
        self.settle();
        let track = self.thread.uuid();
        for _ in still_open..delivered {
            if self.writer.end_on(track, ts).is_ok() {
                self.writer.get_mut().ended();
            }
        }
        // The slices begun here, counted from the outermost: below
        // `still_open`, the reader has them open already.
        let mut rank = 0;
        for i in 0..self.stack.len() {
            let e = self.stack[i];
            if !e.began {
                continue;
            }
            if rank < still_open {
                self.stack[i].adopted = true;
            } else {
                self.stack[i].adopted = false;
                self.stack[i].began = self.begin_slice(ts, e.meta);
            }
            rank += 1;
        }
        let chunks = inner.output.dropped_chunks.load(Ordering::Relaxed);
        let bytes = inner.output.dropped_bytes.load(Ordering::Relaxed);
        let args = [
            Arg::new("dropped_chunks", Value::Uint(chunks)),
            Arg::new("dropped_bytes", Value::Uint(bytes)),
        ];
        let event = Event::new("chunks dropped")
            .category("perfetto_tracing")
            .args(&args);
        self.thread_instant(ts, &event);
    }
}

/// [`ThreadState::begin_slice`] of an event on the thread's writer, for an
/// event that borrows the rest of the state.
#[inline]
pub(crate) fn begin_slice_with(
    writer: &mut StreamingPerfettoWriter<ChunkOut>,
    thread: ThreadTrack,
    ts: u64,
    ev: &Event<'_>,
) -> bool {
    if writer.get_ref().open >= MAX_OPEN {
        return false;
    }
    let began = writer.span_begin_with(thread, ts, ev).is_ok();
    if began {
        writer.get_mut().began();
    }
    began
}

/// Begins a slice of `key` with `args` on the thread (the key's short
/// path for arguments, without an `Event`); whether it began.
#[inline(never)]
pub(crate) fn begin_slice_key_args(
    writer: &mut StreamingPerfettoWriter<ChunkOut>,
    thread: ThreadTrack,
    ts: u64,
    key: EventKey,
    args: &[Arg<'_>],
) -> bool {
    if writer.get_ref().open >= MAX_OPEN {
        return false;
    }
    let began = writer.span_begin_key_args(thread, ts, key, args).is_ok();
    if began {
        writer.get_mut().began();
    }
    began
}

impl Drop for ThreadState {
    fn drop(&mut self) {
        // Before the writer flushes its last chunk.
        self.settle();
        self.writer.get_mut().last = true;
    }
}

/// Describes the process and a thread on a writer's sequence.
fn describe(
    writer: &mut StreamingPerfettoWriter<ChunkOut>,
    inner: &Inner,
    tid: i64,
    name: &str,
) -> Option<(ProcessTrack, ThreadTrack)> {
    let p = &inner.process;
    let cmdline: Vec<&str> = p.cmdline.iter().map(String::as_str).collect();
    // Real pids and tids are never 0, and a key is always described alike.
    let process = writer
        .process(&format!("pid {}", p.pid), Some(p.pid), &p.name, &cmdline)
        .ok()?;
    let thread = writer
        .thread(process, &tid.to_string(), Some(tid), name)
        .ok()?;
    Some((process, thread))
}

/// A packet that only says `previous_packet_dropped` on `sequence`, framed
/// as `Trace.packet`.
fn dropped_marker(sequence: u32) -> Vec<u8> {
    let mut packet = vec![0x50]; // trusted_packet_sequence_id = 10, varint
    let mut v = sequence;
    while v >= 0x80 {
        packet.push((v as u8) | 0x80);
        v >>= 7;
    }
    packet.push(v as u8);
    packet.extend([0xd0, 0x02, 0x01]); // previous_packet_dropped = 42: true
    let mut framed = vec![0x0a, packet.len() as u8];
    framed.extend(packet);
    framed
}

/// A thread's state behind a flag: taken by the owning thread for each
/// call, and by the writer thread to flush. Only a flush ever finds it
/// taken, so the owner's cost is one uncontended swap: no shared lock.
/// Where the process can ask the kernel for a barrier on every thread of
/// it (Linux's `membarrier`), the owner takes it with a plain store and
/// load instead: the writer thread, which takes it rarely, pays for the
/// barrier both sides need (a swap per call drained the store buffer,
/// about 5 ns of an event's time).
pub(crate) struct ThreadSlot {
    /// Held by the owner for a call.
    busy: AtomicBool,
    /// Held by the writer thread to flush, when `asymmetric`.
    taken: AtomicBool,
    /// The owner takes `busy` by a store and a load, the writer thread
    /// `taken` by a store, a process-wide barrier and a load; else both take
    /// `busy` by a swap.
    asymmetric: bool,
    /// Set by the writer thread to flush while the owner is in a call:
    /// the owner hands its buffer over as the call ends.
    hand_over_wanted: AtomicBool,
    /// How many times the owner has handed its buffer over so far.
    handed_over: AtomicU64,
    layer: u64,
    state: UnsafeCell<Option<ThreadState>>,
}

// SAFETY: `state` is only reached while `busy` is held by a swap (see
// `with`), or, when `asymmetric`, by the owner holding `busy` and having
// seen `taken` clear after setting it, or by the writer thread holding
// `taken` and having seen `busy` clear after setting it and a barrier on
// every thread of the process (so each saw the other's flag or its own
// was seen: Dekker's exclusion). Either makes accesses from different
// threads exclusive and ordered (acquire on taking, release on letting
// go); `ThreadState` is `Send`.
unsafe impl Sync for ThreadSlot {}

/// `membarrier(2)` commands (Linux's uapi).
#[cfg(target_os = "linux")]
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
#[cfg(target_os = "linux")]
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

/// Whether the process may use [`process_barrier`]: registered once.
fn asymmetric_fences() -> bool {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *REGISTERED.get_or_init(|| {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: a syscall taking integers only.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_membarrier,
                    MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
                    0,
                    0,
                )
            };
            r == 0
        }
        #[cfg(not(target_os = "linux"))]
        false
    })
}

/// A full memory barrier on every running thread of the process; false if
/// the kernel refused (then nothing is known to be ordered).
fn process_barrier() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a syscall taking integers only; registered (see
        // `asymmetric_fences`) before any slot asks for it.
        let r =
            unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) };
        r == 0
    }
    #[cfg(not(target_os = "linux"))]
    false
}

/// Lets go of a slot's flag, even if the call inside panicked.
struct Release<'a>(&'a AtomicBool);

impl Drop for Release<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl ThreadSlot {
    /// Runs `f` on the state, waiting while a flush holds it; then hands
    /// the buffer over if the writer thread asked for it meanwhile.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut ThreadState) -> R) -> Option<R> {
        self.take_as_owner();
        let _release = Release(&self.busy);
        // SAFETY: the flag is held (see the `Sync` impl).
        let r = unsafe { (*self.state.get()).as_mut() }.map(f);
        if self.hand_over_wanted.load(Ordering::Relaxed) {
            self.hand_over();
        }
        r
    }

    /// Takes `busy` for the owner, waiting while the writer thread holds
    /// the state.
    #[inline(always)]
    fn take_as_owner(&self) {
        if self.asymmetric {
            self.busy.store(true, Ordering::Relaxed);
            // The writer thread's process-wide barrier orders the store
            // before the load: only the compiler must not reorder them.
            std::sync::atomic::compiler_fence(Ordering::SeqCst);
            if self.taken.load(Ordering::Acquire) {
                self.wait_for_writer_thread();
            }
        } else {
            while self.busy.swap(true, Ordering::Acquire) {
                std::hint::spin_loop();
            }
        }
    }

    /// The writer thread holds the state: lets go of `busy` (which it may
    /// be waiting to see clear) until it is done, then takes it again.
    #[cold]
    #[inline(never)]
    fn wait_for_writer_thread(&self) {
        loop {
            self.busy.store(false, Ordering::Release);
            while self.taken.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            self.busy.store(true, Ordering::Relaxed);
            std::sync::atomic::compiler_fence(Ordering::SeqCst);
            if !self.taken.load(Ordering::Acquire) {
                return;
            }
        }
    }

    /// Queues what the state holds for the writer thread, which asked.
    #[cold]
    #[inline(never)]
    fn hand_over(&self) {
        // Cleared first: a request made while this runs asks again.
        self.hand_over_wanted.store(false, Ordering::Relaxed);
        // SAFETY: called from `with`, the flag held.
        if let Some(state) = unsafe { (*self.state.get()).as_mut() } {
            state.flush_to_writer_thread();
        }
        self.handed_over.fetch_add(1, Ordering::Release);
    }

    /// Asks the owner to hand its buffer over at the end of its call in
    /// progress, if any; the count to give
    /// [`handed_over_since`](Self::handed_over_since).
    pub(crate) fn ask_hand_over(&self) -> u64 {
        let seen = self.handed_over.load(Ordering::Acquire);
        self.hand_over_wanted.store(true, Ordering::Release);
        seen
    }

    /// Whether the owner has handed its buffer over since
    /// [`ask_hand_over`](Self::ask_hand_over) returned `seen`: then its
    /// chunks are all queued.
    pub(crate) fn handed_over_since(&self, seen: u64) -> bool {
        self.handed_over.load(Ordering::Acquire) != seen
    }

    /// Runs `f` on the state to flush it, unless it is taken (then
    /// `None`); a hand-over asked for is then no longer wanted.
    pub(crate) fn try_with<R>(&self, f: impl FnOnce(&mut ThreadState) -> R) -> Option<Option<R>> {
        let flag = match self.asymmetric {
            true => {
                self.taken.store(true, Ordering::Relaxed);
                // After the barrier the owner either is seen in a call or
                // will see `taken` before its next one.
                if !process_barrier() || self.busy.load(Ordering::Acquire) {
                    self.taken.store(false, Ordering::Release);
                    return None;
                }
                &self.taken
            }
            false => {
                if self.busy.swap(true, Ordering::Acquire) {
                    return None;
                }
                &self.busy
            }
        };
        let _release = Release(flag);
        self.hand_over_wanted.store(false, Ordering::Relaxed);
        // SAFETY: the flag is held.
        Some(unsafe { (*self.state.get()).as_mut() }.map(f))
    }

    /// Drops the state, which hands its last chunk over, on its own thread
    /// and with the flag held: a flush that finds the slot empty then knows
    /// that chunk is queued. (A scoped thread's thread-locals are dropped
    /// after its scope has returned, so the guard may be finishing: taken
    /// out and dropped after, the chunk could come after the stop.)
    fn retire(&self) {
        self.take_as_owner();
        let _release = Release(&self.busy);
        // SAFETY: the flag is held.
        drop(unsafe { (*self.state.get()).take() });
    }
}

/// A thread's slots, one per layer it has recorded for.
struct Local {
    slots: RefCell<Vec<Arc<ThreadSlot>>>,
    /// The slot used last: (layer id, slot), kept alive by `slots`.
    last: Cell<(u64, *const ThreadSlot)>,
    /// Set while the layer runs on this thread: an event raised from inside
    /// (a `Debug` impl that logs) is ignored rather than waiting on itself.
    inside: Cell<bool>,
}

impl Drop for Local {
    fn drop(&mut self) {
        // The thread ends: each writer flushes its last chunk from here.
        for slot in self.slots.borrow().iter() {
            slot.retire();
        }
    }
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            slots: RefCell::new(Vec::new()),
            last: Cell::new((0, std::ptr::null())),
            inside: Cell::new(false),
        }
    };
}

/// Whether this thread is inside one of the layer's callbacks (in a
/// field's `Debug` impl, say).
pub(crate) fn inside_layer() -> bool {
    LOCAL.try_with(|l| l.inside.get()).unwrap_or(false)
}

/// Clears `inside` on the way out, even on a panic.
struct Outside<'a>(&'a Cell<bool>);

impl Drop for Outside<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// Runs `f` on this thread's state for the layer `inner`, made on first
/// use; `None` on the writer thread, inside the layer, or while the thread
/// is ending.
#[inline]
pub(crate) fn with_state<R>(
    inner: &Arc<Inner>,
    f: impl FnOnce(&mut ThreadState) -> R,
) -> Option<R> {
    LOCAL
        .try_with(|local| {
            if local.inside.replace(true) {
                return None;
            }
            let _outside = Outside(&local.inside);
            let (layer, slot) = local.last.get();
            let slot = if layer == inner.id && !slot.is_null() {
                // SAFETY: `slots` owns the slot and keeps it until the
                // thread ends, when `last` is no longer reachable.
                unsafe { &*slot }
            } else {
                let slot = local.slot_for(inner)?;
                // SAFETY: as above.
                unsafe { &*slot }
            };
            slot.with(f)
        })
        .ok()
        .flatten()
}

impl Local {
    #[cold]
    fn slot_for(&self, inner: &Arc<Inner>) -> Option<*const ThreadSlot> {
        if ON_WRITER_THREAD.with(Cell::get) {
            return None;
        }
        let mut slots = self.slots.borrow_mut();
        let slot = match slots.iter().find(|s| s.layer == inner.id) {
            Some(s) => Arc::as_ptr(s),
            None => {
                let slot = Arc::new(ThreadSlot {
                    busy: AtomicBool::new(false),
                    taken: AtomicBool::new(false),
                    asymmetric: asymmetric_fences(),
                    hand_over_wanted: AtomicBool::new(false),
                    handed_over: AtomicU64::new(0),
                    layer: inner.id,
                    state: UnsafeCell::new(Some(ThreadState::new(inner)?)),
                });
                if let Ok(mut all) = inner.output.slots.lock() {
                    all.push(Arc::downgrade(&slot));
                }
                let ptr = Arc::as_ptr(&slot);
                slots.push(slot);
                ptr
            }
        };
        self.last.set((inner.id, slot));
        Some(slot)
    }
}

impl Inner {
    fn next_thread(&self) -> u32 {
        self.threads.fetch_add(1, Ordering::Relaxed)
    }

    fn next_sequence(&self) -> NonZeroU32 {
        let n = self.sequences.fetch_add(1, Ordering::Relaxed);
        NonZeroU32::new(n.wrapping_add(1).max(1)).unwrap_or(NonZeroU32::MIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The owner's call takes its flag without a swap wherever the kernel
    /// offers the expedited barrier (a sandbox may refuse `membarrier`:
    /// then the swap is right and there is nothing to test).
    #[cfg(target_os = "linux")]
    #[test]
    fn the_owners_flag_needs_no_swap_where_the_kernel_offers_the_barrier() {
        const MEMBARRIER_CMD_QUERY: libc::c_int = 0;
        // SAFETY: a syscall taking integers only.
        let offered = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0) };
        if offered < 0 || offered & libc::c_long::from(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0 {
            eprintln!("membarrier's expedited barrier not offered here: the swap is used");
            return;
        }
        assert!(asymmetric_fences());
        assert!(process_barrier());
    }
}
