//! Discord under load: the fake enforces Discord's per-route limits (5 messages per 5 s per
//! channel) and answers 429 past them, as Discord does; a busy channel's backlog must not delay
//! a quiet channel, and the bot must never run into a 429.

use std::time::{Duration, Instant};

use crate::fake_discord::{FakeChannel, FakeDiscord, FakeDiscordConfig, MessageSpec, ids};
use crate::support::{Running, Sandbox};

const QUIET: u64 = 1_100_000_000_000_000_202;
const WAIT: Duration = Duration::from_secs(30);

/// `cogbox run` against `fake`, with as many work slots as the busy channel has commands:
/// were they all taken by it at once, the quiet channel would wait for its backlog.
fn launch(fake: &FakeDiscord, sandbox: &Sandbox) -> Running {
    sandbox.write(
        "config.toml",
        format!(
            "[discord]\nguild_ids = [{}]\n[limits]\ncommands = 1000\nwindow = \"1s\"\n\
             max_in_flight = 16\n",
            ids::GUILD
        ),
    );
    let mut command = sandbox.command(&["run"]);
    command
        .env("COGBOX_DISCORD__TOKEN", "fake-token")
        .env("COGBOX_DISCORD__API_URL", fake.api_url());
    sandbox.spawn(command)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_channel_does_not_delay_a_quiet_one_and_no_call_meets_a_429() {
    let mut world = FakeDiscordConfig::default();
    world.channels.push(FakeChannel::text(QUIET, "quiet"));
    let fake = FakeDiscord::start(world).await;
    let sandbox = Sandbox::new();
    let _bot = launch(&fake, &sandbox);
    fake.wait_identified(WAIT).await;

    let busy = format!("/channels/{}/messages", ids::GENERAL);
    let authors = [ids::ALICE, ids::BOB, ids::MODERATOR, ids::OWNER];
    for i in 0..16 {
        let spec = MessageSpec::in_channel(ids::GENERAL, authors[i % 4], "!ping");
        fake.send_message_create(spec);
    }
    // The busy channel's first replies use up its window: the rest wait for its reset.
    for _ in 0..5 {
        fake.wait_for_call(|c| c.is("POST", &busy) && c.status == 200, WAIT)
            .await;
    }
    let sent = Instant::now();
    fake.send_message_create(MessageSpec::in_channel(QUIET, ids::ALICE, "!ping"));
    let quiet = format!("/channels/{QUIET}/messages");
    let reply = fake.wait_for_call(|c| c.is("POST", &quiet), WAIT).await;
    let waited = reply.at - sent;
    let busy_done = fake.calls().iter().filter(|c| c.is("POST", &busy)).count();
    assert!(
        waited < Duration::from_secs(3) && busy_done < 16,
        "the quiet channel was answered after {waited:?}, with {busy_done} of the busy \
         channel's 16 replies out"
    );
    assert_eq!(reply.status, 200);

    // Every busy reply is delivered, paced by the channel's window, without a single 429.
    let all_out = async {
        while fake
            .calls()
            .iter()
            .filter(|c| c.is("POST", &busy) && c.status == 200)
            .count()
            < 16
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(WAIT, all_out)
        .await
        .expect("all 16 replies to the busy channel arrive");
    let limited: Vec<String> = fake
        .calls()
        .iter()
        .filter(|c| c.status == 429)
        .map(|c| format!("{} {}", c.method, c.path))
        .collect();
    assert!(limited.is_empty(), "the fake answered 429 to {limited:?}");
}
