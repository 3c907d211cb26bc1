//! Where events go and what they are named: with span tracks alone, on the
//! track of the span they happened in (the nearest the layer's filter
//! enabled, or the one they name); named by their message, static or
//! formatted, whichever way it is given.

mod common;

use common::decode;
use perfetto_tracing::{PerfettoLayer, View};
use tracing::{debug_span, info, info_span};
use tracing_subscriber::layer::SubscriberExt;

/// Records `f` with the layer behind a per-layer INFO filter.
fn record_filtered(view: View, f: impl FnOnce()) -> perfetto_trace_writer::inspect::Trace {
    let filtered = |layer| {
        tracing_subscriber::registry().with(tracing_subscriber::Layer::with_filter(
            layer,
            tracing_subscriber::filter::LevelFilter::INFO,
        ))
    };
    let bytes = common::record_composed(PerfettoLayer::builder().view(view), filtered, |_| f());
    common::assert_clean(&bytes);
    decode(&bytes)
}

#[test]
fn events_go_on_the_track_of_the_nearest_span_the_layer_has() {
    let trace = record_filtered(View::SpanTracks, || {
        let outer = info_span!("outer");
        let inner = info_span!(parent: &outer, "inner");
        let other = info_span!("other");
        outer.in_scope(|| {
            info!("in outer");
            // Filtered out for the layer: the event belongs to `outer`.
            debug_span!("hidden").in_scope(|| info!("under hidden"));
            inner.in_scope(|| info!("in inner"));
            // Named: on the span named, whatever is current.
            info!(parent: &other, "in other");
            info!(parent: None, "at the root");
        });
        info!("outside");
        drop((inner, other));
    });
    let track_of = |name: &str| {
        let found: Vec<u64> = trace
            .slices
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.track)
            .collect();
        assert_eq!(found.len(), 1, "{name}: {:?}", trace.slices);
        found[0]
    };
    let (outer, inner, other) = (track_of("outer"), track_of("inner"), track_of("other"));
    assert!(outer != inner && inner != other && outer != other);
    assert_eq!(track_of("in outer"), outer);
    assert_eq!(track_of("under hidden"), outer);
    assert_eq!(track_of("in inner"), inner);
    assert_eq!(track_of("in other"), other);
    // Not in a span: on the thread's track.
    let thread = track_of("outside");
    assert!(![outer, inner, other].contains(&thread));
    assert_eq!(track_of("at the root"), thread);
}

#[test]
fn events_are_named_by_their_message_however_it_is_given() {
    let n = std::hint::black_box(3);
    let mut line = 0;
    let trace = record_filtered(View::Both, || {
        for i in 0..n {
            info!(i, "static text");
            info!(i, "{i} formatted");
            info!(i, message = "given as a string");
            info!(i, message = ?format_args!("{} through Debug", i));
            info!(i, message = %i);
            line = line!() + 1;
            info!(i);
        }
    });
    let names: Vec<&str> = trace
        .slices
        .iter()
        .filter(|s| s.args.iter().any(|(k, _)| k == "i"))
        .map(|s| s.name.as_str())
        .collect();
    let mut want = Vec::new();
    for i in 0..n {
        let (formatted, debug, display) = (
            format!("{i} formatted"),
            format!("{i} through Debug"),
            i.to_string(),
        );
        want.extend([
            "static text".to_owned(),
            formatted,
            "given as a string".to_owned(),
            debug,
            display,
            // No message: the callsite's name.
            format!("event {}:{line}", file!()),
        ]);
    }
    assert_eq!(names, want);
}

/// Events whose message varies (values formatted in) show as slices with
/// their exact text and their fields as arguments, in every view, with
/// tables that reach their cap (new generations) or not, and the trace
/// loads cleanly. From a callsite's second message on, the text is the
/// event's own field (`TrackEvent.name`): only each callsite's first
/// message is interned, and a message that stays the same stays interned
/// (with fields, or without: the key's short path without arguments).
#[test]
fn events_whose_message_varies_show_their_text_and_fields() {
    use perfetto_trace_writer::inspect::ArgValue;
    use prost::Message as _;
    const N: u64 = 40;
    for view in [View::Both, View::SpanTracks, View::Threads] {
        for cap in [16_384, 4] {
            let settings = PerfettoLayer::builder()
                .view(view)
                .intern_limit(cap, 1 << 20);
            let bytes = common::record_with(settings, |_| {
                for i in 0..std::hint::black_box(N) {
                    info!(rows = i, table = "users", "loaded {} rows", i);
                    info!("tick {}", i);
                    info!(i, "stable");
                    info!("bare");
                    info_span!("work").in_scope(|| info!(i, "inside {}", 2 * i));
                }
            });
            common::assert_clean(&bytes);
            let trace = decode(&bytes);
            let named = |text: &str| {
                let found: Vec<_> = trace.slices.iter().filter(|s| s.name == text).collect();
                assert_eq!(found.len(), 1, "{view:?} {cap}: {text}");
                found[0]
            };
            for i in 0..N {
                let loaded = named(&format!("loaded {i} rows"));
                let args = &loaded.args;
                assert!(
                    args.contains(&("rows".into(), ArgValue::Uint(i))),
                    "{args:?}"
                );
                assert!(args.contains(&("table".into(), ArgValue::Str("users".into()))));
                assert_eq!(loaded.categories, [format!("info,{}", module_path!())]);
                assert_eq!(loaded.source.as_ref().map(|s| s.0.as_str()), Some(file!()));
                assert!(named(&format!("tick {i}")).args.is_empty());
                let inside = named(&format!("inside {}", 2 * i));
                assert!(inside.args.contains(&("i".into(), ArgValue::Uint(i))));
            }
            for stable in ["stable", "bare"] {
                let n = trace.slices.iter().filter(|s| s.name == stable).count();
                assert_eq!(n, N as usize, "{view:?} {cap}: {stable}");
            }
            if let Some(rows) = common::query(
                &bytes,
                "select count(*) from slice where name glob 'loaded * rows';",
            ) {
                assert_eq!(rows[1], N.to_string(), "{view:?} {cap}");
            }

            let packets = perfetto_trace_writer::protos::Trace::decode(&bytes[..]).unwrap();
            let interned: Vec<&str> = packets
                .packet
                .iter()
                .filter_map(|p| p.interned_data.as_ref())
                .flat_map(|d| &d.event_names)
                .filter_map(|n| n.name.as_deref())
                .collect();
            let varied = ["loaded", "tick", "inside"];
            let again = interned
                .iter()
                .filter(|n| varied.iter().any(|v| n.starts_with(v)))
                .filter(|n| !["loaded 0 rows", "tick 0", "inside 0"].contains(n))
                .count();
            assert_eq!(again, 0, "{view:?} {cap}: {interned:?}");
            assert!(interned.contains(&"stable") && interned.contains(&"bare"));
            let inline = packets
                .packet
                .iter()
                .filter_map(|p| p.track_event.as_ref())
                .filter(|e| e.name.is_some())
                .count();
            assert_eq!(inline, 3 * (N as usize - 1), "{view:?} {cap}");
        }
    }
}
