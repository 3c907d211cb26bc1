//! What Perfetto's own SDK can say beyond spans: track descriptions,
//! correlation ids, log messages. Each scenario runs on the three writers in
//! both modes; the writers must agree byte for byte, the trace must read
//! back clean, and both modes must show the same.
//!
//! Set `SDK_FEATURES_OUT=DIR` to keep the traces (for the trace processor).

use perfetto_trace_writer::inspect::{self, Trace};
use perfetto_trace_writer::{
    ChunkedWriter, CounterOptions, Error, Event, LaneOptions, Options, ParentTrack, ProcessOptions,
    StreamingPerfettoWriter, ThreadOptions, TraceWriter, TrackOptions, Writer,
};

type Streaming = StreamingPerfettoWriter<Vec<u8>>;

/// Runs a scenario on every writer in both modes; each mode's trace.
fn run(
    name: &str,
    buffered: fn(&mut Writer),
    streaming: fn(&mut Streaming),
    chunked: fn(&mut ChunkedWriter),
) -> [Trace; 2] {
    let traces = [false, true].map(|compact| {
        let options = Options::new().compact(compact);
        let mut w = Writer::with_options(options);
        buffered(&mut w);
        let mut s = StreamingPerfettoWriter::with_options(Vec::new(), options.flush_threshold(100));
        streaming(&mut s);
        assert_eq!(s.into_inner().unwrap(), w.bytes(), "streaming agrees");
        let mut c = ChunkedWriter::with_options(64, options);
        chunked(&mut c);
        let chunks: Vec<u8> = c
            .finish_chunks()
            .unwrap()
            .into_iter()
            .flat_map(|c| c.data)
            .collect();
        assert_eq!(chunks, w.bytes(), "chunks agree");
        if let Some(dir) = std::env::var_os("SDK_FEATURES_OUT") {
            let mode = if compact { "compact" } else { "default" };
            let path = std::path::Path::new(&dir).join(format!("{name}-{mode}.pftrace"));
            std::fs::write(path, w.bytes()).unwrap();
        }
        let t = inspect::decode(w.bytes()).unwrap();
        assert_eq!(t.problems, vec![], "{name}");
        t
    });
    assert_eq!(
        traces[0].slices, traces[1].slices,
        "both modes show the same"
    );
    assert_eq!(traces[0].tracks, traces[1].tracks);
    traces
}

macro_rules! all_writers {
    ($f:ident) => {
        run(
            stringify!($f),
            $f::<Writer>,
            $f::<Streaming>,
            $f::<ChunkedWriter>,
        )
    };
}

fn descriptions<W: TraceWriter>(w: &mut W) {
    let about_p = ProcessOptions {
        description: Some("answers queries"),
    };
    let p = w.process_with("p", Some(10), "svc", &[], &about_p).unwrap();
    // The same description again is the same process; another is refused.
    assert_eq!(
        w.process_with("p", Some(10), "svc", &[], &about_p).unwrap(),
        p
    );
    assert!(matches!(
        w.process("p", Some(10), "svc", &[]),
        Err(Error::Redefined(_))
    ));
    let about_t = ThreadOptions {
        description: Some("parses requests"),
    };
    let t = w.thread_with(p, "t", Some(11), "main", &about_t).unwrap();
    assert!(matches!(
        w.thread_with(p, "t", Some(11), "main", &ThreadOptions::default()),
        Err(Error::Redefined(_))
    ));
    let lane = w
        .async_lane_with(
            p,
            "io",
            &LaneOptions {
                description: Some("block reads"),
            },
        )
        .unwrap();
    assert!(matches!(w.async_lane(p, "io"), Err(Error::Redefined(_))));
    let named = w
        .track(
            ParentTrack::Root,
            "deploys",
            &TrackOptions {
                description: Some("one instant per release"),
                ..Default::default()
            },
        )
        .unwrap();
    let counter = w
        .counter_track(
            p,
            "heap",
            &CounterOptions {
                track: TrackOptions {
                    description: Some("bytes live after each collection"),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .unwrap();
    let plain = w.thread(p, "u", Some(12), "plain").unwrap();
    for i in 0..6 {
        let ts = 100 + i * 100;
        // Two spans in flight at once: the lane has two tracks.
        w.async_span_begin(lane, 2 * i, ts, "read", "", "", 0)
            .unwrap();
        w.async_span_begin(lane, 2 * i + 1, ts + 1, "read", "", "", 0)
            .unwrap();
        w.async_span_end(lane, 2 * i, ts + 50).unwrap();
        w.async_span_end(lane, 2 * i + 1, ts + 60).unwrap();
        w.complete_span(t, ts, ts + 10, "parse", "", "", 0).unwrap();
        w.complete_span(plain, ts, ts + 10, "idle", "", "", 0)
            .unwrap();
        w.counter(counter, ts, i as i64).unwrap();
    }
    w.instant(lane, 150, &Event::new("retry")).unwrap();
    w.instant(named, 50, &Event::new("v1")).unwrap();
    let long = "d".repeat(perfetto_trace_writer::MAX_STRING_LEN + 1);
    let too_long = TrackOptions {
        description: Some(&long),
        ..Default::default()
    };
    assert!(matches!(
        w.track(ParentTrack::Root, "x", &too_long),
        Err(Error::StringTooLong(_))
    ));
    w.finish().unwrap();
}

#[test]
fn every_kind_of_track_carries_its_description() {
    let [t, _] = all_writers!(descriptions);
    let described = |name: &str| -> Vec<Option<&str>> {
        t.tracks
            .values()
            .filter(|tr| tr.name.as_deref() == Some(name))
            .map(|tr| tr.description.as_deref())
            .collect()
    };
    assert_eq!(described("svc"), [Some("answers queries")]);
    assert_eq!(described("main"), [Some("parses requests")]);
    assert_eq!(described("plain"), [None]);
    assert_eq!(described("deploys"), [Some("one instant per release")]);
    assert_eq!(
        described("heap"),
        [Some("bytes live after each collection")]
    );
    // The lane's own track and its two span tracks.
    assert_eq!(described("io"), [Some("block reads"); 3]);
    assert!(!t.tracks.values().any(|tr| tr.name.as_deref() == Some("x")));
}
