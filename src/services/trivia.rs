//! Trivia rounds and the per-community score table. A round takes one right answer: the first
//! member to press it scores, and each member has one try per round, both enforced by SQLite
//! in the transaction that scores.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::store::{Store, StoreError};
use crate::core::{CommunityId, UserId};

/// Rounds older than this are deleted when the next one starts, which bounds the table.
const KEEP_ROUNDS_SECONDS: i64 = 24 * 3600;

/// What one press did.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// Right, and first: the member's score in the community is now `points`.
    Won {
        points: i64,
    },
    Wrong,
}

/// Why a press was not counted; each is a sentence for the member.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("there is no trivia question #{0} here (questions last a day)")]
    NoSuchRound(i64),
    #[error("question #{0} has already been answered")]
    Over(i64),
    #[error("you already had your try at question #{0}")]
    AlreadyTried(i64),
}

/// A round as stored: which question and on which button its right answer is.
#[derive(Debug, PartialEq, Eq)]
pub struct Round {
    pub question: usize,
    pub correct: usize,
}

#[derive(Clone)]
pub struct Trivia {
    store: Store,
}

impl Trivia {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Starts a round of `question` with its right answer on button `correct`; returns its id.
    pub async fn start(
        &self,
        community: CommunityId,
        round: Round,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        self.store
            .call(move |conn| {
                let tx = conn.transaction()?;
                let (platform, raw) = (community.platform.as_str(), community.raw_text());
                tx.execute(
                    "DELETE FROM trivia_rounds WHERE platform = ?1 AND community = ?2 AND created_at < ?3",
                    params![platform, raw, now.timestamp() - KEEP_ROUNDS_SECONDS],
                )?;
                tx.execute(
                    "INSERT INTO trivia_rounds (platform, community, question, correct, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![platform, raw, round.question as i64, round.correct as i64, now.timestamp()],
                )?;
                let id = tx.last_insert_rowid();
                tx.commit()?;
                Ok(id)
            })
            .await
    }

    /// The round `id` of `community`, if it is still kept.
    pub async fn round(
        &self,
        community: CommunityId,
        id: i64,
    ) -> Result<Option<Round>, StoreError> {
        self.store
            .call(move |conn| {
                conn.query_row(
                    "SELECT question, correct FROM trivia_rounds WHERE id = ?1 AND platform = ?2 AND community = ?3",
                    params![id, community.platform.as_str(), community.raw_text()],
                    |row| Ok(Round { question: row.get(0)?, correct: row.get(1)? }),
                )
                .optional()
            })
            .await
    }

    /// `player` (shown as `name` in the scores) presses button `choice` of round `id`.
    pub async fn answer(
        &self,
        community: CommunityId,
        id: i64,
        player: UserId,
        name: String,
        choice: usize,
    ) -> Result<Result<Answer, AnswerError>, StoreError> {
        self.store
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let (platform, raw) = (community.platform.as_str(), community.raw_text());
                let round = tx
                    .query_row(
                        "SELECT correct, winner IS NOT NULL FROM trivia_rounds
                         WHERE id = ?1 AND platform = ?2 AND community = ?3",
                        params![id, platform, raw],
                        |row| Ok((row.get::<_, usize>(0)?, row.get::<_, bool>(1)?)),
                    )
                    .optional()?;
                let (correct, over) = match round {
                    None => return Ok(Err(AnswerError::NoSuchRound(id))),
                    Some(round) => round,
                };
                if over {
                    return Ok(Err(AnswerError::Over(id)));
                }
                let first_try = tx.execute(
                    "INSERT OR IGNORE INTO trivia_attempts (round, player) VALUES (?1, ?2)",
                    params![id, player.raw_text()],
                )? == 1;
                if !first_try {
                    return Ok(Err(AnswerError::AlreadyTried(id)));
                }
                if choice != correct {
                    tx.commit()?;
                    return Ok(Ok(Answer::Wrong));
                }
                tx.execute(
                    "UPDATE trivia_rounds SET winner = ?2 WHERE id = ?1",
                    params![id, player.raw_text()],
                )?;
                let points = tx.query_row(
                    "INSERT INTO trivia_scores (platform, community, player, name, points) VALUES (?1, ?2, ?3, ?4, 1)
                     ON CONFLICT (platform, community, player)
                     DO UPDATE SET points = points + 1, name = excluded.name
                     RETURNING points",
                    params![platform, raw, player.raw_text(), name],
                    |row| row.get(0),
                )?;
                tx.commit()?;
                Ok(Ok(Answer::Won { points }))
            })
            .await
    }

    /// The best `limit` players of `community` as (name, points), best first.
    pub async fn top(
        &self,
        community: CommunityId,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        self.store
            .call(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT name, points FROM trivia_scores WHERE platform = ?1 AND community = ?2
                     ORDER BY points DESC, name LIMIT ?3",
                )?;
                stmt.query_map(
                    params![
                        community.platform.as_str(),
                        community.raw_text(),
                        limit as i64
                    ],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )?
                .collect()
            })
            .await
    }

    /// `user`'s trivia points in `community` (0 when they never scored).
    pub async fn points_of(&self, community: CommunityId, user: UserId) -> Result<i64, StoreError> {
        self.store
            .call(move |conn| {
                conn.query_row(
                    "SELECT points FROM trivia_scores WHERE platform = ?1 AND community = ?2 AND player = ?3",
                    params![community.platform.as_str(), community.raw_text(), user.raw_text()],
                    |row| row.get(0),
                )
                .optional()
                .map(Option::unwrap_or_default)
            })
            .await
    }

    /// Erases `user`'s score and tries in `community`; returns how many rows went.
    pub async fn forget(&self, community: CommunityId, user: UserId) -> Result<usize, StoreError> {
        self.store
            .call(move |conn| {
                let tx = conn.transaction()?;
                let args = params![community.platform.as_str(), community.raw_text(), user.raw_text()];
                let scores = tx.execute(
                    "DELETE FROM trivia_scores WHERE platform = ?1 AND community = ?2 AND player = ?3",
                    args,
                )?;
                let tries = tx.execute(
                    "DELETE FROM trivia_attempts WHERE player = ?3 AND round IN
                     (SELECT id FROM trivia_rounds WHERE platform = ?1 AND community = ?2)",
                    args,
                )?;
                tx.execute(
                    "UPDATE trivia_rounds SET winner = 'forgotten' WHERE winner = ?3
                     AND platform = ?1 AND community = ?2",
                    args,
                )?;
                tx.commit()?;
                Ok(scores + tries)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::PlatformKind;

    const GROUP: CommunityId = CommunityId::new(PlatformKind::Console, 1);
    const OTHER: CommunityId = CommunityId::new(PlatformKind::Console, 2);
    const ALICE: UserId = UserId::new(PlatformKind::Console, 10);
    const BOB: UserId = UserId::new(PlatformKind::Console, 11);

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    #[tokio::test]
    async fn one_try_each_and_the_first_right_answer_scores_once() {
        let trivia = Trivia::new(Store::in_memory().unwrap());
        let round = Round {
            question: 5,
            correct: 2,
        };
        let id = trivia.start(GROUP, round, at(0)).await.unwrap();
        let press = |user, name: &str, choice| trivia.answer(GROUP, id, user, name.into(), choice);
        assert_eq!(press(ALICE, "alice", 0).await.unwrap(), Ok(Answer::Wrong));
        assert_eq!(
            press(ALICE, "alice", 2).await.unwrap(),
            Err(AnswerError::AlreadyTried(id))
        );
        assert_eq!(
            press(BOB, "bob", 2).await.unwrap(),
            Ok(Answer::Won { points: 1 })
        );
        assert_eq!(
            press(BOB, "bob", 2).await.unwrap(),
            Err(AnswerError::Over(id))
        );
        assert_eq!(
            trivia
                .answer(OTHER, id, BOB, "bob".into(), 2)
                .await
                .unwrap(),
            Err(AnswerError::NoSuchRound(id)),
            "rounds belong to their community"
        );
        let next = trivia
            .start(
                GROUP,
                Round {
                    question: 1,
                    correct: 0,
                },
                at(10),
            )
            .await
            .unwrap();
        assert_eq!(
            trivia
                .answer(GROUP, next, BOB, "bob".into(), 0)
                .await
                .unwrap(),
            Ok(Answer::Won { points: 2 })
        );
        assert_eq!(
            trivia.top(GROUP, 10).await.unwrap(),
            [("bob".to_owned(), 2)]
        );
        assert_eq!(trivia.points_of(GROUP, BOB).await.unwrap(), 2);
        assert_eq!(
            trivia.forget(GROUP, BOB).await.unwrap(),
            3,
            "a score and two tries"
        );
        assert_eq!(trivia.points_of(GROUP, BOB).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn rounds_older_than_a_day_go_when_the_next_one_starts() {
        let trivia = Trivia::new(Store::in_memory().unwrap());
        let old = trivia
            .start(
                GROUP,
                Round {
                    question: 0,
                    correct: 0,
                },
                at(0),
            )
            .await
            .unwrap();
        trivia
            .start(
                GROUP,
                Round {
                    question: 1,
                    correct: 1,
                },
                at(KEEP_ROUNDS_SECONDS + 1),
            )
            .await
            .unwrap();
        assert_eq!(trivia.round(GROUP, old).await.unwrap(), None);
        assert_eq!(
            trivia
                .answer(GROUP, old, ALICE, "alice".into(), 0)
                .await
                .unwrap(),
            Err(AnswerError::NoSuchRound(old))
        );
    }
}
