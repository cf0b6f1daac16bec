//! A fake Discord (REST API v10 + JSON gateway) on `127.0.0.1:0`, for tests.
//!
//! Built to be wire-compatible with serenity 0.12: every payload carries the fields serenity
//! requires, because serenity turns a gateway event that fails to deserialize into
//! `Event::Unknown` without a word, so a thin payload would prove nothing.
//! `tests/fake_discord_selftest.rs` runs a real serenity `Client` against it.
//!
//! # Public API
//! ```text
//! FakeDiscord::start(FakeDiscordConfig) -> FakeDiscord            (async)
//!   .config() -> &FakeDiscordConfig        the world it was started with
//!   .api_url() -> String                   "http://127.0.0.1:PORT" (replaces "https://discord.com")
//!   .gateway_url() -> String               "ws://127.0.0.1:PORT/gateway" (what GET /gateway answers)
//! REST recording and faults
//!   .calls() -> Vec<RecordedCall>          every REST call, in order, with the status answered
//!   .wait_for_call(|&RecordedCall| -> bool, Duration) -> RecordedCall   (async; panics on timeout)
//!   .fail_next(method, route_prefix, Failure)                 next matching call fails
//!   .fail_next_n(method, route_prefix, Failure, times)
//!   .revoke_token()                        401 on REST, close 4004 on IDENTIFY/RESUME from now on
//!   .member(user_id) -> Option<FakeMember> current member state (timeouts, kicks, bans applied)
//!   .is_banned(user_id) -> bool
//!   .seed_message(channel_id, age) -> u64  a message sent `age` ago, never dispatched
//!   .channel_messages(channel_id) -> Vec<u64>  ids of the messages still there, newest first
//! Gateway
//!   .gateway_connections() -> Vec<String>  the query string of each WebSocket connect
//!   .gateway_frames() -> Vec<GatewayFrame> every frame both ways (heartbeats included)
//!   .presence_updates() -> Vec<Value>      the `d` of each op 3 the client sent
//!   .wait_for_frame(|&GatewayFrame| -> bool, Duration) -> GatewayFrame (async; panics on timeout)
//!   .wait_identified(Duration) -> Value    waits for READY; returns the IDENTIFY `d`
//!   .wait_resumed(Duration)                waits for RESUMED
//!   .dispatch(event_name, d) -> u64        any op-0 event; returns its sequence number
//!   .send_message_create(MessageSpec) -> u64            returns the message id
//!   .send_command(CommandSpec) -> SentInteraction       INTERACTION_CREATE type 2
//!   .send_button(ButtonSpec) -> SentInteraction         INTERACTION_CREATE type 3
//!   .age_interaction(id, Duration)         as if that long had passed since it was sent
//!   .disconnect()                          close 4000 (client resumes)
//!   .drop_connection()                     drop the socket without a close frame (client resumes)
//!   .close_gateway(code)                   close with any code, e.g. 4004, 4013, 4014
//! Payload builders (pure, on the world): FakeDiscordConfig::{user_json, member_json, role_json,
//!   channel_json, guild_json, guild_create_json, message_json, message_create_json,
//!   command_interaction_json, button_interaction_json}
//! ```
//!
//! Messages sent through the gateway or by the bot are kept per channel, so `GET
//! /channels/{c}/messages` lists them (newest first, `limit` and `before`) and deletes remove
//! them. Deleting an unknown message answers 404 (10008 Unknown Message) as Discord does; bulk
//! deletes skip unknown ids, and refuse the whole request with 400 (50034) if any id is two
//! weeks old or older, as Discord does.
//!
//! Channel permissions, overwrites included, bind the bot as on Discord: a guild channel it
//! cannot see sends it no MESSAGE_CREATE and answers every call 403 (50001 Missing Access);
//! posting needs Send Messages, deleting another's message or a bulk delete Manage Messages
//! (403, 50013), and without Read Message History the list of messages is empty. A channel
//! deleted (`delete_channel`) answers every call 404 (10003 Unknown Channel).
//!
//! Acting on a member (timeout, kick, ban, role or nickname change) is refused with 403 (50013
//! Missing Permissions) as on Discord: without the permission, on the owner, on a member whose
//! highest role is at or above the bot's, and (timeouts) on an administrator. An interaction
//! answered first after 3 s gets 404 (10062 Unknown interaction), and its token serves
//! follow-ups for 15 minutes (then 401, 50027); `age_interaction` moves an interaction's clock.
//!
//! Routes are written relative to the API base (`/api/v10`), e.g. `"/channels/1/messages"`;
//! [`RecordedCall::route`] gives that form. Like Discord, `GET /gateway` needs no token and every
//! other route wants `Authorization: Bot <token>`. Events are gated by the identified intents as
//! Discord gates them (GUILDS, GUILD_MEMBERS, GUILD_MESSAGES, DIRECT_MESSAGES, MESSAGE_CONTENT), and
//! IDENTIFY asking for a privileged intent not in [`FakeDiscordConfig::privileged_intents`] is
//! closed with 4014. GUILD_CREATE carries only the bot unless GUILD_PRESENCES was asked for, as on
//! Discord; other members are found with REQUEST_GUILD_MEMBERS (op 8, answered by
//! GUILD_MEMBERS_CHUNK). Dispatches while the client is disconnected are kept and replayed on RESUME.

// Each test crate that includes this module uses a different part of it.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{self, RawQuery};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// The REST API base path serenity 0.12 uses.
pub const API_PREFIX: &str = "/api/v10";

/// Ids of the default world, readable from tests.
pub mod ids {
    pub const GUILD: u64 = 1_100_000_000_000_000_100;
    pub const GENERAL: u64 = 1_100_000_000_000_000_200;
    pub const MOD_LOG: u64 = 1_100_000_000_000_000_201;
    pub const ROLE_MODERATOR: u64 = 1_100_000_000_000_000_301;
    pub const ROLE_BOT: u64 = 1_100_000_000_000_000_302;
    pub const ROLE_MEMBER: u64 = 1_100_000_000_000_000_303;
    /// The bot user; the application id is the same number, as it is for current Discord apps.
    pub const BOT: u64 = 1_100_000_000_000_000_400;
    pub const OWNER: u64 = 1_100_000_000_000_000_401;
    pub const MODERATOR: u64 = 1_100_000_000_000_000_402;
    pub const ALICE: u64 = 1_100_000_000_000_000_403;
    pub const BOB: u64 = 1_100_000_000_000_000_404;
}

/// Discord permission bits, for building worlds.
pub mod perms {
    pub const KICK_MEMBERS: u64 = 1 << 1;
    pub const BAN_MEMBERS: u64 = 1 << 2;
    pub const ADMINISTRATOR: u64 = 1 << 3;
    pub const MANAGE_GUILD: u64 = 1 << 5;
    pub const MANAGE_NICKNAMES: u64 = 1 << 27;
    pub const MANAGE_ROLES: u64 = 1 << 28;
    pub const VIEW_CHANNEL: u64 = 1 << 10;
    pub const SEND_MESSAGES: u64 = 1 << 11;
    pub const MANAGE_MESSAGES: u64 = 1 << 13;
    pub const EMBED_LINKS: u64 = 1 << 14;
    pub const READ_MESSAGE_HISTORY: u64 = 1 << 16;
    pub const MODERATE_MEMBERS: u64 = 1 << 40;
    /// Every bit up to USE_EXTERNAL_APPS (1 << 50): what an owner or administrator holds.
    pub const ALL: u64 = (1 << 51) - 1;
}

/// Gateway intent bits the fake acts on.
pub mod intents {
    pub const GUILDS: u64 = 1 << 0;
    pub const GUILD_MEMBERS: u64 = 1 << 1;
    pub const GUILD_PRESENCES: u64 = 1 << 8;
    pub const GUILD_MESSAGES: u64 = 1 << 9;
    pub const DIRECT_MESSAGES: u64 = 1 << 12;
    pub const MESSAGE_CONTENT: u64 = 1 << 15;
    pub const PRIVILEGED: u64 = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT;
}

#[derive(Clone, Debug)]
pub struct FakeUser {
    pub id: u64,
    pub name: String,
    pub bot: bool,
}

impl FakeUser {
    pub fn new(id: u64, name: &str) -> Self {
        Self {
            id,
            name: name.into(),
            bot: false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct FakeMember {
    pub user: FakeUser,
    pub roles: Vec<u64>,
    pub nick: Option<String>,
    /// ISO 8601, as Discord sends it; set by `PATCH /guilds/{g}/members/{u}`.
    pub communication_disabled_until: Option<String>,
}

impl FakeMember {
    pub fn new(user: FakeUser, roles: &[u64]) -> Self {
        Self {
            user,
            roles: roles.to_vec(),
            nick: None,
            communication_disabled_until: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct FakeRole {
    pub id: u64,
    pub name: String,
    pub permissions: u64,
    pub position: u16,
}

/// A channel permission overwrite; `member == false` means `id` is a role (or the guild id for
/// @everyone).
#[derive(Clone, Debug)]
pub struct FakeOverwrite {
    pub id: u64,
    pub member: bool,
    pub allow: u64,
    pub deny: u64,
}

#[derive(Clone, Debug)]
pub struct FakeChannel {
    pub id: u64,
    pub name: String,
    /// Discord channel type: 0 text, 2 voice, 4 category.
    pub kind: u8,
    pub overwrites: Vec<FakeOverwrite>,
}

impl FakeOverwrite {
    /// An overwrite for role `id` (the guild id for @everyone).
    pub fn role(id: u64, allow: u64, deny: u64) -> Self {
        Self {
            id,
            member: false,
            allow,
            deny,
        }
    }

    /// An overwrite for member `id`.
    pub fn member(id: u64, allow: u64, deny: u64) -> Self {
        Self {
            id,
            member: true,
            allow,
            deny,
        }
    }
}

impl FakeChannel {
    pub fn text(id: u64, name: &str) -> Self {
        Self {
            id,
            name: name.into(),
            kind: 0,
            overwrites: Vec::new(),
        }
    }
}

/// The world the fake serves: one guild, its roles, members and channels, and the bot.
#[derive(Clone, Debug)]
pub struct FakeDiscordConfig {
    /// The valid bot token, without the `Bot ` prefix.
    pub token: String,
    pub bot: FakeUser,
    pub application_id: u64,
    pub guild_id: u64,
    pub guild_name: String,
    pub owner_id: u64,
    /// Permissions of @everyone (the role whose id is the guild id).
    pub everyone_permissions: u64,
    /// Roles besides @everyone.
    pub roles: Vec<FakeRole>,
    /// Members, the bot included.
    pub members: Vec<FakeMember>,
    pub channels: Vec<FakeChannel>,
    /// Privileged intents "enabled in the developer portal"; asking for others closes 4014.
    pub privileged_intents: u64,
    pub heartbeat_interval: Duration,
}

impl Default for FakeDiscordConfig {
    fn default() -> Self {
        use perms::*;
        let bot = FakeUser {
            id: ids::BOT,
            name: "cogbox".into(),
            bot: true,
        };
        let member =
            |id, name: &str, roles: &[u64]| FakeMember::new(FakeUser::new(id, name), roles);
        Self {
            token: "fake-token".into(),
            application_id: ids::BOT,
            guild_id: ids::GUILD,
            guild_name: "Fake Guild".into(),
            owner_id: ids::OWNER,
            everyone_permissions: VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY | EMBED_LINKS,
            roles: vec![
                FakeRole {
                    id: ids::ROLE_MODERATOR,
                    name: "Moderator".into(),
                    permissions: KICK_MEMBERS | BAN_MEMBERS | MANAGE_MESSAGES | MODERATE_MEMBERS,
                    position: 2,
                },
                FakeRole {
                    id: ids::ROLE_BOT,
                    name: "cogbox".into(),
                    permissions: KICK_MEMBERS
                        | BAN_MEMBERS
                        | MANAGE_MESSAGES
                        | MODERATE_MEMBERS
                        | SEND_MESSAGES
                        | EMBED_LINKS,
                    position: 3,
                },
                FakeRole {
                    id: ids::ROLE_MEMBER,
                    name: "Member".into(),
                    permissions: 0,
                    position: 1,
                },
            ],
            members: vec![
                FakeMember::new(bot.clone(), &[ids::ROLE_BOT]),
                member(ids::OWNER, "owner", &[]),
                member(
                    ids::MODERATOR,
                    "mod",
                    &[ids::ROLE_MODERATOR, ids::ROLE_MEMBER],
                ),
                member(ids::ALICE, "alice", &[ids::ROLE_MEMBER]),
                member(ids::BOB, "bob", &[]),
            ],
            bot,
            channels: vec![
                FakeChannel::text(ids::GENERAL, "general"),
                FakeChannel {
                    id: ids::MOD_LOG,
                    name: "mod-log".into(),
                    kind: 0,
                    overwrites: vec![
                        FakeOverwrite::role(ids::GUILD, 0, VIEW_CHANNEL),
                        FakeOverwrite::role(ids::ROLE_MODERATOR, VIEW_CHANNEL, 0),
                        // The bot posts the moderation log here.
                        FakeOverwrite::role(ids::ROLE_BOT, VIEW_CHANNEL, 0),
                    ],
                },
            ],
            privileged_intents: intents::PRIVILEGED,
            heartbeat_interval: Duration::from_millis(41_250),
        }
    }
}

/// One REST call as the fake received it.
#[derive(Clone, Debug)]
pub struct RecordedCall {
    pub method: String,
    /// The full request path, e.g. `/api/v10/channels/1/messages`.
    pub path: String,
    /// Decoded query pairs (serenity writes `?&key=value`; empty pieces are skipped).
    pub query: Vec<(String, String)>,
    /// The JSON body, or `Null` when there was none or it was not JSON (multipart uploads).
    pub body: Value,
    pub authorization: Option<String>,
    /// `X-Audit-Log-Reason`, percent-decoded.
    pub audit_log_reason: Option<String>,
    /// The status the fake answered.
    pub status: u16,
    /// When the call arrived.
    pub at: Instant,
}

impl RecordedCall {
    /// The path below `/api/v10` (or the full path for calls outside the API).
    pub fn route(&self) -> &str {
        self.path.strip_prefix(API_PREFIX).unwrap_or(&self.path)
    }

    pub fn is(&self, method: &str, route: &str) -> bool {
        self.method.eq_ignore_ascii_case(method) && self.route() == route
    }

    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// An error the fake answers instead of the real response.
#[derive(Clone, Copy, Debug)]
pub enum Failure {
    Unauthorized,
    /// 403 Missing Permissions (code 50013).
    Forbidden,
    NotFound,
    /// 429 with Discord's headers; `global` selects the global limit's shape.
    RateLimited {
        retry_after: f64,
        global: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the fake.
    Received,
    /// From the fake to the client.
    Sent,
}

/// One gateway frame, either way.
#[derive(Clone, Debug)]
pub struct GatewayFrame {
    pub direction: Direction,
    pub op: u64,
    /// Event name, for op 0.
    pub t: Option<String>,
    pub d: Value,
}

/// A guild (or, with `direct`, DM) message from a world user.
#[derive(Clone, Debug)]
pub struct MessageSpec {
    pub author_id: u64,
    /// Ignored for DMs: the DM channel between the bot and the author is used.
    pub channel_id: u64,
    pub content: String,
    pub mentions: Vec<u64>,
    pub direct: bool,
    /// Discord's message type: 0 for a member's message, 7 for the join message Discord posts
    /// in the system channel (no content, the member as author).
    pub kind: u8,
}

impl MessageSpec {
    pub fn in_channel(channel_id: u64, author_id: u64, content: &str) -> Self {
        Self {
            author_id,
            channel_id,
            content: content.into(),
            mentions: Vec::new(),
            direct: false,
            kind: 0,
        }
    }

    pub fn direct(author_id: u64, content: &str) -> Self {
        Self {
            author_id,
            channel_id: 0,
            content: content.into(),
            mentions: Vec::new(),
            direct: true,
            kind: 0,
        }
    }

    /// The join message of `author_id` in the system channel `channel_id`.
    pub fn joined(channel_id: u64, author_id: u64) -> Self {
        Self {
            kind: 7,
            ..Self::in_channel(channel_id, author_id, "")
        }
    }

    pub fn mentioning(mut self, user_ids: &[u64]) -> Self {
        self.mentions = user_ids.to_vec();
        self
    }
}

/// A value of a slash-command option, with its Discord option type.
#[derive(Clone, Debug)]
pub enum OptionValue {
    String(String),
    Integer(i64),
    Boolean(bool),
    User(u64),
    Channel(u64),
    Role(u64),
    Number(f64),
}

/// A chat-input (slash) command invocation in the guild.
#[derive(Clone, Debug)]
pub struct CommandSpec {
    pub name: String,
    pub user_id: u64,
    pub channel_id: u64,
    pub options: Vec<(String, OptionValue)>,
}

impl CommandSpec {
    pub fn new(name: &str, user_id: u64, channel_id: u64) -> Self {
        Self {
            name: name.into(),
            user_id,
            channel_id,
            options: Vec::new(),
        }
    }

    pub fn option(mut self, name: &str, value: OptionValue) -> Self {
        self.options.push((name.into(), value));
        self
    }
}

/// A button press on a message the bot sent in the guild.
#[derive(Clone, Debug)]
pub struct ButtonSpec {
    pub custom_id: String,
    pub user_id: u64,
    pub channel_id: u64,
    pub message_id: u64,
}

/// The id and token of a dispatched interaction, which the bot's responses must use.
#[derive(Clone, Debug)]
pub struct SentInteraction {
    pub id: u64,
    pub token: String,
}

impl SentInteraction {
    pub fn callback_route(&self) -> String {
        format!("/interactions/{}/{}/callback", self.id, self.token)
    }
}

/// A running fake; the server stops when this is dropped.
pub struct FakeDiscord {
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

struct Shared {
    config: FakeDiscordConfig,
    addr: SocketAddr,
    state: Mutex<State>,
    /// Bumped on every state change so waiters re-check.
    changed: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    token_revoked: bool,
    calls: Vec<RecordedCall>,
    failures: Vec<PlannedFailure>,
    members: Vec<FakeMember>,
    banned: HashSet<u64>,
    dm_channels: HashMap<u64, u64>,
    /// (guild scope, command name) -> command id, from bulk overwrites.
    commands: HashMap<(Option<u64>, String), u64>,
    interactions: HashMap<u64, PendingInteraction>,
    /// Channel id -> message ids, oldest first.
    messages: HashMap<u64, Vec<u64>>,
    /// The messages the bot posted, which it may delete without Manage Messages.
    own_messages: HashSet<u64>,
    last_snowflake: u64,
    /// Makes snowflakes for the same millisecond differ.
    snowflake_seq: u64,
    gateway: Gateway,
    /// Rate-limit windows by bucket key (see [`bucket`]).
    buckets: HashMap<String, Window>,
    /// Channels deleted since the world was built: every call in them is 404 (10003).
    deleted_channels: HashSet<u64>,
}

#[derive(Default)]
struct Gateway {
    connections: Vec<String>,
    frames: Vec<GatewayFrame>,
    session: Option<Session>,
    socket: Option<Socket>,
}

struct Session {
    id: String,
    intents: u64,
    /// Every dispatch of the session, for replay on RESUME.
    events: Vec<(u64, String, Value)>,
}

/// The current connection; taken out of the state as soon as a test ends it, so later
/// dispatches are kept for replay instead of going into a dying socket.
struct Socket {
    tx: mpsc::UnboundedSender<Outbound>,
    live: Option<Live>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Live {
    Identified,
    Resumed,
}

struct PendingInteraction {
    token: String,
    channel_id: u64,
    acknowledged: bool,
    /// 2 for an application command, 3 for a component (a button press).
    kind: u8,
    /// When Discord created it: the first response is due within 3 s, the token dies at 15 min.
    created: Instant,
}

/// How long Discord waits for an interaction's first response.
pub const INTERACTION_DEADLINE: Duration = Duration::from_secs(3);
/// How long an interaction token serves follow-ups and edits.
pub const INTERACTION_TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);

enum Outbound {
    Frame(Value),
    Close(u16, &'static str),
    Drop,
}

struct PlannedFailure {
    method: String,
    route_prefix: String,
    failure: Failure,
    remaining: usize,
}

impl FakeDiscord {
    pub async fn start(config: FakeDiscordConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let state = State {
            members: config.members.clone(),
            ..State::default()
        };
        let shared = Arc::new(Shared {
            config,
            addr,
            state: Mutex::new(state),
            changed: watch::channel(0).0,
        });
        let app = Router::new()
            .route("/gateway", get(gateway_upgrade))
            .fallback(rest)
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("fake discord server");
        });
        Self { shared, server }
    }

    pub fn config(&self) -> &FakeDiscordConfig {
        &self.shared.config
    }

    pub fn api_url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    pub fn gateway_url(&self) -> String {
        self.shared.gateway_url()
    }

    pub fn calls(&self) -> Vec<RecordedCall> {
        self.shared.lock().calls.clone()
    }

    pub async fn wait_for_call(
        &self,
        pred: impl Fn(&RecordedCall) -> bool,
        timeout: Duration,
    ) -> RecordedCall {
        let found = self
            .shared
            .wait_until(timeout, |s| s.calls.iter().find(|c| pred(c)).cloned())
            .await;
        found.unwrap_or_else(|| {
            let seen: Vec<String> = self
                .calls()
                .iter()
                .map(|c| format!("{} {} -> {}", c.method, c.path, c.status))
                .collect();
            panic!("no matching REST call within {timeout:?}; calls so far: {seen:#?}")
        })
    }

    pub fn fail_next(&self, method: &str, route_prefix: &str, failure: Failure) {
        self.fail_next_n(method, route_prefix, failure, 1);
    }

    pub fn fail_next_n(&self, method: &str, route_prefix: &str, failure: Failure, times: usize) {
        self.shared.lock().failures.push(PlannedFailure {
            method: method.to_ascii_uppercase(),
            route_prefix: route_prefix.into(),
            failure,
            remaining: times,
        });
    }

    pub fn revoke_token(&self) {
        self.shared.lock().token_revoked = true;
    }

    pub fn member(&self, user_id: u64) -> Option<FakeMember> {
        self.shared
            .lock()
            .members
            .iter()
            .find(|m| m.user.id == user_id)
            .cloned()
    }

    /// `user_id` leaves the guild: REST no longer finds them, and a client with GUILD_MEMBERS
    /// gets GUILD_MEMBER_REMOVE.
    pub fn remove_member(&self, user_id: u64) {
        let shared = &self.shared;
        let mut state = shared.lock();
        let Some(at) = state.members.iter().position(|m| m.user.id == user_id) else {
            return;
        };
        let gone = state.members.remove(at);
        let intents = state.gateway.session.as_ref().map_or(0, |s| s.intents);
        if intents & intents::GUILD_MEMBERS != 0 {
            let user = shared.config.user_json(&gone.user);
            let d = json!({"guild_id": shared.config.guild_id.to_string(), "user": user});
            shared.dispatch(&mut state, "GUILD_MEMBER_REMOVE", d);
        }
    }

    /// Channel `channel_id` is deleted: every later call in it is 404 Unknown Channel (10003),
    /// and the session gets CHANNEL_DELETE.
    pub fn delete_channel(&self, channel_id: u64) {
        let shared = &self.shared;
        let channel = shared
            .config
            .channel(channel_id)
            .expect("a channel of the world");
        let d = shared.config.channel_json(channel);
        let mut state = shared.lock();
        state.deleted_channels.insert(channel_id);
        shared.dispatch(&mut state, "CHANNEL_DELETE", d);
    }

    pub fn is_banned(&self, user_id: u64) -> bool {
        self.shared.lock().banned.contains(&user_id)
    }

    /// Stores a message sent `age` ago in `channel_id`, as if no client had been listening.
    pub fn seed_message(&self, channel_id: u64, age: Duration) -> u64 {
        let mut state = self.shared.lock();
        let ms = u64::try_from((now() - age).as_millis()).expect("time fits u64");
        let id = state.snowflake_at(ms);
        let ids = state.messages.entry(channel_id).or_default();
        ids.push(id);
        ids.sort_unstable();
        id
    }

    /// The ids of the messages still in `channel_id`, newest first.
    pub fn channel_messages(&self, channel_id: u64) -> Vec<u64> {
        let state = self.shared.lock();
        let ids = state.messages.get(&channel_id);
        ids.map(|ids| ids.iter().rev().copied().collect())
            .unwrap_or_default()
    }

    pub fn gateway_connections(&self) -> Vec<String> {
        self.shared.lock().gateway.connections.clone()
    }

    pub fn gateway_frames(&self) -> Vec<GatewayFrame> {
        self.shared.lock().gateway.frames.clone()
    }

    pub fn presence_updates(&self) -> Vec<Value> {
        let frames = self.gateway_frames();
        let sent_by_client = frames
            .into_iter()
            .filter(|f| f.direction == Direction::Received);
        sent_by_client.filter(|f| f.op == 3).map(|f| f.d).collect()
    }

    pub async fn wait_for_frame(
        &self,
        pred: impl Fn(&GatewayFrame) -> bool,
        timeout: Duration,
    ) -> GatewayFrame {
        let found = self
            .shared
            .wait_until(timeout, |s| {
                s.gateway.frames.iter().find(|f| pred(f)).cloned()
            })
            .await;
        found.unwrap_or_else(|| {
            let seen: Vec<String> = self
                .gateway_frames()
                .iter()
                .map(|f| format!("{:?} op {} {:?}", f.direction, f.op, f.t))
                .collect();
            panic!("no matching gateway frame within {timeout:?}; frames so far: {seen:#?}")
        })
    }

    /// Waits until the current connection has identified (READY sent); returns the IDENTIFY `d`.
    pub async fn wait_identified(&self, timeout: Duration) -> Value {
        self.wait_live(Live::Identified, timeout).await;
        let frames = self.gateway_frames();
        let identify = frames
            .iter()
            .rev()
            .find(|f| f.direction == Direction::Received && f.op == 2);
        identify
            .expect("READY is only sent after IDENTIFY")
            .d
            .clone()
    }

    /// Waits until the current connection has resumed (replay and RESUMED sent).
    pub async fn wait_resumed(&self, timeout: Duration) {
        self.wait_live(Live::Resumed, timeout).await;
    }

    async fn wait_live(&self, live: Live, timeout: Duration) {
        let ok = self.shared.wait_until(timeout, |s| {
            s.gateway
                .socket
                .as_ref()
                .filter(|socket| socket.live == Some(live))
                .map(|_| ())
        });
        if ok.await.is_none() {
            let kind = if live == Live::Identified {
                "identified"
            } else {
                "resumed"
            };
            panic!("no {kind} gateway connection within {timeout:?}");
        }
    }

    /// Sends an op-0 event to the identified session, or keeps it for replay if the client is
    /// away. Panics if no session was ever identified: dispatching then is a test bug.
    pub fn dispatch(&self, event: &str, d: Value) -> u64 {
        self.shared.dispatch(&mut self.shared.lock(), event, d)
    }

    /// MESSAGE_CREATE, delivered and stripped of content as Discord would for the identified
    /// intents; returns the message id either way.
    pub fn send_message_create(&self, spec: MessageSpec) -> u64 {
        let shared = &self.shared;
        let mut state = shared.lock();
        let intents = state
            .gateway
            .session
            .as_ref()
            .expect("dispatch before any IDENTIFY")
            .intents;
        let id = state.snowflake();
        let channel_id = if spec.direct {
            state.dm_channel(spec.author_id)
        } else {
            spec.channel_id
        };
        state.messages.entry(channel_id).or_default().push(id);
        let mut d = shared
            .config
            .message_create_json(id, channel_id, &spec, &state.members);
        let needed = if spec.direct {
            intents::DIRECT_MESSAGES
        } else {
            intents::GUILD_MESSAGES
        };
        if intents & needed == 0 {
            return id; // Discord sends nothing the client did not subscribe to.
        }
        let seen = bot_channel_permissions(&shared.config, &state, channel_id)
            .is_none_or(|p| p & perms::VIEW_CHANNEL != 0);
        if !seen {
            return id; // Nor anything from a channel the bot cannot see.
        }
        let addressed = spec.direct || spec.mentions.contains(&shared.config.bot.id);
        if intents & intents::MESSAGE_CONTENT == 0 && !addressed {
            d["content"] = json!("");
        }
        shared.dispatch(&mut state, "MESSAGE_CREATE", d);
        id
    }

    pub fn send_command(&self, spec: CommandSpec) -> SentInteraction {
        let shared = &self.shared;
        let mut state = shared.lock();
        let sent = state.new_interaction(spec.channel_id, 2);
        // The id from the last bulk overwrite, guild scope first, as Discord would send it.
        let registered = [Some(shared.config.guild_id), None]
            .into_iter()
            .find_map(|scope| state.commands.get(&(scope, spec.name.clone())).copied());
        let command_id = registered.unwrap_or_else(|| state.snowflake());
        let d = shared
            .config
            .command_interaction_json(&sent, command_id, &spec, &state.members);
        shared.dispatch(&mut state, "INTERACTION_CREATE", d);
        sent
    }

    pub fn send_button(&self, spec: ButtonSpec) -> SentInteraction {
        let shared = &self.shared;
        let mut state = shared.lock();
        let sent = state.new_interaction(spec.channel_id, 3);
        let d = shared
            .config
            .button_interaction_json(&sent, &spec, &state.members);
        shared.dispatch(&mut state, "INTERACTION_CREATE", d);
        sent
    }

    /// Makes interaction `id` older by `by`, as if that much time had passed since Discord sent
    /// it: the fake's controllable clock for the 3-second deadline and the 15-minute token.
    pub fn age_interaction(&self, id: u64, by: Duration) {
        let mut state = self.shared.lock();
        let pending = state.interactions.get_mut(&id).expect("a sent interaction");
        pending.created = pending
            .created
            .checked_sub(by)
            .expect("uptime exceeds `by`");
    }

    pub fn disconnect(&self) {
        self.shared
            .end_connection(Outbound::Close(4000, "fake: forced disconnect"));
    }

    pub fn drop_connection(&self) {
        self.shared.end_connection(Outbound::Drop);
    }

    pub fn close_gateway(&self, code: u16) {
        self.shared
            .end_connection(Outbound::Close(code, "fake: closed by test"));
    }
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl State {
    /// A snowflake for "now", so ids carry a current creation time (bots use it, e.g. to keep
    /// bulk deletes under Discord's two-week limit).
    fn snowflake(&mut self) -> u64 {
        let ms = u64::try_from(now().as_millis()).expect("time fits u64");
        self.last_snowflake = self.snowflake_at(ms).max(self.last_snowflake + 1);
        self.last_snowflake
    }

    /// A snowflake for unix time `ms`, unique among those made here.
    fn snowflake_at(&mut self, ms: u64) -> u64 {
        self.snowflake_seq += 1;
        ((ms - DISCORD_EPOCH_MS) << 22) | (self.snowflake_seq & 0x3f_ffff)
    }

    fn dm_channel(&mut self, user_id: u64) -> u64 {
        if let Some(id) = self.dm_channels.get(&user_id) {
            return *id;
        }
        let id = self.snowflake();
        self.dm_channels.insert(user_id, id);
        id
    }

    fn new_interaction(&mut self, channel_id: u64, kind: u8) -> SentInteraction {
        let id = self.snowflake();
        let token = format!("fake-interaction-token-{id}");
        let pending = PendingInteraction {
            token: token.clone(),
            channel_id,
            acknowledged: false,
            kind,
            created: Instant::now(),
        };
        self.interactions.insert(id, pending);
        SentInteraction { id, token }
    }

    fn interaction_by_token(&self, token: &str) -> Option<&PendingInteraction> {
        self.interactions.values().find(|i| i.token == token)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("fake discord state poisoned")
    }

    fn notify(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    fn gateway_url(&self) -> String {
        format!("ws://{}/gateway", self.addr)
    }

    async fn wait_until<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&State) -> Option<T>,
    ) -> Option<T> {
        let mut changes = self.changed.subscribe();
        tokio::time::timeout(timeout, async {
            loop {
                if let Some(found) = check(&self.lock()) {
                    return found;
                }
                changes.changed().await.expect("sender lives in self");
            }
        })
        .await
        .ok()
    }

    fn end_connection(&self, out: Outbound) {
        let socket = self
            .lock()
            .gateway
            .socket
            .take()
            .expect("no gateway connection to end");
        // A send error means the socket task already ended; the client is reconnecting anyway.
        let _ = socket.tx.send(out);
        self.notify();
    }

    fn dispatch(&self, state: &mut State, event: &str, d: Value) -> u64 {
        let gateway = &mut state.gateway;
        let session = gateway
            .session
            .as_mut()
            .expect("dispatch before any IDENTIFY");
        let seq = session.events.last().map_or(1, |(s, _, _)| s + 1);
        session.events.push((seq, event.into(), d.clone()));
        if let Some(socket) = gateway.socket.as_ref().filter(|s| s.live.is_some()) {
            let _ = socket.tx.send(Outbound::Frame(
                json!({"op": 0, "s": seq, "t": event, "d": d}),
            ));
        }
        seq
    }

    fn record_frame(&self, direction: Direction, frame: &Value) {
        let op = frame["op"].as_u64().unwrap_or(u64::MAX);
        let t = frame["t"].as_str().map(str::to_owned);
        let d = frame["d"].clone();
        self.lock().gateway.frames.push(GatewayFrame {
            direction,
            op,
            t,
            d,
        });
        self.notify();
    }

    fn token_ok(&self, state: &State, token: &str) -> bool {
        !state.token_revoked && token.strip_prefix("Bot ") == Some(self.config.token.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// Gateway

async fn gateway_upgrade(
    extract::State(shared): extract::State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    shared
        .lock()
        .gateway
        .connections
        .push(query.unwrap_or_default());
    shared.notify();
    ws.on_upgrade(move |socket| run_gateway(shared, socket))
}

async fn run_gateway(shared: Arc<Shared>, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    shared.lock().gateway.socket = Some(Socket {
        tx: tx.clone(),
        live: None,
    });
    let interval = u64::try_from(shared.config.heartbeat_interval.as_millis()).expect("interval");
    let _ = tx.send(Outbound::Frame(
        json!({"op": 10, "s": null, "t": null, "d": {"heartbeat_interval": interval}}),
    ));
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Outbound::Frame(frame)) => {
                    shared.record_frame(Direction::Sent, &frame);
                    if socket.send(Message::Text(frame.to_string().into())).await.is_err() {
                        break;
                    }
                }
                Some(Outbound::Close(code, reason)) => {
                    let frame = CloseFrame { code, reason: reason.into() };
                    let _ = socket.send(Message::Close(Some(frame))).await;
                    break;
                }
                Some(Outbound::Drop) | None => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<Value>(&text) {
                    Ok(frame) => {
                        shared.record_frame(Direction::Received, &frame);
                        handle_client_frame(&shared, &tx, &frame);
                    }
                    Err(_) => {
                        let _ = tx.send(Outbound::Close(4002, "Error while decoding payload."));
                    }
                },
                Some(Ok(Message::Binary(_))) => {
                    let _ = tx.send(Outbound::Close(4002, "Error while decoding payload."));
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let mut state = shared.lock();
    if state
        .gateway
        .socket
        .as_ref()
        .is_some_and(|s| s.tx.same_channel(&tx))
    {
        state.gateway.socket = None;
    }
    drop(state);
    shared.notify();
}

fn handle_client_frame(shared: &Shared, tx: &mpsc::UnboundedSender<Outbound>, frame: &Value) {
    let d = &frame["d"];
    match frame["op"].as_u64() {
        Some(1) => {
            let _ = tx.send(Outbound::Frame(
                json!({"op": 11, "s": null, "t": null, "d": null}),
            ));
        }
        Some(2) => identify(shared, tx, d),
        Some(6) => resume(shared, tx, d),
        Some(8) => request_guild_members(shared, tx, d),
        _ => {} // op 3 presence and the rest are only recorded.
    }
}

fn identify(shared: &Shared, tx: &mpsc::UnboundedSender<Outbound>, d: &Value) {
    let mut state = shared.lock();
    if !shared.token_ok(&state, d["token"].as_str().unwrap_or_default()) {
        let _ = tx.send(Outbound::Close(4004, "Authentication failed."));
        return;
    }
    let wanted = d["intents"].as_u64().unwrap_or(0);
    if wanted & intents::PRIVILEGED & !shared.config.privileged_intents != 0 {
        let _ = tx.send(Outbound::Close(4014, "Disallowed intent(s)."));
        return;
    }
    let session_id = format!("fake-session-{}", state.snowflake());
    state.gateway.session = Some(Session {
        id: session_id.clone(),
        intents: wanted,
        events: Vec::new(),
    });
    if let Some(socket) = state
        .gateway
        .socket
        .as_mut()
        .filter(|s| s.tx.same_channel(tx))
    {
        socket.live = Some(Live::Identified);
    }
    let ready = shared
        .config
        .ready_json(&session_id, &shared.gateway_url(), &d["shard"]);
    shared.dispatch(&mut state, "READY", ready);
    if wanted & intents::GUILDS != 0 {
        let members: Vec<FakeMember> = if wanted & intents::GUILD_PRESENCES != 0 {
            state.members.clone()
        } else {
            // Without GUILD_PRESENCES, Discord sends only the bot itself (and members in
            // voice, which the fake has none of), GUILD_MEMBERS or not.
            state
                .members
                .iter()
                .filter(|m| m.user.id == shared.config.bot.id)
                .cloned()
                .collect()
        };
        let mut guild = shared.config.guild_create_json(&members);
        guild["channels"] = channels_json(&shared.config, &state);
        shared.dispatch(&mut state, "GUILD_CREATE", guild);
    }
}

/// REQUEST_GUILD_MEMBERS (op 8), answered as Discord does with one GUILD_MEMBERS_CHUNK: the
/// members whose username or nickname starts with `query` (ignoring case), at most `limit`
/// (1-100); or those listed in `user_ids`, with `not_found`. Listing everyone (an empty query
/// with limit 0) or asking by ids needs GUILD_MEMBERS. A request that breaks these rules closes
/// the connection as Discord does: 4002 for a malformed payload, 4013 for a missing intent.
fn request_guild_members(shared: &Shared, tx: &mpsc::UnboundedSender<Outbound>, d: &Value) {
    let mut state = shared.lock();
    let Some(intents) = state.gateway.session.as_ref().map(|s| s.intents) else {
        let _ = tx.send(Outbound::Close(4003, "Not authenticated."));
        return;
    };
    let decode_error = || {
        let _ = tx.send(Outbound::Close(4002, "Error while decoding payload."));
    };
    let guild = d["guild_id"].as_str().and_then(|g| g.parse::<u64>().ok());
    let limit = d["limit"].as_u64();
    let by_ids: Option<Vec<u64>> = d["user_ids"].as_array().map(|ids| {
        ids.iter()
            .filter_map(|id| id.as_str().and_then(|i| i.parse().ok()))
            .collect()
    });
    let query = d["query"].as_str();
    let nonce = d["nonce"].as_str().filter(|n| !n.is_empty());
    let well_formed = guild.is_some()
        && (query.is_some() != by_ids.is_some())
        && match query {
            Some("") => limit == Some(0),
            Some(_) => matches!(limit, Some(1..=100)),
            None => true,
        }
        && nonce.is_none_or(|n| n.len() <= 32);
    if !well_formed {
        return decode_error();
    }
    let everyone = query == Some("") || by_ids.is_some();
    if everyone && intents & intents::GUILD_MEMBERS == 0 {
        let _ = tx.send(Outbound::Close(4013, "Invalid intent(s)."));
        return;
    }
    // A guild the bot is not in gets no answer at all.
    if guild != Some(shared.config.guild_id) {
        return;
    }
    let starts = |text: &str, query: &str| text.to_lowercase().starts_with(&query.to_lowercase());
    let (members, not_found): (Vec<&FakeMember>, Vec<u64>) = match (&by_ids, query) {
        (Some(ids), _) => {
            let found: Vec<_> = state
                .members
                .iter()
                .filter(|m| ids.contains(&m.user.id))
                .collect();
            let missing = ids
                .iter()
                .filter(|id| !found.iter().any(|m| m.user.id == **id))
                .copied()
                .collect();
            (found, missing)
        }
        (None, Some(query)) => {
            let limit = match limit {
                Some(0) | None => usize::MAX,
                Some(n) => n as usize,
            };
            let matching = state
                .members
                .iter()
                .filter(|m| {
                    starts(&m.user.name, query)
                        || m.nick.as_deref().is_some_and(|n| starts(n, query))
                })
                .take(limit)
                .collect();
            (matching, Vec::new())
        }
        (None, None) => unreachable!("checked above"),
    };
    let mut chunk = json!({
        "guild_id": shared.config.guild_id.to_string(),
        "members": members.iter().map(|m| shared.config.member_json(m, true)).collect::<Vec<_>>(),
        "chunk_index": 0,
        "chunk_count": 1,
    });
    if by_ids.is_some() {
        chunk["not_found"] = json!(not_found.iter().map(u64::to_string).collect::<Vec<_>>());
    }
    if let Some(nonce) = nonce {
        chunk["nonce"] = json!(nonce);
    }
    shared.dispatch(&mut state, "GUILD_MEMBERS_CHUNK", chunk);
}

fn resume(shared: &Shared, tx: &mpsc::UnboundedSender<Outbound>, d: &Value) {
    let mut state = shared.lock();
    if !shared.token_ok(&state, d["token"].as_str().unwrap_or_default()) {
        let _ = tx.send(Outbound::Close(4004, "Authentication failed."));
        return;
    }
    let Some(session) = state
        .gateway
        .session
        .as_ref()
        .filter(|s| Some(s.id.as_str()) == d["session_id"].as_str())
    else {
        let _ = tx.send(Outbound::Frame(
            json!({"op": 9, "s": null, "t": null, "d": false}),
        ));
        return;
    };
    let after = d["seq"].as_u64().unwrap_or(0);
    for (seq, t, d) in session.events.iter().filter(|(seq, _, _)| *seq > after) {
        let _ = tx.send(Outbound::Frame(json!({"op": 0, "s": seq, "t": t, "d": d})));
    }
    if let Some(socket) = state
        .gateway
        .socket
        .as_mut()
        .filter(|s| s.tx.same_channel(tx))
    {
        socket.live = Some(Live::Resumed);
    }
    shared.dispatch(&mut state, "RESUMED", json!({"_trace": ["fake-discord"]}));
}

// ---------------------------------------------------------------------------------------------
// REST

struct Reply {
    status: StatusCode,
    headers: Vec<(&'static str, String)>,
    body: Option<Value>,
}

impl Reply {
    fn json(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    fn no_content() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            headers: Vec::new(),
            body: None,
        }
    }

    fn error(status: StatusCode, code: u64, message: &str) -> Self {
        let body = json!({"message": message, "code": code});
        Self {
            status,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    fn not_found() -> Self {
        Self::error(StatusCode::NOT_FOUND, 0, "404: Not Found")
    }

    fn unknown(what: &str, code: u64) -> Self {
        Self::error(StatusCode::NOT_FOUND, code, &format!("Unknown {what}"))
    }

    fn invalid_form(message: &str) -> Self {
        Self::error(StatusCode::BAD_REQUEST, 50035, message)
    }

    fn from_failure(failure: &Failure) -> Self {
        match failure {
            Failure::Unauthorized => Self::error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized"),
            Failure::Forbidden => Self::error(StatusCode::FORBIDDEN, 50013, "Missing Permissions"),
            Failure::NotFound => Self::not_found(),
            Failure::RateLimited {
                retry_after,
                global,
            } => {
                let reset = now().as_secs_f64() + retry_after;
                let mut headers = vec![
                    ("retry-after", format!("{}", retry_after.ceil())),
                    (
                        "x-ratelimit-scope",
                        if *global { "global" } else { "user" }.into(),
                    ),
                ];
                if *global {
                    headers.push(("x-ratelimit-global", "true".into()));
                } else {
                    headers.extend([
                        ("x-ratelimit-limit", "5".into()),
                        ("x-ratelimit-remaining", "0".into()),
                        ("x-ratelimit-reset", format!("{reset:.3}")),
                        ("x-ratelimit-reset-after", format!("{retry_after:.3}")),
                        ("x-ratelimit-bucket", "fakebucket0000".into()),
                    ]);
                }
                let body = json!({
                    "message": "You are being rate limited.",
                    "retry_after": retry_after,
                    "global": global,
                });
                Self {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    headers,
                    body: Some(body),
                }
            }
        }
    }
}

async fn rest(
    extract::State(shared): extract::State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut call = RecordedCall {
        method: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        query: parse_query(uri.query().unwrap_or_default()),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        authorization: header("authorization"),
        audit_log_reason: header("x-audit-log-reason").map(|r| percent_decode(&r)),
        status: 0,
        at: Instant::now(),
    };
    let reply = {
        let mut state = shared.lock();
        let reply = rate_limited(&mut state, &call, |state, call| {
            answer(&shared, state, call)
        });
        call.status = reply.status.as_u16();
        state.calls.push(call);
        reply
    };
    shared.notify();
    let mut response = match reply.body {
        Some(body) => (reply.status, axum::Json(body)).into_response(),
        None => reply.status.into_response(),
    };
    for (name, value) in reply.headers {
        response.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).expect("header"),
        );
    }
    response
}

// ---------------------------------------------------------------------------------------------
// Rate limits

/// A bucket's window: `used` calls since `opened`, of `limit` per `per`.
struct Window {
    opened: Instant,
    used: u32,
    limit: u32,
    per: Duration,
}

/// The bucket a call counts against, with its limit, as Discord keys them: per route, with the
/// major parameters (channel, guild, webhook id and token) kept and other ids blanked.
/// Sending messages is 5 per 5 s per channel; other routes 10 per second. Interaction
/// callbacks and `GET /gateway` are not limited here.
fn bucket(call: &RecordedCall) -> Option<(String, u32, Duration)> {
    let route = call.route();
    if route.starts_with("/interactions/")
        || route == "/gateway"
        || !call.path.starts_with(API_PREFIX)
    {
        return None;
    }
    let mut key = call.method.clone();
    let (mut before, mut previous) = ("", "");
    for segment in route.split('/').filter(|s| !s.is_empty()) {
        let major = matches!(previous, "channels" | "guilds" | "webhooks") || before == "webhooks";
        let shown = if !major && segment.bytes().all(|b| b.is_ascii_digit()) {
            ":id"
        } else {
            segment
        };
        key.push('/');
        key.push_str(shown);
        (before, previous) = (previous, segment);
    }
    let messages = call.method == "POST"
        && route.starts_with("/channels/")
        && route.ends_with("/messages")
        && route.matches('/').count() == 3;
    Some(if messages {
        (key, 5, Duration::from_secs(5))
    } else {
        (key, 10, Duration::from_secs(1))
    })
}

/// Answers `call` with `answer` inside its bucket's limit, adding the `X-RateLimit-*` headers
/// Discord sends with every response; past the limit, a 429 with `retry_after` instead, and the
/// call is not carried out.
fn rate_limited(
    state: &mut State,
    call: &RecordedCall,
    answer: impl FnOnce(&mut State, &RecordedCall) -> Reply,
) -> Reply {
    let Some((key, limit, per)) = bucket(call) else {
        return answer(state, call);
    };
    let at = Instant::now();
    let window = state.buckets.entry(key.clone()).or_insert(Window {
        opened: at,
        used: 0,
        limit,
        per,
    });
    if window.opened + window.per <= at {
        (window.opened, window.used) = (at, 0);
    }
    let reset_after = (window.opened + window.per - at).as_secs_f64();
    let hash = format!(
        "{:016x}",
        key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
    );
    let headers = |remaining: u32| {
        vec![
            ("x-ratelimit-limit", limit.to_string()),
            ("x-ratelimit-remaining", remaining.to_string()),
            (
                "x-ratelimit-reset",
                format!("{:.3}", now().as_secs_f64() + reset_after),
            ),
            ("x-ratelimit-reset-after", format!("{reset_after:.3}")),
            ("x-ratelimit-bucket", hash.clone()),
        ]
    };
    if window.used >= window.limit {
        let mut headers = headers(0);
        headers.extend([
            ("retry-after", format!("{}", reset_after.ceil())),
            ("x-ratelimit-scope", "user".into()),
        ]);
        let body = json!({
            "message": "You are being rate limited.",
            "retry_after": (reset_after * 1000.0).ceil() / 1000.0,
            "global": false,
        });
        return Reply {
            status: StatusCode::TOO_MANY_REQUESTS,
            headers,
            body: Some(body),
        };
    }
    window.used += 1;
    let remaining = window.limit - window.used;
    let headers = headers(remaining);
    let mut reply = answer(state, call);
    // A planned 429 (`fail_next`) keeps the headers it was given.
    if reply.status != StatusCode::TOO_MANY_REQUESTS {
        reply.headers.extend(headers);
    }
    reply
}

fn answer(shared: &Shared, state: &mut State, call: &RecordedCall) -> Reply {
    let route = call.route().to_owned();
    let planned = state
        .failures
        .iter_mut()
        .find(|f| f.remaining > 0 && f.method == call.method && route.starts_with(&f.route_prefix));
    if let Some(planned) = planned {
        planned.remaining -= 1;
        return Reply::from_failure(&planned.failure);
    }
    if !call.path.starts_with(API_PREFIX) {
        return Reply::not_found();
    }
    let segments: Vec<&str> = route.trim_start_matches('/').split('/').collect();
    if call.method == "GET" && segments == ["gateway"] {
        return Reply::json(json!({"url": shared.gateway_url()}));
    }
    if !shared.token_ok(state, call.authorization.as_deref().unwrap_or_default()) {
        return Reply::from_failure(&Failure::Unauthorized);
    }
    route_authenticated(shared, state, call, &segments)
}

fn route_authenticated(
    shared: &Shared,
    state: &mut State,
    call: &RecordedCall,
    segments: &[&str],
) -> Reply {
    let config = &shared.config;
    let body = &call.body;
    let id = |s: &str| s.parse::<u64>().ok();
    match (call.method.as_str(), segments) {
        ("GET", ["gateway", "bot"]) => Reply::json(json!({
            "url": shared.gateway_url(),
            "shards": 1,
            "session_start_limit": {
                "total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1,
            },
        })),
        ("GET", ["users", "@me"]) => Reply::json(config.current_user_json()),
        ("GET", ["users", user]) => match id(user).and_then(|u| config.user(u)) {
            Some(user) => Reply::json(config.user_json(&user)),
            None => Reply::unknown("User", 10013),
        },
        ("GET", ["oauth2", "applications", "@me"]) => Reply::json(config.application_json()),
        ("POST", ["users", "@me", "channels"]) => {
            let Some(user) = body["recipient_id"]
                .as_str()
                .and_then(id)
                .and_then(|u| config.user(u))
            else {
                return Reply::invalid_form("Invalid Form Body: recipient_id");
            };
            let channel_id = state.dm_channel(user.id);
            Reply::json(json!({
                "id": channel_id.to_string(),
                "type": 1,
                "last_message_id": null,
                "flags": 0,
                "recipients": [config.user_json(&user)],
            }))
        }
        ("PUT", ["applications", app, "commands"]) if id(app) == Some(config.application_id) => {
            overwrite_commands(config, state, None, body)
        }
        ("PUT", ["applications", app, "guilds", guild, "commands"])
            if id(app) == Some(config.application_id) && id(guild) == Some(config.guild_id) =>
        {
            overwrite_commands(config, state, Some(config.guild_id), body)
        }
        ("PUT", ["applications", ..]) => Reply::unknown("Application", 10002),
        ("POST", ["interactions", interaction, token, "callback"]) => {
            match id(interaction).and_then(|i| state.interactions.get_mut(&i)) {
                Some(pending) if pending.token != *token => Reply::unknown("Interaction", 10062),
                // Past the deadline Discord has already shown "The application did not respond".
                Some(pending)
                    if !pending.acknowledged
                        && pending.created.elapsed() > INTERACTION_DEADLINE =>
                {
                    Reply::unknown("Interaction", 10062)
                }
                Some(pending) if pending.acknowledged => Reply::error(
                    StatusCode::BAD_REQUEST,
                    40060,
                    "Interaction has already been acknowledged.",
                ),
                Some(pending) => {
                    // DEFERRED_UPDATE_MESSAGE (6) and UPDATE_MESSAGE (7) answer only a component
                    // interaction: there is no message to update under a slash command.
                    let allowed: &[u64] = if pending.kind == 3 {
                        &[4, 5, 6, 7]
                    } else {
                        &[4, 5]
                    };
                    match body["type"].as_u64() {
                        Some(kind) if allowed.contains(&kind) => {
                            pending.acknowledged = true;
                            Reply::no_content()
                        }
                        _ => Reply::invalid_form("Invalid Form Body: type"),
                    }
                }
                None => Reply::unknown("Interaction", 10062),
            }
        }
        ("POST", ["webhooks", app, token]) if id(app) == Some(config.application_id) => {
            match state.interaction_by_token(token).map(|i| i.channel_id) {
                Some(_) if token_expired(state, token) => expired_token(),
                Some(channel_id) => webhook_message(config, state, channel_id, body),
                None => Reply::unknown("Webhook", 10015),
            }
        }
        ("PATCH", ["webhooks", app, token, "messages", "@original"])
            if id(app) == Some(config.application_id) =>
        {
            match state
                .interaction_by_token(token)
                .map(|i| (i.channel_id, i.acknowledged))
            {
                None => Reply::unknown("Webhook", 10015),
                Some(_) if token_expired(state, token) => expired_token(),
                // Nothing to edit before the initial response.
                Some((_, false)) => Reply::unknown("Message", 10008),
                Some((channel_id, true)) => webhook_message(config, state, channel_id, body),
            }
        }
        ("DELETE", ["webhooks", app, token, "messages", "@original"])
            if id(app) == Some(config.application_id) =>
        {
            match state.interaction_by_token(token).map(|i| i.acknowledged) {
                None => Reply::unknown("Webhook", 10015),
                Some(false) => Reply::unknown("Message", 10008),
                Some(true) => Reply::no_content(),
            }
        }
        (_, ["channels", channel, ..])
            if id(channel).is_some_and(|c| state.deleted_channels.contains(&c)) =>
        {
            Reply::unknown("Channel", 10003)
        }
        ("POST", ["channels", channel, "messages"]) => {
            let Some(channel) = id(channel) else {
                return Reply::unknown("Channel", 10003);
            };
            let direct = state.dm_channels.values().any(|c| *c == channel);
            if !direct && config.channel(channel).is_none() {
                return Reply::unknown("Channel", 10003);
            }
            if let Some(problem) = message_body_problem(body) {
                return problem;
            }
            if let Some(refusal) = channel_refusal(config, state, channel, perms::SEND_MESSAGES) {
                return refusal;
            }
            let message_id = state.snowflake();
            state.messages.entry(channel).or_default().push(message_id);
            state.own_messages.insert(message_id);
            let guild_id = (!direct).then_some(config.guild_id);
            let mut message = config.message_json(message_id, channel, guild_id, &config.bot, "");
            merge_message_fields(&mut message, body);
            Reply::json(message)
        }
        ("GET", ["channels", channel, "messages"]) => {
            let Some(channel) = id(channel).filter(|c| config.channel(*c).is_some()) else {
                return Reply::unknown("Channel", 10003);
            };
            let limit = call
                .query_value("limit")
                .map_or(Some(50), |l| l.parse().ok());
            let Some(limit @ 1..=100) = limit else {
                return Reply::invalid_form("Invalid Form Body: limit must be 1 to 100");
            };
            if let Some(refusal) = channel_refusal(config, state, channel, 0) {
                return refusal;
            }
            let history = bot_channel_permissions(config, state, channel)
                .is_some_and(|p| p & perms::READ_MESSAGE_HISTORY != 0);
            if !history {
                return Reply::json(json!([])); // Discord lists nothing, and says nothing.
            }
            let before = call.query_value("before").and_then(id).unwrap_or(u64::MAX);
            let stored = state.messages.get(&channel).cloned().unwrap_or_default();
            let listed = stored.iter().rev().filter(|m| **m < before).take(limit);
            let bot = &config.bot;
            Reply::json(Value::Array(
                listed
                    .map(|m| config.message_json(*m, channel, None, bot, "x"))
                    .collect(),
            ))
        }
        ("DELETE", ["channels", channel, "messages", message]) if id(channel).is_some() => {
            let channel = id(channel).unwrap_or(0);
            let message = id(message).filter(|m| {
                state
                    .messages
                    .get(&channel)
                    .is_some_and(|ids| ids.contains(m))
            });
            let Some(message) = message else {
                return Reply::unknown("Message", 10008);
            };
            // Anyone may delete their own message; another's takes Manage Messages.
            let needed = if state.own_messages.contains(&message) {
                0
            } else {
                perms::MANAGE_MESSAGES
            };
            if let Some(refusal) = channel_refusal(config, state, channel, needed) {
                return refusal;
            }
            if let Some(ids) = state.messages.get_mut(&channel) {
                ids.retain(|m| *m != message);
            }
            Reply::no_content()
        }
        ("POST", ["channels", channel, "messages", "bulk-delete"]) => {
            let Some(doomed) = body["messages"]
                .as_array()
                .filter(|m| (2..=100).contains(&m.len()))
            else {
                return Reply::invalid_form("Invalid Form Body: messages must hold 2 to 100 ids");
            };
            let doomed: HashSet<u64> = doomed
                .iter()
                .filter_map(|m| m.as_str().and_then(id))
                .collect();
            let channel = id(channel).unwrap_or(0);
            if let Some(refusal) = channel_refusal(config, state, channel, perms::MANAGE_MESSAGES) {
                return refusal;
            }
            let two_weeks_ago = now().saturating_sub(Duration::from_secs(14 * 24 * 3600));
            if doomed.iter().any(|m| created_at(*m) <= two_weeks_ago) {
                return Reply::error(
                    StatusCode::BAD_REQUEST,
                    50034,
                    "You can only bulk delete messages that are under 14 days old.",
                );
            }
            if let Some(ids) = state.messages.get_mut(&channel) {
                ids.retain(|m| !doomed.contains(m));
            }
            Reply::no_content()
        }
        (_, ["guilds", guild, ..]) if id(guild) != Some(config.guild_id) => {
            Reply::unknown("Guild", 10004)
        }
        ("GET", ["guilds", _]) => Reply::json(config.guild_json()),
        ("GET", ["guilds", _, "roles"]) => Reply::json(Value::Array(config.roles_json())),
        ("GET", ["guilds", _, "channels"]) => Reply::json(channels_json(config, state)),
        ("GET", ["guilds", _, "members", user]) => {
            match state.members.iter().find(|m| Some(m.user.id) == id(user)) {
                Some(member) => Reply::json(config.member_json(member, true)),
                None => Reply::unknown("Member", 10007),
            }
        }
        ("PATCH", ["guilds", _, "members", user]) => {
            if let Some(refused) =
                id(user).and_then(|u| member_edit_refusal(config, state, u, body))
            {
                return refused;
            }
            let Some(member) = state
                .members
                .iter_mut()
                .find(|m| Some(m.user.id) == id(user))
            else {
                return Reply::unknown("Member", 10007);
            };
            if let Some(until) = body.get("communication_disabled_until") {
                member.communication_disabled_until = until.as_str().map(str::to_owned);
            }
            if let Some(nick) = body.get("nick") {
                member.nick = nick.as_str().map(str::to_owned);
            }
            if let Some(roles) = body.get("roles").and_then(Value::as_array) {
                member.roles = roles
                    .iter()
                    .filter_map(|r| r.as_str().and_then(id))
                    .collect();
            }
            Reply::json(config.member_json(member, true))
        }
        ("DELETE", ["guilds", _, "members", user]) => {
            if let Some(refused) =
                id(user).and_then(|u| action_refusal(config, state, u, perms::KICK_MEMBERS))
            {
                return refused;
            }
            let before = state.members.len();
            state.members.retain(|m| Some(m.user.id) != id(user));
            if state.members.len() == before {
                return Reply::unknown("Member", 10007);
            }
            Reply::no_content()
        }
        ("PUT", ["guilds", _, "bans", user]) => {
            let Some(user) = id(user).and_then(|u| config.user(u)) else {
                return Reply::unknown("User", 10013);
            };
            if let Some(refused) = action_refusal(config, state, user.id, perms::BAN_MEMBERS) {
                return refused;
            }
            state.members.retain(|m| m.user.id != user.id);
            state.banned.insert(user.id);
            Reply::no_content()
        }
        ("DELETE", ["guilds", _, "bans", user]) => {
            if id(user).is_some_and(|u| state.banned.remove(&u)) {
                Reply::no_content()
            } else {
                Reply::unknown("Ban", 10026)
            }
        }
        _ => Reply::not_found(),
    }
}

fn token_expired(state: &State, token: &str) -> bool {
    state
        .interaction_by_token(token)
        .is_some_and(|i| i.created.elapsed() > INTERACTION_TOKEN_LIFETIME)
}

/// What Discord answers a follow-up or edit made with an interaction token past 15 minutes.
fn expired_token() -> Reply {
    Reply::error(StatusCode::UNAUTHORIZED, 50027, "Invalid Webhook Token")
}

/// The world's channels that have not been deleted, as Discord lists them.
fn channels_json(config: &FakeDiscordConfig, state: &State) -> Value {
    let live = config.channels.iter();
    let live = live.filter(|c| !state.deleted_channels.contains(&c.id));
    Value::Array(live.map(|c| config.channel_json(c)).collect())
}

fn missing_permissions() -> Reply {
    Reply::error(StatusCode::FORBIDDEN, 50013, "Missing Permissions")
}

/// The bot's permissions in guild channel `channel` (`None` for a DM or an unknown channel),
/// with Discord's implicit denial that serenity does not compute: a channel the bot cannot
/// see grants it nothing.
fn bot_channel_permissions(config: &FakeDiscordConfig, state: &State, channel: u64) -> Option<u64> {
    let channel = config.channel(channel)?;
    let bot = state.members.iter().find(|m| m.user.id == config.bot.id)?;
    let permissions = config.permissions(bot, Some(channel));
    Some(if permissions & perms::VIEW_CHANNEL == 0 {
        0
    } else {
        permissions
    })
}

/// Discord's refusal of a call in guild channel `channel`: 403 Missing Access (50001) when the
/// bot cannot see it, 403 Missing Permissions (50013) when it lacks `needed` there.
fn channel_refusal(
    config: &FakeDiscordConfig,
    state: &State,
    channel: u64,
    needed: u64,
) -> Option<Reply> {
    let permissions = bot_channel_permissions(config, state, channel)?;
    if permissions & perms::VIEW_CHANNEL == 0 {
        return Some(Reply::error(StatusCode::FORBIDDEN, 50001, "Missing Access"));
    }
    (permissions & needed != needed).then(missing_permissions)
}

/// The position of a member's highest role (0 for @everyone alone).
fn top_position(config: &FakeDiscordConfig, member: &FakeMember) -> u16 {
    config
        .roles
        .iter()
        .filter(|r| member.roles.contains(&r.id))
        .map(|r| r.position)
        .max()
        .unwrap_or(0)
}

/// Discord's refusal (403, 50013) when the bot acts on member `target` (timeout, kick, ban,
/// role or nickname change): the bot lacks `needed`, or the target is the owner, or the
/// target's highest role is at or above the bot's. A user who is not a member (a ban by id)
/// has no rank.
fn action_refusal(
    config: &FakeDiscordConfig,
    state: &State,
    target: u64,
    needed: u64,
) -> Option<Reply> {
    let bot = state.members.iter().find(|m| m.user.id == config.bot.id)?;
    if config.permissions(bot, None) & needed != needed {
        return Some(missing_permissions());
    }
    let target = state.members.iter().find(|m| m.user.id == target)?;
    let outranked = top_position(config, target) >= top_position(config, bot);
    (target.user.id == config.owner_id || outranked).then(missing_permissions)
}

/// [`action_refusal`] for `PATCH /guilds/{g}/members/{u}`, with the permission each changed
/// field needs; a timeout also cannot reach an administrator, and the bot can only give or
/// take roles below its own highest.
fn member_edit_refusal(
    config: &FakeDiscordConfig,
    state: &State,
    target: u64,
    body: &Value,
) -> Option<Reply> {
    let member = state.members.iter().find(|m| m.user.id == target)?;
    let mut needed = 0;
    if body.get("communication_disabled_until").is_some() {
        if config.permissions(member, None) & perms::ADMINISTRATOR != 0 || target == config.owner_id
        {
            return Some(missing_permissions());
        }
        needed |= perms::MODERATE_MEMBERS;
    }
    if body.get("nick").is_some() {
        needed |= perms::MANAGE_NICKNAMES;
    }
    if let Some(roles) = body.get("roles").and_then(Value::as_array) {
        needed |= perms::MANAGE_ROLES;
        let wanted: HashSet<u64> = roles
            .iter()
            .filter_map(|r| r.as_str().and_then(|r| r.parse().ok()))
            .collect();
        let had: HashSet<u64> = member.roles.iter().copied().collect();
        let bot = state.members.iter().find(|m| m.user.id == config.bot.id)?;
        let ceiling = top_position(config, bot);
        let changed_at_or_above = wanted.symmetric_difference(&had).any(|role| {
            config
                .roles
                .iter()
                .find(|r| r.id == *role)
                .is_none_or(|r| r.position >= ceiling)
        });
        if changed_at_or_above {
            return Some(missing_permissions());
        }
    }
    action_refusal(config, state, target, needed)
}

/// Bulk overwrite: Discord answers with the full objects, ids and versions filled in.
fn overwrite_commands(
    config: &FakeDiscordConfig,
    state: &mut State,
    guild: Option<u64>,
    body: &Value,
) -> Reply {
    let Some(commands) = body.as_array() else {
        return Reply::invalid_form("Invalid Form Body: expected an array");
    };
    for command in commands {
        let name = command["name"].as_str().unwrap_or_default();
        let chat_input = command["type"].as_u64().unwrap_or(1) == 1;
        let description = command["description"].as_str().unwrap_or_default();
        let name_ok = (1..=32).contains(&name.chars().count())
            && (!chat_input
                || name
                    .chars()
                    .all(|c| c.is_lowercase() || c.is_numeric() || "-_".contains(c)));
        if !name_ok || (chat_input && !(1..=100).contains(&description.chars().count())) {
            return Reply::invalid_form(&format!("Invalid Form Body: command {name:?}"));
        }
    }
    state.commands.retain(|(scope, _), _| *scope != guild);
    let mut out = Vec::new();
    for command in commands {
        let name = command["name"].as_str().unwrap_or_default().to_owned();
        let id = state.snowflake();
        state.commands.insert((guild, name), id);
        let mut echoed = json!({
            "id": id.to_string(),
            "application_id": config.application_id.to_string(),
            "version": state.snowflake().to_string(),
            "type": 1,
            "description": "",
            "options": [],
            "default_member_permissions": null,
            "nsfw": false,
            "integration_types": [0],
            "contexts": null,
        });
        if let Some(guild) = guild {
            echoed["guild_id"] = json!(guild.to_string());
        }
        merge_object(&mut echoed, command);
        out.push(echoed);
    }
    Reply::json(Value::Array(out))
}

fn webhook_message(
    config: &FakeDiscordConfig,
    state: &mut State,
    channel_id: u64,
    body: &Value,
) -> Reply {
    if let Some(problem) = message_body_problem(body) {
        return problem;
    }
    let message_id = state.snowflake();
    let mut message = config.message_json(
        message_id,
        channel_id,
        Some(config.guild_id),
        &config.bot,
        "",
    );
    message["type"] = json!(20);
    message["webhook_id"] = json!(config.application_id.to_string());
    message["application_id"] = json!(config.application_id.to_string());
    merge_message_fields(&mut message, body);
    Reply::json(message)
}

/// Discord's checks on a message body: not empty, content at most 2000 characters.
fn message_body_problem(body: &Value) -> Option<Reply> {
    let content = body["content"].as_str().unwrap_or_default();
    let has = |key: &str| body[key].as_array().is_some_and(|a| !a.is_empty());
    if content.chars().count() > 2000 {
        return Some(Reply::invalid_form(
            "Invalid Form Body: content must be 2000 or fewer in length.",
        ));
    }
    if content.is_empty() && !has("embeds") && !has("components") && !has("sticker_ids") {
        return Some(Reply::error(
            StatusCode::BAD_REQUEST,
            50006,
            "Cannot send an empty message",
        ));
    }
    None
}

fn merge_message_fields(message: &mut Value, body: &Value) {
    for key in ["content", "embeds", "components", "tts", "flags"] {
        if let Some(value) = body.get(key).filter(|v| !v.is_null()) {
            message[key] = value.clone();
        }
    }
}

fn merge_object(into: &mut Value, from: &Value) {
    if let (Some(into), Some(from)) = (into.as_object_mut(), from.as_object()) {
        for (key, value) in from {
            into.insert(key.clone(), value.clone());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Payloads, shaped as Discord's docs show them (and as serenity 0.12 requires).

impl FakeDiscordConfig {
    /// A world user (member or not) by id; the bot included.
    pub fn user(&self, id: u64) -> Option<FakeUser> {
        if id == self.bot.id {
            return Some(self.bot.clone());
        }
        self.members
            .iter()
            .map(|m| &m.user)
            .find(|u| u.id == id)
            .cloned()
    }

    pub fn channel(&self, id: u64) -> Option<&FakeChannel> {
        self.channels.iter().find(|c| c.id == id)
    }

    /// Adds `overwrite` to channel `id` of the world.
    pub fn overwrite(&mut self, id: u64, overwrite: FakeOverwrite) {
        let channel = self.channels.iter_mut().find(|c| c.id == id);
        channel
            .unwrap_or_else(|| panic!("channel {id} is not in the fake's world"))
            .overwrites
            .push(overwrite);
    }

    /// Adds a text channel that @everyone (the bot included) cannot see, unless `overwrites`
    /// let them.
    pub fn add_hidden_channel(&mut self, id: u64, name: &str, overwrites: &[FakeOverwrite]) {
        let mut channel = FakeChannel::text(id, name);
        channel.overwrites = vec![FakeOverwrite::role(self.guild_id, 0, perms::VIEW_CHANNEL)];
        channel.overwrites.extend_from_slice(overwrites);
        self.channels.push(channel);
    }

    fn first_text_channel(&self) -> u64 {
        self.channels
            .iter()
            .find(|c| c.kind == 0)
            .map_or(0, |c| c.id)
    }

    fn known_user(&self, id: u64) -> FakeUser {
        self.user(id)
            .unwrap_or_else(|| panic!("user {id} is not in the fake's world"))
    }

    /// Guild-level permissions, computed the way Discord does (owner and ADMINISTRATOR get all),
    /// then the channel's overwrites if a channel is given.
    pub fn permissions(&self, member: &FakeMember, channel: Option<&FakeChannel>) -> u64 {
        if member.user.id == self.owner_id {
            return perms::ALL;
        }
        let mut permissions = self.everyone_permissions;
        for role in self.roles.iter().filter(|r| member.roles.contains(&r.id)) {
            permissions |= role.permissions;
        }
        if permissions & perms::ADMINISTRATOR != 0 {
            return perms::ALL;
        }
        let Some(channel) = channel else {
            return permissions;
        };
        let overwrites = |pick: &dyn Fn(&FakeOverwrite) -> bool| {
            channel
                .overwrites
                .iter()
                .filter(|o| pick(o))
                .fold((0, 0), |(a, d), o| (a | o.allow, d | o.deny))
        };
        let (allow, deny) = overwrites(&|o| !o.member && o.id == self.guild_id);
        permissions = (permissions & !deny) | allow;
        let (allow, deny) = overwrites(&|o| !o.member && member.roles.contains(&o.id));
        permissions = (permissions & !deny) | allow;
        let (allow, deny) = overwrites(&|o| o.member && o.id == member.user.id);
        (permissions & !deny) | allow
    }

    pub fn user_json(&self, user: &FakeUser) -> Value {
        json!({
            "id": user.id.to_string(),
            "username": user.name,
            "discriminator": "0",
            "global_name": if user.bot { Value::Null } else { json!(user.name) },
            "avatar": null,
            "bot": user.bot,
            "system": false,
            "banner": null,
            "accent_color": null,
            "public_flags": 0,
            "flags": 0,
            "avatar_decoration_data": null,
            "primary_guild": null,
        })
    }

    fn current_user_json(&self) -> Value {
        let mut user = self.user_json(&self.bot);
        merge_object(
            &mut user,
            &json!({"mfa_enabled": false, "verified": true, "email": null, "locale": "en-US", "premium_type": 0}),
        );
        user
    }

    /// A guild member; `with_user` adds the `user` object (absent inside MESSAGE_CREATE and in
    /// interaction `resolved`).
    pub fn member_json(&self, member: &FakeMember, with_user: bool) -> Value {
        let mut json = json!({
            "nick": member.nick,
            "avatar": null,
            "banner": null,
            "roles": member.roles.iter().map(u64::to_string).collect::<Vec<_>>(),
            "joined_at": "2024-01-01T00:00:00.000000+00:00",
            "premium_since": null,
            "deaf": false,
            "mute": false,
            "flags": 0,
            "pending": false,
            "communication_disabled_until": member.communication_disabled_until,
            "unusual_dm_activity_until": null,
            "avatar_decoration_data": null,
        });
        if with_user {
            json["user"] = self.user_json(&member.user);
        }
        json
    }

    pub fn role_json(&self, id: u64, name: &str, permissions: u64, position: u16) -> Value {
        json!({
            "id": id.to_string(),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": null, "tertiary_color": null},
            "hoist": false,
            "icon": null,
            "unicode_emoji": null,
            "position": position,
            "permissions": permissions.to_string(),
            "managed": false,
            "mentionable": false,
            "flags": 0,
        })
    }

    fn roles_json(&self) -> Vec<Value> {
        let everyone = self.role_json(self.guild_id, "@everyone", self.everyone_permissions, 0);
        std::iter::once(everyone)
            .chain(
                self.roles
                    .iter()
                    .map(|r| self.role_json(r.id, &r.name, r.permissions, r.position)),
            )
            .collect()
    }

    pub fn channel_json(&self, channel: &FakeChannel) -> Value {
        let position = self
            .channels
            .iter()
            .position(|c| c.id == channel.id)
            .unwrap_or(0);
        let overwrites: Vec<Value> = channel
            .overwrites
            .iter()
            .map(|o| {
                json!({
                    "id": o.id.to_string(),
                    "type": u8::from(o.member),
                    "allow": o.allow.to_string(),
                    "deny": o.deny.to_string(),
                })
            })
            .collect();
        let mut json = json!({
            "id": channel.id.to_string(),
            "type": channel.kind,
            "guild_id": self.guild_id.to_string(),
            "position": position,
            "permission_overwrites": overwrites,
            "name": channel.name,
            "parent_id": null,
            "flags": 0,
        });
        let extra = match channel.kind {
            0 => {
                json!({"topic": null, "nsfw": false, "last_message_id": null, "rate_limit_per_user": 0})
            }
            2 => json!({"bitrate": 64000, "user_limit": 0, "rtc_region": null, "nsfw": false,
                        "last_message_id": null, "rate_limit_per_user": 0}),
            _ => json!({}),
        };
        merge_object(&mut json, &extra);
        json
    }

    /// The guild as `GET /guilds/{id}` returns it.
    pub fn guild_json(&self) -> Value {
        json!({
            "id": self.guild_id.to_string(),
            "name": self.guild_name,
            "icon": null,
            "icon_hash": null,
            "splash": null,
            "discovery_splash": null,
            "owner_id": self.owner_id.to_string(),
            "afk_channel_id": null,
            "afk_timeout": 300,
            "widget_enabled": false,
            "widget_channel_id": null,
            "verification_level": 1,
            "default_message_notifications": 1,
            "explicit_content_filter": 2,
            "roles": self.roles_json(),
            "emojis": [],
            "features": [],
            "mfa_level": 0,
            "application_id": null,
            "system_channel_id": self.first_text_channel().to_string(),
            "system_channel_flags": 0,
            "rules_channel_id": null,
            "max_presences": null,
            "max_members": 500_000,
            "vanity_url_code": null,
            "description": null,
            "banner": null,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": null,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "nsfw_level": 0,
            "stickers": [],
            "premium_progress_bar_enabled": false,
            "safety_alerts_channel_id": null,
            "incidents_data": null,
        })
    }

    /// GUILD_CREATE: the guild plus the gateway-only fields, with the given members.
    pub fn guild_create_json(&self, members: &[FakeMember]) -> Value {
        let mut guild = self.guild_json();
        merge_object(
            &mut guild,
            &json!({
                "joined_at": "2024-01-01T00:00:00.000000+00:00",
                "large": false,
                "unavailable": false,
                "member_count": self.members.len(),
                "voice_states": [],
                "members": members.iter().map(|m| self.member_json(m, true)).collect::<Vec<_>>(),
                "channels": self.channels.iter().map(|c| self.channel_json(c)).collect::<Vec<_>>(),
                "threads": [],
                "presences": [],
                "stage_instances": [],
                "guild_scheduled_events": [],
                "soundboard_sounds": [],
            }),
        );
        guild
    }

    fn ready_json(&self, session_id: &str, gateway_url: &str, shard: &Value) -> Value {
        json!({
            "v": 10,
            "user": self.current_user_json(),
            "guilds": [{"id": self.guild_id.to_string(), "unavailable": true}],
            "session_id": session_id,
            "session_type": "normal",
            "resume_gateway_url": gateway_url,
            "shard": shard,
            "application": {"id": self.application_id.to_string(), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": [],
            "guild_join_requests": [],
            "user_settings": {},
            "_trace": ["fake-discord"],
        })
    }

    fn application_json(&self) -> Value {
        json!({
            "id": self.application_id.to_string(),
            "name": self.bot.name,
            "icon": null,
            "description": "",
            "rpc_origins": [],
            "bot_public": true,
            "bot_require_code_grant": false,
            "bot": self.user_json(&self.bot),
            "owner": self.user(self.owner_id).map(|u| self.user_json(&u)),
            "verify_key": "0".repeat(64),
            "team": null,
            "flags": 0,
            "approximate_guild_count": 1,
            "redirect_uris": [],
            "interactions_endpoint_url": null,
            "role_connections_verification_url": null,
            "integration_types_config": {"0": {}},
        })
    }

    /// A message as REST returns it (no `member`; `guild_id` only on gateway events).
    pub fn message_json(
        &self,
        id: u64,
        channel_id: u64,
        guild_id: Option<u64>,
        author: &FakeUser,
        content: &str,
    ) -> Value {
        let mut json = json!({
            "id": id.to_string(),
            "channel_id": channel_id.to_string(),
            "author": self.user_json(author),
            "content": content,
            "timestamp": iso8601(now()),
            "edited_timestamp": null,
            "tts": false,
            "mention_everyone": false,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": false,
            "type": 0,
            "flags": 0,
            "components": [],
        });
        if let Some(guild_id) = guild_id {
            json["guild_id"] = json!(guild_id.to_string());
        }
        json
    }

    /// MESSAGE_CREATE `d`: the message plus `guild_id`, the author's partial `member` and
    /// mentioned users each with their partial `member`, as the gateway sends it.
    pub fn message_create_json(
        &self,
        id: u64,
        channel_id: u64,
        spec: &MessageSpec,
        members: &[FakeMember],
    ) -> Value {
        let author = self.known_user(spec.author_id);
        let guild_id = (!spec.direct).then_some(self.guild_id);
        let mut json = self.message_json(id, channel_id, guild_id, &author, &spec.content);
        let member_of = |user_id| members.iter().find(|m: &&FakeMember| m.user.id == user_id);
        let mentions: Vec<Value> = spec
            .mentions
            .iter()
            .map(|&user_id| {
                let mut user = self.user_json(&self.known_user(user_id));
                if let Some(member) = member_of(user_id).filter(|_| !spec.direct) {
                    user["member"] = self.member_json(member, false);
                }
                user
            })
            .collect();
        json["mentions"] = Value::Array(mentions);
        json["nonce"] = json!(id.to_string());
        json["type"] = json!(spec.kind);
        if let Some(member) = member_of(spec.author_id).filter(|_| !spec.direct) {
            json["member"] = self.member_json(member, false);
        }
        json
    }

    /// Fields every guild interaction carries.
    fn interaction_base(
        &self,
        sent: &SentInteraction,
        kind: u8,
        user_id: u64,
        channel_id: u64,
        members: &[FakeMember],
    ) -> Value {
        let member = members
            .iter()
            .find(|m| m.user.id == user_id)
            .unwrap_or_else(|| panic!("user {user_id} is not a member of the fake guild"));
        let channel = self.channel(channel_id);
        let mut member_json = self.member_json(member, true);
        member_json["permissions"] = json!(self.permissions(member, channel).to_string());
        let bot = members.iter().find(|m| m.user.id == self.bot.id);
        let app_permissions = bot.map_or(0, |b| self.permissions(b, channel));
        json!({
            "id": sent.id.to_string(),
            "application_id": self.application_id.to_string(),
            "type": kind,
            "guild": {"id": self.guild_id.to_string(), "locale": "en-US", "features": []},
            "guild_id": self.guild_id.to_string(),
            "channel": {
                "id": channel_id.to_string(),
                "type": channel.map_or(0, |c| c.kind),
                "name": channel.map(|c| c.name.clone()),
                "guild_id": self.guild_id.to_string(),
                "permissions": self.permissions(member, channel).to_string(),
                "parent_id": null,
                "flags": 0,
            },
            "channel_id": channel_id.to_string(),
            "member": member_json,
            "token": sent.token,
            "version": 1,
            "app_permissions": app_permissions.to_string(),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": self.guild_id.to_string()},
            "context": 0,
            "attachment_size_limit": 10_485_760,
        })
    }

    /// INTERACTION_CREATE type 2 (chat input), with `resolved` filled for user, role and channel
    /// options as Discord does.
    pub fn command_interaction_json(
        &self,
        sent: &SentInteraction,
        command_id: u64,
        spec: &CommandSpec,
        members: &[FakeMember],
    ) -> Value {
        let mut resolved = json!({});
        let mut options = Vec::new();
        for (name, value) in &spec.options {
            let (kind, value) = match value {
                OptionValue::String(s) => (3, json!(s)),
                OptionValue::Integer(i) => (4, json!(i)),
                OptionValue::Boolean(b) => (5, json!(b)),
                OptionValue::User(id) => {
                    let key = id.to_string();
                    resolved["users"][&key] = self.user_json(&self.known_user(*id));
                    if let Some(member) = members.iter().find(|m| m.user.id == *id) {
                        let mut partial = self.member_json(member, false);
                        partial["permissions"] = json!(self.permissions(member, None).to_string());
                        resolved["members"][&key] = partial;
                    }
                    (6, json!(key))
                }
                OptionValue::Channel(id) => {
                    let channel = self
                        .channel(*id)
                        .unwrap_or_else(|| panic!("no channel {id}"));
                    resolved["channels"][id.to_string()] = json!({
                        "id": id.to_string(), "name": channel.name, "type": channel.kind,
                        "permissions": perms::ALL.to_string(), "parent_id": null,
                    });
                    (7, json!(id.to_string()))
                }
                OptionValue::Role(id) => {
                    let role = self
                        .roles
                        .iter()
                        .find(|r| r.id == *id)
                        .unwrap_or_else(|| panic!("no role {id}"));
                    resolved["roles"][id.to_string()] =
                        self.role_json(role.id, &role.name, role.permissions, role.position);
                    (8, json!(id.to_string()))
                }
                OptionValue::Number(n) => (10, json!(n)),
            };
            options.push(json!({"name": name, "type": kind, "value": value}));
        }
        let mut json = self.interaction_base(sent, 2, spec.user_id, spec.channel_id, members);
        json["data"] = json!({
            "id": command_id.to_string(),
            "name": spec.name,
            "type": 1,
            "guild_id": self.guild_id.to_string(),
            "options": options,
            "resolved": resolved,
        });
        json
    }

    /// INTERACTION_CREATE type 3 for a button on a bot message (carried in full, as Discord does).
    pub fn button_interaction_json(
        &self,
        sent: &SentInteraction,
        spec: &ButtonSpec,
        members: &[FakeMember],
    ) -> Value {
        let mut message = self.message_json(
            spec.message_id,
            spec.channel_id,
            Some(self.guild_id),
            &self.bot,
            "",
        );
        message["components"] = json!([{
            "type": 1,
            "id": 1,
            "components": [{"type": 2, "id": 2, "style": 1, "label": "Press", "custom_id": spec.custom_id}],
        }]);
        let mut json = self.interaction_base(sent, 3, spec.user_id, spec.channel_id, members);
        json["message"] = message;
        json["data"] = json!({"custom_id": spec.custom_id, "component_type": 2});
        json
    }
}

// ---------------------------------------------------------------------------------------------
// Small helpers (kept here so the module needs no extra crates)

/// Where snowflakes count their milliseconds from: the first second of 2015.
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// When the object with snowflake `id` was made, as time since the Unix epoch.
fn created_at(id: u64) -> Duration {
    Duration::from_millis((id >> 22) + DISCORD_EPOCH_MS)
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
}

/// RFC 3339 in UTC with microseconds, Discord's timestamp format.
fn iso8601(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = i64::try_from(days).expect("days") + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since_epoch.subsec_micros()
    )
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (key, value) = piece.split_once('=').unwrap_or((piece, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
