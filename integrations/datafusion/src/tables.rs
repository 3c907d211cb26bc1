//! The four tables the trace is made from: their names, the columns each
//! must have, and how each column is read.

use datafusion::arrow::datatypes::{DataType, Schema, TimeUnit};
use datafusion::logical_expr::{cast, col, lit, Expr};
use datafusion::scalar::ScalarValue;

use crate::error::Error;

/// Where the four tables are registered. The defaults are the names of the
/// importer's rows: `processes`, `streams`, `thread_spans`, `async_events`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableNames {
    /// One row per process (default `processes`).
    pub processes: String,
    /// One row per thread (default `streams`).
    pub streams: String,
    /// One row per thread span (default `thread_spans`).
    pub thread_spans: String,
    /// One row per async begin and per async end (default `async_events`).
    pub async_events: String,
}

impl Default for TableNames {
    fn default() -> Self {
        TableNames {
            processes: "processes".into(),
            streams: "streams".into(),
            thread_spans: "thread_spans".into(),
            async_events: "async_events".into(),
        }
    }
}

/// How a column's values are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `Utf8`, `LargeUtf8`, `Utf8View` or a dictionary of them; read as
    /// `Utf8View`.
    Str,
    /// Any integer type; read as `Int64`.
    Int,
    /// `Timestamp` (any unit and zone) or `Int64` nanoseconds; read as
    /// `Int64` nanoseconds.
    Time,
}

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::Str => "a string (Utf8, LargeUtf8, Utf8View)",
            Kind::Int => "an integer",
            Kind::Time => "Timestamp(Nanosecond) (any unit) or Int64 nanoseconds",
        }
    }

    fn accepts(self, t: &DataType) -> bool {
        match (self, t) {
            // A column with no value at all (CSV and JSON infer it so).
            (_, DataType::Null) => true,
            (_, DataType::Dictionary(_, v)) => self.accepts(v),
            (Kind::Str, t) => {
                matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
            }
            (Kind::Int, t) => t.is_integer(),
            (Kind::Time, t) => matches!(t, DataType::Timestamp(..) | DataType::Int64),
        }
    }
}

/// A table's role and required columns, in the order rows are read.
pub(crate) struct Spec {
    pub role: &'static str,
    pub columns: &'static [(&'static str, Kind)],
}

pub(crate) const PROCESSES: Spec = Spec {
    role: "processes",
    columns: &[
        ("process_id", Kind::Str),
        ("exe", Kind::Str),
        ("pid", Kind::Int),
        ("start_time", Kind::Time),
        ("end_time", Kind::Time),
    ],
};

pub(crate) const STREAMS: Spec = Spec {
    role: "streams",
    columns: &[
        ("stream_id", Kind::Str),
        ("process_id", Kind::Str),
        ("thread_name", Kind::Str),
        ("thread_id", Kind::Int),
    ],
};

pub(crate) const THREAD_SPANS: Spec = Spec {
    role: "thread_spans",
    columns: &[
        ("stream_id", Kind::Str),
        ("begin", Kind::Time),
        ("end", Kind::Time),
        ("depth", Kind::Int),
        ("name", Kind::Str),
        ("target", Kind::Str),
        ("filename", Kind::Str),
        ("line", Kind::Int),
    ],
};

pub(crate) const ASYNC_EVENTS: Spec = Spec {
    role: "async_events",
    columns: &[
        ("stream_id", Kind::Str),
        ("time", Kind::Time),
        ("event_type", Kind::Str),
        ("span_id", Kind::Int),
        ("parent_span_id", Kind::Int),
        ("depth", Kind::Int),
        ("name", Kind::Str),
        ("filename", Kind::Str),
        ("target", Kind::Str),
        ("line", Kind::Int),
    ],
};

/// A table checked against its spec: the expressions that read its columns
/// in the spec's order and types, and the type of its time columns (for
/// filter literals of that type, which the scans can prune with).
pub(crate) struct Checked {
    pub name: String,
    pub reads: Vec<Expr>,
    time_types: Vec<(&'static str, DataType)>,
}

impl Spec {
    /// Checks `schema`, the schema of table `name`.
    ///
    /// # Errors
    /// [`Error::MissingColumn`], [`Error::ColumnType`].
    pub fn check(&self, name: &str, schema: &Schema) -> Result<Checked, Error> {
        let mut reads = Vec::with_capacity(self.columns.len());
        let mut time_types = Vec::new();
        for &(column, kind) in self.columns {
            let Ok(field) = schema.field_with_name(column) else {
                let columns = schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(Error::MissingColumn {
                    table: name.to_owned(),
                    column,
                    columns,
                });
            };
            let t = field.data_type();
            if !kind.accepts(t) {
                return Err(Error::ColumnType {
                    table: name.to_owned(),
                    column,
                    found: t.to_string(),
                    expected: kind.expected(),
                });
            }
            let c = col(quoted(column));
            let read = match (kind, t) {
                (Kind::Str, DataType::Utf8View) => c,
                (Kind::Str, _) => cast(c, DataType::Utf8View),
                (Kind::Int, DataType::Int64) => c,
                (Kind::Int, _) => cast(c, DataType::Int64),
                (Kind::Time, DataType::Int64) => c,
                (Kind::Time, DataType::Timestamp(TimeUnit::Nanosecond, _)) => {
                    cast(c, DataType::Int64)
                }
                (Kind::Time, _) => cast(
                    cast(c, DataType::Timestamp(TimeUnit::Nanosecond, None)),
                    DataType::Int64,
                ),
            };
            reads.push(read.alias(column));
            if kind == Kind::Time {
                time_types.push((column, t.clone()));
            }
        }
        Ok(Checked {
            name: name.to_owned(),
            reads,
            time_types,
        })
    }
}

/// Which way a bound on a time column rounds when the column is coarser
/// than nanoseconds.
#[derive(Clone, Copy)]
pub(crate) enum Bound {
    /// `column >= ns`.
    AtLeast,
    /// `column <= ns`.
    AtMost,
    /// `column < ns`.
    Below,
}

impl Checked {
    /// `column <op> ns` on the column as stored, so that the scan can use
    /// it to skip files, row groups and pages.
    pub fn time_bound(&self, column: &'static str, bound: Bound, ns: i64) -> Expr {
        let t = self
            .time_types
            .iter()
            .find(|(c, _)| *c == column)
            .map(|(_, t)| t.clone())
            .unwrap_or(DataType::Int64);
        let per = match &t {
            DataType::Timestamp(TimeUnit::Second, _) => 1_000_000_000,
            DataType::Timestamp(TimeUnit::Millisecond, _) => 1_000_000,
            DataType::Timestamp(TimeUnit::Microsecond, _) => 1_000,
            _ => 1,
        };
        // v * per >= ns  <=>  v >= ceil(ns / per); v * per <= ns  <=>  v <= floor(ns / per).
        let (value, column_expr) = match bound {
            Bound::AtLeast => (div_ceil(ns, per), col(quoted(column))),
            Bound::AtMost | Bound::Below => (ns.div_euclid(per), col(quoted(column))),
        };
        let below_exact = matches!(bound, Bound::Below) && ns.rem_euclid(per) != 0;
        let literal = match &t {
            DataType::Timestamp(TimeUnit::Second, tz) => {
                ScalarValue::TimestampSecond(Some(value), tz.clone())
            }
            DataType::Timestamp(TimeUnit::Millisecond, tz) => {
                ScalarValue::TimestampMillisecond(Some(value), tz.clone())
            }
            DataType::Timestamp(TimeUnit::Microsecond, tz) => {
                ScalarValue::TimestampMicrosecond(Some(value), tz.clone())
            }
            DataType::Timestamp(TimeUnit::Nanosecond, tz) => {
                ScalarValue::TimestampNanosecond(Some(value), tz.clone())
            }
            _ => ScalarValue::Int64(Some(value)),
        };
        match bound {
            Bound::AtLeast => column_expr.gt_eq(lit(literal)),
            Bound::AtMost => column_expr.lt_eq(lit(literal)),
            // v * per < ns: v <= floor(ns / per) when ns is not a multiple of per.
            Bound::Below if below_exact => column_expr.lt_eq(lit(literal)),
            Bound::Below => column_expr.lt(lit(literal)),
        }
    }
}

fn div_ceil(a: i64, b: i64) -> i64 {
    let q = a.div_euclid(b);
    if a.rem_euclid(b) == 0 {
        q
    } else {
        q + 1
    }
}

/// A column name as an identifier (`end` is an SQL keyword).
pub(crate) fn quoted(column: &str) -> String {
    format!("\"{column}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Field;

    #[test]
    fn bounds_on_coarse_time_columns_round_to_keep_every_row_in_range() {
        let schema = Schema::new(vec![
            Field::new("stream_id", DataType::Utf8, true),
            Field::new(
                "begin",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                true,
            ),
            Field::new("end", DataType::Int64, true),
            Field::new("depth", DataType::Int32, true),
            Field::new("name", DataType::Utf8View, true),
            Field::new("target", DataType::LargeUtf8, true),
            Field::new("filename", DataType::Utf8, true),
            Field::new("line", DataType::UInt32, true),
        ]);
        let t = THREAD_SPANS.check("spans", &schema).unwrap();
        // 1500 ns: a row at 1 us is below it, one at 2 us above it.
        let at_least = t.time_bound("begin", Bound::AtLeast, 1500).to_string();
        assert!(at_least.contains(">= TimestampMicrosecond(2"), "{at_least}");
        let at_most = t.time_bound("begin", Bound::AtMost, 1500).to_string();
        assert!(at_most.contains("<= TimestampMicrosecond(1"), "{at_most}");
        let below = t.time_bound("begin", Bound::Below, 1500).to_string();
        assert!(below.contains("<= TimestampMicrosecond(1"), "{below}");
        let below_exact = t.time_bound("begin", Bound::Below, 2000).to_string();
        assert!(
            below_exact.contains("< TimestampMicrosecond(2"),
            "{below_exact}"
        );
        assert_eq!(
            t.time_bound("end", Bound::AtLeast, 1500).to_string(),
            "end >= Int64(1500)"
        );
    }

    #[test]
    fn a_missing_column_or_a_wrong_type_is_named() {
        let schema = Schema::new(vec![Field::new("process_id", DataType::Int64, true)]);
        let e = PROCESSES.check("procs", &schema).err().unwrap().to_string();
        assert_eq!(
            e,
            "column `procs.process_id` is Int64; expected a string (Utf8, LargeUtf8, Utf8View)"
        );
        let schema = Schema::new(vec![Field::new("process_id", DataType::Utf8, true)]);
        let e = PROCESSES.check("procs", &schema).err().unwrap().to_string();
        assert_eq!(
            e,
            "table `procs` has no column `exe` (its columns: process_id)"
        );
    }
}
