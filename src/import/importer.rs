//! The importer's state machine: processes and streams to tracks, thread
//! spans per stream, async events per process.

use std::collections::HashMap;

use super::report::{AnomalyKind, ImportReport};
use super::rows::{AsyncEventRow, ProcessRow, StreamRow, ThreadSpanRow};
use super::{ImportConfig, ImportError, SpanKinds, Table, Window};
use crate::error::Error;
use crate::event::{Arg, Event, Value};
use crate::ids::{AsyncLane, AsyncParent, ProcessTrack, ThreadTrack};
use crate::keys::EventKey;
use crate::trace_writer::TraceWriter;
use xxhash_rust::xxh3::Xxh3;

/// The name of the lane of async spans under each thread.
pub const ASYNC_LANE: &str = "async";

/// The largest time a trace holds (the trace processor's time is an `i64`).
const MAX_TIME: u64 = i64::MAX as u64;

struct Process {
    track: Option<ProcessTrack>,
    exe: Box<str>,
    pid: Option<i64>,
    /// Start and end as given; none for a process made up for a stream.
    times: Option<(u64, Option<u64>)>,
    asyncs: AsyncState,
}

struct Stream {
    process: usize,
    /// `process_id`, `thread_name`, `thread_id` as given, to tell a repeated
    /// row from a conflicting one.
    given: (Box<str>, Box<str>, Option<i64>),
    thread: Option<ThreadTrack>,
    lane: Option<AsyncLane>,
    /// The latest `begin` of its thread span rows.
    last_begin: Option<u64>,
    /// The ends of the spans enclosing the next one, outermost first: the
    /// nesting the writer will show, mirrored to check each row's depth.
    stack: Vec<u64>,
    /// The rows with the latest `begin`, held until a later begin comes:
    /// the service's order leaves ties in any order, the writer wants the
    /// outer span first.
    held: Vec<OwnedSpan>,
}

/// A thread span row held (strings owned).
#[derive(Default)]
struct OwnedSpan {
    begin: u64,
    end: u64,
    depth: u32,
    name: String,
    target: String,
    filename: String,
    line: u32,
}

/// A begin (or end) row kept for later, strings owned.
#[derive(Clone)]
struct OwnedEvent {
    stream: usize,
    time: u64,
    span_id: u64,
    parent: Option<u64>,
    depth: u32,
    name: String,
    target: String,
    filename: String,
    line: u32,
}

impl OwnedEvent {
    fn new(stream: usize, row: &AsyncEventRow<'_>) -> Self {
        OwnedEvent {
            stream,
            time: row.time,
            span_id: row.span_id,
            parent: row.parent(),
            depth: row.depth,
            name: row.name.to_owned(),
            target: row.target.to_owned(),
            filename: row.filename.to_owned(),
            line: row.line,
        }
    }

    fn view(&self) -> EventView<'_> {
        EventView {
            stream: self.stream,
            span_id: self.span_id,
            parent: self.parent,
            depth: self.depth,
            name: &self.name,
            target: &self.target,
            filename: &self.filename,
            line: self.line,
        }
    }
}

/// What a begin writes, borrowed from a row or from an [`OwnedEvent`].
#[derive(Clone, Copy)]
struct EventView<'a> {
    stream: usize,
    span_id: u64,
    parent: Option<u64>,
    depth: u32,
    name: &'a str,
    target: &'a str,
    filename: &'a str,
    line: u32,
}

/// An async span shown and not ended yet.
#[derive(Clone, Copy)]
struct Flight {
    lane: AsyncLane,
    begin: u64,
    depth: u32,
    /// Whether it was begun at the window's start, its begin being earlier.
    cut_begin: bool,
}

#[derive(Default)]
struct AsyncState {
    /// The time of the latest async event row, and of the first.
    last: Option<u64>,
    first: Option<u64>,
    /// Begins whose parent was not in flight, held until the time of the
    /// rows moves on: the parent's begin may come later at the same time.
    deferred: Vec<OwnedEvent>,
    /// Ends of spans in flight at the time of the rows, written once it
    /// moves on: a begin at that time may name them as its parent.
    ends: Vec<(u64, u64)>,
    in_flight: HashMap<u64, Flight>,
    /// Begun before the window, not ended yet: shown from the window's start.
    before: HashMap<u64, OwnedEvent>,
    /// Ends whose begin was not seen, shown at the end (a begin with the
    /// same id at a later time shows the end came first).
    orphans: HashMap<u64, OwnedEvent>,
    /// Ends before the window whose begin was not seen: id to time.
    orphans_before: HashMap<u64, u64>,
    /// Whether the rows reached the window's start, and passed its end.
    opened: bool,
    closed: bool,
}

/// The event keys of the call sites (name, target, file, line) the rows
/// named so far: rows repeat a bounded set of functions, and a key spares
/// the writer looking up three strings that sit at a new address in every
/// row.
#[derive(Default)]
struct Sites {
    /// By a hash of the site: its strings end to end, the lengths of the
    /// first two and the line, to confirm the hash.
    by_hash: HashMap<u64, (Box<str>, [u32; 3], EventKey)>,
}

impl Sites {
    /// The key of a site, registered with `w` the first time; none if the
    /// writer refuses it (a string too long), for the call to refuse with
    /// the strings.
    fn key<W: TraceWriter>(
        &mut self,
        w: &mut W,
        name: &str,
        target: &str,
        file: &str,
        line: u32,
    ) -> Option<EventKey> {
        let mut hasher = Xxh3::new();
        for s in [name, target, file] {
            hasher.update(&(s.len() as u64).to_le_bytes());
            hasher.update(s.as_bytes());
        }
        hasher.update(&line.to_le_bytes());
        let hash = hasher.digest();
        let lens = [name.len() as u32, target.len() as u32, line];
        if let Some((text, l, key)) = self.by_hash.get(&hash) {
            let (n, rest) = text.split_at(l[0] as usize);
            let (t, f) = rest.split_at(l[1] as usize);
            if (n, t, f, l[2]) == (name, target, file, line) {
                return Some(*key);
            }
        }
        let key = w.event_key(name, target, file, line).ok()?;
        // A site whose hash another took is registered on each use; the
        // writer gives its key again.
        self.by_hash
            .entry(hash)
            .or_insert_with(|| ([name, target, file].concat().into(), lens, key));
        Some(key)
    }
}

/// The event of a site: its key, or its strings where the writer refused
/// the key (the call then refuses the strings likewise).
fn site_event<'a>(
    key: Option<EventKey>,
    name: &'a str,
    target: &'a str,
    file: &'a str,
    line: u32,
) -> Event<'a> {
    match key {
        Some(k) => Event::from_key(k),
        None => Event::new(name).category(target).location(file, line),
    }
}

/// Writes rows through a writer; see the [module docs](super).
pub struct Importer<'w, W: TraceWriter> {
    writer: &'w mut W,
    config: ImportConfig,
    report: ImportReport,
    processes: Vec<Process>,
    process_index: HashMap<Box<str>, usize>,
    streams: Vec<Stream>,
    stream_index: HashMap<Box<str>, usize>,
    thread_rows: u64,
    async_rows: u64,
    /// Held rows' buffers, reused.
    spare: Vec<OwnedSpan>,
    sites: Sites,
}

/// What a writer call's error means for the import: a sink failure stops
/// it; anything else is a row the writer refused, counted.
fn refused(e: Error) -> Result<String, ImportError> {
    match e {
        Error::Io(_) | Error::Finished => Err(ImportError::Writer(e)),
        other => Ok(other.to_string()),
    }
}

impl<'w, W: TraceWriter> Importer<'w, W> {
    /// An importer writing through `writer`.
    ///
    /// # Errors
    /// [`ImportError::BadWindow`] for a window that ends before it begins.
    pub fn new(writer: &'w mut W, config: ImportConfig) -> Result<Self, ImportError> {
        if let Some(w) = config.window {
            if w.end < w.begin {
                return Err(ImportError::BadWindow {
                    begin: w.begin,
                    end: w.end,
                });
            }
        }
        Ok(Importer {
            writer,
            config,
            report: ImportReport::default(),
            processes: Vec::new(),
            process_index: HashMap::new(),
            streams: Vec::new(),
            stream_index: HashMap::new(),
            thread_rows: 0,
            async_rows: 0,
            spare: Vec::new(),
            sites: Sites::default(),
        })
    }

    /// The report so far.
    pub fn report(&self) -> &ImportReport {
        &self.report
    }

    fn threads_on(&self) -> bool {
        self.config.spans != SpanKinds::Async
    }

    fn asyncs_on(&self) -> bool {
        self.config.spans != SpanKinds::Thread
    }

    /// Runs a writer call; a refusal is counted as [`AnomalyKind::Refused`]
    /// (with `what` the row) and gives `None`.
    fn call<T>(
        &mut self,
        what: impl FnOnce() -> String,
        f: impl FnOnce(&mut W) -> crate::Result<T>,
    ) -> Result<Option<T>, ImportError> {
        match f(&mut *self.writer) {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                let why = refused(e)?;
                self.report
                    .note(AnomalyKind::Refused, || format!("{}: {why}", what()));
                Ok(None)
            }
        }
    }

    /// A row of `processes`: describes the process (its track, named by
    /// `exe`). A process id given again with the same columns is ignored;
    /// with others, counted ([`AnomalyKind::DuplicateProcess`]) and ignored.
    ///
    /// # Errors
    /// [`ImportError::Writer`] if the writer's sink failed.
    pub fn process(&mut self, row: &ProcessRow<'_>) -> Result<(), ImportError> {
        let times = Some((row.start_time, row.end_time));
        if let Some(&p) = self.process_index.get(row.process_id) {
            let known = &mut self.processes[p];
            if known.times.is_none() {
                // Made up for a stream that came first: now its times are known.
                known.times = times;
            } else if (&*known.exe, known.pid, known.times) != (row.exe, row.pid, times) {
                self.report.note(AnomalyKind::DuplicateProcess, || {
                    format!(
                        "process {:?} given again with other columns",
                        row.process_id
                    )
                });
            }
            return Ok(());
        }
        let track = self.describe_process(row.process_id, row.pid, row.exe)?;
        self.add_process(row.process_id, track, row.exe, row.pid, times);
        Ok(())
    }

    fn describe_process(
        &mut self,
        key: &str,
        pid: Option<i64>,
        name: &str,
    ) -> Result<Option<ProcessTrack>, ImportError> {
        // Pids the trace processor reads as the caller meant: positive i32s.
        let pid = pid.and_then(|p| i32::try_from(p).ok()).filter(|&p| p > 0);
        match self.writer.process(key, pid, name, &[]) {
            Ok(t) => return Ok(Some(t)),
            Err(Error::PidInUse(_)) => {}
            Err(e) => {
                let why = refused(e)?;
                self.report
                    .note(AnomalyKind::Refused, || format!("process {key:?}: {why}"));
                return Ok(None);
            }
        }
        // Another process of the trace has the pid (pids are reused over
        // time): one is derived.
        self.call(
            || format!("process {key:?}"),
            |w| w.process(key, None, name, &[]),
        )
    }

    fn add_process(
        &mut self,
        key: &str,
        track: Option<ProcessTrack>,
        exe: &str,
        pid: Option<i64>,
        times: Option<(u64, Option<u64>)>,
    ) -> usize {
        let p = self.processes.len();
        self.processes.push(Process {
            track,
            exe: exe.into(),
            pid,
            times,
            asyncs: AsyncState::default(),
        });
        self.process_index.insert(key.into(), p);
        p
    }

    /// A row of `streams`: describes the thread under its process. A stream
    /// naming a process not given is counted
    /// ([`AnomalyKind::StreamWithoutProcess`]) and shown under a process
    /// made from the `process_id` alone. A stream id given again with the
    /// same columns is ignored; with others, counted
    /// ([`AnomalyKind::DuplicateStream`]) and ignored.
    ///
    /// # Errors
    /// [`ImportError::Writer`] if the writer's sink failed.
    pub fn stream(&mut self, row: &StreamRow<'_>) -> Result<(), ImportError> {
        let given = (
            Box::<str>::from(row.process_id),
            Box::<str>::from(row.thread_name),
            row.thread_id,
        );
        if let Some(&s) = self.stream_index.get(row.stream_id) {
            if self.streams[s].given != given {
                self.report.note(AnomalyKind::DuplicateStream, || {
                    format!("stream {:?} given again with other columns", row.stream_id)
                });
            }
            return Ok(());
        }
        let p = match self.process_index.get(row.process_id) {
            Some(&p) => p,
            None => {
                self.report.note(AnomalyKind::StreamWithoutProcess, || {
                    format!(
                        "stream {:?} names process {:?}, not given",
                        row.stream_id, row.process_id
                    )
                });
                let track = self.describe_process(row.process_id, None, row.process_id)?;
                self.add_process(row.process_id, track, row.process_id, None, None)
            }
        };
        let thread = match self.processes[p].track {
            Some(process) => {
                let (key, name) = (row.stream_id, row.thread_name);
                let tid = row.thread_id.filter(|&t| t != 0);
                match self.writer.thread(process, key, tid, name) {
                    Ok(t) => Some(t),
                    // Another thread has the tid: one is derived.
                    Err(Error::TidInUse(_)) => self.call(
                        || format!("stream {key:?}"),
                        |w| w.thread(process, key, None, name),
                    )?,
                    Err(e) => {
                        let why = refused(e)?;
                        self.report
                            .note(AnomalyKind::Refused, || format!("stream {key:?}: {why}"));
                        None
                    }
                }
            }
            None => None,
        };
        self.streams.push(Stream {
            process: p,
            given,
            thread,
            lane: None,
            last_begin: None,
            stack: Vec::new(),
            held: Vec::new(),
        });
        self.stream_index
            .insert(row.stream_id.into(), self.streams.len() - 1);
        Ok(())
    }

    /// A row of `thread_spans`. Rows of one stream come in non-decreasing
    /// `begin`; equal begins in any order. See the module docs for what is
    /// shown and what is counted.
    ///
    /// # Errors
    /// [`ImportError::OutOfOrder`] for a row that begins before the previous
    /// row of its stream (nothing of it is written);
    /// [`ImportError::Writer`] if the writer's sink failed.
    pub fn thread_span(&mut self, row: &ThreadSpanRow<'_>) -> Result<(), ImportError> {
        let index = self.thread_rows;
        self.thread_rows += 1;
        if !self.threads_on() {
            return Ok(());
        }
        let Some(&s) = self.stream_index.get(row.stream_id) else {
            self.report.note(AnomalyKind::UnknownStream, || {
                format!(
                    "thread_spans row {index}: stream {:?} not given",
                    row.stream_id
                )
            });
            return Ok(());
        };
        if row.begin > MAX_TIME || row.end > MAX_TIME {
            self.report.note(AnomalyKind::TimeOutOfRange, || {
                format!(
                    "thread_spans row {index}: {:?} at {}..{}",
                    row.name, row.begin, row.end
                )
            });
            return Ok(());
        }
        let stream = &mut self.streams[s];
        match stream.last_begin {
            Some(last) if row.begin < last => {
                return Err(ImportError::OutOfOrder {
                    table: Table::ThreadSpans,
                    row: index,
                    key: row.stream_id.to_owned(),
                    time: row.begin,
                    previous: last,
                    scope: "stream",
                })
            }
            Some(last) if row.begin > last => self.place_held(s)?,
            _ => {}
        }
        self.streams[s].last_begin = Some(row.begin);
        let mut held = self.spare.pop().unwrap_or_default();
        held.begin = row.begin;
        held.end = row.end;
        held.depth = row.depth;
        held.line = row.line;
        for (to, from) in [
            (&mut held.name, row.name),
            (&mut held.target, row.target),
            (&mut held.filename, row.filename),
        ] {
            to.clear();
            to.push_str(from);
        }
        self.streams[s].held.push(held);
        Ok(())
    }

    /// Writes the held rows of stream `s` (all with one begin), outer first.
    fn place_held(&mut self, s: usize) -> Result<(), ImportError> {
        let mut held = std::mem::take(&mut self.streams[s].held);
        let Some(begin) = held.first().map(|h| h.begin) else {
            return Ok(());
        };
        // First the zero-length rows that sit in spans ending right here
        // (deeper than the spans still open, no deeper than those ending
        // now): those spans' last children, deepest first (the innermost
        // span closes first). Then the others, outer first: by depth; at
        // one depth a zero-length span first (a sibling of the next), then
        // the longest.
        let stack = &self.streams[s].stack;
        let open = stack.iter().take_while(|&&e| e > begin).count();
        let ending = stack.iter().take_while(|&&e| e >= begin).count();
        let at_end =
            |h: &OwnedSpan| h.end == h.begin && (open + 1..=ending).contains(&(h.depth as usize));
        held.sort_by_key(|h| {
            let last_child = at_end(h);
            let depth = i64::from(h.depth);
            (
                !last_child,
                if last_child { -depth } else { depth },
                h.end != h.begin,
                std::cmp::Reverse(h.end),
            )
        });
        let mut result = Ok(());
        for h in held.iter() {
            if result.is_ok() {
                result = self.place_span(s, h);
            }
        }
        self.spare.append(&mut held);
        result
    }

    fn place_span(&mut self, s: usize, h: &OwnedSpan) -> Result<(), ImportError> {
        let stream_key = || format!("{:?} at {}..{}", h.name, h.begin, h.end);
        if h.end < h.begin {
            self.report
                .note(AnomalyKind::ThreadSpanEndBeforeBegin, stream_key);
            return Ok(());
        }
        let stream = &mut self.streams[s];
        // The spans open at its begin (ends fall from the outermost in):
        // those not ended by then must enclose it; those ending exactly
        // then may, as their zero-length child at their very end.
        let min = stream.stack.iter().take_while(|&&e| e > h.begin).count();
        let max = stream.stack.iter().take_while(|&&e| e >= h.end).count();
        if max < min {
            let limit = stream.stack[max];
            self.report.note(AnomalyKind::ThreadSpanNotNested, || {
                format!("{} crosses the end {limit} of its parent", stream_key())
            });
            return Ok(());
        }
        // The row's depth where the times allow it, else where they put it.
        let depth = match h.depth as usize {
            d if (min..=max).contains(&d) => d,
            d => {
                self.report.note(AnomalyKind::ThreadSpanDepth, || {
                    format!("{} has depth {d} but nests at depth {min}", stream_key())
                });
                min
            }
        };
        stream.stack.truncate(depth);
        stream.stack.push(h.end);
        let shown = self
            .config
            .window
            .is_none_or(|w| h.begin <= w.end && h.end >= w.begin);
        if !shown {
            self.report.outside_window += 1;
            return Ok(());
        }
        let Some(thread) = stream.thread else {
            return Ok(());
        };
        let key = self
            .sites
            .key(&mut *self.writer, &h.name, &h.target, &h.filename, h.line);
        let event = site_event(key, &h.name, &h.target, &h.filename, h.line);
        if self
            .call(stream_key, |w| {
                w.complete_span_at_depth(thread, depth, h.begin, h.end, &event)
            })?
            .is_some()
        {
            self.report.thread_spans += 1;
        } else {
            // Refused: the writer does not hold it, neither does the mirror.
            self.streams[s].stack.pop();
        }
        Ok(())
    }

    /// A row of `async_events`. Rows of one process come in non-decreasing
    /// `time`; equal times in any order. See the module docs for what is
    /// shown and what is counted.
    ///
    /// # Errors
    /// [`ImportError::OutOfOrder`] for a row earlier than the previous row
    /// of its process (nothing of it is written);
    /// [`ImportError::Writer`] if the writer's sink failed.
    pub fn async_event(&mut self, row: &AsyncEventRow<'_>) -> Result<(), ImportError> {
        let index = self.async_rows;
        self.async_rows += 1;
        if !self.asyncs_on() {
            return Ok(());
        }
        let Some(&s) = self.stream_index.get(row.stream_id) else {
            self.report.note(AnomalyKind::UnknownStream, || {
                format!(
                    "async_events row {index}: stream {:?} not given",
                    row.stream_id
                )
            });
            return Ok(());
        };
        if row.time > MAX_TIME {
            self.report.note(AnomalyKind::TimeOutOfRange, || {
                format!(
                    "async_events row {index}: span {} at {}",
                    row.span_id, row.time
                )
            });
            return Ok(());
        }
        let p = self.streams[s].process;
        let state = &mut self.processes[p].asyncs;
        match state.last {
            Some(last) if row.time < last => {
                let key = self
                    .process_index
                    .iter()
                    .find(|(_, &i)| i == p)
                    .map_or_else(String::new, |(k, _)| k.to_string());
                return Err(ImportError::OutOfOrder {
                    table: Table::AsyncEvents,
                    row: index,
                    key,
                    time: row.time,
                    previous: last,
                    scope: "process",
                });
            }
            Some(last) if row.time > last => self.flush_deferred(p)?,
            _ => {}
        }
        let state = &mut self.processes[p].asyncs;
        state.last = Some(row.time);
        state.first.get_or_insert(row.time);
        let begin = match row.event_type {
            "begin" => true,
            "end" => false,
            other => {
                self.report.note(AnomalyKind::UnknownEventType, || {
                    format!("async_events row {index}: event_type {other:?}")
                });
                return Ok(());
            }
        };
        if let Some(w) = self.config.window {
            let state = &self.processes[p].asyncs;
            if row.time >= w.begin && !state.opened {
                self.open_window(p, w)?;
            }
            if row.time > w.end && !self.processes[p].asyncs.closed {
                self.close_in_flight(p)?;
                self.processes[p].asyncs.closed = true;
            }
            if self.processes[p].asyncs.closed {
                self.report.outside_window += 1;
                return Ok(());
            }
            if row.time < w.begin {
                self.before_window(p, s, row);
                return Ok(());
            }
        }
        let view = EventView {
            stream: s,
            span_id: row.span_id,
            parent: row.parent(),
            depth: row.depth,
            name: row.name,
            target: row.target,
            filename: row.filename,
            line: row.line,
        };
        if begin {
            self.begin(p, view, row.time, false, Defer::Allowed(row))
        } else {
            self.end(p, view, row.time, row)
        }
    }

    /// A row before the window: begins are kept until they end (if they
    /// do not end before the window, they are shown from its start).
    fn before_window(&mut self, p: usize, s: usize, row: &AsyncEventRow<'_>) {
        let state = &mut self.processes[p].asyncs;
        let id = row.span_id;
        if row.event_type == "begin" {
            if state.before.contains_key(&id) {
                self.report.note(AnomalyKind::AsyncDuplicateBegin, || {
                    format!("span {id} begun again at {} while in flight", row.time)
                });
            } else if let Some(end) = state.orphans_before.remove(&id) {
                if end < row.time {
                    self.report.note(AnomalyKind::AsyncEndBeforeBegin, || {
                        format!("span {id} begins at {}, after its end at {end}", row.time)
                    });
                } else {
                    // Its end came first among rows of one time.
                    self.report.outside_window += 1;
                }
            } else {
                let parent = row.parent().and_then(|pid| state.before.get(&pid));
                if let Some(parent) = parent.filter(|p| row.depth != p.depth.saturating_add(1)) {
                    let depth = parent.depth;
                    self.report.note(AnomalyKind::AsyncDepth, || {
                        format!(
                            "span {id} at {} has depth {} under a parent of depth {depth}",
                            row.time, row.depth
                        )
                    });
                }
                self.processes[p]
                    .asyncs
                    .before
                    .insert(id, OwnedEvent::new(s, row));
            }
        } else if state.before.remove(&id).is_some() {
            // Began and ended before the window: not shown.
            self.report.outside_window += 1;
        } else if state.orphans_before.insert(id, row.time).is_some() {
            self.report.note(AnomalyKind::AsyncDuplicateEnd, || {
                format!("span {id} ended again at {}", row.time)
            });
        }
    }

    /// The rows reached the window's start: what began before it and is
    /// still in flight is shown from there, parents first.
    fn open_window(&mut self, p: usize, w: Window) -> Result<(), ImportError> {
        let state = &mut self.processes[p].asyncs;
        state.opened = true;
        let mut pending: Vec<OwnedEvent> = state.before.drain().map(|(_, e)| e).collect();
        state.orphans_before.clear();
        pending.sort_by_key(|e| (e.time, e.depth, e.span_id));
        for e in &pending {
            self.begin(p, e.view(), w.begin, true, Defer::No)?;
        }
        Ok(())
    }

    /// Shows a begin at `ts` (its own time, or the window's start when
    /// `cut_begin`).
    fn begin(
        &mut self,
        p: usize,
        e: EventView<'_>,
        ts: u64,
        cut_begin: bool,
        defer: Defer<'_, '_>,
    ) -> Result<(), ImportError> {
        let id = e.span_id;
        let state = &mut self.processes[p].asyncs;
        if state.in_flight.contains_key(&id) {
            self.report.note(AnomalyKind::AsyncDuplicateBegin, || {
                format!("span {id} begun again at {ts} while in flight")
            });
            return Ok(());
        }
        let parent = match e.parent {
            Some(pid) => match state.in_flight.get(&pid) {
                Some(f) => Some((pid, *f)),
                None => {
                    if let Defer::Allowed(row) = defer {
                        // Its parent's begin may come later at this time.
                        state.deferred.push(OwnedEvent::new(e.stream, row));
                        return Ok(());
                    }
                    None
                }
            },
            None => None,
        };
        let mut zero_length = false;
        if let Some(orphan) = state.orphans.remove(&id) {
            if orphan.time < ts {
                let end = orphan.time;
                self.report.note(AnomalyKind::AsyncEndBeforeBegin, || {
                    format!("span {id} begins at {ts}, after its end at {end}")
                });
                return Ok(());
            }
            // Its end came first among rows of one time: a zero-length span.
            zero_length = true;
        }
        if let Some((_, f)) = parent {
            if e.depth != f.depth.saturating_add(1) {
                self.report.note(AnomalyKind::AsyncDepth, || {
                    format!(
                        "span {id} at {ts} has depth {} under a parent of depth {}",
                        e.depth, f.depth
                    )
                });
            }
        }
        let Some(lane) = self.lane(e.stream)? else {
            return Ok(());
        };
        let args = [
            Arg::new("span_id", Value::Uint(id)),
            Arg::new("parent_span_id", Value::Uint(e.parent.unwrap_or(0))),
        ];
        let n = if e.parent.is_some() { 2 } else { 1 };
        let key = self
            .sites
            .key(&mut *self.writer, e.name, e.target, e.filename, e.line);
        let event = site_event(key, e.name, e.target, e.filename, e.line).args(&args[..n]);
        let what = || format!("async span {id} {:?} at {ts}", e.name);
        let done = match parent {
            Some((pid, f)) => self.call(what, |w| {
                w.async_child_begin(lane, id, AsyncParent::new(f.lane, pid), ts, &event)
            })?,
            None => self.call(what, |w| w.async_span_begin_with(lane, id, ts, &event))?,
        };
        if done.is_none() {
            return Ok(());
        }
        self.report.async_spans += 1;
        let flight = Flight {
            lane,
            begin: ts,
            depth: e.depth,
            cut_begin,
        };
        self.processes[p].asyncs.in_flight.insert(id, flight);
        if zero_length {
            // Ended with the other ends of its time, after the begins (its
            // children among them).
            self.processes[p].asyncs.ends.push((id, ts));
        }
        Ok(())
    }

    /// The lane of async spans under stream `s`'s thread, made on first use.
    fn lane(&mut self, s: usize) -> Result<Option<AsyncLane>, ImportError> {
        if let Some(lane) = self.streams[s].lane {
            return Ok(Some(lane));
        }
        let Some(thread) = self.streams[s].thread else {
            return Ok(None);
        };
        let lane = self.call(
            || "async lane".into(),
            |w| w.async_tree_lane(thread, ASYNC_LANE),
        )?;
        self.streams[s].lane = lane;
        Ok(lane)
    }

    fn end(
        &mut self,
        p: usize,
        e: EventView<'_>,
        ts: u64,
        row: &AsyncEventRow<'_>,
    ) -> Result<(), ImportError> {
        let id = e.span_id;
        let state = &mut self.processes[p].asyncs;
        if state.in_flight.contains_key(&id) {
            state.ends.push((id, ts));
            return Ok(());
        }
        if state.orphans.contains_key(&id) {
            self.report.note(AnomalyKind::AsyncDuplicateEnd, || {
                format!("span {id} ended again at {ts}")
            });
            return Ok(());
        }
        // No begin seen: shown at the end, from the window's or the
        // process's start, unless its begin turns up at this same time.
        state.orphans.insert(id, OwnedEvent::new(e.stream, row));
        Ok(())
    }

    /// Ends span `id` at `ts`; `cut_end` when the window or the process's
    /// end cuts it there.
    fn end_flight(&mut self, p: usize, id: u64, ts: u64, cut_end: bool) -> Result<(), ImportError> {
        let Some(f) = self.processes[p].asyncs.in_flight.remove(&id) else {
            return Ok(());
        };
        let ts = ts.max(f.begin);
        let clipped = match (f.cut_begin, cut_end) {
            (true, true) => Some("both"),
            (true, false) => Some("begin"),
            (false, true) => Some("end"),
            (false, false) => None,
        };
        let what = || format!("end of async span {id} at {ts}");
        match clipped {
            Some(how) => {
                let args = [Arg::new("clipped", Value::Str(how))];
                if self
                    .call(what, |w| w.async_span_end_with(f.lane, id, ts, &args))?
                    .is_some()
                {
                    self.report.clipped += 1;
                }
            }
            None => {
                self.call(what, |w| w.async_span_end(f.lane, id, ts))?;
            }
        }
        Ok(())
    }

    /// The time of the rows moved on: begins held for a parent are shown,
    /// beneath it if it turned up, else at the top; then the ends held.
    fn flush_deferred(&mut self, p: usize) -> Result<(), ImportError> {
        let mut deferred = std::mem::take(&mut self.processes[p].asyncs.deferred);
        while !deferred.is_empty() {
            let in_flight = &self.processes[p].asyncs.in_flight;
            let ready = deferred
                .iter()
                .position(|e| e.parent.is_some_and(|pid| in_flight.contains_key(&pid)));
            // Else one whose parent is not among them either: at the top.
            let root = || {
                deferred
                    .iter()
                    .position(|e| !deferred.iter().any(|o| e.parent == Some(o.span_id)))
                    .unwrap_or(0)
            };
            let e = deferred.remove(ready.unwrap_or_else(root));
            self.begin(p, e.view(), e.time, false, Defer::No)?;
        }
        for (id, ts) in std::mem::take(&mut self.processes[p].asyncs.ends) {
            self.end_flight(p, id, ts, false)?;
        }
        Ok(())
    }

    /// Where spans still in flight end: the window's end or the process's,
    /// whichever is earlier; without a window the process's end, else the
    /// latest time of its async rows.
    fn cut_time(&self, p: usize) -> u64 {
        let process = &self.processes[p];
        let end = process.times.and_then(|(_, end)| end);
        let last = process.asyncs.last.unwrap_or(0);
        match (self.config.window, end) {
            (Some(w), Some(e)) => w.end.min(e),
            (Some(w), None) => w.end,
            (None, Some(e)) => e,
            (None, None) => last,
        }
    }

    /// Ends every span in flight of process `p` at its cut time.
    fn close_in_flight(&mut self, p: usize) -> Result<(), ImportError> {
        self.flush_deferred(p)?;
        let ts = self.cut_time(p);
        let mut open: Vec<(u64, u64)> = self.processes[p]
            .asyncs
            .in_flight
            .iter()
            .map(|(&id, f)| (f.begin, id))
            .collect();
        open.sort_unstable();
        for (_, id) in open {
            self.end_flight(p, id, ts, true)?;
        }
        Ok(())
    }

    /// Shows the ends whose begin was never seen, each from the window's
    /// start, or without a window from the process's start (or its first
    /// async row when its start is not known or later), beneath the thread
    /// of its end row.
    fn show_orphans(&mut self, p: usize) -> Result<(), ImportError> {
        let mut orphans: Vec<OwnedEvent> = self.processes[p]
            .asyncs
            .orphans
            .drain()
            .map(|(_, e)| e)
            .collect();
        orphans.sort_by_key(|e| (e.time, e.span_id));
        let process = &self.processes[p];
        let first = process.asyncs.first.unwrap_or(0);
        let start = match (self.config.window, process.times) {
            (Some(w), _) => w.begin,
            (None, Some((start, _))) => start,
            (None, None) => first,
        };
        for e in &orphans {
            let begin = if start <= e.time {
                start
            } else {
                first.min(e.time)
            };
            let Some(lane) = self.lane(e.stream)? else {
                continue;
            };
            let id = e.span_id;
            let args = [Arg::new("span_id", Value::Uint(id))];
            let key = self
                .sites
                .key(&mut *self.writer, &e.name, &e.target, &e.filename, e.line);
            let event = site_event(key, &e.name, &e.target, &e.filename, e.line).args(&args);
            let what = || format!("async span {id} {:?} ending at {}", e.name, e.time);
            if self
                .call(what, |w| w.async_span_begin_with(lane, id, begin, &event))?
                .is_none()
            {
                continue;
            }
            self.report.async_spans += 1;
            let flight = Flight {
                lane,
                begin,
                depth: e.depth,
                cut_begin: true,
            };
            self.processes[p].asyncs.in_flight.insert(id, flight);
            self.end_flight(p, id, e.time, false)?;
        }
        Ok(())
    }

    /// Writes what is held and closes what is still open (see the module
    /// docs), and returns the report. The writer is not finished: call its
    /// `finish` next.
    ///
    /// # Errors
    /// [`ImportError::Writer`] if the writer's sink failed.
    pub fn finish(mut self) -> Result<ImportReport, ImportError> {
        for s in 0..self.streams.len() {
            self.place_held(s)?;
        }
        for p in 0..self.processes.len() {
            if !self.asyncs_on() {
                break;
            }
            self.flush_deferred(p)?;
            if let Some(w) = self.config.window {
                if !self.processes[p].asyncs.opened {
                    self.open_window(p, w)?;
                }
            }
            if !self.processes[p].asyncs.closed {
                self.close_in_flight(p)?;
            }
            self.show_orphans(p)?;
        }
        Ok(self.report)
    }
}

/// Whether a begin whose parent is not in flight may wait for the time of
/// the rows to move on (its parent's begin may come later at its time).
#[derive(Clone, Copy)]
enum Defer<'r, 'a> {
    Allowed(&'r AsyncEventRow<'a>),
    No,
}
