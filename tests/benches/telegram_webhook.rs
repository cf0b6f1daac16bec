//! `cargo bench --bench telegram_webhook`: the release binary in webhook mode against the fake
//! Bot API, taking 10,000 valid updates over loopback from 32 concurrent senders, as Telegram
//! delivers them. Reports sustained updates/s, latency percentiles and memory under load; then
//! a burst of 5,000 `/ping` in busy groups (most answered 503: no room), the peak RSS over the
//! whole run, and how long a SIGTERM takes to stop the bot with that backlog waiting.

#[path = "../support/fake_telegram.rs"]
mod fake_telegram;
mod memory;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fake_telegram::{
    FakeTelegram, FakeTelegramConfig, message_update, supergroup, text_message, user,
};
use std::sync::atomic::AtomicU64;

const UPDATES: usize = 10_000;
const BURST: usize = 5_000;
const WARM_UP: usize = 500;
const SENDERS: usize = 32;
const SECRET: &str = "bench-secret-token";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let fake = FakeTelegram::start(FakeTelegramConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut bot = Command::new(env!("CARGO_BIN_EXE_cogbox"))
        .arg("run")
        .current_dir(dir.path())
        .env(
            "COGBOX_TELEGRAM__TOKEN",
            FakeTelegramConfig::default().token,
        )
        .env("COGBOX_TELEGRAM__API_URL", fake.api_url())
        .env("COGBOX_TELEGRAM__MODE", "webhook")
        .env(
            "COGBOX_TELEGRAM__WEBHOOK__LISTEN",
            format!("127.0.0.1:{port}"),
        )
        // Telegram wants https on 443 (or 80, 88, 8443); TLS ends at a proxy before cogbox.
        .env(
            "COGBOX_TELEGRAM__WEBHOOK__PUBLIC_URL",
            "https://bot.example.com",
        )
        .env("COGBOX_TELEGRAM__WEBHOOK__SECRET_TOKEN", SECRET)
        .env("COGBOX_LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let hook = fake
        .wait_for_call("setwebhook", |_| true, Duration::from_secs(20))
        .await;
    let url = hook.params["url"].as_str().unwrap().replacen(
        "https://bot.example.com",
        &format!("http://127.0.0.1:{port}"),
        1,
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "telegram connected (webhook), idle: {}",
        memory::describe(bot.id())
    );

    // Group chatter from many members: every update is parsed, observed and handled.
    let group = supergroup(-1_009_999, "Load");
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..UPDATES + WARM_UP)
            .map(|i| {
                let from = user(
                    10_000 + (i % 500) as i64,
                    "Member",
                    Some(&format!("member{}", i % 500)),
                );
                serde_json::to_vec(&message_update(&text_message(
                    &group,
                    &from,
                    "hello everyone",
                )))
                .unwrap()
            })
            .collect(),
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(SENDERS)
        .build()
        .unwrap();
    send(&client, &url, &bodies, 0..WARM_UP).await;

    let started = Instant::now();
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = tokio::spawn(peak_memory(bot.id(), Arc::clone(&peak)));
    let (mut latencies, refused) = send(&client, &url, &bodies, WARM_UP..WARM_UP + UPDATES).await;
    let elapsed = started.elapsed();
    let after = memory::describe(bot.id());
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "telegram webhook: {UPDATES} updates from {SENDERS} senders in {elapsed:.2?} = {:.0} updates/s \
         ({refused} answered 503); latency p50 {:.2?}, p99 {:.2?}, max {:.2?}; memory after load: {after}",
        UPDATES as f64 / elapsed.as_secs_f64(),
        at(0.5),
        at(0.99),
        latencies[latencies.len() - 1],
    );

    // A burst of commands in ten busy groups: replies leave at 1/s per group, so most of the
    // burst is refused (503) and a backlog is waiting when the bot is told to stop.
    let pings: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..BURST)
            .map(|i| {
                let from = user(100_000 + i as i64, "Member", None);
                let chat = supergroup(-1_000_000_000_000 - (i % 10) as i64, "Busy");
                let update = message_update(&text_message(&chat, &from, "/ping"));
                fake.learn(&update);
                serde_json::to_vec(&update).unwrap()
            })
            .collect(),
    );
    let (taken, refused) = send(&client, &url, &pings, 0..BURST).await;
    let asked = Instant::now();
    let _ = Command::new("kill")
        .args(["-TERM", &bot.id().to_string()])
        .status();
    let status = bot.wait().unwrap();
    let stop = asked.elapsed();
    sampler.abort();
    println!(
        "burst: {BURST} /ping in 10 groups, {} taken, {refused} answered 503; SIGTERM with the \
         backlog waiting: exit {:?} after {stop:.2?}; peak RSS over the whole run {:.1} MiB; \
         429s from the fake: {}",
        taken.len(),
        status.code(),
        peak.load(Ordering::Relaxed) as f64 / 1024.0,
        fake.throttled(),
    );
}

/// Posts `bodies[range]` from [`SENDERS`] concurrent senders; every answer must be 200 or
/// 503 (no room). Returns the latencies of the 200s and the number of 503s.
async fn send(
    client: &reqwest::Client,
    url: &str,
    bodies: &Arc<Vec<Vec<u8>>>,
    range: std::ops::Range<usize>,
) -> (Vec<Duration>, usize) {
    let next = Arc::new(AtomicUsize::new(range.start));
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (client, url, bodies, next, end) = (
                client.clone(),
                url.to_owned(),
                Arc::clone(bodies),
                Arc::clone(&next),
                range.end,
            );
            tokio::spawn(async move {
                let (mut latencies, mut refused) = (Vec::new(), 0);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= end {
                        return (latencies, refused);
                    }
                    let t = Instant::now();
                    let response = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
                        .body(bodies[i].clone())
                        .send()
                        .await
                        .unwrap();
                    match response.status().as_u16() {
                        200 => latencies.push(t.elapsed()),
                        503 => refused += 1,
                        other => panic!("webhook answered {other}"),
                    }
                }
            })
        })
        .collect();
    let (mut all, mut refused) = (Vec::new(), 0);
    for sender in senders {
        let (latencies, no_room) = sender.await.unwrap();
        all.extend(latencies);
        refused += no_room;
    }
    (all, refused)
}

/// Keeps the peak RSS seen (KiB) while the load runs, sampled every 20 ms.
async fn peak_memory(pid: u32, peak: Arc<AtomicU64>) {
    loop {
        let kib = (memory::rss(pid).unwrap_or(0.0) * 1024.0) as u64;
        peak.fetch_max(kib, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
