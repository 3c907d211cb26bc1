//! Compact mode's moves: when a busy thread or async track moves to a
//! sequence of its own, and what it may spend there.

use crate::emitter::Emitter;
use crate::event::Event;
use crate::sequence::SeqState;

/// In compact mode a thread or async track moves to a sequence of its own
/// once it has had this many spans: short-lived tracks never pay for one.
pub(crate) const BUSY_FROM: u32 = 4;

/// What a busy track may spend on its own sequence beyond what it saved:
/// its opening packet (about 50 bytes) and the first strings it defines
/// there.
const MOVE_BUDGET: u64 = 128;

/// What each span of a busy track saves at least: its end, on the track's
/// own sequence, omits the track uuid (9 bytes) and carries a 2-byte flag,
/// with at most one byte more of sequence id.
const SAVED_PER_END: u64 = 6;

/// What a begin written on a busy track's own sequence saves at least: the
/// track uuid, less one byte more of sequence id. (Timestamps as deltas
/// save more; they are not counted.)
const SAVED_PER_BEGIN: u64 = 8;

/// The packet that opens a track's sequence, at most.
const OPENING: u64 = 64;

/// What a busy track spent on its own sequence: strings defined there. A
/// sequence of its own saves every event of the track its uuid, and costs
/// an opening packet and a definition of each string the track uses there,
/// which the writer's sequence may hold already. An event that would define
/// strings there is written there only while what the track saved covers
/// it (see [`Budget::pays`]); otherwise it goes on the writer's sequence,
/// with its track named, exactly as in default mode. So compact mode never
/// writes more than [`MOVE_BUDGET`] bytes per busy track (and generation)
/// beyond default mode, whatever the strings.
#[derive(Clone, Copy, Default)]
pub(crate) struct Budget {
    /// The track's span count when it moved.
    pub(crate) moved_at: u32,
    /// Bytes of strings defined on its sequence.
    spent: u64,
    /// Begins written on the writer's sequence since it moved.
    elsewhere: u32,
}

impl Budget {
    /// Whether an event `ev` of a track with `spans` spans so far goes on
    /// its own sequence `seq`; if it does, what it defines there is spent.
    pub(crate) fn pays(
        &mut self,
        emitter: &Emitter,
        seq: &SeqState,
        spans: u32,
        ev: &Event<'_>,
    ) -> bool {
        let since = u64::from(spans.saturating_sub(self.moved_at));
        let here = since.saturating_sub(u64::from(self.elsewhere));
        let saved = SAVED_PER_END * since + SAVED_PER_BEGIN * here;
        let credit = (MOVE_BUDGET + saved).saturating_sub(self.spent + seq.opening_bytes);
        // Weighed on what the event defines, never on why the short path
        // declined it (a streaming writer's buffer may be short of room
        // where a buffered one's is not: both must write the same bytes).
        let cost = emitter.definition_cost(seq, ev);
        let opening = if emitter.opens(seq) { OPENING } else { 0 };
        if cost + opening > credit {
            self.elsewhere = self.elsewhere.saturating_add(1);
            return false;
        }
        self.spent = self.spent.saturating_add(cost);
        true
    }
}
