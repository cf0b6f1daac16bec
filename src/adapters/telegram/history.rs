//! The latest messages of each group, as the bot saw them. The Bot API has no way to list a
//! chat's messages, so `/purge` deletes from this record; a moderating bot is an administrator
//! and so sees every message.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use teloxide::types::{ChatId, MessageId};

/// As many as one `/purge` may delete.
const PER_CHAT: usize = 1000;
/// Bots may delete other people's messages for 48 hours; older ones are not worth keeping.
const DELETABLE_FOR: Duration = Duration::from_secs(48 * 3600);

type Seen = VecDeque<(MessageId, DateTime<Utc>)>;

pub struct History {
    chats: moka::sync::Cache<ChatId, Arc<Mutex<Seen>>>,
}

impl History {
    pub fn new() -> Self {
        let chats = moka::sync::Cache::builder()
            .max_capacity(10_000)
            .time_to_idle(DELETABLE_FOR)
            .build();
        Self { chats }
    }

    /// Records a message once: an edit arrives with the id of the message it changed.
    pub fn record(&self, chat: ChatId, message: MessageId, date: DateTime<Utc>) {
        let seen = self.chats.get_with(chat, Arc::default);
        let mut seen = seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if seen.iter().rev().any(|(id, _)| *id == message) {
            return;
        }
        seen.push_back((message, date));
        if seen.len() > PER_CHAT {
            seen.pop_front();
        }
    }

    /// Removes and returns up to `count` of the newest messages that can still be deleted.
    pub fn take_latest(&self, chat: ChatId, count: usize, now: DateTime<Utc>) -> Vec<MessageId> {
        let Some(seen) = self.chats.get(&chat) else {
            return Vec::new();
        };
        let mut seen = seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let oldest =
            now - chrono::Duration::from_std(DELETABLE_FOR).unwrap_or(chrono::Duration::MAX);
        seen.retain(|(_, date)| *date > oldest);
        // Updates are handled concurrently, so arrival order may differ from message order.
        seen.make_contiguous().sort_unstable_by_key(|(id, _)| id.0);
        let keep = seen.len().saturating_sub(count);
        seen.drain(keep..).rev().map(|(id, _)| id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_newest_deletable_messages_once() {
        let history = History::new();
        let chat = ChatId(-100);
        let now = Utc::now();
        let old = now - chrono::Duration::hours(49);
        history.record(chat, MessageId(1), old);
        for id in [3, 2, 4, 5] {
            history.record(chat, MessageId(id), now);
        }
        assert_eq!(
            history.take_latest(chat, 3, now),
            [MessageId(5), MessageId(4), MessageId(3)]
        );
        assert_eq!(
            history.take_latest(chat, 3, now),
            [MessageId(2)],
            "too old and taken ones are gone"
        );
        assert!(history.take_latest(ChatId(-200), 3, now).is_empty());
    }

    #[test]
    fn an_edited_message_is_recorded_once() {
        let history = History::new();
        let (chat, now) = (ChatId(-100), Utc::now());
        for id in [1, 2, 1, 3, 2] {
            history.record(chat, MessageId(id), now);
        }
        assert_eq!(
            history.take_latest(chat, 10, now),
            [MessageId(3), MessageId(2), MessageId(1)],
            "two edits make no extra messages to delete or count"
        );
    }

    #[test]
    fn keeps_a_bounded_record_per_chat() {
        let history = History::new();
        let now = Utc::now();
        for id in 0..(PER_CHAT as i32 + 50) {
            history.record(ChatId(1), MessageId(id), now);
        }
        let all = history.take_latest(ChatId(1), usize::MAX, now);
        assert_eq!(all.len(), PER_CHAT);
        assert_eq!(all.last(), Some(&MessageId(50)));
    }
}
