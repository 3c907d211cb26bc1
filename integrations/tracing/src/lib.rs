//! A [`tracing_subscriber::Layer`] that writes [Perfetto](https://perfetto.dev)
//! traces of a program's threads and async tasks, through the writers of
//! [`perfetto_trace_writer`]. Open the file in
//! [ui.perfetto.dev](https://ui.perfetto.dev) or query it with the trace
//! processor.
//!
//! ```
//! use perfetto_tracing::PerfettoLayer;
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! # let dir = std::env::temp_dir().join(format!("perfetto-tracing-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! # let path = dir.join("trace.pftrace");
//! let (layer, guard) = PerfettoLayer::file(&path)?; // or ::new(any io::Write)
//! let subscriber = tracing_subscriber::registry().with(layer);
//! tracing::subscriber::with_default(subscriber, || {
//!     // In a program: tracing::subscriber::set_global_default(subscriber).
//!     let span = tracing::info_span!("request", id = 7);
//!     let _entered = span.enter();
//!     tracing::info!(rows = 12, table = "users", "query done");
//! });
//! guard.finish()?; // or drop it: flushes every thread and the file
//! assert!(std::fs::metadata(&path)?.len() > 0);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # What the trace shows
//!
//! - **Spans**, as chosen with [`Builder::view`]: each time a span is
//!   entered, a slice on the thread that entered it ([`View::Threads`]);
//!   each span's lifetime, creation to close, as one slice on a track of
//!   its own beneath its parent span's track or, for a root span, the thread
//!   that created it ([`View::SpanTracks`]); or both ([`View::Both`], the
//!   default). A span entered on several threads, or entered and exited
//!   many times (a future polled), stays one span: one lifetime slice, and a
//!   thread slice per poll where it ran. Overlapping async spans never
//!   mis-nest: each has its own track, never merged with its siblings.
//! - **Events**, as instants named by their message, on the thread (in the
//!   slice of the span entered there), or on the current span's track in
//!   [`View::SpanTracks`].
//! - **Fields** of spans (on the lifetime slice, or in [`View::Threads`] on
//!   the span's first slice on a thread, wherever that is) and of events,
//!   as typed args: integers, floats, bools, strings; `Debug` and `Display`
//!   values as text. Fields recorded later (`Span::record`) are an instant
//!   on the span's track or thread.
//! - **Categories**: each callsite's level and target, `info,my_crate::db`.
//!   Names, categories and source locations are interned (per thread
//!   sequence); each callsite's category is made once.
//! - **Flows** (in the views with thread slices): from an instant where a
//!   span was created to its first slice on a thread, unless the thread
//!   entered it in its parent's slice before doing anything else there (a
//!   span entered where it is made, an awaited future): the nesting shows
//!   that link. So a task spawned from a request and polled later or
//!   elsewhere is linked to where it was spawned; a span closed without
//!   ever being entered ends its flow on an instant where it closes. For
//!   `follows_from`, from the cause to the span (between their tracks, or
//!   in [`View::Threads`] to the span's next slice). Every flow has both
//!   ends.
//! - **Named tracks**: a span with the field [`TRACK_FIELD`]
//!   (`perfetto.track = "db"`) goes on a track of its own beneath the
//!   process-wide track of that name, in every view.
//! - **Identity**: the real pid and process name (`/proc/self/comm`), the OS
//!   tid and the thread's name (Rust's, else the kernel's).
//!
//! # Cost
//!
//! Each thread records through a writer of its own, on a packet sequence of
//! its own, into a buffer of its own: no shared lock per event or span (a
//! full chunk takes the queue's and the buffer pool's) and, once its
//! buffers have grown, no allocation per event or span. The thread's state sits
//! behind a flag that only the writer thread's flushes contend, so a call
//! costs one uncontended atomic swap for it. What the layer knows of a live
//! span sits in a lock-free table. Whole chunks of packets
//! ([`Builder::chunk_size`]) go to one writer thread through a bounded
//! queue, and that thread writes them to the sink. A layer turned off with
//! [`FlushGuard::set_enabled`] returns from every callback after one load.
//!
//! # Output and failures
//!
//! Any `io::Write + Send` is a sink ([`PerfettoLayer::new`]); a file by
//! [`PerfettoLayer::file`]. The writer thread also collects what threads hold
//! but have not filled into a chunk, every [`Builder::flush_interval`]
//! (500 ms by default), on [`FlushGuard::flush`], and when the guard is
//! dropped or [`finish`](FlushGuard::finish)ed; a thread that ends hands
//! over its last chunk. Chunks are written whole, so a program killed or
//! crashed without dropping its guard leaves a file that is a valid trace
//! up to the last chunk written (the trace processor reads it; spans open at
//! that moment show as unfinished).
//!
//! Memory is bounded: a thread buffers at most a chunk, the queue holds at
//! most [`Builder::queue_chunks`] chunks, and each thread's interning tables
//! are capped ([`Builder::intern_limit`]). When the sink is slower than the
//! program, [`Overflow::Block`] (the default) makes recording threads wait
//! for room, losing nothing; [`Overflow::Drop`] drops whole chunks instead,
//! counts them ([`FlushGuard::dropped_chunks`]) and says so in the trace:
//! the thread's next packets start a new sequence whose first packet has
//! `previous_packet_dropped` set, and an instant `chunks dropped` with the
//! counts. The thread's slices keep nesting as its spans do: a slice whose
//! end was lost ends where the loss is noticed, and one whose begin was lost
//! begins again there. Slices on span tracks cut by a lost chunk may show
//! unfinished.
//!
//! The sink's errors do not stop recording; the first one is returned by the
//! next [`FlushGuard::flush`] or [`FlushGuard::finish`].
//!
//! # Async runtimes
//!
//! Nothing here depends on one. With tokio, instrument tasks
//! (`tokio::spawn(fut.instrument(info_span!("task")))`); see
//! `examples/tokio_tasks.rs`. Spans still open when the guard is dropped
//! show as unfinished.
#![deny(missing_docs)]

mod callsites;
mod clock;
mod fields;
mod identity;
mod layer;
mod output;
mod spans;
mod thread;

pub use crate::fields::TRACK_FIELD;
pub use crate::layer::{Builder, FlushGuard, PerfettoLayer, View};
pub use crate::output::Overflow;
