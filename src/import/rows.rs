//! The four kinds of rows an observability service stores, as borrowed
//! views: one struct per table, one field per column.

/// A row of `processes`: one instrumented process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessRow<'a> {
    /// The process's id in the service (a string, unique across the lake).
    pub process_id: &'a str,
    /// Its executable: the process's name in the trace.
    pub exe: &'a str,
    /// Its pid, if known. 0, a negative pid, one above `i32::MAX` or one
    /// taken by another process of the trace is replaced by a derived pid.
    pub pid: Option<i64>,
    /// When it started (ns).
    pub start_time: u64,
    /// When it ended (ns); none while it still runs.
    pub end_time: Option<u64>,
}

/// A row of `streams`: one thread of a process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamRow<'a> {
    /// The stream's id (unique across the lake).
    pub stream_id: &'a str,
    /// The process it belongs to.
    pub process_id: &'a str,
    /// The thread's name.
    pub thread_name: &'a str,
    /// Its tid, if known. 0, or one taken by another thread of the trace, is
    /// replaced by a derived tid.
    pub thread_id: Option<i64>,
}

/// A row of `thread_spans`: a span of a thread's call tree, both ends known.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadSpanRow<'a> {
    /// The stream (thread) it ran on.
    pub stream_id: &'a str,
    /// Its begin (ns).
    pub begin: u64,
    /// Its end (ns).
    pub end: u64,
    /// Its depth in the call tree (0: outermost).
    pub depth: u32,
    /// Its name.
    pub name: &'a str,
    /// Its target (module path): shown as the category.
    pub target: &'a str,
    /// Its source file ("" for none).
    pub filename: &'a str,
    /// Its source line.
    pub line: u32,
}

/// A row of `async_events`: the begin or the end of an async span.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AsyncEventRow<'a> {
    /// The stream (thread) that emitted the event: an end often comes from
    /// another stream than its begin.
    pub stream_id: &'a str,
    /// When (ns).
    pub time: u64,
    /// `"begin"` or `"end"`.
    pub event_type: &'a str,
    /// The span's id, unique within its process.
    pub span_id: u64,
    /// The parent span's id; none or 0 for none. Read from begin rows only.
    pub parent_span_id: Option<u64>,
    /// The span's depth in the async call tree (0: no parent).
    pub depth: u32,
    /// Its name.
    pub name: &'a str,
    /// Its source file ("" for none).
    pub filename: &'a str,
    /// Its target (module path): shown as the category.
    pub target: &'a str,
    /// Its source line.
    pub line: u32,
}

impl AsyncEventRow<'_> {
    /// The parent span's id, 0 and none both read as none.
    pub fn parent(&self) -> Option<u64> {
        self.parent_span_id.filter(|&p| p != 0)
    }
}
