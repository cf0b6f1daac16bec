//! Slack end to end: `cogbox slack manifest`, and the real binary against the fake Slack in
//! Socket Mode and in events mode.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fake_slack::{
    self, Call, Failure, FakeSlack, FakeSlackConfig, SignedSender, ids, slash_command,
};
use crate::support::{Running, Sandbox};
use crate::telegram::free_port;

#[test]
fn the_manifest_declares_the_umbrella_command_with_every_cogbox_command() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "config.toml",
        "[bot]\nname = \"Helper\"\n[slack]\ncommand = \"/helper\"\n",
    );

    let out = sandbox.run(&["slack", "manifest"], "");

    assert_eq!(out.code, 0, "{}", out.stderr);
    let manifest: Value = serde_json::from_str(&out.stdout).expect("the manifest is JSON");
    assert_eq!(manifest["display_information"]["name"], "Helper");
    assert_eq!(manifest["settings"]["socket_mode_enabled"], true);
    let command = &manifest["features"]["slash_commands"][0];
    assert_eq!(command["command"], "/helper");
    let hint = command["usage_hint"].as_str().unwrap();
    for name in ["help", "roll", "kick", "cog"] {
        assert!(hint.split(" | ").any(|n| n == name), "{name} in {hint}");
    }
}

#[test]
fn events_mode_needs_the_public_address() {
    let sandbox = Sandbox::new();
    sandbox.write("config.toml", "[slack]\nmode = \"events\"\n");

    let missing = sandbox.run(&["slack", "manifest"], "");
    assert_eq!(missing.code, 2);
    assert!(
        missing
            .stderr
            .contains("events mode needs the public https address Slack posts to: --url"),
        "{}",
        missing.stderr
    );
    assert!(missing.stdout.is_empty());

    let out = sandbox.run(
        &["slack", "manifest", "--url", "https://bot.example.com"],
        "",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let manifest: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(manifest["settings"]["socket_mode_enabled"], false);
    assert_eq!(
        manifest["settings"]["event_subscriptions"]["request_url"],
        "https://bot.example.com/slack/events"
    );
}

#[test]
fn a_bad_config_is_reported_before_any_manifest() {
    let sandbox = Sandbox::new();
    sandbox.write("config.toml", "[slack]\ncommand = \"/remind\"\n");

    let out = sandbox.run(&["slack", "manifest"], "");

    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(
            "config.toml: slack.command: \"/remind\" is one of Slack's built-in commands"
        ),
        "{}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// The running bot against the fake Slack.

/// The buttons of a message the bot posted, in order.
fn buttons(posted: &Call) -> Vec<&Value> {
    let blocks = posted.params["blocks"].as_array().into_iter().flatten();
    blocks
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().into_iter().flatten())
        .collect()
}

fn button_labels(posted: &Call) -> Vec<&str> {
    let labels = buttons(posted).into_iter();
    labels
        .map(|b| b["text"]["text"].as_str().unwrap_or_default())
        .collect()
}

const WAIT: Duration = Duration::from_secs(20);
/// Slack redelivers an envelope that is not acked within this.
const ACK_DEADLINE: Duration = Duration::from_secs(3);

/// `cogbox run` with Slack on `fake`, in socket mode or (with a port) events mode.
fn slack_command(
    sandbox: &Sandbox,
    fake: &FakeSlack,
    events_port: Option<u16>,
) -> std::process::Command {
    let mut command = sandbox.command(&["run"]);
    command
        .env("COGBOX_SLACK__BOT_TOKEN", fake_slack::BOT_TOKEN)
        .env("COGBOX_SLACK__API_URL", fake.api_url());
    match events_port {
        None => command.env("COGBOX_SLACK__APP_TOKEN", fake_slack::APP_TOKEN),
        Some(port) => command
            .env("COGBOX_SLACK__MODE", "events")
            .env("COGBOX_SLACK__SIGNING_SECRET", fake_slack::SIGNING_SECRET)
            .env("COGBOX_SLACK__EVENTS__LISTEN", format!("127.0.0.1:{port}")),
    };
    command
}

/// The fake Slack and cogbox connected to it in Socket Mode.
struct Harness {
    fake: FakeSlack,
    bot: Running,
    _sandbox: Sandbox,
}

impl Harness {
    async fn start() -> Self {
        Self::start_with(FakeSlackConfig::default()).await
    }

    async fn start_with(config: FakeSlackConfig) -> Self {
        Self::launch(config, &[]).await
    }

    /// Starts with `env`'s `COGBOX_*` settings added.
    async fn launch(config: FakeSlackConfig, env: &[(&str, &str)]) -> Self {
        let fake = FakeSlack::start(config).await;
        let sandbox = Sandbox::new();
        let mut command = slack_command(&sandbox, &fake, None);
        command.envs(env.iter().copied());
        let bot = sandbox.spawn(command);
        fake.wait_for_connections(1, WAIT).await;
        Self {
            fake,
            bot,
            _sandbox: sandbox,
        }
    }

    /// The bot's next message in `channel` whose text satisfies `check`.
    async fn posted(&self, channel: &str, check: impl Fn(&str) -> bool) -> Call {
        self.fake
            .wait_for_call(
                "chat.postMessage",
                |c| {
                    c.status == 200
                        && c.params["channel"] == channel
                        && check(c.params["text"].as_str().unwrap_or_default())
                },
                WAIT,
            )
            .await
    }

    /// `user` runs `/cogbox <text>` in `channel`; returns the envelope id.
    fn slash(&self, user: &str, channel: &str, text: &str) -> String {
        self.fake.send_slash_command(user, channel, "/cogbox", text)
    }

    /// `user` runs `/cogbox <text>` in `channel`; the first answer through a response URL
    /// after it, whatever it says.
    async fn answer_to(&self, user: &str, channel: &str, text: &str) -> Call {
        let asked = Instant::now();
        self.slash(user, channel, text);
        self.fake
            .wait_for_call("response_url", |c| c.at >= asked, WAIT)
            .await
    }

    /// What the bot told the caller alone through a response URL, once it has.
    async fn ephemeral_response(&self, check: impl Fn(&str) -> bool) -> String {
        let call = self
            .fake
            .wait_for_call(
                "response_url",
                |c| {
                    c.params["response_type"] == "ephemeral"
                        && check(c.params["text"].as_str().unwrap_or_default())
                },
                WAIT,
            )
            .await;
        call.params["text"].as_str().unwrap().to_owned()
    }

    /// Waits until the bot is provably idle: a later command's answer has arrived.
    async fn settle(&self) {
        self.slash(ids::OWNER, ids::GENERAL, "roll 7d1");
        self.posted(ids::GENERAL, |t| t.starts_with("7d1:")).await;
    }
}

/// Slack's `/help` and `/remind` are Slack's own: every hint names the umbrella command the
/// app was configured with, in help, in mistakes and in cogs' own advice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hints_name_commands_the_way_they_are_typed_on_slack() {
    let h = Harness::launch(
        FakeSlackConfig::default(),
        &[("COGBOX_SLACK__COMMAND", "/helper")],
    )
    .await;
    let helper = |text: &str| {
        let asked = Instant::now();
        h.fake
            .send_slash_command(ids::MEMBER, ids::RANDOM, "/helper", text);
        asked
    };

    helper("help");
    let help = h.posted(ids::RANDOM, |t| t.starts_with("Commands:")).await;
    assert_eq!(
        help.params["text"],
        "Commands: Type /helper help &lt;command&gt; for details."
    );
    let blocks = help.params["blocks"].to_string();
    assert!(blocks.contains("/helper roll &lt;dice&gt; - "), "{blocks}");
    assert!(!blocks.contains(" /roll"), "{blocks}");

    for (text, told) in [
        ("rol 2d6", "Unknown command /helper rol. Try /helper help."),
        (
            "roll",
            "/helper roll: missing &lt;dice&gt; (usage: /helper roll &lt;dice&gt;)",
        ),
    ] {
        let asked = helper(text);
        let answer = h
            .fake
            .wait_for_call("response_url", |c| c.at >= asked, WAIT)
            .await;
        assert_eq!(answer.params["text"], told);
    }

    helper("reminders");
    h.posted(ids::RANDOM, |t| {
        t == "You have no reminders here. Set one with /helper remind 10m tea."
    })
    .await;
}

/// Slack writes a channel as `<#C0123|name>`: the log channel takes it, but only once the bot
/// has posted there (not where it was never invited, nor in an archived or unknown channel),
/// and every case is posted to it after that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_channel_takes_a_slack_channel_the_bot_is_in() {
    let h = Harness::start().await;
    let set = |channel: &str| format!("settings set log_channel <#{channel}|log>");

    h.fake.add_channel("C0OLDNEWS", "old-news");
    h.fake.archive_channel("C0OLDNEWS");
    for (channel, why) in [
        (ids::QUIET, "I'm not in that channel: invite me there first"),
        ("C0OLDNEWS", "that channel is archived"),
        (
            "C0NOWHERE",
            "there is no such channel, or it is private and I'm not in it",
        ),
    ] {
        let refused = h.answer_to(ids::ADMIN, ids::RANDOM, &set(channel)).await;
        assert_eq!(
            refused.params["text"],
            format!("/cogbox settings: log_channel is unchanged: {why}")
        );
    }
    let asked = Instant::now();
    h.slash(ids::ADMIN, ids::RANDOM, &set(ids::RANDOM));
    let note = h
        .posted(ids::RANDOM, |t| {
            t.ends_with(" set log_channel to this channel.")
        })
        .await;
    assert!(note.at >= asked);
    h.posted(ids::RANDOM, |t| {
        t == format!("log_channel is now {}.", ids::RANDOM)
    })
    .await;

    h.slash(
        ids::ADMIN,
        ids::GENERAL,
        &format!("warn <@{}|target> spam", ids::TARGET),
    );
    let case = h.posted(ids::RANDOM, |t| t.starts_with("#1 warn ")).await;
    let line = case.params["text"].as_str().unwrap();
    assert!(line.ends_with(": spam"), "{line}");
}

/// Slack never sends a slash command again: one that finds the bot busy is answered at once,
/// to its caller alone, and dropped, while a busy event is left for Slack to deliver again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_bot_answers_a_command_at_once_and_takes_an_event_when_it_comes_again() {
    let one_slot = [("COGBOX_LIMITS__MAX_IN_FLIGHT", "1")];
    let h = Harness::launch(FakeSlackConfig::default(), &one_slot).await;
    // The one slot stays taken while the first answer waits out Slack's rate limit.
    h.fake
        .fail_next("chat.postMessage", Failure::RateLimited(3));
    h.slash(ids::MEMBER, ids::RANDOM, "roll 1d1");
    h.fake
        .wait_for_call("chat.postMessage", |c| c.status == 429, WAIT)
        .await;

    let command = h.slash(ids::MEMBER, ids::RANDOM, "roll 2d1");
    let ack = h.fake.wait_for_ack(&command, WAIT).await;
    let busy = json!({
        "response_type": "ephemeral",
        "text": "I'm busy right now; try again in a moment.",
    });
    assert_eq!(ack.payload, Some(busy));
    let mention = h.fake.send_app_mention(
        ids::MEMBER,
        ids::RANDOM,
        &format!("<@{}> roll 3d1", ids::BOT_USER),
    );
    h.posted(ids::RANDOM, |t| t == "1d1: [1] = 1").await;
    h.posted(ids::RANDOM, |t| t == "3d1: [1, 1, 1] = 3").await;
    let deliveries = h.fake.deliveries();
    let again = |id: &str| {
        deliveries
            .iter()
            .any(|d| d.envelope_id == id && d.retry_attempt > 0)
    };
    assert!(again(&mention), "the event was delivered again");
    assert!(!again(&command), "a command never is");
    // Idle once a later command finds the slot free and is answered.
    loop {
        let later = h.slash(ids::OWNER, ids::GENERAL, "roll 7d1");
        if h.fake.wait_for_ack(&later, WAIT).await.payload.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h.posted(ids::GENERAL, |t| t.starts_with("7d1:")).await;
    let posted = h.fake.calls_of("chat.postMessage");
    assert!(posted.iter().all(|c| c.params["text"] != "2d1: [1, 1] = 2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_mention_and_direct_message_commands_are_answered_and_acked_in_time() {
    let h = Harness::start().await;

    let slash = h.slash(ids::MEMBER, ids::RANDOM, "roll 1d1");
    h.posted(ids::RANDOM, |t| t == "1d1: [1] = 1").await;
    let mention = h.fake.send_app_mention(
        ids::MEMBER,
        ids::RANDOM,
        &format!("<@{}> roll 2d1", ids::BOT_USER),
    );
    h.posted(ids::RANDOM, |t| t == "2d1: [1, 1] = 2").await;
    let direct = h.fake.send_direct_message(ids::MEMBER, ids::DM, "roll 3d1");
    h.posted(ids::DM, |t| t == "3d1: [1, 1, 1] = 3").await;
    // Chatter that does not start with the bot's mention is not a command.
    h.fake.send_app_mention(
        ids::MEMBER,
        ids::RANDOM,
        &format!("thanks <@{}> roll 4d1", ids::BOT_USER),
    );
    // A mistake in a mention has no response URL: it is shown to its author alone.
    h.fake.send_app_mention(
        ids::MEMBER,
        ids::RANDOM,
        &format!("<@{}> rol 5d1", ids::BOT_USER),
    );
    let private = h
        .fake
        .wait_for_call("chat.postEphemeral", |c| c.status == 200, WAIT)
        .await;
    assert_eq!(
        (&private.params["channel"], &private.params["user"]),
        (&json!(ids::RANDOM), &json!(ids::MEMBER))
    );
    let told = private.params["text"].as_str().unwrap_or_default();
    assert_eq!(told, "Unknown command /cogbox rol. Try /cogbox help.");
    h.settle().await;
    assert!(
        h.fake
            .calls_of("chat.postMessage")
            .iter()
            .all(|c| c.params["text"] != "4d1: [1, 1, 1, 1] = 4" && c.params["text"] != told)
    );

    for envelope in [slash, mention, direct] {
        let ack = h.fake.wait_for_ack(&envelope, WAIT).await;
        let after = ack.after.expect("an ack of a delivered envelope");
        assert!(after < ACK_DEADLINE, "{envelope} acked after {after:?}");
    }
    let redelivered: Vec<_> = h
        .fake
        .deliveries()
        .into_iter()
        .filter(|d| d.retry_attempt > 0)
        .collect();
    assert!(redelivered.is_empty(), "{redelivered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_command_is_acked_before_it_runs() {
    let h = Harness::start().await;
    // users.info answers only after 5 s of 429s: the kick waits, its envelope does not.
    h.fake.fail_times("users.info", Failure::RateLimited(2), 2);
    let envelope = h.slash(
        ids::ADMIN,
        ids::RANDOM,
        &format!("kick <@{}|tom>", ids::TARGET),
    );
    let ack = h.fake.wait_for_ack(&envelope, WAIT).await;
    assert!(ack.after.unwrap() < ACK_DEADLINE, "{:?}", ack.after);
    h.fake
        .wait_for_call("conversations.kick", |c| c.status == 200, WAIT)
        .await;
    assert!(h.fake.deliveries().iter().all(|d| d.retry_attempt == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_button_is_pressed_by_the_member_who_pressed_it() {
    let h = Harness::start().await;
    h.slash(ids::MEMBER, ids::RANDOM, "poll Lunch? | pizza | sushi");
    let posted = h.posted(ids::RANDOM, |t| t.contains("Lunch?")).await;
    let message = h
        .fake
        .messages(ids::RANDOM)
        .pop()
        .expect("the poll message");
    let ts = message["ts"].as_str().unwrap().to_owned();
    let sushi = buttons(&posted)
        .into_iter()
        .find(|b| b["text"]["text"] == "sushi")
        .expect("a sushi button");
    let (action, value) = (
        sushi["action_id"].as_str().unwrap(),
        sushi["value"].as_str().unwrap(),
    );

    h.fake
        .send_button_press(ids::ADMIN, ids::RANDOM, &ts, action, value);
    h.fake
        .wait_for_call(
            "chat.update",
            |c| c.params["ts"] == ts.as_str() && c.status == 200,
            WAIT,
        )
        .await;
    h.fake
        .send_button_press(ids::OWNER, ids::RANDOM, &ts, action, value);
    let updated = h
        .fake
        .wait_for_call(
            "chat.update",
            |c| {
                c.params["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("2 votes"))
            },
            WAIT,
        )
        .await;
    // Two presses by two members are two votes: each ran as the member who pressed.
    assert_eq!(updated.status, 200);
    let now = h
        .fake
        .messages(ids::RANDOM)
        .into_iter()
        .find(|m| m["ts"] == ts.as_str())
        .unwrap();
    assert!(now["blocks"].to_string().contains("sushi: 2"), "{now}");
    assert!(
        now["blocks"].to_string().contains("\"sushi\""),
        "the buttons are kept: {now}"
    );

    // A press that fails is told to the presser alone, and the poll stays as it was.
    h.fake
        .send_button_press(ids::MEMBER, ids::RANDOM, &ts, action, "/vote 999 1");
    let told = h.ephemeral_response(|t| t.contains("999")).await;
    assert!(told.starts_with("/cogbox vote: "), "{told}");
    let after = h.fake.messages(ids::RANDOM);
    let poll = after.iter().find(|m| m["ts"] == ts.as_str()).unwrap();
    assert_eq!(poll, &now, "the poll is unchanged");
}

/// Slack writes channels and links with a label after a `|`, which must not split a poll's
/// options: each is one option.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_or_a_link_is_one_poll_option() {
    let h = Harness::start().await;
    let poll = format!(
        "poll Where? | <#{}|general> | <https://x.example/r|x.example>",
        ids::GENERAL
    );
    h.slash(ids::MEMBER, ids::RANDOM, &poll);
    let posted = h.posted(ids::RANDOM, |t| t.contains("Where?")).await;
    assert_eq!(
        button_labels(&posted),
        [
            format!("<#{}>", ids::GENERAL).as_str(),
            "https://x.example/r"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_text_from_a_member_can_mention_everyone_or_anyone() {
    let h = Harness::start().await;
    // What Slack sends when a member types @channel, @here, @everyone and @tom, a link, and
    // markup typed as text (which Slack escapes).
    let question = format!(
        "<!channel> <!here> <!everyone> <@{}|tom> <https://evil.example> &lt;!channel&gt;?",
        ids::TARGET
    );
    h.slash(
        ids::MEMBER,
        ids::RANDOM,
        &format!("poll {question} | yes | no"),
    );
    let posted = h.posted(ids::RANDOM, |t| t.contains("yes")).await;
    // Slack reads mentions in the notification text and in mrkdwn; plain_text (the header,
    // button labels) is never parsed for them.
    let mut parsed = vec![posted.params["text"].as_str().unwrap().to_owned()];
    for block in posted.params["blocks"].as_array().unwrap() {
        for text in
            std::iter::once(&block["text"]).chain(block["fields"].as_array().into_iter().flatten())
        {
            if text["type"] == "mrkdwn" {
                parsed.push(text["text"].as_str().unwrap().to_owned());
            }
        }
    }
    let everything = parsed.join("\n");
    for ping in [
        "<!channel>",
        "<!here>",
        "<!everyone>",
        "<@U0TARGET1>",
        "<https://",
    ] {
        assert!(!everything.contains(ping), "{ping} went out: {everything}");
    }
    assert!(
        everything.contains("&lt;!channel&gt; &lt;!here&gt;"),
        "{everything}"
    );
    // The mention's label is not an option: the poll has exactly the two it was given.
    assert_eq!(button_labels(&posted), ["yes", "no"]);
    assert!(
        !everything.contains("&amp;lt;"),
        "escaped once, not twice: {everything}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kick_is_refused_for_a_member_and_done_for_an_admin() {
    let h = Harness::start().await;
    let kick = format!("kick <@{}|tom> spamming", ids::TARGET);

    h.slash(ids::MEMBER, ids::RANDOM, &kick);
    let refusal = h.ephemeral_response(|t| t.contains("kick")).await;
    assert!(refusal.contains("Workspace Admin"), "{refusal}");
    assert!(
        h.fake
            .members(ids::RANDOM)
            .contains(&ids::TARGET.to_owned())
    );

    h.slash(ids::ADMIN, ids::RANDOM, &kick);
    let call = h
        .fake
        .wait_for_call("conversations.kick", |c| c.status == 200, WAIT)
        .await;
    assert_eq!(call.params["channel"], ids::RANDOM);
    assert_eq!(call.params["user"], ids::TARGET);
    assert!(
        !h.fake
            .members(ids::RANDOM)
            .contains(&ids::TARGET.to_owned())
    );
    h.posted(ids::RANDOM, |t| t.contains("tom")).await;

    // An admin cannot kick the workspace owner, and nobody is kicked from #general. Members
    // are named by their display name where they set one (olivia did), else by username.
    h.slash(
        ids::ADMIN,
        ids::RANDOM,
        &format!("kick <@{}|olivia>", ids::OWNER),
    );
    let refusal = h.ephemeral_response(|t| t.contains("owner")).await;
    assert!(
        refusal.contains("@Olivia is a workspace owner"),
        "{refusal}"
    );
    // Nor warn them: a warning goes by the same ranks.
    h.slash(
        ids::ADMIN,
        ids::RANDOM,
        &format!("warn <@{}|olivia> rude", ids::OWNER),
    );
    let refusal = h.ephemeral_response(|t| t.contains("warn")).await;
    assert!(
        refusal.contains("@Olivia is a workspace owner: nobody can warn them"),
        "{refusal}"
    );
    h.slash(
        ids::OWNER,
        ids::GENERAL,
        &format!("kick <@{}|mia>", ids::MEMBER),
    );
    let refusal = h.ephemeral_response(|t| t.contains("general")).await;
    assert!(refusal.contains("never removes anyone"), "{refusal}");
    assert_eq!(
        h.fake
            .calls_of("conversations.kick")
            .iter()
            .filter(|c| c.status == 200 && c.error.is_none())
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_keeps_the_member_out_of_every_channel_until_unbanned_and_mute_and_purge_are_refused()
{
    let h = Harness::start().await;
    const OTHER: &str = "C0OTHER01";
    h.fake.add_channel(OTHER, "other");
    h.slash(
        ids::ADMIN,
        ids::RANDOM,
        &format!("mute <@{}|tom> 10m", ids::TARGET),
    );
    let refusal = h.ephemeral_response(|t| t.contains("mute")).await;
    assert!(
        refusal.contains("Slack gives apps no way to mute"),
        "{refusal}"
    );
    // Nor to delete other people's messages.
    h.slash(ids::ADMIN, ids::RANDOM, "purge 5");
    let refusal = h.ephemeral_response(|t| t.contains("purge")).await;
    assert!(
        refusal.contains("Slack lets apps delete only their own messages"),
        "{refusal}"
    );

    h.slash(
        ids::ADMIN,
        ids::RANDOM,
        &format!("ban <@{}|tom> spam", ids::TARGET),
    );
    // Whole: the channels Slack keeps tom in, or the bot is not in, are no failure.
    let banned = h
        .posted(ids::RANDOM, |t| t.starts_with("Banned @tom"))
        .await;
    let told = banned.params.to_string();
    assert!(!told.contains("Not done"), "{told}");
    // Out of every channel the bot is in with tom; Slack keeps everyone in #general, and the
    // bot cannot act where it is not (#quiet).
    let kicked = |h: &Harness| -> Vec<String> {
        let calls = h.fake.calls_of("conversations.kick");
        let done = calls.iter().filter(|c| c.error.is_none());
        done.map(|c| c.params["channel"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(kicked(&h), [ids::RANDOM, OTHER]);
    let tom = ids::TARGET.to_owned();
    assert!(!h.fake.members(OTHER).contains(&tom));
    assert!(h.fake.members(ids::GENERAL).contains(&tom));
    assert!(h.fake.members(ids::QUIET).contains(&tom));
    // The ban's notice reached tom by direct message, naming the workspace.
    let dm = h
        .fake
        .wait_for_call(
            "conversations.open",
            |c| c.params["users"] == ids::TARGET,
            WAIT,
        )
        .await;
    assert_eq!(dm.status, 200);
    let notices = h.fake.messages(&format!("D0{}", &ids::TARGET[1..]));
    let notice = notices.first().and_then(|m| m["text"].as_str());
    assert!(
        notice.is_some_and(|t| t.starts_with("You have been banned from Cogbox Test by ")),
        "{notices:?}"
    );

    let joined = Instant::now();
    h.fake.send_member_joined(ids::TARGET, ids::RANDOM);
    let again = h
        .fake
        .wait_for_call("conversations.kick", |c| c.at >= joined, WAIT)
        .await;
    assert_eq!((again.status, again.error), (200, None));
    assert_eq!(again.params["user"], ids::TARGET);
    assert!(
        !h.fake
            .members(ids::RANDOM)
            .contains(&ids::TARGET.to_owned())
    );

    h.slash(
        ids::ADMIN,
        ids::RANDOM,
        &format!("unban <@{}|tom>", ids::TARGET),
    );
    h.posted(ids::RANDOM, |t| {
        t.contains("unbanned") || t.contains("Unbanned")
    })
    .await;
    let kicks = h.fake.calls_of("conversations.kick").len();
    h.fake.send_member_joined(ids::TARGET, ids::RANDOM);
    h.settle().await;
    assert_eq!(
        h.fake.calls_of("conversations.kick").len(),
        kicks,
        "an unbanned member may rejoin"
    );
    assert!(
        h.fake
            .members(ids::RANDOM)
            .contains(&ids::TARGET.to_owned())
    );
}

/// Slack's refusals of a kick or ban reach the moderator in words they can act on, and tom stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slacks_refusals_of_a_kick_or_ban_are_told_in_words_a_moderator_can_act_on() {
    let kick = format!("kick <@{}|tom>", ids::TARGET);
    let mut config = FakeSlackConfig::default();
    config.scopes.retain(|s| s != "channels:manage");
    let h = Harness::start_with(config).await;
    h.slash(ids::ADMIN, ids::RANDOM, &kick);
    let told = h.ephemeral_response(|t| t.contains("scope")).await;
    assert!(
        told.contains("I need the channels:manage scope to kick @tom"),
        "{told}"
    );

    let h = Harness::start().await;
    for (code, expected) in [
        ("not_in_channel", "@tom is not in this channel"),
        (
            "restricted_action",
            "this workspace's settings don't let apps kick members",
        ),
        (
            "method_not_supported_for_channel_type",
            "I can't kick anyone from a direct message",
        ),
        ("user_not_found", "I can't find @tom here"),
    ] {
        h.fake
            .fail_next("conversations.kick", Failure::Error(code.into()));
        let answer = h.answer_to(ids::ADMIN, ids::RANDOM, &kick).await;
        let told = answer.params["text"].as_str().unwrap_or_default();
        assert!(told.contains(expected), "{code}: {told}");
        assert_eq!(answer.params["response_type"], "ephemeral", "{code}");
    }
    // A ban that every channel refuses is refused, not told as done.
    let refusal = Failure::Error("restricted_action".into());
    h.fake.fail_times("conversations.kick", refusal, 10);
    h.slash(
        ids::ADMIN,
        ids::RANDOM,
        &format!("ban <@{}|tom>", ids::TARGET),
    );
    let told = h.ephemeral_response(|t| t.contains("ban")).await;
    assert!(
        told.contains("this workspace's settings don't let apps ban members"),
        "{told}"
    );
    assert!(
        h.fake
            .members(ids::RANDOM)
            .contains(&ids::TARGET.to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_joining_the_general_channel_is_welcomed_there_only() {
    let h = Harness::start().await;
    h.slash(
        ids::ADMIN,
        ids::RANDOM,
        "settings set welcome_message Welcome, {user}! Read the rules.",
    );
    h.posted(ids::RANDOM, |t| t.contains("welcome_message is now"))
        .await;
    h.fake.send_member_joined(ids::TARGET, ids::RANDOM);
    h.fake.send_member_joined(ids::TARGET, ids::GENERAL);
    h.posted(ids::GENERAL, |t| t == "Welcome, @tom! Read the rules.")
        .await;
    h.fake.send_member_joined(ids::MEMBER, ids::RANDOM);
    h.fake.send_member_joined(ids::MEMBER, ids::GENERAL);
    h.posted(ids::GENERAL, |t| t == "Welcome, @mia! Read the rules.")
        .await;
    h.settle().await;
    let welcomes = h.fake.calls_of("chat.postMessage");
    let welcomes = welcomes
        .iter()
        .filter(|c| c.params["text"].as_str().unwrap().starts_with("Welcome"));
    assert_eq!(welcomes.count(), 2, "joining #random is no arrival");
    // Which channel is the general one is asked once per channel, then remembered.
    let asked = h.fake.calls_of("conversations.info");
    let mut channels: Vec<&str> = asked
        .iter()
        .map(|c| c.params["channel"].as_str().unwrap())
        .collect();
    channels.sort_unstable();
    assert_eq!(channels, [ids::GENERAL, ids::RANDOM], "in either order");
}

/// A ban that one channel refuses is carried out where it could be, and says where not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_that_one_channel_refuses_says_where_it_was_not_done() {
    let h = Harness::start().await;
    h.fake.add_channel("C0OTHER01", "other");
    let refusal = Failure::Error("restricted_action".into());
    h.fake.fail_next("conversations.kick", refusal);
    h.slash(
        ids::ADMIN,
        ids::RANDOM,
        &format!("ban <@{}|tom>", ids::TARGET),
    );
    let banned = h
        .posted(ids::RANDOM, |t| t.starts_with("Banned @tom"))
        .await;
    // The text and its blocks, where the "Not done" field is.
    let told = banned.params.to_string();
    assert!(
        told.contains("removed from 1 channel(s) but not from C0RANDOM1 (restricted_action)"),
        "{told}"
    );
    assert!(
        !h.fake
            .members("C0OTHER01")
            .contains(&ids::TARGET.to_owned())
    );
}

/// A reminder is posted where it was set; where the bot cannot post (a channel it was never
/// invited to), it reaches its author by direct message instead of being retried there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_is_posted_where_it_was_set_or_else_by_direct_message() {
    let h = Harness::start().await;
    h.slash(ids::MEMBER, ids::RANDOM, "remind 1s stretch");
    h.posted(ids::RANDOM, |t| t.ends_with(": stretch")).await;
    h.slash(ids::MEMBER, ids::QUIET, "remind 1s water");
    h.posted(ids::DM, |t| t.ends_with(": water")).await;
    let tried = h.fake.calls_of("chat.postMessage");
    let in_quiet = tried.iter().filter(|c| {
        c.params["channel"] == ids::QUIET && c.params["text"].as_str().unwrap().ends_with(": water")
    });
    assert_eq!(
        in_quiet.count(),
        1,
        "tried once where it was set, not again"
    );
}

/// A member Slack does not know is "not found"; Slack failing to answer is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_member_is_not_found_but_a_failing_lookup_is_an_error() {
    let h = Harness::start().await;
    h.slash(ids::ADMIN, ids::RANDOM, "kick <@U0NOBODY1|ghost>");
    let told = h.ephemeral_response(|_| true).await;
    assert!(told.contains("can't find"), "{told}");

    h.fake
        .fail_next("users.info", Failure::Error("fatal_error".into()));
    let kick = format!("kick <@{}|tom>", ids::TARGET);
    let answer = h.answer_to(ids::ADMIN, ids::RANDOM, &kick).await;
    let told = answer.params["text"].as_str().unwrap_or_default();
    assert!(
        told.contains("went wrong") && !told.contains("can't find"),
        "{told}"
    );
    assert!(
        h.fake
            .members(ids::RANDOM)
            .contains(&ids::TARGET.to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_channels_read_joins_are_not_welcomed_and_cost_one_call_each_channel() {
    let mut config = FakeSlackConfig::default();
    config.scopes.retain(|s| s != "channels:read");
    let h = Harness::start_with(config).await;
    h.slash(
        ids::ADMIN,
        ids::RANDOM,
        "settings set welcome_message Welcome, {user}!",
    );
    h.posted(ids::RANDOM, |t| t.contains("welcome_message is now"))
        .await;
    // One join first, then two more once it has been handled.
    h.fake.send_member_joined(ids::TARGET, ids::GENERAL);
    h.fake
        .wait_for_call("conversations.info", |_| true, WAIT)
        .await;
    for user in [ids::MEMBER, ids::ADMIN] {
        h.fake.send_member_joined(user, ids::GENERAL);
    }
    h.settle().await;
    let asked = h.fake.calls_of("conversations.info");
    assert_eq!(asked.len(), 1, "the refusal is remembered: {asked:?}");
    assert_eq!(asked[0].error.as_deref(), Some("missing_scope"));
    let posts = h.fake.calls_of("chat.postMessage");
    assert!(
        posts
            .iter()
            .all(|c| !c.params["text"].as_str().unwrap().starts_with("Welcome"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_waited_out_for_as_long_as_slack_asks() {
    let h = Harness::start().await;
    h.fake
        .fail_next("chat.postMessage", Failure::RateLimited(2));
    h.slash(ids::MEMBER, ids::RANDOM, "roll 1d1");
    let answered = h.posted(ids::RANDOM, |t| t == "1d1: [1] = 1").await;
    let limited = h
        .fake
        .calls_of("chat.postMessage")
        .into_iter()
        .find(|c| c.status == 429)
        .expect("the 429");
    let waited = answered.at.duration_since(limited.at);
    assert!(
        waited >= Duration::from_millis(1900),
        "retried after {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_in_one_channel_are_paced_to_about_one_a_second_and_never_meet_a_429() {
    let h = Harness::start().await;
    // Four members, two commands each: no one meets the per-member command limit.
    let members = [ids::OWNER, ids::ADMIN, ids::MEMBER, ids::TARGET];
    for n in 1..=8 {
        h.slash(members[n % 4], ids::RANDOM, &format!("roll {n}d1"));
    }
    h.posted(ids::RANDOM, |t| t.starts_with("8d1")).await;
    for n in 1..=7 {
        h.posted(ids::RANDOM, |t| t.starts_with(&format!("{n}d1")))
            .await;
    }
    let posts = h.fake.calls_of("chat.postMessage");
    assert!(posts.iter().all(|c| c.status == 200), "{posts:?}");
    let span = posts.last().unwrap().at.duration_since(posts[0].at);
    assert!(span >= Duration::from_secs(7), "8 messages in {span:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_reconnects_after_refresh_requested_and_after_a_dropped_connection() {
    let h = Harness::start().await;
    h.fake.disconnect("refresh_requested");
    h.fake.wait_for_connections(1, WAIT).await;
    h.fake.wait_for_connects(2, WAIT).await;
    h.fake.wait_for_connections(1, WAIT).await;
    h.slash(ids::MEMBER, ids::RANDOM, "roll 1d1");
    h.posted(ids::RANDOM, |t| t == "1d1: [1] = 1").await;

    h.fake.drop_connections();
    h.fake.wait_for_connects(3, WAIT).await;
    h.fake.wait_for_connections(1, WAIT).await;
    h.slash(ids::MEMBER, ids::RANDOM, "roll 2d1");
    h.posted(ids::RANDOM, |t| t == "2d1: [1, 1] = 2").await;
    assert_eq!(h.fake.connections(), 1, "one connection at a time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_token_is_one_line_and_exit_2_with_no_websocket() {
    for (key, value, named) in [
        (
            "COGBOX_SLACK__BOT_TOKEN",
            "xoxb-not-the-right-one",
            "slack.bot_token was rejected by Slack (invalid_auth)",
        ),
        (
            "COGBOX_SLACK__APP_TOKEN",
            "xapp-1-not-the-right-one",
            "slack.app_token was rejected by Slack (invalid_auth)",
        ),
    ] {
        let fake = FakeSlack::start(FakeSlackConfig::default()).await;
        let sandbox = Sandbox::new();
        let mut command = slack_command(&sandbox, &fake, None);
        command.env(key, value);
        let mut bot = sandbox.spawn(command);
        let code = tokio::task::block_in_place(|| bot.wait());
        assert_eq!(code, 2, "{}", bot.stderr());
        assert!(bot.stderr().contains(named), "{}", bot.stderr());
        assert!(
            !bot.stderr().contains(value),
            "a token is never printed: {}",
            bot.stderr()
        );
        assert_eq!(fake.connects(), 0, "no WebSocket opened");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_closes_the_connection_and_exits_cleanly() {
    let mut h = Harness::start().await;
    h.slash(ids::MEMBER, ids::RANDOM, "roll 1d1");
    h.posted(ids::RANDOM, |t| t == "1d1: [1] = 1").await;
    h.bot.signal("-TERM");
    let code = tokio::task::block_in_place(|| h.bot.wait());
    assert_eq!(code, 0, "{}", h.bot.stderr());
    assert!(
        h.bot.stderr().contains("stopped cleanly"),
        "{}",
        h.bot.stderr()
    );
    assert_eq!(h.fake.connections(), 0, "the connection was closed");
}

// ---------------------------------------------------------------------------------------------
// Events mode

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_events_mode_only_signed_fresh_well_formed_requests_reach_a_handler() {
    let fake = FakeSlack::start(FakeSlackConfig::default()).await;
    let sandbox = Sandbox::new();
    let port = free_port();
    let _bot = sandbox.spawn(slack_command(&sandbox, &fake, Some(port)));
    fake.wait_for_call("auth.test", |_| true, WAIT).await;
    let base = format!("http://127.0.0.1:{port}/slack");
    let slack = SignedSender::new(fake_slack::SIGNING_SECRET);
    let events = format!("{base}/events");
    fake_slack::wait_for_listener(port, WAIT).await;
    let challenge = json!({"type": "url_verification", "token": "x", "challenge": "c-4f2a"});
    let (status, body) = slack.post_json(&events, &challenge).await;
    assert_eq!(status, 200);
    assert!(body.contains("c-4f2a"), "{body}");

    let roll = slash_command(
        &fake.response_url(),
        ids::MEMBER,
        ids::RANDOM,
        "/cogbox",
        "roll 1d1",
    );
    let commands = format!("{base}/commands");
    let forger = SignedSender::new("not-the-signing-secret");
    assert_eq!(forger.post_form(&commands, &roll).await.0, 401, "forged");
    let body = b"command=%2Fcogbox&text=roll+1d1".to_vec();
    let stale_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 6 * 60;
    let stale = [
        (
            "content-type",
            "application/x-www-form-urlencoded".to_owned(),
        ),
        ("x-slack-request-timestamp", stale_at.to_string()),
        ("x-slack-signature", slack.sign(stale_at, &body)),
    ];
    assert_eq!(
        slack.post_raw(&commands, &stale, body.clone()).await.0,
        401,
        "stale"
    );
    let unsigned = [(
        "content-type",
        "application/x-www-form-urlencoded".to_owned(),
    )];
    assert_eq!(
        slack.post_raw(&commands, &unsigned, body).await.0,
        401,
        "unsigned"
    );
    let huge = json!({"type": "event_callback", "event": {"text": "x".repeat(300 * 1024)}});
    assert_eq!(slack.post_json(&events, &huge).await.0, 413, "oversized");
    let (status, _) = slack
        .post_json(&format!("{base}/interactive"), &json!({"not": "a form"}))
        .await;
    assert_eq!(status, 400, "malformed");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let not_json = b"{\"type\": \"event_callback\", ".to_vec();
    let signed = [
        ("content-type", "application/json".to_owned()),
        ("x-slack-request-timestamp", now.to_string()),
        ("x-slack-signature", slack.sign(now, &not_json)),
    ];
    assert_eq!(
        slack.post_raw(&events, &signed, not_json).await.0,
        400,
        "not JSON"
    );

    // A valid slash command, a mention and a button press do run, and are answered.
    assert_eq!(slack.post_form(&commands, &roll).await.0, 200);
    fake.wait_for_call(
        "chat.postMessage",
        |c| c.params["text"] == "1d1: [1] = 1",
        WAIT,
    )
    .await;
    let mention = fake.event_callback(fake_slack::app_mention(
        ids::MEMBER,
        ids::RANDOM,
        &format!("<@{}> roll 2d1", ids::BOT_USER),
    ));
    assert_eq!(slack.post_json(&events, &mention).await.0, 200);
    fake.wait_for_call(
        "chat.postMessage",
        |c| c.params["text"] == "2d1: [1, 1] = 2",
        WAIT,
    )
    .await;
    let flip = slash_command(
        &fake.response_url(),
        ids::MEMBER,
        ids::RANDOM,
        "/cogbox",
        "coinflip",
    );
    assert_eq!(slack.post_form(&commands, &flip).await.0, 200);
    let flip_again = |c: &Call| c.params["blocks"].to_string().contains("Flip again");
    let flipped = fake
        .wait_for_call("chat.postMessage", flip_again, WAIT)
        .await;
    let message = fake.messages(ids::RANDOM).pop().unwrap();
    let press = fake_slack::block_action(
        &fake.response_url(),
        ids::ADMIN,
        ids::RANDOM,
        &message,
        "cogbox-0",
        "/coinflip",
    );
    assert_eq!(
        slack
            .post_interactive(&format!("{base}/interactive"), &press)
            .await
            .0,
        200
    );
    fake.wait_for_call(
        "chat.postMessage",
        |c| c.at > flipped.at && flip_again(c),
        WAIT,
    )
    .await;
    // Of all those requests, only the three valid ones and the press were handled.
    assert_eq!(fake.calls_of("chat.postMessage").len(), 4);
}

/// In events mode too, a busy bot answers a command at once (its caller alone sees it) and
/// refuses an event with 503, which Slack delivers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_events_mode_a_busy_bot_answers_a_command_and_turns_an_event_away() {
    let fake = FakeSlack::start(FakeSlackConfig::default()).await;
    let sandbox = Sandbox::new();
    let port = free_port();
    let mut command = slack_command(&sandbox, &fake, Some(port));
    command.env("COGBOX_LIMITS__MAX_IN_FLIGHT", "1");
    let _bot = sandbox.spawn(command);
    fake_slack::wait_for_listener(port, WAIT).await;
    let base = format!("http://127.0.0.1:{port}/slack");
    let slack = SignedSender::new(fake_slack::SIGNING_SECRET);
    let roll = |dice: &str| {
        let text = format!("roll {dice}");
        slash_command(
            &fake.response_url(),
            ids::MEMBER,
            ids::RANDOM,
            "/cogbox",
            &text,
        )
    };
    // The one slot stays taken while the first answer waits out Slack's rate limit.
    fake.fail_next("chat.postMessage", Failure::RateLimited(3));
    let commands = format!("{base}/commands");
    assert_eq!(slack.post_form(&commands, &roll("1d1")).await.0, 200);
    fake.wait_for_call("chat.postMessage", |c| c.status == 429, WAIT)
        .await;

    let (status, body) = slack.post_form(&commands, &roll("2d1")).await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&body).expect("a JSON answer");
    assert_eq!(body["response_type"], "ephemeral");
    assert_eq!(body["text"], "I'm busy right now; try again in a moment.");
    let mention = json!({
        "type": "event_callback",
        "team_id": ids::TEAM,
        "event": {"type": "app_mention", "user": ids::MEMBER, "channel": ids::RANDOM,
                  "text": format!("<@{}> roll 3d1", ids::BOT_USER)},
    });
    let (status, _) = slack.post_json(&format!("{base}/events"), &mention).await;
    assert_eq!(status, 503);
}
