//! `/warn` with escalation, `/warnings`, `/unwarn` and `/modlog`: the case log read back.

use super::actions::{done, perform};
use super::log_channel;
use super::{actor, check_target, community, target};
use crate::cogs::Ctx;
use crate::core::{CommandError, CommandResult, Member, Reply, UserId, UserRef};
use crate::services::audit::{self, Entry};
use crate::services::cases::{Case, CaseAction, NewCase, Outcome, Thresholds, UnwarnError};

fn internal(e: impl Into<crate::core::BoxError>) -> CommandError {
    CommandError::Internal(e.into())
}

/// Stores the warning; when it reaches one of the community's thresholds, the automatic action
/// (a case of its own, opened in the same transaction) is carried out on the warner's behalf,
/// provided the warner holds that action's permission too.
pub async fn warn(ctx: Ctx) -> CommandResult {
    let community = community(&ctx)?;
    let target = target(&ctx, None).await?;
    check_target(&ctx, &target, "warn", false)?;
    let author = ctx.invocation.author.id;
    ctx.platform
        .check_rank(community, author, &target, "warn")
        .await?;
    let reason = ctx.args.req_text("reason")?.to_owned();
    let settings = ctx.state.settings.get(community).await.map_err(internal)?;
    let warning = NewCase {
        community,
        action: CaseAction::Warn,
        actor: actor(&ctx),
        target: target.clone(),
        reason: Some(reason.clone()),
        duration: None,
    };
    let warned = ctx
        .state
        .cases
        .warn(
            warning,
            Thresholds::of(&settings),
            settings.duration("warn_expiry"),
            ctx.state.clock.now(),
        )
        .await
        .map_err(internal)?;
    let entry = Entry::new(Some(community), author, "warn")
        .target(target.id)
        .reason(Some(&reason))
        .detail(format!("case #{}", warned.case));
    let services = &ctx.state;
    services
        .audit
        .log(entry, audit::Outcome::Done)
        .await
        .map_err(internal)?;
    log_channel::post(services, community, warned.case).await;
    let plural = if warned.active == 1 { "" } else { "s" };
    let mut reply = Reply::text(format!(
        "Warned {} ({} active warning{plural}). Reason: {reason}",
        target.name, warned.active
    ))
    .field("Case", format!("#{}", warned.case));
    if let Some((id, action)) = warned.escalation {
        let platform = &ctx.platform;
        let needed = action.capability();
        let why = format!("automatic: {} warnings", warned.active);
        let here = ctx.invocation.channel;
        let result = if platform
            .has_capability(community, here, author, needed)
            .await?
        {
            let automatic = NewCase {
                community,
                action: CaseAction::of(&action),
                actor: actor(&ctx),
                target: target.clone(),
                reason: Some(why),
                duration: None,
            };
            perform(&ctx, automatic, Some(id), &action).await
        } else {
            let refusal = format!(
                "you need the {} permission for it",
                platform.capability_name(needed)
            );
            ctx.state
                .cases
                .finish(id, Outcome::Failed(refusal.clone()))
                .await
                .map_err(internal)?;
            log_channel::post(services, community, id).await;
            Err(CommandError::Denied(refusal))
        };
        let told = match result {
            Ok(None) => done(&action, &target.name),
            Ok(Some(left)) => format!("{} Not done: {left}", done(&action, &target.name)),
            Err(CommandError::Platform(no) | CommandError::Denied(no)) => {
                format!("I could not {} {}: {no}", action.verb(), target.name)
            }
            Err(e) => return Err(e),
        };
        reply = reply.field("Automatic", format!("{told} (case #{id})"));
    }
    Ok(reply)
}

/// A member's warnings that still count, or the community's latest.
pub async fn warnings(ctx: Ctx) -> CommandResult {
    let titles = ("No active warnings for {}.", "Active warnings for {}");
    listing(ctx, true, titles, "anyone").await
}

pub async fn unwarn(ctx: Ctx) -> CommandResult {
    let community = community(&ctx)?;
    let id = ctx.args.req_int("case")?;
    match ctx
        .state
        .cases
        .unwarn(community, id, ctx.state.clock.now())
        .await
    {
        Ok(case) => {
            let services = &ctx.state;
            let mut entry = Entry::new(Some(community), ctx.invocation.author.id, "unwarn")
                .reason(case.reason.as_deref())
                .detail(format!("case #{id}"));
            if let Ok(target) = UserId::from_raw_text(community.platform.as_str(), &case.target_id)
            {
                entry = entry.target(target);
            }
            services
                .audit
                .log(entry, audit::Outcome::Done)
                .await
                .map_err(internal)?;
            log_channel::post(services, community, id).await;
            Ok(Reply::text(format!(
                "Removed warning #{id} of {}.",
                case.target
            )))
        }
        Err(UnwarnError::Store(e)) => Err(internal(e)),
        Err(refused) => Err(CommandError::usage(refused.to_string())),
    }
}

/// The latest cases with their outcomes, of one member or of the whole community.
pub async fn modlog(ctx: Ctx) -> CommandResult {
    let titles = ("No cases for {}.", "Cases for {}, newest first");
    listing(ctx, false, titles, "this community").await
}

/// One page of cases (only the warnings that count with `warnings_only`) of the member named or
/// replied to, else of `everyone`; `titles` say so when there are none and above the list.
async fn listing(
    ctx: Ctx,
    warnings_only: bool,
    (none, title): (&str, &str),
    everyone: &str,
) -> CommandResult {
    let (community, member) = (community(&ctx)?, optional_member(&ctx).await?);
    let now = ctx.state.clock.now();
    let target = member.as_ref().map(|m| m.id);
    let listed = ctx
        .state
        .cases
        .list(community, target, warnings_only, now)
        .await
        .map_err(internal)?;
    let whose = member.map_or_else(|| everyone.to_owned(), |m| m.name);
    if listed.is_empty() {
        return Ok(Reply::text(none.replace("{}", &whose)));
    }
    Ok(Reply::text(lines(&listed)).title(title.replace("{}", &whose)))
}

/// The member a listing is about: the one named (by id even when they left), else the author of
/// the replied-to message, else nobody (the whole community).
async fn optional_member(ctx: &Ctx) -> Result<Option<Member>, CommandError> {
    match ctx.args.user("user") {
        Some(user @ UserRef::Id(_)) => ctx.user(user).await.map(Some),
        Some(user) => ctx.member(user).await.map(Some),
        None => Ok(ctx.invocation.replied_to.clone()),
    }
}

fn lines(cases: &[Case]) -> String {
    cases.iter().map(line).collect::<Vec<_>>().join("\n")
}

/// `#12 mute @bob (until 2026-12-02 11:00 UTC) by @mod, 2026-12-02 10:00 UTC: spam; done`
pub fn line(case: &Case) -> String {
    const TIME: &str = "%Y-%m-%d %H:%M UTC";
    let mut line = format!("#{} {} {}", case.id, case.action.as_str(), case.target);
    if let Some(until) = case.expires {
        line += &format!(" (until {})", until.format(TIME));
    }
    line += &format!(" by {}, {}", case.actor, case.at.format(TIME));
    if let Some(reason) = &case.reason {
        line += &format!(": {reason}");
    }
    if let Some(cause) = case.cause {
        line += &format!(" (after warning #{cause})");
    }
    line += &match (&case.outcome, case.revoked) {
        (_, true) => "; removed".to_owned(),
        (_, false) if case.action == CaseAction::Warn => String::new(),
        (Outcome::Done, _) => "; done".to_owned(),
        (Outcome::Pending, _) => "; pending (no answer from the platform)".to_owned(),
        (Outcome::Incomplete(why), _) => format!("; incomplete: {why}"),
        (Outcome::Failed(why), _) => format!("; failed: {why}"),
    };
    line
}
