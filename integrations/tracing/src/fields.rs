//! Fields of spans and events as typed arguments, gathered into buffers a
//! thread reuses, so that recording allocates nothing once they have grown.

use std::fmt::{self, Write as _};

use perfetto_trace_writer::{Arg, Value};
use tracing_core::field::{Field, Visit};

/// The field that names the track a span goes on (see the crate docs).
pub const TRACK_FIELD: &str = "perfetto.track";

/// The fields of one span or event as the writer takes them: names
/// (static, from the callsite) and values, the text of strings and `Debug`
/// values kept in one buffer.
#[derive(Default)]
pub(crate) struct ArgBuf {
    text: String,
    /// The fields in order; a text value is `""` here until
    /// [`ArgBuf::args`] points it at its range of `text`.
    args: Vec<Arg<'static>>,
    /// The text values: (index in `args`, range of `text`).
    texts: Vec<(u32, u32, u32)>,
    /// Whether text values in `args` point into `text` (see `args`).
    pointed: bool,
    /// The `message` field, a range of `text`.
    message: Option<(u32, u32)>,
    /// The value of [`TRACK_FIELD`], a range of `text`.
    track: Option<(u32, u32)>,
}

/// The names of the arguments of an [`ArgBuf`], as the callsite gives them.
pub(crate) struct ArgNames<'a>(std::slice::Iter<'a, Arg<'static>>);

impl Iterator for ArgNames<'_> {
    type Item = &'static str;

    fn next(&mut self) -> Option<&'static str> {
        self.0.next().map(|a| a.name)
    }
}

/// What a text value holds until it is pointed at its text.
const UNPOINTED: Value<'static> = Value::Str("");

impl ArgBuf {
    pub(crate) fn clear(&mut self) {
        // `args` first: nothing points into `text` while it changes.
        self.args.clear();
        self.pointed = false;
        self.text.clear();
        self.texts.clear();
        self.message = None;
        self.track = None;
    }

    /// Sets text values back to [`UNPOINTED`], before `text` changes.
    fn unpoint(&mut self) {
        for &(i, _, _) in &self.texts {
            self.args[i as usize].value = UNPOINTED;
        }
        self.pointed = false;
    }

    fn range(&self, (start, end): (u32, u32)) -> &str {
        &self.text[start as usize..end as usize]
    }

    /// The track named by [`TRACK_FIELD`], if any.
    pub(crate) fn track(&self) -> Option<&str> {
        self.track.map(|r| self.range(r))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    /// Makes the `message` field an argument like the others: only an
    /// event's message names what it is shown as; a span's would be lost.
    pub(crate) fn message_as_arg(&mut self) {
        if let Some((start, end)) = self.message.take() {
            self.texts.push((self.args.len() as u32, start, end));
            self.push("message", UNPOINTED);
        }
    }

    /// The message, the other fields as arguments, and their names (the
    /// callsite's, `'static`).
    pub(crate) fn message_and_args(&mut self) -> (Option<&str>, &[Arg<'_>], ArgNames<'_>) {
        self.point();
        let names = ArgNames(self.args.iter());
        (self.message.map(|r| self.range(r)), &self.args, names)
    }

    /// The fields as arguments, borrowing this buffer.
    pub(crate) fn args(&mut self) -> &[Arg<'_>] {
        self.point();
        &self.args
    }

    fn point(&mut self) {
        for &(i, s, e) in &self.texts {
            let text: &str = &self.text[s as usize..e as usize];
            // SAFETY: `args` holds the reference only while `text` stays as
            // it is: before `text` changes, `clear` empties `args` and
            // `text_field` sets text values back (`unpoint`); moving the
            // buffer moves `text`'s heap block with it, unmoved; and
            // callers reach it only through a borrow of this buffer.
            let text = unsafe { std::mem::transmute::<&str, &'static str>(text) };
            self.args[i as usize].value = Value::Str(text);
        }
        self.pointed = true;
    }

    fn push(&mut self, name: &'static str, value: Value<'static>) {
        self.args.push(Arg::new(name, value));
    }

    /// Appends `value`'s text; its range.
    fn push_text(&mut self, value: impl FnOnce(&mut String) -> fmt::Result) -> (u32, u32) {
        if self.pointed {
            self.unpoint();
        }
        let start = self.text.len();
        // A failing Debug impl leaves what it wrote.
        let _ = value(&mut self.text);
        (start as u32, self.text.len() as u32)
    }

    fn text_field(&mut self, field: &Field, value: impl FnOnce(&mut String) -> fmt::Result) {
        let range = self.push_text(value);
        match field.name() {
            "message" => self.message = Some(range),
            TRACK_FIELD => self.track = Some(range),
            name => {
                self.texts.push((self.args.len() as u32, range.0, range.1));
                self.push(name, UNPOINTED);
            }
        }
    }
}

impl Visit for ArgBuf {
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field.name(), Value::Bool(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field.name(), Value::Int(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field.name(), Value::Uint(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        match i64::try_from(value) {
            Ok(v) => self.record_i64(field, v),
            Err(_) => self.text_field(field, |t| write!(t, "{value}")),
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        match u64::try_from(value) {
            Ok(v) => self.record_u64(field, v),
            Err(_) => self.text_field(field, |t| write!(t, "{value}")),
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field.name(), Value::Double(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.text_field(field, |t| {
            t.push_str(value);
            Ok(())
        });
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.text_field(field, |t| write!(t, "{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text_field(field, |t| write!(t, "{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_message_and_track_are_told_apart() {
        let mut buf = ArgBuf::default();
        let cs = tracing::callsite!(name: "t", kind: tracing::metadata::Kind::EVENT, fields: message, a, b, c, d, perfetto.track, e);
        let fields = tracing::callsite::Callsite::metadata(cs).fields();
        let f = |n: &str| fields.field(n).unwrap();
        buf.record_debug(&f("message"), &format_args!("hello {}", 7));
        buf.record_i64(&f("a"), -3);
        buf.record_u64(&f("b"), 4);
        buf.record_f64(&f("c"), 0.5);
        buf.record_bool(&f("d"), true);
        buf.record_str(&f("perfetto.track"), "db");
        buf.record_debug(&f("e"), &Some("x"));
        assert_eq!(buf.message_and_args().0, Some("hello 7"));
        assert_eq!(buf.track(), Some("db"));
        let args = buf.args().to_vec();
        assert_eq!(
            args,
            vec![
                Arg::new("a", Value::Int(-3)),
                Arg::new("b", Value::Uint(4)),
                Arg::new("c", Value::Double(0.5)),
                Arg::new("d", Value::Bool(true)),
                Arg::new("e", Value::Str("Some(\"x\")")),
            ]
        );
        // More text after the args were taken: they point at it again.
        buf.record_str(&f("a"), "later");
        assert_eq!(buf.args()[5], Arg::new("a", Value::Str("later")));
        assert_eq!(buf.args()[4], Arg::new("e", Value::Str("Some(\"x\")")));
        buf.message_as_arg();
        assert_eq!(buf.message_and_args().0, None);
        assert_eq!(buf.args()[6], Arg::new("message", Value::Str("hello 7")));
        // Moved (as the span table swaps them), the values still point at
        // the buffer's text.
        let mut copy = ArgBuf::default();
        std::mem::swap(&mut copy, &mut buf);
        drop(buf);
        assert_eq!(copy.args()[5], Arg::new("a", Value::Str("later")));
        copy.clear();
        assert!(copy.is_empty() && copy.track().is_none() && copy.message_and_args().0.is_none());
    }
}
