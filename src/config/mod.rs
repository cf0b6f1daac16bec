//! The configuration: built-in defaults < `config.toml` < `COGBOX_*` environment variables.
//! Sections mirror the file; `config.example.toml` documents every key.

mod load;
mod tokens;
mod values;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::core::{ChannelId, PlatformKind, RateQuota, UserId};
pub use load::{ConfigErrors, ConfigSource, load};
pub use values::{ActivityKind, HumanDuration, Interval, MASK, Presence};

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub bot: BotConfig,
    pub discord: DiscordConfig,
    pub telegram: TelegramConfig,
    pub slack: SlackConfig,
    pub log: LogConfig,
    pub limits: LimitsConfig,
    pub retention: RetentionConfig,
    pub schedule: ScheduleConfig,
    /// How far ahead of the wall clock cogbox runs, from `COGBOX_TEST_CLOCK_OFFSET`: only for
    /// end-to-end tests of the real binary, and refused unless every platform is a local fake.
    #[serde(skip)]
    pub test_clock_offset: Option<Duration>,
    pub backup: BackupConfig,
    pub update: UpdateConfig,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BotConfig {
    /// The bot's name in help texts and logs.
    pub name: String,
    /// Who may use owner-only commands, as `platform:id` (`discord:80351110224678912`,
    /// `telegram:12345678`, `console:alice`).
    #[serde(
        deserialize_with = "values::de_owners",
        serialize_with = "values::ser_owners"
    )]
    pub owners: Vec<UserId>,
    /// Database and logs live here; a relative path is taken from the config file's folder.
    pub data_dir: PathBuf,
    /// Where errors are also reported besides the owners' direct messages, as `platform:id`
    /// (`discord:1234`, `telegram:-100123`); empty for nowhere.
    #[serde(
        deserialize_with = "values::de_channel",
        serialize_with = "values::ser_channel"
    )]
    pub error_channel: Option<ChannelId>,
}

impl Default for BotConfig {
    fn default() -> Self {
        Self {
            name: "cogbox".into(),
            owners: Vec::new(),
            data_dir: "data".into(),
            error_channel: None,
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordConfig {
    /// The bot token from the developer portal; unset means Discord is off.
    #[serde(
        deserialize_with = "values::de_secret",
        serialize_with = "values::ser_secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub token: Option<SecretString>,
    /// A file holding the token instead (mode 600); systemd's `LoadCredential=discord_token`
    /// is read when neither is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Where REST calls go; only tests change it.
    pub api_url: String,
    /// Prefix for text commands (`!roll 2d6`), beside slash commands and mentions of the bot.
    /// Empty turns prefix commands off, and with them the privileged Message Content intent.
    pub prefix: String,
    /// Guilds to register slash commands in instantly; empty registers them globally.
    pub guild_ids: Vec<u64>,
    /// Shown under the bot's name, e.g. "watching for /help".
    pub presence: Presence,
    /// Days of a banned member's messages Discord deletes with the ban (0-7): a server policy,
    /// so it is set here rather than typed with every /ban.
    pub ban_delete_message_days: u8,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        Self {
            token: None,
            token_file: None,
            api_url: "https://discord.com".into(),
            prefix: "!".into(),
            guild_ids: Vec::new(),
            presence: Presence(Some((ActivityKind::Watching, "for /help".into()))),
            ban_delete_message_days: 0,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TelegramMode {
    #[default]
    Polling,
    Webhook,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelegramConfig {
    /// The token from @BotFather; unset means Telegram is off.
    #[serde(
        deserialize_with = "values::de_secret",
        serialize_with = "values::ser_secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub token: Option<SecretString>,
    /// A file holding the token instead (mode 600); systemd's `LoadCredential=telegram_token`
    /// is read when neither is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Where Bot API calls go; only tests change it.
    pub api_url: String,
    /// `polling` (no public address needed) or `webhook`.
    pub mode: TelegramMode,
    pub webhook: WebhookConfig,
}

impl Default for TelegramConfig {
    fn default() -> Self {
        Self {
            token: None,
            token_file: None,
            api_url: "https://api.telegram.org".into(),
            mode: TelegramMode::Polling,
            webhook: WebhookConfig::default(),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Address the webhook server binds, usually behind a TLS reverse proxy.
    #[serde(deserialize_with = "values::de_socket_addr")]
    pub listen: SocketAddr,
    /// The public https URL Telegram posts to, on port 443, 80, 88 or 8443 (Telegram's rule).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Telegram sends it back in `X-Telegram-Bot-Api-Secret-Token`: 1-256 of A-Z a-z 0-9 _ -.
    #[serde(
        deserialize_with = "values::de_secret",
        serialize_with = "values::ser_secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub secret_token: Option<SecretString>,
    /// Drop updates that queued up while the bot was down.
    pub drop_pending_updates: bool,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            public_url: None,
            secret_token: None,
            drop_pending_updates: false,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SlackMode {
    /// Socket Mode: cogbox opens a WebSocket to Slack, so no public address is needed.
    #[default]
    Socket,
    /// The Events API: Slack posts signed requests to `[slack.events] listen`.
    Events,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfig {
    /// The bot token (`xoxb-…`) from the app's *OAuth & Permissions* page; unset means Slack
    /// is off.
    #[serde(
        deserialize_with = "values::de_secret",
        serialize_with = "values::ser_secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub bot_token: Option<SecretString>,
    /// The app-level token (`xapp-…`, scope `connections:write`) that opens Socket Mode
    /// connections; needed in socket mode only.
    #[serde(
        deserialize_with = "values::de_secret",
        serialize_with = "values::ser_secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub app_token: Option<SecretString>,
    /// `socket` (no public address needed) or `events` (signed HTTP requests).
    pub mode: SlackMode,
    /// From the app's *Basic Information* page: signs every request in events mode.
    #[serde(
        deserialize_with = "values::de_secret",
        serialize_with = "values::ser_secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub signing_secret: Option<SecretString>,
    /// The one umbrella slash command (`/cogbox roll 2d6`): Slack's built-ins cannot be taken
    /// and every slash command must be declared in the app manifest.
    pub command: String,
    /// Where Web API calls go, without a trailing slash; only tests change it.
    pub api_url: String,
    pub events: SlackEventsConfig,
}

impl Default for SlackConfig {
    fn default() -> Self {
        Self {
            bot_token: None,
            app_token: None,
            mode: SlackMode::Socket,
            signing_secret: None,
            command: "/cogbox".into(),
            api_url: "https://slack.com/api".into(),
            events: SlackEventsConfig::default(),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackEventsConfig {
    /// Address the events listener binds, usually behind a TLS reverse proxy.
    #[serde(deserialize_with = "values::de_socket_addr")]
    pub listen: SocketAddr,
}

impl Default for SlackEventsConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
        }
    }
}

/// Slash commands Slack keeps for itself: an app cannot register these.
const SLACK_BUILTIN_COMMANDS: &[&str] = &[
    "/active",
    "/apps",
    "/archive",
    "/away",
    "/call",
    "/collapse",
    "/dm",
    "/expand",
    "/feed",
    "/feedback",
    "/giphy",
    "/help",
    "/invite",
    "/join",
    "/kick",
    "/leave",
    "/me",
    "/msg",
    "/mute",
    "/open",
    "/prefs",
    "/remind",
    "/remove",
    "/rename",
    "/search",
    "/shortcuts",
    "/shrug",
    "/star",
    "/status",
    "/topic",
    "/who",
];

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rotation {
    Hourly,
    #[default]
    Daily,
    Never,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter such as `info` or `cogbox=debug,warn`; `RUST_LOG` overrides it.
    pub level: String,
    /// Log folder; defaults to `<data_dir>/logs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    pub rotation: Rotation,
    /// How many log files to keep.
    pub keep: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            dir: None,
            rotation: Rotation::Daily,
            keep: 7,
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Commands one user may send per `window` before being told to slow down.
    pub commands: NonZeroU32,
    pub window: HumanDuration,
    /// How long in-flight commands may take to finish at shutdown; what is left is dropped.
    pub shutdown_grace: HumanDuration,
    /// Updates each platform may hold at once, taken and not yet answered. Beyond it the
    /// Telegram webhook answers 503 (Telegram delivers again later) and polling waits; on
    /// Discord as many again may wait, and past that the oldest waiting command is dropped.
    pub max_in_flight: NonZeroU32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            commands: NonZeroU32::new(5).expect("5 is not zero"),
            window: HumanDuration(Duration::from_secs(10)),
            shutdown_grace: HumanDuration(Duration::from_secs(5)),
            max_in_flight: NonZeroU32::new(128).expect("128 is not zero"),
        }
    }
}

impl LimitsConfig {
    pub fn quota(&self) -> RateQuota {
        RateQuota {
            commands: self.commands,
            window: self.window.0,
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Days the audit log keeps entries.
    pub audit_log_days: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self { audit_log_days: 90 }
    }
}

/// How often each periodic job runs, written like `1d` or `5m`; `""` turns a job off.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// Deletes audit-log entries older than `retention.audit_log_days`.
    pub audit_purge: Interval,
    /// Runs SQLite's `PRAGMA optimize`, which keeps query plans good as tables grow.
    pub optimize: Interval,
    /// Catches up what should have expired: a timed mute or ban ends at its own time, and this
    /// lifts again any whose lift failed every attempt (a platform down for hours).
    pub expiries: Interval,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        let every = |secs| Interval(Some(Duration::from_secs(secs)));
        Self {
            audit_purge: every(24 * 3600),
            optimize: every(24 * 3600),
            expiries: every(5 * 60),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// Backup folder; defaults to `<data_dir>/backups`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// How often `run` takes a backup on its own (at least 1m).
    pub every: HumanDuration,
    /// How many of those scheduled backups to keep, deleting older ones; 0 turns them off.
    pub keep: usize,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            dir: None,
            every: HumanDuration(Duration::from_secs(24 * 3600)),
            keep: 7,
        }
    }
}

/// Where `cogbox update` looks for new releases.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpdateConfig {
    /// The GitHub repository that publishes the signed release archives, as `owner/name`;
    /// unset, `cogbox update` says to set it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// The GitHub API's address; only tests change it.
    pub api_url: String,
}

impl Default for UpdateConfig {
    fn default() -> Self {
        Self {
            repository: None,
            api_url: "https://api.github.com".into(),
        }
    }
}

/// The shortest interval a periodic job may have: shorter ones only keep the disk busy.
const MIN_INTERVAL: Duration = Duration::from_secs(10);

impl Config {
    /// Whether any chat platform has a token; without one, `run` opens the console.
    pub fn has_platforms(&self) -> bool {
        self.discord.token.is_some()
            || self.telegram.token.is_some()
            || self.slack.bot_token.is_some()
    }

    pub fn database_path(&self) -> PathBuf {
        self.bot.data_dir.join("cogbox.db")
    }

    pub fn backup_dir(&self) -> PathBuf {
        self.backup
            .dir
            .clone()
            .unwrap_or_else(|| self.bot.data_dir.join("backups"))
    }

    pub fn log_dir(&self) -> PathBuf {
        self.log
            .dir
            .clone()
            .unwrap_or_else(|| self.bot.data_dir.join("logs"))
    }

    /// Makes relative paths relative to the config file's folder, so the bot finds its data
    /// whatever folder it is started from.
    fn anchor_paths(&mut self, base: &Path) {
        if self.bot.data_dir.is_relative() {
            self.bot.data_dir = base.join(&self.bot.data_dir);
        }
        for path in [
            &mut self.log.dir,
            &mut self.backup.dir,
            &mut self.discord.token_file,
            &mut self.telegram.token_file,
        ] {
            if let Some(path) = path.as_mut().filter(|p| p.is_relative()) {
                *path = base.join(&*path);
            }
        }
    }

    /// Rules serde cannot express, as (key, problem) pairs.
    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for (key, url) in [
            ("discord.api_url", &self.discord.api_url),
            ("telegram.api_url", &self.telegram.api_url),
            ("slack.api_url", &self.slack.api_url),
            ("update.api_url", &self.update.api_url),
        ] {
            if let Err(e) = check_base_url(url) {
                out.push((key, e));
            }
        }
        let prefix = &self.discord.prefix;
        if !prefix.is_empty()
            && let Err(e) = crate::core::parse::check_prefix(prefix)
        {
            out.push((
                "discord.prefix",
                format!("{e}, or \"\" to turn prefix commands off"),
            ));
        }
        if self.discord.guild_ids.contains(&0) {
            out.push((
                "discord.guild_ids",
                "0 is not a guild id (copy ids with Developer Mode on)".into(),
            ));
        }
        if self.discord.ban_delete_message_days > 7 {
            out.push((
                "discord.ban_delete_message_days",
                format!(
                    "{} is more than Discord allows; use 0 to 7",
                    self.discord.ban_delete_message_days
                ),
            ));
        }
        if self.bot.data_dir.as_os_str().is_empty() {
            out.push(("bot.data_dir", "must not be empty".into()));
        }
        let hook = &self.telegram.webhook;
        if let Some(secret) = &hook.secret_token {
            if let Err(e) = check_secret_token(secret) {
                out.push(("telegram.webhook.secret_token", e));
            }
        }
        if self.telegram.mode == TelegramMode::Webhook {
            match hook.public_url.as_deref() {
                None => out.push((
                    "telegram.webhook.public_url",
                    "webhook mode needs the public https URL Telegram posts to".into(),
                )),
                Some(url) => {
                    if let Err(e) = check_public_url(url) {
                        out.push(("telegram.webhook.public_url", e));
                    } else if let Err(e) = check_webhook_path(url) {
                        out.push(("telegram.webhook.public_url", format!("\"{url}\" {e}")));
                    }
                }
            }
            if hook.secret_token.is_none() {
                out.push((
                    "telegram.webhook.secret_token",
                    "webhook mode needs a secret token (cogbox init writes one)".into(),
                ));
            }
        }
        out.extend(self.slack.problems());
        if let Some(repository) = &self.update.repository {
            if let Err(e) = check_repository(repository) {
                out.push(("update.repository", e));
            }
        }
        if let Err(e) = check_log_filter(&self.log.level) {
            out.push((
                "log.level",
                format!(
                    "\"{}\" is not a log filter ({e}); try info or debug",
                    self.log.level
                ),
            ));
        }
        if self.log.keep == 0 {
            out.push(("log.keep", "must keep at least 1 file".into()));
        }
        for (key, interval) in [
            ("schedule.audit_purge", self.schedule.audit_purge),
            ("schedule.optimize", self.schedule.optimize),
            ("schedule.expiries", self.schedule.expiries),
        ] {
            if interval.0.is_some_and(|every| every < MIN_INTERVAL) {
                out.push((
                    key,
                    "must be at least 10s, or \"\" to turn the job off".into(),
                ));
            }
        }
        if self.retention.audit_log_days == 0 {
            out.push((
                "retention.audit_log_days",
                "must keep entries at least 1 day".into(),
            ));
        }
        if let Some(channel) = self.bot.error_channel {
            let has_token = match channel.platform {
                PlatformKind::Console => true,
                PlatformKind::Discord => self.discord.token.is_some(),
                PlatformKind::Telegram => self.telegram.token.is_some(),
                PlatformKind::Slack => self.slack.bot_token.is_some(),
            };
            if !has_token {
                out.push((
                    "bot.error_channel",
                    format!("is on {}, which has no token set here", channel.platform),
                ));
            }
        }
        if self.backup.every.0 < Duration::from_secs(60) {
            out.push(("backup.every", "must be at least 1m".into()));
        }
        for (key, token, file) in [
            (
                "discord.token_file",
                &self.discord.token,
                &self.discord.token_file,
            ),
            (
                "telegram.token_file",
                &self.telegram.token,
                &self.telegram.token_file,
            ),
        ] {
            if token.is_some() && file.is_some() {
                out.push((key, "set either the token or a token file, not both".into()));
            }
        }
        out
    }

    /// Why the test clock offset may not be used with this config, if it may not: a platform
    /// that talks to its real service. Its fakes in tests are all on this machine.
    pub fn clock_offset_refusal(&self) -> Option<String> {
        [
            (
                "discord",
                self.discord.token.is_some(),
                &self.discord.api_url,
            ),
            (
                "telegram",
                self.telegram.token.is_some(),
                &self.telegram.api_url,
            ),
            ("slack", self.slack.bot_token.is_some(), &self.slack.api_url),
        ]
        .into_iter()
        .find(|(_, on, url)| *on && !is_loopback_url(url))
        .map(|(name, _, url)| {
            format!(
                "COGBOX_TEST_CLOCK_OFFSET moves cogbox's clock for end-to-end tests only, and \
                 {name} talks to {url}, not a local test server; unset it"
            )
        })
    }
}

/// Whether `url` points at this machine (a test's fake server), never at a real service.
pub(crate) fn is_loopback_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or("");
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

impl SlackConfig {
    /// Token kinds, the keys each mode needs, and a command Slack would accept.
    fn problems(&self) -> Vec<(&'static str, String)> {
        use secrecy::ExposeSecret;
        let mut out = Vec::new();
        // Only the prefix is shown: the rest of a token is a secret, even a wrong one.
        let kind = |key: &'static str, token: &Option<SecretString>, prefix: &str, what: &str| {
            token
                .as_ref()
                .filter(|t| !t.expose_secret().starts_with(prefix))
                .map(|_| (key, format!("is not {what} (it must start with {prefix})")))
        };
        out.extend(kind(
            "slack.bot_token",
            &self.bot_token,
            "xoxb-",
            "a bot token",
        ));
        out.extend(kind(
            "slack.app_token",
            &self.app_token,
            "xapp-",
            "an app-level token",
        ));
        if self.bot_token.is_some() {
            match self.mode {
                SlackMode::Socket if self.app_token.is_none() => out.push((
                    "slack.app_token",
                    "socket mode needs the app-level token (xapp-..., scope connections:write)"
                        .into(),
                )),
                SlackMode::Events if self.signing_secret.is_none() => out.push((
                    "slack.signing_secret",
                    "events mode needs the signing secret from the app's Basic Information page"
                        .into(),
                )),
                _ => {}
            }
        } else if self.app_token.is_some() || self.signing_secret.is_some() {
            out.push((
                "slack.bot_token",
                "is needed too: without it Slack is off (xoxb-..., from OAuth & Permissions)"
                    .into(),
            ));
        }
        if let Err(e) = check_slash_command(&self.command) {
            out.push(("slack.command", e));
        }
        if self.api_url.ends_with('/') {
            out.push((
                "slack.api_url",
                format!("\"{}\" must not end in /", self.api_url),
            ));
        }
        out
    }
}

/// Slack's rule for a slash command: `/` and 1-31 of a-z 0-9 - _, and not one of its own.
fn check_slash_command(command: &str) -> Result<(), String> {
    let name = command.strip_prefix('/').unwrap_or("");
    let shaped = (1..=31).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !shaped {
        Err(format!(
            "\"{command}\" must be / and 1-31 of a-z 0-9 - _, like \"/cogbox\""
        ))
    } else if SLACK_BUILTIN_COMMANDS.contains(&command) {
        Err(format!(
            "\"{command}\" is one of Slack's built-in commands; pick another, like \"/cogbox\""
        ))
    } else {
        Ok(())
    }
}

/// Every directive must end in a level (`info`, `cogbox=debug`): tracing would take a bare
/// word as a target name and silently log everything from it.
fn check_log_filter(filter: &str) -> Result<(), String> {
    for directive in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let level = directive
            .rsplit_once('=')
            .map_or(directive, |(_, level)| level);
        level
            .parse::<tracing_subscriber::filter::LevelFilter>()
            .map_err(|_| {
                format!("\"{level}\" is not one of trace, debug, info, warn, error, off")
            })?;
    }
    tracing_subscriber::EnvFilter::try_new(filter)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// GitHub's shape of a repository: `owner/name`, of letters, digits and `-` (`.` and `_` too
/// in the name).
fn check_repository(repository: &str) -> Result<(), String> {
    let shaped = repository.split_once('/').is_some_and(|(owner, name)| {
        !owner.is_empty()
            && owner
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !name.is_empty()
            && name != "."
            && name != ".."
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    });
    if shaped {
        Ok(())
    } else {
        Err(format!(
            "\"{repository}\" is not a GitHub repository; write it as owner/name, like \"someone/cogbox\""
        ))
    }
}

fn check_base_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => Ok(()),
        _ => Err(format!("\"{url}\" is not an http(s) URL")),
    }
}

/// The public URL's path is also the path the webhook server listens on: it must be a plain
/// path, which the router takes literally (braces, and segments starting with `:` or `*`, are
/// its pattern syntax), with no query or fragment, which Telegram would send and no route has.
fn check_webhook_path(url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("https://").unwrap_or(url);
    if rest.contains(['?', '#']) {
        return Err("must not have a query (?) or fragment (#)".into());
    }
    let path = rest.find('/').map_or("", |at| &rest[at..]);
    let bad = path.contains(['{', '}']) || path.chars().any(char::is_whitespace);
    if bad || path.split('/').any(|s| s.starts_with([':', '*'])) {
        return Err(
            "has a path cogbox cannot listen on: no spaces or braces, and no part of the path \
             may start with : or *"
                .into(),
        );
    }
    Ok(())
}

/// Telegram's rule for a webhook URL: https, on port 443, 80, 88 or 8443 (setWebhook refuses
/// others, so `run` would fail at start-up).
fn check_public_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url)
        .ok()
        .filter(|u| u.scheme() == "https" && u.host_str().is_some_and(|h| !h.is_empty()));
    let Some(parsed) = parsed else {
        return Err(format!(
            "\"{url}\" is not an https URL (Telegram only posts to https)"
        ));
    };
    match parsed.port_or_known_default() {
        Some(443 | 80 | 88 | 8443) => Ok(()),
        _ => Err(format!(
            "\"{url}\": Telegram posts only to ports 443, 80, 88 or 8443; put a proxy on one of them"
        )),
    }
}

/// Telegram's rule for the webhook secret: 1-256 characters of A-Z a-z 0-9 _ -.
fn check_secret_token(secret: &SecretString) -> Result<(), String> {
    use secrecy::ExposeSecret;
    let s = secret.expose_secret();
    if (1..=256).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(())
    } else {
        Err(format!(
            "must be 1-256 characters of A-Z a-z 0-9 _ - (has {} characters)",
            s.chars().count()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_is_valid_and_shows_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, include_str!("../../config.example.toml")).unwrap();
        let (loaded, source) = load(&path).unwrap();
        assert!(source.found);
        let mut defaults = Config::default();
        defaults.anchor_paths(dir.path());
        assert_eq!(
            toml::to_string(&loaded).unwrap(),
            toml::to_string(&defaults).unwrap()
        );
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let mut config = Config::default();
        config.discord.token = Some("discord-token-value".into());
        config.telegram.webhook.secret_token = Some("webhook-secret-value".into());
        let shown = format!("{config:?}{}", toml::to_string(&config).unwrap());
        assert!(!shown.contains("discord-token-value") && !shown.contains("webhook-secret-value"));
        assert!(shown.contains(MASK));
    }

    /// The keys `problems` names for a default config changed by `change`.
    fn problem_keys(change: fn(&mut Config)) -> Vec<&'static str> {
        let mut config = Config::default();
        change(&mut config);
        config.problems().into_iter().map(|(key, _)| key).collect()
    }

    fn secret(text: &str) -> Option<SecretString> {
        Some(text.into())
    }

    /// Webhook mode with the given public URL and secret token.
    fn webhook(c: &mut Config, url: Option<&str>, secret_token: Option<&str>) {
        c.telegram.mode = TelegramMode::Webhook;
        c.telegram.webhook.public_url = url.map(Into::into);
        c.telegram.webhook.secret_token = secret_token.and_then(secret);
    }

    /// Each rule names its own key and nothing else, and a value just inside a limit passes:
    /// the boundaries are where an off-by-one would refuse a good config or let a bad one run.
    #[test]
    fn each_rule_names_its_key_and_the_limits_themselves_pass() {
        type Change = fn(&mut Config);
        let cases: &[(&str, Change, Option<&str>)] = &[
            ("the defaults", |_| {}, None),
            ("prefix commands off", |c| c.discord.prefix.clear(), None),
            (
                "a spaced prefix",
                |c| c.discord.prefix = "a b".into(),
                Some("discord.prefix"),
            ),
            (
                "guild 0",
                |c| c.discord.guild_ids = vec![1, 0],
                Some("discord.guild_ids"),
            ),
            (
                "7 days of messages",
                |c| c.discord.ban_delete_message_days = 7,
                None,
            ),
            (
                "8 days of messages",
                |c| c.discord.ban_delete_message_days = 8,
                Some("discord.ban_delete_message_days"),
            ),
            (
                "no data dir",
                |c| c.bot.data_dir = PathBuf::new(),
                Some("bot.data_dir"),
            ),
            (
                "a bad secret",
                |c| c.telegram.webhook.secret_token = secret("a b"),
                Some("telegram.webhook.secret_token"),
            ),
            (
                "a whole webhook",
                |c| webhook(c, Some("https://bot.example.com/tg"), Some("s3cret_-")),
                None,
            ),
            (
                "a secret without webhook mode",
                |c| c.telegram.webhook.secret_token = secret("s3cret"),
                None,
            ),
            (
                "webhook without its URL",
                |c| webhook(c, None, Some("s3cret")),
                Some("telegram.webhook.public_url"),
            ),
            (
                "webhook without a secret",
                |c| webhook(c, Some("https://bot.example.com"), None),
                Some("telegram.webhook.secret_token"),
            ),
            (
                "a webhook over http",
                |c| webhook(c, Some("http://bot.example.com"), Some("s3cret")),
                Some("telegram.webhook.public_url"),
            ),
            (
                "a webhook path with braces",
                |c| webhook(c, Some("https://bot.example.com/{x}"), Some("s3cret")),
                Some("telegram.webhook.public_url"),
            ),
            (
                "a repository",
                |c| c.update.repository = Some("someone/cogbox".into()),
                None,
            ),
            (
                "no repository",
                |c| c.update.repository = Some("cogbox".into()),
                Some("update.repository"),
            ),
            (
                "a log filter",
                |c| c.log.level = "cogbox=debug,info".into(),
                None,
            ),
            (
                "a bare word as log filter",
                |c| c.log.level = "cogbox".into(),
                Some("log.level"),
            ),
            ("one log file", |c| c.log.keep = 1, None),
            ("no log files", |c| c.log.keep = 0, Some("log.keep")),
            (
                "a 10 s job",
                |c| c.schedule.audit_purge = Interval(Some(MIN_INTERVAL)),
                None,
            ),
            (
                "a 9 s job",
                |c| c.schedule.optimize = Interval(Some(Duration::from_secs(9))),
                Some("schedule.optimize"),
            ),
            (
                "a job turned off",
                |c| c.schedule.expiries = Interval(None),
                None,
            ),
            (
                "a day of audit log",
                |c| c.retention.audit_log_days = 1,
                None,
            ),
            (
                "no audit log",
                |c| c.retention.audit_log_days = 0,
                Some("retention.audit_log_days"),
            ),
            (
                "errors to the console",
                |c| c.bot.error_channel = Some(ChannelId::new(PlatformKind::Console, 1)),
                None,
            ),
            (
                "errors to Discord without a token",
                |c| c.bot.error_channel = Some(ChannelId::new(PlatformKind::Discord, 1)),
                Some("bot.error_channel"),
            ),
            (
                "errors to Discord",
                |c| {
                    c.bot.error_channel = Some(ChannelId::new(PlatformKind::Discord, 1));
                    c.discord.token = secret("t");
                },
                None,
            ),
            (
                "errors to Telegram without a token",
                |c| c.bot.error_channel = Some(ChannelId::new(PlatformKind::Telegram, -1)),
                Some("bot.error_channel"),
            ),
            (
                "errors to Slack without a token",
                |c| c.bot.error_channel = Some(ChannelId::word(PlatformKind::Slack, "C1").unwrap()),
                Some("bot.error_channel"),
            ),
            (
                "a backup a minute",
                |c| c.backup.every = HumanDuration(Duration::from_secs(60)),
                None,
            ),
            (
                "a backup every 59 s",
                |c| c.backup.every = HumanDuration(Duration::from_secs(59)),
                Some("backup.every"),
            ),
            (
                "a token file alone",
                |c| c.telegram.token_file = Some("tg.token".into()),
                None,
            ),
            (
                "a token and a token file",
                |c| {
                    c.telegram.token = secret("t");
                    c.telegram.token_file = Some("tg.token".into());
                },
                Some("telegram.token_file"),
            ),
            (
                "a Discord token and file",
                |c| {
                    c.discord.token = secret("t");
                    c.discord.token_file = Some("d.token".into());
                },
                Some("discord.token_file"),
            ),
            (
                "a bad API URL",
                |c| c.update.api_url = "api.github.com".into(),
                Some("update.api_url"),
            ),
        ];
        for (what, change, expected) in cases {
            assert_eq!(problem_keys(*change), Vec::from_iter(*expected), "{what}");
        }
    }

    #[test]
    fn slack_needs_the_right_tokens_for_its_mode_and_a_command_it_accepts() {
        type Change = fn(&mut SlackConfig);
        let socket: Change = |s| {
            s.bot_token = secret("xoxb-1");
            s.app_token = secret("xapp-1");
        };
        let cases: &[(&str, Change, &[&str])] = &[
            ("Slack off", |_| {}, &[]),
            ("socket mode", socket, &[]),
            (
                "events mode",
                |s| {
                    s.bot_token = secret("xoxb-1");
                    s.mode = SlackMode::Events;
                    s.signing_secret = secret("abc");
                },
                &[],
            ),
            (
                "a user token",
                |s| {
                    s.bot_token = secret("xoxp-1");
                    s.app_token = secret("xapp-1");
                },
                &["slack.bot_token"],
            ),
            (
                "a bot token as app token",
                |s| {
                    s.bot_token = secret("xoxb-1");
                    s.app_token = secret("xoxb-2");
                },
                &["slack.app_token"],
            ),
            (
                "socket mode without app token",
                |s| s.bot_token = secret("xoxb-1"),
                &["slack.app_token"],
            ),
            (
                "events mode without secret",
                |s| {
                    s.bot_token = secret("xoxb-1");
                    s.mode = SlackMode::Events;
                },
                &["slack.signing_secret"],
            ),
            (
                "an app token alone",
                |s| s.app_token = secret("xapp-1"),
                &["slack.bot_token"],
            ),
            (
                "a signing secret alone",
                |s| s.signing_secret = secret("abc"),
                &["slack.bot_token"],
            ),
            (
                "a trailing slash",
                |s| s.api_url.push('/'),
                &["slack.api_url"],
            ),
        ];
        for (what, change, expected) in cases {
            let mut slack = SlackConfig::default();
            change(&mut slack);
            let keys: Vec<_> = slack.problems().into_iter().map(|(key, _)| key).collect();
            assert_eq!(keys, *expected, "{what}");
        }
        let longest = format!("/{}", "a".repeat(31));
        for good in ["/cogbox", "/my-bot_2", "/c", longest.as_str()] {
            assert_eq!(check_slash_command(good), Ok(()), "{good}");
        }
        let too_long = format!("/{}", "a".repeat(32));
        for bad in [
            "cogbox",
            "/",
            "/Cogbox",
            "/co gbox",
            "/cog.box",
            too_long.as_str(),
        ] {
            assert!(
                check_slash_command(bad).unwrap_err().contains("must be /"),
                "{bad}"
            );
        }
        assert!(
            check_slash_command("/remind")
                .unwrap_err()
                .contains("built-in")
        );
    }

    #[test]
    fn paths_are_anchored_to_the_config_folder_and_derived_from_the_data_dir() {
        let mut config = Config::default();
        config.bot.data_dir = "data".into();
        config.log.dir = Some("logs-here".into());
        config.discord.token_file = Some("/etc/cogbox/discord.token".into());
        config.telegram.token_file = Some("tg.token".into());
        config.anchor_paths(Path::new("/srv/bot"));
        assert_eq!(config.database_path(), Path::new("/srv/bot/data/cogbox.db"));
        assert_eq!(config.backup_dir(), Path::new("/srv/bot/data/backups"));
        assert_eq!(config.log_dir(), Path::new("/srv/bot/logs-here"));
        assert_eq!(
            config.discord.token_file.as_deref(),
            Some(Path::new("/etc/cogbox/discord.token")),
            "an absolute path is kept"
        );
        assert_eq!(
            config.telegram.token_file.as_deref(),
            Some(Path::new("/srv/bot/tg.token"))
        );
        config.backup.dir = Some("/mnt/usb".into());
        config.log.dir = None;
        assert_eq!(config.backup_dir(), Path::new("/mnt/usb"));
        assert_eq!(config.log_dir(), Path::new("/srv/bot/data/logs"));
    }

    #[test]
    fn any_platform_token_turns_the_console_off() {
        assert!(!Config::default().has_platforms());
        let cases: [fn(&mut Config); 3] = [
            |c| c.discord.token = secret("d"),
            |c| c.telegram.token = secret("t"),
            |c| c.slack.bot_token = secret("xoxb-1"),
        ];
        for change in cases {
            let mut config = Config::default();
            change(&mut config);
            assert!(config.has_platforms());
        }
    }

    #[test]
    fn the_test_clock_is_refused_for_any_platform_that_reaches_a_real_service() {
        let mut config = Config::default();
        assert_eq!(config.clock_offset_refusal(), None, "no platform at all");
        config.telegram.token = secret("t");
        config.telegram.api_url = "http://127.0.0.1:8081".into();
        config.slack.api_url = "https://slack.com/api".into();
        assert_eq!(config.clock_offset_refusal(), None, "Slack has no token");
        config.slack.bot_token = secret("xoxb-1");
        let refusal = config.clock_offset_refusal().unwrap();
        assert!(
            refusal.contains("slack talks to https://slack.com/api, not a local test server"),
            "{refusal}"
        );
        for local in [
            "http://localhost:9/api",
            "https://[::1]:8443",
            "http://127.0.0.1/x?y",
        ] {
            assert!(is_loopback_url(local), "{local}");
        }
        for remote in [
            "https://slack.com/api",
            "http://127.0.0.1.example.com/",
            "http://localhost@evil.example/",
            "ftp://127.0.0.1/",
            "127.0.0.1",
        ] {
            assert!(!is_loopback_url(remote), "{remote}");
        }
    }

    #[test]
    fn repositories_and_api_urls_must_have_the_shape_their_service_takes() {
        for good in ["someone/cogbox", "some-one2/co_g.box-2", "a/b"] {
            assert_eq!(check_repository(good), Ok(()), "{good}");
        }
        for bad in [
            "cogbox",
            "/cogbox",
            "someone/",
            "some_one/cogbox",
            "some one/cogbox",
            "someone/cog box",
            "someone/.",
            "someone/..",
            "someone/cogbox/releases",
        ] {
            assert!(check_repository(bad).is_err(), "{bad}");
        }
        for good in ["https://discord.com/api/v10", "http://127.0.0.1:8080"] {
            assert_eq!(check_base_url(good), Ok(()), "{good}");
        }
        for bad in [
            "https://",
            "http://",
            "https://dis cord.com",
            "discord.com",
            "ftp://x",
        ] {
            assert!(check_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_webhook_path_the_router_cannot_take_literally_is_refused() {
        for good in [
            "https://bot.example.com",
            "https://x.example/bots/cog-box_1/",
        ] {
            assert_eq!(check_webhook_path(good), Ok(()), "{good}");
        }
        for bad in [
            "https://x.example/{token}",
            "https://x.example/a}b",
            "https://x.example/:id",
            "https://x.example/a/*rest",
            "https://x.example/a b",
            "https://x.example/hook?x=1",
            "https://x.example/#top",
        ] {
            assert!(check_webhook_path(bad).is_err(), "{bad}");
        }
    }
}
