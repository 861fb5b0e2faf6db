//! The one way the worker waits for the brokers: a blocking librdkafka request, run on tokio's
//! blocking pool, tried again with a growing pause until it succeeds or the worker is told to
//! stop. At the bottom of the crate.

use std::future::Future;
use std::time::Duration;

use crate::error::WorkerError;

/// The first pause between attempts; each later one is twice as long, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(200);
const MAX_PAUSE: Duration = Duration::from_secs(10);

/// Runs `call` until it succeeds, logging `what` (with the error and the pause) after each
/// failure. `Ok(None)` when `stopped` resolves first: the caller stops as its signal says.
/// A call that panics or is cancelled on the blocking pool is an error, not retried.
pub(crate) async fn until_ok<T, E>(
    what: &str,
    call: impl Fn() -> Result<T, E> + Clone + Send + 'static,
    stopped: impl Future<Output = ()>,
) -> Result<Option<T>, WorkerError>
where
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let mut stopped = std::pin::pin!(stopped);
    let mut pause = FIRST_PAUSE;
    loop {
        let attempt = call.clone();
        let result = tokio::task::spawn_blocking(attempt)
            .await
            .map_err(|e| WorkerError::Blocking(e.to_string()))?;
        match result {
            Ok(v) => return Ok(Some(v)),
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?pause, "{what}");
                tokio::select! {
                    biased;
                    () = &mut stopped => return Ok(None),
                    () = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(MAX_PAUSE);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tries_again_with_growing_pauses_until_it_succeeds() {
        let tries = Arc::new(AtomicU32::new(0));
        let t = tries.clone();
        let started = tokio::time::Instant::now();
        let got = until_ok(
            "not yet",
            move || match t.fetch_add(1, Ordering::SeqCst) {
                0..=2 => Err("down"),
                n => Ok(n),
            },
            std::future::pending(),
        )
        .await
        .unwrap();
        assert_eq!(got, Some(3));
        // Three failures: pauses of 200, 400 and 800 ms.
        assert_eq!(started.elapsed(), Duration::from_millis(1400));
    }

    #[tokio::test(start_paused = true)]
    async fn ends_when_told_to_stop() {
        let got = until_ok(
            "never",
            || Err::<(), _>("down"),
            tokio::time::sleep(Duration::from_secs(1)),
        )
        .await;
        assert!(matches!(got, Ok(None)));
    }
}
