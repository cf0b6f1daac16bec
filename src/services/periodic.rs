//! The periodic jobs, declared in config's `[schedule]` with an interval each (an empty one
//! turns a job off): the audit log's retention, SQLite's `PRAGMA optimize`, and `expiries`,
//! which runs the hooks cogs add with [`Scheduler::on_expiry`] (timed actions never lifted, …).
//!
//! They are ordinary durable jobs that reschedule themselves, so "once a day" means once a
//! day even across restarts, and they never pile up while cogbox is stopped.

use std::time::Duration;

use super::scheduler::{JobError, Scheduler};
use super::store::StoreError;

pub const AUDIT_PURGE: &str = "audit_purge";
pub const OPTIMIZE: &str = "optimize";
pub const EXPIRIES: &str = "expiries";

/// How often each periodic job runs; `None` turns it off.
#[derive(Clone, Copy, Debug)]
pub struct Intervals {
    pub audit_purge: Option<Duration>,
    pub optimize: Option<Duration>,
    pub expiries: Option<Duration>,
}

/// Registers the periodic jobs' handlers and applies `intervals`. `audit_retention` is how
/// long audit entries are kept.
pub async fn start(
    scheduler: &Scheduler,
    intervals: Intervals,
    audit_retention: Duration,
) -> Result<(), StoreError> {
    let retention = chrono::Duration::from_std(audit_retention).unwrap_or(chrono::Duration::MAX);
    scheduler.register(AUDIT_PURGE, move |ctx, _| async move {
        let cutoff = ctx.services.clock.now() - retention;
        let purged = ctx.services.audit.purge_before(cutoff).await?;
        if purged > 0 {
            tracing::info!("audit log: {purged} entries older than the retention purged");
        }
        Ok(())
    });
    scheduler.register(OPTIMIZE, |ctx, _| async move {
        ctx.services
            .store
            // The limit keeps each index's analysis to a sample (SQLite's advice for long-lived
            // connections): a large table costs milliseconds, not a full scan.
            .call(|conn| conn.execute_batch("PRAGMA analysis_limit = 400; PRAGMA optimize;"))
            .await
            .map_err(JobError::from)
    });
    scheduler.register(EXPIRIES, |ctx, _| async move {
        ctx.services.scheduler.run_expiries(&ctx).await
    });
    for (kind, every) in [
        (AUDIT_PURGE, intervals.audit_purge),
        (OPTIMIZE, intervals.optimize),
        (EXPIRIES, intervals.expiries),
    ] {
        scheduler.set_periodic(kind, every).await?;
    }
    Ok(())
}
