//! The two futex calls, on a 32-bit word in shared memory.
//!
//! The words live in a `MAP_SHARED` mapping used by several processes, so the calls are made
//! without `FUTEX_PRIVATE_FLAG`: the kernel then keys the futex on the underlying page, which
//! is the same in every mapping.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleeps while `*word == expected`, for at most `timeout`.
///
/// Returns on a wake-up, when the word differs (at once), on a signal, or when the timeout
/// passes; callers re-check their condition in every case. The timeout is relative and measured
/// on `CLOCK_MONOTONIC`.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a valid, aligned 32-bit atomic for the duration of the call; the kernel
    // only reads it. `ts` outlives the call. The result is ignored on purpose: every outcome
    // (woken, EAGAIN, EINTR, ETIMEDOUT) leads the caller to re-check its condition.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Wakes at most `n` threads sleeping on `word`, in any process.
pub(crate) fn wake(word: &AtomicU32, n: u32) {
    // SAFETY: `word` is a valid, aligned 32-bit atomic; FUTEX_WAKE does not touch memory.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            n.min(i32::MAX as u32),
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}
