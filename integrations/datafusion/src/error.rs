//! What can go wrong, each case naming what was wrong.

use datafusion::error::DataFusionError;

/// An error of the table function or the tool. Converted into a
/// [`DataFusionError`]: a plan error for bad arguments, tables and columns,
/// an execution error for what only the rows reveal.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not the four arguments `(process_id, span_kinds, begin, end)`.
    #[error(
        "perfetto_trace_chunks takes 4 arguments (process_id, span_kinds, begin, end), got {0}"
    )]
    ArgumentCount(usize),
    /// An argument of the wrong type, or not a constant.
    #[error("perfetto_trace_chunks argument {position} ({name}) must be {expected}, got {got}")]
    ArgumentType {
        /// 1-based position.
        position: usize,
        /// Its name.
        name: &'static str,
        /// What it must be.
        expected: &'static str,
        /// What was given.
        got: String,
    },
    /// Span kinds other than the three.
    #[error("span kinds must be 'thread', 'async' or 'both', got '{0}'")]
    SpanKinds(String),
    /// The window's begin after its end.
    #[error("begin ({begin} ns) is after end ({end} ns)")]
    BeginAfterEnd {
        /// The begin, in nanoseconds.
        begin: i64,
        /// The end, in nanoseconds.
        end: i64,
    },
    /// Only one side of the window given.
    #[error("begin and end must both be times or both be NULL (no window), got only {0}")]
    HalfWindow(&'static str),
    /// A time before the epoch (trace times are unsigned).
    #[error("{name} is negative ({value} ns): trace times start at 0")]
    NegativeTime {
        /// Which time.
        name: &'static str,
        /// Its value.
        value: i64,
    },
    /// A time the tool could not read.
    #[error("'{0}' is neither nanoseconds nor an RFC 3339 time")]
    BadTime(String),
    /// One of the four tables is not registered.
    #[error("no table named `{table}` is registered (the {role} table; see TableNames)")]
    MissingTable {
        /// Which of the four.
        role: &'static str,
        /// The name looked up.
        table: String,
    },
    /// A table lacks a column.
    #[error("table `{table}` has no column `{column}` (its columns: {columns})")]
    MissingColumn {
        /// The table.
        table: String,
        /// The column required.
        column: &'static str,
        /// The columns it has.
        columns: String,
    },
    /// A column of the wrong type.
    #[error("column `{table}.{column}` is {found}; expected {expected}")]
    ColumnType {
        /// The table.
        table: String,
        /// The column.
        column: &'static str,
        /// Its Arrow type.
        found: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// The process asked for has no row.
    #[error("unknown process '{process}': no row of table `{table}` has this process_id")]
    UnknownProcess {
        /// The process id asked for.
        process: String,
        /// The processes table.
        table: String,
    },
    /// A null where a value is required.
    #[error("`{table}.{column}` is null in a row (stream or process '{key}')")]
    NullValue {
        /// The table.
        table: String,
        /// The column.
        column: &'static str,
        /// The row's stream or process id.
        key: String,
    },
    /// A value outside what the trace can hold.
    #[error("`{table}.{column}` = {value} is out of range (stream or process '{key}')")]
    OutOfRange {
        /// The table.
        table: String,
        /// The column.
        column: &'static str,
        /// The value.
        value: i64,
        /// The row's stream or process id.
        key: String,
    },
    /// More chunks than `chunk_id: Int32` can number.
    #[error("the trace needs more chunk ids than Int32 holds; use a larger chunk size")]
    TooManyChunks,
    /// More partitions than writers can be told apart (65,535).
    #[error("{0} parts to write exceed the 65,535 writers a trace can hold")]
    TooManyParts(usize),
    /// The importer stopped (rows out of order).
    #[error("importing rows: {0}")]
    Import(String),
    /// The writer refused a call (a bug of this crate or the importer).
    #[error("writing the trace: {0}")]
    Trace(#[from] perfetto_trace_writer::Error),
}

impl Error {
    /// Whether the error is known before any row is read.
    fn is_plan_error(&self) -> bool {
        !matches!(
            self,
            Error::NullValue { .. }
                | Error::OutOfRange { .. }
                | Error::TooManyChunks
                | Error::Import(_)
                | Error::Trace(_)
        )
    }
}

impl From<Error> for DataFusionError {
    fn from(e: Error) -> Self {
        if e.is_plan_error() {
            DataFusionError::Plan(e.to_string())
        } else {
            DataFusionError::Execution(e.to_string())
        }
    }
}
