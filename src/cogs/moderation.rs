//! Moderation: mute, unmute, kick and ban, in their simplest correct form. Who may do what is
//! decided by each platform's own permissions; the later moderation issue adds cases,
//! warnings and the audit log on top of these handlers.

use super::Ctx;
use crate::core::moderation::MAX_MUTE;
use crate::core::{
    Capability, Cog, Command, CommandError, CommandResult, CommandSpec, ModAction, ParamKind,
    Reply, State, duration,
};
use crate::services::Services;

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
        description: "Mute, kick and ban members",
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
                reason(spec(
                    "ban",
                    "Remove a member and keep them out",
                    Capability::BanMembers,
                )),
                ban,
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
    act(ctx, ModAction::Ban).await
}

/// Checks what holds on every platform (not yourself, not a bot owner), then lets the platform
/// check ranks and its own permissions and carry the action out.
async fn act(ctx: Ctx, action: ModAction) -> CommandResult {
    let community = ctx
        .invocation
        .community
        .ok_or_else(|| CommandError::internal("moderation outside a community"))?;
    let target = ctx.member(ctx.args.req_user("user")?).await?;
    let verb = action.verb();
    if target.id == ctx.invocation.author.id {
        return Err(CommandError::usage(format!("you can't {verb} yourself")));
    }
    if ctx.state.is_owner(target.id) {
        return Err(CommandError::Denied(format!(
            "{} owns this bot and can't be moderated",
            target.name
        )));
    }
    let reason = ctx.args.text("reason");
    ctx.platform
        .moderate(
            community,
            ctx.invocation.author.id,
            &target,
            &action,
            reason,
        )
        .await?;
    let done = match action {
        ModAction::Mute(d) => format!("Muted {} for {}.", target.name, duration::format(d)),
        ModAction::Unmute => format!("Unmuted {}.", target.name),
        ModAction::Kick => format!("Kicked {}.", target.name),
        ModAction::Ban => format!("Banned {}.", target.name),
    };
    Ok(Reply::text(match reason {
        Some(reason) => format!("{done} Reason: {reason}"),
        None => done,
    }))
}
