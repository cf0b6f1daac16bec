//! Platform adapters: each translates between one chat service and the core, and is started
//! by the app with a [`Launch`].

pub mod console;
pub mod discord;
mod intake;
pub mod slack;
mod supervise;
pub mod telegram;

pub use intake::Intake;

use std::sync::{Arc, Mutex, PoisonError};

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
    /// An adapter that cannot go on (its token was revoked, a task panicked) says why here,
    /// and the app stops with that error's exit code.
    pub fatal: mpsc::UnboundedSender<StartError>,
    /// `limits.max_in_flight`: updates each platform may hold at once.
    pub max_in_flight: usize,
    /// Every platform's intake, so the app can tell at shutdown how much was left unanswered.
    pub intakes: Mutex<Vec<Intake>>,
}

impl<S> Launch<S> {
    /// A new bounded intake for `platform`, registered for the shutdown count.
    pub fn intake(&self, platform: &'static str) -> Intake {
        let intake = Intake::new(platform, self.max_in_flight);
        self.intakes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(intake.clone());
        intake
    }

    /// Runs a platform's long-running task (a poller, a webhook server, an outbox) watched:
    /// see [`supervise::watch`].
    pub fn watch<F>(&self, name: &'static str, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        supervise::watch(&self.tracker, &self.cancel, &self.fatal, name, task);
    }

    /// Updates taken and not answered, over all platforms.
    pub fn unanswered(&self) -> usize {
        let intakes = self.intakes.lock().unwrap_or_else(PoisonError::into_inner);
        intakes.iter().map(Intake::busy).sum()
    }
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
