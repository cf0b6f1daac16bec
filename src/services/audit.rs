//! The audit log: every moderation action, permission-relevant change and settings or cog change,
//! with who, what, whom, why, when, where and how it ended on the platform.
//!
//! An action on a platform is two writes: [`Audit::record`] before the platform is asked (the
//! row says `pending`), [`Audit::finish`] after. A crash between them leaves the row pending,
//! and a half-done action (a Telegram kick that banned but could not unban) says so, rather
//! than vanishing. A change with no platform call is one write, [`Audit::log`].
//!
//! Rows are kept for `retention.audit_log_days` and then purged by the periodic `audit_purge`
//! job; `/forget` leaves them, since keeping them is the point.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::store::{Store, StoreError};
use crate::core::{Clock, CommunityId, PlatformKind, UserId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(pub i64);

/// What happened, as the caller knows it before acting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `None` for an action outside any community (an owner's global change).
    pub community: Option<CommunityId>,
    pub actor: UserId,
    /// A short verb: `ban`, `mute`, `warn`, `settings.set`, `cog.off`.
    pub action: String,
    /// The member acted on, if any.
    pub target: Option<UserId>,
    pub reason: Option<String>,
    /// What else there is to know: a mute's length, a setting's old and new value.
    pub detail: Option<String>,
}

impl Entry {
    /// An entry for `actor` doing `action` in `community`; add the rest with the builders.
    pub fn new(community: Option<CommunityId>, actor: UserId, action: impl Into<String>) -> Self {
        Self {
            community,
            actor,
            action: action.into(),
            target: None,
            reason: None,
            detail: None,
        }
    }

    pub fn target(mut self, target: UserId) -> Self {
        self.target = Some(target);
        self
    }

    pub fn reason(mut self, reason: Option<&str>) -> Self {
        self.reason = reason.map(str::to_owned);
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// How an action ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded, not finished: the platform call is under way, or cogbox stopped during it.
    Pending,
    Done,
    /// Part of it happened; the text says what did and why the rest did not.
    Partial(String),
    /// Nothing changed; the text says why.
    Failed(String),
}

impl Outcome {
    fn columns(&self) -> (&'static str, Option<&str>) {
        match self {
            Self::Pending => ("pending", None),
            Self::Done => ("done", None),
            Self::Partial(why) => ("partial", Some(why)),
            Self::Failed(why) => ("failed", Some(why)),
        }
    }

    fn from_columns(state: &str, detail: Option<String>) -> Self {
        let detail = detail.unwrap_or_default();
        match state {
            "done" => Self::Done,
            "partial" => Self::Partial(detail),
            "failed" => Self::Failed(detail),
            _ => Self::Pending,
        }
    }
}

/// A stored entry, as [`Audit::query`] returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub id: EntryId,
    pub at: DateTime<Utc>,
    pub entry: Entry,
    pub outcome: Outcome,
}

/// Which entries of a community [`Audit::query`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    All,
    /// Actions on this member.
    Target(UserId),
    /// Actions by this member.
    Actor(UserId),
}

/// Most entries one query returns, whatever the caller asks: a chat page, not an export.
pub const MAX_QUERY: usize = 100;

pub struct Audit {
    store: Store,
    clock: Arc<dyn Clock>,
}

impl Audit {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Writes `entry` as pending, before the platform is asked to act.
    pub async fn record(&self, entry: Entry) -> Result<EntryId, StoreError> {
        self.insert(entry, Outcome::Pending).await
    }

    /// Completes an entry written by [`Audit::record`].
    pub async fn finish(&self, id: EntryId, outcome: Outcome) -> Result<(), StoreError> {
        self.store
            .call(move |conn| {
                let (state, detail) = outcome.columns();
                conn.execute(
                    "UPDATE audit_log SET outcome = ?2, outcome_detail = ?3 WHERE id = ?1",
                    params![id.0, state, detail],
                )?;
                Ok(())
            })
            .await
    }

    /// Writes an entry whose outcome is already known (a settings change).
    pub async fn log(&self, entry: Entry, outcome: Outcome) -> Result<EntryId, StoreError> {
        self.insert(entry, outcome).await
    }

    async fn insert(&self, entry: Entry, outcome: Outcome) -> Result<EntryId, StoreError> {
        let at = self.clock.now().timestamp_millis();
        self.store
            .call(move |conn| {
                let (state, detail) = outcome.columns();
                conn.prepare_cached(
                    "INSERT INTO audit_log (at, platform, community, actor, action, target, \
                     reason, detail, outcome, outcome_detail) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?
                .execute(params![
                    at,
                    entry.actor.platform.as_str(),
                    entry.community.map(|c| c.raw_text()),
                    entry.actor.raw_text(),
                    entry.action,
                    entry.target.map(|t| t.raw_text()),
                    entry.reason,
                    entry.detail,
                    state,
                    detail,
                ])?;
                Ok(EntryId(conn.last_insert_rowid()))
            })
            .await
    }

    /// The latest entries (at most `limit`, capped at [`MAX_QUERY`]) in `community` that match
    /// `filter`, newest first.
    pub async fn query(
        &self,
        community: CommunityId,
        filter: Filter,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let limit = limit.min(MAX_QUERY) as i64;
        let platform = community.platform;
        // One statement per filter, so each uses its own index.
        let (column, user) = match filter {
            Filter::All => ("''", String::new()),
            Filter::Target(user) => ("target", user.raw_text()),
            Filter::Actor(user) => ("actor", user.raw_text()),
        };
        self.store
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT id, at, actor, action, target, reason, detail, outcome, \
                     outcome_detail FROM audit_log \
                     WHERE platform = ?1 AND community = ?2 AND {column} = ?3 \
                     ORDER BY at DESC, id DESC LIMIT ?4"
                ))?;
                let rows = stmt.query_map(
                    params![platform.as_str(), community.raw_text(), user, limit],
                    |row| {
                        let user = |text: Option<String>| {
                            text.and_then(|t| UserId::from_raw_text(platform.as_str(), &t).ok())
                        };
                        let actor: String = row.get(2)?;
                        let state: String = row.get(7)?;
                        Ok(Record {
                            id: EntryId(row.get(0)?),
                            at: DateTime::from_timestamp_millis(row.get(1)?).unwrap_or_default(),
                            entry: Entry {
                                community: Some(community),
                                actor: user(Some(actor))
                                    .unwrap_or(UserId::new(PlatformKind::Console, 0)),
                                action: row.get(3)?,
                                target: user(row.get(4)?),
                                reason: row.get(5)?,
                                detail: row.get(6)?,
                            },
                            outcome: Outcome::from_columns(&state, row.get(8)?),
                        })
                    },
                )?;
                rows.collect()
            })
            .await
    }

    /// Deletes the entries written before `cutoff`; returns how many.
    pub async fn purge_before(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        let cutoff = cutoff.timestamp_millis();
        self.store
            .call(move |conn| conn.execute("DELETE FROM audit_log WHERE at < ?1", [cutoff]))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ManualClock;
    use std::time::Duration;

    const GROUP: CommunityId = CommunityId::new(PlatformKind::Telegram, -100);
    const OTHER: CommunityId = CommunityId::new(PlatformKind::Telegram, -200);
    const MOD: UserId = UserId::new(PlatformKind::Telegram, 1);
    const ALICE: UserId = UserId::new(PlatformKind::Telegram, 2);
    const BOB: UserId = UserId::new(PlatformKind::Telegram, 3);

    fn audit() -> (Audit, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(
            DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        ));
        (
            Audit::new(Store::in_memory().unwrap(), clock.clone()),
            clock,
        )
    }

    #[tokio::test]
    async fn a_pending_entry_gets_its_outcome_and_is_found_by_target_and_actor() {
        let (audit, clock) = audit();
        let ban = audit
            .record(
                Entry::new(Some(GROUP), MOD, "kick")
                    .target(ALICE)
                    .reason(Some("spam")),
            )
            .await
            .unwrap();
        clock.advance(Duration::from_secs(5));
        audit
            .log(
                Entry::new(Some(GROUP), ALICE, "warn").target(BOB),
                Outcome::Done,
            )
            .await
            .unwrap();
        audit
            .log(
                Entry::new(Some(OTHER), MOD, "ban").target(ALICE),
                Outcome::Done,
            )
            .await
            .unwrap();

        let by_target = audit.query(GROUP, Filter::Target(ALICE), 10).await.unwrap();
        assert_eq!(by_target.len(), 1, "{by_target:?}");
        assert_eq!(by_target[0].outcome, Outcome::Pending);
        assert_eq!(by_target[0].entry.reason.as_deref(), Some("spam"));
        assert_eq!(by_target[0].entry.actor, MOD);
        assert_eq!(
            by_target[0].at,
            DateTime::from_timestamp(1_700_000_000, 0).unwrap()
        );

        audit
            .finish(ban, Outcome::Partial("banned, but the unban failed".into()))
            .await
            .unwrap();
        let by_actor = audit.query(GROUP, Filter::Actor(MOD), 10).await.unwrap();
        assert_eq!(by_actor.len(), 1, "the other group's ban is not here");
        assert_eq!(
            by_actor[0].outcome,
            Outcome::Partial("banned, but the unban failed".into())
        );

        let all = audit.query(GROUP, Filter::All, 10).await.unwrap();
        let actions: Vec<_> = all.iter().map(|r| r.entry.action.as_str()).collect();
        assert_eq!(actions, ["warn", "kick"], "newest first");
        assert_eq!(audit.query(GROUP, Filter::All, 1).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn entries_older_than_the_cutoff_are_purged_and_younger_ones_kept() {
        let (audit, clock) = audit();
        audit
            .log(Entry::new(Some(GROUP), MOD, "old"), Outcome::Done)
            .await
            .unwrap();
        clock.advance(Duration::from_secs(3600));
        let cutoff = clock.now();
        audit
            .log(Entry::new(Some(GROUP), MOD, "young"), Outcome::Done)
            .await
            .unwrap();
        assert_eq!(audit.purge_before(cutoff).await.unwrap(), 1);
        let left = audit.query(GROUP, Filter::All, 10).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].entry.action, "young");
    }
}
