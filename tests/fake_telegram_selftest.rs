//! Proves the fake Telegram server against the real teloxide client: every shape it serves
//! deserializes into teloxide's types, and every request teloxide makes is understood.

#[path = "support/fake_telegram.rs"]
mod fake_telegram;

use std::{
    panic::AssertUnwindSafe,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use fake_telegram::*;
use futures_util::{FutureExt, StreamExt};
use serde_json::{Value, json};
use teloxide::{
    ApiError, RequestError,
    prelude::*,
    types::{
        AllowedUpdate, BotCommand, ChatMemberKind, ChatPermissions, InlineKeyboardButton,
        InlineKeyboardMarkup, MessageEntityKind, MessageId, ParseMode, UntilDate, UpdateKind,
    },
    update_listeners::{AsUpdateStream, Polling, webhooks},
    utils::command::parse_command,
};

const TOKEN: &str = "123456:TEST-token-not-real";
const BOT_USERNAME: &str = "cogbox_test_bot";
const GROUP: i64 = -1001234567890;
const WAIT: Duration = Duration::from_secs(5);

async fn start() -> (FakeTelegram, Bot) {
    let fake = FakeTelegram::start(FakeTelegramConfig {
        token: TOKEN.to_owned(),
        bot_username: BOT_USERNAME.to_owned(),
        ..FakeTelegramConfig::default()
    })
    .await;
    let bot = bot_with_token(&fake, TOKEN);
    (fake, bot)
}

fn bot_with_token(fake: &FakeTelegram, token: &str) -> Bot {
    Bot::new(token).set_api_url(fake.api_url().parse().expect("api url"))
}

fn alice() -> Value {
    user(1001, "Alice", Some("alice_w"))
}

fn group() -> Value {
    supergroup(GROUP, "Moderated")
}

fn api_error(result: Result<impl std::fmt::Debug, RequestError>) -> ApiError {
    match result {
        Err(RequestError::Api(err)) => err,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn unix_now() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    since_epoch.as_secs() as i64
}

fn only_call(fake: &FakeTelegram, method: &str) -> Value {
    let calls = fake.calls_of(method);
    assert_eq!(calls.len(), 1, "{method} calls: {calls:#?}");
    calls[0].params.clone()
}

#[tokio::test]
async fn get_me_returns_the_configured_bot() {
    let (fake, bot) = start().await;

    let me = bot.get_me().await.unwrap();

    assert_eq!(me.id, UserId(123456), "the id is the token's prefix");
    assert!(me.is_bot);
    assert_eq!(me.username(), BOT_USERNAME);
    assert_eq!(fake.calls()[0].method, "getme", "teloxide calls `GetMe`");
}

#[tokio::test]
async fn get_updates_delivers_typed_updates_and_drops_confirmed_ones() {
    let (fake, bot) = start().await;
    let command = text_message(&group(), &alice(), "/ban@cogbox_test_bot @spammer_x 10m");
    fake.push_update(message_update(&command));
    fake.add_chat(&group());
    let prompt = bot.send_message(ChatId(GROUP), "Pick one").await.unwrap();
    let prompt_json = serde_json::to_value(&prompt).unwrap();
    fake.push_update(callback_query_update(&alice(), &prompt_json, "pick:1"));

    let updates = bot.get_updates().offset(0).timeout(1).await.unwrap();

    assert_eq!(updates.len(), 2);
    let UpdateKind::Message(message) = &updates[0].kind else {
        panic!("not a message: {:?}", updates[0].kind);
    };
    let text = message.text().expect("a text message");
    assert_eq!(message.from.as_ref().unwrap().id, UserId(1001));
    assert!(message.chat.is_supergroup());
    let entities = message.entities().unwrap();
    assert_eq!(entities[0].kind, MessageEntityKind::BotCommand);
    assert_eq!((entities[0].offset, entities[0].length), (0, 20));
    assert_eq!(entities[1].kind, MessageEntityKind::Mention);
    assert_eq!((entities[1].offset, entities[1].length), (21, 10));
    let (name, args) = parse_command(text, BOT_USERNAME).unwrap();
    assert_eq!((name, args), ("ban", vec!["@spammer_x", "10m"]));
    assert!(parse_command(text, "other_bot").is_none());
    let UpdateKind::CallbackQuery(query) = &updates[1].kind else {
        panic!("not a callback query: {:?}", updates[1].kind);
    };
    assert_eq!(query.data.as_deref(), Some("pick:1"));
    assert_eq!(query.message.as_ref().unwrap().id(), prompt.id);

    // Confirming with offset = last id + 1 drops both, for good.
    let next = updates[1].id.as_offset();
    assert!(bot.get_updates().offset(next).await.unwrap().is_empty());
    assert!(bot.get_updates().await.unwrap().is_empty());
    let polls = fake.calls_of("getupdates");
    assert_eq!(polls[0].params, json!({"offset": 0, "timeout": 1}));
    assert_eq!(polls[1].params["offset"], next);
}

#[tokio::test]
async fn get_updates_honours_limit_and_negative_offset() {
    let (fake, bot) = start().await;
    for text in ["one", "two", "three"] {
        fake.push_update(message_update(&text_message(
            &private_chat(&alice()),
            &alice(),
            text,
        )));
    }

    let first_two = bot.get_updates().limit(2).await.unwrap();
    let last = bot.get_updates().offset(-1).await.unwrap();

    assert_eq!(first_two.len(), 2);
    assert_eq!(last.len(), 1);
    let UpdateKind::Message(message) = &last[0].kind else {
        panic!("not a message");
    };
    assert_eq!(message.text(), Some("three"));
}

#[tokio::test]
async fn get_updates_long_polls_until_an_update_arrives() {
    let (fake, bot) = start().await;
    let poll = tokio::spawn({
        let bot = bot.clone();
        async move { bot.get_updates().timeout(10).await }
    });
    let call = fake
        .wait_for_call("getupdates", |params| params["timeout"] == 10, WAIT)
        .await;
    let pushed = Instant::now();
    assert!(call.at <= pushed, "recorded on arrival, before the wait");

    fake.push_update(message_update(&text_message(
        &private_chat(&alice()),
        &alice(),
        "hi",
    )));

    let updates = poll.await.unwrap().unwrap();
    assert_eq!(updates.len(), 1);
    assert!(pushed.elapsed() < Duration::from_secs(5), "answered early");

    let waited = Instant::now();
    assert!(bot.get_updates().timeout(1).await.unwrap().len() == 1);
    let empty = bot.get_updates().offset(updates[0].id.as_offset());
    assert!(empty.timeout(1).await.unwrap().is_empty());
    assert!(
        waited.elapsed() >= Duration::from_millis(900),
        "waited out the timeout"
    );
}

#[tokio::test]
async fn a_second_poller_terminates_the_first_with_409() {
    let (fake, bot) = start().await;
    let first = tokio::spawn({
        let bot = bot.clone();
        async move { bot.get_updates().timeout(10).await }
    });
    fake.wait_for_call("getupdates", |_| true, WAIT).await;

    bot.get_updates().await.unwrap();

    let err = api_error(first.await.unwrap());
    assert_eq!(err, ApiError::TerminatedByOtherGetUpdates);
}

#[tokio::test]
async fn send_message_records_html_and_inline_keyboard() {
    let (fake, bot) = start().await;
    fake.add_chat(&private_chat(&alice()));
    let keyboard = InlineKeyboardMarkup::new([[
        InlineKeyboardButton::callback("Yes", "vote:yes"),
        InlineKeyboardButton::callback("No", "vote:no"),
    ]]);

    let sent = bot
        .send_message(ChatId(1001), "<b>Vote</b> &amp; win")
        .parse_mode(ParseMode::Html)
        .reply_markup(keyboard)
        .await
        .unwrap();

    assert_eq!(sent.text(), Some("Vote & win"), "markup is rendered away");
    assert_eq!(sent.from.as_ref().unwrap().id, UserId(123456));
    assert_eq!(sent.reply_markup().unwrap().inline_keyboard[0].len(), 2);
    let params = only_call(&fake, "sendMessage");
    assert_eq!(params["chat_id"], 1001);
    assert_eq!(params["text"], "<b>Vote</b> &amp; win");
    assert_eq!(params["parse_mode"], "HTML");
    assert_eq!(
        params["reply_markup"]["inline_keyboard"][0][1],
        json!({"text": "No", "callback_data": "vote:no"})
    );
}

#[tokio::test]
async fn send_message_fails_like_telegram() {
    let (fake, bot) = start().await;
    fake.add_chat(&private_chat(&alice()));

    let unescaped = bot
        .send_message(ChatId(1001), "x <script> y")
        .parse_mode(ParseMode::Html)
        .await;
    let unclosed = bot
        .send_message(ChatId(1001), "<b>bold")
        .parse_mode(ParseMode::Html)
        .await;

    assert_eq!(
        api_error(unescaped),
        ApiError::CantParseEntities(
            "Bad Request: can't parse entities: Unsupported start tag \"script\" at byte offset 2"
                .to_owned()
        )
    );
    assert!(matches!(
        api_error(unclosed),
        ApiError::CantParseEntities(_)
    ));
    let unknown_chat = bot.send_message(ChatId(42), "hi").await;
    assert_eq!(api_error(unknown_chat), ApiError::ChatNotFound);
    let empty = bot.send_message(ChatId(1001), "").await;
    assert_eq!(api_error(empty), ApiError::MessageTextIsEmpty);
    let long = bot.send_message(ChatId(1001), "x".repeat(4097)).await;
    assert_eq!(api_error(long), ApiError::MessageIsTooLong);
}

#[tokio::test]
async fn callback_queries_are_answered_once_and_messages_edited() {
    let (fake, bot) = start().await;
    fake.add_chat(&group());
    let keyboard = InlineKeyboardMarkup::new([[InlineKeyboardButton::callback("Go", "go")]]);
    let prompt = bot
        .send_message(ChatId(GROUP), "Ready?")
        .reply_markup(keyboard)
        .await
        .unwrap();
    let prompt_json = serde_json::to_value(&prompt).unwrap();
    fake.push_update(callback_query_update(&alice(), &prompt_json, "go"));
    let updates = bot.get_updates().await.unwrap();
    let UpdateKind::CallbackQuery(query) = &updates[0].kind else {
        panic!("not a callback query");
    };

    bot.answer_callback_query(query.id.clone())
        .text("Started")
        .await
        .unwrap();
    let edited = bot
        .edit_message_text(ChatId(GROUP), prompt.id, "Started")
        .await
        .unwrap();

    let answer = only_call(&fake, "answerCallbackQuery");
    assert_eq!(answer["callback_query_id"], query.id.0.as_str());
    assert_eq!(answer["text"], "Started");
    assert_eq!(edited.text(), Some("Started"));
    assert!(
        edited.reply_markup().is_none(),
        "an edit without markup drops it"
    );
    assert!(edited.edit_date().is_some());
    // Telegram's text says "query ID", teloxide matches "query id": it becomes `Unknown`.
    let again = bot.answer_callback_query(query.id.clone()).await;
    assert_eq!(
        api_error(again),
        ApiError::Unknown(
            "Bad Request: query is too old and response timeout expired or query ID is invalid"
                .to_owned()
        )
    );
    let same = bot
        .edit_message_text(ChatId(GROUP), prompt.id, "Started")
        .await;
    assert_eq!(api_error(same), ApiError::MessageNotModified);
    let missing = bot
        .edit_message_text(ChatId(GROUP), MessageId(999_999_999), "x")
        .await;
    assert_eq!(api_error(missing), ApiError::MessageToEditNotFound);
}

#[tokio::test]
async fn commands_round_trip_and_are_validated() {
    let (fake, bot) = start().await;
    let commands = [
        BotCommand::new("help", "Show help"),
        BotCommand::new("ban", "Ban a user"),
    ];

    bot.set_my_commands(commands.clone()).await.unwrap();
    let listed = bot.get_my_commands().await.unwrap();

    assert_eq!(listed, commands);
    let params = only_call(&fake, "setmycommands");
    assert_eq!(
        params["commands"][1],
        json!({"command": "ban", "description": "Ban a user"})
    );
    let invalid = bot
        .set_my_commands([BotCommand::new("Ban-User", "x")])
        .await;
    assert_eq!(
        api_error(invalid),
        ApiError::Unknown("Bad Request: BOT_COMMAND_INVALID".to_owned())
    );
}

#[tokio::test]
async fn chat_members_carry_typed_admin_rights() {
    let (fake, bot) = start().await;
    let owner = user(1, "Owner", None);
    fake.set_member(&group(), &owner, ChatMemberStatus::Creator);
    let rights = AdminRights {
        can_restrict_members: true,
        can_delete_messages: true,
        can_change_info: true,
        ..AdminRights::default()
    };
    fake.set_member(&group(), &alice(), ChatMemberStatus::Administrator(rights));
    let muted = user(5, "Muted", None);
    let forever = ChatMemberStatus::Restricted { until_date: 0 };
    fake.set_member(&group(), &muted, forever);

    let admin = bot
        .get_chat_member(ChatId(GROUP), UserId(1001))
        .await
        .unwrap();
    let creator = bot.get_chat_member(ChatId(GROUP), UserId(1)).await.unwrap();
    let me = bot
        .get_chat_member(ChatId(GROUP), UserId(123456))
        .await
        .unwrap();
    let admins = bot.get_chat_administrators(ChatId(GROUP)).await.unwrap();
    let chat = bot.get_chat(ChatId(GROUP)).await.unwrap();

    let ChatMemberKind::Administrator(admin) = admin.kind else {
        panic!("not an administrator: {admin:?}");
    };
    assert!(admin.can_restrict_members && admin.can_delete_messages && admin.can_change_info);
    assert!(!admin.can_promote_members && !admin.can_pin_messages);
    assert!(creator.is_owner());
    assert!(me.is_member(), "the bot is a member of every known chat");
    let muted = bot.get_chat_member(ChatId(GROUP), UserId(5)).await.unwrap();
    let ChatMemberKind::Restricted(muted) = muted.kind else {
        panic!("not restricted: {muted:?}");
    };
    assert_eq!(muted.until_date, UntilDate::Forever);
    assert!(muted.is_member && !muted.can_send_messages && !muted.can_send_polls);
    let admin_ids: Vec<UserId> = admins.iter().map(|member| member.user.id).collect();
    assert_eq!(admin_ids, [UserId(1), UserId(1001)]);
    assert_eq!(chat.title(), Some("Moderated"));
    let unknown = bot.get_chat_member(ChatId(GROUP), UserId(777)).await;
    assert_eq!(api_error(unknown), ApiError::UserNotFound);
}

#[tokio::test]
async fn restrict_ban_unban_and_delete_change_the_chat() {
    let (fake, bot) = start().await;
    let spammer = user(3, "Spammer", Some("spammer_x"));
    let moderator = user(2, "Mod", None);
    fake.set_member(&group(), &spammer, ChatMemberStatus::Member);
    let mod_rights = AdminRights {
        can_restrict_members: true,
        ..AdminRights::default()
    };
    fake.set_member(
        &group(),
        &moderator,
        ChatMemberStatus::Administrator(mod_rights),
    );
    let restrict = || bot.restrict_chat_member(ChatId(GROUP), UserId(3), ChatPermissions::empty());
    assert_eq!(
        api_error(restrict().await),
        ApiError::NotEnoughRightsToRestrict,
        "the bot is no admin yet"
    );
    let bot_rights = AdminRights {
        can_restrict_members: true,
        can_delete_messages: true,
        ..AdminRights::default()
    };
    let bot_status = ChatMemberStatus::Administrator(bot_rights);
    fake.set_member(&group(), &fake.bot_user(), bot_status.clone());
    let until = unix_now() + 3600;
    let until_date = DateTime::<Utc>::from_timestamp(until, 0).unwrap();

    restrict().until_date(until_date).await.unwrap();

    let params = fake.calls_of("restrictchatmember").pop().unwrap().params;
    assert_eq!(
        params["permissions"],
        json!({"can_manage_topics": false}),
        "teloxide omits false flags, except this one"
    );
    assert_eq!(params["until_date"], until);
    let muted = bot.get_chat_member(ChatId(GROUP), UserId(3)).await.unwrap();
    let ChatMemberKind::Restricted(muted) = muted.kind else {
        panic!("not restricted: {muted:?}");
    };
    assert_eq!(muted.until_date, UntilDate::Date(until_date));
    assert!(muted.is_member && !muted.can_send_messages);
    let admin_target = bot
        .restrict_chat_member(ChatId(GROUP), UserId(2), ChatPermissions::empty())
        .await;
    assert_eq!(
        api_error(admin_target),
        ApiError::Unknown("Bad Request: user is an administrator of the chat".to_owned())
    );
    bot.restrict_chat_member(ChatId(GROUP), UserId(3), ChatPermissions::all())
        .await
        .unwrap();
    let lifted = bot.get_chat_member(ChatId(GROUP), UserId(3)).await.unwrap();
    assert!(
        lifted.is_member(),
        "granting everything lifts the restriction"
    );

    bot.ban_chat_member(ChatId(GROUP), UserId(3)).await.unwrap();
    let banned = bot.get_chat_member(ChatId(GROUP), UserId(3)).await.unwrap();
    assert!(banned.is_banned());
    assert_eq!(banned.until_date(), Some(UntilDate::Forever));
    bot.unban_chat_member(ChatId(GROUP), UserId(3))
        .only_if_banned(true)
        .await
        .unwrap();
    assert!(fake.member(GROUP, 3).unwrap()["status"] == "left");

    let spam = text_message(&group(), &spammer, "buy now");
    let more_spam = text_message(&group(), &spammer, "really");
    fake.push_update(message_update(&spam));
    fake.push_update(message_update(&more_spam));
    let spam_id = MessageId(spam["message_id"].as_i64().unwrap() as i32);
    let more_spam_id = MessageId(more_spam["message_id"].as_i64().unwrap() as i32);
    bot.delete_message(ChatId(GROUP), spam_id).await.unwrap();
    let twice = bot.delete_message(ChatId(GROUP), spam_id).await;
    assert_eq!(api_error(twice), ApiError::MessageToDeleteNotFound);
    fake.set_member(&group(), &fake.bot_user(), ChatMemberStatus::Member);
    let without_rights = bot
        .delete_messages(ChatId(GROUP), [spam_id, more_spam_id])
        .await;
    assert_eq!(api_error(without_rights), ApiError::MessageCantBeDeleted);
    assert_eq!(
        fake.calls_of("deletemessages")[0].params["message_ids"],
        json!([spam_id.0, more_spam_id.0])
    );
    fake.set_member(&group(), &fake.bot_user(), bot_status);
    let skipping_missing = bot.delete_messages(ChatId(GROUP), [spam_id, more_spam_id]);
    skipping_missing.await.unwrap();
    let gone = bot.delete_message(ChatId(GROUP), more_spam_id).await;
    assert_eq!(api_error(gone), ApiError::MessageToDeleteNotFound);
}

#[tokio::test]
async fn injected_failures_map_to_teloxide_errors() {
    let (fake, bot) = start().await;
    fake.add_chat(&private_chat(&alice()));
    fake.fail_next("sendMessage", Failure::RetryAfter(7));
    fake.fail_times("getme", 2, Failure::BadRequest("boom".to_owned()));
    fake.fail_next("getchat", Failure::Unauthorized);
    fake.fail_next(
        "editmessagetext",
        Failure::Forbidden("bot was blocked by the user".to_owned()),
    );

    let limited = bot.send_message(ChatId(1001), "hi").await;

    match limited {
        Err(RequestError::RetryAfter(wait)) => assert_eq!(wait.seconds(), 7),
        other => panic!("expected RetryAfter, got {other:?}"),
    }
    assert_eq!(fake.calls_of("sendmessage").len(), 1, "Bot does not retry");
    bot.send_message(ChatId(1001), "hi").await.unwrap();
    for _ in 0..2 {
        let boom = ApiError::Unknown("Bad Request: boom".to_owned());
        assert_eq!(api_error(bot.get_me().await), boom);
    }
    bot.get_me().await.unwrap();
    assert_eq!(
        api_error(bot.get_chat(ChatId(1001)).await),
        ApiError::InvalidToken
    );
    let blocked = bot.edit_message_text(ChatId(1001), MessageId(1), "x").await;
    assert_eq!(api_error(blocked), ApiError::BotBlocked);
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized_unless_any_token_is_accepted() {
    let (fake, _) = start().await;
    let intruder = bot_with_token(&fake, "123456:WRONG");

    assert_eq!(api_error(intruder.get_me().await), ApiError::InvalidToken);
    assert_eq!(
        fake.calls_of("getme").len(),
        1,
        "rejected calls are recorded"
    );

    let lenient = FakeTelegram::start(FakeTelegramConfig {
        accept_any_token: true,
        ..FakeTelegramConfig::default()
    })
    .await;
    bot_with_token(&lenient, "999:ANY").get_me().await.unwrap();
}

#[tokio::test]
async fn raw_requests_in_every_encoding_get_bot_api_shapes() {
    let (fake, _) = start().await;
    fake.add_chat(&private_chat(&alice()));
    fake.set_member(&group(), &alice(), ChatMemberStatus::Member);
    let http = reqwest::Client::new();
    let url = |method: &str| format!("{}/bot{TOKEN}/{method}", fake.api_url());
    let body = |response: reqwest::Response| async move {
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str::<Value>(&text).unwrap())
    };

    let unknown = body(http.post(url("frobnicate")).send().await.unwrap()).await;
    let upper = body(http.get(url("GETME")).send().await.unwrap()).await;
    let form = http
        .post(url("sendMessage"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("chat_id=1001&text=42&reply_markup=%7B%22inline_keyboard%22%3A%5B%5D%7D")
        .send()
        .await
        .unwrap();
    let form = body(form).await;
    let query = url(&format!("getChatMember?chat_id={GROUP}&user_id=1001"));
    let query = body(http.get(query).send().await.unwrap()).await;
    fake.fail_next("getme", Failure::RetryAfter(3));
    let limited = body(http.post(url("getMe")).send().await.unwrap()).await;
    let not_bot = body(
        http.get(format!("{}/nope/getMe", fake.api_url()))
            .send()
            .await
            .unwrap(),
    )
    .await;

    let not_found = json!({"ok": false, "error_code": 404, "description": "Not Found"});
    assert_eq!(unknown, (StatusCode::NOT_FOUND, not_found.clone()));
    assert_eq!(not_bot, (StatusCode::NOT_FOUND, not_found));
    assert_eq!(upper.0, StatusCode::OK);
    assert_eq!(upper.1["result"]["username"], BOT_USERNAME);
    assert_eq!(form.1["result"]["text"], "42");
    let sent = &fake.calls_of("sendmessage")[0].params;
    assert_eq!(
        sent,
        &json!({"chat_id": 1001, "text": "42", "reply_markup": {"inline_keyboard": []}}),
        "numbers and JSON objects are decoded, text stays text"
    );
    assert_eq!(query.1["result"]["status"], "member");
    let asked = &fake.calls_of("getchatmember")[0].params;
    assert_eq!(asked, &json!({"chat_id": GROUP, "user_id": 1001}));
    assert_eq!(
        limited,
        (
            StatusCode::TOO_MANY_REQUESTS,
            json!({
                "ok": false,
                "error_code": 429,
                "description": "Too Many Requests: retry after 3",
                "parameters": {"retry_after": 3},
            })
        )
    );
}

#[tokio::test]
async fn webhook_updates_reach_teloxides_axum_listener() {
    let (fake, bot) = start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    // Telegram posts only to https on 443, 80, 88 or 8443: TLS ends at a proxy before the bot.
    let url = "https://bot.example.com/telegram".parse().unwrap();
    fake.proxy_webhooks_to(&format!("http://{address}"));
    let options = webhooks::Options::new(address, url).secret_token("s3cret-token".to_owned());
    let (mut updates, _stop, router) = webhooks::axum_to_router(bot.clone(), options)
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let set = only_call(&fake, "setWebhook");
    assert_eq!(set["url"], "https://bot.example.com/telegram");
    assert_eq!(set["secret_token"], "s3cret-token");
    assert_eq!(set["drop_pending_updates"], false, "multipart text decoded");
    let polling = bot.get_updates().await;
    assert!(
        matches!(api_error(polling), ApiError::Unknown(text) if text.starts_with("Conflict: can't use getUpdates")),
        "teloxide's CantGetUpdates does not match Telegram's real text"
    );

    let hello = message_update(&text_message(&group(), &alice(), "/hello"));
    assert_eq!(fake.deliver_webhook(&hello).await, Some(StatusCode::OK));
    let chatter = message_update(&text_message(&group(), &alice(), "chatter"));
    assert_eq!(fake.deliver_webhook(&chatter).await, None, "privacy mode");
    let hook_url = format!("http://{address}/telegram");
    let forged = fake.post_webhook(&hook_url, Some("wrong"), &hello).await;
    assert_eq!(forged, StatusCode::UNAUTHORIZED);
    assert_eq!(
        fake.post_webhook(&hook_url, None, &hello).await,
        StatusCode::UNAUTHORIZED
    );
    let outside = fake.post_webhook("http://example.invalid/hook", None, &hello);
    let refused = AssertUnwindSafe(outside).catch_unwind().await;
    assert!(refused.is_err(), "webhooks never leave loopback");

    let stream = updates.as_stream();
    tokio::pin!(stream);
    let received = tokio::time::timeout(WAIT, stream.next()).await.unwrap();
    let received = received.unwrap().unwrap();
    let UpdateKind::Message(message) = received.kind else {
        panic!("not a message");
    };
    assert_eq!(message.text(), Some("/hello"));
    // The bot can answer a chat it only saw through the webhook.
    bot.send_message(message.chat.id, "hi").await.unwrap();
}

#[tokio::test]
async fn polling_builder_deletes_a_webhook_only_when_one_is_set() {
    let (fake, bot) = start().await;

    let _ = Polling::builder(bot.clone()).delete_webhook().await;
    assert!(fake.calls_of("deletewebhook").is_empty());
    bot.set_webhook("https://bot.example.com/hook".parse().unwrap())
        .await
        .unwrap();
    let _ = Polling::builder(bot.clone()).delete_webhook().await;

    let methods: Vec<String> = fake.calls().into_iter().map(|call| call.method).collect();
    let expected = [
        "getwebhookinfo",
        "setwebhook",
        "getwebhookinfo",
        "deletewebhook",
    ];
    assert_eq!(methods, expected);
    assert!(bot.get_updates().await.unwrap().is_empty());
}

#[tokio::test]
async fn polling_listener_confirms_offsets_and_waits_out_retry_after() {
    let (fake, bot) = start().await;
    let first = fake.push_update(message_update(&text_message(
        &private_chat(&alice()),
        &alice(),
        "a",
    )));
    fake.fail_next("getupdates", Failure::RetryAfter(1));
    let mut polling = Polling::builder(bot)
        .timeout(Duration::from_secs(1))
        .build();
    let stream = polling.as_stream();
    tokio::pin!(stream);

    let limited = stream.next().await.unwrap();
    let started = Instant::now();
    let update = stream.next().await.unwrap().unwrap();

    assert!(matches!(limited, Err(RequestError::RetryAfter(_))));
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "slept retry_after"
    );
    assert_eq!(i64::from(update.id.0), first);
    let second = fake.push_update(message_update(&text_message(
        &private_chat(&alice()),
        &alice(),
        "b",
    )));
    let update = stream.next().await.unwrap().unwrap();
    assert_eq!(i64::from(update.id.0), second);
    let offsets: Vec<Value> = fake
        .wait_for_calls("getupdates", 3, WAIT)
        .await
        .into_iter()
        .map(|call| call.params["offset"].clone())
        .collect();
    assert_eq!(offsets, [json!(0), json!(0), json!(first + 1)]);
}

#[tokio::test]
async fn chat_member_updates_need_allowed_updates() {
    let (fake, bot) = start().await;
    let spammer = user(3, "Spammer", None);
    let old = chat_member(&spammer, &ChatMemberStatus::Member);
    let kicked = ChatMemberStatus::Kicked { until_date: 0 };
    let new = chat_member(&spammer, &kicked);
    let change = chat_member_update(&group(), &alice(), &old, &new);
    fake.push_update(change.clone());

    assert!(bot.get_updates().await.unwrap().is_empty(), "not asked for");
    fake.push_update(change);
    let updates = bot
        .get_updates()
        .allowed_updates([AllowedUpdate::Message, AllowedUpdate::ChatMember])
        .await
        .unwrap();

    let UpdateKind::ChatMember(change) = &updates[0].kind else {
        panic!("not a chat member update: {:?}", updates[0].kind);
    };
    assert!(change.new_chat_member.is_banned());
    assert_eq!(fake.member(GROUP, 3).unwrap()["status"], "kicked");
    let params = &fake.calls_of("getupdates")[1].params;
    assert_eq!(params["allowed_updates"], json!(["message", "chat_member"]));
}

#[tokio::test]
async fn text_mentions_reach_teloxide_with_their_user() {
    let (fake, bot) = start().await;
    // An administrator bot reads every group message, not only those starting with '/'.
    let admin = ChatMemberStatus::Administrator(AdminRights::default());
    fake.set_member(&group(), &fake.bot_user(), admin);
    let anonymous = user(4, "Ünïcode 😀 Name", None);
    let text = "😀 /warn Ünïcode 😀 Name please";
    let message = with_text_mention(
        text_message(&group(), &alice(), text),
        "Ünïcode 😀 Name",
        &anonymous,
    );
    let reply = replying_to(text_message(&group(), &alice(), "/mute"), &message);
    fake.push_update(message_update(&message));
    fake.push_update(message_update(&reply));

    let updates = bot.get_updates().await.unwrap();

    let UpdateKind::Message(message) = &updates[0].kind else {
        panic!("not a message");
    };
    let entities = message.entities().unwrap();
    assert_eq!(entities[0].kind, MessageEntityKind::BotCommand);
    assert_eq!(
        (entities[0].offset, entities[0].length),
        (3, 5),
        "UTF-16 units"
    );
    let MessageEntityKind::TextMention { user } = &entities[1].kind else {
        panic!("not a text mention: {entities:?}");
    };
    assert_eq!(user.id, UserId(4));
    let parsed = message.parse_entities().unwrap();
    assert_eq!(parsed[1].text(), "Ünïcode 😀 Name");
    let UpdateKind::Message(reply) = &updates[1].kind else {
        panic!("not a message");
    };
    assert_eq!(reply.reply_to_message().unwrap().id, message.id);
}

#[tokio::test]
async fn dispatcher_panics_when_get_me_fails() {
    let (fake, _) = start().await;
    let handler = || Update::filter_message().endpoint(|| async { Ok::<(), RequestError>(()) });
    let intruder = bot_with_token(&fake, "123456:WRONG");

    let mut dispatcher = Dispatcher::builder(intruder.clone(), handler()).build();
    let outcome = AssertUnwindSafe(dispatcher.dispatch()).catch_unwind().await;

    assert!(outcome.is_err(), "dispatch() panics on a failed getMe");
    let mut dispatcher = Dispatcher::builder(intruder.clone(), handler()).build();
    let listener = Polling::builder(intruder).build();
    let errors = LoggingErrorHandler::new();
    let result = dispatcher
        .try_dispatch_with_listener(listener, errors)
        .await;
    assert!(matches!(
        result,
        Err(RequestError::Api(ApiError::InvalidToken))
    ));
    let methods: Vec<String> = fake.calls().into_iter().map(|call| call.method).collect();
    assert_eq!(methods, ["getwebhookinfo", "getme", "getme"]);
}

#[tokio::test]
async fn send_limits_are_enforced_with_retry_after_and_shared_by_every_chat() {
    let (fake, _) = start().await;
    let http = reqwest::Client::new();
    let send = |chat: i64| {
        let request = http
            .post(format!("{}/bot{TOKEN}/sendMessage", fake.api_url()))
            .header("content-type", "application/json")
            .body(json!({"chat_id": chat, "text": "hi"}).to_string());
        async move {
            let response = request.send().await.unwrap();
            let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
            body["parameters"]["retry_after"].as_u64()
        }
    };
    for id in 1..=40 {
        fake.add_chat(&private_chat(&user(id, "U", None)));
    }
    fake.add_chat(&group());
    // The bucket refills from the first message on, so the time counts from there.
    let started = Instant::now();
    assert_eq!(send(1).await, None);
    assert_eq!(send(1).await, Some(1), "one message a second per chat");
    let mut limited = 0;
    for id in 2..=40 {
        limited += usize::from(send(id).await.is_some());
    }
    // A bucket of 30, one taken by the first message, that refills at 30/s meanwhile.
    let allowed = 29 + (started.elapsed().as_secs_f64() * 30.0) as usize;
    assert!(
        limited > 0 && 39 - limited <= allowed,
        "30 a second overall, whatever the chat: {limited} limited"
    );
    assert_eq!(fake.throttled(), limited + 1);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(send(GROUP).await, None, "limits are per second");
}

#[tokio::test]
async fn set_webhook_wants_https_on_telegrams_ports() {
    let (fake, bot) = start().await;
    let set = |url: &str| bot.set_webhook(url.parse().unwrap());

    assert_eq!(
        api_error(set("http://bot.example.com/hook").await),
        ApiError::WebhookRequireHttps
    );
    assert_eq!(
        api_error(set("https://bot.example.com:8080/hook").await),
        ApiError::BadWebhookPort
    );
    assert!(fake.calls_of("getwebhookinfo").is_empty());
    for url in [
        "https://bot.example.com/hook",
        "https://bot.example.com:80/hook",
        "https://bot.example.com:88/hook",
        "https://bot.example.com:8443/hook",
    ] {
        set(url).await.unwrap_or_else(|e| panic!("{url}: {e}"));
    }
    let info = bot.get_webhook_info().await.unwrap();
    assert_eq!(
        info.url.map(|u| u.to_string()).as_deref(),
        Some("https://bot.example.com:8443/hook")
    );
}

#[tokio::test]
async fn a_direct_message_needs_the_user_to_have_started_the_bot() {
    let (fake, bot) = start().await;
    // Alice is known from the group, but never wrote to the bot privately.
    fake.push_update(message_update(&text_message(&group(), &alice(), "/help")));

    let refused = bot.send_message(ChatId(1001), "hi").await;
    // teloxide 0.17 knows this error only by its old "Unauthorized:" text, so the current one
    // arrives as Unknown, with the 403 description as Telegram sends it.
    assert_eq!(
        api_error(refused),
        ApiError::Unknown("Forbidden: bot can't initiate conversation with a user".to_owned())
    );
    let stranger = bot.send_message(ChatId(42), "hi").await;
    assert_eq!(api_error(stranger), ApiError::ChatNotFound);

    let start = text_message(&private_chat(&alice()), &alice(), "/start");
    fake.push_update(message_update(&start));
    bot.send_message(ChatId(1001), "hi").await.unwrap();
}

/// A bot removed from a group cannot write there, and one restricted from writing is told it
/// lacks the right, in Telegram's own words as teloxide reads them.
#[tokio::test]
async fn a_bot_removed_or_restricted_in_a_group_cannot_post_there() {
    let (fake, bot) = start().await;
    fake.add_chat(&group());
    let me = fake.bot_user();
    for (status, refusal) in [
        (
            ChatMemberStatus::Kicked { until_date: 0 },
            ApiError::BotKickedFromSupergroup,
        ),
        (
            ChatMemberStatus::Left,
            ApiError::Unknown("Forbidden: bot is not a member of the supergroup chat".to_owned()),
        ),
        (
            ChatMemberStatus::Restricted { until_date: 0 },
            ApiError::Unknown(
                "Bad Request: not enough rights to send text messages to the chat".to_owned(),
            ),
        ),
    ] {
        fake.set_member(&group(), &me, status);
        let refused = bot.send_message(ChatId(GROUP), "hi").await;
        assert_eq!(api_error(refused), refusal);
    }
    fake.set_member(&group(), &me, ChatMemberStatus::Member);
    bot.send_message(ChatId(GROUP), "back").await.unwrap();
}

#[tokio::test]
async fn privacy_mode_hides_group_chatter_unless_the_bot_is_an_administrator() {
    let (fake, bot) = start().await;
    assert!(!bot.get_me().await.unwrap().can_read_all_group_messages);
    fake.add_chat(&group());
    let prompt = bot.send_message(ChatId(GROUP), "Pick one").await.unwrap();
    let prompt = serde_json::to_value(&prompt).unwrap();
    let chatter = text_message(&group(), &alice(), "hello all");
    let sent = [
        chatter.clone(),
        text_message(&group(), &alice(), "/roll 2d6"),
        text_message(&group(), &alice(), "hey @cogbox_test_bot, roll"),
        text_message(&group(), &alice(), "hey @someone_else"),
        replying_to(text_message(&group(), &alice(), "this one"), &prompt),
        replying_to(text_message(&group(), &alice(), "me too"), &chatter),
        text_message(&private_chat(&alice()), &alice(), "hello bot"),
    ];
    for message in &sent {
        fake.push_update(message_update(message));
    }

    let texts = |updates: Vec<teloxide::types::Update>| -> Vec<String> {
        updates
            .into_iter()
            .filter_map(|u| match u.kind {
                UpdateKind::Message(m) => m.text().map(str::to_owned),
                _ => None,
            })
            .collect()
    };
    let updates = bot.get_updates().await.unwrap();
    let next = updates.last().map(|u| u.id.0 as i32 + 1).unwrap();
    assert_eq!(
        texts(updates),
        [
            "/roll 2d6",
            "hey @cogbox_test_bot, roll",
            "this one",
            "hello bot"
        ]
    );

    let admin = ChatMemberStatus::Administrator(AdminRights::default());
    fake.set_member(&group(), &fake.bot_user(), admin);
    fake.push_update(message_update(&text_message(
        &group(),
        &alice(),
        "now seen",
    )));
    let updates = bot.get_updates().offset(next).await.unwrap();
    assert_eq!(texts(updates), ["now seen"]);
}

#[tokio::test]
async fn delete_messages_takes_1_to_100_ids() {
    let (fake, bot) = start().await;
    fake.add_chat(&group());
    let too_many: Vec<MessageId> = (1..=101).map(MessageId).collect();
    let refused = bot.delete_messages(ChatId(GROUP), too_many).await;
    assert!(
        matches!(api_error(refused), ApiError::Unknown(text) if text.starts_with("Bad Request:"))
    );
    let none = bot
        .delete_messages(ChatId(GROUP), Vec::<MessageId>::new())
        .await;
    assert!(matches!(api_error(none), ApiError::Unknown(_)));
    let hundred: Vec<MessageId> = (1..=100).map(MessageId).collect();
    bot.delete_messages(ChatId(GROUP), hundred).await.unwrap();
}
