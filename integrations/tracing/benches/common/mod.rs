//! The layers under test and the workloads, shared by the criterion
//! comparison (`layers`) and the plain binary for profilers (`profile`).
#![allow(dead_code)]

use std::hint::black_box;

use tracing::{info, info_span, Dispatch};
use tracing_subscriber::layer::SubscriberExt;

/// A layer under test: a subscriber to run under, and what must live as
/// long as it does (a flush guard).
pub struct Subject {
    pub name: &'static str,
    pub dispatch: Dispatch,
    _keep: Box<dyn std::any::Any>,
}

pub fn ours(view: perfetto_tracing::View, name: &'static str) -> Subject {
    ours_with(perfetto_tracing::PerfettoLayer::builder().view(view), name)
}

pub fn ours_with(settings: perfetto_tracing::Builder, name: &'static str) -> Subject {
    let (layer, guard) = settings.build(std::io::sink()).unwrap();
    Subject {
        name,
        dispatch: Dispatch::new(tracing_subscriber::registry().with(layer)),
        _keep: Box::new(guard),
    }
}

pub fn perfetto_file(mode: tracing_perfetto_file::SpanMode, name: &'static str) -> Subject {
    let (layer, guard) = tracing_perfetto_file::PerfettoLayer::builder(std::io::sink())
        .span_mode(mode)
        .with_debug_annotations()
        .with_source_locations()
        .build();
    Subject {
        name,
        dispatch: Dispatch::new(tracing_subscriber::registry().with(layer)),
        _keep: Box::new(guard),
    }
}

pub fn perfetto_015() -> Subject {
    let layer = tracing_perfetto::PerfettoLayer::new(std::io::sink as fn() -> std::io::Sink)
        .with_debug_annotations(true);
    Subject {
        name: "tracing-perfetto",
        dispatch: Dispatch::new(tracing_subscriber::registry().with(layer)),
        _keep: Box::new(()),
    }
}

pub fn chrome() -> Subject {
    let (layer, guard) = tracing_chrome::ChromeLayerBuilder::new()
        .writer(std::io::sink())
        .include_args(true)
        .include_locations(true)
        .build();
    Subject {
        name: "tracing-chrome",
        dispatch: Dispatch::new(tracing_subscriber::registry().with(layer)),
        _keep: Box::new(guard),
    }
}

/// tracing-subscriber's registry under a layer that does nothing: what
/// tracing itself costs a call (its macros, dispatch, the span slab),
/// which every layer above pays too. (The registry with no layer at all
/// frees no span's slot, so its slab grows: not a floor.)
pub fn registry_alone() -> Subject {
    let nothing = tracing_subscriber::layer::Identity::new();
    Subject {
        name: "registry-alone",
        dispatch: Dispatch::new(tracing_subscriber::registry().with(nothing)),
        _keep: Box::new(()),
    }
}

/// The event workload: an event with fields.
pub fn event(i: u64) {
    info!(index = i, state = "ready", "event with fields");
}

/// The event workload with a message that varies: a value formatted
/// into it, new each time.
pub fn varying(i: u64) {
    info!(index = i, state = "ready", "loaded {} rows", i);
}

/// The span workload: a span with a field created, entered, exited and
/// closed.
pub fn span(i: u64) {
    let s = info_span!("span", index = i);
    let _e = s.enter();
    black_box(&s);
}

/// Events and spans from other callsites (other names, levels, lines and
/// field names): what a program with more than one callsite has already
/// recorded when it reaches the measured one.
pub fn other_callsites() {
    use tracing::{debug, debug_span, error, trace, trace_span, warn};
    trace!(a = 1u64, "first");
    debug!(b = 2u64, "second");
    warn!(c = 3u64, "third");
    error!(d = 4u64, "fourth");
    drop(trace_span!("one", e = 5u64).entered());
    drop(debug_span!("two", f = 6u64).entered());
    drop(info_span!("three", g = 7u64).entered());
    drop(info_span!("four", h = 8u64).entered());
}
