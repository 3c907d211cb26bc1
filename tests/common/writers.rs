//! One scenario on every writer in both modes: the writers must agree byte
//! for byte, each trace must read back without a problem, and both modes
//! must show the same.

use perfetto_trace_writer::inspect::{self, Trace};
use perfetto_trace_writer::{ChunkedWriter, Options, StreamingPerfettoWriter, Writer};

pub type Streaming = StreamingPerfettoWriter<Vec<u8>>;

/// A scenario's trace in each mode (default, then compact), with its bytes.
pub struct Traces {
    pub decoded: [Trace; 2],
    pub bytes: [Vec<u8>; 2],
}

/// Runs a scenario, given for each writer, from `base` options.
pub fn run_all(
    base: Options,
    buffered: fn(&mut Writer),
    streaming: fn(&mut Streaming),
    chunked: fn(&mut ChunkedWriter),
) -> Traces {
    let bytes = [false, true].map(|compact| {
        let options = base.compact(compact);
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
        w.into_bytes()
    });
    let decoded = [0, 1].map(|i| {
        let t = inspect::decode(&bytes[i]).unwrap();
        assert_eq!(t.problems, vec![]);
        t
    });
    assert_eq!(
        decoded[0].slices, decoded[1].slices,
        "both modes show the same"
    );
    assert_eq!(decoded[0].tracks, decoded[1].tracks);
    assert_eq!(decoded[0].counters, decoded[1].counters);
    assert_eq!(decoded[0].logs, decoded[1].logs);
    Traces { decoded, bytes }
}

/// [`run_all`] of a function generic over the writer, from default options.
#[macro_export]
macro_rules! on_every_writer {
    ($f:ident) => {
        $crate::common::writers::run_all(
            perfetto_trace_writer::Options::new(),
            $f::<perfetto_trace_writer::Writer>,
            $f::<$crate::common::writers::Streaming>,
            $f::<perfetto_trace_writer::ChunkedWriter>,
        )
    };
    ($options:expr, $f:ident) => {
        $crate::common::writers::run_all(
            $options,
            $f::<perfetto_trace_writer::Writer>,
            $f::<$crate::common::writers::Streaming>,
            $f::<perfetto_trace_writer::ChunkedWriter>,
        )
    };
}
