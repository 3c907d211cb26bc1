//! Where the bytes go: each thread's writer hands its buffer of whole
//! packets, a chunk, to one writer thread through a bounded queue and goes
//! on in a spent one, and that thread writes them to the sink. The writer
//! thread also flushes every thread's partly filled buffer, on a timer and
//! when asked (by the guard).

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use perfetto_trace_writer::Packets;

use crate::thread::ThreadSlot;

/// What a recording thread does when the queue to the writer thread is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overflow {
    /// Wait until the writer thread has taken a chunk (back-pressure): no
    /// event is lost, and a slow sink slows the program down. The default.
    #[default]
    Block,
    /// Drop the chunk and go on: the program never waits on the sink. The
    /// thread's next chunk starts a new packet sequence whose first packet
    /// says `previous_packet_dropped`, and an instant `chunks dropped` on
    /// the thread's track records how many chunks and bytes were lost.
    /// A thread's slices still nest as its spans do (one whose end was lost
    /// ends where the loss is noticed, one whose begin was lost begins
    /// again there); a span track's slice cut by a loss may show
    /// unfinished.
    Drop,
}

/// The chunks on their way to the writer thread and the spent buffers on
/// their way back, under one lock taken once per chunk. While chunks keep
/// coming the writer thread naps ([`NAP`]) and looks again by itself, so
/// recording threads never wake it: a wake is a futex call, and waking a
/// sleeping CPU costs the waker about 15 µs on this VM (6% of an event's
/// time at one wake per 4 chunks). Once quiet it sleeps, and is woken by a
/// few waiting chunks, a request, a full queue or its flush timer.
struct Queue {
    state: Mutex<QueueState>,
    /// The writer thread waits here.
    work: Condvar,
    /// Recording threads wait here for room ([`Overflow::Block`]).
    room: Condvar,
    /// How many chunks the queue holds at most.
    capacity: usize,
    /// How many waiting chunks wake the writer thread.
    wake_at: usize,
}

struct QueueState {
    chunks: VecDeque<Packets>,
    /// Spent chunk buffers, for the next chunks: no allocation per chunk.
    spare: Vec<Packets>,
    /// How the writer thread waits on `work`, if it does and nobody has
    /// woken it yet.
    waiting: Waiting,
    /// Naps in a row that found no chunk (the writer thread's own count).
    quiet_naps: u32,
    /// The writer thread is to look at once (a request, a full queue).
    poked: bool,
    /// Recording threads waiting for room.
    blocked: usize,
    /// Every [`Output`] is gone: no chunk will come any more.
    closed: bool,
    /// The writer thread has ended: no chunk will be taken any more.
    gone: bool,
}

/// How the writer thread waits for chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waiting {
    /// It does not wait: it is writing, or about to look.
    No,
    /// A nap of [`NAP`] at most, after which it looks by itself: woken
    /// only when the queue fills up.
    Napping,
    /// Asleep until its flush timer: woken once [`Queue::wake_at`] chunks
    /// wait.
    Asleep,
}

/// How long the writer thread naps while chunks keep coming: what a
/// killed program may lose beyond the chunks a sleeping writer thread
/// lets wait ([`WAKE_AT`]). At most a few hundred wakes a second of the
/// writer thread's own, against a wake per 4 chunks by the producers.
const NAP: Duration = Duration::from_millis(2);

/// Naps in a row that find nothing before the writer thread sleeps: a
/// program that stopped recording costs no more wakes.
const QUIET_NAPS: u32 = 8;

/// What the writer thread's wait ends with.
enum Next {
    Chunk(Packets),
    /// Poked: a request may be waiting.
    Woken,
    Timeout,
    Closed,
}

/// The most chunks that wait before the writer thread is woken: enough to
/// spread a wake over thousands of events, few enough that a killed
/// program loses little more than it did with a wake per chunk.
const WAKE_AT: usize = 4;

impl Queue {
    fn new(capacity: usize) -> Self {
        Queue {
            state: Mutex::new(QueueState {
                chunks: VecDeque::with_capacity(capacity),
                spare: Vec::new(),
                waiting: Waiting::No,
                quiet_naps: 0,
                poked: false,
                blocked: 0,
                closed: false,
                gone: false,
            }),
            work: Condvar::new(),
            room: Condvar::new(),
            capacity,
            // Woken by half a queue at most: a blocking thread never
            // finds the queue full while the writer thread sleeps.
            wake_at: (capacity / 2).clamp(1, WAKE_AT),
        }
    }

    /// The state; a thread that panicked holding it left it consistent
    /// (no call under the lock panics halfway through a change).
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `chunk`, waiting for room if `block`; a spare buffer for the
    /// next chunk if `spare` and there is one. The chunk back if it was not
    /// queued (the queue full without `block`, or the writer thread gone).
    fn push(&self, chunk: Packets, block: bool, spare: bool) -> Result<Option<Packets>, Packets> {
        let mut st = self.lock();
        while st.chunks.len() >= self.capacity && !st.gone {
            if !block {
                return Err(chunk);
            }
            if self.wake(&mut st) {
                self.work.notify_one();
            }
            st.blocked += 1;
            st = self.room.wait(st).unwrap_or_else(PoisonError::into_inner);
            st.blocked -= 1;
        }
        if st.gone {
            return Err(chunk);
        }
        st.chunks.push_back(chunk);
        let due = match st.waiting {
            Waiting::No => false,
            // Half a queue: a blocking thread never finds it full while
            // the writer thread naps.
            Waiting::Napping => st.chunks.len() >= self.capacity.div_ceil(2),
            Waiting::Asleep => st.chunks.len() >= self.wake_at,
        };
        let wake = due && self.wake(&mut st);
        let spare = match spare {
            true => st.spare.pop(),
            false => None,
        };
        // Notified without the lock, which the woken thread takes at once.
        drop(st);
        if wake {
            self.work.notify_one();
        }
        Ok(spare)
    }

    /// Has the writer thread look at once; whether it sleeps, to be
    /// notified.
    fn wake(&self, st: &mut QueueState) -> bool {
        st.poked = true;
        std::mem::replace(&mut st.waiting, Waiting::No) != Waiting::No
    }

    /// Has the writer thread look at once: a request was sent.
    fn poke(&self) {
        if self.wake(&mut self.lock()) {
            self.work.notify_one();
        }
    }

    /// The oldest chunk, if any.
    fn try_pop(&self) -> Option<Packets> {
        self.pop(self.lock())
    }

    /// The oldest chunk, the lock let go of before a waiting thread is
    /// told of the room.
    fn pop(&self, mut st: MutexGuard<'_, QueueState>) -> Option<Packets> {
        let chunk = st.chunks.pop_front()?;
        let blocked = st.blocked > 0;
        drop(st);
        if blocked {
            self.room.notify_one();
        }
        Some(chunk)
    }

    /// The writer thread's wait, up to `wait`, for a chunk or a poke.
    fn next(&self, wait: Duration) -> Next {
        let deadline = Instant::now().checked_add(wait);
        let mut st = self.lock();
        loop {
            if !st.chunks.is_empty() {
                st.quiet_naps = 0;
                return self.pop(st).map_or(Next::Woken, Next::Chunk);
            }
            if std::mem::take(&mut st.poked) {
                return Next::Woken;
            }
            if st.closed {
                return Next::Closed;
            }
            let left = deadline.map_or(Duration::MAX, |t| {
                t.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return Next::Timeout;
            }
            let (waiting, left) = match st.quiet_naps < QUIET_NAPS {
                true => (Waiting::Napping, left.min(NAP)),
                false => (Waiting::Asleep, left),
            };
            st.waiting = waiting;
            let waited;
            (st, waited) = self
                .work
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner);
            let timed_out = waited.timed_out();
            st.waiting = Waiting::No;
            // A nap that ended on its own with nothing come counts as quiet.
            if waiting == Waiting::Napping && timed_out && st.chunks.is_empty() {
                st.quiet_naps = st.quiet_naps.saturating_add(1);
            }
        }
    }

    /// A spent chunk's buffer, for a later chunk.
    fn recycle(&self, mut chunk: Packets) {
        chunk.clear();
        self.lock().spare.push(chunk);
    }
}

/// The writer thread's hold on the queue: when the thread ends, however it
/// ends, threads waiting for room stop waiting.
struct Taking(Arc<Queue>);

impl Drop for Taking {
    fn drop(&mut self) {
        self.0.lock().gone = true;
        self.0.room.notify_all();
    }
}

/// What the guard asks of the writer thread, on a channel of its own: in
/// the chunks' queue, a request would wait for a free place against
/// threads that keep it full.
enum Request {
    /// Flush every thread's buffer and the sink, then answer.
    Flush(Sender<io::Result<()>>),
    /// Flush as `Flush` does, answer, and stop.
    Stop(Sender<io::Result<()>>),
}

/// What the layer's threads share about the output.
pub(crate) struct Output {
    queue: Arc<Queue>,
    requests: Sender<Request>,
    overflow: Overflow,
    /// Every thread's writer, for flushes from the writer thread.
    pub(crate) slots: Mutex<Vec<Weak<ThreadSlot>>>,
    pub(crate) dropped_chunks: AtomicU64,
    pub(crate) dropped_bytes: AtomicU64,
    /// Set once the guard stopped the writer thread: nothing more is sent.
    pub(crate) stopped: AtomicBool,
}

thread_local! {
    /// Set on the writer thread, whose own events the layer ignores: it
    /// must never wait on its own queue.
    pub(crate) static ON_WRITER_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// On the writer thread, what a thread's writer flushed, written to the
    /// sink directly (it cannot go through the queue the thread drains).
    pub(crate) static DIRECT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn recycle_direct(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.clear();
    bytes
}

impl Output {
    /// Starts the writer thread over `sink`.
    pub(crate) fn start<W: Write + Send + 'static>(
        sink: W,
        queue_chunks: usize,
        overflow: Overflow,
        flush_interval: Option<Duration>,
    ) -> io::Result<(Arc<Output>, std::thread::JoinHandle<()>)> {
        let queue = Arc::new(Queue::new(queue_chunks.max(1)));
        let (requests, asked) = mpsc::channel();
        let output = Arc::new(Output {
            queue: Arc::clone(&queue),
            requests,
            overflow,
            slots: Mutex::new(Vec::new()),
            dropped_chunks: AtomicU64::new(0),
            dropped_bytes: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        });
        let shared = Arc::downgrade(&output);
        let handle = std::thread::Builder::new()
            .name("perfetto-writer".into())
            .spawn(move || {
                ON_WRITER_THREAD.with(|w| w.set(true));
                WriterThread {
                    sink,
                    queue: Taking(queue),
                    asked,
                    output: shared,
                    error: None,
                    requests: Vec::new(),
                    queue_chunks: queue_chunks.max(1),
                }
                .run(flush_interval)
            })?;
        Ok((output, handle))
    }

    /// Hands `chunk`, a thread writer's buffer of whole packets, to the
    /// writer thread, and puts in its place the buffer to fill next: a
    /// spent one if any is spare, else a new one with the chunk's room (the
    /// writer would grow a smaller one step by step). On the writer thread (a
    /// flush), the bytes are copied for that flush to write and the buffer
    /// stays. False if the chunk was dropped (the queue was full in
    /// [`Overflow::Drop`] mode, or the writer thread has stopped): `chunk`
    /// then holds it still, for the writer to empty and fill again.
    pub(crate) fn submit(&self, chunk: &mut Packets) -> bool {
        self.submit_as(chunk, true)
    }

    /// [`Output::submit`] of a writer's last chunk: no buffer is put in
    /// its place (a new one would be made only to be dropped).
    pub(crate) fn submit_last(&self, chunk: &mut Packets) -> bool {
        self.submit_as(chunk, false)
    }

    /// [`Output::submit`] of a copy of `bytes`, made here: for packets
    /// made outside a writer (the marker of a loss), rarely.
    pub(crate) fn submit_copy(&self, bytes: &[u8]) -> bool {
        self.submit_as(&mut Packets::from(bytes.to_vec()), false)
    }

    /// [`Output::submit`], taking a spare buffer only if `spare`.
    fn submit_as(&self, chunk: &mut Packets, spare: bool) -> bool {
        if chunk.is_empty() {
            return true;
        }
        if ON_WRITER_THREAD.with(|w| w.get()) {
            DIRECT.with(|d| d.borrow_mut().extend_from_slice(chunk));
            return true;
        }
        if self.stopped.load(Ordering::Relaxed) {
            return false;
        }
        let room = chunk.capacity();
        let full = std::mem::take(chunk);
        match self
            .queue
            .push(full, self.overflow == Overflow::Block, spare)
        {
            Ok(next) => {
                if spare {
                    *chunk = next.unwrap_or_else(|| Packets::with_capacity(room));
                }
                true
            }
            Err(full) => {
                self.dropped_chunks.fetch_add(1, Ordering::Relaxed);
                self.dropped_bytes
                    .fetch_add(full.len() as u64, Ordering::Relaxed);
                *chunk = full;
                false
            }
        }
    }

    /// Asks the writer thread to flush everything; waits for it.
    pub(crate) fn request(&self, stop: bool) -> io::Result<()> {
        let (tx, rx) = mpsc::channel();
        let request = if stop {
            Request::Stop(tx)
        } else {
            Request::Flush(tx)
        };
        if self.requests.send(request).is_err() {
            return Err(io::Error::other("the trace writer thread has stopped"));
        }
        self.queue.poke();
        rx.recv()
            .unwrap_or_else(|_| Err(io::Error::other("the trace writer thread has stopped")))
    }
}

/// A result for one more caller: the first error, described again.
fn copy(r: &io::Result<()>) -> io::Result<()> {
    match r {
        Ok(()) => Ok(()),
        Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        self.queue.lock().closed = true;
        self.queue.work.notify_one();
    }
}

struct WriterThread<W> {
    sink: W,
    queue: Taking,
    asked: Receiver<Request>,
    output: Weak<Output>,
    /// The first sink error, reported by the next flush.
    error: Option<io::Error>,
    /// Flushes and the stop asked for and not answered yet: met in the
    /// queue while a flush is under way, they are answered by a flush that
    /// begins after it (which then covers what their callers recorded).
    requests: Vec<Request>,
    /// How many messages the queue holds at most.
    queue_chunks: usize,
}

impl<W: Write> WriterThread<W> {
    fn run(mut self, interval: Option<Duration>) {
        let interval = interval.unwrap_or(Duration::MAX);
        // On a clock, not after a quiet spell: busy threads' chunks keep
        // the queue from ever being quiet, and what quiet threads hold
        // must still reach the sink every interval.
        let mut next_flush = Instant::now().checked_add(interval);
        loop {
            let wait = next_flush.map_or(Duration::MAX, |t| {
                t.saturating_duration_since(Instant::now())
            });
            match self.queue.0.next(wait) {
                Next::Chunk(chunk) => self.write(chunk),
                Next::Woken | Next::Timeout => {}
                Next::Closed => {
                    let _ = self.sink_flush();
                    return;
                }
            }
            self.collect_requests();
            if next_flush.is_some_and(|t| Instant::now() >= t) {
                // Its error waits for the next flush asked for.
                if let Err(e) = self.flush_all(false) {
                    self.error.get_or_insert(e);
                }
                next_flush = Instant::now().checked_add(interval);
            }
            if !self.answer_requests() {
                return;
            }
        }
    }

    /// Answers the requests met so far, each with a flush that begins now,
    /// until none arrives during one; false once a stop was answered.
    fn answer_requests(&mut self) -> bool {
        while !self.requests.is_empty() {
            let requests = std::mem::take(&mut self.requests);
            let stop = requests.iter().any(|m| matches!(m, Request::Stop(_)));
            let mut r = self.flush_all(true);
            if stop {
                if let Some(o) = self.output.upgrade() {
                    o.stopped.store(true, Ordering::Relaxed);
                }
                // Chunks sent before `stopped` was seen still arrive.
                while let Some(chunk) = self.queue.0.try_pop() {
                    self.write(chunk);
                }
                r = r.and_then(|()| self.sink_flush());
            }
            self.collect_requests();
            let late = match stop {
                true => std::mem::take(&mut self.requests),
                false => Vec::new(),
            };
            for m in requests.into_iter().chain(late) {
                let (Request::Flush(a) | Request::Stop(a)) = m;
                let _ = a.send(copy(&r));
            }
            if stop {
                return false;
            }
        }
        true
    }

    /// Requests sent so far wait for the next flush.
    fn collect_requests(&mut self) {
        self.requests.extend(self.asked.try_iter());
    }

    fn write(&mut self, chunk: Packets) {
        if let Err(e) = self.sink.write_all(&chunk) {
            self.error.get_or_insert(e);
        }
        self.queue.0.recycle(chunk);
    }

    /// Takes what the queue holds now: at most as many messages as it
    /// holds, so that threads refilling it as fast as it drains (a slow
    /// sink) cannot keep the writer thread here for good.
    fn drain_queue(&mut self) {
        for _ in 0..self.queue_chunks {
            match self.queue.0.try_pop() {
                Some(chunk) => self.write(chunk),
                None => return,
            }
        }
    }

    fn sink_flush(&mut self) -> io::Result<()> {
        let r = self.sink.flush();
        match self.error.take() {
            Some(e) => Err(e),
            None => r,
        }
    }

    /// Writes every thread's buffered packets, in order: a thread's chunks
    /// already queued first, then what it still holds. A thread in the
    /// middle of a call is asked to hand its buffer over as the call ends
    /// (it holds its state through the call, and back to back calls of a
    /// thread flooding a slow sink leave no moment to take it between
    /// them). With `wait` (a flush asked for), until it has; without (the
    /// timed flush), the thread is passed over, so that no thread waits
    /// on another.
    fn flush_all(&mut self, wait: bool) -> io::Result<()> {
        let Some(output) = self.output.upgrade() else {
            return self.sink_flush();
        };
        let slots: Vec<Arc<ThreadSlot>> = match output.slots.lock() {
            Ok(mut s) => {
                s.retain(|w| w.strong_count() > 0);
                s.iter().filter_map(Weak::upgrade).collect()
            }
            Err(_) => Vec::new(),
        };
        drop(output);
        for slot in slots {
            let handed = slot.ask_hand_over();
            // A thread handing over into a full queue waits on it: keep the
            // queue moving until it has.
            loop {
                let taken = slot.try_with(|state| {
                    // Whatever the thread queued comes before what it holds.
                    self.drain_queue();
                    state.flush_to_writer_thread();
                    let bytes = DIRECT.with(|d| std::mem::take(&mut *d.borrow_mut()));
                    if let Err(e) = self.sink.write_all(&bytes) {
                        self.error.get_or_insert(e);
                    }
                    DIRECT.with(|d| *d.borrow_mut() = recycle_direct(bytes));
                });
                if taken.is_some() || !wait || slot.handed_over_since(handed) {
                    break;
                }
                self.drain_queue();
                std::thread::yield_now();
            }
        }
        // What a thread handed over is among the messages queued now.
        self.drain_queue();
        self.sink_flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each write's address and bytes.
    type Writes = Vec<(usize, Vec<u8>)>;

    struct Seen(Arc<Mutex<Writes>>);

    impl Write for Seen {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut seen = self.0.lock().unwrap();
            seen.push((buf.as_ptr() as usize, buf.to_vec()));
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// An empty packet, framed as `Trace.packet`.
    fn packet() -> Packets {
        Packets::from(vec![0x0a, 0x00])
    }

    /// Queues `n` chunks; how the writer thread waits after each.
    fn push_and_watch(queue: &Queue, n: usize) -> Vec<Waiting> {
        (0..n)
            .map(|_| {
                queue.push(packet(), true, false).unwrap();
                queue.lock().waiting
            })
            .collect()
    }

    #[test]
    fn a_napping_writer_thread_is_woken_only_by_half_a_queue_a_sleeping_one_by_a_few_chunks() {
        let queue = Queue::new(64);
        queue.lock().waiting = Waiting::Napping;
        let seen = push_and_watch(&queue, 32);
        assert!(
            seen[..31].iter().all(|&w| w == Waiting::Napping),
            "{seen:?}"
        );
        assert_eq!(seen[31], Waiting::No, "woken by the 32nd chunk");
        assert!(queue.lock().poked);

        let queue = Queue::new(64);
        queue.lock().waiting = Waiting::Asleep;
        let seen = push_and_watch(&queue, WAKE_AT);
        assert!(seen[..WAKE_AT - 1].iter().all(|&w| w == Waiting::Asleep));
        assert_eq!(seen[WAKE_AT - 1], Waiting::No, "woken by {WAKE_AT} chunks");

        // Nothing waits: nothing to wake, however full.
        let queue = Queue::new(8);
        let seen = push_and_watch(&queue, 8);
        assert!(seen.iter().all(|&w| w == Waiting::No));
        assert!(!queue.lock().poked);
    }

    #[test]
    fn the_writer_thread_naps_while_chunks_come_then_sleeps() {
        let queue = Queue::new(64);
        // Nothing comes: it naps QUIET_NAPS times, then sleeps to its
        // deadline.
        assert!(matches!(
            queue.next(Duration::from_millis(300)),
            Next::Timeout
        ));
        assert_eq!(queue.lock().quiet_naps, QUIET_NAPS);
        // A chunk found: it naps again.
        queue.push(packet(), true, false).unwrap();
        assert!(matches!(queue.next(Duration::ZERO), Next::Chunk(_)));
        assert_eq!(queue.lock().quiet_naps, 0);
        // A chunk that comes during a nap is taken when the nap ends,
        // without a wake.
        std::thread::scope(|s| {
            s.spawn(|| {
                while queue.lock().waiting != Waiting::Napping {
                    std::thread::yield_now();
                }
                queue.push(packet(), true, false).unwrap();
                // Only a wake pokes it (and nothing takes a poke off
                // before the chunk is popped).
                assert!(!queue.lock().poked, "not woken");
            });
            assert!(matches!(queue.next(Duration::from_secs(5)), Next::Chunk(_)));
        });
        assert_eq!(queue.lock().quiet_naps, 0);
    }

    #[test]
    fn a_chunk_reaches_the_sink_in_its_own_buffer_which_comes_back_spent() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (output, handle) =
            Output::start(Seen(Arc::clone(&seen)), 4, Overflow::Block, None).unwrap();
        let mut chunk = packet();
        let first = chunk.as_ptr() as usize;
        assert!(output.submit(&mut chunk));
        // No buffer is spare yet: a new one, with the chunk's room.
        assert!(chunk.is_empty());
        assert_ne!(chunk.as_ptr() as usize, first);
        assert_eq!(chunk.capacity(), 2);
        // The flush writes the queued chunk and keeps its buffer.
        output.request(false).unwrap();
        let mut chunk = packet();
        let second = chunk.as_ptr() as usize;
        assert!(output.submit(&mut chunk));
        assert_eq!(chunk.as_ptr() as usize, first, "the spent buffer back");
        assert!(chunk.is_empty());
        output.request(true).unwrap();
        drop(output);
        handle.join().unwrap();
        let packet = vec![0x0a, 0x00];
        assert_eq!(
            *seen.lock().unwrap(),
            vec![(first, packet.clone()), (second, packet)],
            "written from the buffers handed over, not copies"
        );
    }
}
