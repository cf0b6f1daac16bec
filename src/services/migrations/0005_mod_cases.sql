-- Moderation cases: every warning and every action on a member, including the automatic ones an
-- escalation threshold takes. Ids are TEXT so that platforms whose ids are words fit; times
-- are unix seconds.
CREATE TABLE mod_cases (
    id             INTEGER PRIMARY KEY,
    platform       TEXT    NOT NULL,
    community      TEXT    NOT NULL,
    -- warn, mute, unmute, kick, ban or unban
    action         TEXT    NOT NULL,
    actor          TEXT    NOT NULL,
    actor_name     TEXT    NOT NULL,
    target         TEXT    NOT NULL,
    target_name    TEXT    NOT NULL,
    reason         TEXT,
    created_at     INTEGER NOT NULL,
    -- when a mute or ban ends, or a warning stops counting; NULL for never
    expires_at     INTEGER,
    -- pending (the platform was asked and has not answered), done, incomplete or failed
    outcome        TEXT    NOT NULL,
    outcome_detail TEXT,
    -- the warning whose count triggered this automatic action
    cause          INTEGER REFERENCES mod_cases (id),
    -- set by /unwarn: a revoked warning no longer counts
    revoked_at     INTEGER
) STRICT;

CREATE INDEX mod_cases_by_target ON mod_cases (platform, community, target, id);
CREATE INDEX mod_cases_by_community ON mod_cases (platform, community, id);
