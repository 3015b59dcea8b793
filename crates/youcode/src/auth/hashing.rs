//! Password hashing on a bounded number of threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::config::LoginLimits;

/// Runs password hashes and verifications a few at a time.
///
/// Each argon2 hash takes 19 MiB and tens of milliseconds of a core: without a bound, a burst
/// of sign-ins fills the blocking thread pool (hundreds of threads) and memory with hashes that
/// only slow each other down. Past the bound, sign-ins wait for a slot, briefly.
pub struct Hashing {
    slots: Arc<Semaphore>,
    wait: Duration,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    running: AtomicUsize,
    /// The most hashes ever seen running at once, for tests and operators.
    peak: AtomicUsize,
}

/// Why a hash did not run.
#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    /// No slot freed up within the wait.
    #[error("too many passwords are being checked at once")]
    Busy,
    #[error("password hashing failed")]
    Failed(#[from] tokio::task::JoinError),
}

impl Hashing {
    pub fn new(limits: &LoginLimits) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(limits.hashing_concurrency.get())),
            wait: limits.hashing_wait,
            counts: Arc::default(),
        }
    }

    /// Runs `work` (a hash or a verification) on a blocking thread once a slot is free.
    ///
    /// # Cancellation
    /// Work that has started holds its slot to its end, even if the caller goes away: the
    /// thread cannot be stopped, so the slot is not free either.
    ///
    /// # Errors
    /// [`HashingError::Busy`] when no slot frees up within the configured wait.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashingError> {
        let slot = tokio::time::timeout(self.wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| HashingError::Busy)?
            .expect("the semaphore is never closed");
        let counts = self.counts.clone();
        let result = tokio::task::spawn_blocking(move || {
            let running = counts.running.fetch_add(1, Ordering::SeqCst) + 1;
            counts.peak.fetch_max(running, Ordering::SeqCst);
            let result = work();
            counts.running.fetch_sub(1, Ordering::SeqCst);
            drop(slot);
            result
        })
        .await?;
        Ok(result)
    }

    /// The most hashes that ran at once so far.
    pub fn peak(&self) -> usize {
        self.counts.peak.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use super::*;

    fn hashing(slots: usize, wait: Duration) -> Arc<Hashing> {
        Arc::new(Hashing::new(&LoginLimits {
            hashing_concurrency: NonZeroUsize::new(slots).unwrap(),
            hashing_wait: wait,
            ..LoginLimits::default()
        }))
    }

    #[tokio::test]
    async fn no_more_than_the_slots_run_at_once() {
        let hashing = hashing(2, Duration::from_secs(30));
        let runs = (0..12).map(|_| {
            let hashing = hashing.clone();
            tokio::spawn(async move {
                hashing
                    .run(|| std::thread::sleep(Duration::from_millis(20)))
                    .await
            })
        });
        for run in futures::future::join_all(runs).await {
            run.unwrap().unwrap();
        }
        assert_eq!(hashing.peak(), 2);
    }

    #[tokio::test]
    async fn a_caller_that_waits_too_long_is_told_busy() {
        let hashing = hashing(1, Duration::from_millis(50));
        let (release, released) = std::sync::mpsc::channel::<()>();
        let holder = {
            let hashing = hashing.clone();
            tokio::spawn(async move { hashing.run(move || released.recv()).await })
        };
        while hashing.peak() == 0 {
            tokio::task::yield_now().await;
        }

        let waited = tokio::time::timeout(Duration::from_secs(10), hashing.run(|| ()))
            .await
            .expect("a busy answer comes within the wait");

        assert!(matches!(waited, Err(HashingError::Busy)));
        release.send(()).unwrap();
        holder.await.unwrap().unwrap().unwrap();
    }
}
