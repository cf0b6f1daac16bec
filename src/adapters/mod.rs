//! Platform adapters: each translates between one chat service and the core, and is started
//! by the app with a [`Launch`].

pub mod console;
pub mod discord;
pub mod slack;
pub mod telegram;

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::core::{Dispatcher, Platforms};

/// What every adapter is started with.
pub struct Launch<S> {
    pub dispatcher: Arc<Dispatcher<S>>,
    /// Each adapter registers its platform here once started, for scheduled work to reach it.
    pub platforms: Arc<Platforms>,
    /// Fires when the app stops: adapters stop taking new work.
    pub cancel: CancellationToken,
    /// Every long-running task goes here, so shutdown can wait for in-flight commands.
    pub tracker: TaskTracker,
    /// An adapter that cannot go on (its token was revoked) says why here, and the app stops.
    pub fatal: mpsc::UnboundedSender<String>,
}

/// Why an adapter could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config is wrong (a rejected token, an address already in use): exit code 2.
    #[error("{0}")]
    Config(String),
    /// The platform could not be reached or failed: exit code 1.
    #[error("{0}")]
    Failed(String),
}

/// At most `max` characters, ending in "…" when something was cut: every platform has limits
/// on the parts of a message.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    if max > 0 {
        out.push('…');
    }
    out
}

/// Escapes `&`, `<` and `>`: the only markup characters of Telegram's HTML mode, and the
/// control characters of Slack's mrkdwn (`<!channel>`, `<@U123>`, links).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}
