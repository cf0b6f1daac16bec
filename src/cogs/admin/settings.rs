//! `/settings`: every per-community key of [`KEYS`] with its value and default; `set` and
//! `reset` change one, for members with the Manage Settings capability.

use super::super::{Ctx, community, stored};
use crate::core::{
    Capability, ChannelId, CommandError, CommandResult, CommunityId, PlatformError, Reply,
};
use crate::services::settings::{CommunitySettings, KEYS, Key, KeyKind, OFF};

pub async fn settings(ctx: Ctx) -> CommandResult {
    let community = community(&ctx)?;
    let Some(action) = ctx.args.text("action") else {
        let current = ctx
            .state
            .settings
            .get(community)
            .await
            .map_err(|e| CommandError::Internal(e.to_string().into()))?;
        return Ok(list(&current, &ctx));
    };
    let user = ctx.invocation.author.id;
    let capability = Capability::ManageSettings;
    if !ctx
        .platform
        .has_capability(community, ctx.invocation.channel, user, capability)
        .await?
    {
        return Err(CommandError::Denied(format!(
            "you need the {} permission",
            ctx.platform.capability_name(capability)
        )));
    }
    let name = ctx.args.text("key").ok_or_else(|| {
        CommandError::usage(format!(
            "which setting? (usage: {} <key>{})",
            ctx.typed(&format!("settings {action}")),
            if action == "set" { " <value>" } else { "" }
        ))
    })?;
    let key = find(name)?;
    let settings = &ctx.state.settings;
    let old = settings
        .get(community)
        .await
        .map_err(|e| CommandError::Internal(e.to_string().into()))?
        .value(key.name)
        .to_owned();
    if action == "reset" {
        settings.reset(community, key).await.map_err(stored)?;
        let detail = format!("{}: {} -> {}", key.name, shown(&old), shown(key.default));
        super::audit::changed(&ctx, "settings.reset", detail).await?;
        return Ok(Reply::text(format!(
            "{} is back to its default ({}).",
            key.name,
            shown(key.default)
        )));
    }
    let value = ctx.args.text("value").ok_or_else(|| {
        CommandError::usage(format!(
            "give a value (usage: {} <value>)",
            ctx.typed(&format!("settings set {}", key.name))
        ))
    })?;
    let value = key.check(value).map_err(CommandError::Usage)?;
    if matches!(key.kind, KeyKind::Channel) && !value.is_empty() {
        post_to(&ctx, community, key, &value).await?;
    }
    settings
        .set(community, key, value.clone())
        .await
        .map_err(stored)?;
    let detail = format!("{}: {} -> {}", key.name, shown(&old), shown(&value));
    super::audit::changed(&ctx, "settings.set", detail).await?;
    Ok(Reply::text(format!(
        "{} is now {}.",
        key.name,
        shown(&value)
    )))
}

/// A channel setting is taken only once the bot has posted there: a channel of another
/// community, or one the bot cannot see or write in, is refused now, in the platform's words,
/// not found out at the first case.
async fn post_to(
    ctx: &Ctx,
    community: CommunityId,
    key: &Key,
    value: &str,
) -> Result<(), CommandError> {
    let platform = ctx.invocation.platform();
    let channel = ChannelId::from_raw_text(platform.as_str(), value).map_err(|_| {
        CommandError::usage(format!("{}: {value} is not a {platform} channel", key.name))
    })?;
    let note = format!(
        "{} set {} to this channel.",
        ctx.invocation.author.name, key.name
    );
    let posted = match ctx.platform.check_channel(community, channel).await {
        Ok(()) => ctx.platform.send(channel, &Reply::text(note)).await,
        refused => refused,
    };
    posted.map_err(|e| match e {
        PlatformError::Refused(why) => {
            CommandError::Platform(format!("{} is unchanged: {why}", key.name))
        }
        failed => failed.into(),
    })
}

fn find(name: &str) -> Result<&'static Key, CommandError> {
    Key::find(&name.to_lowercase()).ok_or_else(|| {
        let known: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        CommandError::usage(format!(
            "there is no setting \"{name}\" (settings: {})",
            known.join(", ")
        ))
    })
}

/// An empty value reads as "off".
fn shown(value: &str) -> &str {
    if value.is_empty() { OFF } else { value }
}

/// One field per key: its value, whether that is the default, and what it does.
fn list(current: &CommunitySettings, ctx: &Ctx) -> Reply {
    let how = format!(
        "Change one with {} <key> <value>, or {} <key>.",
        ctx.typed("settings set"),
        ctx.typed("settings reset")
    );
    KEYS.iter()
        .fold(Reply::text(how).title("Settings"), |reply, key| {
            let value = if current.is_set(key.name) {
                format!(
                    "{} (default: {})",
                    shown(current.value(key.name)),
                    shown(key.default)
                )
            } else {
                format!("{} (default)", shown(key.default))
            };
            reply.field(key.name, format!("{value} - {}", key.description))
        })
}
