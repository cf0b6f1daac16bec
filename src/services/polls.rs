//! Polls and their votes, in SQLite: one vote per member and poll, a new vote replacing the
//! old one, counted in the same transaction that records it so the counts shown are exact.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Transaction, params};

use super::store::{Store, StoreError};
use crate::core::{ChannelId, CommunityId, UserId};

/// A poll as a message shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Poll {
    pub id: i64,
    pub community: CommunityId,
    pub channel: ChannelId,
    pub question: String,
    pub options: Vec<String>,
    /// Votes per option, in the order of `options`.
    pub counts: Vec<u32>,
    pub closes_at: Option<DateTime<Utc>>,
    pub closed: bool,
}

impl Poll {
    pub fn total(&self) -> u32 {
        self.counts.iter().sum()
    }
}

/// A poll to open.
pub struct NewPoll {
    pub community: CommunityId,
    pub channel: ChannelId,
    pub author: UserId,
    pub question: String,
    pub options: Vec<String>,
    pub closes_at: Option<DateTime<Utc>>,
}

/// Why a vote was not counted; each is a sentence for the voter.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VoteError {
    #[error("there is no poll #{0} here")]
    NoSuchPoll(i64),
    #[error("poll #{0} is closed")]
    Closed(i64),
    #[error("poll #{0} has no option {1}")]
    NoSuchOption(i64, usize),
}

#[derive(Clone)]
pub struct Polls {
    store: Store,
}

impl Polls {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub async fn create(&self, poll: NewPoll, now: DateTime<Utc>) -> Result<Poll, StoreError> {
        let options = serde_json::to_string(&poll.options).expect("strings serialize");
        self.store
            .call(move |conn| {
                let tx = conn.transaction()?;
                tx.execute(
                    "INSERT INTO polls (platform, community, channel, author, question, options, created_at, closes_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        poll.community.platform.as_str(),
                        poll.community.raw_text(),
                        poll.channel.raw_text(),
                        poll.author.raw_text(),
                        poll.question,
                        options,
                        now.timestamp(),
                        poll.closes_at.map(|t| t.timestamp()),
                    ],
                )?;
                let id = tx.last_insert_rowid();
                let created = load(&tx, id)?.expect("just inserted");
                tx.commit()?;
                Ok(created)
            })
            .await
    }

    /// Records `voter`'s choice of `option` (0-based) in poll `id` of `community`, replacing
    /// any earlier vote, and returns the poll with its new counts.
    pub async fn vote(
        &self,
        community: CommunityId,
        id: i64,
        voter: UserId,
        option: usize,
        now: DateTime<Utc>,
    ) -> Result<Result<Poll, VoteError>, StoreError> {
        self.store
            .call(move |conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let poll = match load(&tx, id)? {
                    Some(poll) if poll.community == community => poll,
                    _ => return Ok(Err(VoteError::NoSuchPoll(id))),
                };
                if is_closed(&poll, now) {
                    return Ok(Err(VoteError::Closed(id)));
                }
                if option >= poll.options.len() {
                    return Ok(Err(VoteError::NoSuchOption(id, option + 1)));
                }
                tx.execute(
                    "INSERT INTO poll_votes (poll, voter, option) VALUES (?1, ?2, ?3)
                     ON CONFLICT (poll, voter) DO UPDATE SET option = excluded.option",
                    params![id, voter.raw_text(), option as i64],
                )?;
                let poll = load(&tx, id)?.expect("still there");
                tx.commit()?;
                Ok(Ok(poll))
            })
            .await
    }

    /// Closes poll `id` (again, harmlessly) and returns it with its final counts, or `None`
    /// when it is gone: a close job retried because its post failed posts the result then.
    pub async fn close(&self, id: i64) -> Result<Option<Poll>, StoreError> {
        self.store
            .call(move |conn| {
                let tx = conn.transaction()?;
                tx.execute("UPDATE polls SET closed = 1 WHERE id = ?1", [id])?;
                let poll = load(&tx, id)?;
                tx.commit()?;
                Ok(poll)
            })
            .await
    }

    /// The options `user` voted for, as (poll id, question, option label), for `/mydata`.
    pub async fn votes_of(
        &self,
        community: CommunityId,
        user: UserId,
    ) -> Result<Vec<(i64, String, String)>, StoreError> {
        self.store
            .call(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT p.id, p.question, p.options, v.option FROM poll_votes v
                     JOIN polls p ON p.id = v.poll
                     WHERE p.platform = ?1 AND p.community = ?2 AND v.voter = ?3 ORDER BY p.id",
                )?;
                stmt.query_map(
                    params![
                        community.platform.as_str(),
                        community.raw_text(),
                        user.raw_text()
                    ],
                    |row| {
                        let options: Vec<String> =
                            serde_json::from_str(&row.get::<_, String>(2)?).unwrap_or_default();
                        let option: usize = row.get(3)?;
                        Ok((
                            row.get(0)?,
                            row.get(1)?,
                            options.get(option).cloned().unwrap_or_default(),
                        ))
                    },
                )?
                .collect()
            })
            .await
    }

    /// Erases `user`'s votes in `community`; returns how many.
    pub async fn forget(&self, community: CommunityId, user: UserId) -> Result<usize, StoreError> {
        self.store
            .call(move |conn| {
                conn.execute(
                    "DELETE FROM poll_votes WHERE voter = ?3 AND poll IN
                     (SELECT id FROM polls WHERE platform = ?1 AND community = ?2)",
                    params![
                        community.platform.as_str(),
                        community.raw_text(),
                        user.raw_text()
                    ],
                )
            })
            .await
    }
}

fn is_closed(poll: &Poll, now: DateTime<Utc>) -> bool {
    poll.closed || poll.closes_at.is_some_and(|at| at <= now)
}

fn load(tx: &Transaction, id: i64) -> rusqlite::Result<Option<Poll>> {
    let row = tx
        .query_row(
            "SELECT platform, community, channel, question, options, closes_at, closed FROM polls WHERE id = ?1",
            [id],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, Option<i64>>(5)?,
                    row.get::<_, bool>(6)?,
                ))
            },
        )
        .optional()?;
    let Some((platform, community, channel, question, options, closes_at, closed)) = row else {
        return Ok(None);
    };
    let corrupt = |e: String| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    };
    let options: Vec<String> =
        serde_json::from_str(&options).map_err(|e| corrupt(e.to_string()))?;
    let mut counts = vec![0u32; options.len()];
    let mut stmt = tx.prepare_cached(
        "SELECT option, COUNT(*) FROM poll_votes WHERE poll = ?1 GROUP BY option",
    )?;
    for row in stmt.query_map([id], |row| {
        Ok((row.get::<_, usize>(0)?, row.get::<_, u32>(1)?))
    })? {
        let (option, count) = row?;
        if let Some(slot) = counts.get_mut(option) {
            *slot = count;
        }
    }
    Ok(Some(Poll {
        id,
        community: CommunityId::from_raw_text(&platform, &community).map_err(corrupt)?,
        channel: ChannelId::from_raw_text(&platform, &channel).map_err(corrupt)?,
        question,
        options,
        counts,
        closes_at: closes_at.and_then(|t| DateTime::from_timestamp(t, 0)),
        closed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::PlatformKind;

    const GROUP: CommunityId = CommunityId::new(PlatformKind::Console, 1);
    const OTHER: CommunityId = CommunityId::new(PlatformKind::Telegram, 1);
    const ALICE: UserId = UserId::new(PlatformKind::Console, 10);
    const BOB: UserId = UserId::new(PlatformKind::Console, 11);

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    async fn lunch(polls: &Polls, closes_at: Option<DateTime<Utc>>) -> Poll {
        let new = NewPoll {
            community: GROUP,
            channel: ChannelId::new(PlatformKind::Console, 1),
            author: ALICE,
            question: "Lunch?".into(),
            options: vec!["pizza".into(), "sushi".into()],
            closes_at,
        };
        polls.create(new, at(0)).await.unwrap()
    }

    #[tokio::test]
    async fn one_vote_per_member_and_a_new_press_moves_it() {
        let polls = Polls::new(Store::in_memory().unwrap());
        let poll = lunch(&polls, None).await;
        assert_eq!(poll.counts, [0, 0]);
        let vote = |user, option| polls.vote(GROUP, poll.id, user, option, at(1));
        assert_eq!(vote(ALICE, 0).await.unwrap().unwrap().counts, [1, 0]);
        assert_eq!(vote(ALICE, 0).await.unwrap().unwrap().counts, [1, 0]);
        assert_eq!(vote(BOB, 0).await.unwrap().unwrap().counts, [2, 0]);
        assert_eq!(vote(ALICE, 1).await.unwrap().unwrap().counts, [1, 1]);
        assert_eq!(
            vote(ALICE, 2).await.unwrap(),
            Err(VoteError::NoSuchOption(poll.id, 3))
        );
        assert_eq!(
            polls.vote(OTHER, poll.id, BOB, 0, at(1)).await.unwrap(),
            Err(VoteError::NoSuchPoll(poll.id)),
            "a poll is only reachable in its own community"
        );
        assert_eq!(
            polls.votes_of(GROUP, ALICE).await.unwrap(),
            [(poll.id, "Lunch?".to_owned(), "sushi".to_owned())]
        );
        assert_eq!(polls.forget(GROUP, ALICE).await.unwrap(), 1);
        assert_eq!(vote(BOB, 0).await.unwrap().unwrap().counts, [1, 0]);
    }

    #[tokio::test]
    async fn a_poll_takes_no_votes_once_its_time_is_up_and_closes_with_its_counts() {
        let polls = Polls::new(Store::in_memory().unwrap());
        let poll = lunch(&polls, Some(at(60))).await;
        assert!(
            polls
                .vote(GROUP, poll.id, BOB, 1, at(59))
                .await
                .unwrap()
                .is_ok()
        );
        assert_eq!(
            polls.vote(GROUP, poll.id, ALICE, 0, at(60)).await.unwrap(),
            Err(VoteError::Closed(poll.id)),
            "closed on time even before the close job ran"
        );
        let closed = polls.close(poll.id).await.unwrap().expect("closed now");
        assert_eq!((closed.closed, &closed.counts), (true, &vec![0, 1]));
        assert_eq!(
            polls.close(poll.id).await.unwrap(),
            Some(closed),
            "a retried close has the result to post"
        );
        assert_eq!(
            polls.close(poll.id + 1).await.unwrap(),
            None,
            "no such poll"
        );
    }
}
