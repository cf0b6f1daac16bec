//! `cargo bench --bench scheduler`: how fast due jobs fire, and what 100,000 pending reminders
//! cost: the real binary's idle RSS and time to first answer with and without them, and how
//! soon a job due now fires while they wait.

mod memory;
mod startup;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use cogbox::core::{Platforms, SystemClock};
use cogbox::services::scheduler::{self, JobError};
use cogbox::services::{Services, Store};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const DUE_JOBS: usize = 50_000;
const PENDING: usize = 100_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // On the disk, with every commit synced; and in memory (/dev/shm), where the sync is free,
    // to tell the scheduler's own cost from the disk's.
    let disk = tempfile::tempdir().unwrap();
    runtime.block_on(throughput(disk.path()));
    if let Ok(shm) = tempfile::tempdir_in("/dev/shm") {
        runtime.block_on(throughput(shm.path()));
    }
    runtime.block_on(due_among_pending());
    binary_with_pending(&runtime);
}

fn services(path: &Path) -> Arc<Services> {
    Arc::new(Services::new(
        Store::open(path).unwrap(),
        Vec::new(),
        Arc::new(SystemClock),
        Arc::new(Platforms::default()),
    ))
}

/// Stores `n` jobs of `kind` due at `due` in one transaction.
async fn fill(services: &Services, n: usize, kind: &'static str, due: chrono::DateTime<Utc>) {
    services
        .store
        .call(move |conn| {
            let tx = conn.transaction()?;
            for i in 0..n {
                let payload = serde_json::json!({ "text": format!("reminder {i}"), "channel": i });
                scheduler::insert(&tx, kind, due, &payload, Some("console:1"))?;
            }
            tx.commit()
        })
        .await
        .unwrap();
}

/// 100,000 reminders due tomorrow.
async fn fill_pending(services: &Services) {
    let tomorrow = Utc::now() + chrono::Duration::days(1);
    fill(services, PENDING, "remind", tomorrow).await;
}

/// Registers `kind` with a handler that counts runs and signals when `until` have run.
fn counting(
    services: &Services,
    kind: &'static str,
    until: usize,
) -> (Arc<AtomicUsize>, Arc<Notify>) {
    let (count, done) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
    let (c, d) = (count.clone(), done.clone());
    services.scheduler.register(kind, move |_, _| {
        let (c, d) = (c.clone(), d.clone());
        async move {
            if c.fetch_add(1, Ordering::SeqCst) + 1 == until {
                d.notify_one();
            }
            Ok::<(), JobError>(())
        }
    });
    (count, done)
}

/// Due jobs fired per second, each one's row deleted in the runner's batched commits (with the
/// store's `synchronous=FULL`).
async fn throughput(dir: &Path) {
    let services = services(&dir.join("bench.db"));
    fill(&services, DUE_JOBS, "tick", Utc::now()).await;
    let (_, done) = counting(&services, "tick", DUE_JOBS);
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let runner = tokio::spawn(scheduler::run(services.clone(), cancel.clone()));
    done.notified().await;
    // Fired is not finished until the last outcome is committed, which stopping the runner does.
    cancel.cancel();
    runner.await.unwrap();
    let took = started.elapsed();
    assert_eq!(services.scheduler.counts().await.unwrap(), (0, 0));
    println!(
        "scheduler: {DUE_JOBS} due jobs fired and removed in {took:.2?} = {:.0} jobs/s ({})",
        DUE_JOBS as f64 / took.as_secs_f64(),
        dir.display()
    );
}

/// With 100,000 reminders pending for tomorrow: how soon a job scheduled for now fires.
async fn due_among_pending() {
    let dir = tempfile::tempdir().unwrap();
    let services = services(&dir.path().join("bench.db"));
    fill_pending(&services).await;
    let (_, fired) = counting(&services, "now", 1);
    let cancel = CancellationToken::new();
    let runner = tokio::spawn(scheduler::run(services.clone(), cancel.clone()));
    // Let it settle into its sleep until tomorrow.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    services
        .scheduler
        .schedule("now", Utc::now(), serde_json::json!(null))
        .await
        .unwrap();
    fired.notified().await;
    let latency = started.elapsed();
    cancel.cancel();
    runner.await.unwrap();
    println!(
        "scheduler: with {PENDING} pending, a job scheduled for now fired after {latency:.2?}"
    );
}

/// The real binary's time to first answer and idle memory, on an empty database and on one
/// holding 100,000 pending reminders.
fn binary_with_pending(runtime: &tokio::runtime::Runtime) {
    let empty = run_console(|_| {});
    let full = run_console(|db| {
        runtime.block_on(async {
            let services = services(db);
            fill_pending(&services).await;
            services.store.checkpoint().await.unwrap();
        });
    });
    println!(
        "cogbox console, empty database: first answer {:.1?}, idle RSS {:.1} MiB ({})",
        empty.0, empty.1, empty.2
    );
    println!(
        "cogbox console, {PENDING} pending reminders: first answer {:.1?}, idle RSS {:.1} MiB \
         ({:+.1} MiB, {:+.1?}; {})",
        full.0,
        full.1,
        full.1 - empty.1,
        full.0.saturating_sub(empty.0),
        full.2
    );
}

/// Prepares the data folder with `prepare(database path)`, then starts `cogbox console`:
/// returns the time to the first answer and the idle RSS in MiB (best of three starts), and
/// the last start's memory described.
fn run_console(prepare: impl Fn(&Path)) -> (Duration, f64, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    prepare(&data.join("cogbox.db"));
    let mut best: Option<(Duration, f64)> = None;
    let mut shown = String::new();
    for _ in 0..3 {
        let start = startup::ping(dir.path(), Duration::from_secs(2));
        let (first, rss) = (start.first_answer, start.rss);
        shown = start.idle;
        best = Some(match best {
            Some((t, r)) => (t.min(first), r.min(rss)),
            None => (first, rss),
        });
    }
    let (first, rss) = best.unwrap();
    (first, rss, shown)
}
