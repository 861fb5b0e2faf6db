//! Stopping and pacing: the shutdown signal every wait ends on ([`Stop`]), a log line allowed at
//! most once per interval ([`Throttle`]), and the lock every shared structure is taken with
//! ([`lock`]). At the bottom of the crate.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The shutdown signal, and after it the deadline of the drain: every wait in the worker
/// ends when this resolves.
pub(crate) struct Stop<'a, F> {
    signal: Pin<&'a mut F>,
    fired: bool,
    deadline: Option<tokio::time::Instant>,
}

impl<'a, F: Future<Output = ()>> Stop<'a, F> {
    /// Waits for `signal`, with no drain started.
    pub(crate) fn new(signal: Pin<&'a mut F>) -> Stop<'a, F> {
        Stop {
            signal,
            fired: false,
            deadline: None,
        }
    }

    /// Resolves when the signal fires; once draining, when the drain's deadline passes.
    /// Cancel-safe: the signal itself is kept, so a wait dropped by `select!` loses nothing.
    pub(crate) async fn wait(&mut self) {
        if let Some(d) = self.deadline {
            tokio::time::sleep_until(d).await;
        } else if !self.fired {
            self.signal.as_mut().await;
            self.fired = true;
        }
    }

    pub(crate) fn start_drain(&mut self, timeout: Duration) {
        self.fired = true;
        self.deadline = Some(tokio::time::Instant::now() + timeout);
    }
}

/// Logs at most once per interval, counting what it held back.
pub(crate) struct Throttle {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    pub(crate) fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` when a line may be logged now, `n` lines having been held back since the last.
    pub(crate) fn allow(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|l| now.duration_since(l) < self.every) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// Locks `m`, going on with what it holds if a panic poisoned it: a panic while holding one of
/// the worker's locks cannot leave its structure half-updated in a way that matters more than
/// stopping would.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
