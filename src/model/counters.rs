//! Incremental counters: the running totals the trace processor's sums
//! must go on from when incremental state is cleared.

use crate::model::registry::FastMap;
use crate::track_options::CounterSample;

/// What an incremental counter's values have added up to. The trace
/// processor keeps an incremental counter's sum in the sequence's
/// incremental state, which a new interning generation clears: the first
/// value written after a clear is the total so far, not the increment, so
/// the reader's sum goes on from where it was.
#[derive(Default)]
struct RunningTotal {
    int: i128,
    double: f64,
    /// Whether any value was floating point: the total is then one too.
    doubles: bool,
    /// The generation of incremental state the last value was written in.
    generation: u64,
}

impl RunningTotal {
    /// Adds `value`; what to write, in generation `generation`.
    fn add(&mut self, value: CounterSample, generation: u64) -> CounterSample {
        match value {
            CounterSample::Int(v) => self.int += i128::from(v),
            CounterSample::Double(v) => {
                self.double += v;
                self.doubles = true;
            }
        }
        if generation == self.generation {
            return value;
        }
        self.generation = generation;
        match i64::try_from(self.int) {
            Ok(total) if !self.doubles => CounterSample::Int(total),
            _ => CounterSample::Double(self.int as f64 + self.double),
        }
    }
}

/// The running totals of a writer's incremental counters, by custom track
/// index.
#[derive(Default)]
pub(crate) struct Totals(FastMap<u32, RunningTotal>);

impl Totals {
    /// Starts a total for incremental counter `index` (again: kept).
    pub(crate) fn track(&mut self, index: u32) {
        self.0.entry(index).or_default();
    }

    /// What to write for `value` on counter `index` in `generation`: the
    /// value itself, or for an incremental counter after a clear, the total.
    #[inline]
    pub(crate) fn value(
        &mut self,
        index: u32,
        value: CounterSample,
        generation: u64,
    ) -> CounterSample {
        // Most writers have no incremental counter: no lookup for them.
        if self.0.is_empty() {
            return value;
        }
        match self.0.get_mut(&index) {
            Some(total) => total.add(value, generation),
            None => value,
        }
    }
}
