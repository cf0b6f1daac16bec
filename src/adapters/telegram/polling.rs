//! Long polling: one `getUpdates` at a time, each update handled on its own task, and only as
//! many updates fetched as there are free intake slots: a backlog waits at Telegram.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use teloxide::payloads::GetUpdatesSetters;
use teloxide::requests::Requester;
use teloxide::{ApiError, Bot, RequestError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::updates::Inbox;
use super::{POLL_TIMEOUT_SECS, allowed_updates};
use crate::adapters::{Intake, StartError};
use crate::core::State;

/// `getUpdates` returns at most 100 updates.
const MAX_BATCH: usize = 100;
/// The longest pause between retries after failures in a row.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

pub async fn run<S: State>(
    bot: Bot,
    inbox: Arc<Inbox<S>>,
    intake: Intake,
    tracker: TaskTracker,
    cancel: CancellationToken,
    fatal: mpsc::UnboundedSender<StartError>,
) {
    let mut offset = 0;
    let mut failures = 0u32;
    loop {
        // Nothing is fetched until there is room; the poller is the only one taking slots, so
        // what is free now stays free until the batch is taken.
        let Some(room) = cancel.run_until_cancelled(intake.take()).await else {
            return;
        };
        drop(room);
        let limit = intake.free().min(MAX_BATCH) as u8;
        let request = bot
            .get_updates()
            .offset(offset)
            .limit(limit)
            .timeout(POLL_TIMEOUT_SECS)
            .allowed_updates(allowed_updates());
        // Updates of a poll cut short here were not confirmed: Telegram sends them again.
        let Some(result) = cancel.run_until_cancelled(request.into_future()).await else {
            return;
        };
        let pause = match result {
            Ok(updates) => {
                failures = 0;
                for update in updates {
                    offset = update.id.as_offset();
                    let slot = intake.take().await;
                    inbox.observe(&update).await;
                    let inbox = Arc::clone(&inbox);
                    tracker.spawn(async move { inbox.handle(update, slot).await });
                }
                continue;
            }
            Err(RequestError::Api(ApiError::InvalidToken)) => {
                let _ = fatal.send(StartError::Config("telegram: the token was rejected (401 Unauthorized); was it revoked in @BotFather?".into()));
                return;
            }
            Err(RequestError::RetryAfter(wait)) => wait.duration(),
            Err(e) => {
                failures += 1;
                let pause = Duration::from_secs(1 << failures.min(6)).min(MAX_BACKOFF);
                tracing::warn!("telegram: getUpdates failed ({e}); retrying in {pause:?}");
                pause
            }
        };
        if cancel
            .run_until_cancelled(tokio::time::sleep(pause))
            .await
            .is_none()
        {
            return;
        }
    }
}
