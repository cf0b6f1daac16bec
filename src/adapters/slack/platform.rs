//! Slack as a [`Platform`]: workspace owners and admins (from `users.info`) hold the settings
//! and moderation capabilities; a kick is `conversations.kick` from the channel it was asked
//! in; Slack gives apps no mute and no ban, so a mute is refused and a ban is kept by cogbox
//! and enforced by removing the member again whenever they join a channel the bot is in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::api::{Api, ApiError};
use super::render::render;
use crate::core::{
    Capability, ChannelId, CommunityId, Member, ModAction, ModOutcome, Platform, PlatformError,
    PlatformKind, Raw, Reply, UserId, UserRef,
};

/// How long a member's `users.info` is trusted: a demoted admin keeps their rights here at most
/// this long.
const PROFILE_TTL: Duration = Duration::from_secs(30);
/// Profiles kept at once: about 200 bytes each, so at most about 2 MB.
const MAX_PROFILES: u64 = 10_000;
/// Channels whose "is it the general channel" answer is kept: about 40 bytes each (160 KB);
/// past this the answers are forgotten and asked again.
const MAX_CHANNELS_KNOWN: usize = 4096;

/// What `users.info` says of a member.
#[derive(Clone, Debug)]
pub struct Profile {
    pub name: String,
    pub is_admin: bool,
    pub is_owner: bool,
    pub is_primary_owner: bool,
    pub is_bot: bool,
}

impl Profile {
    /// Slack's ranks: owners above admins, admins above members. The primary owner is one
    /// more owner here (nobody may act on any owner); Slack marks them `is_owner` too, and
    /// either flag is enough.
    fn rank(&self) -> u8 {
        match self {
            p if p.is_owner || p.is_primary_owner => 2,
            p if p.is_admin => 1,
            _ => 0,
        }
    }
}

pub struct SlackPlatform {
    pub api: Arc<Api>,
    /// The bot's own user id (`auth.test`).
    pub bot_user: String,
    /// `slack.command` and a space: how every command is typed here.
    command_prefix: String,
    profiles: moka::future::Cache<String, Arc<Profile>>,
    /// Which channels are the workspace's general channel (`conversations.info`).
    general: Mutex<HashMap<String, bool>>,
    asking: tokio::sync::Mutex<()>,
}

pub fn user_id(id: &str) -> Result<UserId, PlatformError> {
    UserId::word(PlatformKind::Slack, id).map_err(|e| PlatformError::Failed(e.into()))
}

pub fn channel_id(id: &str) -> Result<ChannelId, PlatformError> {
    ChannelId::word(PlatformKind::Slack, id).map_err(|e| PlatformError::Failed(e.into()))
}

pub fn community_id(team: &str) -> Result<CommunityId, PlatformError> {
    CommunityId::word(PlatformKind::Slack, team).map_err(|e| PlatformError::Failed(e.into()))
}

/// The Slack id inside a core id; every id the adapter hands out is a word.
fn word(raw: Raw, what: &str) -> Result<String, PlatformError> {
    raw.word()
        .map(str::to_owned)
        .ok_or_else(|| PlatformError::Failed(format!("{raw} is not a Slack {what} id").into()))
}

/// Slack's own refusals, in words a moderator can act on; anything else is ours to log.
fn refused(e: ApiError, verb: &str, target: &str) -> PlatformError {
    let text = match e.code() {
        Some("missing_scope") => {
            let needed = match &e {
                ApiError::Slack { needed, .. } => needed.clone().unwrap_or_default(),
                _ => String::new(),
            };
            // Slack may name several scopes, any one of which would do: `a,b,c`.
            let needed = match needed.rsplit_once(',') {
                Some((some, last)) => format!("{} or {last}", some.replace(',', ", ")),
                None => needed,
            };
            format!("I need the {needed} scope to {verb} {target}: add it to the app and reinstall")
        }
        Some("not_in_channel") => format!("{target} is not in this channel"),
        Some("cant_kick_from_general") => {
            "Slack never removes anyone from the workspace's general channel".into()
        }
        Some("restricted_action") => {
            format!("this workspace's settings don't let apps {verb} members")
        }
        Some("method_not_supported_for_channel_type") => {
            format!("I can't {verb} anyone from a direct message")
        }
        Some("user_not_found") => format!("I can't find {target} here"),
        _ => return PlatformError::Failed(e.into()),
    };
    PlatformError::Refused(text)
}

impl SlackPlatform {
    pub fn new(api: Arc<Api>, bot_user: String, command: &str) -> Self {
        Self {
            api,
            bot_user,
            command_prefix: format!("{command} "),
            profiles: moka::future::Cache::builder()
                .max_capacity(MAX_PROFILES)
                .time_to_live(PROFILE_TTL)
                .build(),
            general: Mutex::default(),
            asking: tokio::sync::Mutex::default(),
        }
    }

    /// Whether `channel` is the workspace's general channel, which every new member joins:
    /// where they are welcomed. Unknown (Slack not answering) counts as no until the answers
    /// are forgotten.
    pub async fn is_general(&self, channel: &str) -> bool {
        let known = || {
            let map = self.general.lock().unwrap_or_else(PoisonError::into_inner);
            map.get(channel).copied()
        };
        if let Some(general) = known() {
            return general;
        }
        // One question at a time: joins that arrive together wait for the first answer.
        let _asking = self.asking.lock().await;
        if let Some(general) = known() {
            return general;
        }
        let answer = match self
            .api
            .call("conversations.info", &[("channel", channel)])
            .await
        {
            Ok(answer) => answer["channel"]["is_general"].as_bool().unwrap_or(false),
            // Remembered as "no" too: a burst of joins must not each wait on the method's
            // rate tier (an app installed without channels:read fails every time).
            Err(e) => {
                tracing::info!(
                    "slack: cannot tell whether {channel} is the general channel, so no welcome there: {e}"
                );
                false
            }
        };
        let mut map = self.general.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_CHANNELS_KNOWN {
            map.clear();
        }
        map.insert(channel.to_owned(), answer);
        answer
    }

    /// A member's profile, `None` for a user Slack does not know.
    pub async fn profile(&self, user: &str) -> Result<Option<Arc<Profile>>, PlatformError> {
        if let Some(known) = self.profiles.get(user).await {
            return Ok(Some(known));
        }
        let answer = match self.api.call("users.info", &[("user", user)]).await {
            Ok(answer) => answer,
            Err(e) if e.code() == Some("user_not_found") => return Ok(None),
            Err(e) => return Err(PlatformError::Failed(e.into())),
        };
        let u = &answer["user"];
        let flag = |key: &str| u[key].as_bool().unwrap_or(false);
        let display = u["profile"]["display_name"]
            .as_str()
            .filter(|n| !n.is_empty());
        let profile = Arc::new(Profile {
            name: format!("@{}", display.or(u["name"].as_str()).unwrap_or(user)),
            is_admin: flag("is_admin"),
            is_owner: flag("is_owner"),
            is_primary_owner: flag("is_primary_owner"),
            is_bot: flag("is_bot"),
        });
        self.profiles
            .insert(user.to_owned(), Arc::clone(&profile))
            .await;
        Ok(Some(profile))
    }

    async fn known(&self, user: &str) -> Result<Arc<Profile>, PlatformError> {
        self.profile(user)
            .await?
            .ok_or_else(|| PlatformError::Refused(format!("I can't find user {user} here")))
    }

    /// Refuses acting on the bot, on anyone at or above the actor, and on owners.
    async fn outranks(
        &self,
        actor: UserId,
        target: &Member,
        verb: &str,
    ) -> Result<(), PlatformError> {
        let target_id = word(target.id.raw, "user")?;
        if target_id == self.bot_user {
            return Err(PlatformError::Refused(format!("I won't {verb} myself")));
        }
        let actor = self.known(&word(actor.raw, "user")?).await?;
        let profile = self.known(&target_id).await?;
        if profile.rank() >= 2 {
            return Err(PlatformError::Refused(format!(
                "{} is a workspace owner: nobody can {verb} them here",
                target.name
            )));
        }
        if profile.rank() >= actor.rank() {
            return Err(PlatformError::Refused(format!(
                "{} is a workspace admin like you: only an owner can {verb} them",
                target.name
            )));
        }
        Ok(())
    }

    /// Posts `reply` in `channel` (a channel id, or a DM channel).
    pub async fn post(&self, channel: &str, reply: &Reply) -> Result<Value, ApiError> {
        self.send_rendered("chat.postMessage", &[("channel", channel)], reply)
            .await
    }

    /// Shows `reply` to `user` alone in `channel`.
    pub async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        reply: &Reply,
    ) -> Result<(), ApiError> {
        let to = [("channel", channel), ("user", user)];
        self.send_rendered("chat.postEphemeral", &to, reply)
            .await
            .map(drop)
    }

    /// Calls `method` with `to` and `reply` as text, and as blocks when it has structure.
    async fn send_rendered(
        &self,
        method: &'static str,
        to: &[(&str, &str)],
        reply: &Reply,
    ) -> Result<Value, ApiError> {
        let rendered = render(reply);
        let blocks = rendered.blocks.map(|b| Value::Array(b).to_string());
        let mut params = to.to_vec();
        params.push(("text", rendered.text.as_str()));
        if let Some(blocks) = &blocks {
            params.push(("blocks", blocks));
        }
        self.api.call(method, &params).await
    }

    /// Replaces the bot's message `ts` in `channel` (a poll's counts).
    pub async fn update(&self, channel: &str, ts: &str, reply: &Reply) -> Result<(), ApiError> {
        let rendered = render(reply);
        let blocks = Value::Array(rendered.blocks.unwrap_or_default()).to_string();
        let params = [
            ("channel", channel),
            ("ts", ts),
            ("text", rendered.text.as_str()),
            ("blocks", blocks.as_str()),
        ];
        self.api.call("chat.update", &params).await.map(drop)
    }

    /// Answers through a `response_url`: seen by the caller alone, or by the channel; always
    /// as a new message, never in place of a pressed one (once Slack's default for buttons).
    pub async fn respond(&self, url: &str, reply: &Reply, ephemeral: bool) -> Result<(), ApiError> {
        let rendered = render(reply);
        let mut body = json!({
            "response_type": if ephemeral { "ephemeral" } else { "in_channel" },
            "replace_original": false,
            "text": rendered.text,
        });
        if let Some(blocks) = rendered.blocks {
            body["blocks"] = Value::Array(blocks);
        }
        self.api.respond(url, &body).await
    }

    /// Removes `user` from `channel`.
    pub async fn kick(&self, channel: &str, user: &str) -> Result<(), ApiError> {
        self.api
            .call(
                "conversations.kick",
                &[("channel", channel), ("user", user)],
            )
            .await
            .map(drop)
    }

    /// Removes a banned member who joined `channel` again.
    pub async fn enforce_ban(&self, channel: &str, user: &str) {
        match self.kick(channel, user).await {
            Ok(()) => tracing::info!("slack: removed banned member {user} from {channel} again"),
            Err(e) => tracing::warn!(
                "slack: banned member {user} joined {channel}, and I could not remove them: {e}"
            ),
        }
    }
}

#[async_trait]
impl Platform for SlackPlatform {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Slack
    }

    fn command_prefix(&self) -> &str {
        &self.command_prefix
    }

    fn capability_name(&self, capability: Capability) -> &'static str {
        match capability {
            Capability::Owner => "bot owner",
            _ => "Workspace Admin",
        }
    }

    async fn has_capability(
        &self,
        _community: CommunityId,
        _: ChannelId,
        user: UserId,
        capability: Capability,
    ) -> Result<bool, PlatformError> {
        if capability == Capability::Owner {
            return Ok(false);
        }
        let profile = self.profile(&word(user.raw, "user")?).await?;
        Ok(profile.is_some_and(|p| p.rank() >= 1))
    }

    async fn resolve_user(
        &self,
        _community: Option<CommunityId>,
        user: &UserRef,
    ) -> Result<Option<Member>, PlatformError> {
        // Slack turns a typed @name into <@U…|name> before cogbox sees it; a plain name left
        // over names nobody in this workspace.
        let UserRef::Id(Raw::Word(id)) = user else {
            return Ok(None);
        };
        let Some(profile) = self.profile(id.as_str()).await? else {
            return Ok(None);
        };
        Ok(Some(Member {
            id: user_id(id.as_str())?,
            name: profile.name.clone(),
            is_bot: profile.is_bot,
        }))
    }

    async fn check_rank(
        &self,
        _community: CommunityId,
        actor: UserId,
        target: &Member,
        verb: &str,
    ) -> Result<(), PlatformError> {
        self.outranks(actor, target, verb).await
    }

    async fn moderate(
        &self,
        _community: CommunityId,
        channel: Option<ChannelId>,
        actor: UserId,
        target: &Member,
        action: &ModAction,
        _reason: Option<&str>,
        notice: Option<&Reply>,
    ) -> Result<ModOutcome, PlatformError> {
        let verb = action.verb();
        if let ModAction::Mute(_) | ModAction::Unmute = action {
            return Err(PlatformError::Refused(format!(
                "Slack gives apps no way to {verb} members; kick or ban instead"
            )));
        }
        let user = word(target.id.raw, "user")?;
        if let ModAction::Unban = action {
            // The ban is cogbox's own: recording the unban lifts it.
            return Ok(ModOutcome::default());
        }
        self.outranks(actor, target, verb).await?;
        let channel = match channel {
            Some(channel) => word(channel.raw, "channel")?,
            None => {
                return Err(PlatformError::Refused(format!(
                    "I can only {verb} someone from the channel it is asked in"
                )));
            }
        };
        let notified = match notice {
            Some(notice) => self.notify(&user, notice).await,
            None => false,
        };
        let incomplete = match action {
            ModAction::Ban(_) => {
                self.remove_everywhere(&channel, &user, &target.name)
                    .await?
            }
            _ => {
                self.kick(&channel, &user)
                    .await
                    .map_err(|e| refused(e, verb, &target.name))?;
                None
            }
        };
        Ok(ModOutcome {
            notified,
            incomplete,
        })
    }

    async fn purge(
        &self,
        _community: CommunityId,
        _channel: ChannelId,
        _count: u32,
    ) -> Result<u32, PlatformError> {
        Err(PlatformError::Refused(
            "Slack lets apps delete only their own messages, so I can't purge here".into(),
        ))
    }

    async fn direct_message(&self, user: UserId, reply: &Reply) -> Result<(), PlatformError> {
        let user = word(user.raw, "user")?;
        let opened = self
            .api
            .call("conversations.open", &[("users", &user)])
            .await
            .map_err(|e| refused(e, "message", &user))?;
        let channel = opened["channel"]["id"].as_str().unwrap_or_default();
        self.post(channel, reply)
            .await
            .map(drop)
            .map_err(|e| PlatformError::Failed(e.into()))
    }

    /// A channel the bot cannot post in (never invited to it, archived, deleted) is a refusal,
    /// not a failure to retry: a reminder set there goes to its author by direct message.
    async fn send(&self, channel: ChannelId, reply: &Reply) -> Result<(), PlatformError> {
        let channel = word(channel.raw, "channel")?;
        self.post(&channel, reply).await.map(drop).map_err(|e| {
            let why = match e.code() {
                Some("not_in_channel") => "I'm not in that channel: invite me there first",
                Some("channel_not_found") => {
                    "there is no such channel, or it is private and I'm not in it"
                }
                Some("is_archived") => "that channel is archived",
                _ => return PlatformError::Failed(e.into()),
            };
            PlatformError::Refused(why.into())
        })
    }
}

/// Pages of `users.conversations` read for one ban: at most 1,000 channels.
const MAX_CHANNEL_PAGES: usize = 5;

impl SlackPlatform {
    /// The channels `user` is in that the bot can see (public ones, and private ones it is in).
    async fn channels_of(&self, user: &str) -> Result<Vec<String>, ApiError> {
        let mut channels = Vec::new();
        let mut cursor = String::new();
        for _ in 0..MAX_CHANNEL_PAGES {
            let params = [
                ("user", user),
                ("types", "public_channel,private_channel"),
                ("exclude_archived", "true"),
                ("limit", "200"),
                ("cursor", cursor.as_str()),
            ];
            let page = self.api.call("users.conversations", &params).await?;
            let ids = page["channels"].as_array().into_iter().flatten();
            channels.extend(ids.filter_map(|c| c["id"].as_str().map(str::to_owned)));
            cursor = page["response_metadata"]["next_cursor"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if cursor.is_empty() {
                break;
            }
        }
        Ok(channels)
    }

    /// A ban removes the member from every channel the bot shares with them, the one it was
    /// asked in first; those Slack keeps them in (the general channel) are left. `Err` when
    /// none could be touched; the channels that refused, if any, as an incomplete outcome.
    async fn remove_everywhere(
        &self,
        asked_in: &str,
        user: &str,
        name: &str,
    ) -> Result<Option<String>, PlatformError> {
        let mut channels = vec![asked_in.to_owned()];
        match self.channels_of(user).await {
            Ok(found) => channels.extend(found.into_iter().filter(|c| c != asked_in)),
            Err(e) => tracing::warn!(
                "slack: cannot list {user}'s channels, removing from this one only: {e}"
            ),
        }
        let (mut removed, mut refusals) = (0, Vec::new());
        for channel in &channels {
            match self.kick(channel, user).await {
                Ok(()) => removed += 1,
                Err(e) if matches!(e.code(), Some("not_in_channel" | "cant_kick_from_general")) => {
                }
                Err(e) => refusals.push((channel, e)),
            }
        }
        if removed == 0 && !refusals.is_empty() {
            let (_, first) = refusals.remove(0);
            return Err(refused(first, "ban", name));
        }
        Ok((!refusals.is_empty()).then(|| {
            let failed: Vec<String> = refusals
                .iter()
                .map(|(channel, e)| format!("{channel} ({})", e.code().unwrap_or("error")))
                .collect();
            format!(
                "removed from {removed} channel(s) but not from {}",
                failed.join(", ")
            )
        }))
    }

    /// The moderation notice by direct message; best effort, as on the other platforms.
    async fn notify(&self, user: &str, notice: &Reply) -> bool {
        let id = match user_id(user) {
            Ok(id) => id,
            Err(_) => return false,
        };
        match self.direct_message(id, notice).await {
            Ok(()) => true,
            Err(e) => {
                tracing::info!("slack: could not tell {user} by direct message: {e}");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ApiError, PlatformError, Profile, refused};

    #[test]
    fn a_missing_scope_is_named_and_several_are_offered_as_alternatives() {
        let told = |needed: &str| {
            let e = ApiError::Slack {
                method: "conversations.kick",
                code: "missing_scope".into(),
                needed: Some(needed.into()),
            };
            match refused(e, "kick", "@tom") {
                PlatformError::Refused(text) => text,
                PlatformError::Failed(e) => panic!("not a refusal: {e}"),
            }
        };
        let reinstall = "to kick @tom: add it to the app and reinstall";
        assert_eq!(
            told("channels:manage"),
            format!("I need the channels:manage scope {reinstall}")
        );
        assert_eq!(
            told("channels:manage,channels:write,groups:write"),
            format!("I need the channels:manage, channels:write or groups:write scope {reinstall}")
        );
    }

    fn profile(is_admin: bool, is_owner: bool, is_primary_owner: bool) -> Profile {
        Profile {
            name: "@someone".into(),
            is_admin,
            is_owner,
            is_primary_owner,
            is_bot: false,
        }
    }

    #[test]
    fn each_owner_flag_alone_makes_an_owner_and_admins_rank_between_owners_and_members() {
        assert_eq!(profile(false, false, false).rank(), 0);
        assert_eq!(profile(true, false, false).rank(), 1);
        assert_eq!(profile(true, true, false).rank(), 2);
        assert_eq!(profile(false, true, false).rank(), 2);
        assert_eq!(profile(false, false, true).rank(), 2);
        assert_eq!(profile(true, true, true).rank(), 2);
    }
}
