-- The bank: one balance per (community, user), and a ledger row for every change to them. Ids
-- are text (Id::raw_text) so that platforms with word ids fit; `platform` qualifies them all.
CREATE TABLE balances (
    platform  TEXT    NOT NULL,
    community TEXT    NOT NULL,
    user      TEXT    NOT NULL,
    -- The name the user last had here, so the leaderboard asks the platform nothing.
    name      TEXT    NOT NULL,
    -- 10^15: far below i64's limit, so no sum of a community's balances can overflow.
    balance   INTEGER NOT NULL CHECK (balance BETWEEN 0 AND 1000000000000000),
    PRIMARY KEY (platform, community, user)
) STRICT, WITHOUT ROWID;

CREATE INDEX balances_by_rank ON balances (platform, community, balance DESC);

-- One row per change; `payer` or `payee` is NULL where the money came from or went to the bank
-- (a grant, a daily payout, a take). A key is applied once per community: a command that
-- arrives twice (a redelivered update) finds its row and changes nothing.
CREATE TABLE ledger (
    id        INTEGER PRIMARY KEY,
    platform  TEXT    NOT NULL,
    community TEXT    NOT NULL,
    key       TEXT    NOT NULL,
    kind      TEXT    NOT NULL CHECK (kind IN ('pay', 'grant', 'take', 'daily')),
    actor     TEXT    NOT NULL,
    payer     TEXT,
    payee     TEXT,
    amount    INTEGER NOT NULL CHECK (amount > 0),
    -- Unix seconds.
    at        INTEGER NOT NULL,
    UNIQUE (platform, community, key),
    CHECK (payer IS NOT NULL OR payee IS NOT NULL)
) STRICT;

CREATE INDEX ledger_by_payer ON ledger (platform, community, payer) WHERE payer IS NOT NULL;
CREATE INDEX ledger_by_payee ON ledger (platform, community, payee) WHERE payee IS NOT NULL;

-- The last /daily of each user: the cooldown and the streak live in the database, changed in
-- the payout's own transaction, so neither a restart nor two racing claims pay twice.
CREATE TABLE daily_claims (
    platform   TEXT    NOT NULL,
    community  TEXT    NOT NULL,
    user       TEXT    NOT NULL,
    claimed_at INTEGER NOT NULL,
    streak     INTEGER NOT NULL CHECK (streak >= 1),
    PRIMARY KEY (platform, community, user)
) STRICT, WITHOUT ROWID;
