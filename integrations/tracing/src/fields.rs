//! Fields of spans and events as typed arguments, gathered into buffers a
//! thread reuses, so that recording allocates nothing once they have grown.

use std::fmt::{self, Write as _};

use perfetto_trace_writer::{Arg, Value};
use tracing_core::field::{Field, Visit};

/// The field that names the track a span goes on (see the crate docs).
pub const TRACK_FIELD: &str = "perfetto.track";

/// The fields of one span or event as the writer takes them: names
/// (static, from the callsite) and values, the text of strings and `Debug`
/// values kept in one buffer, which the text values point into.
///
/// Those pointers stay valid because `text` is only appended to within its
/// capacity while they exist (no byte they cover is written, its block does
/// not move); whatever may move it (growing, formatting a `Debug` value,
/// clearing) first notes where each text value's text is and sets it back
/// to [`UNPOINTED`], and points them again after. Every non-empty text
/// value points into `text`.
#[derive(Default)]
pub(crate) struct ArgBuf {
    text: String,
    /// The fields in order; text values point into `text`.
    args: Vec<Arg<'static>>,
    /// The text values while `text` may move: (index in `args`, range of
    /// `text`). Kept between uses so that it does not allocate again.
    moving: Vec<(u32, u32, u32)>,
    /// The `message` field's text, apart: nothing points into it, so it is
    /// formatted without a care for the pointers.
    message: String,
    has_message: bool,
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

/// What a text value holds while `text` may move.
const UNPOINTED: Value<'static> = Value::Str("");

/// Text a buffer has room for before it first grows.
const FIRST_TEXT: usize = 256;

impl ArgBuf {
    pub(crate) fn clear(&mut self) {
        // `args` first: nothing points into `text` while it changes.
        self.args.clear();
        self.text.clear();
        self.has_message = false;
        self.track = None;
    }

    /// Notes where each text value's text is and sets it back to
    /// [`UNPOINTED`], before `text` may move.
    fn unpoint(&mut self) {
        self.moving.clear();
        let base = self.text.as_ptr() as usize;
        for (i, a) in self.args.iter_mut().enumerate() {
            if let Value::Str(s) = a.value {
                if !s.is_empty() {
                    let start = (s.as_ptr() as usize).wrapping_sub(base);
                    self.moving
                        .push((i as u32, start as u32, (start + s.len()) as u32));
                }
                a.value = UNPOINTED;
            }
        }
    }

    /// Points every text value at its text again, once `text` is still.
    fn repoint(&mut self) {
        for k in 0..self.moving.len() {
            let (i, start, end) = self.moving[k];
            let value = Value::Str(self.pinned(start, end));
            if let Some(a) = self.args.get_mut(i as usize) {
                a.value = value;
            }
        }
    }

    /// Whether a text value points into `text`.
    fn pointed(&self) -> bool {
        self.args
            .iter()
            .any(|a| matches!(a.value, Value::Str(s) if !s.is_empty()))
    }

    /// `text[start..end]` as text values hold it.
    fn pinned(&self, start: u32, end: u32) -> &'static str {
        let text: &str = self.text.get(start as usize..end as usize).unwrap_or("");
        Self::pin(text)
    }

    /// The text appended last, from `start`, as text values hold it.
    #[inline(always)]
    fn pinned_tail(&self, start: usize) -> &'static str {
        Self::pin(self.text.get(start..).unwrap_or(""))
    }

    #[inline(always)]
    fn pin(text: &str) -> &'static str {
        // SAFETY: `args` holds the reference only while `text`'s bytes up to
        // its length stay as they are and its block does not move: see the
        // type's docs (`unpoint` before anything else); moving the buffer
        // moves `text`'s heap block with it, unmoved; and callers reach
        // `args` only through a borrow of this buffer.
        unsafe { std::mem::transmute::<&str, &'static str>(text) }
    }

    fn range(&self, (start, end): (u32, u32)) -> &str {
        &self.text[start as usize..end as usize]
    }

    /// The track named by [`TRACK_FIELD`], if any.
    #[inline]
    pub(crate) fn track(&self) -> Option<&str> {
        self.track.map(|r| self.range(r))
    }

    /// Whether a field named the track ([`TRACK_FIELD`]).
    #[inline]
    pub(crate) fn names_track(&self) -> bool {
        self.track.is_some()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    /// Exchanges the fields (the arguments and the text they point into)
    /// with `other`'s, as the span table keeps a span's: the rest of a
    /// buffer is scratch or read only while its fields are recorded, so it
    /// stays (a third of the bytes of a whole swap).
    #[inline]
    pub(crate) fn swap_fields(&mut self, other: &mut ArgBuf) {
        std::mem::swap(&mut self.text, &mut other.text);
        std::mem::swap(&mut self.args, &mut other.args);
    }

    /// Makes the `message` field an argument like the others: only an
    /// event's message names what it is shown as; a span's would be lost.
    #[inline]
    pub(crate) fn message_as_arg(&mut self) {
        // Most spans have none: the test inline, the work out of line.
        if self.has_message {
            self.move_message();
        }
    }

    #[cold]
    fn move_message(&mut self) {
        self.has_message = false;
        let message = std::mem::take(&mut self.message);
        self.str_arg("message", &message);
        self.message = message;
    }

    /// The message, the other fields as arguments, and their names (the
    /// callsite's, `'static`).
    #[inline]
    pub(crate) fn message_and_args(&self) -> (Option<&str>, &[Arg<'_>], ArgNames<'_>) {
        let names = ArgNames(self.args.iter());
        let message = self.has_message.then_some(self.message.as_str());
        (message, &self.args, names)
    }

    /// The fields as arguments, borrowing this buffer.
    pub(crate) fn args(&self) -> &[Arg<'_>] {
        &self.args
    }

    #[inline]
    fn push(&mut self, name: &'static str, value: Value<'static>) {
        self.args.push(Arg::new(name, value));
    }

    /// Appends `value`'s text (formatted, which may move `text`); its
    /// range.
    fn push_formatted(&mut self, value: impl FnOnce(&mut String) -> fmt::Result) -> (u32, u32) {
        let pointed = self.pointed();
        if pointed {
            self.unpoint();
        }
        if self.text.capacity() == 0 {
            self.text.reserve(FIRST_TEXT);
        }
        let start = self.text.len();
        // A failing Debug impl leaves what it wrote.
        let _ = value(&mut self.text);
        if pointed {
            self.repoint();
        }
        (start as u32, self.text.len() as u32)
    }

    /// Appends `value`, within `text`'s room (made first if need be, which
    /// moves it); its range.
    #[inline]
    fn push_str(&mut self, value: &str) -> (u32, u32) {
        if self.text.capacity() - self.text.len() < value.len() {
            self.grow(value.len());
        }
        let start = self.text.len();
        // Within the capacity: nothing moves, no byte pointed at changes.
        self.text.push_str(value);
        (start as u32, self.text.len() as u32)
    }

    #[cold]
    fn grow(&mut self, more: usize) {
        self.unpoint();
        self.text.reserve(more.max(FIRST_TEXT));
        self.repoint();
    }

    /// A text argument: `value` appended to `text` and pointed at.
    #[inline(always)]
    fn str_arg(&mut self, name: &'static str, value: &str) {
        let (start, _) = self.push_str(value);
        let value = Value::Str(self.pinned_tail(start as usize));
        self.push(name, value);
    }

    /// A field whose value is text made by `value`: the message, the track
    /// or an argument.
    fn formatted_field(&mut self, field: &Field, value: impl FnOnce(&mut String) -> fmt::Result) {
        match field.name() {
            "message" => {
                self.message.clear();
                // A failing Debug impl leaves what it wrote.
                let _ = value(&mut self.message);
                self.has_message = true;
            }
            name => {
                let range = self.push_formatted(value);
                if name == TRACK_FIELD {
                    self.track = Some(range);
                } else {
                    let value = Value::Str(self.pinned(range.0, range.1));
                    self.push(name, value);
                }
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
            Err(_) => self.formatted_field(field, |t| write!(t, "{value}")),
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        match u64::try_from(value) {
            Ok(v) => self.record_u64(field, v),
            Err(_) => self.formatted_field(field, |t| write!(t, "{value}")),
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field.name(), Value::Double(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => {
                self.message.clear();
                self.message.push_str(value);
                self.has_message = true;
            }
            TRACK_FIELD => self.track = Some(self.push_str(value)),
            name => self.str_arg(name, value),
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.formatted_field(field, |t| write!(t, "{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.formatted_field(field, |t| write!(t, "{value:?}"));
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
        copy.swap_fields(&mut buf);
        drop(buf);
        assert_eq!(copy.args()[5], Arg::new("a", Value::Str("later")));
        assert_eq!(copy.args()[6], Arg::new("message", Value::Str("hello 7")));
        copy.clear();
        assert!(copy.is_empty() && copy.track().is_none() && copy.message_and_args().0.is_none());
    }

    /// Text values keep their text while the buffer's text grows (past its
    /// first room, by strings and by `Debug` values) and is cleared for the
    /// next event.
    #[test]
    fn text_values_survive_the_text_growing() {
        let mut buf = ArgBuf::default();
        let cs = tracing::callsite!(name: "t", kind: tracing::metadata::Kind::EVENT, fields: s, d, message);
        let fields = tracing::callsite::Callsite::metadata(cs).fields();
        let f = |n: &str| fields.field(n).unwrap();
        for round in 0..3 {
            buf.clear();
            let mut want = Vec::new();
            for i in 0..40 {
                let text = format!("{round}-{i}-{}", "y".repeat(i * 7));
                if i % 3 == 0 {
                    buf.record_debug(&f("d"), &text);
                    want.push(format!("{text:?}"));
                } else {
                    buf.record_str(&f("s"), &text);
                    want.push(text);
                }
            }
            buf.record_debug(&f("message"), &format_args!("m{round}"));
            let (message, args, names) = buf.message_and_args();
            assert_eq!(message, Some(&*format!("m{round}")));
            assert_eq!(names.count(), 40);
            let got: Vec<String> = args
                .iter()
                .map(|a| match a.value {
                    Value::Str(s) => s.to_owned(),
                    _ => String::new(),
                })
                .collect();
            assert_eq!(got, want, "round {round}");
        }
    }
}
