//! The short path of a slice end on a track named by its uuid
//! ([`TraceWriter::end_on`](crate::TraceWriter::end_on)), on a sequence set
//! up in this generation: the packet written forward, with no template to
//! build and no general encoder. A `tracing` program ends a span's
//! lifetime slice this way. Its bytes are the general path's
//! (`tests::the_short_path_writes_what_the_general_one_does`).

use crate::encoding::EventType;
use crate::encoding::{SEQ_NEEDS_INCREMENTAL_STATE, TRACE_CLOCK};
use crate::sequence::SeqState;

use super::annotated::{key, Cursor, SPARE, WINDOW};
use super::Emitter;

impl Emitter {
    /// Writes a slice end on the track `uuid` and returns true, if `seq` is
    /// set up in this generation and `ts` is no earlier than its clock (the
    /// time is then written plainly); otherwise writes nothing and returns
    /// false. At most 36 bytes: each length a byte.
    #[inline]
    pub(crate) fn end_on_known(&mut self, seq: &mut SeqState, ts: u64, uuid: u64) -> bool {
        if !self.ready(seq) || ts < seq.clock {
            return false;
        }
        // As `end_template`: a writer whose defaults name its clock, or a
        // track's own sequence, needs its incremental state.
        let needs_state = seq.default_track.is_some() || self.clock != TRACE_CLOCK;
        let Some(b) = self.out.window_in_room::<{ WINDOW + SPARE }>() else {
            return false;
        };
        let mut c = Cursor { b, n: 0 };
        // The packet's key, its length's place and the time's key; the
        // time by the sequence's kept high groups, as a keyed begin's.
        c.word(u64::from(key::PACKET) | u64::from(key::TIMESTAMP) << 16, 3);
        let delta = ts - seq.clock;
        match seq.time_high.varint_word(delta) {
            Some((w, len)) => c.word(w, len as u8),
            None => c.varint(delta),
        }
        c.field(&seq.id);
        let track = self.keyed.track(uuid);
        // The event's key and length (its type, 2 bytes, and the track's
        // field), then its type.
        let event = u64::from(key::TRACK_EVENT) | (2 + track.len() as u64) << 8;
        let kind = u64::from(key::TYPE) << 16 | (EventType::SliceEnd as u64) << 24;
        c.word(event | kind, 4);
        c.field(track);
        if needs_state {
            c.byte(key::FLAGS);
            c.byte(SEQ_NEEDS_INCREMENTAL_STATE as u8);
        }
        c.b[1] = (c.n - 2) as u8;
        let n = c.n;
        self.out.commit(n);
        self.packets += 1;
        seq.clock = ts & seq.clock_mask;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{field, Field};
    use crate::event::Event;
    use crate::protos;
    use proptest::prelude::*;
    use prost::Message;

    /// Ends on `(uuid, ts)` after a begin that sets the sequence up, on a
    /// sequence with or without a default track and a writer whose clock is
    /// the trace's or not: through the short path (`short`) or the general
    /// one alone; the bytes and how many took the short path.
    fn run(ends: &[(u64, u64)], default_track: bool, clock: u32, short: bool) -> (Vec<u8>, usize) {
        let mut enc = Emitter::new(false, (usize::MAX, usize::MAX));
        enc.clock = clock;
        enc.out.reserve_exact(1 << 16);
        let mut seq = SeqState::new(7, default_track.then_some(99));
        enc.event(
            &mut seq,
            5,
            EventType::Instant,
            None,
            Some(&Event::new("a")),
            None,
        );
        let mut shorts = 0;
        for &(uuid, ts) in ends {
            let before = (enc.out.len(), enc.packets);
            if short && enc.end_on_known(&mut seq, ts, uuid) {
                shorts += 1;
                continue;
            }
            assert_eq!((enc.out.len(), enc.packets), before, "wrote and refused");
            let track = Field::uint(field::EVENT_TRACK_UUID, uuid);
            enc.event(&mut seq, ts, EventType::SliceEnd, Some(&track), None, None);
        }
        (enc.out[..].to_vec(), shorts)
    }

    /// A few uuids that repeat (the kept encoding of the last one is
    /// reused), and any others.
    fn uuid() -> impl Strategy<Value = u64> {
        prop_oneof![0..4u64, 1u64 << 55..(1 << 55) + 3, any::<u64>()]
    }

    fn ts() -> impl Strategy<Value = u64> {
        prop_oneof![0..300u64, 1u64 << 40..1 << 41, 1u64 << 56..1 << 63]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Any run of ends, times in any order: the same bytes either way.
        #[test]
        fn the_short_path_writes_what_the_general_one_does(
            ends in prop::collection::vec((uuid(), ts()), 1..20),
            default_track in any::<bool>(),
            boottime in any::<bool>(),
        ) {
            let clock = if boottime { TRACE_CLOCK } else { 1 };
            let (general, _) = run(&ends, default_track, clock, false);
            let (short, shorts) = run(&ends, default_track, clock, true);
            prop_assert_eq!(&short, &general);
            prop_assert!(shorts > 0 || default_track, "ends on the writer's sequence take it");
            let trace = protos::Trace::decode(&short[..]).unwrap();
            prop_assert_eq!(trace.packet.len(), ends.len() + 1 + usize::from(default_track || !boottime));
        }
    }
}
