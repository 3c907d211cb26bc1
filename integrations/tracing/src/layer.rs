//! The `tracing_subscriber::Layer`: what each callback writes where.

use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use perfetto_trace_writer::{Arg, Event, SiblingMerge, TraceWriter, TrackOptions, TrackUuid};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::callsites::event;
use crate::identity::ProcessInfo;
use crate::messages::{Keyed, Name};
use crate::output::{Output, Overflow};
use crate::spans::{Entering, FlowsIn, SpanInfo, SpanTable};
use crate::thread::{
    begin_slice_key_args, begin_slice_with, inside_layer, with_state, Entered, Pending, ThreadState,
};

/// Where spans are shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum View {
    /// Each time a span is entered, a slice on the thread that entered it,
    /// nested under the spans entered there; the span's fields on its first
    /// one.
    Threads,
    /// Each span's lifetime (creation to close) as one slice on a track of
    /// its own, beneath its parent span's track or, for a root span, the
    /// thread that created it. Overlapping async spans never mis-nest.
    /// [`Builder::reuse_span_tracks`] lets spans one after another share a
    /// track.
    SpanTracks,
    /// Both: where a span lived, and when and on which thread it ran. The
    /// default.
    #[default]
    Both,
}

impl View {
    fn threads(self) -> bool {
        self != View::SpanTracks
    }

    fn span_tracks(self) -> bool {
        self != View::Threads
    }
}

/// Settings of a [`PerfettoLayer`], made with [`PerfettoLayer::builder`].
#[derive(Clone, Debug)]
pub struct Builder {
    pub(crate) view: View,
    pub(crate) overflow: Overflow,
    pub(crate) chunk_size: usize,
    pub(crate) queue_chunks: usize,
    pub(crate) flush_interval: Option<Duration>,
    pub(crate) max_live_spans: usize,
    pub(crate) intern_entries: usize,
    pub(crate) intern_bytes: usize,
    pub(crate) reuse_span_tracks: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            view: View::Both,
            overflow: Overflow::Block,
            chunk_size: 64 * 1024,
            queue_chunks: 64,
            flush_interval: Some(Duration::from_millis(500)),
            max_live_spans: 1 << 16,
            intern_entries: 1 << 14,
            intern_bytes: 1 << 20,
            reuse_span_tracks: false,
        }
    }
}

impl Builder {
    /// Where spans are shown (default [`View::Both`]).
    pub fn view(mut self, view: View) -> Self {
        self.view = view;
        self
    }

    /// What a thread does when the writer thread is behind (default
    /// [`Overflow::Block`]).
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// The size of the chunks each thread hands to the writer thread
    /// (default 64 KiB): also what a thread buffers at most, and the most a
    /// killed program loses per thread beyond the flush interval.
    pub fn chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes.max(1);
        self
    }

    /// How many chunks may wait for the writer thread (default 64). Memory
    /// stays within this many chunks, plus two per thread (its buffer and
    /// the one its next chunk is copied into), plus the interning tables of
    /// each thread (see [`Builder::intern_limit`]).
    pub fn queue_chunks(mut self, chunks: usize) -> Self {
        self.queue_chunks = chunks.max(1);
        self
    }

    /// How often the writer thread collects what threads have buffered but
    /// not filled into a chunk (default every 500 ms; `None`: only when a
    /// chunk fills, on [`FlushGuard::flush`] and at the end).
    pub fn flush_interval(mut self, interval: Option<Duration>) -> Self {
        self.flush_interval = interval;
        self
    }

    /// About how many spans may be alive at once (default 65,536): the
    /// size of the table that keeps what the layer knows of each. A span
    /// that finds no room there still shows as thread slices, but not on a
    /// track of its own.
    pub fn max_live_spans(mut self, spans: usize) -> Self {
        self.max_live_spans = spans.max(1);
        self
    }

    /// Caps each thread's interning tables (default 16,384 strings or
    /// 1 MiB): past it the thread's sequence starts a new generation of
    /// incremental state, so messages that are all different keep memory
    /// flat.
    pub fn intern_limit(mut self, entries: usize, bytes: usize) -> Self {
        self.intern_entries = entries.max(1);
        self.intern_bytes = bytes.max(1);
        self
    }

    /// Whether a span's track, once the span closed on the thread that
    /// made it, serves the next span of its callsite made there beneath the
    /// same track (default off: every span a track of its own). On, spans
    /// one after another share a track, each alone on it while it lives,
    /// and a program makes as many span tracks as it had spans alive at
    /// once: for services whose millions of requests would otherwise each
    /// add a track to the UI. tracing closes a span only after its children
    /// (each holds its parent), so nothing beneath a track given to the next
    /// span is still to come.
    pub fn reuse_span_tracks(mut self, reuse: bool) -> Self {
        self.reuse_span_tracks = reuse;
        self
    }

    /// A layer writing to `sink` through a writer thread, and the guard
    /// that flushes it.
    ///
    /// # Errors
    /// The writer thread could not be started.
    pub fn build<W: Write + Send + 'static>(
        self,
        sink: W,
    ) -> io::Result<(PerfettoLayer, FlushGuard)> {
        let (output, handle) =
            Output::start(sink, self.queue_chunks, self.overflow, self.flush_interval)?;
        static LAYERS: AtomicU64 = AtomicU64::new(1);
        let inner = Arc::new(Inner {
            id: LAYERS.fetch_add(1, Ordering::Relaxed),
            enabled: AtomicBool::new(true),
            spans: SpanTable::new(self.max_live_spans),
            process: ProcessInfo::current(),
            output,
            threads: AtomicU32::new(0),
            sequences: AtomicU32::new(0),
            config: self,
        });
        let guard = FlushGuard {
            inner: Arc::clone(&inner),
            handle: Mutex::new(Some(handle)),
        };
        Ok((PerfettoLayer { inner }, guard))
    }

    /// A layer writing to a new file at `path`.
    ///
    /// # Errors
    /// The file could not be created, or the writer thread started.
    pub fn build_file(self, path: impl AsRef<Path>) -> io::Result<(PerfettoLayer, FlushGuard)> {
        self.build(std::fs::File::create(path)?)
    }
}

pub(crate) struct Inner {
    pub(crate) id: u64,
    enabled: AtomicBool,
    pub(crate) spans: SpanTable,
    pub(crate) process: ProcessInfo,
    pub(crate) output: Arc<Output>,
    pub(crate) threads: AtomicU32,
    pub(crate) sequences: AtomicU32,
    pub(crate) config: Builder,
}

/// A `tracing_subscriber::Layer` that writes a Perfetto trace: see the
/// crate docs.
#[derive(Clone)]
pub struct PerfettoLayer {
    inner: Arc<Inner>,
}

/// Flushes the trace on demand and, when dropped, flushes it and stops the
/// writer thread: keep it alive as long as the program traces.
pub struct FlushGuard {
    inner: Arc<Inner>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl FlushGuard {
    /// Writes everything recorded so far, on every thread, to the sink and
    /// flushes it. A thread in the middle of a call hands its buffer over
    /// as the call ends, and the flush waits for it.
    ///
    /// # Errors
    /// The sink failed (the first error since the last flush), or the
    /// writer thread has stopped, or the call comes from inside one of the
    /// layer's callbacks (a field's `Debug` impl): that thread's call
    /// cannot end while the flush waits for it.
    pub fn flush(&self) -> io::Result<()> {
        not_inside_layer()?;
        self.inner.output.request(false)
    }

    /// Turns recording off or on again. Off, every callback of the layer
    /// returns after one load; spans created while off are not shown.
    pub fn set_enabled(&self, enabled: bool) {
        self.inner.enabled.store(enabled, Ordering::Relaxed);
    }

    /// Chunks dropped so far ([`Overflow::Drop`]).
    pub fn dropped_chunks(&self) -> u64 {
        self.inner.output.dropped_chunks.load(Ordering::Relaxed)
    }

    /// Flushes, stops the writer thread and waits for it; later events are
    /// not recorded. What dropping the guard does, with its error.
    ///
    /// # Errors
    /// As [`flush`](Self::flush). From inside the layer's callbacks
    /// nothing is stopped, and dropping the guard there leaves the writer
    /// thread running until the layer is dropped.
    pub fn finish(self) -> io::Result<()> {
        self.stop()
    }

    fn stop(&self) -> io::Result<()> {
        not_inside_layer()?;
        let Some(handle) = self.handle.lock().ok().and_then(|mut h| h.take()) else {
            return Ok(());
        };
        let r = self.inner.output.request(true);
        self.inner.enabled.store(false, Ordering::Relaxed);
        let _ = handle.join();
        r
    }
}

/// The guard's calls wait for every thread's call in progress to end.
fn not_inside_layer() -> io::Result<()> {
    match inside_layer() {
        true => Err(io::Error::other(
            "a flush was asked for from inside the tracing layer's own callback \
             (a field's Debug impl?), which cannot end while the flush waits for it",
        )),
        false => Ok(()),
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

impl PerfettoLayer {
    /// Settings, to [`build`](Builder::build) a layer.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A layer with default settings writing to `sink`.
    ///
    /// # Errors
    /// The writer thread could not be started.
    pub fn new<W: Write + Send + 'static>(sink: W) -> io::Result<(PerfettoLayer, FlushGuard)> {
        Builder::default().build(sink)
    }

    /// A layer with default settings writing to a new file at `path`.
    ///
    /// # Errors
    /// As [`Builder::build_file`].
    pub fn file(path: impl AsRef<Path>) -> io::Result<(PerfettoLayer, FlushGuard)> {
        Builder::default().build_file(path)
    }

    #[inline]
    fn on(&self) -> bool {
        self.inner.enabled.load(Ordering::Relaxed)
    }

    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut ThreadState, &Inner) -> R) -> Option<R> {
        let inner = &self.inner;
        with_state(inner, |state| {
            let r = f(state, inner);
            if state.lost() {
                let ts = state.now();
                state.recover(inner, ts);
            }
            r
        })
    }
}

/// A span's own track: never merged with its siblings, so that spans
/// alive at once stay on tracks of their own in the trace processor (which
/// merges same-named siblings by default) and in the UI.
pub(crate) const SPAN_TRACK: TrackOptions<'static> = TrackOptions {
    child_ordering: None,
    sibling_rank: None,
    merge: Some(SiblingMerge::None),
    description: None,
};

/// How many tracks from the root a track may be: the trace processor drops
/// a track with more ancestors, and every event on it, with an error
/// (`track_event_track_hierarchy_too_deep`; it walks 100 tracks up at most).
const MAX_TRACK_DEPTH: u32 = 100;

/// Where a span's own track goes, and how deep it is from the root: beneath
/// the named track it asks for (beneath the process), else its parent's
/// track, else its thread's (beneath the process). Past
/// [`MAX_TRACK_DEPTH`], beside its parent's track instead.
#[inline]
fn track_place(
    named: Option<TrackUuid>,
    parent: Option<SpanInfo>,
    thread: TrackUuid,
) -> (u64, u32) {
    match (named, parent.filter(|p| p.track != 0)) {
        (Some(named), _) => (named.get(), 3),
        (None, Some(p)) if p.depth < MAX_TRACK_DEPTH => (p.track, p.depth + 1),
        (None, Some(p)) => (p.under, p.depth),
        (None, None) => (thread.get(), 3),
    }
}

/// The track of the span an event is in, if that span has one. Out of
/// line: the views with thread slices never call it.
#[inline(never)]
fn span_track<S>(
    inner: &Inner,
    event: &tracing_core::Event<'_>,
    ctx: &Context<'_, S>,
) -> Option<u64>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let track = |id: &Id| inner.spans.get(id.into_u64()).map(|i| i.track);
    if event.is_contextual() {
        // The current span: if this layer has it, this layer's filter
        // enabled it, so it is the one `event_span` would find, without the
        // registry's lookup of its data (and the references counted there).
        match ctx.current_span().id() {
            None => return None,
            Some(id) => {
                if let Some(t) = track(id) {
                    return Some(t).filter(|&t| t != 0);
                }
            }
        }
    }
    // A span this layer does not have (filtered out for it: an enabled
    // one further out, then), or the parent the event names.
    ctx.event_span(event)
        .and_then(|s| track(&s.id()))
        .filter(|&t| t != 0)
}

/// An event of a callsite without a key (the writer has its most): by
/// its strings, a message made for the event written inline (it is most
/// often new; interned, each would stay in the writer's tables), static
/// text interned. Out of line: rare.
#[cold]
fn unkeyed(
    writer: &mut impl TraceWriter,
    track: TrackUuid,
    ts: u64,
    meta: &'static Metadata<'static>,
    name: Name<'_>,
    args: &[Arg<'_>],
) -> perfetto_trace_writer::Result<()> {
    let ev = event(meta, name.text()).args(args);
    let ev = match name {
        Name::Made(_) => ev.inline_name(),
        Name::Static(_) => ev,
    };
    writer.instant_on(track, ts, &ev)
}

/// The flow from a span's creation to its first slice on a thread.
fn creation_flow(serial: u64) -> u64 {
    serial.wrapping_mul(2)
}

/// The flow of `follows_from(span, cause)`.
fn follows_flow(span: u64, cause: u64) -> u64 {
    (span ^ cause.rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1
}

/// The nonzero flows of `flows`, as a slice of `buf`.
fn flow_ids(flows: FlowsIn, buf: &mut [u64; 2]) -> &[u64] {
    let mut n = 0;
    for f in [flows.creation, flows.follows] {
        if f != 0 {
            buf[n] = f;
            n += 1;
        }
    }
    &buf[..n]
}

impl ThreadState {
    /// A span the table had no room for (its fields in `args`): its track
    /// never had a slice, free for the next span; in the views with thread
    /// slices its fields go where it is created.
    #[cold]
    #[inline(never)]
    fn no_room(&mut self, info: &SpanInfo, view: View, ts: u64) {
        self.free_track(info);
        if view.threads() && !self.args.is_empty() {
            let meta = info.metadata();
            let ev = event(meta, meta.name()).args(self.args.args());
            let _ = self.writer.instant_on(self.thread.uuid(), ts, &ev);
        }
    }

    /// A lifetime slice's begin (its fields in `args`) through an `Event`:
    /// by the callsite's key if it has one, else by its strings.
    #[cold]
    #[inline(never)]
    fn begin_lifetime_by_event(
        &mut self,
        track: TrackUuid,
        ts: u64,
        meta: &'static Metadata<'static>,
    ) -> perfetto_trace_writer::Result<()> {
        let ev = match self.key(meta) {
            Some(key) => Event::from_key(key),
            None => event(meta, meta.name()),
        };
        let ev = ev.args(self.args.args());
        self.writer.begin_on(track, ts, &ev)
    }

    /// Forgets the creation flow waiting on this thread when it is span
    /// `key`'s and this thread took the flow's other end (`flows`): the
    /// span is entered or closed before anything else happened here, so
    /// nothing is linked.
    fn cancel_pending(&mut self, key: u64, flows: &mut FlowsIn) -> bool {
        match self.pending {
            Some(p) if p.key == key && flows.creation == p.flow => {
                self.pending = None;
                flows.creation = 0;
                true
            }
            _ => false,
        }
    }

    /// Begins a thread slice of a span that ends flows or carries its
    /// creation fields, through an `Event`; whether it began.
    fn begin_slice_event(
        &mut self,
        ts: u64,
        meta: &'static Metadata<'static>,
        flows: FlowsIn,
        fields: bool,
    ) -> bool {
        let mut buf = [0; 2];
        let ends = flow_ids(flows, &mut buf);
        let ev = match self.key(meta) {
            Some(key) => Event::from_key(key),
            None => event(meta, meta.name()),
        };
        let args = if fields { self.args.args() } else { &[] };
        let ev = ev.args(args).terminating_flows(ends);
        let thread = self.thread;
        begin_slice_with(&mut self.writer, thread, ts, &ev)
    }
}

impl PerfettoLayer {
    /// A thread slice of the span `id`, entered on this thread.
    #[inline(never)]
    fn enter<S>(&self, id: &Id, ctx: Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        self.with(|st, inner| {
            let key = id.into_u64();
            let ts = st.now();
            let entering = match inner.spans.entering(key, &mut st.args) {
                Some(e) => e,
                // A span the table had no room for is still a thread slice.
                None => match ctx.metadata(id) {
                    Some(meta) => Entering {
                        meta: meta as *const Metadata<'static> as usize,
                        parent: 0,
                        flows: FlowsIn::default(),
                        fields: false,
                    },
                    None => return,
                },
            };
            let (parent, mut flows, fields) = (entering.parent, entering.flows, entering.fields);
            // Entered in its parent's slice right where it was created: the
            // nesting shows the link, no flow.
            if parent != 0 && st.stack.last().is_some_and(|e| e.id == parent) {
                st.cancel_pending(key, &mut flows);
            }
            st.settle();
            let meta = entering.metadata();
            let (began, adopted) = match (fields, flows.is_empty()) {
                (false, true) => (st.begin_slice(ts, meta), false),
                // Its fields and no flow: by the key's short path for
                // arguments.
                (true, true) => match st.key(meta) {
                    Some(k) => {
                        let thread = st.thread;
                        let args = st.args.args();
                        let began = begin_slice_key_args(&mut st.writer, thread, ts, k, args);
                        (began, false)
                    }
                    None => (st.begin_slice_event(ts, meta, flows, fields), false),
                },
                _ => (st.begin_slice_event(ts, meta, flows, fields), false),
            };
            st.stack.push(Entered {
                id: key,
                meta,
                began,
                adopted,
            });
        });
    }

    /// Ends the thread slice of the span `id` (and of any entered after it).
    #[inline(never)]
    fn exit(&self, id: &Id) {
        self.with(|st, _| {
            let key = id.into_u64();
            let Some(at) = st.stack.iter().rposition(|e| e.id == key) else {
                return;
            };
            let ts = st.now();
            st.settle();
            // Spans exited out of order end with it: slices must nest.
            while st.stack.len() > at {
                if let Some(e) = st.stack.pop() {
                    st.end_slice(ts, &e);
                }
            }
        });
    }

    /// What a span's close writes: the end of its lifetime slice, and the
    /// flows no slice of it ended. Out of line, as `enter`: what stays in
    /// `on_close` is the table's removal, which is all a thread view's span
    /// without flows needs.
    #[inline(never)]
    fn close(&self, key: u64, info: &SpanInfo, mut flows: FlowsIn) {
        let view = self.inner.config.view;
        self.with(|st, _| {
            // Created and closed with nothing in between: nothing to link.
            st.cancel_pending(key, &mut flows);
            // No time to read, nothing to settle first.
            if info.track == 0 && (flows.is_empty() || !view.threads()) {
                return;
            }
            // After the lifetime slice's begin, which another thread may
            // have written: threads' clocks agree only to their calibration
            // (see `clock`), and an end sorted before its begin (or at its
            // time, from another sequence) would leave the slice
            // unfinished, with an error.
            let ts = st.now().max(info.begun + 1);
            st.settle();
            let meta = info.metadata();
            if !flows.is_empty() {
                // Flows to a slice that never came end where the span does.
                let mut buf = [0; 2];
                let ev = event(meta, meta.name()).terminating_flows(flow_ids(flows, &mut buf));
                if info.track != 0 {
                    let _ = st
                        .writer
                        .instant_on(TrackUuid::from_raw(info.track), ts, &ev);
                } else if view.threads() {
                    st.thread_instant(ts, &ev);
                }
            }
            if info.track != 0 {
                let _ = st.writer.end_on(TrackUuid::from_raw(info.track), ts);
                // Free: tracing closes a span only once its children have
                // closed (each holds its parent), so no track beneath it
                // has a slice still to come.
                st.free_track(info);
            }
        });
    }

    /// What `on_new_span` records, in the thread view alone (`THREADS`) or
    /// in a view with span tracks.
    #[inline(never)]
    fn new_span<S, const THREADS: bool>(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let meta = attrs.metadata();
        let view = match THREADS {
            true => View::Threads,
            false => self.inner.config.view,
        };
        // `None`: the span entered last on this thread, on the layer's own
        // stack, which the views with thread slices keep (the spans this
        // layer's filter lets it see, as `ctx.current_span` has them, but
        // that spans exited out of order leave with the one exited). In
        // the thread view the parent only decides whether a flow links
        // where the span was made to where it first runs, and the slice it
        // was made in is what the nesting shows; with both views it also
        // places the span's track. Span tracks alone ask the registry.
        let parent = match attrs.parent() {
            Some(p) => Some(Some(p.into_u64())),
            None if attrs.is_contextual() && view.threads() => None,
            None if attrs.is_contextual() => Some(ctx.current_span().id().map(Id::into_u64)),
            None => Some(None),
        };
        self.with(|st, inner| {
            let parent = parent.unwrap_or_else(|| st.stack.last().map(|e| e.id));
            // Read when the span is created, unless nothing here is timed: a
            // thread view's root span writes nothing until it is entered.
            let mut ts = None;
            if view.span_tracks() || parent.is_some() {
                st.time(&mut ts);
            }
            st.settle();
            let key = id.into_u64();
            // Only a track's place needs it.
            let parent_info = match view.span_tracks() {
                true => parent.and_then(|p| inner.spans.get(p)),
                false => None,
            };
            st.args.clear();
            attrs.record(&mut st.args);
            st.args.message_as_arg();
            let serial = st.next_serial();
            let named = st.named_track();
            let (mut track, mut under, mut depth) = (0, 0, 0);
            // The callsite's key and track template, looked up once for
            // the track and its lifetime slice.
            let mut site = None;
            if view.span_tracks() || named.is_some() {
                (under, depth) = track_place(named, parent_info, st.thread.uuid());
                site = st.site(meta);
                // A track of its callsite beneath the same track that a
                // span closed here left free, else a new one, described
                // before the table has room for it (if not, it is free).
                let under = TrackUuid::from_raw(under);
                track = match (st.reuse_track(under.get(), meta as *const _ as usize), site) {
                    (Some(uuid), _) => uuid,
                    (None, Some((_, template))) => st
                        .writer
                        .keyed_track_from(template, under, serial)
                        .map_or(0, TrackUuid::get),
                    (None, None) => st
                        .writer
                        .keyed_track(under, serial, meta.name(), &SPAN_TRACK)
                        .map_or(0, TrackUuid::get),
                };
            }
            // Where a child first runs links back to where it was created,
            // unless the thread's nesting shows it (see `Pending`).
            let flow = match view.threads() && parent.is_some() {
                true => creation_flow(serial),
                false => 0,
            };
            let info = SpanInfo {
                track,
                serial,
                parent: parent.unwrap_or(0),
                meta: meta as *const _ as usize,
                under,
                depth,
                begun: match track {
                    0 => 0,
                    _ => st.time(&mut ts),
                },
            };
            // Without a track of its own, a span's fields wait for its
            // first slice on a thread.
            let keep = track == 0 && !st.args.is_empty();
            let inserted = inner
                .spans
                .insert(key, info, flow, keep.then_some(&mut st.args));
            if !inserted {
                let ts = st.time(&mut ts);
                st.no_room(&info, view, ts);
            } else if track != 0 {
                // By the callsite's key: the writer need not look up its
                // strings, nor read an `Event`.
                let (track, ts) = (TrackUuid::from_raw(track), st.time(&mut ts));
                let _ = match (THREADS, site) {
                    // A named track's, in the thread view: out of line,
                    // which leaves the other views' call inlined.
                    (true, _) => st.begin_lifetime_by_event(track, ts, meta),
                    (false, Some((key, _))) => {
                        st.writer.begin_on_key(track, ts, key, st.args.args())
                    }
                    (false, None) => st.begin_lifetime_by_event(track, ts, meta),
                };
            }
            if inserted && flow != 0 {
                let ts = st.time(&mut ts);
                st.pending = Some(Pending {
                    key,
                    ts,
                    meta,
                    flow,
                });
            }
        });
    }
}

impl<S> Layer<S> for PerfettoLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(
        &self,
        meta: &'static Metadata<'static>,
    ) -> tracing_core::subscriber::Interest {
        crate::callsites::register(meta);
        tracing_core::subscriber::Interest::always()
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !self.on() {
            return;
        }
        // One body per kind of view, each without the other's branches.
        match self.inner.config.view {
            View::Threads => self.new_span::<S, true>(attrs, id, ctx),
            _ => self.new_span::<S, false>(attrs, id, ctx),
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        if !self.on() {
            return;
        }
        self.with(|st, inner| {
            let Some(info) = inner.spans.get(id.into_u64()) else {
                return;
            };
            let ts = st.now();
            st.settle();
            let meta = info.metadata();
            st.args.clear();
            values.record(&mut st.args);
            st.args.message_as_arg();
            let track = match info.track {
                0 => st.thread.uuid(),
                t => TrackUuid::from_raw(t),
            };
            let ev = event(meta, meta.name()).args(st.args.args());
            let _ = st.writer.instant_on(track, ts, &ev);
        });
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, _ctx: Context<'_, S>) {
        if !self.on() {
            return;
        }
        let view = self.inner.config.view;
        self.with(|st, inner| {
            let (Some(span), Some(cause)) = (
                inner.spans.get(id.into_u64()),
                inner.spans.get(follows.into_u64()),
            ) else {
                return;
            };
            let ts = st.now();
            st.settle();
            let flow = [follows_flow(span.serial, cause.serial)];
            let ev = Event::new("follows_from").category("perfetto_tracing");
            if span.track != 0 && cause.track != 0 {
                let _ =
                    st.writer
                        .instant_on(TrackUuid::from_raw(cause.track), ts, &ev.flows(&flow));
                let _ = st.writer.instant_on(
                    TrackUuid::from_raw(span.track),
                    ts,
                    &ev.terminating_flows(&flow),
                );
            } else if view.threads() && inner.spans.set_follows_flow(id.into_u64(), flow[0]) {
                // From here (inside the cause, usually) to the span's next
                // slice on a thread, or its close.
                st.thread_instant(ts, &ev.flows(&flow));
            }
        });
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        // The checks inline, the work out of line: span tracks alone skip
        // it at the cost of a call.
        if self.on() && self.inner.config.view.threads() {
            self.enter(id, ctx);
        }
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        if self.on() && self.inner.config.view.threads() {
            self.exit(id);
        }
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        if !self.on() {
            return;
        }
        let key = id.into_u64();
        let Some((info, flows)) = self.inner.spans.remove(key) else {
            return;
        };
        // A thread view's span without flows writes nothing here: not even
        // the thread's state is needed (a creation waiting there is not its
        // own: that one's flow would still be in `flows`).
        if info.track == 0 && flows.is_empty() {
            return;
        }
        self.close(key, &info, flows);
    }

    fn on_event(&self, event_: &tracing_core::Event<'_>, ctx: Context<'_, S>) {
        if !self.on() {
            return;
        }
        let meta = event_.metadata();
        let view = self.inner.config.view;
        self.with(|st, inner| {
            let ts = st.now();
            st.settle();
            st.args.clear();
            event_.record(&mut st.args);
            // On the named track it asks for; else on the span's own track
            // when threads are not shown.
            let track = if let Some(named) = st.named_track() {
                Some(named.get())
            } else if view.threads() {
                None
            } else {
                span_track(inner, event_, &ctx)
            };
            let thread = st.thread;
            let (message, args, names) = st.args.message_name_and_args();
            let name = message.unwrap_or(Name::Static(meta.name()));
            let track = track.map_or(thread.uuid(), TrackUuid::from_raw);
            let _ = match st.messages.get(&mut st.writer, meta, name, names) {
                Some(Keyed::Named(key)) => st.writer.instant_on_key(track, ts, key, args),
                Some(Keyed::Inline(key)) => {
                    st.writer
                        .instant_on_key_named(track, ts, key, name.text(), args)
                }
                None => unkeyed(&mut st.writer, track, ts, meta, name, args),
            };
        });
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::thread::with_state;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A span made on a thread whose clock runs an hour ahead and closed
    /// on one whose clock does not: its lifetime ends where it began, not
    /// an hour before (which would leave it unfinished, with an error).
    #[test]
    fn a_lifetime_never_ends_before_it_began_whichever_thread_closes_it() {
        const AHEAD: u64 = 3_600_000_000_000;
        let sink = Shared::default();
        let (layer, guard) = PerfettoLayer::builder()
            .view(View::SpanTracks)
            .build(sink.clone())
            .unwrap();
        let inner = Arc::clone(&layer.inner);
        let dispatch = tracing_core::Dispatch::new(tracing_subscriber::registry().with(layer));
        let span = tracing_core::dispatcher::with_default(&dispatch, || {
            with_state(&inner, |st| st.clock().run_ahead(AHEAD)).unwrap();
            tracing::info_span!("moved")
        });
        // Its track's descriptor first in the file, as `inspect` reads it
        // in file order.
        guard.flush().unwrap();
        let closer = dispatch.clone();
        let closed_at = std::thread::spawn(move || {
            tracing_core::dispatcher::with_default(&closer, || {
                let at = crate::clock::boottime();
                drop(span);
                at
            })
        })
        .join()
        .unwrap();
        drop(dispatch);
        guard.finish().unwrap();
        let bytes = sink.0.lock().unwrap().clone();
        let trace = perfetto_trace_writer::inspect::decode(&bytes).unwrap();
        assert!(trace.problems.is_empty(), "{:?}", trace.problems);
        let moved: Vec<_> = trace.slices.iter().filter(|s| s.name == "moved").collect();
        assert_eq!(moved.len(), 1, "{:?}", trace.slices);
        assert!(
            moved[0].ts > closed_at + AHEAD / 2,
            "begun on the clock ahead"
        );
        assert_eq!(moved[0].dur, Some(1), "ended just after it began");
    }
}
