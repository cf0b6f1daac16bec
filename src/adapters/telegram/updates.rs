//! Turns Telegram updates into core requests, and the core's replies into messages.

use std::sync::Arc;

use teloxide::types::{
    CallbackQuery, Chat, Message, MessageEntityKind, MessageEntityRef, Update, UpdateKind, User,
};
use tokio::sync::OwnedSemaphorePermit;

use super::platform::TelegramPlatform;
use crate::core::parse::command_line;
use crate::core::{
    ArgInput, Author, ChannelId, CommunityId, Dispatcher, Member, Platform, PlatformKind, Request,
    State, UserId,
};

pub struct Inbox<S> {
    dispatcher: Arc<Dispatcher<S>>,
    platform: Arc<TelegramPlatform>,
    as_platform: Arc<dyn Platform>,
    /// The bot's @username, to tell `/cmd@thisbot` from `/cmd@otherbot`.
    username: String,
}

impl<S: State> Inbox<S> {
    pub fn new(
        dispatcher: Arc<Dispatcher<S>>,
        platform: Arc<TelegramPlatform>,
        username: String,
    ) -> Self {
        let as_platform: Arc<dyn Platform> = platform.clone();
        Self {
            dispatcher,
            platform,
            as_platform,
            username,
        }
    }

    /// Learns who is who and whose rights changed, in arrival order, before the update is
    /// handled on its own task: a command must see the messages and promotions before it.
    pub async fn observe(&self, update: &Update) {
        match &update.kind {
            UpdateKind::Message(message) | UpdateKind::EditedMessage(message) => {
                self.platform.remember(message);
            }
            UpdateKind::ChatMember(change) | UpdateKind::MyChatMember(change) => {
                let user = change.new_chat_member.user.id;
                self.platform.forget_member(change.chat.id, user).await;
            }
            _ => {}
        }
    }

    /// Handles an update; `slot` is its intake slot, handed on with the reply (or freed here
    /// when there is none).
    pub async fn handle(&self, update: Update, slot: OwnedSemaphorePermit) {
        match update.kind {
            UpdateKind::Message(message) => self.message(message, slot).await,
            UpdateKind::CallbackQuery(query) => self.button(query, slot).await,
            _ => {}
        }
    }

    async fn message(&self, message: Message, slot: OwnedSemaphorePermit) {
        if let Some(joined) = message.new_chat_members() {
            return self.greet(&message.chat, joined, slot).await;
        }
        let (Some(from), Some(text)) = (message.from.as_ref(), message.text()) else {
            return;
        };
        let text = mentions_as_ids(&message, text);
        let Some(mut line) = command_line(&text, &["/"]) else {
            return;
        };
        // Every chat with a bot begins with /start (a deep link adds a parameter): the help.
        if line.name == "start" {
            (line.name, line.args) = ("help".to_owned(), "");
        }
        if line
            .addressee
            .is_some_and(|to| !to.eq_ignore_ascii_case(&self.username))
        {
            return;
        }
        let catalog = self.dispatcher.catalog();
        if !catalog.answers(
            &line.name,
            line.addressee.is_some(),
            !message.chat.is_private(),
        ) {
            return;
        }
        let id = format!("m{}", message.id.0);
        let mut request = request(&message.chat, from, id, line.name, line.args.to_owned());
        request.replied_to = replied_to(&message);
        if let Some(reply) = self.dispatcher.dispatch(&self.as_platform, request).await {
            self.platform
                .send(message.chat.id, &reply, Some(message.id), Some(slot));
        }
    }

    /// Greets members who joined a group (the service message Telegram sends every bot in
    /// it, privacy mode or not), each with the group's `welcome_message`.
    async fn greet(&self, chat: &Chat, joined: &[User], slot: OwnedSemaphorePermit) {
        if chat.is_private() {
            return;
        }
        let community = CommunityId::new(PlatformKind::Telegram, chat.id.0);
        let mut slot = Some(slot);
        for user in joined {
            let member = Member {
                id: user_id(user),
                name: display_name(user),
                is_bot: user.is_bot,
            };
            if let Some(reply) = self.dispatcher.greeting(community, &member).await {
                self.platform.send(chat.id, &reply, None, slot.take());
            }
        }
    }

    /// A button press runs the button's command as the member who pressed it.
    async fn button(&self, query: CallbackQuery, slot: OwnedSemaphorePermit) {
        self.platform.answer(&query).await;
        let (Some(data), Some(message)) = (query.data.as_deref(), query.message.as_ref()) else {
            return;
        };
        let Some(line) = command_line(data, &["/"]) else {
            return;
        };
        let chat = message.chat();
        let id = format!("q{}", query.id.0);
        let request = request(chat, &query.from, id, line.name, line.args.to_owned());
        match self.dispatcher.dispatch(&self.as_platform, request).await {
            Some(reply) if reply.replaces => {
                self.platform.edit(chat.id, message.id(), &reply, slot)
            }
            Some(reply) => self.platform.send(chat.id, &reply, None, Some(slot)),
            None => {}
        }
    }
}

/// `id` is unique within the chat (a message id) or everywhere (a callback query's).
fn request(chat: &Chat, from: &User, id: String, name: String, args: String) -> Request {
    Request {
        community: (!chat.is_private())
            .then(|| CommunityId::new(PlatformKind::Telegram, chat.id.0)),
        community_name: chat.title().map(str::to_owned),
        channel: ChannelId::new(PlatformKind::Telegram, chat.id.0),
        author: Author {
            id: user_id(from),
            name: display_name(from),
        },
        replied_to: None,
        id: Some(id),
        name,
        args: ArgInput::Text(args),
    }
}

/// The author of the message a command answers. In a forum topic every message "replies" to
/// the topic's first service message, which is no one's message to act on.
fn replied_to(message: &Message) -> Option<Member> {
    let original = message.reply_to_message()?;
    if original.forum_topic_created().is_some() {
        return None;
    }
    let author = original.from.as_ref()?;
    Some(Member {
        id: user_id(author),
        name: display_name(author),
        is_bot: author.is_bot,
    })
}

pub fn user_id(user: &User) -> UserId {
    UserId::new(PlatformKind::Telegram, user.id.0 as i64)
}

/// `@username` when there is one (unique and what people type), else the full name.
pub fn display_name(user: &User) -> String {
    user.username
        .as_ref()
        .map_or_else(|| user.full_name(), |name| format!("@{name}"))
}

/// Members without a @username are mentioned by a link to their account (a `text_mention`);
/// these become their numeric id, which the command parser reads as a user.
fn mentions_as_ids(message: &Message, text: &str) -> String {
    let Some(entities) = entities(message) else {
        return text.to_owned();
    };
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for entity in &entities {
        if let MessageEntityKind::TextMention { user } = entity.kind() {
            let range = entity.range();
            if range.start >= copied {
                out.push_str(&text[copied..range.start]);
                out.push_str(&user.id.0.to_string());
                copied = range.end;
            }
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// The text's entities, or `None` when there are none or any does not fit the text (an offset
/// past the end or inside a character, e.g. splitting an emoji): teloxide would panic or
/// hand out ranges that cannot be sliced, and a forged update must not stop the bot.
pub fn entities(message: &Message) -> Option<Vec<MessageEntityRef<'_>>> {
    let (text, entities) = (message.text()?, message.entities()?);
    let mut boundaries = std::collections::HashSet::with_capacity(text.len() + 1);
    let mut at = 0;
    boundaries.insert(0);
    for c in text.chars() {
        at += c.len_utf16();
        boundaries.insert(at);
    }
    let fits = entities.iter().all(|e| {
        e.offset
            .checked_add(e.length)
            .is_some_and(|end| boundaries.contains(&e.offset) && boundaries.contains(&end))
    });
    fits.then(|| MessageEntityRef::parse(text, entities))
}

#[cfg(test)]
mod tests {
    use teloxide::types::MessageEntity;

    use super::*;

    fn message(text: &str, entities: Vec<MessageEntity>) -> Message {
        serde_json::from_value(serde_json::json!({
            "message_id": 1,
            "date": 0,
            "chat": {"id": 5, "type": "private", "first_name": "A"},
            "from": {"id": 5, "is_bot": false, "first_name": "A"},
            "text": text,
            "entities": entities,
        }))
        .unwrap()
    }

    #[test]
    fn entities_that_do_not_fit_the_text_are_no_entities() {
        let bold = |offset, length| MessageEntity::bold(offset, length);
        // "/ping 😀": the emoji is two UTF-16 units, at 6 and 7.
        let text = "/ping \u{1F600}";
        assert_eq!(entities(&message(text, vec![bold(6, 2)])).unwrap().len(), 1);
        for bad in [bold(7, 1), bold(6, 1), bold(6, 9), bold(usize::MAX, 2)] {
            let m = message(text, vec![bold(0, 5), bad]);
            assert!(entities(&m).is_none());
            assert_eq!(mentions_as_ids(&m, text), text, "the text is kept as it is");
        }
    }
}
