//! Proves `support/fake_discord.rs` is wire-compatible with the real serenity 0.12 client: every
//! event arrives typed (never `Event::Unknown`), the cache fills from GUILD_CREATE, responses and
//! REST calls land on the fake, resumes work, and auth/intent failures surface as serenity
//! reports them. Nothing here talks to anything but 127.0.0.1.

#[path = "support/fake_discord.rs"]
mod fake_discord;

use std::time::Duration;

use fake_discord::{
    ButtonSpec, CommandSpec, Direction, Failure, FakeDiscord, FakeDiscordConfig, MessageSpec,
    OptionValue, ids,
};
use serde_json::{Value, json};
use serenity::all::{
    ActivityData, ChannelId, Client, ClientBuilder, Command, CommandDataOptionValue,
    CommandInteraction, ComponentInteraction, Context, CreateAllowedMentions, CreateCommand,
    CreateCommandOption, CreateInteractionResponse, CreateInteractionResponseFollowup,
    CreateInteractionResponseMessage, CreateMessage, EditInteractionResponse, EditMember, Event,
    EventHandler, GatewayError, GatewayIntents, GetMessages, Guild, GuildCreateEvent, GuildId,
    GuildMembersChunkEvent, Http, HttpBuilder, HttpError, Interaction, Message, MessageId,
    OnlineStatus, Permissions, RawEventHandler, Ready, ResolvedValue, ResumedEvent, Timestamp,
    UserId, async_trait,
};
use serenity::gateway::ChunkGuildFilter;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(5);

/// What the event handlers saw, forwarded to the test body.
enum Seen {
    Ready(Context, Box<Ready>),
    GuildCreate(Box<Guild>),
    MembersChunk(Box<GuildMembersChunkEvent>),
    Message(Box<Message>),
    Command(Box<CommandInteraction>),
    Component(Box<ComponentInteraction>),
    Resumed,
    Unknown(String),
}

struct Handler(mpsc::UnboundedSender<Seen>);

#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        let _ = self.0.send(Seen::Ready(ctx, Box::new(ready)));
    }

    async fn guild_create(&self, _: Context, guild: Guild, _: Option<bool>) {
        let _ = self.0.send(Seen::GuildCreate(Box::new(guild)));
    }

    async fn message(&self, _: Context, message: Message) {
        let _ = self.0.send(Seen::Message(Box::new(message)));
    }

    async fn guild_members_chunk(&self, _: Context, chunk: GuildMembersChunkEvent) {
        let _ = self.0.send(Seen::MembersChunk(Box::new(chunk)));
    }

    async fn interaction_create(&self, _: Context, interaction: Interaction) {
        let seen = match interaction {
            Interaction::Command(command) => Seen::Command(Box::new(command)),
            Interaction::Component(component) => Seen::Component(Box::new(component)),
            other => Seen::Unknown(format!("unexpected interaction kind {:?}", other.kind())),
        };
        let _ = self.0.send(seen);
    }

    async fn resume(&self, _: Context, _: ResumedEvent) {
        let _ = self.0.send(Seen::Resumed);
    }
}

/// Catches events serenity failed to type: a payload missing a required field lands here.
struct UnknownCatcher(mpsc::UnboundedSender<Seen>);

#[async_trait]
impl RawEventHandler for UnknownCatcher {
    async fn raw_event(&self, _: Context, event: Event) {
        if let Event::Unknown(unknown) = event {
            let _ = self.0.send(Seen::Unknown(format!("{unknown:?}")));
        }
    }
}

/// Handlers run as separate tasks, so events may arrive out of order: keep the ones not asked
/// for yet.
struct Events {
    rx: mpsc::UnboundedReceiver<Seen>,
    pending: Vec<Seen>,
}

impl Events {
    async fn next<T>(&mut self, what: &str, mut pick: impl FnMut(Seen) -> Result<T, Seen>) -> T {
        let mut kept = Vec::new();
        let mut found = None;
        for seen in self.pending.drain(..) {
            assert_known(&seen);
            match found {
                None => match pick(seen) {
                    Ok(value) => found = Some(value),
                    Err(seen) => kept.push(seen),
                },
                Some(_) => kept.push(seen),
            }
        }
        self.pending = kept;
        if let Some(value) = found {
            return value;
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let seen = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .expect("handlers live as long as the client");
            assert_known(&seen);
            match pick(seen) {
                Ok(value) => return value,
                Err(seen) => self.pending.push(seen),
            }
        }
    }

    async fn message(&mut self) -> Message {
        self.next("a message", |s| match s {
            Seen::Message(m) => Ok(*m),
            other => Err(other),
        })
        .await
    }
}

fn assert_known(seen: &Seen) {
    if let Seen::Unknown(what) = seen {
        panic!("serenity could not type an event: {what}");
    }
}

/// Builds a serenity client aimed at the fake, the way the adapter must: REST through
/// `HttpBuilder::proxy` with serenity's ratelimiter off (the ratelimiter ignores the proxy).
async fn client_for(fake: &FakeDiscord, token: &str, intents: GatewayIntents) -> (Client, Events) {
    let (tx, rx) = mpsc::unbounded_channel();
    let http = HttpBuilder::new(token)
        .proxy(fake.api_url())
        .ratelimiter_disabled(true)
        .build();
    let client = ClientBuilder::new_with_http(http, intents)
        .event_handler(Handler(tx.clone()))
        .raw_event_handler(UnknownCatcher(tx))
        .activity(ActivityData::playing("the tests"))
        .status(OnlineStatus::DoNotDisturb)
        .await
        .expect("client builds");
    // serenity falls back to wss://gateway.discord.gg when GET /gateway fails: never go there.
    let ws_url = client.ws_url.lock().await.clone();
    assert_eq!(ws_url, fake.gateway_url());
    (
        client,
        Events {
            rx,
            pending: Vec::new(),
        },
    )
}

fn start(mut client: Client) -> JoinHandle<serenity::Result<()>> {
    tokio::spawn(async move { client.start().await })
}

/// Every intent the fake acts on; with GUILD_PRESENCES, GUILD_CREATE carries every member.
fn all_intents() -> GatewayIntents {
    GatewayIntents::GUILDS
        | GatewayIntents::GUILD_MEMBERS
        | GatewayIntents::GUILD_PRESENCES
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::DIRECT_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT
}

fn http_for(fake: &FakeDiscord, token: &str) -> Http {
    HttpBuilder::new(token)
        .proxy(fake.api_url())
        .ratelimiter_disabled(true)
        .build()
}

fn status_of(result: serenity::Result<impl std::fmt::Debug>) -> u16 {
    match result {
        Err(serenity::Error::Http(HttpError::UnsuccessfulRequest(response))) => {
            response.status_code.as_u16()
        }
        other => panic!("expected an unsuccessful request, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serenity_client_round_trip() {
    let config = FakeDiscordConfig {
        heartbeat_interval: Duration::from_millis(200),
        ..FakeDiscordConfig::default()
    };
    let fake = FakeDiscord::start(config).await;
    let (client, mut events) = client_for(&fake, "fake-token", all_intents()).await;
    let (http, cache, shards) = (
        client.http.clone(),
        client.cache.clone(),
        client.shard_manager.clone(),
    );
    let running = start(client);

    // Connect: serenity asks for `?v=10` only (JSON, no transport compression) and identifies
    // with the token, intents and presence it was built with.
    let identify = fake.wait_identified(WAIT).await;
    assert_eq!(fake.gateway_connections(), ["v=10"]);
    assert_eq!(identify["token"], "Bot fake-token");
    assert_eq!(identify["intents"], all_intents().bits());
    assert_eq!(identify["compress"], true);
    assert_eq!(identify["properties"]["browser"], "serenity");
    assert_eq!(identify["presence"]["status"], "dnd");
    assert_eq!(identify["presence"]["activities"][0]["name"], "the tests");

    let (ctx, ready) = events
        .next("READY", |s| match s {
            Seen::Ready(ctx, ready) => Ok((ctx, ready)),
            other => Err(other),
        })
        .await;
    assert_eq!(ready.user.id, UserId::new(ids::BOT));
    assert_eq!(ready.guilds[0].id, GuildId::new(ids::GUILD));
    assert_eq!(ready.resume_gateway_url, fake.gateway_url());
    // READY's application id is what interaction follow-ups use.
    assert_eq!(http.application_id().map(|a| a.get()), Some(ids::BOT));

    // GUILD_CREATE arrives typed and fills the cache with roles, members and channels.
    let guild = events
        .next("GUILD_CREATE", |s| match s {
            Seen::GuildCreate(guild) => Ok(guild),
            other => Err(other),
        })
        .await;
    assert_eq!(guild.members.len(), 5);
    let cached = Guild::clone(&cache.guild(ids::GUILD).expect("guild cached"));
    assert_eq!(cached.owner_id, UserId::new(ids::OWNER));
    assert_eq!(cached.roles.len(), 4);
    assert_eq!(cached.channels.len(), 2);
    let member = |id| cached.members.get(&UserId::new(id)).expect("member cached");
    let moderator = cached.member_permissions(member(ids::MODERATOR));
    assert!(moderator.contains(Permissions::KICK_MEMBERS | Permissions::SEND_MESSAGES));
    assert!(
        !cached
            .member_permissions(member(ids::ALICE))
            .contains(Permissions::KICK_MEMBERS)
    );
    assert!(
        cached
            .member_permissions(member(ids::OWNER))
            .administrator()
    );
    let mod_log = cached
        .channels
        .get(&ChannelId::new(ids::MOD_LOG))
        .expect("channel cached");
    assert!(
        !cached
            .user_permissions_in(mod_log, member(ids::ALICE))
            .view_channel()
    );
    assert!(
        cached
            .user_permissions_in(mod_log, member(ids::MODERATOR))
            .view_channel()
    );
    let bot_vs_alice = cached.greater_member_hierarchy(&cache, ids::BOT, ids::ALICE);
    assert_eq!(bot_vs_alice, Some(UserId::new(ids::BOT)));

    // Heartbeats are acknowledged: the shard measures a latency from the ACKs.
    fake.wait_for_frame(|f| f.direction == Direction::Received && f.op == 1, WAIT)
        .await;
    fake.wait_for_frame(|f| f.direction == Direction::Sent && f.op == 11, WAIT)
        .await;
    let measured = tokio::time::timeout(WAIT, async {
        while shards
            .runners
            .lock()
            .await
            .values()
            .all(|r| r.latency.is_none())
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    measured
        .await
        .expect("heartbeat ACKs give the shard a latency");

    // MESSAGE_CREATE arrives as a typed Message with guild, member and mentions.
    fake.send_message_create(
        MessageSpec::in_channel(ids::GENERAL, ids::ALICE, "!ping").mentioning(&[ids::BOB]),
    );
    let message = events.message().await;
    assert_eq!(message.content, "!ping");
    assert_eq!(message.author.id, UserId::new(ids::ALICE));
    assert_eq!(message.guild_id, Some(GuildId::new(ids::GUILD)));
    assert_eq!(message.member.as_ref().expect("member").roles.len(), 1);
    assert_eq!(message.mentions[0].id, UserId::new(ids::BOB));

    // REST goes to the fake, authenticated, and passes serenity's cache permission check.
    let sent = ChannelId::new(ids::GENERAL)
        .send_message(
            (&cache, &*http),
            CreateMessage::new()
                .content("pong")
                .allowed_mentions(CreateAllowedMentions::new().empty_users()),
        )
        .await
        .expect("message sent");
    let route = format!("/channels/{}/messages", ids::GENERAL);
    let call = fake.wait_for_call(|c| c.is("POST", &route), WAIT).await;
    assert_eq!(call.authorization.as_deref(), Some("Bot fake-token"));
    assert_eq!(call.body["content"], "pong");
    assert_eq!(call.body["allowed_mentions"]["users"], json!([]));
    assert_eq!(sent.content, "pong");

    // INTERACTION_CREATE type 2 arrives as Interaction::Command with typed, resolved options.
    let invoked = fake.send_command(
        CommandSpec::new("warn", ids::MODERATOR, ids::GENERAL)
            .option("user", OptionValue::User(ids::ALICE))
            .option("days", OptionValue::Integer(3))
            .option("reason", OptionValue::String("spam".into())),
    );
    let command = events
        .next("a command", |s| match s {
            Seen::Command(c) => Ok(c),
            other => Err(other),
        })
        .await;
    assert_eq!(command.data.name, "warn");
    assert_eq!(command.user.id, UserId::new(ids::MODERATOR));
    let invoker = command
        .member
        .as_ref()
        .expect("guild interaction has a member");
    assert!(invoker.permissions.expect("permissions").kick_members());
    assert_eq!(
        command.data.options[1].value,
        CommandDataOptionValue::Integer(3)
    );
    match &command.data.options()[0].value {
        ResolvedValue::User(user, member) => {
            assert_eq!(user.id, UserId::new(ids::ALICE));
            assert_eq!(member.expect("resolved member").roles.len(), 1);
        }
        other => panic!("user option resolved as {other:?}"),
    }

    // Answering: defer (callback), then edit the original and follow up (webhook routes).
    command.defer(&http).await.expect("deferred");
    let callback = fake
        .wait_for_call(|c| c.is("POST", &invoked.callback_route()), WAIT)
        .await;
    assert_eq!(
        (callback.status, callback.body["type"].as_u64()),
        (204, Some(5))
    );
    let edited = command
        .edit_response(&http, EditInteractionResponse::new().content("warned"))
        .await
        .expect("original edited");
    assert_eq!(edited.content, "warned");
    let original = format!(
        "/webhooks/{}/{}/messages/@original",
        ids::BOT,
        invoked.token
    );
    assert_eq!(
        fake.wait_for_call(|c| c.is("PATCH", &original), WAIT)
            .await
            .status,
        200
    );
    command
        .create_followup(
            &http,
            CreateInteractionResponseFollowup::new().content("and logged"),
        )
        .await
        .expect("follow-up sent");
    let followup = format!("/webhooks/{}/{}", ids::BOT, invoked.token);
    let call = fake.wait_for_call(|c| c.is("POST", &followup), WAIT).await;
    assert_eq!(call.body["content"], "and logged");
    let again = command.defer(&http).await;
    assert_eq!(
        status_of(again),
        400,
        "a second initial response is refused, as by Discord"
    );

    // INTERACTION_CREATE type 3 arrives as Interaction::Component.
    let pressed = fake.send_button(ButtonSpec {
        custom_id: "confirm".into(),
        user_id: ids::ALICE,
        channel_id: ids::GENERAL,
        message_id: sent.id.get(),
    });
    let component = events
        .next("a button press", |s| match s {
            Seen::Component(c) => Ok(c),
            other => Err(other),
        })
        .await;
    assert_eq!(component.data.custom_id, "confirm");
    assert_eq!(component.message.id, sent.id);
    let reply = CreateInteractionResponseMessage::new()
        .content("ok")
        .ephemeral(true);
    component
        .create_response(&http, CreateInteractionResponse::Message(reply))
        .await
        .expect("component answered");
    let call = fake
        .wait_for_call(|c| c.is("POST", &pressed.callback_route()), WAIT)
        .await;
    assert_eq!(call.body["data"]["flags"], 64);

    // UPDATE_MESSAGE (7) replaces the pressed message; a slash command has none to replace.
    let again = fake.send_button(ButtonSpec {
        custom_id: "confirm".into(),
        user_id: ids::ALICE,
        channel_id: ids::GENERAL,
        message_id: sent.id.get(),
    });
    let component = events
        .next("a second press", |s| match s {
            Seen::Component(c) => Ok(c),
            other => Err(other),
        })
        .await;
    let update = CreateInteractionResponseMessage::new().content("updated");
    component
        .create_response(&http, CreateInteractionResponse::UpdateMessage(update))
        .await
        .expect("a press may update its message");
    let call = fake
        .wait_for_call(|c| c.is("POST", &again.callback_route()), WAIT)
        .await;
    assert_eq!((call.status, call.body["type"].as_u64()), (204, Some(7)));
    let typed = fake.send_command(CommandSpec::new("warn", ids::MODERATOR, ids::GENERAL));
    let command = events
        .next("a command", |s| match s {
            Seen::Command(c) => Ok(c),
            other => Err(other),
        })
        .await;
    let update = CreateInteractionResponseMessage::new().content("updated");
    let refused = command
        .create_response(&http, CreateInteractionResponse::UpdateMessage(update))
        .await;
    assert_eq!(
        status_of(refused),
        400,
        "no message to update under a command"
    );
    let call = fake
        .wait_for_call(|c| c.is("POST", &typed.callback_route()), WAIT)
        .await;
    assert_eq!(call.status, 400);

    // Presence changes go out as op 3.
    ctx.set_presence(Some(ActivityData::watching("the fake")), OnlineStatus::Idle);
    let presence = fake
        .wait_for_frame(|f| f.direction == Direction::Received && f.op == 3, WAIT)
        .await;
    assert_eq!(presence.d["status"], "idle");
    assert_eq!(presence.d["activities"][0]["type"], 3, "3 is Watching");
    assert_eq!(fake.presence_updates(), [presence.d]);

    // Forced close 4000: serenity resumes (same session), and what was dispatched meanwhile is
    // replayed.
    fake.disconnect();
    fake.send_message_create(MessageSpec::in_channel(
        ids::GENERAL,
        ids::BOB,
        "while away",
    ));
    fake.wait_resumed(WAIT).await;
    events
        .next("RESUMED", |s| {
            if let Seen::Resumed = s {
                Ok(())
            } else {
                Err(s)
            }
        })
        .await;
    assert_eq!(events.message().await.content, "while away");
    let resume = fake
        .wait_for_frame(|f| f.direction == Direction::Received && f.op == 6, WAIT)
        .await;
    assert_eq!(resume.d["session_id"], ready.session_id.as_str());
    assert_eq!(resume.d["token"], "Bot fake-token");

    // A dropped socket (no close frame) is resumed too.
    fake.drop_connection();
    fake.wait_resumed(WAIT).await;
    fake.send_message_create(MessageSpec::in_channel(ids::GENERAL, ids::ALICE, "back"));
    assert_eq!(events.message().await.content, "back");
    assert_eq!(fake.gateway_connections().len(), 3);
    let identifies = fake.gateway_frames().iter().filter(|f| f.op == 2).count();
    assert_eq!(identifies, 1, "resumes must not re-identify");

    shards.shutdown_all().await;
    let ended = tokio::time::timeout(WAIT, running)
        .await
        .expect("client stops")
        .expect("joined");
    assert!(
        ended.is_ok(),
        "a clean shutdown ends Client::start with Ok: {ended:?}"
    );
    assert!(
        fake.calls()
            .iter()
            .all(|c| c.authorization.as_deref() == Some("Bot fake-token"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_answers_parse_as_serenity_models() {
    let fake = FakeDiscord::start(FakeDiscordConfig::default()).await;
    let http = http_for(&fake, "fake-token");
    let guild = GuildId::new(ids::GUILD);

    assert_eq!(
        http.get_gateway().await.expect("gateway").url,
        fake.gateway_url()
    );
    assert_eq!(http.get_bot_gateway().await.expect("bot gateway").shards, 1);
    assert_eq!(
        http.get_current_user().await.expect("me").id,
        UserId::new(ids::BOT)
    );
    let app = http
        .get_current_application_info()
        .await
        .expect("application");
    assert_eq!(app.id.get(), ids::BOT);
    // Without a gateway READY, command routes need the application id set by hand.
    http.set_application_id(app.id);
    let partial = http.get_guild(guild).await.expect("guild");
    assert_eq!(
        (partial.name.as_str(), partial.roles.len()),
        ("Fake Guild", 4)
    );
    assert_eq!(http.get_guild_roles(guild).await.expect("roles").len(), 4);
    assert_eq!(http.get_channels(guild).await.expect("channels").len(), 2);
    let alice = http
        .get_member(guild, UserId::new(ids::ALICE))
        .await
        .expect("member");
    assert_eq!(alice.user.name, "alice");
    let dm = UserId::new(ids::ALICE)
        .create_dm_channel(&http)
        .await
        .expect("dm channel");
    assert_eq!(dm.recipient.id, UserId::new(ids::ALICE));
    let dm_message = dm.id.say(&http, "hello in private").await.expect("dm sent");
    assert_eq!(dm_message.guild_id, None);

    // Bulk overwrites are echoed with ids, as Discord does; the ids reach later interactions.
    let ping = CreateCommand::new("ping").description("Check the bot is alive");
    let commands = Command::set_global_commands(&http, vec![ping])
        .await
        .expect("global");
    assert_eq!(commands[0].name, "ping");
    let kick = CreateCommand::new("kick")
        .description("Kick a member")
        .add_option(
            CreateCommandOption::new(serenity::all::CommandOptionType::User, "user", "Who")
                .required(true),
        );
    let commands = guild
        .set_commands(&http, vec![kick])
        .await
        .expect("guild commands");
    assert_eq!(commands[0].guild_id, Some(guild));
    assert!(commands[0].options[0].required);
    let bad = guild
        .set_commands(&http, vec![CreateCommand::new("Kick").description("x")])
        .await;
    assert_eq!(
        status_of(bad),
        400,
        "Discord refuses upper-case chat command names"
    );

    // Moderation calls carry what Discord needs: the timeout, the audit-log reason, the query.
    let until = Timestamp::from_unix_timestamp(4_000_000_000).expect("timestamp");
    let edit = EditMember::new().disable_communication_until_datetime(until);
    let edited = guild
        .edit_member(&http, ids::ALICE, edit)
        .await
        .expect("timed out");
    assert_eq!(edited.communication_disabled_until, Some(until));
    let stored = fake
        .member(ids::ALICE)
        .and_then(|m| m.communication_disabled_until);
    assert_eq!(stored.as_deref(), Some(until.to_string().as_str()));
    guild
        .kick_with_reason(&http, ids::BOB, "spamming links")
        .await
        .expect("kicked");
    let kicked = format!("/guilds/{}/members/{}", ids::GUILD, ids::BOB);
    let call = fake.wait_for_call(|c| c.is("DELETE", &kicked), WAIT).await;
    assert_eq!(call.audit_log_reason.as_deref(), Some("spamming links"));
    assert!(fake.member(ids::BOB).is_none());
    guild
        .ban_with_reason(&http, ids::ALICE, 1, "raid")
        .await
        .expect("banned");
    let banned = format!("/guilds/{}/bans/{}", ids::GUILD, ids::ALICE);
    let call = fake.wait_for_call(|c| c.is("PUT", &banned), WAIT).await;
    assert_eq!(call.query_value("delete_message_seconds"), Some("86400"));
    assert!(fake.is_banned(ids::ALICE));
    guild.unban(&http, ids::ALICE).await.expect("unbanned");
    assert_eq!(status_of(guild.unban(&http, ids::ALICE).await), 404);

    let general = ChannelId::new(ids::GENERAL);
    let message =
        |age: u64| MessageId::new(fake.seed_message(ids::GENERAL, Duration::from_secs(age)));
    let recent = [message(60), message(30)];
    general
        .delete_messages(&http, recent)
        .await
        .expect("bulk delete");
    let call = fake
        .wait_for_call(|c| c.route().ends_with("/messages/bulk-delete"), WAIT)
        .await;
    assert_eq!(call.body["messages"].as_array().map(Vec::len), Some(2));
    // One message of two weeks or more refuses the whole bulk delete.
    let mixed = [message(20), message(14 * 24 * 3600)];
    let refused = general.delete_messages(&http, mixed).await;
    assert_eq!(refusal(refused), (400, 50034));
    assert_eq!(fake.channel_messages(ids::GENERAL).len(), 2, "none deleted");
    let empty = general.send_message(&http, CreateMessage::new()).await;
    assert_eq!(status_of(empty), 400, "Discord refuses an empty message");

    let unknown = http.get_guild(GuildId::new(42)).await;
    assert_eq!(status_of(unknown), 404);
    let recorded = fake.calls();
    assert!(
        recorded
            .iter()
            .all(|c| c.authorization.as_deref() == Some("Bot fake-token"))
    );
    assert!(
        recorded
            .iter()
            .any(|c| c.is("GET", "/guilds/42") && c.status == 404)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_failures_reach_the_caller_unretried() {
    let fake = FakeDiscord::start(FakeDiscordConfig::default()).await;
    let http = http_for(&fake, "fake-token");
    let general = ChannelId::new(ids::GENERAL);
    let route = format!("/channels/{}/messages", ids::GENERAL);

    // With serenity's ratelimiter off, a 429 comes straight back: the adapter must honour it.
    // Discord's 429 body has no `code`, which serenity's DiscordJsonError requires, so serenity
    // reports a decode failure (code -1): retry_after is not reachable through serenity.
    let limited = Failure::RateLimited {
        retry_after: 2.5,
        global: false,
    };
    fake.fail_next("POST", "/channels/", limited);
    match general.say(&http, "first").await {
        Err(serenity::Error::Http(HttpError::UnsuccessfulRequest(response))) => {
            assert_eq!(response.status_code.as_u16(), 429);
            assert_eq!(response.error.code, -1, "{}", response.error.message);
        }
        other => panic!("expected a 429, got {other:?}"),
    }
    general
        .say(&http, "second")
        .await
        .expect("the failure was used up");
    let statuses: Vec<u16> = fake
        .calls()
        .iter()
        .filter(|c| c.is("POST", &route))
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, [429, 200], "serenity did not retry on its own");

    fake.fail_next_n("GET", "/users/@me", Failure::Forbidden, 2);
    assert_eq!(status_of(http.get_current_user().await), 403);
    assert_eq!(status_of(http.get_current_user().await), 403);
    http.get_current_user().await.expect("third call succeeds");
    fake.fail_next("GET", "/guilds/", Failure::NotFound);
    assert_eq!(
        status_of(http.get_guild(GuildId::new(ids::GUILD)).await),
        404
    );
    fake.fail_next("GET", "/guilds/", Failure::Unauthorized);
    assert_eq!(
        status_of(http.get_guild(GuildId::new(ids::GUILD)).await),
        401
    );

    // The headers Discord sends with a 429, per-route and global.
    fake.fail_next("GET", "/users/@me", limited);
    let head = raw_get(&fake, "/api/v10/users/@me").await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    for header in [
        "retry-after: 3",
        "x-ratelimit-limit: 5",
        "x-ratelimit-remaining: 0",
        "x-ratelimit-reset-after: 2.500",
        "x-ratelimit-bucket: ",
        "x-ratelimit-reset: ",
        "x-ratelimit-scope: user",
    ] {
        assert!(head.contains(header), "missing {header:?} in {head}");
    }
    assert!(!head.contains("x-ratelimit-global"));
    fake.fail_next(
        "GET",
        "/users/@me",
        Failure::RateLimited {
            retry_after: 1.0,
            global: true,
        },
    );
    let head = raw_get(&fake, "/api/v10/users/@me").await;
    assert!(head.contains("x-ratelimit-global: true"), "{head}");
    assert!(head.contains("\"global\":true"), "{head}");
}

/// A bare HTTP/1.1 GET with the bot token, returning the response head and body as text, so the
/// test sees the headers themselves rather than serenity's reading of them.
async fn raw_get(fake: &FakeDiscord, path: &str) -> String {
    let addr = fake.api_url().trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect to fake");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bot fake-token\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
        .to_ascii_lowercase()
        .replacen("http/1.1", "HTTP/1.1", 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_token_is_401_on_rest_and_ends_start_with_invalid_authentication() {
    let fake = FakeDiscord::start(FakeDiscordConfig::default()).await;
    assert_eq!(
        status_of(http_for(&fake, "wrong-token").get_current_user().await),
        401
    );

    // GET /gateway needs no token (as on Discord), so the client builds and only IDENTIFY fails.
    let (client, _events) = client_for(&fake, "wrong-token", all_intents()).await;
    let ended = tokio::time::timeout(WAIT, start(client))
        .await
        .expect("start returns");
    match ended.expect("joined") {
        Err(serenity::Error::Gateway(GatewayError::InvalidAuthentication)) => {}
        other => panic!("expected InvalidAuthentication, got {other:?}"),
    }
    let identifies = fake.gateway_frames().iter().filter(|f| f.op == 2).count();
    assert_eq!(identifies, 1, "serenity gives up after one 4004");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_token_fails_the_resume_with_4004() {
    let fake = FakeDiscord::start(FakeDiscordConfig::default()).await;
    let (client, _events) = client_for(&fake, "fake-token", all_intents()).await;
    let http = client.http.clone();
    let running = start(client);
    fake.wait_identified(WAIT).await;

    fake.revoke_token();
    assert_eq!(status_of(http.get_current_user().await), 401);
    fake.disconnect();
    let ended = tokio::time::timeout(WAIT, running)
        .await
        .expect("start returns");
    match ended.expect("joined") {
        Err(serenity::Error::Gateway(GatewayError::InvalidAuthentication)) => {}
        other => panic!("expected InvalidAuthentication, got {other:?}"),
    }
    assert!(
        fake.gateway_frames().iter().any(|f| f.op == 6),
        "it tried to resume first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileged_intent_not_enabled_ends_start_with_disallowed_intents() {
    let config = FakeDiscordConfig {
        privileged_intents: 0,
        ..FakeDiscordConfig::default()
    };
    let fake = FakeDiscord::start(config).await;
    let (client, _events) = client_for(&fake, "fake-token", all_intents()).await;
    let ended = tokio::time::timeout(WAIT, start(client))
        .await
        .expect("start returns");
    match ended.expect("joined") {
        Err(serenity::Error::Gateway(GatewayError::DisallowedGatewayIntents)) => {}
        other => panic!("expected DisallowedGatewayIntents, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_4013_ends_start_with_invalid_intents() {
    let fake = FakeDiscord::start(FakeDiscordConfig::default()).await;
    let (client, _events) = client_for(&fake, "fake-token", all_intents()).await;
    let running = start(client);
    fake.wait_identified(WAIT).await;
    fake.close_gateway(4013);
    let ended = tokio::time::timeout(WAIT, running)
        .await
        .expect("start returns");
    match ended.expect("joined") {
        Err(serenity::Error::Gateway(GatewayError::InvalidGatewayIntents)) => {}
        other => panic!("expected InvalidGatewayIntents, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_intents_thin_out_events_as_on_discord() {
    let fake = FakeDiscord::start(FakeDiscordConfig::default()).await;
    let intents = GatewayIntents::GUILDS | GatewayIntents::GUILD_MESSAGES;
    let (client, mut events) = client_for(&fake, "fake-token", intents).await;
    let cache = client.cache.clone();
    let running = start(client);
    fake.wait_identified(WAIT).await;

    // Without GUILD_PRESENCES the cache only knows the bot's own member.
    events
        .next("GUILD_CREATE", |s| {
            if let Seen::GuildCreate(_) = s {
                Ok(())
            } else {
                Err(s)
            }
        })
        .await;
    let members: Vec<UserId> = cache
        .guild(ids::GUILD)
        .expect("guild cached")
        .members
        .keys()
        .copied()
        .collect();
    assert_eq!(members, [UserId::new(ids::BOT)]);

    // Without MESSAGE_CONTENT only messages that mention the bot keep their content.
    fake.send_message_create(MessageSpec::in_channel(ids::GENERAL, ids::ALICE, "!ping"));
    assert_eq!(events.message().await.content, "");
    let addressed = MessageSpec::in_channel(ids::GENERAL, ids::ALICE, "<@bot> !ping");
    fake.send_message_create(addressed.mentioning(&[ids::BOT]));
    assert_eq!(events.message().await.content, "<@bot> !ping");

    // Without DIRECT_MESSAGES, DMs are not delivered at all; the next guild message is.
    fake.send_message_create(MessageSpec::direct(ids::ALICE, "psst"));
    fake.send_message_create(
        MessageSpec::in_channel(ids::GENERAL, ids::BOB, "hi").mentioning(&[ids::BOT]),
    );
    assert_eq!(events.message().await.content, "hi");
    running.abort();
}

/// The payload builders deserialize into serenity's models directly, so a missing field shows up
/// here as an error naming it rather than as a silent `Event::Unknown`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_deserialize_as_typed_gateway_events() {
    let fake = FakeDiscord::start(FakeDiscordConfig::default()).await;
    let (client, _events) = client_for(&fake, "fake-token", all_intents()).await;
    let running = start(client);
    fake.wait_identified(WAIT).await;
    fake.send_message_create(MessageSpec::direct(ids::ALICE, "dm"));
    fake.send_command(
        CommandSpec::new("roll", ids::ALICE, ids::GENERAL)
            .option("sides", OptionValue::Number(6.0))
            .option("loud", OptionValue::Boolean(true))
            .option("where", OptionValue::Channel(ids::MOD_LOG))
            .option("who", OptionValue::Role(ids::ROLE_MEMBER)),
    );
    fake.send_button(ButtonSpec {
        custom_id: "b".into(),
        user_id: ids::OWNER,
        channel_id: ids::GENERAL,
        message_id: 1_200_000_000_000_000_009,
    });
    let is_button =
        |f: &fake_discord::GatewayFrame| f.direction == Direction::Sent && f.d["type"] == 3;
    fake.wait_for_frame(is_button, WAIT).await;
    running.abort();

    let mut names = Vec::new();
    for frame in fake.gateway_frames().iter().filter(|f| f.op == 0) {
        let event: Event = serde_json::from_value(json!({"t": frame.t, "d": frame.d}))
            .expect("event deserializes");
        let name = event
            .name()
            .unwrap_or_else(|| panic!("{:?} became Event::Unknown", frame.t));
        names.push(name);
    }
    assert_eq!(
        names,
        [
            "READY",
            "GUILD_CREATE",
            "MESSAGE_CREATE",
            "INTERACTION_CREATE",
            "INTERACTION_CREATE"
        ]
    );
    let guild_create = fake.config().guild_create_json(&fake.config().members);
    let guild: GuildCreateEvent = serde_json::from_value(guild_create).expect("guild create");
    assert!(
        guild
            .guild
            .roles
            .values()
            .all(|r| r.guild_id == GuildId::new(ids::GUILD))
    );
    let frames = fake.gateway_frames();
    let last: &Value = &frames.iter().rev().find(|f| f.op == 0).expect("dispatch").d;
    assert!(matches!(
        serde_json::from_value::<Interaction>(last.clone()),
        Ok(Interaction::Component(_))
    ));
}

/// Without GUILD_PRESENCES GUILD_CREATE carries only the bot; REQUEST_GUILD_MEMBERS (op 8) as
/// serenity sends it finds members by the start of their username or nickname, answered by a
/// typed GUILD_MEMBERS_CHUNK with the nonce, and a malformed request closes the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_search_answers_op_8_with_a_chunk() {
    let mut world = FakeDiscordConfig::default();
    world
        .members
        .iter_mut()
        .find(|m| m.user.id == ids::BOB)
        .unwrap()
        .nick = Some("Alfie".into());
    let fake = FakeDiscord::start(world).await;
    let intents = GatewayIntents::GUILDS | GatewayIntents::GUILD_MEMBERS;
    let (client, mut events) = client_for(&fake, "fake-token", intents).await;
    let cache = client.cache.clone();
    let running = start(client);
    let ctx = events
        .next("READY", |s| match s {
            Seen::Ready(ctx, _) => Ok(ctx),
            other => Err(other),
        })
        .await;
    let guild = events
        .next("GUILD_CREATE", |s| match s {
            Seen::GuildCreate(guild) => Ok(guild),
            other => Err(other),
        })
        .await;
    assert_eq!(
        guild.members.keys().copied().collect::<Vec<_>>(),
        [UserId::new(ids::BOT)]
    );

    let guild_id = GuildId::new(ids::GUILD);
    let query = ChunkGuildFilter::Query("AL".into());
    ctx.shard
        .chunk_guild(guild_id, Some(100), false, query, Some("n1".into()));
    let chunk = events
        .next("GUILD_MEMBERS_CHUNK", |s| match s {
            Seen::MembersChunk(chunk) => Ok(chunk),
            other => Err(other),
        })
        .await;
    let mut found: Vec<u64> = chunk.members.keys().map(|id| id.get()).collect();
    found.sort();
    assert_eq!(
        found,
        [ids::ALICE, ids::BOB],
        "username alice, nickname Alfie"
    );
    assert_eq!(
        (chunk.nonce.as_deref(), chunk.chunk_index, chunk.chunk_count),
        (Some("n1"), 0, 1)
    );
    let request = fake
        .gateway_frames()
        .into_iter()
        .find(|f| f.direction == Direction::Received && f.op == 8)
        .expect("op 8 sent");
    assert_eq!(request.d["query"], "AL");
    assert_eq!(request.d["limit"], 100);
    // serenity put the members it was sent into its cache.
    let cached = cache.guild(guild_id).expect("guild cached").members.len();
    assert_eq!(cached, 3);

    // A query without a limit is malformed: Discord closes with 4002.
    let bad = ChunkGuildFilter::Query("al".into());
    ctx.shard.chunk_guild(guild_id, None, false, bad, None);
    let deadline = tokio::time::Instant::now() + WAIT;
    while fake.gateway_connections().len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the malformed request did not end the connection"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answered = fake
        .gateway_frames()
        .iter()
        .filter(|f| f.t.as_deref() == Some("GUILD_MEMBERS_CHUNK"))
        .count();
    assert_eq!(answered, 1, "only the well-formed request was answered");
    running.abort();
}

/// Like Discord, the fake limits each route by itself and says so on every answer: sending
/// messages is 5 per 5 s per channel, and past that a 429 comes back with `retry_after` and
/// the `X-RateLimit-*` headers, while another channel is not held up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_are_rate_limited_per_channel_with_discords_headers() {
    const OTHER: u64 = 1_100_000_000_000_000_299;
    let mut world = FakeDiscordConfig::default();
    world
        .channels
        .push(fake_discord::FakeChannel::text(OTHER, "other"));
    let fake = FakeDiscord::start(world).await;
    let http = http_for(&fake, "fake-token");
    let head = raw_get(&fake, "/api/v10/users/@me").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    for header in [
        "x-ratelimit-limit: 10",
        "x-ratelimit-remaining: 9",
        "x-ratelimit-reset-after: ",
        "x-ratelimit-reset: ",
        "x-ratelimit-bucket: ",
    ] {
        assert!(head.contains(header), "missing {header:?} in {head}");
    }
    for _ in 0..9 {
        raw_get(&fake, "/api/v10/users/@me").await;
    }
    let head = raw_get(&fake, "/api/v10/users/@me").await;
    assert!(
        head.starts_with("HTTP/1.1 429"),
        "the eleventh in a second: {head}"
    );
    for part in [
        "retry-after: 1",
        "x-ratelimit-remaining: 0",
        "x-ratelimit-scope: user",
        "\"retry_after\":",
        "\"global\":false",
    ] {
        assert!(head.contains(part), "missing {part:?} in {head}");
    }

    let general = ChannelId::new(ids::GENERAL);
    for i in 0..5 {
        general
            .say(&http, format!("within the limit {i}"))
            .await
            .expect("five messages a window");
    }
    assert_eq!(status_of(general.say(&http, "one too many").await), 429);
    ChannelId::new(OTHER)
        .say(&http, "another channel")
        .await
        .expect("another channel has its own window");
    let route = format!("/channels/{}/messages", ids::GENERAL);
    let calls = fake.calls();
    let limited = calls
        .iter()
        .rfind(|c| c.is("POST", &route))
        .expect("the sixth call");
    assert_eq!(limited.status, 429);
    assert_eq!(
        fake.channel_messages(ids::GENERAL).len(),
        5,
        "a limited call is not carried out"
    );

    // The window opened with the first message: once it has passed, sending works again.
    tokio::time::sleep(Duration::from_millis(5_100)).await;
    general
        .say(&http, "a new window")
        .await
        .expect("the window was reset");
}

/// The status and Discord error code serenity reports for a refused request.
fn refusal(result: serenity::Result<impl std::fmt::Debug>) -> (u16, isize) {
    match result {
        Err(serenity::Error::Http(HttpError::UnsuccessfulRequest(response))) => {
            (response.status_code.as_u16(), response.error.code)
        }
        other => panic!("expected an unsuccessful request, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acting_on_the_owner_or_an_equal_rank_is_403_missing_permissions() {
    use fake_discord::perms;
    let mut world = FakeDiscordConfig::default();
    for role in &mut world.roles {
        match role.id {
            // The moderators' role level with the bot's: Discord refuses "at or above".
            ids::ROLE_MODERATOR => role.position = 3,
            ids::ROLE_BOT => role.permissions |= perms::MANAGE_ROLES,
            _ => {}
        }
    }
    let fake = FakeDiscord::start(world).await;
    let http = http_for(&fake, "fake-token");
    let guild = GuildId::new(ids::GUILD);
    let until = Timestamp::from_unix_timestamp(4_000_000_000).expect("timestamp");
    let timeout = || EditMember::new().disable_communication_until_datetime(until);
    let missing = (403, 50013);

    for target in [ids::OWNER, ids::MODERATOR] {
        let result = guild.edit_member(&http, target, timeout()).await;
        assert_eq!(refusal(result), missing, "timeout {target}");
        let result = guild.kick_with_reason(&http, target, "x").await;
        assert_eq!(refusal(result), missing, "kick {target}");
        let result = guild.ban_with_reason(&http, target, 0, "x").await;
        assert_eq!(refusal(result), missing, "ban {target}");
    }
    assert!(fake.member(ids::MODERATOR).is_some() && !fake.is_banned(ids::OWNER));
    assert_eq!(
        fake.member(ids::OWNER)
            .unwrap()
            .communication_disabled_until,
        None
    );

    // Roles: the bot may hand out only roles below its own highest.
    let give = |role| EditMember::new().roles([serenity::all::RoleId::new(role)]);
    guild
        .edit_member(&http, ids::BOB, give(ids::ROLE_MEMBER))
        .await
        .expect("a lower role");
    let above = guild
        .edit_member(&http, ids::BOB, give(ids::ROLE_BOT))
        .await;
    assert_eq!(refusal(above), missing);
    assert_eq!(fake.member(ids::BOB).unwrap().roles, [ids::ROLE_MEMBER]);
    // A member below the bot is fair game; so is a ban by id of a non-member.
    guild
        .edit_member(&http, ids::ALICE, timeout())
        .await
        .expect("timeout");
    guild.kick(&http, ids::ALICE).await.expect("kick");
    guild
        .ban(&http, ids::ALICE, 0)
        .await
        .expect("ban after leaving");

    // Without the permission itself (the default bot role has no Manage Roles).
    let fake = FakeDiscord::start(FakeDiscordConfig::default()).await;
    let http = http_for(&fake, "fake-token");
    let no_right = guild
        .edit_member(&http, ids::BOB, give(ids::ROLE_MEMBER))
        .await;
    assert_eq!(refusal(no_right), missing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactions_have_a_3_second_deadline_and_a_15_minute_token() {
    use fake_discord::{INTERACTION_DEADLINE, INTERACTION_TOKEN_LIFETIME};
    use serenity::all::InteractionId;
    let fake = FakeDiscord::start(FakeDiscordConfig::default()).await;
    // Interactions come over the gateway: a client must be connected.
    let (client, _events) = client_for(&fake, "fake-token", all_intents()).await;
    let gateway = start(client);
    fake.wait_identified(WAIT).await;
    let http = http_for(&fake, "fake-token");
    http.set_application_id(serenity::all::ApplicationId::new(ids::BOT));
    let defer = CreateInteractionResponse::Defer(CreateInteractionResponseMessage::new());
    let send = |i: &fake_discord::SentInteraction| {
        let (id, token) = (InteractionId::new(i.id), i.token.clone());
        let http = &http;
        let defer = &defer;
        async move {
            http.create_interaction_response(id, &token, defer, vec![])
                .await
        }
    };

    let late = fake.send_command(CommandSpec::new("ping", ids::ALICE, ids::GENERAL));
    fake.age_interaction(late.id, INTERACTION_DEADLINE + Duration::from_millis(100));
    assert_eq!(
        refusal(send(&late).await),
        (404, 10062),
        "Unknown interaction"
    );

    let timely = fake.send_command(CommandSpec::new("ping", ids::ALICE, ids::GENERAL));
    fake.age_interaction(timely.id, INTERACTION_DEADLINE - Duration::from_millis(500));
    send(&timely).await.expect("in time");
    let followup = CreateInteractionResponseFollowup::new().content("done");
    fake.age_interaction(
        timely.id,
        INTERACTION_TOKEN_LIFETIME - Duration::from_secs(60),
    );
    http.create_followup_message(&timely.token, &followup, vec![])
        .await
        .expect("the token still serves follow-ups");
    fake.age_interaction(timely.id, Duration::from_secs(90));
    let expired = http
        .create_followup_message(&timely.token, &followup, vec![])
        .await;
    assert_eq!(refusal(expired), (401, 50027), "Invalid Webhook Token");
    let edit = EditInteractionResponse::new().content("edited");
    let expired = http
        .edit_original_interaction_response(&timely.token, &edit, vec![])
        .await;
    assert_eq!(refusal(expired), (401, 50027));
    gateway.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_unknown_message_is_404_unknown_message() {
    let fake = FakeDiscord::start(FakeDiscordConfig::default()).await;
    let http = http_for(&fake, "fake-token");
    let general = ChannelId::new(ids::GENERAL);
    let seeded = MessageId::new(fake.seed_message(ids::GENERAL, Duration::from_secs(60)));
    general
        .delete_message(&http, seeded)
        .await
        .expect("deleted");
    assert!(fake.channel_messages(ids::GENERAL).is_empty());
    let again = general.delete_message(&http, seeded).await;
    assert_eq!(refusal(again), (404, 10008));
}

/// Channel permissions, overwrites included, bind the bot as on Discord: it hears nothing from
/// a channel it cannot see and every call there is 403 Missing Access (50001); posting needs
/// Send Messages and deleting another's message Manage Messages (403, 50013), its own message
/// needs nothing, and without Read Message History the list of messages is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_permissions_bind_the_bot_with_discords_codes() {
    use fake_discord::{FakeOverwrite, perms};
    const HIDDEN: u64 = ids::MOD_LOG + 1;
    let mut world = FakeDiscordConfig::default();
    world.add_hidden_channel(HIDDEN, "hidden", &[]);
    let deny_bot = |deny: u64| FakeOverwrite::role(ids::ROLE_BOT, 0, deny);
    let (no_send, no_history) = (perms::SEND_MESSAGES, perms::READ_MESSAGE_HISTORY);
    world.overwrite(ids::GENERAL, deny_bot(no_send | no_history));
    world.overwrite(ids::MOD_LOG, deny_bot(perms::MANAGE_MESSAGES));
    let fake = FakeDiscord::start(world).await;
    let http = http_for(&fake, "fake-token");
    let (general, mod_log, hidden) = (
        ChannelId::new(ids::GENERAL),
        ChannelId::new(ids::MOD_LOG),
        ChannelId::new(HIDDEN),
    );
    let seed = |channel: u64| MessageId::new(fake.seed_message(channel, Duration::from_secs(60)));

    assert_eq!(refusal(hidden.say(&http, "hi").await), (403, 50001));
    let listed = hidden.messages(&http, GetMessages::new()).await;
    assert_eq!(refusal(listed), (403, 50001));
    let hidden_message = seed(HIDDEN);
    let deleted = hidden.delete_message(&http, hidden_message).await;
    assert_eq!(refusal(deleted), (403, 50001));

    assert_eq!(refusal(general.say(&http, "hi").await), (403, 50013));
    seed(ids::GENERAL);
    let listed = general.messages(&http, GetMessages::new()).await;
    assert!(listed.expect("listed").is_empty(), "no history to read");

    let others = [seed(ids::MOD_LOG), seed(ids::MOD_LOG)];
    let own = mod_log.say(&http, "posted").await.expect("may post");
    let deleted = mod_log.delete_message(&http, others[0]).await;
    assert_eq!(refusal(deleted), (403, 50013));
    let bulk = mod_log.delete_messages(&http, others).await;
    assert_eq!(refusal(bulk), (403, 50013));
    mod_log
        .delete_message(&http, own.id)
        .await
        .expect("its own message needs no permission");
    assert_eq!(fake.channel_messages(ids::MOD_LOG).len(), 2);

    // MESSAGE_CREATE from a channel the bot cannot see is not sent; the next one is.
    let (client, mut events) = client_for(&fake, "fake-token", all_intents()).await;
    let running = start(client);
    fake.wait_identified(WAIT).await;
    fake.send_message_create(MessageSpec::in_channel(HIDDEN, ids::ALICE, "unseen"));
    fake.send_message_create(MessageSpec::in_channel(ids::GENERAL, ids::BOB, "seen"));
    assert_eq!(events.message().await.content, "seen");
    running.abort();
}

/// A deleted channel answers serenity's calls 404 Unknown Channel (10003), and the session gets
/// a CHANNEL_DELETE that serenity reads as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_channel_is_unknown_and_its_deletion_is_dispatched() {
    let fake = FakeDiscord::start(FakeDiscordConfig::default()).await;
    let http = http_for(&fake, "fake-token");
    let (client, _events) = client_for(&fake, "fake-token", all_intents()).await;
    let running = start(client);
    fake.wait_identified(WAIT).await;
    let lounge = ChannelId::new(ids::MOD_LOG);
    lounge.say(&http, "before").await.expect("may post");

    fake.delete_channel(ids::MOD_LOG);
    assert_eq!(refusal(lounge.say(&http, "after").await), (404, 10003));
    let listed = lounge.messages(&http, GetMessages::new()).await;
    assert_eq!(refusal(listed), (404, 10003));
    let channels = GuildId::new(ids::GUILD).channels(&http).await;
    assert!(!channels.expect("listed").contains_key(&lounge));
    let is_delete = |f: &fake_discord::GatewayFrame| f.t.as_deref() == Some("CHANNEL_DELETE");
    let frame = fake.wait_for_frame(is_delete, WAIT).await;
    running.abort();
    let event: Event =
        serde_json::from_value(json!({"t": frame.t, "d": frame.d})).expect("event deserializes");
    match event {
        Event::ChannelDelete(deleted) => assert_eq!(deleted.channel.id, lounge),
        other => panic!("not a channel deletion: {:?}", other.name()),
    }
}
