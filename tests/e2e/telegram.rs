//! Telegram end to end: the real binary against the fake Bot API, in polling and webhook mode.

use std::time::Duration;

use serde_json::{Value, json};

use crate::fake_telegram::{
    AdminRights, Call, ChatMemberStatus, Failure, FakeTelegram, FakeTelegramConfig,
    callback_query_update, chat_member, chat_member_update, members_joined, message_update,
    private_chat, replying_to, supergroup, text_message, user,
};
use crate::support::{Running, Sandbox};

const WAIT: Duration = Duration::from_secs(20);
const GROUP: i64 = -1_001_234_567_890;
pub const SECRET: &str = "test-secret_TOKEN-0123456789";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Polling,
    Webhook,
}

const MODES: [Mode; 2] = [Mode::Polling, Mode::Webhook];

/// A fake Telegram with one group (alice a member, mod an admin who may restrict, spammer a
/// member; the bot not yet an admin) and cogbox running against it.
struct Harness {
    fake: FakeTelegram,
    bot: Running,
    mode: Mode,
    /// The webhook as the bot registered it, made reachable over plain http on loopback.
    webhook: Option<String>,
    group: Value,
    alice: Value,
    moderator: Value,
    spammer: Value,
    _sandbox: Sandbox,
}

/// The public address cogbox registers in webhook mode: Telegram wants https on 443, 80, 88 or
/// 8443, and TLS ends at a reverse proxy in front of cogbox.
pub const PUBLIC_URL: &str = "https://bot.example.com";

/// Where that proxy forwards `registered` (the URL cogbox gave setWebhook): cogbox's own
/// listener on loopback `port`, over plain http.
pub fn behind_proxy(registered: &str, port: u16) -> String {
    assert!(registered.starts_with(PUBLIC_URL), "{registered}");
    registered.replacen(PUBLIC_URL, &format!("http://127.0.0.1:{port}"), 1)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `cogbox run` against `fake`: long polling, or a webhook on `webhook_port` with [`SECRET`].
pub fn run_command(
    sandbox: &Sandbox,
    fake: &FakeTelegram,
    webhook_port: Option<u16>,
) -> std::process::Command {
    let mut command = sandbox.command(&["run"]);
    command
        .env(
            "COGBOX_TELEGRAM__TOKEN",
            FakeTelegramConfig::default().token,
        )
        .env("COGBOX_TELEGRAM__API_URL", fake.api_url());
    if let Some(port) = webhook_port {
        command
            .env("COGBOX_TELEGRAM__MODE", "webhook")
            .env(
                "COGBOX_TELEGRAM__WEBHOOK__LISTEN",
                format!("127.0.0.1:{port}"),
            )
            .env("COGBOX_TELEGRAM__WEBHOOK__PUBLIC_URL", PUBLIC_URL)
            .env("COGBOX_TELEGRAM__WEBHOOK__SECRET_TOKEN", SECRET);
    }
    command
}

impl Harness {
    async fn start(mode: Mode) -> Self {
        let fake = FakeTelegram::start(FakeTelegramConfig::default()).await;
        let group = supergroup(GROUP, "Test <group>");
        let alice = user(1001, "Alice", Some("alice"));
        let moderator = user(1002, "Mod", Some("mod"));
        let spammer = user(1003, "Spammer", Some("spammer_x"));
        fake.set_member(&group, &alice, ChatMemberStatus::Member);
        fake.set_member(&group, &spammer, ChatMemberStatus::Member);
        let restrict = AdminRights {
            can_restrict_members: true,
            ..AdminRights::default()
        };
        fake.set_member(
            &group,
            &moderator,
            ChatMemberStatus::Administrator(restrict),
        );
        fake.set_member(&group, &fake.bot_user(), ChatMemberStatus::Member);

        let sandbox = Sandbox::new();
        let port = (mode == Mode::Webhook).then(free_port);
        let command = run_command(&sandbox, &fake, port);
        let bot = sandbox.spawn(command);
        let webhook = match mode {
            Mode::Polling => {
                fake.wait_for_call("getupdates", |_| true, WAIT).await;
                None
            }
            Mode::Webhook => {
                let call = fake.wait_for_call("setwebhook", |_| true, WAIT).await;
                let url = call.params["url"].as_str().unwrap();
                Some(behind_proxy(url, port.unwrap()))
            }
        };
        Self {
            fake,
            bot,
            mode,
            webhook,
            group,
            alice,
            moderator,
            spammer,
            _sandbox: sandbox,
        }
    }

    /// Hands an update to the bot the way this mode receives them, unless Telegram's privacy
    /// mode keeps it from the bot.
    async fn deliver(&self, update: Value) {
        match &self.webhook {
            None => {
                self.fake.push_update(update);
            }
            Some(_) if !self.fake.delivers(&update) => {}
            Some(url) => {
                let status = self.fake.post_webhook(url, Some(SECRET), &update).await;
                assert_eq!(status, 200, "a valid update must be accepted");
            }
        }
    }

    /// `from` writes `text` in `chat`; returns the message.
    async fn say(&self, chat: &Value, from: &Value, text: &str) -> Value {
        let message = text_message(chat, from, text);
        self.deliver(message_update(&message)).await;
        message
    }

    /// The bot's answer to `message`.
    async fn answer(&self, message: &Value) -> Call {
        let id = message["message_id"].clone();
        self.fake
            .wait_for_call(
                "sendmessage",
                |p| p["reply_parameters"]["message_id"] == id,
                WAIT,
            )
            .await
    }

    async fn ask(&self, chat: &Value, from: &Value, text: &str) -> String {
        let message = self.say(chat, from, text).await;
        let call = self.answer(&message).await;
        assert_eq!(call.params["parse_mode"], "HTML", "{:?}", self.mode);
        call.params["text"].as_str().unwrap().to_owned()
    }

    /// `from` answers `to` with `text` in the group; returns the bot's answer.
    async fn reply(&self, from: &Value, text: &str, to: &Value) -> String {
        let message = replying_to(text_message(&self.group, from, text), to);
        self.deliver(message_update(&message)).await;
        let call = self.answer(&message).await;
        call.params["text"].as_str().unwrap().to_owned()
    }

    /// Waits until the bot is provably idle: the answer to a later command has arrived, so
    /// what the earlier updates were going to do is done.
    async fn settle(&self) {
        let probe = user(1099, "Probe", Some("probe_user"));
        let message = self.say(&self.group, &probe, "/roll 1d1").await;
        assert_eq!(self.answer(&message).await.params["text"], "1d1: [1] = 1");
    }

    /// Makes the bot an administrator with `rights`, announced by a `my_chat_member` update
    /// (which drops the rights cogbox cached) as Telegram does.
    async fn promote_bot(&self, rights: AdminRights) {
        let promoted = ChatMemberStatus::Administrator(rights);
        let bot = self.fake.bot_user();
        self.fake.set_member(&self.group, &bot, promoted.clone());
        let old = chat_member(&bot, &ChatMemberStatus::Member);
        let new = chat_member(&bot, &promoted);
        let mut update = chat_member_update(&self.group, &self.moderator, &old, &new);
        update["my_chat_member"] = update
            .as_object_mut()
            .unwrap()
            .remove("chat_member")
            .unwrap();
        self.deliver(update).await;
    }

    fn answered(&self, message: &Value) -> bool {
        let id = &message["message_id"];
        self.fake
            .calls_of("sendmessage")
            .iter()
            .any(|c| &c.params["reply_parameters"]["message_id"] == id)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_published_and_answered_in_escaped_html() {
    for mode in MODES {
        let h = Harness::start(mode).await;
        let published = &h.fake.calls_of("setmycommands")[0].params["commands"];
        let roll = json!({"command": "roll", "description": "Roll dice, e.g. 2d6 or 1d20+5"});
        assert!(published.as_array().unwrap().contains(&roll), "{published}");
        assert!(
            published
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["command"] == "mute")
        );
        match mode {
            Mode::Polling => {
                let names: Vec<String> = h.fake.calls().into_iter().map(|c| c.method).collect();
                let deleted = names
                    .iter()
                    .position(|m| m == "deletewebhook")
                    .expect("webhook deleted");
                assert!(deleted < names.iter().position(|m| m == "getupdates").unwrap());
                let poll = &h.fake.calls_of("getupdates")[0].params;
                assert_eq!(
                    poll["allowed_updates"],
                    json!([
                        "message",
                        "edited_message",
                        "callback_query",
                        "chat_member",
                        "my_chat_member"
                    ])
                );
            }
            Mode::Webhook => {
                let hook = &h.fake.calls_of("setwebhook")[0].params;
                assert_eq!(hook["secret_token"], SECRET);
                assert_eq!(hook["drop_pending_updates"], false);
                assert!(
                    hook["url"].as_str().unwrap().contains("/webhook/"),
                    "{hook}"
                );
                assert_eq!(
                    hook["allowed_updates"],
                    json!([
                        "message",
                        "edited_message",
                        "callback_query",
                        "chat_member",
                        "my_chat_member"
                    ])
                );
            }
        }

        let dm = private_chat(&h.alice);
        assert_eq!(
            h.ask(&dm, &h.alice, "/roll 3d1+2").await,
            "3d1+2: [1, 1, 1] + 2 = 5"
        );
        let roll = h.ask(&dm, &h.alice, "/roll 2d6").await;
        assert!(
            roll.starts_with("2d6: [") && roll.contains("] = "),
            "{roll}"
        );
        let help = h.ask(&dm, &h.alice, "/help").await;
        assert!(
            help.starts_with("<b>Commands</b>\nType /help &lt;command&gt; for details."),
            "{help}"
        );
        assert!(
            help.contains(
                "<b>fun</b>\n/ping - Check that the bot is alive\n/roll &lt;dice&gt; - Roll dice"
            ),
            "{help}"
        );
        // A chat with a bot begins with /start, a deep link's with a parameter: the help.
        assert_eq!(h.ask(&dm, &h.alice, "/start").await, help);
        assert_eq!(h.ask(&dm, &h.alice, "/start ref-42").await, help);
        let chosen = h
            .ask(
                &dm,
                &h.alice,
                "/choose <a href=\"x\">me</a> | <a href=\"x\">me</a>",
            )
            .await;
        assert_eq!(
            chosen, "I choose: &lt;a href=\"x\"&gt;me&lt;/a&gt;",
            "user text is escaped, never markup"
        );
        assert_eq!(
            h.ask(&dm, &h.alice, "/nope").await,
            "Unknown command /nope. Try /help."
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commands_other_bots_and_inline_buttons() {
    for mode in MODES {
        let h = Harness::start(mode).await;
        let others = h.say(&h.group, &h.alice, "/roll@other_bot 1d1").await;
        let foreign = h.say(&h.group, &h.alice, "/weather").await;
        let flip = h.say(&h.group, &h.alice, "/coinflip@Cogbox_Test_Bot").await;
        let call = h.answer(&flip).await;
        let side = call.params["text"].as_str().unwrap();
        assert!(side == "Heads." || side == "Tails.", "{side}");
        assert_eq!(
            call.params["reply_markup"],
            json!({"inline_keyboard": [[{"text": "Flip again", "callback_data": "/coinflip"}]]})
        );
        let bot_message = text_message(&h.group, &h.fake.bot_user(), side);
        let press = callback_query_update(&h.moderator, &bot_message, "/coinflip");
        let query_id = press["callback_query"]["id"].clone();
        let before = h.fake.calls_of("sendmessage").len();
        h.deliver(press).await;
        h.fake
            .wait_for_call(
                "answercallbackquery",
                |p| p["callback_query_id"] == query_id,
                WAIT,
            )
            .await;
        let flips = h.fake.wait_for_calls("sendmessage", before + 1, WAIT).await;
        let again = &flips[before].params;
        assert_eq!(again["chat_id"], GROUP);
        assert!(
            again["text"] == "Heads." || again["text"] == "Tails.",
            "{again}"
        );
        h.settle().await;
        assert!(
            !h.answered(&others) && !h.answered(&foreign),
            "{mode:?}: commands for other bots are ignored"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderation_follows_telegram_admin_rights() {
    for mode in MODES {
        let h = Harness::start(mode).await;
        // In privacy mode a bot that is not an administrator sees only commands, replies to
        // it and mentions of it: the spammer's command is how it learns @spammer_x.
        h.say(&h.group, &h.spammer, "/help").await;
        assert_eq!(
            h.ask(&h.group, &h.alice, "/mute @spammer_x 10m").await,
            "/mute: you need the Ban Users permission"
        );
        // Being an administrator is not enough: muting, kicking and banning take Ban Users.
        let editor = user(1005, "Editor", Some("editor"));
        let no_restrict = AdminRights {
            can_delete_messages: true,
            can_change_info: true,
            can_pin_messages: true,
            ..AdminRights::default()
        };
        h.fake.set_member(
            &h.group,
            &editor,
            ChatMemberStatus::Administrator(no_restrict),
        );
        for command in [
            "/mute @spammer_x 10m",
            "/kick @spammer_x",
            "/ban @spammer_x",
        ] {
            let verb = &command[1..command.find(' ').unwrap()];
            assert_eq!(
                h.ask(&h.group, &editor, command).await,
                format!("/{verb}: you need the Ban Users permission")
            );
        }
        assert_eq!(
            h.ask(&h.group, &h.moderator, "/mute @spammer_x 10m").await,
            "/mute: I need the Ban Users right to mute @spammer_x"
        );
        h.settle().await;
        assert!(
            h.fake.calls_of("restrictchatmember").is_empty(),
            "refusals make no API call"
        );

        // Promoting the bot arrives as a my_chat_member update, which drops the cached rights.
        h.promote_bot(AdminRights {
            can_restrict_members: true,
            can_delete_messages: true,
            ..AdminRights::default()
        })
        .await;

        let muted = h
            .ask(&h.group, &h.moderator, "/mute @spammer_x 10m spam")
            .await;
        assert_eq!(muted, "Muted @spammer_x for 10m. Reason: spam");
        let restrict = &h.fake.calls_of("restrictchatmember")[0].params;
        assert_eq!(
            (restrict["chat_id"].as_i64(), restrict["user_id"].as_i64()),
            (Some(GROUP), Some(1003))
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let until = restrict["until_date"].as_i64().unwrap();
        assert!(
            (now + 590..=now + 610).contains(&until),
            "until {until}, now {now}"
        );
        assert_eq!(
            restrict["permissions"]["can_send_messages"],
            Value::Null,
            "nothing is granted"
        );

        assert_eq!(
            h.ask(&h.group, &h.moderator, "/ban @mod").await,
            "/ban: you can't ban yourself"
        );
        h.say(&h.group, &h.alice, "hi").await;
        let admin = user(1004, "Admin", Some("boss"));
        h.fake
            .set_member(&h.group, &admin, ChatMemberStatus::Creator);
        h.say(&h.group, &admin, "hello").await;
        assert_eq!(
            h.ask(&h.group, &h.moderator, "/kick @boss").await,
            "/kick: @boss is an administrator here, and Telegram does not let bots kick administrators"
        );
        assert_eq!(
            h.ask(&h.group, &h.moderator, "/kick @spammer_x").await,
            "Kicked @spammer_x."
        );
        // Told by direct message first, and from which group (its title escaped for HTML).
        let sends = h.fake.calls_of("sendmessage");
        let notice = sends.iter().find(|c| c.params["chat_id"] == 1003);
        let notice = notice.map(|c| c.params["text"].as_str().unwrap_or_default());
        assert_eq!(
            notice.and_then(|t| t.split(" by ").next()),
            Some("You have been kicked from Test &lt;group&gt;"),
            "{mode:?}"
        );
        let ban = &h.fake.calls_of("banchatmember")[0].params;
        let unban = &h.fake.calls_of("unbanchatmember")[0].params;
        assert_eq!(
            (ban["user_id"].as_i64(), unban["only_if_banned"].as_bool()),
            (Some(1003), Some(true))
        );
        assert_eq!(
            h.ask(&h.group, &h.moderator, "/mute @ghost 5m").await,
            "/mute: I can't find @ghost here"
        );
        let banned = h
            .ask(&h.group, &h.moderator, "/ban @spammer_x 7d flooding")
            .await;
        assert_eq!(banned, "Banned @spammer_x for 7d. Reason: flooding");
        let ban = h.fake.calls_of("banchatmember").pop().unwrap().params;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let until = ban["until_date"].as_i64().unwrap();
        assert!(
            (now + 7 * 86_400 - 10..=now + 7 * 86_400 + 10).contains(&until),
            "until {until}, now {now}"
        );
    }
}

/// An administrator who remains anonymous writes as the group, through Telegram's placeholder
/// user: no one's rights can be checked, so a moderation command says how to be known, and
/// nothing is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_administrator_is_told_to_be_known_before_moderating() {
    let h = Harness::start(Mode::Polling).await;
    let mut anonymous = user(1_087_968_824, "Group", Some("GroupAnonymousBot"));
    anonymous["is_bot"] = json!(true);
    let mut message = text_message(&h.group, &anonymous, "/ban @spammer_x");
    message["sender_chat"] = h.group.clone();
    h.deliver(message_update(&message)).await;
    assert_eq!(
        h.answer(&message).await.params["text"],
        "/ban: you are writing anonymously, so I can't tell which administrator you are: turn off \"Remain anonymous\" in your administrator rights first"
    );
    assert!(h.fake.calls_of("banchatmember").is_empty());
    assert!(h.fake.calls_of("getchatmember").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_waited_out_before_sending_again() {
    for mode in MODES {
        let h = Harness::start(mode).await;
        h.fake.fail_next("sendmessage", Failure::RetryAfter(1));
        let dm = private_chat(&h.alice);
        h.say(&dm, &h.alice, "/ping").await;
        let sends = h.fake.wait_for_calls("sendmessage", 2, WAIT).await;
        assert!(
            sends[1].at - sends[0].at >= Duration::from_secs(1),
            "{mode:?}: retried too early"
        );
        assert_eq!(sends[1].params["text"], "Pong!");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_token_exits_2_with_one_clear_line() {
    for mode in MODES {
        let fake = FakeTelegram::start(FakeTelegramConfig::default()).await;
        let sandbox = Sandbox::new();
        let mut command = sandbox.command(&["run"]);
        command
            .env("COGBOX_TELEGRAM__TOKEN", "999:not-the-token")
            .env("COGBOX_TELEGRAM__API_URL", fake.api_url());
        if mode == Mode::Webhook {
            command
                .env("COGBOX_TELEGRAM__MODE", "webhook")
                .env(
                    "COGBOX_TELEGRAM__WEBHOOK__PUBLIC_URL",
                    "https://bot.example.com",
                )
                .env("COGBOX_TELEGRAM__WEBHOOK__SECRET_TOKEN", SECRET);
        }
        let mut bot = sandbox.spawn(command);
        let code = tokio::task::block_in_place(|| bot.wait());
        let stderr = bot.stderr();
        assert_eq!(code, 2, "{stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("rejected")).collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(
            lines[0].contains("telegram.token was rejected by Telegram (401 Unauthorized)"),
            "{stderr}"
        );
        let methods: Vec<String> = fake.calls().into_iter().map(|c| c.method).collect();
        assert_eq!(methods, ["getme"], "no retry loop, nothing else tried");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_webhook_requests_are_rejected_before_any_handler() {
    let mut h = Harness::start(Mode::Webhook).await;
    let url = h.webhook.clone().unwrap();
    let dm = private_chat(&h.alice);
    let forged = message_update(&text_message(&dm, &h.alice, "/ping"));
    let (base, token) = url.rsplit_once('/').unwrap();
    let wrong_path = format!("{base}/{}", "0".repeat(token.len()));
    assert_eq!(
        h.fake
            .post_webhook(&url, Some("wrong-secret"), &forged)
            .await,
        401
    );
    assert_eq!(h.fake.post_webhook(&url, None, &forged).await, 401);
    assert_eq!(
        h.fake
            .post_webhook(&wrong_path, Some(SECRET), &forged)
            .await,
        404
    );
    assert_eq!(
        h.fake
            .post_webhook(&format!("{base}/../admin"), Some(SECRET), &forged)
            .await,
        404
    );
    let client = reqwest::Client::new();
    let raw = |body: Vec<u8>| {
        client
            .post(&url)
            .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
            .body(body)
            .send()
    };
    assert_eq!(raw(b"not json".to_vec()).await.unwrap().status(), 400);
    assert_eq!(raw(vec![b' '; 300 * 1024]).await.unwrap().status(), 413);
    assert_eq!(
        raw(vec![b' '; 256 * 1024]).await.unwrap().status(),
        400,
        "a body of exactly the 256 KiB cap is read (and is no update)"
    );
    // Telegram's own updates run to kilobytes: 4096 characters of text, with entities.
    let long = message_update(&text_message(&dm, &h.alice, &"long ".repeat(800)));
    assert_eq!(h.fake.post_webhook(&url, Some(SECRET), &long).await, 200);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 405);

    let real = h.say(&dm, &h.alice, "/roll 1d1").await;
    assert_eq!(h.answer(&real).await.params["text"], "1d1: [1] = 1");
    assert_eq!(
        h.fake.calls_of("sendmessage").len(),
        1,
        "no forged update reached a handler"
    );

    h.bot.signal("-TERM");
    assert_eq!(tokio::task::block_in_place(|| h.bot.wait()), 0);
    assert!(
        h.fake.calls_of("deletewebhook").is_empty(),
        "the webhook stays set across restarts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_deletes_the_latest_messages_the_bot_has_seen() {
    for mode in MODES {
        let h = Harness::start(mode).await;
        let cleaner = user(1005, "Cleaner", Some("cleaner"));
        let delete = AdminRights {
            can_delete_messages: true,
            ..AdminRights::default()
        };
        h.fake
            .set_member(&h.group, &cleaner, ChatMemberStatus::Administrator(delete));
        // An administrator without Delete Messages: it reads every message (privacy mode
        // hides them only from bots that are not administrators) but may not purge.
        h.promote_bot(AdminRights::default()).await;
        let mut spam = Vec::new();
        for text in ["buy", "cheap", "stuff"] {
            spam.push(h.say(&h.group, &h.spammer, text).await);
        }
        assert_eq!(
            h.ask(&h.group, &h.moderator, "/purge 3").await,
            "/purge: you need the Delete Messages permission"
        );
        assert_eq!(
            h.ask(&h.group, &cleaner, "/purge 3").await,
            "/purge: I need the Delete Messages right to purge messages"
        );

        h.promote_bot(AdminRights {
            can_delete_messages: true,
            ..AdminRights::default()
        })
        .await;

        let command = h.say(&h.group, &cleaner, "/purge 3").await;
        assert_eq!(
            h.answer(&command).await.params["text"],
            "Deleted 3 messages."
        );
        let bot_reply = h.fake.last_bot_message(GROUP).expect("the bot's answer");
        let deleted = &h.fake.calls_of("deletemessages")[0].params;
        assert_eq!(deleted["chat_id"], GROUP);
        let ids: Vec<i64> = deleted["message_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(ids.len(), 3);
        assert_eq!(
            ids[0],
            command["message_id"].as_i64().unwrap(),
            "the command itself is the newest"
        );
        assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");

        let sweep = h.say(&h.group, &cleaner, "/purge 100").await;
        let swept = h.answer(&sweep).await.params["text"]
            .as_str()
            .unwrap()
            .to_owned();
        let all = &h.fake.calls_of("deletemessages")[1].params["message_ids"];
        // The bot's own answers go too: it has seen what it sent.
        for message in spam.iter().chain([&bot_reply]) {
            assert!(
                all.as_array().unwrap().contains(&message["message_id"]),
                "{swept}: {all}"
            );
        }

        // A raid of 150 messages: deleteMessages takes at most 100 ids a call.
        for i in 0..150 {
            h.say(&h.group, &h.spammer, &format!("spam {i}")).await;
        }
        h.settle().await;
        let before = h.fake.calls_of("deletemessages").len();
        let raid = h.say(&h.group, &cleaner, "/purge 151").await;
        assert_eq!(
            h.answer(&raid).await.params["text"],
            "Deleted 151 messages.",
            "{mode:?}"
        );
        let sizes: Vec<usize> = h.fake.calls_of("deletemessages")[before..]
            .iter()
            .map(|c| c.params["message_ids"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, [100, 51], "{mode:?}");
    }
}

/// The scenario of issue 9: a busy supergroup used to stall every other chat for 70 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_group_does_not_delay_a_private_chat() {
    for mode in MODES {
        let h = Harness::start(mode).await;
        let members: Vec<Value> = (0..12)
            .map(|i| user(2000 + i, "Member", Some(&format!("member{i}"))))
            .collect();
        for _ in 0..5 {
            for member in &members {
                h.say(&h.group, member, "/ping").await;
            }
        }
        let group_id = json!(GROUP);
        h.fake
            .wait_for_call("sendmessage", |p| p["chat_id"] == group_id, WAIT)
            .await;
        let dm = private_chat(&h.alice);
        let asked = std::time::Instant::now();
        let ping = h.say(&dm, &h.alice, "/ping").await;
        let answer = h.answer(&ping).await;
        assert!(
            answer.at - asked < Duration::from_secs(3),
            "{mode:?}: the private /ping waited {:?} behind the group",
            answer.at - asked
        );
        let group = h.fake.wait_for_calls("sendmessage", 6, WAIT).await;
        let group: Vec<_> = group
            .iter()
            .filter(|c| c.params["chat_id"] == group_id)
            .collect();
        for pair in group.windows(2) {
            assert!(
                pair[1].at - pair[0].at >= Duration::from_millis(950),
                "{mode:?}: the group is paced at 1 message a second"
            );
        }
        assert_eq!(h.fake.throttled(), 0, "{mode:?}: no send limit was broken");
    }
}

/// Entity offsets that split an emoji used to panic inside teloxide and kill the poller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entities_that_split_an_emoji_do_not_stop_the_bot() {
    for mode in MODES {
        let h = Harness::start(mode).await;
        let dm = private_chat(&h.alice);
        let mut bad = text_message(&dm, &h.alice, "/roll \u{1F600}");
        bad["entities"] = json!([{"type": "bold", "offset": 7, "length": 1}]);
        h.deliver(message_update(&bad)).await;
        let answer = h.answer(&bad).await;
        assert!(
            answer.params["text"]
                .as_str()
                .unwrap()
                .starts_with("/roll: "),
            "{mode:?}: answered as if it had no entities"
        );
        assert_eq!(h.ask(&dm, &h.alice, "/ping").await, "Pong!", "{mode:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderation_command_sent_as_a_reply_acts_on_the_replied_to_author() {
    let h = Harness::start(Mode::Polling).await;
    let rights = AdminRights {
        can_restrict_members: true,
        ..AdminRights::default()
    };
    h.fake.set_member(
        &h.group,
        &h.fake.bot_user(),
        ChatMemberStatus::Administrator(rights),
    );
    let spam = h.say(&h.group, &h.spammer, "buy cheap stuff").await;
    let hello = h.say(&h.group, &h.alice, "hello").await;
    assert_eq!(
        h.reply(&h.alice, "/ban spam", &spam).await,
        "/ban: you need the Ban Users permission"
    );
    assert_eq!(
        h.reply(&h.moderator, "/mute", &spam).await,
        "/mute: missing &lt;duration&gt; (usage: /mute [user] &lt;duration&gt; [reason])"
    );
    h.settle().await;
    assert!(
        h.fake.calls_of("banchatmember").is_empty()
            && h.fake.calls_of("restrictchatmember").is_empty(),
        "refusals make no API call"
    );
    assert_eq!(
        h.reply(&h.moderator, "/warn links", &spam).await,
        "Warned @spammer_x (1 active warning). Reason: links\n<b>Case</b>\n#1"
    );
    assert_eq!(
        h.reply(&h.moderator, "/ban spam", &spam).await,
        "Banned @spammer_x. Reason: spam"
    );
    let ban = &h.fake.calls_of("banchatmember")[0].params;
    assert_eq!(ban["user_id"].as_i64(), Some(1003));
    // A user named in the command wins over the replied-to author.
    assert_eq!(
        h.reply(&h.moderator, "/mute @alice 5m", &spam).await,
        "Muted @alice for 5m."
    );
    let mute = &h.fake.calls_of("restrictchatmember")[0].params;
    assert_eq!(mute["user_id"].as_i64(), Some(1001));
    let own = h.say(&h.group, &h.moderator, "me").await;
    assert_eq!(
        h.reply(&h.moderator, "/kick", &own).await,
        "/kick: you can't kick yourself"
    );
    let log = h.reply(&h.moderator, "/modlog", &hello).await;
    assert!(log.contains("mute @alice"), "{log}");
    assert!(!log.contains("@spammer_x"), "only alice's cases: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_vote_edits_the_poll_message() {
    let h = Harness::start(MODES[0]).await;
    let asked = h
        .say(&h.group, &h.alice, "/poll Lunch? | pizza | sushi")
        .await;
    let call = h.answer(&asked).await;
    assert_eq!(
        call.params["reply_markup"],
        json!({"inline_keyboard": [[
            {"text": "pizza", "callback_data": "/vote 1 1"},
            {"text": "sushi", "callback_data": "/vote 1 2"},
        ]]})
    );
    let message = h.fake.last_bot_message(GROUP).expect("the poll message");
    let id = message["message_id"].as_i64().unwrap();
    h.deliver(callback_query_update(&h.moderator, &message, "/vote 1 2"))
        .await;
    let edit = h
        .fake
        .wait_for_call("editmessagetext", |p| p["message_id"] == id, WAIT)
        .await;
    assert_eq!(edit.params["chat_id"], GROUP);
    // The fake applied the edit: Telegram's copy of the poll shows the vote, buttons kept.
    let now = h.fake.message(GROUP, id).unwrap();
    assert!(
        now["text"]
            .as_str()
            .unwrap()
            .ends_with("1. pizza: 0\n2. sushi: 1\n1 vote"),
        "{now}"
    );
    assert_eq!(now["reply_markup"], call.params["reply_markup"]);
    // The same press again changes nothing: Telegram refuses the edit, and the bot lets it be.
    let edits = h.fake.calls_of("editmessagetext").len();
    h.deliver(callback_query_update(&h.moderator, &message, "/vote 1 2"))
        .await;
    h.fake
        .wait_for_calls("editmessagetext", edits + 1, WAIT)
        .await;
    assert_eq!(h.fake.message(GROUP, id).unwrap()["text"], now["text"]);
}

/// The bot an administrator that may restrict and delete, the moderator too, and the spammer
/// seen (an administrator bot reads every group message).
async fn moderating_harness() -> Harness {
    let h = Harness::start(Mode::Polling).await;
    let rights = AdminRights {
        can_restrict_members: true,
        can_delete_messages: true,
        ..AdminRights::default()
    };
    h.fake.set_member(
        &h.group,
        &h.moderator,
        ChatMemberStatus::Administrator(rights),
    );
    h.promote_bot(rights).await;
    h.say(&h.group, &h.spammer, "buy cheap stuff").await;
    h
}

/// Someone Telegram does not know is "not found"; Telegram failing to answer is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_member_is_not_found_but_a_failing_lookup_is_an_error() {
    let h = moderating_harness().await;
    assert_eq!(
        h.ask(&h.group, &h.moderator, "/mute 987654321 10m").await,
        "/mute: I can't find user 987654321 here"
    );
    h.fake.fail_next(
        "getchatmember",
        Failure::BadRequest("member list is inaccessible".into()),
    );
    let answer = h.ask(&h.group, &h.moderator, "/mute 987654322 10m").await;
    assert!(
        answer.contains("went wrong") && !answer.contains("can't find"),
        "{answer}"
    );
}

/// A warning is refused for an administrator, as a mute or ban would be.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_cannot_be_warned() {
    let h = moderating_harness().await;
    let editor = user(1005, "Editor", Some("editor"));
    let rights = AdminRights {
        can_change_info: true,
        ..AdminRights::default()
    };
    h.fake
        .set_member(&h.group, &editor, ChatMemberStatus::Administrator(rights));
    h.say(&h.group, &editor, "hello").await;
    assert_eq!(
        h.ask(&h.group, &h.moderator, "/warn @editor rude").await,
        "/warn: @editor is an administrator here, and administrators can't be moderated by the bot"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_by_telegram_is_told_and_audited_as_failed() {
    let h = moderating_harness().await;
    h.fake.fail_next(
        "restrictchatmember",
        Failure::BadRequest("not enough rights to restrict/unrestrict chat member".into()),
    );
    assert_eq!(
        h.ask(&h.group, &h.moderator, "/mute @spammer_x 10m").await,
        "/mute: Telegram refused: Bad Request: not enough rights to restrict/unrestrict chat member"
    );
    h.fake.fail_next(
        "banchatmember",
        Failure::Forbidden("bot was kicked from the supergroup chat".into()),
    );
    assert_eq!(
        h.ask(&h.group, &h.moderator, "/ban @spammer_x").await,
        "/ban: Telegram refused: Forbidden: bot was kicked from the supergroup chat"
    );
    let audit = h._sandbox.audit_log();
    let outcomes: Vec<(&str, &str)> = audit
        .iter()
        .map(|(action, outcome, _)| (action.as_str(), outcome.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        [("mute", "failed"), ("ban", "failed")],
        "{audit:?}"
    );
    let status = h.fake.member(GROUP, 1003).unwrap();
    assert_eq!(status["status"], "member", "nothing changed");
}

/// Fails the next `method` call with a 429 (retry after 1 s) and returns that call's index
/// among the `method` calls; [`retried_after_the_wait`] then checks its retry.
fn limit_next(h: &Harness, method: &str) -> usize {
    h.fake.fail_next(method, Failure::RetryAfter(1));
    h.fake.calls_of(method).len()
}

/// The call of `method` at `index` was refused with a 429, and the same call came again a
/// full second later, not at once.
async fn retried_after_the_wait(h: &Harness, method: &str, index: usize) {
    let calls = h.fake.wait_for_calls(method, index + 2, WAIT).await;
    let limited = &calls[index];
    let retry = calls[index + 1..]
        .iter()
        .find(|c| c.params == limited.params)
        .unwrap_or_else(|| panic!("{method} was not retried: {calls:#?}"));
    let waited = retry.at - limited.at;
    assert!(
        waited >= Duration::from_secs(1),
        "{method} retried after {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_on_any_method_is_waited_out_for_its_retry_after() {
    let h = moderating_harness().await;
    let steps: [(&str, &str, &str); 5] = [
        (
            "getchatmember",
            "/mute @spammer_x 10m",
            "Muted @spammer_x for 10m.",
        ),
        (
            "restrictchatmember",
            "/mute @spammer_x 5m",
            "Muted @spammer_x for 5m.",
        ),
        ("banchatmember", "/ban @spammer_x", "Banned @spammer_x."),
        (
            "unbanchatmember",
            "/unban @spammer_x",
            "Unbanned @spammer_x.",
        ),
        ("deletemessages", "/purge 2", "Deleted 2 messages."),
    ];
    for (method, command, answer) in steps {
        let index = limit_next(&h, method);
        assert_eq!(h.ask(&h.group, &h.moderator, command).await, answer);
        retried_after_the_wait(&h, method, index).await;
    }

    let index = limit_next(&h, "sendmessage");
    let dm = private_chat(&h.alice);
    assert_eq!(h.ask(&dm, &h.alice, "/ping").await, "Pong!");
    retried_after_the_wait(&h, "sendmessage", index).await;

    let asked = h
        .say(&h.group, &h.alice, "/poll Lunch? | pizza | sushi")
        .await;
    h.answer(&asked).await;
    let poll = h.fake.last_bot_message(GROUP).expect("the poll message");
    let edit = limit_next(&h, "editmessagetext");
    let answer = limit_next(&h, "answercallbackquery");
    h.deliver(callback_query_update(&h.moderator, &poll, "/vote 1 2"))
        .await;
    retried_after_the_wait(&h, "editmessagetext", edit).await;
    retried_after_the_wait(&h, "answercallbackquery", answer).await;
    let poll = h
        .fake
        .message(GROUP, poll["message_id"].as_i64().unwrap())
        .unwrap();
    assert!(poll["text"].as_str().unwrap().ends_with("1 vote"), "{poll}");

    // Not forever: a call still limited after three waits is given up, and the moderator told.
    let before = h.fake.calls_of("restrictchatmember").len();
    h.fake
        .fail_times("restrictchatmember", 4, Failure::RetryAfter(1));
    let answer = h.ask(&h.group, &h.moderator, "/mute @spammer_x 5m").await;
    assert!(answer.contains("went wrong"), "{answer}");
    let tries = h.fake.calls_of("restrictchatmember").len() - before;
    assert_eq!(tries, 4, "one call and three retries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_settled_case_is_posted_to_the_log_channel() {
    const LOG: i64 = -1_009_999_999_999;
    let h = Harness::start(Mode::Polling).await;
    h.promote_bot(AdminRights {
        can_restrict_members: true,
        ..AdminRights::default()
    })
    .await;
    let owner = user(1004, "Owner", Some("owner"));
    h.fake
        .set_member(&h.group, &owner, ChatMemberStatus::Creator);
    let log = supergroup(LOG, "Mod log");
    h.fake
        .set_member(&log, &h.fake.bot_user(), ChatMemberStatus::Member);
    let refused = h
        .ask(&h.group, &owner, "/settings set log_channel #mod-log")
        .await;
    assert!(refused.contains("takes a channel"), "{refused}");
    let old_log = supergroup(LOG - 1, "Old log");
    let removed = ChatMemberStatus::Kicked { until_date: 0 };
    h.fake.set_member(&old_log, &h.fake.bot_user(), removed);
    let refused = h
        .ask(
            &h.group,
            &owner,
            &format!("/settings set log_channel {}", LOG - 1),
        )
        .await;
    assert_eq!(
        refused,
        "/settings: log_channel is unchanged: Telegram refused: \
         Forbidden: bot was kicked from the supergroup chat"
    );
    let set = h
        .ask(
            &h.group,
            &owner,
            &format!("/settings set log_channel {LOG}"),
        )
        .await;
    assert!(set.contains(&LOG.to_string()), "{set}");
    let note = |p: &Value| {
        p["chat_id"].as_i64() == Some(LOG)
            && p["text"].as_str() == Some("@owner set log_channel to this channel.")
    };
    assert!(
        h.fake
            .calls_of("sendmessage")
            .iter()
            .any(|c| note(&c.params))
    );
    let spam = h.say(&h.group, &h.spammer, "buy cheap stuff").await;
    h.reply(&h.moderator, "/warn links", &spam).await;
    h.reply(&h.moderator, "/mute 10m flooding", &spam).await;
    let to_log = |text: &'static str| {
        move |p: &Value| {
            p["chat_id"].as_i64() == Some(LOG)
                && p["text"].as_str().is_some_and(|t| t.contains(text))
        }
    };
    let warned = h
        .fake
        .wait_for_call("sendmessage", to_log("#1 warn @spammer_x"), WAIT)
        .await;
    assert!(
        warned.params["text"].as_str().unwrap().contains(": links"),
        "{:?}",
        warned.params
    );
    let muted = h
        .fake
        .wait_for_call("sendmessage", to_log("#2 mute @spammer_x (until"), WAIT)
        .await;
    let text = muted.params["text"].as_str().unwrap();
    assert!(text.ends_with("flooding; done"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_who_join_are_welcomed_with_the_groups_message() {
    let h = Harness::start(Mode::Polling).await;
    let owner = user(1004, "Owner", Some("owner"));
    h.fake
        .set_member(&h.group, &owner, ChatMemberStatus::Creator);
    let newcomer = user(1005, "New", Some("newbie"));
    let robot = json!({"id": 1006, "is_bot": true, "first_name": "Robot", "username": "robot_bot"});
    // Nothing is said until a welcome is set; the later /ping proves the join was handled.
    h.deliver(message_update(&members_joined(&h.group, &[&newcomer])))
        .await;
    h.ask(&h.group, &h.alice, "/ping").await;
    // Settings take the Change Group Info right: the owner holds it, an administrator only if
    // granted it.
    let set_welcome = "/settings set welcome_message Welcome, {user}! Read the rules.";
    let pinner = user(1007, "Pinner", Some("pinner"));
    let pin_only = AdminRights {
        can_pin_messages: true,
        ..AdminRights::default()
    };
    h.fake
        .set_member(&h.group, &pinner, ChatMemberStatus::Administrator(pin_only));
    assert_eq!(
        h.ask(&h.group, &pinner, set_welcome).await,
        "/settings: you need the Change Group Info permission"
    );
    let editor = user(1008, "Editor", Some("editor"));
    let change_info = AdminRights {
        can_change_info: true,
        ..AdminRights::default()
    };
    h.fake.set_member(
        &h.group,
        &editor,
        ChatMemberStatus::Administrator(change_info),
    );
    let set = h.ask(&h.group, &editor, set_welcome).await;
    assert!(set.contains("welcome_message is now"), "{set}");
    let set = h.ask(&h.group, &owner, set_welcome).await;
    assert!(set.contains("welcome_message is now"), "{set}");
    h.deliver(message_update(&members_joined(
        &h.group,
        &[&robot, &newcomer],
    )))
    .await;
    let greeted = h
        .fake
        .wait_for_call(
            "sendmessage",
            |p| {
                p["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("Welcome,"))
            },
            WAIT,
        )
        .await;
    assert_eq!(greeted.params["text"], "Welcome, @newbie! Read the rules.");
    assert_eq!(greeted.params["chat_id"].as_i64(), Some(GROUP));
    h.ask(&h.group, &h.alice, "/ping").await;
    let welcomes: Vec<_> = h
        .fake
        .calls_of("sendmessage")
        .into_iter()
        .filter(|c| {
            c.params["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("Welcome"))
        })
        .collect();
    assert_eq!(
        welcomes.len(),
        1,
        "one welcome, none for the bot or before it was set"
    );
}

/// A vote storm on a poll: the edits go through the outbox like messages, so they keep
/// Telegram's pace in the group (never two within a second, no 429), and an edit still waiting
/// is replaced by the newer one, so the last edit shows every vote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vote_storm_edits_the_poll_at_the_chats_pace() {
    let h = Harness::start(MODES[0]).await;
    let asked = h
        .say(&h.group, &h.alice, "/poll Lunch? | pizza | sushi")
        .await;
    h.answer(&asked).await;
    let message = h.fake.last_bot_message(GROUP).expect("the poll message");
    let id = message["message_id"].as_i64().unwrap();
    const VOTERS: i64 = 8;
    for voter in 0..VOTERS {
        let from = user(5_000 + voter, "Voter", None);
        h.deliver(callback_query_update(&from, &message, "/vote 1 1"))
            .await;
    }
    let done = format!("{VOTERS} votes");
    h.fake
        .wait_for_call(
            "editmessagetext",
            |p| p["message_id"] == id && p["text"].as_str().unwrap_or("").ends_with(&done),
            WAIT,
        )
        .await;
    let edits = h.fake.calls_of("editmessagetext");
    assert!(
        edits.len() < VOTERS as usize,
        "waiting edits were coalesced: {}",
        edits.len()
    );
    let mut sends: Vec<_> = h
        .fake
        .calls_of("sendmessage")
        .iter()
        .map(|c| c.at)
        .collect();
    sends.extend(edits.iter().map(|c| c.at));
    sends.sort();
    for pair in sends.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(950),
            "two calls to the group {:?} apart",
            pair[1] - pair[0]
        );
    }
    assert_eq!(h.fake.throttled(), 0);
}

/// `/mydata` is answered by a direct message, and the group is told whether it went: a member
/// who never started the bot cannot be written to first (Telegram's 403).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mydata_arrives_by_direct_message_or_the_member_is_told_why_not() {
    let h = Harness::start(Mode::Polling).await;
    let dm = private_chat(&h.alice);
    assert_eq!(h.ask(&dm, &h.alice, "/ping").await, "Pong!");
    assert_eq!(
        h.ask(&h.group, &h.alice, "/mydata").await,
        "I sent you your data by direct message."
    );
    let alice = h.alice["id"].clone();
    // Panics unless the report reaches alice's private chat.
    h.fake
        .wait_for_call(
            "sendmessage",
            |p| p["chat_id"] == alice && p["text"].to_string().contains("Your data"),
            WAIT,
        )
        .await;
    let refused = h.ask(&h.group, &h.spammer, "/mydata").await;
    assert!(
        refused.starts_with("/mydata: I could not message you directly"),
        "{refused}"
    );
}

/// A reminder that falls due after the bot was removed from its group reaches its author by
/// direct message: Telegram's 403 there is a refusal, not a failure to retry into.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_for_a_group_the_bot_was_removed_from_arrives_by_direct_message() {
    let h = Harness::start(Mode::Polling).await;
    let dm = private_chat(&h.alice);
    assert_eq!(h.ask(&dm, &h.alice, "/ping").await, "Pong!");
    let set = h.ask(&h.group, &h.alice, "/remind 2s water").await;
    assert!(set.starts_with("I'll remind you in"), "{set}");
    let removed = ChatMemberStatus::Kicked { until_date: 0 };
    h.fake.set_member(&h.group, &h.fake.bot_user(), removed);

    let reminder = |p: &Value| p["text"].as_str().is_some_and(|t| t.ends_with(": water"));
    let alice = h.alice["id"].clone();
    h.fake
        .wait_for_call(
            "sendmessage",
            |p| p["chat_id"] == alice && reminder(p),
            WAIT,
        )
        .await;
    let tried_group = h
        .fake
        .calls_of("sendmessage")
        .iter()
        .filter(|c| c.params["chat_id"] == GROUP && reminder(&c.params))
        .count();
    assert_eq!(tried_group, 1, "the group was tried once, first");
}
