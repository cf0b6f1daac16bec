//! Moderation actions, as cogs ask for them and platforms carry them out.

use std::time::Duration;

use super::spec::Capability;

/// The longest mute: Discord's timeout limit, applied on every platform alike.
pub const MAX_MUTE: Duration = Duration::from_secs(28 * 24 * 3600);

/// The longest timed ban: Telegram takes anything longer as permanent.
pub const MAX_BAN: Duration = Duration::from_secs(365 * 24 * 3600);

/// One action on one member. The platform checks, by its own rules, that the invoker outranks
/// the target and that the bot has the permission and the rank to act, before doing anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModAction {
    /// Silence for this long (Discord timeout, Telegram restriction), at most [`MAX_MUTE`].
    Mute(Duration),
    Unmute,
    /// Remove from the community; they may rejoin.
    Kick,
    /// Remove and keep out, for this long when given (at most [`MAX_BAN`]).
    Ban(Option<Duration>),
    /// Let a banned user back in; they need not be a member.
    Unban,
}

impl ModAction {
    /// The verb for messages: "I need Ban Members to ban @x".
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Mute(_) => "mute",
            Self::Unmute => "unmute",
            Self::Kick => "kick",
            Self::Ban(_) => "ban",
            Self::Unban => "unban",
        }
    }

    /// What the bot itself must be allowed to do for this action.
    pub fn capability(&self) -> Capability {
        match self {
            Self::Mute(_) | Self::Unmute => Capability::MuteMembers,
            Self::Kick => Capability::KickMembers,
            Self::Ban(_) | Self::Unban => Capability::BanMembers,
        }
    }
}
