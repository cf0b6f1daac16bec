//! Long-running tasks are watched: one that panics, or ends while the app is still running,
//! is reported and stops the app with exit code 1 (a service manager restarts it), never
//! leaving a bot that is alive but deaf.

use std::future::Future;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::StartError;

pub fn watch<F>(
    tracker: &TaskTracker,
    cancel: &CancellationToken,
    fatal: &mpsc::UnboundedSender<StartError>,
    name: &'static str,
    task: F,
) where
    F: Future<Output = ()> + Send + 'static,
{
    let (cancel, fatal) = (cancel.clone(), fatal.clone());
    let task = tokio::spawn(task);
    tracker.spawn(async move {
        let why = match task.await {
            Ok(()) if cancel.is_cancelled() => return,
            Ok(()) => format!("{name} stopped unexpectedly"),
            Err(e) if e.is_panic() => {
                let panic = e.into_panic();
                let text = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                format!("{name} panicked: {text}")
            }
            Err(e) => format!("{name} ended: {e}"),
        };
        let _ = fatal.send(StartError::Failed(why));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn outcome(
        task: impl Future<Output = ()> + Send + 'static,
        stop: bool,
    ) -> Option<String> {
        let (tracker, cancel) = (TaskTracker::new(), CancellationToken::new());
        let (fatal, mut reports) = mpsc::unbounded_channel();
        if stop {
            cancel.cancel();
        }
        watch(&tracker, &cancel, &fatal, "telegram poller", task);
        tracker.close();
        tracker.wait().await;
        reports.try_recv().ok().map(|e| e.to_string())
    }

    #[tokio::test]
    async fn a_panic_or_an_early_end_is_reported_and_a_stop_is_not() {
        assert_eq!(
            outcome(async { panic!("bad entity") }, false)
                .await
                .as_deref(),
            Some("telegram poller panicked: bad entity")
        );
        assert_eq!(
            outcome(async {}, false).await.as_deref(),
            Some("telegram poller stopped unexpectedly")
        );
        assert_eq!(outcome(async {}, true).await, None);
    }
}
