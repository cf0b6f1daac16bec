//! `/audit [user]`: the latest entries of this community's audit log, or those by or about
//! one member; and [`changed`], how admin commands record each change they make.

use super::super::{Ctx, community, stored};
use crate::core::{CommandResult, Reply, UserId};
use crate::services::audit::{Entry, Filter, Outcome, Record};

/// Entries one `/audit` shows: a chat page.
const PAGE: usize = 15;

/// Records a settings or cog change by the invoker, done as soon as it is stored.
pub async fn changed(
    ctx: &Ctx,
    action: &str,
    detail: String,
) -> Result<(), crate::core::CommandError> {
    let entry =
        Entry::new(ctx.invocation.community, ctx.invocation.author.id, action).detail(detail);
    ctx.state
        .audit
        .log(entry, Outcome::Done)
        .await
        .map(drop)
        .map_err(stored)
}

pub async fn audit(ctx: Ctx) -> CommandResult {
    let community = community(&ctx)?;
    let log = &ctx.state.audit;
    let mut records = match ctx.args.user("user") {
        None => log
            .query(community, Filter::All, PAGE)
            .await
            .map_err(stored)?,
        Some(user) => {
            let user = ctx.user(user).await?.id;
            let mut both = log
                .query(community, Filter::Actor(user), PAGE)
                .await
                .map_err(stored)?;
            both.extend(
                log.query(community, Filter::Target(user), PAGE)
                    .await
                    .map_err(stored)?,
            );
            both.sort_by_key(|r| std::cmp::Reverse((r.at, r.id)));
            both.dedup_by_key(|r| r.id);
            both.truncate(PAGE);
            both
        }
    };
    if records.is_empty() {
        return Ok(Reply::text("Nothing in the audit log yet.").title("Audit log"));
    }
    records.truncate(PAGE);
    let lines: Vec<String> = records.iter().map(line).collect();
    Ok(Reply::text(lines.join("\n")).title("Audit log"))
}

fn who(user: UserId) -> String {
    user.to_string()
}

/// `#12 2026-12-02 10:00 console:123 settings.set log_channel: off -> 42 (done)`
fn line(record: &Record) -> String {
    let entry = &record.entry;
    let mut out = format!(
        "#{} {} {} {}",
        record.id.0,
        record.at.format("%Y-%m-%d %H:%M"),
        who(entry.actor),
        entry.action
    );
    if let Some(target) = entry.target {
        out.push_str(&format!(" {}", who(target)));
    }
    for part in [&entry.detail, &entry.reason].into_iter().flatten() {
        out.push_str(&format!(" {part}"));
    }
    out.push_str(match &record.outcome {
        Outcome::Pending => " (pending)",
        Outcome::Done => " (done)",
        Outcome::Partial(_) => " (partial)",
        Outcome::Failed(_) => " (failed)",
    });
    if let Outcome::Partial(why) | Outcome::Failed(why) = &record.outcome {
        out.push_str(&format!(": {why}"));
    }
    out
}
