//! The one path every command takes, whatever the platform:
//! rate limit → lookup → cog switch → scope → argument binding → capability → cooldown →
//! handler (panics caught) → reply.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::sync::broadcast;

use super::args::Value;
use super::command::{Author, Catalog, CogInfo, Command, Ctx, Invocation, State};
use super::duration;
use super::error::{CommandError, ErrorId};
use super::ids::{ChannelId, CommunityId, UserId};
use super::parse;
use super::platform::{Member, Platform};
use super::ratelimit::{RateQuota, UserRateLimit, Verdict};
use super::reply::Reply;
use super::spec::{Capability, Scope};

/// A command as an adapter hands it over: already split from its prefix.
#[derive(Clone, Debug)]
pub struct Request {
    pub community: Option<CommunityId>,
    /// The community's name as its members know it (a Discord server's, a Telegram group's
    /// title, a Slack workspace's), where the platform says it.
    pub community_name: Option<String>,
    pub channel: ChannelId,
    pub author: Author,
    /// The author of the message the command replied to, if it was a reply.
    pub replied_to: Option<Member>,
    /// The platform's id of the message or interaction that carried the command, the same
    /// when the platform delivers it again; `None` where there is none (the console).
    pub id: Option<String>,
    pub name: String,
    pub args: ArgInput,
}

/// Arguments as the platform delivered them.
#[derive(Clone, Debug)]
pub enum ArgInput {
    /// The text after the command name (console, Telegram, Discord prefix commands).
    Text(String),
    /// Options a platform already split and typed (Discord slash commands), by name.
    Options(Vec<(String, Value)>),
}

/// An unexpected failure, published for whoever wants to know (e.g. a future "tell the owners"
/// feature); the in-process stand-in for a Redis error channel.
#[derive(Clone, Debug)]
pub struct ErrorReport {
    pub id: ErrorId,
    pub command: &'static str,
    pub user: UserId,
    pub message: String,
}

pub struct Dispatcher<S> {
    commands: HashMap<&'static str, (&'static str, Command<S>)>,
    catalog: Arc<Catalog>,
    state: Arc<S>,
    rate_limit: UserRateLimit,
    /// When each (user, command) may run again; entries outlive no cooldown.
    cooldowns: moka::sync::Cache<(UserId, &'static str), Instant>,
    errors: broadcast::Sender<ErrorReport>,
}

impl<S: State> Dispatcher<S> {
    /// Validates every spec and refuses duplicate command names across cogs.
    pub fn new(cogs: Vec<super::Cog<S>>, state: Arc<S>, quota: RateQuota) -> Result<Self, String> {
        let mut commands = HashMap::new();
        let mut catalog = Catalog::default();
        let mut longest_cooldown = Duration::from_secs(1);
        for cog in cogs {
            let mut info = CogInfo {
                name: cog.name,
                description: cog.description,
                commands: Vec::new(),
            };
            for command in cog.commands {
                command.spec.validate()?;
                longest_cooldown = longest_cooldown.max(command.spec.cooldown.unwrap_or_default());
                let name = command.spec.name;
                info.commands.push(command.spec.clone());
                if commands.insert(name, (cog.name, command)).is_some() {
                    return Err(format!("command /{name} is defined twice"));
                }
            }
            catalog.cogs.push(info);
        }
        Ok(Self {
            commands,
            catalog: Arc::new(catalog),
            state,
            rate_limit: UserRateLimit::new(quota),
            cooldowns: moka::sync::Cache::builder()
                .time_to_live(longest_cooldown)
                .build(),
            errors: broadcast::channel(64).0,
        })
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The greeting for `member`, who just joined `community` ([`State::greeting`]); bots
    /// are not greeted.
    pub async fn greeting(&self, community: CommunityId, member: &Member) -> Option<Reply> {
        if member.is_bot {
            return None;
        }
        self.state.greeting(community, member).await
    }

    /// Whether `user` is under a ban cogbox keeps itself ([`State::banned`]).
    pub async fn banned(&self, community: CommunityId, user: UserId) -> bool {
        self.state.banned(community, user).await
    }

    /// The text-command prefix `community` chose ([`State::prefix`]), if any.
    pub async fn prefix_in(&self, community: CommunityId) -> Option<String> {
        self.state.prefix(community).await
    }

    pub fn subscribe_errors(&self) -> broadcast::Receiver<ErrorReport> {
        self.errors.subscribe()
    }

    /// Bounds the rate limiter's memory; the app calls it periodically.
    pub fn tidy(&self) {
        self.rate_limit.tidy();
    }

    /// Runs one command. `None` means stay silent (a rate-limited user who was already told).
    ///
    /// The rate limit comes before the lookup, so unknown commands count too: otherwise one
    /// user typing `/nosuch1`, `/nosuch2`, … would get an answer for each.
    pub async fn dispatch(&self, platform: &Arc<dyn Platform>, request: Request) -> Option<Reply> {
        // Owners are trusted and often script the bot; everyone else is rate limited.
        let owner = self.state.is_owner(request.author.id);
        let verdict = if owner {
            Verdict::Allowed
        } else {
            self.rate_limit.check(request.author.id)
        };
        match verdict {
            Verdict::Allowed => {}
            Verdict::Quiet => return None,
            Verdict::Tell(wait) => {
                return Some(Reply::error(format!(
                    "You're sending commands too fast; try again in {}.",
                    duration::format(wait)
                )));
            }
        }
        let Some((cog, command)) = self.commands.get(request.name.as_str()) else {
            // Told once per window: more guesses would only be more noise in the chat.
            if !owner && !self.rate_limit.first_unknown(request.author.id) {
                return None;
            }
            let prefix = platform.command_prefix();
            return Some(Reply::error(format!(
                "Unknown command {prefix}{}. Try {prefix}help.",
                request.name
            )));
        };
        let name = command.spec.name;
        let user = request.author.id;
        let reply = match self.gate_and_run(platform, cog, command, request).await {
            Ok(reply) => reply,
            Err(
                CommandError::Usage(text)
                | CommandError::Denied(text)
                | CommandError::Platform(text),
            ) => Reply::error(format!("{}{name}: {text}", platform.command_prefix())),
            Err(CommandError::Internal(e)) => self.report(name, user, e.to_string()),
        };
        Some(reply)
    }

    async fn gate_and_run(
        &self,
        platform: &Arc<dyn Platform>,
        cog: &'static str,
        command: &Command<S>,
        request: Request,
    ) -> Result<Reply, CommandError> {
        let spec = &command.spec;
        let user = request.author.id;
        if let Some(community) = request.community {
            if !self
                .state
                .cog_enabled(community, cog)
                .await
                .map_err(CommandError::Internal)?
            {
                return Err(CommandError::Denied(format!(
                    "the {cog} cog is turned off here"
                )));
            }
        } else if spec.scope == Scope::Community {
            return Err(CommandError::Denied(
                "this only works in a group or server".into(),
            ));
        }
        let for_reply = request.replied_to.as_ref().and_then(|_| spec.for_reply());
        let binding = for_reply.as_ref().unwrap_or(spec);
        let args = match request.args {
            ArgInput::Text(text) => parse::bind(binding, &text, platform.command_prefix()),
            ArgInput::Options(options) => {
                parse::bind_options(binding, options, platform.command_prefix())
            }
        }
        .map_err(CommandError::Usage)?;
        match (spec.capability, request.community) {
            (None, _) => {}
            (Some(Capability::Owner), _) => {
                if !self.state.is_owner(user) {
                    return Err(CommandError::Denied(
                        "only the bot's owners can do that".into(),
                    ));
                }
            }
            (Some(capability), Some(community)) => {
                let channel = request.channel;
                if !platform
                    .has_capability(community, channel, user, capability)
                    .await?
                {
                    return Err(CommandError::Denied(format!(
                        "you need the {} permission",
                        platform.capability_name(capability)
                    )));
                }
            }
            (Some(_), None) => {
                return Err(CommandError::Denied(
                    "this only works in a group or server".into(),
                ));
            }
        }
        if let Some(cooldown) = spec.cooldown {
            let now = Instant::now();
            let key = (user, spec.name);
            if let Some(ready) = self.cooldowns.get(&key).filter(|ready| *ready > now) {
                return Err(CommandError::Denied(format!(
                    "you can use this again in {}",
                    duration::format(ready - now)
                )));
            }
            self.cooldowns.insert(key, now + cooldown);
        }
        let ctx = Ctx {
            invocation: Invocation {
                community: request.community,
                community_name: request.community_name,
                channel: request.channel,
                author: request.author,
                replied_to: request.replied_to,
                // 64 random bits: unique enough for a key no other delivery can repeat.
                id: request
                    .id
                    .unwrap_or_else(|| format!("r{:016x}", fastrand::u64(..))),
            },
            args,
            platform: Arc::clone(platform),
            state: Arc::clone(&self.state),
            catalog: Arc::clone(&self.catalog),
        };
        match AssertUnwindSafe(command.handler.call(ctx))
            .catch_unwind()
            .await
        {
            Ok(result) => result,
            Err(panic) => {
                let text = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a handler panicked".into());
                Err(CommandError::internal(format!("panic: {text}")))
            }
        }
    }

    fn report(&self, command: &'static str, user: UserId, message: String) -> Reply {
        let id = ErrorId::new();
        tracing::error!(error.id = %id, command, %user, "command failed: {message}");
        // No subscriber is fine: nobody has asked to hear about errors yet.
        let _ = self.errors.send(ErrorReport {
            id,
            command,
            user,
            message,
        });
        Reply::error(format!("Sorry, something went wrong (error {id})."))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::num::NonZeroU32;
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::core::{
        BoxError, Cog, Command, CommandResult, CommandSpec, Ctx, Member, PlatformError,
        PlatformKind, UserRef,
    };

    struct TestState {
        owner: UserId,
        disabled: Mutex<HashSet<&'static str>>,
    }

    #[async_trait]
    impl State for TestState {
        fn is_owner(&self, user: UserId) -> bool {
            user == self.owner
        }
        async fn cog_enabled(&self, _: CommunityId, cog: &str) -> Result<bool, BoxError> {
            Ok(!self.disabled.lock().unwrap().contains(cog))
        }
        async fn prefix(&self, _: CommunityId) -> Option<String> {
            Some("?".into())
        }
        async fn banned(&self, _: CommunityId, user: UserId) -> bool {
            user == MEMBER
        }
        async fn greeting(&self, _: CommunityId, member: &Member) -> Option<Reply> {
            Some(Reply::text(format!("Welcome, {}!", member.name)))
        }
    }

    /// Grants every capability to `moderator` and nothing to anyone else; commands are typed
    /// after `prefix`.
    struct TestPlatform {
        moderator: UserId,
        prefix: &'static str,
    }

    #[async_trait]
    impl Platform for TestPlatform {
        fn kind(&self) -> PlatformKind {
            PlatformKind::Console
        }
        fn command_prefix(&self) -> &str {
            self.prefix
        }
        fn capability_name(&self, _: Capability) -> &'static str {
            "Ban Members"
        }
        async fn has_capability(
            &self,
            _: CommunityId,
            _: ChannelId,
            user: UserId,
            _: Capability,
        ) -> Result<bool, PlatformError> {
            Ok(user == self.moderator)
        }
        async fn resolve_user(
            &self,
            _: Option<CommunityId>,
            _: &UserRef,
        ) -> Result<Option<Member>, PlatformError> {
            Ok(None)
        }
        async fn check_rank(
            &self,
            _: CommunityId,
            _: UserId,
            _: &Member,
            _: &str,
        ) -> Result<(), PlatformError> {
            Ok(())
        }
        async fn moderate(
            &self,
            _: CommunityId,
            _: Option<ChannelId>,
            _: UserId,
            _: &Member,
            _: &crate::core::ModAction,
            _: Option<&str>,
            _: Option<&Reply>,
        ) -> Result<crate::core::ModOutcome, PlatformError> {
            Ok(Default::default())
        }
        async fn purge(
            &self,
            _: CommunityId,
            _: ChannelId,
            count: u32,
        ) -> Result<u32, PlatformError> {
            Ok(count)
        }
        async fn direct_message(&self, _: UserId, _: &Reply) -> Result<(), PlatformError> {
            Ok(())
        }
        async fn send(&self, _: ChannelId, _: &Reply) -> Result<(), PlatformError> {
            Ok(())
        }
    }

    const OWNER: UserId = UserId::new(PlatformKind::Console, 1);
    const MODERATOR: UserId = UserId::new(PlatformKind::Console, 2);
    const MEMBER: UserId = UserId::new(PlatformKind::Console, 3);
    const GROUP: CommunityId = CommunityId::new(PlatformKind::Console, 10);

    async fn ok(_: Ctx<TestState>) -> CommandResult {
        Ok(Reply::text("done"))
    }

    async fn boom(ctx: Ctx<TestState>) -> CommandResult {
        if ctx.invocation.author.id == MEMBER {
            panic!("handler bug");
        }
        Err(CommandError::internal("database is gone"))
    }

    async fn who(ctx: Ctx<TestState>) -> CommandResult {
        let member = ctx.member(ctx.args.req_user("user")?).await?;
        Ok(Reply::text(member.name))
    }

    fn dispatcher() -> Dispatcher<TestState> {
        let cog = Cog {
            name: "test",
            description: "test commands",
            commands: vec![
                Command::new(CommandSpec::new("ok", "ok"), ok),
                Command::new(CommandSpec::new("boom", "fails"), boom),
                Command::new(
                    CommandSpec::new("ban", "ban").requires(Capability::BanMembers),
                    ok,
                ),
                Command::new(
                    CommandSpec::new("stop", "stop").requires(Capability::Owner),
                    ok,
                ),
                Command::new(
                    CommandSpec::new("daily", "daily").cooldown(Duration::from_secs(3600)),
                    ok,
                ),
                Command::new(CommandSpec::new("here", "here").community_only(), ok),
                Command::new(
                    CommandSpec::new("who", "who").param("user", "u", crate::core::ParamKind::User),
                    who,
                ),
            ],
        };
        let state = Arc::new(TestState {
            owner: OWNER,
            disabled: Mutex::default(),
        });
        let quota = RateQuota {
            commands: NonZeroU32::new(100).unwrap(),
            window: Duration::from_secs(1),
        };
        Dispatcher::new(vec![cog], state, quota).unwrap()
    }

    async fn send(
        d: &Dispatcher<TestState>,
        user: UserId,
        community: Option<CommunityId>,
        line: &str,
    ) -> Option<Reply> {
        send_typed_after(d, "/", user, community, line).await
    }

    async fn send_typed_after(
        d: &Dispatcher<TestState>,
        prefix: &'static str,
        user: UserId,
        community: Option<CommunityId>,
        line: &str,
    ) -> Option<Reply> {
        let platform: Arc<dyn Platform> = Arc::new(TestPlatform {
            moderator: MODERATOR,
            prefix,
        });
        let (name, args) = line.split_once(' ').unwrap_or((line, ""));
        let request = Request {
            community,
            community_name: None,
            channel: ChannelId::new(PlatformKind::Console, 20),
            author: Author {
                id: user,
                name: "someone".into(),
            },
            replied_to: None,
            id: None,
            name: name.into(),
            args: ArgInput::Text(args.into()),
        };
        d.dispatch(&platform, request).await
    }

    async fn text(d: &Dispatcher<TestState>, user: UserId, line: &str) -> String {
        send(d, user, Some(GROUP), line)
            .await
            .expect("a reply")
            .text
    }

    /// What an adapter asks the state goes through the dispatcher as the state answers it:
    /// the community's prefix, cogbox's own bans, and the greeting, which a bot never gets.
    #[tokio::test]
    async fn the_prefix_bans_and_greeting_are_the_states() {
        let d = dispatcher();
        assert_eq!(d.prefix_in(GROUP).await.as_deref(), Some("?"));
        assert!(d.banned(GROUP, MEMBER).await);
        assert!(!d.banned(GROUP, MODERATOR).await);
        let mut newcomer = Member {
            id: MEMBER,
            name: "ann".into(),
            is_bot: false,
        };
        let greeting = d.greeting(GROUP, &newcomer).await;
        assert_eq!(greeting.map(|r| r.text).as_deref(), Some("Welcome, ann!"));
        newcomer.is_bot = true;
        assert!(d.greeting(GROUP, &newcomer).await.is_none());
    }

    /// Tidying forgets the users whose rate-limit buckets have filled again, which bounds the
    /// limiter's memory however many users have ever sent a command.
    #[tokio::test]
    async fn tidying_forgets_users_whose_rate_limit_has_refilled() {
        let d = dispatcher();
        for raw in 100..110 {
            let user = UserId::new(PlatformKind::Console, raw);
            assert!(send(&d, user, Some(GROUP), "ok").await.is_some());
        }
        assert_eq!(d.rate_limit.tracked(), 10);
        // 100 commands a second: one command's share of the bucket is back after 10 ms.
        tokio::time::sleep(Duration::from_millis(50)).await;
        d.tidy();
        assert_eq!(d.rate_limit.tracked(), 0);
    }

    #[tokio::test]
    async fn a_failing_handler_gets_an_apology_with_an_id_and_a_published_report() {
        let d = dispatcher();
        let mut errors = d.subscribe_errors();
        for (user, cause) in [
            (MEMBER, "panic: handler bug"),
            (MODERATOR, "database is gone"),
        ] {
            let reply = send(&d, user, Some(GROUP), "boom").await.unwrap();
            assert_eq!(reply.tone, crate::core::Tone::Error);
            let report = errors.try_recv().expect("the failure is published");
            assert_eq!(
                reply.text,
                format!("Sorry, something went wrong (error {}).", report.id)
            );
            assert_eq!(
                (report.command, report.user, report.message.as_str()),
                ("boom", user, cause)
            );
        }
        assert_eq!(
            text(&d, MEMBER, "ok").await,
            "done",
            "the dispatcher survives a panic"
        );
    }

    #[tokio::test]
    async fn capabilities_come_from_the_platform_and_owners_from_config() {
        let d = dispatcher();
        assert_eq!(
            text(&d, MEMBER, "ban").await,
            "/ban: you need the Ban Members permission"
        );
        assert_eq!(text(&d, MODERATOR, "ban").await, "done");
        assert_eq!(
            text(&d, MODERATOR, "stop").await,
            "/stop: only the bot's owners can do that"
        );
        assert_eq!(text(&d, OWNER, "stop").await, "done");
    }

    #[tokio::test]
    async fn cooldowns_scope_and_switched_off_cogs_refuse_with_reasons() {
        let d = dispatcher();
        assert_eq!(text(&d, MEMBER, "daily").await, "done");
        assert_eq!(
            text(&d, MEMBER, "daily").await,
            "/daily: you can use this again in 1h"
        );
        assert_eq!(
            text(&d, MODERATOR, "daily").await,
            "done",
            "cooldowns are per user"
        );
        let dm = send(&d, MEMBER, None, "here").await.unwrap().text;
        assert_eq!(dm, "/here: this only works in a group or server");
        d.state.disabled.lock().unwrap().insert("test");
        assert_eq!(
            text(&d, MEMBER, "ok").await,
            "/ok: the test cog is turned off here"
        );
        assert_eq!(
            send(&d, MEMBER, None, "ok").await.unwrap().text,
            "done",
            "cog switches are per community"
        );
    }

    #[tokio::test]
    async fn unknown_commands_bad_arguments_and_missing_members_are_explained() {
        let d = dispatcher();
        assert_eq!(
            text(&d, MEMBER, "nope").await,
            "Unknown command /nope. Try /help."
        );
        assert_eq!(
            text(&d, MEMBER, "ok extra").await,
            "/ok: unexpected \"extra\" (usage: /ok)"
        );
        assert_eq!(
            text(&d, MEMBER, "who @ghost").await,
            "/who: I can't find @ghost here"
        );
    }

    #[tokio::test]
    async fn hints_name_commands_the_way_the_platform_has_them_typed() {
        let d = dispatcher();
        let mut told = Vec::new();
        for line in ["nope", "ok extra", "ban"] {
            let reply = send_typed_after(&d, "/cogbox ", MEMBER, Some(GROUP), line).await;
            told.push(reply.expect("a reply").text);
        }
        assert_eq!(
            told,
            [
                "Unknown command /cogbox nope. Try /cogbox help.",
                "/cogbox ok: unexpected \"extra\" (usage: /cogbox ok)",
                "/cogbox ban: you need the Ban Members permission",
            ]
        );
    }

    #[tokio::test]
    async fn unknown_commands_count_against_the_rate_limit_and_are_answered_once_a_window() {
        let state = Arc::new(TestState {
            owner: OWNER,
            disabled: Mutex::default(),
        });
        let quota = RateQuota {
            commands: NonZeroU32::new(5).unwrap(),
            window: Duration::from_secs(10),
        };
        let cog = Cog {
            name: "test",
            description: "test commands",
            commands: vec![Command::new(CommandSpec::new("ok", "ok"), ok)],
        };
        let d = Dispatcher::new(vec![cog], state, quota).unwrap();
        for _ in 0..5 {
            assert_eq!(text(&d, MEMBER, "ok").await, "done");
        }
        let mut replies = Vec::new();
        for i in 0..8 {
            replies.extend(send(&d, MEMBER, Some(GROUP), &format!("nosuch{i}")).await);
        }
        assert_eq!(replies.len(), 1, "a user past the limit gets one notice");
        assert!(
            replies[0]
                .text
                .starts_with("You're sending commands too fast")
        );

        let fresh = dispatcher();
        let mut replies = Vec::new();
        for i in 0..3 {
            replies.extend(send(&fresh, MEMBER, Some(GROUP), &format!("nosuch{i}")).await);
        }
        assert_eq!(replies.len(), 1, "\"unknown command\" once per window");
        assert_eq!(replies[0].text, "Unknown command /nosuch0. Try /help.");
        assert_eq!(text(&fresh, MEMBER, "ok").await, "done");
    }

    #[test]
    fn in_a_group_only_our_commands_or_addressed_ones_are_taken_up() {
        let catalog = dispatcher().catalog().clone();
        assert!(catalog.answers("ok", false, true));
        assert!(
            !catalog.answers("weather", false, true),
            "another bot's command"
        );
        assert!(
            catalog.answers("weather", true, true),
            "addressed to us: say it is unknown"
        );
        assert!(
            catalog.answers("weather", false, false),
            "a private chat is always ours"
        );
    }

    #[test]
    fn duplicate_command_names_are_refused_at_start() {
        let cog = |name| Cog::<TestState> {
            name,
            description: "d",
            commands: vec![Command::new(CommandSpec::new("ok", "ok"), ok)],
        };
        let state = Arc::new(TestState {
            owner: OWNER,
            disabled: Mutex::default(),
        });
        let quota = RateQuota {
            commands: NonZeroU32::new(1).unwrap(),
            window: Duration::from_secs(1),
        };
        let err = Dispatcher::new(vec![cog("a"), cog("b")], state, quota)
            .err()
            .unwrap();
        assert_eq!(err, "command /ok is defined twice");
    }
}
