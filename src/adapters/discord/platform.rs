//! The core's [`Platform`] on Discord: capabilities are Discord permissions computed from the
//! cached guild (the owner and ADMINISTRATOR imply all), moderation checks the role hierarchy
//! for both the invoker and the bot before acting, and every refusal names what is missing.

use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serenity::all::{
    Cache, ChannelId as DChannelId, EditMember, GetMessages, Guild, GuildId, Http, HttpError,
    Member as DMember, MessageId, Permissions, ShardMessenger, Timestamp, User, UserId as DUserId,
};

use super::members::{MemberSearch, pick};
use super::render::render;
use crate::core::moderation::MAX_MUTE;
use crate::core::{
    Capability, ChannelId, CommunityId, Member, ModAction, ModOutcome, Platform, PlatformError,
    PlatformKind, Raw, Reply, UserId, UserRef,
};

/// Discord refuses to bulk-delete messages older than two weeks.
const BULK_DELETE_MAX_AGE: Duration = Duration::from_secs(14 * 24 * 3600);
/// Kept clear of that edge, for clock skew and the time spent listing.
const AGE_MARGIN: Duration = Duration::from_secs(60);
/// Messages per listing page and per bulk delete: Discord's maximum for both.
const PAGE: usize = 100;
/// What the bot needs in a channel to purge it.
const PURGE_NEEDS: Permissions = Permissions::VIEW_CHANNEL
    .union(Permissions::MANAGE_MESSAGES)
    .union(Permissions::READ_MESSAGE_HISTORY);
/// Discord's limit on an audit-log reason.
const MAX_REASON: usize = 512;

pub struct DiscordPlatform {
    http: Arc<Http>,
    cache: Arc<Cache>,
    /// The gateway connection, for member searches.
    shard: ShardMessenger,
    search: Arc<MemberSearch>,
    me: DUserId,
    ban_delete_message_days: u8,
}

/// The Discord permission behind a capability.
pub fn permission(capability: Capability) -> Permissions {
    match capability {
        Capability::BanMembers => Permissions::BAN_MEMBERS,
        Capability::KickMembers => Permissions::KICK_MEMBERS,
        Capability::MuteMembers => Permissions::MODERATE_MEMBERS,
        Capability::ManageMessages => Permissions::MANAGE_MESSAGES,
        Capability::ManageSettings => Permissions::MANAGE_GUILD,
        // Never asked: owners come from cogbox's config. Should it be, the strictest answer.
        Capability::Owner => Permissions::ADMINISTRATOR,
    }
}

/// A Discord user as the core knows them (snowflakes are kept bit for bit).
pub fn user_id(id: DUserId) -> UserId {
    UserId::new(PlatformKind::Discord, id.get() as i64)
}

pub fn community_id(guild: GuildId) -> CommunityId {
    CommunityId::new(PlatformKind::Discord, guild.get() as i64)
}

/// How members are named in replies: `@username`, unique and what people type.
pub fn display(user: &User) -> String {
    format!("@{}", user.name)
}

/// A core id as a Discord id; `None` for 0 or a word, which no Discord object has.
fn snowflake<T: From<NonZeroU64>>(raw: Raw) -> Option<T> {
    NonZeroU64::new(raw.number()? as u64).map(T::from)
}

fn discord_id<T: From<NonZeroU64>>(raw: Raw) -> Result<T, PlatformError> {
    snowflake(raw).ok_or_else(|| PlatformError::Failed(format!("{raw} is not a Discord id").into()))
}

pub fn status(e: &serenity::Error) -> Option<u16> {
    match e {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(response)) => {
            Some(response.status_code.as_u16())
        }
        _ => None,
    }
}

/// A 403 is Discord saying no for a reason a member can fix; anything else is a failure.
fn refused_or_failed(e: serenity::Error) -> PlatformError {
    match &e {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(response))
            if response.status_code.as_u16() == 403 =>
        {
            PlatformError::Refused(format!("Discord refused: {}", response.error.message))
        }
        _ => PlatformError::Failed(format!("Discord: {e}").into()),
    }
}

/// The HTTP status and Discord's error code of a refused request.
fn status_and_code(e: &serenity::Error) -> Option<(u16, isize)> {
    match e {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(response)) => {
            Some((response.status_code.as_u16(), response.error.code))
        }
        _ => None,
    }
}

/// Discord's refusals of a post to a channel, in words a moderator can act on.
fn post_refused(e: serenity::Error) -> PlatformError {
    let why = match status_and_code(&e) {
        Some((403, 50001)) => "I can't see that channel: I need View Channel there",
        Some((403, 50013)) => "I need Send Messages in that channel",
        Some((404, 10003)) => "there is no such channel",
        _ => return refused_or_failed(e),
    };
    PlatformError::Refused(why.into())
}

impl DiscordPlatform {
    pub fn new(
        (http, cache, shard): (Arc<Http>, Arc<Cache>, ShardMessenger),
        search: Arc<MemberSearch>,
        me: DUserId,
        ban_delete_message_days: u8,
    ) -> Self {
        Self {
            http,
            cache,
            shard,
            search,
            me,
            ban_delete_message_days,
        }
    }

    /// A member from the cache, else from Discord; `None` when they are not in the guild.
    async fn member(
        &self,
        guild: GuildId,
        user: DUserId,
    ) -> Result<Option<DMember>, PlatformError> {
        let cached = self
            .cache
            .guild(guild)
            .and_then(|g| g.members.get(&user).cloned());
        if let Some(member) = cached {
            return Ok(Some(member));
        }
        match self.http.get_member(guild, user).await {
            Ok(member) => Ok(Some(member)),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(refused_or_failed(e)),
        }
    }

    /// A member who must be there: the invoker, or the bot itself.
    async fn present(&self, guild: GuildId, user: DUserId) -> Result<DMember, PlatformError> {
        self.member(guild, user)
            .await?
            .ok_or_else(|| PlatformError::Failed(format!("{user} is not in guild {guild}").into()))
    }

    /// Runs `read` on the cached guild, which GUILD_CREATE filled in.
    fn guild<T>(&self, guild: GuildId, read: impl FnOnce(&Guild) -> T) -> Result<T, PlatformError> {
        let cached = self
            .cache
            .guild(guild)
            .ok_or_else(|| PlatformError::Failed(format!("guild {guild} is not cached").into()))?;
        Ok(read(&cached))
    }

    /// Carries out `action` on `user` (named `name` in a refusal).
    async fn act(
        &self,
        guild: GuildId,
        (user, name): (DUserId, &str),
        action: &ModAction,
        reason: Option<&str>,
    ) -> Result<(), PlatformError> {
        let reason: Option<String> = reason.map(|r| r.chars().take(MAX_REASON).collect());
        let reason = reason.as_deref();
        match action {
            ModAction::Mute(duration) => {
                let seconds = (*duration).min(MAX_MUTE).as_secs() as i64;
                let until =
                    Timestamp::from_unix_timestamp(Timestamp::now().unix_timestamp() + seconds)
                        .map_err(|e| PlatformError::Failed(e.into()))?;
                let edit = EditMember::new().disable_communication_until_datetime(until);
                self.edit_member(guild, user, edit, reason).await
            }
            ModAction::Unmute => {
                let edit = EditMember::new().enable_communication();
                self.edit_member(guild, user, edit, reason).await
            }
            ModAction::Kick => self.http.kick_member(guild, user, reason).await,
            ModAction::Ban(_) => {
                self.http
                    .ban_user(guild, user, self.ban_delete_message_days, reason)
                    .await
            }
            ModAction::Unban => {
                let lifted = self.http.remove_ban(guild, user, reason).await;
                return lifted.map_err(|e| match status_and_code(&e) {
                    Some((404, 10026)) => PlatformError::Refused(format!("{name} is not banned")),
                    _ => refused_or_failed(e),
                });
            }
        }
        .map_err(refused_or_failed)
    }

    async fn edit_member(
        &self,
        guild: GuildId,
        user: DUserId,
        edit: EditMember<'_>,
        reason: Option<&str>,
    ) -> serenity::Result<()> {
        let edit = match reason {
            Some(reason) => edit.audit_log_reason(reason),
            None => edit,
        };
        guild.edit_member(&*self.http, user, edit).await.map(drop)
    }

    /// The latest `count` messages of `channel` that may be bulk-deleted, newest first.
    async fn recent(
        &self,
        channel: DChannelId,
        count: usize,
    ) -> Result<Vec<MessageId>, PlatformError> {
        let oldest =
            Timestamp::now().unix_timestamp() - (BULK_DELETE_MAX_AGE - AGE_MARGIN).as_secs() as i64;
        let mut ids = Vec::new();
        let mut before = None;
        loop {
            let mut page = GetMessages::new().limit(PAGE as u8);
            if let Some(before) = before {
                page = page.before(before);
            }
            let messages = channel
                .messages(&*self.http, page)
                .await
                .map_err(refused_or_failed)?;
            let (taken, older_follow) = deletable(
                messages.iter().map(|m| (m.id, m.pinned)),
                oldest,
                count - ids.len(),
            );
            ids.extend(taken);
            if older_follow || messages.len() < PAGE || ids.len() >= count {
                return Ok(ids);
            }
            before = messages.last().map(|m| m.id);
        }
    }
}

/// From a page of (id, pinned) newest first, up to `wanted` ids of unpinned messages created
/// at or after `oldest` (unix seconds), and whether the page reached older messages.
fn deletable(
    page: impl Iterator<Item = (MessageId, bool)>,
    oldest: i64,
    wanted: usize,
) -> (Vec<MessageId>, bool) {
    let mut ids = Vec::new();
    for (id, pinned) in page {
        if id.created_at().unix_timestamp() < oldest {
            return (ids, true);
        }
        if ids.len() == wanted {
            break;
        }
        if !pinned {
            ids.push(id);
        }
    }
    (ids, false)
}

/// Where a member stands: the owner above all, else the position of their highest role
/// (0 with only @everyone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rank {
    Owner,
    Role(u16),
}

impl Rank {
    fn of(guild: &Guild, member: &DMember) -> Self {
        if member.user.id == guild.owner_id {
            Self::Owner
        } else {
            Self::Role(guild.member_highest_role(member).map_or(0, |r| r.position))
        }
    }

    /// Discord lets a member act on another only from strictly higher up.
    fn above(self, other: Self) -> bool {
        match (self, other) {
            (Self::Owner, Self::Role(_)) => true,
            (Self::Role(a), Self::Role(b)) => a > b,
            (_, Self::Owner) => false,
        }
    }
}

/// What a moderation action is decided on, read from the cache.
struct Case<'a> {
    action: &'a ModAction,
    /// The target as replies name them.
    target: &'a str,
    actor: Rank,
    bot: Rank,
    /// Whether the bot holds the action's permission.
    bot_allowed: bool,
    /// The target's rank and whether they are an administrator; `None` for an unban, as a
    /// banned user has neither.
    member: Option<(Rank, bool)>,
}

/// Discord's rules, in the order a moderator can best act on: who may be touched at all, the
/// invoker's rank, the bot's permission, the bot's rank.
fn judge(case: &Case, permission_name: &str) -> Result<(), String> {
    let (verb, target) = (case.action.verb(), case.target);
    if let Some((rank, _)) = case.member {
        outranks(case.actor, rank, target, verb)?;
    }
    if !case.bot_allowed {
        return Err(format!("I need {permission_name} to {verb} {target}"));
    }
    if let Some((rank, admin)) = case.member {
        if !case.bot.above(rank) {
            return Err(format!(
                "my highest role must be above {target}'s for me to {verb} them \
                 (Server Settings → Roles)"
            ));
        }
        if admin && matches!(case.action, ModAction::Mute(_)) {
            return Err(format!(
                "{target} is an administrator, and Discord does not let anyone time out administrators"
            ));
        }
    }
    Ok(())
}

/// Whether a member of rank `actor` may `verb` one of rank `rank`, named `target`.
fn outranks(actor: Rank, rank: Rank, target: &str, verb: &str) -> Result<(), String> {
    if rank == Rank::Owner {
        return Err(format!(
            "{target} owns this server, and nobody can {verb} a server owner"
        ));
    }
    if !actor.above(rank) {
        return Err(format!(
            "your highest role must be above {target}'s for you to {verb} them"
        ));
    }
    Ok(())
}

#[async_trait]
impl Platform for DiscordPlatform {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Discord
    }

    /// The names Discord's own settings show.
    fn capability_name(&self, capability: Capability) -> &'static str {
        match capability {
            Capability::BanMembers => "Ban Members",
            Capability::KickMembers => "Kick Members",
            Capability::MuteMembers => "Moderate Members",
            Capability::ManageMessages => "Manage Messages",
            Capability::ManageSettings => "Manage Server",
            Capability::Owner => "bot owner",
        }
    }

    /// A member who is timed out holds no capability: Discord takes their permissions away
    /// for the timeout, which serenity's permission computation does not know. Manage
    /// Messages is the one capability a channel's overwrites can give or take: it is judged
    /// in `channel` (a thread, not in the cache's channels, by the server's permissions).
    async fn has_capability(
        &self,
        community: CommunityId,
        channel: ChannelId,
        user: UserId,
        capability: Capability,
    ) -> Result<bool, PlatformError> {
        let guild = discord_id(community.raw)?;
        let Some(member) = self.member(guild, discord_id(user.raw)?).await? else {
            return Ok(false);
        };
        let timed_out = member
            .communication_disabled_until
            .is_some_and(|until| until.unix_timestamp() > Timestamp::now().unix_timestamp());
        let channel: DChannelId = discord_id(channel.raw)?;
        let permissions = self.guild(guild, |g| match g.channels.get(&channel) {
            Some(c) if capability == Capability::ManageMessages => {
                g.user_permissions_in(c, &member)
            }
            _ => g.member_permissions(&member),
        })?;
        Ok(!timed_out && permissions.contains(permission(capability)))
    }

    /// Ids (mentions included) are looked up in the guild, or anywhere without a community;
    /// `@name` is searched for through the gateway (the cache holds almost nobody) and must be
    /// one member's username, display name or nickname.
    async fn resolve_user(
        &self,
        community: Option<CommunityId>,
        user: &UserRef,
    ) -> Result<Option<Member>, PlatformError> {
        let found = |user: &User| Member {
            id: user_id(user.id),
            name: display(user),
            is_bot: user.bot,
        };
        match (community, user) {
            (_, UserRef::Id(id)) if snowflake::<DUserId>(*id).is_none() => Ok(None),
            (Some(community), UserRef::Id(id)) => {
                let member = self
                    .member(discord_id(community.raw)?, discord_id(*id)?)
                    .await?;
                Ok(member.map(|m| found(&m.user)))
            }
            (Some(community), UserRef::Name(name)) => {
                let guild = discord_id(community.raw)?;
                let members = self.search.query(&self.shard, guild, name).await?;
                let member = pick(&members, name).map_err(PlatformError::Refused)?;
                Ok(member.map(|m| found(&m.user)))
            }
            (None, UserRef::Id(id)) => {
                let id: DUserId = discord_id(*id)?;
                if let Some(user) = self.cache.user(id) {
                    return Ok(Some(found(&user)));
                }
                match self.http.get_user(id).await {
                    Ok(user) => Ok(Some(found(&user))),
                    Err(e) if status(&e) == Some(404) => Ok(None),
                    Err(e) => Err(refused_or_failed(e)),
                }
            }
            (None, UserRef::Name(_)) => Ok(None),
        }
    }

    async fn check_rank(
        &self,
        community: CommunityId,
        actor: UserId,
        target: &Member,
        verb: &str,
    ) -> Result<(), PlatformError> {
        let guild: GuildId = discord_id(community.raw)?;
        let user: DUserId = discord_id(target.id.raw)?;
        if user == self.me {
            return Err(PlatformError::Refused(format!("I won't {verb} myself")));
        }
        let actor = self.present(guild, discord_id(actor.raw)?).await?;
        let member = self.member(guild, user).await?.ok_or_else(|| {
            PlatformError::Refused(format!("{} is not a member here", target.name))
        })?;
        let (actor, rank) = self.guild(guild, |g| (Rank::of(g, &actor), Rank::of(g, &member)))?;
        outranks(actor, rank, &target.name, verb).map_err(PlatformError::Refused)
    }

    async fn moderate(
        &self,
        community: CommunityId,
        channel: Option<ChannelId>,
        actor: UserId,
        target: &Member,
        action: &ModAction,
        reason: Option<&str>,
        notice: Option<&Reply>,
    ) -> Result<ModOutcome, PlatformError> {
        let guild: GuildId = discord_id(community.raw)?;
        let user: DUserId = discord_id(target.id.raw)?;
        if user == self.me {
            return Err(PlatformError::Refused(format!(
                "I won't {} myself",
                action.verb()
            )));
        }
        let bot = self.present(guild, self.me).await?;
        // A scheduled lift (no channel) carries out what the moderator decided when they
        // acted: it goes by the bot's rank alone, even if they have left the server since.
        let actor = match channel {
            Some(_) => self.present(guild, discord_id(actor.raw)?).await?,
            None => bot.clone(),
        };
        let member = match action {
            ModAction::Unban => None,
            _ => Some(self.member(guild, user).await?.ok_or_else(|| {
                PlatformError::Refused(format!("{} is not a member here", target.name))
            })?),
        };
        let needed = action.capability();
        let case = self.guild(guild, |g| Case {
            action,
            target: &target.name,
            actor: Rank::of(g, &actor),
            bot: Rank::of(g, &bot),
            bot_allowed: g.member_permissions(&bot).contains(permission(needed)),
            member: member
                .as_ref()
                .map(|m| (Rank::of(g, m), g.member_permissions(m).administrator())),
        })?;
        judge(&case, self.capability_name(needed)).map_err(PlatformError::Refused)?;
        let mut notified = false;
        if let Some(notice) = notice {
            match self.direct_message(target.id, notice).await {
                Ok(()) => notified = true,
                Err(e) => tracing::info!(%user, "discord: could not tell the member by DM: {e}"),
            }
        }
        self.act(guild, (user, &target.name), action, reason)
            .await?;
        Ok(ModOutcome {
            notified,
            incomplete: None,
        })
    }

    /// The bot needs Manage Messages in this very channel (an overwrite can take it away),
    /// Read Message History to list what to delete, and View Channel, without which Discord
    /// grants nothing there (serenity does not apply that rule).
    async fn purge(
        &self,
        community: CommunityId,
        channel: ChannelId,
        count: u32,
    ) -> Result<u32, PlatformError> {
        let guild: GuildId = discord_id(community.raw)?;
        let channel: DChannelId = discord_id(channel.raw)?;
        let bot = self.present(guild, self.me).await?;
        let allowed = self.guild(guild, |g| {
            let here = g.channels.get(&channel)?;
            Some(g.user_permissions_in(here, &bot).contains(PURGE_NEEDS))
        })?;
        match allowed {
            None => {
                return Err(PlatformError::Refused(
                    "I can only purge a server's text channels".into(),
                ));
            }
            Some(false) => {
                return Err(PlatformError::Refused(
                    "I need View Channel, Manage Messages and Read Message History in this channel to purge it"
                        .into(),
                ));
            }
            Some(true) => {}
        }
        let ids = self.recent(channel, count as usize).await?;
        // serenity sends a chunk of one as a single delete, as bulk-delete takes 2 to 100.
        for chunk in ids.chunks(PAGE) {
            channel
                .delete_messages(&*self.http, chunk)
                .await
                .map_err(refused_or_failed)?;
        }
        Ok(ids.len() as u32)
    }

    async fn check_channel(
        &self,
        community: CommunityId,
        channel: ChannelId,
    ) -> Result<(), PlatformError> {
        let channel: DChannelId = discord_id(channel.raw)?;
        let here = self.guild(discord_id(community.raw)?, |g| {
            g.channels.contains_key(&channel)
        })?;
        if here {
            Ok(())
        } else {
            Err(PlatformError::Refused(
                "that is not a channel of this server".into(),
            ))
        }
    }

    async fn direct_message(&self, user: UserId, reply: &Reply) -> Result<(), PlatformError> {
        let user: DUserId = discord_id(user.raw)?;
        user.direct_message(&*self.http, render(reply).message())
            .await
            .map(drop)
            .map_err(refused_or_failed)
    }

    async fn send(&self, channel: ChannelId, reply: &Reply) -> Result<(), PlatformError> {
        let channel: DChannelId = discord_id(channel.raw)?;
        channel
            .send_message(&*self.http, render(reply).message())
            .await
            .map(drop)
            .map_err(post_refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(
        action: &ModAction,
        actor: Rank,
        bot: Rank,
        member: Option<(Rank, bool)>,
    ) -> Result<(), String> {
        let case = Case {
            action,
            target: "@x",
            actor,
            bot,
            bot_allowed: true,
            member,
        };
        judge(&case, "Moderate Members")
    }

    #[test]
    fn the_hierarchy_decides_who_may_act_on_whom() {
        let mute = ModAction::Mute(Duration::from_secs(60));
        let (low, mid, high) = (Rank::Role(1), Rank::Role(2), Rank::Role(3));
        assert_eq!(case(&mute, mid, high, Some((low, false))), Ok(()));
        assert_eq!(case(&mute, Rank::Owner, high, Some((mid, false))), Ok(()));
        assert_eq!(
            case(&mute, mid, high, Some((Rank::Owner, false))).unwrap_err(),
            "@x owns this server, and nobody can mute a server owner"
        );
        assert_eq!(
            case(&mute, mid, high, Some((mid, false))).unwrap_err(),
            "your highest role must be above @x's for you to mute them"
        );
        assert!(
            case(&mute, Rank::Owner, mid, Some((high, false)))
                .unwrap_err()
                .starts_with("my highest role must be above @x's for me to mute them")
        );
        assert!(
            case(&mute, Rank::Owner, high, Some((low, true)))
                .unwrap_err()
                .contains("does not let anyone time out administrators")
        );
        assert_eq!(case(&ModAction::Kick, mid, high, Some((low, true))), Ok(()));
        assert_eq!(
            case(&ModAction::Unban, low, low, None),
            Ok(()),
            "a banned user has no rank"
        );
    }

    #[test]
    fn a_missing_bot_permission_is_named() {
        let case = Case {
            action: &ModAction::Mute(Duration::from_secs(60)),
            target: "@bob",
            actor: Rank::Role(2),
            bot: Rank::Role(3),
            bot_allowed: false,
            member: Some((Rank::Role(0), false)),
        };
        assert_eq!(
            judge(&case, "Moderate Members").unwrap_err(),
            "I need Moderate Members to mute @bob"
        );
    }

    #[test]
    fn purge_keeps_pinned_and_stops_at_two_weeks() {
        const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;
        let at = |secs: i64| MessageId::new(((secs as u64 * 1000 - DISCORD_EPOCH_MS) << 22) | 1);
        let now = 1_750_000_000;
        let oldest = now - 14 * 86_400;
        let page = [
            (at(now), false),
            (at(now - 10), true),
            (at(now - 20), false),
            (at(oldest), false),
            (at(oldest - 1), false),
            (at(oldest - 2), false),
        ];
        let (ids, older) = deletable(page.into_iter(), oldest, 10);
        let expected = vec![at(now), at(now - 20), at(oldest)];
        assert_eq!((ids, older), (expected, true));
        let (ids, older) = deletable(page.into_iter(), oldest, 1);
        assert_eq!((ids, older), (vec![at(now)], false));
    }
}
