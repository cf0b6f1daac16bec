//! A fake Slack on `127.0.0.1:0` for tests: the Web API, the Socket Mode WebSocket, and a
//! sender of signed HTTP requests for events mode.
//!
//! Built to be wire-compatible with slack-morphism 2.31 (`tests/fake_slack_selftest.rs` runs
//! its Web API client and Socket Mode listener against it) and as strict as Slack where a bot
//! can get things wrong: token kinds, scopes, membership, Block Kit limits, per-method rate
//! tiers, and envelopes that are redelivered when not acked in time.
//!
//! # Public API
//! ```text
//! FakeSlack::start(FakeSlackConfig) -> FakeSlack                      (async)
//!   .api_url() -> String                 "http://127.0.0.1:PORT/api" (replaces https://slack.com/api)
//! Web API: auth.test, apps.connections.open, chat.postMessage, chat.postEphemeral, chat.update,
//!          users.info, users.conversations, conversations.kick, conversations.open,
//!          conversations.info; any other is 404 `unknown_method`
//!   .calls() / .calls_of("chat.postMessage") -> Vec<Call>   Call { method, params, token, error, status, at }
//!   .wait_for_call(method, |&Call| -> bool, Duration) -> Call (async; panics on timeout)
//!   .fail_next(method, Failure) / .fail_times(method, Failure, n)
//!   .set_rate_limit(method, calls, per)  replace a method's tier (see RATE_TIERS)
//!   .revoke_tokens()                     every call answers `token_revoked` from now on
//!   .messages(channel) -> Vec<Value>     what the bot posted there (updates applied), oldest first
//!   .ephemerals() -> Vec<Value>          what chat.postEphemeral delivered: {channel, user, text, blocks}
//!   .responses() -> Vec<Value>           bodies POSTed to response_urls
//!   .members(channel) -> Vec<String>     who is in a channel now (kicks applied)
//!   .add_member(channel, user)           someone (re)joins
//!   .add_channel(id, name)               a public channel everyone (and the bot) is in
//!   .archive_channel(id)                 posts there are refused (`is_archived`) from now on
//! Socket Mode (URL from apps.connections.open: ws://127.0.0.1:PORT/link/?ticket=..&app_id=..)
//!   .connections() -> usize              open connections now
//!   .connects() -> usize                 connections ever opened
//!   .wait_for_connections(n, Duration)   (async; panics on timeout)
//!   .wait_for_connects(n, Duration)      until n were ever opened (async; panics on timeout)
//!   .send_envelope(kind, payload, accepts_response_payload) -> envelope id
//!   .send_slash_command / .send_app_mention / .send_direct_message / .send_button_press
//!   .send_member_joined(user, channel)   adds the member and sends member_joined_channel
//!   .deliveries() -> Vec<Delivery>       every envelope sent, redeliveries included
//!   .acks() -> Vec<Ack>                  every ack received, in order
//!   .wait_for_ack(envelope_id, Duration) -> Ack (async; panics on timeout)
//!   .disconnect(reason)                  `{"type":"disconnect","reason":..}` on every connection
//!   .drop_connections()                  ends every connection without a close frame
//! Events mode
//!   SignedSender::new(secret).post_json / post_form / post_interactive / post_raw / sign
//!   wait_for_listener(port, Duration)    until the bot's listener takes connections (async)
//! Payload builders (pure): slash_command, app_mention, direct_message, block_action, user_json
//! ```
//!
//! Tokens go in `Authorization: Bearer`, or as a `token` form or query parameter (never in a
//! JSON body, which Slack ignores for it). Bodies may be form-encoded, JSON (POST only), or a
//! query string. A call without a token is `not_authed`, an unknown one `invalid_auth`, an app
//! token on a bot method (or the reverse) `not_allowed_token_type`, a method whose scope the app
//! lacks `missing_scope`. Errors are HTTP 200 `{"ok":false,"error":..}` as on Slack; a rate
//! limit is HTTP 429 with `Retry-After` in whole seconds. Event envelopes not acked within
//! [`FakeSlackConfig::ack_timeout`] are sent again with `retry_attempt` + 1 and `retry_reason`
//! `timeout`, at most [`FakeSlackConfig::max_retries`] times, as Slack does; slash commands and
//! button presses are never sent again (Slack tells their member the app did not respond).
//! Not modelled: pagination, files, threads, message formatting checks beyond Block Kit's
//! size limits, and the workspace-wide posting limit.
//!
//! Needs these dev-dependencies: axum 0.8 (feature `ws`), serde_json, reqwest 0.12, ring and
//! tokio (features `net`, `macros`, `time`, `sync`).

// Each test crate that includes this module uses a different part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Ids of the default world.
pub mod ids {
    pub const TEAM: &str = "T0COGBOX1";
    pub const TEAM_DOMAIN: &str = "cogbox-test";
    pub const APP: &str = "A0COGBOX1";
    pub const BOT_USER: &str = "U0COGBOT1";
    pub const BOT_ID: &str = "B0COGBOT1";
    /// The workspace's primary owner.
    pub const OWNER: &str = "U0OWNER01";
    /// A workspace admin.
    pub const ADMIN: &str = "U0ADMIN01";
    /// A plain member.
    pub const MEMBER: &str = "U0MEMBER1";
    /// Another plain member, to be kicked.
    pub const TARGET: &str = "U0TARGET1";
    /// `#general`: every member is in it and nobody can be removed from it.
    pub const GENERAL: &str = "C0GENERAL";
    /// `#random`: everyone above, the bot included.
    pub const RANDOM: &str = "C0RANDOM1";
    /// `#quiet`: a public channel the bot is not in.
    pub const QUIET: &str = "C0QUIET01";
    /// The direct message between [`MEMBER`] and the bot.
    pub const DM: &str = "D0MEMBER1";
}

/// What every test token looks like; the fake checks exact values, as Slack does.
pub const BOT_TOKEN: &str = "xoxb-1111-2222-fakeBotTokenValue";
pub const APP_TOKEN: &str = "xapp-1-A0COGBOX1-3333-fakeAppTokenValue";
pub const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

/// The bot scopes an app needs for every method served here.
pub const ALL_SCOPES: &[&str] = &[
    "app_mentions:read",
    "channels:manage",
    "channels:read",
    "chat:write",
    "commands",
    "groups:read",
    "groups:write",
    "im:history",
    "im:write",
    "users:read",
];

#[derive(Clone, Debug)]
pub struct FakeSlackConfig {
    pub bot_token: String,
    pub app_token: String,
    /// Bot scopes the installed app was granted.
    pub scopes: Vec<String>,
    /// Slack redelivers an envelope not acked within 3 seconds.
    pub ack_timeout: Duration,
    /// How often Slack retries an unacked envelope.
    pub max_retries: u32,
}

impl Default for FakeSlackConfig {
    fn default() -> Self {
        Self {
            bot_token: BOT_TOKEN.into(),
            app_token: APP_TOKEN.into(),
            scopes: ALL_SCOPES.iter().map(|s| s.to_string()).collect(),
            ack_timeout: Duration::from_secs(3),
            max_retries: 3,
        }
    }
}

/// One Web API call, recorded as it arrived.
#[derive(Clone, Debug)]
pub struct Call {
    /// `chat.postMessage`, or `response_url` for a POST to a response URL.
    pub method: String,
    /// Every parameter as one JSON object, whatever encoding it came in; `blocks` parsed.
    pub params: Value,
    pub token: Option<String>,
    /// The `error` answered, if any (`ratelimited` for a 429).
    pub error: Option<String>,
    pub status: u16,
    pub at: Instant,
}

/// An answer to give instead of serving a call.
#[derive(Clone, Debug)]
pub enum Failure {
    /// HTTP 200 `{"ok":false,"error":<code>}`.
    Error(String),
    /// HTTP 429 `ratelimited` with `Retry-After: <seconds>`.
    RateLimited(u32),
    /// A bare HTTP status, as from a proxy in front of Slack.
    Status(u16),
}

/// One envelope sent on a Socket Mode connection.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub envelope_id: String,
    pub kind: String,
    pub retry_attempt: u32,
    pub connection: u64,
    pub at: Instant,
}

/// One frame received with an `envelope_id`.
#[derive(Clone, Debug)]
pub struct Ack {
    pub envelope_id: String,
    /// The ack's `payload` (a slash command's or interaction's immediate answer), if any.
    pub payload: Option<Value>,
    pub connection: u64,
    pub at: Instant,
    /// How long after the envelope's first delivery the ack came; `None` for an unknown id.
    pub after: Option<Duration>,
}

/// A user of the fake workspace.
#[derive(Clone, Debug)]
pub struct FakeUser {
    pub id: String,
    /// The username (`name`), which Slack keeps for every account.
    pub name: String,
    /// `profile.display_name`: empty, as for most real members, unless they set one.
    pub display_name: String,
    pub is_owner: bool,
    pub is_admin: bool,
    pub is_bot: bool,
}

#[derive(Clone, Debug)]
struct FakeChannel {
    name: String,
    is_im: bool,
    is_private: bool,
    is_general: bool,
    /// Posting to an archived channel is refused (`is_archived`), even for its members.
    is_archived: bool,
    members: BTreeSet<String>,
}

/// Rate tiers as Slack documents them, per method, in calls per window. Slack tolerates short
/// bursts above the nominal rate, so each window allows a few; `chat.postMessage` is counted per
/// channel (about one message a second).
pub const RATE_TIERS: &[(&str, u32, Duration)] = &[
    ("auth.test", 100, Duration::from_secs(60)),
    ("apps.connections.open", 5, Duration::from_secs(60)), // Tier 1
    ("chat.postMessage", 5, Duration::from_secs(5)),       // special: per channel
    ("chat.postEphemeral", 100, Duration::from_secs(60)),  // Tier 4
    ("chat.update", 50, Duration::from_secs(60)),          // Tier 3
    ("users.info", 100, Duration::from_secs(60)),          // Tier 4
    ("conversations.kick", 50, Duration::from_secs(60)),   // Tier 3
    ("conversations.open", 50, Duration::from_secs(60)),   // Tier 3
    ("users.conversations", 50, Duration::from_secs(60)),  // Tier 3
    ("conversations.info", 50, Duration::from_secs(60)),   // Tier 3
];

/// Slack's Block Kit limits that a renderer can overstep.
const MAX_BLOCKS: usize = 50;
const MAX_SECTION_TEXT: usize = 3000;
const MAX_FIELDS: usize = 10;
const MAX_FIELD_TEXT: usize = 2000;
const MAX_ACTION_ELEMENTS: usize = 25;
const MAX_BUTTON_TEXT: usize = 75;
const MAX_ACTION_ID: usize = 255;
const MAX_BUTTON_VALUE: usize = 2000;
const MAX_HEADER_TEXT: usize = 150;
/// chat.postMessage truncates past 40,000 characters; `msg_too_long` is its error.
const MAX_MESSAGE_TEXT: usize = 40_000;
/// A response URL takes five answers within half an hour.
const RESPONSE_URL_USES: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokenKind {
    Bot,
    App,
}

enum Outbound {
    Text(String),
    Drop,
}

struct Connection {
    tx: mpsc::UnboundedSender<Outbound>,
}

struct Envelope {
    kind: String,
    payload: Value,
    accepts_response_payload: bool,
    first_sent: Instant,
    attempts: u32,
    acked: bool,
}

#[derive(Default)]
struct World {
    users: Vec<FakeUser>,
    channels: BTreeMap<String, FakeChannel>,
    /// Per channel: what the bot posted, updates applied.
    messages: BTreeMap<String, Vec<Value>>,
    ephemerals: Vec<Value>,
    responses: Vec<Value>,
    response_uses: HashMap<String, usize>,
    /// A button press's response URL id -> the pressed message (channel, ts).
    pressed: HashMap<String, (String, String)>,
    calls: Vec<Call>,
    failures: Vec<(String, Failure, usize)>,
    limits: HashMap<String, (u32, Duration)>,
    windows: HashMap<(String, String), VecDeque<Instant>>,
    revoked: bool,
    next_ts: u64,
    next_id: u64,
    tickets: HashMap<String, bool>,
    connections: BTreeMap<u64, Connection>,
    connects: usize,
    next_connection: usize,
    envelopes: HashMap<String, Envelope>,
    deliveries: Vec<Delivery>,
    acks: Vec<Ack>,
}

struct Shared {
    config: FakeSlackConfig,
    addr: SocketAddr,
    world: Mutex<World>,
    changed: watch::Sender<u64>,
}

/// A running fake; dropping it stops the server.
pub struct FakeSlack {
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeSlack {
    pub async fn start(config: FakeSlackConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Slack");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            config,
            addr,
            world: Mutex::new(default_world()),
            changed: watch::channel(0).0,
        });
        let app = Router::new()
            .route("/api/{method}", any(web_api))
            .route("/link/", get(socket_mode))
            .route("/response/{id}", post(response_url))
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake Slack server");
        });
        Self { shared, server }
    }

    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.shared.addr)
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        self.shared
            .lock()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    pub async fn wait_for_call(
        &self,
        method: &str,
        pred: impl Fn(&Call) -> bool,
        timeout: Duration,
    ) -> Call {
        let found = self
            .shared
            .wait_until(timeout, |w| {
                w.calls
                    .iter()
                    .find(|c| c.method == method && pred(c))
                    .cloned()
            })
            .await;
        found.unwrap_or_else(|| {
            let seen: Vec<String> = self
                .calls()
                .iter()
                .map(|c| format!("{} {} {:?}", c.method, c.params, c.error))
                .collect();
            panic!("no matching {method} call within {timeout:?}; calls: {seen:#?}")
        })
    }

    pub fn fail_next(&self, method: &str, failure: Failure) {
        self.fail_times(method, failure, 1);
    }

    pub fn fail_times(&self, method: &str, failure: Failure, times: usize) {
        self.shared
            .lock()
            .failures
            .push((method.into(), failure, times));
    }

    pub fn set_rate_limit(&self, method: &str, calls: u32, per: Duration) {
        self.shared
            .lock()
            .limits
            .insert(method.into(), (calls, per));
    }

    pub fn revoke_tokens(&self) {
        self.shared.lock().revoked = true;
    }

    pub fn messages(&self, channel: &str) -> Vec<Value> {
        self.shared
            .lock()
            .messages
            .get(channel)
            .cloned()
            .unwrap_or_default()
    }

    pub fn ephemerals(&self) -> Vec<Value> {
        self.shared.lock().ephemerals.clone()
    }

    pub fn responses(&self) -> Vec<Value> {
        self.shared.lock().responses.clone()
    }

    pub fn members(&self, channel: &str) -> Vec<String> {
        self.shared.lock().channels[channel]
            .members
            .iter()
            .cloned()
            .collect()
    }

    pub fn add_member(&self, channel: &str, user: &str) {
        let mut world = self.shared.lock();
        let channel = world.channels.get_mut(channel).expect("a known channel");
        channel.members.insert(user.into());
    }

    pub fn user(&self, id: &str) -> Option<FakeUser> {
        self.shared
            .lock()
            .users
            .iter()
            .find(|u| u.id == id)
            .cloned()
    }

    // -- Socket Mode --------------------------------------------------------------------------

    pub fn connections(&self) -> usize {
        self.shared.lock().connections.len()
    }

    pub fn connects(&self) -> usize {
        self.shared.lock().connects
    }

    pub async fn wait_for_connections(&self, n: usize, timeout: Duration) {
        let reached = self
            .shared
            .wait_until(timeout, |w| (w.connections.len() >= n).then_some(()))
            .await;
        assert!(
            reached.is_some(),
            "{} Socket Mode connection(s) after {timeout:?}, wanted {n}",
            self.connections()
        );
    }

    /// Waits until `n` connections have been opened in all, closed ones included.
    pub async fn wait_for_connects(&self, n: usize, timeout: Duration) {
        let reached = self
            .shared
            .wait_until(timeout, |w| (w.connects >= n).then_some(()))
            .await;
        assert!(
            reached.is_some(),
            "{} Socket Mode connection(s) ever opened after {timeout:?}, wanted {n}",
            self.connects()
        );
    }

    /// Sends an envelope on one open connection (in turn) and, for an event, schedules its
    /// redelivery if it is not acked in time. Panics when no connection is open: a test waits
    /// for one first.
    pub fn send_envelope(
        &self,
        kind: &str,
        payload: Value,
        accepts_response_payload: bool,
    ) -> String {
        let id = {
            let mut world = self.shared.lock();
            world.next_id += 1;
            let id = format!(
                "{:08x}-fake-4e5f-envelope-{:06}",
                world.next_id, world.next_id
            );
            world.envelopes.insert(
                id.clone(),
                Envelope {
                    kind: kind.into(),
                    payload,
                    accepts_response_payload,
                    first_sent: Instant::now(),
                    attempts: 0,
                    acked: false,
                },
            );
            id
        };
        assert!(
            self.shared.deliver(&id),
            "no Socket Mode connection to send {kind} on"
        );
        if kind == "events_api" {
            tokio::spawn(redeliver(Arc::clone(&self.shared), id.clone()));
        }
        id
    }

    pub fn send_slash_command(
        &self,
        user: &str,
        channel: &str,
        command: &str,
        text: &str,
    ) -> String {
        let payload = slash_command(&self.response_url(), user, channel, command, text);
        self.send_envelope("slash_commands", payload, true)
    }

    pub fn send_app_mention(&self, user: &str, channel: &str, text: &str) -> String {
        let payload = self.event_callback(app_mention(user, channel, text));
        self.send_envelope("events_api", payload, false)
    }

    pub fn send_direct_message(&self, user: &str, channel: &str, text: &str) -> String {
        let payload = self.event_callback(direct_message(user, channel, text));
        self.send_envelope("events_api", payload, false)
    }

    /// A press of the button with `action_id` on the bot's message `message_ts`.
    pub fn send_button_press(
        &self,
        user: &str,
        channel: &str,
        message_ts: &str,
        action_id: &str,
        value: &str,
    ) -> String {
        let message = self
            .messages(channel)
            .into_iter()
            .find(|m| m["ts"] == message_ts)
            .expect("the pressed message was posted by the bot");
        let url = self.response_url();
        let id = url.rsplit('/').next().unwrap_or_default().to_owned();
        self.shared
            .lock()
            .pressed
            .insert(id, (channel.into(), message_ts.into()));
        let payload = block_action(&url, user, channel, &message, action_id, value);
        self.send_envelope("interactive", payload, false)
    }

    /// A public channel with every user of the workspace in it, the bot included.
    pub fn add_channel(&self, id: &str, name: &str) {
        let mut world = self.shared.lock();
        let members = world.users.iter().map(|u| u.id.clone()).collect();
        let channel = FakeChannel {
            name: name.into(),
            is_im: false,
            is_private: false,
            is_general: false,
            is_archived: false,
            members,
        };
        world.channels.insert(id.into(), channel);
    }

    /// Archives `channel`: it keeps its members, but nothing can be posted there.
    pub fn archive_channel(&self, channel: &str) {
        let mut world = self.shared.lock();
        let channel = world
            .channels
            .get_mut(channel)
            .expect("a channel of the world");
        channel.is_archived = true;
    }

    /// `user` joins `channel` and the bot hears of it (`member_joined_channel`).
    pub fn send_member_joined(&self, user: &str, channel: &str) -> String {
        self.add_member(channel, user);
        let event = json!({
            "type": "member_joined_channel", "user": user, "channel": channel,
            "channel_type": "C", "team": ids::TEAM, "event_ts": format!("{}.000400", unix_now()),
        });
        let payload = self.event_callback(event);
        self.send_envelope("events_api", payload, false)
    }

    /// Wraps an event as the Events API delivers it.
    pub fn event_callback(&self, event: Value) -> Value {
        let n = {
            let mut world = self.shared.lock();
            world.next_id += 1;
            world.next_id
        };
        json!({
            "token": "legacy-verification-token",
            "team_id": ids::TEAM,
            "api_app_id": ids::APP,
            "event": event,
            "type": "event_callback",
            "event_id": format!("Ev0FAKE{n:05}"),
            "event_time": unix_now(),
            "authorizations": [{
                "enterprise_id": null, "team_id": ids::TEAM, "user_id": ids::BOT_USER,
                "is_bot": true, "is_enterprise_install": false,
            }],
            "is_ext_shared_channel": false,
            "event_context": format!("4-fake-context-{n}"),
        })
    }

    /// A fresh response URL on this fake.
    pub fn response_url(&self) -> String {
        let n = {
            let mut world = self.shared.lock();
            world.next_id += 1;
            world.next_id
        };
        format!("http://{}/response/{n}", self.shared.addr)
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.lock().deliveries.clone()
    }

    pub fn acks(&self) -> Vec<Ack> {
        self.shared.lock().acks.clone()
    }

    pub async fn wait_for_ack(&self, envelope_id: &str, timeout: Duration) -> Ack {
        let found = self
            .shared
            .wait_until(timeout, |w| {
                w.acks
                    .iter()
                    .find(|a| a.envelope_id == envelope_id)
                    .cloned()
            })
            .await;
        found.unwrap_or_else(|| panic!("envelope {envelope_id} not acked within {timeout:?}"))
    }

    pub fn disconnect(&self, reason: &str) {
        let frame = json!({
            "type": "disconnect",
            "reason": reason,
            "debug_info": {"host": "applink-fake-1"},
        })
        .to_string();
        for connection in self.shared.lock().connections.values() {
            let _ = connection.tx.send(Outbound::Text(frame.clone()));
        }
    }

    pub fn drop_connections(&self) {
        for connection in self.shared.lock().connections.values() {
            let _ = connection.tx.send(Outbound::Drop);
        }
    }
}

fn default_world() -> World {
    let user = |id: &str, name: &str, is_owner: bool, is_admin: bool, is_bot: bool| FakeUser {
        id: id.into(),
        name: name.into(),
        display_name: String::new(),
        is_owner,
        is_admin,
        is_bot,
    };
    let mut owner = user(ids::OWNER, "olivia", true, true, false);
    owner.display_name = "Olivia".into();
    let users = vec![
        user(ids::BOT_USER, "cogbox", false, false, true),
        owner,
        user(ids::ADMIN, "adam", false, true, false),
        user(ids::MEMBER, "mia", false, false, false),
        user(ids::TARGET, "tom", false, false, false),
    ];
    let everyone: BTreeSet<String> = users.iter().map(|u| u.id.clone()).collect();
    let channel = |name: &str, members: BTreeSet<String>| FakeChannel {
        name: name.into(),
        is_im: false,
        is_private: false,
        is_general: false,
        is_archived: false,
        members,
    };
    let mut channels = BTreeMap::new();
    let mut general = channel("general", everyone.clone());
    general.is_general = true;
    channels.insert(ids::GENERAL.to_string(), general);
    channels.insert(ids::RANDOM.to_string(), channel("random", everyone.clone()));
    let mut quiet = everyone;
    quiet.remove(ids::BOT_USER);
    channels.insert(ids::QUIET.to_string(), channel("quiet", quiet));
    let mut dm = channel("", [ids::MEMBER, ids::BOT_USER].map(String::from).into());
    dm.is_im = true;
    dm.is_private = true;
    channels.insert(ids::DM.to_string(), dm);
    World {
        users,
        channels,
        limits: RATE_TIERS
            .iter()
            .map(|(m, n, per)| (m.to_string(), (*n, *per)))
            .collect(),
        next_ts: 1,
        ..World::default()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, World> {
        // A panicking test predicate must not wedge the server for the rest of the test.
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    async fn wait_until<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&World) -> Option<T>,
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

    /// Sends (or resends) an envelope on the next open connection; false when none is open.
    fn deliver(&self, id: &str) -> bool {
        let mut world = self.lock();
        let open: Vec<u64> = world.connections.keys().copied().collect();
        if open.is_empty() {
            return false;
        }
        let connection = open[world.next_connection % open.len()];
        world.next_connection += 1;
        let envelope = world.envelopes.get_mut(id).expect("a known envelope");
        let retry_attempt = envelope.attempts;
        envelope.attempts += 1;
        let frame = json!({
            "envelope_id": id,
            "payload": envelope.payload,
            "type": envelope.kind,
            "accepts_response_payload": envelope.accepts_response_payload,
            "retry_attempt": retry_attempt,
            "retry_reason": if retry_attempt == 0 { "" } else { "timeout" },
        });
        let kind = envelope.kind.clone();
        let _ = world.connections[&connection]
            .tx
            .send(Outbound::Text(frame.to_string()));
        world.deliveries.push(Delivery {
            envelope_id: id.into(),
            kind,
            retry_attempt,
            connection,
            at: Instant::now(),
        });
        drop(world);
        self.notify();
        true
    }
}

/// Resends an envelope each time the ack timeout passes without an ack, as Slack does.
async fn redeliver(shared: Arc<Shared>, id: String) {
    for _ in 0..shared.config.max_retries {
        tokio::time::sleep(shared.config.ack_timeout).await;
        if shared.lock().envelopes.get(&id).is_none_or(|e| e.acked) {
            return;
        }
        shared.deliver(&id);
    }
}

// ---------------------------------------------------------------------------------------------
// Web API

fn slack_json(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn ok(mut body: Value) -> Value {
    body["ok"] = json!(true);
    body
}

fn error(code: &str) -> Value {
    json!({"ok": false, "error": code})
}

/// The parameters of a request: the query string, then a form or JSON body over it.
fn params(
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<(Map<String, Value>, Vec<&'static str>), &'static str> {
    let mut out = Map::new();
    let mut warnings = Vec::new();
    if let Some(query) = query {
        for (k, v) in form_urlencoded(query.as_bytes()) {
            out.insert(k, Value::String(v));
        }
    }
    if *method != Method::POST || body.is_empty() {
        return Ok((out, warnings));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        for (k, v) in form_urlencoded(body) {
            out.insert(k, Value::String(v));
        }
    } else if content_type.starts_with("application/json") {
        if !content_type.contains("charset") {
            warnings.push("missing_charset");
        }
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            return Err("invalid_json");
        };
        let Value::Object(object) = value else {
            return Err("json_not_object");
        };
        // Slack reads the token only from the header when the body is JSON.
        out.extend(object.into_iter().filter(|(k, _)| k != "token"));
    } else if content_type.is_empty() {
        return Err("missing_post_type");
    } else {
        return Err("invalid_post_type");
    }
    Ok((out, warnings))
}

/// Decodes an `application/x-www-form-urlencoded` body or query string.
pub fn form_urlencoded(bytes: &[u8]) -> Vec<(String, String)> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let decode = |s: &str| -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi * 16 + lo);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                },
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(bytes)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::to_owned)
}

/// Which token a method takes, and the scope it needs.
fn requirement(
    method: &str,
    params: &Map<String, Value>,
    world: &World,
) -> Option<(TokenKind, Option<&'static str>)> {
    Some(match method {
        "auth.test" => (TokenKind::Bot, None),
        "apps.connections.open" => (TokenKind::App, None),
        "chat.postMessage" | "chat.postEphemeral" | "chat.update" => {
            (TokenKind::Bot, Some("chat:write"))
        }
        "users.info" => (TokenKind::Bot, Some("users:read")),
        "conversations.open" => (TokenKind::Bot, Some("im:write")),
        "conversations.info" => {
            let private = str_param(params, "channel")
                .and_then(|c| world.channels.get(c))
                .is_some_and(|c| c.is_private);
            (
                TokenKind::Bot,
                Some(if private {
                    "groups:read"
                } else {
                    "channels:read"
                }),
            )
        }
        // Public channels need channels:read; asking for private ones needs groups:read too.
        "users.conversations" => {
            let private = str_param(params, "types").is_some_and(|t| t.contains("private"));
            (
                TokenKind::Bot,
                Some(if private {
                    "groups:read"
                } else {
                    "channels:read"
                }),
            )
        }
        "conversations.kick" => {
            let private = str_param(params, "channel")
                .and_then(|c| world.channels.get(c))
                .is_some_and(|c| c.is_private);
            (
                TokenKind::Bot,
                Some(if private {
                    "groups:write"
                } else {
                    "channels:manage"
                }),
            )
        }
        _ => return None,
    })
}

fn str_param<'a>(params: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    params
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

async fn web_api(
    State(shared): State<Arc<Shared>>,
    Path(method): Path<String>,
    http_method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = params(&http_method, &headers, query.as_deref(), &body);
    let (mut params, warnings) = parsed.clone().unwrap_or_default();
    let token = bearer(&headers).or_else(|| str_param(&params, "token").map(str::to_owned));
    params.remove("token");
    if let Some(Value::String(blocks)) = params.get("blocks").cloned() {
        // Form bodies carry blocks as a JSON string.
        match serde_json::from_str::<Value>(&blocks) {
            Ok(v) => {
                params.insert("blocks".into(), v);
            }
            Err(_) => {
                params.insert("blocks".into(), Value::Null);
            }
        }
    }
    let (status, mut answer, retry_after) = {
        let mut world = shared.lock();
        let answer = serve(
            &shared,
            &mut world,
            &method,
            &params,
            token.as_deref(),
            parsed.err(),
        );
        let (status, answer, retry_after) = answer;
        world.calls.push(Call {
            method: method.clone(),
            params: Value::Object(params),
            token,
            error: answer["error"].as_str().map(str::to_owned),
            status: status.as_u16(),
            at: Instant::now(),
        });
        (status, answer, retry_after)
    };
    shared.notify();
    if !warnings.is_empty() && answer["ok"] == true {
        answer["warning"] = json!(warnings.join(","));
        answer["response_metadata"] = json!({"warnings": warnings});
    }
    let mut response = slack_json(status, answer);
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            seconds.to_string().parse().expect("a number"),
        );
    }
    response
}

type Served = (StatusCode, Value, Option<u64>);

fn serve(
    shared: &Shared,
    world: &mut World,
    method: &str,
    params: &Map<String, Value>,
    token: Option<&str>,
    bad_body: Option<&'static str>,
) -> Served {
    let fine = |v: Value| (StatusCode::OK, v, None);
    let Some((wanted, scope)) = requirement(method, params, world) else {
        let mut body = error("unknown_method");
        body["req_method"] = json!(method);
        return (StatusCode::NOT_FOUND, body, None);
    };
    if let Some(code) = bad_body {
        return fine(error(code));
    }
    let kind = match token {
        None => return fine(error("not_authed")),
        Some(_) if world.revoked => return fine(error("token_revoked")),
        Some(t) if t == shared.config.bot_token => TokenKind::Bot,
        Some(t) if t == shared.config.app_token => TokenKind::App,
        Some(_) => return fine(error("invalid_auth")),
    };
    if kind != wanted {
        return fine(error("not_allowed_token_type"));
    }
    if let Some(scope) = scope {
        if !shared.config.scopes.iter().any(|s| s == scope) {
            let mut body = error("missing_scope");
            body["needed"] = json!(scope);
            body["provided"] = json!(shared.config.scopes.join(","));
            return fine(body);
        }
    }
    if let Some(at) = world
        .failures
        .iter()
        .position(|(m, _, n)| m == method && *n > 0)
    {
        let failure = world.failures[at].1.clone();
        world.failures[at].2 -= 1;
        return match failure {
            Failure::Error(code) => fine(error(&code)),
            Failure::RateLimited(seconds) => (
                StatusCode::TOO_MANY_REQUESTS,
                error("ratelimited"),
                Some(u64::from(seconds)),
            ),
            Failure::Status(status) => (
                StatusCode::from_u16(status).expect("a status"),
                json!({}),
                None,
            ),
        };
    }
    if let Some(retry_after) = rate_limited(world, method, params) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            error("ratelimited"),
            Some(retry_after),
        );
    }
    let answer = match method {
        "auth.test" => Ok(json!({
            "url": format!("https://{}.slack.com/", ids::TEAM_DOMAIN),
            "team": "Cogbox Test", "user": "cogbox", "team_id": ids::TEAM,
            "user_id": ids::BOT_USER, "bot_id": ids::BOT_ID, "is_enterprise_install": false,
        })),
        "apps.connections.open" => {
            world.next_id += 1;
            let ticket = format!("fake-ticket-{}", world.next_id);
            world.tickets.insert(ticket.clone(), false);
            Ok(
                json!({"url": format!("ws://{}/link/?ticket={ticket}&app_id={}", shared.addr, ids::APP)}),
            )
        }
        "chat.postMessage" => post_message(world, params),
        "chat.postEphemeral" => post_ephemeral(world, params),
        "chat.update" => update(world, params),
        "users.info" => str_param(params, "user")
            .and_then(|id| world.users.iter().find(|u| u.id == id))
            .map(|u| json!({"user": user_json(u)}))
            .ok_or_else(|| error("user_not_found")),
        "conversations.kick" => kick(world, params),
        "conversations.open" => open_im(world, params),
        "conversations.info" => channel_of(world, params).map(|(id, c)| {
            json!({"channel": {
                "id": id, "name": c.name, "created": 1_700_000_000, "is_channel": !c.is_private,
                "is_im": c.is_im, "is_private": c.is_private, "is_general": c.is_general,
                "is_archived": c.is_archived, "is_member": c.members.contains(ids::BOT_USER),
            }})
        }),
        "users.conversations" => conversations_of(world, params),
        _ => unreachable!("requirement() lists every served method"),
    };
    fine(match answer {
        Ok(body) => ok(body),
        Err(body) => body,
    })
}

/// Counts the call in its method's window; answers the seconds to wait when over the limit.
fn rate_limited(world: &mut World, method: &str, params: &Map<String, Value>) -> Option<u64> {
    let &(calls, per) = world.limits.get(method)?;
    let key = if method == "chat.postMessage" {
        str_param(params, "channel").unwrap_or("").to_owned()
    } else {
        String::new()
    };
    let now = Instant::now();
    let window = world.windows.entry((method.into(), key)).or_default();
    while window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= per)
    {
        window.pop_front();
    }
    if window.len() as u32 >= calls {
        let oldest = *window.front().expect("a full window is not empty");
        let wait = per.saturating_sub(now.duration_since(oldest));
        return Some(wait.as_secs_f64().ceil().max(1.0) as u64);
    }
    window.push_back(now);
    None
}

fn channel_of<'a>(
    world: &'a World,
    params: &Map<String, Value>,
) -> Result<(&'a str, &'a FakeChannel), Value> {
    str_param(params, "channel")
        .and_then(|id| world.channels.get_key_value(id))
        .map(|(id, c)| (id.as_str(), c))
        .ok_or_else(|| error("channel_not_found"))
}

/// `text` or valid `blocks`, as chat.postMessage, chat.postEphemeral and chat.update want them.
fn content(params: &Map<String, Value>) -> Result<(String, Option<Value>), Value> {
    let text = str_param(params, "text").unwrap_or("").to_owned();
    let blocks = match params.get("blocks") {
        None => None,
        Some(Value::Null) => return Err(error("invalid_blocks_format")),
        Some(blocks) => {
            let problems = block_problems(blocks);
            if !problems.is_empty() {
                let mut body = error("invalid_blocks");
                body["errors"] = json!(problems);
                return Err(body);
            }
            Some(blocks.clone())
        }
    };
    if text.is_empty() && blocks.is_none() {
        return Err(error("no_text"));
    }
    if text.chars().count() > MAX_MESSAGE_TEXT {
        return Err(error("msg_too_long"));
    }
    Ok((text, blocks))
}

/// What Slack says about blocks it refuses, one line per problem.
pub fn block_problems(blocks: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(blocks) = blocks.as_array() else {
        return vec!["blocks must be an array".into()];
    };
    if blocks.len() > MAX_BLOCKS {
        out.push(format!(
            "no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]"
        ));
    }
    let text_len = |t: &Value| t["text"].as_str().map_or(0, |s| s.chars().count());
    let text_ok = |t: &Value, plain_only: bool| match t["type"].as_str() {
        Some("plain_text") => t["text"].is_string(),
        Some("mrkdwn") => !plain_only && t["text"].is_string(),
        _ => false,
    };
    for (i, block) in blocks.iter().enumerate() {
        let at = format!("[json-pointer:/blocks/{i}]");
        match block["type"].as_str() {
            Some("section") => {
                let has_text = !block["text"].is_null();
                if has_text
                    && (!text_ok(&block["text"], false)
                        || text_len(&block["text"]) > MAX_SECTION_TEXT
                        || text_len(&block["text"]) == 0)
                {
                    out.push(format!(
                        "must be 1-{MAX_SECTION_TEXT} characters of text {at}/text"
                    ));
                }
                let fields = block["fields"].as_array();
                if !has_text && fields.is_none_or(|f| f.is_empty()) {
                    out.push(format!("must provide text or fields {at}"));
                }
                if let Some(fields) = fields {
                    if fields.len() > MAX_FIELDS {
                        out.push(format!(
                            "no more than {MAX_FIELDS} items allowed {at}/fields"
                        ));
                    }
                    for (j, f) in fields.iter().enumerate() {
                        if !text_ok(f, false) || text_len(f) == 0 || text_len(f) > MAX_FIELD_TEXT {
                            out.push(format!(
                                "must be 1-{MAX_FIELD_TEXT} characters of text {at}/fields/{j}"
                            ));
                        }
                    }
                }
            }
            Some("header") => {
                if !text_ok(&block["text"], true) || text_len(&block["text"]) > MAX_HEADER_TEXT {
                    out.push(format!(
                        "must be plain_text of at most {MAX_HEADER_TEXT} characters {at}/text"
                    ));
                }
            }
            Some("context") => {
                if block["elements"]
                    .as_array()
                    .is_none_or(|e| e.is_empty() || e.len() > 10)
                {
                    out.push(format!("must have 1-10 elements {at}/elements"));
                }
            }
            Some("divider") => {}
            Some("actions") => {
                let elements = block["elements"].as_array();
                match elements {
                    Some(e) if !e.is_empty() && e.len() <= MAX_ACTION_ELEMENTS => {}
                    _ => out.push(format!(
                        "must have 1-{MAX_ACTION_ELEMENTS} elements {at}/elements"
                    )),
                }
                let mut action_ids = BTreeSet::new();
                for (j, e) in elements.into_iter().flatten().enumerate() {
                    let at = format!("{at}/elements/{j}");
                    if e["type"] != "button" {
                        out.push(format!("only buttons are modelled here {at}"));
                        continue;
                    }
                    if !text_ok(&e["text"], true)
                        || text_len(&e["text"]) == 0
                        || text_len(&e["text"]) > MAX_BUTTON_TEXT
                    {
                        out.push(format!(
                            "must be plain_text of 1-{MAX_BUTTON_TEXT} characters {at}/text"
                        ));
                    }
                    if let Some(id) = e["action_id"].as_str() {
                        if id.len() > MAX_ACTION_ID {
                            out.push(format!(
                                "must be at most {MAX_ACTION_ID} characters {at}/action_id"
                            ));
                        }
                        if !action_ids.insert(id.to_owned()) {
                            out.push(format!(
                                "action_id must be unique in a block {at}/action_id"
                            ));
                        }
                    }
                    if e["value"]
                        .as_str()
                        .is_some_and(|v| v.len() > MAX_BUTTON_VALUE)
                    {
                        out.push(format!(
                            "must be at most {MAX_BUTTON_VALUE} characters {at}/value"
                        ));
                    }
                    if let Some(style) = e["style"].as_str() {
                        if style != "primary" && style != "danger" {
                            out.push(format!("must be primary or danger {at}/style"));
                        }
                    }
                }
            }
            _ => out.push(format!("unsupported block type {at}/type")),
        }
    }
    out
}

fn next_ts(world: &mut World) -> String {
    world.next_ts += 1;
    format!("{}.{:06}", unix_now(), world.next_ts)
}

fn post_message(world: &mut World, params: &Map<String, Value>) -> Result<Value, Value> {
    let (channel_id, channel) = channel_of(world, params)?;
    if channel.is_archived {
        return Err(error("is_archived"));
    }
    if !channel.members.contains(ids::BOT_USER) {
        return Err(error("not_in_channel"));
    }
    let channel_id = channel_id.to_owned();
    let (text, blocks) = content(params)?;
    let ts = next_ts(world);
    let mut message = json!({
        "type": "message", "text": text, "user": ids::BOT_USER, "bot_id": ids::BOT_ID,
        "app_id": ids::APP, "team": ids::TEAM, "ts": ts,
    });
    if let Some(blocks) = blocks {
        message["blocks"] = blocks;
    }
    world
        .messages
        .entry(channel_id.clone())
        .or_default()
        .push(message.clone());
    Ok(json!({"channel": channel_id, "ts": ts, "message": message}))
}

fn post_ephemeral(world: &mut World, params: &Map<String, Value>) -> Result<Value, Value> {
    let (channel_id, channel) = channel_of(world, params)?;
    if channel.is_archived {
        return Err(error("is_archived"));
    }
    let user = str_param(params, "user").ok_or_else(|| error("user_not_found"))?;
    if !world.users.iter().any(|u| u.id == user) {
        return Err(error("user_not_found"));
    }
    if !channel.members.contains(user) {
        return Err(error("user_not_in_channel"));
    }
    if !channel.members.contains(ids::BOT_USER) {
        return Err(error("not_in_channel"));
    }
    let (channel_id, user) = (channel_id.to_owned(), user.to_owned());
    let (text, blocks) = content(params)?;
    let ts = next_ts(world);
    world.ephemerals.push(
        json!({"channel": channel_id, "user": user, "text": text, "blocks": blocks, "ts": ts}),
    );
    Ok(json!({"message_ts": ts}))
}

fn update(world: &mut World, params: &Map<String, Value>) -> Result<Value, Value> {
    let (channel_id, _) = channel_of(world, params)?;
    let channel_id = channel_id.to_owned();
    let ts = str_param(params, "ts")
        .ok_or_else(|| error("message_not_found"))?
        .to_owned();
    let (text, blocks) = content(params)?;
    let message = world
        .messages
        .get_mut(&channel_id)
        .and_then(|m| m.iter_mut().find(|m| m["ts"] == ts.as_str()))
        .ok_or_else(|| error("message_not_found"))?;
    if message["user"] != ids::BOT_USER {
        return Err(error("cant_update_message"));
    }
    message["text"] = json!(text);
    match blocks {
        Some(blocks) => message["blocks"] = blocks,
        None => {
            message.as_object_mut().expect("an object").remove("blocks");
        }
    }
    message["edited"] = json!({"user": ids::BOT_USER, "ts": ts});
    Ok(json!({"channel": channel_id, "ts": ts, "text": text, "message": message.clone()}))
}

fn kick(world: &mut World, params: &Map<String, Value>) -> Result<Value, Value> {
    let (channel_id, channel) = channel_of(world, params)?;
    let user = str_param(params, "user").ok_or_else(|| error("user_not_found"))?;
    if !world.users.iter().any(|u| u.id == user) {
        return Err(error("user_not_found"));
    }
    if user == ids::BOT_USER {
        return Err(error("cant_kick_self"));
    }
    if channel.is_im {
        return Err(error("method_not_supported_for_channel_type"));
    }
    if channel.is_general {
        return Err(error("cant_kick_from_general"));
    }
    // Harsher than Slack's documentation says outright: an app removes members only from
    // channels it is in itself.
    if !channel.members.contains(ids::BOT_USER) {
        return Err(error("not_in_channel"));
    }
    if !channel.members.contains(user) {
        return Err(error("not_in_channel"));
    }
    let (channel_id, user) = (channel_id.to_owned(), user.to_owned());
    world
        .channels
        .get_mut(&channel_id)
        .expect("found above")
        .members
        .remove(&user);
    Ok(json!({}))
}

/// The channels `user` is in that the bot can see: public ones, and private ones it shares.
/// Only `public_channel` and `private_channel` types are modelled; one page holds them all.
fn conversations_of(world: &World, params: &Map<String, Value>) -> Result<Value, Value> {
    let user = str_param(params, "user").ok_or_else(|| error("user_not_found"))?;
    if !world.users.iter().any(|u| u.id == user) {
        return Err(error("user_not_found"));
    }
    let types = str_param(params, "types").unwrap_or("public_channel");
    let channels: Vec<Value> = world
        .channels
        .iter()
        .filter(|(_, c)| !c.is_im && c.members.contains(user))
        .filter(|(_, c)| {
            if c.is_private {
                types.contains("private_channel") && c.members.contains(ids::BOT_USER)
            } else {
                types.contains("public_channel")
            }
        })
        .map(|(id, c)| {
            json!({
                "id": id, "name": c.name, "created": 1_700_000_000, "creator": ids::OWNER,
                "is_channel": !c.is_private, "is_group": false, "is_im": false,
                "is_private": c.is_private, "is_archived": c.is_archived, "is_general": c.is_general,
                "is_member": c.members.contains(ids::BOT_USER),
            })
        })
        .collect();
    Ok(json!({"channels": channels, "response_metadata": {"next_cursor": ""}}))
}

/// A direct message with one member (`users`), opened once and then found again.
fn open_im(world: &mut World, params: &Map<String, Value>) -> Result<Value, Value> {
    // A comma-separated list in a form or query, or (as slack-morphism sends it) a JSON array.
    let users: Vec<&str> = match params.get("users") {
        Some(Value::String(list)) => list.split(',').filter(|u| !u.is_empty()).collect(),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let user = match users.as_slice() {
        [] => return Err(error("users_list_not_supplied")),
        [user] => *user,
        _ => return Err(error("not_enough_users")), // a group DM needs mpim:write: not modelled
    };
    if !world.users.iter().any(|u| u.id == user) {
        return Err(error("user_not_found"));
    }
    let found = world
        .channels
        .iter()
        .find(|(_, c)| c.is_im && c.members.contains(user))
        .map(|(id, _)| id.clone());
    let id = found.unwrap_or_else(|| {
        let id = format!("D0{}", &user[1..]);
        let members = [user, ids::BOT_USER].map(String::from).into();
        let dm = FakeChannel {
            name: String::new(),
            is_im: true,
            is_private: true,
            is_general: false,
            is_archived: false,
            members,
        };
        world.channels.insert(id.clone(), dm);
        id
    });
    Ok(json!({"channel": {"id": id}}))
}

async fn response_url(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    let parsed = serde_json::from_slice::<Value>(&body)
        .ok()
        .filter(|v| v.is_object());
    let (status, answer) = {
        let mut world = shared.lock();
        let uses = {
            let uses = world.response_uses.entry(id.clone()).or_default();
            *uses += 1;
            *uses
        };
        let (status, answer) = match parsed {
            _ if uses > RESPONSE_URL_USES => (StatusCode::NOT_FOUND, error("used_url")),
            Some(v) if json_body && (v["text"].is_string() || v["blocks"].is_array()) => {
                // Harsher than Slack's current docs, as its interactive messages once were:
                // an answer to a press replaces the pressed message unless it says not to.
                let replaces = v["replace_original"] != false;
                if let Some((channel, ts)) = world.pressed.get(&id).cloned().filter(|_| replaces) {
                    let pressed = world
                        .messages
                        .get_mut(&channel)
                        .and_then(|m| m.iter_mut().find(|m| m["ts"] == ts.as_str()));
                    if let Some(message) = pressed {
                        message["text"] = v["text"].clone();
                        message["blocks"] = v.get("blocks").cloned().unwrap_or(json!([]));
                    }
                }
                world.responses.push(v);
                (StatusCode::OK, json!({"ok": true}))
            }
            _ => (StatusCode::BAD_REQUEST, error("invalid_payload")),
        };
        world.calls.push(Call {
            method: "response_url".into(),
            params: serde_json::from_slice(&body).unwrap_or(Value::Null),
            token: None,
            error: answer["error"].as_str().map(str::to_owned),
            status: status.as_u16(),
            at: Instant::now(),
        });
        (status, answer)
    };
    shared.notify();
    slack_json(status, answer)
}

// ---------------------------------------------------------------------------------------------
// Socket Mode

async fn socket_mode(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    let ticket = form_urlencoded(query.unwrap_or_default().as_bytes())
        .into_iter()
        .find(|(k, _)| k == "ticket")
        .map(|(_, v)| v);
    {
        let mut world = shared.lock();
        // A ticket opens one connection, once.
        match ticket.and_then(|t| world.tickets.get_mut(&t)) {
            Some(used) if !*used => *used = true,
            _ => return (StatusCode::UNAUTHORIZED, "invalid ticket").into_response(),
        }
    }
    ws.on_upgrade(move |socket| run_connection(shared, socket))
}

async fn run_connection(shared: Arc<Shared>, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let id = {
        let mut world = shared.lock();
        world.connects += 1;
        let id = world.connects as u64;
        world.connections.insert(id, Connection { tx });
        id
    };
    let hello = json!({
        "type": "hello",
        "num_connections": shared.lock().connections.len(),
        "debug_info": {"host": "applink-fake-1", "build_number": 1, "approximate_connection_time": 18060},
        "connection_info": {"app_id": ids::APP},
    });
    shared.notify();
    let mut open = socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_ok();
    while open {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Outbound::Text(text)) => open = socket.send(Message::Text(text.into())).await.is_ok(),
                Some(Outbound::Drop) | None => open = false,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => receive_frame(&shared, id, text.as_str()),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => open = false,
                Some(Ok(_)) => {} // Pings are answered by the WebSocket layer.
            },
        }
    }
    shared.lock().connections.remove(&id);
    shared.notify();
}

fn receive_frame(shared: &Shared, connection: u64, text: &str) {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let Some(envelope_id) = frame["envelope_id"].as_str() else {
        return;
    };
    let mut world = shared.lock();
    let after = world.envelopes.get_mut(envelope_id).map(|e| {
        e.acked = true;
        e.first_sent.elapsed()
    });
    world.acks.push(Ack {
        envelope_id: envelope_id.into(),
        payload: frame.get("payload").cloned(),
        connection,
        at: Instant::now(),
        after,
    });
    drop(world);
    shared.notify();
}

// ---------------------------------------------------------------------------------------------
// Payloads

pub fn user_json(user: &FakeUser) -> Value {
    json!({
        "id": user.id, "team_id": ids::TEAM, "name": user.name, "deleted": false,
        "real_name": user.name, "tz": "Europe/Berlin", "tz_offset": 3600,
        "profile": {"real_name": user.name, "display_name": user.display_name, "team": ids::TEAM},
        "is_admin": user.is_admin, "is_owner": user.is_owner, "is_primary_owner": user.is_owner,
        "is_restricted": false, "is_ultra_restricted": false, "is_bot": user.is_bot,
        "is_app_user": false, "updated": 1_700_000_000,
    })
}

fn user_name(user: &str) -> String {
    default_world()
        .users
        .iter()
        .find(|u| u.id == user)
        .map_or_else(|| "someone".into(), |u| u.name.clone())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// A slash command's payload; with `should_escape` on, Slack writes members as `<@U123|name>`.
pub fn slash_command(
    response_url: &str,
    user: &str,
    channel: &str,
    command: &str,
    text: &str,
) -> Value {
    json!({
        "token": "legacy-verification-token",
        "team_id": ids::TEAM, "team_domain": ids::TEAM_DOMAIN,
        "channel_id": channel, "channel_name": "random",
        "user_id": user, "user_name": user_name(user),
        "command": command, "text": text,
        "api_app_id": ids::APP, "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": format!("1337.42.fake-trigger-{}", unix_now()),
    })
}

pub fn app_mention(user: &str, channel: &str, text: &str) -> Value {
    let ts = format!("{}.000100", unix_now());
    json!({
        "type": "app_mention", "user": user, "text": text, "ts": ts,
        "channel": channel, "event_ts": ts, "team": ids::TEAM,
    })
}

pub fn direct_message(user: &str, channel: &str, text: &str) -> Value {
    let ts = format!("{}.000200", unix_now());
    json!({
        "type": "message", "channel_type": "im", "user": user, "text": text, "ts": ts,
        "channel": channel, "event_ts": ts, "team": ids::TEAM,
    })
}

pub fn block_action(
    response_url: &str,
    user: &str,
    channel: &str,
    message: &Value,
    action_id: &str,
    value: &str,
) -> Value {
    let ts = message["ts"].as_str().unwrap_or_default();
    json!({
        "type": "block_actions",
        "user": {"id": user, "username": user_name(user), "name": user_name(user), "team_id": ids::TEAM},
        "api_app_id": ids::APP,
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false},
        "trigger_id": format!("1337.42.fake-trigger-{}", unix_now()),
        "team": {"id": ids::TEAM, "domain": ids::TEAM_DOMAIN},
        "enterprise": null, "is_enterprise_install": false,
        "channel": {"id": channel, "name": "random"},
        "message": message,
        "response_url": response_url,
        "actions": [{
            "action_id": action_id, "block_id": "cogbox-buttons",
            "text": {"type": "plain_text", "text": action_id, "emoji": true},
            "value": value, "type": "button", "action_ts": format!("{}.000300", unix_now()),
        }],
    })
}

/// Waits until the bot's events-mode listener on loopback `port` takes connections.
pub async fn wait_for_listener(port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the events listener never opened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A sender of signed requests to a bot's events-mode listener, as Slack signs them.
pub struct SignedSender {
    secret: String,
    client: reqwest::Client,
}

impl SignedSender {
    pub fn new(secret: &str) -> Self {
        Self {
            secret: secret.into(),
            client: reqwest::Client::new(),
        }
    }

    /// `v0=` and the hex HMAC-SHA256 of `v0:{timestamp}:{body}` under the signing secret.
    pub fn sign(&self, timestamp: u64, body: &[u8]) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, self.secret.as_bytes());
        let mut base = format!("v0:{timestamp}:").into_bytes();
        base.extend_from_slice(body);
        let tag = ring::hmac::sign(&key, &base);
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("v0={hex}")
    }

    pub async fn post_json(&self, url: &str, body: &Value) -> (StatusCode, String) {
        self.post_signed(url, "application/json", body.to_string().into_bytes())
            .await
    }

    /// A slash command as events mode receives it: form-encoded.
    pub async fn post_form(&self, url: &str, fields: &Value) -> (StatusCode, String) {
        let body = encode_form(fields.as_object().expect("an object of fields"));
        self.post_signed(url, "application/x-www-form-urlencoded", body.into_bytes())
            .await
    }

    /// An interaction: form-encoded with the JSON in `payload`.
    pub async fn post_interactive(&self, url: &str, payload: &Value) -> (StatusCode, String) {
        let body = encode_form(&Map::from_iter([(
            "payload".into(),
            json!(payload.to_string()),
        )]));
        self.post_signed(url, "application/x-www-form-urlencoded", body.into_bytes())
            .await
    }

    async fn post_signed(
        &self,
        url: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, String) {
        let ts = unix_now();
        let signature = self.sign(ts, &body);
        let headers = [
            ("content-type", content_type.to_owned()),
            ("x-slack-request-timestamp", ts.to_string()),
            ("x-slack-signature", signature),
        ];
        self.post_raw(url, &headers, body).await
    }

    /// Any request, for forged, stale or oversized ones.
    pub async fn post_raw(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> (StatusCode, String) {
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "only loopback is a test target"
        );
        let mut request = self.client.post(url).body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("the bot's listener answers");
        let status = StatusCode::from_u16(response.status().as_u16()).expect("a status");
        (status, response.text().await.unwrap_or_default())
    }
}

fn encode_form(fields: &Map<String, Value>) -> String {
    let encode = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    fields
        .iter()
        .map(|(k, v)| {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            format!("{}={}", encode(k), encode(&v))
        })
        .collect::<Vec<_>>()
        .join("&")
}
