//! A small lake for the tests: rows made by a seeded generator, written as
//! Parquet, CSV or JSON lines, and the trace the importer writes from them
//! directly, without DataFusion.
#![allow(dead_code)]

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::SessionContext;
use perfetto_trace_writer::import::{
    AsyncEventRow, ImportConfig, ImportReport, Importer, ProcessRow, SpanKinds, StreamRow,
    ThreadSpanRow,
};
use perfetto_trace_writer::{inspect, TraceWriter, Writer};
use perfetto_trace_writer_datafusion::Format;

/// The importer's seeded simulation of an instrumented service.
#[path = "../../../../examples/lake_sim/mod.rs"]
pub mod sim;

// The root crate's trace-processor helper, shared rather than copied.
#[path = "../../../../tests/common/tp.rs"]
mod tp;

#[derive(Clone, Debug)]
pub struct Process {
    pub id: String,
    pub exe: String,
    pub pid: Option<i64>,
    pub start: i64,
    pub end: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct Stream {
    pub id: String,
    pub process: String,
    pub name: String,
    pub tid: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct ThreadSpan {
    pub stream: String,
    pub begin: i64,
    pub end: i64,
    pub depth: i64,
    pub name: String,
    pub target: String,
    pub file: String,
    pub line: i64,
}

#[derive(Clone, Debug)]
pub struct AsyncEvent {
    pub stream: String,
    pub time: i64,
    pub kind: &'static str,
    pub span: i64,
    pub parent: Option<i64>,
    pub depth: i64,
    pub name: String,
    pub file: String,
    pub target: String,
    pub line: i64,
}

#[derive(Clone, Debug, Default)]
pub struct Lake {
    pub processes: Vec<Process>,
    pub streams: Vec<Stream>,
    pub thread_spans: Vec<ThreadSpan>,
    pub async_events: Vec<AsyncEvent>,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// `processes` processes of `threads` streams each; on every stream nested
/// thread spans (`spans_per_stream` top-level trees); async tasks begun on
/// one stream and ended on another, children of other tasks, some still
/// open at the end.
pub fn generate(
    seed: u64,
    processes: usize,
    threads: usize,
    spans_per_stream: usize,
    tasks: usize,
) -> Lake {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut lake = Lake::default();
    for p in 0..processes {
        let pid = format!("proc-{p}");
        let start = 1_000 + p as i64 * 10;
        let end = start + 10_000_000;
        lake.processes.push(Process {
            id: pid.clone(),
            exe: format!("service-{p}"),
            pid: if p % 2 == 0 {
                Some(4000 + p as i64)
            } else {
                None
            },
            start,
            end: if p % 3 == 2 { None } else { Some(end) },
        });
        let streams: Vec<String> = (0..threads).map(|t| format!("{pid}-stream-{t}")).collect();
        for (t, s) in streams.iter().enumerate() {
            lake.streams.push(Stream {
                id: s.clone(),
                process: pid.clone(),
                name: format!("worker-{t}"),
                tid: if t == 0 {
                    Some(5000 + p as i64 * 100)
                } else {
                    None
                },
            });
            // Trees of nested spans, one after the other.
            let mut at = start + rng.below(1000) as i64;
            for k in 0..spans_per_stream {
                let len = 1_000 + rng.below(50_000) as i64;
                tree(&mut rng, &mut lake.thread_spans, s, at, at + len, 0, k);
                at += len + rng.below(5_000) as i64;
            }
        }
        // Async tasks: begun on one stream, ended on another.
        let mut open: Vec<(i64, i64, i64)> = Vec::new(); // (span, end time, depth)
        let mut at = start;
        for k in 0..tasks {
            at += 1 + rng.below(20_000) as i64;
            let span = (k + 1) as i64;
            let (parent, depth) = match open.iter().rfind(|o| o.1 > at) {
                Some(&(ps, _, d)) if rng.below(2) == 0 => (Some(ps), d + 1),
                _ => (if rng.below(2) == 0 { Some(0) } else { None }, 0),
            };
            let name = format!("task {}", k % 7);
            let file = format!("src/tasks/{}.rs", k % 3);
            let begin_stream = streams[rng.below(threads as u64) as usize].clone();
            let end_stream = streams[rng.below(threads as u64) as usize].clone();
            let len = rng.below(200_000) as i64;
            lake.async_events.push(AsyncEvent {
                stream: begin_stream,
                time: at,
                kind: "begin",
                span,
                parent,
                depth,
                name: name.clone(),
                file: file.clone(),
                target: "tasks".into(),
                line: 10 + (k % 5) as i64,
            });
            // One task in ten never ends (still open).
            if rng.below(10) != 0 {
                lake.async_events.push(AsyncEvent {
                    stream: end_stream,
                    time: at + len,
                    kind: "end",
                    span,
                    parent,
                    depth,
                    name,
                    file,
                    target: "tasks".into(),
                    line: 10 + (k % 5) as i64,
                });
            }
            open.push((span, at + len, depth));
        }
    }
    lake
}

fn tree(
    rng: &mut Rng,
    out: &mut Vec<ThreadSpan>,
    stream: &str,
    begin: i64,
    end: i64,
    depth: i64,
    k: usize,
) {
    out.push(ThreadSpan {
        stream: stream.to_owned(),
        begin,
        end,
        depth,
        name: format!("fn_{}_{}", depth, k % 5),
        target: "app".into(),
        file: format!("src/module_{depth}.rs"),
        line: 100 + depth,
    });
    if depth >= 3 || end - begin < 100 {
        return;
    }
    let mut at = begin + rng.below(((end - begin) / 4) as u64) as i64;
    for i in 0..rng.below(3) {
        let len = rng.below(((end - at) / 2).max(1) as u64) as i64;
        if at + len > end {
            break;
        }
        tree(rng, out, stream, at, at + len, depth + 1, k + i as usize);
        at += len + rng.below(100) as i64;
    }
}

/// How the lake stores its times.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Times {
    Nanos,
    Timestamps,
}

fn strings<'a>(v: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(v))
}

fn ints(v: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(Int64Array::from_iter(v))
}

fn times(v: impl Iterator<Item = Option<i64>>, t: Times) -> ArrayRef {
    match t {
        Times::Nanos => ints(v),
        Times::Timestamps => Arc::new(TimestampNanosecondArray::from_iter(v).with_timezone("UTC")),
    }
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap()
}

impl Lake {
    /// The rows of a simulated service (`sim::simulate`).
    pub fn from_sim(l: &sim::Lake) -> Lake {
        let ns = |t: u64| i64::try_from(t).unwrap();
        Lake {
            processes: l
                .processes
                .iter()
                .map(|p| Process {
                    id: p.process_id.clone(),
                    exe: p.exe.clone(),
                    pid: p.pid,
                    start: ns(p.start_time),
                    end: p.end_time.map(ns),
                })
                .collect(),
            streams: l
                .streams
                .iter()
                .map(|s| Stream {
                    id: s.stream_id.clone(),
                    process: s.process_id.clone(),
                    name: s.thread_name.clone(),
                    tid: s.thread_id,
                })
                .collect(),
            thread_spans: l
                .thread_spans
                .iter()
                .map(|t| ThreadSpan {
                    stream: t.stream_id.clone(),
                    begin: ns(t.begin),
                    end: ns(t.end),
                    depth: i64::from(t.depth),
                    name: t.name.clone(),
                    target: t.target.clone(),
                    file: t.filename.clone(),
                    line: i64::from(t.line),
                })
                .collect(),
            async_events: l
                .async_events
                .iter()
                .map(|e| AsyncEvent {
                    stream: e.stream_id.clone(),
                    time: ns(e.time),
                    kind: e.event_type,
                    span: ns(e.span_id),
                    parent: Some(ns(e.parent_span_id)),
                    depth: i64::from(e.depth),
                    name: e.name.clone(),
                    file: e.filename.clone(),
                    target: e.target.clone(),
                    line: i64::from(e.line),
                })
                .collect(),
        }
    }

    /// The four tables as record batches: processes, streams, thread_spans,
    /// async_events.
    pub fn batches(&self, t: Times) -> [(&'static str, RecordBatch); 4] {
        let p = &self.processes;
        let s = &self.streams;
        let ts = &self.thread_spans;
        let ae = &self.async_events;
        [
            (
                "processes",
                batch(vec![
                    ("process_id", strings(p.iter().map(|r| r.id.as_str()))),
                    ("exe", strings(p.iter().map(|r| r.exe.as_str()))),
                    ("pid", ints(p.iter().map(|r| r.pid))),
                    ("start_time", times(p.iter().map(|r| Some(r.start)), t)),
                    ("end_time", times(p.iter().map(|r| r.end), t)),
                ]),
            ),
            (
                "streams",
                batch(vec![
                    ("stream_id", strings(s.iter().map(|r| r.id.as_str()))),
                    ("process_id", strings(s.iter().map(|r| r.process.as_str()))),
                    ("thread_name", strings(s.iter().map(|r| r.name.as_str()))),
                    ("thread_id", ints(s.iter().map(|r| r.tid))),
                ]),
            ),
            (
                "thread_spans",
                batch(vec![
                    ("stream_id", strings(ts.iter().map(|r| r.stream.as_str()))),
                    ("begin", times(ts.iter().map(|r| Some(r.begin)), t)),
                    ("end", times(ts.iter().map(|r| Some(r.end)), t)),
                    ("depth", ints(ts.iter().map(|r| Some(r.depth)))),
                    ("name", strings(ts.iter().map(|r| r.name.as_str()))),
                    ("target", strings(ts.iter().map(|r| r.target.as_str()))),
                    ("filename", strings(ts.iter().map(|r| r.file.as_str()))),
                    ("line", ints(ts.iter().map(|r| Some(r.line)))),
                ]),
            ),
            (
                "async_events",
                batch(vec![
                    ("stream_id", strings(ae.iter().map(|r| r.stream.as_str()))),
                    ("time", times(ae.iter().map(|r| Some(r.time)), t)),
                    ("event_type", strings(ae.iter().map(|r| r.kind))),
                    ("span_id", ints(ae.iter().map(|r| Some(r.span)))),
                    ("parent_span_id", ints(ae.iter().map(|r| r.parent))),
                    ("depth", ints(ae.iter().map(|r| Some(r.depth)))),
                    ("name", strings(ae.iter().map(|r| r.name.as_str()))),
                    ("filename", strings(ae.iter().map(|r| r.file.as_str()))),
                    ("target", strings(ae.iter().map(|r| r.target.as_str()))),
                    ("line", ints(ae.iter().map(|r| Some(r.line)))),
                ]),
            ),
        ]
    }

    /// The lake with its span tables in time order (thread spans by
    /// `begin`, async events by `time`; ties as they were), as a service
    /// appending its telemetry stores them.
    pub fn by_time(&self) -> Lake {
        let mut lake = self.clone();
        lake.thread_spans.sort_by_key(|s| s.begin);
        lake.async_events.sort_by_key(|e| e.time);
        lake
    }

    /// Writes the lake into `dir`, each table as one file (`split`: as a
    /// folder of two files).
    pub fn write(&self, dir: &Path, format: Format, t: Times, split: bool) {
        std::fs::create_dir_all(dir).unwrap();
        for (name, b) in self.batches(t) {
            let ext = match format {
                Format::Parquet => "parquet",
                Format::Csv => "csv",
                Format::JsonLines => "jsonl",
            };
            if split && b.num_rows() >= 2 {
                let folder = dir.join(name);
                std::fs::create_dir_all(&folder).unwrap();
                let half = b.num_rows() / 2;
                write_file(&folder.join(format!("a.{ext}")), format, &b.slice(0, half));
                write_file(
                    &folder.join(format!("b.{ext}")),
                    format,
                    &b.slice(half, b.num_rows() - half),
                );
            } else {
                write_file(&dir.join(format!("{name}.{ext}")), format, &b);
            }
        }
    }

    /// Registers the lake in memory.
    pub fn register(&self, ctx: &SessionContext, t: Times) {
        for (name, b) in self.batches(t) {
            ctx.register_batch(name, b).unwrap();
        }
    }
}

fn write_file(path: &Path, format: Format, b: &RecordBatch) {
    let f = File::create(path).unwrap();
    match format {
        Format::Parquet => {
            let props = datafusion::parquet::file::properties::WriterProperties::builder()
                .set_max_row_group_row_count(Some(1000))
                .build();
            let mut w = ArrowWriter::try_new(f, b.schema(), Some(props)).unwrap();
            w.write(b).unwrap();
            w.close().unwrap();
        }
        Format::Csv => {
            let mut w = datafusion::arrow::csv::Writer::new(f);
            w.write(b).unwrap();
        }
        Format::JsonLines => {
            let mut w = datafusion::arrow::json::LineDelimitedWriter::new(f);
            w.write(b).unwrap();
            w.finish().unwrap();
        }
    }
}

/// The trace the importer writes from the lake's rows directly, sorted as
/// the service's queries sort them: every process and stream, then the
/// thread spans by stream and begin, then the async events by time.
pub fn direct_trace(
    lake: &Lake,
    process: &str,
    spans: SpanKinds,
    window: Option<(u64, u64)>,
) -> (Vec<u8>, ImportReport) {
    let mut config = ImportConfig::new().spans(spans);
    if let Some((b, e)) = window {
        config = config.window(b, e);
    }
    let mut w = Writer::new();
    let report = {
        let mut im = Importer::new(&mut w, config).unwrap();
        for p in lake.processes.iter().filter(|p| p.id == process) {
            im.process(&ProcessRow {
                process_id: &p.id,
                exe: &p.exe,
                pid: p.pid,
                start_time: p.start as u64,
                end_time: p.end.map(|e| e as u64),
            })
            .unwrap();
        }
        let streams: Vec<&Stream> = lake
            .streams
            .iter()
            .filter(|s| s.process == process)
            .collect();
        for s in &streams {
            im.stream(&StreamRow {
                stream_id: &s.id,
                process_id: &s.process,
                thread_name: &s.name,
                thread_id: s.tid,
            })
            .unwrap();
        }
        let mine = |id: &str| streams.iter().any(|s| s.id == id);
        let mut ts: Vec<&ThreadSpan> = lake
            .thread_spans
            .iter()
            .filter(|t| mine(&t.stream))
            .collect();
        ts.sort_by(|a, b| (&a.stream, a.begin, a.depth).cmp(&(&b.stream, b.begin, b.depth)));
        for t in ts {
            im.thread_span(&ThreadSpanRow {
                stream_id: &t.stream,
                begin: t.begin as u64,
                end: t.end as u64,
                depth: t.depth as u32,
                name: &t.name,
                target: &t.target,
                filename: &t.file,
                line: t.line as u32,
            })
            .unwrap();
        }
        let mut ae: Vec<&AsyncEvent> = lake
            .async_events
            .iter()
            .filter(|e| mine(&e.stream))
            .collect();
        ae.sort_by_key(|e| e.time);
        for e in ae {
            im.async_event(&AsyncEventRow {
                stream_id: &e.stream,
                time: e.time as u64,
                event_type: e.kind,
                span_id: e.span as u64,
                parent_span_id: e.parent.map(|p| p as u64),
                depth: e.depth as u32,
                name: &e.name,
                filename: &e.file,
                target: &e.target,
                line: e.line as u32,
            })
            .unwrap();
        }
        im.finish().unwrap()
    };
    w.finish().unwrap();
    (w.bytes().to_vec(), report)
}

/// What a reader sees of a trace's slices: each slice with the names (and
/// pids, tids) of its track and the track's ancestors, in a canonical order.
pub fn slices(trace: &[u8]) -> Vec<String> {
    let t = inspect::decode(trace).unwrap();
    assert!(t.problems.is_empty(), "problems: {:?}", t.problems);
    let path = |mut uuid: u64| {
        let mut names = Vec::new();
        while let Some(track) = t.tracks.get(&uuid) {
            // Names, not uuids: async span tracks' uuids depend on the writer
            // (each partition's writer numbers its own slots).
            let kind = match &track.kind {
                inspect::TrackKind::Process { pid, .. } => format!("process {pid}"),
                inspect::TrackKind::Thread { pid, tid } => format!("thread {pid}/{tid}"),
                inspect::TrackKind::Other => "track".to_string(),
            };
            names.push(format!(
                "{} ({kind})",
                track.name.clone().unwrap_or_default()
            ));
            match track.parent {
                Some(p) => uuid = p,
                None => break,
            }
        }
        names.join(" < ")
    };
    let mut out: Vec<String> = t
        .slices
        .iter()
        .map(|s| {
            format!(
                "{} | {} +{:?} d{} {} {:?} {:?} {:?}",
                path(s.track),
                s.ts,
                s.dur,
                s.depth,
                s.name,
                s.categories,
                s.source,
                s.args
            )
        })
        .collect();
    out.sort();
    out
}

/// Concatenates the `chunk_data` of batches (in their order).
pub fn concat(batches: &[RecordBatch]) -> (Vec<i32>, Vec<Vec<u8>>) {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int32Type;
    let mut ids = Vec::new();
    let mut chunks = Vec::new();
    for b in batches {
        let id = b
            .column_by_name("chunk_id")
            .unwrap()
            .as_primitive::<Int32Type>();
        let data = b.column_by_name("chunk_data").unwrap().as_binary::<i32>();
        for i in 0..b.num_rows() {
            ids.push(id.value(i));
            chunks.push(data.value(i).to_vec());
        }
    }
    (ids, chunks)
}

pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// Loads `trace` in the trace processor, when it is beside the project:
/// its error stats (none expected) and how many slices it shows.
pub fn processor_view(trace: &Path) -> Option<(String, usize)> {
    let bytes = std::fs::read(trace).unwrap();
    let errors = tp::query(
        &bytes,
        "select name || ':' || idx || '=' || value as e from stats \
         where value > 0 and severity in ('error', 'data_loss');",
    )?
    .join("\n");
    let counted = tp::query(&bytes, "select count(*) as n from slice;")?;
    let n = counted
        .iter()
        .rev()
        .find_map(|l| l.trim().trim_matches('"').parse().ok())
        .unwrap_or(0);
    Some((errors, n))
}
