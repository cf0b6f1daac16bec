//! Gateway events in, core requests out: prefix and mention commands from messages, slash
//! commands and button presses from interactions, each answered the way Discord expects.

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serenity::all::{
    ChannelId as DChannelId, CommandDataOptionValue, CommandInteraction, ComponentInteraction,
    Context, CreateInteractionResponse, CreateInteractionResponseMessage, EventHandler, GuildId,
    GuildMembersChunkEvent, Http, Interaction, InteractionId, Message, MessageReference,
    MessageType, Ready, User, UserId as DUserId, async_trait,
};
use serenity::builder::Builder;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::members::MemberSearch;
use super::platform::{DiscordPlatform, community_id, display, user_id};
use super::queue::Queue;
use super::render::render;
use crate::core::parse::{CommandLine, command_line};
use crate::core::{
    ArgInput, Author, ChannelId, Dispatcher, Member, Platform, PlatformKind, Platforms, Raw, Reply,
    Request, State, Tone, UserRef, Value,
};

/// Discord drops an interaction that is not acknowledged within 3 s. Most commands answer in
/// milliseconds, and then the answer itself is the acknowledgement: one call, and no
/// "thinking…" placeholder. A command still running after this long is deferred instead,
/// which leaves the other half of the window for the deferral to reach Discord; its answer
/// then replaces the placeholder.
const DEFER_AFTER: Duration = Duration::from_millis(1500);

/// serenity's event handler: one per client. It only sorts events: commands go to the
/// [`Queue`], which runs them, a channel at a time, within `limits.max_in_flight`.
pub struct Handler<S> {
    core: Arc<Core<S>>,
    queue: Queue,
    /// Stops taking new events once the app stops.
    cancel: CancellationToken,
    /// Fired by the first READY, to tell `start` the gateway is up.
    ready: Mutex<Option<oneshot::Sender<()>>>,
}

/// What a queued event needs to be handled.
struct Core<S> {
    dispatcher: Arc<Dispatcher<S>>,
    settings: Settings,
    /// Built from the first event's context, which holds the client's Http and cache.
    platform: OnceLock<Arc<dyn Platform>>,
    /// Where the platform is registered once ready, for scheduled work to reach Discord.
    platforms: Arc<Platforms>,
    /// Member searches waiting for their GUILD_MEMBERS_CHUNK.
    search: Arc<MemberSearch>,
}

/// What the handler knows of this bot's configuration.
pub struct Settings {
    /// `""` when prefix commands are off.
    pub prefix: String,
    pub me: DUserId,
    pub ban_delete_message_days: u8,
}

impl<S: State> Handler<S> {
    pub fn new(
        dispatcher: Arc<Dispatcher<S>>,
        platforms: Arc<Platforms>,
        settings: Settings,
        queue: Queue,
        cancel: CancellationToken,
        ready: oneshot::Sender<()>,
    ) -> Self {
        Self {
            core: Arc::new(Core {
                dispatcher,
                settings,
                platform: OnceLock::new(),
                platforms,
                search: Arc::default(),
            }),
            queue,
            cancel,
            ready: Mutex::new(Some(ready)),
        }
    }
}

impl<S: State> Core<S> {
    fn platform(&self, ctx: &Context) -> &Arc<dyn Platform> {
        self.platform.get_or_init(|| {
            Arc::new(DiscordPlatform::new(
                (
                    Arc::clone(&ctx.http),
                    Arc::clone(&ctx.cache),
                    ctx.shard.clone(),
                ),
                Arc::clone(&self.search),
                self.settings.me,
                self.settings.ban_delete_message_days,
            ))
        })
    }

    /// The prefix in force in `guild`: the server's own (`/settings set prefix`), else the
    /// configured one. None at all when prefix commands are off, since then Discord does not
    /// even send the messages' text (no Message Content intent).
    async fn prefix_in(&self, guild: Option<GuildId>) -> String {
        let configured = &self.settings.prefix;
        let Some(guild) = guild.filter(|_| !configured.is_empty()) else {
            return configured.clone();
        };
        let own = self.dispatcher.prefix_in(community_id(guild)).await;
        own.unwrap_or_else(|| configured.clone())
    }

    /// Greets a member with the server's `welcome_message`, under the join message Discord
    /// posts in the server's system channel. That message comes with the ordinary message
    /// events, so greeting needs no privileged Server Members intent; a server with join
    /// messages turned off is not greeted.
    async fn greet(&self, ctx: &Context, joined: &Message) {
        let Some(guild) = joined.guild_id else { return };
        let community = community_id(guild);
        let member = Member {
            id: user_id(joined.author.id),
            name: display(&joined.author),
            is_bot: joined.author.bot,
        };
        let Some(greeting) = self.dispatcher.greeting(community, &member).await else {
            return;
        };
        let out = render(&greeting).message();
        if let Err(e) = joined.channel_id.send_message(ctx, out).await {
            tracing::warn!(channel = %joined.channel_id, "discord: a welcome failed: {e}");
        }
    }

    async fn dispatch(&self, ctx: &Context, request: Request) -> Option<Reply> {
        self.dispatcher.dispatch(self.platform(ctx), request).await
    }

    /// A prefix or mention command, answered in its channel as a reply to its message.
    async fn command(&self, ctx: Context, request: Request, message: MessageReference) {
        let channel = message.channel_id;
        let Some(reply) = self.dispatch(&ctx, request).await else {
            return;
        };
        // The command may have deleted its own message (/purge): then reply without a reference.
        let reference = message.fail_if_not_exists(false);
        let out = render(&reply).message().reference_message(reference);
        if let Err(e) = channel.send_message(&ctx, out).await {
            tracing::warn!(%channel, "discord: sending a reply failed: {e}");
        }
    }

    /// `arrived` is when the gateway delivered it: Discord's window runs from then, however
    /// long it waited in its channel's queue.
    async fn interaction(&self, ctx: Context, interaction: Interaction, arrived: Instant) {
        let (id, token, mut request, pressed) = match &interaction {
            Interaction::Command(command) => {
                (command.id, &command.token, Some(slash(command)), false)
            }
            Interaction::Component(press) => (press.id, &press.token, self::pressed(press), true),
            _ => return,
        };
        if let Some(request) = &mut request {
            request.community_name = guild_name(&ctx, interaction.guild_id());
        }
        let work = async {
            match request {
                Some(request) => self.dispatch(&ctx, request).await,
                None => Some(Reply::error("This button does nothing any more.")),
            }
        };
        answer(
            &ctx.http,
            (id, token.as_str()),
            pressed,
            arrived + DEFER_AFTER,
            work,
        )
        .await;
    }
}

#[async_trait]
impl<S: State> EventHandler for Handler<S> {
    async fn ready(&self, ctx: Context, ready: Ready) {
        self.core
            .platforms
            .register(Arc::clone(self.core.platform(&ctx)));
        tracing::info!(
            guilds = ready.guilds.len(),
            "discord: connected as @{}",
            ready.user.name
        );
        let first = self
            .ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(first) = first {
            let _ = first.send(());
        }
    }

    async fn guild_members_chunk(&self, _: Context, chunk: GuildMembersChunkEvent) {
        self.core.search.chunk(chunk);
    }

    async fn message(&self, ctx: Context, message: Message) {
        if self.cancel.is_cancelled() {
            return;
        }
        if message.kind == MessageType::MemberJoin {
            let core = Arc::clone(&self.core);
            let channel = message.channel_id.get();
            self.queue.push(
                channel,
                Box::pin(async move { core.greet(&ctx, &message).await }),
            );
            return;
        }
        if message.author.bot {
            return;
        }
        let settings = &self.core.settings;
        let prefix = self.core.prefix_in(message.guild_id).await;
        // Only commands are queued: chatter in a busy channel never sheds a command.
        let Some((line, mentioned)) = parse(&message.content, &prefix, settings.me) else {
            return;
        };
        let catalog = self.core.dispatcher.catalog();
        if !catalog.answers(&line.name, mentioned, message.guild_id.is_some()) {
            return;
        }
        let args = ArgInput::Text(line.args.to_owned());
        let mut request = request(
            format!("m{}", message.id),
            message.guild_id,
            message.channel_id,
            &message.author,
            line.name,
            args,
        );
        request.community_name = guild_name(&ctx, message.guild_id);
        request.replied_to = message.referenced_message.as_ref().map(|original| Member {
            id: user_id(original.author.id),
            name: display(&original.author),
            is_bot: original.author.bot,
        });
        let reference = MessageReference::from(&message);
        let core = Arc::clone(&self.core);
        self.queue.push(
            message.channel_id.get(),
            Box::pin(async move { core.command(ctx, request, reference).await }),
        );
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        if self.cancel.is_cancelled() {
            return;
        }
        let arrived = Instant::now();
        let channel = match &interaction {
            Interaction::Command(command) => command.channel_id,
            Interaction::Component(press) => press.channel_id,
            _ => return,
        };
        let core = Arc::clone(&self.core);
        self.queue.push(
            channel.get(),
            Box::pin(async move { core.interaction(ctx, interaction, arrived).await }),
        );
    }
}

/// Answers an interaction with what `work` replies: directly when it is quick, else after a
/// deferral at `defer_at` (see [`DEFER_AFTER`]). A button press whose reply
/// [`Reply::replaces`] updates the pressed message (UPDATE_MESSAGE, or
/// DEFERRED_UPDATE_MESSAGE and then an edit of it); a
/// deferred press whose reply is a new message gets it as a follow-up, leaving the pressed
/// message alone. An error after a deferral is private all the same (see below).
async fn answer(
    http: &Http,
    (id, token): (InteractionId, &str),
    pressed: bool,
    defer_at: Instant,
    work: impl Future<Output = Option<Reply>>,
) {
    // Discord insists on an answer; the dispatcher's silence means "rate limited, told before".
    let or_slow_down = |reply: Option<Reply>| {
        reply.unwrap_or_else(|| Reply::error("You're sending commands too fast."))
    };
    let mut work = std::pin::pin!(work);
    let result = match tokio::time::timeout_at(defer_at, &mut work).await {
        Ok(reply) => {
            let reply = or_slow_down(reply);
            let response = if pressed && reply.replaces {
                CreateInteractionResponse::UpdateMessage(render(&reply).update())
            } else {
                CreateInteractionResponse::Message(render(&reply).response())
            };
            response.execute(http, (id, token)).await
        }
        Err(_) => {
            let defer = if pressed {
                CreateInteractionResponse::Acknowledge
            } else {
                CreateInteractionResponse::Defer(CreateInteractionResponseMessage::new())
            };
            let deferred = defer.execute(http, (id, token)).await;
            // The command runs to the end either way: it may already have acted.
            let reply = or_slow_down(work.await);
            let private = reply.tone == Tone::Error;
            match deferred {
                // The deferral is public, and an error must not be: it goes as a private
                // follow-up, and a command's "thinking…" placeholder is taken away first.
                Ok(()) if private && !pressed => {
                    match http.delete_original_interaction_response(token).await {
                        Ok(()) => render(&reply)
                            .followup()
                            .execute(http, (None, token))
                            .await
                            .map(drop),
                        Err(e) => Err(e),
                    }
                }
                Ok(()) if pressed && (private || !reply.replaces) => render(&reply)
                    .followup()
                    .execute(http, (None, token))
                    .await
                    .map(drop),
                Ok(()) => render(&reply).edit().execute(http, token).await.map(drop),
                Err(e) => Err(e),
            }
        }
    };
    if let Err(e) = result {
        tracing::warn!(interaction = %id, "discord: answering an interaction failed: {e}");
    }
}

/// A message addressed to the bot: `<prefix>cmd args`, or a mention of the bot followed by
/// `cmd args` (with or without a prefix or `/`). The flag says the bot was mentioned.
fn parse<'a>(text: &'a str, prefix: &str, me: DUserId) -> Option<(CommandLine<'a>, bool)> {
    let text = text.trim_start();
    let mentions = [format!("<@{me}>"), format!("<@!{me}>")];
    if let Some(rest) = mentions.iter().find_map(|m| text.strip_prefix(m.as_str())) {
        return command_line(rest.trim_start(), &["/", prefix, ""]).map(|line| (line, true));
    }
    if prefix.is_empty() {
        return None;
    }
    command_line(text, &[prefix]).map(|line| (line, false))
}

/// Slash options arrive typed; the dispatcher binds and checks them like typed text.
fn slash(command: &CommandInteraction) -> Request {
    let options = command
        .data
        .options
        .iter()
        .filter_map(|option| {
            let value = match &option.value {
                CommandDataOptionValue::String(text) => Value::Text(text.clone()),
                CommandDataOptionValue::Integer(n) => Value::Int(*n),
                CommandDataOptionValue::User(id) => {
                    Value::User(UserRef::Id(Raw::Number(id.get() as i64)))
                }
                // Only the kinds `commands.rs` registers can arrive.
                _ => return None,
            };
            Some((option.name.clone(), value))
        })
        .collect();
    request(
        format!("i{}", command.id),
        command.guild_id,
        command.channel_id,
        &command.user,
        command.data.name.clone(),
        ArgInput::Options(options),
    )
}

/// A button's custom id is the command line it runs, as the member who pressed it.
fn pressed(press: &ComponentInteraction) -> Option<Request> {
    let line = command_line(&press.data.custom_id, &["/"])?;
    let args = ArgInput::Text(line.args.to_owned());
    Some(request(
        format!("i{}", press.id),
        press.guild_id,
        press.channel_id,
        &press.user,
        line.name,
        args,
    ))
}

/// The server's name as the cache has it.
fn guild_name(ctx: &Context, guild: Option<GuildId>) -> Option<String> {
    ctx.cache.guild(guild?).map(|g| g.name.clone())
}

/// `id` is the message's or the interaction's snowflake, unique across Discord.
fn request(
    id: String,
    guild: Option<GuildId>,
    channel: DChannelId,
    user: &User,
    name: String,
    args: ArgInput,
) -> Request {
    Request {
        community: guild.map(community_id),
        community_name: None,
        channel: ChannelId::new(PlatformKind::Discord, channel.get() as i64),
        author: Author {
            id: user_id(user.id),
            name: display(user),
        },
        replied_to: None,
        id: Some(id),
        name,
        args,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_mention_commands_are_recognised() {
        let me = DUserId::new(42);
        let parsed = |text: &str, prefix: &str| {
            parse(text, prefix, me)
                .map(|(line, mentioned)| (line.name, line.args.to_owned(), mentioned))
        };
        assert_eq!(
            parsed("  !roll 2d6", "!"),
            Some(("roll".into(), "2d6".into(), false))
        );
        assert_eq!(
            parsed("<@42> roll 1d20", "!"),
            Some(("roll".into(), "1d20".into(), true))
        );
        assert_eq!(
            parsed("<@!42>   /ping", ""),
            Some(("ping".into(), "".into(), true))
        );
        assert_eq!(
            parsed("<@42> !ping", "!"),
            Some(("ping".into(), "".into(), true))
        );
        assert_eq!(parsed("!ping", ""), None, "prefix commands are off");
        assert_eq!(parsed("<@43> ping", "!"), None, "another user");
        assert_eq!(parsed("hello !ping", "!"), None);
    }
}
