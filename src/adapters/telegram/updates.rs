//! Turns Telegram updates into core requests, and the core's replies into messages.

use std::sync::Arc;

use teloxide::types::{CallbackQuery, Chat, Message, MessageEntityKind, Update, UpdateKind, User};

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

    pub async fn handle(&self, update: Update) {
        match update.kind {
            UpdateKind::Message(message) => self.message(message).await,
            UpdateKind::CallbackQuery(query) => self.button(query).await,
            _ => {}
        }
    }

    async fn message(&self, message: Message) {
        let (Some(from), Some(text)) = (message.from.as_ref(), message.text()) else {
            return;
        };
        let text = mentions_as_ids(&message, text);
        let Some(line) = command_line(&text, &["/"]) else {
            return;
        };
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
        let mut request = request(&message.chat, from, line.name, line.args.to_owned());
        request.replied_to = replied_to(&message);
        if let Some(reply) = self.dispatcher.dispatch(&self.as_platform, request).await {
            self.platform
                .send(message.chat.id, &reply, Some(message.id))
                .await;
        }
    }

    /// A button press runs the button's command as the member who pressed it.
    async fn button(&self, query: CallbackQuery) {
        self.platform.answer(&query).await;
        let (Some(data), Some(message)) = (query.data.as_deref(), query.message.as_ref()) else {
            return;
        };
        let Some(line) = command_line(data, &["/"]) else {
            return;
        };
        let chat = message.chat();
        let request = request(chat, &query.from, line.name, line.args.to_owned());
        match self.dispatcher.dispatch(&self.as_platform, request).await {
            Some(reply) if reply.replaces => {
                self.platform.edit(chat.id, message.id(), &reply).await
            }
            Some(reply) => self.platform.send(chat.id, &reply, None).await,
            None => {}
        }
    }
}

fn request(chat: &Chat, from: &User, name: String, args: String) -> Request {
    Request {
        community: (!chat.is_private())
            .then(|| CommunityId::new(PlatformKind::Telegram, chat.id.0)),
        channel: ChannelId::new(PlatformKind::Telegram, chat.id.0),
        author: Author {
            id: user_id(from),
            name: display_name(from),
        },
        replied_to: None,
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
    let Some(entities) = message.parse_entities() else {
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
