//! Per-community settings, read on every command and so cached in memory (moka); every write
//! goes to SQLite first and then drops the cached copy. A load that a write overtook is not
//! cached (see [`Settings::remember`]), so a reader can never put a stale copy back.
//!
//! Every key a community can change is declared once in [`KEYS`], with its default and the
//! check its values must pass, so `/settings` can list, validate and reset all of them and a
//! cog reads a typed value without parsing text itself.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use moka::sync::Cache;
use rusqlite::params;

use super::store::{Store, StoreError};
use crate::core::{CommunityId, Word, duration};

/// One setting a community can change.
#[derive(Debug)]
pub struct Key {
    pub name: &'static str,
    pub description: &'static str,
    /// The value until a community sets one; `""` means "off" or "none".
    pub default: &'static str,
    pub kind: KeyKind,
}

/// What a key's values look like; [`Key::check`] enforces it.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// A whole number in this range, or `off` where `off` is allowed.
    Count {
        min: i64,
        max: i64,
        can_be_off: bool,
    },
    /// A duration such as `1h` or `30d`, at most this long.
    Duration { max: Duration },
    /// Free text of at most this many characters; `""` or `none` clears it.
    Text { max_chars: usize },
    /// A prefix for text commands (see [`crate::core::parse::check_prefix`]); `none` clears
    /// it.
    Prefix,
    /// A channel: a mention such as `<#123>` or a numeric id (Telegram's group ids are
    /// negative), stored as the id; `none` clears it.
    Channel,
}

/// Every per-community key. Cogs add theirs here, so that `/settings` knows them all.
pub const KEYS: &[Key] = &[
    Key {
        name: "log_channel",
        description: "Where every moderation case is posted (#channel, or a chat id), none for nowhere",
        default: "",
        kind: KeyKind::Channel,
    },
    Key {
        name: "prefix",
        description: "The prefix of text commands here (Discord); off uses the configured one",
        default: "",
        kind: KeyKind::Prefix,
    },
    Key {
        name: "welcome_message",
        description: "Said to each member who joins, {user} being their name; none for silence",
        default: "",
        kind: KeyKind::Text { max_chars: 500 },
    },
    Key {
        name: "economy_daily",
        description: "What /daily pays before the streak bonus",
        default: "100",
        kind: KeyKind::Count {
            min: 1,
            max: 1_000_000,
            can_be_off: false,
        },
    },
    Key {
        name: "economy_currency",
        description: "The name of the money, as in \"120 coins\"",
        default: "coins",
        kind: KeyKind::Text { max_chars: 24 },
    },
    Key {
        name: "warn_mute_at",
        description: "Active warnings that mute a member automatically, or off",
        default: "3",
        kind: WARN_COUNT,
    },
    Key {
        name: "warn_mute_for",
        description: "How long the automatic mute lasts",
        default: "1h",
        kind: KeyKind::Duration {
            max: crate::core::moderation::MAX_MUTE,
        },
    },
    Key {
        name: "warn_kick_at",
        description: "Active warnings that kick a member automatically, or off",
        default: "5",
        kind: WARN_COUNT,
    },
    Key {
        name: "warn_ban_at",
        description: "Active warnings that ban a member automatically, or off",
        default: "7",
        kind: WARN_COUNT,
    },
    Key {
        name: "warn_expiry",
        description: "How long a warning counts, e.g. 30d; forever until set",
        default: "",
        kind: KeyKind::Duration { max: duration::MAX },
    },
];

/// A warning threshold: a count of active warnings, or off.
const WARN_COUNT: KeyKind = KeyKind::Count {
    min: 1,
    max: 100,
    can_be_off: true,
};

/// The value written for "off", and shown for an empty default.
pub const OFF: &str = "off";

impl Key {
    pub fn find(name: &str) -> Option<&'static Key> {
        KEYS.iter().find(|k| k.name == name)
    }

    /// Checks and normalizes a value the user typed; the error is a sentence for them.
    pub fn check(&self, value: &str) -> Result<String, String> {
        let value = value.trim();
        match &self.kind {
            KeyKind::Count {
                can_be_off: true, ..
            } if value.eq_ignore_ascii_case(OFF) => Ok(OFF.into()),
            KeyKind::Count { min, max, .. } => match value.parse::<i64>() {
                Ok(n) if (*min..=*max).contains(&n) => Ok(n.to_string()),
                _ => Err(format!(
                    "{} takes a whole number from {min} to {max}{}",
                    self.name,
                    match self.kind {
                        KeyKind::Count {
                            can_be_off: true, ..
                        } => ", or off",
                        _ => "",
                    }
                )),
            },
            KeyKind::Duration { max } => duration::parse_at_most(value, *max)
                .map(duration::format)
                .map_err(|e| format!("{}: {e}", self.name)),
            KeyKind::Text { max_chars } => {
                if value.eq_ignore_ascii_case("none") {
                    return Ok(String::new());
                }
                if value.chars().count() > *max_chars {
                    return Err(format!("{} is at most {max_chars} characters", self.name));
                }
                Ok(value.to_owned())
            }
            KeyKind::Prefix
                if value.eq_ignore_ascii_case("none") || value.eq_ignore_ascii_case(OFF) =>
            {
                Ok(String::new())
            }
            KeyKind::Prefix => crate::core::parse::check_prefix(value)
                .map(|()| value.to_owned())
                .map_err(|e| format!("{}: {e}", self.name)),
            KeyKind::Channel => {
                if value.eq_ignore_ascii_case("none") {
                    return Ok(String::new());
                }
                // A mention: Discord's `<#123>`, Slack's `<#C0123|general>`; or the bare id.
                let id = value
                    .strip_prefix("<#")
                    .and_then(|v| v.strip_suffix('>'))
                    .map_or(value, |v| v.split('|').next().unwrap_or(v));
                match id.parse::<i64>() {
                    Ok(id) => Ok(id.to_string()),
                    Err(_) if Word::new(id).is_ok() => Ok(id.to_owned()),
                    Err(_) => Err(format!(
                        "{} takes a channel: #channel on Discord or Slack, the chat's id on \
                         Telegram (such as -1001234567890), or none",
                        self.name
                    )),
                }
            }
        }
    }
}

/// The parsed settings of one community.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommunitySettings {
    pub disabled_cogs: BTreeSet<String>,
    /// Values set for keys of [`KEYS`]; absent keys have their default.
    values: BTreeMap<String, String>,
}

impl CommunitySettings {
    /// The value of `key`, or its default. A key missing from [`KEYS`] is a bug in a cog.
    pub fn value(&self, key: &str) -> &str {
        match self.values.get(key) {
            Some(value) => value,
            None => Key::find(key).map_or("", |k| k.default),
        }
    }

    /// A [`KeyKind::Count`] value; `None` when it is off.
    pub fn count(&self, key: &str) -> Option<i64> {
        self.value(key).parse().ok()
    }

    /// A [`KeyKind::Duration`] value; `None` when unset.
    pub fn duration(&self, key: &str) -> Option<Duration> {
        duration::parse(self.value(key)).ok()
    }

    /// Whether the community changed `key` from its default.
    pub fn is_set(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }
}

const COG_KEY_PREFIX: &str = "cog.";
const DISABLED: &str = "disabled";

#[derive(Clone)]
pub struct Settings {
    store: Store,
    /// Worst case: 10,000 communities × (a few dozen short keys) ≈ a few MB.
    cache: Cache<CommunityId, Arc<CommunitySettings>>,
    /// Counts writes. A load is cached only if no write happened since it began; checking and
    /// caching, and counting and dropping, each happen under this lock, so a write can never
    /// fall between a load's check and its insert.
    writes: Arc<Mutex<u64>>,
}

impl Settings {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cache: Cache::builder().max_capacity(10_000).build(),
            writes: Arc::default(),
        }
    }

    pub async fn get(
        &self,
        community: CommunityId,
    ) -> Result<Arc<CommunitySettings>, Arc<StoreError>> {
        if let Some(cached) = self.cache.get(&community) {
            return Ok(cached);
        }
        let began = self.writes();
        let loaded = self.load(community).await.map_err(Arc::new)?;
        self.remember(community, began, &loaded);
        Ok(loaded)
    }

    fn writes(&self) -> u64 {
        *self.writes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Caches a load that began when [`writes`](Self::writes) was `began`, unless a write has
    /// happened since: that write's drop may have come before this insert.
    fn remember(&self, community: CommunityId, began: u64, loaded: &Arc<CommunitySettings>) {
        let writes = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        if *writes == began {
            self.cache.insert(community, Arc::clone(loaded));
        }
    }

    async fn load(&self, community: CommunityId) -> Result<Arc<CommunitySettings>, StoreError> {
        let rows = self
            .store
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT key, value FROM community_settings WHERE platform = ?1 AND community = ?2",
                )?;
                stmt.query_map(params![community.platform.as_str(), community.raw_text()], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        let mut settings = CommunitySettings::default();
        for (key, value) in rows {
            match key.strip_prefix(COG_KEY_PREFIX) {
                Some(cog) if value == DISABLED => {
                    settings.disabled_cogs.insert(cog.to_owned());
                }
                Some(_) => {}
                None => {
                    settings.values.insert(key, value);
                }
            }
        }
        Ok(Arc::new(settings))
    }

    /// Switches a cog on or off in one community.
    pub async fn set_cog_enabled(
        &self,
        community: CommunityId,
        cog: &str,
        enabled: bool,
    ) -> Result<(), StoreError> {
        let key = format!("{COG_KEY_PREFIX}{cog}");
        self.write(community, key, (!enabled).then(|| DISABLED.to_owned()))
            .await
    }

    /// Sets `key` (checked with [`Key::check`] by the caller) in one community.
    pub async fn set(
        &self,
        community: CommunityId,
        key: &'static Key,
        value: String,
    ) -> Result<(), StoreError> {
        self.write(community, key.name.to_owned(), Some(value))
            .await
    }

    /// Puts `key` back to its default in one community.
    pub async fn reset(&self, community: CommunityId, key: &'static Key) -> Result<(), StoreError> {
        self.write(community, key.name.to_owned(), None).await
    }

    /// Stores (`Some`) or deletes (`None`) one row, then drops the cached copy.
    async fn write(
        &self,
        community: CommunityId,
        key: String,
        value: Option<String>,
    ) -> Result<(), StoreError> {
        self.store
            .call(move |conn| {
                let (platform, id) = (community.platform.as_str(), community.raw_text());
                match value {
                    None => conn.execute(
                        "DELETE FROM community_settings WHERE platform = ?1 AND community = ?2 AND key = ?3",
                        params![platform, id, key],
                    ),
                    Some(value) => conn.execute(
                        "INSERT INTO community_settings (platform, community, key, value) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (platform, community, key) DO UPDATE SET value = excluded.value",
                        params![platform, id, key, value],
                    ),
                }
            })
            .await?;
        let mut writes = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        *writes += 1;
        self.cache.invalidate(&community);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::PlatformKind;

    #[tokio::test]
    async fn writes_reach_readers_through_the_cache() {
        let settings = Settings::new(Store::in_memory().unwrap());
        let guild = CommunityId::new(PlatformKind::Discord, 7);
        let other = CommunityId::new(PlatformKind::Telegram, 7);
        assert!(settings.get(guild).await.unwrap().disabled_cogs.is_empty());
        settings.set_cog_enabled(guild, "fun", false).await.unwrap();
        assert!(
            fun_off(&settings, guild).await,
            "cached copy was not dropped"
        );
        assert!(
            settings.get(other).await.unwrap().disabled_cogs.is_empty(),
            "same number, other platform"
        );
        settings.set_cog_enabled(guild, "fun", true).await.unwrap();
        assert!(settings.get(guild).await.unwrap().disabled_cogs.is_empty());

        let key = Key::find("log_channel").unwrap();
        assert_eq!(settings.get(guild).await.unwrap().value("log_channel"), "");
        settings.set(guild, key, "123".into()).await.unwrap();
        let now = settings.get(guild).await.unwrap();
        assert_eq!(
            (now.value("log_channel"), now.is_set("log_channel")),
            ("123", true)
        );
        settings.reset(guild, key).await.unwrap();
        assert!(!settings.get(guild).await.unwrap().is_set("log_channel"));
    }

    #[tokio::test]
    async fn a_load_overtaken_by_a_write_is_not_cached() {
        let settings = Settings::new(Store::in_memory().unwrap());
        let guild = CommunityId::new(PlatformKind::Discord, 7);
        // A reader loads, then a write lands and drops the (still empty) cache entry, then
        // the reader's stale load would be cached: the order two concurrent calls can take.
        let began = settings.writes();
        let stale = settings.load(guild).await.unwrap();
        settings.set_cog_enabled(guild, "fun", false).await.unwrap();
        settings.remember(guild, began, &stale);
        assert!(
            fun_off(&settings, guild).await,
            "the stale copy was cached after the write"
        );
    }

    async fn fun_off(settings: &Settings, community: CommunityId) -> bool {
        let now = settings.get(community).await.unwrap();
        now.disabled_cogs.contains("fun")
    }

    #[test]
    fn values_are_checked_by_their_kind() {
        let count = Key {
            name: "n",
            description: "",
            default: "3",
            kind: KeyKind::Count {
                min: 1,
                max: 20,
                can_be_off: true,
            },
        };
        assert_eq!(count.check(" 5 "), Ok("5".into()));
        assert_eq!(count.check("OFF"), Ok(OFF.into()));
        assert_eq!(
            count.check("21"),
            Err("n takes a whole number from 1 to 20, or off".into())
        );
        let long = Key {
            name: "d",
            description: "",
            default: "1h",
            kind: KeyKind::Duration {
                max: Duration::from_secs(86_400),
            },
        };
        assert_eq!(long.check("90m"), Ok("1h30m".into()));
        assert_eq!(
            long.check("2d"),
            Err("d: \"2d\" is too long (at most 1d)".into())
        );
        // A mute's own bound, not the year every duration has, is what a moderator is told.
        let mute_for = Key::find("warn_mute_for").unwrap();
        assert_eq!(
            mute_for.check("400d"),
            Err("warn_mute_for: \"400d\" is too long (at most 28d)".into())
        );
        let expiry = Key::find("warn_expiry").unwrap();
        assert_eq!(expiry.check("366d"), Ok("366d".into()));
        let text = Key::find("economy_currency").unwrap();
        assert_eq!(text.check("none"), Ok(String::new()));
        assert!(text.check(&"x".repeat(25)).is_err());
        let channel = Key::find("log_channel").unwrap();
        assert_eq!(channel.check("<#123456>"), Ok("123456".into()));
        assert_eq!(channel.check("<#C0123|mod-log>"), Ok("C0123".into()));
        assert_eq!(channel.check("C0123"), Ok("C0123".into()));
        assert_eq!(channel.check("-1001234"), Ok("-1001234".into()));
        assert_eq!(channel.check("none"), Ok(String::new()));
        let prefix = Key::find("prefix").unwrap();
        assert_eq!(prefix.check("?"), Ok("?".into()));
        assert_eq!(
            prefix.check("off"),
            Ok(String::new()),
            "off: the configured one"
        );
        assert!(prefix.check("/").is_err() && prefix.check("a b").is_err());
        let refused = channel.check("#mod-log").unwrap_err();
        assert!(refused.contains("takes a channel"), "{refused}");
    }

    #[test]
    fn every_default_passes_its_own_check() {
        for key in KEYS {
            if !key.default.is_empty() {
                assert_eq!(
                    key.check(key.default).as_deref(),
                    Ok(key.default),
                    "{}",
                    key.name
                );
            }
        }
    }
}
