//! A failing sink never leaves a corrupt trace, and nothing accepted is lost
//! once the sink recovers: fault injection at every byte of a trace.

use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;

use perfetto_trace_writer::{
    inspect, protos, Error, Options, PacketSink, Packets, StreamingPerfettoWriter, TraceWriter,
    Writer,
};
use prost::Message;

/// Fails at byte `k`: a write that would cross it either takes the bytes
/// before `k` first (`short`) and fails on the next call, or fails at once.
/// After failing `failures` times it recovers.
struct FailAt {
    data: Vec<u8>,
    k: usize,
    short: bool,
    failures: usize,
    kind: io::ErrorKind,
}

impl Write for FailAt {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.k.saturating_sub(self.data.len());
        if self.failures > 0 && buf.len() > room {
            if self.short && room > 0 {
                self.data.extend_from_slice(&buf[..room]);
                return Ok(room);
            }
            self.failures -= 1;
            return Err(io::Error::new(
                self.kind,
                format!("injected at byte {}", self.k),
            ));
        }
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A [`PacketSink`] failing once the buffers it took would pass byte `k`,
/// `failures` times; it may mangle the spent buffer it hands back, which
/// the writer must empty.
struct TakeFailAt {
    data: Vec<u8>,
    k: usize,
    failures: usize,
    spent: Packets,
}

impl PacketSink for TakeFailAt {
    fn take_packets(&mut self, packets: &mut Packets) -> io::Result<()> {
        if self.failures > 0 && self.data.len() + packets.len() > self.k {
            self.failures -= 1;
            return Err(io::Error::other(format!("injected at byte {}", self.k)));
        }
        self.data.extend_from_slice(packets);
        // Handed back with the bytes it held: the writer must clear them.
        std::mem::swap(packets, &mut self.spent);
        Ok(())
    }
}

impl Write for TakeFailAt {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::other("a packet sink's write was called"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TakeFailAt {
    fn new(k: usize, failures: usize) -> Self {
        TakeFailAt {
            data: vec![],
            k,
            failures,
            spent: Packets::from(vec![0xff; 100]),
        }
    }
}

/// Retries a call while the sink reports an I/O error (the call did nothing).
macro_rules! retry {
    ($tries:expr, $call:expr) => {{
        let mut tries = 0;
        loop {
            match $call {
                Err(Error::Io(_)) if tries < $tries => tries += 1,
                other => break other,
            }
        }
    }};
}

/// The calls of one trace; `tries` retries per call on sink errors.
fn build(w: &mut impl TraceWriter, tries: usize) -> Result<(), Error> {
    let p = retry!(
        tries,
        w.process("svc", Some(77), "service", &["svc", "--flag"])
    )?;
    let t = retry!(tries, w.thread(p, "main", Some(78), "main"))?;
    let u = retry!(tries, w.thread(p, "worker", None, "worker"))?;
    let lane = retry!(tries, w.async_lane(p, "io"))?;
    for i in 0..12u64 {
        let ts = 1_000 + i * 1_000;
        let name = ["parse", "plan", "execute", "reply"][i as usize % 4];
        retry!(
            tries,
            w.span_begin(t, ts, "request", "http", "src/server.rs", 10)
        )?;
        retry!(
            tries,
            w.complete_span(
                t,
                ts + 100,
                ts + 400,
                name,
                "sql",
                "src/db.rs",
                20 + i as u32
            )
        )?;
        retry!(
            tries,
            w.async_span_begin(lane, i, ts + 150, "fetch", "io", "", 0)
        )?;
        retry!(
            tries,
            w.complete_span(u, ts + 200, ts + 300, name, "pool", "", 0)
        )?;
        retry!(tries, w.span_end(t, ts + 900))?;
        retry!(tries, w.async_span_end(lane, i, ts + 1_200))?;
    }
    retry!(tries, w.finish())?;
    Ok(())
}

fn expected(compact: bool) -> Vec<u8> {
    let mut w = Writer::with_options(Options::new().compact(compact));
    build(&mut w, 0).unwrap();
    w.into_bytes()
}

fn options(compact: bool) -> Options {
    // Small writes, so that faults land inside packets and between them.
    Options::new().flush_threshold(48).compact(compact)
}

/// Checks that the sink's injected failure reached the caller.
fn assert_injected(result: Result<(), Error>) {
    let e = result.expect_err("the failure reaches the caller");
    assert!(
        matches!(e, Error::Io(ref io) if io.to_string().contains("injected")),
        "{e}"
    );
}

/// Checks what a sink holds after a failure it never recovered from.
fn check_prefix(full: &[u8], data: &[u8], whole: u64, written: u64) {
    assert_eq!(written, data.len() as u64);
    assert!(whole <= written);
    assert_eq!(
        data,
        &full[..data.len()],
        "the sink holds a prefix of the trace"
    );
    let whole = whole as usize;
    let trace = protos::Trace::decode(&data[..whole]).expect("the whole part decodes");
    // `whole` is the last packet boundary: the next packet did not fit.
    let complete = protos::Trace::decode(full).unwrap();
    if trace.packet.len() < complete.packet.len() {
        let one_more = protos::Trace {
            packet: complete.packet[..=trace.packet.len()].to_vec(),
        };
        assert!(
            one_more.encoded_len() > data.len(),
            "whole_bytes is not the last boundary"
        );
    }
    let read = inspect::decode(&data[..whole]).unwrap();
    assert_eq!(
        read.problems,
        vec![],
        "a cut at whole_bytes is a clean trace"
    );
}

#[test]
fn a_sink_failing_for_good_at_any_byte_leaves_a_valid_prefix() {
    for compact in [false, true] {
        let full = expected(compact);
        for short in [false, true] {
            for k in 0..=full.len() {
                let sink = FailAt {
                    data: vec![],
                    k,
                    short,
                    failures: usize::MAX,
                    kind: io::ErrorKind::Other,
                };
                let mut w = StreamingPerfettoWriter::with_options(sink, options(compact));
                let result = build(&mut w, 0);
                if k < full.len() {
                    assert_injected(result);
                }
                let (whole, written) = (w.whole_bytes(), w.bytes_written());
                let data = std::mem::take(&mut w.get_mut().data);
                check_prefix(&full, &data, whole, written);
            }
        }
    }
}

#[test]
fn after_a_failure_the_same_bytes_are_retried_without_gap_or_duplicate() {
    for compact in [false, true] {
        let full = expected(compact);
        for short in [false, true] {
            for kind in [io::ErrorKind::Other, io::ErrorKind::WouldBlock] {
                for k in 0..full.len() {
                    let sink = FailAt {
                        data: vec![],
                        k,
                        short,
                        failures: 2,
                        kind,
                    };
                    let mut w = StreamingPerfettoWriter::with_options(sink, options(compact));
                    build(&mut w, 3).unwrap();
                    assert_eq!(w.whole_bytes(), full.len() as u64);
                    let sink = w.into_inner().unwrap();
                    assert_eq!(sink.data, full, "k = {k}, short = {short}, {kind:?}");
                }
            }
        }
    }
}

#[test]
fn a_packet_sink_failing_for_good_holds_whole_packets_only() {
    for compact in [false, true] {
        let full = expected(compact);
        for k in 0..=full.len() {
            let options = options(compact);
            let mut w =
                StreamingPerfettoWriter::with_packet_sink(TakeFailAt::new(k, usize::MAX), options);
            let result = build(&mut w, 0);
            if k < full.len() {
                assert_injected(result);
            }
            let (whole, written) = (w.whole_bytes(), w.bytes_written());
            assert_eq!(whole, written, "a buffer is taken whole or not at all");
            let data = std::mem::take(&mut w.get_mut().data);
            check_prefix(&full, &data, whole, written);
        }
    }
}

#[test]
fn after_a_failed_hand_over_the_same_bytes_are_handed_over_again() {
    for compact in [false, true] {
        let full = expected(compact);
        for k in 0..full.len() {
            let sink = TakeFailAt::new(k, 2);
            let mut w = StreamingPerfettoWriter::with_packet_sink(sink, options(compact));
            build(&mut w, 3).unwrap();
            assert_eq!(w.whole_bytes(), full.len() as u64);
            let sink = w.into_inner().unwrap();
            assert_eq!(sink.data, full, "k = {k}, compact = {compact}");
        }
    }
}

#[test]
fn interrupted_writes_are_retried_inside_the_writer() {
    struct Interrupting(Vec<u8>, usize);
    impl Write for Interrupting {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.1 += 1;
            if self.1 % 3 == 0 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(5);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.1 += 1;
            if self.1 % 2 == 0 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            Ok(())
        }
    }
    let mut w = StreamingPerfettoWriter::with_options(Interrupting(vec![], 0), options(false));
    build(&mut w, 0).unwrap();
    assert_eq!(w.into_inner().unwrap().0, expected(false));
}

#[test]
fn dropping_a_writer_flushes_what_it_holds_best_effort() {
    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let shared = Shared::default();
    let mut w = StreamingPerfettoWriter::new(shared.clone());
    let p = w.process("p", Some(1), "p", &[]).unwrap();
    let t = w.thread(p, "t", Some(2), "t").unwrap();
    w.complete_span(t, 10, 20, "pending end", "", "", 0)
        .unwrap();
    assert_eq!(shared.0.borrow().len(), 0, "still buffered");
    drop(w);

    let mut b = Writer::new();
    let p = b.process("p", Some(1), "p", &[]).unwrap();
    let t = b.thread(p, "t", Some(2), "t").unwrap();
    b.complete_span(t, 10, 20, "pending end", "", "", 0)
        .unwrap();
    b.finish().unwrap();
    assert_eq!(
        *shared.0.borrow(),
        b.bytes(),
        "drop wrote the buffer and the pending end"
    );

    // A sink that fails on drop is not a panic.
    let sink = FailAt {
        data: vec![],
        k: 0,
        short: false,
        failures: usize::MAX,
        kind: io::ErrorKind::Other,
    };
    let mut w = StreamingPerfettoWriter::new(sink);
    w.process("p", None, "p", &[]).unwrap();
    drop(w);
}
