//! The interface both writers share, so that generic code, tests and
//! benchmarks run unchanged on either.

use crate::emitter::TrackTemplate;
use crate::encoding::EventType;
use crate::error::Result;
use crate::event::{Arg, Event};
use crate::ids::{
    AsyncLane, AsyncParent, CounterTrack, InstantTrack, NamedTrack, ParentTrack, ProcessTrack,
    ThreadTrack, TrackUuid,
};
use crate::keys::EventKey;
use crate::model::OpenSpan;
use crate::track_options::{
    Clock, CounterOptions, CounterSample, LaneOptions, ProcessOptions, ThreadOptions, TrackOptions,
};

pub(crate) mod sealed {
    use crate::error::Result;
    use crate::model::Core;

    /// What a writer adds to the core: where the bytes go.
    pub trait Sink {
        fn core(&self) -> &Core;
        fn core_mut(&mut self) -> &mut Core;
        /// Called before every emitting call: the streaming writer hands its
        /// buffer to the sink once it is full. An error here means the call
        /// did nothing.
        fn make_room(&mut self) -> Result<()>;
        /// Hands every buffered byte to the sink and flushes it.
        fn flush_all(&mut self) -> Result<()>;
    }
}

/// The emitters of [`Writer`](crate::Writer) and
/// [`StreamingPerfettoWriter`](crate::StreamingPerfettoWriter). For the same
/// calls, both produce the same bytes.
///
/// # Errors
///
/// Every call returns [`Error::Io`](crate::Error::Io) when a streaming
/// writer's sink fails while the writer makes room for the call's packets; the
/// call then did nothing, and may be retried. The other errors each call can
/// return are listed with it; every call that takes an [`Event`] also returns
/// [`ForeignKey`](crate::Error::ForeignKey) for a key of another writer and
/// [`KeyAndStrings`](crate::Error::KeyAndStrings) for a keyed event that
/// names strings of its own ([`Event::from_key`]). A call that returns an
/// error writes nothing and changes nothing.
///
/// # Timestamps and nesting
///
/// Timestamps are nanoseconds in the trace's clock (BOOTTIME by default), at
/// most `i64::MAX`. The trace processor sorts events by timestamp and keeps
/// file order between equal timestamps, so on one thread:
/// - calls must come in non-decreasing time order
///   ([`Error::TimestampBackwards`](crate::Error::TimestampBackwards));
/// - of two spans that begin at the same time, begin the enclosing one first;
/// - a span that ends at `t` is closed before anything that begins at `t`,
///   which is then its sibling, not its child;
/// - a complete span's end event is written once nothing can begin inside it
///   any more, so complete spans may be given in begin order (parents before
///   children, as a database export sorted by begin time yields them), and a
///   span that would cross the end of an enclosing complete span is refused
///   ([`Error::NotNested`](crate::Error::NotNested)).
///
/// Zero-length spans are allowed, and follow the same rules: a zero-length
/// complete span at the end of another is its sibling. To make it a child
/// (a database row that took no time at the very end of its parent), give
/// its depth with [`complete_span_at_depth`](Self::complete_span_at_depth),
/// which places a span at the depth asked wherever the rules above leave a
/// choice.
///
/// Instants on a thread nest under the spans open there, like a
/// zero-length span, with one difference the trace processor makes: two or
/// more instants at the same time on one thread stack, each one level below
/// the one before (so that the UI shows every one of them), until anything
/// else happens on the thread. A span that begins or ends at that time, or a
/// later event, closes them. Stacked instants count towards
/// [`MAX_SPAN_DEPTH`](crate::MAX_SPAN_DEPTH) like spans
/// ([`TooDeep`](crate::Error::TooDeep) past it).
///
/// Async spans are free of these rules: each one runs on a track where
/// nothing else overlaps it.
///
/// Empty `category` means none; empty `file` means no source location (and
/// `line` is ignored).
pub trait TraceWriter: sealed::Sink {
    /// Describes a process and returns its track.
    ///
    /// `key` (such as a process id string) names the process: the track uuid
    /// is derived from it, so it is the same in every trace. `pid` is the
    /// caller's when known; otherwise one is derived from the key, above any
    /// real Linux pid and distinct from every pid and tid of this writer.
    /// Calling again with the same key and arguments returns the same track.
    ///
    /// # Errors
    /// [`ZeroId`](crate::Error::ZeroId) for pid 0,
    /// [`NegativePid`](crate::Error::NegativePid) for a negative pid (the
    /// trace processor reads it unsigned for the process and signed for its
    /// threads, so they would not meet),
    /// [`PidInUse`](crate::Error::PidInUse) if another process has the pid,
    /// [`Redefined`](crate::Error::Redefined) if the key was described with
    /// other arguments.
    fn process(
        &mut self,
        key: &str,
        pid: Option<i32>,
        name: &str,
        cmdline: &[&str],
    ) -> Result<ProcessTrack> {
        self.make_room()?;
        let options = ProcessOptions::default();
        self.core_mut().process(key, pid, name, cmdline, &options)
    }

    /// [`process`](Self::process) with [`ProcessOptions`]: a description
    /// the UI shows in the process track's help.
    ///
    /// ```
    /// use perfetto_trace_writer::{ProcessOptions, TraceWriter, Writer};
    /// let mut w = Writer::new();
    /// let about = ProcessOptions { description: Some("answers queries"), ..Default::default() };
    /// let p = w.process_with("svc", Some(7), "service", &[], &about)?;
    /// let trace = perfetto_trace_writer::inspect::decode(w.bytes()).unwrap();
    /// assert_eq!(trace.tracks[&p.uuid().get()].description.as_deref(), Some("answers queries"));
    /// # Ok::<(), perfetto_trace_writer::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`process`](Self::process) (options differing from an earlier
    /// description of the key are [`Redefined`](crate::Error::Redefined)),
    /// and [`StringTooLong`](crate::Error::StringTooLong).
    fn process_with(
        &mut self,
        key: &str,
        pid: Option<i32>,
        name: &str,
        cmdline: &[&str],
        options: &ProcessOptions<'_>,
    ) -> Result<ProcessTrack> {
        self.make_room()?;
        self.core_mut().process(key, pid, name, cmdline, options)
    }

    /// The pid of a process: the caller's or the derived one.
    ///
    /// # Errors
    /// [`ForeignHandle`](crate::Error::ForeignHandle).
    fn pid(&self, process: ProcessTrack) -> Result<i32> {
        self.core().pid(process)
    }

    /// Describes a thread of `process` and returns its track.
    ///
    /// `key` (such as a stream id) names the thread within its process; `tid`
    /// is derived like a pid when not given. Calling again with the same key
    /// and arguments returns the same track.
    ///
    /// # Errors
    /// [`ForeignHandle`](crate::Error::ForeignHandle),
    /// [`ZeroId`](crate::Error::ZeroId), [`TidInUse`](crate::Error::TidInUse),
    /// [`Redefined`](crate::Error::Redefined).
    fn thread(
        &mut self,
        process: ProcessTrack,
        key: &str,
        tid: Option<i64>,
        name: &str,
    ) -> Result<ThreadTrack> {
        self.make_room()?;
        let options = ThreadOptions::default();
        self.core_mut().thread(process, key, tid, name, &options)
    }

    /// [`thread`](Self::thread) with [`ThreadOptions`]: a description the UI
    /// shows in the thread track's help.
    ///
    /// ```
    /// use perfetto_trace_writer::{ThreadOptions, TraceWriter, Writer};
    /// let mut w = Writer::new();
    /// let p = w.process("svc", Some(7), "service", &[])?;
    /// let about = ThreadOptions { description: Some("parses requests"), ..Default::default() };
    /// let t = w.thread_with(p, "main", Some(8), "main", &about)?;
    /// let trace = perfetto_trace_writer::inspect::decode(w.bytes()).unwrap();
    /// assert_eq!(trace.tracks[&t.uuid().get()].description.as_deref(), Some("parses requests"));
    /// # Ok::<(), perfetto_trace_writer::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`thread`](Self::thread), and
    /// [`StringTooLong`](crate::Error::StringTooLong).
    fn thread_with(
        &mut self,
        process: ProcessTrack,
        key: &str,
        tid: Option<i64>,
        name: &str,
        options: &ThreadOptions<'_>,
    ) -> Result<ThreadTrack> {
        self.make_room()?;
        self.core_mut().thread(process, key, tid, name, options)
    }

    /// The tid of a thread: the caller's or the derived one.
    ///
    /// # Errors
    /// [`ForeignHandle`](crate::Error::ForeignHandle).
    fn tid(&self, thread: ThreadTrack) -> Result<i64> {
        self.core().tid(thread)
    }

    /// A named lane of async spans under a process or a thread. The same
    /// parent and name give the same lane.
    ///
    /// Async spans overlap arbitrarily, so each span in flight gets a track of
    /// its own, named like the lane, under the lane's parent; the Perfetto UI
    /// shows same-named sibling tracks as one lane. Tracks are reused by later
    /// spans, so a lane has as many tracks as it ever had spans in flight at
    /// once.
    ///
    /// # Errors
    /// [`ForeignHandle`](crate::Error::ForeignHandle),
    /// [`Redefined`](crate::Error::Redefined) if the same parent and name
    /// were made a tree lane ([`async_tree_lane`](Self::async_tree_lane)).
    fn async_lane(&mut self, parent: impl Into<ParentTrack>, name: &str) -> Result<AsyncLane>
    where
        Self: Sized,
    {
        self.make_room()?;
        let options = LaneOptions::default();
        self.core_mut().async_lane(parent.into(), name, &options)
    }

    /// [`async_lane`](Self::async_lane) for spans with children: its tracks
    /// are never merged with their same-named siblings
    /// (`SIBLING_MERGE_BEHAVIOR_NONE`), so each shows as a row of its own,
    /// and the trace processor keeps every child's track under exactly its
    /// parent's track (it hangs the children of merged siblings under the
    /// first of them). The tracks nested under a span's track for its
    /// children are never merged either, whichever lane they come from.
    /// [`async_lane_with`](Self::async_lane_with) with
    /// [`LaneOptions::tree`] set makes one with a description.
    ///
    /// # Errors
    /// [`ForeignHandle`](crate::Error::ForeignHandle),
    /// [`Redefined`](crate::Error::Redefined) if the same parent and name
    /// were made a merged lane.
    fn async_tree_lane(&mut self, parent: impl Into<ParentTrack>, name: &str) -> Result<AsyncLane>
    where
        Self: Sized,
    {
        self.make_room()?;
        let options = LaneOptions {
            tree: true,
            ..LaneOptions::default()
        };
        self.core_mut().async_lane(parent.into(), name, &options)
    }

    /// [`async_lane`](Self::async_lane) with [`LaneOptions`]: a description
    /// on the lane's own track and on each track of its spans (their
    /// children's too), and whether it is a tree lane
    /// ([`async_tree_lane`](Self::async_tree_lane)).
    ///
    /// ```
    /// use perfetto_trace_writer::{LaneOptions, TraceWriter, Writer};
    /// let mut w = Writer::new();
    /// let p = w.process("svc", Some(7), "service", &[])?;
    /// let about = LaneOptions { description: Some("block reads"), ..Default::default() };
    /// let io = w.async_lane_with(p, "io", &about)?;
    /// w.async_span_begin(io, 1, 10, "read", "", "", 0)?;
    /// w.async_span_end(io, 1, 20)?;
    /// let trace = perfetto_trace_writer::inspect::decode(w.bytes()).unwrap();
    /// let span_track = &trace.tracks[&trace.slices[0].track];
    /// assert_eq!(span_track.description.as_deref(), Some("block reads"));
    /// # Ok::<(), perfetto_trace_writer::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ForeignHandle`](crate::Error::ForeignHandle),
    /// [`StringTooLong`](crate::Error::StringTooLong),
    /// [`Redefined`](crate::Error::Redefined) (the same parent and name with
    /// another description, or made merged where these options say tree,
    /// or the other way round).
    fn async_lane_with(
        &mut self,
        parent: impl Into<ParentTrack>,
        name: &str,
        options: &LaneOptions<'_>,
    ) -> Result<AsyncLane>
    where
        Self: Sized,
    {
        self.make_room()?;
        self.core_mut().async_lane(parent.into(), name, options)
    }

    /// Begins a span on a thread; [`span_end`](Self::span_end) ends it.
    ///
    /// # Errors
    /// [`ForeignHandle`](crate::Error::ForeignHandle),
    /// [`TimestampOutOfRange`](crate::Error::TimestampOutOfRange),
    /// [`TimestampBackwards`](crate::Error::TimestampBackwards),
    /// [`NotNested`](crate::Error::NotNested) (beginning after the end of an
    /// enclosing complete span), [`TooDeep`](crate::Error::TooDeep).
    fn span_begin(
        &mut self,
        thread: ThreadTrack,
        ts: u64,
        name: &str,
        category: &str,
        file: &str,
        line: u32,
    ) -> Result<()> {
        self.make_room()?;
        let meta = Event::new(name).category(category).location(file, line);
        self.core_mut().span_begin(thread, ts, &meta)
    }

    /// Ends the innermost span begun with [`span_begin`](Self::span_begin) on
    /// the thread.
    ///
    /// # Errors
    /// [`ForeignHandle`](crate::Error::ForeignHandle),
    /// [`TimestampOutOfRange`](crate::Error::TimestampOutOfRange),
    /// [`NoOpenSpan`](crate::Error::NoOpenSpan),
    /// [`EndBeforeBegin`](crate::Error::EndBeforeBegin),
    /// [`TimestampBackwards`](crate::Error::TimestampBackwards),
    /// [`NotNested`](crate::Error::NotNested) (a complete span inside it, or
    /// one enclosing it, would be crossed).
    #[inline(always)]
    fn span_end(&mut self, thread: ThreadTrack, ts: u64) -> Result<()> {
        self.make_room()?;
        self.core_mut().span_end(thread, ts)
    }

    /// A span whose begin and end are both known. Its end event is written as
    /// soon as a later call on the thread passes it, or by
    /// [`finish`](Self::finish).
    ///
    /// # Errors
    /// As [`span_begin`](Self::span_begin), and
    /// [`EndBeforeBegin`](crate::Error::EndBeforeBegin).
    #[allow(clippy::too_many_arguments)]
    fn complete_span(
        &mut self,
        thread: ThreadTrack,
        begin: u64,
        end: u64,
        name: &str,
        category: &str,
        file: &str,
        line: u32,
    ) -> Result<()> {
        self.make_room()?;
        let meta = Event::new(name).category(category).location(file, line);
        self.core_mut().complete_span(thread, begin, end, &meta)
    }

    /// A complete span at an explicit `depth` on the thread (0 is
    /// outermost), for sources that know each span's depth, such as
    /// database rows with a depth column. Where the tie rules alone would
    /// read the span otherwise, the depth decides: a zero-length span at
    /// the very end of its parent, `complete_span_at_depth(t, 1, 200, 200,
    /// ..)` after a parent at 100..200, is that parent's child, where
    /// [`complete_span`](Self::complete_span) would make it a sibling.
    ///
    /// The spans open at `depth` and deeper must have ended by `begin`
    /// (their ends are written first); the `depth` spans below stay open
    /// around it and must not end before `end`.
    ///
    /// ```
    /// use perfetto_trace_writer::{Event, TraceWriter, Writer};
    ///
    /// let mut w = Writer::new();
    /// let p = w.process("db", Some(9), "db", &[])?;
    /// let t = w.thread(p, "main", Some(9), "main")?;
    /// // Rows (depth, begin, end), sorted by begin.
    /// w.complete_span_at_depth(t, 0, 100, 200, &Event::new("parent"))?;
    /// w.complete_span_at_depth(t, 1, 200, 200, &Event::new("child at the end"))?;
    /// w.complete_span_at_depth(t, 0, 200, 300, &Event::new("next"))?;
    /// w.finish()?;
    /// let trace = perfetto_trace_writer::inspect::decode(w.bytes()).unwrap();
    /// let depths: Vec<_> = trace.slices.iter().map(|s| (s.name.as_str(), s.depth)).collect();
    /// assert_eq!(depths, [("parent", 0), ("child at the end", 1), ("next", 0)]);
    /// # Ok::<(), perfetto_trace_writer::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`complete_span_with`](Self::complete_span_with), and
    /// [`DepthOutOfRange`](crate::Error::DepthOutOfRange) when a span open
    /// at `depth` or deeper has not ended by `begin`, or fewer than `depth`
    /// spans that last until `end` are open.
    fn complete_span_at_depth(
        &mut self,
        thread: ThreadTrack,
        depth: usize,
        begin: u64,
        end: u64,
        event: &Event<'_>,
    ) -> Result<()> {
        self.make_room()?;
        self.core_mut()
            .complete_span_at_depth(thread, depth, begin, end, event)
    }

    /// Begins async span `span_id` on a lane. Ids are the caller's, unique
    /// among the lane's open spans; an id may be reused once its span ended.
    ///
    /// # Errors
    /// [`ForeignHandle`](crate::Error::ForeignHandle),
    /// [`TimestampOutOfRange`](crate::Error::TimestampOutOfRange),
    /// [`AsyncSpanAlreadyOpen`](crate::Error::AsyncSpanAlreadyOpen).
    #[allow(clippy::too_many_arguments)]
    fn async_span_begin(
        &mut self,
        lane: AsyncLane,
        span_id: u64,
        ts: u64,
        name: &str,
        category: &str,
        file: &str,
        line: u32,
    ) -> Result<()> {
        self.make_room()?;
        let meta = Event::new(name).category(category).location(file, line);
        self.core_mut().async_span_begin(lane, span_id, ts, &meta)
    }

    /// Ends async span `span_id` of a lane.
    ///
    /// # Errors
    /// [`ForeignHandle`](crate::Error::ForeignHandle),
    /// [`TimestampOutOfRange`](crate::Error::TimestampOutOfRange),
    /// [`AsyncSpanNotOpen`](crate::Error::AsyncSpanNotOpen),
    /// [`EndBeforeBegin`](crate::Error::EndBeforeBegin).
    #[inline(always)]
    fn async_span_end(&mut self, lane: AsyncLane, span_id: u64, ts: u64) -> Result<()> {
        self.make_room()?;
        self.core_mut().async_span_end(lane, span_id, ts)
    }

    /// [`span_end`](Self::span_end) with counter values on the end event
    /// (`extra_counter_values`), each shown on its counter track at `ts`:
    /// what a counter read at the span's end shows, such as CPU time spent
    /// (see [`Event::counters`] for the begin).
    ///
    /// # Errors
    /// As [`span_end`](Self::span_end); a counter track of another writer is
    /// [`ForeignHandle`](crate::Error::ForeignHandle).
    fn span_end_with_counters(
        &mut self,
        thread: ThreadTrack,
        ts: u64,
        counters: &[(CounterTrack, CounterSample)],
    ) -> Result<()> {
        self.make_room()?;
        self.core_mut().span_end_with_counters(thread, ts, counters)
    }

    /// [`async_span_end`](Self::async_span_end) with counter values on the
    /// end event, as [`span_end_with_counters`](Self::span_end_with_counters).
    ///
    /// # Errors
    /// As [`async_span_end`](Self::async_span_end); a counter track of
    /// another writer is [`ForeignHandle`](crate::Error::ForeignHandle).
    fn async_span_end_with_counters(
        &mut self,
        lane: AsyncLane,
        span_id: u64,
        ts: u64,
        counters: &[(CounterTrack, CounterSample)],
    ) -> Result<()> {
        self.make_room()?;
        let end = Event::new("").counters(counters);
        self.core_mut().async_span_end_with(lane, span_id, ts, &end)
    }

    /// [`span_begin`](Self::span_begin) with a full [`Event`]: flows and
    /// typed arguments too. Counter values it carries
    /// ([`Event::counters`]) are read at its begin; on a
    /// [`complete_span_with`](Self::complete_span_with), at its begin too.
    ///
    /// # Errors
    /// As [`span_begin`](Self::span_begin), and
    /// [`StringTooLong`](crate::Error::StringTooLong),
    /// [`ArgsTooDeep`](crate::Error::ArgsTooDeep).
    fn span_begin_with(&mut self, thread: ThreadTrack, ts: u64, event: &Event<'_>) -> Result<()> {
        self.make_room()?;
        self.core_mut().span_begin(thread, ts, event)
    }

    /// [`complete_span`](Self::complete_span) with a full [`Event`].
    ///
    /// # Errors
    /// As [`complete_span`](Self::complete_span) and
    /// [`span_begin_with`](Self::span_begin_with).
    fn complete_span_with(
        &mut self,
        thread: ThreadTrack,
        begin: u64,
        end: u64,
        event: &Event<'_>,
    ) -> Result<()> {
        self.make_room()?;
        self.core_mut().complete_span(thread, begin, end, event)
    }

    /// [`async_span_begin`](Self::async_span_begin) with a full [`Event`]:
    /// pass the span's id and its parent's as arguments to show how async
    /// operations relate.
    ///
    /// # Errors
    /// As [`async_span_begin`](Self::async_span_begin) and
    /// [`span_begin_with`](Self::span_begin_with), and
    /// [`LogOffThread`](crate::Error::LogOffThread) for an event with a log
    /// line (log lines go on threads).
    fn async_span_begin_with(
        &mut self,
        lane: AsyncLane,
        span_id: u64,
        ts: u64,
        event: &Event<'_>,
    ) -> Result<()> {
        self.make_room()?;
        self.core_mut().async_span_begin(lane, span_id, ts, event)
    }

    /// Begins async span `span_id` on a lane beneath `parent`, a span in
    /// flight (begun by a call and not ended, or a complete span whose end
    /// is not before `ts`), on any lane. Ended by
    /// [`async_span_end`](Self::async_span_end) on `lane`.
    ///
    /// The child goes on a track nested under the parent's track
    /// (`TrackDescriptor.parent_uuid` is the parent's track): the first one
    /// there free at `ts`, or a new one. Never on the parent's own track,
    /// since neither end is known yet and the child may outlive the parent
    /// (a detached task): it then stays beneath the parent's track for its
    /// whole life, while that track may take later spans. See the crate
    /// docs, "Async hierarchy".
    ///
    /// # Errors
    /// As [`async_span_begin_with`](Self::async_span_begin_with), and
    /// [`ParentNotOpen`](crate::Error::ParentNotOpen).
    fn async_child_begin(
        &mut self,
        lane: AsyncLane,
        span_id: u64,
        parent: AsyncParent,
        ts: u64,
        event: &Event<'_>,
    ) -> Result<()> {
        self.make_room()?;
        self.core_mut()
            .async_child_begin(lane, span_id, parent, ts, event)
    }

    /// An async span whose begin and end are both known, under `span_id`
    /// (so that later spans may name it as their parent while it is in
    /// flight), beneath `parent` if given.
    ///
    /// Given in begin order, as a database export sorted by begin yields
    /// them, a top-level span goes on the first free track of its lane (in
    /// creation order): one where every span has ended by `begin`. A lane
    /// then has exactly as many tracks as it had spans in flight at once,
    /// and memory is bounded by the spans in flight. A child of a complete
    /// span nests on the parent's track when the parent encloses it and is
    /// the innermost span there once the spans ended by `begin` are
    /// written (a child at its parent's very end nests only if no other
    /// span beginning at that time came between: that one wrote the
    /// parent's end); otherwise (it overlaps a sibling, outlives the
    /// parent, or the parent was begun by a call) it goes on the first free
    /// track nested under the parent's track. Ends are written once nothing can
    /// begin inside them any more, or by [`finish`](Self::finish). Spans
    /// out of begin order are still shown right (each track's events stay
    /// in time order), on more tracks.
    ///
    /// `async_span_end` does not apply to it; its id is free again once a
    /// span beginning at or after its end reuses it.
    ///
    /// # Errors
    /// As [`async_span_begin_with`](Self::async_span_begin_with),
    /// [`EndBeforeBegin`](crate::Error::EndBeforeBegin) and
    /// [`ParentNotOpen`](crate::Error::ParentNotOpen).
    #[allow(clippy::too_many_arguments)]
    fn async_complete_span(
        &mut self,
        lane: AsyncLane,
        span_id: u64,
        begin: u64,
        end: u64,
        parent: Option<AsyncParent>,
        event: &Event<'_>,
    ) -> Result<()> {
        self.make_room()?;
        self.core_mut()
            .async_complete_span(lane, span_id, parent, begin, end, event)
    }

    /// [`async_span_end`](Self::async_span_end) with arguments on the end
    /// event; the trace processor adds them to the slice's (for instance
    /// what the span returned, or that it was cut).
    ///
    /// # Errors
    /// As [`async_span_end`](Self::async_span_end), and
    /// [`StringTooLong`](crate::Error::StringTooLong),
    /// [`ArgsTooDeep`](crate::Error::ArgsTooDeep).
    fn async_span_end_with(
        &mut self,
        lane: AsyncLane,
        span_id: u64,
        ts: u64,
        args: &[Arg<'_>],
    ) -> Result<()> {
        self.make_room()?;
        let end = Event::new("").args(args);
        self.core_mut().async_span_end_with(lane, span_id, ts, &end)
    }

    /// An instant event on a process, thread, lane or named track. On a
    /// thread or a named track it nests under the spans open there and
    /// follows the thread's ordering rules. Instants at the same time on one track stack (see
    /// "Timestamps and nesting" above): the second shows one level below the
    /// first.
    ///
    /// # Errors
    /// [`ForeignHandle`](crate::Error::ForeignHandle),
    /// [`TimestampOutOfRange`](crate::Error::TimestampOutOfRange),
    /// [`StringTooLong`](crate::Error::StringTooLong),
    /// [`ArgsTooDeep`](crate::Error::ArgsTooDeep); on a thread or a named
    /// track also
    /// [`TimestampBackwards`](crate::Error::TimestampBackwards),
    /// [`NotNested`](crate::Error::NotNested), [`TooDeep`](crate::Error::TooDeep);
    /// elsewhere [`LogOffThread`](crate::Error::LogOffThread) for an event
    /// with a log line (but on a named track under a thread, where the line
    /// is the thread's).
    fn instant(&mut self, track: impl Into<InstantTrack>, ts: u64, event: &Event<'_>) -> Result<()>
    where
        Self: Sized,
    {
        self.make_room()?;
        self.core_mut().instant(track.into(), ts, event)
    }

    /// A track of the caller's own under the root, a process or a thread,
    /// for instants and spans ([`track_span_begin`](Self::track_span_begin)
    /// and the calls after it), which nest there by a thread's rules (time
    /// order included). The same parent and name give the same track; the
    /// options say how the UI orders and merges it.
    ///
    /// # Errors
    /// [`ForeignHandle`](crate::Error::ForeignHandle),
    /// [`StringTooLong`](crate::Error::StringTooLong),
    /// [`Redefined`](crate::Error::Redefined) (same parent and name, other options).
    fn track(
        &mut self,
        parent: impl Into<ParentTrack>,
        name: &str,
        options: &TrackOptions<'_>,
    ) -> Result<NamedTrack>
    where
        Self: Sized,
    {
        self.make_room()?;
        self.core_mut().track(parent.into(), name, options)
    }

    /// Begins a span on a named track (one of [`track`](Self::track)'s),
    /// for work that belongs to no thread, or to a lane of its own beside
    /// one; [`track_span_end`](Self::track_span_end) ends it. Spans,
    /// complete spans and instants on a named track nest by the rules of a
    /// thread's (see "Timestamps and nesting" above), with the same errors;
    /// spans left open are reported by [`open_spans`](Self::open_spans)
    /// and [`finish`](Self::finish), and ended by
    /// [`close_open_spans`](Self::close_open_spans), like a thread's.
    ///
    /// ```
    /// use perfetto_trace_writer::{Event, ParentTrack, TraceWriter, TrackOptions, Writer};
    /// let mut w = Writer::new();
    /// let gpu = w.track(ParentTrack::Root, "gpu queue", &TrackOptions::default())?;
    /// w.track_span_begin(gpu, 10, &Event::new("frame"))?;
    /// w.track_complete_span(gpu, 20, 30, &Event::new("draw"))?;
    /// w.track_span_end(gpu, 50)?;
    /// w.finish()?;
    /// let trace = perfetto_trace_writer::inspect::decode(w.bytes()).unwrap();
    /// let slices: Vec<_> = trace.slices.iter().map(|s| (s.name.as_str(), s.depth, s.dur)).collect();
    /// assert_eq!(slices, [("frame", 0, Some(40)), ("draw", 1, Some(10))]);
    /// assert!(trace.slices.iter().all(|s| s.track == gpu.uuid().get()));
    /// # Ok::<(), perfetto_trace_writer::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ForeignHandle`](crate::Error::ForeignHandle),
    /// [`TimestampOutOfRange`](crate::Error::TimestampOutOfRange),
    /// [`TimestampBackwards`](crate::Error::TimestampBackwards),
    /// [`NotNested`](crate::Error::NotNested) (beginning after the end of an
    /// enclosing complete span), [`TooDeep`](crate::Error::TooDeep),
    /// [`StringTooLong`](crate::Error::StringTooLong),
    /// [`ArgsTooDeep`](crate::Error::ArgsTooDeep),
    /// [`CallstackTooDeep`](crate::Error::CallstackTooDeep), the errors of
    /// the counter values it carries (see [`Event::counters`]), and
    /// [`LogOffThread`](crate::Error::LogOffThread) for a log line on a
    /// track under no thread.
    fn track_span_begin(&mut self, track: NamedTrack, ts: u64, event: &Event<'_>) -> Result<()> {
        self.make_room()?;
        self.core_mut().track_span_begin(track, ts, None, event)
    }

    /// Ends the innermost span begun with
    /// [`track_span_begin`](Self::track_span_begin) on a named track.
    ///
    /// # Errors
    /// [`ForeignHandle`](crate::Error::ForeignHandle),
    /// [`TimestampOutOfRange`](crate::Error::TimestampOutOfRange),
    /// [`NoOpenSpan`](crate::Error::NoOpenSpan),
    /// [`EndBeforeBegin`](crate::Error::EndBeforeBegin),
    /// [`TimestampBackwards`](crate::Error::TimestampBackwards),
    /// [`NotNested`](crate::Error::NotNested) (a complete span inside it, or
    /// one enclosing it, would be crossed).
    fn track_span_end(&mut self, track: NamedTrack, ts: u64) -> Result<()> {
        self.make_room()?;
        self.core_mut().track_span_end(track, ts, &[])
    }

    /// [`track_span_end`](Self::track_span_end) with counter values on the
    /// end event, as [`span_end_with_counters`](Self::span_end_with_counters).
    ///
    /// # Errors
    /// As [`track_span_end`](Self::track_span_end), and those of the counter
    /// values (see [`Event::counters`]).
    fn track_span_end_with_counters(
        &mut self,
        track: NamedTrack,
        ts: u64,
        counters: &[(CounterTrack, CounterSample)],
    ) -> Result<()> {
        self.make_room()?;
        self.core_mut().track_span_end(track, ts, counters)
    }

    /// A span on a named track whose begin and end are both known, as
    /// [`complete_span_with`](Self::complete_span_with) on a thread: its end
    /// event is written once a later call on the track passes it, or by
    /// [`finish`](Self::finish).
    ///
    /// # Errors
    /// As [`track_span_begin`](Self::track_span_begin), and
    /// [`EndBeforeBegin`](crate::Error::EndBeforeBegin).
    fn track_complete_span(
        &mut self,
        track: NamedTrack,
        begin: u64,
        end: u64,
        event: &Event<'_>,
    ) -> Result<()> {
        self.make_room()?;
        self.core_mut()
            .track_span_begin(track, begin, Some(end), event)
    }

    /// A complete span at an explicit `depth` on a named track, as
    /// [`complete_span_at_depth`](Self::complete_span_at_depth) on a thread.
    ///
    /// # Errors
    /// As [`track_complete_span`](Self::track_complete_span), and
    /// [`DepthOutOfRange`](crate::Error::DepthOutOfRange).
    fn track_complete_span_at_depth(
        &mut self,
        track: NamedTrack,
        depth: usize,
        begin: u64,
        end: u64,
        event: &Event<'_>,
    ) -> Result<()> {
        self.make_room()?;
        self.core_mut()
            .track_complete_span_at_depth(track, depth, begin, end, event)
    }

    /// A counter track under the root, a process or a thread. Its
    /// descriptor is written now, before any value (the trace processor
    /// reads counters in file order). The same parent and name give the same
    /// track, in every writer of a trace.
    ///
    /// # Errors
    /// As [`track`](Self::track), and
    /// [`SharedIncrementalCounter`](crate::Error::SharedIncrementalCounter)
    /// for an incremental counter in a writer that shares its trace with
    /// others: the reader sums increments per sequence, so several writers'
    /// increments of one counter could never add up.
    fn counter_track(
        &mut self,
        parent: impl Into<ParentTrack>,
        name: &str,
        options: &CounterOptions<'_>,
    ) -> Result<CounterTrack>
    where
        Self: Sized,
    {
        self.make_room()?;
        self.core_mut().counter_track(parent.into(), name, options)
    }

    /// A counter value (`i64` or `f64`) at `ts`. Values of an incremental
    /// counter are added up in call order, and the trace shows that running
    /// total whatever happens to interning: where a new generation of
    /// incremental state ([`Options::intern_limit`](crate::Options::intern_limit))
    /// restarts the reader's sum, the writer writes the total so far in
    /// place of the increment.
    ///
    /// # Errors
    /// [`ForeignHandle`](crate::Error::ForeignHandle),
    /// [`TimestampOutOfRange`](crate::Error::TimestampOutOfRange).
    fn counter(
        &mut self,
        track: CounterTrack,
        ts: u64,
        value: impl Into<CounterSample>,
    ) -> Result<()>
    where
        Self: Sized,
    {
        self.make_room()?;
        self.core_mut().counter(track, ts, value.into())
    }

    /// Orders the UI's top-level process tracks by their
    /// [`ProcessOptions::sibling_rank`] (`processes`), and each process's
    /// threads by their [`ThreadOptions::sibling_rank`] (`threads`), lower
    /// ranks first, no rank being 0 (the root descriptor's
    /// `process_ordering`, `thread_ordering`). Call it once, before the
    /// events.
    ///
    /// ```
    /// use perfetto_trace_writer::{ProcessOptions, TraceWriter, Writer};
    /// let mut w = Writer::new();
    /// w.order_explicitly(true, false)?;
    /// let first = ProcessOptions { sibling_rank: Some(-1), ..Default::default() };
    /// let p = w.process_with("db", Some(7), "database", &[], &first)?;
    /// # Ok::<(), perfetto_trace_writer::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Redefined`](crate::Error::Redefined) if called before with other
    /// arguments.
    fn order_explicitly(&mut self, processes: bool, threads: bool) -> Result<()> {
        self.make_room()?;
        self.core_mut().order_explicitly(processes, threads)
    }

    /// Readings of the machine's clocks taken at one instant, BOOTTIME (the
    /// trace's clock) among them: with REALTIME, the UI shows the trace's
    /// times as dates; with MONOTONIC, the trace lines up with other
    /// captures of the machine. Take one when the trace starts (and more on
    /// a long trace, if the clocks drift apart).
    ///
    /// ```
    /// use perfetto_trace_writer::{Clock, TraceWriter, Writer};
    /// let mut w = Writer::new();
    /// // 2026-01-01T00:00:00Z was 1_767_225_600 s after the epoch.
    /// let epoch_ns = 1_767_225_600_000_000_000;
    /// w.clock_snapshot(&[(Clock::Boottime, 5_000), (Clock::Realtime, epoch_ns), (Clock::Monotonic, 4_000)])?;
    /// let trace = perfetto_trace_writer::inspect::decode(w.bytes()).unwrap();
    /// assert_eq!(trace.realtime(5_100), Some(epoch_ns + 100));
    /// # Ok::<(), perfetto_trace_writer::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`TimestampOutOfRange`](crate::Error::TimestampOutOfRange) for a
    /// reading above `i64::MAX`; [`BadClockSnapshot`](crate::Error::BadClockSnapshot)
    /// without a BOOTTIME reading or with two readings of a clock.
    fn clock_snapshot(&mut self, readings: &[(Clock, u64)]) -> Result<()> {
        self.make_room()?;
        self.core_mut().clock_snapshot(readings)
    }

    /// Registers a call site (a span or instant's name, category and
    /// source location) and returns its key, which begins, complete spans
    /// and instants take in place of the three strings
    /// ([`span_begin_key`](Self::span_begin_key),
    /// [`complete_span_key`](Self::complete_span_key),
    /// [`async_span_begin_key`](Self::async_span_begin_key),
    /// [`instant_key`](Self::instant_key), and every `_with` call through
    /// [`Event::from_key`]). The trace is byte for byte the one the strings
    /// give; the writer skips looking them up, which is most of what a
    /// begin costs beyond writing it. Register each site once, when first
    /// seen (a `tracing` callsite, a function name in a database export):
    /// registering one again returns its key. Writes nothing.
    ///
    /// A key stays valid for the writer's life, whatever happens to its
    /// interning tables ([`Options::intern_limit`](crate::Options::intern_limit))
    /// or its sequences (compact mode).
    ///
    /// ```
    /// use perfetto_trace_writer::{TraceWriter, Writer};
    /// let mut w = Writer::new();
    /// let p = w.process("svc", Some(7), "service", &[])?;
    /// let t = w.thread(p, "main", Some(7), "main")?;
    /// let (file, line) = (file!(), line!());
    /// let parse = w.event_key("parse", "sql", file, line)?;
    /// for i in 0..3 {
    ///     w.span_begin_key(t, 100 * i, parse)?;
    ///     w.span_end(t, 100 * i + 50)?;
    /// }
    /// // The same bytes as the strings give.
    /// let mut s = Writer::new();
    /// let p = s.process("svc", Some(7), "service", &[])?;
    /// let t = s.thread(p, "main", Some(7), "main")?;
    /// for i in 0..3 {
    ///     s.span_begin(t, 100 * i, "parse", "sql", file, line)?;
    ///     s.span_end(t, 100 * i + 50)?;
    /// }
    /// assert_eq!(w.bytes(), s.bytes());
    /// # Ok::<(), perfetto_trace_writer::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`StringTooLong`](crate::Error::StringTooLong),
    /// [`TooManyKeys`](crate::Error::TooManyKeys).
    fn event_key(&mut self, name: &str, category: &str, file: &str, line: u32) -> Result<EventKey> {
        self.core_mut().event_key(name, category, file, line)
    }

    /// [`event_key`](Self::event_key) of a call site whose events carry
    /// arguments named `arg_names`, in this order (a `tracing` callsite's
    /// fields, say): the writer then keeps their iids too, and an instant
    /// or begin of the key ([`Event::from_key`] with arguments, on
    /// [`instant_on`](Self::instant_on), [`begin_on`](Self::begin_on) or
    /// any `_with` call) whose arguments are named by these very strings
    /// (the same `&'static str`s, known by their address) writes without
    /// looking any string up. The trace is byte for byte the one the
    /// strings give. Arguments named otherwise (other names, fewer, more,
    /// or equal text elsewhere in memory) are written by their names, as
    /// for a key without names. The same site with other argument names is
    /// another key; registering one again returns its key. Writes nothing.
    ///
    /// ```
    /// use perfetto_trace_writer::{Arg, Event, TraceWriter, TrackUuid, Value, Writer};
    /// let (rows, table) = ("rows", "table");
    /// let mut w = Writer::new();
    /// let p = w.process("svc", Some(7), "service", &[])?;
    /// let t = w.thread(p, "main", Some(7), "main")?;
    /// let done = w.event_key_with_args("query done", "info,db", file!(), line!(), &[rows, table])?;
    /// for i in 0..3 {
    ///     let args = [Arg::new(rows, Value::Uint(i)), Arg::new(table, Value::Str("users"))];
    ///     w.instant_on(t.uuid(), 100 * i, &Event::from_key(done).args(&args))?;
    /// }
    /// let trace = perfetto_trace_writer::inspect::decode(w.bytes()).unwrap();
    /// assert!(trace.slices.iter().all(|s| s.name == "query done"));
    /// # Ok::<(), perfetto_trace_writer::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`StringTooLong`](crate::Error::StringTooLong) (of any of the
    /// strings or names), [`TooManyKeys`](crate::Error::TooManyKeys) (past
    /// `u32::MAX` keys, or argument names of all keys together).
    fn event_key_with_args(
        &mut self,
        name: &str,
        category: &str,
        file: &str,
        line: u32,
        arg_names: &[&'static str],
    ) -> Result<EventKey> {
        self.core_mut()
            .event_key_with_args(name, category, file, line, arg_names)
    }

    /// [`span_begin`](Self::span_begin) of a registered call site
    /// ([`event_key`](Self::event_key)).
    ///
    /// # Errors
    /// As [`span_begin`](Self::span_begin), and
    /// [`ForeignKey`](crate::Error::ForeignKey).
    #[inline]
    fn span_begin_key(&mut self, thread: ThreadTrack, ts: u64, key: EventKey) -> Result<()> {
        self.make_room()?;
        self.core_mut()
            .span_begin(thread, ts, &Event::from_key(key))
    }

    /// [`complete_span`](Self::complete_span) of a registered call site
    /// ([`event_key`](Self::event_key)).
    ///
    /// # Errors
    /// As [`complete_span`](Self::complete_span), and
    /// [`ForeignKey`](crate::Error::ForeignKey).
    fn complete_span_key(
        &mut self,
        thread: ThreadTrack,
        begin: u64,
        end: u64,
        key: EventKey,
    ) -> Result<()> {
        self.make_room()?;
        self.core_mut()
            .complete_span(thread, begin, end, &Event::from_key(key))
    }

    /// [`async_span_begin`](Self::async_span_begin) of a registered call
    /// site ([`event_key`](Self::event_key)).
    ///
    /// ```
    /// use perfetto_trace_writer::{TraceWriter, Writer};
    /// let mut w = Writer::new();
    /// let p = w.process("svc", Some(7), "service", &[])?;
    /// let io = w.async_lane(p, "io")?;
    /// let read = w.event_key("read", "io", "", 0)?;
    /// w.async_span_begin_key(io, 1, 10, read)?;
    /// w.async_span_begin_key(io, 2, 15, read)?;
    /// w.async_span_end(io, 1, 20)?;
    /// w.async_span_end(io, 2, 30)?;
    /// let trace = perfetto_trace_writer::inspect::decode(w.bytes()).unwrap();
    /// assert!(trace.slices.iter().all(|s| s.name == "read"));
    /// # Ok::<(), perfetto_trace_writer::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`async_span_begin`](Self::async_span_begin), and
    /// [`ForeignKey`](crate::Error::ForeignKey).
    #[inline]
    fn async_span_begin_key(
        &mut self,
        lane: AsyncLane,
        span_id: u64,
        ts: u64,
        key: EventKey,
    ) -> Result<()> {
        self.make_room()?;
        self.core_mut()
            .async_span_begin(lane, span_id, ts, &Event::from_key(key))
    }

    /// [`instant`](Self::instant) of a registered call site
    /// ([`event_key`](Self::event_key)).
    ///
    /// # Errors
    /// As [`instant`](Self::instant), and
    /// [`ForeignKey`](crate::Error::ForeignKey).
    fn instant_key(&mut self, track: impl Into<InstantTrack>, ts: u64, key: EventKey) -> Result<()>
    where
        Self: Sized,
    {
        self.make_room()?;
        self.core_mut()
            .instant(track.into(), ts, &Event::from_key(key))
    }

    /// Event keys registered so far ([`event_key`](Self::event_key)).
    fn key_count(&self) -> usize {
        self.core().key_count()
    }

    /// Describes the track [`TrackUuid::keyed(parent, key)`](TrackUuid::keyed)
    /// under `parent` (a process, thread, named or keyed track's uuid, or
    /// [`TrackUuid::ROOT`]) and returns its uuid. Unlike the other tracks, a
    /// keyed track belongs to no writer: any writer may describe it (the same
    /// parent, key and name describe the same track) and put events on it
    /// with [`begin_on`](Self::begin_on), [`end_on`](Self::end_on) and
    /// [`instant_on`](Self::instant_on), so that writers of one trace (one
    /// per thread, say) share it. For work that begins on one thread and ends
    /// on another, such as a `tracing` span polled on several threads.
    ///
    /// # Errors
    /// [`StringTooLong`](crate::Error::StringTooLong).
    fn keyed_track(
        &mut self,
        parent: TrackUuid,
        key: u64,
        name: &str,
        options: &TrackOptions<'_>,
    ) -> Result<TrackUuid> {
        self.make_room()?;
        self.core_mut().keyed_track(parent, key, name, options)
    }

    /// Registers the name and options of keyed tracks described one after
    /// another (a `tracing` span callsite's tracks, one per span): a
    /// template whose [`keyed_track_from`](Self::keyed_track_from) writes
    /// what [`keyed_track`](Self::keyed_track) would with the same name and
    /// options, byte for byte, without encoding them again. Writes nothing;
    /// the same name and options give the same template again.
    ///
    /// ```
    /// use perfetto_trace_writer::{SiblingMerge, TraceWriter, TrackOptions, TrackUuid, Writer};
    /// let options = TrackOptions { merge: Some(SiblingMerge::None), ..Default::default() };
    /// let mut w = Writer::new();
    /// let request = w.track_template("request", &options)?;
    /// let mut s = Writer::new();
    /// for key in 1..=3 {
    ///     let track = w.keyed_track_from(request, TrackUuid::ROOT, key)?;
    ///     assert_eq!(track, s.keyed_track(TrackUuid::ROOT, key, "request", &options)?);
    /// }
    /// assert_eq!(w.bytes(), s.bytes());
    /// # Ok::<(), perfetto_trace_writer::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`StringTooLong`](crate::Error::StringTooLong),
    /// [`TooManyTemplates`](crate::Error::TooManyTemplates).
    fn track_template(&mut self, name: &str, options: &TrackOptions<'_>) -> Result<TrackTemplate> {
        self.core_mut().track_template(name, options)
    }

    /// [`keyed_track`](Self::keyed_track) with the name and options of
    /// `template` ([`track_template`](Self::track_template)): the same
    /// bytes, the same uuid.
    ///
    /// # Errors
    /// [`ForeignTemplate`](crate::Error::ForeignTemplate) for a template of
    /// another writer.
    #[inline]
    fn keyed_track_from(
        &mut self,
        template: TrackTemplate,
        parent: TrackUuid,
        key: u64,
    ) -> Result<TrackUuid> {
        self.make_room()?;
        self.core_mut().keyed_track_from(template, parent, key)
    }

    /// Begins a slice on a track named by its uuid (a keyed track's,
    /// usually). Nothing checks nesting there: slices on the track must nest
    /// like a stack once sorted by time, which a track per piece of work
    /// (one slice, or slices nested inside it) keeps by construction.
    ///
    /// # Errors
    /// [`TimestampOutOfRange`](crate::Error::TimestampOutOfRange),
    /// [`StringTooLong`](crate::Error::StringTooLong),
    /// [`ArgsTooDeep`](crate::Error::ArgsTooDeep).
    fn begin_on(&mut self, track: TrackUuid, ts: u64, event: &Event<'_>) -> Result<()> {
        self.make_room()?;
        self.core_mut()
            .event_on(track, ts, EventType::SliceBegin, Some(event))
    }

    /// Ends the innermost slice open on a track named by its uuid, whichever
    /// writer began it (see [`begin_on`](Self::begin_on)).
    ///
    /// # Errors
    /// [`TimestampOutOfRange`](crate::Error::TimestampOutOfRange).
    fn end_on(&mut self, track: TrackUuid, ts: u64) -> Result<()> {
        self.make_room()?;
        self.core_mut().end_on(track, ts)
    }

    /// An instant event on a track named by its uuid.
    ///
    /// # Errors
    /// As [`begin_on`](Self::begin_on).
    fn instant_on(&mut self, track: TrackUuid, ts: u64, event: &Event<'_>) -> Result<()> {
        self.make_room()?;
        self.core_mut()
            .event_on(track, ts, EventType::Instant, Some(event))
    }

    /// [`instant_on`](Self::instant_on) of
    /// `Event::from_key(key).args(args)`: the same bytes and errors, without
    /// an [`Event`] to build and read. With a key of
    /// [`event_key_with_args`](Self::event_key_with_args) whose names `args`
    /// carry, the cheapest event the writer writes.
    ///
    /// ```
    /// use perfetto_trace_writer::{Arg, TraceWriter, Value, Writer};
    /// let mut w = Writer::new();
    /// let p = w.process("svc", Some(7), "service", &[])?;
    /// let t = w.thread(p, "main", Some(7), "main")?;
    /// let rows = "rows";
    /// let done = w.event_key_with_args("query done", "db", file!(), line!(), &[rows])?;
    /// for i in 0..3 {
    ///     w.instant_on_key(t.uuid(), 100 * i, done, &[Arg::new(rows, Value::Uint(i))])?;
    /// }
    /// let trace = perfetto_trace_writer::inspect::decode(w.bytes()).unwrap();
    /// assert_eq!(trace.slices.len(), 3);
    /// # Ok::<(), perfetto_trace_writer::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`instant_on`](Self::instant_on), and
    /// [`ForeignKey`](crate::Error::ForeignKey).
    #[inline]
    fn instant_on_key(
        &mut self,
        track: TrackUuid,
        ts: u64,
        key: EventKey,
        args: &[Arg<'_>],
    ) -> Result<()> {
        self.make_room()?;
        self.core_mut()
            .event_on_key(track, ts, EventType::Instant, key, args)
    }

    /// [`begin_on`](Self::begin_on) of `Event::from_key(key).args(args)`, as
    /// [`instant_on_key`](Self::instant_on_key) is of an instant.
    ///
    /// # Errors
    /// As [`begin_on`](Self::begin_on), and
    /// [`ForeignKey`](crate::Error::ForeignKey).
    #[inline]
    fn begin_on_key(
        &mut self,
        track: TrackUuid,
        ts: u64,
        key: EventKey,
        args: &[Arg<'_>],
    ) -> Result<()> {
        self.make_room()?;
        self.core_mut()
            .event_on_key(track, ts, EventType::SliceBegin, key, args)
    }

    /// [`span_begin_with`](Self::span_begin_with) of
    /// `Event::from_key(key).args(args)`: the same bytes and errors,
    /// without an [`Event`] to build and read. With a key of
    /// [`event_key_with_args`](Self::event_key_with_args) whose names
    /// `args` carry, as cheap as [`begin_on_key`](Self::begin_on_key), and
    /// the span is the thread's, ended by [`span_end`](Self::span_end).
    ///
    /// ```
    /// use perfetto_trace_writer::{Arg, TraceWriter, Value, Writer};
    /// let mut w = Writer::new();
    /// let p = w.process("svc", Some(7), "service", &[])?;
    /// let t = w.thread(p, "main", Some(7), "main")?;
    /// let rows = "rows";
    /// let query = w.event_key_with_args("query", "db", file!(), line!(), &[rows])?;
    /// for i in 0..3 {
    ///     w.span_begin_key_args(t, 100 * i, query, &[Arg::new(rows, Value::Uint(i))])?;
    ///     w.span_end(t, 100 * i + 50)?;
    /// }
    /// let trace = perfetto_trace_writer::inspect::decode(w.bytes()).unwrap();
    /// assert_eq!(trace.slices.len(), 3);
    /// # Ok::<(), perfetto_trace_writer::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`span_begin_with`](Self::span_begin_with), and
    /// [`ForeignKey`](crate::Error::ForeignKey).
    #[inline]
    fn span_begin_key_args(
        &mut self,
        thread: ThreadTrack,
        ts: u64,
        key: EventKey,
        args: &[Arg<'_>],
    ) -> Result<()> {
        self.make_room()?;
        self.core_mut().span_begin_key_args(thread, ts, key, args)
    }

    /// [`instant_on`](Self::instant_on) of
    /// `Event::from_key_named(key, name).args(args)`: the key's category,
    /// source location and argument names (as for
    /// [`instant_on_key`](Self::instant_on_key), nothing looked up), and
    /// `name` written in the event, not interned ([`Event::inline_name`]).
    /// For a call site whose events' names vary, such as a log message
    /// with values in it: each name costs its bytes in its event, and
    /// nothing in the writer's tables. The same bytes as
    /// `Event::new(name)` with the key's category and location,
    /// [`inline_name`](Event::inline_name) and `args`.
    ///
    /// ```
    /// use perfetto_trace_writer::{Arg, TraceWriter, Value, Writer};
    /// let mut w = Writer::new();
    /// let p = w.process("svc", Some(7), "service", &[])?;
    /// let t = w.thread(p, "main", Some(7), "main")?;
    /// let table = "table";
    /// let loaded = w.event_key_with_args("loaded", "info", file!(), line!(), &[table])?;
    /// for rows in 1..4 {
    ///     let name = format!("loaded {rows} rows");
    ///     let args = [Arg::new(table, Value::Str("users"))];
    ///     w.instant_on_key_named(t.uuid(), 100 * rows, loaded, &name, &args)?;
    /// }
    /// let trace = perfetto_trace_writer::inspect::decode(w.bytes()).unwrap();
    /// assert_eq!(trace.slices[2].name, "loaded 3 rows");
    /// assert_eq!(trace.slices[2].categories, ["info"]);
    /// // The category, the location and the argument's name: no event name.
    /// assert_eq!(w.interned_count(), 3);
    /// # Ok::<(), perfetto_trace_writer::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`instant_on_key`](Self::instant_on_key) (`name` too long:
    /// [`StringTooLong`](crate::Error::StringTooLong)).
    #[inline]
    fn instant_on_key_named(
        &mut self,
        track: TrackUuid,
        ts: u64,
        key: EventKey,
        name: &str,
        args: &[Arg<'_>],
    ) -> Result<()> {
        self.make_room()?;
        self.core_mut()
            .event_on_key_named(track, ts, EventType::Instant, key, name, args)
    }

    /// [`begin_on_key`](Self::begin_on_key) of a slice named `name`
    /// inline, as [`instant_on_key_named`](Self::instant_on_key_named) is
    /// of an instant.
    ///
    /// # Errors
    /// As [`begin_on_key`](Self::begin_on_key) (`name` too long:
    /// [`StringTooLong`](crate::Error::StringTooLong)).
    #[inline]
    fn begin_on_key_named(
        &mut self,
        track: TrackUuid,
        ts: u64,
        key: EventKey,
        name: &str,
        args: &[Arg<'_>],
    ) -> Result<()> {
        self.make_room()?;
        self.core_mut()
            .event_on_key_named(track, ts, EventType::SliceBegin, key, name, args)
    }

    /// The spans begun and not yet ended.
    fn open_spans(&self) -> Vec<OpenSpan> {
        self.core().open_spans()
    }

    /// Ends every open span at `ts`, writes every pending end of a complete
    /// span, and returns how many spans it ended. All or nothing.
    ///
    /// # Errors
    /// [`TimestampOutOfRange`](crate::Error::TimestampOutOfRange), and
    /// [`EndBeforeBegin`](crate::Error::EndBeforeBegin),
    /// [`TimestampBackwards`](crate::Error::TimestampBackwards) or
    /// [`NotNested`](crate::Error::NotNested) if `ts` cannot end one of them.
    /// The error is the first track's that cannot: threads, then named
    /// tracks, each in the order they were described, then async spans.
    fn close_open_spans(&mut self, ts: u64) -> Result<usize> {
        self.make_room()?;
        self.core_mut().close_open_spans(ts)
    }

    /// Hands every buffered byte to the sink and flushes it. Ends of complete
    /// spans that may still enclose later spans stay pending.
    ///
    /// # Errors
    /// [`Io`](crate::Error::Io).
    fn flush(&mut self) -> Result<()> {
        self.flush_all()
    }

    /// Writes the pending ends of complete spans, flushes, and returns the
    /// spans still open, which the caller may end (for instance with
    /// [`close_open_spans`](Self::close_open_spans)) and finish again.
    ///
    /// # Errors
    /// [`Io`](crate::Error::Io).
    fn finish(&mut self) -> Result<Vec<OpenSpan>> {
        self.make_room()?;
        let open = self.core_mut().finish();
        self.flush_all()?;
        Ok(open)
    }

    /// Packets written so far.
    fn packet_count(&self) -> u64 {
        self.core().packets()
    }

    /// Packet sequences used so far: one in default mode; in compact mode,
    /// one more per busy track.
    fn sequence_count(&self) -> usize {
        self.core().sequences()
    }

    /// Generations of incremental state: 1, plus one each time the
    /// interning tables reached their cap ([`Options::intern_limit`](crate::Options::intern_limit)).
    fn interning_generations(&self) -> u64 {
        self.core().generations()
    }

    /// Distinct strings and source locations interned so far (in the
    /// current generation).
    fn interned_count(&self) -> usize {
        self.core().interned()
    }
}
