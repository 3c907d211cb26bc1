//! Fields of spans and events as typed arguments, gathered into buffers a
//! thread reuses, so that recording allocates nothing once they have grown.

use std::fmt::{self, Write as _};
use std::sync::OnceLock;

use perfetto_trace_writer::{Arg, Value};
use tracing_core::field::{Field, Visit};

use crate::messages::Name;

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
    /// `text`). Kept between uses so that it does not allocate again;
    /// boxed, made on first use (seldom), so that the buffer is small to
    /// swap (the span table swaps a span's fields in and out).
    #[allow(clippy::box_collection)] // one word where a `Vec` is three
    moving: Option<Box<Vec<(u32, u32, u32)>>>,
    /// The `message` field's text when it is not static, apart: nothing
    /// points into it, so it is formatted without a care for the pointers.
    message: String,
    /// Whether there was a `message` field, and its static text if it was
    /// (see [`MessageIs`]): apart, where an enum would take a word more.
    has_message: bool,
    static_message: Option<&'static str>,
    /// The value of [`TRACK_FIELD`], a range of `text`.
    track: Option<(u32, u32)>,
}

/// An [`ArgBuf`]'s `message` field.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
enum MessageIs {
    #[default]
    Absent,
    /// Static text (`info!("done")`), not copied.
    Static(&'static str),
    /// In `message`.
    Text,
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
        self.set_message(MessageIs::Absent);
        self.track = None;
    }

    #[inline(always)]
    fn message_is(&self) -> MessageIs {
        match (self.has_message, self.static_message) {
            (false, _) => MessageIs::Absent,
            (true, Some(text)) => MessageIs::Static(text),
            (true, None) => MessageIs::Text,
        }
    }

    #[inline(always)]
    fn set_message(&mut self, message: MessageIs) {
        (self.has_message, self.static_message) = match message {
            MessageIs::Absent => (false, None),
            MessageIs::Static(text) => (true, Some(text)),
            MessageIs::Text => (true, None),
        };
    }

    /// Notes where each text value's text is and sets it back to
    /// [`UNPOINTED`], before `text` may move.
    fn unpoint(&mut self) {
        let moving = self.moving.get_or_insert_with(Box::default);
        moving.clear();
        let base = self.text.as_ptr() as usize;
        for (i, a) in self.args.iter_mut().enumerate() {
            if let Value::Str(s) = a.value {
                if !s.is_empty() {
                    let start = (s.as_ptr() as usize).wrapping_sub(base);
                    moving.push((i as u32, start as u32, (start + s.len()) as u32));
                }
                a.value = UNPOINTED;
            }
        }
    }

    /// Points every text value at its text again, once `text` is still.
    fn repoint(&mut self) {
        let Some(moving) = self.moving.take() else {
            return;
        };
        for &(i, start, end) in moving.iter() {
            let value = Value::Str(self.pinned(start, end));
            if let Some(a) = self.args.get_mut(i as usize) {
                a.value = value;
            }
        }
        self.moving = Some(moving);
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
        debug_assert!(self.text.is_char_boundary(start));
        // SAFETY: `start` is where the text appended last began, the
        // length `text` had before: within it, on a char boundary.
        Self::pin(unsafe { self.text.get_unchecked(start..) })
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
        let message = self.message_is();
        self.set_message(MessageIs::Absent);
        match message {
            MessageIs::Absent => {}
            MessageIs::Static(text) => self.str_arg("message", text),
            MessageIs::Text => {
                let message = std::mem::take(&mut self.message);
                self.str_arg("message", &message);
                self.message = message;
            }
        }
    }

    /// The message, the other fields as arguments, and their names (the
    /// callsite's, `'static`).
    #[cfg(test)]
    pub(crate) fn message_and_args(&self) -> (Option<&str>, &[Arg<'_>], ArgNames<'_>) {
        let (message, args, names) = self.message_name_and_args();
        (message.map(Name::text), args, names)
    }

    /// [`message_and_args`](Self::message_and_args), the message as a
    /// [`Name`]: static text, if it is, kept by reference.
    #[inline]
    pub(crate) fn message_name_and_args(&self) -> (Option<Name<'_>>, &[Arg<'_>], ArgNames<'_>) {
        let names = ArgNames(self.args.iter());
        let message = match self.message_is() {
            MessageIs::Absent => None,
            MessageIs::Static(text) => Some(Name::Static(text)),
            MessageIs::Text => Some(Name::Made(&self.message)),
        };
        (message, &self.args, names)
    }

    /// The fields as arguments, borrowing this buffer.
    pub(crate) fn args(&self) -> &[Arg<'_>] {
        &self.args
    }

    /// Appends an argument: inline while there is room, the growing out of
    /// line (so that the callbacks' fast paths keep nothing across a call).
    #[inline(always)]
    fn push(&mut self, name: &'static str, value: Value<'static>) {
        if self.args.len() == self.args.capacity() {
            return self.push_growing(name, value);
        }
        self.args.push(Arg::new(name, value));
    }

    #[cold]
    #[inline(never)]
    fn push_growing(&mut self, name: &'static str, value: Value<'static>) {
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
        append_within(&mut self.text, value);
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
                self.set_message(MessageIs::Text);
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

    #[inline]
    fn record_str(&mut self, field: &Field, value: &str) {
        let name = field.name();
        // Most string fields: short text with room for it.
        if value.len() <= SHORT
            && self.text.capacity() - self.text.len() >= SHORT
            && name != "message"
            && name != TRACK_FIELD
        {
            let start = self.text.len();
            // SAFETY: `text` has room for `SHORT` bytes more (checked).
            unsafe { append_short(&mut self.text, value) };
            let value = Value::Str(self.pinned_tail(start));
            self.push(name, value);
            return;
        }
        self.str_field(field, value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.formatted_field(field, |t| write!(t, "{value}"));
    }

    #[inline]
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // The message of `info!("...")` is `format_args!`'s: static text
        // is taken as it is.
        if field.name() == "message" {
            if let Some(text) = static_message(value) {
                self.set_message(MessageIs::Static(text));
                return;
            }
        }
        self.debug_field(field, value);
    }
}

impl ArgBuf {
    /// [`Visit::record_str`] of what its inline path leaves: the message,
    /// the track, long text, text without room.
    #[inline(never)]
    fn str_field(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => {
                self.message.clear();
                self.message.push_str(value);
                self.set_message(MessageIs::Text);
            }
            TRACK_FIELD => self.track = Some(self.push_str(value)),
            name => self.str_arg(name, value),
        }
    }

    /// [`Visit::record_debug`] of what its inline path leaves: anything but
    /// a static message of `format_args!` once [`ARGUMENTS`] is known.
    #[inline(never)]
    fn debug_field(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // A message of `format_args!` with arguments is formatted once
        // (its `Debug` would format it inside a second `fmt::write`).
        if field.name() == "message" {
            if let Some(args) = as_arguments(value) {
                match args.as_str() {
                    Some(text) => self.set_message(MessageIs::Static(text)),
                    None => self.format_message(*args),
                }
                return;
            }
        }
        self.formatted_field(field, |t| write!(t, "{value:?}"));
    }
}

impl ArgBuf {
    /// The message of `format_args!` with arguments, formatted into
    /// `message` through [`Appending`].
    fn format_message(&mut self, args: fmt::Arguments<'_>) {
        self.message.clear();
        // A failing Display impl leaves what it wrote.
        let _ = fmt::write(&mut Appending(&mut self.message), args);
        self.set_message(MessageIs::Text);
    }
}

/// A `String` that formatting appends to by [`append_within`]: a message's
/// pieces and values are most often short, and `String`'s own `write_str`
/// calls memcpy for each (about 25 instructions a piece more).
struct Appending<'a>(&'a mut String);

impl fmt::Write for Appending<'_> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        append_within(self.0, s);
        Ok(())
    }
}

/// The longest text [`append_short`] copies.
const SHORT: usize = 16;

/// Appends `value` to `text`, which has room for it: short text (most
/// string fields) inline ([`append_short`]), where `push_str` calls memcpy.
#[inline(always)]
fn append_within(text: &mut String, value: &str) {
    if value.len() <= SHORT && text.capacity() - text.len() >= value.len() {
        // SAFETY: room for `value` (checked).
        unsafe { append_short(text, value) };
    } else {
        text.push_str(value);
    }
}

/// Appends `value`, of at most [`SHORT`] bytes, by two fixed-size copies
/// that overlap.
///
/// # Safety
/// `text` has room for `value` (`capacity - len >= value.len()`).
#[inline(always)]
unsafe fn append_short(text: &mut String, value: &str) {
    let n = value.len();
    debug_assert!(n <= SHORT && text.capacity() - text.len() >= n);
    let src = value.as_ptr();
    // SAFETY: `text` has room for `n` more bytes (the caller's promise);
    // the copies read only `value`'s `n` bytes and write only that room,
    // and the bytes written are `value`'s: its length grows by whole UTF-8.
    unsafe {
        let bytes = text.as_mut_vec();
        let len = bytes.len();
        let dst = bytes.as_mut_ptr().add(len);
        if n >= 8 {
            let (head, tail) = (src.cast::<u64>(), src.add(n - 8).cast::<u64>());
            dst.cast::<u64>().write_unaligned(head.read_unaligned());
            dst.add(n - 8)
                .cast::<u64>()
                .write_unaligned(tail.read_unaligned());
        } else if n >= 4 {
            let (head, tail) = (src.cast::<u32>(), src.add(n - 4).cast::<u32>());
            dst.cast::<u32>().write_unaligned(head.read_unaligned());
            dst.add(n - 4)
                .cast::<u32>()
                .write_unaligned(tail.read_unaligned());
        } else if n > 0 {
            *dst = *src;
            *dst.add(n / 2) = *src.add(n / 2);
            *dst.add(n - 1) = *src.add(n - 1);
        }
        bytes.set_len(len + n);
    }
}

/// A `Debug` value's vtable, to tell values of one type (`fmt::Arguments`)
/// by: only ever compared, never followed.
#[derive(Clone, Copy)]
struct Vtable(*const (dyn fmt::Debug + 'static));

// SAFETY: the pointer is only compared (see `as_arguments`).
unsafe impl Send for Vtable {}
unsafe impl Sync for Vtable {}

/// The vtable with which `tracing` hands a `format_args!` value (an event's
/// message) to a visitor's `record_debug`, found once by having it hand one
/// over.
static ARGUMENTS: OnceLock<Option<Vtable>> = OnceLock::new();

#[cold]
fn arguments_vtable() -> Option<Vtable> {
    struct Probe(Option<Vtable>);
    impl Visit for Probe {
        fn record_debug(&mut self, _: &Field, value: &dyn fmt::Debug) {
            let value: *const (dyn fmt::Debug + '_) = value;
            // SAFETY: only the trait object's lifetime changes, and the
            // pointer is never followed.
            let value = unsafe {
                std::mem::transmute::<*const (dyn fmt::Debug + '_), *const (dyn fmt::Debug + 'static)>(
                    value,
                )
            };
            self.0 = Some(Vtable(value));
        }
    }
    let callsite =
        tracing::callsite!(name: "probe", kind: tracing::metadata::Kind::EVENT, fields: message);
    let field = tracing::callsite::Callsite::metadata(callsite)
        .fields()
        .field("message")?;
    let mut probe = Probe(None);
    // Through `dyn Value`, as an event's fields are recorded: the value
    // reaches `record_debug` as `tracing_core`'s impl makes it.
    let message: &dyn tracing_core::field::Value = &format_args!("probe");
    std::hint::black_box(message).record(&field, &mut probe);
    probe.0
}

/// The text of `value` if it is a static `format_args!` message, found
/// inline once [`ARGUMENTS`] is known (else `None`: see [`as_arguments`]).
#[inline(always)]
fn static_message(value: &dyn fmt::Debug) -> Option<&'static str> {
    let known = (*ARGUMENTS.get()?)?;
    arguments_with(known, value)?.as_str()
}

/// `value` as the `fmt::Arguments` it is, when it comes with the vtable
/// `tracing` hands one over with ([`ARGUMENTS`]); `None` for anything else
/// (and for an `fmt::Arguments` that comes with another copy of it, as
/// vtables may be duplicated: then formatted through `Debug`).
#[inline]
fn as_arguments<'v>(value: &'v dyn fmt::Debug) -> Option<&'v fmt::Arguments<'v>> {
    arguments_with((*ARGUMENTS.get_or_init(arguments_vtable))?, value)
}

/// [`as_arguments`] given the vtable.
#[inline(always)]
fn arguments_with<'v>(known: Vtable, value: &'v dyn fmt::Debug) -> Option<&'v fmt::Arguments<'v>> {
    let value: *const (dyn fmt::Debug + 'v) = value;
    let known: *const (dyn fmt::Debug + 'v) = known.0.with_addr(value.addr());
    // Both address and vtable.
    if !std::ptr::eq(value, known) {
        return None;
    }
    // SAFETY: `value` has the vtable of `fmt::Arguments` as `Debug`: its
    // size, alignment, drop and `fmt` are `fmt::Arguments`'s. A vtable is
    // shared by another type only when all of these are the same, its
    // `fmt` the same machine code, which reads the value as an
    // `fmt::Arguments`: it is one in all but name.
    Some(unsafe { &*(value as *const fmt::Arguments<'v>) })
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

    /// A message of `format_args!` is told from other `Debug` values: as
    /// it is when static, formatted once when not; anything else through
    /// its `Debug`.
    #[test]
    fn messages_of_format_args_are_taken_as_they_are() {
        use tracing_core::field::Value as _;
        let cs =
            tracing::callsite!(name: "t", kind: tracing::metadata::Kind::EVENT, fields: message, d);
        let fields = tracing::callsite::Callsite::metadata(cs).fields();
        let (message, d) = (fields.field("message").unwrap(), fields.field("d").unwrap());
        let mut buf = ArgBuf::default();
        // As `tracing`'s macros hand it over: `&dyn Value`.
        let record = |buf: &mut ArgBuf, value: &dyn tracing_core::field::Value| {
            buf.clear();
            value.record(&message, buf);
        };
        // Found once (`ARGUMENTS`), then inline.
        for _ in 0..2 {
            record(&mut buf, &format_args!("static text"));
            assert_eq!(buf.message_is(), MessageIs::Static("static text"));
        }
        let n = std::hint::black_box(5);
        record(&mut buf, &format_args!("{n} rows"));
        assert_eq!(buf.message_is(), MessageIs::Text);
        assert_eq!(buf.message_and_args().0, Some("5 rows"));
        // Not `fmt::Arguments`: their `Debug`.
        record(&mut buf, &tracing::field::debug("quoted"));
        assert_eq!(buf.message_and_args().0, Some("\"quoted\""));
        record(&mut buf, &tracing::field::display("shown"));
        assert_eq!(buf.message_and_args().0, Some("shown"));
        buf.clear();
        buf.record_debug(&message, &[1, 2]);
        assert_eq!(buf.message_and_args().0, Some("[1, 2]"));
        // An argument of `format_args!` that is not the message: formatted.
        buf.clear();
        format_args!("arg").record(&d, &mut buf);
        assert_eq!(buf.args(), &[Arg::new("d", Value::Str("arg"))]);
        // A span's static message becomes its argument.
        record(&mut buf, &format_args!("static text"));
        buf.message_as_arg();
        assert_eq!(
            buf.args(),
            &[Arg::new("message", Value::Str("static text"))]
        );
    }

    /// The span table swaps a span's fields in and out of the thread's
    /// buffer: each word more is copied twice per span.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_buffer_is_fourteen_words() {
        assert_eq!(std::mem::size_of::<ArgBuf>(), 14 * 8);
    }

    /// Short texts are copied by fixed-size pieces: every length up to
    /// past the longest copied so, in ASCII and in multibyte text, next to
    /// text already there.
    #[test]
    fn short_texts_are_copied_whole() {
        let cs = tracing::callsite!(name: "t", kind: tracing::metadata::Kind::EVENT, fields: s);
        let fields = tracing::callsite::Callsite::metadata(cs).fields();
        let field = fields.field("s").unwrap();
        let mut buf = ArgBuf::default();
        let texts: Vec<String> = (0..=20)
            .map(|n| ('a'..='z').cycle().take(n).collect())
            .chain((0..=7).map(|n| "é✓".repeat(n)))
            .collect();
        for text in &texts {
            buf.record_str(&field, "before");
            buf.record_str(&field, text);
            buf.record_str(&field, "after");
        }
        let got: Vec<&str> = buf
            .args()
            .iter()
            .map(|a| match a.value {
                Value::Str(s) => s,
                _ => "",
            })
            .collect();
        let want: Vec<&str> = texts
            .iter()
            .flat_map(|t| ["before", t.as_str(), "after"])
            .collect();
        assert_eq!(got, want);
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
