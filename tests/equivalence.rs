//! Both writers, driven by arbitrary call sequences (misuse included), agree
//! byte for byte whatever their sink does, their output is canonical
//! protobuf, and it shows exactly the calls that succeeded.

mod common;

use common::{op, Driver, Handoff, Interrupting, Op, Trickle, Writes};
use perfetto_trace_writer::{
    protos, ChunkedWriter, Options, StreamingPerfettoWriter, TraceWriter, Writer,
};
use proptest::prelude::*;
use prost::Message;

fn run<W: TraceWriter>(mut w: W, ops: &[Op]) -> (W, Driver) {
    let mut d = Driver::new();
    d.run(&mut w, ops);
    (w, d)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn writers_agree_and_show_what_was_called(
        ops in prop::collection::vec(op(), 1..120),
        threshold in prop_oneof![Just(64 * 1024), 1usize..300],
        every in 2usize..9,
        compact in any::<bool>(),
    ) {
        let (buffered, driver) = run(Writer::with_options(Options::new().compact(compact)), &ops);
        let bytes = buffered.bytes();

        let options = Options::new().flush_threshold(threshold).compact(compact);
        let (streaming, d) = run(StreamingPerfettoWriter::with_options(Vec::new(), options), &ops);
        prop_assert_eq!(&d.outcomes, &driver.outcomes);
        prop_assert_eq!(streaming.bytes_written(), bytes.len() as u64);
        prop_assert_eq!(streaming.into_inner().unwrap(), bytes);

        let trickle = Trickle { data: vec![], max: 3, calls: 0 };
        let (streaming, d) = run(StreamingPerfettoWriter::with_options(trickle, options), &ops);
        prop_assert_eq!(&d.outcomes, &driver.outcomes);
        prop_assert_eq!(streaming.into_inner().unwrap().data, bytes);

        let interrupting = Interrupting { data: vec![], every, calls: 0 };
        let (streaming, d) = run(StreamingPerfettoWriter::with_options(interrupting, options), &ops);
        prop_assert_eq!(&d.outcomes, &driver.outcomes);
        prop_assert_eq!(streaming.into_inner().unwrap().data, bytes);

        // Handed over whole, the buffers are what a sink is written,
        // write for write.
        let (streaming, _) = run(StreamingPerfettoWriter::with_options(Writes::default(), options), &ops);
        let writes = streaming.into_inner().unwrap().chunks;
        let sink = Handoff::new(every);
        let (streaming, d) = run(StreamingPerfettoWriter::with_packet_sink(sink, options), &ops);
        prop_assert_eq!(&d.outcomes, &driver.outcomes);
        prop_assert_eq!(streaming.bytes_written(), bytes.len() as u64);
        prop_assert_eq!(streaming.whole_bytes(), bytes.len() as u64);
        let handoff = streaming.into_inner().unwrap();
        prop_assert_eq!(&handoff.chunks, &writes);
        prop_assert_eq!(handoff.bytes(), bytes);

        // Canonical: prost re-encodes the decoded trace to the same bytes.
        let trace = protos::Trace::decode(bytes).unwrap();
        prop_assert_eq!(trace.encode_to_vec(), bytes);
        prop_assert_eq!(trace.packet.len() as u64, buffered.packet_count());

        driver.check_trace(bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Events given as keys, mixed with the same events given as strings,
    /// write the bytes the strings alone write, on every writer kind, in
    /// either mode, across generations of interning and sequence moves;
    /// the trace shows what the model predicts.
    #[test]
    fn keys_write_what_strings_write(
        ops in prop::collection::vec(op(), 1..120),
        compact in any::<bool>(),
        limit in prop_oneof![Just(usize::MAX), 1usize..12],
        threshold in prop_oneof![Just(64 * 1024), 1usize..300],
    ) {
        let options = Options::new().compact(compact).intern_limit(limit, usize::MAX);
        let (strings, driver) = run(Writer::with_options(options), &ops);
        let bytes = strings.bytes();

        let mut keyed = Driver::with_keys();
        let mut w = Writer::with_options(options);
        keyed.run(&mut w, &ops);
        prop_assert_eq!(&keyed.outcomes, &driver.outcomes);
        prop_assert_eq!(w.bytes(), bytes);
        prop_assert_eq!(w.interning_generations(), strings.interning_generations());
        keyed.check_trace(w.bytes());

        let mut keyed = Driver::with_keys();
        let streaming = options.flush_threshold(threshold);
        let mut w = StreamingPerfettoWriter::with_options(Vec::new(), streaming);
        keyed.run(&mut w, &ops);
        prop_assert_eq!(&keyed.outcomes, &driver.outcomes);
        prop_assert_eq!(w.into_inner().unwrap(), bytes);

        let mut keyed = Driver::with_keys();
        let mut w = ChunkedWriter::with_options(threshold, options);
        keyed.run(&mut w, &ops);
        prop_assert_eq!(&keyed.outcomes, &driver.outcomes);
        let chunks: Vec<u8> = w.finish_chunks().unwrap().iter().flat_map(|c| c.data.iter().copied()).collect();
        prop_assert_eq!(chunks, bytes);
    }
}

/// The generator reaches every outcome, so the property above is exercised
/// on misuse as well as on success.
#[test]
fn generated_sequences_cover_every_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use std::collections::BTreeMap;

    let mut runner = TestRunner::deterministic();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut on_named: BTreeMap<String, usize> = BTreeMap::new();
    let mut moved = 0;
    for _ in 0..200 {
        let ops = prop::collection::vec(op(), 1..120)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        // In compact mode, busy tracks move to sequences of their own.
        let (compact, _) = run(Writer::with_options(Options::new().compact(true)), &ops);
        moved += usize::from(compact.sequence_count() > 1);
        let (_, d) = run(Writer::new(), &ops);
        for o in d.named_outcomes {
            *on_named
                .entry(o.err().unwrap_or_else(|| "Ok".into()))
                .or_default() += 1;
        }
        for o in d.outcomes {
            *seen
                .entry(o.err().unwrap_or_else(|| "Ok".into()))
                .or_default() += 1;
        }
    }
    for kind in [
        "Ok",
        "TimestampOutOfRange",
        "EndBeforeBegin",
        "TimestampBackwards",
        "NotNested",
        "NoOpenSpan",
        "TooDeep",
        "AsyncSpanNotOpen",
        "AsyncSpanAlreadyOpen",
        "ForeignHandle",
        "ZeroId",
        "NegativePid",
        "DepthOutOfRange",
        "PidInUse",
        "TidInUse",
        "Redefined",
        "ForeignKey",
        "KeyAndStrings",
    ] {
        assert!(
            seen.get(kind).is_some_and(|&n| n > 0),
            "{kind} never happens: {seen:?}"
        );
    }
    // Spans on named tracks, accepted and refused.
    for kind in [
        "Ok",
        "EndBeforeBegin",
        "TimestampBackwards",
        "NotNested",
        "NoOpenSpan",
        "DepthOutOfRange",
    ] {
        assert!(
            on_named.get(kind).is_some_and(|&n| n > 0),
            "{kind} never happens on a named track: {on_named:?}"
        );
    }
    assert!(
        moved >= 20,
        "tracks moved to sequences of their own in {moved} of 200"
    );
}
