//! A lake on disk: the four tables as Parquet, CSV or JSON-lines files, one
//! file or one folder of files per table, registered in a session.

use std::path::{Path, PathBuf};

use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::context::SessionContext;
use datafusion::execution::options::{CsvReadOptions, JsonReadOptions, ParquetReadOptions};

use crate::tables::TableNames;

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
        match format {
            Format::Parquet => {
                ctx.register_parquet(name, &path, ParquetReadOptions::new().file_extension(ext))
                    .await?
            }
            Format::Csv => {
                ctx.register_csv(name, &path, CsvReadOptions::new().file_extension(ext))
                    .await?
            }
            Format::JsonLines => {
                ctx.register_json(name, &path, JsonReadOptions::default().file_extension(ext))
                    .await?
            }
        }
    }
    Ok(())
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
