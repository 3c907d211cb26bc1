//! `perfetto-trace-gen` as a user runs it, and its traces read by the
//! trace processor.

mod common;

use std::process::Command;

use common::{direct_trace, generate, processor_view, slices, Times};
use perfetto_trace_writer::import::SpanKinds;
use perfetto_trace_writer_datafusion::Format;

fn tool() -> Command {
    Command::new(env!("CARGO_BIN_EXE_perfetto-trace-gen"))
}

fn run(args: &[&str]) -> (bool, String) {
    let out = tool().args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_tool_writes_the_importers_trace_from_each_format() {
    let lake = generate(21, 2, 3, 5, 50);
    let dir = tempfile::tempdir().unwrap();
    let (direct, _) = direct_trace(&lake, "proc-0", SpanKinds::Both, Some((50_000, 150_000)));
    let want = slices(&direct);
    for format in [Format::Parquet, Format::Csv, Format::JsonLines] {
        let path = dir.path().join(format!("{format:?}"));
        lake.write(&path, format, Times::Nanos, false);
        let out = path.join("out.pftrace");
        let (ok, err) = run(&[
            path.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--process",
            "proc-0",
            "--spans",
            "both",
            "--begin",
            "1970-01-01T00:00:00.00005Z",
            "--end",
            "150000",
        ]);
        assert!(ok, "{err}");
        assert!(err.contains("rows"), "a progress line on stderr: {err}");
        let trace = std::fs::read(&out).unwrap();
        assert_eq!(slices(&trace), want, "{format:?}");
        if let Some((errors, n)) = processor_view(&out) {
            assert!(
                !errors.lines().any(|l| l.contains('=')),
                "error stats: {errors}"
            );
            assert_eq!(n, want.len(), "the trace processor shows every slice");
        }
    }
}

#[test]
fn the_tool_runs_a_query_and_every_process_by_default() {
    let lake = generate(22, 2, 2, 3, 30);
    let dir = tempfile::tempdir().unwrap();
    lake.write(dir.path(), Format::Parquet, Times::Timestamps, true);
    let out = dir.path().join("sql.pftrace");
    let sql = "SELECT chunk_id, chunk_data FROM perfetto_trace_chunks('proc-1', 'async', NULL, NULL) ORDER BY chunk_id";
    let (ok, err) = run(&[
        dir.path().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--sql",
        sql,
        "-q",
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        slices(&std::fs::read(&out).unwrap()),
        slices(&direct_trace(&lake, "proc-1", SpanKinds::Async, None).0)
    );

    let all = dir.path().join("all.pftrace");
    let (ok, err) = run(&[
        dir.path().to_str().unwrap(),
        "-o",
        all.to_str().unwrap(),
        "--spans",
        "thread",
    ]);
    assert!(ok, "{err}");
    let mut want = Vec::new();
    for p in ["proc-0", "proc-1"] {
        want.extend(slices(&direct_trace(&lake, p, SpanKinds::Thread, None).0));
    }
    want.sort();
    assert_eq!(slices(&std::fs::read(&all).unwrap()), want);
    if let Some((errors, n)) = processor_view(&all) {
        assert!(
            !errors.lines().any(|l| l.contains('=')),
            "error stats: {errors}"
        );
        assert_eq!(n, want.len());
    }
}

#[test]
fn the_tool_explains_its_options_and_names_bad_input() {
    let out = tool().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--output",
        "--process",
        "--spans",
        "--begin",
        "--end",
        "--sql",
        "--chunk-size",
        "--memory-limit",
        "--batch-size",
        "--sorted",
        "temporary files",
        "Resources exhausted",
        "RFC 3339",
    ] {
        assert!(help.contains(option), "--help explains {option}:\n{help}");
    }
    let lake = generate(23, 1, 1, 1, 2);
    let dir = tempfile::tempdir().unwrap();
    lake.write(dir.path(), Format::JsonLines, Times::Nanos, false);
    let d = dir.path().to_str().unwrap();
    let out = dir.path().join("x.pftrace");
    let o = out.to_str().unwrap();
    for (args, message) in [
        (
            vec![d, "-o", o, "--spans", "threads"],
            "invalid value 'threads'",
        ),
        (
            vec![d, "-o", o, "--begin", "noon", "--end", "5"],
            "'noon' is neither nanoseconds nor an RFC 3339 time",
        ),
        (
            vec![d, "-o", o, "--begin", "9", "--end", "5"],
            "begin (9 ns) is after end (5 ns)",
        ),
        (vec![d, "-o", o, "--begin", "9"], "--end"),
        (
            vec![d, "-o", o, "--process", "nobody"],
            "unknown process 'nobody'",
        ),
        (vec!["/nonexistent/lake", "-o", o], "is not a folder"),
        (
            vec![d, "-o", o, "--sql", "SELECT 1 AS x"],
            "no column `chunk_data`",
        ),
    ] {
        let (ok, err) = run(&args);
        assert!(!ok, "{args:?} fails");
        assert!(err.contains(message), "{args:?}: {err}");
    }
}
