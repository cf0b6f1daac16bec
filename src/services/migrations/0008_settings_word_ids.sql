-- Community ids are TEXT, as in every later table, so that platforms whose ids are words
-- (Slack's team T024BE7LH) fit; numbers already stored keep their digits.
CREATE TABLE community_settings_text (
    platform  TEXT NOT NULL,
    community TEXT NOT NULL,
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (platform, community, key)
) STRICT, WITHOUT ROWID;
INSERT INTO community_settings_text (platform, community, key, value)
    SELECT platform, CAST(community AS TEXT), key, value FROM community_settings;
DROP TABLE community_settings;
ALTER TABLE community_settings_text RENAME TO community_settings;
