//! Telegram through teloxide: long polling or a secured webhook, commands published with
//! `setMyCommands`, replies as escaped HTML with inline keyboards, and capabilities decided by
//! chat-administrator rights.

mod history;
mod outbox;
mod platform;
mod polling;
mod render;
mod updates;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use teloxide::requests::Requester;
use teloxide::types::{AllowedUpdate, BotCommand};
use teloxide::{ApiError, Bot, RequestError};

use super::{Launch, StartError};
use crate::config::{TelegramConfig, TelegramMode};
use crate::core::{Catalog, State};
use platform::TelegramPlatform;
use updates::Inbox;

/// How long the Bot API may hold a `getUpdates` call open waiting for updates.
const POLL_TIMEOUT_SECS: u32 = 25;
/// Above the long-poll time, so a quiet chat is not mistaken for a dead connection.
const HTTP_TIMEOUT: Duration = Duration::from_secs(POLL_TIMEOUT_SECS as u64 + 15);

/// The updates the bot handles; Telegram sends no others.
fn allowed_updates() -> Vec<AllowedUpdate> {
    vec![
        AllowedUpdate::Message,
        AllowedUpdate::EditedMessage,
        AllowedUpdate::CallbackQuery,
        AllowedUpdate::ChatMember,
        AllowedUpdate::MyChatMember,
    ]
}

/// Checks the token, publishes the commands and starts receiving updates.
pub async fn start<S: State>(
    config: &TelegramConfig,
    token: &SecretString,
    launch: &Launch<S>,
) -> Result<(), StartError> {
    let api_url = config
        .api_url
        .parse()
        .map_err(|e| StartError::Config(format!("telegram.api_url \"{}\": {e}", config.api_url)))?;
    let client = teloxide::net::default_reqwest_settings()
        .timeout(HTTP_TIMEOUT)
        .build()
        .map_err(|e| StartError::Failed(format!("telegram: cannot build an HTTP client: {e}")))?;
    let bot = Bot::with_client(token.expose_secret(), client).set_api_url(api_url);
    // teloxide's own dispatcher panics when getMe fails; asking first turns a bad token into
    // one clear line and exit code 2.
    let me = bot.get_me().await.map_err(|e| match e {
        RequestError::Api(ApiError::InvalidToken) => StartError::Config(
            "telegram.token was rejected by Telegram (401 Unauthorized): copy the token from @BotFather again"
                .into(),
        ),
        other => StartError::Failed(format!("telegram: cannot reach the Bot API at {}: {other}", config.api_url)),
    })?;
    let username = me.username().to_owned();
    bot.set_my_commands(commands(launch.dispatcher.catalog()))
        .await
        .map_err(|e| StartError::Failed(format!("telegram: setMyCommands failed: {e}")))?;

    let platform = Arc::new(TelegramPlatform::new(bot.clone(), me.id));
    launch.platforms.register(platform.clone());
    let intake = launch.intake("telegram");
    let sender = Arc::clone(&platform);
    launch.watch(
        "telegram outbox",
        platform.outbox().clone().run(
            move |chat, draft| {
                let sender = Arc::clone(&sender);
                async move { sender.deliver(chat, draft).await }
            },
            intake.clone(),
            launch.cancel.clone(),
        ),
    );
    let inbox = Arc::new(Inbox::new(
        Arc::clone(&launch.dispatcher),
        platform,
        username.clone(),
    ));
    match config.mode {
        TelegramMode::Polling => {
            // Telegram refuses getUpdates while a webhook is set.
            bot.delete_webhook()
                .await
                .map_err(|e| StartError::Failed(format!("telegram: deleteWebhook failed: {e}")))?;
            launch.watch(
                "telegram poller",
                polling::run(
                    bot,
                    inbox,
                    intake,
                    launch.tracker.clone(),
                    launch.cancel.clone(),
                    launch.fatal.clone(),
                ),
            );
        }
        TelegramMode::Webhook => {
            webhook::start(&bot, &config.webhook, inbox, intake, launch).await?
        }
    }
    tracing::info!(mode = ?config.mode, "telegram: connected as @{username}");
    Ok(())
}

/// The BotFather menu: every command with its description.
fn commands(catalog: &Catalog) -> Vec<BotCommand> {
    catalog
        .menu()
        .map(|spec| BotCommand::new(spec.name, spec.description))
        .collect()
}
