//! Programs as users write them, traced through the layer and read back by
//! the trace processor: tokio tasks across workers and on one thread,
//! `#[instrument]`, spans moved, shared, re-entered and left open, thread
//! churn, runtimes shut down with work pending, layers composed with
//! others, and awkward fields. Each program is checked for what a user
//! sees: every span and event where it happened, tasks whole on tracks of
//! their own, nesting as the program nested, flows whole, no error.

mod common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{record, record_with, runtime, SharedBuf};
use perfetto_tracing::{PerfettoLayer, View};
use tracing::{debug_span, info, info_span, Dispatch, Instrument as _, Span};
use tracing_subscriber::layer::SubscriberExt;

const VIEWS: [View; 3] = [View::Threads, View::SpanTracks, View::Both];

/// The trace processor's rows for each statement of `sql` (separated by
/// `;\n`), headers dropped, after checking what every trace here must
/// satisfy: no error or data-loss stat, every flow whole, every slice
/// finished and inside its parent. `None` without a trace processor.
fn rows(bytes: &[u8], sql: &str) -> Option<Vec<String>> {
    rows_where(bytes, sql, true)
}

/// [`rows`], but spans may be left open (`finished` false).
fn rows_where(bytes: &[u8], sql: &str, finished: bool) -> Option<Vec<String>> {
    if let Ok(dir) = std::env::var("PROGRAMS_KEEP") {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = std::thread::current().name().unwrap_or("t").to_owned();
        std::fs::write(format!("{dir}/{name}-{n}.pftrace"), bytes).unwrap();
    }
    common::assert_flows_whole(bytes);
    let stats = "select name, idx, value from stats \
                 where value > 0 and severity in ('error', 'data_loss');";
    let unfinished = "select count(*) from slice where dur < 0;";
    let outside = "select count(*) from slice c join slice p on c.parent_id = p.id \
                   where c.ts < p.ts or c.depth != p.depth + 1 \
                   or (p.dur >= 0 and c.dur >= 0 and c.ts + c.dur > p.ts + p.dur);";
    // One run of the trace processor: statements apart by a marker row.
    let statements: Vec<&str> = [stats, unfinished, outside]
        .into_iter()
        .chain(sql.split_inclusive(";\n"))
        .collect();
    let all = common::tp::query(bytes, &statements.join("\nselect '@@' as marker;\n"))?;
    let mut results = vec![Vec::new()];
    let mut lines = all.iter().peekable();
    while let Some(line) = lines.next() {
        if line == "\"marker\"" && lines.peek().is_some_and(|l| *l == "\"@@\"") {
            lines.next();
            results.push(Vec::new());
        } else {
            results.last_mut().unwrap().push(line.clone());
        }
    }
    assert_eq!(results.len(), statements.len(), "{all:?}");
    let mut results = results.into_iter().map(|r| r[1..].to_vec());
    let stats = results.next().unwrap();
    assert!(stats.is_empty(), "trace processor stats: {stats:?}");
    let unfinished = results.next().unwrap();
    if finished {
        assert_eq!(unfinished, ["0"], "unfinished slices");
    }
    assert_eq!(
        results.next().unwrap(),
        ["0"],
        "slices outside their parents"
    );
    Some(results.flatten().collect())
}

/// The rows of `sql`, joined by `|`.
fn one(bytes: &[u8], sql: &str) -> Option<String> {
    rows(bytes, sql).map(|r| r.join("|"))
}

#[tracing::instrument(fields(rows))]
async fn handle(id: u64) -> u64 {
    for step in 0..4u64 {
        tokio::task::yield_now().await;
        info!(step, "step");
    }
    // A task of its own inside the request's span: the span is entered by
    // two tasks, perhaps on two threads at once.
    let bg = tokio::spawn(async { info!("in background") }.in_current_span());
    let rows = fetch(id).await;
    Span::current().record("rows", rows);
    bg.await.unwrap();
    rows
}

#[tracing::instrument]
async fn fetch(id: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(1)).await;
    info!("fetched");
    id * 2
}

#[test]
fn instrumented_tasks_across_workers_are_whole_on_tracks_of_their_own() {
    for view in VIEWS {
        let bytes = record(view, |dispatch| {
            let rt = runtime(dispatch);
            rt.block_on(async {
                let tasks: Vec<_> = (0..24).map(|id| tokio::spawn(handle(id))).collect();
                for t in tasks {
                    t.await.unwrap();
                }
            });
        });
        // Every event directly inside the span it was emitted in, on the
        // thread or on the span's track.
        let sql = "select e.name, p.name, count(*) from slice e left join slice p \
                   on e.parent_id = p.id where e.dur = 0 and e.name != 'handle' \
                   group by 1, 2 order by 1, 2;";
        let Some(events) = rows(&bytes, sql) else {
            return;
        };
        assert_eq!(
            events,
            [
                "\"fetched\",\"fetch\",24",
                "\"in background\",\"handle\",24",
                "\"step\",\"handle\",96"
            ],
            "{view:?}"
        );
        if view != View::Threads {
            // One lifetime slice per request, each alone on its track at
            // depth 0, its fetch on a track beneath, within its lifetime.
            let sql = "select count(*), count(distinct h.track_id), sum(h.depth = 0), \
                       sum(f.ts >= h.ts and f.ts + f.dur <= h.ts + h.dur) \
                       from slice h join track ht on h.track_id = ht.id \
                       join track ft on ft.parent_id = ht.id \
                       join slice f on f.track_id = ft.id \
                       where h.name = 'handle' and f.name = 'fetch' and h.dur > 0;";
            assert_eq!(one(&bytes, sql).unwrap(), "24,24,24,24", "{view:?}");
            // The field recorded later, on the span's track.
            let sql = "select count(*) from slice s join args a using (arg_set_id) \
                       where s.name = 'handle' and s.dur = 0 and a.key like '%rows';";
            assert_eq!(one(&bytes, sql).unwrap(), "24", "{view:?}");
        }
        if view != View::SpanTracks {
            // Polled many times: a thread slice per poll.
            let sql = "select count(*) >= 24 * 5 from slice s join track t \
                       on s.track_id = t.id where s.name = 'handle' and t.name is null;";
            assert_eq!(one(&bytes, sql).unwrap(), "1", "{view:?}");
        }
    }
}

/// With `reuse_span_tracks`, a span's track serves the next span of its
/// callsite beneath the same track once the span closed on the thread that
/// made it: one after another, each lifetime whole and alone on it while
/// it lives. Not while a child dropped first still lives (tracing closes
/// the parent after it), nor a track whose span another thread closed
/// (that thread's writer did not describe it), nor across callsites.
/// Without it (the default), every span has a track of its own.
#[test]
fn span_tracks_are_used_again_once_free() {
    for (view, reuse) in [
        (View::SpanTracks, true),
        (View::Both, true),
        (View::Both, false),
    ] {
        let settings = PerfettoLayer::builder().view(view).reuse_span_tracks(reuse);
        let bytes = record_with(settings, |dispatch| {
            for i in 0..10u64 {
                drop(info_span!("seq", i).entered());
                drop(info_span!("other").entered());
            }
            // One callsite each, made twice.
            let (parent, away, hop) = (
                || info_span!("parent"),
                || info_span!("away"),
                || info_span!("hop"),
            );
            let child = {
                let _p = parent().entered();
                info_span!("child")
            };
            drop(parent().entered());
            drop(child);
            let first = away();
            common::on_thread(dispatch, move || drop(first));
            drop(away().entered());
            let hub = info_span!("hub");
            let first = hub.in_scope(hop);
            common::on_thread(dispatch, move || {
                drop(first);
                let _in = hub.enter();
                drop(hop().entered());
            });
        });
        // Lifetime slices (at depth 0: a span closed without running ends
        // its creation flow on its track, an instant above it).
        let sql = "select s.name, count(*), count(distinct s.track_id) from slice s \
                   join track t on s.track_id = t.id where t.name = s.name and s.depth = 0 \
                   group by 1 order by 1;\n\
                   select count(*) from slice c join track ct on c.track_id = ct.id \
                   join slice p on p.track_id = ct.parent_id \
                   where c.name = 'child' and c.depth = 0 and p.name = 'parent';\n\
                   select count(*) from slice a join slice b on a.track_id = b.track_id \
                   and a.id < b.id and b.ts < a.ts + a.dur where a.name = 'seq';";
        let Some(r) = rows(&bytes, sql) else { return };
        let sequential = match reuse {
            true => ["\"other\",10,1", "\"seq\",10,1"],
            false => ["\"other\",10,10", "\"seq\",10,10"],
        };
        assert_eq!(
            r,
            [
                "\"away\",2,2",
                "\"child\",1,1",
                "\"hop\",2,2",
                "\"hub\",1,1",
                sequential[0],
                "\"parent\",2,2",
                sequential[1],
                "1",
                "0"
            ],
            "{view:?}, reuse {reuse}"
        );
    }
}

/// A clone of one span entered on two threads at the same time.
#[test]
fn a_span_entered_on_two_threads_at_once_is_one_span_with_a_slice_on_each() {
    for view in VIEWS {
        let bytes = record(view, |dispatch| {
            let span = info_span!("shared", n = 2u64);
            let both = Arc::new(Barrier::new(2));
            std::thread::scope(|s| {
                for t in 0..2u64 {
                    let (span, both, d) = (span.clone(), both.clone(), dispatch.clone());
                    s.spawn(move || {
                        tracing::dispatcher::with_default(&d, || {
                            let _e = span.enter();
                            both.wait();
                            info!(t, "inside");
                            both.wait();
                        })
                    });
                }
            });
        });
        let sql = "select count(*), count(distinct s.track_id) from slice s \
                   join track t on s.track_id = t.id where s.name = 'shared' and t.name is null;\n\
                   select count(*) from slice s join track t on s.track_id = t.id \
                   where s.name = 'shared' and t.name = s.name;\n\
                   select count(*) from slice e join slice p on e.parent_id = p.id \
                   where e.name = 'inside' and p.name = 'shared';";
        let Some(r) = rows(&bytes, sql) else { return };
        let want = match view {
            View::Threads => ["2,2", "0", "2"],
            View::SpanTracks => ["0,0", "1", "2"],
            View::Both => ["2,2", "1", "2"],
        };
        assert_eq!(r, want, "{view:?}");
    }
}

#[test]
fn re_entering_a_span_nests_its_slices() {
    let bytes = record(View::Threads, |_| {
        let span = info_span!("again");
        let _a = span.enter();
        info!("once");
        {
            let _b = span.enter();
            info!("twice");
        }
        info!("once more");
    });
    let sql = "select name, depth from slice order by ts, depth;";
    let Some(r) = rows(&bytes, sql) else { return };
    assert_eq!(
        r,
        [
            "\"again\",0",
            "\"once\",1",
            "\"again\",1",
            "\"twice\",2",
            "\"once more\",1"
        ]
    );
}

/// The classic mistake: a guard from `Span::enter` held across an
/// `.await`. The task leaves the thread with the span entered there and
/// exits it wherever it resumes, so tracing's registry keeps it entered on
/// the first thread for good (and never closes it): its slices there stay
/// open, as they are for tracing. The trace must still read cleanly, with
/// every event.
#[test]
fn a_guard_held_across_an_await_does_not_break_the_trace() {
    for view in VIEWS {
        let bytes = record(view, |dispatch| {
            let rt = runtime(dispatch);
            rt.block_on(async {
                let tasks: Vec<_> = (0..16u64)
                    .map(|i| {
                        tokio::spawn(async move {
                            let span = info_span!("held", i);
                            #[allow(clippy::await_holding_lock)]
                            let _g = span.enter();
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            info!(i, "after the await");
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            });
        });
        let sql = "select count(*) from slice where name = 'after the await';";
        let Some(r) = rows_where(&bytes, sql, false) else {
            return;
        };
        assert_eq!(r, ["16"], "{view:?}");
    }
}

/// A child whose parent's handle is dropped first, moved to another
/// thread, entered and closed there: the registry keeps the parent open
/// while the child lives, so the child's track sits beneath the parent's
/// and its lifetime within the parent's.
#[test]
fn a_child_outliving_its_parents_handle_and_closed_elsewhere() {
    for view in VIEWS {
        let bytes = record(view, |dispatch| {
            let parent = info_span!("parent");
            let child = parent.in_scope(|| info_span!("child"));
            drop(parent);
            common::on_thread(dispatch, move || {
                child.in_scope(|| info!("late"));
                drop(child);
            });
        });
        let sql = "select p.name, c.name, c.ts + c.dur <= p.ts + p.dur from slice p \
                   join track pt on p.track_id = pt.id join track ct on ct.parent_id = pt.id \
                   join slice c on c.track_id = ct.id where p.name = 'parent' and c.dur > 0;\n\
                   select count(*) from slice where name = 'late';";
        let Some(r) = rows(&bytes, sql) else { return };
        let want = match view {
            View::Threads => vec!["1"],
            _ => vec!["\"parent\",\"child\",1", "1"],
        };
        assert_eq!(r, want, "{view:?}");
    }
}

/// `Span::none()`, a span the filter disables, fields recorded later and a
/// chain of `follows_from`.
#[test]
fn none_disabled_recorded_and_follows_from_chains() {
    for view in VIEWS {
        let filtered = |layer| {
            tracing_subscriber::registry().with(tracing_subscriber::Layer::with_filter(
                layer,
                tracing_subscriber::filter::LevelFilter::INFO,
            ))
        };
        let bytes = composed(view, filtered, || {
            Span::none().in_scope(|| info!("under none"));
            debug_span!("hidden").in_scope(|| info!("under hidden"));
            let a = info_span!("a", late = tracing::field::Empty);
            a.record("late", "yes");
            let b = info_span!("b");
            b.follows_from(&a);
            let c = info_span!("c");
            c.follows_from(&b);
            let d = info_span!("d");
            d.follows_from(&c);
            for s in [&a, &b, &c, &d] {
                s.in_scope(|| info!("run"));
            }
        });
        let sql = "select count(*) from flow;\n\
                   select name, depth from slice where name like 'under%' order by 1;\n\
                   select count(*) from slice where name = 'hidden';";
        let Some(r) = rows(&bytes, sql) else { return };
        assert_eq!(
            r,
            ["3", "\"under hidden\",0", "\"under none\",0", "0"],
            "{view:?}"
        );
    }
}

/// Many short-lived threads: each named and with its own tid, nothing lost
/// when they end.
#[test]
fn many_short_lived_threads_keep_their_names_and_events() {
    let bytes = record(View::Both, |dispatch| {
        std::thread::scope(|s| {
            for t in 0..50u64 {
                let d = dispatch.clone();
                std::thread::Builder::new()
                    .name(format!("scoped-{t}"))
                    .spawn_scoped(s, move || {
                        tracing::dispatcher::with_default(&d, || {
                            let _s = info_span!("scoped", t).entered();
                            for i in 0..100u64 {
                                info!(t, i, "tick");
                            }
                        })
                    })
                    .unwrap();
            }
        });
        let d = dispatch.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(4)
            .thread_keep_alive(Duration::from_millis(1))
            .on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&d)))
            .build()
            .unwrap();
        rt.block_on(async {
            for round in 0..20u64 {
                let jobs: Vec<_> = (0..4u64)
                    .map(|j| {
                        tokio::task::spawn_blocking(move || {
                            info_span!("blocking", round, j).in_scope(|| info!("blocked"))
                        })
                    })
                    .collect();
                for j in jobs {
                    j.await.unwrap();
                }
                // Idle blocking threads end before the next round.
                std::thread::sleep(Duration::from_millis(3));
            }
        });
    });
    let sql = "select count(distinct t.tid), count(distinct t.name), count(*) from slice s \
               join thread_track tt on s.track_id = tt.id join thread t using (utid) \
               where s.name = 'tick' and t.name like 'scoped-%';\n\
               select count(*) from slice where name = 'blocked';\n\
               select count(*) from thread t join process p using (upid) \
               where t.tid != p.pid and t.name is null;";
    let Some(r) = rows(&bytes, sql) else { return };
    assert_eq!(r, ["50,50,5000", "80", "0"]);
}

/// A runtime dropped with tasks still waiting: their spans close as tokio
/// drops the futures, and every task shows finished.
#[test]
fn a_runtime_shut_down_with_tasks_pending() {
    for view in VIEWS {
        let bytes = record(view, |dispatch| {
            let rt = runtime(dispatch);
            rt.block_on(async {
                for i in 0..8u64 {
                    tokio::spawn(
                        async move {
                            info!(i, "waiting");
                            std::future::pending::<()>().await;
                        }
                        .instrument(info_span!("pending", i)),
                    );
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            });
            rt.shutdown_timeout(Duration::from_secs(5));
        });
        let sql = "select count(*) from slice where name = 'waiting';";
        assert_eq!(one(&bytes, sql).as_deref().unwrap_or("8"), "8", "{view:?}");
    }
}

/// `current_thread` runtimes, one nested in a blocking task of another,
/// and a `LocalSet`.
#[test]
fn current_thread_nested_runtimes_and_local_sets() {
    for view in VIEWS {
        let bytes = record(view, |dispatch| {
            let rt = runtime(dispatch);
            rt.block_on(
                async {
                    tokio::task::spawn_blocking(|| {
                        let inner = tokio::runtime::Builder::new_current_thread()
                            .enable_time()
                            .build()
                            .unwrap();
                        inner.block_on(
                            async {
                                tokio::time::sleep(Duration::from_millis(1)).await;
                                info!("nested");
                            }
                            .instrument(info_span!("inner_rt")),
                        );
                    })
                    .await
                    .unwrap();
                }
                .instrument(info_span!("outer_rt")),
            );
            let local = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            let set = tokio::task::LocalSet::new();
            set.block_on(&local, async {
                let rc = std::rc::Rc::new(3u64);
                let tasks: Vec<_> = (0..6u64)
                    .map(|i| {
                        let rc = rc.clone();
                        tokio::task::spawn_local(
                            async move {
                                tokio::time::sleep(Duration::from_millis(1 + i % 2)).await;
                                info!(n = *rc, "local");
                            }
                            .instrument(info_span!("local_task", i)),
                        )
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            });
        });
        let sql = "select e.name, p.name from slice e join slice p on e.parent_id = p.id \
                   where e.name in ('nested', 'local') group by 1, 2 order by 1;\n\
                   select count(distinct s.track_id) from slice s join track t \
                   on s.track_id = t.id where s.name = 'local_task' and t.name = s.name;";
        let Some(r) = rows(&bytes, sql) else { return };
        let tracks = if view == View::Threads { "0" } else { "6" };
        assert_eq!(
            r,
            [
                "\"local\",\"local_task\"",
                "\"nested\",\"inner_rt\"",
                tracks
            ],
            "{view:?}"
        );
    }
}

/// Records `f` with a registry of `layer` and `others` (other layers and
/// filters, as a user composes them).
fn composed<L>(view: View, others: impl FnOnce(PerfettoLayer) -> L, f: impl FnOnce()) -> Vec<u8>
where
    L: tracing::Subscriber + Send + Sync + 'static,
{
    common::record_composed(PerfettoLayer::builder().view(view), others, |_| f())
}

fn levels() {
    let _o = info_span!("kept").entered();
    debug_span!("filtered").in_scope(|| {
        tracing::debug!("debug event");
        info!("info event");
    });
    tracing::warn!(code = 7u64, "warned");
}

/// The layer behind a per-layer filter, beside an fmt layer, under an
/// `EnvFilter`: what the filters pass shows, nested in what they pass.
#[test]
fn composed_with_filters_and_an_fmt_layer() {
    use tracing_subscriber::filter::{EnvFilter, LevelFilter};
    use tracing_subscriber::Layer as _;
    // Generic over the subscriber beneath it, so a macro, not a closure.
    macro_rules! fmt {
        () => {
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::sink)
                .with_ansi(false)
        };
    }
    let per_layer = composed(
        View::Both,
        |layer| {
            tracing_subscriber::registry()
                .with(fmt!())
                .with(layer.with_filter(LevelFilter::INFO))
        },
        levels,
    );
    let env = composed(
        View::Both,
        |layer| {
            tracing_subscriber::registry()
                .with(EnvFilter::new("info"))
                .with(layer)
                .with(fmt!())
        },
        levels,
    );
    for bytes in [per_layer, env] {
        let sql = "select s.name, p.name from slice s left join slice p on s.parent_id = p.id \
                   join track t on s.track_id = t.id where t.name is null order by s.ts;";
        let Some(r) = rows(&bytes, sql) else { return };
        assert_eq!(
            r,
            [
                "\"kept\",\"[NULL]\"",
                "\"info event\",\"kept\"",
                "\"warned\",\"kept\""
            ]
        );
    }
}

/// `with_default` scopes one after another, each with a layer of its own,
/// and two layers at once in one registry: each trace its own, whole.
#[test]
fn layers_one_after_another_and_two_at_once() {
    let program = |n: u64| {
        for i in 0..n {
            info_span!("step", i).in_scope(|| info!(i, "tick"));
        }
    };
    let first = composed(
        View::Both,
        |l| tracing_subscriber::registry().with(l),
        || program(3),
    );
    let second = composed(
        View::Threads,
        |l| tracing_subscriber::registry().with(l),
        || program(5),
    );
    let (a, b) = (SharedBuf::default(), SharedBuf::default());
    let (la, ga) = PerfettoLayer::builder()
        .view(View::SpanTracks)
        .build(a.clone())
        .unwrap();
    let (lb, gb) = PerfettoLayer::new(b.clone()).unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(la).with(lb), || {
        program(7);
        let d = tracing::dispatcher::get_default(Dispatch::clone);
        common::on_thread(&d, move || program(2));
    });
    ga.finish().unwrap();
    gb.finish().unwrap();
    for (bytes, ticks) in [(first, 3), (second, 5), (a.bytes(), 9), (b.bytes(), 9)] {
        let sql = "select count(*) from slice s join slice p on s.parent_id = p.id \
                   where s.name = 'tick' and p.name = 'step';";
        let Some(r) = one(&bytes, sql) else { return };
        assert_eq!(r, ticks.to_string());
    }
}

/// A `Debug` value that panics while the layer formats it.
struct Exploding;

impl std::fmt::Debug for Exploding {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("Debug of Exploding")
    }
}

/// The args of the slices named `name`, as `key=value` (the key without
/// its `debug.` or `args.` prefix), in the order of the slices.
fn args_of(t: &perfetto_trace_writer::inspect::Trace, name: &str) -> Vec<Vec<(String, String)>> {
    t.slices
        .iter()
        .filter(|s| s.name == name)
        .map(|s| {
            s.args
                .iter()
                .map(|(k, v)| {
                    let k = k.rsplit_once('.').map_or(k.as_str(), |(_, k)| k);
                    (k.to_owned(), format!("{v:?}"))
                })
                .collect()
        })
        .collect()
}

#[test]
fn awkward_field_values_arrive_typed_and_whole() {
    let long = "x".repeat(1 << 20);
    for view in VIEWS {
        let bytes = record(view, |_| {
            let span = info_span!(
                "fields",
                max = u64::MAX,
                min = i64::MIN,
                big = u128::MAX,
                neg = i128::MIN,
                small = 5u128,
                nan = f64::NAN,
                inf = f64::INFINITY,
                empty = "",
                unicode = "żółw 🐢 \u{0}",
            );
            let _e = span.enter();
            info!(len = long.len() as u64, long = long.as_str(), "long");
            info!(message = 5u64, "not the message");
            info!(message = 5u64);
            tracing::info!(
                a0 = 0,
                a1 = 1,
                a2 = 2,
                a3 = 3,
                a4 = 4,
                a5 = 5,
                a6 = 6,
                a7 = 7,
                a8 = 8,
                a9 = 9,
                b0 = 0,
                b1 = 1,
                b2 = 2,
                b3 = 3,
                b4 = 4,
                b5 = 5,
                b6 = 6,
                b7 = 7,
                b8 = 8,
                b9 = 9,
                c0 = 0,
                c1 = 1,
                c2 = 2,
                c3 = 3,
                c4 = 4,
                c5 = 5,
                c6 = 6,
                c7 = 7,
                c8 = 8,
                c9 = 9,
                d0 = 0,
                d1 = 1,
                d2 = 2,
                d3 = 3,
                d4 = 4,
                d5 = 5,
                d6 = 6,
                d7 = 7,
                d8 = 8,
                d9 = 9,
                e0 = 0,
                e1 = 1,
                "forty two"
            );
        });
        let t = common::decode(&bytes);
        let fields = args_of(&t, "fields");
        let first = fields
            .iter()
            .find(|a| !a.is_empty())
            .expect("the span's fields");
        let want: Vec<(String, String)> = [
            ("max", "Uint(18446744073709551615)"),
            ("min", "Int(-9223372036854775808)"),
            ("big", "Str(\"340282366920938463463374607431768211455\")"),
            ("neg", "Str(\"-170141183460469231731687303715884105728\")"),
            ("small", "Uint(5)"),
            ("nan", "Double(NaN)"),
            ("inf", "Double(inf)"),
            ("empty", "Str(\"\")"),
            ("unicode", "Str(\"żółw 🐢 \\0\")"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(first, &want, "{view:?}");
        let long_args = args_of(&t, "long");
        assert_eq!(long_args.len(), 1, "{view:?}");
        assert!(long_args[0]
            .iter()
            .any(|(k, v)| k == "long" && v.len() == long.len() + 7));
        assert_eq!(args_of(&t, "forty two")[0].len(), 42, "{view:?}");
        // A `message` that is no text names nothing: it is an arg.
        assert!(t.slices.iter().filter(|s| s.dur == Some(0)).any(|s| s
            .args
            .iter()
            .any(|(k, v)| k.ends_with("message")
                && *v == perfetto_trace_writer::inspect::ArgValue::Uint(5))));
        let sql = "select count(*) from slice where name = 'long';";
        let Some(r) = one(&bytes, sql) else { continue };
        assert_eq!(r, "1", "{view:?}");
    }
}

/// A span's `message` field, given at creation or recorded later, is an
/// arg like the others (only an event's message names what it shows as).
#[test]
fn a_spans_message_is_kept() {
    for view in VIEWS {
        let bytes = record(view, |_| {
            drop(info_span!("said", message = "hello", n = 1u64).entered());
            let later = info_span!("told", message = tracing::field::Empty);
            let _e = later.enter();
            later.record("message", "later");
        });
        let t = common::decode(&bytes);
        let has = |name: &str, text: &str| {
            let message = ("message".to_owned(), format!("Str({text:?})"));
            args_of(&t, name).iter().any(|a| a.contains(&message))
        };
        assert!(has("said", "hello"), "{view:?}: {:?}", args_of(&t, "said"));
        assert!(has("told", "later"), "{view:?}: {:?}", args_of(&t, "told"));
        let _ = rows(&bytes, "select 1;");
    }
}

/// Events that name a track go on it, in every view; a span's track named
/// by `%` of a number is that number's text, and a plain number stays an
/// arg.
#[test]
fn events_and_spans_on_named_tracks() {
    for view in VIEWS {
        let bytes = record(view, |_| {
            let _s = info_span!("work").entered();
            info!(perfetto.track = "audit", user = "ana", "logged in");
            drop(info_span!("job", perfetto.track = %7u64).entered());
            drop(info_span!("plain", perfetto.track = 7u64).entered());
        });
        let sql = "select s.name, t.name from slice s join track t on s.track_id = t.id \
                   where s.name in ('logged in', 'job') and t.name is not null order by 1, 2;\n\
                   select count(*) from slice s join track t on s.track_id = t.id \
                   join track p on t.parent_id = p.id where s.name = 'job' and p.name = '7';\n\
                   select count(*) from slice s join args a using (arg_set_id) \
                   where s.name in ('logged in', 'plain') and (a.key like '%user' or a.key like '%track');";
        let Some(r) = rows(&bytes, sql) else { continue };
        assert_eq!(
            r,
            ["\"job\",\"job\"", "\"logged in\",\"audit\"", "1", "2"],
            "{view:?}"
        );
    }
}

/// A `Debug` impl that panics inside the layer, caught by the program:
/// the layer goes on recording on that thread, and the trace is whole.
#[test]
fn a_panicking_debug_value_leaves_the_layer_usable() {
    for view in VIEWS {
        let bytes = record(view, |_| {
            // A span whose fields panic is made in the registry but never
            // handed back, so never closed: it keeps its parent open for
            // good. Made outside `outer`, it leaves only itself unclosed,
            // and nothing is written of it.
            let r =
                std::panic::catch_unwind(|| drop(info_span!("exploding span", bad = ?Exploding)));
            assert!(r.is_err());
            let outer = info_span!("outer").entered();
            for place in 0..2 {
                let r = std::panic::catch_unwind(|| match place {
                    0 => info!(bad = ?Exploding, "exploding event"),
                    _ => {
                        let s = info_span!("recorded", bad = tracing::field::Empty);
                        let _e = s.enter();
                        s.record("bad", tracing::field::debug(Exploding));
                    }
                });
                assert!(r.is_err());
            }
            info_span!("after").in_scope(|| info!(ok = true, "still recording"));
            drop(outer);
        });
        let sql = "select s.name, p.name from slice s join slice p on s.parent_id = p.id \
                   where s.name = 'still recording';";
        let Some(r) = rows(&bytes, sql) else { continue };
        assert_eq!(r, ["\"still recording\",\"after\""], "{view:?}");
    }
}

/// 500 spans nested (deeper than the trace processor takes tracks: the
/// deepest span tracks go beside their parents'), and 200,000 spans one
/// after another.
#[test]
fn deep_nesting_and_many_spans() {
    fn nest(depth: u32) {
        if depth > 0 {
            let _s = info_span!("level", depth).entered();
            nest(depth - 1);
        } else {
            info!("bottom");
        }
    }
    for view in VIEWS {
        let bytes = record(view, |_| {
            nest(500);
        });
        let sql = "select count(*), count(distinct track_id) from slice where name = 'level';\n\
                   select max(s.depth) from slice s join track t on s.track_id = t.id \
                   where s.name = 'level' and t.name is null;\n\
                   select depth from slice where name = 'bottom';";
        let Some(r) = rows(&bytes, sql) else { continue };
        let want = match view {
            View::Threads => ["500,1", "499", "500"],
            View::SpanTracks => ["500,500", "\"[NULL]\"", "1"],
            View::Both => ["1000,501", "499", "500"],
        };
        assert_eq!(r, want, "{view:?}");
    }
    // Many spans: on threads, where they cost the trace least (every view
    // writes the same thread slices; the span tracks are checked above).
    let bytes = record(View::Threads, |_| {
        for i in 0..200_000u64 {
            let _s = info_span!("many", i).entered();
        }
    });
    let sql =
        "select count(*), count(distinct track_id), max(depth) from slice where name = 'many';";
    if let Some(r) = common::tp::clean_query(&bytes, sql) {
        assert_eq!(r, ["200000,1,0"]);
    }
}

/// Spans still open when the guard finishes, on the main thread and on
/// others: the trace ends with them open, and reads cleanly.
#[test]
fn spans_still_open_when_the_guard_finishes() {
    for view in VIEWS {
        let sink = SharedBuf::default();
        let (layer, guard) = PerfettoLayer::builder()
            .view(view)
            .build(sink.clone())
            .unwrap();
        let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
        let (opened, finished) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
        let (o, f) = (opened.clone(), finished.clone());
        let other = common::spawn_on(std::thread::Builder::new(), &dispatch, move || {
            let _s = info_span!("open elsewhere").entered();
            info!("before");
            o.wait();
            f.wait();
            info!("after the end");
        });
        tracing::dispatcher::with_default(&dispatch, || {
            let _main = info_span!("main").entered();
            let _inner = info_span!("inner").entered();
            info!("working");
            opened.wait();
            guard.finish().unwrap();
            finished.wait();
            info!("after the end");
        });
        other.join().unwrap();
        let bytes = sink.bytes();
        let sql = "select name from slice where dur < 0 group by name order by name;\n\
                   select count(*) from slice where name = 'after the end';";
        let Some(r) = rows_where(&bytes, sql, false) else {
            continue;
        };
        assert_eq!(
            r,
            ["\"inner\"", "\"main\"", "\"open elsewhere\"", "0"],
            "{view:?}"
        );
    }
}

const KILLED_CHILD: &str = "PERFETTO_TRACING_PROGRAMS_KILLED_CHILD";
/// The killed child's chunk size: no write is larger.
const KILLED_CHUNK: usize = 16 << 10;

/// The child: a tokio service under the global default subscriber (as a
/// program sets it), threads spinning, blocking tasks, until it is killed.
#[test]
fn child_serves_until_killed() {
    let Ok(path) = std::env::var(KILLED_CHILD) else {
        return;
    };
    let (layer, _guard) = PerfettoLayer::builder()
        .chunk_size(KILLED_CHUNK)
        .flush_interval(Some(Duration::from_millis(5)))
        .build_file(&path)
        .unwrap();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer)).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap();
    for t in 0..4u64 {
        std::thread::spawn(move || loop {
            let _s = info_span!("thread work", t).entered();
            info!(t, "spin");
        });
    }
    // What the parent looks for: a known count of events from a task and
    // from a blocking thread that then go quiet, and a file saying so.
    let quiet = rt.spawn(async {
        for i in 0..QUIET_STEPS {
            tokio::task::yield_now().await;
            info_span!("quiet task", i).in_scope(|| info!(i, "quiet step"));
        }
    });
    let blocking = rt.spawn_blocking(|| {
        for i in 0..QUIET_STEPS {
            info!(i, "quiet blocking");
        }
    });
    rt.block_on(async {
        quiet.await.unwrap();
        blocking.await.unwrap();
    });
    std::fs::write(quiet_marker(std::path::Path::new(&path)), b"").unwrap();
    rt.block_on(async {
        for id in 0u64.. {
            tokio::spawn(handle(id));
            tokio::task::spawn_blocking(move || info_span!("blocking", id).in_scope(|| info!("b")));
            if id % 16 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });
}

/// How many events the killed child's quiet task and blocking thread
/// record before it says they have.
const QUIET_STEPS: u64 = 200;

/// The file the killed child writes once its quiet events are recorded.
fn quiet_marker(trace: &std::path::Path) -> std::path::PathBuf {
    trace.with_extension("quiet")
}

/// Killed while many threads write: the file is a trace up to its last
/// whole chunk, which the trace processor reads without an error, with
/// what every thread recorded up to about a flush interval before (the
/// events of threads gone quiet well before the kill, all of them).
#[test]
fn a_program_killed_while_many_threads_write_leaves_a_trace() {
    if std::env::var(KILLED_CHILD).is_ok() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("perfetto-programs-killed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("killed.pftrace");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_serves_until_killed", "--nocapture"])
        .env(KILLED_CHILD, &path)
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while std::fs::metadata(&path).map_or(0, |m| m.len()) < 4 << 20 || !quiet_marker(&path).exists()
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the child wrote too little"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Sixty flush intervals after the quiet ones went quiet, the others
    // still flooding.
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let whole = common::whole_packets_of_killed(&bytes, KILLED_CHUNK);
    perfetto_trace_writer::inspect::decode(whole).expect("whole packets to the last write");
    let sql = "select count(*) > 1000 from slice where name = 'spin';\n\
               select count(*) from slice where name = 'quiet step';\n\
               select count(*) from slice where name = 'quiet task' and dur >= 0;\n\
               select count(*) from slice where name = 'quiet blocking';";
    if let Some(r) = common::tp::clean_query(&bytes, &sql.replace(";\n", " union all ")) {
        // Each quiet span twice, the default view showing both its slice on
        // the thread and its lifetime on its own track, ended.
        let (n, twice) = (QUIET_STEPS.to_string(), (2 * QUIET_STEPS).to_string());
        assert_eq!(r, ["1", &n, &twice, &n]);
    }
}

/// A quiet thread's events reach the sink within about a flush interval
/// even while a busy thread keeps handing over chunks (the timed flush
/// once waited for a quiet spell in the queue that never came).
#[test]
fn a_quiet_threads_events_are_flushed_while_another_floods() {
    /// A sink slower than the flood: the queue to it is never empty.
    struct Slow(SharedBuf);
    impl std::io::Write for Slow {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            std::thread::sleep(Duration::from_micros(500));
            self.0.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = SharedBuf::default();
    let (layer, guard) = PerfettoLayer::builder()
        .chunk_size(4 << 10)
        .queue_chunks(4)
        .flush_interval(Some(Duration::from_millis(10)))
        .build(Slow(sink.clone()))
        .unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let seen = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = seen.clone();
    let busy = common::spawn_on(std::thread::Builder::new(), &dispatch, move || {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            info!(n = 1u64, "flood");
        }
    });
    // Once the flood is on, the quiet thread says one thing.
    while sink.0.lock().unwrap().len() < 64 << 10 {
        std::thread::sleep(Duration::from_millis(1));
    }
    tracing::dispatcher::with_default(&dispatch, || info!("the quiet one"));
    let start = std::time::Instant::now();
    let holds = |bytes: &[u8]| bytes.windows(13).any(|w| w == b"the quiet one");
    while !holds(&sink.0.lock().unwrap()) && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    seen.store(true, std::sync::atomic::Ordering::Relaxed);
    busy.join().unwrap();
    let waited = start.elapsed();
    guard.finish().unwrap();
    assert!(waited < Duration::from_secs(5), "not flushed in {waited:?}");
}
