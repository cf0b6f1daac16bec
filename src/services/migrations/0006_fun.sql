-- Polls and trivia (reminders are scheduler jobs). Ids are TEXT (Id::raw_text) so that word ids fit later;
-- times are Unix seconds. Ids are AUTOINCREMENT: a button left on an old message must never
-- reach a newer poll or round that reused its number.

CREATE TABLE polls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    platform TEXT NOT NULL,
    community TEXT NOT NULL,
    channel TEXT NOT NULL,
    author TEXT NOT NULL,
    question TEXT NOT NULL,
    -- A JSON array of the options' labels, in button order.
    options TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    closes_at INTEGER,
    closed INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE poll_votes (
    poll INTEGER NOT NULL REFERENCES polls (id) ON DELETE CASCADE,
    voter TEXT NOT NULL,
    option INTEGER NOT NULL,
    PRIMARY KEY (poll, voter)
) WITHOUT ROWID;

CREATE INDEX poll_votes_by_voter ON poll_votes (voter);

CREATE TABLE trivia_rounds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    platform TEXT NOT NULL,
    community TEXT NOT NULL,
    question INTEGER NOT NULL,
    -- Which button (0-based) holds the right answer.
    correct INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    winner TEXT
);

CREATE INDEX trivia_rounds_by_age ON trivia_rounds (platform, community, created_at);

CREATE TABLE trivia_attempts (
    round INTEGER NOT NULL REFERENCES trivia_rounds (id) ON DELETE CASCADE,
    player TEXT NOT NULL,
    PRIMARY KEY (round, player)
) WITHOUT ROWID;

CREATE TABLE trivia_scores (
    platform TEXT NOT NULL,
    community TEXT NOT NULL,
    player TEXT NOT NULL,
    -- The player's name when they last scored, for the score table.
    name TEXT NOT NULL,
    points INTEGER NOT NULL,
    PRIMARY KEY (platform, community, player)
) WITHOUT ROWID;
