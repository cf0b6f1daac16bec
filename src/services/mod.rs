//! Shared services the cogs use instead of touching storage themselves: the database, the
//! per-community settings, the scheduler, the audit log, the bank, moderation cases, and
//! the bot's identity. [`Services`] is the state the core's dispatcher runs with.

pub mod alerts;
pub mod audit;
pub mod backup;
pub mod bank;
pub mod cases;
pub mod periodic;
pub mod scheduler;
pub mod settings;
pub mod store;

use std::sync::Arc;

use async_trait::async_trait;

use crate::core::{BoxError, Clock, CommunityId, Platforms, State, UserId};
pub use audit::Audit;
pub use bank::Bank;
pub use cases::Cases;
pub use scheduler::Scheduler;
pub use settings::Settings;
pub use store::{Store, StoreError};

pub struct Services {
    pub store: Store,
    pub settings: Settings,
    pub bank: Bank,
    /// Warnings and moderation cases.
    pub cases: Cases,
    pub owners: Vec<UserId>,
    /// Where every service and cog reads the time: moved by hand in tests.
    pub clock: Arc<dyn Clock>,
    /// The running platforms, for work that outlives the command that asked for it.
    pub platforms: Arc<Platforms>,
    /// Durable jobs; its runner is started by `app.rs` once every kind is registered.
    pub scheduler: Scheduler,
    pub audit: Audit,
}

impl Services {
    pub fn new(
        store: Store,
        owners: Vec<UserId>,
        clock: Arc<dyn Clock>,
        platforms: Arc<Platforms>,
    ) -> Self {
        Self {
            settings: Settings::new(store.clone()),
            bank: Bank::new(store.clone(), Arc::clone(&clock)),
            cases: Cases::new(store.clone()),
            scheduler: Scheduler::new(store.clone(), Arc::clone(&clock)),
            audit: Audit::new(store.clone(), Arc::clone(&clock)),
            store,
            owners,
            clock,
            platforms,
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
