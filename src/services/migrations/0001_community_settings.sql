-- Per-community settings as text key/value pairs; typed by the settings service.
CREATE TABLE community_settings (
    platform  TEXT    NOT NULL,
    community INTEGER NOT NULL,
    key       TEXT    NOT NULL,
    value     TEXT    NOT NULL,
    PRIMARY KEY (platform, community, key)
) STRICT, WITHOUT ROWID;
