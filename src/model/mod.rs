//! The model: what a writer knows about its tracks and the spans in
//! flight, composed by [`Core`], which validates every call before it
//! changes anything and hands the events it accepts to its [`Output`]. The
//! writers above only decide where the bytes go.
//!
//! - `registry`: processes, threads, lanes and custom tracks by uuid and id;
//!   handle ownership.
//! - `threads`: each thread's (and named track's) stack of open spans and
//!   its nesting checks.
//! - `async_spans` (with `open_async`, the table of spans in flight):
//!   lanes, the slots their spans run on, complete async spans.
//! - `output`: the emitter and sequences, and each track's output state;
//!   `compact`: when a busy track moves to a sequence of its own.
//! - `counters`: incremental counters' running totals.
//!
//! # Fast paths
//!
//! The common begin and end calls are split in two: an inlined fast path
//! that returns `true` when it wrote the event, and a cold slow path that
//! checks everything and reports errors. A fast path takes only calls its
//! slow path would accept: each says why in a predicate of the state it
//! reads (`Thread::begins_plainly`, `Thread::ends_plainly`, ...) and
//! `debug_assert!`s that the slow path's check (`Thread::check_begin`,
//! `Thread::check_end`, `AsyncSpans::check_id_free`, `AsyncSpans::check_end`)
//! accepts the same call, so a rule added to a check and not to its fast
//! path fails in every debug test that reaches the fast path.

mod async_spans;
mod compact;
mod counters;
mod open_async;
mod output;
mod registry;
mod threads;

use crate::emitter::TrackTemplate;
use crate::encoding::{field, EventType, Field, TrackKind};
use crate::error::{check_len, check_ts, Error, Result};
use crate::event::{Arg, Event};
use crate::ids::{
    track_uuid, AsyncLane, AsyncParent, CounterTrack, Domain, InstantTrack, NamedTrack, Owner,
    ParentTrack, ProcessTrack, ThreadTrack, TrackUuid,
};
use crate::keys::EventKey;
use crate::limits::MAX_STRING_LEN;
use crate::options::Options;
use crate::out::Out;
use crate::track_options::{
    Clock, CounterOptions, CounterSample, CounterUnit, LaneOptions, ProcessOptions, SiblingMerge,
    ThreadOptions, TrackOptions,
};

use async_spans::AsyncSpans;
use counters::Totals;
use open_async::AsyncOpen;
use output::{Output, TrackOutput};
use registry::{digest, IdKind, Registered, Registry, Stack};
use threads::Thread;

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
    /// A span begun on a named track (`track_span_begin`) and not ended.
    Track {
        /// Its track.
        track: NamedTrack,
        /// Its begin.
        begin: u64,
        /// Its depth on the track (0 is outermost).
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
    out: Output,
    /// The tracks described, with each thread's nesting state.
    registry: Registry<Thread>,
    asyncs: AsyncSpans,
    totals: Totals,
    /// How the root descriptor ordered processes and threads, once written.
    root: Option<(bool, bool)>,
    /// Whether the writer is one of several writing one trace
    /// (`Options::partition`, or a sequence id other than 1).
    shares_trace: bool,
}

impl Core {
    #[inline]
    pub(crate) fn new(options: &Options) -> Self {
        let owner = Owner::next();
        Core {
            out: Output::new(options, owner),
            registry: Registry::new(owner),
            asyncs: AsyncSpans::default(),
            totals: Totals::default(),
            root: None,
            shares_trace: options.sequence_span != u32::MAX || options.sequence_id.get() != 1,
        }
    }

    /// The packets written so far and not yet taken by the writer: whole
    /// framed packets only, between calls.
    #[inline]
    pub(crate) fn buffer(&self) -> &Out {
        &self.out.emitter.out
    }

    /// [`Core::buffer`], for the writer to drain or cut into chunks.
    #[inline]
    pub(crate) fn buffer_mut(&mut self) -> &mut Out {
        &mut self.out.emitter.out
    }

    /// The buffer, the core done with.
    #[inline]
    pub(crate) fn into_buffer(self) -> Out {
        self.out.emitter.out
    }

    pub(crate) fn packets(&self) -> u64 {
        self.out.emitter.packets
    }

    /// Distinct interned strings (names, categories, source locations).
    pub(crate) fn interned(&self) -> usize {
        self.out.emitter.strings.len()
    }

    pub(crate) fn generations(&self) -> u64 {
        self.out.emitter.generations()
    }

    /// Sequences used (one in default mode).
    pub(crate) fn sequences(&self) -> usize {
        self.out.seqs.len()
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
        let digest = digest(&(pid, name, cmdline, options));
        let requested = pid.map(i64::from);
        let root = TrackUuid(0);
        let registered = self
            .registry
            .claim(IdKind::Pid, uuid, digest, requested, key, root)?;
        if let Registered::New { id, .. } = registered {
            let kind = TrackKind::Process {
                pid: id as i32,
                name,
                cmdline,
                options,
            };
            self.out.descriptor(uuid.0, &kind);
            self.registry.add_process(uuid, digest, id);
        }
        Ok(ProcessTrack {
            uuid,
            index: registered.index(),
            owner: self.registry.owner(),
        })
    }

    pub(crate) fn pid(&self, process: ProcessTrack) -> Result<i32> {
        self.registry.check_owner(process.owner, process.uuid)?;
        Ok(self.registry.pid(process.index))
    }

    pub(crate) fn tid(&self, thread: ThreadTrack) -> Result<i64> {
        self.registry.check_owner(thread.owner, thread.uuid)?;
        Ok(self.registry.tid(thread.index))
    }

    pub(crate) fn thread(
        &mut self,
        process: ProcessTrack,
        key: &str,
        tid: Option<i64>,
        name: &str,
        options: &ThreadOptions<'_>,
    ) -> Result<ThreadTrack> {
        self.registry.check_owner(process.owner, process.uuid)?;
        check_len([key, name])?;
        check_len(options.description)?;
        let uuid = track_uuid(Domain::Thread, process.uuid.0, key.as_bytes());
        let digest = digest(&(tid, name, options));
        let registered = self
            .registry
            .claim(IdKind::Tid, uuid, digest, tid, key, process.uuid)?;
        if let Registered::New { id, .. } = registered {
            // The trace processor links threads to processes by pid, not parent_uuid.
            let kind = TrackKind::Thread {
                pid: self.registry.pid(process.index),
                tid: id,
                name,
                options,
            };
            self.out.descriptor(uuid.0, &kind);
            let output = TrackOutput::new(&self.out, uuid.0);
            let thread = Thread::new(output);
            self.registry.add_thread(uuid, digest, id, thread);
        }
        Ok(ThreadTrack {
            uuid,
            index: registered.index(),
            owner: self.registry.owner(),
        })
    }

    pub(crate) fn async_lane(
        &mut self,
        parent: ParentTrack,
        name: &str,
        options: &LaneOptions<'_>,
    ) -> Result<AsyncLane> {
        let parent = self.registry.parent_uuid(parent)?;
        check_len([name])?;
        check_len(options.description)?;
        let uuid = track_uuid(Domain::AsyncLane, parent.0, name.as_bytes());
        let index = match self.registry.index_of(uuid) {
            Some(index)
                if !self
                    .asyncs
                    .lane_matches(index, options.description, options.tree) =>
            {
                return Err(Error::Redefined(uuid));
            }
            Some(index) => index,
            None => {
                let index =
                    self.asyncs
                        .add_lane(uuid, parent, name, options.description, options.tree);
                self.registry.insert(uuid, index);
                index
            }
        };
        Ok(AsyncLane {
            uuid,
            index,
            owner: self.registry.owner(),
        })
    }

    fn thread_index(&self, thread: ThreadTrack) -> Result<u32> {
        self.registry.check_owner(thread.owner, thread.uuid)?;
        Ok(thread.index)
    }

    fn lane_index(&self, lane: AsyncLane) -> Result<usize> {
        self.registry.check_owner(lane.owner, lane.uuid)?;
        Ok(lane.index as usize)
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
        ev: &Event<'_>,
    ) -> Result<()> {
        if self.span_begin_fast(thread, ts, ev) {
            return Ok(());
        }
        self.span_begin_slow(thread, ts, *ev)
    }

    /// The common case of [`Core::span_begin`]: written, true; otherwise
    /// nothing written, false.
    #[inline]
    fn span_begin_fast(&mut self, thread: ThreadTrack, ts: u64, ev: &Event<'_>) -> bool {
        if thread.owner != self.registry.owner()
            || ev.check().is_err()
            || !ev.counters.is_empty()
            || !self.out.emitter.keys.holds(ev.key)
        {
            return false;
        }
        let Some(th) = self.registry.thread(thread.index) else {
            return false;
        };
        if !th.begins_plainly(ts) {
            return false;
        }
        debug_assert!(self.check_span_begin(thread, ts, None, ev).is_ok());
        // Only explicit spans are open: nothing is due, nothing limits the
        // new span, and no frame need be read.
        let th = self.registry.thread_mut(thread.index);
        th.open_frame(&mut self.out, ts, None, u64::MAX, ev);
        true
    }

    /// [`Core::span_begin`] of `Event::from_key(key).args(args)`: where
    /// the thread takes a plain begin, by the key's short path without an
    /// `Event` to check and read; otherwise (the same bytes and errors)
    /// the usual way.
    #[inline]
    pub(crate) fn span_begin_key_args(
        &mut self,
        thread: ThreadTrack,
        ts: u64,
        key: EventKey,
        args: &[Arg<'_>],
    ) -> Result<()> {
        let plain = thread.owner == self.registry.owner()
            && self
                .registry
                .thread(thread.index)
                .is_some_and(|th| th.begins_plainly(ts));
        if plain
            && self
                .registry
                .thread_mut(thread.index)
                .open_keyed_args(&mut self.out, ts, key, args)
        {
            return Ok(());
        }
        self.span_begin_key_args_slow(thread, ts, key, args)
    }

    #[cold]
    #[inline(never)]
    fn span_begin_key_args_slow(
        &mut self,
        thread: ThreadTrack,
        ts: u64,
        key: EventKey,
        args: &[Arg<'_>],
    ) -> Result<()> {
        self.span_begin(thread, ts, &Event::from_key(key).args(args))
    }

    /// What every event checks of itself: its strings and arguments, and
    /// counter values only on this writer's absolute counters. Most events
    /// carry short strings or a key of this writer and nothing to check
    /// further: told in a few comparisons inline, where the call of the
    /// full check cost a small trace's spans ~40 instructions each.
    #[inline(always)]
    fn check_event(&self, ev: &Event<'_>) -> Result<()> {
        let lens = ev.name.len() | ev.category.len() | ev.file.len();
        let keyed = match ev.key {
            None => true,
            Some(_) => lens == 0 && self.out.emitter.keys.check(ev.key).is_ok(),
        };
        let plain = lens <= MAX_STRING_LEN
            && keyed
            && ev.args.is_empty()
            && ev.correlation.is_none()
            && ev.log.is_none()
            && ev.callstack.is_empty()
            && ev.counters.is_empty();
        if plain {
            debug_assert!(self.check_event_fully(ev).is_ok());
            return Ok(());
        }
        self.check_event_fully(ev)
    }

    /// [`Core::check_event`] in full, out of line.
    #[cold]
    #[inline(never)]
    fn check_event_fully(&self, ev: &Event<'_>) -> Result<()> {
        ev.check()?;
        self.out.emitter.keys.check(ev.key)?;
        self.registry.check_counters(ev.counters)
    }

    /// The key of a call site, registered now if new (see
    /// `TraceWriter::event_key`). Writes nothing: its strings are interned
    /// by its first event, as strings would be.
    pub(crate) fn event_key(
        &mut self,
        name: &str,
        category: &str,
        file: &str,
        line: u32,
    ) -> Result<EventKey> {
        self.out.emitter.keys.register(name, category, file, line)
    }

    /// [`Core::event_key`] of a site whose events carry arguments named
    /// `args` (see `TraceWriter::event_key_with_args`).
    pub(crate) fn event_key_with_args(
        &mut self,
        name: &str,
        category: &str,
        file: &str,
        line: u32,
        args: &[&'static str],
    ) -> Result<EventKey> {
        self.out
            .emitter
            .keys
            .register_with_args(name, category, file, line, args)
    }

    /// Event keys registered.
    pub(crate) fn key_count(&self) -> usize {
        self.out.emitter.keys.len()
    }

    /// [`Core::check_event`] for an event on `thread`, which must be this
    /// writer's; the thread's index.
    fn check_thread_event(&self, thread: ThreadTrack, ev: &Event<'_>) -> Result<u32> {
        let t = self.thread_index(thread)?;
        self.check_event(ev)?;
        Ok(t)
    }

    /// The checks of [`Core::span_begin`] (`end` None) and
    /// [`Core::complete_span`]; the thread's index.
    fn check_span_begin(
        &self,
        thread: ThreadTrack,
        ts: u64,
        end: Option<u64>,
        ev: &Event<'_>,
    ) -> Result<u32> {
        let t = self.check_thread_event(thread, ev)?;
        self.registry.thread_at(t).check_begin(ts, end)?;
        Ok(t)
    }

    /// [`Core::span_begin`] where complete spans wait or the call is wrong,
    /// out of line (see `Emitter::begin_general`).
    #[cold]
    #[inline(never)]
    fn span_begin_slow(&mut self, thread: ThreadTrack, ts: u64, ev: Event<'_>) -> Result<()> {
        let t = self.check_thread_event(thread, &ev)?;
        self.begin_on_stack(Stack::Thread(t), ts, None, &ev)
    }

    pub(crate) fn complete_span(
        &mut self,
        thread: ThreadTrack,
        begin: u64,
        end: u64,
        ev: &Event<'_>,
    ) -> Result<()> {
        let t = self.check_thread_event(thread, ev)?;
        self.begin_on_stack(Stack::Thread(t), begin, Some(end), ev)
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
        ev: &Event<'_>,
    ) -> Result<()> {
        let t = self.check_thread_event(thread, ev)?;
        self.at_depth_on_stack(Stack::Thread(t), depth, begin, end, ev)
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
    #[inline(always)]
    fn span_end_fast(&mut self, thread: ThreadTrack, ts: u64) -> bool {
        if thread.owner != self.registry.owner() {
            return false;
        }
        let Some(th) = self.registry.thread(thread.index) else {
            return false;
        };
        if !th.ends_plainly(ts) {
            return false;
        }
        debug_assert!(self.check_span_end(thread, ts, &[]).is_ok());
        // Only explicit spans are open: the top one began no later than
        // the track's last time, and no complete span limits it.
        self.registry
            .thread_mut(thread.index)
            .end_top(&mut self.out, ts);
        true
    }

    #[cold]
    #[inline(never)]
    fn span_end_slow(&mut self, thread: ThreadTrack, ts: u64) -> Result<()> {
        self.span_end_with_counters(thread, ts, &[])
    }

    /// [`Core::span_end`] with counter values on the end event.
    pub(crate) fn span_end_with_counters(
        &mut self,
        thread: ThreadTrack,
        ts: u64,
        counters: &[(CounterTrack, CounterSample)],
    ) -> Result<()> {
        let t = self.thread_index(thread)?;
        self.end_on_stack(Stack::Thread(t), ts, counters)
    }

    /// A span `[ts, end]` (`end` None: an explicit one) on a stack, checked
    /// (but for the event, which the caller checked) and begun.
    fn begin_on_stack(
        &mut self,
        stack: Stack,
        ts: u64,
        end: Option<u64>,
        ev: &Event<'_>,
    ) -> Result<()> {
        self.registry.stack(stack).check_begin(ts, end)?;
        self.registry
            .stack_mut(stack)
            .push_span(&mut self.out, ts, end, ev);
        Ok(())
    }

    /// A complete span at an explicit depth on a stack, checked (but for the
    /// event) and begun.
    fn at_depth_on_stack(
        &mut self,
        stack: Stack,
        depth: usize,
        begin: u64,
        end: u64,
        ev: &Event<'_>,
    ) -> Result<()> {
        self.registry
            .stack(stack)
            .check_at_depth(depth, begin, end)?;
        self.registry
            .stack_mut(stack)
            .push_at_depth(&mut self.out, depth, begin, end, ev);
        Ok(())
    }

    /// Ends the innermost explicit span of a stack at `ts`, its end event
    /// carrying `counters`, once checked.
    fn end_on_stack(
        &mut self,
        stack: Stack,
        ts: u64,
        counters: &[(CounterTrack, CounterSample)],
    ) -> Result<()> {
        self.registry.check_counters(counters)?;
        self.registry.stack(stack).check_end(ts)?;
        self.registry
            .stack_mut(stack)
            .end_checked(&mut self.out, ts, counters);
        Ok(())
    }

    /// An instant on a stack, checked (but for the event) and written:
    /// nested like a zero-length span, instants already at `ts` stacked
    /// below it.
    fn instant_on_stack(&mut self, stack: Stack, ts: u64, ev: &Event<'_>) -> Result<()> {
        let stacked = self.registry.stack(stack).check_instant(ts)?;
        self.registry
            .stack_mut(stack)
            .instant(&mut self.out, ts, stacked, ev);
        Ok(())
    }

    /// [`Core::check_event`] for an event on a named track, which must be
    /// this writer's, with a log line only under a thread; the track's stack.
    fn check_track_event(&self, track: NamedTrack, ev: &Event<'_>) -> Result<Stack> {
        self.registry.check_owner(track.owner, track.uuid)?;
        self.check_event(ev)?;
        if ev.log.is_some() && !self.registry.custom_on_thread(track.index) {
            return Err(Error::LogOffThread(track.uuid));
        }
        Ok(self.registry.track_stack(track.index))
    }

    /// Begins a span on a named track (`end` None) or writes a complete one.
    pub(crate) fn track_span_begin(
        &mut self,
        track: NamedTrack,
        ts: u64,
        end: Option<u64>,
        ev: &Event<'_>,
    ) -> Result<()> {
        let stack = self.check_track_event(track, ev)?;
        self.begin_on_stack(stack, ts, end, ev)
    }

    /// A complete span at an explicit depth on a named track.
    pub(crate) fn track_complete_span_at_depth(
        &mut self,
        track: NamedTrack,
        depth: usize,
        begin: u64,
        end: u64,
        ev: &Event<'_>,
    ) -> Result<()> {
        let stack = self.check_track_event(track, ev)?;
        self.at_depth_on_stack(stack, depth, begin, end, ev)
    }

    /// Ends the innermost explicit span of a named track.
    pub(crate) fn track_span_end(
        &mut self,
        track: NamedTrack,
        ts: u64,
        counters: &[(CounterTrack, CounterSample)],
    ) -> Result<()> {
        self.registry.check_owner(track.owner, track.uuid)?;
        let stack = self.registry.track_stack(track.index);
        self.end_on_stack(stack, ts, counters)
    }

    /// The checks of [`Core::span_end_with_counters`]; the thread's index.
    fn check_span_end(
        &self,
        thread: ThreadTrack,
        ts: u64,
        counters: &[(CounterTrack, CounterSample)],
    ) -> Result<u32> {
        let t = self.thread_index(thread)?;
        self.registry.check_counters(counters)?;
        self.registry.thread_at(t).check_end(ts)?;
        Ok(t)
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
        ev: &Event<'_>,
    ) -> Result<()> {
        if self.async_span_begin_fast(lane, span_id, ts, ev) {
            return Ok(());
        }
        self.async_span_begin_slow(lane, span_id, None, ts, *ev)
    }

    /// The common case of [`Core::async_span_begin`]: written, true;
    /// otherwise nothing changed, false.
    #[inline]
    fn async_span_begin_fast(
        &mut self,
        lane: AsyncLane,
        span_id: u64,
        ts: u64,
        ev: &Event<'_>,
    ) -> bool {
        // A time past the range is refused by the slot's time order
        // (`AsyncSpans::begin_fast`).
        if lane.owner != self.registry.owner()
            || ev.check().is_err()
            || ev.log.is_some()
            || !ev.counters.is_empty()
            || !self.out.emitter.keys.holds(ev.key)
        {
            return false;
        }
        debug_assert!(
            !self.asyncs.begins_plainly(lane.index, span_id, ts)
                || self.check_async_begin(lane, span_id, None, ts, ev).is_ok()
        );
        self.asyncs
            .begin_fast(&mut self.out, lane.index, span_id, ts, ev)
    }

    /// Begins an async span beneath `parent`, a span in flight: on a track
    /// nested under the parent's track (see `TraceWriter::async_child_begin`).
    pub(crate) fn async_child_begin(
        &mut self,
        lane: AsyncLane,
        span_id: u64,
        parent: AsyncParent,
        ts: u64,
        ev: &Event<'_>,
    ) -> Result<()> {
        self.async_span_begin_slow(lane, span_id, Some(parent), ts, *ev)
    }

    /// Checks an async span's event: valid, no log line (those belong to
    /// threads), counter values on this writer's absolute counters.
    fn check_async_event(&self, lane: AsyncLane, ev: &Event<'_>) -> Result<()> {
        ev.check()?;
        self.out.emitter.keys.check(ev.key)?;
        if ev.log.is_some() {
            return Err(Error::LogOffThread(lane.uuid));
        }
        self.registry.check_counters(ev.counters)
    }

    /// The checks of an async begin (beneath `parent` if given); the
    /// parent's entry.
    fn check_async_begin(
        &self,
        lane: AsyncLane,
        span_id: u64,
        parent: Option<AsyncParent>,
        ts: u64,
        ev: &Event<'_>,
    ) -> Result<Option<AsyncOpen>> {
        self.lane_index(lane)?;
        self.check_async_event(lane, ev)?;
        check_ts(ts)?;
        let under = match parent {
            Some(p) => {
                self.lane_index(p.lane)?;
                Some(self.asyncs.parent_entry(p, ts)?)
            }
            None => None,
        };
        self.asyncs.check_id_free(lane, span_id, ts)?;
        Ok(under)
    }

    #[cold]
    #[inline(never)]
    fn async_span_begin_slow(
        &mut self,
        lane: AsyncLane,
        span_id: u64,
        parent: Option<AsyncParent>,
        ts: u64,
        ev: Event<'_>,
    ) -> Result<()> {
        let under = self.check_async_begin(lane, span_id, parent, ts, &ev)?;
        // Everything is checked: from here on the call succeeds.
        self.asyncs
            .begin(&mut self.out, lane.index, span_id, under, ts, &ev);
        Ok(())
    }

    /// An async span whose begin and end are both known, beneath `parent`
    /// if given (see `TraceWriter::async_complete_span`).
    pub(crate) fn async_complete_span(
        &mut self,
        lane: AsyncLane,
        span_id: u64,
        parent: Option<AsyncParent>,
        begin: u64,
        end: u64,
        ev: &Event<'_>,
    ) -> Result<()> {
        self.lane_index(lane)?;
        self.check_async_event(lane, ev)?;
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
            Some(p) => {
                self.lane_index(p.lane)?;
                Some((self.asyncs.parent_entry(p, begin)?, p))
            }
            None => None,
        };
        self.asyncs.check_id_free(lane, span_id, begin)?;
        // Everything is checked: from here on the call succeeds.
        self.asyncs
            .complete_span(&mut self.out, lane.index, span_id, under, begin, end, ev);
        Ok(())
    }

    /// Ends an async span: inlined, the common case returns in a register
    /// (see [`Core::async_span_begin`]).
    #[inline(always)]
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
    #[inline(always)]
    fn async_span_end_fast(&mut self, lane: AsyncLane, span_id: u64, ts: u64) -> bool {
        // A time past the range is refused by `AsyncSpans::end_fast`.
        if lane.owner != self.registry.owner() {
            return false;
        }
        debug_assert!(
            !self.asyncs.ends_plainly(lane.index, span_id, ts)
                || self
                    .check_async_end(lane, span_id, ts, &Event::new(""))
                    .is_ok()
        );
        self.asyncs.end_fast(&mut self.out, lane.index, span_id, ts)
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
        let end = Event::new("").args(end.args).counters(end.counters);
        self.check_async_end(lane, span_id, ts, &end)?;
        let extras = end.has_extras().then_some(&end);
        self.asyncs
            .end(&mut self.out, lane.index, span_id, ts, extras);
        Ok(())
    }

    /// The checks of an async end whose event carries `end`.
    fn check_async_end(
        &self,
        lane: AsyncLane,
        span_id: u64,
        ts: u64,
        end: &Event<'_>,
    ) -> Result<()> {
        self.lane_index(lane)?;
        end.check()?;
        self.registry.check_counters(end.counters)?;
        check_ts(ts)?;
        self.asyncs.check_end(lane, span_id, ts)?;
        Ok(())
    }

    /// Describes a named or counter track, or finds it described alike.
    fn custom_track(
        &mut self,
        domain: Domain,
        parent: ParentTrack,
        name: &str,
        options: &TrackOptions<'_>,
        counter: Option<&CounterOptions<'_>>,
    ) -> Result<(TrackUuid, u32, bool)> {
        let on_thread = self.registry.parent_on_thread(parent);
        let parent = self.registry.parent_uuid(parent)?;
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
        let digest = digest(&(options, counter));
        let incremental = counter.is_some_and(|c| c.incremental);
        let (index, new) = self
            .registry
            .register_custom(uuid, digest, incremental, on_thread)?;
        if new {
            let kind = TrackKind::Named {
                parent: parent.0,
                name,
                options,
                counter,
            };
            self.out.descriptor(uuid.0, &kind);
        }
        Ok((uuid, index, new))
    }

    pub(crate) fn track(
        &mut self,
        parent: ParentTrack,
        name: &str,
        options: &TrackOptions<'_>,
    ) -> Result<NamedTrack> {
        let (uuid, index, new) = self.custom_track(Domain::Named, parent, name, options, None)?;
        if new {
            let stack = Thread::new(TrackOutput::new(&self.out, uuid.0));
            self.registry.add_track_stack(index, stack);
        }
        Ok(NamedTrack {
            uuid,
            index,
            owner: self.registry.owner(),
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
        let (uuid, index, _) =
            self.custom_track(Domain::Counter, parent, name, &options.track, Some(options))?;
        if options.incremental {
            self.totals.track(index);
        }
        Ok(CounterTrack {
            uuid,
            index,
            owner: self.registry.owner(),
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
                self.out.descriptor(0, &kind);
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
        let emitter = &mut self.out.emitter;
        if !readings.iter().any(|&(c, _)| c as u32 == emitter.clock) {
            return Err(Error::BadClockSnapshot);
        }
        let clocks: Vec<(u32, u64)> = readings.iter().map(|&(c, ts)| (c as u32, ts)).collect();
        emitter.clock_snapshot(&mut self.out.seqs[0], &clocks);
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
        let (emitter, seq) = (&mut self.out.emitter, &mut self.out.seqs[0]);
        if !emitter.named_descriptor_known(seq, uuid.0, parent.0, name, options) {
            let kind = TrackKind::Named {
                parent: parent.0,
                name,
                options,
                counter: None,
            };
            emitter.descriptor_general(seq, uuid.0, &kind);
        }
        Ok(uuid)
    }

    /// The template of keyed tracks named `name` with `options` (see
    /// `TraceWriter::track_template`). Writes nothing.
    pub(crate) fn track_template(
        &mut self,
        name: &str,
        options: &TrackOptions<'_>,
    ) -> Result<TrackTemplate> {
        self.out.emitter.templates.register(name, options)
    }

    /// [`Core::keyed_track`] of a template's name and options: the same
    /// bytes, from the fields the template keeps encoded.
    #[inline]
    pub(crate) fn keyed_track_from(
        &mut self,
        template: TrackTemplate,
        parent: TrackUuid,
        key: u64,
    ) -> Result<TrackUuid> {
        let index = self.out.emitter.templates.check(template)?;
        let uuid = TrackUuid::keyed(parent, key);
        let (emitter, seq) = (&mut self.out.emitter, &mut self.out.seqs[0]);
        if !emitter.template_descriptor_known(seq, uuid.0, parent.0, index) {
            emitter.template_descriptor_general(seq, uuid.0, parent.0, index);
        }
        Ok(uuid)
    }

    /// A slice end on a track named by its uuid: written forward where the
    /// sequence is set up (`Emitter::end_on_known`), else by the template
    /// path of [`Output::event`].
    #[inline]
    pub(crate) fn end_on(&mut self, track: TrackUuid, ts: u64) -> Result<()> {
        check_ts(ts)?;
        if !self
            .out
            .emitter
            .end_on_known(&mut self.out.seqs[0], ts, track.0)
        {
            self.end_on_general(track, ts);
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn end_on_general(&mut self, track: TrackUuid, ts: u64) {
        let field = Field::uint(field::EVENT_TRACK_UUID, track.0);
        self.out.event(ts, EventType::SliceEnd, &field, None, None);
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
            // A key registered with its arguments' names and only those
            // (strings beside a key are an error reported below): no lookup.
            if let Some(key) = ev.key {
                let keyed_only = (ev.name.len() | ev.category.len() | ev.file.len()) == 0;
                let seq = &mut self.out.seqs[0];
                if keyed_only
                    && kind != EventType::SliceEnd
                    && (ev.only_args() || kind == EventType::Instant && !ev.has_extras())
                    && self
                        .out
                        .emitter
                        .keyed_args_on(seq, ts, kind, track.0, key, ev.args)
                {
                    return Ok(());
                }
                // Named inline: the key's short path with the name in place
                // of its own, if the event carries nothing else.
                if ev.inline_name
                    && (ev.category.len() | ev.file.len()) == 0
                    && ev.no_more_than_args()
                    && self
                        .out
                        .emitter
                        .keyed_named_on(seq, ts, kind, track.0, key, ev.name, ev.args)
                {
                    return Ok(());
                }
            }
            ev.check()?;
            self.out.emitter.keys.check(ev.key)?;
        }
        check_ts(ts)?;
        // Most often the track described last (a span's lifetime slice).
        let field = *self.out.emitter.keyed.track(track.0);
        self.out.event(ts, kind, &field, ev, None);
        Ok(())
    }

    /// [`Core::event_on`] of an instant or begin (`kind`) of `key` with
    /// `args` and nothing else: the key's short path without an `Event` to
    /// read, the usual way if it does not hold.
    #[inline]
    pub(crate) fn event_on_key(
        &mut self,
        track: TrackUuid,
        ts: u64,
        kind: EventType,
        key: EventKey,
        args: &[Arg<'_>],
    ) -> Result<()> {
        let seq = &mut self.out.seqs[0];
        if self
            .out
            .emitter
            .keyed_args_on(seq, ts, kind, track.0, key, args)
        {
            return Ok(());
        }
        self.event_on_key_slow(track, ts, kind, key, args)
    }

    #[cold]
    #[inline(never)]
    fn event_on_key_slow(
        &mut self,
        track: TrackUuid,
        ts: u64,
        kind: EventType,
        key: EventKey,
        args: &[Arg<'_>],
    ) -> Result<()> {
        let ev = Event::from_key(key).args(args);
        self.event_on(track, ts, kind, Some(&ev))
    }

    /// [`Core::event_on_key`] of an event named `name` inline
    /// ([`Event::from_key_named`]).
    #[inline]
    pub(crate) fn event_on_key_named(
        &mut self,
        track: TrackUuid,
        ts: u64,
        kind: EventType,
        key: EventKey,
        name: &str,
        args: &[Arg<'_>],
    ) -> Result<()> {
        let seq = &mut self.out.seqs[0];
        if self
            .out
            .emitter
            .keyed_named_on(seq, ts, kind, track.0, key, name, args)
        {
            return Ok(());
        }
        self.event_on_key_named_slow(track, ts, kind, key, name, args)
    }

    #[cold]
    #[inline(never)]
    fn event_on_key_named_slow(
        &mut self,
        track: TrackUuid,
        ts: u64,
        kind: EventType,
        key: EventKey,
        name: &str,
        args: &[Arg<'_>],
    ) -> Result<()> {
        let ev = Event::from_key_named(key, name).args(args);
        self.event_on(track, ts, kind, Some(&ev))
    }

    pub(crate) fn counter(
        &mut self,
        track: CounterTrack,
        ts: u64,
        value: CounterSample,
    ) -> Result<()> {
        self.registry.check_owner(track.owner, track.uuid)?;
        check_ts(ts)?;
        let field = self.registry.custom_field(track.index);
        let generation = self.out.emitter.next_generation();
        let value = self.totals.value(track.index, value, generation);
        self.out
            .event(ts, EventType::Counter, &field, None, Some(value));
        Ok(())
    }

    pub(crate) fn instant(&mut self, track: InstantTrack, ts: u64, ev: &Event<'_>) -> Result<()> {
        let field = match track {
            InstantTrack::Thread(thread) => {
                let t = self.check_thread_event(thread, ev)?;
                return self.instant_on_stack(Stack::Thread(t), ts, ev);
            }
            InstantTrack::Named(n) => {
                let stack = self.check_track_event(n, ev)?;
                return self.instant_on_stack(stack, ts, ev);
            }
            InstantTrack::Process(p) => {
                self.registry.check_owner(p.owner, p.uuid)?;
                Field::uint(field::EVENT_TRACK_UUID, p.uuid.0)
            }
            InstantTrack::Lane(lane) => {
                self.lane_index(lane)?;
                Field::uint(field::EVENT_TRACK_UUID, lane.uuid.0)
            }
        };
        self.check_event(ev)?;
        if ev.log.is_some() {
            let uuid = match track {
                InstantTrack::Process(p) => p.uuid,
                InstantTrack::Lane(l) => l.uuid,
                InstantTrack::Named(n) => n.uuid,
                InstantTrack::Thread(t) => t.uuid,
            };
            return Err(Error::LogOffThread(uuid));
        }
        check_ts(ts)?;
        if let InstantTrack::Lane(lane) = track {
            // The lane's own track is described when it first gets an event.
            self.asyncs.describe_lane(&mut self.out, lane.index);
        }
        self.out
            .event(ts, EventType::Instant, &field, Some(ev), None);
        Ok(())
    }

    /// Writes the ends of complete spans that nothing open encloses, and
    /// lists the spans still open.
    pub(crate) fn finish(&mut self) -> Vec<OpenSpan> {
        for th in self.registry.stacks_mut() {
            th.pop_due(&mut self.out, u64::MAX);
        }
        self.asyncs.pop_all(&mut self.out);
        self.open_spans()
    }

    pub(crate) fn open_spans(&self) -> Vec<OpenSpan> {
        let owner = self.registry.owner();
        let mut open = Vec::new();
        for (index, th) in self.registry.threads().enumerate() {
            let thread = ThreadTrack {
                uuid: th.uuid(),
                index: index as u32,
                owner,
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
        for (index, th) in self.registry.track_stacks() {
            let track = NamedTrack {
                uuid: th.uuid(),
                index,
                owner,
            };
            for (depth, f) in th.stack.iter().enumerate() {
                if f.end.is_none() {
                    open.push(OpenSpan::Track {
                        track,
                        begin: f.begin,
                        depth,
                    });
                }
            }
        }
        for (index, span_id, begin) in self.asyncs.open_spans() {
            let lane = AsyncLane {
                uuid: self.asyncs.lane_uuid(index),
                index,
                owner,
            };
            open.push(OpenSpan::Async {
                lane,
                span_id,
                begin,
            });
        }
        open
    }

    /// Ends every open span at `ts` (and writes every pending end): all or
    /// nothing.
    pub(crate) fn close_open_spans(&mut self, ts: u64) -> Result<usize> {
        check_ts(ts)?;
        for th in self.registry.stacks() {
            th.check_close(ts)?;
        }
        self.asyncs.check_close(ts)?;
        let mut closed = 0;
        for th in self.registry.stacks_mut() {
            closed += th.close(&mut self.out, ts);
        }
        closed += self.asyncs.close(&mut self.out, ts);
        Ok(closed)
    }
}
