//! Per-community settings, read on every command and so cached in memory (moka); every write
//! goes to SQLite first and then drops the cached copy.

use std::collections::BTreeSet;
use std::sync::Arc;

use moka::future::Cache;
use rusqlite::params;

use super::store::{Store, StoreError};
use crate::core::CommunityId;

/// The parsed settings of one community.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommunitySettings {
    pub disabled_cogs: BTreeSet<String>,
}

const COG_KEY_PREFIX: &str = "cog.";
const DISABLED: &str = "disabled";

#[derive(Clone)]
pub struct Settings {
    store: Store,
    cache: Cache<CommunityId, Arc<CommunitySettings>>,
}

impl Settings {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cache: Cache::builder().max_capacity(10_000).build(),
        }
    }

    pub async fn get(
        &self,
        community: CommunityId,
    ) -> Result<Arc<CommunitySettings>, Arc<StoreError>> {
        self.cache
            .try_get_with(community, self.load(community))
            .await
    }

    async fn load(&self, community: CommunityId) -> Result<Arc<CommunitySettings>, StoreError> {
        let rows = self
            .store
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT key, value FROM community_settings WHERE platform = ?1 AND community = ?2",
                )?;
                stmt.query_map(params![community.platform.as_str(), community.raw], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        let disabled_cogs = rows
            .into_iter()
            .filter(|(_, value)| value == DISABLED)
            .filter_map(|(key, _)| key.strip_prefix(COG_KEY_PREFIX).map(str::to_owned))
            .collect();
        Ok(Arc::new(CommunitySettings { disabled_cogs }))
    }

    /// Switches a cog on or off in one community.
    pub async fn set_cog_enabled(
        &self,
        community: CommunityId,
        cog: &str,
        enabled: bool,
    ) -> Result<(), StoreError> {
        let key = format!("{COG_KEY_PREFIX}{cog}");
        self.store
            .call(move |conn| {
                let (platform, id) = (community.platform.as_str(), community.raw);
                if enabled {
                    conn.execute(
                        "DELETE FROM community_settings WHERE platform = ?1 AND community = ?2 AND key = ?3",
                        params![platform, id, key],
                    )
                } else {
                    conn.execute(
                        "INSERT INTO community_settings (platform, community, key, value) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (platform, community, key) DO UPDATE SET value = excluded.value",
                        params![platform, id, key, DISABLED],
                    )
                }
            })
            .await?;
        self.cache.invalidate(&community).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::PlatformKind;

    #[tokio::test]
    async fn writes_reach_readers_through_the_cache() {
        let settings = Settings::new(Store::in_memory().unwrap());
        let guild = CommunityId::new(PlatformKind::Discord, 7);
        let other = CommunityId::new(PlatformKind::Telegram, 7);
        assert!(settings.get(guild).await.unwrap().disabled_cogs.is_empty());
        settings.set_cog_enabled(guild, "fun", false).await.unwrap();
        assert!(
            settings
                .get(guild)
                .await
                .unwrap()
                .disabled_cogs
                .contains("fun"),
            "cached copy was not dropped"
        );
        assert!(
            settings.get(other).await.unwrap().disabled_cogs.is_empty(),
            "same number, other platform"
        );
        settings.set_cog_enabled(guild, "fun", true).await.unwrap();
        assert!(settings.get(guild).await.unwrap().disabled_cogs.is_empty());
    }
}
