//! Socket Mode: `apps.connections.open` with the app token, then a WebSocket on which Slack
//! sends envelopes. Each envelope is acked by its `envelope_id` as soon as it has an intake slot,
//! before its command runs, because Slack wants an ack within 3 seconds. One that finds no slot:
//! an event is left unacked, so Slack delivers it again later (the same back-pressure as the
//! webhooks' 503); a slash command, which Slack never redelivers, is acked with a "busy" answer
//! for its caller; a button press is acked and dropped (the member may press again). A
//! `disconnect` (`refresh_requested`, `warning`) is followed by a new connection at once; a
//! dropped connection or a failed open by one after a growing pause.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::api::{Api, ApiError};
use super::inbound::{Inbound, Inbox, busy};
use crate::adapters::{Intake, StartError};
use crate::core::State;

/// Pauses after a failure, doubling from the first to the last.
const FIRST_PAUSE: Duration = Duration::from_millis(500);
const LAST_PAUSE: Duration = Duration::from_secs(30);
/// A connection that sends nothing (not even Slack's pings) for this long is taken for dead.
const SILENCE: Duration = Duration::from_secs(120);
/// Envelopes are a few kilobytes; a frame near this is not from Slack.
const MAX_FRAME: usize = 1024 * 1024;

/// Why a connection ended.
enum End {
    /// Slack asked for a new connection.
    Refresh(String),
    /// The connection broke or never opened.
    Lost(String),
    Stopped,
}

/// A Socket Mode URL from `apps.connections.open`, asked with the app token.
async fn connection_url(api: &Api, app_token: &SecretString) -> Result<String, ApiError> {
    let answer = api.call_as(app_token, "apps.connections.open", &[]).await?;
    answer["url"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| ApiError::Network("apps.connections.open", "no URL in the answer".into()))
}

/// The first Socket Mode URL, at start-up: a rejected token is a config error.
pub async fn open(api: &Api, app_token: &SecretString) -> Result<String, StartError> {
    connection_url(api, app_token).await.map_err(|e| {
        if e.is_auth() {
            StartError::Config(format!(
                "slack.app_token was rejected by Slack ({}): create an app-level token with the connections:write scope (xapp-...)",
                e.code().unwrap_or_default()
            ))
        } else {
            StartError::Failed(format!("slack: {e}"))
        }
    })
}

pub struct Socket<S> {
    pub api: Arc<Api>,
    pub app_token: SecretString,
    pub inbox: Arc<Inbox<S>>,
    pub intake: Intake,
    pub tracker: TaskTracker,
    pub cancel: CancellationToken,
}

impl<S: State> Socket<S> {
    /// Keeps one connection open until the app stops; `first` is the URL opened at start-up.
    pub async fn run(self, first: String) -> Result<(), String> {
        let mut url = Some(first);
        let mut pause = FIRST_PAUSE;
        loop {
            let url_now = match url.take() {
                Some(url) => url,
                None => match connection_url(&self.api, &self.app_token).await {
                    Ok(url) => url,
                    Err(e) if e.is_auth() => {
                        return Err(format!("slack: the app token stopped working: {e}"));
                    }
                    Err(e) => {
                        tracing::warn!("slack: cannot open a Socket Mode connection: {e}");
                        if self.wait(&mut pause).await {
                            return Ok(());
                        }
                        continue;
                    }
                },
            };
            match self.connection(&url_now).await {
                End::Stopped => return Ok(()),
                End::Refresh(reason) => {
                    tracing::info!("slack: Slack asked for a new connection ({reason})");
                    pause = FIRST_PAUSE;
                }
                End::Lost(why) => {
                    tracing::warn!("slack: Socket Mode connection lost: {why}");
                    if self.wait(&mut pause).await {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Waits out `pause` (then doubles it); true when the app stopped meanwhile.
    async fn wait(&self, pause: &mut Duration) -> bool {
        let stopped = tokio::select! {
            () = tokio::time::sleep(*pause) => false,
            () = self.cancel.cancelled() => true,
        };
        *pause = (*pause * 2).min(LAST_PAUSE);
        stopped
    }

    async fn connection(&self, url: &str) -> End {
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
            max_message_size: Some(MAX_FRAME),
            max_frame_size: Some(MAX_FRAME),
            ..Default::default()
        };
        let connect = tokio_tungstenite::connect_async_with_config(url, Some(config), false);
        let (mut socket, _) = tokio::select! {
            connected = connect => match connected {
                Ok(connected) => connected,
                Err(e) => return End::Lost(format!("cannot connect: {e}")),
            },
            () = self.cancel.cancelled() => return End::Stopped,
        };
        loop {
            let frame = tokio::select! {
                frame = tokio::time::timeout(SILENCE, socket.next()) => frame,
                () = self.cancel.cancelled() => {
                    let _ = socket.close(None).await;
                    return End::Stopped;
                }
            };
            let text = match frame {
                Err(_) => return End::Lost(format!("nothing heard for {SILENCE:?}")),
                Ok(None) => return End::Lost("closed by Slack".into()),
                Ok(Some(Err(e))) => return End::Lost(e.to_string()),
                Ok(Some(Ok(Message::Text(text)))) => text,
                Ok(Some(Ok(Message::Close(_)))) => return End::Lost("closed by Slack".into()),
                // Pings are answered by tungstenite on the next read or write.
                Ok(Some(Ok(_))) => continue,
            };
            let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                tracing::warn!("slack: a Socket Mode frame that is not JSON was ignored");
                continue;
            };
            match frame["type"].as_str().unwrap_or_default() {
                "hello" => tracing::debug!("slack: Socket Mode connection ready"),
                "disconnect" => {
                    let reason = frame["reason"].as_str().unwrap_or("no reason").to_owned();
                    let _ = socket.close(None).await;
                    return End::Refresh(reason);
                }
                kind => {
                    let Some(envelope) = frame["envelope_id"].as_str() else {
                        continue;
                    };
                    let slot = self.intake.try_take();
                    let ack = match (&slot, kind) {
                        (None, "events_api") => {
                            tracing::warn!(
                                "slack: busy, event {envelope} left for Slack to deliver again"
                            );
                            continue;
                        }
                        (None, "slash_commands") => {
                            json!({"envelope_id": envelope, "payload": busy()})
                        }
                        _ => json!({"envelope_id": envelope}),
                    };
                    if let Err(e) = socket.send(Message::Text(ack.to_string())).await {
                        return End::Lost(format!("cannot ack: {e}"));
                    }
                    let Some(slot) = slot else {
                        tracing::warn!("slack: busy, {kind} {envelope} answered and dropped");
                        continue;
                    };
                    let payload = frame["payload"].clone();
                    let inbound = match kind {
                        "slash_commands" => Inbound::Command(payload),
                        "events_api" => Inbound::Event(payload),
                        "interactive" => Inbound::Interaction(payload),
                        _ => continue,
                    };
                    let inbox = Arc::clone(&self.inbox);
                    self.tracker
                        .spawn(async move { inbox.handle(inbound, slot).await });
                }
            }
        }
    }
}
