//! Arbitrary bytes become a call sequence (misuse included); both writers,
//! through well-behaved and misbehaving sinks, must agree with the reference
//! model of the property tests, produce the same canonical bytes, and show
//! exactly the calls that succeeded.
//!
//! ```sh
//! cd fuzz && cargo fuzz run -s none calls -- -max_total_time=600
//! ```
#![no_main]

#[path = "../../tests/common/mod.rs"]
mod common;

use common::{Driver, Meta, On, Op, Trickle, Ts};
use libfuzzer_sys::fuzz_target;
use perfetto_trace_writer::{protos, Options, StreamingPerfettoWriter, Writer};
use prost::Message;

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from(self.u8()?) << 8 | u16::from(self.u8()?))
    }
    fn u64(&mut self) -> Option<u64> {
        (0..8).try_fold(0u64, |v, _| Some(v << 8 | u64::from(self.u8()?)))
    }
    fn text(&mut self) -> Option<String> {
        const POOL: [&str; 6] = ["", "a", "query", "é漢字🎉\u{10FFFF}", "\u{0}nul", "parse"];
        let pick = self.u8()?;
        if pick < 200 {
            return Some(POOL[pick as usize % POOL.len()].to_owned());
        }
        let len = (self.u8()? as usize).min(self.0.len());
        let (raw, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(String::from_utf8_lossy(raw).into_owned())
    }
    fn ts(&mut self) -> Option<Ts> {
        Some(match self.u8()? % 8 {
            0..=3 => Ts::Forward(self.u16()? % 1000),
            4 => Ts::Same,
            5 => Ts::Back(self.u16()?),
            6 => Ts::Exactly(self.u64()?),
            _ => Ts::Exactly([0, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX][self.u8()? as usize % 4]),
        })
    }
    fn meta(&mut self) -> Option<Meta> {
        Some(Meta {
            name: self.text()?,
            category: self.text()?,
            file: self.text()?,
            line: u32::from(self.u16()?),
            extras: self.u8()? % 7,
        })
    }
    /// A thread or (one time in four) a named track.
    fn on(&mut self, index: usize) -> Option<On> {
        Some(On { named: self.u8()? % 4 == 0, index })
    }
    fn op(&mut self) -> Option<Op> {
        let index = usize::from(self.u8()?);
        Some(match self.u8()? % 18 {
            0 => Op::Process {
                key: self.u8()? % 4,
                pid: [None, Some(1), Some(2), Some(0), Some(i32::MIN)][self.u8()? as usize % 5],
                name: self.text()?,
                cmdline: (0..self.u8()? % 3).map(|_| self.text()).collect::<Option<_>>()?,
            },
            1 => Op::Thread {
                process: index,
                key: self.u8()? % 4,
                tid: [None, Some(3), Some(4), Some(0), Some(i64::MAX)][self.u8()? as usize % 5],
                name: self.text()?,
            },
            2 => Op::Lane { parent: index, on_thread: self.u8()? % 2 == 0, name: self.u8()? % 3 },
            3 | 4 => Op::Begin { on: self.on(index)?, ts: self.ts()?, meta: self.meta()? },
            5 | 6 => Op::End { on: self.on(index)?, ts: self.ts()? },
            7 => Op::Complete { on: self.on(index)?, ts: self.ts()?, dur: self.u16()? % 3000, meta: self.meta()? },
            8 => Op::AsyncBegin { lane: index, id: self.u8()? % 8, ts: self.ts()?, meta: self.meta()? },
            9 => Op::AsyncEnd { lane: index, id: self.u8()? % 8, ts: self.ts()? },
            10 => Op::Foreign { which: self.u8()? % 5 },
            11 => Op::Close { ts: self.ts()? },
            12 => [Op::Flush, Op::Finish, Op::Deep { thread: index }][self.u8()? as usize % 3].clone(),
            13 => Op::Instant { target: self.u8()?, index, ts: self.ts()?, meta: self.meta()? },
            14 => Op::Named { parent: self.u8()?, index, name: self.u8()? % 3, options: self.u8()? % 4 },
            16 => Op::CompleteAtDepth { on: self.on(index)?, ts: self.ts()?, dur: self.u16()? % 3000, depth: self.u8()? % 6, meta: self.meta()? },
            15 => Op::CounterTrack { parent: self.u8()?, index, name: self.u8()? % 3, kind: self.u8()? % 3 },
            _ => Op::Counter { index, ts: self.ts()?, value: i64::from(self.u8()?) - 128, double: self.u8()? % 2 == 0 },
        })
    }
}

fuzz_target!(|data: &[u8]| {
    let mut bytes = Bytes(data);
    let Some(mode) = bytes.u8() else { return };
    let compact = mode & 1 == 1;
    let threshold = 1 + usize::from(mode >> 1) * 16;
    let ops: Vec<Op> = std::iter::from_fn(|| bytes.op()).take(200).collect();

    let options = Options::new().compact(compact).flush_threshold(threshold);
    let mut buffered = Writer::with_options(options);
    let mut model = Driver::new();
    model.run(&mut buffered, &ops);

    let trickle = Trickle { data: vec![], max: 1 + usize::from(mode % 7), calls: 0 };
    let mut streaming = StreamingPerfettoWriter::with_options(trickle, options);
    let mut other = Driver::new();
    other.run(&mut streaming, &ops);
    assert_eq!(model.outcomes, other.outcomes);
    assert_eq!(streaming.into_inner().unwrap().data, buffered.bytes());

    let trace = protos::Trace::decode(buffered.bytes()).unwrap();
    assert_eq!(trace.encode_to_vec(), buffered.bytes());
    model.check_trace(buffered.bytes());
});
