//! Shared services the cogs use instead of touching storage themselves: the database, the
//! per-community settings, and the bot's identity. [`Services`] is the state the core's
//! dispatcher runs with.

pub mod backup;
pub mod settings;
pub mod store;

use async_trait::async_trait;

use crate::core::{BoxError, CommunityId, State, UserId};
pub use settings::Settings;
pub use store::{Store, StoreError};

pub struct Services {
    pub store: Store,
    pub settings: Settings,
    pub owners: Vec<UserId>,
}

impl Services {
    pub fn new(store: Store, owners: Vec<UserId>) -> Self {
        Self {
            settings: Settings::new(store.clone()),
            store,
            owners,
        }
    }
}

#[async_trait]
impl State for Services {
    fn is_owner(&self, user: UserId) -> bool {
        self.owners.contains(&user)
    }

    async fn cog_enabled(&self, community: CommunityId, cog: &str) -> Result<bool, BoxError> {
        Ok(!self
            .settings
            .get(community)
            .await?
            .disabled_cogs
            .contains(cog))
    }
}
