//! Cogs, their commands and the context a handler runs with.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::future::BoxFuture;

use super::args::{Args, UserRef};
use super::error::{BoxError, CommandError};
use super::ids::{ChannelId, CommunityId, PlatformKind, UserId};
use super::platform::{Member, Platform};
use super::reply::Reply;
use super::spec::CommandSpec;

pub type CommandResult = Result<Reply, CommandError>;

/// What the dispatcher needs from the application around it. The core defines it so that it
/// never names the storage or service types behind it.
#[async_trait]
pub trait State: Send + Sync + 'static {
    /// Listed in `bot.owners`.
    fn is_owner(&self, user: UserId) -> bool;

    /// Whether `cog` is switched on in `community`.
    async fn cog_enabled(&self, community: CommunityId, cog: &str) -> Result<bool, BoxError>;

    /// The prefix of text commands `community` chose for itself, if any (a server that runs
    /// another bot on `!` moves cogbox to `?`).
    async fn prefix(&self, _community: CommunityId) -> Option<String> {
        None
    }

    /// Whether cogbox banned `user` from `community` and the ban still holds: on a platform
    /// that gives bots no ban of its own (Slack), the adapter removes them again on sight.
    async fn banned(&self, _community: CommunityId, _user: UserId) -> bool {
        false
    }

    /// What greets `member`, who just joined `community` (its `welcome_message`), if anything.
    async fn greeting(&self, _community: CommunityId, _member: &Member) -> Option<Reply> {
        None
    }
}

/// An async function from context to reply. Implemented for every matching `async fn`.
pub trait Handler<S>: Send + Sync + 'static {
    fn call(&self, ctx: Ctx<S>) -> BoxFuture<'static, CommandResult>;
}

impl<S, F, Fut> Handler<S> for F
where
    F: Fn(Ctx<S>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CommandResult> + Send + 'static,
{
    fn call(&self, ctx: Ctx<S>) -> BoxFuture<'static, CommandResult> {
        Box::pin(self(ctx))
    }
}

pub struct Command<S> {
    pub spec: CommandSpec,
    pub handler: Arc<dyn Handler<S>>,
}

impl<S> Command<S> {
    pub fn new(spec: CommandSpec, handler: impl Handler<S>) -> Self {
        Self {
            spec,
            handler: Arc::new(handler),
        }
    }
}

/// A named bundle of commands that can be switched off per community.
pub struct Cog<S> {
    pub name: &'static str,
    pub description: &'static str,
    pub commands: Vec<Command<S>>,
}

/// The specs of every command, by cog: what `/help` and the platforms' menus are built from.
#[derive(Debug, Default)]
pub struct Catalog {
    pub cogs: Vec<CogInfo>,
}

#[derive(Debug)]
pub struct CogInfo {
    pub name: &'static str,
    pub description: &'static str,
    pub commands: Vec<CommandSpec>,
}

impl Catalog {
    pub fn find(&self, command: &str) -> Option<(&CogInfo, &CommandSpec)> {
        self.cogs.iter().find_map(|cog| {
            cog.commands
                .iter()
                .find(|c| c.name == command)
                .map(|c| (cog, c))
        })
    }

    pub fn commands(&self) -> impl Iterator<Item = &CommandSpec> {
        self.cogs.iter().flat_map(|cog| &cog.commands)
    }

    /// The commands a platform's menu offers: all but those run by buttons.
    pub fn menu(&self) -> impl Iterator<Item = &CommandSpec> {
        self.commands().filter(|c| !c.buttons_only)
    }

    /// Whether to take up `/name` at all. In a group other bots have their commands too, so an
    /// unknown one is answered ("Unknown command") only when the bot was addressed by name or
    /// mention; in a private chat it always is.
    pub fn answers(&self, name: &str, addressed: bool, in_community: bool) -> bool {
        addressed || !in_community || self.find(name).is_some()
    }
}

/// Who sent a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Author {
    pub id: UserId,
    pub name: String,
}

/// Where and by whom a command was invoked.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub community: Option<CommunityId>,
    /// Names the community in what is told outside it: a kick's direct message says where
    /// from, for a member of many servers.
    pub community_name: Option<String>,
    pub channel: ChannelId,
    pub author: Author,
    /// The author of the message this command answered (a Telegram or Discord reply), which
    /// moderation commands act on when no user is named.
    pub replied_to: Option<Member>,
    /// Names this invocation, stable across a platform's redelivery of the same message or
    /// interaction: the key the bank applies a change once for.
    pub id: String,
}

impl Invocation {
    pub fn platform(&self) -> PlatformKind {
        self.channel.platform
    }
}

/// Everything a handler gets: the invocation, its arguments, the platform it came from and the
/// application state.
pub struct Ctx<S> {
    pub invocation: Invocation,
    pub args: Args,
    pub platform: Arc<dyn Platform>,
    pub state: Arc<S>,
    pub catalog: Arc<Catalog>,
}

impl<S> Ctx<S> {
    /// A command line as a member types it on this platform, for hints: `typed("remind 10m
    /// tea")` is `/remind 10m tea`, and `/cogbox remind 10m tea` on Slack.
    pub fn typed(&self, line: &str) -> String {
        format!("{}{line}", self.platform.command_prefix())
    }

    /// Resolves a user argument to a member of this community, or tells the user it can't.
    pub async fn member(&self, user: &UserRef) -> Result<Member, CommandError> {
        self.find(self.invocation.community, user).await
    }

    /// Resolves a user argument to a user who need not be a member here (someone banned).
    pub async fn user(&self, user: &UserRef) -> Result<Member, CommandError> {
        self.find(None, user).await
    }

    async fn find(
        &self,
        community: Option<CommunityId>,
        user: &UserRef,
    ) -> Result<Member, CommandError> {
        self.platform
            .resolve_user(community, user)
            .await?
            .ok_or_else(|| {
                CommandError::usage(match user {
                    UserRef::Name(name) => format!("I can't find @{name} here"),
                    UserRef::Id(id) => format!("I can't find user {id} here"),
                })
            })
    }
}
