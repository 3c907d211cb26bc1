//! Async spans with parents, as complete spans in begin order and as
//! begin/end calls: each shown once at its times, every child beneath its
//! parent (nested on the parent's track when it nests there, else on a
//! track nested under it), nothing mis-nested, and a lane with exactly as
//! many tracks as it had top-level spans in flight at once.

use std::collections::HashMap;

use perfetto_trace_writer::inspect::{self, ArgValue, Slice, Trace};
use perfetto_trace_writer::{
    Arg, AsyncLane, AsyncParent, Error, Event, Options, TraceWriter, Value, Writer,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Node {
    begin: u64,
    end: u64,
    parent: Option<usize>,
    /// Which of two lanes names it (children may name a parent of the other).
    lane: usize,
}

/// A random forest in begin order: nesting, overlapping siblings, children
/// outliving their parent, ties of begin and end, zero-length spans.
fn forest() -> impl Strategy<Value = Vec<Node>> {
    prop::collection::vec(
        (0u64..40, 0u64..30, any::<u8>(), any::<bool>(), 0usize..2),
        1..60,
    )
    .prop_map(|raw| {
        let mut nodes: Vec<Node> = Vec::new();
        let mut t = 0;
        for (step, len, pick, detached, lane) in raw {
            t += step % 7 * 10;
            let open: Vec<usize> = (0..nodes.len())
                .filter(|&i| nodes[i].begin <= t && nodes[i].end >= t)
                .collect();
            let parent =
                (pick % 3 != 0 && !open.is_empty()).then(|| open[pick as usize % open.len()]);
            let end = match parent {
                // Inside the parent unless detached.
                Some(p) if !detached => t + (len * 10).min(nodes[p].end - t),
                _ => t + len * 10,
            };
            nodes.push(Node {
                begin: t,
                end,
                parent,
                lane,
            });
        }
        nodes
    })
}

fn arg_id(s: &Slice) -> usize {
    match s.args.iter().find(|(k, _)| k == "node") {
        Some((_, ArgValue::Uint(i))) => *i as usize,
        other => panic!("no node arg: {other:?}"),
    }
}

fn lanes(w: &mut Writer) -> (u64, [AsyncLane; 2]) {
    let p = w.process("p", Some(1), "p", &[]).unwrap();
    let t = w.thread(p, "t", Some(2), "t").unwrap();
    let a = w.async_tree_lane(t, "a").unwrap();
    let b = w.async_tree_lane(t, "b").unwrap();
    (t.uuid().get(), [a, b])
}

/// Calls `f` with node `i`'s event: named for it, its index an argument
/// (which `check_tree` reads back).
fn node_event<R>(i: usize, f: impl FnOnce(&Event<'_>) -> R) -> R {
    let name = format!("n{i}");
    let args = [Arg::new("node", Value::Uint(i as u64))];
    f(&Event::new(&name).args(&args))
}

/// Makes `calls` (time, an end or not, node) in their order: an end ends
/// the node's span; `begin` writes a begin, given the node's index, its
/// lane and the time.
fn replay_calls(
    w: &mut Writer,
    nodes: &[Node],
    lanes: [AsyncLane; 2],
    calls: Vec<(u64, bool, usize)>,
    mut begin: impl FnMut(&mut Writer, usize, AsyncLane, u64) -> Result<(), Error>,
) {
    for (t, end, i) in calls {
        let lane = lanes[nodes[i].lane];
        match end {
            true => w.async_span_end(lane, i as u64, t),
            false => begin(w, i, lane, t),
        }
        .unwrap();
    }
}

/// Finishes `w` (no span left open), reads its trace back and checks the
/// tree of `nodes` in it: the trace and the slices by node.
fn finish_and_check(w: &mut Writer, nodes: &[Node], thread: u64) -> (Trace, Vec<Slice>) {
    assert!(w.finish().unwrap().is_empty(), "spans left open");
    let trace = inspect::decode(w.bytes()).unwrap();
    let shown = check_tree(nodes, &trace, thread);
    (trace, shown)
}

/// Each node shown once, at its times, beneath its parent or its thread;
/// returns the slices by node.
fn check_tree(nodes: &[Node], trace: &Trace, thread: u64) -> Vec<Slice> {
    assert_eq!(trace.problems, vec![]);
    let mut by_node: HashMap<usize, Vec<&Slice>> = HashMap::new();
    for s in &trace.slices {
        by_node.entry(arg_id(s)).or_default().push(s);
    }
    let mut shown = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let got = by_node.remove(&i).unwrap_or_default();
        assert_eq!(got.len(), 1, "node {i} {n:?} shown once: {got:?}");
        let s = got[0];
        assert_eq!((s.ts, s.dur), (n.begin, Some(n.end - n.begin)), "node {i}");
        assert_eq!(s.name, format!("n{i}"));
        shown.push(s.clone());
    }
    assert!(by_node.is_empty());
    for (i, n) in nodes.iter().enumerate() {
        let s = &shown[i];
        let under = trace.tracks[&s.track].parent;
        match n.parent {
            None => {
                assert_eq!(s.depth, 0, "node {i}: top-level spans never nest");
                assert_eq!(under, Some(thread), "node {i} beneath its thread");
            }
            Some(p) => {
                let ps = &shown[p];
                if s.track == ps.track {
                    // Nested on the parent's track: within it, one deeper.
                    assert_eq!(s.depth, ps.depth + 1, "node {i} nests under {p}");
                    assert!(n.begin >= nodes[p].begin && n.end <= nodes[p].end);
                } else {
                    assert_eq!(s.depth, 0, "node {i} alone on its track");
                    assert_eq!(under, Some(ps.track), "node {i} beneath {p}'s track");
                }
            }
        }
    }
    shown
}

/// The most top-level spans of a lane in flight at once, in begin order: a
/// span and those begun before it that end after its begin (one ending at
/// `t` frees its track for one beginning at `t`).
fn max_in_flight(nodes: &[Node], lane: usize) -> usize {
    let top: Vec<&Node> = nodes
        .iter()
        .filter(|n| n.parent.is_none() && n.lane == lane)
        .collect();
    (0..top.len())
        .map(|a| 1 + top[..a].iter().filter(|b| b.end > top[a].begin).count())
        .max()
        .unwrap_or(0)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn complete_async_spans_show_the_tree(
        nodes in forest(),
        compact in any::<bool>(),
        reuse in any::<bool>(),
    ) {
        let mut w = Writer::with_options(Options::new().compact(compact));
        let (thread, lanes) = lanes(&mut w);
        // Ids: the node's index, or (reuse) the smallest id of its lane
        // whose every earlier holder ended before this begin.
        let mut ids: Vec<u64> = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            let id = if reuse {
                (0..).find(|&id| (0..i).all(|j| {
                    ids[j] != id || nodes[j].lane != n.lane || nodes[j].end < n.begin
                })).unwrap()
            } else {
                i as u64
            };
            ids.push(id);
            let parent = n.parent.map(|p| AsyncParent::new(lanes[nodes[p].lane], ids[p]));
            node_event(i, |ev| w.async_complete_span(lanes[n.lane], id, n.begin, n.end, parent, ev))
                .unwrap();
        }
        let (trace, shown) = finish_and_check(&mut w, &nodes, thread);
        // First free track: exactly as many tracks as spans in flight.
        for (l, lane) in ["a", "b"].iter().enumerate() {
            let tracks = trace.tracks.values()
                .filter(|t| t.parent == Some(thread) && t.name.as_deref() == Some(lane))
                .count();
            prop_assert_eq!(tracks, max_in_flight(&nodes, l), "lane {}", lane);
        }
        // A child inside its parent nests on the parent's track unless a
        // span placed there earlier, not an ancestor, is still open.
        let ancestors = |mut k: usize| {
            let mut all = vec![k];
            while let Some(p) = nodes[k].parent {
                all.push(p);
                k = p;
            }
            all
        };
        for (i, n) in nodes.iter().enumerate() {
            let Some(p) = n.parent else { continue };
            let line = ancestors(p);
            let blocked = (0..i).any(|j| {
                let m = &nodes[j];
                !line.contains(&j) && shown[j].track == shown[p].track
                    && m.begin <= n.begin && m.end > n.begin
            });
            // At the parent's very end, a span given in between (at that
            // time) has written the parent's end already.
            let closed = n.begin == nodes[p].end
                && (p + 1..i).any(|j| nodes[j].begin >= nodes[p].end);
            if n.end <= nodes[p].end && !blocked && !closed {
                prop_assert_eq!(shown[i].track, shown[p].track, "node {} nests in {}", i, p);
            }
        }
    }

    #[test]
    fn streaming_children_go_beneath_their_parent(nodes in forest(), compact in any::<bool>()) {
        let mut w = Writer::with_options(Options::new().compact(compact));
        let (thread, lanes) = lanes(&mut w);
        // Begins and ends in time order (ends first at a tie: a parent
        // ending at t still takes a child beginning at t only if the child
        // begins first, so ends at t come after begins at t).
        let mut calls: Vec<(u64, bool, usize)> = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            calls.push((n.begin, false, i));
            calls.push((n.end, true, i));
        }
        calls.sort_by_key(|&(t, end, i)| (t, end, if end { usize::MAX - i } else { i }));
        replay_calls(&mut w, &nodes, lanes, calls, |w, i, lane, t| {
            node_event(i, |ev| match nodes[i].parent {
                Some(p) => {
                    let parent = AsyncParent::new(lanes[nodes[p].lane], p as u64);
                    w.async_child_begin(lane, i as u64, parent, t, ev)
                }
                None => w.async_span_begin_with(lane, i as u64, t, ev),
            })
        });
        let (_, shown) = finish_and_check(&mut w, &nodes, thread);
        for (i, n) in nodes.iter().enumerate() {
            if let Some(p) = n.parent {
                prop_assert_ne!(shown[i].track, shown[p].track, "a begun child has a track of its own");
            }
        }
    }

    /// Complete and begun spans in one lane, sharing its tracks: children of
    /// either kind beneath parents of either kind.
    #[test]
    fn complete_and_begun_spans_share_lanes(
        nodes in forest(),
        kinds in prop::collection::vec(any::<bool>(), 60),
        compact in any::<bool>(),
    ) {
        let mut w = Writer::with_options(Options::new().compact(compact));
        let (thread, lanes) = lanes(&mut w);
        let complete = |i: usize| kinds[i];
        // Calls in time order: begins (complete spans whole) before ends.
        let mut calls: Vec<(u64, bool, usize)> = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            calls.push((n.begin, false, i));
            if !complete(i) {
                calls.push((n.end, true, i));
            }
        }
        calls.sort_by_key(|&(t, end, i)| (t, end, i));
        replay_calls(&mut w, &nodes, lanes, calls, |w, i, lane, t| {
            let n = &nodes[i];
            let parent = n.parent.map(|p| AsyncParent::new(lanes[nodes[p].lane], p as u64));
            node_event(i, |ev| match (complete(i), parent) {
                (true, parent) => w.async_complete_span(lane, i as u64, n.begin, n.end, parent, ev),
                (false, Some(parent)) => w.async_child_begin(lane, i as u64, parent, t, ev),
                (false, None) => w.async_span_begin_with(lane, i as u64, t, ev),
            })
        });
        let (_, shown) = finish_and_check(&mut w, &nodes, thread);
        for (i, n) in nodes.iter().enumerate() {
            if let Some(p) = n.parent {
                if shown[i].track == shown[p].track {
                    prop_assert!(complete(i) && complete(p), "only complete spans nest");
                }
            }
        }
    }
}

#[test]
fn misuse_is_refused_and_writes_nothing() {
    let mut w = Writer::new();
    let (_, [a, b]) = lanes(&mut w);
    w.async_complete_span(a, 1, 100, 200, None, &Event::new("p"))
        .unwrap();
    let before = w.bytes().to_vec();
    let missing = AsyncParent::new(b, 1);
    let e = w
        .async_complete_span(a, 2, 120, 130, Some(missing), &Event::new("c"))
        .unwrap_err();
    assert!(matches!(e, Error::ParentNotOpen { span_id: 1, .. }), "{e}");
    let ended = AsyncParent::new(a, 1);
    let e = w
        .async_complete_span(a, 3, 201, 230, Some(ended), &Event::new("c"))
        .unwrap_err();
    assert!(matches!(e, Error::ParentNotOpen { .. }), "{e}");
    let e = w
        .async_complete_span(a, 1, 150, 160, None, &Event::new("again"))
        .unwrap_err();
    assert!(matches!(e, Error::AsyncSpanAlreadyOpen { span_id: 1, .. }));
    let e = w
        .async_complete_span(a, 4, 150, 140, None, &Event::new("x"))
        .unwrap_err();
    assert!(matches!(e, Error::EndBeforeBegin { .. }));
    // A complete span is not ended by a call.
    let e = w.async_span_end(a, 1, 300).unwrap_err();
    assert!(matches!(e, Error::AsyncSpanNotOpen { .. }));
    let e = w
        .async_child_begin(a, 5, AsyncParent::new(a, 9), 150, &Event::new("x"))
        .unwrap_err();
    assert!(matches!(e, Error::ParentNotOpen { span_id: 9, .. }));
    assert_eq!(w.bytes(), &before[..], "refused calls write nothing");
    // A child at its parent's very end still nests; the id is free after.
    w.async_complete_span(a, 6, 200, 200, Some(ended), &Event::new("tail"))
        .unwrap();
    w.async_complete_span(a, 1, 200, 210, None, &Event::new("reused"))
        .unwrap();
    // A lane is a tree lane or a merged lane, not both.
    let p = w.process("p", Some(1), "p", &[]).unwrap();
    let t = w.thread(p, "t", Some(2), "t").unwrap();
    assert!(matches!(w.async_lane(t, "a"), Err(Error::Redefined(_))));
    w.finish().unwrap();
    let trace = inspect::decode(w.bytes()).unwrap();
    assert_eq!(trace.problems, vec![]);
    let tail = trace.slices.iter().find(|s| s.name == "tail").unwrap();
    let parent = trace.slices.iter().find(|s| s.name == "p").unwrap();
    assert_eq!((tail.track, tail.depth), (parent.track, 1));
}

#[test]
fn end_arguments_join_the_slice() {
    let mut w = Writer::new();
    let (_, [a, _]) = lanes(&mut w);
    let args = [Arg::new("k", Value::Int(1))];
    w.async_span_begin_with(a, 1, 10, &Event::new("s").args(&args))
        .unwrap();
    w.async_span_end_with(a, 1, 20, &[Arg::new("clipped", Value::Str("end"))])
        .unwrap();
    w.finish().unwrap();
    let trace = inspect::decode(w.bytes()).unwrap();
    assert_eq!(trace.problems, vec![]);
    let s = &trace.slices[0];
    assert_eq!((s.name.as_str(), s.ts, s.dur), ("s", 10, Some(10)));
    assert_eq!(
        s.args,
        vec![
            ("k".to_owned(), ArgValue::Int(1)),
            ("clipped".to_owned(), ArgValue::Str("end".into()))
        ]
    );
}

/// An id reused over and over by complete spans, some zero-length at the
/// end of the one before: the latest always names the span in flight.
#[test]
fn reused_ids_always_name_the_latest_span() {
    let mut w = Writer::new();
    let (_, [a, b]) = lanes(&mut w);
    let spans = [(0, 10), (10, 10), (10, 10), (15, 30), (40, 60)];
    for (k, &(begin, end)) in spans.iter().enumerate() {
        w.async_complete_span(a, 5, begin, end, None, &Event::new("x"))
            .unwrap();
        // Another lane in between, at the same time (calls in begin order).
        w.async_complete_span(b, k as u64, begin, begin + 2, None, &Event::new("y"))
            .unwrap();
        let child = AsyncParent::new(a, 5);
        w.async_complete_span(b, 100 + k as u64, end, end, Some(child), &Event::new("c"))
            .unwrap();
    }
    w.finish().unwrap();
    let trace = inspect::decode(w.bytes()).unwrap();
    assert_eq!(trace.problems, vec![]);
    let xs: Vec<_> = trace.slices.iter().filter(|s| s.name == "x").collect();
    let cs: Vec<_> = trace.slices.iter().filter(|s| s.name == "c").collect();
    assert_eq!((xs.len(), cs.len()), (5, 5));
    for c in cs {
        // Beneath one of the x spans: nested on its track or under it.
        assert!(xs
            .iter()
            .any(|x| x.track == c.track || trace.tracks[&c.track].parent == Some(x.track)));
    }
}

/// A span whose id was forgotten while its end waited on its track, then
/// taken by a span on another track: writing the first one's end later
/// leaves the new one in flight.
#[test]
fn a_late_end_does_not_forget_a_reused_id() {
    let mut w = Writer::new();
    let (_, [a, b]) = lanes(&mut w);
    let ev = Event::new("s");
    w.async_complete_span(b, 1, 0, 100, None, &ev).unwrap();
    w.async_complete_span(a, 5, 0, 10, None, &ev).unwrap();
    w.async_complete_span(a, 5, 10, 10, None, &ev).unwrap();
    w.async_complete_span(b, 2, 11, 12, None, &ev).unwrap();
    let p = AsyncParent::new(b, 1);
    w.async_complete_span(a, 5, 20, 50, Some(p), &ev).unwrap();
    // Lane a's first track, where the zero-length span's end waits.
    w.async_complete_span(a, 7, 30, 31, None, &ev).unwrap();
    let reused = AsyncParent::new(a, 5);
    w.async_complete_span(a, 8, 40, 45, Some(reused), &ev)
        .unwrap();
    w.finish().unwrap();
    assert_eq!(inspect::decode(w.bytes()).unwrap().problems, vec![]);
}
