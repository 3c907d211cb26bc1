//! The trace's clock: CLOCK_BOOTTIME, the clock Perfetto assumes for track
//! events that name none, so that the trace lines up with system traces.

/// Nanoseconds since boot.
#[inline]
pub(crate) fn now() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; BOOTTIME exists on every
    // Linux since 2.6.39 and the call cannot fail with valid arguments.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
