//! The actions on members, each a case: opened as pending, carried out by the platform, and
//! finished with what the platform reported. Also `/purge`, which touches messages only.

use super::{actor, audited_case, check_target, community, expiry, target};
use crate::cogs::Ctx;
use crate::core::{CommandError, CommandResult, ModAction, Reply, duration};
use crate::services::StoreError;
use crate::services::cases::{CaseAction, NewCase};

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
        .purge(community(&ctx)?, invocation.channel, count)
        .await?;
    let noun = if deleted == 1 { "message" } else { "messages" };
    Ok(Reply::text(format!("Deleted {deleted} {noun}.")))
}

/// What a kicked or banned member is told by direct message, before it happens: from where
/// (`community`, where the platform names it), as they may be in many.
fn notice(
    action: &ModAction,
    community: Option<&str>,
    by: &str,
    reason: Option<&str>,
) -> Option<Reply> {
    let done = match action {
        ModAction::Kick => "kicked",
        ModAction::Ban(_) => "banned",
        _ => return None,
    };
    let notice = Reply::text(match community {
        Some(community) => format!("You have been {done} from {community} by {by}."),
        None => format!("You have been {done} by {by}."),
    });
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
    let incomplete = perform(&ctx, case, None, &action).await?;
    let mut reply = Reply::text(match &reason {
        Some(reason) => format!("{} Reason: {reason}", done(&action, &target.name)),
        None => done(&action, &target.name),
    });
    if let Some(why) = incomplete {
        reply = reply.field("Not done", why);
    }
    Ok(reply)
}

/// Records `case` as pending (it is already open when a warning's transaction opened it), asks
/// the platform to carry it out, records the outcome whatever it is, and schedules the end of a
/// timed action. Returns what was left undone, if anything.
pub async fn perform(
    ctx: &Ctx,
    case: NewCase,
    opened: Option<i64>,
    action: &ModAction,
) -> Result<Option<String>, CommandError> {
    let internal = |e: StoreError| CommandError::Internal(e.into());
    let services = &*ctx.state;
    let started = services.clock.now();
    let reason = case.reason.clone();
    let pending = audited_case(services, case, opened)
        .await
        .map_err(internal)?;
    let invocation = &ctx.invocation;
    let author = &invocation.author;
    let community = invocation.community_name.as_deref();
    let notice = notice(action, community, &author.name, reason.as_deref());
    let result = ctx
        .platform
        .moderate(
            pending.community,
            Some(ctx.invocation.channel),
            author.id,
            &pending.target,
            action,
            reason.as_deref(),
            notice.as_ref(),
        )
        .await;
    pending.finish(services, &result).await.map_err(internal)?;
    let outcome = result?;
    if let ModAction::Mute(d) | ModAction::Ban(Some(d)) = action {
        let ends = started + chrono::Duration::from_std(*d).unwrap_or(chrono::Duration::MAX);
        expiry::schedule(services, &pending, action, ends)
            .await
            .map_err(internal)?;
    }
    Ok(outcome.incomplete)
}
