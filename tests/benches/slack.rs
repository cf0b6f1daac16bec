//! `cargo bench --bench slack`: the release binary against the fake Slack on 127.0.0.1.
//!
//! Memory: the bot idle with all three platforms connected at once (a Discord shard, Telegram
//! long polling and a Slack Socket Mode connection), before and after the commands.
//! Latency: `/cogbox ping` sent as a Socket Mode envelope → the bot's `chat.postMessage`
//! arriving at the fake, one at a time. Slack takes about one message a second in a channel, so
//! the commands go round [`CHANNELS`] channels: the figure is the trip, not the channel's pace.
//! Throughput: signed `member_joined_channel` events posted to the events-mode listener by
//! [`SENDERS`] senders at once; each is verified (HMAC), parsed and checked against the bans.
//! `BENCH_BIN=path` measures another binary (the static musl one) the same way.

#[path = "../support/fake_discord.rs"]
mod fake_discord;
#[path = "../support/fake_slack.rs"]
mod fake_slack;
#[path = "../support/fake_telegram.rs"]
mod fake_telegram;
mod memory;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_discord::{FakeDiscord, FakeDiscordConfig};
use fake_slack::{FakeSlack, FakeSlackConfig, SignedSender, ids};
use fake_telegram::{FakeTelegram, FakeTelegramConfig};
use serde_json::json;

const COMMANDS: usize = 200;
const WARM_UP: usize = 20;
/// One channel per command: none is paced, so the figure is the trip alone.
const CHANNELS: usize = COMMANDS + WARM_UP;
const EVENTS: usize = 20_000;
const SENDERS: usize = 32;
const WAIT: Duration = Duration::from_secs(30);
/// Long enough for start-up allocations to settle.
const IDLE: Duration = Duration::from_secs(3);

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        socket_mode_with_all_platforms().await;
        events_mode().await;
    });
}

/// The binary under test: this build's, or another one named by `BENCH_BIN` (the static
/// musl release binary users download, built by `packaging/build-release.sh`).
fn cogbox(dir: &std::path::Path) -> Command {
    let binary =
        std::env::var_os("BENCH_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_cogbox").into());
    let mut command = Command::new(binary);
    command
        .arg("run")
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env("COGBOX_SLACK__BOT_TOKEN", fake_slack::BOT_TOKEN)
        // One member sends every command: the per-user rate limit must not interfere.
        .env("COGBOX_LIMITS__COMMANDS", "100000000")
        .env("COGBOX_LOG__LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

async fn socket_mode_with_all_platforms() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let channels: Vec<String> = (0..CHANNELS).map(|n| format!("C0BENCH{n:03}")).collect();
    for (n, channel) in channels.iter().enumerate() {
        slack.add_channel(channel, &format!("bench-{n}"));
    }
    let discord = FakeDiscord::start(FakeDiscordConfig::default()).await;
    let telegram = FakeTelegram::start(FakeTelegramConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut command = cogbox(dir.path());
    command
        .env("COGBOX_SLACK__APP_TOKEN", fake_slack::APP_TOKEN)
        .env("COGBOX_SLACK__API_URL", slack.api_url())
        .env("COGBOX_DISCORD__TOKEN", &discord.config().token)
        .env("COGBOX_DISCORD__API_URL", discord.api_url())
        .env(
            "COGBOX_DISCORD__GUILD_IDS",
            format!("[{}]", fake_discord::ids::GUILD),
        )
        .env(
            "COGBOX_TELEGRAM__TOKEN",
            FakeTelegramConfig::default().token,
        )
        .env("COGBOX_TELEGRAM__API_URL", telegram.api_url());
    let bot = Bot(command.spawn().unwrap());
    discord.wait_identified(WAIT).await;
    telegram.wait_for_call("getupdates", |_| true, WAIT).await;
    slack.wait_for_connections(1, WAIT).await;
    tokio::time::sleep(IDLE).await;
    let idle = memory::describe(bot.0.id());

    let mut latencies = Vec::with_capacity(COMMANDS);
    for i in 0..WARM_UP + COMMANDS {
        let channel = &channels[i % CHANNELS];
        let sent = Instant::now();
        slack.send_slash_command(ids::MEMBER, channel, "/cogbox", "ping");
        let call = slack
            .wait_for_call(
                "chat.postMessage",
                |c| c.at >= sent && c.params["channel"] == channel.as_str(),
                WAIT,
            )
            .await;
        assert_eq!(call.status, 200, "{:?}", call.error);
        if i >= WARM_UP {
            latencies.push(call.at - sent);
        }
    }
    tokio::time::sleep(IDLE).await;
    let after = memory::describe(bot.0.id());
    drop(bot);

    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "slack socket mode ({COMMANDS} × /cogbox ping, envelope in → chat.postMessage out): \
         p50 {:.2?}, p90 {:.2?}, p99 {:.2?}, max {:.2?}",
        at(0.50),
        at(0.90),
        at(0.99),
        latencies[latencies.len() - 1],
    );
    println!("cogbox run, Discord, Telegram and Slack connected, idle: {idle}");
    println!("cogbox run, idle again after the commands: {after}");
}

async fn events_mode() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = cogbox(dir.path());
    command
        .env("COGBOX_SLACK__API_URL", slack.api_url())
        .env("COGBOX_SLACK__MODE", "events")
        .env("COGBOX_SLACK__SIGNING_SECRET", fake_slack::SIGNING_SECRET)
        .env("COGBOX_SLACK__EVENTS__LISTEN", format!("127.0.0.1:{port}"));
    let bot = Bot(command.spawn().unwrap());
    fake_slack::wait_for_listener(port, WAIT).await;
    let url = Arc::new(format!("http://127.0.0.1:{port}/slack/events"));
    let event = Arc::new(slack.event_callback(json!({
        "type": "member_joined_channel", "user": ids::MEMBER, "channel": ids::RANDOM,
        "channel_type": "C", "team": ids::TEAM, "event_ts": "1700000000.000100",
    })));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..SENDERS {
        let (url, event) = (Arc::clone(&url), Arc::clone(&event));
        tasks.push(tokio::spawn(async move {
            let sender = SignedSender::new(fake_slack::SIGNING_SECRET);
            let mut out = (Vec::new(), 0usize);
            for _ in 0..EVENTS / SENDERS {
                let sent = Instant::now();
                let (status, _) = sender.post_json(&url, &event).await;
                match status.as_u16() {
                    200 => out.0.push(sent.elapsed()),
                    503 => out.1 += 1,
                    other => panic!("status {other}"),
                }
            }
            out
        }));
    }
    let (mut latencies, mut busy) = (Vec::new(), 0);
    for task in tasks {
        let (taken, refused) = task.await.unwrap();
        latencies.extend(taken);
        busy += refused;
    }
    let elapsed = started.elapsed();
    let rss = memory::describe(bot.0.id());
    drop(bot);
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "slack events mode ({} signed events from {SENDERS} senders): {:.0} accepted/s, \
         p50 {:.2?}, p99 {:.2?}, {busy} answered 503; after: {rss}",
        latencies.len() + busy,
        latencies.len() as f64 / elapsed.as_secs_f64(),
        at(0.50),
        at(0.99),
    );
}

/// Kills the bot even when the bench panics.
struct Bot(Child);

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
