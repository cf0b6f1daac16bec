//! The composition root: builds the services, the dispatcher and the platforms from the
//! config, runs them under one cancellation token, and shuts down in order.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::adapters::console::{self, ConsolePlatform};
use crate::cogs;
use crate::config::Config;
use crate::core::Dispatcher;
use crate::services::{Services, Store, StoreError};

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
}

/// How often per-user rate-limit state of idle users is dropped.
const TIDY_EVERY: Duration = Duration::from_secs(60);

/// Runs the bot until `shutdown` resolves (or, for the console, until input ends).
pub async fn run(
    config: Config,
    frontends: Frontends,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AppError> {
    let store = open_store(&config).await?;
    let (console_user, privileged) = match &frontends {
        Frontends::Console { user: Some(name) } => {
            console::check_user_name(name).map_err(AppError::Setup)?;
            let owner = config.bot.owners.contains(&console::user_id(name));
            (name.clone(), owner)
        }
        Frontends::Console { user: None } | Frontends::Configured => {
            (console::DEFAULT_USER.to_owned(), true)
        }
    };
    let mut owners = config.bot.owners.clone();
    if privileged {
        owners.push(console::user_id(&console_user));
    }
    let services = Arc::new(Services::new(
        store.clone(),
        owners,
        config.bot.name.clone(),
    ));
    let dispatcher = Arc::new(
        Dispatcher::new(cogs::all(), services, config.limits.quota()).map_err(AppError::Setup)?,
    );

    if matches!(frontends, Frontends::Configured) {
        for (platform, token) in [
            ("discord", config.discord.token.is_some()),
            ("telegram", config.telegram.token.is_some()),
        ] {
            if token {
                return Err(AppError::Setup(format!(
                    "{platform}.token is set, but this build of cogbox cannot connect to {platform} yet"
                )));
            }
        }
        tracing::info!("no Discord or Telegram token configured: starting the console");
    }

    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let console = Arc::new(ConsolePlatform::new(&console_user, privileged));
    tracker.spawn({
        let (dispatcher, cancel) = (Arc::clone(&dispatcher), cancel.clone());
        async move {
            let lines = console::stdin_lines();
            if let Err(e) = console::run(
                dispatcher,
                console,
                lines,
                tokio::io::stdout(),
                cancel.clone(),
            )
            .await
            {
                tracing::error!("console output failed: {e}");
            }
            // The chat is over (input ended): so is the console session.
            cancel.cancel();
        }
    });
    tracker.spawn({
        let (dispatcher, cancel) = (Arc::clone(&dispatcher), cancel.clone());
        async move {
            let mut tick = tokio::time::interval(TIDY_EVERY);
            while cancel.run_until_cancelled(tick.tick()).await.is_some() {
                dispatcher.tidy();
            }
        }
    });
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "cogbox is ready");

    tokio::select! {
        _ = shutdown => tracing::info!("shutting down"),
        _ = cancel.cancelled() => {},
    }
    cancel.cancel();
    tracker.close();
    let grace = config.limits.shutdown_grace.0;
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!("tasks still running after the {grace:?} grace period; stopping anyway");
    }
    store.checkpoint().await?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Creates the data folder if needed and opens (and migrates) the database in it.
pub async fn open_store(config: &Config) -> Result<Store, AppError> {
    let dir = &config.bot.data_dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| AppError::Setup(format!("data folder {}: {e}", dir.display())))?;
    let path = config.database_path();
    Ok(tokio::task::spawn_blocking(move || Store::open(&path))
        .await
        .map_err(StoreError::from)??)
}
