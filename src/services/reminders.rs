//! Reminders are scheduler jobs of kind [`KIND`] owned by the member who asked; this is their
//! payload and the member's view of them, shared by the fun cog (which sets and delivers them)
//! and `/mydata` and `/forget`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::scheduler::{Job, JobState, Scheduler};
use super::userdata::UserData;
use crate::core::{CommunityId, Raw, UserId};

/// The job kind of a reminder.
pub const KIND: &str = "reminder";
/// Reminders one member may have waiting: bounds the jobs table per member.
pub const MAX_PER_USER: usize = 25;

/// What a reminder job carries: where to deliver it, to whom, and what to say.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Reminder {
    /// The platform's name, as `PlatformKind::as_str` gives it.
    pub platform: String,
    pub channel: Raw,
    /// `None` when asked for in a direct chat.
    pub community: Option<Raw>,
    pub user: Raw,
    pub name: String,
    pub text: String,
}

/// Whose job it is in the scheduler's terms: the member's `platform:id`.
pub fn owner(user: UserId) -> String {
    user.to_string()
}

/// Every reminder `user` has waiting, with its job, earliest first; one being delivered at
/// this moment is no longer waiting.
pub async fn list(scheduler: &Scheduler, user: UserId) -> Result<Vec<(Job, Reminder)>, StoreError> {
    let jobs = scheduler
        .list(KIND, Some(&owner(user)), MAX_PER_USER)
        .await?;
    Ok(jobs
        .into_iter()
        .filter(|job| job.state != JobState::Running)
        .filter_map(|job| {
            let reminder = serde_json::from_value(job.payload.clone()).ok()?;
            Some((job, reminder))
        })
        .collect())
}

/// Those of `user`'s reminders that were asked for in `community`.
async fn here(
    scheduler: &Scheduler,
    community: CommunityId,
    user: UserId,
) -> Result<Vec<(Job, Reminder)>, StoreError> {
    let mut mine = list(scheduler, user).await?;
    mine.retain(|(_, r)| {
        r.community == Some(community.raw) && r.platform == community.platform.as_str()
    });
    Ok(mine)
}

#[async_trait]
impl UserData for Scheduler {
    fn name(&self) -> &'static str {
        "Reminders"
    }

    async fn export(
        &self,
        community: CommunityId,
        user: UserId,
    ) -> Result<Vec<String>, StoreError> {
        Ok(here(self, community, user)
            .await?
            .into_iter()
            .map(|(job, r)| {
                format!(
                    "#{} due {}: {}",
                    job.id,
                    job.due.format("%Y-%m-%d %H:%M UTC"),
                    r.text
                )
            })
            .collect())
    }

    async fn forget(&self, community: CommunityId, user: UserId) -> Result<usize, StoreError> {
        let mut gone = 0;
        for (job, _) in here(self, community, user).await? {
            gone += usize::from(self.cancel_owned(&owner(user), job.id).await?);
        }
        Ok(gone)
    }
}
