//! The per-user command rate limit (a GCRA from `governor`), plus the memory of whom we already
//! told to slow down, so a flooding user gets one notice, not one per message.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::ids::UserId;

/// `commands` per `window`, as a burst that refills evenly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateQuota {
    pub commands: NonZeroU32,
    pub window: Duration,
}

pub enum Verdict {
    Allowed,
    /// Over the limit; tell the user once to retry after this long.
    Tell(Duration),
    /// Over the limit and already told: stay quiet.
    Quiet,
}

pub struct UserRateLimit {
    limiter: DefaultKeyedRateLimiter<UserId>,
    clock: DefaultClock,
    /// When each limited user may next be told again (the end of the wait we announced).
    /// Worst case: every user who hit the limit in the last window, ~100 bytes each.
    told_until: moka::sync::Cache<UserId, Instant>,
    /// Users told "unknown command" in the last window; the same worst case.
    told_unknown: moka::sync::Cache<UserId, ()>,
}

impl UserRateLimit {
    pub fn new(quota: RateQuota) -> Self {
        let period = (quota.window / quota.commands.get()).max(Duration::from_nanos(1));
        let gcra = Quota::with_period(period)
            .expect("period is at least 1ns")
            .allow_burst(quota.commands);
        Self {
            limiter: RateLimiter::keyed(gcra),
            clock: DefaultClock::default(),
            told_until: moka::sync::Cache::builder()
                .time_to_live(quota.window.max(Duration::from_secs(1)))
                .build(),
            told_unknown: moka::sync::Cache::builder()
                .time_to_live(quota.window.max(Duration::from_secs(1)))
                .build(),
        }
    }

    /// Whether `user` may be told of an unknown command: once per window.
    pub fn first_unknown(&self, user: UserId) -> bool {
        let entry = self.told_unknown.entry(user).or_insert(());
        entry.is_fresh()
    }

    pub fn check(&self, user: UserId) -> Verdict {
        let Err(not_until) = self.limiter.check_key(&user) else {
            return Verdict::Allowed;
        };
        let wait = not_until.wait_time_from(self.clock.now());
        let now = Instant::now();
        match self.told_until.get(&user) {
            Some(until) if now < until => Verdict::Quiet,
            _ => {
                self.told_until.insert(user, now + wait);
                Verdict::Tell(wait)
            }
        }
    }

    /// Forgets users whose buckets are full again; run periodically to bound memory.
    pub fn tidy(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::PlatformKind;

    #[test]
    fn limits_each_user_and_tells_once() {
        let limit = UserRateLimit::new(RateQuota {
            commands: NonZeroU32::new(2).unwrap(),
            window: Duration::from_secs(3600),
        });
        let alice = UserId::new(PlatformKind::Console, 1);
        let bob = UserId::new(PlatformKind::Console, 2);
        assert!(matches!(limit.check(alice), Verdict::Allowed));
        assert!(matches!(limit.check(alice), Verdict::Allowed));
        match limit.check(alice) {
            Verdict::Tell(wait) => {
                assert!(wait > Duration::from_secs(1700) && wait <= Duration::from_secs(1800))
            }
            _ => panic!("third command in the window must be refused with a notice"),
        }
        assert!(matches!(limit.check(alice), Verdict::Quiet));
        assert!(
            matches!(limit.check(bob), Verdict::Allowed),
            "limits are per user"
        );
    }
}
