//! What an event carries besides its time and track: name, category, source
//! location, flows and typed arguments.

use crate::error::{check_len, Error, Result};
use crate::ids::CounterTrack;
use crate::keys::EventKey;
use crate::limits::{MAX_ARG_DEPTH, MAX_CALLSTACK_DEPTH, MAX_STRING_LEN};
use crate::track_options::CounterSample;

/// A span or instant event's description. Build it with [`Event::new`] and
/// the setters; every part but the name is optional.
///
/// ```
/// use perfetto_trace_writer::{Arg, Event, Value};
/// let args = [Arg::new("rows", Value::Uint(42)), Arg::new("table", Value::Str("users"))];
/// let e = Event::new("query").category("sql").location(file!(), line!()).flows(&[7]).args(&args);
/// assert_eq!(e.name, "query");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Event<'a> {
    /// The event's name.
    pub name: &'a str,
    /// Its category ("" for none).
    pub category: &'a str,
    /// Its source file ("" for no source location).
    pub file: &'a str,
    /// Its source line.
    pub line: u32,
    /// Flows this event begins or continues (`TrackEvent.flow_ids`): events
    /// carrying the same id, on any track, are linked in order of time.
    pub flows: &'a [u64],
    /// Flows this event ends (`TrackEvent.terminating_flow_ids`).
    pub terminating_flows: &'a [u64],
    /// Typed arguments (debug annotations).
    pub args: &'a [Arg<'a>],
    /// What relates this slice to slices elsewhere (`TrackEvent.correlation_id`
    /// or its string form): the UI colours and highlights slices of one
    /// correlation together; the trace processor keeps it as the slice's
    /// `correlation_id` arg.
    pub correlation: Option<Correlation<'a>>,
    /// A log line the event carries (`TrackEvent.log_message`), only on the
    /// events of a thread or of a named track under one: the trace
    /// processor puts it in its log table
    /// (`android_logs`), with the thread, and the event's source location, if
    /// it has one, as the line's tag.
    pub log: Option<Log<'a>>,
    /// Values of counter tracks at the event's time
    /// (`extra_counter_values`, `extra_double_counter_values`), such as the
    /// CPU time or bytes allocated so far at a slice's begin: each shows
    /// on its counter track like a [`counter`](crate::TraceWriter::counter)
    /// call.
    pub counters: &'a [(CounterTrack, CounterSample)],
    /// Where in the code the event happened, outermost frame first
    /// (`TrackEvent.callstack_iid`: the callstack, its frames, function
    /// names and source paths are interned per sequence, as names are): the
    /// UI shows it in the slice's details and in flamegraphs of a selection.
    /// At most [`MAX_CALLSTACK_DEPTH`] frames
    /// ([`CallstackTooDeep`](crate::Error::CallstackTooDeep) past it).
    pub callstack: &'a [StackFrame<'a>],
    /// The registered call site this event is of
    /// ([`TraceWriter::event_key`](crate::TraceWriter::event_key)), which
    /// gives its name, category and source location: `name`, `category`
    /// and `file` are then empty ([`Error::KeyAndStrings`] otherwise),
    /// but for a name written inline ([`Event::from_key_named`]). Set by
    /// [`Event::from_key`].
    pub key: Option<EventKey>,
    /// Whether `name` is written in the event itself (`TrackEvent.name`)
    /// rather than interned (`name_iid`), as Perfetto's SDK writes names
    /// that are not known in advance: for a name seen once or a few times,
    /// such as a log message with values in it, which interned would add an
    /// entry to the sequence's interned data and to the writer's tables
    /// each time. With a key, `name` then stands for the key's name.
    /// Set by [`Event::inline_name`] and [`Event::from_key_named`].
    pub inline_name: bool,
}

/// One frame of a callstack: a function, and where in the source it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StackFrame<'a> {
    /// The function's name.
    pub function: &'a str,
    /// Its source file ("" for none).
    pub file: &'a str,
    /// Its line (0 for none).
    pub line: u32,
}

impl<'a> StackFrame<'a> {
    /// A frame of `function` at `file:line`.
    pub const fn new(function: &'a str, file: &'a str, line: u32) -> Self {
        StackFrame {
            function,
            file,
            line,
        }
    }
}

/// A correlation: slices that carry equal ones belong together (one
/// request, one frame, one transaction), whatever their tracks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Correlation<'a> {
    /// A number (`correlation_id`); the trace processor shows it as `tp:#N`.
    Id(u64),
    /// A string (`correlation_id_str_iid`), interned like event names.
    Name(&'a str),
}

/// How severe a log line is (`LogMessage.prio`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogSeverity {
    /// Verbose.
    Verbose = 2,
    /// Debug.
    Debug = 3,
    /// Info.
    Info = 4,
    /// Warning.
    Warn = 5,
    /// Error.
    Error = 6,
    /// Fatal.
    Fatal = 7,
}

/// A log line: its severity and its text, interned like event names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Log<'a> {
    /// Its severity.
    pub severity: LogSeverity,
    /// Its text.
    pub body: &'a str,
}

impl<'a> Event<'a> {
    /// An event with a name and nothing else.
    pub const fn new(name: &'a str) -> Self {
        Event {
            name,
            category: "",
            file: "",
            line: 0,
            flows: &[],
            terminating_flows: &[],
            args: &[],
            correlation: None,
            log: None,
            counters: &[],
            callstack: &[],
            key: None,
            inline_name: false,
        }
    }

    /// An event of a registered call site: its name, category and source
    /// location are the key's, and the writer need not look them up. The
    /// setters add flows, arguments and the rest as to any event.
    ///
    /// ```
    /// use perfetto_trace_writer::{Arg, Event, TraceWriter, Value, Writer};
    /// let mut w = Writer::new();
    /// let p = w.process("svc", Some(7), "service", &[])?;
    /// let t = w.thread(p, "main", Some(7), "main")?;
    /// let query = w.event_key("query", "sql", file!(), line!())?;
    /// let args = [Arg::new("rows", Value::Uint(42))];
    /// w.complete_span_with(t, 10, 50, &Event::from_key(query).args(&args))?;
    /// w.finish()?;
    /// let trace = perfetto_trace_writer::inspect::decode(w.bytes()).unwrap();
    /// assert_eq!((trace.slices[0].name.as_str(), &trace.slices[0].categories[..]), ("query", &["sql".to_owned()][..]));
    /// # Ok::<(), perfetto_trace_writer::Error>(())
    /// ```
    pub const fn from_key(key: EventKey) -> Event<'static> {
        let mut e = Event::new("");
        e.key = Some(key);
        e
    }

    /// An event of a registered call site named `name`, written inline
    /// ([`Event::inline_name`]) in place of the key's name: its category,
    /// source location and argument names are the key's, looked up no
    /// more than for [`Event::from_key`]. For a call site whose events'
    /// names vary (a message formatted with values).
    ///
    /// ```
    /// use perfetto_trace_writer::{Event, TraceWriter, Writer};
    /// let mut w = Writer::new();
    /// let p = w.process("svc", Some(7), "service", &[])?;
    /// let t = w.thread(p, "main", Some(7), "main")?;
    /// let loaded = w.event_key("loaded", "info", file!(), line!())?;
    /// for rows in [3, 5] {
    ///     let name = format!("loaded {rows} rows");
    ///     w.instant(t, 10 * rows, &Event::from_key_named(loaded, &name))?;
    /// }
    /// let trace = perfetto_trace_writer::inspect::decode(w.bytes()).unwrap();
    /// let names: Vec<_> = trace.slices.iter().map(|s| s.name.as_str()).collect();
    /// assert_eq!(names, ["loaded 3 rows", "loaded 5 rows"]);
    /// assert_eq!(trace.slices[1].categories, ["info"]);
    /// # Ok::<(), perfetto_trace_writer::Error>(())
    /// ```
    pub const fn from_key_named(key: EventKey, name: &'a str) -> Self {
        let mut e = Event::new(name);
        e.key = Some(key);
        e.inline_name = true;
        e
    }

    /// Writes the name in the event itself (`TrackEvent.name`), not
    /// interned: see [`Event::inline_name`](Event#structfield.inline_name).
    /// The trace shows the same slice either way.
    ///
    /// ```
    /// use perfetto_trace_writer::{Event, TraceWriter, Writer};
    /// let mut w = Writer::new();
    /// let p = w.process("svc", Some(7), "service", &[])?;
    /// let t = w.thread(p, "main", Some(7), "main")?;
    /// for i in 0..3 {
    ///     let name = format!("request {i} done");
    ///     w.instant(t, 10 * i, &Event::new(&name).category("http").inline_name())?;
    /// }
    /// // Only the category was interned.
    /// assert_eq!(w.interned_count(), 1);
    /// let trace = perfetto_trace_writer::inspect::decode(w.bytes()).unwrap();
    /// assert_eq!(trace.slices[2].name, "request 2 done");
    /// # Ok::<(), perfetto_trace_writer::Error>(())
    /// ```
    pub const fn inline_name(mut self) -> Self {
        self.inline_name = true;
        self
    }

    /// Sets the category.
    pub const fn category(mut self, category: &'a str) -> Self {
        self.category = category;
        self
    }

    /// Sets the source location.
    pub const fn location(mut self, file: &'a str, line: u32) -> Self {
        self.file = file;
        self.line = line;
        self
    }

    /// Sets the flows the event begins or continues.
    pub const fn flows(mut self, ids: &'a [u64]) -> Self {
        self.flows = ids;
        self
    }

    /// Sets the flows the event ends.
    pub const fn terminating_flows(mut self, ids: &'a [u64]) -> Self {
        self.terminating_flows = ids;
        self
    }

    /// Sets the typed arguments.
    pub const fn args(mut self, args: &'a [Arg<'a>]) -> Self {
        self.args = args;
        self
    }

    /// Relates the slice to others carrying the same correlation.
    ///
    /// ```
    /// use perfetto_trace_writer::{Correlation, Event, TraceWriter, Writer};
    /// let mut w = Writer::new();
    /// let p = w.process("svc", Some(7), "service", &[])?;
    /// let t = w.thread(p, "main", Some(7), "main")?;
    /// let u = w.thread(p, "worker", Some(8), "worker")?;
    /// let request = Event::new("handle").correlation(Correlation::Name("req-42"));
    /// w.complete_span_with(t, 10, 50, &request)?;
    /// w.complete_span_with(u, 20, 40, &Event::new("query").correlation(Correlation::Name("req-42")))?;
    /// w.finish()?;
    /// let trace = perfetto_trace_writer::inspect::decode(w.bytes()).unwrap();
    /// assert!(trace.slices.iter().all(|s| s.correlation.as_deref() == Some("req-42")));
    /// # Ok::<(), perfetto_trace_writer::Error>(())
    /// ```
    pub const fn correlation(mut self, correlation: Correlation<'a>) -> Self {
        self.correlation = Some(correlation);
        self
    }

    /// Attaches a log line to the event (on a thread's events only).
    ///
    /// ```
    /// use perfetto_trace_writer::{Event, LogSeverity, TraceWriter, Writer};
    /// let mut w = Writer::new();
    /// let p = w.process("svc", Some(7), "service", &[])?;
    /// let t = w.thread(p, "main", Some(7), "main")?;
    /// let line = Event::new("log").location(file!(), line!()).log(LogSeverity::Warn, "disk 91% full");
    /// w.instant(t, 100, &line)?;
    /// let trace = perfetto_trace_writer::inspect::decode(w.bytes()).unwrap();
    /// let log = &trace.logs[0];
    /// assert_eq!((log.ts, log.severity, log.body.as_str()), (100, 5, "disk 91% full"));
    /// # Ok::<(), perfetto_trace_writer::Error>(())
    /// ```
    pub const fn log(mut self, severity: LogSeverity, body: &'a str) -> Self {
        self.log = Some(Log { severity, body });
        self
    }

    /// Sets the counter values the event carries.
    ///
    /// ```
    /// use perfetto_trace_writer::{CounterSample, Event, TraceWriter, Writer};
    /// let mut w = Writer::new();
    /// let p = w.process("svc", Some(7), "service", &[])?;
    /// let t = w.thread(p, "main", Some(7), "main")?;
    /// let cpu = w.counter_track(t, "cpu time", &Default::default())?;
    /// let begin = [(cpu, CounterSample::Int(1_000))];
    /// w.span_begin_with(t, 10, &Event::new("work").counters(&begin))?;
    /// w.span_end_with_counters(t, 50, &[(cpu, CounterSample::Int(1_030))])?;
    /// let trace = perfetto_trace_writer::inspect::decode(w.bytes()).unwrap();
    /// let values: Vec<_> = trace.counters.iter().map(|c| (c.ts, c.value)).collect();
    /// assert_eq!(values, [(10, 1_000.0), (50, 1_030.0)]);
    /// # Ok::<(), perfetto_trace_writer::Error>(())
    /// ```
    pub const fn counters(mut self, counters: &'a [(CounterTrack, CounterSample)]) -> Self {
        self.counters = counters;
        self
    }

    /// Sets the callstack the event happened in, outermost frame first.
    ///
    /// ```
    /// use perfetto_trace_writer::{Event, StackFrame, TraceWriter, Writer};
    /// let mut w = Writer::new();
    /// let p = w.process("svc", Some(7), "service", &[])?;
    /// let t = w.thread(p, "main", Some(7), "main")?;
    /// let stack = [StackFrame::new("main", "src/main.rs", 3), StackFrame::new("serve", "src/serve.rs", 40)];
    /// w.instant(t, 10, &Event::new("alloc").callstack(&stack))?;
    /// let trace = perfetto_trace_writer::inspect::decode(w.bytes()).unwrap();
    /// assert_eq!(trace.slices[0].callstack[1].function, "serve");
    /// # Ok::<(), perfetto_trace_writer::Error>(())
    /// ```
    pub const fn callstack(mut self, frames: &'a [StackFrame<'a>]) -> Self {
        self.callstack = frames;
        self
    }

    /// Whether the event carries more than its interned strings: what the
    /// general path's rich encoder writes (an inline name among it).
    pub(crate) fn has_extras(&self) -> bool {
        !(self.flows.is_empty()
            && self.counters.is_empty()
            && self.callstack.is_empty()
            && self.terminating_flows.is_empty()
            && self.args.is_empty()
            && self.correlation.is_none()
            && self.log.is_none()
            && !self.inline_name)
    }

    /// Whether the event carries arguments and nothing else besides its
    /// interned strings.
    #[inline(always)]
    pub(crate) fn only_args(&self) -> bool {
        !self.args.is_empty() && self.no_more_than_args() && !self.inline_name
    }

    /// Whether the event carries nothing but its strings and arguments
    /// (none, maybe).
    #[inline(always)]
    pub(crate) fn no_more_than_args(&self) -> bool {
        self.flows.is_empty()
            && self.terminating_flows.is_empty()
            && self.counters.is_empty()
            && self.callstack.is_empty()
            && self.correlation.is_none()
            && self.log.is_none()
    }

    /// The strings of the correlation and log line, which `check` bounds.
    fn more_strings(&self) -> [&'a str; 2] {
        let correlation = match self.correlation {
            Some(Correlation::Name(s)) => s,
            _ => "",
        };
        [correlation, self.log.map_or("", |l| l.body)]
    }

    /// Checks string lengths and argument nesting before anything is written.
    #[inline(always)]
    pub(crate) fn check(&self) -> Result<()> {
        // One comparison when all three are short (most calls): none of
        // them can then be longer than the limit.
        let lens = self.name.len() | self.category.len() | self.file.len();
        if lens > MAX_STRING_LEN {
            check_len([self.name, self.category, self.file])?;
        }
        if self.key.is_some() && lens != 0 {
            // A key's event may name itself inline, and only that.
            let inline_only = self.inline_name && (self.category.len() | self.file.len()) == 0;
            if !inline_only {
                return Err(Error::KeyAndStrings);
            }
        }
        if !self.args.is_empty() {
            check_args(self.args, 0)?;
        }
        if self.correlation.is_some() || self.log.is_some() {
            check_len(self.more_strings())?;
        }
        if !self.callstack.is_empty() {
            check_frames(self.callstack)?;
        }
        Ok(())
    }
}

#[cold]
fn check_frames(frames: &[StackFrame<'_>]) -> Result<()> {
    if frames.len() > MAX_CALLSTACK_DEPTH {
        return Err(Error::CallstackTooDeep(frames.len()));
    }
    check_len(frames.iter().flat_map(|f| [f.function, f.file]))
}

/// A named argument.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Arg<'a> {
    /// Its name, interned like event names.
    pub name: &'a str,
    /// Its value.
    pub value: Value<'a>,
}

impl<'a> Arg<'a> {
    /// An argument.
    pub const fn new(name: &'a str, value: Value<'a>) -> Self {
        Arg { name, value }
    }
}

/// A typed argument value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    Uint(u64),
    /// A floating-point number.
    Double(f64),
    /// A string.
    Str(&'a str),
    /// Named values, shown nested under the argument's name.
    Dict(&'a [Arg<'a>]),
    /// Values shown as `name[0]`, `name[1]`, ...
    Array(&'a [Value<'a>]),
}

/// [`Error::StringTooLong`] or [`Error::ArgsTooDeep`] for arguments the
/// writer cannot take. Most are flat with short strings: one pass over
/// them answers, without a call per argument.
#[inline]
fn check_args(args: &[Arg<'_>], depth: usize) -> Result<()> {
    let flat_and_short = args.iter().all(|a| {
        let value = match a.value {
            Value::Str(s) => s.len(),
            Value::Dict(_) | Value::Array(_) => usize::MAX,
            _ => 0,
        };
        a.name.len() <= MAX_STRING_LEN && value <= MAX_STRING_LEN
    });
    if flat_and_short {
        return Ok(());
    }
    check_each_arg(args, depth)
}

#[cold]
fn check_each_arg(args: &[Arg<'_>], depth: usize) -> Result<()> {
    for arg in args {
        check_len([arg.name])?;
        check_value(&arg.value, depth)?;
    }
    Ok(())
}

fn check_value(value: &Value<'_>, depth: usize) -> Result<()> {
    match *value {
        Value::Str(s) => check_len([s]),
        Value::Dict(args) => {
            deeper(depth)?;
            check_args(args, depth + 1)
        }
        Value::Array(values) => {
            deeper(depth)?;
            values.iter().try_for_each(|v| check_value(v, depth + 1))
        }
        _ => Ok(()),
    }
}

fn deeper(depth: usize) -> Result<()> {
    if depth + 1 >= MAX_ARG_DEPTH {
        return Err(Error::ArgsTooDeep);
    }
    Ok(())
}

/// Every argument name in `args`, nested ones included, in encoding order.
pub(crate) fn for_each_name<'a>(args: &[Arg<'a>], f: &mut impl FnMut(&'a str)) {
    for arg in args {
        f(arg.name);
        for_each_value_name(&arg.value, f);
    }
}

fn for_each_value_name<'a>(value: &Value<'a>, f: &mut impl FnMut(&'a str)) {
    match *value {
        Value::Dict(args) => for_each_name(args, f),
        Value::Array(values) => values.iter().for_each(|v| for_each_value_name(v, f)),
        _ => {}
    }
}
