//! `cargo bench --bench telegram_webhook`: the release binary in webhook mode against the fake
//! Bot API, taking 10,000 valid updates over loopback from 32 concurrent senders, as Telegram
//! delivers them. Reports sustained updates/s, latency percentiles and memory under load.

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

const UPDATES: usize = 10_000;
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
        .env(
            "COGBOX_TELEGRAM__WEBHOOK__PUBLIC_URL",
            format!("https://127.0.0.1:{port}"),
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
    let url = hook.params["url"]
        .as_str()
        .unwrap()
        .replacen("https://", "http://", 1);
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
    let sampler = tokio::spawn(peak_memory(bot.id()));
    let mut latencies = send(&client, &url, &bodies, WARM_UP..WARM_UP + UPDATES).await;
    let elapsed = started.elapsed();
    sampler.abort();
    let after = memory::describe(bot.id());
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "telegram webhook: {UPDATES} updates from {SENDERS} senders in {elapsed:.2?} = {:.0} updates/s; \
         latency p50 {:.2?}, p99 {:.2?}, max {:.2?}; memory after load: {after}",
        UPDATES as f64 / elapsed.as_secs_f64(),
        at(0.5),
        at(0.99),
        latencies[latencies.len() - 1],
    );
    let _ = bot.kill();
    let _ = bot.wait();
}

/// Posts `bodies[range]` from [`SENDERS`] concurrent senders; every answer must be 200.
async fn send(
    client: &reqwest::Client,
    url: &str,
    bodies: &Arc<Vec<Vec<u8>>>,
    range: std::ops::Range<usize>,
) -> Vec<Duration> {
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
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= end {
                        return latencies;
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
                    assert_eq!(response.status(), 200);
                    latencies.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for sender in senders {
        all.extend(sender.await.unwrap());
    }
    all
}

/// Prints the peak RSS seen while the load runs.
async fn peak_memory(pid: u32) {
    let mut peak = 0.0f64;
    loop {
        let rss = memory::rss(pid).unwrap_or(0.0);
        if rss > peak {
            peak = rss;
            println!("  peak RSS under load so far: {peak:.1} MiB");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
