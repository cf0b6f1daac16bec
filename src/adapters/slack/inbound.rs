//! What Slack delivers, by Socket Mode or signed HTTP alike, turned into core requests: the
//! umbrella slash command (`/cogbox roll 2d6`), a mention (`@cogbox roll 2d6`), a plain
//! `roll 2d6` in a direct message, and button presses; and the replies sent back.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::OwnedSemaphorePermit;

use super::mentions::{after_bot_mention, without_labels};
use super::platform::{SlackPlatform, channel_id, community_id, user_id};
use crate::core::parse::command_line;
use crate::core::{ArgInput, Author, Dispatcher, Member, Platform, Reply, Request, State, Tone};

/// One delivery, as Slack's Socket Mode envelope types name them.
#[derive(Debug)]
pub enum Inbound {
    /// `slash_commands`: the command's fields (form fields in events mode).
    Command(Value),
    /// `events_api`: an `event_callback`.
    Event(Value),
    /// `interactive`: a `block_actions` payload.
    Interaction(Value),
}

/// The immediate answer to a slash command that finds no intake slot. Slack redelivers only
/// events: a command that is not answered within 3 seconds is lost, with an error its caller
/// cannot act on, so it is answered at once, and only its caller sees it.
pub fn busy() -> Value {
    json!({
        "response_type": "ephemeral",
        "text": "I'm busy right now; try again in a moment.",
    })
}

/// Where a reply goes, and how an error reaches only its caller.
struct Origin<'a> {
    channel: &'a str,
    user: &'a str,
    /// A slash command's or action's `response_url`: works in channels the bot is not in.
    response_url: Option<&'a str>,
    /// The message whose button was pressed, which a poll's reply replaces.
    message_ts: Option<&'a str>,
}

pub struct Inbox<S> {
    dispatcher: Arc<Dispatcher<S>>,
    platform: Arc<SlackPlatform>,
    as_platform: Arc<dyn Platform>,
    /// The workspace's name (`auth.test`'s `team`): the one community this bot serves.
    workspace: String,
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_default()
}

/// Slack escapes `&`, `<` and `>` in what members type; commands see what they typed.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

impl<S: State> Inbox<S> {
    pub fn new(
        dispatcher: Arc<Dispatcher<S>>,
        platform: Arc<SlackPlatform>,
        workspace: String,
    ) -> Self {
        let as_platform: Arc<dyn Platform> = platform.clone();
        Self {
            dispatcher,
            platform,
            as_platform,
            workspace,
        }
    }

    /// Handles one delivery; `slot` is its intake slot, held until the reply has gone.
    pub async fn handle(&self, inbound: Inbound, _slot: OwnedSemaphorePermit) {
        match inbound {
            Inbound::Command(command) => self.command(&command).await,
            Inbound::Event(callback) => self.event(&callback).await,
            Inbound::Interaction(payload) => self.interaction(&payload).await,
        }
    }

    async fn command(&self, command: &Value) {
        let (channel, user) = (text(command, "channel_id"), text(command, "user_id"));
        let origin = Origin {
            channel,
            user,
            response_url: command["response_url"].as_str(),
            message_ts: None,
        };
        let name = format!("@{}", text(command, "user_name"));
        let id = format!("s{}", text(command, "trigger_id"));
        self.run(
            &origin,
            text(command, "team_id"),
            &name,
            id,
            &unescape(&without_labels(text(command, "text"))),
        )
        .await;
    }

    async fn event(&self, callback: &Value) {
        let event = &callback["event"];
        let team = event["team"]
            .as_str()
            .unwrap_or_else(|| text(callback, "team_id"));
        let (channel, user) = (text(event, "channel"), text(event, "user"));
        if user.is_empty() || user == self.platform.bot_user || !event["bot_id"].is_null() {
            return;
        }
        let line = match (text(event, "type"), event["subtype"].is_null()) {
            ("app_mention", _) => after_bot_mention(text(event, "text"), &self.platform.bot_user),
            ("message", true) if text(event, "channel_type") == "im" => {
                let typed = text(event, "text");
                Some(after_bot_mention(typed, &self.platform.bot_user).unwrap_or(typed))
            }
            ("member_joined_channel", _) => return self.joined(team, channel, user).await,
            _ => None,
        };
        let Some(line) = line else {
            return;
        };
        let name = match self.platform.profile(user).await {
            Ok(Some(profile)) => profile.name.clone(),
            _ => format!("@{user}"),
        };
        let origin = Origin {
            channel,
            user,
            response_url: None,
            message_ts: None,
        };
        let id = format!("e{}", text(callback, "event_id"));
        let line = unescape(&without_labels(line));
        self.run(&origin, team, &name, id, &line).await;
    }

    /// A member under one of cogbox's bans is removed again from any channel they join; a
    /// member joining the general channel (as everyone new to the workspace does) is greeted
    /// with the workspace's `welcome_message`.
    async fn joined(&self, team: &str, channel: &str, user: &str) {
        let (Ok(community), Ok(id)) = (community_id(team), user_id(user)) else {
            return;
        };
        if self.dispatcher.banned(community, id).await {
            return self.platform.enforce_ban(channel, user).await;
        }
        if !self.platform.is_general(channel).await {
            return;
        }
        let Ok(Some(profile)) = self.platform.profile(user).await else {
            return;
        };
        let member = Member {
            id,
            name: profile.name.clone(),
            is_bot: profile.is_bot,
        };
        if let Some(reply) = self.dispatcher.greeting(community, &member).await
            && let Err(e) = self.platform.post(channel, &reply).await
        {
            tracing::warn!("slack: the welcome in {channel} failed: {e}");
        }
    }

    /// A button runs its command as the member who pressed it.
    async fn interaction(&self, payload: &Value) {
        if text(payload, "type") != "block_actions" {
            return;
        }
        let Some(action) = payload["actions"].get(0) else {
            return;
        };
        let channel = payload["channel"]["id"]
            .as_str()
            .unwrap_or_else(|| text(&payload["container"], "channel_id"));
        let user = &payload["user"];
        let origin = Origin {
            channel,
            user: text(user, "id"),
            response_url: payload["response_url"].as_str(),
            message_ts: payload["container"]["message_ts"].as_str(),
        };
        let name = format!(
            "@{}",
            user["username"]
                .as_str()
                .unwrap_or_else(|| text(user, "name"))
        );
        let team = payload["team"]["id"]
            .as_str()
            .unwrap_or_else(|| text(user, "team_id"));
        let id = format!("a{}", text(payload, "trigger_id"));
        self.run(&origin, team, &name, id, text(action, "value"))
            .await;
    }

    /// Dispatches `line` (`roll 2d6`, `/vote 3 1`, or nothing for help) and answers it.
    async fn run(&self, origin: &Origin<'_>, team: &str, name: &str, id: String, line: &str) {
        let (Ok(channel), Ok(author)) = (channel_id(origin.channel), user_id(origin.user)) else {
            tracing::warn!(
                "slack: a delivery without a usable channel or user ({:?}, {:?}) was ignored",
                origin.channel,
                origin.user
            );
            return;
        };
        // A direct message is no community, as on the other platforms.
        let community = match community_id(team) {
            Ok(community) if !origin.channel.starts_with('D') => Some(community),
            _ => None,
        };
        let (command, args) = match command_line(line, &["/", ""]) {
            Some(parsed) => (parsed.name, parsed.args.to_owned()),
            None if line.trim().is_empty() => ("help".to_owned(), String::new()),
            None => {
                let reply = Reply::error(format!("\"{}\" is not a command; try help", line.trim()));
                return self.answer(origin, &reply).await;
            }
        };
        let request = Request {
            community,
            community_name: community.map(|_| self.workspace.clone()),
            channel,
            author: Author {
                id: author,
                name: name.to_owned(),
            },
            replied_to: None,
            id: Some(id),
            name: command,
            args: ArgInput::Text(args),
        };
        if let Some(reply) = self.dispatcher.dispatch(&self.as_platform, request).await {
            self.answer(origin, &reply).await;
        }
    }

    /// Errors go to the caller alone; a pressed poll is updated in place; the rest is posted
    /// in the channel, or through the response URL where the bot is not a member.
    async fn answer(&self, origin: &Origin<'_>, reply: &Reply) {
        let platform = &self.platform;
        let result = match (reply.tone, origin.response_url, origin.message_ts) {
            (Tone::Error, Some(url), _) => platform.respond(url, reply, true).await,
            (Tone::Error, None, _) => {
                platform
                    .post_ephemeral(origin.channel, origin.user, reply)
                    .await
            }
            (_, _, Some(ts)) if reply.replaces => platform.update(origin.channel, ts, reply).await,
            (_, url, _) => match platform.post(origin.channel, reply).await {
                Err(e) if matches!(e.code(), Some("not_in_channel" | "channel_not_found")) => {
                    match url {
                        Some(url) => platform.respond(url, reply, false).await,
                        None => Err(e),
                    }
                }
                other => other.map(drop),
            },
        };
        if let Err(e) = result {
            tracing::warn!("slack: the reply in {} failed: {e}", origin.channel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_members_typed_is_unescaped_once() {
        assert_eq!(unescape("a &amp; b &lt;3 &gt;"), "a & b <3 >");
        assert_eq!(unescape("&amp;lt;"), "&lt;", "never twice");
    }
}
