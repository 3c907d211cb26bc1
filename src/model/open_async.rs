//! The async spans in flight: (lane, span id) to the slot the span holds and
//! its begin.
//!
//! Every async begin adds an entry and every end removes one, so the table
//! churns at the rate of events while holding only the spans in flight. It
//! is open-addressed with linear probing and deletes by shifting later
//! entries back: no tombstones pile up between rehashes, as they do in a
//! general-purpose map.

/// A span in flight: the lane and slot (track) it holds, when it began, and
/// its end if known (a complete span, whose end waits on its slot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AsyncOpen {
    /// The lane whose slot it holds: its own, or the lane of tracks under
    /// its parent's track.
    pub lane: u32,
    pub slot: u32,
    pub begin: u64,
    /// Its end; [`AsyncOpen::OPEN`] for a span ended by a call.
    pub end: u64,
}

impl AsyncOpen {
    /// The end of a span whose end is not known yet (above any timestamp).
    pub const OPEN: u64 = u64::MAX;

    /// A span begun by a call, to be ended by another.
    #[inline(always)]
    pub fn streaming(lane: u32, slot: u32, begin: u64) -> Self {
        AsyncOpen {
            lane,
            slot,
            begin,
            end: Self::OPEN,
        }
    }

    /// Whether its end is left to a call.
    #[inline(always)]
    pub fn is_streaming(&self) -> bool {
        self.end == Self::OPEN
    }
}

#[derive(Clone, Copy)]
struct Entry {
    id: u64,
    /// The lane's index plus one; 0 marks an empty place.
    lane: u32,
    /// Where its probe starts, kept so that a removal moving later entries
    /// back does not hash each of them again.
    home: u32,
    open: AsyncOpen,
}

const EMPTY: Entry = Entry {
    id: 0,
    lane: 0,
    home: 0,
    open: AsyncOpen {
        lane: 0,
        slot: 0,
        begin: 0,
        end: 0,
    },
};

/// The table starts with 2^this places, once something is added.
const MIN_BITS: u32 = 5;

#[derive(Default)]
pub(crate) struct OpenAsync {
    entries: Vec<Entry>,
    len: usize,
    /// `entries.len()` is 2^bits (or 0); at most 32, so that a place fits
    /// `Entry::home` (a table of 2^32 entries would not fit in memory).
    bits: u32,
    /// `64 - bits`, what a hash is shifted right by to give its home:
    /// kept, not worked out on every lookup.
    shift: u32,
}

impl OpenAsync {
    #[inline(always)]
    fn home(&self, lane: u32, id: u64) -> usize {
        let h = (id ^ u64::from(lane).rotate_right(17)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // `bits` is at least `MIN_BITS` once the table has places; a table
        // without places (shift 0) has no home in range.
        h.wrapping_shr(self.shift) as usize
    }

    #[inline(always)]
    fn mask(&self) -> usize {
        self.entries.len().wrapping_sub(1)
    }

    /// Where (lane, id) is, if it is there.
    #[inline(always)]
    fn find(&self, lane: u32, id: u64) -> Option<usize> {
        // No test of `len`: a table without places answers at the first
        // `get`, an empty one at the first place, empty.
        let tag = lane.wrapping_add(1);
        let mut i = self.home(lane, id);
        loop {
            let e = self.entries.get(i)?;
            if e.lane == 0 {
                return None;
            }
            if e.lane == tag && e.id == id {
                return Some(i);
            }
            i = (i + 1) & self.mask();
        }
    }

    /// What (lane, id) holds, if it is there.
    #[inline]
    pub(crate) fn get(&self, lane: u32, id: u64) -> Option<AsyncOpen> {
        self.find(lane, id).map(|i| self.entries[i].open)
    }

    /// Adds (lane, id) unless it is there: then returns what it holds and
    /// changes nothing. One probe: it ends at the entry or at the empty
    /// place the entry goes (no tombstones, so nothing lies beyond one).
    #[inline(always)]
    pub(crate) fn insert(&mut self, lane: u32, id: u64, open: AsyncOpen) -> Option<AsyncOpen> {
        self.reserve_one();
        self.insert_reserved(lane, id, open)
    }

    /// Grows the table if one more entry would fill it past half: before
    /// [`OpenAsync::insert_reserved`], even if the key is there (at most
    /// once too early). Called by the short path of a begin before it
    /// reads the lane's state, so that no call lies between its reads and
    /// its writes (after a call the compiler must read them again).
    #[inline(always)]
    pub(crate) fn reserve_one(&mut self) {
        if (self.len + 1) * 2 > self.entries.len() {
            self.grow();
        }
    }

    /// [`OpenAsync::insert`] once [`OpenAsync::reserve_one`] made room.
    #[inline(always)]
    pub(crate) fn insert_reserved(
        &mut self,
        lane: u32,
        id: u64,
        open: AsyncOpen,
    ) -> Option<AsyncOpen> {
        debug_assert!((self.len + 1) * 2 <= self.entries.len());
        let tag = lane.wrapping_add(1);
        let home = self.home(lane, id);
        let mask = self.mask();
        let mut i = home;
        while let Some(e) = self.entries.get_mut(i) {
            if e.lane == 0 {
                *e = Entry {
                    id,
                    lane: tag,
                    home: home as u32,
                    open,
                };
                self.len += 1;
                return None;
            }
            if e.lane == tag && e.id == id {
                return Some(e.open);
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// Puts an entry of the old table at its place in a grown one.
    fn place(&mut self, mut entry: Entry) {
        let mut i = self.home(entry.lane.wrapping_sub(1), entry.id);
        entry.home = i as u32;
        let mask = self.mask();
        while let Some(e) = self.entries.get_mut(i) {
            if e.lane == 0 {
                *e = entry;
                return;
            }
            i = (i + 1) & mask;
        }
    }

    #[cold]
    fn grow(&mut self) {
        self.bits = (self.bits + 1).clamp(MIN_BITS, 32);
        self.shift = 64 - self.bits;
        let old = std::mem::replace(&mut self.entries, vec![EMPTY; 1 << self.bits]);
        for e in old.into_iter().filter(|e| e.lane != 0) {
            self.place(e);
        }
    }

    /// Removes (lane, id); what it held.
    #[inline]
    pub(crate) fn remove(&mut self, lane: u32, id: u64) -> Option<AsyncOpen> {
        let at = self.find(lane, id)?;
        Some(self.remove_at(at))
    }

    /// Removes (lane, id) if `take` accepts what it holds; what it held.
    /// Otherwise changes nothing.
    #[inline(always)]
    pub(crate) fn remove_if(
        &mut self,
        lane: u32,
        id: u64,
        take: impl FnOnce(&AsyncOpen) -> bool,
    ) -> Option<AsyncOpen> {
        let at = self.find(lane, id)?;
        let e = self.entries.get_mut(at)?;
        if !take(&e.open) {
            return None;
        }
        // Cleared through the entry found, with no second bounds check.
        e.lane = 0;
        let removed = e.open;
        self.close_hole(at);
        Some(removed)
    }

    /// Removes the entry at `hole`, a place that holds one; what it held.
    #[inline(always)]
    fn remove_at(&mut self, hole: usize) -> AsyncOpen {
        let removed = self.entries[hole].open;
        self.entries[hole].lane = 0;
        self.close_hole(hole);
        removed
    }

    /// Closes the hole an entry removed at `hole` left (its tag already
    /// cleared), counting it gone.
    #[inline(always)]
    fn close_hole(&mut self, mut hole: usize) {
        self.len -= 1;
        // Later entries of the same run move back into the hole when their
        // home is not after it (cyclically), so that lookups never stop
        // early at an empty place.
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let Some(e) = self.entries.get(j) else { break };
            if e.lane == 0 {
                break;
            }
            let home = e.home as usize;
            // Whether `home` lies cyclically in (hole, j]: then e stays.
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.entries[hole] = *e;
                // Only the tag marks a place empty.
                self.entries[j].lane = 0;
                hole = j;
            }
        }
    }

    /// Every span in flight: (lane, id) and what it holds, in no order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = ((u32, u64), AsyncOpen)> + '_ {
        self.entries
            .iter()
            .filter(|e| e.lane != 0)
            .map(|e| ((e.lane - 1, e.id), e.open))
    }

    /// Takes every span in flight out, in no order.
    pub(crate) fn drain(&mut self) -> Vec<((u32, u64), AsyncOpen)> {
        let all = self.iter().collect();
        self.entries.fill(EMPTY);
        self.len = 0;
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Against a `HashMap`, through growth and long runs of churn, with keys
    /// that crowd one place (equal ids on many lanes, ids a power of two
    /// apart).
    #[test]
    fn agrees_with_a_map_through_churn() {
        let mut t = OpenAsync::default();
        let mut m: HashMap<(u32, u64), AsyncOpen> = HashMap::new();
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for step in 0..200_000u64 {
            let r = next();
            let lane = (r % 5) as u32;
            let id = match r >> 60 {
                0..=5 => (r >> 8) % 97,
                6..=9 => ((r >> 8) % 40) << 32,
                _ => (r >> 8) % 3000,
            };
            let open = AsyncOpen::streaming(lane, (step % 1000) as u32, step);
            // More inserts than removes while small, then balanced.
            if r & 1 == 0 || (m.len() < 300 && r & 6 == 0) {
                let expect = m.get(&(lane, id)).copied();
                assert_eq!(t.insert(lane, id, open), expect);
                m.entry((lane, id)).or_insert(open);
            } else {
                assert_eq!(t.remove(lane, id), m.remove(&(lane, id)));
            }
            if step % 10_000 == 0 {
                let mut got: Vec<_> = t.iter().collect();
                let mut want: Vec<_> = m.iter().map(|(&k, &v)| (k, v)).collect();
                got.sort_by_key(|&(k, _)| k);
                want.sort_by_key(|&(k, _)| k);
                assert_eq!(got, want);
            }
        }
        let mut got = t.drain();
        let mut want: Vec<_> = m.drain().collect();
        got.sort_by_key(|&(k, _)| k);
        want.sort_by_key(|&(k, _)| k);
        assert_eq!(got, want);
        assert_eq!(t.iter().count(), 0);
        assert_eq!(t.remove(0, 1), None);
        let one = AsyncOpen::streaming(0, 1, 2);
        assert_eq!(t.insert(u32::MAX - 1, u64::MAX, one), None);
        assert_eq!(t.remove(u32::MAX - 1, u64::MAX), Some(one));
    }
}
