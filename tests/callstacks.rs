//! Callstacks on events (`Event::callstack`), interned as the format
//! interns them (`callstack_iid`, `InternedData.callstacks`, `frames`,
//! `function_names`, `source_paths`): once per sequence and generation, on
//! every writer and in both modes, resolved by the trace processor to the
//! frames the UI shows (`__intrinsic_track_event_callstacks`,
//! `stack_profile_callsite`, `stack_profile_frame`, `stack_profile_symbol`).

mod common;

use perfetto_trace_writer::inspect::{Frame, Trace};
use perfetto_trace_writer::{
    protos, AsyncParent, Error, Event, Options, ParentTrack, StackFrame, TraceWriter, TrackOptions,
    Writer, MAX_CALLSTACK_DEPTH, MAX_STRING_LEN,
};
use prost::Message;

const MAIN: StackFrame<'static> = StackFrame::new("main", "src/main.rs", 3);
const SERVE: StackFrame<'static> = StackFrame::new("serve", "src/serve.rs", 40);
const SERVE_LATER: StackFrame<'static> = StackFrame::new("serve", "src/serve.rs", 41);
const PARSE: StackFrame<'static> = StackFrame::new("parse", "src/serve.rs", 90);
const ALLOC: StackFrame<'static> = StackFrame::new("alloc 漢字", "", 0);

/// Callstacks on every kind of event that takes one: thread begins,
/// complete spans and instants, async spans, spans and instants on a named
/// track, instants on a process; the same stacks again and again, and
/// stacks that share frames.
fn everywhere<W: TraceWriter>(w: &mut W) {
    let p = w.process("p", Some(10), "svc", &[]).unwrap();
    let t = w.thread(p, "t", Some(11), "main").unwrap();
    let lane = w.async_lane(p, "io").unwrap();
    let queue = w
        .track(ParentTrack::Root, "queue", &TrackOptions::default())
        .unwrap();
    let request = [MAIN, SERVE];
    let other = [MAIN, SERVE_LATER];
    let parse = [MAIN, SERVE, PARSE];
    let alloc = [MAIN, SERVE, PARSE, ALLOC];
    for i in 0..8u64 {
        let t0 = 1_000 * i;
        let stack: &[StackFrame] = if i % 2 == 0 { &request } else { &other };
        w.span_begin_with(t, t0, &Event::new("request").callstack(stack))
            .unwrap();
        w.complete_span_with(t, t0 + 10, t0 + 50, &Event::new("parse").callstack(&parse))
            .unwrap();
        w.instant(t, t0 + 20, &Event::new("alloc").callstack(&alloc))
            .unwrap();
        w.span_end(t, t0 + 100).unwrap();
        w.async_complete_span(
            lane,
            i,
            t0,
            t0 + 70,
            None,
            &Event::new("read").callstack(&[SERVE]),
        )
        .unwrap();
        let parent = AsyncParent::new(lane, i);
        w.async_child_begin(
            lane,
            100 + i,
            parent,
            t0 + 5,
            &Event::new("seek").callstack(&parse),
        )
        .unwrap();
        w.async_span_end(lane, 100 + i, t0 + 60).unwrap();
        w.track_span_begin(queue, t0, &Event::new("job").callstack(&request))
            .unwrap();
        w.instant(queue, t0 + 1, &Event::new("mark").callstack(&[ALLOC]))
            .unwrap();
        w.track_span_end(queue, t0 + 2).unwrap();
        w.instant(p, t0 + 3, &Event::new("tick").callstack(&request))
            .unwrap();
    }
    // A stack alone in the trace, with no frame of another.
    w.instant(
        t,
        9_000,
        &Event::new("lonely").callstack(&[StackFrame::new("f", "g.rs", 1)]),
    )
    .unwrap();
    w.finish().unwrap();
}

fn frame(f: StackFrame<'_>) -> Frame {
    Frame {
        function: f.function.to_owned(),
        file: (!f.file.is_empty()).then(|| f.file.to_owned()),
        line: (f.line != 0).then_some(f.line),
    }
}

/// Every slice's name and callstack, in order of time.
fn stacks(t: &Trace) -> Vec<(String, Vec<Frame>)> {
    let mut v: Vec<_> = t
        .slices
        .iter()
        .map(|s| (s.ts, s.name.clone(), s.callstack.clone()))
        .collect();
    v.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    v.into_iter().map(|(_, n, c)| (n, c)).collect()
}

/// The trace processor's callstack of each slice, as `name: f@file:line >
/// ...` (outermost first), in order of time and name.
const STACKS_SQL: &str = "
with recursive chain(slice_id, callsite_id) as (
  select slice_id, callsite_id from __intrinsic_track_event_callstacks
  union all
  select chain.slice_id, c.parent_id from chain
  join stack_profile_callsite c on c.id = chain.callsite_id
  where c.parent_id is not null
)
select s.name || ': ' || group_concat(
    f.name || '@' || coalesce(y.source_file, '') || ':' || coalesce(y.line_number, ''),
    ' > ' order by c.depth) as stack
from chain
join stack_profile_callsite c on c.id = chain.callsite_id
join stack_profile_frame f on f.id = c.frame_id
left join stack_profile_symbol y on y.symbol_set_id = f.symbol_set_id
join slice s on s.id = chain.slice_id
group by s.id
order by s.ts, s.name;";

/// What [`STACKS_SQL`] gives for the stacks `inspect` found.
fn as_rows(stacks: &[(String, Vec<Frame>)]) -> Vec<String> {
    stacks
        .iter()
        .filter(|(_, c)| !c.is_empty())
        .map(|(name, c)| {
            let frames: Vec<String> = c
                .iter()
                .map(|f| {
                    let line = f.line.map_or(String::new(), |l| l.to_string());
                    format!("{}@{}:{line}", f.function, f.file.as_deref().unwrap_or(""))
                })
                .collect();
            format!("\"{name}: {}\"", frames.join(" > "))
        })
        .collect()
}

/// Interned entries defined: (function names, source paths, frames,
/// callstacks), and the events naming a callstack. Asserts that no
/// sequence defines an entry twice in one generation of its state.
fn definitions(bytes: &[u8]) -> ((usize, usize, usize, usize), usize) {
    use std::collections::{HashMap, HashSet};
    let trace = protos::Trace::decode(bytes).unwrap();
    let mut defined = (0, 0, 0, 0);
    let mut uses = 0;
    let mut seen: HashMap<u32, HashSet<(u32, u64)>> = HashMap::new();
    for p in &trace.packet {
        let seq = p.trusted_packet_sequence_id.unwrap_or(0);
        if p.sequence_flags.unwrap_or(0) & 1 != 0 {
            seen.remove(&seq);
        }
        let seen = seen.entry(seq).or_default();
        let mut once = |table: u32, iid: Option<u64>| {
            assert!(seen.insert((table, iid.unwrap())), "defined twice");
        };
        if let Some(d) = &p.interned_data {
            defined.0 += d.function_names.len();
            defined.1 += d.source_paths.len();
            defined.2 += d.frames.len();
            defined.3 += d.callstacks.len();
            d.function_names.iter().for_each(|e| once(5, e.iid));
            d.frames.iter().for_each(|e| once(6, e.iid));
            d.callstacks.iter().for_each(|e| once(7, e.iid));
            d.source_paths.iter().for_each(|e| once(18, e.iid));
        }
        if let Some(e) = &p.track_event {
            assert!(e.callstack.is_none(), "written interned, never inline");
            uses += usize::from(e.callstack_iid.is_some());
        }
    }
    (defined, uses)
}

#[test]
fn callstacks_on_every_kind_of_event_resolve_to_their_frames() {
    let traces = on_every_writer!(everywhere);
    let got = stacks(&traces.decoded[0]);
    let of = |name: &str| -> Vec<Vec<Frame>> {
        got.iter()
            .filter(|(n, _)| n == name)
            .map(|(_, c)| c.clone())
            .collect()
    };
    let f = |fs: &[StackFrame]| fs.iter().copied().map(frame).collect::<Vec<_>>();
    let requests: Vec<_> = (0..8)
        .map(|i| match i % 2 {
            0 => f(&[MAIN, SERVE]),
            _ => f(&[MAIN, SERVE_LATER]),
        })
        .collect();
    assert_eq!(of("request"), requests);
    assert_eq!(of("parse"), vec![f(&[MAIN, SERVE, PARSE]); 8]);
    assert_eq!(of("alloc"), vec![f(&[MAIN, SERVE, PARSE, ALLOC]); 8]);
    assert_eq!(of("read"), vec![f(&[SERVE]); 8]);
    assert_eq!(of("seek"), vec![f(&[MAIN, SERVE, PARSE]); 8]);
    assert_eq!(of("job"), vec![f(&[MAIN, SERVE]); 8]);
    assert_eq!(of("mark"), vec![f(&[ALLOC]); 8]);
    assert_eq!(of("tick"), vec![f(&[MAIN, SERVE]); 8]);
    assert_eq!(of("lonely"), [f(&[StackFrame::new("f", "g.rs", 1)])]);

    // Default mode: one sequence, each entry defined once. Functions main,
    // serve, parse, alloc, f; paths main.rs, serve.rs, g.rs; frames MAIN,
    // SERVE, SERVE_LATER, PARSE, ALLOC, f; seven distinct stacks.
    let (defined, uses) = definitions(&traces.bytes[0]);
    assert_eq!(defined, (5, 3, 6, 7));
    assert_eq!(uses, 8 * 8 + 1);
    // Compact mode: busy tracks define what they use on their sequences,
    // the same entries at most once per sequence.
    let (defined, uses) = definitions(&traces.bytes[1]);
    assert_eq!(uses, 8 * 8 + 1);
    assert!(defined.3 > 7 && defined.3 <= 7 * 4, "{defined:?}");

    for (bytes, t) in traces.bytes.iter().zip(&traces.decoded) {
        let want = as_rows(&stacks(t));
        assert_eq!(want.len(), 8 * 8 + 1);
        if let Some(rows) = common::tp::clean_query(bytes, STACKS_SQL) {
            assert_eq!(rows, want);
        }
    }
}

/// Many distinct stacks under a small cap on the tables: the callstack
/// tables empty with the strings' at each new generation, and every
/// sequence defines its entries again there.
fn generations<W: TraceWriter>(w: &mut W) {
    let p = w.process("p", Some(10), "svc", &[]).unwrap();
    let t = w.thread(p, "t", Some(11), "main").unwrap();
    let u = w.thread(p, "u", Some(12), "worker").unwrap();
    let names: Vec<String> = (0..40).map(|i| format!("fn{i}")).collect();
    for i in 0..200u64 {
        let k = (i % 40) as usize;
        let stack = [
            MAIN,
            StackFrame::new(&names[k], "src/lib.rs", k as u32 + 1),
            StackFrame::new(&names[(k * 7) % 40], "", 0),
        ];
        let th = if i % 3 == 0 { u } else { t };
        w.span_begin_with(th, i * 100, &Event::new("step").callstack(&stack))
            .unwrap();
        w.span_end(th, i * 100 + 50).unwrap();
    }
    w.finish().unwrap();
    assert!(
        w.interning_generations() > 3,
        "{}",
        w.interning_generations()
    );
}

#[test]
fn callstacks_are_defined_again_in_each_generation_of_interning() {
    let options = Options::new().intern_limit(30, 1 << 20);
    let traces = on_every_writer!(options, generations);
    for (bytes, t) in traces.bytes.iter().zip(&traces.decoded) {
        let (defined, uses) = definitions(bytes);
        assert_eq!(uses, 200);
        // More definitions than distinct stacks: each generation again.
        assert!(defined.3 > 40, "{defined:?}");
        let got = stacks(t);
        assert_eq!(got.len(), 200);
        for (i, (_, c)) in got.iter().enumerate() {
            let k = i % 40;
            assert_eq!(c.len(), 3);
            assert_eq!(c[1].function, format!("fn{k}"));
            assert_eq!(c[1].line, Some(k as u32 + 1));
            assert_eq!(c[2].function, format!("fn{}", (k * 7) % 40));
        }
        if let Some(rows) = common::tp::clean_query(bytes, STACKS_SQL) {
            assert_eq!(rows, as_rows(&got));
        }
    }
}

/// A callstack too deep, or with a string too long, is refused before
/// anything is written.
fn refused<W: TraceWriter>(w: &mut W) {
    let p = w.process("p", Some(10), "svc", &[]).unwrap();
    let t = w.thread(p, "t", Some(11), "main").unwrap();
    let deep = vec![MAIN; MAX_CALLSTACK_DEPTH + 1];
    let e = Event::new("x").callstack(&deep);
    assert!(matches!(
        w.span_begin_with(t, 10, &e),
        Err(Error::CallstackTooDeep(n)) if n == MAX_CALLSTACK_DEPTH + 1
    ));
    assert!(matches!(
        w.instant(p, 10, &e),
        Err(Error::CallstackTooDeep(_))
    ));
    let long = "f".repeat(MAX_STRING_LEN + 1);
    for f in [
        StackFrame::new(&long, "", 0),
        StackFrame::new("f", &long, 1),
    ] {
        let e = Event::new("x").callstack(std::slice::from_ref(&f));
        assert!(matches!(
            w.instant(t, 10, &e),
            Err(Error::StringTooLong(n)) if n == MAX_STRING_LEN + 1
        ));
    }
    // As deep as allowed is accepted.
    let deepest = vec![MAIN; MAX_CALLSTACK_DEPTH];
    w.instant(t, 20, &Event::new("deepest").callstack(&deepest))
        .unwrap();
    w.finish().unwrap();
}

fn deepest_alone<W: TraceWriter>(w: &mut W) {
    let p = w.process("p", Some(10), "svc", &[]).unwrap();
    let t = w.thread(p, "t", Some(11), "main").unwrap();
    let deepest = vec![MAIN; MAX_CALLSTACK_DEPTH];
    w.instant(t, 20, &Event::new("deepest").callstack(&deepest))
        .unwrap();
    w.finish().unwrap();
}

#[test]
fn callstacks_too_deep_or_too_long_are_refused_and_write_nothing() {
    let traces = on_every_writer!(refused);
    assert_eq!(traces.bytes, on_every_writer!(deepest_alone).bytes);
    let got = stacks(&traces.decoded[0]);
    assert_eq!(got[0].1.len(), MAX_CALLSTACK_DEPTH);
    // One frame repeated: the trace processor's callsites chain it.
    let sql = "select max(depth) + 1 from stack_profile_callsite;";
    if let Some(rows) = common::tp::clean_query(&traces.bytes[0], sql) {
        assert_eq!(rows, [MAX_CALLSTACK_DEPTH.to_string()]);
    }
}

/// Writers of one trace (partitions) intern on their own sequences.
#[test]
fn partitions_of_one_trace_each_define_their_callstacks() {
    let mut bytes = Vec::new();
    for part in 0..3u16 {
        let mut w = Writer::with_options(Options::new().partition(part));
        let p = w.process("p", Some(10), "svc", &[]).unwrap();
        let t = w
            .thread(p, &format!("t{part}"), Some(20 + i64::from(part)), "worker")
            .unwrap();
        for i in 0..4u64 {
            let ts = 100 * i + u64::from(part);
            w.instant(t, ts, &Event::new("tick").callstack(&[MAIN, SERVE]))
                .unwrap();
        }
        w.finish().unwrap();
        bytes.extend_from_slice(w.bytes());
    }
    let t = perfetto_trace_writer::inspect::decode(&bytes).unwrap();
    assert_eq!(t.problems, vec![]);
    let got = stacks(&t);
    assert_eq!(got.len(), 12);
    assert!(got.iter().all(|(_, c)| *c == [frame(MAIN), frame(SERVE)]));
    if let Some(rows) = common::tp::clean_query(&bytes, STACKS_SQL) {
        assert_eq!(rows, as_rows(&got));
    }
}

/// An event given by its key carries a callstack like one given by its
/// strings, on a thread and on a named track.
fn keyed<W: TraceWriter>(w: &mut W) {
    let p = w.process("p", Some(10), "svc", &[]).unwrap();
    let t = w.thread(p, "t", Some(11), "main").unwrap();
    let queue = w
        .track(ParentTrack::Root, "queue", &TrackOptions::default())
        .unwrap();
    let site = w.event_key("job", "work", "src/job.rs", 7).unwrap();
    for i in 0..6u64 {
        let ev = Event::from_key(site).callstack(&[MAIN, SERVE]);
        w.span_begin_with(t, 100 * i, &ev).unwrap();
        w.span_end(t, 100 * i + 50).unwrap();
        w.track_complete_span(queue, 100 * i, 100 * i + 10, &ev)
            .unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn events_given_by_key_carry_callstacks() {
    let traces = on_every_writer!(keyed);
    let got = stacks(&traces.decoded[0]);
    assert_eq!(got.len(), 12);
    for (name, c) in &got {
        assert_eq!(name, "job");
        assert_eq!(*c, [frame(MAIN), frame(SERVE)]);
    }
    for bytes in &traces.bytes {
        if let Some(rows) = common::tp::clean_query(bytes, STACKS_SQL) {
            assert_eq!(rows, as_rows(&got));
        }
    }
}
