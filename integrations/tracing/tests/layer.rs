//! What the layer writes, read back the way the trace processor reads it.

mod common;

use std::time::Duration;

use common::SharedBuf;
use perfetto_trace_writer::inspect::{self, ArgValue, TrackKind};
use perfetto_tracing::{PerfettoLayer, View};
use tracing::{info, info_span, Dispatch, Instrument as _};
use tracing_subscriber::layer::SubscriberExt;

fn slices<'a>(t: &'a inspect::Trace, name: &str) -> Vec<&'a inspect::Slice> {
    t.slices.iter().filter(|s| s.name == name).collect()
}

#[test]
fn spans_and_events_on_threads_and_span_tracks() {
    let bytes = common::record(View::Both, |_| {
        let outer = info_span!("outer", user = "ana", attempt = 3u64);
        let _o = outer.enter();
        {
            let _i = info_span!("inner", ratio = 0.5, ok = true, delta = -4i64).entered();
            info!(rows = 12u64, table = "users", cause = ?Some(1), "loaded {} rows", 12);
        }
    });
    let t = common::decode(&bytes);
    // Thread slices: outer encloses inner encloses the event.
    let outer = slices(&t, "outer");
    let inner = slices(&t, "inner");
    assert_eq!(outer.len(), 2, "a lifetime slice and a thread slice");
    let thread_outer = outer
        .iter()
        .find(|s| matches!(t.tracks[&s.track].kind, TrackKind::Thread { .. }))
        .unwrap();
    let thread_inner = inner
        .iter()
        .find(|s| s.track == thread_outer.track)
        .unwrap();
    assert_eq!(thread_inner.depth, thread_outer.depth + 1);
    let ev = slices(&t, "loaded 12 rows");
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].track, thread_outer.track);
    assert_eq!(ev[0].depth, thread_inner.depth + 1);
    assert_eq!(ev[0].categories, vec!["info,layer".to_owned()]);
    assert!(ev[0]
        .source
        .as_ref()
        .is_some_and(|(f, _)| f.ends_with("layer.rs")));
    let arg = |s: &inspect::Slice, n: &str| {
        s.args
            .iter()
            .find(|(k, _)| k.ends_with(n))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(arg(ev[0], "rows"), Some(ArgValue::Uint(12)));
    assert_eq!(arg(ev[0], "table"), Some(ArgValue::Str("users".into())));
    assert_eq!(arg(ev[0], "cause"), Some(ArgValue::Str("Some(1)".into())));
    // Span tracks: inner's track beneath outer's, beneath the thread.
    let life_outer = outer
        .iter()
        .find(|s| s.track != thread_outer.track)
        .unwrap();
    let life_inner = inner
        .iter()
        .find(|s| s.track != thread_outer.track)
        .unwrap();
    assert_eq!(t.tracks[&life_outer.track].parent, Some(thread_outer.track));
    assert_eq!(t.tracks[&life_inner.track].parent, Some(life_outer.track));
    assert_eq!(arg(life_outer, "user"), Some(ArgValue::Str("ana".into())));
    assert_eq!(arg(life_outer, "attempt"), Some(ArgValue::Uint(3)));
    assert_eq!(arg(life_inner, "ratio"), Some(ArgValue::Double(0.5)));
    assert_eq!(arg(life_inner, "ok"), Some(ArgValue::Bool(true)));
    assert_eq!(arg(life_inner, "delta"), Some(ArgValue::Int(-4)));
    assert!(life_outer.dur.unwrap() >= life_inner.dur.unwrap());
    common::assert_clean(&bytes);
}

#[test]
fn a_span_entered_on_several_threads_stays_one_span() {
    let bytes = common::record(View::Both, |dispatch| {
        let span = info_span!("moving");
        for _ in 0..3 {
            let s = span.clone();
            common::on_thread(dispatch, move || {
                let _e = s.enter();
                info!("polled");
            });
        }
        let _e = span.enter();
    });
    let t = common::decode(&bytes);
    let moving = slices(&t, "moving");
    let lifetime: Vec<_> = moving
        .iter()
        .filter(|s| matches!(t.tracks[&s.track].kind, TrackKind::Other))
        .collect();
    assert_eq!(lifetime.len(), 1, "one lifetime slice");
    let threads: std::collections::BTreeSet<_> = moving
        .iter()
        .filter(|s| s.track != lifetime[0].track)
        .map(|s| s.track)
        .collect();
    assert_eq!(threads.len(), 4, "entered on four threads");
    assert_eq!(slices(&t, "polled").len(), 3);
    common::assert_clean(&bytes);
}

#[test]
fn overlapping_async_tasks_never_mis_nest() {
    let bytes = common::record(View::Both, |dispatch| {
        let rt = common::runtime(dispatch);
        rt.block_on(async {
            let mut tasks = Vec::new();
            for i in 0..20u64 {
                tasks.push(tokio::spawn(
                    async move {
                        tokio::time::sleep(Duration::from_millis(1 + i % 3)).await;
                        info!(i, "step");
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    .instrument(info_span!("task", i)),
                ));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
    });
    let t = common::decode(&bytes);
    let lifetimes: Vec<_> = slices(&t, "task")
        .into_iter()
        .filter(|s| matches!(t.tracks[&s.track].kind, TrackKind::Other))
        .collect();
    assert_eq!(lifetimes.len(), 20);
    let tracks: std::collections::BTreeSet<_> = lifetimes.iter().map(|s| s.track).collect();
    assert_eq!(tracks.len(), 20, "each task on its own track");
    // Ends come from other threads' sequences, which may precede the
    // begin in the file: the trace processor, which sorts first, decides.
    let sql = "select count(*), count(distinct s.track_id), sum(s.depth = 0 and s.dur >= 0) \
               from slice s join track t on s.track_id = t.id \
               where s.name = 'task' and t.name = 'task';";
    if let Some(rows) = common::query(&bytes, sql) {
        assert_eq!(rows[1], "20,20,20", "{rows:?}");
    }
    let sql = "select count(*) from slice where name = 'step' and depth > 0;";
    if let Some(rows) = common::query(&bytes, sql) {
        assert_eq!(
            rows[1], "20",
            "every event inside its task's slice on a thread"
        );
    }
    common::assert_clean(&bytes);
}

/// The flows as (from, to) slice names.
fn flow_edges(t: &inspect::Trace) -> Vec<(&str, &str)> {
    let name = |i: usize| t.slices[i].name.as_str();
    let mut edges: Vec<_> = t.flows.iter().map(|f| (name(f.from), name(f.to))).collect();
    edges.sort();
    edges
}

#[test]
fn flows_link_what_the_hierarchy_does_not_show() {
    for view in [View::Both, View::Threads] {
        let bytes = common::record(view, |dispatch| {
            let parent = info_span!("parent");
            let _p = parent.enter();
            // Created inside its parent, first run on another thread.
            let child = info_span!("child");
            common::on_thread(dispatch, move || drop(child.enter()));
            // Created and entered inside its parent: the nesting shows it.
            drop(info_span!("nested").entered());
            let in_scope = info_span!("in_scope", n = 1u64);
            in_scope.in_scope(|| info!("inside"));
            // Created and dropped unentered: nothing to link.
            drop(info_span!("unused"));
            // Created, then something else happened, then closed unentered:
            // the flow ends where it closes.
            let idle = info_span!("idle");
            info!("meanwhile");
            drop(idle);
            // Created here, entered after its parent's slice ended.
            let late = info_span!("late");
            drop(_p);
            drop(late.enter());
            let later = info_span!("later");
            later.follows_from(&parent);
            drop(later.enter());
        });
        let t = common::decode(&bytes);
        let edges = flow_edges(&t);
        assert!(edges.contains(&("child", "child")), "{view:?}: {edges:?}");
        assert!(edges.contains(&("idle", "idle")), "{view:?}: {edges:?}");
        assert!(edges.contains(&("late", "late")), "{view:?}: {edges:?}");
        let follows = match view {
            View::Threads => ("follows_from", "later"),
            _ => ("follows_from", "follows_from"),
        };
        assert!(edges.contains(&follows), "{view:?}: {edges:?}");
        for name in ["nested", "in_scope", "unused"] {
            assert!(
                !edges.iter().any(|e| e.0 == name || e.1 == name),
                "{view:?}: {name} is linked: {edges:?}"
            );
            // Nor is there an instant where it was created.
            assert!(
                slices(&t, name).iter().all(|s| s.dur != Some(0)),
                "{view:?}: {name}"
            );
        }
        assert_eq!(common::assert_flows_whole(&bytes), edges.len());
        common::assert_clean(&bytes);
    }
}

#[test]
fn spawned_tasks_link_to_where_they_were_spawned_and_every_flow_is_whole() {
    for view in [View::Both, View::Threads, View::SpanTracks] {
        let bytes = common::record(view, |dispatch| {
            let rt = common::runtime(dispatch);
            rt.block_on(
                async {
                    let mut tasks = Vec::new();
                    for i in 0..16u64 {
                        let task = async move {
                            // Awaited in the task's own poll: nested.
                            async { info!(i, "step") }
                                .instrument(info_span!("inner", i))
                                .await;
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        };
                        tasks.push(tokio::spawn(task.instrument(info_span!("task", i))));
                    }
                    for t in tasks {
                        t.await.unwrap();
                    }
                }
                .instrument(info_span!("main")),
            );
        });
        let flows = common::assert_flows_whole(&bytes);
        let t = common::decode(&bytes);
        let edges = flow_edges(&t);
        match view {
            // Span tracks show parents by their tracks: no flows.
            View::SpanTracks => assert_eq!(flows, 0),
            _ => {
                let tasks = edges.iter().filter(|e| **e == ("task", "task")).count();
                assert_eq!(tasks, 16, "{view:?}: {edges:?}");
                assert!(!edges.iter().any(|e| e.1 == "inner"), "{view:?}: {edges:?}");
            }
        }
        common::assert_clean(&bytes);
    }
}

#[test]
fn in_the_thread_view_a_spans_fields_are_on_its_first_slice() {
    let bytes = common::record(View::Threads, |dispatch| {
        let outer = info_span!("outer", user = "ana", attempt = 3u64);
        drop(outer.enter());
        drop(outer.enter());
        // First entered on another thread.
        let moved = info_span!("moved", ratio = 0.5);
        common::on_thread(dispatch, move || drop(moved.enter()));
        let late = info_span!("recorded", a = 1u64, b = tracing::field::Empty);
        let _l = late.enter();
        late.record("b", 2u64);
    });
    let t = common::decode(&bytes);
    let arg = |s: &inspect::Slice, n: &str| {
        s.args
            .iter()
            .find(|(k, _)| k == n || k.ends_with(&format!(".{n}")))
            .map(|(_, v)| v.clone())
    };
    let outer = slices(&t, "outer");
    assert_eq!(outer.len(), 2, "two slices, no instant: {outer:?}");
    assert_eq!(arg(outer[0], "user"), Some(ArgValue::Str("ana".into())));
    assert_eq!(arg(outer[0], "attempt"), Some(ArgValue::Uint(3)));
    assert!(outer[1].args.is_empty(), "{:?}", outer[1].args);
    let moved = slices(&t, "moved");
    assert_eq!(moved.len(), 1);
    assert_eq!(arg(moved[0], "ratio"), Some(ArgValue::Double(0.5)));
    // `record` after the begin: an instant inside the slice.
    let recorded = slices(&t, "recorded");
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    assert_eq!(arg(recorded[0], "a"), Some(ArgValue::Uint(1)));
    assert_eq!(recorded[1].dur, Some(0));
    assert_eq!(recorded[1].depth, recorded[0].depth + 1);
    assert_eq!(arg(recorded[1], "b"), Some(ArgValue::Uint(2)));
    common::assert_clean(&bytes);
}

/// Thread slices with fields begin on the thread's track by uuid, the
/// others through the writer's thread: both kinds nest in each other and
/// end where they should, out-of-order exits included.
#[test]
fn thread_slices_with_and_without_fields_nest_and_end() {
    let bytes = common::record(View::Threads, |_| {
        let outer = info_span!("outer", n = 1u64);
        let o = outer.enter();
        info_span!("plain").in_scope(|| {
            info_span!("inner", n = 2u64).in_scope(|| tracing::info!("deep"));
        });
        let later = info_span!("later", n = 3u64);
        let l = later.enter();
        // Out of order: `later` ends with `outer`.
        drop(o);
        drop(l);
        info_span!("after", n = 4u64).in_scope(|| {});
    });
    let t = common::decode(&bytes);
    let one = |name: &str| {
        let s = slices(&t, name);
        assert_eq!(s.len(), 1, "{name}: {s:?}");
        s[0].clone()
    };
    let (outer, plain, inner, later, after) = (
        one("outer"),
        one("plain"),
        one("inner"),
        one("later"),
        one("after"),
    );
    let deep = one("deep");
    for s in [&plain, &inner, &later, &after, &deep] {
        assert_eq!(s.track, outer.track, "one thread track: {s:?}");
    }
    let depths: Vec<usize> = [&outer, &plain, &inner, &deep, &later, &after]
        .iter()
        .map(|s| s.depth)
        .collect();
    assert_eq!(depths, [0, 1, 2, 3, 1, 0]);
    let end = |s: &inspect::Slice| s.ts + s.dur.expect("ended");
    for s in [&plain, &inner, &later] {
        assert!(
            s.ts >= outer.ts && end(s) <= end(&outer),
            "{s:?} in {outer:?}"
        );
    }
    assert!(inner.ts >= plain.ts && end(&inner) <= end(&plain));
    // `later` ended with `outer`, and `after` began after both.
    assert_eq!(end(&later), end(&outer));
    assert!(after.ts >= end(&outer) && after.dur.is_some());
    common::assert_clean(&bytes);
}

/// In the thread view a span made inside the slice entered last on its
/// thread and entered there is linked by the nesting alone, even when the
/// registry's current span is one a per-layer filter hides (between them);
/// one first run elsewhere still gets its flow, whole.
#[test]
fn in_the_thread_view_a_span_made_under_a_filtered_one_nests_without_a_flow() {
    use tracing_subscriber::Layer as _;
    let compose = |layer: PerfettoLayer| {
        let filtered = layer.with_filter(tracing_subscriber::filter::LevelFilter::INFO);
        // Another layer that wants every span: the registry then has `hidden`.
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(std::io::sink)
            .with_ansi(false);
        tracing_subscriber::registry().with(fmt).with(filtered)
    };
    let settings = PerfettoLayer::builder().view(View::Threads);
    let bytes = common::record_composed(settings, compose, |dispatch| {
        let _outer = info_span!("outer").entered();
        tracing::debug_span!("hidden").in_scope(|| {
            info_span!("inner").in_scope(|| {});
            let moved = info_span!("moved");
            common::on_thread(dispatch, move || drop(moved.enter()));
        });
    });
    let t = common::decode(&bytes);
    let inner = slices(&t, "inner");
    assert_eq!(inner.len(), 1, "no instant where it was made: {inner:?}");
    assert_eq!(inner[0].depth, 1);
    assert_eq!(flow_edges(&t), [("moved", "moved")]);
    assert_eq!(common::assert_flows_whole(&bytes), 1);
    assert!(slices(&t, "hidden").is_empty());
    common::assert_clean(&bytes);
}

#[test]
fn the_track_field_puts_a_span_on_a_named_track() {
    let bytes = common::record(View::Threads, |_| {
        drop(info_span!("query", perfetto.track = "db", table = "users").entered());
        drop(info_span!("query", perfetto.track = "db").entered());
        drop(info_span!("plain").entered());
    });
    let t = common::decode(&bytes);
    let db: Vec<_> = t
        .tracks
        .iter()
        .filter(|(_, tr)| tr.name.as_deref() == Some("db"))
        .collect();
    assert_eq!(db.len(), 1, "one named track");
    let db = *db[0].0;
    let on_db: Vec<_> = t
        .slices
        .iter()
        .filter(|s| t.tracks[&s.track].parent == Some(db))
        .collect();
    assert_eq!(
        on_db.len(),
        2,
        "each query on a track of its own beneath it"
    );
    assert_ne!(on_db[0].track, on_db[1].track);
    assert!(on_db[0]
        .args
        .iter()
        .any(|(k, v)| k.ends_with("table") && *v == ArgValue::Str("users".into())));
    assert!(
        !on_db[0].args.iter().any(|(k, _)| k.contains("perfetto")),
        "the field itself is no arg"
    );
    // Thread view: no span has a track of its own but those that ask.
    assert_eq!(
        t.tracks
            .values()
            .filter(|tr| tr.name.as_deref() == Some("plain"))
            .count(),
        0
    );
    common::assert_clean(&bytes);
}

#[test]
fn the_real_process_and_thread_ids_and_names() {
    let mut tid = 0;
    let bytes = common::record(View::Threads, |dispatch| {
        let named = std::thread::Builder::new().name("named-worker".into());
        tid = common::spawn_on(named, dispatch, || {
            info!("hello");
            unsafe { libc::gettid() }
        })
        .join()
        .unwrap();
    });
    let t = common::decode(&bytes);
    let pid = std::process::id() as i32;
    assert!(t.tracks.values().any(|tr| tr.kind
        == TrackKind::Thread {
            pid,
            tid: i64::from(tid)
        }
        && tr.name.as_deref() == Some("named-worker")));
    let sql = "select p.pid, p.name, t.tid, t.name from thread t join process p using (upid) where t.name = 'named-worker';";
    if let Some(rows) = common::query(&bytes, sql) {
        let exe = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert_eq!(
            rows[1],
            format!("{pid},\"{}\",{tid},\"named-worker\"", exe.trim())
        );
    }
}

#[test]
fn a_disabled_layer_records_nothing() {
    let sink = SharedBuf::default();
    let (layer, guard) = PerfettoLayer::new(sink.clone()).unwrap();
    guard.set_enabled(false);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let _s = info_span!("hidden").entered();
        info!("hidden");
    });
    guard.finish().unwrap();
    assert!(sink.bytes().is_empty());
}

#[test]
fn a_guard_dropped_while_workers_idle_still_collects_their_events() {
    // As in `#[tokio::main] async fn main() { let _guard = ...; }`: the
    // guard goes before the runtime, its workers alive and parked.
    let sink = SharedBuf::default();
    let (layer, guard) = PerfettoLayer::builder()
        .flush_interval(None)
        .build(sink.clone())
        .unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let rt = common::runtime(&dispatch);
    rt.block_on(async move {
        for i in 0..8u64 {
            tokio::spawn(async move { info!(i, "on a worker") }.instrument(info_span!("job", i)))
                .await
                .unwrap();
        }
        guard.finish().unwrap();
    });
    drop(rt);
    let bytes = sink.bytes();
    let t = common::decode(&bytes);
    assert_eq!(
        t.slices.iter().filter(|s| s.name == "on a worker").count(),
        8
    );
    common::assert_clean(&bytes);
}

#[test]
fn spans_beyond_the_table_still_show_on_threads() {
    let settings = PerfettoLayer::builder().max_live_spans(1);
    let bytes = common::record_with(settings, |_| {
        let live: Vec<_> = (0..100u64).map(|i| info_span!("live", i)).collect();
        for s in &live {
            drop(s.enter());
        }
    });
    let t = common::decode(&bytes);
    let on_threads: Vec<_> = t
        .slices
        .iter()
        .filter(|s| s.name == "live" && matches!(t.tracks[&s.track].kind, TrackKind::Thread { .. }))
        .collect();
    let (entered, created): (Vec<&inspect::Slice>, Vec<&inspect::Slice>) = on_threads
        .iter()
        .partition(|s| s.dur.is_some_and(|d| d > 0));
    assert_eq!(entered.len(), 100);
    let lifetimes = t
        .slices
        .iter()
        .filter(|s| s.name == "live" && t.tracks[&s.track].kind == TrackKind::Other)
        .count();
    assert!(
        (16..100).contains(&lifetimes),
        "{lifetimes} spans had room for a track"
    );
    // The others show their fields where they were created.
    assert_eq!(created.len(), 100 - lifetimes);
    assert!(created
        .iter()
        .all(|s| s.args.iter().any(|(k, _)| k == "i" || k.ends_with(".i"))));
    common::assert_clean(&bytes);
}

#[test]
fn events_of_one_callsite_are_named_by_each_ones_message() {
    // Most messages repeat, some differ: each instant has its own name, and
    // every one the callsite's category, location and fields.
    let messages = ["ready", "ready", "step 1", "ready", "step 2", "ready"];
    let bytes = common::record(View::Threads, |_| {
        for (i, m) in messages.iter().enumerate() {
            info!(n = i as u64, "{m}");
        }
        info!(n = 9u64);
    });
    let t = common::decode(&bytes);
    let mut events: Vec<_> = t.slices.iter().filter(|s| s.dur == Some(0)).collect();
    events.sort_by_key(|s| s.ts);
    let names: Vec<&str> = events.iter().map(|s| s.name.as_str()).collect();
    // The last names no message: its callsite's name.
    assert_eq!(names[..6], messages);
    assert!(names[6].starts_with("event "), "{names:?}");
    for (i, ev) in events.iter().enumerate() {
        assert_eq!(ev.categories, vec!["info,layer".to_owned()]);
        assert!(ev
            .source
            .as_ref()
            .is_some_and(|(f, _)| f.ends_with("layer.rs")));
        let n = ev
            .args
            .iter()
            .find(|(k, _)| k == "n" || k.ends_with(".n"))
            .map(|(_, v)| v);
        let want = if i < 6 { i as u64 } else { 9 };
        assert_eq!(n, Some(&ArgValue::Uint(want)), "{} {:?}", ev.name, ev.args);
    }
    common::assert_clean(&bytes);
}
