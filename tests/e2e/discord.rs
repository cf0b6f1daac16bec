//! Discord: the real binary against the fake Discord on 127.0.0.1, asserting on exactly what
//! the fake received (REST calls, their bodies, gateway frames) and what was not sent.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fake_discord::{
    ButtonSpec, CommandSpec, Direction, Failure, FakeChannel, FakeDiscord, FakeDiscordConfig,
    FakeOverwrite, MessageSpec, OptionValue, RecordedCall, SentInteraction, ids, intents, perms,
};
use crate::support::{Running, Sandbox};

/// Generous for a loaded machine; every wait ends as soon as its event is seen.
const WAIT: Duration = Duration::from_secs(15);

/// The bot under test, with the fake it talks to.
struct Bot {
    fake: FakeDiscord,
    process: Running,
    _sandbox: Sandbox,
}

/// Starts `cogbox run` against a fake serving `world`, with `discord` as the `[discord]`
/// section of its config (token and api_url come from the environment, as in production).
async fn launch(world: FakeDiscordConfig, token: &str, discord: &str) -> Bot {
    // Tests send many commands as one member: lift the per-user rate limit.
    launch_limited(world, token, discord, 1000).await
}

/// [`launch`] with a per-member limit of `commands` a minute.
async fn launch_limited(
    world: FakeDiscordConfig,
    token: &str,
    discord: &str,
    commands: u32,
) -> Bot {
    let fake = FakeDiscord::start(world).await;
    let sandbox = Sandbox::new();
    let window = if commands >= 1000 { "1s" } else { "1m" };
    sandbox.write(
        "config.toml",
        format!("[discord]\n{discord}\n[limits]\ncommands = {commands}\nwindow = \"{window}\"\n"),
    );
    let mut command = sandbox.command(&["run"]);
    command
        .env("COGBOX_DISCORD__TOKEN", token)
        .env("COGBOX_DISCORD__API_URL", fake.api_url());
    let process = sandbox.spawn(command);
    Bot {
        fake,
        process,
        _sandbox: sandbox,
    }
}

fn in_guild() -> String {
    format!("guild_ids = [{}]", ids::GUILD)
}

/// A bot registered in the fake's guild and connected.
async fn ready(world: FakeDiscordConfig, discord: &str) -> Bot {
    let bot = launch(world, "fake-token", &format!("{}\n{discord}", in_guild())).await;
    bot.fake.wait_identified(WAIT).await;
    bot
}

impl Bot {
    /// Waits for the process to end; returns its exit code and stderr.
    fn exit(&mut self) -> (i32, String) {
        let code = tokio::task::block_in_place(|| self.process.wait());
        (code, self.process.stderr())
    }

    async fn call(&self, pred: impl Fn(&RecordedCall) -> bool) -> RecordedCall {
        self.fake.wait_for_call(pred, WAIT).await
    }

    /// The answer to an interaction: the body of its callback.
    async fn callback(&self, sent: &SentInteraction) -> Value {
        let route = sent.callback_route();
        self.call(|c| c.is("POST", &route)).await.body
    }

    /// The answer's text, whether it came with the callback or, when the command took long
    /// enough to be deferred (a loaded machine), as the edit that replaced the placeholder.
    async fn answer_content(&self, sent: &SentInteraction) -> Value {
        let callback = self.callback(sent).await;
        if callback["type"] != 5 {
            return callback["data"]["content"].clone();
        }
        let original = format!("/webhooks/{}/{}/messages/@original", ids::BOT, sent.token);
        self.call(|c| c.is("PATCH", &original)).await.body["content"].clone()
    }

    /// The bot's first message in `channel` since `since`.
    async fn message_in(&self, channel: u64, since: Instant) -> RecordedCall {
        let route = format!("/channels/{channel}/messages");
        self.call(|c| c.at >= since && c.is("POST", &route) && c.status == 200)
            .await
    }

    /// A message from `author` in #general; returns when it was sent and its id.
    fn say(&self, author: u64, content: &str) -> (Instant, u64) {
        let since = Instant::now();
        let spec = MessageSpec::in_channel(ids::GENERAL, author, content);
        (since, self.fake.send_message_create(spec))
    }

    fn slash(&self, spec: CommandSpec) -> (Instant, SentInteraction) {
        (Instant::now(), self.fake.send_command(spec))
    }

    fn calls_since(&self, since: Instant) -> Vec<RecordedCall> {
        let mut calls = self.fake.calls();
        calls.retain(|c| c.at >= since);
        calls
    }

    /// The calls since `since` that change something: reads (a member looked up over REST,
    /// as the cache holds only the bot) are left out.
    fn changes_since(&self, since: Instant) -> Vec<RecordedCall> {
        let mut calls = self.calls_since(since);
        calls.retain(|c| c.method != "GET");
        calls
    }

    /// [`Bot::changes_since`] once the bot is provably idle: the answer to a later /ping has
    /// arrived, so what the earlier commands were going to do is done. That answer is left out.
    async fn changes_when_idle(&self, since: Instant) -> Vec<RecordedCall> {
        let (_, ping) = self.slash(command("ping", ids::OWNER));
        let route = ping.callback_route();
        self.call(|c| c.is("POST", &route)).await;
        let mut calls = self.changes_since(since);
        calls.retain(|c| !c.is("POST", &route));
        calls
    }
}

fn command(name: &str, user: u64) -> CommandSpec {
    CommandSpec::new(name, user, ids::GENERAL)
}

fn text(value: &str) -> OptionValue {
    OptionValue::String(value.into())
}

/// `2d6: [a, b] = a+b` with faces 1 to 6.
fn assert_roll(answer: &str) {
    let (faces, sum) = answer
        .strip_prefix("2d6: [")
        .and_then(|rest| rest.split_once("] = "))
        .unwrap_or_else(|| panic!("not a 2d6 roll: {answer:?}"));
    let faces: Vec<u32> = faces.split(", ").map(|f| f.parse().unwrap()).collect();
    assert_eq!(faces.len(), 2);
    assert!(faces.iter().all(|f| (1..=6).contains(f)), "{answer}");
    assert_eq!(sum.parse::<u32>().unwrap(), faces.iter().sum::<u32>());
}

fn pings_nobody(body: &Value) {
    assert_eq!(
        body["allowed_mentions"]["parse"],
        json!([]),
        "no user, role or @everyone is pinged: {body}"
    );
}

/// A red, private refusal with exactly this text.
fn assert_refusal(callback: &Value, text: &str) {
    assert_eq!(callback["type"], 4, "{callback}");
    let data = &callback["data"];
    assert_eq!(data["flags"], 64, "ephemeral: {callback}");
    assert_eq!(data["embeds"][0]["description"], text, "{callback}");
    assert_eq!(data["embeds"][0]["color"], 0xED4245);
    pings_nobody(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_commands_are_registered_in_the_guild_with_typed_options() {
    let mut bot = ready(FakeDiscordConfig::default(), "").await;
    let route = format!("/applications/{}/guilds/{}/commands", ids::BOT, ids::GUILD);
    let registered = bot.call(|c| c.is("PUT", &route)).await;
    let commands = registered.body.as_array().unwrap();
    let names: Vec<&str> = commands
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    // `vote` and `answer` are what buttons run: not in the menu.
    assert_eq!(
        names,
        [
            "help",
            "cogs",
            "cog",
            "settings",
            "audit",
            "mydata",
            "forget",
            "status",
            "mute",
            "unmute",
            "kick",
            "ban",
            "unban",
            "purge",
            "warn",
            "warnings",
            "unwarn",
            "modlog",
            "balance",
            "daily",
            "pay",
            "leaderboard",
            "grant",
            "take",
            "ping",
            "roll",
            "coinflip",
            "8ball",
            "choose",
            "remind",
            "reminders",
            "unremind",
            "poll",
            "trivia"
        ]
    );
    let find = |name: &str| commands.iter().find(|c| c["name"] == name).unwrap();
    let options = |name: &str| -> Vec<(String, u64, bool)> {
        find(name)["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                let name = o["name"].as_str().unwrap().to_owned();
                (name, o["type"].as_u64().unwrap(), o["required"] == true)
            })
            .collect()
    };
    let owned = |list: &[(&str, u64, bool)]| -> Vec<(String, u64, bool)> {
        list.iter()
            .map(|(n, t, r)| (n.to_string(), *t, *r))
            .collect()
    };
    assert_eq!(
        options("mute"),
        owned(&[
            ("user", 6, true),
            ("duration", 3, true),
            ("reason", 3, false)
        ])
    );
    assert_eq!(options("roll"), owned(&[("dice", 3, true)]));
    let count = &find("purge")["options"][0];
    assert_eq!(
        (
            count["type"].clone(),
            count["min_value"].clone(),
            count["max_value"].clone()
        ),
        (json!(4), json!(1), json!(1000))
    );
    assert_eq!(
        find("cog")["options"][0]["choices"],
        json!([{"name": "on", "value": "on"}, {"name": "off", "value": "off"}])
    );
    assert_eq!(
        find("ban")["default_member_permissions"],
        perms::BAN_MEMBERS.to_string()
    );
    assert_eq!(
        find("mute")["default_member_permissions"],
        perms::MODERATE_MEMBERS.to_string()
    );
    assert!(
        !bot.fake
            .calls()
            .iter()
            .any(|c| c.route().ends_with("/commands") && c.route() != route),
        "only the guild's commands are written"
    );

    let identify = bot
        .fake
        .wait_for_frame(|f| f.direction == Direction::Received && f.op == 2, WAIT)
        .await;
    let wanted = intents::GUILDS
        | intents::GUILD_MEMBERS
        | intents::GUILD_MESSAGES
        | intents::DIRECT_MESSAGES
        | intents::MESSAGE_CONTENT;
    assert_eq!(identify.d["intents"], wanted);
    let activity = &identify.d["presence"]["activities"][0];
    assert_eq!(
        (activity["name"].clone(), activity["type"].clone()),
        (json!("for /help"), json!(3)),
        "watching for /help"
    );
    assert!(
        bot.process
            .stderr()
            .contains("needs the privileged Message Content intent"),
        "{}",
        bot.process.stderr()
    );

    bot.process.signal("-TERM");
    let (code, stderr) = bot.exit();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("stopped cleanly"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_guilds_commands_go_global_and_without_a_prefix_mentions_still_work() {
    let bot = launch(
        FakeDiscordConfig::default(),
        "fake-token",
        "prefix = \"\"\npresence = \"\"",
    )
    .await;
    let identify = bot.fake.wait_identified(WAIT).await;
    let global = format!("/applications/{}/commands", ids::BOT);
    assert!(bot.fake.calls().iter().any(|c| c.is("PUT", &global)));
    assert_eq!(
        identify["intents"].as_u64().unwrap() & intents::MESSAGE_CONTENT,
        0,
        "no privileged Message Content without prefix commands"
    );
    assert_eq!(identify["presence"]["activities"], json!([]));
    assert!(!bot.process.stderr().contains("Message Content"));

    let (seen, _) = bot.say(ids::ALICE, "!ping");
    let spec = MessageSpec::in_channel(ids::GENERAL, ids::ALICE, &format!("<@{}> ping", ids::BOT))
        .mentioning(&[ids::BOT]);
    bot.fake.send_message_create(spec);
    let reply = bot.message_in(ids::GENERAL, seen).await;
    assert_eq!(reply.body["content"], "Pong!");
    let posts = bot.calls_since(seen);
    assert_eq!(posts.len(), 1, "only the mention was a command: {posts:#?}");

    let seen = Instant::now();
    bot.fake.send_message_create(
        MessageSpec::direct(ids::BOB, &format!("<@{}> roll 2d6", ids::BOT)).mentioning(&[ids::BOT]),
    );
    let reply = bot
        .call(|c| {
            c.method == "POST"
                && c.route().ends_with("/messages")
                && !c.route().contains(&ids::GENERAL.to_string())
        })
        .await;
    assert_roll(reply.body["content"].as_str().unwrap());
    assert!(reply.at >= seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roll_2d6_by_slash_command_is_answered_through_the_callback() {
    let bot = ready(FakeDiscordConfig::default(), "").await;
    let (seen, sent) = bot.slash(command("roll", ids::ALICE).option("dice", text("2d6")));
    let answer = bot.callback(&sent).await;
    assert_eq!(answer["type"], 4, "answered directly: {answer}");
    assert_roll(answer["data"]["content"].as_str().unwrap());
    assert_eq!(
        answer["data"]
            .get("flags")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            & 64,
        0,
        "public"
    );
    pings_nobody(&answer["data"]);
    assert_eq!(
        bot.changes_when_idle(seen).await.len(),
        1,
        "one call: the answer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roll_2d6_by_prefix_is_answered_in_the_channel() {
    let bot = ready(FakeDiscordConfig::default(), "").await;
    let (seen, message) = bot.say(ids::ALICE, "!roll 2d6");
    let reply = bot.message_in(ids::GENERAL, seen).await;
    assert_roll(reply.body["content"].as_str().unwrap());
    assert_eq!(
        reply.body["message_reference"]["message_id"],
        message.to_string()
    );
    pings_nobody(&reply.body);
    bot.say(ids::ALICE, "!nope");
    bot.say(ids::ALICE, "!roll d0");
    let error = bot
        .call(|c| {
            c.body["embeds"][0]["description"]
                .as_str()
                .is_some_and(|d| d.contains("d0"))
        })
        .await;
    assert_eq!(
        error.body["embeds"][0]["description"],
        "/roll: \"d0\" is not a dice expression (try 2d6 or 1d20+5)"
    );
    assert!(
        !bot.fake
            .calls()
            .iter()
            .any(|c| c.body.to_string().contains("/nope")),
        "another bot's command is left alone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_without_moderate_members_is_refused_and_nothing_is_called() {
    let bot = ready(FakeDiscordConfig::default(), "").await;
    let mute = command("mute", ids::ALICE)
        .option("user", OptionValue::User(ids::BOB))
        .option("duration", text("10m"));
    let (seen, sent) = bot.slash(mute);
    assert_refusal(
        &bot.callback(&sent).await,
        "/mute: you need the Moderate Members permission",
    );
    let calls = bot.changes_when_idle(seen).await;
    assert_eq!(calls.len(), 1, "only the answer: {calls:#?}");
    assert!(
        bot.fake
            .member(ids::BOB)
            .unwrap()
            .communication_disabled_until
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_names_the_permission_it_lacks_and_does_nothing() {
    let mut world = FakeDiscordConfig::default();
    let role = world
        .roles
        .iter_mut()
        .find(|r| r.id == ids::ROLE_BOT)
        .unwrap();
    role.permissions &= !(perms::MODERATE_MEMBERS | perms::MANAGE_MESSAGES);
    let bot = ready(world, "").await;
    let mute = command("mute", ids::MODERATOR)
        .option("user", OptionValue::User(ids::BOB))
        .option("duration", text("10m"));
    let (seen, sent) = bot.slash(mute);
    assert_refusal(
        &bot.callback(&sent).await,
        "/mute: I need Moderate Members to mute @bob",
    );
    assert_eq!(bot.changes_when_idle(seen).await.len(), 1);
    let told = refusal_to(&bot, "!purge 5").await;
    assert_eq!(
        told,
        "/purge: I need View Channel, Manage Messages and Read Message History in this channel to purge it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderation_acts_with_audit_reasons_and_tells_the_member_first() {
    let bot = ready(FakeDiscordConfig::default(), "ban_delete_message_days = 1").await;
    let mute = command("mute", ids::MODERATOR)
        .option("user", OptionValue::User(ids::ALICE))
        .option("duration", text("10m"))
        .option("reason", text("spam"));
    let (_, sent) = bot.slash(mute);
    assert_eq!(
        bot.answer_content(&sent).await,
        "Muted @alice for 10m. Reason: spam"
    );
    let member = format!("/guilds/{}/members/{}", ids::GUILD, ids::ALICE);
    let patch = bot.call(|c| c.is("PATCH", &member)).await;
    assert_eq!(patch.audit_log_reason.as_deref(), Some("spam"));
    let until = patch.body["communication_disabled_until"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .unwrap_or_else(|| panic!("{}", patch.body));
    let ahead = (until.to_utc() - chrono::Utc::now()).num_seconds();
    assert!(
        (540..=600).contains(&ahead),
        "a 10-minute timeout ends in {ahead} s"
    );
    assert!(
        bot.fake
            .member(ids::ALICE)
            .unwrap()
            .communication_disabled_until
            .is_some()
    );

    // By prefix, naming the member: told by DM, then kicked.
    let (seen, _) = bot.say(ids::MODERATOR, "!kick @bob bye now");
    let reply = bot.message_in(ids::GENERAL, seen).await;
    assert_eq!(reply.body["content"], "Kicked @bob. Reason: bye now");
    let calls = bot.calls_since(seen);
    let at = |pred: &dyn Fn(&RecordedCall) -> bool| {
        calls
            .iter()
            .position(pred)
            .unwrap_or_else(|| panic!("missing call: {calls:#?}"))
    };
    let dm_channel = at(&|c| c.is("POST", "/users/@me/channels"));
    assert_eq!(calls[dm_channel].body["recipient_id"], ids::BOB.to_string());
    let notice = at(&|c| {
        c.method == "POST"
            && c.route().ends_with("/messages")
            && c.route() != format!("/channels/{}/messages", ids::GENERAL)
    });
    assert_eq!(
        calls[notice].body["embeds"][0]["description"],
        "You have been kicked from Fake Guild by @mod."
    );
    assert_eq!(
        calls[notice].body["embeds"][0]["fields"][0],
        json!({"name": "Reason", "value": "bye now", "inline": false})
    );
    let kick = at(&|c| {
        c.is(
            "DELETE",
            &format!("/guilds/{}/members/{}", ids::GUILD, ids::BOB),
        )
    });
    assert!(
        dm_channel < notice && notice < kick,
        "told before kicked: {calls:#?}"
    );
    assert_eq!(calls[kick].audit_log_reason.as_deref(), Some("bye now"));
    assert!(bot.fake.member(ids::BOB).is_none());

    let ban = command("ban", ids::MODERATOR)
        .option("user", OptionValue::User(ids::ALICE))
        .option("reason", text("raid"));
    let (_, sent) = bot.slash(ban);
    assert_eq!(
        bot.answer_content(&sent).await,
        "Banned @alice. Reason: raid"
    );
    let banned = format!("/guilds/{}/bans/{}", ids::GUILD, ids::ALICE);
    let put = bot.call(|c| c.is("PUT", &banned)).await;
    assert_eq!(put.query_value("delete_message_seconds"), Some("86400"));
    assert_eq!(put.audit_log_reason.as_deref(), Some("raid"));
    assert!(bot.fake.is_banned(ids::ALICE));

    let (seen, _) = bot.say(ids::MODERATOR, &format!("!unban {}", ids::ALICE));
    let reply = bot.message_in(ids::GENERAL, seen).await;
    assert_eq!(reply.body["content"], "Unbanned @alice.");
    assert!(!bot.fake.is_banned(ids::ALICE));
    let again = refusal_to(&bot, &format!("!unban {}", ids::ALICE)).await;
    assert_eq!(again, "/unban: @alice is not banned");

    // Nobody acts on the server owner, and the owner is not even told.
    let (seen, _) = bot.say(ids::MODERATOR, "!kick @owner");
    let reply = bot.message_in(ids::GENERAL, seen).await;
    assert_eq!(
        reply.body["embeds"][0]["description"],
        "/kick: @owner owns this server, and nobody can kick a server owner"
    );
    let changes = bot.changes_when_idle(seen).await;
    assert_eq!(changes.len(), 1, "{changes:#?}");
}

/// `/kick @bob` by the moderator, made slow: the DM before the kick is rate limited for
/// `wait` seconds (a real wait on Discord, not a test hook), so the command outlasts the 1.5 s
/// budget and must be deferred, within 2 s of being asked. Returns when it was asked.
async fn slow_kick(bot: &Bot, wait: f64) -> (Instant, SentInteraction) {
    bot.fake.fail_next(
        "POST",
        "/users/@me/channels",
        Failure::RateLimited {
            retry_after: wait,
            global: false,
        },
    );
    let kick = command("kick", ids::MODERATOR).option("user", OptionValue::User(ids::BOB));
    let (asked, sent) = bot.slash(kick);
    let route = sent.callback_route();
    let deferral = bot.call(|c| c.is("POST", &route)).await;
    assert_eq!(deferral.body["type"], 5, "deferred: {:?}", deferral.body);
    assert_eq!(deferral.status, 204, "accepted: inside Discord's 3 s");
    let took = deferral.at - asked;
    assert!(took < Duration::from_secs(2), "deferred after {took:?}");
    (asked, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5_second_command_is_deferred_within_2_seconds_and_its_answer_replaces_it() {
    let bot = ready(FakeDiscordConfig::default(), "").await;
    let (asked, sent) = slow_kick(&bot, 5.0).await;
    let original = format!("/webhooks/{}/{}/messages/@original", ids::BOT, sent.token);
    let edit = bot.call(|c| c.is("PATCH", &original)).await;
    assert!(
        edit.at - asked >= Duration::from_secs(5),
        "the kick took 5 s"
    );
    assert_eq!(edit.status, 200);
    assert_eq!(edit.body["content"], "Kicked @bob.");
    pings_nobody(&edit.body);
    assert!(bot.fake.member(ids::BOB).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_after_a_deferral_is_shown_only_to_the_member() {
    let bot = ready(FakeDiscordConfig::default(), "").await;
    // Discord refuses the kick, after the deferral.
    bot.fake.fail_next("DELETE", "/guilds/", Failure::Forbidden);
    let (_, sent) = slow_kick(&bot, 2.0).await;
    let followups = format!("/webhooks/{}/{}", ids::BOT, sent.token);
    let followup = bot.call(|c| c.is("POST", &followups)).await;
    assert_eq!(followup.body["flags"], 64, "private: {}", followup.body);
    let original = format!("{followups}/messages/@original");
    let calls = bot.fake.calls();
    assert!(
        calls
            .iter()
            .any(|c| c.is("DELETE", &original) && c.status == 204),
        "the public placeholder is removed"
    );
    assert!(
        !calls.iter().any(|c| c.is("PATCH", &original)),
        "no public edit"
    );
    assert!(bot.fake.member(ids::BOB).is_some(), "the kick was refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_button_press_runs_its_command_as_the_presser() {
    let bot = ready(FakeDiscordConfig::default(), "").await;
    let (_, sent) = bot.slash(command("coinflip", ids::ALICE));
    let answer = bot.callback(&sent).await;
    let button = &answer["data"]["components"][0]["components"][0];
    assert_eq!(
        (button["label"].clone(), button["custom_id"].clone()),
        (json!("Flip again"), json!("/coinflip"))
    );
    let press = bot.fake.send_button(ButtonSpec {
        custom_id: "/coinflip".into(),
        user_id: ids::BOB,
        channel_id: ids::GENERAL,
        message_id: 1_300_000_000_000_000_000,
    });
    let answer = bot.callback(&press).await;
    assert_eq!(answer["type"], 4);
    let side = answer["data"]["content"].as_str().unwrap();
    assert!(side == "Heads." || side == "Tails.", "{answer}");

    // A trivia answer names who gave it: bob presses under alice's question.
    let (_, sent) = bot.slash(command("trivia", ids::ALICE));
    let question = bot.callback(&sent).await;
    let first = &question["data"]["components"][0]["components"][0]["custom_id"];
    let press = bot.fake.send_button(ButtonSpec {
        custom_id: first.as_str().expect("an answer button").into(),
        user_id: ids::BOB,
        channel_id: ids::GENERAL,
        message_id: 1_300_000_000_000_000_001,
    });
    let answer = bot.callback(&press).await.to_string();
    // Right ("@bob got it") or wrong ("... is not it, @bob"), it is bob's answer.
    assert!(
        answer.contains("@bob got it") || answer.contains("is not it, @bob"),
        "{answer}"
    );
    assert!(!answer.contains("alice"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_moderator_is_refused() {
    let mut world = FakeDiscordConfig::default();
    let moderator = world
        .members
        .iter_mut()
        .find(|m| m.user.id == ids::MODERATOR)
        .unwrap();
    moderator.communication_disabled_until = Some("2999-01-01T00:00:00.000000+00:00".into());
    let bot = ready(world, "").await;
    assert_may_not_moderate(&bot, ids::MODERATOR).await;
}

/// `user`'s /mute, /kick and /ban of @bob are each refused for want of the permission, and
/// nothing but the answer is sent.
async fn assert_may_not_moderate(bot: &Bot, user: u64) {
    for (verb, needed) in [
        ("mute", "Moderate Members"),
        ("kick", "Kick Members"),
        ("ban", "Ban Members"),
    ] {
        let mut spec = command(verb, user).option("user", OptionValue::User(ids::BOB));
        if verb == "mute" {
            spec = spec.option("duration", text("10m"));
        }
        let (seen, sent) = bot.slash(spec);
        assert_refusal(
            &bot.callback(&sent).await,
            &format!("/{verb}: you need the {needed} permission"),
        );
        assert_eq!(
            bot.changes_when_idle(seen).await.len(),
            1,
            "only the answer"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_slash_command_is_still_answered_privately() {
    let bot = launch_limited(FakeDiscordConfig::default(), "fake-token", &in_guild(), 1).await;
    bot.fake.wait_identified(WAIT).await;
    let (_, first) = bot.slash(command("ping", ids::ALICE));
    assert_eq!(bot.answer_content(&first).await, "Pong!");
    let (_, told) = bot.slash(command("ping", ids::ALICE));
    let told = bot.callback(&told).await;
    let text = told["data"]["embeds"][0]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.starts_with("You're sending commands too fast; try again in"),
        "{told}"
    );
    assert_eq!(told["data"]["flags"], 64, "ephemeral: {told}");
    // Told once a window; Discord still wants an answer to every later one.
    let (_, again) = bot.slash(command("ping", ids::ALICE));
    assert_refusal(
        &bot.callback(&again).await,
        "You're sending commands too fast.",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_by_discord_is_told_and_audited_as_failed() {
    let bot = ready(FakeDiscordConfig::default(), "").await;
    // A role set above the bot's after cogbox last looked: Discord itself refuses.
    bot.fake.fail_next("PATCH", "/guilds/", Failure::Forbidden);
    let mute = || {
        command("mute", ids::MODERATOR)
            .option("user", OptionValue::User(ids::ALICE))
            .option("duration", text("10m"))
    };
    let (_, sent) = bot.slash(mute());
    let answer = bot.callback(&sent).await;
    let told = answer["data"]["embeds"][0]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(told.starts_with("/mute: "), "{answer}");
    assert!(
        told.contains("Missing Permissions") || told.contains("Discord refused"),
        "{answer}"
    );
    assert!(
        bot.fake
            .member(ids::ALICE)
            .unwrap()
            .communication_disabled_until
            .is_none()
    );
    let audit = bot._sandbox.audit_log();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        (audit[0].0.as_str(), audit[0].1.as_str()),
        ("mute", "failed"),
        "{audit:?}"
    );

    // Only a 403 is Discord saying no; any other error is ours, and not told as a refusal.
    bot.fake.fail_next("PATCH", "/guilds/", Failure::NotFound);
    let (_, sent) = bot.slash(mute());
    let answer = bot.callback(&sent).await;
    let told = answer["data"]["embeds"][0]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        told.contains("went wrong") && !told.contains("refused"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_deletes_recent_messages_in_chunks_and_keeps_old_ones() {
    let bot = ready(FakeDiscordConfig::default(), "").await;
    let old = bot
        .fake
        .seed_message(ids::GENERAL, Duration::from_secs(15 * 24 * 3600));
    // Within a minute of two weeks: left, kept clear of the edge of what Discord bulk-deletes
    // (which the fake enforces). Thirteen days old: still deleted.
    bot.fake
        .seed_message(ids::GENERAL, Duration::from_secs(14 * 24 * 3600 - 30));
    let oldest_deletable = bot
        .fake
        .seed_message(ids::GENERAL, Duration::from_secs(13 * 24 * 3600));
    for age in (1..=99).rev() {
        bot.fake
            .seed_message(ids::GENERAL, Duration::from_secs(age));
    }
    // 100 seeded and the command itself: a bulk delete of 100 and a single delete of 1 (the
    // thirteen-day-old message).
    let (seen, command) = bot.say(ids::MODERATOR, "!purge 1000");
    let reply = bot.message_in(ids::GENERAL, seen).await;
    assert_eq!(reply.body["content"], "Deleted 101 messages.");
    let calls = bot.calls_since(seen);
    let bulk: Vec<&RecordedCall> = calls
        .iter()
        .filter(|c| c.route().ends_with("/bulk-delete"))
        .collect();
    assert_eq!(bulk.len(), 1);
    let deleted = bulk[0].body["messages"].as_array().unwrap();
    assert_eq!(deleted.len(), 100);
    assert_eq!(deleted[0], command.to_string(), "newest first");
    let single: Vec<&RecordedCall> = calls.iter().filter(|c| c.method == "DELETE").collect();
    assert_eq!(single.len(), 1);
    assert!(single[0].path.ends_with(&oldest_deletable.to_string()));
    assert!(!calls.iter().any(
        |c| c.body.to_string().contains(&old.to_string()) || c.path.ends_with(&old.to_string())
    ));
    let left = bot.fake.channel_messages(ids::GENERAL);
    assert_eq!(
        left.len(),
        3,
        "the reply and the two old messages: {left:?}"
    );
    assert_eq!(left[2], old);

    let (seen, _) = bot.say(ids::ALICE, "!purge 5");
    let reply = bot.message_in(ids::GENERAL, seen).await;
    assert_eq!(
        reply.body["embeds"][0]["description"],
        "/purge: you need the Manage Messages permission"
    );
}

/// Only Manage Messages is judged in the channel: an overwrite naming a server-wide permission
/// (Discord accepts one, and it grants nothing) does not let a member mute, kick or ban from
/// there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_overwrite_grants_no_server_wide_permission() {
    let mut world = FakeDiscordConfig::default();
    let server_wide = perms::KICK_MEMBERS | perms::BAN_MEMBERS | perms::MODERATE_MEMBERS;
    world.overwrite(
        ids::GENERAL,
        FakeOverwrite::member(ids::ALICE, server_wide, 0),
    );
    let bot = ready(world, "").await;
    assert_may_not_moderate(&bot, ids::ALICE).await;
}

/// A channel's permission overwrites decide a purge there, as Discord decides them: a member
/// given Manage Messages in one channel may purge it; a moderator denied it there, a bot
/// without Read Message History in another, and a channel the bot cannot see are refused,
/// and nothing is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_overwrites_decide_where_a_purge_may_run() {
    const BACKROOM: u64 = ids::MOD_LOG + 1;
    let mut world = FakeDiscordConfig::default();
    let moderators_see = FakeOverwrite::role(ids::ROLE_MODERATOR, perms::VIEW_CHANNEL, 0);
    world.add_hidden_channel(BACKROOM, "backroom", &[moderators_see]);
    let manage = perms::MANAGE_MESSAGES;
    world.overwrite(
        ids::GENERAL,
        FakeOverwrite::member(ids::MODERATOR, 0, manage),
    );
    world.overwrite(ids::GENERAL, FakeOverwrite::member(ids::ALICE, manage, 0));
    let no_history = FakeOverwrite::role(ids::ROLE_BOT, 0, perms::READ_MESSAGE_HISTORY);
    world.overwrite(ids::MOD_LOG, no_history);
    let bot = ready(world, "").await;
    let purge = |user: u64, channel: u64| {
        bot.fake.seed_message(channel, Duration::from_secs(60));
        let purge = CommandSpec::new("purge", user, channel);
        bot.slash(purge.option("count", OptionValue::Integer(5)))
    };

    let (_, sent) = purge(ids::ALICE, ids::GENERAL);
    assert_eq!(bot.answer_content(&sent).await, "Deleted 1 message.");

    let bot_lacks = "/purge: I need View Channel, Manage Messages and Read Message History in this channel to purge it";
    for (channel, told) in [
        (
            ids::GENERAL,
            "/purge: you need the Manage Messages permission",
        ),
        (ids::MOD_LOG, bot_lacks),
        (BACKROOM, bot_lacks),
    ] {
        let (seen, sent) = purge(ids::MODERATOR, channel);
        assert_refusal(&bot.callback(&sent).await, told);
        assert_eq!(
            bot.changes_when_idle(seen).await.len(),
            1,
            "only the answer"
        );
        assert_eq!(bot.fake.channel_messages(channel).len(), 1);
    }
}

/// The log channel is taken only once the bot has posted there: a channel it cannot see or
/// post in, or an id that is no Discord channel, leaves the setting as it was; then every case
/// is posted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_channel_is_set_only_where_the_bot_can_post() {
    const BACKROOM: u64 = ids::MOD_LOG + 1;
    const NEWS: u64 = ids::MOD_LOG + 2;
    let mut world = FakeDiscordConfig::default();
    world.add_hidden_channel(BACKROOM, "backroom", &[]);
    world.channels.push(FakeChannel::text(NEWS, "news"));
    let read_only = FakeOverwrite::member(ids::BOT, 0, perms::SEND_MESSAGES);
    world.overwrite(NEWS, read_only);
    let bot = &ready(world, "").await;
    let set = |channel: &str| {
        let (seen, _) = bot.say(ids::OWNER, &format!("!settings set log_channel {channel}"));
        seen
    };
    let told_in_general = |seen: Instant| async move {
        let reply = bot.message_in(ids::GENERAL, seen).await;
        let embed = &reply.body["embeds"][0]["description"];
        embed.as_str().unwrap_or_default().to_owned()
    };

    let seen = set(&format!("<#{BACKROOM}>"));
    assert_eq!(
        told_in_general(seen).await,
        "/settings: log_channel is unchanged: I can't see that channel: I need View Channel there"
    );
    let seen = set(&format!("<#{NEWS}>"));
    assert_eq!(
        told_in_general(seen).await,
        "/settings: log_channel is unchanged: I need Send Messages in that channel"
    );
    let seen = set("C0MODLOG");
    assert_eq!(
        told_in_general(seen).await,
        "/settings: log_channel: C0MODLOG is not a discord channel"
    );
    // Another server's channel (one the bot might be able to post in) is never written to.
    let elsewhere = ids::GENERAL + 1000;
    let seen = set(&format!("<#{elsewhere}>"));
    assert_eq!(
        told_in_general(seen).await,
        "/settings: log_channel is unchanged: that is not a channel of this server"
    );
    let route = format!("/channels/{elsewhere}/messages");
    assert!(bot.calls_since(seen).iter().all(|c| !c.is("POST", &route)));

    let seen = set(&format!("<#{}>", ids::MOD_LOG));
    let note = bot.message_in(ids::MOD_LOG, seen).await;
    assert_eq!(
        note.body["content"],
        "@owner set log_channel to this channel."
    );
    let reply = bot.message_in(ids::GENERAL, seen).await;
    assert_eq!(
        reply.body["content"],
        format!("log_channel is now {}.", ids::MOD_LOG)
    );
    let (seen, _) = bot.say(ids::MODERATOR, &format!("!warn <@{}> rude", ids::ALICE));
    let case = bot.message_in(ids::MOD_LOG, seen).await;
    let line = case.body["content"].as_str().unwrap_or_default();
    assert!(line.starts_with("#1 warn @alice by @mod"), "{line}");
    assert!(line.ends_with(": rude"), "{line}");
}

/// Purge takes exactly what was asked across pages, stops at a short page, and lists no
/// further than the first old message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_takes_exactly_what_was_asked_and_lists_no_further_than_needed() {
    let bot = ready(FakeDiscordConfig::default(), "").await;
    let purge = |channel: u64, count: u32| {
        let since = Instant::now();
        let text = format!("!purge {count}");
        let spec = MessageSpec::in_channel(channel, ids::MODERATOR, &text);
        bot.fake.send_message_create(spec);
        since
    };
    let listed = |channel: u64, since: Instant| {
        let route = format!("/channels/{channel}/messages");
        let calls = bot.calls_since(since);
        calls.iter().filter(|c| c.is("GET", &route)).count()
    };
    for age in (1..=150).rev() {
        bot.fake
            .seed_message(ids::GENERAL, Duration::from_secs(age));
    }
    // Across two pages: the command and 119 of the 150, no more.
    let since = purge(ids::GENERAL, 120);
    let reply = bot.message_in(ids::GENERAL, since).await;
    assert_eq!(reply.body["content"], "Deleted 120 messages.");
    assert_eq!(bot.fake.channel_messages(ids::GENERAL).len(), 31 + 1);

    // Fewer messages than asked: the short page is the last one listed.
    for age in (1..=10).rev() {
        bot.fake
            .seed_message(ids::MOD_LOG, Duration::from_secs(age));
    }
    let since = purge(ids::MOD_LOG, 50);
    let reply = bot.message_in(ids::MOD_LOG, since).await;
    assert_eq!(reply.body["content"], "Deleted 11 messages.");
    assert_eq!(listed(ids::MOD_LOG, since), 1);

    // A full page that reaches old messages is the last one listed too.
    for age in 0..150 {
        let old = Duration::from_secs(15 * 24 * 3600 + age);
        bot.fake.seed_message(ids::GENERAL, old);
    }
    let since = purge(ids::GENERAL, 1000);
    let reply = bot.message_in(ids::GENERAL, since).await;
    assert_eq!(reply.body["content"], "Deleted 33 messages.");
    assert_eq!(listed(ids::GENERAL, since), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_disconnect_is_resumed_and_service_continues() {
    let mut bot = ready(FakeDiscordConfig::default(), "").await;
    bot.fake.disconnect();
    bot.fake.wait_resumed(WAIT).await;
    let (seen, _) = bot.say(ids::ALICE, "!ping");
    assert_eq!(
        bot.message_in(ids::GENERAL, seen).await.body["content"],
        "Pong!"
    );
    let sent_by_bot = |op| {
        bot.fake
            .gateway_frames()
            .iter()
            .filter(|f| f.direction == Direction::Received && f.op == op)
            .count()
    };
    assert_eq!(
        (sent_by_bot(2), sent_by_bot(6)),
        (1, 1),
        "one IDENTIFY, then a RESUME"
    );
    assert_eq!(bot.fake.gateway_connections().len(), 2);
    bot.process.signal("-TERM");
    assert_eq!(bot.exit().0, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_waited_out_for_its_retry_after_and_the_call_retried() {
    let bot = ready(FakeDiscordConfig::default(), "").await;
    let route = format!("/channels/{}/messages", ids::GENERAL);
    bot.fake.fail_next(
        "POST",
        &route,
        Failure::RateLimited {
            retry_after: 0.5,
            global: false,
        },
    );
    let (seen, _) = bot.say(ids::ALICE, "!ping");
    let sent = bot.call(|c| c.is("POST", &route) && c.status == 200).await;
    assert_eq!(sent.body["content"], "Pong!");
    let tries: Vec<RecordedCall> = bot
        .calls_since(seen)
        .into_iter()
        .filter(|c| c.is("POST", &route))
        .collect();
    assert_eq!(
        tries.iter().map(|c| c.status).collect::<Vec<_>>(),
        [429, 200]
    );
    let waited = tries[1].at - tries[0].at;
    assert!(
        waited >= Duration::from_millis(500),
        "retried after {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_token_exits_2_with_one_clear_line_and_no_gateway() {
    let mut bot = launch(FakeDiscordConfig::default(), "not-the-token", &in_guild()).await;
    let (code, stderr) = bot.exit();
    assert_eq!(code, 2, "{stderr}");
    let message = "discord.token was rejected by Discord (401 Unauthorized): copy the bot \
                   token from the developer portal (your application → Bot → Reset Token) again";
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("rejected")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].ends_with(message), "{stderr}");
    assert!(bot.fake.gateway_connections().is_empty());
    let calls = bot.fake.calls();
    assert_eq!(calls.len(), 1, "no retries: {calls:#?}");
    assert!(calls[0].is("GET", "/users/@me") && calls[0].status == 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disallowed_intent_at_start_up_is_explained_and_exits_2() {
    let world = FakeDiscordConfig {
        privileged_intents: intents::GUILD_MEMBERS,
        ..FakeDiscordConfig::default()
    };
    let mut bot = launch(world, "fake-token", &in_guild()).await;
    let (code, stderr) = bot.exit();
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "refused a privileged intent that is not switched on (close code 4014): in the \
             developer portal, switch on the Server Members Intent and Message Content Intent"
        ) && stderr.contains("or set discord.prefix = \"\" to turn prefix commands off"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_while_running_is_explained_and_exits_2() {
    let mut bot = ready(FakeDiscordConfig::default(), "").await;
    bot.fake.revoke_token();
    bot.fake.disconnect();
    let (code, stderr) = bot.exit();
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("the gateway rejected the token (close code 4004"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paying_a_bot_or_without_money_is_refused_and_a_payment_goes_through() {
    let bot = ready(FakeDiscordConfig::default(), "").await;
    let pay = |to: u64, amount: i64| {
        command("pay", ids::ALICE)
            .option("user", OptionValue::User(to))
            .option("amount", OptionValue::Integer(amount))
    };
    let (_, sent) = bot.slash(pay(ids::BOT, 5));
    assert_refusal(
        &bot.callback(&sent).await,
        "/pay: @cogbox is a bot and can't hold money",
    );
    let (_, sent) = bot.slash(pay(ids::BOB, 5));
    assert_refusal(&bot.callback(&sent).await, "/pay: you have only 0 coins");
    let (_, sent) = bot.slash(command("daily", ids::ALICE));
    let answer = bot.callback(&sent).await;
    assert!(
        answer["data"]["content"]
            .as_str()
            .is_some_and(|t| t.starts_with("You collected 100 coins.")),
        "{answer}"
    );
    let (_, sent) = bot.slash(pay(ids::BOB, 30));
    let answer = bot.callback(&sent).await;
    assert!(
        answer["data"]["content"].as_str().is_some_and(
            |t| t.starts_with("You paid @") && t.ends_with("30 coins. You have 70 coins left.")
        ),
        "{answer}"
    );
}

/// GUILD_CREATE carries only the bot, as on Discord without the presences intent: a typed
/// `@name` is found through the gateway's member search, and a name that fits two members (a
/// nickname set to someone else's username) is refused with both named, never guessed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_name_is_searched_for_and_an_ambiguous_one_is_refused() {
    let bot = ready(FakeDiscordConfig::default(), "").await;
    let (seen, _) = bot.say(ids::MODERATOR, "!mute @alice 10m");
    let reply = bot.message_in(ids::GENERAL, seen).await;
    assert_eq!(reply.body["content"], "Muted @alice for 10m.");
    let search = bot
        .fake
        .gateway_frames()
        .into_iter()
        .find(|f| f.direction == Direction::Received && f.op == 8)
        .expect("a member search");
    assert_eq!(
        (&search.d["query"], &search.d["guild_id"]),
        (&json!("alice"), &json!(ids::GUILD.to_string()))
    );

    let mut world = FakeDiscordConfig::default();
    world
        .members
        .iter_mut()
        .find(|m| m.user.id == ids::BOB)
        .unwrap()
        .nick = Some("alice".into());
    let bot = ready(world, "").await;
    let (seen, _) = bot.say(ids::MODERATOR, "!mute @alice 10m");
    let reply = bot.message_in(ids::GENERAL, seen).await;
    assert_eq!(
        reply.body["embeds"][0]["description"],
        "/mute: @alice could be @alice (username) or @bob (nickname alice): \
         mention them or give their id"
    );
    assert_eq!(
        bot.changes_when_idle(seen).await.len(),
        1,
        "only the answer"
    );
    let (seen, _) = bot.say(ids::MODERATOR, "!mute @nobody 10m");
    let reply = bot.message_in(ids::GENERAL, seen).await;
    assert_eq!(
        reply.body["embeds"][0]["description"],
        "/mute: I can't find @nobody here"
    );
    // A mention of someone who is not in the server: Discord answers 404, which is "not here"
    // rather than a failure.
    let (seen, _) = bot.say(ids::MODERATOR, "!mute <@424242424242> 10m");
    let reply = bot.message_in(ids::GENERAL, seen).await;
    assert_eq!(
        reply.body["embeds"][0]["description"],
        "/mute: I can't find user 424242424242 here"
    );
    // An id no Discord user can have (a Slack one, pasted here) is nobody, not a failure.
    let (seen, _) = bot.say(ids::MODERATOR, "!mute <@U0ABC123> 10m");
    let reply = bot.message_in(ids::GENERAL, seen).await;
    assert_eq!(
        reply.body["embeds"][0]["description"],
        "/mute: I can't find user U0ABC123 here"
    );
}

/// A reminder is posted in the channel where it was set; once that channel is deleted (Discord's
/// 404, Unknown Channel), it reaches its author by direct message instead of being retried there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_is_posted_where_it_was_set_or_else_by_direct_message() {
    const LOUNGE: u64 = ids::MOD_LOG + 1;
    let mut world = FakeDiscordConfig::default();
    world.channels.push(FakeChannel::text(LOUNGE, "lounge"));
    let bot = ready(world, "").await;
    let (seen, _) = bot.say(ids::ALICE, "!remind 1s stretch");
    let stretch = bot
        .call(|c| {
            c.at >= seen
                && c.is("POST", &format!("/channels/{}/messages", ids::GENERAL))
                && c.body["content"]
                    .as_str()
                    .is_some_and(|t| t.ends_with(": stretch"))
        })
        .await;
    assert_eq!(stretch.status, 200);

    let seen = Instant::now();
    let spec = MessageSpec::in_channel(LOUNGE, ids::ALICE, "!remind 2s water");
    bot.fake.send_message_create(spec);
    bot.message_in(LOUNGE, seen).await;
    bot.fake.delete_channel(LOUNGE);
    let lounge = format!("/channels/{LOUNGE}/messages");
    let water = |c: &RecordedCall| {
        c.at >= seen
            && c.method == "POST"
            && c.route().ends_with("/messages")
            && c.body["content"]
                .as_str()
                .is_some_and(|t| t.ends_with(": water"))
    };
    assert_eq!(
        bot.call(|c| water(c) && c.route() == lounge).await.status,
        404
    );
    let by_dm = bot.call(|c| water(c) && c.status == 200).await;
    assert_ne!(by_dm.route(), lounge);
    let opened = bot
        .call(|c| c.at >= seen && c.is("POST", "/users/@me/channels"))
        .await;
    assert_eq!(opened.body["recipient_id"], ids::ALICE.to_string());
    let (later, _) = bot.say(ids::ALICE, "!ping");
    bot.message_in(ids::GENERAL, later).await;
    let tries = bot.calls_since(seen);
    let tries = tries.iter().filter(|c| water(c) && c.route() == lounge);
    assert_eq!(tries.count(), 1, "tried once where it was set, not again");
}

/// A warning goes by the same ranks as a timeout; an unban looks users up anywhere, and a user
/// Discord does not know is "not found" while a refused lookup is told as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_follow_ranks_and_unban_looks_users_up_beyond_the_server() {
    let bot = ready(FakeDiscordConfig::default(), "").await;
    let told = refusal_to(&bot, &format!("!warn <@{}> rude", ids::OWNER)).await;
    assert!(told.contains("nobody can warn a server owner"), "{told}");
    let told = refusal_to(&bot, &format!("!warn <@{}> rude", ids::BOT)).await;
    assert_eq!(told, "/warn: I won't warn myself");

    let told = refusal_to(&bot, "!unban <@424242424242>").await;
    assert_eq!(told, "/unban: I can't find user 424242424242 here");
    bot.fake.fail_next("GET", "/users/", Failure::Forbidden);
    let told = refusal_to(&bot, "!unban <@424242424243>").await;
    assert!(
        told.contains("Discord refused") && !told.contains("can't find"),
        "{told}"
    );
}

/// The moderator's prefix command `text`, and the refusal it is answered with.
async fn refusal_to(bot: &Bot, text: &str) -> String {
    let (seen, _) = bot.say(ids::MODERATOR, text);
    let reply = bot.message_in(ids::GENERAL, seen).await;
    let told = &reply.body["embeds"][0]["description"];
    told.as_str().unwrap_or_default().to_owned()
}

/// Discord bans have no end date of their own: a timed one is a ban now, and its end a durable
/// job (proven lifted across a restart on the console, where time can be moved).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_ban_bans_now_and_is_recorded_with_its_end() {
    let bot = ready(FakeDiscordConfig::default(), "").await;
    let (seen, _) = bot.say(ids::MODERATOR, "!ban @alice 7d raid");
    let reply = bot.message_in(ids::GENERAL, seen).await;
    assert_eq!(reply.body["content"], "Banned @alice for 7d. Reason: raid");
    assert!(bot.fake.is_banned(ids::ALICE));
    let (seen, _) = bot.say(ids::MODERATOR, "!modlog");
    let log = bot.message_in(ids::GENERAL, seen).await;
    let text = log.body["embeds"][0]["description"].as_str().unwrap();
    assert!(
        text.starts_with("#1 ban @alice (until ") && text.ends_with("raid; done"),
        "{text}"
    );
}

/// A timed ban ends even when the moderator who banned has left the server since: the end
/// was decided when they banned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_ban_ends_after_its_moderator_left() {
    let bot = ready(FakeDiscordConfig::default(), "").await;
    let (seen, _) = bot.say(ids::MODERATOR, "!ban @alice 3s raid");
    let reply = bot.message_in(ids::GENERAL, seen).await;
    assert_eq!(reply.body["content"], "Banned @alice for 3s. Reason: raid");
    bot.fake.remove_member(ids::MODERATOR);
    let lifted = format!("/guilds/{}/bans/{}", ids::GUILD, ids::ALICE);
    let call = bot.call(|c| c.is("DELETE", &lifted)).await;
    assert_eq!(call.status, 204);
    assert!(!bot.fake.is_banned(ids::ALICE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_vote_updates_the_poll_message_in_place() {
    let bot = ready(FakeDiscordConfig::default(), "").await;
    let poll = command("poll", ids::ALICE).option("poll", text("Lunch? | pizza | sushi"));
    let (_, sent) = bot.slash(poll);
    let answer = bot.callback(&sent).await;
    assert_eq!(answer["type"], 4, "{answer}");
    let embed = &answer["data"]["embeds"][0];
    assert_eq!(embed["title"], "Poll #1: Lunch?");
    assert_eq!(embed["description"], "1. pizza: 0\n2. sushi: 0\n0 votes");
    let buttons = &answer["data"]["components"][0]["components"];
    assert_eq!(buttons[1]["custom_id"], "/vote 1 2");

    let press = bot.fake.send_button(ButtonSpec {
        custom_id: "/vote 1 2".into(),
        user_id: ids::BOB,
        channel_id: ids::GENERAL,
        message_id: 1_300_000_000_000_000_000,
    });
    let update = bot.callback(&press).await;
    assert_eq!(update["type"], 7, "UPDATE_MESSAGE: {update}");
    let data = &update["data"];
    assert_eq!(
        data["embeds"][0]["description"],
        "1. pizza: 0\n2. sushi: 1\n1 vote"
    );
    assert_eq!(data["content"], "", "nothing of the old message survives");
    assert_eq!(
        data["components"][0]["components"][0]["custom_id"],
        "/vote 1 1"
    );

    // A refusal is a private answer of its own; the poll message is left alone.
    let stale = bot.fake.send_button(ButtonSpec {
        custom_id: "/vote 9 1".into(),
        user_id: ids::BOB,
        channel_id: ids::GENERAL,
        message_id: 1_300_000_000_000_000_000,
    });
    let refused = bot.callback(&stale).await;
    assert_eq!(refused["type"], 4, "{refused}");
    assert_eq!(refused["data"]["flags"], 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_can_choose_its_own_prefix() {
    let bot = ready(FakeDiscordConfig::default(), "").await;
    let (seen, _) = bot.say(ids::ALICE, "!settings set prefix ?");
    let refused = bot.message_in(ids::GENERAL, seen).await;
    assert!(
        refused.body["embeds"][0]["description"]
            .as_str()
            .is_some_and(|d| d.contains("Manage Server")),
        "members may not: {}",
        refused.body
    );
    let (seen, _) = bot.say(ids::OWNER, "!settings set prefix two words");
    let invalid = bot.message_in(ids::GENERAL, seen).await;
    assert!(
        invalid.body.to_string().contains("without spaces"),
        "{}",
        invalid.body
    );
    let (seen, _) = bot.say(ids::OWNER, "!settings set prefix ?");
    let set = bot.message_in(ids::GENERAL, seen).await;
    assert_eq!(set.body["content"], "prefix is now ?.");
    let (seen, _) = bot.say(ids::ALICE, "!ping");
    bot.say(ids::ALICE, "?roll 2d6");
    let reply = bot.message_in(ids::GENERAL, seen).await;
    assert_roll(reply.body["content"].as_str().unwrap());
    assert_eq!(
        bot.calls_since(seen)
            .iter()
            .filter(|c| c.is("POST", &format!("/channels/{}/messages", ids::GENERAL)))
            .count(),
        1,
        "the old prefix is another bot's now: only ?roll was answered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_who_joins_is_welcomed_under_discords_join_message() {
    let bot = ready(FakeDiscordConfig::default(), "").await;
    let (seen, _) = bot.say(
        ids::OWNER,
        "!settings set welcome_message Hello {user}, welcome!",
    );
    let set = bot.message_in(ids::GENERAL, seen).await;
    assert!(
        set.body["content"]
            .as_str()
            .unwrap()
            .contains("welcome_message is now")
    );
    let seen = Instant::now();
    bot.fake
        .send_message_create(MessageSpec::joined(ids::GENERAL, ids::BOB));
    let welcome = bot.message_in(ids::GENERAL, seen).await;
    let content = welcome.body["content"].as_str().unwrap();
    assert!(
        content.starts_with("Hello @") && content.ends_with(", welcome!"),
        "{content}"
    );
    pings_nobody(&welcome.body);
}
