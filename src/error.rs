//! The errors of every writer call.

use std::io;

use crate::ids::TrackUuid;
use crate::limits::{self, MAX_STRING_LEN, MAX_TS};

/// What went wrong in a writer call.
///
/// Every variant but [`Error::Io`] is a misuse of the API: the call that
/// returned it wrote nothing and changed no state, so the writer stays usable
/// and its trace stays valid. An emitting call that returns `Error::Io` did
/// nothing either (see there).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The sink of a [`StreamingPerfettoWriter`](crate::StreamingPerfettoWriter)
    /// failed. A writer hands its buffer to the sink before it writes a
    /// call's packets, so a call that returns this did nothing: its event
    /// was *not* recorded, and the call may be retried. Bytes that did not
    /// reach the sink stay buffered and are offered again by the next call
    /// that writes, or by `flush`. `flush`, `finish` and `into_inner` may
    /// be retried the same way: what they could not deliver stays buffered
    /// (`finish` has by then written the pending ends of complete spans).
    #[error("the trace sink failed: {0}")]
    Io(#[from] io::Error),

    /// A timestamp above `i64::MAX`: the trace processor stores time as a
    /// signed 64-bit count of nanoseconds and would misplace the event.
    #[error("timestamp {0} is above i64::MAX, the largest time the trace processor accepts")]
    TimestampOutOfRange(u64),

    /// A span ends before it begins.
    #[error("span ends at {end}, before its begin at {begin}")]
    EndBeforeBegin {
        /// The begin of the span.
        begin: u64,
        /// The end that was asked for.
        end: u64,
    },

    /// An event on a thread track is earlier than one already written there.
    /// Events of one thread must come in non-decreasing time order, so that
    /// the file order of ties is the nesting the caller meant.
    #[error("timestamp {ts} on track {track} is earlier than {last}, the latest event already written there")]
    TimestampBackwards {
        /// The thread's track.
        track: TrackUuid,
        /// The timestamp asked for.
        ts: u64,
        /// The latest timestamp already written on the track.
        last: u64,
    },

    /// A span would cross the end of a span that encloses it (a complete span
    /// whose end is already known).
    #[error("span on track {track} would end at {end}, after the end {limit} of a span that encloses it")]
    NotNested {
        /// The thread's track.
        track: TrackUuid,
        /// The end asked for.
        end: u64,
        /// The end of the innermost enclosing complete span.
        limit: u64,
    },

    /// A complete span given an explicit depth it cannot take: spans that
    /// have not ended by its begin hold the depths below `min`, and only
    /// `max` spans are open that could enclose it.
    #[error("span on track {track} cannot sit at depth {depth}: only depths {min} to {max} are possible there")]
    DepthOutOfRange {
        /// The thread's track.
        track: TrackUuid,
        /// The depth asked for.
        depth: usize,
        /// The depth the span would take by the tie rules: the spans still
        /// open at its begin.
        min: usize,
        /// The open spans that could enclose it (they end no earlier).
        max: usize,
    },

    /// `span_end` on a thread with no explicitly begun span open.
    #[error("span_end on track {0}: no span begun with span_begin is open there")]
    NoOpenSpan(TrackUuid),

    /// Spans on one thread may nest at most [`MAX_SPAN_DEPTH`](crate::MAX_SPAN_DEPTH)
    /// deep: the trace processor drops deeper ones. Instants at one time on
    /// a thread stack, so they count too.
    #[error("span on track {0} would nest deeper than {max} levels", max = limits::MAX_SPAN_DEPTH)]
    TooDeep(TrackUuid),

    /// `async_span_end` for a span id that is not open on the lane.
    #[error("async span {span_id} is not open on lane {lane}")]
    AsyncSpanNotOpen {
        /// The lane's uuid.
        lane: TrackUuid,
        /// The span id.
        span_id: u64,
    },

    /// `async_span_begin` with a span id that is already open on the lane.
    #[error("async span {span_id} is already open on lane {lane}")]
    AsyncSpanAlreadyOpen {
        /// The lane's uuid.
        lane: TrackUuid,
        /// The span id.
        span_id: u64,
    },

    /// The parent named for an async span is not in flight at the span's
    /// begin: never begun on that lane, already ended by a call, or a
    /// complete span that ended before the child begins.
    #[error("async span {span_id} of lane {lane}, named as a parent, is not in flight")]
    ParentNotOpen {
        /// The parent's lane.
        lane: TrackUuid,
        /// The parent's id.
        span_id: u64,
    },

    /// A handle made by another writer.
    #[error("the handle for track {0} was made by another writer")]
    ForeignHandle(TrackUuid),

    /// An [`EventKey`](crate::EventKey) made by another writer: keys are
    /// registered with one writer, whose interning tables their events use.
    #[error("the event key was registered with another writer")]
    ForeignKey,

    /// An event given both a key and strings of its own: a keyed event
    /// ([`Event::from_key`](crate::Event::from_key)) takes its name, category and
    /// source location from its key, so its `name`, `category` and `file`
    /// must be empty, but for a name written inline
    /// ([`Event::from_key_named`](crate::Event::from_key_named)).
    #[error("an event with a key names a string of its own: its name, category and location come from the key")]
    KeyAndStrings,

    /// More than `u32::MAX` event keys registered with one writer.
    #[error("more than 4294967295 event keys registered with one writer")]
    TooManyKeys,

    /// A [`TrackTemplate`](crate::TrackTemplate) made by another writer:
    /// templates are registered with one writer.
    #[error("the track template was registered with another writer")]
    ForeignTemplate,

    /// More than `u32::MAX` track templates registered with one writer.
    #[error("more than 4294967295 track templates registered with one writer")]
    TooManyTemplates,

    /// Pid or tid 0: the trace processor reserves it for the idle task.
    #[error("pid and tid 0 are reserved for the idle task")]
    ZeroId,

    /// A negative pid. The trace processor reads a process descriptor's pid
    /// as unsigned and a thread descriptor's as signed, so a negative pid
    /// would split a process from its threads (-1 becomes 4294967295 for
    /// the process and stays -1 for its threads).
    #[error("pid {0} is negative: the trace processor would not link the process to its threads")]
    NegativePid(i32),

    /// An incremental counter track in a writer that shares its trace with
    /// others ([`Options::partition`](crate::Options::partition), or a
    /// sequence id other than 1). The trace processor adds up an incremental
    /// counter's values per packet sequence, and writers cannot see each
    /// other's values, so a counter fed by several writers would show
    /// interleaved partial sums. Write absolute values (a total the caller
    /// keeps) to a counter that is not incremental instead.
    #[error("incremental counters are refused in a writer that shares its trace: the trace processor sums them per sequence, so several writers' increments would not add up")]
    SharedIncrementalCounter,

    /// The pid is already taken by another process of this writer.
    #[error("pid {0} is already used by another process of this trace")]
    PidInUse(i32),

    /// The tid is already taken by another thread of this writer.
    #[error("tid {0} is already used by another thread of this trace")]
    TidInUse(i64),

    /// A process or thread key was registered before with another pid, tid,
    /// name or command line. A track's identity cannot change mid-trace.
    #[error("track {0} was already described differently")]
    Redefined(TrackUuid),

    /// A string longer than [`MAX_STRING_LEN`] bytes.
    #[error("a string of {0} bytes is longer than the {max} bytes allowed", max = limits::MAX_STRING_LEN)]
    StringTooLong(usize),

    /// Argument dictionaries and arrays nested deeper than
    /// [`MAX_ARG_DEPTH`](crate::MAX_ARG_DEPTH).
    #[error("arguments nest deeper than {max} levels", max = limits::MAX_ARG_DEPTH)]
    ArgsTooDeep,

    /// A log line on an event of a track that is neither a thread nor a
    /// named track under one: the trace processor files log lines under a
    /// thread, and counts one elsewhere as an error.
    #[error("a log line on track {0}, which is not a thread")]
    LogOffThread(TrackUuid),

    /// More counter values on one event than the trace processor reads
    /// ([`MAX_EVENT_COUNTERS`](crate::MAX_EVENT_COUNTERS)).
    #[error("{0} counter values on one event, more than the {max} the trace processor reads", max = limits::MAX_EVENT_COUNTERS)]
    TooManyCounters(usize),

    /// A value of an incremental counter carried by a slice event: the
    /// trace processor adds such values up per packet sequence, and a
    /// running sum of zero cuts off the event's later values, so only
    /// [`counter`](crate::TraceWriter::counter) takes them.
    #[error("counter {0} is incremental: give its values with `counter`")]
    IncrementalCounterOnEvent(TrackUuid),

    /// A clock snapshot without a reading of the trace's clock (BOOTTIME),
    /// or with two readings of one clock.
    #[error("a clock snapshot needs one reading of BOOTTIME and at most one of each clock")]
    BadClockSnapshot,

    /// A callstack deeper than
    /// [`MAX_CALLSTACK_DEPTH`](crate::MAX_CALLSTACK_DEPTH) frames.
    #[error("a callstack of {0} frames is deeper than the {max} allowed", max = limits::MAX_CALLSTACK_DEPTH)]
    CallstackTooDeep(usize),

    /// The streaming writer already gave its sink back.
    #[error("the writer has given its sink back")]
    Finished,
}

/// The result of a writer call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// [`Error::StringTooLong`] for the first of `strings` longer than
/// [`MAX_STRING_LEN`].
pub(crate) fn check_len<'a>(strings: impl IntoIterator<Item = &'a str>) -> Result<()> {
    match strings.into_iter().find(|s| s.len() > MAX_STRING_LEN) {
        Some(s) => Err(Error::StringTooLong(s.len())),
        None => Ok(()),
    }
}

/// [`Error::TimestampOutOfRange`] past [`MAX_TS`].
pub(crate) fn check_ts(ts: u64) -> Result<()> {
    if ts > MAX_TS {
        return Err(Error::TimestampOutOfRange(ts));
    }
    Ok(())
}
