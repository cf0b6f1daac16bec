//! Durable jobs: a reminder that falls due tomorrow, a mute that ends in an hour, the nightly
//! audit purge. Every job is a row in SQLite, so it survives restarts and crashes, and jobs that
//! fell due while cogbox was stopped run as soon as it starts.
//!
//! One task ([`run`]) drives them all: it sleeps until the earliest due job with
//! [`Clock::sleep_until`] and is woken early only when a job is scheduled before that. Nothing
//! is kept in memory per pending job (100,000 pending reminders cost the same RAM as none);
//! only the jobs running at the moment are, at most [`MAX_RUNNING`] of them.
//!
//! A job runs at least once: one that was running when cogbox died runs again at start-up, so
//! handlers must be safe to repeat (deliver-then-delete, or check state first).
//!
//! Job kinds are registered at start-up (in `app.rs`) with an async handler; a cog never calls
//! another cog's handler, it only schedules jobs of its own kinds.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Services;
use super::store::{Store, StoreError};
use crate::core::{Clock, Platform, PlatformError, PlatformKind};

/// Jobs running at once. Each is a task holding its payload (a reminder's text, a few hundred
/// bytes) and its send in flight, a few KiB at most: the worst case is about 2 MB. It is also
/// how many due jobs one commit claims and how many finished ones the next records, so it sets
/// the throughput when the disk's sync is the cost (a burst of reminders due at 9:00).
pub const MAX_RUNNING: usize = 512;
/// Failed attempts after which a job is kept as failed instead of retried.
pub const MAX_ATTEMPTS: u32 = 6;
/// The wait after the first failure; each further failure waits four times longer (30 s, 2 min,
/// 8 min, 32 min, 2 h 8 min), so a platform outage of two hours loses nothing.
const FIRST_RETRY: Duration = Duration::from_secs(30);
/// The wait when a job's platform is not connected yet (Discord takes seconds to start).
const NOT_READY_RETRY: Duration = Duration::from_secs(10);
/// The pause before retrying after the database itself failed.
const STORE_RETRY: Duration = Duration::from_secs(1);
/// How long the runner waits for more running jobs to finish before recording what finished:
/// each record is a commit, and each commit a disk sync.
const GATHER: Duration = Duration::from_millis(2);
/// [`Scheduler::next_due`] while the runner is between reading the earliest job and sleeping.
const BUSY: i64 = i64::MIN;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub i64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a job did not finish, which decides what happens to it next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// Try again with backoff; after [`MAX_ATTEMPTS`] the job is kept as failed with this text.
    Failed(String),
    /// Something the job needs is not there yet (its platform is still connecting): try again
    /// shortly, without counting an attempt.
    NotReady(String),
    /// The job can never succeed (a payload this version cannot read): kept as failed at once.
    Invalid(String),
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed(e) | Self::NotReady(e) | Self::Invalid(e) => f.write_str(e),
        }
    }
}

impl From<String> for JobError {
    fn from(e: String) -> Self {
        Self::Failed(e)
    }
}

impl From<&str> for JobError {
    fn from(e: &str) -> Self {
        Self::Failed(e.to_owned())
    }
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        Self::Failed(e.to_string())
    }
}

impl From<PlatformError> for JobError {
    fn from(e: PlatformError) -> Self {
        Self::Failed(e.to_string())
    }
}

/// What a handler gets besides its payload.
pub struct JobContext {
    pub services: Arc<Services>,
    pub id: JobId,
    /// 1 on the first run, 2 on the first retry, …
    pub attempt: u32,
    /// When the job was due (it may run later: cogbox was stopped, or a retry).
    pub due: DateTime<Utc>,
}

impl JobContext {
    /// The running platform of `kind`; [`JobError::NotReady`] while it is still connecting, so
    /// the job waits for it rather than failing.
    pub fn platform(&self, kind: PlatformKind) -> Result<Arc<dyn Platform>, JobError> {
        self.services
            .platforms
            .get(kind)
            .ok_or_else(|| JobError::NotReady(format!("{kind} is not connected")))
    }
}

type Handler =
    Arc<dyn Fn(JobContext, Value) -> BoxFuture<'static, Result<(), JobError>> + Send + Sync>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Running,
    Failed,
}

impl JobState {
    fn parse(text: &str) -> Self {
        match text {
            "running" => Self::Running,
            "failed" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// A stored job, as [`Scheduler::list`] and [`Scheduler::get`] return it.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    pub due: DateTime<Utc>,
    pub payload: Value,
    pub owner: Option<String>,
    pub state: JobState,
    pub attempts: u32,
    pub last_error: Option<String>,
}

pub struct Scheduler {
    store: Store,
    clock: Arc<dyn Clock>,
    handlers: RwLock<HashMap<&'static str, Handler>>,
    /// Hooks the periodic `expiries` job runs (warnings that expire, …), by name.
    expiries: RwLock<Vec<(&'static str, Handler)>>,
    wake: Notify,
    /// When the runner will next wake by itself, in ms ([`BUSY`] while it is deciding), so that
    /// scheduling a later job does not wake it for nothing.
    next_due: AtomicI64,
}

impl Scheduler {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            handlers: RwLock::default(),
            expiries: RwLock::default(),
            wake: Notify::new(),
            next_due: AtomicI64::new(BUSY),
        }
    }

    /// Declares how jobs of `kind` run. Done once per kind at start-up, before [`run`]; a
    /// handler's error decides between retry and failure (see [`JobError`]).
    pub fn register<F, Fut>(&self, kind: &'static str, handler: F)
    where
        F: Fn(JobContext, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        self.handlers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                kind,
                Arc::new(move |ctx, payload| handler(ctx, payload).boxed()),
            );
    }

    /// Adds a hook to the periodic `expiries` job (`[schedule] expiries` in config): how a cog
    /// catches up on what should have expired, such as a ban whose lift failed. The payload it
    /// gets is `null`.
    pub fn on_expiry<F, Fut>(&self, name: &'static str, hook: F)
    where
        F: Fn(JobContext, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        self.expiries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push((
                name,
                Arc::new(move |ctx, payload| hook(ctx, payload).boxed()),
            ));
    }

    /// Stores a job of `kind` due at `due` (now or earlier: as soon as possible).
    pub async fn schedule(
        &self,
        kind: &str,
        due: DateTime<Utc>,
        payload: Value,
    ) -> Result<JobId, StoreError> {
        self.schedule_inner(None, kind, due, payload).await
    }

    /// [`Scheduler::schedule`] for a job that belongs to someone (`owner` as the cog names
    /// them, e.g. `discord:123`), so [`Scheduler::list`] and [`Scheduler::forget`] find it.
    pub async fn schedule_for(
        &self,
        owner: &str,
        kind: &str,
        due: DateTime<Utc>,
        payload: Value,
    ) -> Result<JobId, StoreError> {
        self.schedule_inner(Some(owner.to_owned()), kind, due, payload)
            .await
    }

    async fn schedule_inner(
        &self,
        owner: Option<String>,
        kind: &str,
        due: DateTime<Utc>,
        payload: Value,
    ) -> Result<JobId, StoreError> {
        let kind = kind.to_owned();
        let id = self
            .store
            .call(move |conn| insert(conn, &kind, due, &payload, owner.as_deref()))
            .await?;
        self.woken_for(due);
        Ok(id)
    }

    /// Wakes the runner if `due` is earlier than it meant to wake. Call it after committing a
    /// job with [`insert`] inside a transaction of your own.
    pub fn woken_for(&self, due: DateTime<Utc>) {
        let next = self.next_due.load(Ordering::SeqCst);
        if next == BUSY || due.timestamp_millis() < next {
            self.wake.notify_one();
        }
    }

    /// Removes a job, whatever its state; false if there was none.
    pub async fn cancel(&self, id: JobId) -> Result<bool, StoreError> {
        self.store
            .call(move |conn| Ok(conn.execute("DELETE FROM jobs WHERE id = ?1", [id.0])? > 0))
            .await
    }

    /// Removes a job only if it belongs to `owner` (`/unremind 12` must not cancel someone
    /// else's reminder); false if they have no such job.
    pub async fn cancel_owned(&self, owner: &str, id: JobId) -> Result<bool, StoreError> {
        let owner = owner.to_owned();
        self.store
            .call(move |conn| {
                Ok(conn.execute(
                    "DELETE FROM jobs WHERE id = ?1 AND owner = ?2",
                    params![id.0, owner],
                )? > 0)
            })
            .await
    }

    /// Removes every job `owner` has of `kind`; returns how many.
    pub async fn forget(&self, owner: &str, kind: &str) -> Result<usize, StoreError> {
        let (owner, kind) = (owner.to_owned(), kind.to_owned());
        self.store
            .call(move |conn| {
                conn.execute(
                    "DELETE FROM jobs WHERE owner = ?1 AND kind = ?2",
                    params![owner, kind],
                )
            })
            .await
    }

    pub async fn get(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        self.store
            .call(move |conn| {
                conn.query_row(
                    &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                    [id.0],
                    job_from_row,
                )
                .optional()
            })
            .await
    }

    /// Up to `limit` jobs of `kind` (of `owner`, if given), earliest first, failed ones included.
    /// An owner's jobs are found by index; without one, every job is read (periodic jobs, tests).
    pub async fn list(
        &self,
        kind: &str,
        owner: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        let (kind, owner) = (kind.to_owned(), owner.map(str::to_owned));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.store
            .call(move |conn| {
                // An owner's jobs come from their index, not a scan of every pending job.
                let owned = if owner.is_some() {
                    "owner = ?2"
                } else {
                    "?2 IS NULL"
                };
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE {owned} AND kind = ?1 \
                     ORDER BY due, id LIMIT ?3"
                ))?;
                stmt.query_map(params![kind, owner, limit], job_from_row)?
                    .collect()
            })
            .await
    }

    /// How many jobs wait (pending or running) and how many are kept as failed, for `/status`.
    pub async fn counts(&self) -> Result<(u64, u64), StoreError> {
        self.store
            .call(|conn| {
                conn.query_row(
                    "SELECT COUNT(*) FILTER (WHERE state != 'failed'), \
                            COUNT(*) FILTER (WHERE state = 'failed') FROM jobs",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
            })
            .await
    }

    /// Makes the periodic job `kind` run every `every`, or removes it (`None`): the `[schedule]`
    /// config applied at start-up. A new periodic job runs at once; a shortened interval takes
    /// effect now rather than after the old one.
    pub async fn set_periodic(
        &self,
        kind: &'static str,
        every: Option<Duration>,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        self.store
            .call(move |conn| {
                match every {
                    None => conn.execute(
                        "DELETE FROM jobs WHERE kind = ?1 AND every IS NOT NULL",
                        [kind],
                    )?,
                    Some(every) => {
                        let every = millis(every);
                        conn.execute(
                            "INSERT INTO jobs (kind, due, payload, every) \
                             VALUES (?1, ?2, 'null', ?3) \
                             ON CONFLICT (kind) WHERE every IS NOT NULL DO UPDATE \
                             SET every = excluded.every, due = MIN(due, ?2 + excluded.every)",
                            params![kind, now.timestamp_millis(), every],
                        )?
                    }
                };
                Ok(())
            })
            .await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Runs every [`Scheduler::on_expiry`] hook; the error names each hook that failed, after
    /// all have run.
    pub(super) async fn run_expiries(&self, ctx: &JobContext) -> Result<(), JobError> {
        let hooks = self
            .expiries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut failed = Vec::new();
        for (name, hook) in hooks {
            let sub = JobContext {
                services: Arc::clone(&ctx.services),
                ..*ctx
            };
            if let Err(e) = hook(sub, Value::Null).await {
                failed.push(format!("{name}: {e}"));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(JobError::Failed(failed.join("; ")))
        }
    }

    fn handler(&self, kind: &str) -> Option<Handler> {
        self.handlers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(kind)
            .cloned()
    }
}

/// Inserts a job inside the caller's own transaction (a case and the job that ends it commit
/// together); call [`Scheduler::woken_for`] after the commit.
pub fn insert(
    conn: &Connection,
    kind: &str,
    due: DateTime<Utc>,
    payload: &Value,
    owner: Option<&str>,
) -> rusqlite::Result<JobId> {
    conn.prepare_cached("INSERT INTO jobs (kind, due, payload, owner) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![
            kind,
            due.timestamp_millis(),
            payload.to_string(),
            owner
        ])?;
    Ok(JobId(conn.last_insert_rowid()))
}

const JOB_COLUMNS: &str = "id, kind, due, payload, owner, state, attempts, last_error";

fn job_from_row(row: &rusqlite::Row) -> rusqlite::Result<Job> {
    let payload: String = row.get(3)?;
    let state: String = row.get(5)?;
    Ok(Job {
        id: JobId(row.get(0)?),
        kind: row.get(1)?,
        due: from_millis(row.get(2)?),
        payload: serde_json::from_str(&payload).unwrap_or(Value::String(payload)),
        owner: row.get(4)?,
        state: JobState::parse(&state),
        attempts: row.get(6)?,
        last_error: row.get(7)?,
    })
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A job taken for running, with what its outcome needs to know.
struct Claimed {
    id: JobId,
    kind: String,
    payload: Result<Value, String>,
    attempts: u32,
    every: Option<i64>,
    due: DateTime<Utc>,
}

/// A job that ran, and how it went.
struct Finished {
    id: JobId,
    attempts: u32,
    every: Option<i64>,
    result: Result<(), JobError>,
}

/// The delay before retry number `attempt` (1 after the first failure).
fn backoff(attempt: u32) -> Duration {
    FIRST_RETRY.saturating_mul(4u32.saturating_pow(attempt.saturating_sub(1)))
}

/// Records what finished jobs did and claims up to `room` due jobs, in one transaction (one
/// disk sync however many jobs), then reads when the next pending job is due.
fn step(
    conn: &mut Connection,
    finished: &[Finished],
    room: usize,
    now: DateTime<Utc>,
) -> rusqlite::Result<(Vec<Claimed>, Option<i64>)> {
    let now_ms = now.timestamp_millis();
    let tx = conn.transaction()?;
    for job in finished {
        let later = |d: Duration| now_ms.saturating_add(millis(d));
        match (&job.result, job.every) {
            (Ok(()), None) => {
                tx.prepare_cached("DELETE FROM jobs WHERE id = ?1")?
                    .execute([job.id.0])?;
            }
            (Ok(()), Some(every)) => {
                tx.prepare_cached(
                    "UPDATE jobs SET state = 'pending', due = ?2, attempts = 0, last_error = NULL \
                     WHERE id = ?1",
                )?
                .execute(params![job.id.0, now_ms.saturating_add(every)])?;
            }
            (Err(e), every) => {
                let (state, due, attempts) = match (e, every) {
                    (JobError::NotReady(_), _) => ("pending", later(NOT_READY_RETRY), job.attempts),
                    // A periodic job is never given up: it tries again at its next time.
                    (_, Some(every)) => ("pending", now_ms.saturating_add(every), job.attempts + 1),
                    (JobError::Invalid(_), None) => ("failed", now_ms, job.attempts + 1),
                    (JobError::Failed(_), None) if job.attempts + 1 >= MAX_ATTEMPTS => {
                        ("failed", now_ms, job.attempts + 1)
                    }
                    (JobError::Failed(_), None) => (
                        "pending",
                        later(backoff(job.attempts + 1)),
                        job.attempts + 1,
                    ),
                };
                tx.prepare_cached(
                    "UPDATE jobs SET state = ?2, due = ?3, attempts = ?4, last_error = ?5 \
                     WHERE id = ?1",
                )?
                .execute(params![
                    job.id.0,
                    state,
                    due,
                    attempts,
                    e.to_string()
                ])?;
            }
        }
    }
    let claimed = if room == 0 {
        Vec::new()
    } else {
        let mut stmt = tx.prepare_cached(
            "UPDATE jobs SET state = 'running' WHERE id IN \
             (SELECT id FROM jobs WHERE state = 'pending' AND due <= ?1 ORDER BY due LIMIT ?2) \
             RETURNING id, kind, payload, attempts, every, due",
        )?;
        let rows = stmt.query_map(
            params![now_ms, i64::try_from(room).unwrap_or(i64::MAX)],
            |row| {
                let payload: String = row.get(2)?;
                Ok(Claimed {
                    id: JobId(row.get(0)?),
                    kind: row.get(1)?,
                    payload: serde_json::from_str(&payload)
                        .map_err(|e| format!("unreadable payload: {e}")),
                    attempts: row.get(3)?,
                    every: row.get(4)?,
                    due: from_millis(row.get(5)?),
                })
            },
        )?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let next = tx
        .prepare_cached("SELECT MIN(due) FROM jobs WHERE state = 'pending'")?
        .query_row([], |row| row.get(0))?;
    tx.commit()?;
    Ok((claimed, next))
}

/// Drives the jobs until `cancel`; then lets the running ones finish and records them. Start it
/// once, after every kind is registered.
pub async fn run(services: Arc<Services>, cancel: CancellationToken) {
    let scheduler = &services.scheduler;
    // Jobs that were running when cogbox stopped run again.
    let recovered = scheduler
        .store
        .call(|conn| {
            conn.execute(
                "UPDATE jobs SET state = 'pending' WHERE state = 'running'",
                [],
            )
        })
        .await;
    match recovered {
        Ok(0) => {}
        Ok(n) => tracing::info!("{n} jobs interrupted by the last stop will run again"),
        Err(e) => tracing::error!("scheduler: {e}"),
    }
    let mut running: JoinSet<Finished> = JoinSet::new();
    let mut finished: Vec<Finished> = Vec::new();
    loop {
        scheduler.next_due.store(BUSY, Ordering::SeqCst);
        let room = MAX_RUNNING - running.len();
        let now = scheduler.clock.now();
        let done = std::mem::take(&mut finished);
        // The outcomes come back on failure, to be recorded on the next try.
        let result = scheduler
            .store
            .call(move |conn| Ok((step(conn, &done, room, now), done)))
            .await;
        let stepped = match result {
            Ok((Ok(stepped), _)) => Ok(stepped),
            Ok((Err(e), done)) => {
                finished = done;
                Err(e.to_string())
            }
            // The blocking task died: its jobs stay `running` and run again at next start.
            Err(e) => Err(e.to_string()),
        };
        let (claimed, next) = match stepped {
            Ok(stepped) => stepped,
            Err(e) => {
                tracing::error!("scheduler: {e}");
                let pause = tokio::time::sleep(STORE_RETRY);
                if cancel.run_until_cancelled(pause).await.is_none() {
                    break;
                }
                continue;
            }
        };
        for job in claimed {
            running.spawn(run_one(Arc::clone(&services), job));
        }
        // Sleep until the next job is due, unless every slot is busy: then only a finishing
        // job can make room.
        let wake_at = next.filter(|_| running.len() < MAX_RUNNING);
        scheduler
            .next_due
            .store(wake_at.unwrap_or(i64::MAX), Ordering::SeqCst);
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            Some(done) = running.join_next(), if !running.is_empty() => {
                finished.extend(done.ok());
                gather(&mut running, &mut finished).await;
            }
            () = scheduler.wake.notified() => {}
            () = sleep_until_ms(&*scheduler.clock, wake_at) => {}
        }
    }
    while let Some(done) = running.join_next().await {
        finished.extend(done.ok());
    }
    let now = scheduler.clock.now();
    if let Err(e) = scheduler
        .store
        .call(move |conn| step(conn, &finished, 0, now))
        .await
    {
        tracing::error!("scheduler: {e}");
    }
}

/// Collects the jobs that finish within [`GATHER`] of the first one, so a burst of due jobs is
/// recorded in a few commits rather than one per job.
async fn gather(running: &mut JoinSet<Finished>, finished: &mut Vec<Finished>) {
    let more = async {
        while let Some(done) = running.join_next().await {
            finished.extend(done.ok());
        }
    };
    let _ = tokio::time::timeout(GATHER, more).await;
}

async fn sleep_until_ms(clock: &dyn Clock, at: Option<i64>) {
    match at {
        Some(ms) => clock.sleep_until(from_millis(ms)).await,
        None => std::future::pending().await,
    }
}

/// Runs one job to its outcome; a panicking handler is a failed attempt, not a lost job.
async fn run_one(services: Arc<Services>, job: Claimed) -> Finished {
    let result = match (services.scheduler.handler(&job.kind), job.payload) {
        (None, _) => Err(JobError::Invalid(format!(
            "no handler for jobs of kind \"{}\"",
            job.kind
        ))),
        (Some(_), Err(e)) => Err(JobError::Invalid(e)),
        (Some(handler), Ok(payload)) => {
            let ctx = JobContext {
                services: Arc::clone(&services),
                id: job.id,
                attempt: job.attempts + 1,
                due: job.due,
            };
            AssertUnwindSafe(handler(ctx, payload))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| {
                    let why = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    Err(JobError::Failed(format!("panicked: {why}")))
                })
        }
    };
    if let Err(e) = &result {
        tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts + 1, "job failed: {e}");
    }
    Finished {
        id: job.id,
        attempts: job.attempts,
        every: job.every,
        result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{ManualClock, Platforms};
    use serde_json::json;
    use tokio::sync::mpsc;

    const START: i64 = 1_700_000_000;

    struct Harness {
        services: Arc<Services>,
        clock: Arc<ManualClock>,
        cancel: CancellationToken,
        runner: Option<tokio::task::JoinHandle<()>>,
    }

    impl Harness {
        fn new(store: Store, clock: Arc<ManualClock>) -> Self {
            let services = Arc::new(Services::new(
                store,
                Vec::new(),
                clock.clone(),
                Arc::new(Platforms::default()),
            ));
            Self {
                services,
                clock,
                cancel: CancellationToken::new(),
                runner: None,
            }
        }

        fn fresh() -> Self {
            let clock = Arc::new(ManualClock::new(
                DateTime::from_timestamp(START, 0).unwrap(),
            ));
            Self::new(Store::in_memory().unwrap(), clock)
        }

        fn scheduler(&self) -> &Scheduler {
            &self.services.scheduler
        }

        /// Registers `kind` with a handler that reports each payload it runs.
        fn record(&self, kind: &'static str) -> mpsc::UnboundedReceiver<Value> {
            let (tx, rx) = mpsc::unbounded_channel();
            self.scheduler().register(kind, move |_, payload| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(payload);
                    Ok(())
                }
            });
            rx
        }

        fn start(&mut self) {
            let services = Arc::clone(&self.services);
            self.runner = Some(tokio::spawn(run(services, self.cancel.clone())));
        }

        async fn stop(&mut self) {
            self.cancel.cancel();
            if let Some(runner) = self.runner.take() {
                runner.await.unwrap();
            }
        }

        fn at(&self, secs: u64) -> DateTime<Utc> {
            self.clock.now() + chrono::Duration::seconds(secs as i64)
        }

        fn advance(&self, secs: u64) {
            self.clock.advance(Duration::from_secs(secs));
        }

        /// Waits until the runner stops reading the clock for 50 ms: it is asleep. A runner
        /// that polls in a loop (a busy loop on the appliance's CPU) never gets there.
        async fn asleep(&self) {
            let mut reads = self.clock.reads();
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let now = self.clock.reads();
                if now == reads {
                    return;
                }
                reads = now;
            }
            panic!("the runner read the clock {reads} times and never went to sleep");
        }
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<Value>) -> Value {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("the job runs")
            .expect("the handler lives")
    }

    /// Waits until the runner has stored the job's latest outcome (it is no longer running).
    async fn settled(scheduler: &Scheduler, id: JobId) -> Option<Job> {
        for _ in 0..1000 {
            let job = scheduler.get(id).await.unwrap();
            if job.as_ref().is_none_or(|j| j.state != JobState::Running) {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("job {id} never settled");
    }

    #[tokio::test]
    async fn a_job_runs_when_the_clock_reaches_its_time_and_not_before() {
        let mut h = Harness::fresh();
        let mut fired = h.record("remind");
        h.start();
        let id = h
            .scheduler()
            .schedule("remind", h.at(600), json!("tea"))
            .await
            .unwrap();
        h.scheduler()
            .schedule("remind", h.at(599), json!("marker"))
            .await
            .unwrap();
        h.advance(599);
        assert_eq!(next(&mut fired).await, json!("marker"));
        assert!(fired.try_recv().is_err(), "the 10-minute job ran early");
        assert!(h.scheduler().get(id).await.unwrap().is_some());
        h.advance(1);
        assert_eq!(next(&mut fired).await, json!("tea"));
        assert_eq!(
            settled(h.scheduler(), id).await,
            None,
            "a done job is removed"
        );
        h.stop().await;
    }

    #[tokio::test]
    async fn an_earlier_job_wakes_a_runner_sleeping_until_a_later_one() {
        let mut h = Harness::fresh();
        let mut fired = h.record("remind");
        h.scheduler()
            .schedule("remind", h.at(3600), json!("late"))
            .await
            .unwrap();
        h.start();
        h.asleep().await;
        h.scheduler()
            .schedule("remind", h.at(60), json!("early"))
            .await
            .unwrap();
        h.advance(60);
        assert_eq!(next(&mut fired).await, json!("early"));
        h.stop().await;
    }

    #[tokio::test]
    async fn a_failing_job_is_retried_with_backoff_and_then_kept_failed_with_its_error() {
        let mut h = Harness::fresh();
        let (tx, mut tried) = mpsc::unbounded_channel();
        h.scheduler().register("flaky", move |ctx, _| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(json!(ctx.attempt));
                Err(JobError::Failed(format!("attempt {} failed", ctx.attempt)))
            }
        });
        let id = h
            .scheduler()
            .schedule("flaky", h.at(0), json!(null))
            .await
            .unwrap();
        h.start();
        for attempt in 1..=MAX_ATTEMPTS {
            assert_eq!(next(&mut tried).await, json!(attempt));
            let job = settled(h.scheduler(), id).await.unwrap();
            assert_eq!(job.attempts, attempt);
            assert_eq!(job.last_error, Some(format!("attempt {attempt} failed")));
            if attempt == MAX_ATTEMPTS {
                assert_eq!(job.state, JobState::Failed, "kept, not dropped");
                break;
            }
            assert_eq!(job.state, JobState::Pending);
            let wait = backoff(attempt).as_secs();
            assert_eq!(job.due, h.at(wait), "retry {attempt} waits {wait}s");
            h.advance(wait - 1);
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(tried.try_recv().is_err(), "retried before its backoff");
            h.advance(1);
        }
        h.advance(365 * 86_400);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(tried.try_recv().is_err(), "a failed job is not run again");
        assert_eq!(h.scheduler().counts().await.unwrap(), (0, 1));
        h.stop().await;
    }

    #[tokio::test]
    async fn a_job_whose_platform_is_not_connected_waits_without_using_up_attempts() {
        let mut h = Harness::fresh();
        h.scheduler().register("unmute", |ctx, _| async move {
            ctx.platform(PlatformKind::Telegram)?;
            Ok(())
        });
        let id = h
            .scheduler()
            .schedule("unmute", h.at(0), json!(null))
            .await
            .unwrap();
        h.start();
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let job = settled(h.scheduler(), id).await.unwrap();
            assert_eq!(job.attempts, 0);
            assert_eq!(job.state, JobState::Pending);
            assert_eq!(job.last_error.as_deref(), Some("telegram is not connected"));
            assert_eq!(job.due, h.at(NOT_READY_RETRY.as_secs()));
            h.advance(NOT_READY_RETRY.as_secs());
        }
        h.stop().await;
    }

    #[tokio::test]
    async fn a_panicking_handler_or_an_unknown_kind_loses_no_job() {
        let mut h = Harness::fresh();
        h.scheduler()
            .register("boom", |_, _| async { panic!("handler bug") });
        let boom = h
            .scheduler()
            .schedule("boom", h.at(0), json!(null))
            .await
            .unwrap();
        let unknown = h
            .scheduler()
            .schedule("gone", h.at(0), json!(null))
            .await
            .unwrap();
        h.start();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let boom = settled(h.scheduler(), boom).await.unwrap();
        assert_eq!(boom.state, JobState::Pending, "retried");
        assert_eq!(boom.last_error.as_deref(), Some("panicked: handler bug"));
        let unknown = settled(h.scheduler(), unknown).await.unwrap();
        assert_eq!(unknown.state, JobState::Failed);
        assert_eq!(unknown.attempts, 1, "its one try is counted");
        assert_eq!(
            unknown.last_error.as_deref(),
            Some("no handler for jobs of kind \"gone\"")
        );
        h.stop().await;
    }

    #[tokio::test]
    async fn jobs_due_or_running_when_cogbox_stopped_run_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cogbox.db");
        let clock = Arc::new(ManualClock::new(
            DateTime::from_timestamp(START, 0).unwrap(),
        ));
        let (due, interrupted) = {
            let h = Harness::new(Store::open(&path).unwrap(), clock.clone());
            let due = h
                .scheduler()
                .schedule_for("telegram:5", "remind", h.at(600), json!("tea"))
                .await
                .unwrap();
            let interrupted = h
                .scheduler()
                .schedule("remind", h.at(0), json!("half-done"))
                .await
                .unwrap();
            // As if cogbox died while running it.
            h.services
                .store
                .call(move |c| {
                    c.execute(
                        "UPDATE jobs SET state = 'running' WHERE id = ?1",
                        [interrupted.0],
                    )
                })
                .await
                .unwrap();
            (due, interrupted)
        };
        // Stopped across the job's time.
        clock.advance(Duration::from_secs(3600));
        let mut h = Harness::new(Store::open(&path).unwrap(), clock);
        let mut fired = h.record("remind");
        h.start();
        let mut got = vec![next(&mut fired).await, next(&mut fired).await];
        got.sort_by_key(|v| v.to_string());
        assert_eq!(got, [json!("half-done"), json!("tea")]);
        assert_eq!(settled(h.scheduler(), due).await, None);
        assert_eq!(settled(h.scheduler(), interrupted).await, None);
        h.stop().await;
    }

    #[tokio::test]
    async fn a_periodic_job_runs_at_once_then_every_interval_and_can_be_turned_off() {
        let mut h = Harness::fresh();
        let mut fired = h.record("tidy");
        h.scheduler()
            .set_periodic("tidy", Some(Duration::from_secs(3600)))
            .await
            .unwrap();
        // Applying the same config again at the next start adds no second row.
        h.scheduler()
            .set_periodic("tidy", Some(Duration::from_secs(3600)))
            .await
            .unwrap();
        h.start();
        assert_eq!(next(&mut fired).await, json!(null));
        let job = &h.scheduler().list("tidy", None, 10).await.unwrap();
        assert_eq!(job.len(), 1);
        let job = settled(h.scheduler(), job[0].id).await.unwrap();
        assert_eq!(job.due, h.at(3600), "rescheduled an interval later");
        h.advance(3600);
        next(&mut fired).await;
        h.scheduler().set_periodic("tidy", None).await.unwrap();
        assert!(
            h.scheduler()
                .list("tidy", None, 10)
                .await
                .unwrap()
                .is_empty()
        );
        h.stop().await;
    }

    #[tokio::test]
    async fn owners_list_and_cancel_only_their_own_jobs() {
        let h = Harness::fresh();
        let s = h.scheduler();
        let alice = s
            .schedule_for("console:1", "remind", h.at(60), json!("a"))
            .await
            .unwrap();
        s.schedule_for("console:2", "remind", h.at(30), json!("b"))
            .await
            .unwrap();
        let mine = s.list("remind", Some("console:1"), 10).await.unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!(
            (mine[0].id, &mine[0].payload, mine[0].due),
            (alice, &json!("a"), h.at(60))
        );
        assert!(!s.cancel_owned("console:2", alice).await.unwrap());
        assert!(s.cancel_owned("console:1", alice).await.unwrap());
        assert_eq!(s.forget("console:2", "remind").await.unwrap(), 1);
        assert_eq!(s.counts().await.unwrap(), (0, 0));
    }

    #[tokio::test]
    async fn every_expiry_hook_runs_and_the_error_names_each_that_failed() {
        let h = Harness::fresh();
        let ran = Arc::new(std::sync::Mutex::new(Vec::new()));
        for (name, fails) in [("warnings", false), ("bans", true), ("mutes", true)] {
            let ran = Arc::clone(&ran);
            h.scheduler().on_expiry(name, move |_, payload| {
                let ran = Arc::clone(&ran);
                async move {
                    ran.lock().unwrap().push((name, payload));
                    if fails {
                        Err(JobError::Failed("platform down".into()))
                    } else {
                        Ok(())
                    }
                }
            });
        }
        let ctx = JobContext {
            services: Arc::clone(&h.services),
            id: JobId(1),
            attempt: 1,
            due: h.at(0),
        };
        assert_eq!(
            h.scheduler().run_expiries(&ctx).await,
            Err(JobError::Failed(
                "bans: platform down; mutes: platform down".into()
            ))
        );
        assert_eq!(
            *ran.lock().unwrap(),
            [
                ("warnings", Value::Null),
                ("bans", Value::Null),
                ("mutes", Value::Null)
            ],
            "a failing hook does not stop the others"
        );
    }

    #[tokio::test]
    async fn a_job_id_is_shown_as_the_number_its_owner_types_to_cancel_it() {
        let h = Harness::fresh();
        let s = h.scheduler();
        s.schedule("remind", h.at(30), json!("someone else's"))
            .await
            .unwrap();
        let id = s
            .schedule_for("console:1", "remind", h.at(60), json!("a"))
            .await
            .unwrap();
        // What `/remind` answers ("reminder #2") and `/unremind 2` reads back.
        let shown = id.to_string();
        assert_eq!(shown, "2");
        let typed = JobId(shown.parse().unwrap());
        assert!(s.cancel_owned("console:1", typed).await.unwrap());
        assert_eq!(s.counts().await.unwrap(), (1, 0));
    }

    async fn woken(s: &Scheduler) -> bool {
        tokio::time::timeout(Duration::from_millis(50), s.wake.notified())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn the_runner_is_woken_only_for_a_job_due_before_it_would_wake_anyway() {
        let h = Harness::fresh();
        let s = h.scheduler();
        // A runner asleep until the job due in ten minutes.
        s.next_due
            .store(h.at(600).timestamp_millis(), Ordering::SeqCst);
        s.woken_for(h.at(600));
        assert!(!woken(s).await, "due just when it wakes");
        s.woken_for(h.at(3600));
        assert!(!woken(s).await, "due later");
        s.woken_for(h.at(599));
        assert!(woken(s).await, "due earlier");
        // Between reading the earliest job and going to sleep it knows no time yet: the wake
        // is kept for its sleep, or the new job would wait for the old one.
        s.next_due.store(BUSY, Ordering::SeqCst);
        s.woken_for(h.at(3600));
        assert!(woken(s).await, "told while deciding");
    }

    #[tokio::test]
    async fn cancel_removes_a_job_in_any_state_and_says_whether_there_was_one() {
        let h = Harness::fresh();
        let s = h.scheduler();
        let id = s.schedule("remind", h.at(60), json!("a")).await.unwrap();
        h.services
            .store
            .call(move |c| c.execute("UPDATE jobs SET state = 'failed' WHERE id = ?1", [id.0]))
            .await
            .unwrap();
        assert!(s.cancel(id).await.unwrap());
        assert_eq!(s.get(id).await.unwrap(), None);
        assert!(!s.cancel(id).await.unwrap(), "nothing left to cancel");
    }

    #[tokio::test]
    async fn a_failing_periodic_job_counts_its_failures_and_tries_again_at_its_next_time() {
        let mut h = Harness::fresh();
        h.scheduler().register("tidy", |_, _| async {
            Err(JobError::Failed("disk full".into()))
        });
        h.scheduler()
            .set_periodic("tidy", Some(Duration::from_secs(3600)))
            .await
            .unwrap();
        let id = h.scheduler().list("tidy", None, 1).await.unwrap()[0].id;
        h.start();
        let mut ran = None;
        for _ in 0..1000 {
            let job = settled(h.scheduler(), id).await.unwrap();
            if job.attempts > 0 {
                ran = Some(job);
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let job = ran.expect("the periodic job ran and its failure was counted");
        assert_eq!(
            (job.state, job.attempts, job.last_error.as_deref()),
            (JobState::Pending, 1, Some("disk full")),
            "never given up"
        );
        assert_eq!(job.due, h.at(3600), "tried again at its next time");
        h.stop().await;
    }

    #[tokio::test]
    async fn no_more_than_max_running_jobs_run_at_once() {
        let mut h = Harness::fresh();
        let running = Arc::new(AtomicI64::new(0));
        let done = Arc::new(AtomicI64::new(0));
        let release = Arc::new(tokio::sync::Semaphore::new(0));
        {
            let (running, done, release) = (running.clone(), done.clone(), release.clone());
            h.scheduler().register("slow", move |_, _| {
                let (running, done, release) = (running.clone(), done.clone(), release.clone());
                async move {
                    running.fetch_add(1, Ordering::SeqCst);
                    release.acquire().await.unwrap().forget();
                    running.fetch_sub(1, Ordering::SeqCst);
                    done.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            });
        }
        let until = |counter: &Arc<AtomicI64>, n: usize| {
            let counter = Arc::clone(counter);
            async move {
                for _ in 0..2000 {
                    if counter.load(Ordering::SeqCst) == n as i64 {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                panic!("{} of {n}", counter.load(Ordering::SeqCst));
            }
        };
        for _ in 0..MAX_RUNNING {
            h.scheduler()
                .schedule("slow", h.at(0), json!(null))
                .await
                .unwrap();
        }
        h.start();
        until(&running, MAX_RUNNING).await;
        for _ in 0..8 {
            h.scheduler()
                .schedule("slow", h.at(0), json!(null))
                .await
                .unwrap();
        }
        // With every slot busy the runner waits for a job to finish, not for the due ones.
        h.asleep().await;
        assert_eq!(
            running.load(Ordering::SeqCst),
            MAX_RUNNING as i64,
            "due jobs wait for a free slot"
        );
        release.add_permits(MAX_RUNNING + 8);
        until(&done, MAX_RUNNING + 8).await;
        h.stop().await;
    }
}
