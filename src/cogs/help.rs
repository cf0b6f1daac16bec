//! `/help`, generated from the command specs so it can never disagree with them.

use super::Ctx;
use crate::core::{
    Cog, Command, CommandError, CommandResult, CommandSpec, ParamKind, Reply, State,
};
use crate::services::Services;

pub fn cog() -> Cog<Services> {
    Cog {
        name: "help",
        description: "What the bot can do",
        commands: vec![Command::new(
            CommandSpec::new("help", "List the commands, or explain one").optional(
                "command",
                "A command to explain",
                ParamKind::Word,
            ),
            help,
        )],
    }
}

async fn help(ctx: Ctx) -> CommandResult {
    match ctx.args.text("command") {
        Some(name) => explain(&ctx, name.trim_start_matches(['/', '!'])),
        None => overview(&ctx).await,
    }
}

/// Every command of every cog that is on here, one line each under its cog.
async fn overview(ctx: &Ctx) -> CommandResult {
    let prefix = ctx.platform.command_prefix();
    let mut reply =
        Reply::text(format!("Type {prefix}help <command> for details.")).title("Commands");
    for cog in &ctx.catalog.cogs {
        if let Some(community) = ctx.invocation.community {
            if !ctx
                .state
                .cog_enabled(community, cog.name)
                .await
                .map_err(CommandError::Internal)?
            {
                continue;
            }
        }
        let lines: Vec<String> = cog
            .commands
            .iter()
            .filter(|c| !c.buttons_only)
            .map(|c| format!("{} - {}", c.usage(prefix), c.description))
            .collect();
        reply = reply.field(cog.name, lines.join("\n"));
    }
    Ok(reply)
}

fn explain(ctx: &Ctx, name: &str) -> CommandResult {
    let (_, spec) = ctx
        .catalog
        .find(&name.to_lowercase())
        .ok_or_else(|| CommandError::usage(format!("there is no command {}", ctx.typed(name))))?;
    let mut reply = Reply::text(spec.description).title(spec.usage(ctx.platform.command_prefix()));
    for param in &spec.params {
        let optional = if param.required { "" } else { " (optional)" };
        reply = reply.field(
            format!("<{}>", param.name),
            format!("{}{optional}", param.description),
        );
    }
    Ok(reply)
}
