//! `cargo bench`: the core command path, and the real binary's start-up time and idle memory.
//!
//! Core path: parse → rate limit → cog switch (settings via moka, backed by SQLite) → bind →
//! capability → handler → reply, on one thread, with every 1000th command a settings write
//! that goes to SQLite and invalidates the cache.

mod memory;
mod startup;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cogbox::adapters::console::{self, ConsolePlatform};
use cogbox::core::parse::command_line;
use cogbox::core::{
    ArgInput, Author, ChannelId, CommunityId, Dispatcher, Platform, PlatformKind, RateQuota,
    Request, UserId,
};
use cogbox::services::{Services, Store};

const COMMANDS: usize = 300_000;
const MIX: &[&str] = &[
    "/roll 2d6",
    "/ping",
    "/help roll",
    "/choose tea | coffee | water",
    "/8ball will it be fast?",
    "!roll 1d20+5",
];

fn main() {
    core_path();
    binary();
}

fn core_path() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = Store::open(&dir.path().join("bench.db")).unwrap();
    let admin = console::user_id(console::DEFAULT_USER);
    let services = Arc::new(Services::new(
        store,
        vec![admin],
        Arc::new(cogbox::core::SystemClock),
        Arc::default(),
    ));
    // Generous enough that the limiter is exercised on every command but never refuses.
    let quota = RateQuota {
        commands: NonZeroU32::new(1_000_000).unwrap(),
        window: Duration::from_secs(1),
    };
    let dispatcher = Dispatcher::new(cogbox::cogs::all(), services, quota).unwrap();
    let platform: Arc<dyn Platform> = Arc::new(ConsolePlatform::new(console::DEFAULT_USER, true).0);

    let mut latencies = Vec::with_capacity(COMMANDS);
    let started = Instant::now();
    runtime.block_on(async {
        for i in 0..COMMANDS {
            let (user, line) = if i % 1000 == 999 {
                (admin, "/cog on fun")
            } else {
                (
                    UserId::new(PlatformKind::Console, (i % 5000) as i64),
                    MIX[i % MIX.len()],
                )
            };
            let t = Instant::now();
            let parsed = command_line(line, &["/", "!"]).unwrap();
            let request = Request {
                community: Some(CommunityId::new(PlatformKind::Console, (i % 50) as i64)),
                community_name: None,
                channel: ChannelId::new(PlatformKind::Console, 1),
                author: Author {
                    id: user,
                    name: "bench".into(),
                },
                replied_to: None,
                id: None,
                name: parsed.name,
                args: ArgInput::Text(parsed.args.to_owned()),
            };
            let reply = dispatcher.dispatch(&platform, request).await.unwrap();
            latencies.push(t.elapsed());
            assert!(
                reply.tone != cogbox::core::Tone::Error,
                "{line}: {}",
                reply.text
            );
        }
    });
    let total = started.elapsed();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "core path: {COMMANDS} commands in {total:.2?} on one thread = {:.0} commands/s; \
         latency p50 {:.1?}, p99 {:.1?}, p99.9 {:.1?}, max {:.1?}",
        COMMANDS as f64 / total.as_secs_f64(),
        at(0.50),
        at(0.99),
        at(0.999),
        latencies[latencies.len() - 1],
    );
}

/// Start-up to first answer, idle memory, and size of the binary this bench was built with.
fn binary() {
    let dir = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_cogbox");
    let start = startup::ping(dir.path(), Duration::from_secs(3));
    let (first_answer, rss, idle) = (start.first_answer, start.rss, start.idle);
    let size = std::fs::metadata(binary)
        .map(|m| m.len() as f64 / 1_048_576.0)
        .unwrap_or(0.0);
    println!(
        "cogbox console: first answer {first_answer:.1?} after spawn; idle RSS {rss:.1} MiB ({idle}); binary {size:.1} MiB"
    );
}
