//! The per-user command rate limit (a GCRA from `governor`), plus the memory of whom we already
//! told to slow down, so a flooding user gets one notice, not one per message.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

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

type Limiter<C> =
    RateLimiter<UserId, DefaultKeyedStateStore<UserId>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// On governor's clock, which unit tests replace with one they move by hand.
pub struct UserRateLimit<C: Clock = DefaultClock> {
    limiter: Limiter<C>,
    clock: C,
    /// When each limited user may next be told again (the end of the wait we announced).
    /// Worst case: every user who hit the limit in the last window, ~100 bytes each.
    told_until: moka::sync::Cache<UserId, C::Instant>,
    /// Users told "unknown command" in the last window; the same worst case.
    told_unknown: moka::sync::Cache<UserId, ()>,
}

impl UserRateLimit {
    pub fn new(quota: RateQuota) -> Self {
        Self::with_clock(quota, DefaultClock::default())
    }
}

impl<C: Clock + Clone> UserRateLimit<C>
where
    C::Instant: 'static,
{
    pub fn with_clock(quota: RateQuota, clock: C) -> Self {
        let period = (quota.window / quota.commands.get()).max(Duration::from_nanos(1));
        let gcra = Quota::with_period(period)
            .expect("period is at least 1ns")
            .allow_burst(quota.commands);
        Self {
            limiter: RateLimiter::new(gcra, DefaultKeyedStateStore::default(), clock.clone()),
            clock,
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
        let now = self.clock.now();
        let wait = not_until.wait_time_from(now);
        match self.told_until.get(&user) {
            Some(until) if now < until => Verdict::Quiet,
            _ => {
                self.told_until.insert(user, now + Nanos::from(wait));
                Verdict::Tell(wait)
            }
        }
    }

    /// Forgets users whose buckets are full again; run periodically to bound memory.
    pub fn tidy(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// How many users the limiter holds a bucket for.
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.limiter.len()
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

    #[test]
    fn a_user_limited_again_after_the_announced_wait_is_told_again() {
        let clock = governor::clock::FakeRelativeClock::default();
        let quota = RateQuota {
            commands: NonZeroU32::new(2).unwrap(),
            window: Duration::from_secs(3600),
        };
        let limit = UserRateLimit::with_clock(quota, clock.clone());
        let alice = UserId::new(PlatformKind::Console, 1);
        limit.check(alice);
        limit.check(alice);
        let Verdict::Tell(wait) = limit.check(alice) else {
            panic!("the third command is refused with a notice");
        };
        assert!(wait > Duration::from_secs(1700) && wait <= Duration::from_secs(1800));
        clock.advance(wait - Duration::from_secs(1));
        assert!(matches!(limit.check(alice), Verdict::Quiet), "told already");
        clock.advance(Duration::from_secs(1));
        assert!(
            matches!(limit.check(alice), Verdict::Allowed),
            "the wait is over"
        );
        assert!(
            matches!(limit.check(alice), Verdict::Tell(_)),
            "a new wait is a new notice"
        );
    }

    #[test]
    fn tidy_forgets_only_users_whose_buckets_are_full_again() {
        let clock = governor::clock::FakeRelativeClock::default();
        let quota = RateQuota {
            commands: NonZeroU32::new(2).unwrap(),
            window: Duration::from_secs(3600),
        };
        let limit = UserRateLimit::with_clock(quota, clock.clone());
        limit.check(UserId::new(PlatformKind::Console, 1));
        limit.tidy();
        assert_eq!(limit.tracked(), 1, "a user with a spent command is kept");
        clock.advance(Duration::from_secs(3600));
        limit.tidy();
        assert_eq!(limit.tracked(), 0, "a full bucket is the same as no entry");
    }
}
