//! Each callsite's category text, `level,target` (the trace processor and
//! UI read comma-separated categories), made once per callsite and found
//! again without a lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Mutex;

use perfetto_trace_writer::Event;
use tracing_core::{Level, Metadata};

struct Category {
    meta: *const Metadata<'static>,
    text: &'static str,
}

const CACHE_SLOTS: usize = 4096;

/// Direct-mapped by the metadata's address; a miss goes to `ALL`.
static CACHE: [AtomicPtr<Category>; CACHE_SLOTS] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; CACHE_SLOTS];

/// Every callsite's category, made once: callsites are static and few.
static ALL: Mutex<Option<HashMap<usize, &'static Category>>> = Mutex::new(None);

fn slot(meta: &'static Metadata<'static>) -> usize {
    // In 64 bits whatever `usize` is: the product's high bits are the
    // well-mixed ones.
    let addr = meta as *const Metadata<'static> as usize as u64;
    (addr.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize % CACHE_SLOTS
}

/// The category of a callsite's spans and events.
#[inline]
pub(crate) fn category(meta: &'static Metadata<'static>) -> &'static str {
    let found = CACHE[slot(meta)].load(Ordering::Acquire);
    // SAFETY: cached pointers come from leaked `Category`s, never freed.
    if let Some(c) = unsafe { found.as_ref() } {
        if std::ptr::eq(c.meta, meta) {
            return c.text;
        }
    }
    register(meta)
}

/// An event of a callsite named `name`: its category and source location.
#[inline]
pub(crate) fn event<'a>(meta: &'static Metadata<'static>, name: &'a str) -> Event<'a> {
    Event::new(name)
        .category(category(meta))
        .location(meta.file().unwrap_or(""), meta.line().unwrap_or(0))
}

/// Makes (or finds) a callsite's category and caches it.
#[cold]
pub(crate) fn register(meta: &'static Metadata<'static>) -> &'static str {
    let mut all = ALL.lock().unwrap_or_else(|e| e.into_inner());
    let key = meta as *const Metadata<'static> as usize;
    let category: &'static Category = all
        .get_or_insert_with(HashMap::new)
        .entry(key)
        .or_insert_with(|| {
            let text: &'static str =
                Box::leak(format!("{},{}", level(meta.level()), meta.target()).into_boxed_str());
            Box::leak(Box::new(Category { meta, text }))
        });
    CACHE[slot(meta)].store(
        category as *const Category as *mut Category,
        Ordering::Release,
    );
    category.text
}

fn level(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

// SAFETY: a `Category` is immutable once leaked; the metadata it points to
// is `'static` and `Sync`.
unsafe impl Send for Category {}
unsafe impl Sync for Category {}
