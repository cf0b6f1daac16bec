//! The app manifest `cogbox slack manifest` prints: paste it at api.slack.com/apps → *Create
//! New App* → *From a manifest*, install the app, and copy the two tokens. It declares the one
//! umbrella slash command (Slack only delivers declared commands), the bot scopes every
//! feature needs, the events cogbox listens to, interactivity for buttons, and Socket Mode on
//! or off with the request URLs events mode needs.

use serde_json::{Value, json};

use crate::adapters::cut;
use crate::config::{SlackConfig, SlackMode};
use crate::core::CommandSpec;

/// Scopes, each for what needs it.
pub const BOT_SCOPES: &[&str] = &[
    "app_mentions:read", // `@cogbox roll 2d6`
    "channels:manage",   // kick from public channels (conversations.kick)
    "channels:read",     // member_joined_channel in public channels: re-remove banned members
    "chat:write",        // replies, ephemeral errors, updated messages
    "commands",          // the slash command
    "groups:read",       // member_joined_channel in private channels
    "groups:write",      // kick from private channels
    "im:history",        // plain `roll 2d6` in a direct message (message.im)
    "im:write",          // moderation notices by direct message (conversations.open)
    "users:read",        // is_admin / is_owner for permissions, names for mentions
];

/// Events the bot subscribes to.
pub const BOT_EVENTS: &[&str] = &["app_mention", "member_joined_channel", "message.im"];

/// Slack's limits on a manifest's texts.
const MAX_APP_NAME: usize = 35;
const MAX_SHORT_DESCRIPTION: usize = 139;
const MAX_USAGE_HINT: usize = 1000;

/// The manifest as JSON (Slack takes JSON or YAML). Events mode needs the public https
/// address Slack posts to; socket mode needs none.
pub fn manifest<'a>(
    bot_name: &str,
    slack: &SlackConfig,
    commands: impl IntoIterator<Item = &'a CommandSpec>,
    public_url: Option<&str>,
) -> Result<Value, String> {
    let socket = slack.mode == SlackMode::Socket;
    let base = match (socket, public_url) {
        (true, _) => None,
        (false, Some(url)) if url.starts_with("https://") && url.len() > "https://".len() => {
            Some(url.trim_end_matches('/'))
        }
        (false, Some(url)) => {
            return Err(format!(
                "\"{url}\" is not an https URL (Slack only posts to https)"
            ));
        }
        (false, None) => {
            return Err(
                "events mode needs the public https address Slack posts to: --url https://..."
                    .into(),
            );
        }
    };
    let names: Vec<&str> = commands.into_iter().map(|c| c.name).collect();
    let usage = cut(
        &format!(
            "help | {}",
            names
                .iter()
                .filter(|n| **n != "help")
                .copied()
                .collect::<Vec<_>>()
                .join(" | ")
        ),
        MAX_USAGE_HINT,
    );
    let name = cut(bot_name, MAX_APP_NAME);
    let mut command = json!({
        "command": slack.command,
        "description": format!("Run a {name} command, e.g. {} roll 2d6", slack.command),
        "usage_hint": usage,
        // Members arrive as <@U123|name> rather than as plain names.
        "should_escape": true,
    });
    let mut events = json!({"bot_events": BOT_EVENTS});
    let mut interactivity = json!({"is_enabled": true});
    if let Some(base) = base {
        command["url"] = json!(format!("{base}/slack/commands"));
        events["request_url"] = json!(format!("{base}/slack/events"));
        interactivity["request_url"] = json!(format!("{base}/slack/interactive"));
    }
    Ok(json!({
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": name,
            "description": cut(
                &format!("{name}: a self-hosted bot for fun, admin and moderation commands"),
                MAX_SHORT_DESCRIPTION,
            ),
        },
        "features": {
            "app_home": {"messages_tab_enabled": true, "messages_tab_read_only_enabled": false},
            "bot_user": {"display_name": name, "always_online": true},
            "slash_commands": [command],
        },
        "oauth_config": {"scopes": {"bot": BOT_SCOPES}},
        "settings": {
            "event_subscriptions": events,
            "interactivity": interactivity,
            "org_deploy_enabled": false,
            "socket_mode_enabled": socket,
            "token_rotation_enabled": false,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ParamKind;

    fn specs() -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("help", "List commands"),
            CommandSpec::new("roll", "Roll dice").param("dice", "e.g. 2d6", ParamKind::Word),
            CommandSpec::new("kick", "Remove a member").param("user", "who", ParamKind::User),
        ]
    }

    #[test]
    fn socket_mode_needs_no_address_and_declares_the_umbrella_command() {
        let slack = SlackConfig::default();
        let out = manifest("cogbox", &slack, &specs(), None).unwrap();
        assert_eq!(out["settings"]["socket_mode_enabled"], true);
        let command = &out["features"]["slash_commands"][0];
        assert_eq!(command["command"], "/cogbox");
        assert_eq!(command["should_escape"], true);
        assert_eq!(command["usage_hint"], "help | roll | kick");
        assert_eq!(command.get("url"), None);
        assert_eq!(
            out["settings"]["event_subscriptions"]["bot_events"],
            json!(BOT_EVENTS)
        );
        assert_eq!(
            out["settings"]["event_subscriptions"].get("request_url"),
            None
        );
        assert_eq!(out["settings"]["interactivity"]["is_enabled"], true);
        let scopes = out["oauth_config"]["scopes"]["bot"].as_array().unwrap();
        for needed in [
            "commands",
            "chat:write",
            "app_mentions:read",
            "im:history",
            "im:write",
            "users:read",
            "channels:manage",
        ] {
            assert!(scopes.contains(&json!(needed)), "{needed}");
        }
    }

    #[test]
    fn events_mode_points_every_request_at_the_public_address() {
        let slack = SlackConfig {
            mode: SlackMode::Events,
            command: "/bot".into(),
            ..SlackConfig::default()
        };
        let out = manifest("cogbox", &slack, &specs(), Some("https://bot.example.com/")).unwrap();
        assert_eq!(out["settings"]["socket_mode_enabled"], false);
        assert_eq!(out["features"]["slash_commands"][0]["command"], "/bot");
        assert_eq!(
            out["features"]["slash_commands"][0]["url"],
            "https://bot.example.com/slack/commands"
        );
        assert_eq!(
            out["settings"]["event_subscriptions"]["request_url"],
            "https://bot.example.com/slack/events"
        );
        assert_eq!(
            out["settings"]["interactivity"]["request_url"],
            "https://bot.example.com/slack/interactive"
        );
        assert!(
            manifest("cogbox", &slack, &specs(), None)
                .unwrap_err()
                .contains("--url")
        );
        assert!(
            manifest("cogbox", &slack, &specs(), Some("http://bot.example.com"))
                .unwrap_err()
                .contains("not an https URL")
        );
    }

    #[test]
    fn long_names_are_cut_to_slacks_limits() {
        let out = manifest(&"n".repeat(50), &SlackConfig::default(), &specs(), None).unwrap();
        let name = out["display_information"]["name"].as_str().unwrap();
        assert_eq!(name.chars().count(), MAX_APP_NAME);
        assert_eq!(out["features"]["bot_user"]["display_name"], name);
    }
}
