//! Where the bytes go: each thread's writer hands whole chunks of packets
//! to one writer thread through a bounded queue, and that thread writes
//! them to the sink. The writer thread also flushes every thread's partly
//! filled buffer, on a timer and when asked (by the guard).

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

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

pub(crate) enum Message {
    Chunk(Vec<u8>),
    /// A request was sent: wakes the writer thread if it waits for chunks.
    Wake,
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
    queue: SyncSender<Message>,
    requests: Sender<Request>,
    overflow: Overflow,
    /// The capacity of a new chunk buffer.
    chunk_room: usize,
    /// Spent chunk buffers, for the next chunks: no allocation per chunk
    /// once the queue has been full once.
    pool: Mutex<Vec<Vec<u8>>>,
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
        chunk_size: usize,
        queue_chunks: usize,
        overflow: Overflow,
        flush_interval: Option<Duration>,
    ) -> io::Result<(Arc<Output>, std::thread::JoinHandle<()>)> {
        let (tx, rx) = mpsc::sync_channel(queue_chunks.max(1));
        let (requests, asked) = mpsc::channel();
        let output = Arc::new(Output {
            queue: tx,
            requests,
            overflow,
            chunk_room: chunk_size
                .saturating_add(chunk_size / 4)
                .saturating_add(4096),
            pool: Mutex::new(Vec::new()),
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
                    rx,
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

    /// Hands a chunk of whole packets to the writer thread. False if it was
    /// dropped (the queue was full in [`Overflow::Drop`] mode, or the
    /// writer thread has stopped).
    pub(crate) fn submit(&self, bytes: &[u8]) -> bool {
        if bytes.is_empty() {
            return true;
        }
        if ON_WRITER_THREAD.with(|w| w.get()) {
            DIRECT.with(|d| d.borrow_mut().extend_from_slice(bytes));
            return true;
        }
        if self.stopped.load(Ordering::Relaxed) {
            return false;
        }
        let mut chunk = self
            .pool
            .lock()
            .map(|mut p| p.pop())
            .ok()
            .flatten()
            // Room for a chunk and a packet past it: recycled, it is not
            // grown again by a slightly longer chunk.
            .unwrap_or_else(|| Vec::with_capacity(self.chunk_room));
        chunk.clear();
        chunk.extend_from_slice(bytes);
        let sent = match self.overflow {
            Overflow::Block => self.queue.send(Message::Chunk(chunk)).map_err(|e| e.0),
            Overflow::Drop => self
                .queue
                .try_send(Message::Chunk(chunk))
                .map_err(|e| match e {
                    TrySendError::Full(m) | TrySendError::Disconnected(m) => m,
                }),
        };
        match sent {
            Ok(()) => true,
            Err(Message::Chunk(chunk)) => {
                self.dropped_chunks.fetch_add(1, Ordering::Relaxed);
                self.dropped_bytes
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                self.recycle(chunk);
                false
            }
            Err(_) => false,
        }
    }

    fn recycle(&self, chunk: Vec<u8>) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.push(chunk);
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
        // A full queue needs no wake: the writer thread looks at the
        // requests after every chunk it takes.
        let _ = self.queue.try_send(Message::Wake);
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

struct WriterThread<W> {
    sink: W,
    rx: Receiver<Message>,
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
            match self.rx.recv_timeout(wait) {
                Ok(m) => self.take(m),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
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
                while let Ok(m) = self.rx.try_recv() {
                    self.take(m);
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

    fn take(&mut self, m: Message) {
        match m {
            Message::Chunk(c) => self.write(c),
            Message::Wake => {}
        }
    }

    fn write(&mut self, chunk: Vec<u8>) {
        if let Err(e) = self.sink.write_all(&chunk) {
            self.error.get_or_insert(e);
        }
        if let Some(o) = self.output.upgrade() {
            o.recycle(chunk);
        }
    }

    /// Takes what the queue holds now: at most as many messages as it
    /// holds, so that threads refilling it as fast as it drains (a slow
    /// sink) cannot keep the writer thread here for good.
    fn drain_queue(&mut self) {
        for _ in 0..self.queue_chunks {
            match self.rx.try_recv() {
                Ok(m) => self.take(m),
                Err(_) => return,
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
