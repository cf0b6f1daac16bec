//! Commands from the gateway wait here, one queue per channel, for a slot of
//! `limits.max_in_flight`. Channels take turns (round-robin) and each runs one command at a
//! time, so a busy channel holds one slot however much it has waiting, and its replies wait
//! behind its own under the per-route rate limit (5 messages per 5 s per channel), never in
//! front of a quiet one.
//!
//! The gateway cannot be paused, so a full queue **sheds its oldest command**: that of the
//! channel itself when it holds [`PER_CHANNEL`], else the longest channel's when all channels
//! together hold `max_in_flight`. Sheds are counted and summed up in the once-a-minute log
//! line with the 429s the REST relay waited out. At shutdown, commands still waiting are
//! dropped at once and counted; those running get `limits.shutdown_grace`.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::adapters::Intake;

/// Events waiting per channel: about 20 s of replies at Discord's 5 per 5 s per channel.
pub const PER_CHANNEL: usize = 20;
/// How often the queue sums up what it did.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// One event's whole handling: the command and its reply.
pub type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

struct Lane {
    pending: VecDeque<Job>,
    /// One of this channel's events is being handled.
    running: bool,
}

/// Which event runs next, without the clock or the tasks, so tests can step through it.
///
/// Memory: at most `limit` waiting events in all (a gateway message is a few KiB), plus an
/// entry per channel with something waiting or running.
pub struct Lanes {
    lanes: HashMap<u64, Lane>,
    /// Channels with something waiting and nothing running, in turn order.
    turns: VecDeque<u64>,
    waiting: usize,
    limit: usize,
}

/// What became of a pushed event.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// Queued, and the oldest event of the named channel was dropped to make room.
    Shed(u64),
}

impl Lanes {
    /// At most `limit` events waiting, all channels together.
    pub fn new(limit: usize) -> Self {
        Self {
            lanes: HashMap::new(),
            turns: VecDeque::new(),
            waiting: 0,
            limit: limit.max(1),
        }
    }

    pub fn push(&mut self, channel: u64, job: Job) -> Pushed {
        let lane = self.lanes.entry(channel).or_insert_with(|| Lane {
            pending: VecDeque::new(),
            running: false,
        });
        let mut outcome = Pushed::Queued;
        if lane.pending.len() >= PER_CHANNEL {
            lane.pending.pop_front();
            self.waiting -= 1;
            outcome = Pushed::Shed(channel);
        }
        if lane.pending.is_empty() && !lane.running {
            self.turns.push_back(channel);
        }
        lane.pending.push_back(job);
        self.waiting += 1;
        if self.waiting > self.limit {
            let longest = self
                .lanes
                .iter_mut()
                .max_by_key(|(_, lane)| lane.pending.len())
                .map(|(id, lane)| {
                    lane.pending.pop_front();
                    (*id, lane.pending.is_empty(), lane.running)
                });
            if let Some((id, emptied, running)) = longest {
                self.waiting -= 1;
                if emptied {
                    self.turns.retain(|turn| *turn != id);
                    if !running {
                        self.lanes.remove(&id);
                    }
                }
                outcome = Pushed::Shed(id);
            }
        }
        outcome
    }

    /// The next event to run, from the channel whose turn it is.
    pub fn next(&mut self) -> Option<(u64, Job)> {
        let channel = self.turns.pop_front()?;
        let lane = self.lanes.get_mut(&channel)?;
        let job = lane.pending.pop_front()?;
        lane.running = true;
        self.waiting -= 1;
        Some((channel, job))
    }

    /// The channel's event is done: its next one, if any, takes its turn at the back.
    pub fn done(&mut self, channel: u64) {
        let Some(lane) = self.lanes.get_mut(&channel) else {
            return;
        };
        lane.running = false;
        if lane.pending.is_empty() {
            self.lanes.remove(&channel);
        } else {
            self.turns.push_back(channel);
        }
    }

    pub fn waiting(&self) -> usize {
        self.waiting
    }
}

/// Counts for the once-a-minute summary.
#[derive(Default)]
pub struct Tally {
    pub queued: AtomicU64,
    pub shed: AtomicU64,
    /// 429s the REST relay waited out.
    pub throttled: AtomicU64,
}

impl Tally {
    /// The summary line of the counts since the last one, `None` when nothing happened.
    fn summary(&self, waiting: usize) -> Option<String> {
        let take = |n: &AtomicU64| n.swap(0, Ordering::Relaxed);
        let (queued, shed, throttled) =
            (take(&self.queued), take(&self.shed), take(&self.throttled));
        (queued + shed + throttled > 0).then(|| {
            format!(
                "discord, last minute: {queued} commands queued, {shed} shed (oldest dropped, \
                 queue full), {throttled} waited out a 429; {waiting} waiting"
            )
        })
    }
}

/// The shared handle: event handlers push, one [`Queue::run`] task starts the jobs.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

struct Inner {
    lanes: Mutex<Lanes>,
    wake: Notify,
    tally: Arc<Tally>,
}

impl Queue {
    pub fn new(limit: usize, tally: Arc<Tally>) -> Self {
        Self {
            inner: Arc::new(Inner {
                lanes: Mutex::new(Lanes::new(limit)),
                wake: Notify::new(),
                tally,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lanes> {
        // Queues of futures: a panic mid-update leaves at worst a job lost.
        self.inner
            .lanes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands an event over; never waits.
    pub fn push(&self, channel: u64, job: Job) {
        let outcome = self.lock().push(channel, job);
        self.inner.tally.queued.fetch_add(1, Ordering::Relaxed);
        if let Pushed::Shed(channel) = outcome {
            self.inner.tally.shed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(channel, "discord: queue full, the oldest event shed");
        }
        self.inner.wake.notify_one();
    }

    /// Starts jobs, each holding an intake slot, on `work` until `cancel` fires; what is still
    /// waiting then is dropped and counted.
    pub async fn run(self, intake: Intake, work: TaskTracker, cancel: CancellationToken) {
        let mut summary = tokio::time::interval(SUMMARY_EVERY);
        summary.reset();
        loop {
            let slot = tokio::select! {
                slot = intake.take() => slot,
                () = cancel.cancelled() => break,
            };
            let next = self.lock().next();
            let Some((channel, job)) = next else {
                drop(slot);
                tokio::select! {
                    () = self.inner.wake.notified() => {}
                    _ = summary.tick() => self.summarize(),
                    () = cancel.cancelled() => break,
                }
                continue;
            };
            let finished = Finished {
                queue: self.clone(),
                channel,
            };
            work.spawn(async move {
                job.await;
                drop(slot);
                drop(finished);
            });
        }
        let left = self.lock().waiting();
        if left > 0 {
            intake.abandon(left);
            tracing::warn!("discord: stopping with {left} commands never handled: dropped");
        }
    }

    fn summarize(&self) {
        let waiting = self.lock().waiting();
        if let Some(line) = self.inner.tally.summary(waiting) {
            tracing::info!("{line}");
        }
    }
}

/// Frees the channel for its next event when its job ends, panicked or not: a channel left
/// marked running would never be served again.
struct Finished {
    queue: Queue,
    channel: u64,
}

impl Drop for Finished {
    fn drop(&mut self) {
        self.queue.lock().done(self.channel);
        self.queue.inner.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job that says which event it was when run.
    fn job(log: &Arc<Mutex<Vec<String>>>, name: &str) -> Job {
        let (log, name) = (Arc::clone(log), name.to_owned());
        Box::pin(async move { log.lock().unwrap().push(name) })
    }

    /// Runs the next job to its end, without marking its channel done.
    fn run_next(lanes: &mut Lanes) -> Option<u64> {
        let (channel, job) = lanes.next()?;
        futures_util::FutureExt::now_or_never(job).expect("the test jobs never wait");
        Some(channel)
    }

    #[test]
    fn a_busy_channel_runs_one_at_a_time_and_a_quiet_one_takes_its_turn() {
        let log = Arc::default();
        let mut lanes = Lanes::new(100);
        for i in 0..5 {
            lanes.push(1, job(&log, &format!("busy{i}")));
        }
        lanes.push(2, job(&log, "quiet"));
        assert_eq!(run_next(&mut lanes), Some(1));
        assert_eq!(
            run_next(&mut lanes),
            Some(2),
            "the busy channel's next waits for its first; the quiet one goes"
        );
        assert_eq!(run_next(&mut lanes), None, "both channels are running");
        lanes.done(2);
        lanes.done(1);
        assert_eq!(run_next(&mut lanes), Some(1));
        assert_eq!(*log.lock().unwrap(), ["busy0", "quiet", "busy1"]);
        assert_eq!(lanes.waiting(), 3);
    }

    #[test]
    fn a_full_channel_sheds_its_oldest_and_a_full_queue_the_longest_channels_oldest() {
        let log = Arc::default();
        let mut lanes = Lanes::new(PER_CHANNEL + 2);
        for i in 0..PER_CHANNEL {
            assert_eq!(lanes.push(1, job(&log, &format!("a{i}"))), Pushed::Queued);
        }
        assert_eq!(lanes.push(1, job(&log, "a-new")), Pushed::Shed(1));
        assert_eq!(lanes.waiting(), PER_CHANNEL);
        assert_eq!(lanes.push(2, job(&log, "b0")), Pushed::Queued);
        assert_eq!(lanes.push(3, job(&log, "c0")), Pushed::Queued);
        assert_eq!(
            lanes.push(4, job(&log, "d0")),
            Pushed::Shed(1),
            "the busy channel pays for the quiet ones"
        );
        assert_eq!(lanes.waiting(), PER_CHANNEL + 2);
        while let Some(channel) = run_next(&mut lanes) {
            lanes.done(channel);
        }
        let log = log.lock().unwrap();
        assert_eq!(log[0], "a2", "a0 and a1 were shed");
        assert_eq!(log.len(), PER_CHANNEL + 2);
        assert!(log.contains(&"a-new".to_owned()));
        assert!(
            ["b0", "c0", "d0"]
                .iter()
                .all(|q| log.contains(&q.to_string()))
        );
        assert!(lanes.lanes.is_empty(), "drained channels are forgotten");
    }

    #[test]
    fn the_summary_sums_up_the_minute_and_then_starts_again() {
        let tally = Tally::default();
        assert_eq!(tally.summary(0), None, "nothing to say, no line");
        tally.queued.fetch_add(40, Ordering::Relaxed);
        tally.shed.fetch_add(3, Ordering::Relaxed);
        tally.throttled.fetch_add(2, Ordering::Relaxed);
        assert_eq!(
            tally.summary(7).as_deref(),
            Some(
                "discord, last minute: 40 commands queued, 3 shed (oldest dropped, queue full), \
                 2 waited out a 429; 7 waiting"
            )
        );
        assert_eq!(tally.summary(7), None);
    }
}
