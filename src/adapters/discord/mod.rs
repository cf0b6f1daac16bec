//! Discord through serenity: slash commands registered from the command specs, prefix and
//! mention commands, interactions answered within Discord's 3-second window, replies as
//! embeds, and capabilities decided by Discord permissions and the role hierarchy.
//!
//! Start-up fails fast and in words: a rejected token is one line and exit code 2 (asked over
//! REST before the gateway, which would otherwise just close with 4004), and a gateway that
//! closes for good (4004, 4013, 4014) says what to fix. Reconnecting and resuming are
//! serenity's.

mod commands;
mod events;
mod members;
mod platform;
mod queue;
mod ratelimit;
mod relay;
mod render;

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serenity::all::{
    ActivityData, Client, ClientBuilder, GatewayError, GatewayIntents, Http, HttpBuilder,
};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Launch, StartError};
use crate::config::{ActivityKind, DiscordConfig, Presence};
use crate::core::State;
use events::{Handler, Settings};
use platform::status;
use queue::{Queue, Tally};
use relay::Relay;

/// Discord itself; any other `discord.api_url` goes through the [`Relay`].
const DISCORD: &str = "https://discord.com";
/// How long the first connection may take to be ready. serenity retries an unreachable gateway
/// forever, so without this a wrong address would hang start-up.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// What a rejected token gives: this one line, and exit code 2.
const TOKEN_REJECTED: &str = "discord.token was rejected by Discord (401 Unauthorized): copy the \
     bot token from the developer portal (your application → Bot → Reset Token) again";

/// Checks the token, registers the slash commands and connects to the gateway; returns once
/// the bot is ready.
pub async fn start<S: State>(
    config: &DiscordConfig,
    token: &SecretString,
    launch: &Launch<S>,
) -> Result<(), StartError> {
    // Events being handled: the client and the relay stop only once these are done.
    let work = TaskTracker::new();
    let tally = Arc::new(Tally::default());
    let api_url = config.api_url.trim_end_matches('/');
    let http = rest(api_url, token, launch, &work, &tally).await?;
    let me = http
        .get_current_user()
        .await
        .map_err(|e| match status(&e) {
            Some(401) => StartError::Config(TOKEN_REJECTED.into()),
            _ => failed(format!("cannot reach the REST API at {api_url}: {e}")),
        })?;
    let application = http
        .get_current_application_info()
        .await
        .map_err(|e| failed(format!("cannot read the application: {e}")))?;
    http.set_application_id(application.id);
    // serenity would fall back to the real gateway if this failed; asking first means a
    // custom api_url can never lead to discord.gg.
    let gateway = http.get_gateway().await.map_err(|e| {
        failed(format!(
            "cannot get the gateway address from {api_url}/api/v10/gateway: {e}"
        ))
    })?;
    commands::register(&http, launch.dispatcher.catalog(), &config.guild_ids)
        .await
        .map_err(|e| failed(format!("registering the slash commands failed: {e}")))?;

    let prefix_on = !config.prefix.is_empty();
    let (ready_tx, ready) = oneshot::channel();
    let settings = Settings {
        prefix: config.prefix.clone(),
        me: me.id,
        ban_delete_message_days: config.ban_delete_message_days,
    };
    let queue = Queue::new(launch.max_in_flight, tally);
    launch.watch(
        "discord queue",
        queue.clone().run(
            launch.intake("discord"),
            work.clone(),
            launch.cancel.clone(),
        ),
    );
    let handler = Handler::new(
        Arc::clone(&launch.dispatcher),
        Arc::clone(&launch.platforms),
        settings,
        queue,
        launch.cancel.clone(),
        ready_tx,
    );
    let mut builder = ClientBuilder::new_with_http(http, intents(prefix_on)).event_handler(handler);
    if let Some(activity) = activity(&config.presence) {
        builder = builder.activity(activity);
    }
    let client = builder
        .await
        .map_err(|e| failed(format!("cannot set up the client: {e}")))?;
    client.ws_url.lock().await.clone_from(&gateway.url);
    let running = run(client, launch, work, prefix_on);

    let outcome = tokio::time::timeout(READY_TIMEOUT, async {
        tokio::select! {
            Ok(()) = ready => Ok(()),
            Ok(why) = running.why => Err(why),
            else => Err(failed("the gateway connection ended before it was ready".into())),
        }
    })
    .await
    .unwrap_or_else(|_| {
        Err(failed(format!(
            "no READY from the gateway at {} within {READY_TIMEOUT:?}",
            gateway.url
        )))
    });
    if outcome.is_err() {
        running.stop.cancel();
    }
    outcome
}

/// serenity's REST client: straight to Discord with serenity's own rate limiter, or through
/// the [`Relay`] to any other `api_url`.
async fn rest<S>(
    api_url: &str,
    token: &SecretString,
    launch: &Launch<S>,
    work: &TaskTracker,
    tally: &Arc<Tally>,
) -> Result<Http, StartError> {
    if api_url == DISCORD {
        return Ok(HttpBuilder::new(token.expose_secret()).build());
    }
    // The relay is the only way out: never an environment proxy, never discord.com.
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| failed(format!("cannot build an HTTP client: {e}")))?;
    let relay = Relay::bind(api_url, client.clone(), Arc::clone(tally))
        .await
        .map_err(|e| failed(format!("cannot open the REST relay on 127.0.0.1: {e}")))?;
    let relay_url = relay
        .url()
        .map_err(|e| failed(format!("the REST relay has no address: {e}")))?;
    let (cancel, work) = (launch.cancel.clone(), work.clone());
    launch.tracker.spawn(relay.serve(async move {
        cancel.cancelled().await;
        work.close();
        work.wait().await;
    }));
    Ok(HttpBuilder::new(token.expose_secret())
        .client(client)
        .proxy(relay_url)
        .ratelimiter_disabled(true)
        .build())
}

/// Message Content is privileged, so it is asked for only when prefix commands need it; the
/// operator is reminded to switch it on.
fn intents(prefix_on: bool) -> GatewayIntents {
    let intents = GatewayIntents::GUILDS
        | GatewayIntents::GUILD_MEMBERS
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::DIRECT_MESSAGES;
    if !prefix_on {
        return intents;
    }
    tracing::warn!(
        "discord: prefix commands read messages, which needs the privileged Message Content \
         intent: switch it on in the developer portal (your application → Bot → Privileged \
         Gateway Intents), or set discord.prefix = \"\" for slash commands only"
    );
    intents | GatewayIntents::MESSAGE_CONTENT
}

/// A running client: `why` says why it ended if it did so during start-up (after, that goes to
/// `launch.fatal`), and `stop` shuts it down.
struct Running {
    why: oneshot::Receiver<StartError>,
    stop: CancellationToken,
}

/// Runs the client until the app stops (or `stop` fires), then waits for the events still
/// being handled. The client is watched: one that panics or ends on its own while the app
/// runs stops the app with the reason (exit 1, or 2 for what needs a person), never leaving it
/// alive and deaf.
fn run<S>(mut client: Client, launch: &Launch<S>, work: TaskTracker, prefix_on: bool) -> Running {
    let stop = launch.cancel.child_token();
    let (why_tx, why) = oneshot::channel();
    let shards = Arc::clone(&client.shard_manager);
    let (fatal, stopping) = (launch.fatal.clone(), stop.clone());
    launch.watch("discord gateway", async move {
        let result = tokio::select! {
            result = client.start() => result,
            () = stopping.cancelled() => {
                shards.shutdown_all().await;
                Ok(())
            }
        };
        work.close();
        work.wait().await;
        if let Err(e) = result {
            if let Err(why) = why_tx.send(explain(&e, prefix_on)) {
                let _ = fatal.send(why);
            }
        }
    });
    Running { why, stop }
}

/// Why the gateway gave up, in words: what to fix for the three close codes serenity does not
/// retry, and exit code 2 for them, since each needs a person to change something.
fn explain(e: &serenity::Error, prefix_on: bool) -> StartError {
    let intents = if prefix_on {
        "Server Members Intent and Message Content Intent"
    } else {
        "Server Members Intent"
    };
    match e {
        serenity::Error::Gateway(GatewayError::InvalidAuthentication) => StartError::Config(
            "discord: the gateway rejected the token (close code 4004, authentication failed): \
             was it reset? Copy the bot token from the developer portal again"
                .into(),
        ),
        serenity::Error::Gateway(GatewayError::InvalidGatewayIntents) => StartError::Config(
            "discord: the gateway refused cogbox's intents as invalid (close code 4013); please \
             report this as a bug"
                .into(),
        ),
        serenity::Error::Gateway(GatewayError::DisallowedGatewayIntents) => {
            let or = if prefix_on {
                ", or set discord.prefix = \"\" to turn prefix commands off"
            } else {
                ""
            };
            StartError::Config(format!(
                "discord: the gateway refused a privileged intent that is not switched on \
                 (close code 4014): in the developer portal, switch on the {intents} (your \
                 application → Bot → Privileged Gateway Intents){or}"
            ))
        }
        other => failed(format!("the gateway connection failed: {other}")),
    }
}

fn failed(why: String) -> StartError {
    StartError::Failed(format!("discord: {why}"))
}

fn activity(presence: &Presence) -> Option<ActivityData> {
    let (kind, name) = presence.0.as_ref()?;
    let name = name.clone();
    Some(match kind {
        ActivityKind::Playing => ActivityData::playing(name),
        ActivityKind::Watching => ActivityData::watching(name),
        ActivityKind::ListeningTo => ActivityData::listening(name),
        ActivityKind::CompetingIn => ActivityData::competing(name),
    })
}
