//! `/mydata`: what cogbox stores about the caller in this community, sent by direct message;
//! `/forget <user>`: erases it, except the audit log, which must be kept for its retention.

use super::super::{Ctx, community, stored};
use crate::core::{CommandError, CommandResult, Reply};
use crate::services::audit::{Entry, Outcome};

/// What `/forget` keeps, and why.
const KEPT: &str = "Kept: the audit log's entries by and about them, which are kept for the \
                    configured retention (retention.audit_log_days) and then purged; their \
                    moderation cases; and the bank's ledger rows, which explain other members' \
                    balances too.";

pub async fn mydata(ctx: Ctx) -> CommandResult {
    let community = community(&ctx)?;
    let user = ctx.invocation.author.id;
    let mut report = Reply::text(format!(
        "What cogbox stores about you in this community (you are {user}). The audit log also \
         records moderation and settings changes by or about you."
    ))
    .title("Your data");
    for service in ctx.state.user_data() {
        let lines = service.export(community, user).await.map_err(stored)?;
        let value = if lines.is_empty() {
            "nothing".to_owned()
        } else {
            lines.join("\n")
        };
        report = report.field(service.name(), value);
    }
    ctx.platform
        .direct_message(user, &report)
        .await
        .map_err(|e| CommandError::Platform(format!("I could not message you directly: {e}")))?;
    Ok(Reply::text("I sent you your data by direct message."))
}

pub async fn forget(ctx: Ctx) -> CommandResult {
    let community = community(&ctx)?;
    let target = ctx.user(ctx.args.req_user("user")?).await?;
    let mut erased = Vec::new();
    for service in ctx.state.user_data() {
        let gone = service.forget(community, target.id).await.map_err(stored)?;
        erased.push(format!("{}: {gone}", service.name().to_lowercase()));
    }
    let summary = erased.join(", ");
    let entry = Entry::new(Some(community), ctx.invocation.author.id, "data.forget")
        .target(target.id)
        .detail(summary.clone());
    ctx.state
        .audit
        .log(entry, Outcome::Done)
        .await
        .map_err(stored)?;
    Ok(Reply::text(format!(
        "Erased {}'s data here ({summary}). {KEPT}",
        target.name
    )))
}
