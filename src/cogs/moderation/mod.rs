//! Moderation: mute, unmute, kick, ban, unban and purge, warnings with escalation, and the case
//! log. Who may do what is decided by each platform's own permissions and ranks; every action on
//! a member is a numbered case, opened before the platform is asked and finished with its
//! outcome after.
//!
//! Layout: `actions` carries out the actions on members (and `/purge`), `expiry` ends timed
//! ones through the scheduler, `log_channel` posts settled cases, `warnings` holds `/warn`, `/warnings`, `/unwarn` and `/modlog`;
//! this module declares the commands and what they share: the checks, and the pending case and
//! audit row written before each platform call.

mod actions;
pub mod expiry;
mod log_channel;
mod warnings;

use super::{Ctx, community};
use crate::core::moderation::{MAX_BAN, MAX_MUTE};
use crate::core::{
    Capability, Cog, Command, CommandError, CommandSpec, CommunityId, Member, ModAction,
    ModOutcome, ParamKind, PlatformError, State,
};
use crate::services::audit::{self, Entry, EntryId};
use crate::services::cases::{NewCase, Outcome};
use crate::services::{Services, StoreError};

/// The most messages one `/purge` deletes: enough for a raid's spam, few enough to list quickly.
const MAX_PURGE: i64 = 1000;

pub fn cog() -> Cog<Services> {
    let spec = |name, description, capability| {
        CommandSpec::new(name, description)
            .param(
                "user",
                "The member (or reply to their message)",
                ParamKind::User,
            )
            .requires(capability)
            .community_only()
            .targets_reply()
    };
    let reason =
        |spec: CommandSpec| spec.optional("reason", "Why, for the record", ParamKind::Rest);
    let member_log = |name, description| {
        CommandSpec::new(name, description)
            .optional("user", "Only this member", ParamKind::User)
            .requires(Capability::MuteMembers)
            .community_only()
    };
    Cog {
        name: "moderation",
        description: "Mute, kick, ban and warn members; clear messages; the case log",
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
                actions::mute,
            ),
            Command::new(
                spec(
                    "unmute",
                    "Let a muted member talk again",
                    Capability::MuteMembers,
                ),
                actions::unmute,
            ),
            Command::new(
                reason(spec(
                    "kick",
                    "Remove a member; they may rejoin",
                    Capability::KickMembers,
                )),
                actions::kick,
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
                        "For how long, e.g. 7d (permanent when left out)",
                        ParamKind::Duration { max: MAX_BAN },
                    ),
                ),
                actions::ban,
            ),
            Command::new(
                CommandSpec::new("unban", "Let a banned user back in (give their id)")
                    .param("user", "The user", ParamKind::User)
                    .requires(Capability::BanMembers)
                    .community_only(),
                actions::unban,
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
                actions::purge,
            ),
            Command::new(
                spec(
                    "warn",
                    "Warn a member; enough warnings mute, kick or ban",
                    Capability::MuteMembers,
                )
                .param("reason", "Why", ParamKind::Rest),
                warnings::warn,
            ),
            Command::new(
                member_log("warnings", "A member's active warnings, or everyone's"),
                warnings::warnings,
            ),
            Command::new(
                CommandSpec::new("unwarn", "Remove a warning by its case number")
                    .param(
                        "case",
                        "The case number, as the warnings command lists it",
                        ParamKind::Integer {
                            min: 1,
                            max: i64::MAX,
                        },
                    )
                    .requires(Capability::MuteMembers)
                    .community_only(),
                warnings::unwarn,
            ),
            Command::new(
                member_log(
                    "modlog",
                    "The latest moderation cases, of one member or all",
                ),
                warnings::modlog,
            ),
        ],
    }
}

/// The invoker as a case records them.
fn actor(ctx: &Ctx) -> Member {
    let author = &ctx.invocation.author;
    Member {
        id: author.id,
        name: author.name.clone(),
        is_bot: false,
    }
}

/// The member a command acts on: the one named, else the author of the replied-to message
/// (the dispatcher leaves the user out only for a reply).
async fn target(ctx: &Ctx, action: Option<&ModAction>) -> Result<Member, CommandError> {
    match (ctx.args.user("user"), &ctx.invocation.replied_to) {
        // A banned user is no longer a member.
        (Some(user), _) if action == Some(&ModAction::Unban) => ctx.user(user).await,
        (Some(user), _) => ctx.member(user).await,
        (None, Some(replied_to)) => Ok(replied_to.clone()),
        (None, None) => Err(CommandError::internal(
            "required argument user was not bound",
        )),
    }
}

/// What holds on every platform, before anything is stored or asked: not yourself, and not a
/// bot owner (an unban aside: it acts on someone who is not a member). The platform's ranks
/// (not the bot, nobody at or above you) are checked by `Platform::moderate` for actions, and
/// by `Platform::check_rank` for what the platform never sees (a warning).
fn check_target(ctx: &Ctx, target: &Member, verb: &str, unban: bool) -> Result<(), CommandError> {
    if target.id == ctx.invocation.author.id {
        return Err(CommandError::usage(format!("you can't {verb} yourself")));
    }
    if !unban && ctx.state.is_owner(target.id) {
        return Err(CommandError::Denied(format!(
            "{} owns this bot and can't be moderated",
            target.name
        )));
    }
    Ok(())
}

/// An action on a member recorded before the platform is asked: a pending case and a pending
/// audit row, so an action that went only part of the way, or never came back, stays visible.
pub struct Audited {
    pub case: i64,
    entry: EntryId,
    pub community: CommunityId,
    pub actor: Member,
    pub target: Member,
}

/// Opens the case (unless the warning's transaction already did: `opened`) and the audit row.
pub async fn audited_case(
    services: &Services,
    case: NewCase,
    opened: Option<i64>,
) -> Result<Audited, StoreError> {
    let id = match opened {
        Some(id) => id,
        None => {
            services
                .cases
                .open(case.clone(), services.clock.now())
                .await?
        }
    };
    let entry = Entry::new(Some(case.community), case.actor.id, case.action.as_str())
        .target(case.target.id)
        .reason(case.reason.as_deref())
        .detail(format!("case #{id}"));
    let entry = services.audit.record(entry).await?;
    Ok(Audited {
        case: id,
        entry,
        community: case.community,
        actor: case.actor,
        target: case.target,
    })
}

pub async fn audited(services: &Services, case: NewCase) -> Result<Audited, StoreError> {
    audited_case(services, case, None).await
}

impl Audited {
    /// Records what the platform did, on the case and the audit row alike.
    pub async fn finish(
        &self,
        services: &Services,
        result: &Result<ModOutcome, PlatformError>,
    ) -> Result<(), StoreError> {
        let shown = match result {
            Ok(outcome) => Ok(outcome.clone()),
            Err(e) => Err(e.to_string()),
        };
        let outcome = Outcome::of(&shown);
        services.cases.finish(self.case, outcome.clone()).await?;
        let audited = match outcome {
            Outcome::Pending => audit::Outcome::Pending,
            Outcome::Done => audit::Outcome::Done,
            Outcome::Incomplete(why) => audit::Outcome::Partial(why),
            Outcome::Failed(why) => audit::Outcome::Failed(why),
        };
        services.audit.finish(self.entry, audited).await?;
        log_channel::post(services, self.community, self.case).await;
        Ok(())
    }
}
