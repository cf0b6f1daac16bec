//! What the core asks of a chat platform. Adapters implement [`Platform`]; cogs and the
//! dispatcher only ever see this trait, never a serenity or teloxide type.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use super::args::UserRef;
use super::error::PlatformError;
use super::ids::{ChannelId, CommunityId, PlatformKind, UserId};
use super::moderation::ModAction;
use super::reply::Reply;
use super::spec::Capability;

/// A member as a platform knows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: UserId,
    pub name: String,
    /// A bot account (which holds no money and takes no orders); false where the platform
    /// does not say.
    pub is_bot: bool,
}

/// What a platform did for one moderation action that it began, for the audit log and the
/// moderator. A refusal before anything changed is an `Err` of [`Platform::moderate`] instead.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModOutcome {
    /// Whether the notice reached the member by direct message.
    pub notified: bool,
    /// Set when the action went only part of the way: what was done and why the rest failed
    /// (a Telegram kick is a ban and then an unban, and the unban can fail).
    pub incomplete: Option<String>,
}

#[async_trait]
pub trait Platform: Send + Sync + 'static {
    fn kind(&self) -> PlatformKind;

    /// What a member types before a command's name here, for every hint that names a command
    /// ("Try /help"): `/` where each command is the platform's own slash command, and Slack's
    /// one umbrella command and a space (`/cogbox `) there.
    fn command_prefix(&self) -> &str {
        "/"
    }

    /// The platform's own name for the permission behind `capability` ("Ban Members" on
    /// Discord, "Ban users" on Telegram), used in every refusal.
    fn capability_name(&self, capability: Capability) -> &'static str;

    /// Whether `user` holds `capability` in `community` by the platform's permission system,
    /// in `channel` (where they asked) where the platform grants it channel by channel: a
    /// Discord channel can give or take Manage Messages. [`Capability::Owner`] never reaches
    /// this: owners come from cogbox's config.
    async fn has_capability(
        &self,
        community: CommunityId,
        channel: ChannelId,
        user: UserId,
        capability: Capability,
    ) -> Result<bool, PlatformError>;

    /// Finds the member a command names, or `None` when there is no such member here.
    async fn resolve_user(
        &self,
        community: Option<CommunityId>,
        user: &UserRef,
    ) -> Result<Option<Member>, PlatformError>;

    /// Whether `actor` may act on `target` here by the platform's ranks, for what does not go
    /// through [`Platform::moderate`] (a warning): never the bot itself, a server owner or
    /// anyone at or above the actor. `Err(Refused)` says why not; `moderate` checks the same.
    /// A platform that does not say refuses: nobody is warned on unchecked ranks.
    async fn check_rank(
        &self,
        _community: CommunityId,
        _actor: UserId,
        target: &Member,
        verb: &str,
    ) -> Result<(), PlatformError> {
        Err(PlatformError::Refused(format!(
            "I can't tell here whether you may {verb} {}",
            target.name
        )))
    }

    /// Carries out `action` on `target` for `actor`, after the platform's own checks: the
    /// actor outranks the target, and the bot has the permission and the rank to act. A
    /// refusal names what is missing ("I need Moderate Members to mute @x"). `notice` goes to
    /// the target by direct message once the checks pass and before acting, because a kicked or
    /// banned member may be out of the bot's reach afterwards; it is best effort, and a notice
    /// that cannot be delivered is only logged. `Err` means nothing was changed. `channel` is
    /// where the action was asked for (`None` for a scheduled lift): Slack removes members
    /// channel by channel.
    #[allow(clippy::too_many_arguments)] // each is one fact of the action; a struct would only rename them
    async fn moderate(
        &self,
        community: CommunityId,
        channel: Option<ChannelId>,
        actor: UserId,
        target: &Member,
        action: &ModAction,
        reason: Option<&str>,
        notice: Option<&Reply>,
    ) -> Result<ModOutcome, PlatformError>;

    /// Deletes up to `count` of the latest messages in `channel`, after checking that the bot
    /// may (the member asking holds [`Capability::ManageMessages`] there, checked before);
    /// messages the platform will not delete (too old, pinned) are left. Returns how many
    /// were deleted.
    async fn purge(
        &self,
        community: CommunityId,
        channel: ChannelId,
        count: u32,
    ) -> Result<u32, PlatformError>;

    /// Refuses a `channel` that a setting of `community` may not name: a Discord server's log
    /// goes to one of its own channels, never into another server the bot is in. Where chats
    /// stand alone (a Telegram log is a group of its own) any channel will do.
    async fn check_channel(
        &self,
        _community: CommunityId,
        _channel: ChannelId,
    ) -> Result<(), PlatformError> {
        Ok(())
    }

    /// Sends `reply` to `user` in a private chat.
    async fn direct_message(&self, user: UserId, reply: &Reply) -> Result<(), PlatformError>;

    /// Posts `reply` in `channel`, unprompted: a reminder that fell due, an owner alert.
    async fn send(&self, channel: ChannelId, reply: &Reply) -> Result<(), PlatformError>;
}

/// The platforms running in this process, one per kind: how work that outlives a command (a
/// reminder, a mute that ends tomorrow) reaches the platform it belongs to. Adapters register
/// themselves once started; a kind that is not running yet simply is not found.
#[derive(Default)]
pub struct Platforms(RwLock<HashMap<PlatformKind, Arc<dyn Platform>>>);

impl Platforms {
    pub fn register(&self, platform: Arc<dyn Platform>) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(platform.kind(), platform);
    }

    pub fn get(&self, kind: PlatformKind) -> Option<Arc<dyn Platform>> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&kind)
            .cloned()
    }

    pub fn kinds(&self) -> Vec<PlatformKind> {
        let mut kinds: Vec<_> = self
            .0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect();
        kinds.sort();
        kinds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A platform that knows only its kind: enough for [`Platforms`] and the trait's default.
    struct Bare(PlatformKind);

    #[async_trait]
    impl Platform for Bare {
        fn kind(&self) -> PlatformKind {
            self.0
        }
        fn capability_name(&self, _: Capability) -> &'static str {
            unreachable!("not asked in these tests")
        }
        async fn has_capability(
            &self,
            _: CommunityId,
            _: ChannelId,
            _: UserId,
            _: Capability,
        ) -> Result<bool, PlatformError> {
            unreachable!("not asked in these tests")
        }
        async fn resolve_user(
            &self,
            _: Option<CommunityId>,
            _: &UserRef,
        ) -> Result<Option<Member>, PlatformError> {
            unreachable!("not asked in these tests")
        }
        async fn moderate(
            &self,
            _: CommunityId,
            _: Option<ChannelId>,
            _: UserId,
            _: &Member,
            _: &ModAction,
            _: Option<&str>,
            _: Option<&Reply>,
        ) -> Result<ModOutcome, PlatformError> {
            unreachable!("not asked in these tests")
        }
        async fn purge(&self, _: CommunityId, _: ChannelId, _: u32) -> Result<u32, PlatformError> {
            unreachable!("not asked in these tests")
        }
        async fn direct_message(&self, _: UserId, _: &Reply) -> Result<(), PlatformError> {
            unreachable!("not asked in these tests")
        }
        async fn send(&self, _: ChannelId, _: &Reply) -> Result<(), PlatformError> {
            unreachable!("not asked in these tests")
        }
    }

    #[test]
    fn a_registered_platform_is_found_by_its_kind_and_listed_once_in_order() {
        use PlatformKind::{Discord, Slack, Telegram};
        let platforms = Platforms::default();
        assert!(platforms.get(Discord).is_none());
        assert!(platforms.kinds().is_empty());
        for kind in [Telegram, Discord, Telegram] {
            platforms.register(Arc::new(Bare(kind)));
        }
        for kind in [Discord, Telegram] {
            assert_eq!(platforms.get(kind).map(|p| p.kind()), Some(kind));
        }
        assert!(platforms.get(Slack).is_none(), "not running");
        assert_eq!(platforms.kinds(), [Discord, Telegram]);
    }

    /// Nobody is warned on ranks nobody checked.
    #[tokio::test]
    async fn a_platform_that_does_not_say_how_its_ranks_work_refuses_to_rank() {
        let target = Member {
            id: UserId::new(PlatformKind::Discord, 2),
            name: "@bob".into(),
            is_bot: false,
        };
        let actor = UserId::new(PlatformKind::Discord, 1);
        let community = CommunityId::new(PlatformKind::Discord, 3);
        let answer = Bare(PlatformKind::Discord)
            .check_rank(community, actor, &target, "warn")
            .await;
        match answer {
            Err(PlatformError::Refused(why)) => {
                assert_eq!(why, "I can't tell here whether you may warn @bob");
            }
            other => panic!("{other:?}"),
        }
    }
}
