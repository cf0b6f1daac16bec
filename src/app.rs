//! The composition root: builds the services, the dispatcher and the platforms from the
//! config, runs them under one cancellation token, and shuts down in order.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::adapters::console::{self, ConsolePlatform};
use crate::adapters::{Launch, StartError, discord, slack, telegram};
use crate::cogs;
use crate::config::Config;
use crate::core::{Clock, Dispatcher, OffsetClock, Platforms, Reply, SystemClock};
use crate::services::backup::{self, BackupError, Schedule};
use crate::services::periodic::{self, Intervals};
use crate::services::{Services, Store, StoreError, alerts, scheduler};

/// Which front ends to start.
#[derive(Clone, Debug)]
pub enum Frontends {
    /// Every platform with a token; the console when none has one.
    Configured,
    /// Only the console, as this user (`None`: the default, privileged user).
    Console { user: Option<String> },
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Something in the config or the data folder stops the bot from starting.
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot back up the database before migrating it: {0}")]
    Backup(#[from] BackupError),
    #[error(transparent)]
    Platform(#[from] StartError),
}

impl AppError {
    /// 2 when the user must fix something (config, token, database version), else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Setup(_)
            | Self::Store(StoreError::TooNew { .. })
            | Self::Platform(StartError::Config(_)) => 2,
            Self::Store(_) | Self::Backup(_) | Self::Platform(StartError::Failed(_)) => 1,
        }
    }
}

/// How long the stop waits for the database checkpoint after the grace period, so that the
/// whole stop fits in `shutdown_grace` + 0.5 s (6 s by default, under Docker's 10 s).
const CHECKPOINT_WAIT: Duration = Duration::from_millis(500);
/// How often per-user rate-limit state of idle users is dropped.
const TIDY_EVERY: Duration = Duration::from_secs(60);

/// Runs the bot until `shutdown` resolves, the console's input ends, or a platform fails.
pub async fn run(
    config: Config,
    frontends: Frontends,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AppError> {
    let store = open_store(&config).await?;
    let console_user = match &frontends {
        Frontends::Configured if config.has_platforms() => None,
        Frontends::Configured | Frontends::Console { user: None } => {
            Some((console::DEFAULT_USER.to_owned(), true))
        }
        Frontends::Console { user: Some(name) } => {
            console::check_user_name(name).map_err(AppError::Setup)?;
            Some((
                name.clone(),
                config.bot.owners.contains(&console::user_id(name)),
            ))
        }
    };
    let mut owners = config.bot.owners.clone();
    if let Some((name, true)) = &console_user {
        owners.push(console::user_id(name));
    }
    let platforms = Arc::new(Platforms::default());
    let services = Arc::new(Services::new(
        store.clone(),
        owners,
        clock(&config),
        Arc::clone(&platforms),
    ));
    register_jobs(&services, &config).await?;
    let dispatcher = Arc::new(
        Dispatcher::new(cogs::all(), Arc::clone(&services), config.limits.quota())
            .map_err(AppError::Setup)?,
    );

    let (fatal, mut fatal_rx) = mpsc::unbounded_channel();
    let launch = Launch {
        dispatcher,
        platforms,
        cancel: CancellationToken::new(),
        tracker: TaskTracker::new(),
        fatal,
        max_in_flight: config.limits.max_in_flight.get() as usize,
        intakes: Default::default(),
    };
    // The stop signal is listened for from here on: a platform's start-up can take seconds
    // (Discord waits for its gateway), and a signal meanwhile must stop cleanly too.
    let mut shutdown = std::pin::pin!(shutdown);
    let started = tokio::select! {
        started = start_frontends(&config, console_user, &launch) => Some(started),
        () = &mut shutdown => None,
    };
    let mut failure = None;
    match started {
        None => tracing::info!("shutting down"),
        Some(Err(e)) => failure = Some(AppError::from(e)),
        Some(Ok(())) => {
            spawn_tidy(&launch);
            launch.tracker.spawn(alerts::run(
                Arc::clone(&services),
                launch.dispatcher.subscribe_errors(),
                config.bot.owners.clone(),
                config.bot.error_channel,
                launch.cancel.clone(),
            ));
            // After the platforms, so that jobs due at start-up find them connected.
            launch
                .tracker
                .spawn(scheduler::run(services, launch.cancel.clone()));
            if config.backup.keep > 0 {
                let schedule = Schedule {
                    db: config.database_path(),
                    dir: config.backup_dir(),
                    every: config.backup.every.0,
                    keep: config.backup.keep,
                };
                launch.tracker.spawn(schedule.run(launch.cancel.clone()));
            }
            tracing::info!(name = %config.bot.name, version = env!("CARGO_PKG_VERSION"), "cogbox is ready");
            tokio::select! {
                () = &mut shutdown => tracing::info!("shutting down"),
                () = launch.cancel.cancelled() => {},
                Some(why) = fatal_rx.recv() => failure = Some(AppError::Platform(why)),
            }
        }
    }
    launch.cancel.cancel();
    launch.tracker.close();
    let grace = config.limits.shutdown_grace.0;
    let finished = tokio::time::timeout(grace, launch.tracker.wait())
        .await
        .is_ok();
    let dropped = launch.unanswered();
    if !finished {
        tracing::warn!(
            "{dropped} updates taken but not yet answered after the {grace:?} grace period: \
             dropping them and stopping"
        );
    }
    // On a busy SD card the fsyncs of a checkpoint can take seconds; the WAL is durable, so a
    // checkpoint cut short by the exit is only finished at the next start.
    let checkpointed = match tokio::time::timeout(CHECKPOINT_WAIT, store.checkpoint()).await {
        Ok(result) => {
            result?;
            true
        }
        Err(_) => {
            tracing::warn!(
                "the database checkpoint did not finish within {CHECKPOINT_WAIT:?}; \
                 it completes at the next start"
            );
            false
        }
    };
    // Why it failed is said once, by the caller, which also picks the exit code.
    let clean = failure.is_none() && finished && dropped == 0 && checkpointed;
    tracing::info!("{}", if clean { "stopped cleanly" } else { "stopped" });
    failure.map_or(Ok(()), Err)
}

/// The wall clock, or in the real binary's end-to-end tests the wall clock moved ahead (the
/// config only lets `COGBOX_TEST_CLOCK_OFFSET` through when every platform is a local fake).
fn clock(config: &Config) -> Arc<dyn Clock> {
    match config.test_clock_offset {
        Some(offset) => {
            tracing::warn!(
                "TEST CLOCK: running {} ahead of the wall clock (COGBOX_TEST_CLOCK_OFFSET)",
                crate::core::duration::format(offset)
            );
            Arc::new(OffsetClock(
                chrono::Duration::from_std(offset).unwrap_or(chrono::Duration::MAX),
            ))
        }
        None => Arc::new(SystemClock),
    }
}

/// Registers every kind of scheduled job before the scheduler starts. Cogs with jobs of their
/// own (reminders, the end of a timed mute) register them here too.
async fn register_jobs(services: &Services, config: &Config) -> Result<(), AppError> {
    let schedule = &config.schedule;
    let intervals = Intervals {
        audit_purge: schedule.audit_purge.0,
        optimize: schedule.optimize.0,
        expiries: schedule.expiries.0,
    };
    let retention = Duration::from_secs(u64::from(config.retention.audit_log_days) * 86_400);
    periodic::start(&services.scheduler, intervals, retention).await?;
    crate::cogs::moderation::expiry::register(&services.scheduler);
    cogs::fun::register_jobs(&services.scheduler);
    Ok(())
}

/// Starts the platforms that have tokens, or the console.
async fn start_frontends<S: crate::core::State>(
    config: &Config,
    console_user: Option<(String, bool)>,
    launch: &Launch<S>,
) -> Result<(), StartError> {
    if let Some((name, privileged)) = console_user {
        if !config.has_platforms() {
            tracing::info!("no Discord, Telegram or Slack token configured: starting the console");
        }
        spawn_console(launch, ConsolePlatform::new(&name, privileged));
        return Ok(());
    }
    if let Some(token) = &config.discord.token {
        discord::start(&config.discord, token, launch).await?;
    }
    if let Some(token) = &config.telegram.token {
        telegram::start(&config.telegram, token, launch).await?;
    }
    if let Some(token) = &config.slack.bot_token {
        slack::start(&config.slack, token, launch).await?;
    }
    Ok(())
}

fn spawn_console<S: crate::core::State>(
    launch: &Launch<S>,
    (platform, notices): (ConsolePlatform, mpsc::Receiver<Reply>),
) {
    let platform = Arc::new(platform);
    launch.platforms.register(platform.clone());
    let (dispatcher, cancel) = (Arc::clone(&launch.dispatcher), launch.cancel.clone());
    launch.tracker.spawn(async move {
        let lines = console::stdin_lines();
        if let Err(e) = console::run(
            dispatcher,
            platform,
            lines,
            notices,
            tokio::io::stdout(),
            cancel.clone(),
        )
        .await
        {
            tracing::error!("console output failed: {e}");
        }
        // The chat is over (input ended): so is the console session.
        cancel.cancel();
    });
}

fn spawn_tidy<S: crate::core::State>(launch: &Launch<S>) {
    let (dispatcher, cancel) = (Arc::clone(&launch.dispatcher), launch.cancel.clone());
    launch.tracker.spawn(async move {
        let mut tick = tokio::time::interval(TIDY_EVERY);
        while cancel.run_until_cancelled(tick.tick()).await.is_some() {
            dispatcher.tidy();
        }
    });
}

/// Creates the data folder if needed and opens (and migrates) the database in it, backing it
/// up first when it is about to be migrated.
pub async fn open_store(config: &Config) -> Result<Store, AppError> {
    let dir = &config.bot.data_dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| AppError::Setup(format!("data folder {}: {e}", dir.display())))?;
    let (path, backups) = (config.database_path(), config.backup_dir());
    tokio::task::spawn_blocking(move || {
        if let Some(copy) = backup::before_migrating(&path, &backups)? {
            tracing::info!(copy = %copy.display(), "database backed up before migrating it");
        }
        Ok(Store::open(&path)?)
    })
    .await
    .map_err(StoreError::from)?
}
