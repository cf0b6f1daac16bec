//! The one path every command takes, whatever the platform:
//! lookup → rate limit → cog switch → scope → argument binding → capability → cooldown →
//! handler (panics caught) → reply.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::sync::broadcast;

use super::command::{Author, Catalog, CogInfo, Command, Ctx, Invocation, State};
use super::duration;
use super::error::{CommandError, ErrorId};
use super::ids::{ChannelId, CommunityId, UserId};
use super::parse;
use super::platform::Platform;
use super::ratelimit::{RateQuota, UserRateLimit, Verdict};
use super::reply::Reply;
use super::spec::{Capability, Scope};

/// A command as an adapter hands it over: already split from its prefix.
#[derive(Clone, Debug)]
pub struct Request {
    pub community: Option<CommunityId>,
    pub channel: ChannelId,
    pub author: Author,
    pub name: String,
    pub args: String,
}

/// An unexpected failure, published for whoever wants to know (e.g. a future "tell the owners"
/// feature); the in-process stand-in for a Redis error channel.
#[derive(Clone, Debug)]
pub struct ErrorReport {
    pub id: ErrorId,
    pub command: &'static str,
    pub user: UserId,
    pub message: String,
}

pub struct Dispatcher<S> {
    commands: HashMap<&'static str, (&'static str, Command<S>)>,
    catalog: Arc<Catalog>,
    state: Arc<S>,
    rate_limit: UserRateLimit,
    /// When each (user, command) may run again; entries outlive no cooldown.
    cooldowns: moka::sync::Cache<(UserId, &'static str), Instant>,
    errors: broadcast::Sender<ErrorReport>,
}

impl<S: State> Dispatcher<S> {
    /// Validates every spec and refuses duplicate command names across cogs.
    pub fn new(cogs: Vec<super::Cog<S>>, state: Arc<S>, quota: RateQuota) -> Result<Self, String> {
        let mut commands = HashMap::new();
        let mut catalog = Catalog::default();
        let mut longest_cooldown = Duration::from_secs(1);
        for cog in cogs {
            let mut info = CogInfo {
                name: cog.name,
                description: cog.description,
                commands: Vec::new(),
            };
            for command in cog.commands {
                command.spec.validate()?;
                longest_cooldown = longest_cooldown.max(command.spec.cooldown.unwrap_or_default());
                info.commands.push(command.spec.clone());
                if commands
                    .insert(command.spec.name, (cog.name, command))
                    .is_some()
                {
                    return Err(format!(
                        "command /{} is defined twice",
                        info.commands.last().unwrap().name
                    ));
                }
            }
            catalog.cogs.push(info);
        }
        Ok(Self {
            commands,
            catalog: Arc::new(catalog),
            state,
            rate_limit: UserRateLimit::new(quota),
            cooldowns: moka::sync::Cache::builder()
                .time_to_live(longest_cooldown)
                .build(),
            errors: broadcast::channel(64).0,
        })
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    pub fn subscribe_errors(&self) -> broadcast::Receiver<ErrorReport> {
        self.errors.subscribe()
    }

    /// Bounds the rate limiter's memory; the app calls it periodically.
    pub fn tidy(&self) {
        self.rate_limit.tidy();
    }

    /// Runs one command. `None` means stay silent (a rate-limited user who was already told).
    pub async fn dispatch(&self, platform: &Arc<dyn Platform>, request: Request) -> Option<Reply> {
        let Some((cog, command)) = self.commands.get(request.name.as_str()) else {
            return Some(Reply::error(format!(
                "Unknown command /{}. Try /help.",
                request.name
            )));
        };
        let name = command.spec.name;
        // Owners are trusted and often script the bot; everyone else is rate limited.
        let verdict = if self.state.is_owner(request.author.id) {
            Verdict::Allowed
        } else {
            self.rate_limit.check(request.author.id)
        };
        match verdict {
            Verdict::Allowed => {}
            Verdict::Quiet => return None,
            Verdict::Tell(wait) => {
                return Some(Reply::error(format!(
                    "You're sending commands too fast; try again in {}.",
                    duration::format(wait)
                )));
            }
        }
        let user = request.author.id;
        let reply = match self.gate_and_run(platform, cog, command, request).await {
            Ok(reply) => reply,
            Err(
                CommandError::Usage(text)
                | CommandError::Denied(text)
                | CommandError::Platform(text),
            ) => Reply::error(format!("/{name}: {text}")),
            Err(CommandError::Internal(e)) => self.report(name, user, e.to_string()),
        };
        Some(reply)
    }

    async fn gate_and_run(
        &self,
        platform: &Arc<dyn Platform>,
        cog: &'static str,
        command: &Command<S>,
        request: Request,
    ) -> Result<Reply, CommandError> {
        let spec = &command.spec;
        let user = request.author.id;
        if let Some(community) = request.community {
            if !self
                .state
                .cog_enabled(community, cog)
                .await
                .map_err(CommandError::Internal)?
            {
                return Err(CommandError::Denied(format!(
                    "the {cog} cog is turned off here"
                )));
            }
        } else if spec.scope == Scope::Community {
            return Err(CommandError::Denied(
                "this only works in a group or server".into(),
            ));
        }
        let args = parse::bind(spec, &request.args).map_err(CommandError::Usage)?;
        match (spec.capability, request.community) {
            (None, _) => {}
            (Some(Capability::Owner), _) => {
                if !self.state.is_owner(user) {
                    return Err(CommandError::Denied(
                        "only the bot's owners can do that".into(),
                    ));
                }
            }
            (Some(capability), Some(community)) => {
                if !platform.has_capability(community, user, capability).await? {
                    return Err(CommandError::Denied(format!(
                        "you need the {} permission",
                        platform.capability_name(capability)
                    )));
                }
            }
            (Some(_), None) => {
                return Err(CommandError::Denied(
                    "this only works in a group or server".into(),
                ));
            }
        }
        if let Some(cooldown) = spec.cooldown {
            let now = Instant::now();
            let key = (user, spec.name);
            if let Some(ready) = self.cooldowns.get(&key).filter(|ready| *ready > now) {
                return Err(CommandError::Denied(format!(
                    "you can use this again in {}",
                    duration::format(ready - now)
                )));
            }
            self.cooldowns.insert(key, now + cooldown);
        }
        let ctx = Ctx {
            invocation: Invocation {
                community: request.community,
                channel: request.channel,
                author: request.author,
            },
            args,
            platform: Arc::clone(platform),
            state: Arc::clone(&self.state),
            catalog: Arc::clone(&self.catalog),
        };
        match AssertUnwindSafe(command.handler.call(ctx))
            .catch_unwind()
            .await
        {
            Ok(result) => result,
            Err(panic) => {
                let text = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a handler panicked".into());
                Err(CommandError::internal(format!("panic: {text}")))
            }
        }
    }

    fn report(&self, command: &'static str, user: UserId, message: String) -> Reply {
        let id = ErrorId::new();
        tracing::error!(error.id = %id, command, %user, "command failed: {message}");
        // No subscriber is fine: nobody has asked to hear about errors yet.
        let _ = self.errors.send(ErrorReport {
            id,
            command,
            user,
            message,
        });
        Reply::error(format!("Sorry, something went wrong (error {id})."))
    }
}
