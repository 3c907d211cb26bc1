//! Rows out of record batches whose columns are in a spec's order and read
//! types (`Utf8View` strings, `Int64` integers and nanoseconds).

use datafusion::arrow::array::{Array, AsArray, Int64Array, StringViewArray};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::arrow::record_batch::RecordBatch;

use crate::error::Error;
use crate::tables::Spec;

/// The columns of one batch, typed.
pub(crate) struct Columns<'a> {
    spec: &'static Spec,
    table: &'a str,
    batch: &'a RecordBatch,
}

impl<'a> Columns<'a> {
    pub fn new(spec: &'static Spec, table: &'a str, batch: &'a RecordBatch) -> Self {
        Columns { spec, table, batch }
    }

    pub fn len(&self) -> usize {
        self.batch.num_rows()
    }

    pub fn str(&self, i: usize) -> &'a StringViewArray {
        self.batch.column(i).as_string_view()
    }

    pub fn int(&self, i: usize) -> &'a Int64Array {
        self.batch.column(i).as_primitive::<Int64Type>()
    }

    /// Column `i` of row `row`: "" for null.
    pub fn text(&self, i: usize, row: usize) -> &'a str {
        let a = self.str(i);
        if a.is_null(row) {
            ""
        } else {
            a.value(row)
        }
    }

    /// Column `i` of row `row`, `None` for null.
    pub fn opt(&self, i: usize, row: usize) -> Option<i64> {
        let a = self.int(i);
        (!a.is_null(row)).then(|| a.value(row))
    }

    /// Column `i` of row `row`, which must not be null; `key` names the
    /// row in the error.
    pub fn req(&self, i: usize, row: usize, key: &str) -> Result<i64, Error> {
        self.opt(i, row).ok_or_else(|| Error::NullValue {
            table: self.table.to_owned(),
            column: self.spec.columns[i].0,
            key: key.to_owned(),
        })
    }

    /// A value that must fit the type the trace holds it in.
    pub fn fit<T: TryFrom<i64>>(&self, i: usize, value: i64, key: &str) -> Result<T, Error> {
        T::try_from(value).map_err(|_| Error::OutOfRange {
            table: self.table.to_owned(),
            column: self.spec.columns[i].0,
            value,
            key: key.to_owned(),
        })
    }
}
