//! Community administration: which cogs are on here, the community's settings, and the
//! owners' view of the running bot.

mod audit;
mod data;
mod settings;
mod status;

use super::{Ctx, community, stored};
use crate::core::{
    Capability, Cog, Command, CommandError, CommandResult, CommandSpec, ParamKind, Reply, State,
};
use crate::services::Services;

/// Cogs that cannot be switched off, or nobody could switch anything back on or ask for help.
const ALWAYS_ON: &[&str] = &["admin", "help"];

pub fn cog() -> Cog<Services> {
    Cog {
        name: "admin",
        description: "Community settings",
        commands: vec![
            Command::new(
                CommandSpec::new("cogs", "Show which cogs are on in this community")
                    .community_only(),
                list,
            ),
            Command::new(
                CommandSpec::new("cog", "Turn a cog on or off in this community")
                    .param("action", "on or off", ParamKind::Choice(&["on", "off"]))
                    .param(
                        "cog",
                        "The cog's name, as the cogs command lists it",
                        ParamKind::Word,
                    )
                    .requires(Capability::ManageSettings)
                    .community_only(),
                switch,
            ),
            Command::new(
                CommandSpec::new(
                    "settings",
                    "Show this community's settings, or set or reset one",
                )
                .optional(
                    "action",
                    "set or reset (needs Manage Settings)",
                    ParamKind::Choice(&["set", "reset"]),
                )
                .optional(
                    "key",
                    "The setting's name, as the settings command lists it",
                    ParamKind::Word,
                )
                .optional("value", "The new value (for set)", ParamKind::Rest)
                .community_only(),
                settings::settings,
            ),
            Command::new(
                CommandSpec::new(
                    "audit",
                    "Show the audit log, or what a member did or had done",
                )
                .optional(
                    "user",
                    "Only entries by or about this member",
                    ParamKind::User,
                )
                .requires(Capability::ManageSettings)
                .community_only(),
                audit::audit,
            ),
            Command::new(
                CommandSpec::new(
                    "mydata",
                    "Get what the bot stores about you here, by direct message",
                )
                .community_only(),
                data::mydata,
            ),
            Command::new(
                CommandSpec::new("forget", "Erase what the bot stores about a member here")
                    .param("user", "The member whose data to erase", ParamKind::User)
                    .requires(Capability::ManageSettings)
                    .community_only(),
                data::forget,
            ),
            Command::new(
                CommandSpec::new("status", "How the bot is doing (owners only)")
                    .requires(Capability::Owner),
                status::status,
            ),
        ],
    }
}

async fn list(ctx: Ctx) -> CommandResult {
    let community = community(&ctx)?;
    let mut reply = Reply::text("").title("Cogs");
    for cog in &ctx.catalog.cogs {
        let on = ctx
            .state
            .cog_enabled(community, cog.name)
            .await
            .map_err(CommandError::Internal)?;
        reply = reply.field(
            cog.name,
            format!("{} - {}", if on { "on" } else { "off" }, cog.description),
        );
    }
    Ok(reply)
}

async fn switch(ctx: Ctx) -> CommandResult {
    let community = community(&ctx)?;
    let on = ctx.args.req_text("action")? == "on";
    let name = ctx.args.req_text("cog")?.to_lowercase();
    let Some(cog) = ctx.catalog.cogs.iter().find(|c| c.name == name) else {
        let known: Vec<&str> = ctx.catalog.cogs.iter().map(|c| c.name).collect();
        return Err(CommandError::usage(format!(
            "there is no cog \"{name}\" (cogs: {})",
            known.join(", ")
        )));
    };
    if !on && ALWAYS_ON.contains(&cog.name) {
        return Err(CommandError::usage(format!(
            "the {} cog cannot be turned off",
            cog.name
        )));
    }
    ctx.state
        .settings
        .set_cog_enabled(community, cog.name, on)
        .await
        .map_err(stored)?;
    let action = if on { "cog.on" } else { "cog.off" };
    audit::changed(&ctx, action, cog.name.to_owned()).await?;
    Ok(Reply::text(format!(
        "The {} cog is now {} here.",
        cog.name,
        if on { "on" } else { "off" }
    )))
}
