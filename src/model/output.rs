//! Where the model's events go: the emitter and its sequences (`Output`),
//! and what each thread or async track keeps to write on them
//! (`TrackOutput`): its encoded uuid, its slice ends' template, its
//! sequence and, in compact mode, whether it moved to one of its own.

use crate::emitter::Emitter;
use crate::encoding::{field, EventType, Field, PacketTail, TrackKind};
use crate::event::{Arg, Event};
use crate::ids::Owner;
use crate::keys::EventKey;
use crate::model::compact::{Budget, BUSY_FROM};
use crate::options::Options;
use crate::sequence::Sequences;
use crate::track_options::CounterSample;

/// The emitter and the sequences it writes on: index 0 is the writer's
/// own, which carries descriptors and every track's events until (compact
/// mode) a busy track moves to a sequence of its own.
pub(crate) struct Output {
    pub(crate) emitter: Emitter,
    pub(crate) seqs: Sequences,
}

impl Output {
    /// The output of a writer of `options`, whose handles `owner` marks.
    #[inline]
    pub(crate) fn new(options: &Options, owner: Owner) -> Self {
        Output {
            emitter: Emitter::with_options(options, owner),
            seqs: Sequences::new(options.sequence_id.get(), options.sequence_span),
        }
    }

    /// A track descriptor, on the writer's sequence.
    pub(crate) fn descriptor(&mut self, uuid: u64, kind: &TrackKind<'_>) {
        self.emitter.descriptor(&mut self.seqs[0], uuid, kind);
    }

    /// An event on the writer's sequence, on `track`.
    pub(crate) fn event(
        &mut self,
        ts: u64,
        kind: EventType,
        track: &Field,
        ev: Option<&Event<'_>>,
        counter: Option<CounterSample>,
    ) {
        let seq = &mut self.seqs[0];
        match (kind, ev) {
            // A begin with arguments never takes `begin_known`: straight to
            // `Emitter::event`, whose first try is their short path.
            (EventType::SliceBegin, Some(ev)) if ev.args.is_empty() => {
                if !self.emitter.begin_known(seq, ts, Some(track), ev) {
                    self.emitter.begin_general(seq, ts, Some(track), *ev);
                }
            }
            // From a template made here: a few bytes copied, where the
            // general path of an end costs ten times as much.
            (EventType::SliceEnd, None) => {
                let template = self.emitter.end_template(seq, Some(track));
                self.emitter.end(seq, ts, &Some(*track), &template);
            }
            _ => self.emitter.event(seq, ts, kind, Some(track), ev, counter),
        }
    }
}

/// What a thread or an async track needs to write its events.
pub(crate) struct TrackOutput {
    /// Its uuid.
    pub(crate) uuid: u64,
    /// `track_uuid` as its events carry it, encoded once; none where the
    /// track's own sequence names it (compact mode, once moved).
    track: Option<Field>,
    /// Its slice ends, encoded but for the timestamp.
    end: PacketTail,
    /// Its sequence: the writer's own (0) or, in compact mode once it has
    /// proved busy, one whose default track it is.
    seq: usize,
    /// Spans begun on it so far, counted in compact mode only (see
    /// [`BUSY_FROM`]).
    spans: u32,
    /// What it spent on its own sequence (compact mode).
    budget: Budget,
    /// Its keyed begins' tails, by key.
    begins: BeginTails,
}

/// Keyed begins on a track kept whole but for their timestamp (their
/// [`PacketTail`]s), by key. What such a begin writes after its time
/// follows from the key's iids, the track and its sequence alone, all fixed
/// within a fill epoch of the string tables (see `Emitter::ready`) until
/// the track moves to another sequence; and the sequence, set up when the
/// tail was kept, stays so for the epoch. So a begin found here is a time
/// and one copy, where assembling it from the key's fields took three
/// copies, the lengths between them and a look at the sequence.
///
/// Direct-mapped by the key's index, up to [`BeginTails::MAX_PLACES`]
/// places (40 bytes each): a track's tails cost at most 10 KiB, however
/// many keys the writer has.
#[derive(Default)]
struct BeginTails {
    /// The fill epoch of the string tables the tails are of.
    epoch: u64,
    /// (the key's index + 1, its tail): 0 marks an empty place. A power of
    /// two long, or empty.
    places: Box<[(u32, PacketTail)]>,
    /// Keyed begins written the short way before any tail is kept, so that
    /// a track of a few spans allocates none (a small trace's).
    seen: u32,
}

impl BeginTails {
    /// Places at most.
    const MAX_PLACES: usize = 256;

    /// Keyed begins the short way before the first tail is kept.
    const KEEP_FROM: u32 = 8;

    /// The tail kept of `key`'s begins, if it is of `epoch`.
    #[inline(always)]
    fn get(&self, key: EventKey, epoch: u64) -> Option<&PacketTail> {
        let at = key.index as usize & self.places.len().wrapping_sub(1);
        let (tag, tail) = self.places.get(at)?;
        // In 64 bits: no key's index and 1 make 0, an empty place's tag.
        let mine = u64::from(*tag) == u64::from(key.index) + 1;
        (mine && self.epoch == epoch).then_some(tail)
    }

    /// Keeps the tail of `packet`, a begin of `key` just written the short
    /// way in fill epoch `epoch`, the writer having `keys` keys.
    #[cold]
    #[inline(never)]
    fn keep(&mut self, key: EventKey, epoch: u64, keys: usize, packet: &[u8]) {
        if self.seen < Self::KEEP_FROM {
            self.seen += 1;
            return;
        }
        // The places are a power of two long (or none): fewer than the
        // keys' next power of two exactly when fewer than the keys, so that
        // power is worked out only to grow.
        if self.places.len() < keys.min(Self::MAX_PLACES) || self.epoch != epoch {
            self.renew(keys, epoch);
        }
        let at = key.index as usize & (self.places.len() - 1);
        let tag = key.index.checked_add(1);
        let place = self.places.get_mut(at);
        if let (Some(tag), Some(place), Some(tail)) = (tag, place, PacketTail::of_packet(packet)) {
            *place = (tag, tail);
        }
    }
}

impl BeginTails {
    /// Empties the places for fill epoch `epoch`, one for each of `keys`
    /// keys up to [`BeginTails::MAX_PLACES`] (grown only as keys are
    /// registered: at most nine times). Out of `keep`, so that its
    /// registers stay out of every tail kept.
    #[cold]
    #[inline(never)]
    fn renew(&mut self, keys: usize, epoch: u64) {
        let want = keys.next_power_of_two().min(Self::MAX_PLACES);
        if self.places.len() < want {
            self.places = vec![(0, PacketTail::EMPTY); want].into_boxed_slice();
        } else {
            self.places.fill((0, PacketTail::EMPTY));
        }
        self.epoch = epoch;
    }
}

impl TrackOutput {
    /// A track whose events go on the writer's sequence with their track
    /// named, until (compact mode) it is busy enough for a sequence of its
    /// own.
    pub(crate) fn new(out: &Output, uuid: u64) -> Self {
        let track = Some(Field::uint(field::EVENT_TRACK_UUID, uuid));
        let end = out.emitter.end_template(&out.seqs[0], track.as_ref());
        TrackOutput {
            uuid,
            track,
            end,
            seq: 0,
            spans: 0,
            budget: Budget::default(),
            begins: BeginTails::default(),
        }
    }

    /// Counts a span begun on the track, and in compact mode moves the
    /// track to a sequence of its own once it is busy.
    #[inline(always)]
    pub(crate) fn count_span(&mut self, out: &mut Output) {
        // Default mode never moves a track, and needs no count.
        if out.emitter.compact {
            self.spans = self.spans.saturating_add(1);
            if self.seq == 0 && self.spans >= BUSY_FROM {
                self.move_out(out);
            }
        }
    }

    /// Moves the track's events to a sequence of its own, if an id is
    /// left. Spans still open there end on the new sequence: the trace
    /// processor matches ends to begins by track, whatever the sequence.
    #[cold]
    fn move_out(&mut self, out: &mut Output) {
        if let Some(seq) = out.seqs.open(self.uuid) {
            self.end = out.emitter.end_template(&out.seqs[seq], None);
            (self.seq, self.track) = (seq, None);
            self.budget.moved_at = self.spans;
            // Their sequence id and track are no longer the track's.
            self.begins = BeginTails::default();
        }
    }

    /// Writes a slice begin: the short path where every string is defined
    /// on the track's sequence, the general one otherwise.
    #[inline(always)]
    pub(crate) fn begin(&mut self, out: &mut Output, ts: u64, ev: &Event<'_>) {
        // A begin with arguments on the writer's sequence (where
        // `begin_general` would send it) goes straight to their short path:
        // `begin_known` never takes it, and the cold path copies the event.
        if self.seq == 0 && !ev.args.is_empty() {
            let seq = &mut out.seqs[0];
            return out.emitter.begin_event(seq, ts, self.track.as_ref(), ev);
        }
        // Known at compile time where the call gives strings or a key; the
        // sequence looked up on each path where it is needed (a keyed begin
        // picks it with its path, see `begin_keyed`). The track borrowed,
        // not copied: encoded, it is 17 bytes.
        let written = match ev.key {
            Some(key) => self.begin_keyed(out, ts, ev, key),
            None => {
                let seq = &mut out.seqs[self.seq];
                out.emitter.begin_known(seq, ts, self.track.as_ref(), ev)
            }
        };
        if !written {
            self.begin_general(out, ts, *ev);
        }
    }

    /// The short paths of a keyed begin: its tail kept on the track, or its
    /// key's fields (whose packet's tail is then kept). Written, true;
    /// otherwise nothing written, false.
    #[inline(always)]
    fn begin_keyed(&mut self, out: &mut Output, ts: u64, ev: &Event<'_>, key: EventKey) -> bool {
        let emitter = &mut out.emitter;
        if ev.has_extras() {
            return false;
        }
        if let Some(tail) = self.begins.get(key, emitter.fill_epoch()) {
            let written = match self.seq {
                // As `TrackOutput::end`: absolute times, no clock.
                0 => emitter.tail_absolute(&mut out.seqs[0], ts, tail),
                s => emitter.tail_kept(&mut out.seqs[s], ts, tail),
            };
            if written {
                return true;
            }
        }
        let seq = &mut out.seqs[self.seq];
        let at = emitter.out.len();
        if !emitter.begin_known(seq, ts, self.track.as_ref(), ev) {
            return false;
        }
        let keys = emitter.keys.len();
        let packet = &emitter.out[at..];
        self.begins.keep(key, emitter.fill_epoch(), keys, packet);
        true
    }

    /// A begin of `key` with `args` and nothing else by the key's short
    /// path (`Emitter::keyed_args_with`), the one [`TrackOutput::begin`]
    /// takes first for it, in default mode (where no track moves, so that
    /// a begin refused here is counted once, by the usual way); whether
    /// it was written.
    #[inline(always)]
    pub(crate) fn begin_keyed_args(
        &self,
        out: &mut Output,
        ts: u64,
        key: EventKey,
        args: &[Arg<'_>],
    ) -> bool {
        let kind = EventType::SliceBegin;
        !out.emitter.compact
            && out.emitter.keyed_args_with(
                &mut out.seqs[0],
                ts,
                kind,
                self.track.as_ref(),
                key,
                args,
            )
    }

    /// A begin that defines strings (or opens a sequence), out of line: on
    /// the track's own sequence if that pays (compact mode), otherwise on
    /// the writer's, where it may find every string defined.
    #[cold]
    #[inline(never)]
    fn begin_general(&mut self, out: &mut Output, ts: u64, ev: Event<'_>) {
        let seq = self.event_sequence(out, &ev);
        let mut named = None;
        let track = self.track_on(seq, &mut named);
        let on = &mut out.seqs[seq];
        if seq == self.seq || !out.emitter.begin_known(on, ts, track, &ev) {
            out.emitter.begin_event(on, ts, track, &ev);
        }
    }

    /// The `track_uuid` field of the track's events on sequence `seq`: its
    /// own as kept on its sequence, or the track named, encoded into
    /// `named` only then (a uuid's varint is ten bytes built one by one).
    fn track_on<'a>(&'a self, seq: usize, named: &'a mut Option<Field>) -> Option<&'a Field> {
        if seq == self.seq {
            return self.track.as_ref();
        }
        Some(named.insert(Field::uint(field::EVENT_TRACK_UUID, self.uuid)))
    }

    /// The sequence an event of the track that names strings goes on: the
    /// track's (the writer's own in default mode), or the writer's where
    /// the track's own would not pay for what it defines (see [`Budget`]).
    fn event_sequence(&mut self, out: &Output, ev: &Event<'_>) -> usize {
        let pays = |b: &mut Budget| b.pays(&out.emitter, &out.seqs[self.seq], self.spans, ev);
        if self.seq == 0 || pays(&mut self.budget) {
            self.seq
        } else {
            0
        }
    }

    /// Writes a slice end at `ts` from the track's template.
    #[inline(always)]
    pub(crate) fn end(&self, out: &mut Output, ts: u64) {
        // Borrowed, not copied: the track and template are 50 bytes.
        match self.seq {
            // The writer's own sequence, whose times are absolute: no clock
            // to read or move.
            0 => out
                .emitter
                .end_absolute(&mut out.seqs[0], ts, &self.track, &self.end),
            s => out
                .emitter
                .end(&mut out.seqs[s], ts, &self.track, &self.end),
        }
    }

    /// Writes a slice end carrying `ev`'s arguments and counter values.
    pub(crate) fn end_with(&self, out: &mut Output, ts: u64, ev: &Event<'_>) {
        let seq = &mut out.seqs[self.seq];
        out.emitter.end_with(seq, ts, self.track.as_ref(), ev);
    }

    /// Writes an instant on the track, on the sequence its strings pay for.
    pub(crate) fn instant(&mut self, out: &mut Output, ts: u64, ev: &Event<'_>) {
        let seq = self.event_sequence(out, ev);
        let mut named = None;
        let track = self.track_on(seq, &mut named);
        let kind = EventType::Instant;
        out.emitter
            .event(&mut out.seqs[seq], ts, kind, track, Some(ev), None);
    }
}

#[cfg(test)]
mod tests {
    use super::BeginTails;
    use crate::ids::Owner;
    use crate::keys::EventKey;
    use crate::{Options, TraceWriter, Writer};

    /// A track's places for kept tails grow to the keys' next power of
    /// two (at most 256) as tails are kept, never shrink, and are emptied
    /// for a new fill epoch only: a tail kept stays while keys are added
    /// past the places' most.
    #[test]
    fn kept_tail_places_follow_the_keys() {
        let key = |index| EventKey {
            owner: Owner(1),
            index,
        };
        // A framed packet: its head, a one-byte time, ten bytes after it.
        let packet = [0x0a, 12, 0x40, 5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        let mut tails = BeginTails::default();
        for _ in 0..BeginTails::KEEP_FROM {
            tails.keep(key(0), 1, 5, &packet);
        }
        assert!(tails.places.is_empty());
        for (keys, places) in [
            (1, 1),
            (3, 4),
            (4, 4),
            (5, 8),
            (200, 256),
            (300, 256),
            (2, 256),
        ] {
            tails.keep(key(0), 1, keys, &packet);
            assert_eq!(tails.places.len(), places, "{keys} keys");
            assert!(tails.get(key(0), 1).is_some(), "{keys} keys");
        }
        tails.keep(key(1), 1, 300, &packet);
        assert!(tails.get(key(0), 1).is_some() && tails.get(key(1), 1).is_some());
        tails.keep(key(1), 2, 300, &packet);
        assert_eq!(tails.places.len(), 256);
        assert!(tails.get(key(0), 2).is_none() && tails.get(key(1), 2).is_some());
    }

    /// Keyed begins taken from kept tails write the bytes of their strings:
    /// keys whose indices share a place (256 apart), more keys than a
    /// track has places, repeated often enough that tails are kept and
    /// found, in both modes (compact mode moves the busy thread to a
    /// sequence of its own, whose tails start again), and with tables
    /// emptied every few strings (each fill epoch's tails stale after it).
    #[test]
    fn kept_tails_write_the_bytes_of_strings() {
        let names: Vec<String> = (0..300).map(|i| format!("site{i}")).collect();
        let order: Vec<usize> = [0, 256, 1, 257, 299, 43, 0, 256]
            .into_iter()
            .chain((0..300).step_by(7))
            .collect();
        for (compact, limit) in [(false, usize::MAX), (true, usize::MAX), (false, 40)] {
            let run = |keyed: bool| {
                let options = Options::new()
                    .compact(compact)
                    .intern_limit(limit, usize::MAX);
                let mut w = Writer::with_options(options);
                let p = w.process("p", Some(1), "p", &[]).unwrap();
                let t = w.thread(p, "t", Some(2), "t").unwrap();
                let keys: Vec<_> = (0..names.len())
                    .map(|i| w.event_key(&names[i], "c", "f.rs", i as u32).unwrap())
                    .collect();
                let mut ts = 0;
                for _ in 0..4 {
                    for &i in &order {
                        ts += 10;
                        match keyed {
                            true => w.span_begin_key(t, ts, keys[i]),
                            false => w.span_begin(t, ts, &names[i], "c", "f.rs", i as u32),
                        }
                        .unwrap();
                        w.span_end(t, ts + 5).unwrap();
                    }
                }
                w.finish().unwrap();
                w.into_bytes()
            };
            assert_eq!(run(true), run(false), "compact {compact}, limit {limit}");
        }
    }

    /// Tails kept on one thread go stale when other events fill the tables
    /// (a new generation, with other iids and a sequence to set up again):
    /// the keys' next begins write what their strings would.
    #[test]
    fn kept_tails_go_stale_with_their_fill_epoch() {
        for compact in [false, true] {
            let run = |keyed: bool| {
                let options = Options::new().compact(compact).intern_limit(30, usize::MAX);
                let mut w = Writer::with_options(options);
                let p = w.process("p", Some(1), "p", &[]).unwrap();
                let t = w.thread(p, "t", Some(2), "t").unwrap();
                let u = w.thread(p, "u", Some(3), "u").unwrap();
                let sites = [("a", "x", 1), ("b", "x", 2), ("c", "y", 3)];
                let keys: Vec<_> = sites
                    .iter()
                    .map(|&(n, c, l)| w.event_key(n, c, "f.rs", l).unwrap())
                    .collect();
                let mut ts = 0;
                for phase in 0..6 {
                    // Keyed begins on `t`, enough for their tails to be kept...
                    for i in 0..30 {
                        ts += 10;
                        let (n, c, l) = sites[i % 3];
                        match keyed {
                            true => w.span_begin_key(t, ts, keys[i % 3]),
                            false => w.span_begin(t, ts, n, c, "f.rs", l),
                        }
                        .unwrap();
                        w.span_end(t, ts + 5).unwrap();
                    }
                    // ...then new strings on `u` until the tables fill.
                    for i in 0..12 {
                        ts += 10;
                        let name = format!("fresh{phase}-{i}");
                        w.span_begin(u, ts, &name, "z", "g.rs", i).unwrap();
                        w.span_end(u, ts + 5).unwrap();
                    }
                }
                assert!(w.interning_generations() > 4);
                w.finish().unwrap();
                w.into_bytes()
            };
            assert_eq!(run(true), run(false), "compact {compact}");
        }
    }
}
