//! The writers `perfetto-trace-writer` is measured against, and the seeded
//! workloads every comparison replays. Used by this crate's benchmark,
//! tests and example only; not published.

pub mod baselines;
#[path = "../../workload.rs"]
pub mod workload;
