-- Who did what to whom, where, why and with what result. A row is written before the platform
-- is asked to act (outcome 'pending') and completed after, so a half-done action shows.
CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY,
    -- Milliseconds since the Unix epoch, UTC.
    at        INTEGER NOT NULL,
    platform  TEXT    NOT NULL,
    -- Ids as text (see Id::raw_text); community is NULL for actions outside any community.
    community TEXT,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    target    TEXT,
    reason    TEXT,
    -- What else the action carried: a mute's duration, a setting's old and new value.
    detail    TEXT,
    outcome   TEXT    NOT NULL DEFAULT 'pending'
              CHECK (outcome IN ('pending', 'done', 'partial', 'failed')),
    -- Why an action was partial or failed.
    outcome_detail TEXT
) STRICT;
CREATE INDEX audit_by_target ON audit_log (platform, community, target, at) WHERE target IS NOT NULL;
CREATE INDEX audit_by_actor ON audit_log (platform, community, actor, at);
CREATE INDEX audit_at ON audit_log (at);
