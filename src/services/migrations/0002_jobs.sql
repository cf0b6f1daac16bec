-- The scheduler's durable jobs. A row lives while its job is pending, running or failed;
-- a finished one-off job is deleted, a periodic one is moved to its next time.
CREATE TABLE jobs (
    id         INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL,
    -- Milliseconds since the Unix epoch, UTC.
    due        INTEGER NOT NULL,
    payload    TEXT    NOT NULL,
    -- Who the job belongs to, as the cog that made it names them (`/reminders`, `/forget`).
    owner      TEXT,
    -- 'pending', 'running' (reset to pending at start-up) or 'failed' (kept with its error).
    state      TEXT    NOT NULL DEFAULT 'pending'
               CHECK (state IN ('pending', 'running', 'failed')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    -- Set for periodic jobs declared in config: run again this many milliseconds later.
    every      INTEGER
) STRICT;
-- The runner's only read while idle: the earliest pending job.
CREATE INDEX jobs_pending_due ON jobs (due) WHERE state = 'pending';
CREATE INDEX jobs_owner ON jobs (owner, kind) WHERE owner IS NOT NULL;
-- One row per periodic job.
CREATE UNIQUE INDEX jobs_periodic ON jobs (kind) WHERE every IS NOT NULL;
