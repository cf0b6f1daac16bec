//! Slack, in Socket Mode or over signed HTTP events, from the same binary as the other two.
//!
//! The adapter speaks to Slack with a small client of its own ([`api`]) on the reqwest and
//! tokio-tungstenite the binary already carries for Discord and Telegram, rather than through
//! slack-morphism: that crate brings a second HTTP stack (hyper 1 with its own rustls
//! connector), which the 15 MB binary budget has no room for, and five of its behaviours
//! would each need working around here (no `auth.test`, a bad app token retried for ever,
//! envelopes acked only after the handler, two connections, an unlimited events body).
//! `tests/fake_slack_selftest.rs` still proves the fake Slack against slack-morphism.
//!
//! # Layout
//! - [`api`]: Web API calls, rate tiers, per-channel pacing, `Retry-After`.
//! - [`socket`]: Socket Mode: ack first, reconnect on `disconnect` and drops.
//! - [`events`]: events mode: the signed HTTP listener.
//! - [`inbound`]: slash commands, mentions, direct messages and buttons into the dispatcher.
//! - [`platform`]: permissions, kick, cogbox's own bans, replies.
//! - [`signature`], [`render`], [`mentions`], [`manifest`]: the pure pieces.

mod api;
mod events;
mod inbound;
pub mod manifest;
pub mod mentions;
mod platform;
pub mod render;
pub mod signature;
mod socket;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use super::{Intake, Launch, StartError};
use crate::config::{SlackConfig, SlackMode};
use crate::core::State;
use api::Api;
use inbound::Inbox;
use platform::SlackPlatform;
use signature::Verifier;
use socket::Socket;

/// Checks the bot token (`auth.test`), then connects in the configured mode.
pub async fn start<S: State>(
    config: &SlackConfig,
    bot_token: &SecretString,
    launch: &Launch<S>,
) -> Result<(), StartError> {
    let api = Arc::new(
        Api::new(&config.api_url, bot_token.clone())
            .map_err(|e| StartError::Failed(format!("slack: {e}")))?,
    );
    // Nothing else is opened with a token Slack refuses: one line, and exit code 2.
    let me = api.call("auth.test", &[]).await.map_err(|e| {
        if e.is_auth() {
            StartError::Config(format!(
                "slack.bot_token was rejected by Slack ({}): copy the Bot User OAuth Token (xoxb-...) from the app's OAuth & Permissions page again",
                e.code().unwrap_or_default()
            ))
        } else {
            StartError::Failed(format!("slack: cannot reach the Web API at {}: {e}", config.api_url))
        }
    })?;
    let bot_user = me["user_id"].as_str().unwrap_or_default().to_owned();
    let team = me["team"].as_str().unwrap_or_default().to_owned();
    let platform = Arc::new(SlackPlatform::new(
        Arc::clone(&api),
        bot_user,
        &config.command,
    ));
    let inbox = Arc::new(Inbox::new(
        Arc::clone(&launch.dispatcher),
        platform.clone(),
        team.clone(),
    ));
    let intake = launch.intake("slack");
    launch.watch(
        "slack summary",
        summarize(Arc::clone(&api), intake.clone(), launch.cancel.clone()),
    );
    match config.mode {
        SlackMode::Socket => {
            let app_token = config.app_token.clone().ok_or_else(|| {
                StartError::Config("slack.app_token is needed in socket mode".into())
            })?;
            let url = socket::open(&api, &app_token).await?;
            let socket = Socket {
                api,
                app_token,
                inbox,
                intake,
                tracker: launch.tracker.clone(),
                cancel: launch.cancel.clone(),
            };
            let fatal = launch.fatal.clone();
            launch.watch("slack socket mode", async move {
                if let Err(e) = socket.run(url).await {
                    let _ = fatal.send(StartError::Config(e));
                }
            });
        }
        SlackMode::Events => {
            let secret = config.signing_secret.as_ref().ok_or_else(|| {
                StartError::Config("slack.signing_secret is needed in events mode".into())
            })?;
            events::start(&config.events, Verifier::new(secret), inbox, intake, launch).await?;
        }
    }
    launch.platforms.register(platform);
    tracing::info!(mode = ?config.mode, "slack: connected to {team}");
    Ok(())
}

/// How often what went wrong under load is summed up in the log.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// One line a minute when deliveries were turned away for want of a slot (left unacked, or
/// answered 503: Slack delivers them again) or calls met a 429; nothing when all went well.
async fn summarize(api: Arc<Api>, intake: Intake, cancel: CancellationToken) {
    let mut every = tokio::time::interval(SUMMARY_EVERY);
    every.reset();
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = cancel.cancelled() => return,
        }
        let (busy, limited) = (
            intake.take_refused(),
            api.rate_limited.swap(0, Ordering::Relaxed),
        );
        if let Some(line) = summary(busy, limited) {
            tracing::warn!("slack: in the last minute {line}");
        }
    }
}

fn summary(busy: u64, limited: u64) -> Option<String> {
    let mut parts = Vec::new();
    if busy > 0 {
        parts.push(format!(
            "{busy} deliveries found no free slot and were left for Slack to send again"
        ));
    }
    if limited > 0 {
        parts.push(format!("{limited} calls met a 429 and waited"));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_what_happened_and_is_silent_otherwise() {
        assert_eq!(summary(0, 0), None);
        assert_eq!(
            summary(3, 0).as_deref(),
            Some("3 deliveries found no free slot and were left for Slack to send again")
        );
        assert_eq!(
            summary(1, 2).as_deref(),
            Some(
                "1 deliveries found no free slot and were left for Slack to send again; 2 calls met a 429 and waited"
            )
        );
    }
}
