//! What a trace is asked for: a process, span kinds, a time window; read
//! from the table function's arguments or built by the caller.

use std::fmt;
use std::str::FromStr;

use datafusion::arrow::compute::kernels::cast_utils::string_to_timestamp_nanos;
use datafusion::logical_expr::Expr;
use datafusion::scalar::ScalarValue;

use perfetto_trace_writer::import::Window;

use crate::error::Error;

/// Which spans go into the trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SpanKinds {
    /// Thread spans only (`'thread'`).
    Thread,
    /// Async spans only (`'async'`).
    Async,
    /// Both (`'both'`).
    #[default]
    Both,
}

impl SpanKinds {
    /// Whether thread spans are written.
    pub fn thread(self) -> bool {
        matches!(self, SpanKinds::Thread | SpanKinds::Both)
    }

    /// Whether async spans are written.
    pub fn asynchronous(self) -> bool {
        matches!(self, SpanKinds::Async | SpanKinds::Both)
    }
}

impl FromStr for SpanKinds {
    type Err = Error;

    /// `thread`, `async` or `both`.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "thread" => Ok(SpanKinds::Thread),
            "async" => Ok(SpanKinds::Async),
            "both" => Ok(SpanKinds::Both),
            other => Err(Error::SpanKinds(other.to_owned())),
        }
    }
}

impl fmt::Display for SpanKinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpanKinds::Thread => "thread",
            SpanKinds::Async => "async",
            SpanKinds::Both => "both",
        })
    }
}

/// The window `[begin, end]` (nanoseconds, both included) that the
/// importer takes.
///
/// # Errors
/// [`Error::NegativeTime`], [`Error::BeginAfterEnd`].
pub fn window(begin: i64, end: i64) -> Result<Window, Error> {
    for (name, value) in [("begin", begin), ("end", end)] {
        if value < 0 {
            return Err(Error::NegativeTime { name, value });
        }
    }
    if begin > end {
        return Err(Error::BeginAfterEnd { begin, end });
    }
    // Both at or above 0: the casts keep their values.
    Ok(Window {
        begin: begin as u64,
        end: end as u64,
    })
}

/// One trace's worth of rows: a process (or every process), span kinds,
/// and an optional window.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TraceRequest {
    /// The `process_id` to trace; `None` for every process of the lake.
    pub process: Option<String>,
    /// Which spans.
    pub spans: SpanKinds,
    /// The window (nanoseconds, both ends included); `None` for every row.
    pub window: Option<Window>,
}

impl TraceRequest {
    /// Reads `(process_id, span_kinds, begin, end)`: a string (NULL for
    /// every process), `'thread'`, `'async'` or `'both'`, and two
    /// `TIMESTAMP`s or `BIGINT` nanoseconds (both NULL for no window).
    ///
    /// # Errors
    /// [`Error::ArgumentCount`], [`Error::ArgumentType`],
    /// [`Error::SpanKinds`], [`Error::HalfWindow`], [`Error::NegativeTime`],
    /// [`Error::BeginAfterEnd`].
    pub fn from_args(args: &[Expr]) -> Result<Self, Error> {
        let [process, spans, begin, end] = args else {
            return Err(Error::ArgumentCount(args.len()));
        };
        let process = match constant(process, 1, "process_id", STRING)? {
            ScalarValue::Null => None,
            v => Some(string(&v).ok_or_else(|| wrong(1, "process_id", STRING, &v))?),
        };
        let kinds = constant(spans, 2, "span_kinds", KINDS)?;
        let spans = string(&kinds)
            .ok_or_else(|| wrong(2, "span_kinds", KINDS, &kinds))?
            .parse()?;
        let begin = nanos(constant(begin, 3, "begin", TIME)?, 3, "begin")?;
        let end = nanos(constant(end, 4, "end", TIME)?, 4, "end")?;
        let window = match (begin, end) {
            (Some(b), Some(e)) => Some(window(b, e)?),
            (None, None) => None,
            (Some(_), None) => return Err(Error::HalfWindow("begin")),
            (None, Some(_)) => return Err(Error::HalfWindow("end")),
        };
        Ok(TraceRequest {
            process,
            spans,
            window,
        })
    }
}

/// Reads a time as the tool takes it: nanoseconds, or an RFC 3339 time.
///
/// # Errors
/// [`Error::BadTime`].
pub fn parse_time(text: &str) -> Result<i64, Error> {
    let text = text.trim();
    if let Ok(ns) = text.parse::<i64>() {
        return Ok(ns);
    }
    if !text.contains('T') && !text.contains(' ') {
        return Err(Error::BadTime(text.to_owned()));
    }
    string_to_timestamp_nanos(text).map_err(|_| Error::BadTime(text.to_owned()))
}

const STRING: &str = "a string";
const KINDS: &str = "'thread', 'async' or 'both'";
const TIME: &str = "a TIMESTAMP or BIGINT nanoseconds (or NULL)";

fn wrong(position: usize, name: &'static str, expected: &'static str, v: &ScalarValue) -> Error {
    Error::ArgumentType {
        position,
        name,
        expected,
        got: format!("{v} ({})", v.data_type()),
    }
}

/// The value of a constant argument (literals, and casts of literals such as
/// `TIMESTAMP '...'` when the planner left them unfolded).
fn constant(
    e: &Expr,
    position: usize,
    name: &'static str,
    expected: &'static str,
) -> Result<ScalarValue, Error> {
    match e {
        Expr::Literal(v, _) => Ok(v.clone()),
        Expr::Cast(c) => {
            let inner = constant(&c.expr, position, name, expected)?;
            inner
                .cast_to(c.field.data_type())
                .map_err(|_| wrong(position, name, expected, &inner))
        }
        other => Err(Error::ArgumentType {
            position,
            name,
            expected,
            got: format!("the expression {other}"),
        }),
    }
}

fn string(v: &ScalarValue) -> Option<String> {
    match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Some(s.clone()),
        ScalarValue::Dictionary(_, inner) => string(inner),
        _ => None,
    }
}

/// A time argument in nanoseconds; `None` for NULL.
fn nanos(v: ScalarValue, position: usize, name: &'static str) -> Result<Option<i64>, Error> {
    let scaled = |x: Option<i64>, per: i64| -> Result<Option<i64>, Error> {
        x.map(|x| {
            x.checked_mul(per)
                .ok_or_else(|| wrong(position, name, TIME, &v))
        })
        .transpose()
    };
    match &v {
        ScalarValue::Null => Ok(None),
        ScalarValue::TimestampNanosecond(x, _) => Ok(*x),
        ScalarValue::TimestampMicrosecond(x, _) => scaled(*x, 1_000),
        ScalarValue::TimestampMillisecond(x, _) => scaled(*x, 1_000_000),
        ScalarValue::TimestampSecond(x, _) => scaled(*x, 1_000_000_000),
        ScalarValue::Int64(x) => Ok(*x),
        ScalarValue::Int32(x) => Ok(x.map(i64::from)),
        ScalarValue::Int16(x) => Ok(x.map(i64::from)),
        ScalarValue::Int8(x) => Ok(x.map(i64::from)),
        ScalarValue::UInt32(x) => Ok(x.map(i64::from)),
        ScalarValue::UInt64(Some(x)) => i64::try_from(*x)
            .map(Some)
            .map_err(|_| wrong(position, name, TIME, &v)),
        _ => Err(wrong(position, name, TIME, &v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_nanoseconds_or_rfc_3339() {
        assert_eq!(parse_time("1500").unwrap(), 1500);
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z").unwrap(), 1_500_000_000);
        assert_eq!(
            parse_time("2024-01-01T01:00:00+01:00").unwrap(),
            1_704_067_200_000_000_000
        );
        for bad in ["noon", "", "12:00", "2024-13-01T00:00:00Z"] {
            assert!(matches!(parse_time(bad), Err(Error::BadTime(_))), "{bad}");
        }
    }

    #[test]
    fn a_window_is_ordered_and_not_negative() {
        assert_eq!(window(5, 5).unwrap(), Window { begin: 5, end: 5 });
        assert!(matches!(
            window(6, 5),
            Err(Error::BeginAfterEnd { begin: 6, end: 5 })
        ));
        assert!(matches!(
            window(-1, 5),
            Err(Error::NegativeTime {
                name: "begin",
                value: -1
            })
        ));
    }
}
