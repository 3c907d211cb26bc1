//! Builds one trace with both writers, prints their sizes and packet counts,
//! writes both files and exits non-zero if their bytes differ.
//!
//! ```sh
//! cargo run --example streaming_comparison [OUT_DIR]
//! ```
//! Open either file at <https://ui.perfetto.dev> ("Open trace file").

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;

use perfetto_trace_writer::{Options, Result, StreamingPerfettoWriter, TraceWriter, Writer};

/// The same calls, whichever writer receives them.
fn build(w: &mut impl TraceWriter) -> Result<()> {
    let process = w.process(
        "service-7f3a",
        Some(4242),
        "query-service",
        &["query-service", "--port=8080"],
    )?;
    let main = w.thread(process, "stream-main", Some(4242), "main")?;
    let worker = w.thread(process, "stream-worker", None, "worker-1")?;
    let io = w.async_lane(process, "Async Operations")?;

    const MS: u64 = 1_000_000;
    let file = file!();
    for request in 0..3u64 {
        let t0 = 1_000 * MS + request * 40 * MS;
        // A request on the main thread with nested work.
        w.span_begin(main, t0, "handle_request", "http", file, line!())?;
        w.span_begin(main, t0 + MS, "parse", "http", file, line!())?;
        w.span_end(main, t0 + 3 * MS)?;
        w.complete_span(
            main,
            t0 + 3 * MS,
            t0 + 20 * MS,
            "plan_query",
            "sql",
            file,
            line!(),
        )?;
        w.complete_span(
            main,
            t0 + 4 * MS,
            t0 + 10 * MS,
            "optimize",
            "sql",
            file,
            line!(),
        )?;
        w.complete_span(main, t0 + 10 * MS, t0 + 10 * MS, "checkpoint", "sql", "", 0)?;
        w.span_end(main, t0 + 30 * MS)?;

        // The worker executes while two fetches overlap on the async lane.
        w.complete_span(
            worker,
            t0 + 5 * MS,
            t0 + 25 * MS,
            "execute",
            "sql",
            file,
            line!(),
        )?;
        let a = request * 2;
        let b = a + 1;
        w.async_span_begin(io, a, t0 + 6 * MS, "fetch_block", "io", file, line!())?;
        w.async_span_begin(io, b, t0 + 8 * MS, "fetch_index", "io", file, line!())?;
        w.async_span_end(io, a, t0 + 18 * MS)?;
        w.async_span_end(io, b, t0 + 22 * MS)?;
    }
    let open = w.finish()?;
    assert!(open.is_empty(), "every span was ended: {open:?}");
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> std::result::Result<bool, Box<dyn std::error::Error>> {
    let dir = match std::env::args_os().nth(1) {
        Some(d) => PathBuf::from(d),
        None => std::env::temp_dir().join("perfetto-trace-writer-example"),
    };
    std::fs::create_dir_all(&dir)?;

    let mut identical = true;
    println!("mode     writer      bytes  packets  file");
    for (mode, options) in [
        ("default", Options::new()),
        ("compact", Options::new().compact(true)),
    ] {
        let mut buffered = Writer::with_options(options);
        build(&mut buffered)?;
        let buffered_path = dir.join(format!("buffered-{mode}.pftrace"));
        std::fs::write(&buffered_path, buffered.bytes())?;

        let streaming_path = dir.join(format!("streaming-{mode}.pftrace"));
        let file = BufWriter::new(File::create(&streaming_path)?);
        let mut streaming = StreamingPerfettoWriter::with_options(file, options);
        build(&mut streaming)?;
        let streamed_packets = streaming.packet_count();
        streaming
            .into_inner()?
            .into_inner()
            .map_err(|e| e.into_error())?;
        let streamed = std::fs::read(&streaming_path)?;

        let (b, p) = (buffered.len(), buffered.packet_count());
        println!(
            "{mode:8} buffered  {b:>7}  {p:>7}  {}",
            buffered_path.display()
        );
        let (b, p) = (streamed.len(), streamed_packets);
        println!(
            "{mode:8} streaming {b:>7}  {p:>7}  {}",
            streaming_path.display()
        );
        if streamed != buffered.bytes() {
            eprintln!("MISMATCH: the two writers produced different bytes in {mode} mode");
            identical = false;
        }
    }
    if identical {
        println!("identical: yes. Open any of the files at https://ui.perfetto.dev");
    }
    Ok(identical)
}
