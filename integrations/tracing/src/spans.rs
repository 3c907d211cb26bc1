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

use std::sync::atomic::{AtomicU64, Ordering};

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
}

impl SpanInfo {
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
    /// A flow its next thread slice ends, 0 for none.
    flow_in: AtomicU64,
}

pub(crate) struct SpanTable {
    entries: Box<[Entry]>,
    mask: usize,
}

impl SpanTable {
    /// A table for about `capacity` live spans (a power of two at least
    /// twice that many places).
    pub(crate) fn new(capacity: usize) -> Self {
        let places = (capacity.max(16) * 2).next_power_of_two();
        SpanTable {
            entries: (0..places).map(|_| Entry::default()).collect(),
            mask: places - 1,
        }
    }

    fn places(&self, id: u64) -> impl Iterator<Item = &Entry> {
        let home = (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20) as usize;
        (0..PROBES).map(move |i| &self.entries[(home + i) & self.mask])
    }

    /// Adds a span; false if its neighbourhood of the table is full.
    pub(crate) fn insert(&self, id: u64, info: SpanInfo, flow_in: u64) -> bool {
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
                e.flow_in.store(flow_in, Ordering::Relaxed);
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

    pub(crate) fn get(&self, id: u64) -> Option<SpanInfo> {
        self.find(id).map(|e| SpanInfo {
            track: e.track.load(Ordering::Relaxed),
            serial: e.serial.load(Ordering::Relaxed),
            parent: e.parent.load(Ordering::Relaxed),
            meta: e.meta.load(Ordering::Relaxed) as usize,
        })
    }

    /// Takes the flow the span's next thread slice ends (0 for none).
    pub(crate) fn take_flow_in(&self, id: u64) -> Option<u64> {
        self.find(id).map(|e| {
            // Most spans have none: a load, not a swap.
            if e.flow_in.load(Ordering::Relaxed) == 0 {
                0
            } else {
                e.flow_in.swap(0, Ordering::Relaxed)
            }
        })
    }

    /// Sets the flow the span's next thread slice ends; false if absent.
    pub(crate) fn set_flow_in(&self, id: u64, flow: u64) -> bool {
        self.find(id)
            .map(|e| e.flow_in.store(flow, Ordering::Relaxed))
            .is_some()
    }

    /// Removes a span: what the table held for it.
    pub(crate) fn remove(&self, id: u64) -> Option<SpanInfo> {
        let e = self.find(id)?;
        let info = SpanInfo {
            track: e.track.load(Ordering::Relaxed),
            serial: e.serial.load(Ordering::Relaxed),
            parent: e.parent.load(Ordering::Relaxed),
            meta: e.meta.load(Ordering::Relaxed) as usize,
        };
        e.key.store(TOMBSTONE, Ordering::Release);
        Some(info)
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
                if (m.len() < 100 || x & 1 == 0) && t.insert(id, info(id), id) {
                    m.insert(id, info(id));
                }
            } else {
                assert_eq!(t.remove(id), m.remove(&id));
            }
            if x % 7 == 0 {
                let probe = x % 300 + 1;
                assert_eq!(t.get(probe), m.get(&probe).copied());
            }
        }
        // 128 places: a neighbourhood fills up and says so.
        let small = SpanTable::new(16);
        let added = (1..=1000)
            .filter(|&id| small.insert(id, info(id), 0))
            .count();
        assert!((32..=64).contains(&added), "{added}");
        for id in 1..=1000 {
            assert_eq!(small.get(id).is_some(), small.remove(id).is_some());
        }
        assert!(small.insert(5, info(5), 9));
        assert_eq!(small.take_flow_in(5), Some(9));
        assert_eq!(small.take_flow_in(5), Some(0));
        assert!(small.set_flow_in(5, 4));
        assert_eq!(small.take_flow_in(5), Some(4));
        assert!(!small.set_flow_in(6, 4));
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
                            assert!(t.insert(id, info(id), 0));
                        }
                        for &id in &ids {
                            assert_eq!(t.get(id), Some(info(id)));
                            assert_eq!(t.remove(id), Some(info(id)));
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
