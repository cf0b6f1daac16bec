//! Slash commands from the command specs. Registration is Discord's bulk overwrite, so the set
//! registered is exactly the catalog: a command removed from cogbox disappears from Discord.

use serenity::all::{
    Command, CommandOptionType, CreateCommand, CreateCommandOption, GuildId, Http,
    InteractionContext,
};

use super::platform::permission;
use crate::core::spec::ParamSpec;
use crate::core::{Capability, Catalog, CommandSpec, ParamKind, Scope};

/// Registers every command in each of `guilds` (instant), or globally when there are none
/// (Discord may take up to an hour to show global changes).
pub async fn register(http: &Http, catalog: &Catalog, guilds: &[u64]) -> serenity::Result<()> {
    let commands: Vec<CreateCommand> = catalog.menu().map(command).collect();
    if guilds.is_empty() {
        Command::set_global_commands(http, commands).await?;
    } else {
        for guild in guilds {
            GuildId::new(*guild)
                .set_commands(http, commands.clone())
                .await?;
        }
    }
    Ok(())
}

fn command(spec: &CommandSpec) -> CreateCommand {
    let mut command = CreateCommand::new(spec.name)
        .description(spec.description)
        .set_options(spec.params.iter().map(option).collect());
    // Discord hides a command from members without the permission; the dispatcher still checks.
    if let Some(capability) = spec.capability.filter(|c| *c != Capability::Owner) {
        command = command.default_member_permissions(permission(capability));
    }
    if spec.scope == Scope::Community {
        command = command.contexts(vec![InteractionContext::Guild]);
    }
    command
}

fn option(param: &ParamSpec) -> CreateCommandOption {
    let kind = match param.kind {
        ParamKind::User => CommandOptionType::User,
        ParamKind::Integer { .. } => CommandOptionType::Integer,
        ParamKind::Duration { .. } | ParamKind::Word | ParamKind::Rest | ParamKind::Choice(_) => {
            CommandOptionType::String
        }
    };
    let mut option =
        CreateCommandOption::new(kind, param.name, param.description).required(param.required);
    match param.kind {
        // serenity takes unsigned bounds; a negative one is left to the dispatcher's check.
        ParamKind::Integer { min, max } => {
            if let Ok(min) = u64::try_from(min) {
                option = option.min_int_value(min);
            }
            if let Ok(max) = u64::try_from(max) {
                option = option.max_int_value(max);
            }
        }
        ParamKind::Choice(choices) => {
            for choice in choices {
                option = option.add_string_choice(*choice, *choice);
            }
        }
        _ => {}
    }
    option
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn specs_become_typed_options() {
        let spec = CommandSpec::new("mute", "Mute a member")
            .param("user", "Who", ParamKind::User)
            .param(
                "count",
                "How many",
                ParamKind::Integer { min: 1, max: 1000 },
            )
            .param("mode", "How", ParamKind::Choice(&["on", "off"]))
            .optional("reason", "Why", ParamKind::Rest)
            .requires(Capability::MuteMembers)
            .community_only();
        let out = serde_json::to_value(command(&spec)).unwrap();
        assert_eq!(out["name"], "mute");
        assert_eq!(out["description"], "Mute a member");
        assert_eq!(out["default_member_permissions"], (1u64 << 40).to_string());
        assert_eq!(out["contexts"], json!([0]));
        let options = out["options"].as_array().unwrap();
        let shape: Vec<_> = options
            .iter()
            .map(|o| {
                (
                    o["name"].as_str().unwrap(),
                    o["type"].as_u64().unwrap(),
                    o["required"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("user", 6, true),
                ("count", 4, true),
                ("mode", 3, true),
                ("reason", 3, false)
            ]
        );
        assert_eq!(
            (
                options[1]["min_value"].clone(),
                options[1]["max_value"].clone()
            ),
            (json!(1), json!(1000))
        );
        assert_eq!(
            options[2]["choices"],
            json!([{"name": "on", "value": "on"}, {"name": "off", "value": "off"}])
        );
    }

    #[test]
    fn owner_commands_are_visible_and_anywhere_commands_have_no_contexts() {
        let spec = CommandSpec::new("stop", "Stop").requires(Capability::Owner);
        let out = serde_json::to_value(command(&spec)).unwrap();
        assert_eq!(out.get("default_member_permissions"), None);
        assert_eq!(out.get("contexts"), None);
    }
}
