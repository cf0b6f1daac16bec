//! Replies wait here, one queue per chat, and a single sender releases them within Telegram's
//! limits: one message a second per chat, 20 a minute per group (private chats have no such
//! pace), 30 a second overall. Chats take turns (round-robin), so a busy group never delays a
//! quiet chat: its replies wait behind its own, not everyone's.
//!
//! When a chat's queue is full the new reply is **coalesced** into the last one waiting there
//! (texts joined by a blank line), so a burst in one group leaves as fewer, longer messages
//! instead of an ever-longer wait. A reply that cannot be merged (buttons, or the joined text
//! would pass Telegram's 4096-character limit) is dropped, counted, and summed up in the
//! once-a-minute log line: the chat is already flooded and one more answer would only wait.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use teloxide::types::{ChatId, InlineKeyboardMarkup, MessageId};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot};
use tokio_util::sync::CancellationToken;

use crate::adapters::Intake;
use crate::core::PlatformError;

/// Replies waiting per chat: a minute of a group's pace. Every waiting reply holds an intake
/// slot, so all chats together hold at most `limits.max_in_flight` of them (4 KiB each at most).
pub const PER_CHAT: usize = 20;
/// One message a second in any one chat.
const CHAT_GAP: Duration = Duration::from_secs(1);
/// At most `GROUP_PER_MINUTE` messages in any minute, in each group.
const GROUP_PER_MINUTE: usize = 20;
const MINUTE: Duration = Duration::from_secs(60);
/// At most `OVERALL_PER_SECOND` messages in any second, all chats together: a little under
/// Telegram's 30, because sends released exactly a second apart can arrive closer together.
const OVERALL_PER_SECOND: usize = 28;
const SECOND: Duration = Duration::from_secs(1);
/// HTTP sends at once: enough for 30/s over a slow uplink (~250 ms per call).
const CONCURRENT_SENDS: usize = 8;
/// How often each chat's message may be retried after a 429 before it is given up.
const RETRIES: u8 = 3;
/// Telegram's limit on a message's text.
const MAX_TEXT: usize = 4096;
/// How often the outbox sums up what it did.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// What is sent: the message itself.
#[derive(Clone)]
pub struct Draft {
    /// HTML, already rendered.
    pub text: String,
    pub markup: Option<InlineKeyboardMarkup>,
    pub reply_to: Option<MessageId>,
    /// Replaces the text and buttons of this message of the bot's instead of sending anew.
    pub edit: Option<MessageId>,
}

/// A message waiting to be sent, with who waits for it.
pub struct Outgoing {
    pub draft: Draft,
    /// Told the outcome, for a caller that must know (a notice sent before a ban).
    pub done: Option<oneshot::Sender<Result<(), PlatformError>>>,
    /// The intake slots of the updates this answers: freed once it is sent (or given up).
    pub held: Vec<OwnedSemaphorePermit>,
    retries: u8,
}

impl Outgoing {
    pub fn new(text: String) -> Self {
        Self {
            draft: Draft {
                text,
                markup: None,
                reply_to: None,
                edit: None,
            },
            done: None,
            held: Vec::new(),
            retries: 0,
        }
    }

    /// Appends `other` if both are plain text that fits one message.
    fn absorb(&mut self, other: Outgoing) -> Result<(), Outgoing> {
        let plain =
            |o: &Outgoing| o.draft.markup.is_none() && o.done.is_none() && o.draft.edit.is_none();
        let length = self.draft.text.chars().count() + 2 + other.draft.text.chars().count();
        if !plain(self) || !plain(&other) || length > MAX_TEXT {
            return Err(other);
        }
        self.draft.text.push_str("\n\n");
        self.draft.text.push_str(&other.draft.text);
        // The merged reply costs no more than the message it joined: its slot is free again,
        // so a flooded chat holds at most `PER_CHAT` slots however long the flood lasts.
        drop(other.held);
        Ok(())
    }
}

/// What became of a reply handed to the outbox.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    Coalesced,
    Dropped,
}

/// How a send went, as the sender reports it.
pub enum Delivery {
    Sent,
    /// Telegram answered 429: wait this long before the chat's next message.
    RetryAfter(Duration),
    /// Telegram answered, and said no (the bot was removed from the chat, the chat is gone):
    /// sending again would not help, but the sender may go elsewhere.
    Refused(PlatformError),
    Failed,
}

struct ChatQueue {
    pending: VecDeque<Outgoing>,
    group: bool,
    /// A message to this chat is on its way: the next one waits for it, then a second more,
    /// so two sends can never reach Telegram less than a second apart, whatever the network.
    sending: bool,
    /// Not before this instant (1/s, or a 429's wait).
    next_at: Instant,
    /// Sends in the last minute, oldest first (groups only; at most `GROUP_PER_MINUTE`).
    minute: VecDeque<Instant>,
}

impl ChatQueue {
    /// When this chat may send next; `None` while its last message is on its way.
    fn ready_at(&self) -> Option<Instant> {
        if self.sending {
            return None;
        }
        Some(match self.minute.front() {
            Some(oldest) if self.group && self.minute.len() >= GROUP_PER_MINUTE => {
                self.next_at.max(*oldest + MINUTE)
            }
            _ => self.next_at,
        })
    }

    fn idle(&self, now: Instant) -> bool {
        self.pending.is_empty()
            && !self.sending
            && self.next_at <= now
            && self.minute.back().is_none_or(|last| *last + MINUTE <= now)
    }
}

/// The pacing rules, on an explicit clock so tests can step through time.
///
/// Memory: `PER_CHAT` replies per chat with something waiting, plus a few dozen bytes of pacing
/// state for each chat sent to in the last minute (at most 30 × 60 = 1,800 chats).
#[derive(Default)]
pub struct Schedule {
    chats: HashMap<ChatId, ChatQueue>,
    /// Chats with something waiting, in turn order.
    turns: VecDeque<ChatId>,
    /// Sends in the last second, all chats (at most `OVERALL_PER_SECOND`).
    second: VecDeque<Instant>,
    last_tidy: Option<Instant>,
}

impl Schedule {
    pub fn push(&mut self, chat: ChatId, group: bool, item: Outgoing, now: Instant) -> Pushed {
        let queue = self.chats.entry(chat).or_insert_with(|| ChatQueue {
            pending: VecDeque::new(),
            group,
            sending: false,
            next_at: now,
            minute: VecDeque::new(),
        });
        let same_edit = item.draft.edit.and_then(|edit| {
            queue
                .pending
                .iter_mut()
                .find(|waiting| waiting.draft.edit == Some(edit) && waiting.done.is_none())
        });
        if let Some(waiting) = same_edit {
            // The older edit's slots are freed: the newer one answers for them.
            *waiting = item;
            return Pushed::Coalesced;
        }
        if queue.pending.is_empty() {
            self.turns.push_back(chat);
        }
        if queue.pending.len() < PER_CHAT {
            queue.pending.push_back(item);
            return Pushed::Queued;
        }
        let last = queue
            .pending
            .back_mut()
            .expect("a full queue has a last item");
        match last.absorb(item) {
            Ok(()) => Pushed::Coalesced,
            Err(_dropped) => Pushed::Dropped,
        }
    }

    /// The next message to send now, round-robin over the chats; else when to look again
    /// (`None`: nothing is waiting).
    pub fn next(&mut self, now: Instant) -> Result<(ChatId, Outgoing), Option<Instant>> {
        self.tidy(now);
        while self.second.front().is_some_and(|t| *t + SECOND <= now) {
            self.second.pop_front();
        }
        if self.turns.is_empty() {
            return Err(None);
        }
        if self.second.len() >= OVERALL_PER_SECOND {
            return Err(Some(self.second[0] + SECOND));
        }
        let mut earliest: Option<Instant> = None;
        for turn in 0..self.turns.len() {
            let chat = self.turns[turn];
            let queue = self.chats.get_mut(&chat).expect("a chat in turn is known");
            while queue.minute.front().is_some_and(|t| *t + MINUTE <= now) {
                queue.minute.pop_front();
            }
            let Some(at) = queue.ready_at() else {
                continue;
            };
            if at > now {
                earliest = Some(earliest.map_or(at, |e| e.min(at)));
                continue;
            }
            let item = queue
                .pending
                .pop_front()
                .expect("a chat in turn has a reply");
            queue.sending = true;
            if queue.group {
                queue.minute.push_back(now);
            }
            self.second.push_back(now);
            self.turns.remove(turn);
            if !queue.pending.is_empty() {
                self.turns.push_back(chat);
            }
            return Ok((chat, item));
        }
        Err(earliest)
    }

    /// The chat's message is through (sent or given up): its next may go a second from now.
    pub fn sent(&mut self, chat: ChatId, now: Instant) {
        if let Some(queue) = self.chats.get_mut(&chat) {
            queue.sending = false;
            queue.next_at = now + CHAT_GAP;
        }
    }

    /// Puts a message that met a 429 back at the head of its chat, which waits `wait`.
    pub fn retry(&mut self, chat: ChatId, mut item: Outgoing, wait: Duration, now: Instant) {
        item.retries += 1;
        let Some(queue) = self.chats.get_mut(&chat) else {
            return;
        };
        queue.sending = false;
        queue.next_at = now + wait.max(CHAT_GAP);
        if queue.pending.is_empty() {
            self.turns.push_back(chat);
        }
        queue.pending.push_front(item);
    }

    /// Messages waiting, all chats.
    pub fn waiting(&self) -> usize {
        self.chats.values().map(|q| q.pending.len()).sum()
    }

    /// Forgets chats with nothing waiting and no pace to keep, once a second.
    fn tidy(&mut self, now: Instant) {
        if self.last_tidy.is_some_and(|t| t + SECOND > now) {
            return;
        }
        self.last_tidy = Some(now);
        self.chats.retain(|_, queue| !queue.idle(now));
    }
}

/// Counts for the once-a-minute summary.
#[derive(Default)]
struct Tally {
    queued: u64,
    coalesced: u64,
    dropped: u64,
    throttled: u64,
    failed: u64,
}

/// The shared handle: handlers push, one [`Outbox::run`] task sends.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    schedule: Mutex<(Schedule, Tally)>,
    wake: Notify,
}

impl Default for Outbox {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                schedule: Mutex::new((Schedule::default(), Tally::default())),
                wake: Notify::new(),
            }),
        }
    }
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, (Schedule, Tally)> {
        self.inner
            .schedule
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands a message over; never waits.
    pub fn push(&self, chat: ChatId, item: Outgoing) -> Pushed {
        let group = !chat.is_user();
        let outcome = {
            let (schedule, tally) = &mut *self.lock();
            let outcome = schedule.push(chat, group, item, Instant::now());
            match outcome {
                Pushed::Queued => tally.queued += 1,
                Pushed::Coalesced => tally.coalesced += 1,
                Pushed::Dropped => tally.dropped += 1,
            }
            outcome
        };
        self.inner.wake.notify_one();
        outcome
    }

    /// Sends until `cancel` fires and nothing is left to send or still being answered
    /// (`in_flight` has every slot back); what is left when the app stops waiting is dropped.
    pub async fn run<F, Fut>(self, send: F, intake: Intake, cancel: CancellationToken)
    where
        F: Fn(ChatId, Draft) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Delivery> + Send + 'static,
    {
        let sends = Arc::new(Semaphore::new(CONCURRENT_SENDS));
        let send = Arc::new(send);
        let mut summary = tokio::time::interval(SUMMARY_EVERY);
        summary.reset();
        loop {
            // A send slot first, so a message leaves when the schedule releases it: waiting
            // for a slot after that would bunch sends up past the limits.
            let Ok(slot) = Arc::clone(&sends).acquire_owned().await else {
                return;
            };
            let next = self.lock().0.next(Instant::now());
            let (chat, item) = match next {
                Ok(found) => found,
                Err(later) => {
                    drop(slot);
                    let drained = cancel.is_cancelled()
                        && later.is_none()
                        && intake.busy() == 0
                        && sends.available_permits() == CONCURRENT_SENDS;
                    if drained {
                        return;
                    }
                    let until = later.map_or_else(
                        || tokio::time::Instant::now() + SUMMARY_EVERY,
                        tokio::time::Instant::from_std,
                    );
                    tokio::select! {
                        () = self.inner.wake.notified() => {}
                        () = tokio::time::sleep_until(until) => {}
                        _ = summary.tick() => self.summarize(intake.take_refused()),
                        // Look again at once, then every so often while draining.
                        () = cancel.cancelled(), if !cancel.is_cancelled() => {}
                        () = tokio::time::sleep(Duration::from_millis(50)), if cancel.is_cancelled() => {}
                    }
                    continue;
                }
            };
            let (outbox, send) = (self.clone(), Arc::clone(&send));
            tokio::spawn(async move {
                let delivery = send(chat, item.draft.clone()).await;
                drop(slot);
                outbox.finish(chat, item, delivery);
            });
        }
    }

    fn finish(&self, chat: ChatId, mut item: Outgoing, delivery: Delivery) {
        if !matches!(delivery, Delivery::RetryAfter(_)) || item.retries >= RETRIES {
            self.lock().0.sent(chat, Instant::now());
            self.inner.wake.notify_one();
        }
        let result = match delivery {
            Delivery::Sent => Ok(()),
            Delivery::RetryAfter(wait) if item.retries < RETRIES => {
                {
                    let (schedule, tally) = &mut *self.lock();
                    tally.throttled += 1;
                    schedule.retry(chat, item, wait, Instant::now());
                }
                self.inner.wake.notify_one();
                return;
            }
            Delivery::Refused(refusal) => {
                self.lock().1.failed += 1;
                Err(refusal)
            }
            Delivery::RetryAfter(_) | Delivery::Failed => {
                self.lock().1.failed += 1;
                Err(PlatformError::Failed(
                    "Telegram did not take the message".into(),
                ))
            }
        };
        if let Some(done) = item.done.take() {
            let _ = done.send(result);
        }
    }

    /// One line a minute while there is something to say, never a line per event;
    /// `refused` is how many webhook updates were answered 503 for want of room.
    fn summarize(&self, refused: u64) {
        let (schedule, tally) = &mut *self.lock();
        let t = std::mem::take(tally);
        if let Some(line) = t.summary(refused, schedule.waiting()) {
            tracing::info!("{line}");
        }
    }
}

impl Tally {
    fn summary(&self, refused: u64, waiting: usize) -> Option<String> {
        let t = self;
        (t.queued + t.coalesced + t.dropped + t.throttled + t.failed + refused > 0).then(|| {
            format!(
                "telegram, last minute: {} replies queued, {} coalesced, {} dropped (chat \
                 full), {} waited out a 429, {} failed, {refused} updates deferred (webhook \
                 503, no room); {waiting} waiting",
                t.queued, t.coalesced, t.dropped, t.throttled, t.failed
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUP: ChatId = ChatId(-100);
    const PRIVATE: ChatId = ChatId(7);

    fn text(s: &str) -> Outgoing {
        Outgoing::new(s.to_owned())
    }

    /// Sends everything sendable at `now`, each send taking no time; returns the texts.
    fn drain(schedule: &mut Schedule, now: Instant) -> Vec<String> {
        let mut sent = Vec::new();
        while let Some((chat, item)) = send(schedule, now) {
            sent.push(item.draft.text);
            let _ = chat;
        }
        sent
    }

    /// The next message at `now`, sent at once.
    fn send(schedule: &mut Schedule, now: Instant) -> Option<(ChatId, Outgoing)> {
        let (chat, item) = schedule.next(now).ok()?;
        schedule.sent(chat, now);
        Some((chat, item))
    }

    #[test]
    fn a_busy_group_does_not_delay_a_private_chat() {
        let mut s = Schedule::default();
        let t0 = Instant::now();
        for i in 0..PER_CHAT {
            s.push(GROUP, true, text(&format!("g{i}")), t0);
        }
        s.push(PRIVATE, false, text("p0"), t0);
        assert_eq!(drain(&mut s, t0), ["g0", "p0"], "one each, in turn");
        s.push(PRIVATE, false, text("p1"), t0 + Duration::from_millis(1100));
        assert_eq!(
            drain(&mut s, t0 + Duration::from_millis(1100)),
            ["g1", "p1"],
            "the private chat's next reply is due after 1 s, not after the group's backlog"
        );
    }

    #[test]
    fn one_message_a_second_per_chat_and_twenty_a_minute_per_group_only() {
        let mut s = Schedule::default();
        let t0 = Instant::now();
        for i in 0..PER_CHAT {
            s.push(GROUP, true, text(&format!("g{i}")), t0);
        }
        for i in 0..5 {
            s.push(PRIVATE, false, text(&format!("p{i}")), t0);
        }
        let mut group_sends = Vec::new();
        let mut private_sends = 0;
        for second in 0..30u64 {
            let now = t0 + Duration::from_secs(second);
            while let Some((chat, _)) = send(&mut s, now) {
                if chat == GROUP {
                    group_sends.push(second);
                } else {
                    private_sends += 1;
                }
            }
        }
        assert_eq!(group_sends, (0..20).collect::<Vec<_>>(), "1/s in the group");
        assert_eq!(private_sends, 5);
        for i in 0..5 {
            s.push(GROUP, true, text(&format!("late{i}")), t0);
        }
        assert_eq!(
            s.next(t0 + Duration::from_secs(40)).err(),
            Some(Some(t0 + Duration::from_secs(60))),
            "the 21st group message waits for the minute to pass"
        );
        let mut s = Schedule::default();
        let sent = (0..25)
            .filter(|i| {
                let now = t0 + Duration::from_secs(*i);
                s.push(PRIVATE, false, text(&format!("p{i}")), now);
                send(&mut s, now).is_some()
            })
            .count();
        assert_eq!(sent, 25, "no per-minute pace in a private chat");
    }

    #[test]
    fn under_thirty_a_second_overall_round_robin() {
        let mut s = Schedule::default();
        let t0 = Instant::now();
        for chat in 1..=40 {
            s.push(ChatId(chat), false, text(&chat.to_string()), t0);
        }
        assert_eq!(drain(&mut s, t0).len(), OVERALL_PER_SECOND);
        assert_eq!(s.next(t0).err(), Some(Some(t0 + SECOND)));
        let rest = drain(&mut s, t0 + SECOND);
        let next = OVERALL_PER_SECOND as i64 + 1;
        assert_eq!(rest, (next..=40).map(|c| c.to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn a_full_chat_coalesces_then_refuses_what_cannot_be_merged() {
        let mut s = Schedule::default();
        let t0 = Instant::now();
        for i in 0..PER_CHAT {
            assert_eq!(
                s.push(GROUP, true, text(&i.to_string()), t0),
                Pushed::Queued
            );
        }
        assert_eq!(s.push(GROUP, true, text("more"), t0), Pushed::Coalesced);
        let huge = "x".repeat(MAX_TEXT);
        assert_eq!(s.push(GROUP, true, text(&huge), t0), Pushed::Dropped);
        let mut with_buttons = text("menu");
        with_buttons.draft.markup = Some(InlineKeyboardMarkup::default());
        assert_eq!(s.push(GROUP, true, with_buttons, t0), Pushed::Dropped);
        assert_eq!(s.waiting(), PER_CHAT);
        let last = (0..PER_CHAT as u64)
            .filter_map(|i| send(&mut s, t0 + Duration::from_secs(i)))
            .last()
            .unwrap();
        assert_eq!(last.1.draft.text, format!("{}\n\nmore", PER_CHAT - 1));
    }

    #[test]
    fn edits_are_paced_like_messages_and_a_newer_edit_replaces_a_waiting_one() {
        let mut s = Schedule::default();
        let t0 = Instant::now();
        let edit = |text: &str| {
            let mut item = self::text(text);
            item.draft.edit = Some(MessageId(5));
            item.draft.markup = Some(InlineKeyboardMarkup::default());
            item
        };
        assert_eq!(s.push(GROUP, true, text("poll"), t0), Pushed::Queued);
        assert_eq!(s.push(GROUP, true, edit("1 vote"), t0), Pushed::Queued);
        assert_eq!(s.push(GROUP, true, edit("2 votes"), t0), Pushed::Coalesced);
        assert_eq!(s.push(GROUP, true, text("other"), t0), Pushed::Queued);
        assert_eq!(s.waiting(), 3);
        assert_eq!(drain(&mut s, t0), ["poll"], "the edit waits its turn");
        assert_eq!(
            drain(&mut s, t0 + SECOND),
            ["2 votes"],
            "only the latest counts"
        );
        assert_eq!(drain(&mut s, t0 + 2 * SECOND), ["other"]);
    }

    #[test]
    fn a_429_holds_back_that_chat_only_and_keeps_the_order() {
        let mut s = Schedule::default();
        let t0 = Instant::now();
        s.push(GROUP, true, text("first"), t0);
        s.push(GROUP, true, text("second"), t0);
        s.push(PRIVATE, false, text("dm"), t0);
        let (chat, first) = s.next(t0).unwrap();
        s.retry(chat, first, Duration::from_secs(5), t0);
        assert_eq!(drain(&mut s, t0 + SECOND), ["dm"]);
        assert_eq!(
            drain(&mut s, t0 + Duration::from_secs(5)),
            ["first"],
            "retried first, then paced"
        );
        assert_eq!(drain(&mut s, t0 + Duration::from_secs(6)), ["second"]);
    }

    #[test]
    fn a_chat_waits_for_its_last_message_to_be_through_then_a_second() {
        let mut s = Schedule::default();
        let t0 = Instant::now();
        s.push(GROUP, true, text("one"), t0);
        s.push(GROUP, true, text("two"), t0);
        let (chat, _) = s.next(t0).unwrap();
        assert_eq!(
            s.next(t0 + Duration::from_secs(3)).err(),
            Some(None),
            "still on its way"
        );
        s.sent(chat, t0 + Duration::from_secs(3));
        assert!(s.next(t0 + Duration::from_millis(3999)).is_err());
        assert!(s.next(t0 + Duration::from_secs(4)).is_ok());
    }

    #[test]
    fn the_summary_says_what_the_minute_held_and_nothing_when_idle() {
        assert_eq!(Tally::default().summary(0, 0), None);
        let tally = Tally {
            queued: 30,
            coalesced: 4,
            dropped: 1,
            throttled: 2,
            failed: 0,
        };
        assert_eq!(
            tally.summary(17, 9).as_deref(),
            Some(
                "telegram, last minute: 30 replies queued, 4 coalesced, 1 dropped (chat full), \
                 2 waited out a 429, 0 failed, 17 updates deferred (webhook 503, no room); \
                 9 waiting"
            )
        );
        assert!(
            Tally::default().summary(3, 0).is_some(),
            "503s alone are worth a line"
        );
    }

    #[test]
    fn idle_chats_are_forgotten() {
        let mut s = Schedule::default();
        let t0 = Instant::now();
        s.push(GROUP, true, text("hi"), t0);
        s.push(PRIVATE, false, text("hi"), t0);
        drain(&mut s, t0);
        let _ = s.next(t0 + Duration::from_secs(2));
        assert_eq!(s.chats.len(), 1, "the group keeps its minute");
        let _ = s.next(t0 + Duration::from_secs(61));
        assert!(s.chats.is_empty());
    }
}
