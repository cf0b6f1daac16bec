-- Every per-community setting is named with underscores (warn_mute_at, economy_daily); the two
-- economy keys were first named with a dot.
UPDATE community_settings SET key = 'economy_daily' WHERE key = 'economy.daily';
UPDATE community_settings SET key = 'economy_currency' WHERE key = 'economy.currency';
