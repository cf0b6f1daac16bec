//! `cargo bench --bench discord`: the release binary against the fake Discord on 127.0.0.1.
//!
//! Latency: a MESSAGE_CREATE `!ping` sent on the gateway → the bot's `POST
//! /channels/{c}/messages` arriving at the fake, one at a time, so each figure is one command's
//! whole trip (gateway decode, cache, dispatch, render, the REST relay and its limiter). The
//! fake, like Discord, takes 5 messages per 5 s in a channel, so the pings go round
//! [`CHANNELS`] channels: the figure is the trip, not the channel's pace.
//! Memory: the bot idle with one connected Discord shard and Telegram long-polling beside it
//! (both platforms connected, as in production), before and after the run.

#[path = "../support/fake_discord.rs"]
mod fake_discord;
#[path = "../support/fake_telegram.rs"]
mod fake_telegram;
mod memory;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fake_discord::{FakeChannel, FakeDiscord, FakeDiscordConfig, MessageSpec, ids};
use fake_telegram::{FakeTelegram, FakeTelegramConfig};

const EVENTS: usize = 2000;
const WARM_UP: usize = 50;
/// Channels the pings go round: with 500 (Discord's most per server), none sees more than 5.
const CHANNELS: u64 = 500;
const WAIT: Duration = Duration::from_secs(30);
/// Long enough for start-up allocations to settle.
const IDLE: Duration = Duration::from_secs(3);

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let mut world = FakeDiscordConfig::default();
    world.channels.extend(
        (1..CHANNELS).map(|n| FakeChannel::text(ids::GENERAL + 1_000 + n, &format!("room-{n}"))),
    );
    let fake = FakeDiscord::start(world).await;
    let telegram = FakeTelegram::start(FakeTelegramConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_cogbox");
    let mut bot = Bot(Command::new(binary)
        .arg("run")
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env("COGBOX_DISCORD__TOKEN", &fake.config().token)
        .env("COGBOX_DISCORD__API_URL", fake.api_url())
        .env("COGBOX_DISCORD__GUILD_IDS", format!("[{}]", ids::GUILD))
        .env(
            "COGBOX_TELEGRAM__TOKEN",
            FakeTelegramConfig::default().token,
        )
        .env("COGBOX_TELEGRAM__API_URL", telegram.api_url())
        // One member sends every command: the per-user rate limit must not interfere.
        .env("COGBOX_LIMITS__COMMANDS", "100000000")
        .env("COGBOX_LOG__LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    fake.wait_identified(WAIT).await;
    telegram.wait_for_call("getupdates", |_| true, WAIT).await;
    tokio::time::sleep(IDLE).await;
    let idle = memory::describe(bot.0.id());

    let mut latencies = Vec::with_capacity(EVENTS);
    for i in 0..WARM_UP + EVENTS {
        let channel = match i as u64 % CHANNELS {
            0 => ids::GENERAL,
            n => ids::GENERAL + 1_000 + n,
        };
        let route = format!("/channels/{channel}/messages");
        let sent = Instant::now();
        fake.send_message_create(MessageSpec::in_channel(channel, ids::ALICE, "!ping"));
        let call = fake
            .wait_for_call(|c| c.at >= sent && c.is("POST", &route), WAIT)
            .await;
        assert_eq!(call.body["content"], "Pong!");
        if i >= WARM_UP {
            latencies.push(call.at - sent);
        }
    }
    tokio::time::sleep(IDLE).await;
    let after = memory::describe(bot.0.id());
    bot.0.kill().unwrap();

    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let size = std::fs::metadata(binary).map_or(0.0, |m| m.len() as f64 / 1_048_576.0);
    println!(
        "discord end to end ({EVENTS} × !ping, MESSAGE_CREATE in → POST /channels/{{c}}/messages \
         out): p50 {:.2?}, p90 {:.2?}, p99 {:.2?}, max {:.2?}",
        at(0.50),
        at(0.90),
        at(0.99),
        latencies[latencies.len() - 1],
    );
    println!("cogbox run, Discord shard and Telegram polling connected, idle: {idle}");
    println!("cogbox run, idle again after the run: {after}");
    println!("binary {size:.1} MiB");
}

/// Kills the bot even when the bench panics.
struct Bot(Child);

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
