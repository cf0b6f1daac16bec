//! The actions on members, each a case: opened as pending, carried out by the platform, and
//! finished with what the platform reported. Also `/purge`, which touches messages only.

use super::{actor, check_target, community, target};
use crate::cogs::Ctx;
use crate::core::{CommandError, CommandResult, Member, ModAction, Reply, duration};
use crate::services::cases::{CaseAction, NewCase, Outcome};

pub async fn mute(ctx: Ctx) -> CommandResult {
    let duration = ctx.args.req_duration("duration")?;
    act(ctx, ModAction::Mute(duration)).await
}

pub async fn unmute(ctx: Ctx) -> CommandResult {
    act(ctx, ModAction::Unmute).await
}

pub async fn kick(ctx: Ctx) -> CommandResult {
    act(ctx, ModAction::Kick).await
}

pub async fn ban(ctx: Ctx) -> CommandResult {
    let duration = ctx.args.duration("duration");
    act(ctx, ModAction::Ban(duration)).await
}

pub async fn unban(ctx: Ctx) -> CommandResult {
    act(ctx, ModAction::Unban).await
}

pub async fn purge(ctx: Ctx) -> CommandResult {
    // The spec bounds it to 1..=MAX_PURGE; were that ever broken, delete nothing.
    let count = u32::try_from(ctx.args.req_int("count")?).unwrap_or(0);
    let invocation = &ctx.invocation;
    let deleted = ctx
        .platform
        .purge(
            community(&ctx)?,
            invocation.channel,
            invocation.author.id,
            count,
        )
        .await?;
    let noun = if deleted == 1 { "message" } else { "messages" };
    Ok(Reply::text(format!("Deleted {deleted} {noun}.")))
}

/// What a kicked or banned member is told by direct message, before it happens.
fn notice(action: &ModAction, by: &str, reason: Option<&str>) -> Option<Reply> {
    let done = match action {
        ModAction::Kick => "kicked",
        ModAction::Ban(_) => "banned",
        _ => return None,
    };
    let notice = Reply::text(format!("You have been {done} by {by}."));
    Some(match reason {
        Some(reason) => notice.field("Reason", reason),
        None => notice,
    })
}

/// How a done action is told: "Muted @bob for 10m."
pub fn done(action: &ModAction, target: &str) -> String {
    match action {
        ModAction::Mute(d) => format!("Muted {target} for {}.", duration::format(*d)),
        ModAction::Unmute => format!("Unmuted {target}."),
        ModAction::Kick => format!("Kicked {target}."),
        ModAction::Ban(None) => format!("Banned {target}."),
        ModAction::Ban(Some(d)) => format!("Banned {target} for {}.", duration::format(*d)),
        ModAction::Unban => format!("Unbanned {target}."),
    }
}

/// Checks what holds on every platform, opens the case, and has the platform act.
async fn act(ctx: Ctx, action: ModAction) -> CommandResult {
    let community = community(&ctx)?;
    let target = target(&ctx, Some(&action)).await?;
    check_target(&ctx, &target, action.verb(), action == ModAction::Unban)?;
    let reason = ctx.args.text("reason").map(str::to_owned);
    let case = NewCase {
        community,
        action: CaseAction::of(&action),
        actor: actor(&ctx),
        target: target.clone(),
        reason: reason.clone(),
        duration: match action {
            ModAction::Mute(d) | ModAction::Ban(Some(d)) => Some(d),
            _ => None,
        },
    };
    let id = ctx
        .state
        .cases
        .open(case, ctx.state.clock.now())
        .await
        .map_err(|e| CommandError::Internal(e.into()))?;
    let incomplete = perform(&ctx, id, &target, &action, reason.as_deref()).await?;
    let mut reply = Reply::text(match &reason {
        Some(reason) => format!("{} Reason: {reason}", done(&action, &target.name)),
        None => done(&action, &target.name),
    });
    if let Some(why) = incomplete {
        reply = reply.field("Not done", why);
    }
    Ok(reply)
}

/// Asks the platform to carry out case `id` and records the outcome on the case, whatever it
/// is. Returns what was left undone, if anything.
pub async fn perform(
    ctx: &Ctx,
    id: i64,
    target: &Member,
    action: &ModAction,
    reason: Option<&str>,
) -> Result<Option<String>, CommandError> {
    let community = community(ctx)?;
    let author = &ctx.invocation.author;
    let notice = notice(action, &author.name, reason);
    let result = ctx
        .platform
        .moderate(
            community,
            author.id,
            target,
            action,
            reason,
            notice.as_ref(),
        )
        .await;
    let shown = result.as_ref().map(Clone::clone).map_err(ToString::to_string);
    ctx.state
        .cases
        .finish(id, Outcome::of(&shown))
        .await
        .map_err(|e| CommandError::Internal(e.into()))?;
    Ok(result?.incomplete)
}
