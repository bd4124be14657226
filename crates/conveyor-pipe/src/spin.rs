//! How long a receive spins before it sleeps: an adaptive budget per connection.
//!
//! A round trip between two processes is short: a peer that answers at once replies within a
//! few microseconds. Sleeping in `read` and being woken by the peer's write costs a trip
//! through the scheduler on each side (on the two-vCPU development machine about 20 us per hop
//! when the other CPU was idle), which is most of a round trip. So before a receive sleeps it
//! polls the descriptor with non-blocking reads for a while, yielding the CPU between polls:
//!
//! - **Yield, not busy-wait.** If the peer was woken on this CPU it runs at once instead of
//!   waiting behind a spinner; with nothing else to run, `sched_yield` returns in well under
//!   a microsecond.
//! - **Bounded, and adaptive.** The budget starts at zero (one non-blocking try, then sleep)
//!   and is learned: a poll that finds the bytes after `t` sets the budget to at least `2t`
//!   (at most [`MAX`]); a spin that runs out halves it. So an end whose peer answers fast
//!   spins, and one whose peer is idle (a consumer waiting for work) quickly goes back to
//!   sleeping at once.
//! - **Probes.** Every so often a wait spins for the full [`MAX`] to find out whether
//!   spinning would pay (the budget cannot grow from zero otherwise). A probe that fails
//!   doubles the gap to the next one (up to [`PROBE_GAP_MAX`] waits); a success resets it.
//! - **Backs off under contention.** A yield that takes long ([`YIELD_SLOW`]) means another
//!   program had this CPU: each further yield may hand it a whole time slice, and spinning
//!   only delays our peer and loses the scheduler's preference for sleepers. So the wait goes
//!   to sleep at once, the budget drops to zero, and the next waits (8, doubling while the
//!   contention goes on, up to [`CALM_MAX`]) look once and sleep without yielding; a spin that
//!   pays again resets this.
//! - **A floor of polls.** Every wait polls [`MIN_TRIES`] times, yielding between polls,
//!   whatever its budget: with several busy connections per CPU each yield runs another
//!   thread's work, and the bytes are often there after.
//! - **Yield first for a new message.** Right after a request (or a reply) went out nothing
//!   can have come back yet, so a wait for a new message yields before its first poll.
//!
//! The worst a spin costs is [`MAX`] of one CPU per wait, and on a busy or idle connection
//! the budget falls to nothing within a few waits. This is the one implementation of the
//! spin: every [`Connection`](crate::Connection) waits with it, the manager's included.

use std::time::{Duration, Instant};

/// The longest a wait spins (a probe, or a budget grown to the limit): 50 us, a little more
/// than two sleeping hops.
pub const MAX: Duration = Duration::from_micros(50);

/// A yield that takes longer than this gave the CPU to another program.
pub const YIELD_SLOW: Duration = Duration::from_micros(250);

/// The longest a wait polls without yielding, before the yielding spin, when a poll is cheap
/// (a look at shared memory, no system call): see [`Spin::run_busy_first`]. Short, because a
/// peer that shares this CPU can only answer once this thread gives the CPU up: conveyor-shm
/// measured its ping-pong with both peers on one of the two vCPUs at 16-35 us with a 5 us
/// busy phase and 5-10 us with a 1 us one (0.4 us either way with a CPU each); here a 5 us
/// and a 20 us phase measured the same at load 30 (4.85 us median in the harness).
pub const BUSY_MAX: Duration = Duration::from_micros(1);

/// Busy phases in a row that find nothing before the busy phase is skipped for a while.
const BUSY_MISSES: u32 = 4;

/// Waits that skip the busy phase after [`BUSY_MISSES`] busy phases found nothing.
const BUSY_SKIP: u32 = 64;

/// Polls every wait makes (yielding between them) whatever its budget: with many busy
/// threads per CPU a few yields let the others run and the bytes are often there after.
pub const MIN_TRIES: u32 = 5;

/// Waits that go straight to sleep after a first yield that showed contention; doubled
/// while it goes on, up to [`CALM_MAX`].
const CALM_MIN: u32 = 8;

/// The most waits that go straight to sleep after contention.
const CALM_MAX: u32 = 1024;

/// Waits between probes after a success.
const PROBE_GAP_MIN: u32 = 8;

/// Waits between probes at most, after many failures.
pub const PROBE_GAP_MAX: u32 = 1024;

fn nanos(d: Duration) -> u32 {
    d.as_nanos().min(u128::from(u32::MAX)) as u32
}

/// The adaptive spin budget of one connection end.
#[derive(Debug)]
pub struct Spin {
    /// How long the next ordinary wait spins, in nanoseconds.
    budget: u32,
    /// Waits left before the next probe.
    probe_in: u32,
    /// Waits between probes now.
    probe_gap: u32,
    /// Whether the wait in progress is a probe.
    probing: bool,
    /// Waits left that neither spin nor yield, after a yield showed another program on
    /// this CPU.
    calm: u32,
    /// How many waits the next contention makes calm (doubles while contention goes on).
    calm_gap: u32,
    /// Busy phases in a row that found nothing.
    busy_misses: u32,
    /// Waits left that skip the busy phase.
    busy_skip: u32,
}

impl Default for Spin {
    fn default() -> Self {
        Spin {
            budget: 0,
            probe_in: 0,
            probe_gap: PROBE_GAP_MIN,
            probing: false,
            calm: 0,
            calm_gap: CALM_MIN,
            busy_misses: 0,
            busy_skip: 0,
        }
    }
}

/// What one poll of the socket found.
#[derive(Debug)]
pub enum Poll<T> {
    /// Bytes (or an error, or end of file): done.
    Ready(T),
    /// Nothing yet.
    Empty,
}

impl Spin {
    /// How long this wait may spin.
    fn limit(&mut self) -> u32 {
        if self.probe_in == 0 {
            self.probe_in = self.probe_gap;
            self.probing = true;
            nanos(MAX)
        } else {
            self.probe_in -= 1;
            self.probing = false;
            self.budget
        }
    }

    fn found(&mut self, after: u32, limit: u32) {
        if after <= limit {
            self.calm_gap = CALM_MIN;
            self.budget = nanos(MAX).min(self.budget.max(after.saturating_mul(2)));
            self.probe_gap = PROBE_GAP_MIN;
            self.probe_in = self.probe_in.min(self.probe_gap);
        } else {
            self.missed();
        }
    }

    fn missed(&mut self) {
        self.budget /= 2;
        if self.probing {
            self.probe_gap = (self.probe_gap * 2).min(PROBE_GAP_MAX);
            self.probe_in = self.probe_gap;
        }
    }

    fn contended(&mut self) {
        self.budget = 0;
        self.calm = self.calm_gap;
        self.calm_gap = (self.calm_gap * 2).min(CALM_MAX);
        if self.probing {
            self.probe_gap = (self.probe_gap * 2).min(PROBE_GAP_MAX);
            self.probe_in = self.probe_gap;
        }
    }

    /// Calls `poll` until it is ready or the budget runs out, yielding between calls.
    /// `None`: the caller should block.
    ///
    /// `yield_first`: yield before the first poll too. Right after sending a request (or a
    /// reply) nothing can have come back yet, so a first poll would be a wasted system call;
    /// and when the peer waits on this CPU, yielding at once lets it run (measured: 10 to 13
    /// percent more round trips with client and server pinned to one CPU).
    pub fn run<T>(&mut self, yield_first: bool, mut poll: impl FnMut() -> Poll<T>) -> Option<T> {
        if self.calm > 0 {
            // Another program wants this CPU: yielding would hand it a whole time slice,
            // and spinning would keep the peer off; one look, then sleep.
            self.calm -= 1;
            return match poll() {
                Poll::Ready(t) => Some(t),
                Poll::Empty => None,
            };
        }
        let limit = self.limit();
        let t0 = Instant::now();
        // The clock is read once per yield, after it: that one reading tells a slow yield
        // and measures the wait so far (a reading costs tens of nanoseconds on a VM, and a
        // wait that finds its bytes at the first poll reads it twice instead of four times).
        let mut now = t0;
        if yield_first {
            now = self.pause(now)?;
        }
        let mut tries = 0u32;
        loop {
            if let Poll::Ready(t) = poll() {
                // The poll that found it took time too: at least a nanosecond, so that a
                // budget of zero is never met.
                self.found(nanos(now.duration_since(t0)).max(1), limit);
                return Some(t);
            }
            tries += 1;
            if tries >= MIN_TRIES && nanos(now.duration_since(t0)) >= limit {
                self.missed();
                return None;
            }
            now = self.pause(now)?;
        }
    }

    /// As [`run`](Spin::run), after a busy phase: up to [`BUSY_MAX`] of polls without
    /// yielding, for a `poll` cheap enough to repeat every few tens of nanoseconds (a look at
    /// shared memory). A peer that answers within microseconds is then met within
    /// nanoseconds, without a system call on either side; a yield costs a system call, and
    /// under load it hands the CPU to another program for a whole time slice. Four busy phases
    /// in a row that find nothing skip it for the next 64 waits (an idle peer costs at most
    /// `BUSY_MAX` of CPU per wait, and far less on average), and so do the waits that the
    /// yielding spin makes calm after it saw contention.
    pub fn run_busy_first<T>(&mut self, mut poll: impl FnMut() -> Poll<T>) -> Option<T> {
        match self.busy(&mut poll) {
            Some(t) => Some(t),
            None => self.run(false, poll),
        }
    }

    /// The busy phase of [`run_busy_first`](Spin::run_busy_first).
    fn busy<T>(&mut self, poll: &mut impl FnMut() -> Poll<T>) -> Option<T> {
        if self.busy_skip > 0 {
            self.busy_skip -= 1;
            return None;
        }
        if self.calm > 0 {
            // Another program wants this CPU (see `run`): no busy phase either.
            return None;
        }
        let t0 = Instant::now();
        loop {
            if let Poll::Ready(t) = poll() {
                self.busy_misses = 0;
                return Some(t);
            }
            if t0.elapsed() >= BUSY_MAX {
                break;
            }
            std::hint::spin_loop();
        }
        self.busy_misses += 1;
        if self.busy_misses >= BUSY_MISSES {
            self.busy_misses = 0;
            self.busy_skip = BUSY_SKIP;
        }
        None
    }

    /// Yields the CPU and reads the clock; `None` if the time since `before` (the last
    /// reading: the yield and the poll before it) shows that another program had this CPU
    /// (the spin is then over: see [`YIELD_SLOW`]).
    fn pause(&mut self, before: Instant) -> Option<Instant> {
        std::thread::yield_now();
        let after = Instant::now();
        if after.duration_since(before) > YIELD_SLOW {
            self.contended();
            return None;
        }
        Some(after)
    }

    /// The budget now (for tests).
    #[cfg(test)]
    fn budget(&self) -> Duration {
        Duration::from_nanos(u64::from(self.budget))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_poll_returns_at_once() {
        let mut s = Spin::default();
        let mut n = 0;
        assert_eq!(
            s.run(false, || {
                n += 1;
                Poll::Ready(7)
            }),
            Some(7)
        );
        assert_eq!(n, 1);
    }

    #[test]
    fn an_empty_socket_is_polled_a_bounded_while() {
        let mut s = Spin::default();
        for _ in 0..20 {
            let t0 = Instant::now();
            let mut n = 0;
            assert_eq!(
                s.run(false, || {
                    n += 1;
                    Poll::<()>::Empty
                }),
                None
            );
            assert!(n >= 1);
            // At most MAX plus one yield that found the CPU busy; generous for a loaded
            // machine.
            assert!(t0.elapsed() < Duration::from_secs(1));
        }
        assert_eq!(s.budget(), Duration::ZERO);
    }

    #[test]
    fn grows_when_bytes_come_fast_and_shrinks_when_they_do_not() {
        let mut s = Spin::default();
        let limit = s.limit();
        assert!(s.probing, "the first wait probes");
        s.found(3_000, limit);
        assert_eq!(s.budget(), Duration::from_micros(6));
        s.limit();
        s.found(20_000, nanos(MAX));
        assert_eq!(s.budget(), Duration::from_micros(40));
        s.limit();
        s.found(40_000, nanos(MAX));
        assert_eq!(s.budget(), MAX, "capped");
        s.limit();
        s.missed();
        s.limit();
        s.missed();
        assert_eq!(s.budget(), MAX / 4);
    }

    #[test]
    fn failed_probes_space_out_and_a_success_brings_them_back() {
        let mut s = Spin::default();
        let mut probes = 0;
        for _ in 0..2000 {
            let limit = s.limit();
            if s.probing {
                probes += 1;
                assert_eq!(limit, nanos(MAX));
                s.missed();
            } else {
                assert_eq!(limit, 0);
            }
        }
        // Gaps 8, 16, ..., 1024: far fewer probes than one in eight.
        assert!(probes <= 9, "{probes} probes");
        assert_eq!(s.probe_gap, PROBE_GAP_MAX);
        // A success resets the gap.
        s.found(1_000, nanos(MAX));
        assert_eq!(s.probe_gap, PROBE_GAP_MIN);
        assert!(s.probe_in <= PROBE_GAP_MIN);
        assert_eq!(s.budget(), Duration::from_nanos(2_000));
    }

    #[test]
    fn contention_stops_spinning() {
        let mut s = Spin::default();
        s.found(10_000, nanos(MAX));
        assert_eq!(s.budget(), Duration::from_micros(20));
        s.contended();
        assert_eq!(s.budget(), Duration::ZERO);
    }

    #[test]
    fn after_contention_waits_look_once_and_sleep_for_a_growing_while() {
        let mut s = Spin::default();
        s.contended();
        for _ in 0..CALM_MIN {
            let mut n = 0;
            assert_eq!(
                s.run(true, || {
                    n += 1;
                    Poll::<()>::Empty
                }),
                None
            );
            assert_eq!(n, 1, "one look, no spin");
        }
        assert_eq!(s.calm, 0);
        s.contended();
        assert_eq!(s.calm, 2 * CALM_MIN, "contention again: longer");
        for _ in 0..20 {
            s.contended();
        }
        assert_eq!(s.calm, CALM_MAX);
        // A spin that pays resets the growth (the calm waits left still run out).
        s.found(1_000, nanos(MAX));
        assert_eq!(s.calm_gap, CALM_MIN);
    }

    #[test]
    fn a_busy_phase_that_keeps_missing_is_skipped_for_a_while() {
        let mut s = Spin::default();
        for _ in 0..BUSY_MISSES {
            let t0 = Instant::now();
            assert_eq!(s.busy(&mut || Poll::<()>::Empty), None);
            assert!(
                t0.elapsed() >= BUSY_MAX,
                "a busy phase lasts its whole time"
            );
        }
        assert_eq!(s.busy_skip, BUSY_SKIP);
        // Skipped: no poll at all.
        let mut n = 0;
        assert_eq!(
            s.busy(&mut || {
                n += 1;
                Poll::Ready(())
            }),
            None
        );
        assert_eq!(n, 0);
        assert_eq!(s.busy_skip, BUSY_SKIP - 1);
    }

    #[test]
    fn a_busy_phase_that_finds_resets_the_misses() {
        let mut s = Spin::default();
        assert_eq!(s.busy(&mut || Poll::<()>::Empty), None);
        assert_eq!(s.busy_misses, 1);
        assert_eq!(s.busy(&mut || Poll::Ready(5)), Some(5));
        assert_eq!(s.busy_misses, 0);
    }

    #[test]
    fn no_busy_phase_while_calm() {
        let mut s = Spin::default();
        s.contended();
        let mut n = 0;
        assert_eq!(
            s.busy(&mut || {
                n += 1;
                Poll::Ready(())
            }),
            None
        );
        assert_eq!(n, 0);
        // The calm wait still looks once.
        assert_eq!(s.run_busy_first(|| Poll::Ready(1)), Some(1));
    }

    #[test]
    fn a_late_find_counts_as_a_miss() {
        let mut s = Spin::default();
        s.found(20_000, nanos(MAX));
        let b = s.budget();
        // Found only after the limit (the thread was away): no growth.
        s.found(200_000, nanos(MAX));
        assert_eq!(s.budget(), b / 2);
    }
}
