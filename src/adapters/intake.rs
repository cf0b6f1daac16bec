//! How much work a platform has taken and not yet answered, bounded by `limits.max_in_flight`.
//! An update holds a slot from the moment it is taken (a webhook's 200, a polled batch) until
//! its reply has left the outbox, so a burst waits at the platform (redelivered webhooks,
//! unfetched updates) instead of in memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Clone)]
pub struct Intake {
    pub platform: &'static str,
    slots: Arc<Semaphore>,
    capacity: usize,
    /// Updates turned away for want of a slot (webhook 503s), for the once-a-minute summary.
    refused: Arc<AtomicU64>,
    /// Updates received but dropped unanswered at shutdown before they took a slot (Discord's
    /// waiting commands), so the shutdown count includes them.
    abandoned: Arc<AtomicU64>,
}

impl Intake {
    pub fn new(platform: &'static str, capacity: usize) -> Self {
        Self {
            platform,
            slots: Arc::new(Semaphore::new(capacity)),
            capacity,
            refused: Arc::default(),
            abandoned: Arc::default(),
        }
    }

    /// A slot if one is free now (the webhook: no slot, no 200).
    pub fn try_take(&self) -> Option<OwnedSemaphorePermit> {
        let slot = Arc::clone(&self.slots).try_acquire_owned().ok();
        if slot.is_none() {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        slot
    }

    /// Updates turned away since the last call.
    pub fn take_refused(&self) -> u64 {
        self.refused.swap(0, Ordering::Relaxed)
    }

    /// Waits for a slot (long polling fetches nothing until there is room).
    pub async fn take(&self) -> OwnedSemaphorePermit {
        Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .expect("the intake semaphore is never closed")
    }

    pub fn free(&self) -> usize {
        self.slots.available_permits()
    }

    /// Counts `n` updates dropped at shutdown while still waiting for a slot.
    pub fn abandon(&self, n: usize) {
        self.abandoned.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Updates taken and not yet answered.
    pub fn busy(&self) -> usize {
        self.capacity - self.free() + self.abandoned.load(Ordering::Relaxed) as usize
    }
}
