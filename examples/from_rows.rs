//! The importer as a user runs it: a lake of JSON-lines tables to a trace.
//!
//! ```sh
//! cargo run --example lake_gen -- LAKE            # a simulated lake (seeded)
//! cargo run --example from_rows -- LAKE OUT.pftrace [--process ID] \
//!     [--spans thread|async|both] [--begin NS] [--end NS] [--compact]
//! ```
//!
//! `LAKE` holds `processes.jsonl`, `streams.jsonl`, `thread_spans.jsonl` and
//! `async_events.jsonl`: one JSON object a line with the tables' columns
//! (extra columns are ignored; rows in any order: they are sorted here as
//! the service's queries sort them). Without `--process`, every process of
//! the lake. `--begin`/`--end` set the window (either alone: open on the
//! other side). Prints the import report.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use perfetto_trace_writer::import::{
    AsyncEventRow, ImportConfig, Importer, ProcessRow, SpanKinds, StreamRow, ThreadSpanRow,
};
use perfetto_trace_writer::{Options, StreamingPerfettoWriter, TraceWriter};
use serde::Deserialize;

// Every column but the keys and times may be null or missing.
#[derive(Deserialize)]
struct Process {
    process_id: String,
    #[serde(default)]
    exe: Option<String>,
    pid: Option<i64>,
    start_time: u64,
    end_time: Option<u64>,
}

#[derive(Deserialize)]
struct Stream {
    stream_id: String,
    process_id: String,
    #[serde(default)]
    thread_name: Option<String>,
    thread_id: Option<i64>,
}

#[derive(Deserialize)]
struct ThreadSpan {
    stream_id: String,
    begin: u64,
    end: u64,
    #[serde(default)]
    depth: Option<u32>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    line: Option<u32>,
}

/// A span id as stored: an unsigned or signed integer (its bits kept), or
/// a string (a number, else hashed: ids only need to be told apart).
#[derive(Deserialize)]
#[serde(untagged)]
enum SpanId {
    Unsigned(u64),
    Signed(i64),
    Text(String),
}

impl SpanId {
    fn get(&self) -> u64 {
        match self {
            SpanId::Unsigned(v) => *v,
            SpanId::Signed(v) => *v as u64,
            SpanId::Text(s) => s.parse().unwrap_or_else(|_| {
                use std::hash::{Hash, Hasher};
                // SipHash with fixed keys: the same id in every run.
                let mut h = std::collections::hash_map::DefaultHasher::new();
                s.hash(&mut h);
                h.finish()
            }),
        }
    }
}

#[derive(Deserialize)]
struct AsyncEvent {
    stream_id: String,
    time: u64,
    event_type: String,
    span_id: SpanId,
    parent_span_id: Option<SpanId>,
    #[serde(default)]
    depth: Option<u32>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    line: Option<u32>,
}

/// Every row of a JSON-lines file (blank lines skipped).
fn read_table<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut rows = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let row = serde_json::from_str(&line)
            .map_err(|e| format!("{} line {}: {e}", path.display(), n + 1))?;
        rows.push(row);
    }
    Ok(rows)
}

struct Args {
    lake: PathBuf,
    out: PathBuf,
    process: Option<String>,
    config: ImportConfig,
    compact: bool,
}

fn parse_args() -> Result<Args, String> {
    let usage = "usage: from_rows LAKE OUT.pftrace [--process ID] [--spans thread|async|both] [--begin NS] [--end NS] [--compact]";
    let mut positional = Vec::new();
    let mut process = None;
    let mut spans = SpanKinds::Both;
    let (mut begin, mut end) = (None, None);
    let mut compact = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value\n{usage}"));
        let ns = |v: String| v.parse::<u64>().map_err(|e| format!("{v}: {e}"));
        match a.as_str() {
            "--process" => process = Some(value("--process")?),
            "--spans" => {
                spans = match value("--spans")?.as_str() {
                    "thread" => SpanKinds::Thread,
                    "async" => SpanKinds::Async,
                    "both" => SpanKinds::Both,
                    other => return Err(format!("--spans {other}: thread, async or both")),
                }
            }
            "--begin" => begin = Some(ns(value("--begin")?)?),
            "--end" => end = Some(ns(value("--end")?)?),
            "--compact" => compact = true,
            "-h" | "--help" => return Err(usage.into()),
            _ if a.starts_with("--") => return Err(format!("unknown option {a}\n{usage}")),
            _ => positional.push(PathBuf::from(a)),
        }
    }
    let [lake, out] = <[PathBuf; 2]>::try_from(positional).map_err(|_| usage.to_string())?;
    let mut config = ImportConfig::new().spans(spans);
    if begin.is_some() || end.is_some() {
        config = config.window(begin.unwrap_or(0), end.unwrap_or(i64::MAX as u64));
    }
    Ok(Args {
        lake,
        out,
        process,
        config,
        compact,
    })
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let mut processes: Vec<Process> = read_table(&args.lake.join("processes.jsonl"))?;
    let mut streams: Vec<Stream> = read_table(&args.lake.join("streams.jsonl"))?;
    let mut spans: Vec<ThreadSpan> = read_table(&args.lake.join("thread_spans.jsonl"))?;
    let mut events: Vec<AsyncEvent> = read_table(&args.lake.join("async_events.jsonl"))?;

    if let Some(only) = &args.process {
        processes.retain(|p| &p.process_id == only);
        streams.retain(|s| &s.process_id == only);
        if processes.is_empty() && streams.is_empty() {
            return Err(format!("no process {only:?} in the lake"));
        }
    }
    // The service's queries: streams of the processes, thread spans
    // `ORDER BY begin` per stream, async events `ORDER BY time` per process
    // (stable sorts: ties stay as stored; the importer orders them).
    let process_of: HashMap<&str, &str> = streams
        .iter()
        .map(|s| (s.stream_id.as_str(), s.process_id.as_str()))
        .collect();
    if args.process.is_some() {
        spans.retain(|s| process_of.contains_key(s.stream_id.as_str()));
        events.retain(|e| process_of.contains_key(e.stream_id.as_str()));
    }
    spans.sort_by(|a, b| (&a.stream_id, a.begin).cmp(&(&b.stream_id, b.begin)));
    let process_key = |e: &AsyncEvent| process_of.get(e.stream_id.as_str()).copied();
    events.sort_by(|a, b| (process_key(a), a.time).cmp(&(process_key(b), b.time)));

    let file = File::create(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let options = Options::new().compact(args.compact);
    let mut w = StreamingPerfettoWriter::with_options(BufWriter::new(file), options);
    let mut importer = Importer::new(&mut w, args.config).map_err(|e| e.to_string())?;
    let fail = |e: perfetto_trace_writer::import::ImportError| e.to_string();
    for p in &processes {
        importer
            .process(&ProcessRow {
                process_id: &p.process_id,
                exe: p.exe.as_deref().unwrap_or(""),
                pid: p.pid,
                start_time: p.start_time,
                end_time: p.end_time,
            })
            .map_err(fail)?;
    }
    for s in &streams {
        importer
            .stream(&StreamRow {
                stream_id: &s.stream_id,
                process_id: &s.process_id,
                thread_name: s.thread_name.as_deref().unwrap_or(""),
                thread_id: s.thread_id,
            })
            .map_err(fail)?;
    }
    for s in &spans {
        importer
            .thread_span(&ThreadSpanRow {
                stream_id: &s.stream_id,
                begin: s.begin,
                end: s.end,
                depth: s.depth.unwrap_or(0),
                name: s.name.as_deref().unwrap_or(""),
                target: s.target.as_deref().unwrap_or(""),
                filename: s.filename.as_deref().unwrap_or(""),
                line: s.line.unwrap_or(0),
            })
            .map_err(fail)?;
    }
    for e in &events {
        importer
            .async_event(&AsyncEventRow {
                stream_id: &e.stream_id,
                time: e.time,
                event_type: &e.event_type,
                span_id: e.span_id.get(),
                parent_span_id: e.parent_span_id.as_ref().map(SpanId::get),
                depth: e.depth.unwrap_or(0),
                name: e.name.as_deref().unwrap_or(""),
                filename: e.filename.as_deref().unwrap_or(""),
                target: e.target.as_deref().unwrap_or(""),
                line: e.line.unwrap_or(0),
            })
            .map_err(fail)?;
    }
    let report = importer.finish().map_err(fail)?;
    let open = w.finish().map_err(|e| e.to_string())?;
    debug_assert!(open.is_empty(), "the importer closes every span");
    let bytes = w.bytes_written();
    w.into_inner().map_err(|e| e.to_string())?;
    // A closed stdout (a pager quit early) is no failure of the import.
    let mut stdout = std::io::stdout().lock();
    let _ = write!(stdout, "{report}");
    let _ = writeln!(stdout, "{bytes} bytes  {}", args.out.display());
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("from_rows: {e}");
            ExitCode::FAILURE
        }
    }
}
