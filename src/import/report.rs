//! What an import did, and the rows that made no sense.

use std::collections::BTreeMap;
use std::fmt;

/// How many examples of each kind of anomaly a report keeps.
pub const EXAMPLES_KEPT: usize = 5;

/// A kind of row that makes no sense. None of them fails the import: each
/// is counted, and the rule that handles it is given with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum AnomalyKind {
    /// A stream names a process that was not given: its rows are shown
    /// under a process made from the `process_id` alone.
    StreamWithoutProcess,
    /// A thread span or async event names a stream that was not given: the
    /// row is skipped.
    UnknownStream,
    /// A process id given again with other columns: the first row is kept.
    DuplicateProcess,
    /// A stream id given again with other columns: the first row is kept.
    DuplicateStream,
    /// A thread span ends before it begins: skipped.
    ThreadSpanEndBeforeBegin,
    /// A thread span begins inside another one and ends after it (it
    /// crosses an enclosing span's end): skipped.
    ThreadSpanNotNested,
    /// A thread span's `depth` is not one its times allow: shown at the
    /// depth its times give.
    ThreadSpanDepth,
    /// An async begin with the id of a span in flight in its process: the
    /// second begin is skipped (its span's end row ends the first).
    AsyncDuplicateBegin,
    /// An async end earlier than the begin of its span: both rows skipped.
    AsyncEndBeforeBegin,
    /// An async end for a span whose end was already seen without its
    /// begin (only such repeats can be told in bounded memory): skipped.
    AsyncDuplicateEnd,
    /// An async begin whose `depth` is not its parent's depth plus one:
    /// shown beneath its parent all the same.
    AsyncDepth,
    /// An async event whose `event_type` is neither `"begin"` nor `"end"`:
    /// skipped.
    UnknownEventType,
    /// A row the writer refused (a string above
    /// [`MAX_STRING_LEN`](crate::MAX_STRING_LEN), nesting deeper than
    /// [`MAX_SPAN_DEPTH`](crate::MAX_SPAN_DEPTH)): skipped.
    Refused,
    /// A time above `i64::MAX` ns, beyond what a trace can hold: the row is
    /// skipped.
    TimeOutOfRange,
}

impl AnomalyKind {
    /// Whether rows of `processes` or `streams` raise it (as opposed to span
    /// and event rows).
    pub fn is_definition(self) -> bool {
        matches!(
            self,
            AnomalyKind::StreamWithoutProcess
                | AnomalyKind::DuplicateProcess
                | AnomalyKind::DuplicateStream
        )
    }
}

/// The anomalies of one kind: how many, and the first few.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Anomalies {
    /// How many rows raised it.
    pub count: u64,
    /// Up to [`EXAMPLES_KEPT`] of them, described.
    pub examples: Vec<String>,
}

/// What an import showed, and what it could not make sense of.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Thread spans shown.
    pub thread_spans: u64,
    /// Async spans shown.
    pub async_spans: u64,
    /// Spans shown cut (at the window, or at the process's limits), each
    /// with its `clipped` argument.
    pub clipped: u64,
    /// Rows skipped because they lie outside the window.
    pub outside_window: u64,
    /// Anomalies by kind; only kinds that occurred.
    pub anomalies: BTreeMap<AnomalyKind, Anomalies>,
}

impl ImportReport {
    /// Every anomaly counted.
    pub fn total(&self) -> u64 {
        self.anomalies.values().map(|a| a.count).sum()
    }

    /// How many anomalies of `kind` were counted.
    pub fn count(&self, kind: AnomalyKind) -> u64 {
        self.anomalies.get(&kind).map_or(0, |a| a.count)
    }

    pub(crate) fn note(&mut self, kind: AnomalyKind, example: impl FnOnce() -> String) {
        let a = self.anomalies.entry(kind).or_default();
        a.count += 1;
        if a.examples.len() < EXAMPLES_KEPT {
            a.examples.push(example());
        }
    }

    /// Adds another importer's report to this one.
    pub fn merge(&mut self, other: &ImportReport) {
        self.merge_where(other, |_| true);
    }

    /// Adds another importer's counts and span/event anomalies, not its
    /// process and stream anomalies: for importers that split one lake and
    /// were each given the same process and stream rows.
    pub fn merge_spans(&mut self, other: &ImportReport) {
        self.merge_where(other, |k| !k.is_definition());
    }

    fn merge_where(&mut self, other: &ImportReport, keep: impl Fn(AnomalyKind) -> bool) {
        self.thread_spans += other.thread_spans;
        self.async_spans += other.async_spans;
        self.clipped += other.clipped;
        self.outside_window += other.outside_window;
        for (&kind, a) in other.anomalies.iter().filter(|(k, _)| keep(**k)) {
            let mine = self.anomalies.entry(kind).or_default();
            mine.count += a.count;
            let room = EXAMPLES_KEPT.saturating_sub(mine.examples.len());
            mine.examples.extend(a.examples.iter().take(room).cloned());
        }
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} thread spans, {} async spans shown ({} clipped); {} rows outside the window",
            self.thread_spans, self.async_spans, self.clipped, self.outside_window
        )?;
        if self.anomalies.is_empty() {
            return writeln!(f, "no anomalies");
        }
        writeln!(f, "{} anomalies:", self.total())?;
        for (kind, a) in &self.anomalies {
            writeln!(f, "  {kind:?}: {}", a.count)?;
            for e in &a.examples {
                writeln!(f, "    {e}")?;
            }
        }
        Ok(())
    }
}
