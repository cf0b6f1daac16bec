//! `cargo bench --bench bank`: durable transfers per second. The store commits with
//! `synchronous=FULL` (each commit waits for the disk), so the figure is set by how many
//! transfers share one fsync: one at a time (each its own transaction), then many callers at
//! once (group commit). Run it pinned to one core (`taskset -c 0 cargo bench --bench bank`)
//! for the one-core figure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cogbox::core::{CommunityId, Member, PlatformKind, SystemClock, UserId};
use cogbox::services::Store;
use cogbox::services::bank::{Amount, Bank, Change};

const USERS: i64 = 1_000;
const ONE_AT_A_TIME: usize = 300;
const CONCURRENT: usize = 20_000;
const CALLERS: usize = 64;
const COMMUNITY: CommunityId = CommunityId::new(PlatformKind::Discord, 1);

fn member(n: i64) -> Member {
    Member {
        id: UserId::new(PlatformKind::Discord, n),
        name: format!("@user{n}"),
        is_bot: false,
    }
}

fn transfer(i: usize) -> Change {
    let from = fastrand::i64(0..USERS);
    Change::Pay {
        from: member(from),
        to: member((from + fastrand::i64(1..USERS)) % USERS),
        amount: Amount::new(1 + (i % 5) as i64).unwrap(),
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("cogbox.db")).unwrap();
    let bank = Bank::new(store, Arc::new(SystemClock));
    runtime.block_on(async {
        let grants = (0..USERS).map(|user| {
            let change = Change::Grant {
                actor: member(0).id,
                to: member(user),
                amount: Amount::new(1_000_000).unwrap(),
            };
            bank.apply(COMMUNITY, format!("g{user}"), change)
        });
        for granted in futures_util::future::join_all(grants).await {
            granted.unwrap();
        }

        let started = Instant::now();
        for i in 0..ONE_AT_A_TIME {
            bank.apply(COMMUNITY, format!("s{i}"), transfer(i))
                .await
                .unwrap();
        }
        let elapsed = started.elapsed();
        println!(
            "one at a time: {ONE_AT_A_TIME} transfers in {elapsed:.2?}: {:.0} durable transfers/s ({:.2?} each)",
            ONE_AT_A_TIME as f64 / elapsed.as_secs_f64(),
            elapsed / ONE_AT_A_TIME as u32
        );

        let started = Instant::now();
        let callers = (0..CALLERS).map(|caller| {
            let bank = bank.clone();
            async move {
                let mut latencies = Vec::new();
                for i in (caller..CONCURRENT).step_by(CALLERS) {
                    let t = Instant::now();
                    bank.apply(COMMUNITY, format!("c{i}"), transfer(i))
                        .await
                        .unwrap();
                    latencies.push(t.elapsed());
                }
                latencies
            }
        });
        let mut latencies: Vec<Duration> = futures_util::future::join_all(callers)
            .await
            .into_iter()
            .flatten()
            .collect();
        let elapsed = started.elapsed();
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
        println!(
            "{CALLERS} callers at once: {CONCURRENT} transfers in {elapsed:.2?}: {:.0} durable transfers/s, latency p50 {:.2?}, p99 {:.2?}",
            CONCURRENT as f64 / elapsed.as_secs_f64(),
            at(0.5),
            at(0.99)
        );
    });
}
