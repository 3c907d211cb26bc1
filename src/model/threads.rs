//! Thread nesting: each thread's stack of open spans (and each named
//! track's, whose spans nest by the same rules), the checks that keep its
//! slices nesting like a stack in time order, and the ends of complete
//! spans that wait until nothing can begin inside them any more.

use crate::error::{check_ts, Error, Result};
use crate::event::{Arg, Event};
use crate::ids::CounterTrack;
use crate::ids::TrackUuid;
use crate::keys::EventKey;
use crate::limits::{MAX_SPAN_DEPTH, MAX_TS};
use crate::model::output::{Output, TrackOutput};
use crate::track_options::CounterSample;

/// A span open on a thread. `end` is known for complete spans, whose end
/// event waits until nothing can begin inside them any more.
pub(crate) struct Frame {
    pub(crate) begin: u64,
    pub(crate) end: Option<u64>,
    /// The earliest known end among this frame and its ancestors: nothing
    /// inside this frame may reach past it.
    limit: u64,
}

/// A thread's nesting state and output; a named track's too.
pub(crate) struct Thread {
    pub(crate) out: TrackOutput,
    /// Open spans, outermost first.
    pub(crate) stack: Vec<Frame>,
    /// How many frames of the stack are complete spans whose ends wait;
    /// the rest are explicit spans (no known end). Counted this way, not
    /// as the explicit ones, so that the explicit begins and ends of the
    /// short paths leave it alone.
    complete: usize,
    /// The latest timestamp written on the track.
    pub(crate) last_ts: u64,
    /// Instants written at `last_ts` since the thread's last other event:
    /// the trace processor stacks them, each one level below the one
    /// before, so they count towards the depth limit.
    instants: u32,
}

impl Thread {
    pub(crate) fn new(out: TrackOutput) -> Self {
        Thread {
            out,
            // Room for a few frames now: the allocator called directly,
            // where a first `push` takes the growth path (~60 instructions
            // more).
            stack: Vec::with_capacity(4),
            complete: 0,
            last_ts: 0,
            instants: 0,
        }
    }

    pub(crate) fn uuid(&self) -> TrackUuid {
        TrackUuid(self.out.uuid)
    }

    /// Whether complete spans wait on the stack (if not, nothing is due).
    #[inline]
    fn pending(&self) -> bool {
        self.complete != 0
    }

    /// How many frames at the top of the stack have ended by `ts`.
    #[inline]
    fn due(&self, ts: u64) -> usize {
        if !self.pending() {
            return 0;
        }
        self.stack
            .iter()
            .rev()
            .take_while(|f| f.end.is_some_and(|e| e <= ts))
            .count()
    }

    /// The limit that applies to something beginning after `due` frames pop.
    fn limit_after(&self, due: usize) -> u64 {
        let len = self.stack.len() - due;
        self.stack[..len].last().map_or(u64::MAX, |f| f.limit)
    }

    /// Whether the short path of an explicit begin applies: only explicit
    /// spans open (nothing due, nothing limits the new span), time going
    /// forward, room on the stack. [`Thread::check_begin`] then accepts.
    #[inline(always)]
    pub(crate) fn begins_plainly(&self, ts: u64) -> bool {
        !self.pending() && self.forward_to(ts) && self.stack.len() < MAX_SPAN_DEPTH
    }

    /// Whether `ts` is in range and not behind the track's last time: one
    /// signed comparison, since the last time is in range (at most
    /// `i64::MAX`), and a time past the range is negative as an `i64`.
    #[inline(always)]
    fn forward_to(&self, ts: u64) -> bool {
        debug_assert!(self.last_ts <= MAX_TS);
        ts as i64 >= self.last_ts as i64
    }

    /// Whether the short path of an end applies: an explicit span on top,
    /// no complete span open, time going forward. [`Thread::check_end`]
    /// then accepts.
    #[inline(always)]
    pub(crate) fn ends_plainly(&self, ts: u64) -> bool {
        !self.pending() && !self.stack.is_empty() && self.forward_to(ts)
    }

    /// Checks that a span may begin at `ts` on the thread, and nest until
    /// `end` (if known).
    ///
    /// # Errors
    /// [`Error::TimestampOutOfRange`], [`Error::EndBeforeBegin`],
    /// [`Error::TimestampBackwards`], [`Error::NotNested`], [`Error::TooDeep`].
    pub(crate) fn check_begin(&self, ts: u64, end: Option<u64>) -> Result<()> {
        check_ts(ts)?;
        if let Some(end) = end {
            check_ts(end)?;
            if end < ts {
                return Err(Error::EndBeforeBegin { begin: ts, end });
            }
        }
        if ts < self.last_ts {
            return Err(Error::TimestampBackwards {
                track: self.uuid(),
                ts,
                last: self.last_ts,
            });
        }
        let due = self.due(ts);
        let limit = self.limit_after(due);
        let reach = end.unwrap_or(ts);
        if reach > limit {
            return Err(Error::NotNested {
                track: self.uuid(),
                end: reach,
                limit,
            });
        }
        if self.stack.len() - due >= MAX_SPAN_DEPTH {
            return Err(Error::TooDeep(self.uuid()));
        }
        Ok(())
    }

    /// Checks that a complete span `[begin, end]` may go at `depth`: the
    /// frames from `depth` up have ended by `begin`, the frames below it
    /// reach past `end`.
    ///
    /// # Errors
    /// [`Error::TimestampOutOfRange`], [`Error::EndBeforeBegin`],
    /// [`Error::TimestampBackwards`], [`Error::NotNested`], [`Error::TooDeep`],
    /// [`Error::DepthOutOfRange`].
    pub(crate) fn check_at_depth(&self, depth: usize, begin: u64, end: u64) -> Result<()> {
        check_ts(begin)?;
        check_ts(end)?;
        if end < begin {
            return Err(Error::EndBeforeBegin { begin, end });
        }
        if begin < self.last_ts {
            return Err(Error::TimestampBackwards {
                track: self.uuid(),
                ts: begin,
                last: self.last_ts,
            });
        }
        // Frames that have not ended by `begin` stay; frames whose limit
        // reaches `end` may enclose the span.
        let min = self.stack.len() - self.due(begin);
        let max = self.stack.iter().take_while(|f| f.limit >= end).count();
        if max < min {
            return Err(Error::NotNested {
                track: self.uuid(),
                end,
                limit: self.stack[max].limit,
            });
        }
        if depth >= MAX_SPAN_DEPTH {
            return Err(Error::TooDeep(self.uuid()));
        }
        if !(min..=max).contains(&depth) {
            return Err(Error::DepthOutOfRange {
                track: self.uuid(),
                depth,
                min,
                max,
            });
        }
        Ok(())
    }

    /// Checks that the innermost explicit span may end at `ts`.
    ///
    /// # Errors
    /// [`Error::TimestampOutOfRange`], [`Error::NoOpenSpan`],
    /// [`Error::NotNested`], [`Error::EndBeforeBegin`],
    /// [`Error::TimestampBackwards`].
    pub(crate) fn check_end(&self, ts: u64) -> Result<()> {
        check_ts(ts)?;
        if self.stack.len() == self.complete {
            return Err(Error::NoOpenSpan(self.uuid()));
        }
        let due = self.due(ts);
        let live = &self.stack[..self.stack.len() - due];
        let Some(top) = live.last() else {
            return Err(Error::NoOpenSpan(self.uuid()));
        };
        if let Some(end) = top.end {
            // A complete span begun inside the explicit one outlives `ts`.
            return Err(Error::NotNested {
                track: self.uuid(),
                end: ts,
                limit: end,
            });
        }
        if ts < top.begin {
            return Err(Error::EndBeforeBegin {
                begin: top.begin,
                end: ts,
            });
        }
        if ts < self.last_ts {
            return Err(Error::TimestampBackwards {
                track: self.uuid(),
                ts,
                last: self.last_ts,
            });
        }
        if ts > top.limit {
            return Err(Error::NotNested {
                track: self.uuid(),
                end: ts,
                limit: top.limit,
            });
        }
        Ok(())
    }

    /// Checks that an instant may go at `ts`: as a zero-length span, with
    /// the instants already at `ts` stacked below it; how many are stacked
    /// once it is written.
    ///
    /// # Errors
    /// Those of [`Thread::check_begin`].
    // Out of line, with `check_begin` inlined into it: inlined into
    // `Core::instant` instead, it left `check_begin` a call (+6 an instant).
    #[inline(never)]
    pub(crate) fn check_instant(&self, ts: u64) -> Result<u32> {
        self.check_begin(ts, Some(ts))?;
        let due = self.due(ts);
        let run = match self.last_ts == ts && due == 0 {
            true => self.instants,
            false => 0,
        };
        if self.stack.len() - due + run as usize >= MAX_SPAN_DEPTH {
            return Err(Error::TooDeep(self.uuid()));
        }
        Ok(run + 1)
    }

    /// Checks that every open explicit span may end at `ts`.
    ///
    /// # Errors
    /// [`Error::TimestampBackwards`], [`Error::NotNested`].
    pub(crate) fn check_close(&self, ts: u64) -> Result<()> {
        let Some(lowest) = self.stack.iter().position(|f| f.end.is_none()) else {
            return Ok(());
        };
        if ts < self.last_ts {
            return Err(Error::TimestampBackwards {
                track: self.uuid(),
                ts,
                last: self.last_ts,
            });
        }
        if let Some(end) = self.stack[lowest..]
            .iter()
            .filter_map(|f| f.end)
            .find(|&e| e > ts)
        {
            return Err(Error::NotNested {
                track: self.uuid(),
                end: ts,
                limit: end,
            });
        }
        // The innermost explicit span has the tightest limit.
        let limit = self
            .stack
            .iter()
            .rev()
            .find(|f| f.end.is_none())
            .map_or(u64::MAX, |f| f.limit);
        if ts > limit {
            return Err(Error::NotNested {
                track: self.uuid(),
                end: ts,
                limit,
            });
        }
        Ok(())
    }

    /// Writes the ends of the complete spans on top of the stack that have
    /// ended by `ts`. The check is inlined: most threads have no complete
    /// span waiting, and a call would cost every span.
    #[inline(always)]
    pub(crate) fn pop_due(&mut self, out: &mut Output, ts: u64) {
        if self.pending() {
            self.pop_pending(out, ts);
        }
    }

    fn pop_pending(&mut self, out: &mut Output, ts: u64) {
        while let Some(end) = self.stack.last().and_then(|f| f.end).filter(|&e| e <= ts) {
            self.end_complete(out, end);
        }
    }

    /// Ends the complete span on top of the stack at its `end`.
    fn end_complete(&mut self, out: &mut Output, end: u64) {
        self.stack.pop();
        self.complete -= 1;
        self.last_ts = end;
        self.instants = 0;
        self.out.end(out, end);
    }

    /// Begins a checked span (see [`Thread::check_begin`]), writing the ends
    /// due first.
    pub(crate) fn push_span(
        &mut self,
        out: &mut Output,
        ts: u64,
        end: Option<u64>,
        ev: &Event<'_>,
    ) {
        self.pop_due(out, ts);
        let limit = self.stack.last().map_or(u64::MAX, |f| f.limit);
        let limit = end.map_or(limit, |e| e.min(limit));
        self.open_frame(out, ts, end, limit, ev);
    }

    /// Begins a checked complete span at `depth` (see
    /// [`Thread::check_at_depth`]): the frames from `depth` up, ended by
    /// then, have their ends written first.
    pub(crate) fn push_at_depth(
        &mut self,
        out: &mut Output,
        depth: usize,
        begin: u64,
        end: u64,
        ev: &Event<'_>,
    ) {
        while self.stack.len() > depth {
            let Some(e) = self.stack.last().and_then(|f| f.end) else {
                break;
            };
            self.end_complete(out, e);
        }
        let limit = self.stack.last().map_or(u64::MAX, |f| f.limit);
        self.open_frame(out, begin, Some(end), end.min(limit), ev);
    }

    /// Counts the span, pushes its frame and writes its begin: what every
    /// begin does once it is checked and nothing is due.
    #[inline(always)]
    pub(crate) fn open_frame(
        &mut self,
        out: &mut Output,
        ts: u64,
        end: Option<u64>,
        limit: u64,
        ev: &Event<'_>,
    ) {
        self.out.count_span(out);
        self.complete += usize::from(end.is_some());
        self.stack.push(Frame {
            begin: ts,
            end,
            limit,
        });
        self.last_ts = ts;
        self.instants = 0;
        self.out.begin(out, ts, ev);
    }

    /// [`Thread::open_frame`] of an explicit span whose begin is of `key`
    /// with `args` and nothing else, by the key's short path
    /// ([`TrackOutput::begin_keyed_args`]); false, with nothing written or
    /// changed, where that does not hold.
    #[inline(always)]
    pub(crate) fn open_keyed_args(
        &mut self,
        out: &mut Output,
        ts: u64,
        key: EventKey,
        args: &[Arg<'_>],
    ) -> bool {
        if !self.out.begin_keyed_args(out, ts, key, args) {
            return false;
        }
        self.stack.push(Frame {
            begin: ts,
            end: None,
            limit: u64::MAX,
        });
        self.last_ts = ts;
        self.instants = 0;
        true
    }

    /// Ends the span on top of the stack, an explicit one, at `ts`.
    #[inline(always)]
    pub(crate) fn end_top(&mut self, out: &mut Output, ts: u64) {
        self.stack.pop();
        self.last_ts = ts;
        self.instants = 0;
        self.out.end(out, ts);
    }

    /// Ends a checked explicit span (see [`Thread::check_end`]) at `ts`,
    /// its end event carrying `counters`.
    pub(crate) fn end_checked(
        &mut self,
        out: &mut Output,
        ts: u64,
        counters: &[(CounterTrack, CounterSample)],
    ) {
        self.pop_due(out, ts);
        if counters.is_empty() {
            self.end_top(out, ts);
        } else {
            self.stack.pop();
            self.last_ts = ts;
            self.instants = 0;
            let ev = Event::new("").counters(counters);
            self.out.end_with(out, ts, &ev);
        }
    }

    /// Writes a checked instant (see [`Thread::check_instant`]), `stacked`
    /// the instants at `ts` with it.
    pub(crate) fn instant(&mut self, out: &mut Output, ts: u64, stacked: u32, ev: &Event<'_>) {
        self.pop_due(out, ts);
        self.last_ts = ts;
        self.instants = stacked;
        self.out.instant(out, ts, ev);
    }

    /// Ends every explicit span at `ts` (checked by
    /// [`Thread::check_close`]) and writes every pending end; how many
    /// spans it ended.
    pub(crate) fn close(&mut self, out: &mut Output, ts: u64) -> usize {
        let mut closed = 0;
        loop {
            self.pop_due(out, ts);
            if self.stack.last().is_none_or(|f| f.end.is_some()) {
                break;
            }
            self.end_top(out, ts);
            closed += 1;
        }
        self.pop_due(out, u64::MAX);
        closed
    }
}
