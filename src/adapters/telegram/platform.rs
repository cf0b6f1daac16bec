//! The core's [`Platform`] on Telegram: rights from `getChatMember` (cached briefly, dropped on
//! `chat_member` updates), members by @username from the messages seen, and moderation
//! through restrict and ban calls after checking the bot's own rights.

use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, oneshot};

use async_trait::async_trait;
use teloxide::payloads::{
    BanChatMemberSetters, EditMessageTextSetters, RestrictChatMemberSetters, SendMessageSetters,
    UnbanChatMemberSetters,
};
use teloxide::requests::Requester;
use teloxide::types::{
    CallbackQuery, ChatId, ChatMember, ChatMemberKind, ChatPermissions, InlineKeyboardButton,
    InlineKeyboardMarkup, LinkPreviewOptions, Message, MessageId, ParseMode, ReplyParameters,
    UserId as TgUserId,
};
use teloxide::{ApiError, Bot, RequestError};

use super::history::History;
use super::outbox::{Delivery, Draft, Outbox, Outgoing, Pushed};
use super::render;
use super::updates::display_name;
use crate::core::ids::Id;
use crate::core::{
    Capability, ChannelId, CommunityId, Member, ModAction, ModOutcome, Platform, PlatformError,
    PlatformKind, Raw, Reply, UserId, UserRef,
};

/// How long a member's rights are trusted without asking Telegram again.
const RIGHTS_TTL: Duration = Duration::from_secs(60);
/// Telegram treats a restriction shorter than 30 s as permanent.
const MIN_RESTRICTION: Duration = Duration::from_secs(31);
/// `deleteMessages` takes at most 100 ids.
const DELETE_CHUNK: usize = 100;
/// How many times a call waits out a 429 before giving up.
const RETRIES: u32 = 3;

pub struct TelegramPlatform {
    bot: Bot,
    /// Every message the bot sends waits here for its turn (see [`Outbox`]).
    outbox: Outbox,
    me: TgUserId,
    members: moka::future::Cache<(ChatId, TgUserId), Arc<ChatMember>>,
    /// Lower-cased @username → (id, display name), learnt from messages: the Bot API has no
    /// way to look a username up.
    usernames: moka::sync::Cache<String, (TgUserId, String)>,
    history: History,
}

impl TelegramPlatform {
    pub fn new(bot: Bot, me: TgUserId) -> Self {
        Self {
            bot,
            outbox: Outbox::default(),
            me,
            members: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(RIGHTS_TTL)
                .build(),
            usernames: moka::sync::Cache::builder().max_capacity(100_000).build(),
            history: History::new(),
        }
    }

    /// Learns the @usernames of a message's author and of the author replied to. (A member
    /// mentioned by a link, a `text_mention`, is one without a @username: the parser reads them
    /// by id instead.)
    pub fn remember(&self, message: &Message) {
        if !message.chat.is_private() {
            self.history
                .record(message.chat.id, message.id, message.date);
        }
        let replied = message.reply_to_message().and_then(|m| m.from.clone());
        for user in message.from.iter().cloned().chain(replied) {
            if let Some(name) = &user.username {
                self.usernames
                    .insert(name.to_lowercase(), (user.id, display_name(&user)));
            }
        }
    }

    pub async fn forget_member(&self, chat: ChatId, user: TgUserId) {
        self.members.invalidate(&(chat, user)).await;
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Hands a reply to the outbox, as an answer to `reply_to` when given, and returns at
    /// once; `held` is the intake slot of the update it answers, freed when it is sent.
    pub fn send(
        &self,
        chat: ChatId,
        reply: &Reply,
        reply_to: Option<MessageId>,
        held: Option<OwnedSemaphorePermit>,
    ) {
        let Some(mut item) = outgoing(reply) else {
            return;
        };
        item.draft.reply_to = reply_to;
        item.held.extend(held);
        if self.outbox.push(chat, item) == Pushed::Dropped {
            tracing::debug!(chat = chat.0, "telegram: outbox full, reply dropped");
        }
    }

    /// Sends `reply` through the outbox like any other, and waits until it went or failed:
    /// for messages nobody is waiting on in a chat (direct messages, reminders, alerts).
    async fn post(&self, chat: ChatId, reply: &Reply) -> Result<(), PlatformError> {
        let Some(mut item) = outgoing(reply) else {
            return Ok(());
        };
        let (done, outcome) = oneshot::channel();
        item.done = Some(done);
        if self.outbox.push(chat, item) == Pushed::Dropped {
            return Err(PlatformError::Failed(
                "the outbox to that chat is full".into(),
            ));
        }
        match outcome.await {
            Ok(result) => result,
            Err(_) => Err(PlatformError::Failed("the bot is stopping".into())),
        }
    }

    /// Sends one message from the outbox; the outbox paces and retries.
    pub async fn deliver(&self, chat: ChatId, draft: Draft) -> Delivery {
        if let Some(message) = draft.edit {
            return self.deliver_edit(chat, message, draft).await;
        }
        let mut request = self
            .bot
            .send_message(chat, draft.text)
            .parse_mode(ParseMode::Html)
            .link_preview_options(LinkPreviewOptions {
                is_disabled: true,
                url: None,
                prefer_small_media: false,
                prefer_large_media: false,
                show_above_text: false,
            });
        if let Some(markup) = draft.markup {
            request = request.reply_markup(markup);
        }
        if let Some(id) = draft.reply_to {
            request =
                request.reply_parameters(ReplyParameters::new(id).allow_sending_without_reply());
        }
        match request.await {
            Ok(sent) => {
                if !sent.chat.is_private() {
                    self.history.record(chat, sent.id, sent.date);
                }
                Delivery::Sent
            }
            Err(RequestError::RetryAfter(wait)) => Delivery::RetryAfter(wait.duration()),
            // The user cannot be told about a message that could not be sent.
            Err(e @ RequestError::Api(_)) => {
                tracing::warn!(chat = chat.0, "telegram: sendMessage refused: {e}");
                Delivery::Refused(refused(e))
            }
            Err(e) => {
                tracing::warn!(chat = chat.0, "telegram: sendMessage failed: {e}");
                Delivery::Failed
            }
        }
    }

    /// Replaces the text and buttons of the bot's message `message` (a poll whose counts
    /// changed) through the outbox, which paces edits like messages; `held` is the intake slot
    /// of the button press, freed once the edit went.
    pub fn edit(
        &self,
        chat: ChatId,
        message: MessageId,
        reply: &Reply,
        held: OwnedSemaphorePermit,
    ) {
        let Some(mut item) = outgoing(reply) else {
            return;
        };
        item.draft.edit = Some(message);
        item.held.push(held);
        if self.outbox.push(chat, item) == Pushed::Dropped {
            tracing::debug!(chat = chat.0, "telegram: outbox full, edit dropped");
        }
    }

    /// Carries out an edit from the outbox. One that changes nothing (the same vote pressed
    /// twice) is no failure.
    async fn deliver_edit(&self, chat: ChatId, message: MessageId, draft: Draft) -> Delivery {
        let mut request = self
            .bot
            .edit_message_text(chat, message, draft.text)
            .parse_mode(ParseMode::Html);
        if let Some(markup) = draft.markup {
            request = request.reply_markup(markup);
        }
        match request.await {
            Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => Delivery::Sent,
            Err(RequestError::RetryAfter(wait)) => Delivery::RetryAfter(wait.duration()),
            Err(e) => {
                tracing::warn!(chat = chat.0, "telegram: editMessageText failed: {e}");
                Delivery::Failed
            }
        }
    }

    /// Stops the button's spinner; Telegram expects an answer to every callback query.
    pub async fn answer(&self, query: &CallbackQuery) {
        if let Err(e) = patiently(|| {
            self.bot
                .answer_callback_query(query.id.clone())
                .into_future()
        })
        .await
        {
            tracing::debug!("telegram: answerCallbackQuery failed: {e}");
        }
    }

    async fn member(
        &self,
        chat: ChatId,
        user: TgUserId,
    ) -> Result<Arc<ChatMember>, Arc<RequestError>> {
        self.members
            .try_get_with((chat, user), async {
                patiently(|| self.bot.get_chat_member(chat, user).into_future())
                    .await
                    .map(Arc::new)
            })
            .await
    }

    /// Carries `action` out; `Ok(Some(why))` when it went only part of the way.
    async fn act(
        &self,
        chat: ChatId,
        user: TgUserId,
        action: &ModAction,
    ) -> Result<Option<String>, RequestError> {
        match action {
            ModAction::Mute(duration) => {
                let until = restriction_end(*duration);
                let call = || {
                    self.bot
                        .restrict_chat_member(chat, user, ChatPermissions::empty())
                        .until_date(until)
                };
                patiently(|| call().into_future()).await?;
            }
            // Telegram: "pass true for all permissions to lift restrictions"; the group's own
            // defaults still apply on top.
            ModAction::Unmute => {
                patiently(|| {
                    self.bot
                        .restrict_chat_member(chat, user, ChatPermissions::all())
                        .into_future()
                })
                .await?;
            }
            // Telegram has no kick: a ban lifted at once removes the member and lets them rejoin.
            ModAction::Kick => {
                patiently(|| self.bot.ban_chat_member(chat, user).into_future()).await?;
                if let Err(e) = self.unban(chat, user).await {
                    return Ok(Some(format!(
                        "removed, but lifting the ban that a kick is made of failed, so they \
                         cannot rejoin until unbanned: {e}"
                    )));
                }
            }
            ModAction::Ban(duration) => {
                let call = || {
                    let ban = self.bot.ban_chat_member(chat, user).revoke_messages(false);
                    match duration {
                        Some(duration) => ban.until_date(restriction_end(*duration)),
                        None => ban,
                    }
                };
                patiently(|| call().into_future()).await?;
            }
            ModAction::Unban => self.unban(chat, user).await?,
        }
        Ok(None)
    }

    /// Lifts a ban; `only_if_banned` keeps a member who is not banned in the group.
    async fn unban(&self, chat: ChatId, user: TgUserId) -> Result<(), RequestError> {
        let call = || self.bot.unban_chat_member(chat, user).only_if_banned(true);
        patiently(|| call().into_future()).await.map(drop)
    }
}

/// A reply as a message for the outbox; `None` when there is nothing to show.
fn outgoing(reply: &Reply) -> Option<Outgoing> {
    let text = render::html(reply);
    if text.is_empty() {
        return None;
    }
    let mut item = Outgoing::new(text);
    item.draft.markup = keyboard(reply);
    Some(item)
}

/// When a restriction or ban of `duration` from now ends; Telegram takes anything under 30 s
/// as permanent, so short ones are stretched to just over that.
fn restriction_end(duration: Duration) -> chrono::DateTime<chrono::Utc> {
    let duration =
        chrono::Duration::from_std(duration.max(MIN_RESTRICTION)).unwrap_or(chrono::Duration::MAX);
    chrono::Utc::now() + duration
}

/// The reply's buttons as an inline keyboard, or `None` when it has none.
fn keyboard(reply: &Reply) -> Option<InlineKeyboardMarkup> {
    if reply.buttons.is_empty() {
        return None;
    }
    let rows = render::button_rows(&reply.buttons).into_iter().map(|row| {
        row.iter()
            .map(|b| InlineKeyboardButton::callback(b.label.clone(), b.command.clone()))
            .collect::<Vec<_>>()
    });
    Some(InlineKeyboardMarkup::new(rows))
}

/// Calls again after a 429's `retry_after`, a few times, for calls the outbox does not pace.
async fn patiently<T, F, Fut>(mut call: F) -> Result<T, RequestError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RequestError>>,
{
    let mut tries = 0;
    loop {
        match call().await {
            Err(RequestError::RetryAfter(wait)) if tries < RETRIES => {
                tries += 1;
                tokio::time::sleep(wait.duration()).await;
            }
            result => return result,
        }
    }
}

fn grants(kind: &ChatMemberKind, capability: Capability) -> bool {
    match capability {
        Capability::BanMembers | Capability::KickMembers | Capability::MuteMembers => {
            kind.can_restrict_members()
        }
        Capability::ManageMessages => kind.can_delete_messages(),
        Capability::ManageSettings => match kind {
            ChatMemberKind::Owner(_) => true,
            ChatMemberKind::Administrator(admin) => admin.can_change_info,
            _ => false,
        },
        Capability::Owner => false,
    }
}

fn tg(user: UserId) -> TgUserId {
    TgUserId(number(user.raw) as u64)
}

/// Telegram's ids are numbers, and the adapter makes every id it hands the core; a word (a
/// Slack-style mention typed here) is turned away by `resolve_user` before it gets this far.
fn number(raw: Raw) -> i64 {
    raw.number().unwrap_or_default()
}

fn chat<K>(id: Id<K>) -> ChatId {
    ChatId(number(id.raw))
}

/// Telegram's own refusals ("not enough rights") are the user's to read; the rest is ours.
fn refused(e: RequestError) -> PlatformError {
    match e {
        RequestError::Api(api) => PlatformError::Refused(format!("Telegram refused: {api}")),
        other => failed(&other),
    }
}

fn failed(e: &RequestError) -> PlatformError {
    PlatformError::Failed(format!("Telegram: {e}").into())
}

#[async_trait]
impl Platform for TelegramPlatform {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Telegram
    }

    /// The rights as Telegram's admin settings name them.
    fn capability_name(&self, capability: Capability) -> &'static str {
        match capability {
            Capability::BanMembers | Capability::KickMembers | Capability::MuteMembers => {
                "Ban Users"
            }
            Capability::ManageMessages => "Delete Messages",
            Capability::ManageSettings => "Change Group Info",
            Capability::Owner => "bot owner",
        }
    }

    async fn has_capability(
        &self,
        community: CommunityId,
        _: ChannelId,
        user: UserId,
        capability: Capability,
    ) -> Result<bool, PlatformError> {
        // An administrator who remains anonymous writes as the group, through Telegram's
        // placeholder user: which administrator it is, and so their rights, cannot be known.
        if tg(user).is_anonymous() {
            return Err(PlatformError::Refused(
                "you are writing anonymously, so I can't tell which administrator you are: turn off \"Remain anonymous\" in your administrator rights first".into(),
            ));
        }
        let member = self
            .member(chat(community), tg(user))
            .await
            .map_err(|e| failed(&e))?;
        Ok(grants(&member.kind, capability))
    }

    async fn resolve_user(
        &self,
        community: Option<CommunityId>,
        user: &UserRef,
    ) -> Result<Option<Member>, PlatformError> {
        let (id, name) = match user {
            UserRef::Name(name) => match self.usernames.get(&name.to_lowercase()) {
                Some(known) => known,
                None => return Ok(None),
            },
            UserRef::Id(Raw::Number(id)) => (TgUserId(*id as u64), id.to_string()),
            UserRef::Id(Raw::Word(_)) => return Ok(None),
        };
        let Some(community) = community else {
            return Ok(Some(Member {
                id: UserId::new(PlatformKind::Telegram, id.0 as i64),
                name,
                is_bot: false,
            }));
        };
        match self.member(chat(community), id).await {
            Ok(member) => Ok(Some(Member {
                id: UserId::new(PlatformKind::Telegram, id.0 as i64),
                name: display_name(&member.user),
                is_bot: member.user.is_bot,
            })),
            Err(e) if matches!(*e, RequestError::Api(ApiError::UserNotFound)) => Ok(None),
            Err(e) => Err(failed(&e)),
        }
    }

    /// Administrators are beyond a bot's reach on Telegram, and so beyond warnings too.
    async fn check_rank(
        &self,
        community: CommunityId,
        _actor: UserId,
        target: &Member,
        verb: &str,
    ) -> Result<(), PlatformError> {
        let (chat, user) = (chat(community), tg(target.id));
        if user == self.me {
            return Err(PlatformError::Refused(format!("I won't {verb} myself")));
        }
        let member = self.member(chat, user).await.map_err(|e| failed(&e))?;
        if member.kind.is_privileged() {
            return Err(PlatformError::Refused(format!(
                "{} is an administrator here, and administrators can't be moderated by the bot",
                target.name
            )));
        }
        Ok(())
    }

    async fn moderate(
        &self,
        community: CommunityId,
        _channel: Option<ChannelId>,
        _actor: UserId,
        target: &Member,
        action: &ModAction,
        _reason: Option<&str>,
        notice: Option<&Reply>,
    ) -> Result<ModOutcome, PlatformError> {
        let (chat, user, verb) = (chat(community), tg(target.id), action.verb());
        if user == self.me {
            return Err(PlatformError::Refused(format!("I won't {verb} myself")));
        }
        let bot = self.member(chat, self.me).await.map_err(|e| failed(&e))?;
        if !grants(&bot.kind, action.capability()) {
            let right = self.capability_name(action.capability());
            return Err(PlatformError::Refused(format!(
                "I need the {right} right to {verb} {}",
                target.name
            )));
        }
        // The invoker's rights were checked by the dispatcher; an administrator is beyond any
        // bot's reach on Telegram, whoever asks.
        let member = self.member(chat, user).await.map_err(|e| failed(&e))?;
        if member.kind.is_privileged() {
            return Err(PlatformError::Refused(format!(
                "{} is an administrator here, and Telegram does not let bots {verb} administrators",
                target.name
            )));
        }
        let mut notified = false;
        if let Some(notice) = notice {
            match self.direct_message(target.id, notice).await {
                Ok(()) => notified = true,
                Err(e) => {
                    tracing::info!(user = user.0, "telegram: could not notify the member: {e}")
                }
            }
        }
        let result = self.act(chat, user, action).await;
        self.members.invalidate(&(chat, user)).await;
        let incomplete = result.map_err(refused)?;
        Ok(ModOutcome {
            notified,
            incomplete,
        })
    }

    /// Deletes the newest messages the bot has seen here, the command itself included.
    async fn purge(
        &self,
        community: CommunityId,
        _: ChannelId,
        count: u32,
    ) -> Result<u32, PlatformError> {
        let chat = chat(community);
        let bot = self.member(chat, self.me).await.map_err(|e| failed(&e))?;
        if !bot.kind.can_delete_messages() {
            let right = self.capability_name(Capability::ManageMessages);
            return Err(PlatformError::Refused(format!(
                "I need the {right} right to purge messages"
            )));
        }
        let ids = self
            .history
            .take_latest(chat, count as usize, chrono::Utc::now());
        for chunk in ids.chunks(DELETE_CHUNK) {
            patiently(|| self.bot.delete_messages(chat, chunk.to_vec()).into_future())
                .await
                .map_err(refused)?;
        }
        Ok(ids.len() as u32)
    }

    /// Only reaches users who have started a chat with the bot: Telegram's rule for bots.
    async fn direct_message(&self, user: UserId, reply: &Reply) -> Result<(), PlatformError> {
        self.post(chat(user), reply).await
    }

    async fn send(&self, channel: ChannelId, reply: &Reply) -> Result<(), PlatformError> {
        self.post(chat(channel), reply).await
    }
}
