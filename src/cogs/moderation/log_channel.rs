//! The community's log channel (the `log_channel` setting): every case is posted there as it
//! is settled, from a command, an escalation or a lift alike, so moderators see what happened
//! without asking `/modlog`. A post that fails is logged and never fails the case itself.

use super::warnings::line;
use crate::core::{ChannelId, CommunityId, Reply};
use crate::services::Services;

/// Posts case `id` of `community` to its log channel, if it has one.
pub async fn post(services: &Services, community: CommunityId, id: i64) {
    if let Err(e) = try_post(services, community, id).await {
        tracing::warn!(%community, case = id, "log channel: {e}");
    }
}

async fn try_post(
    services: &Services,
    community: CommunityId,
    id: i64,
) -> Result<(), crate::core::BoxError> {
    let settings = services.settings.get(community).await?;
    let channel = settings.value("log_channel");
    if channel.is_empty() {
        return Ok(());
    }
    let channel = ChannelId::from_raw_text(community.platform.as_str(), channel)?;
    let Some(case) = services.cases.get(community, id).await? else {
        return Ok(());
    };
    let Some(platform) = services.platforms.get(community.platform) else {
        return Err(format!("{} is not connected", community.platform).into());
    };
    platform.send(channel, &Reply::text(line(&case))).await?;
    Ok(())
}
