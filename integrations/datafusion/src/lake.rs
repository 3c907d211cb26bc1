//! A lake on disk: the four tables as Parquet, CSV or JSON-lines files, one
//! file or one folder of files per table, registered in a session.

use std::path::{Path, PathBuf};

use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::context::SessionContext;
use datafusion::execution::options::{CsvReadOptions, JsonReadOptions, ParquetReadOptions};
use datafusion::logical_expr::{col, SortExpr};

use crate::tables::{quoted, TableNames};

/// What a lake's files promise about the order of their rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RowOrder {
    /// Nothing: the function sorts the rows of each part of the trace
    /// (spilling to disk under a memory limit).
    #[default]
    Unknown,
    /// Each file of `thread_spans` holds its rows in non-decreasing
    /// `begin`, and each file of `async_events` in non-decreasing `time`
    /// (ties in any order), as a service writing its telemetry as it comes
    /// stores them. Declared to DataFusion as the files' sort order, so the
    /// function's queries merge the files as they read them instead of
    /// sorting: memory stays bounded by batches, chunks and spans in flight
    /// however large the lake. Rows that break the promise are an
    /// execution error naming the first row out of order.
    ByTime,
}

/// A file format of the lake, from a file's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `.parquet`.
    Parquet,
    /// `.csv`, with a header row.
    Csv,
    /// `.jsonl`, `.ndjson` or `.json`: one JSON object per line.
    JsonLines,
}

impl Format {
    /// The format of a file named so, if any.
    pub fn of(path: &Path) -> Option<(Format, &'static str)> {
        match path.extension()?.to_str()? {
            "parquet" => Some((Format::Parquet, ".parquet")),
            "csv" => Some((Format::Csv, ".csv")),
            "jsonl" => Some((Format::JsonLines, ".jsonl")),
            "ndjson" => Some((Format::JsonLines, ".ndjson")),
            "json" => Some((Format::JsonLines, ".json")),
            _ => None,
        }
    }
}

/// Registers the tables of the lake at `dir` under `names`: for each table,
/// the file `dir/<name>.<ext>` or the folder `dir/<name>/` of `.<ext>`
/// files, the format by extension (see [`Format`]). A table with neither is
/// left unregistered (the function names it if it is needed).
///
/// # Errors
/// A table with two candidates or a folder with files of no known
/// format or of several, and DataFusion's own (schema inference).
pub async fn register_lake(ctx: &SessionContext, dir: &Path, names: &TableNames) -> DfResult<()> {
    register_lake_in_order(ctx, dir, names, RowOrder::Unknown).await
}

/// [`register_lake`], declaring the order of the span tables' files (see
/// [`RowOrder`]).
///
/// # Errors
/// As [`register_lake`].
pub async fn register_lake_in_order(
    ctx: &SessionContext,
    dir: &Path,
    names: &TableNames,
    order: RowOrder,
) -> DfResult<()> {
    if !dir.is_dir() {
        return Err(DataFusionError::Plan(format!(
            "the lake {} is not a folder",
            dir.display()
        )));
    }
    for name in [
        &names.processes,
        &names.streams,
        &names.thread_spans,
        &names.async_events,
    ] {
        let Some((path, format, ext)) = find(dir, name)? else {
            continue;
        };
        let path = path.to_string_lossy().into_owned();
        let sorted = match order {
            RowOrder::Unknown => Vec::new(),
            RowOrder::ByTime if name == &names.thread_spans => vec![ascending("begin")],
            RowOrder::ByTime if name == &names.async_events => vec![ascending("time")],
            RowOrder::ByTime => Vec::new(),
        };
        match format {
            Format::Parquet => {
                let options = ParquetReadOptions::new()
                    .file_extension(ext)
                    .file_sort_order(sorted);
                ctx.register_parquet(name, &path, options).await?
            }
            Format::Csv => {
                let options = CsvReadOptions::new()
                    .file_extension(ext)
                    .file_sort_order(sorted);
                ctx.register_csv(name, &path, options).await?
            }
            Format::JsonLines => {
                let options = JsonReadOptions::default()
                    .file_extension(ext)
                    .file_sort_order(sorted);
                ctx.register_json(name, &path, options).await?
            }
        }
    }
    Ok(())
}

/// One sort order: `column` ascending, nulls last (as the function sorts).
fn ascending(column: &str) -> Vec<SortExpr> {
    vec![col(quoted(column)).sort(true, false)]
}

/// The file or folder of table `name` in `dir`, with its format.
fn find(dir: &Path, name: &str) -> DfResult<Option<(PathBuf, Format, &'static str)>> {
    let mut found = None;
    let folder = dir.join(name);
    if folder.is_dir() {
        let mut formats = Vec::new();
        for entry in std::fs::read_dir(&folder)? {
            let p = entry?.path();
            if p.is_file() {
                if let Some((f, _)) = Format::of(&p) {
                    if !formats.contains(&f) {
                        formats.push(f);
                    }
                }
            }
        }
        let format = match formats.as_slice() {
            [f] => *f,
            [] => {
                return Err(DataFusionError::Plan(format!(
                    "{} holds no .parquet, .csv or .jsonl file",
                    folder.display()
                )))
            }
            _ => {
                return Err(DataFusionError::Plan(format!(
                    "{} holds files of several formats",
                    folder.display()
                )))
            }
        };
        let ext = match format {
            Format::Parquet => ".parquet",
            Format::Csv => ".csv",
            // Folder entries of any of the JSON-lines extensions: pick the first seen.
            Format::JsonLines => first_json_ext(&folder)?,
        };
        // A trailing slash makes DataFusion list the folder.
        let mut path = folder.into_os_string();
        path.push("/");
        found = Some((PathBuf::from(path), format, ext));
    }
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if !p.is_file() || p.file_stem().and_then(|s| s.to_str()) != Some(name) {
            continue;
        }
        if let Some((format, ext)) = Format::of(&p) {
            if found.is_some() {
                return Err(DataFusionError::Plan(format!(
                    "table `{name}` has more than one file or folder in {}",
                    dir.display()
                )));
            }
            found = Some((p, format, ext));
        }
    }
    Ok(found)
}

fn first_json_ext(folder: &Path) -> DfResult<&'static str> {
    for entry in std::fs::read_dir(folder)? {
        if let Some((Format::JsonLines, ext)) = Format::of(&entry?.path()) {
            return Ok(ext);
        }
    }
    Ok(".jsonl")
}
