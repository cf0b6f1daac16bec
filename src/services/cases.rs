//! Moderation cases: every warning and every action taken on a member, numbered, with who did
//! it, why, until when, and what the platform made of it. A case is written *before* the
//! platform is asked (outcome `pending`) and finished after, so an action that went only part of
//! the way, or never came back, stays visible in `/modlog`.
//!
//! Warnings escalate: [`Cases::warn`] stores the warning, counts the member's active warnings and
//! decides the automatic action in one `BEGIN IMMEDIATE` transaction, so concurrent warnings are
//! counted one after another and a threshold is reached, and acted on, exactly once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::settings::CommunitySettings;
use super::store::{Store, StoreError};
use crate::core::{CommunityId, Member, ModAction, ModOutcome, UserId};

/// The most cases one listing returns: a page a chat message can hold.
pub const PAGE: usize = 15;

/// SQL that is true when a later case makes timed case `c` moot: the same action again, taken
/// (it has an end of its own, or none), or its undoing, done. A macro, to be `concat!`ed.
macro_rules! superseded {
    () => {
        "EXISTS (
           SELECT 1 FROM mod_cases later
           WHERE later.platform = c.platform AND later.community = c.community
             AND later.target = c.target AND later.id > c.id
             AND ((later.action = c.action AND later.outcome IN ('done', 'incomplete'))
                  OR (later.action = iif(c.action = 'mute', 'unmute', 'unban')
                      AND later.outcome = 'done')))"
    };
}

/// What a case records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaseAction {
    Warn,
    Mute,
    Unmute,
    Kick,
    Ban,
    Unban,
}

impl CaseAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warn => "warn",
            Self::Mute => "mute",
            Self::Unmute => "unmute",
            Self::Kick => "kick",
            Self::Ban => "ban",
            Self::Unban => "unban",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "mute" => Self::Mute,
            "unmute" => Self::Unmute,
            "kick" => Self::Kick,
            "ban" => Self::Ban,
            "unban" => Self::Unban,
            _ => Self::Warn,
        }
    }

    pub fn of(action: &ModAction) -> Self {
        match action {
            ModAction::Mute(_) => Self::Mute,
            ModAction::Unmute => Self::Unmute,
            ModAction::Kick => Self::Kick,
            ModAction::Ban(_) => Self::Ban,
            ModAction::Unban => Self::Unban,
        }
    }
}

/// What became of a case on the platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The platform was asked and has not answered (or cogbox stopped before it did).
    Pending,
    Done,
    /// Part of it happened; the text says what did not.
    Incomplete(String),
    /// Nothing changed; the text says why.
    Failed(String),
}

impl Outcome {
    /// From what [`crate::core::Platform::moderate`] returned.
    pub fn of(result: &Result<ModOutcome, String>) -> Self {
        match result {
            Ok(ModOutcome {
                incomplete: Some(why),
                ..
            }) => Self::Incomplete(why.clone()),
            Ok(_) => Self::Done,
            Err(why) => Self::Failed(why.clone()),
        }
    }

    fn columns(&self) -> (&'static str, Option<&str>) {
        match self {
            Self::Pending => ("pending", None),
            Self::Done => ("done", None),
            Self::Incomplete(why) => ("incomplete", Some(why)),
            Self::Failed(why) => ("failed", Some(why)),
        }
    }

    fn from_columns(outcome: &str, detail: Option<String>) -> Self {
        let detail = detail.unwrap_or_default();
        match outcome {
            "done" => Self::Done,
            "incomplete" => Self::Incomplete(detail),
            "failed" => Self::Failed(detail),
            _ => Self::Pending,
        }
    }
}

/// A case to open.
#[derive(Clone, Debug)]
pub struct NewCase {
    pub community: CommunityId,
    pub action: CaseAction,
    pub actor: Member,
    pub target: Member,
    pub reason: Option<String>,
    /// When a timed mute or ban ends.
    pub duration: Option<Duration>,
}

/// A stored case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub id: i64,
    pub action: CaseAction,
    pub actor: String,
    pub target: String,
    pub target_id: String,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
    pub expires: Option<DateTime<Utc>>,
    pub outcome: Outcome,
    /// The case this one follows from: the warning that triggered this automatic action, or
    /// the timed mute or ban this unmute or unban lifts.
    pub cause: Option<i64>,
    pub revoked: bool,
}

/// A timed mute or ban whose end has passed without a lift ([`Cases::overdue`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimedAction {
    pub case: i64,
    pub community: CommunityId,
    /// `Mute` or `Ban`.
    pub action: CaseAction,
    pub actor: Member,
    pub target: Member,
}

/// A community's escalation thresholds, from its settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    pub mute_at: Option<i64>,
    pub mute_for: Duration,
    pub kick_at: Option<i64>,
    pub ban_at: Option<i64>,
}

impl Thresholds {
    pub fn of(settings: &CommunitySettings) -> Self {
        Self {
            mute_at: settings.count("warn_mute_at"),
            mute_for: settings
                .duration("warn_mute_for")
                .unwrap_or(Duration::from_secs(3600)),
            kick_at: settings.count("warn_kick_at"),
            ban_at: settings.count("warn_ban_at"),
        }
    }

    /// The action a member's `active`-th warning triggers: only the warning that reaches a
    /// threshold does, and the strongest wins when thresholds coincide.
    pub fn action_at(&self, active: i64) -> Option<ModAction> {
        if self.ban_at == Some(active) {
            Some(ModAction::Ban(None))
        } else if self.kick_at == Some(active) {
            Some(ModAction::Kick)
        } else if self.mute_at == Some(active) {
            Some(ModAction::Mute(self.mute_for))
        } else {
            None
        }
    }
}

/// What one warning led to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warned {
    pub case: i64,
    /// The member's active warnings, this one included.
    pub active: i64,
    /// The automatic action's own (pending) case and the action, when a threshold was reached.
    pub escalation: Option<(i64, ModAction)>,
}

/// Why `/unwarn` did nothing.
#[derive(Debug, thiserror::Error)]
pub enum UnwarnError {
    #[error("there is no warning #{0} here")]
    NotFound(i64),
    #[error("warning #{0} was already removed")]
    AlreadyRevoked(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct Cases {
    store: Store,
}

const COLUMNS: &str = "id, action, actor_name, target_name, target, reason, created_at, \
                       expires_at, outcome, outcome_detail, cause, revoked_at";

impl Cases {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Opens a pending case, before the platform is asked.
    pub async fn open(&self, case: NewCase, now: DateTime<Utc>) -> Result<i64, StoreError> {
        self.store
            .call(move |conn| insert(conn, &case, now, &Outcome::Pending, None))
            .await
    }

    /// Opens the pending case that lifts timed case `ends` (an unmute or unban), or returns
    /// the one an earlier attempt of the same lift opened: a retried lift stays one case.
    pub async fn open_lift(
        &self,
        case: NewCase,
        ends: i64,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        self.store
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let earlier: Option<i64> = tx
                    .query_row(
                        "SELECT id FROM mod_cases WHERE platform = ?1 AND community = ?2
                           AND target = ?3 AND cause = ?4 AND action = ?5",
                        params![
                            case.community.platform.as_str(),
                            case.community.raw_text(),
                            case.target.id.raw_text(),
                            ends,
                            case.action.as_str()
                        ],
                        |row| row.get(0),
                    )
                    .optional()?;
                let id = match earlier {
                    Some(id) => id,
                    None => insert(&tx, &case, now, &Outcome::Pending, Some(ends))?,
                };
                tx.commit()?;
                Ok(id)
            })
            .await
    }

    /// Records what the platform did for a case opened with [`Cases::open`].
    pub async fn finish(&self, id: i64, outcome: Outcome) -> Result<(), StoreError> {
        self.store
            .call(move |conn| {
                let (outcome, detail) = outcome.columns();
                conn.execute(
                    "UPDATE mod_cases SET outcome = ?2, outcome_detail = ?3 WHERE id = ?1",
                    params![id, outcome, detail],
                )
                .map(drop)
            })
            .await
    }

    /// Stores a warning and, in the same transaction, counts the member's active warnings and
    /// opens the automatic action's case when this warning reaches a threshold. `expiry` is how
    /// long a warning counts (`None`: until removed).
    pub async fn warn(
        &self,
        warning: NewCase,
        thresholds: Thresholds,
        expiry: Option<Duration>,
        now: DateTime<Utc>,
    ) -> Result<Warned, StoreError> {
        self.store
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let warning = NewCase {
                    action: CaseAction::Warn,
                    duration: expiry,
                    ..warning
                };
                let case = insert(&tx, &warning, now, &Outcome::Done, None)?;
                let active: i64 = tx.query_row(
                    "SELECT count(*) FROM mod_cases
                     WHERE platform = ?1 AND community = ?2 AND target = ?3 AND action = 'warn'
                       AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?4)",
                    params![
                        warning.community.platform.as_str(),
                        warning.community.raw_text(),
                        warning.target.id.raw_text(),
                        now.timestamp()
                    ],
                    |row| row.get(0),
                )?;
                let escalation = match thresholds.action_at(active) {
                    Some(action) => {
                        let automatic = NewCase {
                            action: CaseAction::of(&action),
                            reason: Some(format!("automatic: {active} warnings")),
                            duration: match action {
                                ModAction::Mute(d) => Some(d),
                                _ => None,
                            },
                            ..warning
                        };
                        let id = insert(&tx, &automatic, now, &Outcome::Pending, Some(case))?;
                        Some((id, action))
                    }
                    None => None,
                };
                tx.commit()?;
                Ok(Warned {
                    case,
                    active,
                    escalation,
                })
            })
            .await
    }

    /// Revokes a warning of this community, so it no longer counts.
    pub async fn unwarn(
        &self,
        community: CommunityId,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Case, UnwarnError> {
        let found = self
            .store
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let case = tx
                    .query_row(
                        &format!(
                            "SELECT {COLUMNS} FROM mod_cases
                             WHERE id = ?1 AND platform = ?2 AND community = ?3 AND action = 'warn'"
                        ),
                        params![id, community.platform.as_str(), community.raw_text()],
                        case_of,
                    )
                    .optional()?;
                if let Some(case) = case.as_ref().filter(|c| !c.revoked) {
                    tx.execute(
                        "UPDATE mod_cases SET revoked_at = ?2 WHERE id = ?1",
                        params![case.id, now.timestamp()],
                    )?;
                }
                tx.commit()?;
                Ok(case)
            })
            .await?;
        match found {
            None => Err(UnwarnError::NotFound(id)),
            Some(case) if case.revoked => Err(UnwarnError::AlreadyRevoked(id)),
            Some(case) => Ok(case),
        }
    }

    /// Every case about `user` in `community`, for `/mydata`, newest first.
    pub async fn export_of(
        &self,
        community: CommunityId,
        user: UserId,
    ) -> Result<Vec<String>, StoreError> {
        self.store
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT id, action, actor_name, reason, created_at, outcome FROM mod_cases
                     WHERE platform = ?1 AND community = ?2 AND target = ?3 ORDER BY id DESC",
                )?;
                stmt.query_map(
                    params![
                        community.platform.as_str(),
                        community.raw_text(),
                        user.raw_text()
                    ],
                    |r| {
                        Ok(format!(
                            "case #{}: {} by {} at {} (unix), {}{}",
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, String>(5)?,
                            r.get::<_, Option<String>>(3)?
                                .map(|reason| format!(", reason: {reason}"))
                                .unwrap_or_default()
                        ))
                    },
                )?
                .collect()
            })
            .await
    }

    /// Whether timed case `id` was made moot by a later case, so its end must not be lifted:
    /// the same action again (a new mute or ban, with an end of its own or none), or its
    /// undoing, done. An `/unmute` and a longer `/mute` both outlast a lift of the first.
    pub async fn superseded(&self, id: i64) -> Result<bool, StoreError> {
        self.store
            .call(move |conn| {
                let found = conn
                    .query_row(
                        concat!(
                            "SELECT ",
                            superseded!(),
                            " FROM mod_cases c WHERE c.id = ?1"
                        ),
                        params![id],
                        |row| row.get(0),
                    )
                    .optional()?;
                Ok(found.unwrap_or(false))
            })
            .await
    }

    /// Timed mutes and bans that ended between `since` and `now` and were never lifted: no
    /// unmute or unban of the member succeeded after them, and no newer mute or ban replaced
    /// them. At most [`PAGE`] × 10, oldest first.
    pub async fn overdue(
        &self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<TimedAction>, StoreError> {
        self.store
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(concat!(
                    "SELECT c.id, c.platform, c.community, c.action, c.actor, c.actor_name,
                            c.target, c.target_name
                     FROM mod_cases c
                     WHERE c.action IN ('mute', 'ban') AND c.outcome IN ('done', 'incomplete')
                       AND c.expires_at > ?1 AND c.expires_at <= ?2
                       AND NOT ",
                    superseded!(),
                    " ORDER BY c.expires_at LIMIT ?3",
                ))?;
                let rows = stmt.query_map(
                    params![since.timestamp(), now.timestamp(), (PAGE * 10) as i64],
                    |row| {
                        let platform: String = row.get(1)?;
                        let stored = |e: String| {
                            rusqlite::Error::FromSqlConversionFailure(
                                0,
                                rusqlite::types::Type::Text,
                                e.into(),
                            )
                        };
                        let member = |id: usize, name: usize| -> rusqlite::Result<Member> {
                            Ok(Member {
                                id: UserId::from_raw_text(&platform, row.get_ref(id)?.as_str()?)
                                    .map_err(stored)?,
                                name: row.get(name)?,
                                is_bot: false,
                            })
                        };
                        Ok(TimedAction {
                            case: row.get(0)?,
                            community: CommunityId::from_raw_text(
                                &platform,
                                row.get_ref(2)?.as_str()?,
                            )
                            .map_err(stored)?,
                            action: CaseAction::parse(&row.get::<_, String>(3)?),
                            actor: member(4, 5)?,
                            target: member(6, 7)?,
                        })
                    },
                )?;
                rows.collect()
            })
            .await
    }

    /// Whether `user` is banned from `community` at `now`: their latest ban or unban that went
    /// through is a ban, and it has not ended. Slack, which gives apps no ban, enforces this.
    pub async fn banned(
        &self,
        community: CommunityId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.store
            .call(move |conn| {
                let latest: Option<(String, Option<i64>)> = conn
                    .query_row(
                        "SELECT action, expires_at FROM mod_cases
                         WHERE platform = ?1 AND community = ?2 AND target = ?3
                           AND action IN ('ban', 'unban') AND outcome IN ('done', 'incomplete')
                         ORDER BY id DESC LIMIT 1",
                        params![
                            community.platform.as_str(),
                            community.raw_text(),
                            user.raw_text()
                        ],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .optional()?;
                Ok(matches!(latest, Some((action, ends))
                    if action == "ban" && ends.is_none_or(|ends| ends > now.timestamp())))
            })
            .await
    }

    /// Case `id` of `community`, if it is one of its cases.
    pub async fn get(&self, community: CommunityId, id: i64) -> Result<Option<Case>, StoreError> {
        self.store
            .call(move |conn| {
                conn.query_row(
                    &format!(
                        "SELECT {COLUMNS} FROM mod_cases
                         WHERE id = ?1 AND platform = ?2 AND community = ?3"
                    ),
                    params![id, community.platform.as_str(), community.raw_text()],
                    case_of,
                )
                .optional()
            })
            .await
    }

    /// The latest [`PAGE`] cases of a community, of one member when `target` is given, newest
    /// first; `warnings_only` keeps the warnings that still count at `now`.
    pub async fn list(
        &self,
        community: CommunityId,
        target: Option<UserId>,
        warnings_only: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<Case>, StoreError> {
        self.store
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM mod_cases
                     WHERE platform = ?1 AND community = ?2 AND (?3 IS NULL OR target = ?3)
                       AND (?4 = 0 OR (action = 'warn' AND revoked_at IS NULL
                                       AND (expires_at IS NULL OR expires_at > ?5)))
                     ORDER BY id DESC LIMIT ?6"
                ))?;
                stmt.query_map(
                    params![
                        community.platform.as_str(),
                        community.raw_text(),
                        target.map(|t| t.raw_text()),
                        warnings_only,
                        now.timestamp(),
                        PAGE as i64
                    ],
                    case_of,
                )?
                .collect()
            })
            .await
    }
}

fn insert(
    conn: &rusqlite::Connection,
    case: &NewCase,
    now: DateTime<Utc>,
    outcome: &Outcome,
    cause: Option<i64>,
) -> rusqlite::Result<i64> {
    let expires = case
        .duration
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .map(|d| (now + d).timestamp());
    let (outcome, detail) = outcome.columns();
    conn.execute(
        "INSERT INTO mod_cases (platform, community, action, actor, actor_name, target,
                                target_name, reason, created_at, expires_at, outcome,
                                outcome_detail, cause)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            case.community.platform.as_str(),
            case.community.raw_text(),
            case.action.as_str(),
            case.actor.id.raw_text(),
            case.actor.name,
            case.target.id.raw_text(),
            case.target.name,
            case.reason,
            now.timestamp(),
            expires,
            outcome,
            detail,
            cause
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

fn case_of(row: &Row) -> rusqlite::Result<Case> {
    let time = |secs: i64| DateTime::from_timestamp(secs, 0).unwrap_or_default();
    Ok(Case {
        id: row.get(0)?,
        action: CaseAction::parse(&row.get::<_, String>(1)?),
        actor: row.get(2)?,
        target: row.get(3)?,
        target_id: row.get(4)?,
        reason: row.get(5)?,
        at: time(row.get(6)?),
        expires: row.get::<_, Option<i64>>(7)?.map(time),
        outcome: Outcome::from_columns(&row.get::<_, String>(8)?, row.get(9)?),
        cause: row.get(10)?,
        revoked: row.get::<_, Option<i64>>(11)?.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::core::PlatformKind;

    const GROUP: CommunityId = CommunityId::new(PlatformKind::Telegram, -100);

    fn member(raw: i64, name: &str) -> Member {
        Member {
            id: UserId::new(PlatformKind::Telegram, raw),
            name: name.into(),
            is_bot: false,
        }
    }

    fn warning(target: i64) -> NewCase {
        NewCase {
            community: GROUP,
            action: CaseAction::Warn,
            actor: member(1, "@mod"),
            target: member(target, "@bob"),
            reason: Some("spam".into()),
            duration: None,
        }
    }

    const DEFAULTS: Thresholds = Thresholds {
        mute_at: Some(3),
        mute_for: Duration::from_secs(3600),
        kick_at: Some(5),
        ban_at: Some(7),
    };

    #[test]
    fn only_the_warning_that_reaches_a_threshold_acts() {
        let actions: Vec<_> = (1..=8).map(|n| DEFAULTS.action_at(n)).collect();
        assert_eq!(
            actions,
            [
                None,
                None,
                Some(ModAction::Mute(Duration::from_secs(3600))),
                None,
                Some(ModAction::Kick),
                None,
                Some(ModAction::Ban(None)),
                None
            ]
        );
        let off = Thresholds {
            kick_at: None,
            mute_at: Some(5),
            ..DEFAULTS
        };
        assert_eq!(off.action_at(5), Some(ModAction::Mute(DEFAULTS.mute_for)));
        let same = Thresholds {
            kick_at: Some(7),
            ..DEFAULTS
        };
        assert_eq!(same.action_at(7), Some(ModAction::Ban(None)), "strongest");
    }

    #[tokio::test]
    async fn a_ban_holds_until_it_ends_or_an_unban_goes_through() {
        let cases = Cases::new(Store::in_memory().unwrap());
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let minutes = |n: i64| start + chrono::Duration::minutes(n);
        let case = |action, target, duration| NewCase {
            action,
            duration,
            ..warning(target)
        };
        let settle = async |case: NewCase, at, outcome| {
            let id = cases.open(case, at).await.unwrap();
            cases.finish(id, outcome).await.unwrap();
        };
        let banned = async |target: i64, at| {
            let user = UserId::new(PlatformKind::Telegram, target);
            cases.banned(GROUP, user, at).await.unwrap()
        };
        let ten = Some(Duration::from_secs(600));
        settle(case(CaseAction::Ban, 2, None), minutes(0), Outcome::Done).await;
        settle(case(CaseAction::Ban, 3, ten), minutes(0), Outcome::Done).await;
        settle(case(CaseAction::Ban, 4, None), minutes(0), Outcome::Done).await;
        settle(case(CaseAction::Unban, 4, None), minutes(1), Outcome::Done).await;
        settle(case(CaseAction::Ban, 5, None), minutes(0), Outcome::Done).await;
        let down = Outcome::Failed("down".into());
        settle(case(CaseAction::Unban, 5, None), minutes(1), down.clone()).await;
        settle(case(CaseAction::Ban, 6, None), minutes(0), down).await;
        settle(case(CaseAction::Kick, 7, None), minutes(0), Outcome::Done).await;

        assert!(banned(2, minutes(60)).await, "a ban without an end holds");
        assert!(banned(3, minutes(9)).await && !banned(3, minutes(10)).await);
        assert!(!banned(4, minutes(2)).await, "lifted");
        assert!(banned(5, minutes(2)).await, "a failed unban lifts nothing");
        assert!(!banned(6, minutes(2)).await, "a ban that failed never held");
        assert!(!banned(7, minutes(2)).await, "a kick is no ban");
        let elsewhere = CommunityId::new(PlatformKind::Telegram, -200);
        let user = UserId::new(PlatformKind::Telegram, 2);
        assert!(!cases.banned(elsewhere, user, minutes(2)).await.unwrap());
    }

    #[tokio::test]
    async fn overdue_are_the_timed_actions_that_ended_and_were_never_lifted() {
        let cases = Cases::new(Store::in_memory().unwrap());
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let minutes = |n: i64| start + chrono::Duration::minutes(n);
        let timed = |action, target| NewCase {
            action,
            duration: Some(Duration::from_secs(600)),
            ..warning(target)
        };
        let plain = |action, target| NewCase {
            action,
            duration: None,
            ..warning(target)
        };
        let done = async |case: NewCase, at| {
            let id = cases.open(case, at).await.unwrap();
            cases.finish(id, Outcome::Done).await.unwrap();
            id
        };
        let forgotten = done(timed(CaseAction::Mute, 2), minutes(0)).await;
        done(timed(CaseAction::Mute, 3), minutes(0)).await;
        done(plain(CaseAction::Unmute, 3), minutes(11)).await;
        let failed_lift = done(timed(CaseAction::Ban, 4), minutes(0)).await;
        let unban = cases
            .open(plain(CaseAction::Unban, 4), minutes(11))
            .await
            .unwrap();
        cases
            .finish(unban, Outcome::Failed("down".into()))
            .await
            .unwrap();
        done(timed(CaseAction::Mute, 5), minutes(0)).await;
        let renewed = done(timed(CaseAction::Mute, 5), minutes(5)).await;
        let long_ago = done(timed(CaseAction::Mute, 6), minutes(-60)).await;
        let ids = |since, now| {
            let cases = cases.clone();
            async move {
                let found = cases.overdue(since, now).await.unwrap();
                found.iter().map(|t| t.case).collect::<Vec<_>>()
            }
        };
        assert_eq!(
            ids(minutes(-30), minutes(20)).await,
            [forgotten, failed_lift, renewed],
            "lifted ones, replaced ones and those ended before the window are left out"
        );
        assert_eq!(
            ids(minutes(-30), minutes(12)).await,
            [forgotten, failed_lift]
        );
        assert!(
            ids(minutes(-30), minutes(5)).await.is_empty(),
            "none ended yet"
        );
        let all = ids(minutes(-120), minutes(20)).await;
        assert_eq!(all[0], long_ago);
        let found = cases.overdue(minutes(-30), minutes(20)).await.unwrap();
        assert_eq!(found[0].target.id, UserId::new(PlatformKind::Telegram, 2));
        assert_eq!(found[1].action, CaseAction::Ban);
    }

    #[tokio::test]
    async fn a_retried_lift_stays_one_case() {
        let cases = Cases::new(Store::in_memory().unwrap());
        let now = Utc::now();
        let mute = NewCase {
            action: CaseAction::Mute,
            duration: Some(Duration::from_secs(600)),
            ..warning(2)
        };
        let muted = cases.open(mute.clone(), now).await.unwrap();
        let unmute = NewCase {
            action: CaseAction::Unmute,
            duration: None,
            ..warning(2)
        };
        let first = cases.open_lift(unmute.clone(), muted, now).await.unwrap();
        cases
            .finish(first, Outcome::Failed("network".into()))
            .await
            .unwrap();
        let retried = cases.open_lift(unmute.clone(), muted, now).await.unwrap();
        assert_eq!(retried, first, "a retry reuses the lift's case");
        let other = cases.open(mute, now).await.unwrap();
        let lifted = cases.open_lift(unmute, other, now).await.unwrap();
        assert_ne!(lifted, first, "another mute's lift is a case of its own");
        let listed = cases.list(GROUP, None, false, now).await.unwrap();
        assert_eq!(listed.len(), 4, "{listed:?}");
        assert!(
            listed
                .iter()
                .any(|c| c.id == first && c.cause == Some(muted))
        );
    }

    #[tokio::test]
    async fn a_threshold_triggers_exactly_once_under_concurrent_warns() {
        let cases = Arc::new(Cases::new(Store::in_memory().unwrap()));
        let now = Utc::now();
        let warns = (0..8).map(|_| {
            let cases = Arc::clone(&cases);
            tokio::spawn(async move { cases.warn(warning(2), DEFAULTS, None, now).await })
        });
        let mut escalations = Vec::new();
        let mut counts = Vec::new();
        for warned in futures_util::future::join_all(warns).await {
            let warned = warned.unwrap().unwrap();
            counts.push(warned.active);
            escalations.extend(warned.escalation.map(|(_, action)| action));
        }
        counts.sort();
        assert_eq!(
            counts,
            (1..=8).collect::<Vec<_>>(),
            "each warn counted once"
        );
        assert_eq!(
            escalations.len(),
            3,
            "mute, kick and ban once each: {escalations:?}"
        );
        let listed = cases.list(GROUP, None, false, now).await.unwrap();
        let automatic: Vec<_> = listed
            .iter()
            .filter(|c| c.cause.is_some())
            .map(|c| (c.action, &c.outcome))
            .collect();
        assert_eq!(
            automatic,
            [
                (CaseAction::Ban, &Outcome::Pending),
                (CaseAction::Kick, &Outcome::Pending),
                (CaseAction::Mute, &Outcome::Pending)
            ],
            "each a case of its own"
        );
    }

    #[tokio::test]
    async fn revoked_and_expired_warnings_stop_counting() {
        let cases = Cases::new(Store::in_memory().unwrap());
        let now = Utc::now();
        let day = Some(Duration::from_secs(86_400));
        let first = cases.warn(warning(2), DEFAULTS, day, now).await.unwrap();
        cases.warn(warning(2), DEFAULTS, None, now).await.unwrap();
        cases.warn(warning(3), DEFAULTS, None, now).await.unwrap();
        let later = now + chrono::Duration::days(2);
        let active = cases
            .list(GROUP, Some(member(2, "").id), true, later)
            .await
            .unwrap();
        assert_eq!(active.len(), 1, "the first expired after a day");
        let second = active[0].id;
        let removed = cases.unwarn(GROUP, second, later).await.unwrap();
        assert_eq!(removed.target, "@bob");
        assert!(matches!(
            cases.unwarn(GROUP, second, later).await,
            Err(UnwarnError::AlreadyRevoked(_))
        ));
        let elsewhere = CommunityId::new(PlatformKind::Telegram, -200);
        assert!(matches!(
            cases.unwarn(elsewhere, first.case, later).await,
            Err(UnwarnError::NotFound(_))
        ));
        let again = cases.warn(warning(2), DEFAULTS, None, later).await.unwrap();
        assert_eq!(again.active, 1, "expired and revoked ones are not counted");
        let all = cases.list(GROUP, None, false, later).await.unwrap();
        assert_eq!(all.len(), 4, "nothing is deleted: {all:?}");
    }

    #[tokio::test]
    async fn every_action_and_outcome_reads_back_as_it_was_stored() {
        let cases = Cases::new(Store::in_memory().unwrap());
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let actions = [
            CaseAction::Warn,
            CaseAction::Mute,
            CaseAction::Unmute,
            CaseAction::Kick,
            CaseAction::Ban,
            CaseAction::Unban,
        ];
        let outcomes = [
            Outcome::Pending,
            Outcome::Done,
            Outcome::Incomplete("unban failed".into()),
            Outcome::Failed("missing rights".into()),
        ];
        let mut stored = Vec::new();
        for (n, action) in actions.into_iter().enumerate() {
            let outcome = outcomes[n % outcomes.len()].clone();
            let id = cases
                .open(
                    NewCase {
                        action,
                        ..warning(2)
                    },
                    now,
                )
                .await
                .unwrap();
            cases.finish(id, outcome.clone()).await.unwrap();
            stored.push((id, action, outcome));
        }
        let mut listed: Vec<_> = cases
            .list(GROUP, None, false, now)
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.id, c.action, c.outcome))
            .collect();
        listed.reverse();
        assert_eq!(listed, stored);
        let (id, action, outcome) = stored[3].clone();
        let got = cases
            .get(GROUP, id)
            .await
            .unwrap()
            .expect("the case is found");
        assert_eq!((got.action, got.outcome), (action, outcome));
        let elsewhere = CommunityId::new(PlatformKind::Telegram, -200);
        assert_eq!(
            cases.get(elsewhere, id).await.unwrap(),
            None,
            "another group's"
        );
    }

    #[tokio::test]
    async fn a_warning_that_reaches_a_threshold_opens_the_action_it_caused_with_its_end() {
        let cases = Cases::new(Store::in_memory().unwrap());
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let day = Duration::from_secs(86_400);
        // Whatever the caller's case says, `warn` stores a warning.
        let kick = NewCase {
            action: CaseAction::Kick,
            ..warning(2)
        };
        for _ in 0..2 {
            cases
                .warn(kick.clone(), DEFAULTS, Some(day), now)
                .await
                .unwrap();
        }
        let third = cases.warn(kick, DEFAULTS, Some(day), now).await.unwrap();
        let (automatic, action) = third.escalation.expect("the third warning mutes");
        assert_eq!(action, ModAction::Mute(DEFAULTS.mute_for));
        let warned = cases.get(GROUP, third.case).await.unwrap().unwrap();
        assert_eq!(warned.action, CaseAction::Warn);
        assert_eq!(warned.reason.as_deref(), Some("spam"));
        assert_eq!(warned.expires, Some(now + chrono::Duration::days(1)));
        let mute = cases.get(GROUP, automatic).await.unwrap().unwrap();
        assert_eq!(mute.action, CaseAction::Mute);
        assert_eq!(mute.reason.as_deref(), Some("automatic: 3 warnings"));
        assert_eq!(
            mute.expires,
            Some(now + chrono::Duration::hours(1)),
            "the mute ends after mute_for, not when the warning expires"
        );
        assert_eq!(
            (mute.cause, mute.outcome),
            (Some(third.case), Outcome::Pending)
        );
        for _ in 0..2 {
            cases.warn(warning(2), DEFAULTS, None, now).await.unwrap();
        }
        let kicked = cases.list(GROUP, None, false, now).await.unwrap()[0].clone();
        assert_eq!((kicked.action, kicked.expires), (CaseAction::Kick, None));
    }

    #[tokio::test]
    async fn mydata_lists_every_case_about_the_member_and_only_theirs() {
        let cases = Cases::new(Store::in_memory().unwrap());
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let warned = cases.warn(warning(2), DEFAULTS, None, now).await.unwrap();
        let kick = NewCase {
            action: CaseAction::Kick,
            reason: None,
            ..warning(2)
        };
        let kicked = cases.open(kick, now).await.unwrap();
        cases.warn(warning(3), DEFAULTS, None, now).await.unwrap();
        let bob = UserId::new(PlatformKind::Telegram, 2);
        assert_eq!(
            cases.export_of(GROUP, bob).await.unwrap(),
            [
                format!("case #{kicked}: kick by @mod at 1700000000 (unix), pending"),
                format!(
                    "case #{}: warn by @mod at 1700000000 (unix), done, reason: spam",
                    warned.case
                ),
            ]
        );
        let elsewhere = CommunityId::new(PlatformKind::Telegram, -200);
        assert!(cases.export_of(elsewhere, bob).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_pending_case_is_finished_with_the_platform_outcome() {
        let cases = Cases::new(Store::in_memory().unwrap());
        let now = Utc::now();
        let kick = NewCase {
            action: CaseAction::Kick,
            ..warning(2)
        };
        let id = cases.open(kick, now).await.unwrap();
        let listed = cases.list(GROUP, None, false, now).await.unwrap();
        assert_eq!(listed[0].outcome, Outcome::Pending);
        let half = Outcome::of(&Ok(ModOutcome {
            notified: false,
            incomplete: Some("unban failed".into()),
        }));
        cases.finish(id, half.clone()).await.unwrap();
        let listed = cases.list(GROUP, None, false, now).await.unwrap();
        assert_eq!(listed[0].outcome, half);
    }
}
