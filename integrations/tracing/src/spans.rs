//! What the layer keeps per live span, shared by every thread without a
//! lock or an allocation: an open-addressed table keyed by the span's id.
//!
//! A span is added by the thread that creates it, before any other thread
//! can know its id, read by the threads that enter it and removed by the one
//! that closes it. A key is live at most once at a time (the registry never
//! gives two live spans one id), so claiming a place with a compare-and-swap
//! and publishing the key with a release store is all the synchronisation
//! needed. Removed places become tombstones that later spans reuse;
//! lookups stop at a never-used place or after [`PROBES`] places.
//!
//! A place also keeps, for the thread view, the fields a span was created
//! with until its first slice on a thread begins: in a buffer the place
//! owns and later spans in it reuse, so that once warm nothing is
//! allocated.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

use crate::fields::ArgBuf;

const EMPTY: u64 = 0;
const TOMBSTONE: u64 = u64::MAX;
/// A place being filled: lookups pass over it.
const FILLING: u64 = u64::MAX - 1;
/// Places looked at before a span is taken for absent (or, adding, for
/// the table full there): bounds every lookup.
const PROBES: usize = 64;

/// What the layer knows of a live span.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SpanInfo {
    /// The uuid of its own track, 0 if it has none (thread view).
    pub track: u64,
    /// Its number, unique in the trace: the key of its track and flows.
    pub serial: u64,
    /// Its parent's id, 0 for none.
    pub parent: u64,
    /// Its callsite's `&'static Metadata`, as an address.
    pub meta: usize,
    /// The uuid of the track its own track sits beneath (0 without one).
    pub under: u64,
    /// How many tracks its own track is from the root, itself included.
    pub depth: u32,
    /// When its lifetime slice began (0 without a track): its end, on
    /// whichever thread closes it, is never written before that.
    pub begun: u64,
}

impl SpanInfo {
    pub(crate) fn metadata(&self) -> &'static tracing_core::Metadata<'static> {
        // SAFETY: `meta` is only ever set from a `&'static Metadata`.
        unsafe { &*(self.meta as *const tracing_core::Metadata<'static>) }
    }
}

/// Flows that end where a span next runs on a thread, 0 for none: the one
/// from where it was created, and one of `follows_from`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FlowsIn {
    pub creation: u64,
    pub follows: u64,
}

impl FlowsIn {
    pub(crate) fn is_empty(&self) -> bool {
        self.creation == 0 && self.follows == 0
    }
}

/// A span about to begin a slice on a thread: what the slice needs of
/// what the table knows of it (its callsite and parent), the flows that
/// slice ends (taken: only one thread gets them), and whether its creation
/// fields were moved into the caller's buffer.
pub(crate) struct Entering {
    /// Its callsite's `&'static Metadata`, as an address.
    pub meta: usize,
    /// Its parent's id, 0 for none.
    pub parent: u64,
    pub flows: FlowsIn,
    pub fields: bool,
}

impl Entering {
    pub(crate) fn metadata(&self) -> &'static tracing_core::Metadata<'static> {
        // SAFETY: `meta` is only ever set from a `&'static Metadata`.
        unsafe { &*(self.meta as *const tracing_core::Metadata<'static>) }
    }
}

#[derive(Default)]
struct Entry {
    key: AtomicU64,
    track: AtomicU64,
    serial: AtomicU64,
    parent: AtomicU64,
    meta: AtomicU64,
    under: AtomicU64,
    depth: AtomicU64,
    begun: AtomicU64,
    creation_flow: AtomicU64,
    follows_flow: AtomicU64,
    /// Whether `fields` holds the live span's creation fields, not yet
    /// taken by its first thread slice.
    has_fields: AtomicBool,
    /// The place's field buffer, made the first time a span here has
    /// fields to keep, and kept for the spans after it.
    fields: AtomicPtr<UnsafeCell<ArgBuf>>,
}

pub(crate) struct SpanTable {
    /// A power of two of places.
    entries: Box<[Entry]>,
    /// 64 less the log2 of the places: a hash's top bits are a home.
    shift: u32,
}

/// The low bits of tracing's registry's span ids (its slab's keys plus
/// one) that tell its slots apart: a slot's address in its shard, then the
/// shard's thread (sharded-slab 0.1's default layout, 38 and 13 bits).
/// Above them is the slot's generation, which a home leaves out: a slot
/// holds one live span at a time, so its spans one after another share a
/// home that stays in cache, and threads' slots at one address have homes
/// apart (hashed by the address alone, two threads' spans were neighbours
/// on a cache line both wrote per span). Ids of another layout are only
/// placed less well.
const SLOT_BITS: u32 = 51;

// A place's field buffer is written only by the thread that holds the
// place as FILLING (no other thread can reach it then), before the key is
// published with a release store; and otherwise only by the one thread
// that swaps `has_fields` from true to false while the span is live (it
// holds a handle to the span, so the place cannot be removed and refilled
// under it, and its handle's release orders its access before the close
// that frees the place). That is what makes the `unsafe` accesses below
// exclusive.

impl Drop for SpanTable {
    fn drop(&mut self) {
        for e in self.entries.iter() {
            let p = e.fields.load(Ordering::Relaxed);
            if !p.is_null() {
                // SAFETY: made by `Box::into_raw` in `insert`, freed once.
                drop(unsafe { Box::from_raw(p) });
            }
        }
    }
}

impl SpanTable {
    /// A table for about `capacity` live spans (a power of two at least
    /// twice that many places).
    pub(crate) fn new(capacity: usize) -> Self {
        let places = (capacity.max(16) * 2).next_power_of_two();
        SpanTable {
            entries: (0..places).map(|_| Entry::default()).collect(),
            shift: 64 - places.trailing_zeros(),
        }
    }

    /// Where the span `id` is looked for first.
    #[inline]
    fn home(&self, id: u64) -> usize {
        // Shifted up, the generation falls out of the word.
        let slot = id << (64 - SLOT_BITS);
        (slot.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    fn places(&self, id: u64) -> impl Iterator<Item = &Entry> {
        let home = self.home(id);
        // Masked by the length less one (a power of two): never out of
        // bounds, which the compiler then sees.
        let mask = self.entries.len() - 1;
        (0..PROBES).map(move |i| &self.entries[(home + i) & mask])
    }

    /// Adds a span, with the flow its first thread slice ends and the
    /// fields it carries there (thread view: moved into the place, whose
    /// buffer `fields` gets in exchange); false if its neighbourhood of the
    /// table is full (then `fields` is left as it is).
    pub(crate) fn insert(
        &self,
        id: u64,
        info: SpanInfo,
        creation_flow: u64,
        fields: Option<&mut ArgBuf>,
    ) -> bool {
        debug_assert!(id != EMPTY && id < FILLING);
        for e in self.places(id) {
            let k = e.key.load(Ordering::Relaxed);
            if (k == EMPTY || k == TOMBSTONE)
                && e.key
                    .compare_exchange(k, FILLING, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                e.track.store(info.track, Ordering::Relaxed);
                e.serial.store(info.serial, Ordering::Relaxed);
                e.parent.store(info.parent, Ordering::Relaxed);
                e.meta.store(info.meta as u64, Ordering::Relaxed);
                e.under.store(info.under, Ordering::Relaxed);
                e.depth.store(u64::from(info.depth), Ordering::Relaxed);
                e.begun.store(info.begun, Ordering::Relaxed);
                e.creation_flow.store(creation_flow, Ordering::Relaxed);
                e.follows_flow.store(0, Ordering::Relaxed);
                let has_fields = fields.is_some();
                if let Some(fields) = fields {
                    let mut p = e.fields.load(Ordering::Relaxed);
                    if p.is_null() {
                        p = Box::into_raw(Box::new(UnsafeCell::new(ArgBuf::default())));
                        e.fields.store(p, Ordering::Relaxed);
                    }
                    // Swapped, not copied: both buffers keep their room.
                    // SAFETY: this thread holds the place (see `Sync`).
                    unsafe { &mut *(*p).get() }.swap_fields(fields);
                }
                e.has_fields.store(has_fields, Ordering::Relaxed);
                e.key.store(id, Ordering::Release);
                return true;
            }
        }
        false
    }

    fn find(&self, id: u64) -> Option<&Entry> {
        for e in self.places(id) {
            match e.key.load(Ordering::Acquire) {
                k if k == id => return Some(e),
                EMPTY => return None,
                _ => {}
            }
        }
        None
    }

    fn info(e: &Entry) -> SpanInfo {
        SpanInfo {
            track: e.track.load(Ordering::Relaxed),
            serial: e.serial.load(Ordering::Relaxed),
            parent: e.parent.load(Ordering::Relaxed),
            meta: e.meta.load(Ordering::Relaxed) as usize,
            under: e.under.load(Ordering::Relaxed),
            depth: e.depth.load(Ordering::Relaxed) as u32,
            begun: e.begun.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn get(&self, id: u64) -> Option<SpanInfo> {
        self.find(id).map(Self::info)
    }

    /// What a span's next thread slice needs, in one lookup: its callsite
    /// and parent, the flows it ends (taken) and, the first time, its
    /// creation fields (`fields` cleared and swapped with them: the place
    /// keeps its buffer; otherwise `fields` is left as it is).
    pub(crate) fn entering(&self, id: u64, fields: &mut ArgBuf) -> Option<Entering> {
        let e = self.find(id)?;
        let flows = FlowsIn {
            creation: take(&e.creation_flow),
            follows: take(&e.follows_flow),
        };
        // Most spans keep none: a load, not a swap.
        let taken =
            e.has_fields.load(Ordering::Relaxed) && e.has_fields.swap(false, Ordering::Acquire);
        if taken {
            let p = e.fields.load(Ordering::Relaxed);
            fields.clear();
            // SAFETY: this thread took the buffer (see `Sync`); it was
            // made before `has_fields` was set.
            fields.swap_fields(unsafe { &mut *(*p).get() });
        }
        Some(Entering {
            meta: e.meta.load(Ordering::Relaxed) as usize,
            parent: e.parent.load(Ordering::Relaxed),
            flows,
            fields: taken,
        })
    }

    /// Sets the `follows_from` flow the span's next thread slice ends,
    /// unless one is already waiting; false if not set.
    pub(crate) fn set_follows_flow(&self, id: u64, flow: u64) -> bool {
        self.find(id).is_some_and(|e| {
            e.follows_flow
                .compare_exchange(0, flow, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        })
    }

    /// Removes a span: what the table held for it, and the flows no slice
    /// of it ended (taken).
    pub(crate) fn remove(&self, id: u64) -> Option<(SpanInfo, FlowsIn)> {
        let e = self.find(id)?;
        let info = Self::info(e);
        let flows = FlowsIn {
            creation: take(&e.creation_flow),
            follows: take(&e.follows_flow),
        };
        e.has_fields.store(false, Ordering::Relaxed);
        e.key.store(TOMBSTONE, Ordering::Release);
        Some((info, flows))
    }
}

/// Takes a flow id out of a place, if there is one (only one thread gets
/// it); most spans have none, so a load comes first rather than a swap.
fn take(flow: &AtomicU64) -> u64 {
    if flow.load(Ordering::Relaxed) == 0 {
        0
    } else {
        flow.swap(0, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Arc;

    fn info(n: u64) -> SpanInfo {
        SpanInfo {
            track: n * 3,
            serial: n,
            parent: n / 2,
            meta: 0,
            under: n * 5,
            depth: n as u32,
            begun: n * 7,
        }
    }

    #[test]
    fn agrees_with_a_map_through_churn_and_reports_a_full_neighbourhood() {
        let t = SpanTable::new(64);
        let mut m = HashMap::new();
        let mut x = 0x9E37_79B9u64;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = x % 300 + 1;
            if !m.contains_key(&id) {
                if (m.len() < 100 || x & 1 == 0) && t.insert(id, info(id), id, None) {
                    m.insert(id, info(id));
                }
            } else {
                assert_eq!(t.remove(id).map(|r| r.0), m.remove(&id));
            }
            if x % 7 == 0 {
                let probe = x % 300 + 1;
                assert_eq!(t.get(probe), m.get(&probe).copied());
            }
        }
        // 128 places: a neighbourhood fills up and says so.
        let small = SpanTable::new(16);
        let added = (1..=1000)
            .filter(|&id| small.insert(id, info(id), 0, None))
            .count();
        assert!((32..=64).contains(&added), "{added}");
        for id in 1..=1000 {
            assert_eq!(small.get(id).is_some(), small.remove(id).is_some());
        }
        assert!(small.insert(5, info(5), 9, None));
        let mut buf = ArgBuf::default();
        let first = small.entering(5, &mut buf).unwrap();
        assert_eq!((first.flows.creation, first.fields), (9, false));
        assert!(small.entering(5, &mut buf).unwrap().flows.is_empty());
        assert!(small.set_follows_flow(5, 4));
        assert!(!small.set_follows_flow(5, 8), "one waits at a time");
        assert_eq!(small.entering(5, &mut buf).unwrap().flows.follows, 4);
        assert!(!small.set_follows_flow(6, 4));
        assert!(small.set_follows_flow(5, 3));
        let (_, left) = small.remove(5).unwrap();
        assert_eq!(
            left,
            FlowsIn {
                creation: 0,
                follows: 3
            }
        );
    }

    #[test]
    fn a_registry_slots_spans_share_a_home_and_two_threads_spans_do_not() {
        use tracing::Subscriber;
        use tracing_subscriber::layer::SubscriberExt as _;
        let t = SpanTable::new(1 << 16);
        // Through a layer, as the layer runs: the registry alone never
        // frees a slot.
        let registry =
            tracing_subscriber::registry().with(tracing_subscriber::layer::Identity::new());
        let make = |r: &dyn Subscriber| {
            let cs = tracing::callsite!(name: "s", kind: tracing::metadata::Kind::SPAN, fields: a);
            let meta = tracing::callsite::Callsite::metadata(cs);
            let none: [(
                &tracing_core::Field,
                Option<&dyn tracing_core::field::Value>,
            ); 0] = [];
            let values = meta.fields().value_set(&none);
            let id = r.new_span(&tracing_core::span::Attributes::new_root(meta, &values));
            let key = id.into_u64();
            assert!(r.try_close(id));
            key
        };
        // The registry's slot is used again by the next span, a later
        // generation of it: the same home.
        let first = make(&registry);
        let second = make(&registry);
        assert_ne!(first, second);
        assert_eq!(t.home(first), t.home(second));
        // Another thread's shard, its slot at the same address: not a
        // neighbour (entries one place apart can share a cache line).
        let other = std::thread::scope(|s| s.spawn(|| make(&registry)).join().unwrap());
        let address = |id: u64| (id - 1) & ((1 << 38) - 1);
        let shard = |id: u64| ((id - 1) >> 38) & 0x1fff;
        assert_eq!(
            address(other),
            address(first),
            "the layout SLOT_BITS assumes"
        );
        assert_ne!(shard(other), shard(first), "the layout SLOT_BITS assumes");
        assert!(t.home(other).abs_diff(t.home(first)) > 1);
        // Ids laid out as the registry does: generations share a home,
        // threads' slots are apart.
        let id = |generation: u64, thread: u64, addr: u64| {
            ((generation << SLOT_BITS) | (thread << 38) | addr) + 1
        };
        for addr in [0, 1, 31, 1000] {
            let home = t.home(id(0, 0, addr));
            for generation in 1..8 {
                assert_eq!(t.home(id(generation, 0, addr)), home);
            }
            for thread in 1..16 {
                assert!(t.home(id(0, thread, addr)).abs_diff(home) > 1);
            }
        }
    }

    #[test]
    fn creation_fields_go_to_the_first_slice_only() {
        let t = SpanTable::new(16);
        let mut fields = ArgBuf::default();
        let cs = tracing::callsite!(name: "t", kind: tracing::metadata::Kind::SPAN, fields: a, b);
        let f = tracing::callsite::Callsite::metadata(cs).fields();
        tracing_core::field::Visit::record_u64(&mut fields, &f.field("a").unwrap(), 7);
        tracing_core::field::Visit::record_str(&mut fields, &f.field("b").unwrap(), "x");
        use perfetto_trace_writer::{Arg, Value};
        let want = [
            Arg::new("a", Value::Uint(7)),
            Arg::new("b", Value::Str("x")),
        ];
        assert!(t.insert(3, info(3), 0, Some(&mut fields)));
        assert!(fields.is_empty(), "the place's empty buffer in exchange");
        let mut got = ArgBuf::default();
        assert!(t.entering(3, &mut got).unwrap().fields);
        assert_eq!(got.args(), want);
        let mut again = ArgBuf::default();
        assert!(!t.entering(3, &mut again).unwrap().fields);
        assert!(again.is_empty());
        // The place's buffer serves the next span there, which has none.
        t.remove(3);
        assert!(t.insert(3, info(3), 0, None));
        assert!(!t.entering(3, &mut again).unwrap().fields);
    }

    #[test]
    fn threads_adding_and_removing_their_own_spans_never_see_anothers() {
        let t = Arc::new(SpanTable::new(4096));
        let handles: Vec<_> = (0..4u64)
            .map(|k| {
                let t = Arc::clone(&t);
                std::thread::spawn(move || {
                    for round in 0..2_000u64 {
                        let ids: Vec<u64> = (0..16).map(|i| (round * 16 + i) * 4 + k + 1).collect();
                        for &id in &ids {
                            assert!(t.insert(id, info(id), 0, None));
                        }
                        for &id in &ids {
                            assert_eq!(t.get(id), Some(info(id)));
                            assert_eq!(t.remove(id).map(|r| r.0), Some(info(id)));
                            assert_eq!(t.get(id), None);
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
}
