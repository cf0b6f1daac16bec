//! Where the scheduler and the cogs read the time from. Production runs on [`SystemClock`];
//! tests move a [`ManualClock`] instead of sleeping, so "a 10-minute mute ends" takes no time.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

#[async_trait]
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;

    /// Resolves once [`Clock::now`] has reached `at` (at once if it already has). Callers
    /// re-read `now` afterwards: the wall clock may have jumped meanwhile.
    async fn sleep_until(&self, at: DateTime<Utc>);
}

/// The wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, at: DateTime<Utc>) {
        if let Ok(wait) = (at - Utc::now()).to_std() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// The wall clock shifted by a fixed offset, so the real binary's end-to-end tests can start
/// cogbox "later" (a mute's expiry passed while it was stopped). Only `app.rs` builds one, from
/// `COGBOX_TEST_CLOCK_OFFSET`, which the config refuses unless every platform is a local fake.
#[derive(Clone, Copy, Debug)]
pub struct OffsetClock(pub chrono::Duration);

#[async_trait]
impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.0
    }

    async fn sleep_until(&self, at: DateTime<Utc>) {
        SystemClock.sleep_until(at - self.0).await;
    }
}

/// A clock that stands still until a test moves it; sleepers wake when it passes their time.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
    moved: watch::Sender<DateTime<Utc>>,
    reads: AtomicU64,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
            moved: watch::channel(start).0,
            reads: AtomicU64::new(0),
        }
    }

    /// How often [`Clock::now`] has been read: a count that stops growing tells a test that
    /// whoever reads the clock is asleep, not polling it in a loop.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        self.moved.send_replace(*now);
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn sleep_until(&self, at: DateTime<Utc>) {
        let mut moved = self.moved.subscribe();
        // The sender lives as long as the clock, which outlives every sleeper borrowing it.
        let _ = moved.wait_for(|now| *now >= at).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_wakes_sleepers_only_once_moved_past_their_time() {
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let clock = std::sync::Arc::new(ManualClock::new(start));
        let at = start + chrono::Duration::minutes(10);
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(at).await }
        });
        clock.advance(Duration::from_secs(599));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "woke a second early");
        clock.advance(Duration::from_secs(1));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("the sleeper wakes once the clock reaches its time")
            .unwrap();
        assert_eq!(clock.now(), at);
    }
}
