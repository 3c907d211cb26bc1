//! The trace's clock: CLOCK_BOOTTIME nanoseconds, the clock Perfetto
//! assumes for track events that name none, so that the trace lines up with
//! system traces.
//!
//! `clock_gettime` costs 20 to 30 ns a read (the vDSO orders its TSC read
//! with `lfence`, which waits for the pipeline), and a span reads it four
//! times. Where the TSC is invariant and the kernel itself keeps time by it
//! (its clocksource is `tsc`), each thread instead reads the TSC unordered
//! and scales it by a conversion measured against BOOTTIME, which it keeps
//! in its own state (no shared load) until the conversion expires every
//! [`INTERVAL_NS`]; then the first thread past it measures BOOTTIME again
//! (a thread that finds it doing so reads `clock_gettime` meanwhile).
//! A new conversion starts where the old one ended, at its value there or
//! higher (it steps forward, or it slews: runs slower until it meets
//! BOOTTIME), so time never goes back; each thread also keeps its last
//! value, as an unordered read may run early. Elsewhere: `clock_gettime`.
//!
//! How far it strays from BOOTTIME: a measured pair (TSC, BOOTTIME) is off
//! by at most half the narrowest of a few windows (about 30 ns), the rate
//! measured between two pairs an interval apart by twice that over the
//! interval (about 1 ppm, 0.05 µs an interval); what remains is how much
//! BOOTTIME's own rate (NTP's adjustment, at most 500 ppm either way) moves
//! within an interval: at most 1000 ppm of 50 ms, 50 µs, and in practice a
//! few ppm, well under a microsecond.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

/// Fixed-point bits of a conversion's nanoseconds per tick.
const SHIFT: u32 = 32;

/// BOOTTIME read through `clock_gettime` alone after the first reading,
/// before the first conversion: the span its rate is measured over.
const WARM_NS: u64 = 10_000_000;

/// How long a conversion serves (BOOTTIME nanoseconds, in ticks at the
/// measured rate).
const INTERVAL_NS: u64 = 50_000_000;

/// Nanoseconds since boot, by `clock_gettime`.
#[inline]
pub(crate) fn boottime() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; BOOTTIME exists on every
    // Linux since 2.6.39 and the call cannot fail with valid arguments.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The TSC, unordered: it may be read a little before or after the code
/// around it runs.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn rdtsc() -> u64 {
    // SAFETY: every x86_64 CPU has RDTSC; user mode may use it unless the
    // thread asked the kernel to forbid it (`invariant_tsc` checks).
    #[allow(unused_unsafe)]
    unsafe {
        std::arch::x86_64::_rdtsc()
    }
}

/// Not read on other architectures (see [`invariant_tsc`]).
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn rdtsc() -> u64 {
    0
}

/// The TSC, ordered after everything before it (for calibrating).
#[cfg(target_arch = "x86_64")]
fn rdtsc_ordered() -> u64 {
    // SAFETY: LFENCE exists wherever SSE2 does, which x86_64 requires.
    #[allow(unused_unsafe)]
    unsafe {
        std::arch::x86_64::_mm_lfence()
    };
    rdtsc()
}

#[cfg(not(target_arch = "x86_64"))]
fn rdtsc_ordered() -> u64 {
    0
}

/// Whether the TSC ticks at one rate in every power state and the kernel
/// keeps time by it (so it trusts it to agree across CPUs).
#[cfg(target_arch = "x86_64")]
pub(crate) fn invariant_tsc() -> bool {
    use std::arch::x86_64::__cpuid;
    // SAFETY: CPUID exists on every x86_64 CPU; leaves past the highest
    // one offered are not asked for.
    #[allow(unused_unsafe)]
    let invariant = unsafe {
        __cpuid(0x8000_0000).eax >= 0x8000_0007 && __cpuid(0x8000_0007).edx & (1 << 8) != 0
    };
    let kernel =
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .is_ok_and(|s| s.trim() == "tsc");
    // A thread may have asked for RDTSC to fault (PR_SET_TSC; inherited).
    let mut allowed: libc::c_int = 0;
    // SAFETY: PR_GET_TSC writes one int through the pointer given.
    let asked = unsafe { libc::prctl(libc::PR_GET_TSC, &mut allowed as *mut libc::c_int) };
    invariant && kernel && asked == 0 && allowed == libc::PR_TSC_ENABLE
}

#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn invariant_tsc() -> bool {
    false
}

/// A TSC reading and BOOTTIME read at the same moment (between two TSC
/// readings, taken as their middle).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    tsc: u64,
    ns: u64,
}

/// The narrowest of a few windows: a preempted one is not taken.
fn sample() -> Sample {
    let mut best = (u64::MAX, Sample { tsc: 0, ns: 0 });
    for _ in 0..5 {
        let before = rdtsc_ordered();
        let ns = boottime();
        let after = rdtsc_ordered();
        let window = after.wrapping_sub(before);
        if window < best.0 {
            let tsc = before.wrapping_add(window / 2);
            best = (window, Sample { tsc, ns });
        }
    }
    best.1
}

/// `ticks` at `mult` nanoseconds per 2^SHIFT ticks.
#[inline(always)]
fn scale(ticks: u64, mult: u64) -> u64 {
    ((u128::from(ticks) * u128::from(mult)) >> SHIFT) as u64
}

/// The rate from `a` to `b` (nanoseconds per 2^SHIFT ticks), if plausible:
/// a TSC between 10 MHz and 100 GHz, which moved forward.
fn rate(a: Sample, b: Sample) -> Option<u64> {
    let ticks = b.tsc.checked_sub(a.tsc).filter(|&t| t > 0)?;
    let ns = b.ns.checked_sub(a.ns)?;
    let mult = (u128::from(ns) << SHIFT) / u128::from(ticks);
    let plausible = (1u128 << SHIFT) / 100..=(100u128 << SHIFT);
    plausible.contains(&mult).then_some(mult as u64)
}

/// BOOTTIME as a function of the TSC over `[base_tsc, base_tsc + span)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Conversion {
    base_tsc: u64,
    base_ns: u64,
    mult: u64,
    span: u64,
}

impl Conversion {
    /// Its value at `tsc` (at its base before it).
    fn at(&self, tsc: u64) -> u64 {
        self.base_ns + scale(tsc.saturating_sub(self.base_tsc), self.mult)
    }

    /// The first TSC value past it.
    fn end(&self) -> u64 {
        self.base_tsc.saturating_add(self.span)
    }
}

/// Where the clock is.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Not yet asked: the source is decided on first use.
    Undecided,
    /// On the TSC, measuring its rate since the first reading.
    Warming(Sample),
    /// On the TSC by `conversion`, measured at `last`.
    Tsc {
        conversion: Conversion,
        last: Sample,
    },
    /// On `clock_gettime`, for good.
    Syscall,
}

/// Which clock to use.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Source {
    /// The TSC where it is invariant and the kernel's clocksource.
    Auto,
    /// `clock_gettime` (tests).
    #[cfg_attr(not(test), allow(dead_code))]
    Syscall,
}

/// What a conversion is measured by: the source, the spans, and how a
/// pair is read (a test may pass one that fails).
pub(crate) struct Calibration {
    phase: Mutex<Phase>,
    /// While warming, the BOOTTIME at which to measure; 0 otherwise.
    warm_until: AtomicU64,
    source: Source,
    warm_ns: u64,
    interval_ns: u64,
    sampler: fn() -> Sample,
    /// Conversions measured so far (tests look).
    #[cfg_attr(not(test), allow(dead_code))]
    generation: AtomicU64,
}

/// The process's clock.
static CLOCK: Calibration = Calibration::new(Source::Auto, WARM_NS, INTERVAL_NS, sample);

/// What a thread gets from the calibration.
enum Current {
    /// Convert by it.
    Tsc(Conversion),
    /// BOOTTIME as read, this time: still warming, or another thread
    /// holds the calibration.
    Read(u64),
    /// Use `clock_gettime` from now on.
    Syscall,
}

impl Calibration {
    pub(crate) const fn new(
        source: Source,
        warm_ns: u64,
        interval_ns: u64,
        sampler: fn() -> Sample,
    ) -> Self {
        Calibration {
            phase: Mutex::new(Phase::Undecided),
            warm_until: AtomicU64::new(0),
            source,
            warm_ns,
            interval_ns,
            sampler,
            generation: AtomicU64::new(0),
        }
    }

    /// The phase, waited for (tests; readers never wait).
    #[cfg(test)]
    fn lock(&self) -> MutexGuard<'_, Phase> {
        // The phase is whole between statements: a panic cannot tear it.
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The phase unless another thread holds it: no reader waits for
    /// another (nor forever, in a child forked while a thread held it).
    fn try_lock(&self) -> Option<MutexGuard<'_, Phase>> {
        match self.phase.try_lock() {
            Ok(phase) => Some(phase),
            // Whole between statements: a panic cannot tear it.
            Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Whether readers may use the TSC (decided on the first call; if
    /// another thread holds the phase, yes: its reads find out).
    fn uses_tsc(&self) -> bool {
        let Some(mut phase) = self.try_lock() else {
            return true;
        };
        if let Phase::Undecided = *phase {
            *phase = match self.source == Source::Auto && invariant_tsc() {
                true => {
                    let first = (self.sampler)();
                    self.warm_until.store(
                        first.ns.saturating_add(self.warm_ns).max(1),
                        Ordering::Relaxed,
                    );
                    Phase::Warming(first)
                }
                false => Phase::Syscall,
            };
        }
        !matches!(*phase, Phase::Syscall)
    }

    /// The conversion for a thread whose own has expired at `tsc`,
    /// measured anew if nobody has yet.
    fn current(&self, tsc: u64) -> Current {
        // While warming, most readers need no lock.
        let warm = self.warm_until.load(Ordering::Relaxed);
        if warm != 0 {
            let ns = boottime();
            if ns < warm {
                return Current::Read(ns);
            }
        }
        let Some(mut phase) = self.try_lock() else {
            return Current::Read(boottime());
        };
        match *phase {
            Phase::Undecided => {
                drop(phase);
                match self.uses_tsc() {
                    true => Current::Read(boottime()),
                    false => Current::Syscall,
                }
            }
            Phase::Syscall => Current::Syscall,
            Phase::Warming(first) => {
                let now = (self.sampler)();
                if now.ns < first.ns.saturating_add(self.warm_ns) {
                    return Current::Read(now.ns);
                }
                self.warm_until.store(0, Ordering::Relaxed);
                let Some(mult) = rate(first, now) else {
                    *phase = Phase::Syscall;
                    return Current::Syscall;
                };
                let conversion = Conversion {
                    base_tsc: now.tsc,
                    base_ns: now.ns,
                    mult,
                    span: self.ticks(mult),
                };
                self.generation.fetch_add(1, Ordering::Relaxed);
                *phase = Phase::Tsc {
                    conversion,
                    last: now,
                };
                Current::Tsc(conversion)
            }
            Phase::Tsc { conversion, last } => {
                let in_range = |t: u64| t.wrapping_sub(conversion.base_tsc) < conversion.span;
                // Another thread measured it already (or this one read a
                // CPU's TSC a little behind the one it was measured on).
                if in_range(tsc) {
                    return Current::Tsc(conversion);
                }
                let now = (self.sampler)();
                if in_range(now.tsc) {
                    return Current::Tsc(conversion);
                }
                let conversion = self.next(conversion, last, now);
                self.generation.fetch_add(1, Ordering::Relaxed);
                *phase = Phase::Tsc {
                    conversion,
                    last: now,
                };
                Current::Tsc(conversion)
            }
        }
    }

    /// An interval in ticks at `mult`.
    fn ticks(&self, mult: u64) -> u64 {
        ((u128::from(self.interval_ns) << SHIFT) / u128::from(mult.max(1))) as u64
    }

    /// The conversion after `old`, from the pair `now` and the one before,
    /// `last`: from where `old` ends (nothing was converted past it) at
    /// BOOTTIME's value there if `old` lags, else at `old`'s value, slower
    /// so as to meet BOOTTIME an interval after `now`.
    fn next(&self, old: Conversion, last: Sample, now: Sample) -> Conversion {
        let start = old.end();
        if now.tsc < start {
            // The TSC went back (reset over a suspend): its rate is
            // unchanged; on from BOOTTIME, above all `old` gave.
            return Conversion {
                base_tsc: now.tsc,
                base_ns: now.ns.max(old.at(start)),
                mult: old.mult,
                span: self.ticks(old.mult),
            };
        }
        let mult = rate(last, now).unwrap_or(old.mult);
        let span_after = self.ticks(mult);
        let old_at_start = old.at(start);
        // BOOTTIME's line through `now`, at `start` and an interval on.
        let line_at_start = now.ns.saturating_sub(scale(now.tsc - start, mult));
        if old_at_start <= line_at_start {
            return Conversion {
                base_tsc: start,
                base_ns: line_at_start,
                mult,
                span: now.tsc - start + span_after,
            };
        }
        let target = now.ns + scale(span_after, mult);
        let ticks = now.tsc - start + span_after;
        let slewed = target
            .checked_sub(old_at_start)
            .map(|ns| ((u128::from(ns) << SHIFT) / u128::from(ticks.max(1))) as u64)
            .unwrap_or(0);
        Conversion {
            base_tsc: start,
            base_ns: old_at_start,
            // At most half as slow: a wild pair is undone over intervals.
            mult: slewed.max(mult / 2),
            span: ticks,
        }
    }

    /// The conversion in use, if on the TSC (tests).
    #[cfg(test)]
    fn conversion(&self) -> Option<Conversion> {
        match *self.lock() {
            Phase::Tsc { conversion, .. } => Some(conversion),
            _ => None,
        }
    }

    /// Moves the conversion in use `ns` ahead (tests: a clock that ran fast).
    #[cfg(test)]
    fn skew(&self, ns: u64) {
        if let Phase::Tsc { conversion, .. } = &mut *self.lock() {
            conversion.base_ns += ns;
        }
    }
}

/// A thread's clock: its copy of the conversion, and its last value.
pub(crate) struct ThreadClock {
    tsc: bool,
    conversion: Conversion,
    last: u64,
}

impl ThreadClock {
    /// A clock on the process's source.
    pub(crate) fn new() -> Self {
        Self::on(&CLOCK)
    }

    fn on(calibration: &Calibration) -> Self {
        ThreadClock {
            tsc: calibration.uses_tsc(),
            // Empty: the first read asks for the conversion.
            conversion: Conversion {
                base_tsc: 0,
                base_ns: 0,
                mult: 0,
                span: 0,
            },
            last: 0,
        }
    }

    /// BOOTTIME nanoseconds now, never less than this clock gave before.
    #[inline(always)]
    pub(crate) fn now(&mut self) -> u64 {
        self.now_on(&CLOCK)
    }

    #[inline(always)]
    fn now_on(&mut self, calibration: &Calibration) -> u64 {
        let ns = self.read(calibration).max(self.last);
        self.last = ns;
        ns
    }

    /// Sets this clock `ns` ahead of where it is: as a thread whose copy of
    /// the conversion runs ahead of another's.
    #[cfg(test)]
    pub(crate) fn run_ahead(&mut self, ns: u64) {
        self.last = self.now() + ns;
    }

    /// The time as read, unclamped.
    #[inline(always)]
    fn read(&mut self, calibration: &Calibration) -> u64 {
        if !self.tsc {
            return boottime();
        }
        let c = &self.conversion;
        let ticks = rdtsc().wrapping_sub(c.base_tsc);
        // One compare: before the base it wraps past the span.
        if ticks < c.span {
            return c.base_ns + scale(ticks, c.mult);
        }
        self.refresh(calibration)
    }

    /// The conversion expired (or the TSC is before it): a new one, and
    /// the time by it.
    #[cold]
    #[inline(never)]
    fn refresh(&mut self, calibration: &Calibration) -> u64 {
        match calibration.current(rdtsc()) {
            Current::Tsc(conversion) => {
                self.conversion = conversion;
                // Read again: the first read may be from before it.
                conversion.at(rdtsc())
            }
            Current::Read(ns) => ns,
            Current::Syscall => {
                self.tsc = false;
                boottime()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How far from BOOTTIME a value may be (see the module's docs).
    const BOUND_NS: u64 = 50_000;

    /// A calibration that warms for 1 ms and serves 2 ms.
    fn quick(source: Source) -> &'static Calibration {
        Box::leak(Box::new(Calibration::new(
            source, 1_000_000, 2_000_000, sample,
        )))
    }

    fn on_tsc() -> bool {
        if !invariant_tsc() {
            eprintln!("no invariant TSC kept by the kernel here: clock_gettime is used");
            return false;
        }
        true
    }

    /// Reads `clock` between two BOOTTIME reads until `calibration` has
    /// measured `conversions` times, checking each value against them and
    /// against the value before; whether each stayed within the bound.
    fn read_through(
        calibration: &Calibration,
        clock: &mut ThreadClock,
        conversions: u64,
        mut each: impl FnMut(u64, u64, u64),
    ) {
        let mut last = 0;
        let mut reads = 0u64;
        while calibration.generation.load(Ordering::Relaxed) < conversions {
            let before = boottime();
            let ns = clock.now_on(calibration);
            let after = boottime();
            assert!(ns >= last, "went back: {ns} after {last}");
            each(before, ns, after);
            last = ns;
            reads += 1;
        }
        assert!(reads > 0);
    }

    #[test]
    fn the_tsc_clock_stays_near_boottime_across_conversions() {
        if !on_tsc() {
            return;
        }
        let calibration = quick(Source::Auto);
        let mut clock = ThreadClock::on(calibration);
        assert!(clock.tsc);
        let mut worst = 0;
        read_through(calibration, &mut clock, 20, |before, ns, after| {
            let off = before.saturating_sub(ns).max(ns.saturating_sub(after));
            worst = worst.max(off);
            assert!(
                off <= BOUND_NS,
                "{off} ns from BOOTTIME ({before}..{after}: {ns})"
            );
        });
        eprintln!("at most {worst} ns from BOOTTIME");
        assert!(clock.tsc, "the TSC clock fell back");
    }

    #[test]
    fn a_new_conversion_starts_at_or_above_where_the_old_one_ends() {
        if !on_tsc() {
            return;
        }
        let calibration = quick(Source::Auto);
        let mut clock = ThreadClock::on(calibration);
        read_through(calibration, &mut clock, 1, |_, _, _| {});
        let mut old = calibration.conversion().expect("on the TSC");
        for round in 0..20u64 {
            // Every other conversion runs 20 µs fast: the next must slew.
            let skewed = round % 2 == 1;
            if skewed {
                calibration.skew(20_000);
                old.base_ns += 20_000;
            }
            let generation = calibration.generation.load(Ordering::Relaxed);
            read_through(calibration, &mut clock, generation + 1, |_, _, _| {});
            let new = calibration.conversion().expect("on the TSC");
            assert_eq!(new.base_tsc, old.end(), "{old:?} then {new:?}");
            assert!(new.base_ns >= old.at(new.base_tsc), "{old:?} then {new:?}");
            if skewed {
                assert_eq!(
                    new.base_ns,
                    old.at(new.base_tsc),
                    "stepped: {old:?} then {new:?}"
                );
                assert!(new.mult < old.mult, "not slower: {old:?} then {new:?}");
            }
            old = new;
        }
        // Slewed back within the bound (each 20 µs is undone in two
        // intervals).
        read_through(
            calibration,
            &mut clock,
            calibration.generation.load(Ordering::Relaxed) + 2,
            |_, _, _| {},
        );
        let (before, ns, after) = (boottime(), clock.now_on(calibration), boottime());
        assert!(ns + BOUND_NS >= before && ns <= after + BOUND_NS);
    }

    #[test]
    fn each_thread_goes_forward_on_one_clock() {
        if !on_tsc() {
            return;
        }
        let calibration = quick(Source::Auto);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    let mut clock = ThreadClock::on(calibration);
                    read_through(calibration, &mut clock, 10, |before, ns, after| {
                        assert!(ns + BOUND_NS >= before && ns <= after + BOUND_NS);
                    });
                });
            }
        });
    }

    #[test]
    fn the_syscall_clock_reads_boottime() {
        let calibration = quick(Source::Syscall);
        let mut clock = ThreadClock::on(calibration);
        assert!(!clock.tsc);
        let mut last = 0;
        for _ in 0..100_000 {
            let before = boottime();
            let ns = clock.now_on(calibration);
            let after = boottime();
            assert!(before <= ns && ns <= after && ns >= last);
            last = ns;
        }
        assert_eq!(calibration.generation.load(Ordering::Relaxed), 0);
    }

    /// A reader that finds the calibration held reads BOOTTIME rather than
    /// wait (with a lock, this test would wait on itself).
    #[test]
    fn a_reader_does_not_wait_for_the_calibration() {
        if !on_tsc() {
            return;
        }
        let calibration = quick(Source::Auto);
        let mut clock = ThreadClock::on(calibration);
        read_through(calibration, &mut clock, 1, |_, _, _| {});
        let held = calibration.lock();
        let generation = calibration.generation.load(Ordering::Relaxed);
        let mut last = 0;
        // Past the conversion's end, so reads ask for the next.
        let past = last_end_ns(&held) + 3_000_000;
        while boottime() < past {
            let before = boottime();
            let ns = clock.now_on(calibration);
            let after = boottime();
            assert!(ns >= last && ns + BOUND_NS >= before && ns <= after + BOUND_NS);
            last = ns;
        }
        assert_eq!(calibration.generation.load(Ordering::Relaxed), generation);
        drop(held);
        read_through(calibration, &mut clock, generation + 1, |_, _, _| {});
    }

    /// BOOTTIME where the held phase's conversion ends.
    fn last_end_ns(phase: &Phase) -> u64 {
        match *phase {
            Phase::Tsc { conversion, .. } => conversion.at(conversion.end()),
            _ => panic!("on the TSC"),
        }
    }

    /// A read that comes out early (reordered, or a CPU's TSC a little
    /// behind) gives the thread's last time again.
    #[test]
    fn a_read_before_the_last_gives_the_last() {
        for source in [Source::Auto, Source::Syscall] {
            let calibration = quick(source);
            let mut clock = ThreadClock::on(calibration);
            let ahead = boottime() + 1_000_000_000;
            clock.last = ahead;
            assert_eq!(clock.now_on(calibration), ahead);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn a_thread_forbidden_the_tsc_does_not_use_it() {
        let forbidden = std::thread::spawn(|| {
            // SAFETY: PR_SET_TSC takes an integer; only this thread (which
            // reads no time after) is affected.
            let set = unsafe { libc::prctl(libc::PR_SET_TSC, libc::PR_TSC_SIGSEGV) };
            (set == 0).then(invariant_tsc)
        })
        .join()
        .expect("the thread ran");
        match forbidden {
            Some(uses) => assert!(!uses),
            None => eprintln!("PR_SET_TSC refused here"),
        }
    }

    /// A TSC that does not move.
    fn stuck() -> Sample {
        Sample {
            tsc: 1000,
            ns: boottime(),
        }
    }

    #[test]
    fn a_calibration_that_fails_falls_back_to_the_syscall() {
        if !on_tsc() {
            return;
        }
        let calibration: &'static Calibration = Box::leak(Box::new(Calibration::new(
            Source::Auto,
            1_000_000,
            2_000_000,
            stuck,
        )));
        let mut clock = ThreadClock::on(calibration);
        assert!(clock.tsc);
        let mut last = 0;
        while clock.tsc {
            let before = boottime();
            let ns = clock.now_on(calibration);
            let after = boottime();
            // Warming, then falling back: BOOTTIME as read, all along.
            assert!(before <= ns && ns <= after && ns >= last);
            last = ns;
        }
        assert!(calibration.conversion().is_none());
        let (before, ns) = (boottime(), clock.now_on(calibration));
        assert!(ns >= before);
    }

    #[test]
    fn a_reset_tsc_starts_a_conversion_above_the_old_one() {
        let calibration = quick(Source::Auto);
        let old = Conversion {
            base_tsc: 1 << 40,
            base_ns: 5_000_000_000,
            mult: 1 << 31,
            span: 1 << 20,
        };
        let last = Sample {
            tsc: 1 << 40,
            ns: 5_000_000_000,
        };
        // Back to few ticks, BOOTTIME on by a suspend; then by less than
        // the old conversion gave.
        for ns in [9_000_000_000, 5_000_000_100] {
            let new = calibration.next(old, last, Sample { tsc: 1000, ns });
            assert_eq!(new.base_tsc, 1000);
            assert_eq!(new.base_ns, ns.max(old.at(old.end())));
            assert_eq!(new.mult, old.mult);
        }
    }
}
