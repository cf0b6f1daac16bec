//! Owner alerts: the first consumer of the dispatcher's error reports. Each owner in
//! `bot.owners` gets a direct message naming the error id, the command and the user, and so
//! does `bot.error_channel` if set; the log holds the details under the same id.
//!
//! A bug that fires on every command must not flood the owners: each kind of error (the same
//! command failing the same way) alerts at most once a minute, and the next alert says how many
//! were held back.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use super::Services;
use crate::core::{ChannelId, ErrorReport, Reply, UserId};

/// At most one alert per kind of error in this long.
pub const EVERY: chrono::TimeDelta = chrono::TimeDelta::minutes(1);
/// Kinds of error remembered within a minute. Each entry is a command name, an error message
/// and a count (a few hundred bytes): at most about 100 KB. A storm of more distinct kinds than
/// this is only logged until the minute has passed.
pub const MAX_KINDS: usize = 256;

/// Decides which reports become alerts.
#[derive(Default)]
struct Throttle {
    /// Per kind: when it last alerted, and how many reports were held back since.
    kinds: HashMap<(&'static str, String), (DateTime<Utc>, u32)>,
}

impl Throttle {
    /// `Some(held back since the last alert)` if this report is to be sent now.
    fn admit(&mut self, report: &ErrorReport, now: DateTime<Utc>) -> Option<u32> {
        // A kind is remembered a minute longer than it throttles, so that a held-back count is
        // still told if the error comes back soon after.
        self.kinds.retain(|_, (at, _)| now - *at < EVERY * 2);
        let key = (report.command, report.message.clone());
        let full = self.kinds.len() >= MAX_KINDS;
        match self.kinds.get_mut(&key) {
            Some((at, held)) if now - *at < EVERY => {
                *held += 1;
                None
            }
            Some((at, held)) => {
                let before = std::mem::take(held);
                *at = now;
                Some(before)
            }
            None if full => None,
            None => {
                self.kinds.insert(key, (now, 0));
                Some(0)
            }
        }
    }
}

fn alert(report: &ErrorReport, held_back: u32) -> Reply {
    let mut text = format!(
        "Error {} in /{} used by {}. The log has the details under that id.",
        report.id, report.command, report.user
    );
    if held_back > 0 {
        text.push_str(&format!(
            " ({held_back} more like it since the last alert were not sent.)"
        ));
    }
    Reply::error(text).title("cogbox error")
}

/// Alerts `owners` and `channel` about each report from `errors` until `cancel`.
pub async fn run(
    services: Arc<Services>,
    mut errors: broadcast::Receiver<ErrorReport>,
    owners: Vec<UserId>,
    channel: Option<ChannelId>,
    cancel: CancellationToken,
) {
    let mut throttle = Throttle::default();
    loop {
        let report = match cancel.run_until_cancelled(errors.recv()).await {
            None | Some(Err(RecvError::Closed)) => return,
            Some(Err(RecvError::Lagged(missed))) => {
                tracing::warn!("owner alerts: {missed} error reports came too fast to alert");
                continue;
            }
            Some(Ok(report)) => report,
        };
        let Some(held_back) = throttle.admit(&report, services.clock.now()) else {
            continue;
        };
        let reply = alert(&report, held_back);
        for owner in &owners {
            let sent = match services.platforms.get(owner.platform) {
                Some(platform) => platform.direct_message(*owner, &reply).await,
                None => continue,
            };
            if let Err(e) = sent {
                tracing::warn!("owner alert to {owner} failed: {e}");
            }
        }
        if let Some(channel) = channel {
            if let Some(platform) = services.platforms.get(channel.platform) {
                if let Err(e) = platform.send(channel, &reply).await {
                    tracing::warn!("error alert to bot.error_channel {channel} failed: {e}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{
        Capability, CommunityId, ErrorId, ManualClock, Member, ModAction, ModOutcome, Platform,
        PlatformError, PlatformKind, Platforms, UserRef,
    };
    use crate::services::Store;
    use async_trait::async_trait;
    use std::sync::Mutex;
    use std::time::Duration;

    const OWNER: UserId = UserId::new(PlatformKind::Telegram, 7);
    const OFFLINE_OWNER: UserId = UserId::new(PlatformKind::Discord, 8);
    const USER: UserId = UserId::new(PlatformKind::Telegram, 42);
    const CHANNEL: ChannelId = ChannelId::new(PlatformKind::Telegram, -100);

    /// Records what it is asked to send; nothing else is used by alerts.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    #[async_trait]
    impl Platform for Recorder {
        fn kind(&self) -> PlatformKind {
            PlatformKind::Telegram
        }
        fn capability_name(&self, _: Capability) -> &'static str {
            "none"
        }
        async fn has_capability(
            &self,
            _: CommunityId,
            _: ChannelId,
            _: UserId,
            _: Capability,
        ) -> Result<bool, PlatformError> {
            Ok(false)
        }
        async fn resolve_user(
            &self,
            _: Option<CommunityId>,
            _: &UserRef,
        ) -> Result<Option<Member>, PlatformError> {
            Ok(None)
        }
        async fn moderate(
            &self,
            _: CommunityId,
            _: Option<ChannelId>,
            _: UserId,
            _: &Member,
            _: &ModAction,
            _: Option<&str>,
            _: Option<&Reply>,
        ) -> Result<ModOutcome, PlatformError> {
            Err(PlatformError::Refused("not here".into()))
        }
        async fn purge(&self, _: CommunityId, _: ChannelId, _: u32) -> Result<u32, PlatformError> {
            Ok(0)
        }
        async fn direct_message(&self, user: UserId, reply: &Reply) -> Result<(), PlatformError> {
            self.0
                .lock()
                .unwrap()
                .push(format!("dm {user}: {}", reply.text));
            Ok(())
        }
        async fn send(&self, channel: ChannelId, reply: &Reply) -> Result<(), PlatformError> {
            self.0
                .lock()
                .unwrap()
                .push(format!("channel {channel}: {}", reply.text));
            Ok(())
        }
    }

    fn report(command: &'static str, message: &str) -> ErrorReport {
        ErrorReport {
            id: ErrorId::new(),
            command,
            user: USER,
            message: message.into(),
        }
    }

    #[tokio::test]
    async fn owners_and_the_error_channel_get_one_alert_per_kind_a_minute() {
        let clock = Arc::new(ManualClock::new(
            DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        ));
        let platforms = Arc::new(Platforms::default());
        let recorder = Arc::new(Recorder::default());
        platforms.register(recorder.clone());
        let services = Arc::new(Services::new(
            Store::in_memory().unwrap(),
            Vec::new(),
            clock.clone(),
            platforms,
        ));
        let (tx, rx) = broadcast::channel(16);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(
            services,
            rx,
            vec![OWNER, OFFLINE_OWNER],
            Some(CHANNEL),
            cancel.clone(),
        ));
        let sent = || recorder.0.lock().unwrap().clone();
        let wait_for = |n: usize| async move {
            for _ in 0..1000 {
                if sent().len() >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            panic!("expected {n} messages, got {:?}", sent());
        };

        let first = report("pay", "database is locked");
        tx.send(first.clone()).unwrap();
        wait_for(2).await;
        let expected = format!(
            "Error {} in /pay used by telegram:42. The log has the details under that id.",
            first.id
        );
        assert_eq!(
            sent(),
            [
                format!("dm telegram:7: {expected}"),
                format!("channel telegram:-100: {expected}")
            ],
            "the owner on a platform that is not running is skipped"
        );

        // The same error twice more within the minute: held back. Another kind: sent.
        tx.send(report("pay", "database is locked")).unwrap();
        tx.send(report("pay", "database is locked")).unwrap();
        tx.send(report("daily", "database is locked")).unwrap();
        wait_for(4).await;
        assert!(sent()[2].contains("in /daily"), "{:?}", sent());

        clock.advance(Duration::from_secs(60));
        let again = report("pay", "database is locked");
        tx.send(again.clone()).unwrap();
        wait_for(6).await;
        assert!(
            sent()[4].contains(&format!(
                "Error {} in /pay used by telegram:42. The log has the details under that id. \
                 (2 more like it since the last alert were not sent.)",
                again.id
            )),
            "{:?}",
            sent()
        );
        assert_eq!(sent().len(), 6);
        cancel.cancel();
        task.await.unwrap();
    }
}
