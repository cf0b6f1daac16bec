//! What cogbox stores about a member, by service, for `/mydata` (export) and `/forget`
//! (erase). Every service that keeps per-member data implements [`UserData`] and is listed in
//! [`super::Services::user_data`]; the audit log is not one of them, since keeping it is its
//! purpose.

use async_trait::async_trait;

use super::StoreError;
use crate::core::{CommunityId, UserId};

#[async_trait]
pub trait UserData: Send + Sync {
    /// What the data is, as a heading: "Poll votes".
    fn name(&self) -> &'static str;

    /// The member's data in `community`, one line per item.
    async fn export(&self, community: CommunityId, user: UserId)
    -> Result<Vec<String>, StoreError>;

    /// Erases the member's data in `community`; returns how many items went.
    async fn forget(&self, community: CommunityId, user: UserId) -> Result<usize, StoreError>;
}

#[async_trait]
impl UserData for super::Polls {
    fn name(&self) -> &'static str {
        "Poll votes"
    }

    async fn export(
        &self,
        community: CommunityId,
        user: UserId,
    ) -> Result<Vec<String>, StoreError> {
        Ok(self
            .votes_of(community, user)
            .await?
            .into_iter()
            .map(|(id, question, option)| format!("poll #{id} \"{question}\": {option}"))
            .collect())
    }

    async fn forget(&self, community: CommunityId, user: UserId) -> Result<usize, StoreError> {
        self.forget(community, user).await
    }
}

#[async_trait]
impl UserData for super::Trivia {
    fn name(&self) -> &'static str {
        "Trivia score"
    }

    async fn export(
        &self,
        community: CommunityId,
        user: UserId,
    ) -> Result<Vec<String>, StoreError> {
        let points = self.points_of(community, user).await?;
        Ok(if points > 0 {
            vec![format!("{points} points")]
        } else {
            Vec::new()
        })
    }

    async fn forget(&self, community: CommunityId, user: UserId) -> Result<usize, StoreError> {
        self.forget(community, user).await
    }
}

/// Money: the balance and the streak go; the ledger's rows stay, since the other side of each
/// payment relies on them to explain its own balance.
#[async_trait]
impl UserData for super::Bank {
    fn name(&self) -> &'static str {
        "Money"
    }

    async fn export(
        &self,
        community: CommunityId,
        user: UserId,
    ) -> Result<Vec<String>, StoreError> {
        self.export_of(community, user).await
    }

    async fn forget(&self, community: CommunityId, user: UserId) -> Result<usize, StoreError> {
        self.forget(community, user).await
    }
}

/// Moderation cases are a record of what moderators did, kept like the audit log: shown, never
/// erased on the member's request.
#[async_trait]
impl UserData for super::Cases {
    fn name(&self) -> &'static str {
        "Moderation cases (kept)"
    }

    async fn export(
        &self,
        community: CommunityId,
        user: UserId,
    ) -> Result<Vec<String>, StoreError> {
        self.export_of(community, user).await
    }

    async fn forget(&self, _: CommunityId, _: UserId) -> Result<usize, StoreError> {
        Ok(0)
    }
}
