//! The async span table: lanes, the tracks (slots) each lane's spans in
//! flight run on, and the spans in flight by (lane, id). Spans on one slot
//! never overlap but where they nest (complete spans under a complete
//! parent), so each slot's slices nest like a stack.

use crate::encoding::TrackKind;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::ids::{async_slot_uuid, track_uuid, AsyncLane, AsyncParent, Domain, TrackUuid};
use crate::limits::{MAX_SPAN_DEPTH, MAX_TS};
use crate::model::open_async::{AsyncOpen, OpenAsync};
use crate::model::output::{Output, TrackOutput};
use crate::track_options::{SiblingMerge, TrackOptions};

/// The track of one async span in flight, reused by later spans.
struct Slot {
    out: TrackOutput,
    /// The latest time written on the slot; a span may use the slot only
    /// if it begins no earlier, so each slot's events come in time order.
    last_ts: u64,
    /// Whether a span begun by `async_span_begin` (end unknown) is on it.
    streaming: bool,
    /// Complete spans on it, outermost first, whose ends wait until nothing
    /// can begin inside them any more (as on threads).
    frames: Vec<SlotFrame>,
    /// The lane of tracks nested under this one, for children of its spans
    /// that do not nest on it.
    children: Option<u32>,
    /// While the slot is free, the slot freed before it ([`NO_SLOT`]: none).
    next_free: u32,
}

/// No slot: the end of a lane's free list.
const NO_SLOT: u32 = u32::MAX;

/// A complete async span on a slot: its end, and its key in the table of
/// spans in flight.
#[derive(Clone, Copy)]
struct SlotFrame {
    end: u64,
    lane: u32,
    id: u64,
}

/// How far [`AsyncSpans::pop_slot`] writes ends, among the spans ended by
/// then.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PopTo {
    /// All of them.
    Ended,
    /// Down to the frame of this (lane, id), which stays.
    Above((u32, u64)),
    /// Down to the frame of this (lane, id), which goes too.
    Through((u32, u64)),
}

/// A lane: a name under a parent track, whose spans in flight each take a
/// slot, a track of their own named like the lane.
struct Lane {
    uuid: TrackUuid,
    /// Whether the lane's own track (for instants) was described.
    described: bool,
    parent: TrackUuid,
    name: Box<str>,
    /// The description its tracks carry.
    description: Option<Box<str>>,
    /// Whether its tracks merge with same-named siblings in the UI (see
    /// [`UNMERGED_TRACK_OPTIONS`]).
    merged: bool,
    slots: Vec<Slot>,
    /// Slots with nothing on them: the most recently freed ([`NO_SLOT`]:
    /// none), the head of a list through [`Slot::next_free`], so that
    /// freeing a slot or taking one is a few moves, with no length or
    /// capacity to test.
    free: u32,
}

impl Lane {
    /// The description of the lane's tracks: its own, and one per span in
    /// flight, all named like the lane under its parent.
    fn track_kind<'a>(&'a self, options: &'a TrackOptions<'a>) -> TrackKind<'a> {
        TrackKind::Named {
            parent: self.parent.0,
            name: &self.name,
            options,
            counter: None,
        }
    }

    /// Puts slot `slot` (not free) on the free list, the most recently
    /// freed.
    fn push_free(&mut self, slot: u32) {
        debug_assert!(!self.is_free(slot));
        if let Some(s) = self.slots.get_mut(slot as usize) {
            s.next_free = self.free;
            self.free = slot;
        }
    }

    /// The free slots, the most recently freed first (never more than the
    /// slots, so that a walk ends whatever the links say).
    fn free_slots(&self) -> impl Iterator<Item = u32> + '_ {
        let next = |&slot: &u32| self.slots.get(slot as usize).map(|s| s.next_free);
        std::iter::successors(Some(self.free), next)
            .take_while(|&s| s != NO_SLOT)
            .take(self.slots.len())
    }

    /// Whether slot `slot` is on the free list (a walk: slow paths only).
    fn is_free(&self, slot: u32) -> bool {
        self.free_slots().any(|s| s == slot)
    }

    /// Takes slot `slot` off the free list, if it is there.
    fn take_free(&mut self, slot: u32) {
        let after = self
            .slots
            .get(slot as usize)
            .map_or(NO_SLOT, |s| s.next_free);
        if self.free == slot {
            self.free = after;
            return;
        }
        let before = self.free_slots().find(|&s| {
            let next = self.slots.get(s as usize).map(|s| s.next_free);
            next == Some(slot)
        });
        if let Some(b) = before.and_then(|b| self.slots.get_mut(b as usize)) {
            b.next_free = after;
        }
    }

    /// The display options of the lane's tracks: its description, and
    /// whether they merge with same-named siblings.
    fn options(&self) -> TrackOptions<'_> {
        let base = if self.merged {
            DEFAULT_TRACK_OPTIONS
        } else {
            UNMERGED_TRACK_OPTIONS
        };
        TrackOptions {
            description: self.description.as_deref(),
            ..base
        }
    }
}

/// Tracks never merged with same-named siblings: the trace processor hangs
/// the children of merged siblings under the first of them, so a child's
/// track would not name its parent's.
const UNMERGED_TRACK_OPTIONS: TrackOptions<'static> = TrackOptions {
    child_ordering: None,
    sibling_rank: None,
    merge: Some(SiblingMerge::None),
    description: None,
};

const DEFAULT_TRACK_OPTIONS: TrackOptions<'static> = TrackOptions {
    child_ordering: None,
    sibling_rank: None,
    merge: None,
    description: None,
};

/// Every lane and async span of a writer.
#[derive(Default)]
pub(crate) struct AsyncSpans {
    lanes: Vec<Lane>,
    open: OpenAsync,
    /// Complete async spans whose ends were written at exactly the time of
    /// the call that wrote them: still parents for spans beginning then,
    /// forgotten once a later call passes their end.
    retired: Vec<(u32, u64, u64)>,
}

impl AsyncSpans {
    /// A lane's uuid, by index.
    pub(crate) fn lane_uuid(&self, index: u32) -> TrackUuid {
        self.lanes[index as usize].uuid
    }

    /// Whether lane `index` was made with this description.
    pub(crate) fn lane_matches(&self, index: u32, description: Option<&str>, tree: bool) -> bool {
        let lane = &self.lanes[index as usize];
        lane.description.as_deref() == description && lane.merged != tree
    }

    /// Adds a lane; its index.
    pub(crate) fn add_lane(
        &mut self,
        uuid: TrackUuid,
        parent: TrackUuid,
        name: &str,
        description: Option<&str>,
        tree: bool,
    ) -> u32 {
        let index = self.lanes.len() as u32;
        self.lanes.push(Lane {
            uuid,
            described: false,
            parent,
            name: name.into(),
            description: description.map(Into::into),
            merged: !tree,
            slots: Vec::new(),
            free: NO_SLOT,
        });
        index
    }

    /// Describes lane `index`'s own track (where its instants go) the first
    /// time it is needed.
    pub(crate) fn describe_lane(&mut self, out: &mut Output, index: u32) {
        let lane = &mut self.lanes[index as usize];
        if !lane.described {
            lane.described = true;
            let options = lane.options();
            out.descriptor(lane.uuid.0, &lane.track_kind(&options));
        }
    }

    /// Whether [`AsyncSpans::begin_fast`] takes a begin of `span_id` on
    /// `lane` at `ts`: the id not in flight, the lane's most recently freed
    /// slot free by `ts`. Reads only.
    pub(crate) fn begins_plainly(&self, lane: u32, span_id: u64, ts: u64) -> bool {
        self.reusable_slot(lane as usize, ts).is_some() && self.open.get(lane, span_id).is_none()
    }

    /// The slot the short path of [`AsyncSpans::begin_fast`] takes on lane
    /// `l` at `ts`: its most recently freed one, if that ended by `ts`.
    #[inline(always)]
    fn reusable_slot(&self, l: usize, ts: u64) -> Option<u32> {
        let lane = self.lanes.get(l)?;
        let slot = lane.free;
        // Taken only if it ended by `ts`, so spans on it never overlap, and
        // `ts` is in range (one signed comparison, see `begin_fast`).
        match lane.slots.get(slot as usize) {
            Some(s) if ts as i64 >= s.last_ts as i64 => Some(slot),
            _ => None,
        }
    }

    /// The common case of an async begin, its event checked: a new id, the
    /// lane's last freed slot free by `ts`. Written, true; otherwise
    /// nothing changed, false.
    #[inline(always)]
    pub(crate) fn begin_fast(
        &mut self,
        out: &mut Output,
        lane: u32,
        span_id: u64,
        ts: u64,
        ev: &Event<'_>,
    ) -> bool {
        // Room in the table first (see `OpenAsync::reserve_one`); then the
        // lane and slot looked up once, as `reusable_slot` finds them.
        self.open.reserve_one();
        let Some(lane_state) = self.lanes.get_mut(lane as usize) else {
            return false;
        };
        // An empty list's head is no slot's index.
        let slot = lane_state.free;
        let Some(s) = lane_state.slots.get_mut(slot as usize) else {
            return false;
        };
        // Not behind the slot's last time, and in range: one signed
        // comparison (the last time is in range, a time past it negative).
        debug_assert!(s.last_ts <= MAX_TS);
        if (ts as i64) < s.last_ts as i64 {
            return false;
        }
        // Taken off the free list before the table is written, and put
        // back if the id is in flight: taken after, the list would be read
        // again (the table's writes might, for all the compiler knows, have
        // changed it).
        lane_state.free = s.next_free;
        let open = AsyncOpen::streaming(lane, slot, ts);
        if self.open.insert_reserved(lane, span_id, open).is_some() {
            lane_state.free = slot;
            return false;
        }
        s.streaming = true;
        s.out.count_span(out);
        s.out.begin(out, ts, ev);
        true
    }

    /// The open entry of `parent` at `ts`: in flight then, or
    /// [`Error::ParentNotOpen`].
    pub(crate) fn parent_entry(&self, parent: AsyncParent, ts: u64) -> Result<AsyncOpen> {
        let not_open = Error::ParentNotOpen {
            lane: parent.lane.uuid,
            span_id: parent.span_id,
        };
        match self.open.get(parent.lane.index, parent.span_id) {
            // A complete span is a parent until its end, inclusive.
            Some(open) if open.is_streaming() || open.end >= ts => Ok(open),
            _ => Err(not_open),
        }
    }

    /// Checks that `span_id` is free on the lane for a span beginning at
    /// `ts`: not open, or a complete span that ended by then (which is then
    /// written out, see [`AsyncSpans::retire_ended`]).
    ///
    /// # Errors
    /// [`Error::AsyncSpanAlreadyOpen`].
    pub(crate) fn check_id_free(&self, lane: AsyncLane, span_id: u64, ts: u64) -> Result<()> {
        match self.open.get(lane.index, span_id) {
            Some(open) if open.is_streaming() || open.end > ts => {
                Err(Error::AsyncSpanAlreadyOpen {
                    lane: lane.uuid,
                    span_id,
                })
            }
            _ => Ok(()),
        }
    }

    /// Writes out the complete span that holds `span_id` on the lane if it
    /// ended by `ts` (checked by [`AsyncSpans::check_id_free`]), so the id
    /// is free.
    fn retire_ended(&mut self, out: &mut Output, lane: u32, span_id: u64, ts: u64) {
        let Some(open) = self.open.get(lane, span_id) else {
            return;
        };
        let key = (lane, span_id);
        let (l, slot) = (open.lane as usize, open.slot);
        // Its end is written now, with those of the spans inside it, unless
        // it was written already (a retired span).
        let frames = &self.lanes[l].slots[slot as usize].frames;
        if frames
            .iter()
            .any(|f| (f.lane, f.id) == key && f.end == open.end)
        {
            self.pop_slot(out, l, slot, ts, PopTo::Through(key));
        }
        self.open.remove(lane, span_id);
    }

    /// Forgets the complete spans that ended before `ts` (see `retired`).
    fn forget_retired(&mut self, ts: u64) {
        if self.retired.is_empty() {
            return;
        }
        let open = &mut self.open;
        self.retired.retain(|&(lane, id, end)| {
            if end >= ts {
                return true;
            }
            // Unless the id was taken again since.
            if open.get(lane, id).is_some_and(|o| o.end == end) {
                open.remove(lane, id);
            }
            false
        });
    }

    /// Begins a checked async span begun by a call (see
    /// [`AsyncSpans::check_id_free`] and [`AsyncSpans::parent_entry`]):
    /// under `under`'s track if given, else on its lane's.
    pub(crate) fn begin(
        &mut self,
        out: &mut Output,
        lane: u32,
        span_id: u64,
        under: Option<AsyncOpen>,
        ts: u64,
        ev: &Event<'_>,
    ) {
        self.forget_retired(ts);
        self.retire_ended(out, lane, span_id, ts);
        let track_lane = match under {
            Some(p) => self.child_lane(p.lane as usize, p.slot),
            None => lane as usize,
        };
        let slot = self.streaming_slot(out, track_lane, ts);
        let open = AsyncOpen::streaming(track_lane as u32, slot, ts);
        self.open.insert(lane, span_id, open);
        self.lanes[track_lane].slots[slot as usize].streaming = true;
        self.begin_in_slot(out, track_lane, slot, ts, ev);
    }

    /// A slot of lane `l` for a span begun and ended by separate calls at
    /// `ts`: the most recently freed one that ended by `ts` (usually the
    /// top of the free list), else one whose complete spans have all ended
    /// by then, else a new one. Taken off the free list.
    fn streaming_slot(&mut self, out: &mut Output, l: usize, ts: u64) -> u32 {
        let lane = &mut self.lanes[l];
        let ended = |s: &u32| lane.slots.get(*s as usize).is_some_and(|s| s.last_ts <= ts);
        let found = lane.free_slots().find(ended);
        if let Some(slot) = found {
            lane.take_free(slot);
            return slot;
        }
        self.first_free(out, l, ts)
            .unwrap_or_else(|| self.new_slot(out, l))
    }

    /// The first slot of lane `l` (in creation order) free at `ts`: no
    /// span begun and not ended on it, every complete span on it ended by
    /// `ts` (their ends are written now), nothing written after `ts`. Taken
    /// off the free list.
    fn first_free(&mut self, out: &mut Output, l: usize, ts: u64) -> Option<u32> {
        for slot in 0..self.lanes[l].slots.len() as u32 {
            let s = &self.lanes[l].slots[slot as usize];
            if s.streaming {
                continue;
            }
            if !s.frames.is_empty() {
                self.pop_slot(out, l, slot, ts, PopTo::Ended);
            }
            let lane = &mut self.lanes[l];
            let s = &lane.slots[slot as usize];
            if s.frames.is_empty() && s.last_ts <= ts {
                lane.take_free(slot);
                return Some(slot);
            }
        }
        None
    }

    /// A new slot for lane `l`, described now, named like the lane under
    /// the lane's parent.
    fn new_slot(&mut self, out: &mut Output, l: usize) -> u32 {
        let lane = &mut self.lanes[l];
        let slot = lane.slots.len() as u32;
        // Each writer's own (see `async_slot_uuid`).
        let uuid = async_slot_uuid(lane.uuid, out.seqs.base_id(), slot);
        lane.slots.push(Slot {
            out: TrackOutput::new(out, uuid.0),
            last_ts: 0,
            streaming: false,
            frames: Vec::new(),
            children: None,
            next_free: NO_SLOT,
        });
        let options = lane.options();
        out.descriptor(uuid.0, &lane.track_kind(&options));
        slot
    }

    /// The lane of slots nested under slot `slot` of lane `l`, where
    /// children of its spans go when they do not nest on it; made on first
    /// use, named like `l`.
    fn child_lane(&mut self, l: usize, slot: u32) -> usize {
        if let Some(c) = self.lanes[l].slots[slot as usize].children {
            return c as usize;
        }
        let parent = TrackUuid(self.lanes[l].slots[slot as usize].out.uuid);
        let name = self.lanes[l].name.clone();
        // The children's tracks say what the lane's spans are, as theirs do.
        let description = self.lanes[l].description.clone();
        let uuid = track_uuid(Domain::AsyncLane, parent.0, name.as_bytes());
        let c = self.lanes.len();
        self.lanes.push(Lane {
            uuid,
            described: true,
            parent,
            name,
            description,
            merged: false,
            slots: Vec::new(),
            free: NO_SLOT,
        });
        self.lanes[l].slots[slot as usize].children = Some(c as u32);
        c
    }

    /// Writes the ends of the complete spans on top of slot `slot` of lane
    /// `l` that ended by `ts`, as far down as `to` says, and frees the slot
    /// once nothing is left on it.
    fn pop_slot(&mut self, out: &mut Output, l: usize, slot: u32, ts: u64, to: PopTo) {
        loop {
            let s = &mut self.lanes[l].slots[slot as usize];
            let Some(&top) = s.frames.last() else { break };
            let key = (top.lane, top.id);
            if top.end > ts || to == PopTo::Above(key) {
                return;
            }
            s.frames.pop();
            s.last_ts = top.end;
            // The id may have been forgotten, or taken by a later span.
            let this = |o: AsyncOpen| o.lane as usize == l && o.slot == slot && o.end == top.end;
            if self.open.get(top.lane, top.id).is_some_and(this) {
                if top.end < ts {
                    self.open.remove(top.lane, top.id);
                } else {
                    // Ended exactly now: still a parent for spans beginning now.
                    self.retired.push((top.lane, top.id, top.end));
                }
            }
            self.lanes[l].slots[slot as usize].out.end(out, top.end);
            if to == PopTo::Through(key) {
                return;
            }
        }
        // Emptied: free again (a slot busy with a begun span has no frames).
        let lane = &mut self.lanes[l];
        if !lane.slots[slot as usize].streaming && !lane.is_free(slot) {
            lane.push_free(slot);
        }
    }

    /// Begins a checked complete async span `[begin, end]` on the lane,
    /// beneath `under` (the parent's entry and handle) if given.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn complete_span(
        &mut self,
        out: &mut Output,
        lane: u32,
        span_id: u64,
        under: Option<(AsyncOpen, AsyncParent)>,
        begin: u64,
        end: u64,
        ev: &Event<'_>,
    ) {
        self.forget_retired(begin);
        self.retire_ended(out, lane, span_id, begin);
        let l = lane as usize;
        let (track_lane, slot) = match under {
            Some((p, parent)) => self.complete_place_under(out, p, parent, begin, end),
            None => (
                l,
                self.first_free(out, l, begin)
                    .unwrap_or_else(|| self.new_slot(out, l)),
            ),
        };
        let s = &mut self.lanes[track_lane].slots[slot as usize];
        s.frames.push(SlotFrame {
            end,
            lane,
            id: span_id,
        });
        s.last_ts = begin;
        let open = AsyncOpen {
            lane: track_lane as u32,
            slot,
            begin,
            end,
        };
        self.open.insert(lane, span_id, open);
        self.begin_in_slot(out, track_lane, slot, begin, ev);
    }

    /// Where a complete span `[begin, end]` beneath `p` goes: on the
    /// parent's slot, nested, if the parent is a complete span that
    /// encloses it and is the innermost span there once the ended ones are
    /// written; otherwise on the first free slot nested under the parent's.
    fn complete_place_under(
        &mut self,
        out: &mut Output,
        p: AsyncOpen,
        parent: AsyncParent,
        begin: u64,
        end: u64,
    ) -> (usize, u32) {
        let (pl, ps) = (p.lane as usize, p.slot);
        let key = (parent.lane.index, parent.span_id);
        if !p.is_streaming() && end <= p.end && self.lanes[pl].slots[ps as usize].last_ts <= begin {
            self.pop_slot(out, pl, ps, begin, PopTo::Above(key));
            let s = &self.lanes[pl].slots[ps as usize];
            if s.frames.last().is_some_and(|f| (f.lane, f.id) == key)
                && s.frames.len() < MAX_SPAN_DEPTH
            {
                return (pl, ps);
            }
        }
        let c = self.child_lane(pl, ps);
        let slot = self
            .first_free(out, c, begin)
            .unwrap_or_else(|| self.new_slot(out, c));
        (c, slot)
    }

    /// Counts a span begun on a slot and writes its begin.
    #[inline(always)]
    fn begin_in_slot(&mut self, out: &mut Output, l: usize, slot: u32, ts: u64, ev: &Event<'_>) {
        let s = &mut self.lanes[l].slots[slot as usize].out;
        s.count_span(out);
        s.begin(out, ts, ev);
    }

    /// Whether [`AsyncSpans::end_fast`] takes an end of `span_id` on
    /// `lane` at `ts`: a span begun by a call, by `ts`. Reads only.
    pub(crate) fn ends_plainly(&self, lane: u32, span_id: u64, ts: u64) -> bool {
        (lane as usize) < self.lanes.len() && Self::ends_now(self.open.get(lane, span_id), ts)
    }

    /// Whether an end at `ts` of the span `open` takes the short path:
    /// begun by a call, by `ts`, with `ts` in range (one signed comparison:
    /// its begin is in range, a time past it negative).
    #[inline(always)]
    fn ends_now(open: Option<AsyncOpen>, ts: u64) -> bool {
        open.is_some_and(|o| {
            debug_assert!(o.begin <= MAX_TS);
            o.is_streaming() && ts as i64 >= o.begin as i64
        })
    }

    /// The common case of an async end: written, true; otherwise nothing
    /// changed, false.
    #[inline(always)]
    pub(crate) fn end_fast(&mut self, out: &mut Output, lane: u32, span_id: u64, ts: u64) -> bool {
        // No test of the lane's index: the table holds spans of lanes that
        // are, so another index finds nothing there. Otherwise left in
        // place: the slow path reports it.
        let ends = |o: &AsyncOpen| Self::ends_now(Some(*o), ts);
        match self.open.remove_if(lane, span_id, ends) {
            Some(open) => {
                self.end_slot(out, open.lane as usize, open.slot, ts, None);
                true
            }
            None => false,
        }
    }

    /// The entry of the span a call ends at `ts`: begun by a call, in
    /// flight, begun by `ts`.
    ///
    /// # Errors
    /// [`Error::AsyncSpanNotOpen`], [`Error::EndBeforeBegin`].
    pub(crate) fn check_end(&self, lane: AsyncLane, span_id: u64, ts: u64) -> Result<AsyncOpen> {
        let not_open = Error::AsyncSpanNotOpen {
            lane: lane.uuid,
            span_id,
        };
        // A complete span is not ended by a call: its end is known.
        let open = match self.open.get(lane.index, span_id) {
            Some(open) if open.is_streaming() => open,
            _ => return Err(not_open),
        };
        if ts < open.begin {
            return Err(Error::EndBeforeBegin {
                begin: open.begin,
                end: ts,
            });
        }
        Ok(open)
    }

    /// Ends a checked span (see [`AsyncSpans::check_end`]), its end event
    /// carrying `extras` if given.
    pub(crate) fn end(
        &mut self,
        out: &mut Output,
        lane: u32,
        span_id: u64,
        ts: u64,
        extras: Option<&Event<'_>>,
    ) {
        if let Some(open) = self.open.remove(lane, span_id) {
            self.end_slot(out, open.lane as usize, open.slot, ts, extras);
        }
    }

    /// Ends the span in flight on a slot at `ts`, and frees the slot.
    #[inline(always)]
    fn end_slot(
        &mut self,
        out: &mut Output,
        l: usize,
        slot: u32,
        ts: u64,
        extras: Option<&Event<'_>>,
    ) {
        let lane = &mut self.lanes[l];
        debug_assert!(!lane.is_free(slot));
        let s = &mut lane.slots[slot as usize];
        s.next_free = lane.free;
        lane.free = slot;
        s.last_ts = ts;
        s.streaming = false;
        match extras {
            None => s.out.end(out, ts),
            Some(ev) => s.out.end_with(out, ts, ev),
        }
    }

    /// Writes the end of every complete async span still waiting.
    pub(crate) fn pop_all(&mut self, out: &mut Output) {
        for l in 0..self.lanes.len() {
            for slot in 0..self.lanes[l].slots.len() as u32 {
                if !self.lanes[l].slots[slot as usize].frames.is_empty() {
                    self.pop_slot(out, l, slot, u64::MAX, PopTo::Ended);
                }
            }
        }
        self.forget_retired(u64::MAX);
    }

    /// The async spans begun by a call and not ended, by begin time: lane
    /// index, span id, begin.
    pub(crate) fn open_spans(&self) -> Vec<(u32, u64, u64)> {
        let mut asyncs: Vec<_> = self
            .open
            .iter()
            .filter(|(_, o)| o.is_streaming())
            .map(|((lane, id), o)| (lane, id, o.begin))
            .collect();
        asyncs.sort_by_key(|&(lane, id, begin)| (begin, lane, id));
        asyncs
    }

    /// Checks that every span begun by a call may end at `ts`.
    ///
    /// # Errors
    /// [`Error::EndBeforeBegin`].
    pub(crate) fn check_close(&self, ts: u64) -> Result<()> {
        let streaming = |o: &AsyncOpen| o.is_streaming();
        if let Some((_, o)) = self.open.iter().find(|(_, o)| streaming(o) && ts < o.begin) {
            return Err(Error::EndBeforeBegin {
                begin: o.begin,
                end: ts,
            });
        }
        Ok(())
    }

    /// Writes every pending end, then ends every span begun by a call at
    /// `ts` (checked by [`AsyncSpans::check_close`]); how many it ended.
    pub(crate) fn close(&mut self, out: &mut Output, ts: u64) -> usize {
        self.pop_all(out);
        let mut asyncs = self.open.drain();
        asyncs.sort_by_key(|&((lane, id), o)| (o.begin, lane, id));
        let closed = asyncs.len();
        for (_, o) in asyncs {
            self.end_slot(out, o.lane as usize, o.slot, ts, None);
        }
        closed
    }
}

#[cfg(test)]
mod tests {
    use crate::ids::AsyncLane;
    use crate::{Error, TraceWriter, Writer};

    /// An end on a lane index the writer has no lane for (a handle it never
    /// gives out) is refused as not open and changes nothing: the short
    /// path, which does not test the index, finds no span of it, even for
    /// an id in flight on another lane.
    #[test]
    fn an_end_on_a_lane_index_without_a_lane_is_refused() {
        let run = |bogus: bool| {
            let mut w = Writer::new();
            let p = w.process("p", Some(1), "p", &[]).unwrap();
            let lane = w.async_lane(p, "l").unwrap();
            w.async_span_begin(lane, 1, 10, "a", "c", "", 0).unwrap();
            if bogus {
                let past = AsyncLane { index: 7, ..lane };
                let e = w.async_span_end(past, 1, 15);
                assert!(matches!(e, Err(Error::AsyncSpanNotOpen { span_id: 1, .. })));
            }
            w.async_span_end(lane, 1, 20).unwrap();
            w.finish().unwrap();
            w.into_bytes()
        };
        assert_eq!(run(true), run(false));
    }

    /// A begin refused for an id in flight, on a lane with free slots,
    /// leaves them as they were: the next span takes the most recently
    /// freed, as without the call (the short path takes the slot off the
    /// free list before it finds the id in flight, and must put it back).
    /// Strings and keys.
    #[test]
    fn a_refused_begin_leaves_the_free_slots_as_they_were() {
        for keyed in [false, true] {
            let run = |refused: bool| {
                let mut w = Writer::new();
                let p = w.process("p", Some(1), "p", &[]).unwrap();
                let lane = w.async_lane(p, "l").unwrap();
                let key = w.event_key("a", "c", "", 0).unwrap();
                let begin = |w: &mut Writer, id, ts| match keyed {
                    true => w.async_span_begin_key(lane, id, ts, key),
                    false => w.async_span_begin(lane, id, ts, "a", "c", "", 0),
                };
                // Slots 1 and 2 free, 2 the most recently freed.
                begin(&mut w, 1, 10).unwrap();
                begin(&mut w, 2, 11).unwrap();
                begin(&mut w, 3, 12).unwrap();
                w.async_span_end(lane, 2, 13).unwrap();
                w.async_span_end(lane, 3, 14).unwrap();
                if refused {
                    let e = begin(&mut w, 1, 15);
                    assert!(matches!(e, Err(Error::AsyncSpanAlreadyOpen { .. })));
                }
                // On slot 2, as if the refused call had not been made.
                begin(&mut w, 4, 16).unwrap();
                w.async_span_end(lane, 4, 17).unwrap();
                w.async_span_end(lane, 1, 18).unwrap();
                w.finish().unwrap();
                w.into_bytes()
            };
            assert_eq!(run(true), run(false), "keyed {keyed}");
        }
    }
}
