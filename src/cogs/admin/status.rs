//! `/status`, for the bot's owners: version, uptime, memory, database size and the platforms
//! running in this process.

use std::time::Duration;

use super::super::{Ctx, stored};
use crate::core::{CommandResult, Reply, duration};

pub async fn status(ctx: Ctx) -> CommandResult {
    let state = &ctx.state;
    let uptime = (state.clock.now() - state.started)
        .to_std()
        .unwrap_or_default();
    let database = state.store.size().await.map_err(stored)?;
    let (pending, failed) = state.scheduler.counts().await.map_err(stored)?;
    let platforms: Vec<&str> = state.platforms.kinds().iter().map(|k| k.as_str()).collect();
    Ok(Reply::text("")
        .title(format!("cogbox {}", env!("CARGO_PKG_VERSION")))
        .field(
            "uptime",
            duration::format(Duration::from_secs(uptime.as_secs())),
        )
        .field("memory", resident().map_or("unknown".into(), mib))
        .field("database", mib(database))
        .field("platforms", platforms.join(", "))
        .field("jobs", format!("{pending} pending, {failed} failed")))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The process's resident memory in bytes, from `/proc` (Linux); `None` elsewhere.
fn resident() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}
