//! A fake Telegram Bot API server for tests, wire-compatible with teloxide.
//!
//! It listens on `127.0.0.1:<ephemeral port>` and answers `/bot<TOKEN>/<method>` (method names
//! case-insensitive, parameters as JSON, form-urlencoded, multipart or query string) with the
//! Bot API's `{"ok":true,"result":..}` / `{"ok":false,"error_code":..,"description":..}` shapes
//! and Telegram's own error texts, so a bot's error handling is exercised as in production.
//!
//! ```text
//! FakeTelegram::start(FakeTelegramConfig { token, bot_username, bot_first_name, accept_any_token }).await
//! fake.api_url() -> String                           // replaces https://api.telegram.org
//! fake.bot_user() -> Value                           // the bot's User object
//! fake.push_update(update) -> i64                    // queue for getUpdates; returns its update_id
//! fake.calls() / fake.calls_of("sendMessage") -> Vec<Call>   // Call { method, params, at }
//! fake.wait_for_call("sendmessage", |params| .., timeout).await -> Call     // panics on timeout
//! fake.wait_for_calls("getupdates", n, timeout).await -> Vec<Call>
//! fake.fail_next("sendmessage", Failure::RetryAfter(1)) / fake.fail_times(method, n, failure)
//! fake.throttled() -> usize                          // 429s for broken send limits
//! fake.add_chat(&chat) / fake.set_member(&chat, &user, ChatMemberStatus::..)
//! fake.member(chat_id, user_id) -> Option<Value>     // current ChatMember object
//! fake.message(chat_id, message_id) / fake.last_bot_message(chat_id) -> Option<Value>
//! fake.post_webhook(url, Some(secret), &update).await -> StatusCode
//! fake.deliver_webhook(&update).await -> Option<StatusCode>  // to the URL/secret the bot set
//! fake.proxy_webhooks_to("http://127.0.0.1:PORT")   // the TLS-ending proxy deliver_webhook posts to
//! fake.delivers(&update) -> bool                     // false if privacy mode hides it from the bot
//! builders: user, private_chat, supergroup, text_message, with_text_mention, replying_to,
//!           message_update, callback_query_update, chat_member, chat_member_update
//! ```
//!
//! Served methods: getMe, getUpdates, setWebhook, deleteWebhook, getWebhookInfo, setMyCommands,
//! getMyCommands, sendMessage, editMessageText, answerCallbackQuery, getChat, getChatMember,
//! getChatAdministrators, restrictChatMember, banChatMember, unbanChatMember, deleteMessage,
//! deleteMessages; any other answers 404 `Not Found`. What Telegram enforces and bots get wrong is
//! enforced here too: send limits (1 message/s per chat, 20/min per group, 30/s overall, 429
//! with `retry_after` when broken; `fake.throttled()` counts them), unknown chats, admin
//! rights for moderation, HTML `parse_mode` syntax, "message is not modified", one answer per
//! callback query, `getUpdates` conflicts (webhook set, a second poller) and `allowed_updates`
//! (`chat_member` updates only reach bots that ask). sendMessage to a group the bot was kicked
//! from or left is 403, as is a private chat with a user who never started the bot; a bot
//! restricted from writing gets 400 "not enough rights".
//! Like Telegram, setWebhook wants an https URL on port 443, 80, 88 or 8443; TLS ends at a
//! reverse proxy, which `proxy_webhooks_to` stands for, and webhooks are only ever POSTed to
//! loopback addresses. Privacy mode is on (`can_read_all_group_messages: false`): a group
//! message that is not a command, a reply to the bot or a mention of it reaches the bot only
//! where it is an administrator. A direct message to a known user who never started the bot is
//! refused with 403 `bot can't initiate conversation with a user`; deleteMessages takes 1-100 ids.
//! Not modelled: MarkdownV2 checks, entities of sent text (HTML is only stripped), files.
//!
//! Needs these dev-dependencies: axum 0.8 (feature `multipart`), serde, serde_json, reqwest
//! 0.12 (no default features) and tokio (features `net`, `macros`, `time`, `sync`).
#![allow(dead_code)] // Each test crate that includes this module uses a different part of it.

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    net::IpAddr,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use axum::{
    Form, Json, Router,
    body::Bytes,
    extract::{FromRequest, Multipart, Path, Query, Request, State},
    http::{StatusCode, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
    routing::any,
};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::{sync::Notify, task::JoinHandle};

/// How a fake server identifies its bot.
#[derive(Clone, Debug)]
pub struct FakeTelegramConfig {
    /// The token the bot must use; as on Telegram, the number before `:` is the bot's user id.
    pub token: String,
    pub bot_username: String,
    pub bot_first_name: String,
    /// Serve calls made with any token, instead of answering 401 `Unauthorized` to a wrong one.
    pub accept_any_token: bool,
}

impl Default for FakeTelegramConfig {
    fn default() -> Self {
        Self {
            token: "123456:TEST-token-not-real".to_owned(),
            bot_username: "cogbox_test_bot".to_owned(),
            bot_first_name: "Cogbox".to_owned(),
            accept_any_token: false,
        }
    }
}

/// One request the bot made, recorded when it arrived (before any long-poll wait).
#[derive(Clone, Debug)]
pub struct Call {
    /// Lower-cased method name, e.g. `sendmessage`.
    pub method: String,
    /// All parameters as one JSON object, whatever the encoding they came in.
    pub params: Value,
    pub at: Instant,
}

/// An error to answer instead of serving a call, see [`FakeTelegram::fail_next`].
#[derive(Clone, Debug)]
pub enum Failure {
    /// 400 with description `Bad Request: <text>`.
    BadRequest(String),
    /// 403 with description `Forbidden: <text>`, e.g. `bot was blocked by the user`.
    Forbidden(String),
    /// 401 `Unauthorized`, as for a revoked token.
    Unauthorized,
    /// 429 with `parameters.retry_after` in seconds.
    RetryAfter(u32),
}

/// Administrator rights, serialized with the Bot API's field names.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct AdminRights {
    pub can_be_edited: bool,
    pub is_anonymous: bool,
    pub can_manage_chat: bool,
    pub can_delete_messages: bool,
    pub can_manage_video_chats: bool,
    pub can_restrict_members: bool,
    pub can_promote_members: bool,
    pub can_change_info: bool,
    pub can_invite_users: bool,
    pub can_post_stories: bool,
    pub can_edit_stories: bool,
    pub can_delete_stories: bool,
    pub can_pin_messages: bool,
    pub can_manage_topics: bool,
}

/// A member's standing in a chat; `until_date` is unix time, 0 meaning forever.
#[derive(Clone, Debug)]
pub enum ChatMemberStatus {
    Creator,
    Administrator(AdminRights),
    Member,
    /// Still in the chat but may do nothing (all permissions false).
    Restricted {
        until_date: i64,
    },
    Left,
    Kicked {
        until_date: i64,
    },
}

/// The `ChatPermissions` fields a restricted member carries.
const PERMISSIONS: [&str; 14] = [
    "can_send_messages",
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_manage_topics",
];

/// What `can_send_other_messages` and `can_add_web_page_previews` imply.
const MEDIA_PERMISSIONS: [&str; 6] = [
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
];

/// Telegram's overall send limit, messages a second.
const OVERALL_PER_SECOND: f64 = 30.0;

/// A running fake server; dropping it stops accepting connections.
pub struct FakeTelegram {
    api_url: String,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

struct Shared {
    config: FakeTelegramConfig,
    state: Mutex<ServerState>,
    /// Woken on every recorded call and queued update: long polls and test waits re-check.
    changed: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, ServerState> {
        // A panicking test predicate must not wedge the server for the rest of the test.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl FakeTelegram {
    pub async fn start(config: FakeTelegramConfig) -> Self {
        let bot_id: i64 = config
            .token
            .split(':')
            .next()
            .and_then(|id| id.parse().ok())
            .expect("token must look like `<bot id>:<secret>`");
        let bot = json!({
            "id": bot_id,
            "is_bot": true,
            "first_name": config.bot_first_name,
            "username": config.bot_username,
        });
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(ServerState::new(bot_id, bot)),
            changed: Notify::new(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Telegram server");
        let api_url = format!("http://{}", listener.local_addr().expect("local address"));
        let app = Router::new()
            .route("/{bot}/{method}", any(handle))
            .fallback(|| async { reply(Err(ApiError::not_found())) })
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("fake Telegram server");
        });
        Self {
            api_url,
            shared,
            server,
        }
    }

    /// Base URL to use instead of `https://api.telegram.org`, e.g. `http://127.0.0.1:41234`.
    pub fn api_url(&self) -> String {
        self.api_url.clone()
    }

    pub fn bot_user(&self) -> Value {
        self.shared.lock().bot.clone()
    }

    /// Queues an update for `getUpdates` and learns its chats, users, messages and callback
    /// queries. The fake numbers updates itself, as Telegram does: any `update_id` is replaced.
    /// An update privacy mode hides (see [`FakeTelegram::delivers`]) is learnt but never queued.
    pub fn push_update(&self, mut update: Value) -> i64 {
        let id = {
            let mut state = self.shared.lock();
            state.last_update_id += 1;
            update["update_id"] = json!(state.last_update_id);
            state.observe(&update);
            if state.delivers(&update) {
                state.queue.push_back(update);
            }
            state.last_update_id
        };
        self.shared.changed.notify_waiters();
        id
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// Calls of one method; the name is case-insensitive.
    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        let method = method.to_ascii_lowercase();
        let state = self.shared.lock();
        state
            .calls
            .iter()
            .filter(|call| call.method == method)
            .cloned()
            .collect()
    }

    /// The first call of `method` (already made or still to come) whose params satisfy
    /// `matches`. Panics, listing all calls, if none arrives within `timeout`.
    pub async fn wait_for_call(
        &self,
        method: &str,
        matches: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Call {
        let method = method.to_ascii_lowercase();
        let found = self
            .wait_until(timeout, |state| {
                state
                    .calls
                    .iter()
                    .find(|call| call.method == method && matches(&call.params))
                    .cloned()
            })
            .await;
        found.unwrap_or_else(|| {
            panic!(
                "no matching {method} call within {timeout:?}; calls: {:#?}",
                self.calls()
            )
        })
    }

    /// Waits until `method` has been called at least `count` times and returns those calls.
    pub async fn wait_for_calls(&self, method: &str, count: usize, timeout: Duration) -> Vec<Call> {
        let method = method.to_ascii_lowercase();
        self.wait_until(timeout, |state| {
            let calls: Vec<Call> = state
                .calls
                .iter()
                .filter(|call| call.method == method)
                .cloned()
                .collect();
            Some(calls).filter(|calls| calls.len() >= count)
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "fewer than {count} {method} calls within {timeout:?}; calls: {:#?}",
                self.calls()
            )
        })
    }

    async fn wait_until<T>(
        &self,
        timeout: Duration,
        mut probe: impl FnMut(&ServerState) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(found) = probe(&self.shared.lock()) {
                return Some(found);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return probe(&self.shared.lock());
            }
        }
    }

    /// Answers the next call of `method` with `failure` instead of serving it.
    pub fn fail_next(&self, method: &str, failure: Failure) {
        self.fail_times(method, 1, failure);
    }

    /// Answers the next `times` calls of `method` with `failure`.
    pub fn fail_times(&self, method: &str, times: usize, failure: Failure) {
        let mut state = self.shared.lock();
        let queue = state
            .failures
            .entry(method.to_ascii_lowercase())
            .or_default();
        queue.extend(std::iter::repeat_n(failure, times));
    }

    /// How many sends broke Telegram's send limits and were answered 429.
    pub fn throttled(&self) -> usize {
        self.shared.lock().throttled
    }

    /// Makes a chat known without an update, e.g. for a bot that posts on its own.
    pub fn add_chat(&self, chat: &Value) {
        self.shared.lock().observe_chat(chat);
    }

    pub fn set_member(&self, chat: &Value, user: &Value, status: ChatMemberStatus) {
        let mut state = self.shared.lock();
        state.observe_chat(chat);
        state.observe_user(user);
        state
            .members
            .insert((id_of(chat), id_of(user)), chat_member(user, &status));
    }

    /// The member as `getChatMember` would return it; `None` for an unknown user or chat.
    pub fn member(&self, chat_id: i64, user_id: i64) -> Option<Value> {
        self.shared.lock().member(chat_id, user_id).ok()
    }

    /// A message in `chat_id` as it stands now (edits applied), e.g. one the bot sent.
    pub fn message(&self, chat_id: i64, message_id: i64) -> Option<Value> {
        self.shared
            .lock()
            .messages
            .get(&(chat_id, message_id))
            .cloned()
    }

    /// The newest message the bot sent in `chat_id`.
    pub fn last_bot_message(&self, chat_id: i64) -> Option<Value> {
        let state = self.shared.lock();
        state
            .messages
            .iter()
            .filter(|((chat, _), m)| *chat == chat_id && m["from"]["id"] == state.bot_id)
            .max_by_key(|((_, id), _)| *id)
            .map(|(_, m)| m.clone())
    }

    /// POSTs `update` to a webhook like Telegram does and returns the HTTP status. The fake
    /// learns the update first, so the bot's answers to it are served. Panics unless `url` is
    /// on a loopback address: tests must never reach out, whatever URL a bot registered.
    pub async fn post_webhook(
        &self,
        url: &str,
        secret: Option<&str>,
        update: &Value,
    ) -> StatusCode {
        let parsed = reqwest::Url::parse(url).unwrap_or_else(|err| panic!("{url}: {err}"));
        let host = parsed
            .host_str()
            .unwrap_or_default()
            .trim_matches(['[', ']']);
        let loopback =
            host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        assert!(loopback, "refusing to POST a webhook to non-loopback {url}");
        self.shared.lock().observe(update);
        let mut request = reqwest::Client::new()
            .post(url)
            .timeout(Duration::from_secs(10))
            .header(CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(update).expect("serialize update"));
        if let Some(secret) = secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|err| panic!("POST {url}: {err}"));
        response.status()
    }

    /// Learns an update's chats, users and messages without delivering it, for tests that
    /// post it themselves (many at once, on their own connections).
    pub fn learn(&self, update: &Value) {
        self.shared.lock().observe(update);
    }

    /// Whether Telegram sends `update` to the bot at all. The bot is in privacy mode (getMe
    /// says `can_read_all_group_messages: false`), so in a group where it is not an
    /// administrator it receives only commands (text starting with `/`), replies to its own
    /// messages, messages mentioning it and service messages, not the members' chatter.
    pub fn delivers(&self, update: &Value) -> bool {
        let mut state = self.shared.lock();
        state.observe(update);
        state.delivers(update)
    }

    /// The reverse proxy in front of the bot: TLS ends there, so [`deliver_webhook`] posts to
    /// `local` (`http://127.0.0.1:PORT`) the path of the https URL the bot registered.
    ///
    /// [`deliver_webhook`]: FakeTelegram::deliver_webhook
    pub fn proxy_webhooks_to(&self, local: &str) {
        self.shared.lock().webhook_proxy = Some(local.trim_end_matches('/').to_owned());
    }

    /// Delivers `update` to the webhook the bot registered with `setWebhook`, with its secret
    /// (through the proxy set by [`FakeTelegram::proxy_webhooks_to`], if any). An update
    /// privacy mode hides is not posted: the answer is then `None`.
    pub async fn deliver_webhook(&self, update: &Value) -> Option<StatusCode> {
        if !self.delivers(update) {
            return None;
        }
        let (webhook, proxy) = {
            let state = self.shared.lock();
            (state.webhook.clone(), state.webhook_proxy.clone())
        };
        let webhook = webhook.expect("the bot has not called setWebhook");
        let url = match proxy {
            Some(local) => {
                let registered = reqwest::Url::parse(&webhook.url).expect("a registered URL");
                format!("{local}{}", registered.path())
            }
            None => webhook.url,
        };
        Some(
            self.post_webhook(&url, webhook.secret_token.as_deref(), update)
                .await,
        )
    }
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.server.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// Update builders: complete objects with every field the Bot API marks required.

/// Message, update and callback query ids; unique across tests in one process.
static NEXT_ID: AtomicI64 = AtomicI64::new(1);

fn next_id() -> i64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

fn now() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH);
    since_epoch.expect("clock after 1970").as_secs() as i64
}

fn id_of(object: &Value) -> i64 {
    object["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no numeric id in {object}"))
}

pub fn user(id: i64, first_name: &str, username: Option<&str>) -> Value {
    let mut user = json!({"id": id, "is_bot": false, "first_name": first_name});
    if let Some(username) = username {
        user["username"] = json!(username);
    }
    user
}

/// The private chat with `user` (its id is the user's id).
pub fn private_chat(user: &Value) -> Value {
    let mut chat = json!({"id": user["id"], "type": "private", "first_name": user["first_name"]});
    if let Some(username) = user.get("username") {
        chat["username"] = username.clone();
    }
    chat
}

/// A group as bots see them today; use ids like `-1001234567890`.
pub fn supergroup(id: i64, title: &str) -> Value {
    json!({"id": id, "type": "supergroup", "title": title})
}

/// A text message, with `bot_command` and `mention` entities found as Telegram finds them.
/// The service message Telegram sends every bot in a group when `joined` join it (privacy mode
/// or not): no text, the members in `new_chat_members`.
pub fn members_joined(chat: &Value, joined: &[&Value]) -> Value {
    json!({
        "message_id": next_id(),
        "from": joined[0],
        "chat": chat,
        "date": now(),
        "new_chat_members": joined,
    })
}

pub fn text_message(chat: &Value, from: &Value, text: &str) -> Value {
    let mut message = json!({
        "message_id": next_id(),
        "from": from,
        "chat": chat,
        "date": now(),
        "text": text,
    });
    let entities = auto_entities(text);
    if !entities.is_empty() {
        message["entities"] = Value::Array(entities);
    }
    message
}

/// Adds a `text_mention` entity (a mention of a user without a username) over `needle`.
pub fn with_text_mention(mut message: Value, needle: &str, user: &Value) -> Value {
    let text = message["text"].as_str().expect("a text message");
    let start = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in {text:?}"));
    let entity = json!({
        "type": "text_mention",
        "offset": utf16_len(&text[..start]),
        "length": utf16_len(needle),
        "user": user,
    });
    let entities = message["entities"].as_array().cloned().unwrap_or_default();
    let mut entities: Vec<Value> = entities.into_iter().chain([entity]).collect();
    entities.sort_by_key(|entity| entity["offset"].as_u64());
    message["entities"] = Value::Array(entities);
    message
}

pub fn replying_to(mut message: Value, replied: &Value) -> Value {
    message["reply_to_message"] = replied.clone();
    message
}

pub fn message_update(message: &Value) -> Value {
    json!({"update_id": next_id(), "message": message})
}

/// An inline button press on `message` (normally one the bot sent).
pub fn callback_query_update(from: &Value, message: &Value, data: &str) -> Value {
    json!({
        "update_id": next_id(),
        "callback_query": {
            "id": next_id().to_string(),
            "from": from,
            "message": message,
            "chat_instance": message["chat"]["id"].to_string(),
            "data": data,
        },
    })
}

/// A `ChatMember` object.
pub fn chat_member(user: &Value, status: &ChatMemberStatus) -> Value {
    match status {
        ChatMemberStatus::Creator => {
            json!({"status": "creator", "user": user, "is_anonymous": false})
        }
        ChatMemberStatus::Administrator(rights) => {
            let mut member = serde_json::to_value(rights).expect("serialize rights");
            member["status"] = json!("administrator");
            member["user"] = user.clone();
            member
        }
        ChatMemberStatus::Member => json!({"status": "member", "user": user}),
        ChatMemberStatus::Restricted { until_date } => {
            let mut member = json!({
                "status": "restricted",
                "user": user,
                "is_member": true,
                "until_date": until_date,
            });
            for permission in PERMISSIONS {
                member[permission] = json!(false);
            }
            member
        }
        ChatMemberStatus::Left => json!({"status": "left", "user": user}),
        ChatMemberStatus::Kicked { until_date } => {
            json!({"status": "kicked", "user": user, "until_date": until_date})
        }
    }
}

/// A `chat_member` update; pushing it also changes the member's standing in the fake.
pub fn chat_member_update(chat: &Value, from: &Value, old: &Value, new: &Value) -> Value {
    json!({
        "update_id": next_id(),
        "chat_member": {
            "chat": chat,
            "from": from,
            "date": now(),
            "old_chat_member": old,
            "new_chat_member": new,
        },
    })
}

/// Entity offsets and lengths count UTF-16 code units, as the Bot API specifies.
fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// `/command[@bot]` and `@username` words at word starts, like Telegram's own detection.
fn auto_entities(text: &str) -> Vec<Value> {
    let mut entities = Vec::new();
    let mut word_start = None;
    for (index, c) in text.char_indices().chain([(text.len(), ' ')]) {
        if !c.is_whitespace() {
            word_start.get_or_insert(index);
        } else if let Some(start) = word_start.take() {
            entities.extend(word_entity(text, start, index));
        }
    }
    entities
}

fn word_entity(text: &str, start: usize, end: usize) -> Option<Value> {
    let word = &text[start..end];
    let (kind, min_len) = match word.chars().next()? {
        '/' => ("bot_command", 1),
        '@' => ("mention", 5), // Telegram usernames have at least 5 characters.
        _ => return None,
    };
    let body = &word[1..];
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || c == '_' || (kind == "bot_command" && c == '@');
    let len = body.find(|c| !allowed(c)).unwrap_or(body.len());
    (len >= min_len).then(|| {
        json!({
            "type": kind,
            "offset": utf16_len(&text[..start]),
            "length": utf16_len(&word[..=len]),
        })
    })
}

// ---------------------------------------------------------------------------------------------
// HTTP layer.

/// A Bot API error answer.
#[derive(Debug)]
struct ApiError {
    code: u16,
    description: String,
    retry_after: Option<u32>,
}

impl ApiError {
    fn new(code: u16, description: String) -> Self {
        Self {
            code,
            description,
            retry_after: None,
        }
    }

    fn not_found() -> Self {
        Self::new(404, "Not Found".to_owned())
    }

    fn conflict(reason: &str) -> Self {
        Self::new(409, format!("Conflict: {reason}"))
    }
}

fn bad(reason: &str) -> ApiError {
    ApiError::new(400, format!("Bad Request: {reason}"))
}

impl From<Failure> for ApiError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::BadRequest(reason) => bad(&reason),
            Failure::Forbidden(reason) => Self::new(403, format!("Forbidden: {reason}")),
            Failure::Unauthorized => Self::new(401, "Unauthorized".to_owned()),
            Failure::RetryAfter(seconds) => Self {
                retry_after: Some(seconds),
                ..Self::new(429, format!("Too Many Requests: retry after {seconds}"))
            },
        }
    }
}

type Params = Map<String, Value>;

async fn handle(
    State(shared): State<Arc<Shared>>,
    Path((bot, method)): Path<(String, String)>,
    request: Request,
) -> Response {
    let at = Instant::now();
    let Some(token) = bot.strip_prefix("bot") else {
        return reply(Err(ApiError::not_found()));
    };
    let params = match read_params(request).await {
        Ok(params) => params,
        Err(err) => return reply(Err(err)),
    };
    let method = method.to_ascii_lowercase();
    let outcome = if method == "getupdates" {
        get_updates(&shared, token, params, at).await
    } else {
        let outcome = {
            let mut state = shared.lock();
            state
                .begin(&shared.config, token, &method, &params, at)
                .and_then(|()| state.serve(&method, &params))
        };
        shared.changed.notify_waiters();
        outcome
    };
    reply(outcome)
}

fn reply(outcome: Result<Value, ApiError>) -> Response {
    match outcome {
        Ok(result) => Json(json!({"ok": true, "result": result})).into_response(),
        Err(err) => {
            let mut body =
                json!({"ok": false, "error_code": err.code, "description": err.description});
            if let Some(seconds) = err.retry_after {
                body["parameters"] = json!({"retry_after": seconds});
            }
            let status = StatusCode::from_u16(err.code).expect("valid status code");
            (status, Json(body)).into_response()
        }
    }
}

/// Parameters that are free text: kept as strings even when they look like JSON.
const TEXT_PARAMS: [&str; 13] = [
    "text",
    "caption",
    "callback_query_id",
    "inline_message_id",
    "secret_token",
    "url",
    "title",
    "description",
    "query",
    "data",
    "parse_mode",
    "language_code",
    "custom_title",
];

/// Stores a parameter that arrived as text (query, form or multipart). Like the Bot API, it
/// decodes numbers, booleans and JSON-serialized objects, so tests see one shape whatever the
/// encoding (`chat_id` is a number, `reply_markup` an object).
fn insert_text(params: &mut Params, key: String, value: String) {
    let decoded = (!TEXT_PARAMS.contains(&key.as_str()))
        .then(|| serde_json::from_str::<Value>(&value).ok())
        .flatten()
        .filter(|decoded| !decoded.is_string());
    params.insert(key, decoded.unwrap_or(Value::String(value)));
}

async fn read_params(request: Request) -> Result<Params, ApiError> {
    let unreadable = |_| bad("can't read request parameters");
    let mut params = Params::new();
    if let Ok(Query(pairs)) = Query::<Vec<(String, String)>>::try_from_uri(request.uri()) {
        for (key, value) in pairs {
            insert_text(&mut params, key, value);
        }
    }
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        let body = Bytes::from_request(request, &())
            .await
            .map_err(|_| bad("can't read request body"))?;
        if !body.is_empty() {
            match serde_json::from_slice(&body) {
                Ok(Value::Object(object)) => params.extend(object),
                _ => return Err(bad("can't parse JSON object")),
            }
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let Form(pairs) = Form::<Vec<(String, String)>>::from_request(request, &())
            .await
            .map_err(|_| bad("can't parse form parameters"))?;
        for (key, value) in pairs {
            insert_text(&mut params, key, value);
        }
    } else if content_type.starts_with("multipart/form-data") {
        let mut multipart = Multipart::from_request(request, &())
            .await
            .map_err(|_| bad("can't parse multipart body"))?;
        while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
            let name = field.name().unwrap_or_default().to_owned();
            match field.file_name().map(str::to_owned) {
                Some(file_name) => {
                    let size = field.bytes().await.map_err(unreadable)?.len();
                    params.insert(name, json!({"file_name": file_name, "size": size}));
                }
                None => insert_text(&mut params, name, field.text().await.map_err(unreadable)?),
            }
        }
    }
    Ok(params)
}

/// `getUpdates`: confirm-and-drop by `offset`, at most `limit`, and a long poll of up to
/// `timeout` seconds that a newer `getUpdates` ends with 409, as on Telegram.
async fn get_updates(
    shared: &Shared,
    token: &str,
    params: Params,
    at: Instant,
) -> Result<Value, ApiError> {
    let started = {
        let mut state = shared.lock();
        state
            .begin(&shared.config, token, "getupdates", &params, at)
            .and_then(|()| state.start_poll(&params))
    };
    shared.changed.notify_waiters();
    let (generation, timeout) = started?;
    let offset = int_param(&params, "offset").unwrap_or(0);
    let limit = int_param(&params, "limit").unwrap_or(100).clamp(1, 100) as usize;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let notified = shared.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut state = shared.lock();
            if state.poll_generation != generation {
                return Err(ApiError::conflict(
                    "terminated by other getUpdates request; make sure that only one bot instance is running",
                ));
            }
            let updates = state.take_updates(offset, limit);
            if !updates.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(Value::Array(updates));
            }
        }
        // Either an update or a newer poll arrived, or the deadline passed: re-check.
        let _ = tokio::time::timeout_at(deadline, notified).await;
    }
}

// ---------------------------------------------------------------------------------------------
// What Telegram knows, and the methods that read and change it.

#[derive(Clone, Debug)]
struct Webhook {
    url: String,
    secret_token: Option<String>,
}

struct ServerState {
    bot_id: i64,
    bot: Value,
    calls: Vec<Call>,
    failures: HashMap<String, VecDeque<Failure>>,
    queue: VecDeque<Value>,
    last_update_id: i64,
    /// As last sent in `getUpdates`/`setWebhook`; empty means Telegram's default set.
    allowed_updates: Vec<String>,
    /// Bumped by each `getUpdates`, so an older long poll knows it was superseded.
    poll_generation: u64,
    webhook: Option<Webhook>,
    /// Where the test's "reverse proxy" forwards webhook posts, see `proxy_webhooks_to`.
    webhook_proxy: Option<String>,
    commands: HashMap<String, Value>,
    chats: HashMap<i64, Value>,
    users: HashMap<i64, Value>,
    members: BTreeMap<(i64, i64), Value>,
    messages: HashMap<(i64, i64), Value>,
    open_callback_queries: HashSet<String>,
    /// When messages were sent, per chat and overall, for Telegram's send limits.
    sent: HashMap<i64, VecDeque<Instant>>,
    /// The overall limit as a bucket: (tokens, when last refilled).
    overall: (f64, Instant),
    /// 429s answered because the bot broke a send limit (not injected failures).
    throttled: usize,
}

fn int_param(params: &Params, key: &str) -> Option<i64> {
    params.get(key).and_then(Value::as_i64)
}

fn required_int(params: &Params, key: &str) -> Result<i64, ApiError> {
    int_param(params, key).ok_or_else(|| bad(&format!("{key} is empty")))
}

fn str_param<'a>(params: &'a Params, key: &str) -> Option<&'a str> {
    params.get(key).and_then(Value::as_str)
}

fn flag(params: &Params, key: &str) -> bool {
    params.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn status_of(member: &Value) -> &str {
    member["status"].as_str().unwrap_or_default()
}

/// Telegram treats restrictions under 30 seconds or over 366 days as forever (0).
fn effective_until(params: &Params) -> i64 {
    let until = int_param(params, "until_date").unwrap_or(0);
    let remaining = until - now();
    if (30..=366 * 24 * 3600).contains(&remaining) {
        until
    } else {
        0
    }
}

/// The update type: the one field besides `update_id`.
fn update_kind(update: &Value) -> Option<&str> {
    let object = update.as_object()?;
    object
        .keys()
        .map(String::as_str)
        .find(|key| *key != "update_id")
}

impl ServerState {
    fn new(bot_id: i64, bot: Value) -> Self {
        Self {
            bot_id,
            bot,
            calls: Vec::new(),
            failures: HashMap::new(),
            queue: VecDeque::new(),
            last_update_id: 0,
            allowed_updates: Vec::new(),
            poll_generation: 0,
            webhook: None,
            webhook_proxy: None,
            commands: HashMap::new(),
            chats: HashMap::new(),
            users: HashMap::new(),
            members: BTreeMap::new(),
            messages: HashMap::new(),
            open_callback_queries: HashSet::new(),
            sent: HashMap::new(),
            overall: (OVERALL_PER_SECOND, Instant::now()),
            throttled: 0,
        }
    }

    /// Telegram's send limits, shared by every chat: one message a second per chat, 20 a
    /// minute per group, 30 a second overall (a bucket of 30 refilled at 30/s: a second's
    /// worth may arrive at once). Broken, the answer is 429 with `retry_after`. The per-chat
    /// windows are 10 % short of their nominal length, so jitter on a loaded test machine
    /// between a bot that paces exactly and this server is not mistaken for a burst.
    fn pace(&mut self, chat_id: i64, now: Instant) -> Result<(), ApiError> {
        let window = |nominal: Duration| nominal.mul_f64(0.9);
        let recent = |times: &VecDeque<Instant>, span: Duration| {
            times
                .iter()
                .filter(|t| now.duration_since(**t) < span)
                .count()
        };
        let chat = self.sent.entry(chat_id).or_default();
        let mut wait = None;
        if recent(chat, window(Duration::from_secs(1))) >= 1 {
            wait = Some(1);
        }
        if chat_id < 0 && recent(chat, window(Duration::from_secs(60))) >= 20 {
            let oldest = chat[chat.len() - 20];
            let left = Duration::from_secs(60).saturating_sub(now.duration_since(oldest));
            wait = Some(left.as_secs().max(1) as u32);
        }
        let (tokens, refilled) = &mut self.overall;
        *tokens = (*tokens + now.duration_since(*refilled).as_secs_f64() * OVERALL_PER_SECOND)
            .min(OVERALL_PER_SECOND);
        *refilled = now;
        if *tokens < 1.0 {
            wait = wait.or(Some(1));
        }
        match wait {
            Some(seconds) => {
                self.throttled += 1;
                Err(Failure::RetryAfter(seconds).into())
            }
            None => Ok(()),
        }
    }

    fn record_send(&mut self, chat_id: i64, now: Instant) {
        let chat = self.sent.entry(chat_id).or_default();
        chat.push_back(now);
        if chat.len() > 20 {
            chat.pop_front();
        }
        self.overall.0 -= 1.0;
    }

    /// Records the call, then applies the token check and any injected failure.
    fn begin(
        &mut self,
        config: &FakeTelegramConfig,
        token: &str,
        method: &str,
        params: &Params,
        at: Instant,
    ) -> Result<(), ApiError> {
        self.calls.push(Call {
            method: method.to_owned(),
            params: Value::Object(params.clone()),
            at,
        });
        if token != config.token && !config.accept_any_token {
            return Err(Failure::Unauthorized.into());
        }
        match self.failures.get_mut(method).and_then(VecDeque::pop_front) {
            Some(failure) => Err(failure.into()),
            None => Ok(()),
        }
    }

    fn serve(&mut self, method: &str, params: &Params) -> Result<Value, ApiError> {
        match method {
            "getme" => Ok(self.me()),
            "setwebhook" => self.set_webhook(params),
            "deletewebhook" => {
                self.webhook = None;
                self.drop_pending_if_asked(params);
                Ok(json!(true))
            }
            "getwebhookinfo" => Ok(json!({
                "url": self.webhook.as_ref().map_or("", |hook| hook.url.as_str()),
                "has_custom_certificate": false,
                "pending_update_count": self.queue.len(),
            })),
            "setmycommands" => self.set_my_commands(params),
            "getmycommands" => Ok(self
                .commands
                .get(&commands_key(params))
                .cloned()
                .unwrap_or_else(|| json!([]))),
            "sendmessage" => self.send_message(params),
            "editmessagetext" => self.edit_message_text(params),
            "answercallbackquery" => {
                let id = str_param(params, "callback_query_id").unwrap_or_default();
                if self.open_callback_queries.remove(id) {
                    Ok(json!(true))
                } else {
                    Err(bad(
                        "query is too old and response timeout expired or query ID is invalid",
                    ))
                }
            }
            "getchat" => self.chat_param(params).map(full_info),
            "getchatmember" => {
                let chat = self.chat_param(params)?;
                self.member(id_of(&chat), required_int(params, "user_id")?)
            }
            "getchatadministrators" => self.administrators(params),
            "restrictchatmember" => self.restrict(params),
            "banchatmember" => self.ban(params),
            "unbanchatmember" => self.unban(params),
            "deletemessage" => {
                let chat = self.chat_param(params)?;
                let id = required_int(params, "message_id")?;
                // Unlike deleteMessages, which skips missing messages, this one reports them.
                if !self.messages.contains_key(&(id_of(&chat), id)) {
                    return Err(bad("message to delete not found"));
                }
                self.delete_messages(&chat, &[id])
            }
            "deletemessages" => {
                let chat = self.chat_param(params)?;
                let ids: Vec<i64> = params
                    .get("message_ids")
                    .and_then(Value::as_array)
                    .ok_or_else(|| bad("message_ids is empty"))?
                    .iter()
                    .filter_map(Value::as_i64)
                    .collect();
                // Documented as "a list of 1-100 identifiers".
                if ids.is_empty() {
                    return Err(bad("message_ids is empty"));
                }
                if ids.len() > 100 {
                    return Err(bad("too many messages to delete"));
                }
                self.delete_messages(&chat, &ids)
            }
            _ => Err(ApiError::not_found()),
        }
    }

    fn me(&self) -> Value {
        let mut me = self.bot.clone();
        for (field, value) in [
            ("can_join_groups", true),
            ("can_read_all_group_messages", false),
            ("supports_inline_queries", false),
            ("can_connect_to_business", false),
            ("has_main_web_app", false),
        ] {
            me[field] = json!(value);
        }
        me
    }

    // --- updates and webhooks

    fn observe(&mut self, update: &Value) {
        for key in ["message", "edited_message"] {
            if let Some(message) = update.get(key) {
                self.observe_message(message);
            }
        }
        if let Some(query) = update.get("callback_query") {
            if let Some(id) = query["id"].as_str() {
                self.open_callback_queries.insert(id.to_owned());
            }
            self.observe_user(&query["from"]);
            if let Some(message) = query.get("message") {
                self.observe_message(message);
            }
        }
        for key in ["chat_member", "my_chat_member"] {
            if let Some(change) = update.get(key) {
                let new = &change["new_chat_member"];
                self.observe_chat(&change["chat"]);
                self.observe_user(&change["from"]);
                self.observe_user(&new["user"]);
                let key = (id_of(&change["chat"]), id_of(&new["user"]));
                self.members.insert(key, new.clone());
            }
        }
    }

    fn observe_message(&mut self, message: &Value) {
        let chat = &message["chat"];
        self.observe_chat(chat);
        if let Some(from) = message.get("from") {
            self.observe_user(from);
        }
        // The fake's own copy wins: it may have been edited since the test built `message`.
        let key = (id_of(chat), message["message_id"].as_i64().unwrap_or(0));
        self.messages.entry(key).or_insert_with(|| message.clone());
    }

    fn observe_chat(&mut self, chat: &Value) {
        self.chats
            .entry(id_of(chat))
            .or_insert_with(|| chat.clone());
    }

    fn observe_user(&mut self, user: &Value) {
        self.users.insert(id_of(user), user.clone());
    }

    fn start_poll(&mut self, params: &Params) -> Result<(u64, Duration), ApiError> {
        if self.webhook.is_some() {
            return Err(ApiError::conflict(
                "can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            ));
        }
        self.remember_allowed_updates(params);
        self.poll_generation += 1;
        let timeout = int_param(params, "timeout").unwrap_or(0).max(0) as u64;
        Ok((self.poll_generation, Duration::from_secs(timeout)))
    }

    fn remember_allowed_updates(&mut self, params: &Params) {
        if let Some(list) = params.get("allowed_updates").and_then(Value::as_array) {
            let names = list.iter().filter_map(Value::as_str).map(str::to_owned);
            self.allowed_updates = names.collect();
        }
    }

    /// Confirms updates below `offset` (a negative one keeps only the last `-offset`), drops
    /// those of types the bot did not ask for, and returns up to `limit` of the rest.
    fn take_updates(&mut self, offset: i64, limit: usize) -> Vec<Value> {
        if offset > 0 {
            self.queue
                .retain(|update| update["update_id"].as_i64() >= Some(offset));
        } else if offset < 0 {
            let keep = offset.unsigned_abs() as usize;
            let excess = self.queue.len().saturating_sub(keep);
            self.queue.drain(..excess);
        }
        let allowed = &self.allowed_updates;
        self.queue.retain(|update| {
            let kind = update_kind(update).unwrap_or_default();
            if allowed.is_empty() {
                !matches!(
                    kind,
                    "chat_member" | "message_reaction" | "message_reaction_count"
                )
            } else {
                allowed.iter().any(|name| name == kind)
            }
        });
        self.queue.iter().take(limit).cloned().collect()
    }

    fn drop_pending_if_asked(&mut self, params: &Params) {
        if flag(params, "drop_pending_updates") {
            self.queue.clear();
        }
    }

    /// Telegram's rules for a webhook URL: https only, on port 443, 80, 88 or 8443 (an empty
    /// URL removes the webhook), with the Bot API's own error texts.
    fn set_webhook(&mut self, params: &Params) -> Result<Value, ApiError> {
        let url = str_param(params, "url").unwrap_or_default();
        if !url.is_empty() {
            let parsed =
                reqwest::Url::parse(url).map_err(|_| bad("invalid webhook URL specified"))?;
            if parsed.scheme() != "https" {
                return Err(bad("bad webhook: HTTPS url must be provided for webhook"));
            }
            if !matches!(parsed.port_or_known_default(), Some(443 | 80 | 88 | 8443)) {
                return Err(bad(
                    "bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443",
                ));
            }
        }
        self.webhook = (!url.is_empty()).then(|| Webhook {
            url: url.to_owned(),
            secret_token: str_param(params, "secret_token").map(str::to_owned),
        });
        self.drop_pending_if_asked(params);
        self.remember_allowed_updates(params);
        Ok(json!(true))
    }

    fn set_my_commands(&mut self, params: &Params) -> Result<Value, ApiError> {
        let commands = params
            .get("commands")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("commands is empty"))?;
        let valid = |name: &str| {
            (1..=32).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        if !commands
            .iter()
            .all(|command| valid(command["command"].as_str().unwrap_or_default()))
        {
            return Err(bad("BOT_COMMAND_INVALID"));
        }
        self.commands
            .insert(commands_key(params), Value::Array(commands.clone()));
        Ok(json!(true))
    }

    // --- messages

    /// The chat named by `chat_id`: a known id, or `@username` of a known chat.
    fn chat_param(&self, params: &Params) -> Result<Value, ApiError> {
        let chat = match params.get("chat_id") {
            Some(Value::Number(id)) => id.as_i64().and_then(|id| self.chats.get(&id)),
            Some(Value::String(name)) => self.chats.values().find(|chat| {
                name.strip_prefix('@')
                    .is_some_and(|name| chat["username"].as_str() == Some(name))
            }),
            _ => return Err(bad("chat_id is empty")),
        };
        chat.cloned().ok_or_else(|| bad("chat not found"))
    }

    fn send_message(&mut self, params: &Params) -> Result<Value, ApiError> {
        let chat = self
            .chat_param(params)
            .map_err(|err| self.never_started(params, err))?;
        self.bot_may_post(&chat)?;
        let text = rendered_text(params)?;
        let chat_id = id_of(&chat);
        let at = Instant::now();
        self.pace(chat_id, at)?;
        let mut message = json!({
            "message_id": next_id(),
            "from": self.bot,
            "chat": chat,
            "date": now(),
            "text": text,
        });
        if let Some(markup) = inline_keyboard(params) {
            message["reply_markup"] = markup;
        }
        let reply_to = params
            .get("reply_parameters")
            .and_then(|reply| reply["message_id"].as_i64());
        if let Some(reply_to) = reply_to {
            let replied = self.messages.get(&(chat_id, reply_to));
            message["reply_to_message"] = replied
                .cloned()
                .ok_or_else(|| bad("message to be replied not found"))?;
        }
        let id = message["message_id"].as_i64().expect("message id");
        self.messages.insert((chat_id, id), message.clone());
        self.record_send(chat_id, at);
        Ok(message)
    }

    /// Telegram's refusals to a bot that was removed from a group, or may not write there.
    fn bot_may_post(&self, chat: &Value) -> Result<(), ApiError> {
        if chat["type"] == "private" {
            return Ok(());
        }
        let bot = self.member(id_of(chat), self.bot_id)?;
        let kind = chat["type"].as_str().unwrap_or("group");
        match status_of(&bot) {
            "kicked" => {
                Err(Failure::Forbidden(format!("bot was kicked from the {kind} chat")).into())
            }
            "left" => {
                Err(Failure::Forbidden(format!("bot is not a member of the {kind} chat")).into())
            }
            "restricted" if bot["can_send_messages"] == false => {
                Err(bad("not enough rights to send text messages to the chat"))
            }
            _ => Ok(()),
        }
    }

    /// A user's id is also their private chat's, but that chat exists only once they started
    /// the bot: before, Telegram refuses with 403 (an unknown id stays `chat not found`).
    fn never_started(&self, params: &Params, err: ApiError) -> ApiError {
        let user_id = int_param(params, "chat_id").filter(|id| *id > 0);
        match user_id.and_then(|id| self.users.get(&id)) {
            Some(_) => {
                Failure::Forbidden("bot can't initiate conversation with a user".into()).into()
            }
            None => err,
        }
    }

    /// See [`FakeTelegram::delivers`].
    fn delivers(&self, update: &Value) -> bool {
        let Some(message) = update
            .get("message")
            .or_else(|| update.get("edited_message"))
        else {
            return true;
        };
        let chat = &message["chat"];
        if !matches!(chat["type"].as_str(), Some("group" | "supergroup")) {
            return true;
        }
        let bot = self.member(id_of(chat), self.bot_id).unwrap_or_default();
        if matches!(status_of(&bot), "creator" | "administrator") {
            return true;
        }
        let Some(text) = message["text"].as_str().or(message["caption"].as_str()) else {
            return true; // service messages (joins, pins, ...) reach every bot
        };
        let username = format!("@{}", self.bot["username"].as_str().unwrap_or_default());
        let entities = message["entities"].as_array().into_iter().flatten();
        let mentioned = entities
            .into_iter()
            .any(|entity| match entity["type"].as_str() {
                Some("mention") => {
                    let units: Vec<u16> = text.encode_utf16().collect();
                    let start = entity["offset"].as_u64().unwrap_or(0) as usize;
                    let end = start + entity["length"].as_u64().unwrap_or(0) as usize;
                    units.get(start..end).is_some_and(|word| {
                        String::from_utf16_lossy(word).eq_ignore_ascii_case(&username)
                    })
                }
                Some("text_mention") => entity["user"]["id"].as_i64() == Some(self.bot_id),
                _ => false,
            });
        let to_bot = message["reply_to_message"]["from"]["id"].as_i64() == Some(self.bot_id);
        text.starts_with('/') || to_bot || mentioned
    }

    fn edit_message_text(&mut self, params: &Params) -> Result<Value, ApiError> {
        if params.contains_key("inline_message_id") {
            return rendered_text(params).map(|_| json!(true));
        }
        let chat = self.chat_param(params)?;
        let key = (id_of(&chat), required_int(params, "message_id")?);
        let text = rendered_text(params)?;
        let markup = inline_keyboard(params);
        let bot_id = self.bot_id;
        let message = self
            .messages
            .get_mut(&key)
            .ok_or_else(|| bad("message to edit not found"))?;
        if message["from"]["id"].as_i64() != Some(bot_id) {
            return Err(bad("message can't be edited"));
        }
        if message["text"] == text.as_str() && message.get("reply_markup") == markup.as_ref() {
            return Err(bad(
                "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
            ));
        }
        message["text"] = json!(text);
        message["edit_date"] = json!(now());
        // Telegram removes the keyboard when an edit does not repeat it.
        let object = message.as_object_mut().expect("message object");
        match markup {
            Some(markup) => object.insert("reply_markup".to_owned(), markup),
            None => object.remove("reply_markup"),
        };
        Ok(message.clone())
    }

    fn delete_messages(&mut self, chat: &Value, ids: &[i64]) -> Result<Value, ApiError> {
        let chat_id = id_of(chat);
        let can_delete_any =
            chat["type"] == "private" || self.bot_has(chat_id, "can_delete_messages");
        let found: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|id| self.messages.contains_key(&(chat_id, *id)))
            .collect();
        let bot_id = self.bot_id;
        let forbidden = found.iter().any(|id| {
            let from = self.messages[&(chat_id, *id)]["from"]["id"].as_i64();
            !can_delete_any && from != Some(bot_id)
        });
        if forbidden {
            return Err(bad("message can't be deleted"));
        }
        for id in found {
            self.messages.remove(&(chat_id, id));
        }
        Ok(json!(true))
    }

    // --- members

    fn user(&self, user_id: i64) -> Result<Value, ApiError> {
        if user_id == self.bot_id {
            return Ok(self.bot.clone());
        }
        let user = self.users.get(&user_id).cloned();
        user.ok_or_else(|| bad("user not found"))
    }

    /// The stored member; the bot is a plain member of every known chat unless set otherwise,
    /// and a known user who never joined has left.
    fn member(&self, chat_id: i64, user_id: i64) -> Result<Value, ApiError> {
        if !self.chats.contains_key(&chat_id) {
            return Err(bad("chat not found"));
        }
        if let Some(member) = self.members.get(&(chat_id, user_id)) {
            return Ok(member.clone());
        }
        let user = self.user(user_id)?;
        let status = if user_id == self.bot_id {
            ChatMemberStatus::Member
        } else {
            ChatMemberStatus::Left
        };
        Ok(chat_member(&user, &status))
    }

    fn bot_has(&self, chat_id: i64, right: &str) -> bool {
        let bot = self.member(chat_id, self.bot_id).unwrap_or_default();
        match status_of(&bot) {
            "creator" => true,
            "administrator" => bot[right] == true,
            _ => false,
        }
    }

    fn administrators(&self, params: &Params) -> Result<Value, ApiError> {
        let chat = self.chat_param(params)?;
        if chat["type"] == "private" {
            return Err(bad("there are no administrators in the private chat"));
        }
        let chat_id = id_of(&chat);
        let admins = self
            .members
            .range((chat_id, i64::MIN)..=(chat_id, i64::MAX))
            .map(|(_, member)| member)
            .filter(|member| matches!(status_of(member), "creator" | "administrator"))
            .cloned()
            .collect();
        Ok(Value::Array(admins))
    }

    /// Checks what Telegram checks before restricting, banning or unbanning `user_id`, and
    /// returns the target's current membership.
    fn moderation_target(&self, params: &Params) -> Result<(i64, Value), ApiError> {
        let chat = self.chat_param(params)?;
        let chat_id = id_of(&chat);
        let user_id = required_int(params, "user_id")?;
        if chat["type"] == "private" {
            return Err(bad("chat member status can't be changed in private chats"));
        }
        if user_id == self.bot_id {
            return Err(bad("can't restrict self"));
        }
        if !self.bot_has(chat_id, "can_restrict_members") {
            return Err(bad("not enough rights to restrict/unrestrict chat member"));
        }
        let member = self.member(chat_id, user_id)?;
        match status_of(&member) {
            "creator" => Err(bad("can't remove chat owner")),
            "administrator" => Err(bad("user is an administrator of the chat")),
            _ => Ok((chat_id, member)),
        }
    }

    fn restrict(&mut self, params: &Params) -> Result<Value, ApiError> {
        let (chat_id, member) = self.moderation_target(params)?;
        let mut granted = match params.get("permissions") {
            Some(permissions @ Value::Object(_)) => permissions.clone(),
            _ => return Err(bad("permissions is empty")),
        };
        if granted.get("can_manage_topics").is_none() {
            // Documented: "If omitted defaults to the value of can_pin_messages".
            granted["can_manage_topics"] = granted["can_pin_messages"].clone();
        }
        let mut permissions: Map<String, Value> = PERMISSIONS
            .iter()
            .map(|name| (name.to_string(), json!(granted[name] == true)))
            .collect();
        if !flag(params, "use_independent_chat_permissions") {
            // The Bot API's documented implications between permissions.
            let granted = |name: &str| permissions[name] == true;
            let media = granted("can_send_other_messages") || granted("can_add_web_page_previews");
            let messages = media || granted("can_send_polls");
            let implied = MEDIA_PERMISSIONS
                .iter()
                .filter(|_| media)
                .chain(Some(&"can_send_messages").filter(|_| messages));
            for name in implied {
                permissions.insert(name.to_string(), json!(true));
            }
        }
        let is_member = match status_of(&member) {
            "member" => true,
            "restricted" => member["is_member"] == true,
            _ => false,
        };
        let user = member["user"].clone();
        let updated = if permissions.values().all(|allowed| *allowed == true) {
            // Granting everything lifts the restriction.
            let status = if is_member {
                ChatMemberStatus::Member
            } else {
                ChatMemberStatus::Left
            };
            chat_member(&user, &status)
        } else {
            let mut restricted = json!({
                "status": "restricted",
                "user": user,
                "is_member": is_member,
                "until_date": effective_until(params),
            });
            restricted
                .as_object_mut()
                .expect("member object")
                .extend(permissions);
            restricted
        };
        self.members.insert((chat_id, id_of(&user)), updated);
        Ok(json!(true))
    }

    fn ban(&mut self, params: &Params) -> Result<Value, ApiError> {
        let (chat_id, member) = self.moderation_target(params)?;
        let user = &member["user"];
        let status = ChatMemberStatus::Kicked {
            until_date: effective_until(params),
        };
        self.members
            .insert((chat_id, id_of(user)), chat_member(user, &status));
        Ok(json!(true))
    }

    /// Without `only_if_banned`, unbanning a present member removes them, as documented.
    fn unban(&mut self, params: &Params) -> Result<Value, ApiError> {
        let (chat_id, member) = self.moderation_target(params)?;
        let banned = status_of(&member) == "kicked";
        if banned || !flag(params, "only_if_banned") {
            let user = &member["user"];
            let left = chat_member(user, &ChatMemberStatus::Left);
            self.members.insert((chat_id, id_of(user)), left);
        }
        Ok(json!(true))
    }
}

/// `getChat`'s `ChatFullInfo`: the chat plus the fields the Bot API requires there.
fn full_info(chat: Value) -> Value {
    let mut info = chat;
    info["accent_color_id"] = json!(0);
    info["max_reaction_count"] = json!(11);
    info["accepted_gift_types"] = json!({
        "unlimited_gifts": true,
        "limited_gifts": true,
        "unique_gifts": true,
        "premium_subscription": true,
    });
    if info["type"] != "private" {
        info["permissions"] = PERMISSIONS.iter().map(|name| (*name, true)).collect();
    }
    info
}

fn commands_key(params: &Params) -> String {
    let scope = params.get("scope").cloned().unwrap_or_default();
    format!(
        "{}|{}|{}|{}",
        scope["type"].as_str().unwrap_or("default"),
        scope["chat_id"],
        scope["user_id"],
        str_param(params, "language_code").unwrap_or_default(),
    )
}

fn inline_keyboard(params: &Params) -> Option<Value> {
    params
        .get("reply_markup")
        .filter(|markup| markup.get("inline_keyboard").is_some())
        .cloned()
}

/// The message text as Telegram stores it: HTML markup checked and stripped, length limited.
fn rendered_text(params: &Params) -> Result<String, ApiError> {
    let text = str_param(params, "text").unwrap_or_default();
    if text.is_empty() {
        return Err(bad("message text is empty"));
    }
    let text = match str_param(params, "parse_mode") {
        Some(mode) if mode.eq_ignore_ascii_case("html") => {
            html_to_plain(text).map_err(|reason| bad(&format!("can't parse entities: {reason}")))?
        }
        _ => text.to_owned(),
    };
    if text.chars().count() > 4096 {
        return Err(bad("message is too long"));
    }
    Ok(text)
}

/// Parses Telegram's HTML subset, failing with Telegram's messages, so a bot that forgets to
/// escape user input fails in tests as it would in production.
fn html_to_plain(html: &str) -> Result<String, String> {
    const TAGS: [&str; 16] = [
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    ];
    let mut plain = String::new();
    let mut open: Vec<&str> = Vec::new();
    let mut rest = 0;
    while let Some(found) = html[rest..].find(['<', '&']) {
        let at = rest + found;
        plain.push_str(&html[rest..at]);
        if html[at..].starts_with('&') {
            let (decoded, used) = decode_entity(&html[at..]);
            plain.push(decoded);
            rest = at + used;
            continue;
        }
        let close = html[at..]
            .find('>')
            .ok_or_else(|| format!("Unclosed start tag at byte offset {at}"))?;
        let inner = &html[at + 1..at + close];
        rest = at + close + 1;
        if let Some(name) = inner.strip_prefix('/') {
            let name = name.trim();
            match open.pop() {
                Some(expected) if expected.eq_ignore_ascii_case(name) => {}
                Some(expected) => {
                    return Err(format!(
                        "Unmatched end tag at byte offset {at}, expected \"</{expected}>\", found \"</{name}>\""
                    ));
                }
                None => return Err(format!("Unexpected end tag at byte offset {at}")),
            }
        } else {
            let name = inner.split_whitespace().next().unwrap_or_default();
            if !TAGS.iter().any(|tag| tag.eq_ignore_ascii_case(name)) {
                return Err(format!(
                    "Unsupported start tag \"{name}\" at byte offset {at}"
                ));
            }
            open.push(name);
        }
    }
    plain.push_str(&html[rest..]);
    match open.last() {
        Some(tag) => Err(format!(
            "Can't find end tag corresponding to start tag \"{tag}\""
        )),
        None => Ok(plain),
    }
}

/// Decodes the HTML entity starting `text` (`&lt;`, `&gt;`, `&amp;`, `&quot;`, numeric),
/// returning the character and bytes used; anything else is a literal `&`, as on Telegram.
fn decode_entity(text: &str) -> (char, usize) {
    let Some(end) = text.find(';').filter(|end| *end <= 10) else {
        return ('&', 1);
    };
    let name = &text[1..end];
    let decoded = match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        _ => name
            .strip_prefix('#')
            .and_then(|number| match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => number.parse().ok(),
            })
            .and_then(char::from_u32),
    };
    decoded.map_or(('&', 1), |c| (c, end + 1))
}
