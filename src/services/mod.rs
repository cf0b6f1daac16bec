//! Shared services the cogs use instead of touching storage themselves: the database, the
//! per-community settings, the scheduler, the audit log, the bank, moderation cases, and
//! the bot's identity. [`Services`] is the state the core's dispatcher runs with.

pub mod alerts;
pub mod audit;
pub mod backup;
pub mod bank;
pub mod cases;
pub mod periodic;
pub mod polls;
pub mod reminders;
pub mod scheduler;
pub mod settings;
pub mod store;
pub mod trivia;
pub mod userdata;

use std::sync::Arc;

use async_trait::async_trait;

use crate::core::{BoxError, Clock, CommunityId, Member, Platforms, Reply, State, UserId};
pub use audit::Audit;
pub use bank::Bank;
pub use cases::Cases;
pub use polls::Polls;
pub use scheduler::Scheduler;
pub use settings::Settings;
pub use store::{Store, StoreError};
pub use trivia::Trivia;

pub struct Services {
    pub store: Store,
    pub settings: Settings,
    pub bank: Bank,
    /// Warnings and moderation cases.
    pub cases: Cases,
    pub polls: Polls,
    pub trivia: Trivia,
    pub owners: Vec<UserId>,
    /// Where every service and cog reads the time: moved by hand in tests.
    pub clock: Arc<dyn Clock>,
    /// The running platforms, for work that outlives the command that asked for it.
    pub platforms: Arc<Platforms>,
    /// When this process started, for `/status`.
    pub started: chrono::DateTime<chrono::Utc>,
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
            started: clock.now(),
            settings: Settings::new(store.clone()),
            bank: Bank::new(store.clone(), Arc::clone(&clock)),
            cases: Cases::new(store.clone()),
            scheduler: Scheduler::new(store.clone(), Arc::clone(&clock)),
            audit: Audit::new(store.clone(), Arc::clone(&clock)),
            polls: Polls::new(store.clone()),
            trivia: Trivia::new(store.clone()),
            store,
            owners,
            clock,
            platforms,
        }
    }
}

impl Services {
    /// Every service that keeps data about members, for `/mydata` and `/forget`.
    pub fn user_data(&self) -> [&dyn userdata::UserData; 5] {
        [
            &self.polls,
            &self.trivia,
            &self.scheduler,
            &self.bank,
            &self.cases,
        ]
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

    async fn greeting(&self, community: CommunityId, member: &Member) -> Option<Reply> {
        let settings = match self.settings.get(community).await {
            Ok(settings) => settings,
            Err(e) => {
                tracing::warn!(%community, "settings unreadable, no welcome: {e}");
                return None;
            }
        };
        let message = settings.value("welcome_message");
        (!message.is_empty()).then(|| Reply::text(message.replace("{user}", &member.name)))
    }

    async fn banned(&self, community: CommunityId, user: UserId) -> bool {
        match self.cases.banned(community, user, self.clock.now()).await {
            Ok(banned) => banned,
            Err(e) => {
                tracing::warn!(%community, %user, "cases unreadable, ban not checked: {e}");
                false
            }
        }
    }

    async fn prefix(&self, community: CommunityId) -> Option<String> {
        match self.settings.get(community).await {
            Ok(settings) => Some(settings.value("prefix").to_owned()).filter(|p| !p.is_empty()),
            Err(e) => {
                tracing::warn!(%community, "settings unreadable, using the configured prefix: {e}");
                None
            }
        }
    }
}
