//! How tracks of the caller's own are shown: ordering, merging, counters.

/// How the UI orders a track's children (`TrackDescriptor.child_ordering`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChildOrdering {
    /// By name.
    Lexicographic = 1,
    /// By the time of their first event.
    Chronological = 2,
    /// By each child's `sibling_rank`.
    Explicit = 3,
}

/// Whether the UI merges this track with same-named siblings
/// (`TrackDescriptor.sibling_merge_behavior`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SiblingMerge<'a> {
    /// Merge with siblings of the same name (the UI's default).
    ByName,
    /// Never merge.
    None,
    /// Merge with siblings that have the same key.
    ByKey(&'a str),
}

/// Display options of a named track.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TrackOptions<'a> {
    /// How its children are ordered.
    pub child_ordering: Option<ChildOrdering>,
    /// Its rank among its siblings when the parent orders explicitly.
    pub sibling_rank: Option<i32>,
    /// How it merges with siblings.
    pub merge: Option<SiblingMerge<'a>>,
    /// What the track shows, in a sentence (`TrackDescriptor.description`):
    /// the UI shows it in the track's help, the trace processor as the
    /// track's `description` arg.
    pub description: Option<&'a str>,
}

/// How a process is described beyond its pid, name and command line
/// ([`TraceWriter::process_with`](crate::TraceWriter::process_with)).
///
/// ```
/// use perfetto_trace_writer::{ProcessOptions, TraceWriter, Writer};
/// let mut w = Writer::new();
/// let options = ProcessOptions { description: Some("serves queries"), ..Default::default() };
/// let p = w.process_with("svc", Some(7), "service", &[], &options)?;
/// # Ok::<(), perfetto_trace_writer::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ProcessOptions<'a> {
    /// What the process is, in a sentence (`TrackDescriptor.description`).
    pub description: Option<&'a str>,
    /// Labels the UI shows beside the process's name
    /// (`ProcessDescriptor.process_labels`), such as a tenant or a role.
    pub labels: &'a [&'a str],
    /// Its place among processes (`sibling_order_rank`, lower first), once
    /// [`order_explicitly`](crate::TraceWriter::order_explicitly) asked for
    /// ranks to order processes.
    pub sibling_rank: Option<i32>,
}

/// How a thread is described beyond its tid and name
/// ([`TraceWriter::thread_with`](crate::TraceWriter::thread_with)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ThreadOptions<'a> {
    /// What the thread does, in a sentence (`TrackDescriptor.description`).
    pub description: Option<&'a str>,
    /// Its place among its process's threads (`sibling_order_rank`, lower
    /// first), once [`order_explicitly`](crate::TraceWriter::order_explicitly)
    /// asked for ranks to order threads.
    pub sibling_rank: Option<i32>,
}

/// How an async lane is described
/// ([`TraceWriter::async_lane_with`](crate::TraceWriter::async_lane_with)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LaneOptions<'a> {
    /// What the lane's spans are, in a sentence
    /// (`TrackDescriptor.description`), on the lane's own track and on
    /// each track of its spans in flight.
    pub description: Option<&'a str>,
    /// Whether the lane is for spans with children: its tracks are then
    /// never merged with their same-named siblings
    /// (`SIBLING_MERGE_BEHAVIOR_NONE`), so the trace processor keeps every
    /// child's track under exactly its parent's (see
    /// [`TraceWriter::async_tree_lane`](crate::TraceWriter::async_tree_lane)).
    pub tree: bool,
}

/// The unit of a counter (`CounterDescriptor.unit` or `unit_name`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CounterUnit<'a> {
    /// No unit.
    #[default]
    None,
    /// Nanoseconds.
    TimeNs,
    /// A count.
    Count,
    /// Bytes.
    Bytes,
    /// A unit of the caller's, by name.
    Named(&'a str),
}

/// How a counter's values are read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CounterOptions<'a> {
    /// The unit of its values.
    pub unit: CounterUnit<'a>,
    /// Each value is multiplied by this (`unit_multiplier`), e.g. 1024 for
    /// values in KiB shown as bytes.
    pub multiplier: Option<i64>,
    /// Values are deltas to add up (`is_incremental`), not absolute values.
    pub incremental: bool,
    /// Counters with the same key share their y axis in the UI
    /// (`y_axis_share_key`), so that their heights compare.
    pub y_axis_share_key: Option<&'a str>,
    /// How the track is shown.
    pub track: TrackOptions<'a>,
}

/// A clock of the machine (`BuiltinClock`), for
/// [`clock_snapshot`](crate::TraceWriter::clock_snapshot).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Clock {
    /// `CLOCK_REALTIME`: nanoseconds since the Unix epoch, the dates the UI
    /// shows.
    Realtime = 1,
    /// `CLOCK_MONOTONIC`: what other captures of the machine (and
    /// `std::time::Instant` on Linux) read.
    Monotonic = 3,
    /// `CLOCK_MONOTONIC_RAW`.
    MonotonicRaw = 5,
    /// `CLOCK_BOOTTIME`: the trace's own clock.
    Boottime = 6,
}

/// A counter sample: an integer or a floating-point value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CounterSample {
    /// `counter_value`.
    Int(i64),
    /// `double_counter_value`.
    Double(f64),
}

impl From<i64> for CounterSample {
    fn from(v: i64) -> Self {
        CounterSample::Int(v)
    }
}

impl From<f64> for CounterSample {
    fn from(v: f64) -> Self {
        CounterSample::Double(v)
    }
}
