//! Moderation: mute, unmute, kick, ban, unban and purge, in their simplest correct form. Who may
//! do what is decided by each platform's own permissions; the later moderation issue adds
//! cases, warnings and the audit log on top of these handlers.

use super::Ctx;
use crate::core::moderation::{MAX_BAN, MAX_MUTE};
use crate::core::{
    Capability, Cog, Command, CommandError, CommandResult, CommandSpec, ModAction, ParamKind,
    Reply, State, duration,
};
use crate::services::Services;

/// The most messages one `/purge` deletes: enough for a raid's spam, few enough to list quickly.
const MAX_PURGE: i64 = 1000;

pub fn cog() -> Cog<Services> {
    let spec = |name, description, capability| {
        CommandSpec::new(name, description)
            .param("user", "The member", ParamKind::User)
            .requires(capability)
            .community_only()
    };
    let reason =
        |spec: CommandSpec| spec.optional("reason", "Why, for the record", ParamKind::Rest);
    Cog {
        name: "moderation",
        description: "Mute, kick and ban members; clear messages",
        commands: vec![
            Command::new(
                reason(
                    spec(
                        "mute",
                        "Stop a member from talking for a while",
                        Capability::MuteMembers,
                    )
                    .param(
                        "duration",
                        "How long, e.g. 10m, 2h or 7d (at most 28d)",
                        ParamKind::Duration { max: MAX_MUTE },
                    ),
                ),
                mute,
            ),
            Command::new(
                spec(
                    "unmute",
                    "Let a muted member talk again",
                    Capability::MuteMembers,
                ),
                unmute,
            ),
            Command::new(
                reason(spec(
                    "kick",
                    "Remove a member; they may rejoin",
                    Capability::KickMembers,
                )),
                kick,
            ),
            Command::new(
                reason(
                    spec(
                        "ban",
                        "Remove a member and keep them out",
                        Capability::BanMembers,
                    )
                    .optional(
                        "duration",
                        "For how long, e.g. 7d (Telegram only; permanent when left out)",
                        ParamKind::Duration { max: MAX_BAN },
                    ),
                ),
                ban,
            ),
            Command::new(
                spec(
                    "unban",
                    "Let a banned user back in (give their id)",
                    Capability::BanMembers,
                ),
                unban,
            ),
            Command::new(
                CommandSpec::new("purge", "Delete the latest messages in this channel")
                    .param(
                        "count",
                        "How many, 1-1000",
                        ParamKind::Integer {
                            min: 1,
                            max: MAX_PURGE,
                        },
                    )
                    .requires(Capability::ManageMessages)
                    .community_only(),
                purge,
            ),
        ],
    }
}

async fn mute(ctx: Ctx) -> CommandResult {
    let duration = ctx.args.req_duration("duration")?;
    act(ctx, ModAction::Mute(duration)).await
}

async fn unmute(ctx: Ctx) -> CommandResult {
    act(ctx, ModAction::Unmute).await
}

async fn kick(ctx: Ctx) -> CommandResult {
    act(ctx, ModAction::Kick).await
}

async fn ban(ctx: Ctx) -> CommandResult {
    let duration = ctx.args.duration("duration");
    act(ctx, ModAction::Ban(duration)).await
}

async fn unban(ctx: Ctx) -> CommandResult {
    act(ctx, ModAction::Unban).await
}

async fn purge(ctx: Ctx) -> CommandResult {
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

fn community(ctx: &Ctx) -> Result<crate::core::CommunityId, CommandError> {
    ctx.invocation
        .community
        .ok_or_else(|| CommandError::internal("moderation outside a community"))
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

/// Checks what holds on every platform (not yourself, not a bot owner), then lets the platform
/// check ranks and its own permissions and carry the action out. Someone kicked or banned is
/// told who did it and why.
async fn act(ctx: Ctx, action: ModAction) -> CommandResult {
    let community = community(&ctx)?;
    let user = ctx.args.req_user("user")?;
    // A banned user is no longer a member.
    let target = match action {
        ModAction::Unban => ctx.user(user).await?,
        _ => ctx.member(user).await?,
    };
    let verb = action.verb();
    let author = &ctx.invocation.author;
    if target.id == author.id {
        return Err(CommandError::usage(format!("you can't {verb} yourself")));
    }
    if action != ModAction::Unban && ctx.state.is_owner(target.id) {
        return Err(CommandError::Denied(format!(
            "{} owns this bot and can't be moderated",
            target.name
        )));
    }
    let reason = ctx.args.text("reason");
    let notice = notice(&action, &author.name, reason);
    ctx.platform
        .moderate(
            community,
            author.id,
            &target,
            &action,
            reason,
            notice.as_ref(),
        )
        .await?;
    let done = match action {
        ModAction::Mute(d) => format!("Muted {} for {}.", target.name, duration::format(d)),
        ModAction::Unmute => format!("Unmuted {}.", target.name),
        ModAction::Kick => format!("Kicked {}.", target.name),
        ModAction::Ban(None) => format!("Banned {}.", target.name),
        ModAction::Ban(Some(d)) => format!("Banned {} for {}.", target.name, duration::format(d)),
        ModAction::Unban => format!("Unbanned {}.", target.name),
    };
    Ok(Reply::text(match reason {
        Some(reason) => format!("{done} Reason: {reason}"),
        None => done,
    }))
}
