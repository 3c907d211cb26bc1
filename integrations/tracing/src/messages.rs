//! Each event callsite's event key with a thread's writer, named by the
//! message of its events: a callsite's message is usually the same text
//! every time, so one comparison with the text its key was made for lets
//! the writer skip looking up the event's name, category and location.
//!
//! A callsite whose message differs, once, from the one its key was made
//! for (`info!("loaded {} rows", n)`) has its events written from then on
//! with the key and the message inline (`TrackEvent.name`, not interned):
//! such a message is most often new each time, and interning each would
//! add an entry to the sequence's interned data and to the writer's
//! tables every event, until they reach their cap. The key still gives
//! the category, source location and field names, and the message is no
//! longer compared. A callsite whose message stays the same keeps its
//! interned name.

use std::borrow::Cow;

use perfetto_trace_writer::{EventKey, TraceWriter};
use tracing_core::Metadata;

use crate::callsites::category;
use crate::thread::{key_slot, KEY_SLOTS};

/// Keys a writer makes for events at most: past it, events go by their
/// strings. Keys are never freed, and callsites that share a place in the
/// table and whose messages vary would otherwise make one for each message.
const MAX_KEYS: u32 = 4 * KEY_SLOTS as u32;

/// A callsite's key and the message it names.
struct Slot {
    meta: usize,
    /// Static text kept by reference, whose events then give the very same
    /// text (the same address): known without reading it.
    message: Cow<'static, str>,
    key: EventKey,
    /// Whether an event of the callsite had another message: its events
    /// are then named inline.
    varied: bool,
}

/// How an event of a callsite with a key is named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keyed {
    /// By its key: the message it was made for.
    Named(EventKey),
    /// By its key, with the event's message written inline: the
    /// callsite's message has varied.
    Inline(EventKey),
}

/// An event's name as the layer finds it: static text (a message without
/// arguments, a callsite's name), or text made for the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Name<'a> {
    Static(&'static str),
    Made(&'a str),
}

impl<'a> Name<'a> {
    #[inline]
    pub(crate) fn text(self) -> &'a str {
        match self {
            Name::Static(text) => text,
            Name::Made(text) => text,
        }
    }
}

/// The keys, direct-mapped by the callsite's address.
#[derive(Default)]
pub(crate) struct MessageKeys {
    /// [`KEY_SLOTS`] places, made with the first event.
    slots: Vec<Option<Slot>>,
    /// Keys made so far.
    made: u32,
}

/// Whether a slot's text is `text`: the same bytes in memory (a static
/// message the slot keeps by reference), else equal.
#[inline(always)]
fn names(slot: &str, text: &str) -> bool {
    std::ptr::eq(slot, text) || same(slot, text)
}

/// Whether two texts are equal: up to 32 bytes (most messages of a
/// callsite that gives them as a literal) by comparing two words or two
/// halves of them, inline, where `==` calls memcmp.
#[inline(always)]
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    match a.len() {
        17..=32 => {
            a.first_chunk::<16>() == b.first_chunk::<16>()
                && a.last_chunk::<16>() == b.last_chunk::<16>()
        }
        8..=16 => {
            a.first_chunk::<8>() == b.first_chunk::<8>()
                && a.last_chunk::<8>() == b.last_chunk::<8>()
        }
        4..=7 => {
            a.first_chunk::<4>() == b.first_chunk::<4>()
                && a.last_chunk::<4>() == b.last_chunk::<4>()
        }
        _ => a == b,
    }
}

impl Slot {
    /// Notes that the callsite's message has varied (the text it was made
    /// for is no longer read), and names the event inline: out of line,
    /// called for every event of a varied callsite, so that the stable
    /// message's path keeps none of it (the test inline and the call made
    /// once cost that path 8 instructions and saved the varied one 14).
    #[cold]
    fn varies(&mut self) -> Keyed {
        if !self.varied {
            self.varied = true;
            self.message = Cow::Borrowed("");
        }
        Keyed::Inline(self.key)
    }
}

impl MessageKeys {
    /// The key of `meta`'s events, if it has one, and how an event named
    /// `message` is named with it: the key made for the first message its
    /// events had here, with the names of the fields that event had
    /// (`arg_names`), which the writer then need not look up while the
    /// callsite's events have the same; [`Keyed::Named`] while every
    /// message is that one, [`Keyed::Inline`] from the first that is not
    /// (see the module's docs). `None` once the writer has
    /// [`MAX_KEYS`] keys: the event then goes by its strings.
    #[inline]
    pub(crate) fn get(
        &mut self,
        writer: &mut impl TraceWriter,
        meta: &'static Metadata<'static>,
        message: Name<'_>,
        arg_names: impl Iterator<Item = &'static str>,
    ) -> Option<Keyed> {
        let (addr, i) = key_slot(meta);
        match self.slots.get_mut(i) {
            Some(Some(s)) if s.meta == addr => {
                if !s.varied && names(&s.message, message.text()) {
                    return Some(Keyed::Named(s.key));
                }
                Some(s.varies())
            }
            _ => self.make(writer, i, meta, message, arg_names),
        }
    }

    #[cold]
    fn make(
        &mut self,
        writer: &mut impl TraceWriter,
        i: usize,
        meta: &'static Metadata<'static>,
        message: Name<'_>,
        arg_names: impl Iterator<Item = &'static str>,
    ) -> Option<Keyed> {
        if self.made >= MAX_KEYS {
            return None;
        }
        let names: Vec<&'static str> = arg_names.collect();
        let key = writer
            .event_key_with_args(
                message.text(),
                category(meta),
                meta.file().unwrap_or(""),
                meta.line().unwrap_or(0),
                &names,
            )
            .ok()?;
        self.made += 1;
        if self.slots.is_empty() {
            self.slots.resize_with(KEY_SLOTS, || None);
        }
        self.slots[i] = Some(Slot {
            meta: meta as *const Metadata<'static> as usize,
            message: match message {
                Name::Static(text) => Cow::Borrowed(text),
                Name::Made(text) => Cow::Owned(text.into()),
            },
            key,
            varied: false,
        });
        Some(Keyed::Named(key))
    }

    /// Forgets every key (they belong to a writer that is gone).
    pub(crate) fn clear(&mut self) {
        *self = MessageKeys::default();
    }
}

#[cfg(test)]
mod tests {
    use super::{names, same};

    #[test]
    fn texts_are_the_same_exactly_when_equal() {
        let texts = [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "abce",
            "abcdefg",
            "abcdefh",
            "event wi",
            "event with",
            "event with fields",
            "event with fieldt",
            "fvent with fields",
            "event with fields!",
            "a longer message than sixteen bytes",
            "a longer message than sixteen bytez",
            "b longer message than sixteen bytes",
            "a message of thirty-two bytes...",
            "a message of thirty-two bytes..,",
            "a message of thirty-three bytes..",
        ];
        for a in texts {
            for b in texts {
                assert_eq!(same(a, b), a == b, "{a:?} {b:?}");
                assert_eq!(names(a, b), a == b, "{a:?} {b:?}");
                // A prefix at the same address is not the text.
                assert_eq!(names(a, &a[..a.len() / 2]), a.is_empty());
            }
            // Equal text elsewhere in memory.
            let copy = String::from(a);
            assert!(same(a, copy.as_str()));
        }
    }
}
