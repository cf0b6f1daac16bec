//! The bank: a balance per (community, user) and a ledger row for every change to it.
//!
//! Every change runs in a savepoint of its own inside a `BEGIN IMMEDIATE` transaction, so it
//! applies whole or not at all, and a balance can never go below zero or above
//! [`MAX_BALANCE`] (checked here and by the table). The store commits with `synchronous =
//! FULL`, and nobody hears "done" before the commit: an answered change survives a crash and
//! a power cut. One fsync takes milliseconds (tens on an SD card),
//! so changes that queue up while a commit is in flight share the next transaction (group
//! commit): alone, a change is its own transaction; under load, one fsync pays for up to
//! [`MAX_BATCH`] of them.
//!
//! Each change carries a key naming the invocation that asked for it; a key already in the
//! ledger is not applied again, so a command delivered twice moves money once.

use std::sync::Arc;
use std::sync::mpsc;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::store::{Store, StoreError};
use crate::core::{Clock, CommunityId, Member, UserId};

/// The most one change can move: far from any overflow, and more than any community needs.
pub const MAX_AMOUNT: i64 = 1_000_000_000;

/// The most one account can hold (as the table checks): with i64 sums, no total of balances
/// in a community of fewer than 9,000 accounts at the maximum can overflow.
pub const MAX_BALANCE: i64 = 1_000_000_000_000_000;

/// How long after a `/daily` the next one pays, and until when it keeps the streak.
pub const DAILY_EVERY: chrono::TimeDelta = chrono::TimeDelta::hours(24);
pub const STREAK_KEPT_FOR: chrono::TimeDelta = chrono::TimeDelta::hours(48);

/// Each day of a streak after the first adds a tenth of the daily amount, up to this many.
pub const MAX_STREAK_BONUS_DAYS: i64 = 10;

/// Changes committed together at most; each waiting caller holds one change, so the queue is
/// bounded by the commands in flight (a few hundred bytes each).
pub const MAX_BATCH: usize = 512;

/// A positive whole amount no larger than [`MAX_AMOUNT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Amount(i64);

impl Amount {
    pub fn new(n: i64) -> Result<Self, BankError> {
        if (1..=MAX_AMOUNT).contains(&n) {
            Ok(Self(n))
        } else {
            Err(BankError::BadAmount)
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// One change to the balances of a community.
#[derive(Clone, Debug)]
pub enum Change {
    /// `from` pays `to`.
    Pay {
        from: Member,
        to: Member,
        amount: Amount,
    },
    /// Money from nowhere, given by a moderator.
    Grant {
        actor: UserId,
        to: Member,
        amount: Amount,
    },
    /// Money taken away by a moderator; never more than the member has.
    Take {
        actor: UserId,
        from: Member,
        amount: Amount,
    },
    /// The daily payout: `base` and the streak bonus, once per [`DAILY_EVERY`].
    Daily { to: Member, base: Amount },
}

impl Change {
    /// The ledger's name for it: `pay`, `grant`, `take`, `daily`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Pay { .. } => "pay",
            Self::Grant { .. } => "grant",
            Self::Take { .. } => "take",
            Self::Daily { .. } => "daily",
        }
    }

    fn actor(&self) -> UserId {
        match self {
            Self::Pay { from, .. } => from.id,
            Self::Grant { actor, .. } | Self::Take { actor, .. } => *actor,
            Self::Daily { to, .. } => to.id,
        }
    }

    fn payer(&self) -> Option<&Member> {
        match self {
            Self::Pay { from, .. } | Self::Take { from, .. } => Some(from),
            Self::Grant { .. } | Self::Daily { .. } => None,
        }
    }

    fn payee(&self) -> Option<&Member> {
        match self {
            Self::Pay { to, .. } | Self::Grant { to, .. } | Self::Daily { to, .. } => Some(to),
            Self::Take { .. } => None,
        }
    }
}

/// What a change did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// How much moved (for `/daily`, the base and the bonus).
    pub amount: i64,
    /// The balances of the payer and the payee afterwards, where there is one.
    pub payer_balance: Option<i64>,
    pub payee_balance: Option<i64>,
    /// For `/daily`: the days in a row claimed, this one included.
    pub streak: i64,
    /// The key had been applied before: this receipt describes that change, and nothing moved.
    pub replayed: bool,
}

/// Why a change was not made; nothing changed in any case.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BankError {
    #[error("amounts are whole numbers from 1 to {MAX_AMOUNT}")]
    BadAmount,
    #[error("an account can't pay itself")]
    SelfPayment,
    #[error("the payer has only {balance}")]
    Insufficient { balance: i64 },
    #[error("the payee already has {balance}, and an account holds at most {MAX_BALANCE}")]
    Full { balance: i64 },
    #[error("the daily payout is ready again at {ready}")]
    TooSoon { ready: DateTime<Utc> },
    /// The database failed; the change was not committed.
    #[error("bank: {0}")]
    Storage(String),
}

impl From<StoreError> for BankError {
    fn from(e: StoreError) -> Self {
        Self::Storage(e.to_string())
    }
}

impl From<rusqlite::Error> for BankError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Storage(e.to_string())
    }
}

/// One line of the leaderboard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holding {
    pub user: UserId,
    pub name: String,
    pub balance: i64,
}

struct Job {
    community: CommunityId,
    key: String,
    change: Change,
    done: oneshot::Sender<Result<Receipt, BankError>>,
}

#[derive(Clone)]
pub struct Bank {
    store: Store,
    /// Changes for the writer thread, which ends when the last `Bank` is dropped.
    writer: mpsc::Sender<Job>,
}

impl Bank {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        let (writer, jobs) = mpsc::channel();
        let conn = store.clone();
        std::thread::Builder::new()
            .name("cogbox-bank".into())
            .spawn(move || write(&conn, &*clock, &jobs))
            .expect("the bank's writer thread could not start");
        Self { store, writer }
    }

    /// Applies `change` in `community` once for `key` (the invocation's key), and answers
    /// only once it is durably committed.
    pub async fn apply(
        &self,
        community: CommunityId,
        key: String,
        change: Change,
    ) -> Result<Receipt, BankError> {
        if let Change::Pay { from, to, .. } = &change
            && from.id == to.id
        {
            return Err(BankError::SelfPayment);
        }
        let (done, receipt) = oneshot::channel();
        let job = Job {
            community,
            key,
            change,
            done,
        };
        let abandoned = || BankError::Storage("the bank's writer has stopped".into());
        self.writer.send(job).map_err(|_| abandoned())?;
        receipt.await.unwrap_or_else(|_| Err(abandoned()))
    }

    /// `user`'s balance in `community` (0 for someone who never had money here).
    pub async fn balance(&self, community: CommunityId, user: UserId) -> Result<i64, StoreError> {
        self.store
            .call(move |conn| balance(conn, community, user))
            .await
    }

    /// What the bank holds about `user` in `community`, for `/mydata`: the balance, the daily
    /// streak and the latest ledger rows that name them.
    pub async fn export_of(
        &self,
        community: CommunityId,
        user: UserId,
    ) -> Result<Vec<String>, StoreError> {
        self.store
            .call(move |conn| {
                let (platform, place, who) = (
                    community.platform.as_str(),
                    community.raw_text(),
                    user.raw_text(),
                );
                let held = balance(conn, community, user)?;
                let mut lines = vec![format!("balance {held}")];
                let streak: Option<(i64, i64)> = conn
                    .query_row(
                        "SELECT claimed_at, streak FROM daily_claims
                         WHERE platform = ?1 AND community = ?2 AND user = ?3",
                        params![platform, place, who],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                if let Some((at, streak)) = streak {
                    lines.push(format!("last /daily at {at} (unix), streak {streak}"));
                }
                let mut stmt = conn.prepare_cached(
                    "SELECT id, kind, payer, payee, amount, at FROM ledger
                     WHERE platform = ?1 AND community = ?2 AND (payer = ?3 OR payee = ?3)
                     ORDER BY id DESC LIMIT 100",
                )?;
                let rows = stmt.query_map(params![platform, place, who], |r| {
                    let (payer, payee): (Option<String>, Option<String>) = (r.get(2)?, r.get(3)?);
                    let direction = if payer.as_deref() == Some(who.as_str()) {
                        "out"
                    } else {
                        "in"
                    };
                    Ok(format!(
                        "ledger #{}: {} {} {} at {} (unix){}",
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        direction,
                        r.get::<_, i64>(4)?,
                        r.get::<_, i64>(5)?,
                        match (payer, payee) {
                            (Some(a), Some(b)) => format!(", from {a} to {b}"),
                            _ => String::new(),
                        }
                    ))
                })?;
                for row in rows {
                    lines.push(row?);
                }
                // Someone the bank never saw: nothing stored, not a balance of 0.
                if held == 0 && lines.len() == 1 {
                    lines.clear();
                }
                Ok(lines)
            })
            .await
    }

    /// Erases `user`'s balance and daily streak in `community`; returns how many rows went.
    pub async fn forget(&self, community: CommunityId, user: UserId) -> Result<usize, StoreError> {
        self.store
            .call(move |conn| {
                let tx = conn.transaction()?;
                let args = params![
                    community.platform.as_str(),
                    community.raw_text(),
                    user.raw_text()
                ];
                let mut gone = tx.execute(
                    "DELETE FROM balances WHERE platform = ?1 AND community = ?2 AND user = ?3",
                    args,
                )?;
                gone += tx.execute(
                    "DELETE FROM daily_claims WHERE platform = ?1 AND community = ?2 AND user = ?3",
                    args,
                )?;
                tx.commit()?;
                Ok(gone)
            })
            .await
    }

    /// The `limit` richest members of `community`, richest first.
    pub async fn top(
        &self,
        community: CommunityId,
        limit: u32,
    ) -> Result<Vec<Holding>, StoreError> {
        self.store
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT user, name, balance FROM balances
                     WHERE platform = ?1 AND community = ?2 AND balance > 0
                     ORDER BY balance DESC, user LIMIT ?3",
                )?;
                let platform = community.platform.as_str();
                stmt.query_map(params![platform, community.raw_text(), limit], |row| {
                    Ok(Holding {
                        user: user_from(platform, row.get_ref(0)?.as_str()?)?,
                        name: row.get(1)?,
                        balance: row.get(2)?,
                    })
                })?
                .collect()
            })
            .await
    }

    /// `user`'s place on the leaderboard (members with equal balances share one), or `None`
    /// when they have nothing.
    pub async fn rank(
        &self,
        community: CommunityId,
        user: UserId,
    ) -> Result<Option<u64>, StoreError> {
        self.store
            .call(move |conn| {
                let mine = balance(conn, community, user)?;
                if mine == 0 {
                    return Ok(None);
                }
                let richer: u64 = conn.prepare_cached(
                    "SELECT COUNT(*) FROM balances WHERE platform = ?1 AND community = ?2 AND balance > ?3",
                )?
                .query_row(
                    params![community.platform.as_str(), community.raw_text(), mine],
                    |row| row.get(0),
                )?;
                Ok(Some(richer + 1))
            })
            .await
    }
}

fn user_from(platform: &str, raw: &str) -> rusqlite::Result<UserId> {
    UserId::from_raw_text(platform, raw).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

/// The writer thread: waits for a change, then commits it with every change queued by then (up
/// to [`MAX_BATCH`]) in one transaction, until every [`Bank`] is dropped.
fn write(store: &Store, clock: &dyn Clock, jobs: &mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        batch.extend(jobs.try_iter().take(MAX_BATCH - 1));
        store.blocking(|conn| commit_batch(conn, batch, clock.now()));
    }
}

/// Commits `batch` in one transaction and answers each of its callers.
fn commit_batch(conn: &mut Connection, batch: Vec<Job>, now: DateTime<Utc>) {
    match commit(conn, &batch, now.timestamp()) {
        Ok(results) => {
            for (job, result) in batch.into_iter().zip(results) {
                // A caller that stopped waiting still had its change made; nobody to tell.
                let _ = job.done.send(result);
            }
        }
        Err(e) => {
            tracing::error!("bank: a commit of {} changes failed: {e}", batch.len());
            for job in batch {
                let _ = job.done.send(Err(BankError::Storage(e.to_string())));
            }
        }
    }
}

/// One transaction, each change in a savepoint so that a refused one leaves the others
/// standing. `Err` means nothing at all was committed.
fn commit(
    conn: &mut Connection,
    batch: &[Job],
    now: i64,
) -> rusqlite::Result<Vec<Result<Receipt, BankError>>> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        let savepoint = tx.savepoint()?;
        let result = apply(&savepoint, job, now);
        if result.is_ok() {
            savepoint.commit()?;
        }
        // Dropping an uncommitted savepoint rolls it back.
        results.push(result);
    }
    tx.commit()?;
    Ok(results)
}

/// Applies one change, or refuses it; the caller rolls a refusal back.
fn apply(conn: &Connection, job: &Job, now: i64) -> Result<Receipt, BankError> {
    let community = job.community;
    let change = &job.change;
    if let Some(done) = replay(conn, job)? {
        return Ok(done);
    }
    let (amount, streak) = match change {
        Change::Pay { amount, .. } | Change::Grant { amount, .. } | Change::Take { amount, .. } => {
            (amount.get(), 0)
        }
        Change::Daily { to, base } => {
            let streak = claim_daily(conn, community, to.id, now)?;
            (daily_payout(*base, streak), streak)
        }
    };
    let payer_balance = match change.payer() {
        Some(payer) => Some(debit(conn, community, payer, amount)?),
        None => None,
    };
    let payee_balance = match change.payee() {
        Some(payee) => Some(credit(conn, community, payee, amount)?),
        None => None,
    };
    conn.prepare_cached(
        "INSERT INTO ledger (platform, community, key, kind, actor, payer, payee, amount, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        community.platform.as_str(),
        community.raw_text(),
        job.key,
        change.kind(),
        change.actor().raw_text(),
        change.payer().map(|m| m.id.raw_text()),
        change.payee().map(|m| m.id.raw_text()),
        amount,
        now,
    ])?;
    Ok(Receipt {
        amount,
        payer_balance,
        payee_balance,
        streak,
        replayed: false,
    })
}

/// The receipt of a change whose key is already in the ledger.
fn replay(conn: &Connection, job: &Job) -> Result<Option<Receipt>, BankError> {
    let community = job.community;
    let amount: Option<i64> = conn
        .prepare_cached(
            "SELECT amount FROM ledger WHERE platform = ?1 AND community = ?2 AND key = ?3",
        )?
        .query_row(
            params![community.platform.as_str(), community.raw_text(), job.key],
            |row| row.get(0),
        )
        .optional()?;
    let Some(amount) = amount else {
        return Ok(None);
    };
    let balance_of = |m: &Member| balance(conn, community, m.id);
    let streak = match &job.change {
        Change::Daily { to, .. } => daily_row(conn, community, to.id)?.map_or(0, |(_, s)| s),
        _ => 0,
    };
    Ok(Some(Receipt {
        amount,
        payer_balance: job.change.payer().map(balance_of).transpose()?,
        payee_balance: job.change.payee().map(balance_of).transpose()?,
        streak,
        replayed: true,
    }))
}

fn balance(conn: &Connection, community: CommunityId, user: UserId) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "SELECT balance FROM balances WHERE platform = ?1 AND community = ?2 AND user = ?3",
    )?
    .query_row(
        params![
            community.platform.as_str(),
            community.raw_text(),
            user.raw_text()
        ],
        |row| row.get(0),
    )
    .optional()
    .map(Option::unwrap_or_default)
}

fn set_balance(
    conn: &Connection,
    community: CommunityId,
    member: &Member,
    balance: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO balances (platform, community, user, name, balance) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (platform, community, user) DO UPDATE SET name = excluded.name, balance = excluded.balance",
    )?
    .execute(params![
        community.platform.as_str(),
        community.raw_text(),
        member.id.raw_text(),
        member.name,
        balance
    ])?;
    Ok(())
}

fn debit(
    conn: &Connection,
    community: CommunityId,
    member: &Member,
    amount: i64,
) -> Result<i64, BankError> {
    let balance = balance(conn, community, member.id)?;
    if balance < amount {
        return Err(BankError::Insufficient { balance });
    }
    set_balance(conn, community, member, balance - amount)?;
    Ok(balance - amount)
}

fn credit(
    conn: &Connection,
    community: CommunityId,
    member: &Member,
    amount: i64,
) -> Result<i64, BankError> {
    let balance = balance(conn, community, member.id)?;
    let after = balance
        .checked_add(amount)
        .filter(|after| *after <= MAX_BALANCE)
        .ok_or(BankError::Full { balance })?;
    set_balance(conn, community, member, after)?;
    Ok(after)
}

fn daily_row(
    conn: &Connection,
    community: CommunityId,
    user: UserId,
) -> rusqlite::Result<Option<(i64, i64)>> {
    conn.prepare_cached(
        "SELECT claimed_at, streak FROM daily_claims WHERE platform = ?1 AND community = ?2 AND user = ?3",
    )?
    .query_row(
        params![community.platform.as_str(), community.raw_text(), user.raw_text()],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
    .optional()
}

/// Records a claim at `now` and returns its streak, or refuses one that comes too soon. A clock
/// set back counts as too soon rather than as a new day.
fn claim_daily(
    conn: &Connection,
    community: CommunityId,
    user: UserId,
    now: i64,
) -> Result<i64, BankError> {
    let streak = match daily_row(conn, community, user)? {
        Some((at, _)) if now < at + DAILY_EVERY.num_seconds() => {
            let ready =
                DateTime::from_timestamp(at + DAILY_EVERY.num_seconds(), 0).unwrap_or_default();
            return Err(BankError::TooSoon { ready });
        }
        Some((at, streak)) if now < at + STREAK_KEPT_FOR.num_seconds() => streak.saturating_add(1),
        _ => 1,
    };
    conn.prepare_cached(
        "INSERT INTO daily_claims (platform, community, user, claimed_at, streak) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (platform, community, user) DO UPDATE SET claimed_at = excluded.claimed_at, streak = excluded.streak",
    )?
    .execute(params![community.platform.as_str(), community.raw_text(), user.raw_text(), now, streak])?;
    Ok(streak)
}

/// The base, plus a tenth of it for each day of the streak after the first (at most
/// [`MAX_STREAK_BONUS_DAYS`] tenths).
pub fn daily_payout(base: Amount, streak: i64) -> i64 {
    let days = (streak - 1).clamp(0, MAX_STREAK_BONUS_DAYS);
    base.get() + base.get() * days / 10
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::core::{ManualClock, PlatformKind};

    const GUILD: CommunityId = CommunityId::new(PlatformKind::Discord, 1);

    fn start() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn member(n: i64) -> Member {
        Member {
            id: UserId::new(PlatformKind::Discord, n),
            name: format!("@user{n}"),
            is_bot: false,
        }
    }

    fn amount(n: i64) -> Amount {
        Amount::new(n).unwrap()
    }

    fn bank_on(store: Store) -> (Bank, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(start()));
        (Bank::new(store, clock.clone()), clock)
    }

    fn bank() -> (Bank, Arc<ManualClock>) {
        bank_on(Store::in_memory().unwrap())
    }

    async fn grant(bank: &Bank, key: &str, to: i64, n: i64) -> Result<Receipt, BankError> {
        let change = Change::Grant {
            actor: member(0).id,
            to: member(to),
            amount: amount(n),
        };
        bank.apply(GUILD, key.into(), change).await
    }

    async fn pay(bank: &Bank, key: &str, from: i64, to: i64, n: i64) -> Result<Receipt, BankError> {
        let change = Change::Pay {
            from: member(from),
            to: member(to),
            amount: amount(n),
        };
        bank.apply(GUILD, key.into(), change).await
    }

    async fn daily(bank: &Bank, key: &str, user: i64) -> Result<Receipt, BankError> {
        let change = Change::Daily {
            to: member(user),
            base: amount(100),
        };
        bank.apply(GUILD, key.into(), change).await
    }

    async fn balances(bank: &Bank, users: impl IntoIterator<Item = i64>) -> Vec<i64> {
        let mut out = Vec::new();
        for user in users {
            out.push(bank.balance(GUILD, member(user).id).await.unwrap());
        }
        out
    }

    /// Every balance equals what the ledger paid in minus what it paid out, and no account
    /// exists without a ledger row behind it. Returns the number of ledger rows.
    async fn ledger_agrees(store: &Store) -> i64 {
        let (disagreeing, rows): (i64, i64) = store
            .call(|conn| conn.query_row(LEDGER_CHECK, [], |r| Ok((r.get(0)?, r.get(1)?))))
            .await
            .unwrap();
        assert_eq!(disagreeing, 0, "balances that the ledger does not explain");
        rows
    }

    /// Accounts whose balance differs from their ledger, and the number of ledger rows.
    const LEDGER_CHECK: &str = "
        WITH flows AS (
            SELECT platform, community, payee AS user, amount FROM ledger WHERE payee IS NOT NULL
            UNION ALL
            SELECT platform, community, payer, -amount FROM ledger WHERE payer IS NOT NULL),
        sums AS (SELECT platform, community, user, SUM(amount) AS total FROM flows
                 GROUP BY platform, community, user)
        SELECT (SELECT COUNT(*) FROM balances b FULL JOIN sums s
                  ON b.platform = s.platform AND b.community = s.community AND b.user = s.user
                WHERE COALESCE(b.balance, 0) != COALESCE(s.total, 0)),
               (SELECT COUNT(*) FROM ledger)";

    #[tokio::test]
    async fn payments_move_money_and_refusals_change_nothing() {
        let (bank, _) = bank();
        grant(&bank, "g1", 1, 100).await.unwrap();
        let paid = pay(&bank, "p1", 1, 2, 30).await.unwrap();
        assert_eq!(
            (paid.payer_balance, paid.payee_balance),
            (Some(70), Some(30))
        );
        assert_eq!(
            pay(&bank, "p2", 1, 2, 71).await,
            Err(BankError::Insufficient { balance: 70 })
        );
        assert_eq!(pay(&bank, "p3", 1, 1, 5).await, Err(BankError::SelfPayment));
        assert_eq!(
            pay(&bank, "p4", 3, 2, 1).await,
            Err(BankError::Insufficient { balance: 0 }),
            "someone who never had money has none"
        );
        let take = |n| Change::Take {
            actor: member(0).id,
            from: member(2),
            amount: amount(n),
        };
        assert_eq!(
            bank.apply(GUILD, "t1".into(), take(31)).await,
            Err(BankError::Insufficient { balance: 30 })
        );
        let took = bank.apply(GUILD, "t2".into(), take(30)).await.unwrap();
        assert_eq!(took.payer_balance, Some(0));
        assert_eq!(balances(&bank, [1, 2, 3]).await, [70, 0, 0]);
        assert_eq!(ledger_agrees(&bank.store).await, 3, "refusals leave no row");
        assert_eq!(Amount::new(0), Err(BankError::BadAmount));
        assert_eq!(Amount::new(MAX_AMOUNT + 1), Err(BankError::BadAmount));
        assert_eq!(Amount::new(-5), Err(BankError::BadAmount));
    }

    #[tokio::test]
    async fn an_account_never_exceeds_the_maximum() {
        let (bank, _) = bank();
        // Straight into the table: a million grants would take a while.
        bank.store
            .call(|conn| {
                conn.execute(
                    "INSERT INTO balances VALUES ('discord', '1', '1', '@user1', ?1)",
                    [MAX_BALANCE - 10],
                )
            })
            .await
            .unwrap();
        assert_eq!(
            grant(&bank, "g1", 1, 11).await,
            Err(BankError::Full {
                balance: MAX_BALANCE - 10
            })
        );
        grant(&bank, "g2", 2, 20).await.unwrap();
        assert_eq!(
            pay(&bank, "p", 2, 1, 11).await,
            Err(BankError::Full {
                balance: MAX_BALANCE - 10
            })
        );
        assert_eq!(
            balances(&bank, [2]).await,
            [20],
            "the payer's debit is undone"
        );
        assert_eq!(
            pay(&bank, "p", 2, 1, 10).await.unwrap().payee_balance,
            Some(MAX_BALANCE)
        );
    }

    #[tokio::test]
    async fn a_key_is_applied_once() {
        let (bank, _) = bank();
        grant(&bank, "g", 1, 100).await.unwrap();
        let first = pay(&bank, "same", 1, 2, 40).await.unwrap();
        let again = pay(&bank, "same", 1, 2, 40).await.unwrap();
        assert!(!first.replayed && again.replayed);
        assert_eq!(again.payer_balance, Some(60));
        assert_eq!(balances(&bank, [1, 2]).await, [60, 40]);
        let other = CommunityId::new(PlatformKind::Discord, 2);
        let elsewhere = Change::Grant {
            actor: member(0).id,
            to: member(1),
            amount: amount(1),
        };
        assert!(
            !bank
                .apply(other, "same".into(), elsewhere)
                .await
                .unwrap()
                .replayed,
            "keys are per community"
        );
        // Concurrent deliveries of one key, as a platform retrying a slow answer would.
        let tries: Vec<_> = (0..8).map(|_| pay(&bank, "twice", 1, 2, 10)).collect();
        let receipts = futures_util::future::join_all(tries).await;
        assert_eq!(
            receipts
                .iter()
                .filter(|r| !r.as_ref().unwrap().replayed)
                .count(),
            1
        );
        assert_eq!(balances(&bank, [1, 2]).await, [50, 50]);
        ledger_agrees(&bank.store).await;
    }

    #[tokio::test]
    async fn daily_pays_once_a_day_with_a_growing_streak() {
        let (bank, clock) = bank();
        let first = daily(&bank, "d1", 1).await.unwrap();
        assert_eq!((first.amount, first.streak), (100, 1));
        clock.advance(Duration::from_secs(23 * 3600 + 3599));
        assert_eq!(
            daily(&bank, "d2", 1).await,
            Err(BankError::TooSoon {
                ready: start() + DAILY_EVERY
            })
        );
        assert_eq!(daily(&bank, "d2", 2).await.unwrap().streak, 1, "per user");
        clock.advance(Duration::from_secs(1));
        let second = daily(&bank, "d3", 1).await.unwrap();
        assert_eq!((second.amount, second.streak), (110, 2));
        clock.advance(Duration::from_secs(47 * 3600));
        assert_eq!(daily(&bank, "d4", 1).await.unwrap().amount, 120);
        clock.advance(Duration::from_secs(48 * 3600));
        let broken = daily(&bank, "d5", 1).await.unwrap();
        assert_eq!(
            (broken.amount, broken.streak),
            (100, 1),
            "a missed day restarts"
        );
        assert_eq!(balances(&bank, [1]).await, [430]);
        assert_eq!(daily_payout(amount(100), 50), 200, "the bonus is capped");
        ledger_agrees(&bank.store).await;
    }

    #[tokio::test]
    async fn two_concurrent_dailies_pay_once() {
        let (bank, _) = bank();
        let (a, b) = tokio::join!(daily(&bank, "a", 1), daily(&bank, "b", 1));
        assert!(
            a.is_ok() != b.is_ok(),
            "exactly one of them pays: {a:?} {b:?}"
        );
        assert_eq!(balances(&bank, [1]).await, [100]);
    }

    #[tokio::test]
    async fn a_restart_does_not_reset_the_daily() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cogbox.db");
        let (bank, clock) = bank_on(Store::open(&path).unwrap());
        daily(&bank, "d1", 1).await.unwrap();
        clock.advance(Duration::from_secs(3600));
        drop(bank);
        let (bank, _) = bank_on(Store::open(&path).unwrap());
        assert!(matches!(
            daily(&bank, "d2", 1).await,
            Err(BankError::TooSoon { .. })
        ));
        assert_eq!(balances(&bank, [1]).await, [100]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_thousand_concurrent_transfers_keep_the_sum() {
        const USERS: i64 = 50;
        const EACH: i64 = 100;
        let dir = tempfile::tempdir().unwrap();
        let (bank, _) = bank_on(Store::open(&dir.path().join("cogbox.db")).unwrap());
        let grants = (0..USERS).map(|user| {
            let bank = bank.clone();
            async move { grant(&bank, &format!("g{user}"), user, EACH).await }
        });
        for granted in futures_util::future::join_all(grants).await {
            granted.unwrap();
        }
        let transfers = (0..1000).map(|i| {
            let bank = bank.clone();
            let from = fastrand::i64(0..USERS);
            let to = (from + fastrand::i64(1..USERS)) % USERS;
            let n = fastrand::i64(1..=60);
            tokio::spawn(async move { pay(&bank, &format!("t{i}"), from, to, n).await })
        });
        let mut done = 0;
        for transfer in futures_util::future::join_all(transfers).await {
            match transfer.unwrap() {
                Ok(_) => done += 1,
                Err(BankError::Insufficient { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
        let all = balances(&bank, 0..USERS).await;
        assert_eq!(all.iter().sum::<i64>(), USERS * EACH);
        assert!(all.iter().all(|b| *b >= 0), "{all:?}");
        assert!(done > 500, "most transfers find money: {done}");
        assert_eq!(ledger_agrees(&bank.store).await, USERS + done);
    }

    #[tokio::test]
    async fn mydata_shows_every_movement_of_an_emptied_account_and_nothing_for_a_stranger() {
        let (bank, _) = bank();
        grant(&bank, "g", 1, 50).await.unwrap();
        pay(&bank, "p", 1, 2, 50).await.unwrap();
        let (one, two) = (member(1).id.raw_text(), member(2).id.raw_text());
        let at = start().timestamp();
        assert_eq!(
            bank.export_of(GUILD, member(1).id).await.unwrap(),
            [
                "balance 0".to_owned(),
                format!("ledger #2: pay out 50 at {at} (unix), from {one} to {two}"),
                format!("ledger #1: grant in 50 at {at} (unix)"),
            ],
            "an account paid down to 0 still has its history"
        );
        assert_eq!(
            bank.export_of(GUILD, member(2).id).await.unwrap(),
            [
                "balance 50".to_owned(),
                format!("ledger #2: pay in 50 at {at} (unix), from {one} to {two}"),
            ]
        );
        assert!(
            bank.export_of(GUILD, member(3).id)
                .await
                .unwrap()
                .is_empty(),
            "someone the bank never saw has nothing stored, not a balance of 0"
        );
    }

    #[tokio::test]
    async fn a_daily_delivered_twice_is_answered_the_same_both_times() {
        let (bank, clock) = bank();
        daily(&bank, "d1", 1).await.unwrap();
        clock.advance(Duration::from_secs(24 * 3600));
        let first = daily(&bank, "d2", 1).await.unwrap();
        let again = daily(&bank, "d2", 1).await.unwrap();
        assert!(!first.replayed && again.replayed);
        assert_eq!(
            (again.amount, again.streak, again.payee_balance),
            (110, 2, Some(210)),
            "the answer to the retry tells the same streak"
        );
        assert_eq!(
            (first.amount, first.streak, first.payee_balance),
            (again.amount, again.streak, again.payee_balance)
        );
    }
}
