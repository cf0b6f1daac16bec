//! Identifiers that carry their platform, so a Telegram user and a Discord user with the same
//! number can never be confused in storage, rate limits or owner lists.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

/// The chat platforms cogbox speaks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PlatformKind {
    Console,
    Discord,
    Telegram,
}

impl PlatformKind {
    pub const ALL: [PlatformKind; 3] = [Self::Console, Self::Discord, Self::Telegram];

    /// The lower-case name used in config (`discord:123`) and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Console => "console",
            Self::Discord => "discord",
            Self::Telegram => "telegram",
        }
    }
}

impl fmt::Display for PlatformKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PlatformKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                format!("unknown platform \"{s}\" (expected console, discord or telegram)")
            })
    }
}

/// Marker types that keep user, channel and community ids apart at compile time.
pub mod kind {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct User;
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct Channel;
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct Community;
}

/// A platform-qualified numeric id. Discord snowflakes (u64) are stored bit for bit in the i64,
/// which is what SQLite's INTEGER holds; Telegram ids are already i64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id<K> {
    pub platform: PlatformKind,
    pub raw: i64,
    kind: PhantomData<K>,
}

impl<K> Id<K> {
    pub const fn new(platform: PlatformKind, raw: i64) -> Self {
        Self {
            platform,
            raw,
            kind: PhantomData,
        }
    }
}

impl<K> Id<K> {
    /// The id within its platform as text: what the database's TEXT id columns hold. Tables
    /// store ids as text so that platforms whose ids are words (Slack's `U024BE7LH`) fit.
    pub fn raw_text(&self) -> String {
        self.raw.to_string()
    }

    /// The inverse of [`Id::raw_text`], for ids read back from the database.
    pub fn from_raw_text(platform: &str, raw: &str) -> Result<Self, String> {
        let platform = platform.parse()?;
        let raw = raw
            .parse()
            .map_err(|_| format!("\"{raw}\" is not a stored {platform} id"))?;
        Ok(Self::new(platform, raw))
    }
}

impl<K> fmt::Display for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.platform, self.raw)
    }
}

impl<K> FromStr for Id<K> {
    type Err = String;
    /// Parses the `platform:number` form used in `bot.owners`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (platform, raw) = s.split_once(':').ok_or_else(|| {
            format!("\"{s}\" is not of the form platform:id (e.g. discord:80351110224678912)")
        })?;
        let platform = platform.parse()?;
        let raw = match platform {
            PlatformKind::Console => console_user_raw(raw),
            PlatformKind::Discord => raw
                .parse::<u64>()
                .map(|n| n as i64)
                .map_err(|_| format!("\"{raw}\" is not a Discord id (a number)"))?,
            PlatformKind::Telegram => raw
                .parse::<i64>()
                .map_err(|_| format!("\"{raw}\" is not a Telegram id (a number)"))?,
        };
        Ok(Self::new(platform, raw))
    }
}

pub type UserId = Id<kind::User>;
pub type ChannelId = Id<kind::Channel>;
pub type CommunityId = Id<kind::Community>;

/// Console users are named, not numbered: a stable FNV-1a hash of the name gives each a number,
/// so `console:alice` in `bot.owners` and `cogbox console --as alice` agree.
pub fn console_user_raw(name: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.to_lowercase().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash >> 1) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_ids_read_back_as_they_were_written() {
        for id in [
            UserId::new(PlatformKind::Discord, -1),
            UserId::new(PlatformKind::Telegram, -100123),
            UserId::new(PlatformKind::Console, console_user_raw("alice")),
        ] {
            let back = UserId::from_raw_text(id.platform.as_str(), &id.raw_text()).unwrap();
            assert_eq!(
                back, id,
                "console ids are stored numbers, not names to hash again"
            );
        }
        assert!(UserId::from_raw_text("discord", "U024BE7LH").is_err());
    }

    #[test]
    fn owner_ids_parse_per_platform() {
        let d: UserId = "discord:18446744073709551615".parse().unwrap();
        assert_eq!(d.raw, -1, "a full-width snowflake keeps its bits");
        let t: UserId = "telegram:-100123".parse().unwrap();
        assert_eq!((t.platform, t.raw), (PlatformKind::Telegram, -100123));
        let c: UserId = "console:Alice".parse().unwrap();
        assert_eq!(c.raw, console_user_raw("alice"));
        assert!(
            "slack:1"
                .parse::<UserId>()
                .unwrap_err()
                .contains("unknown platform")
        );
        assert!(
            "discord:abc"
                .parse::<UserId>()
                .unwrap_err()
                .contains("not a Discord id")
        );
        assert!(
            "12345"
                .parse::<UserId>()
                .unwrap_err()
                .contains("platform:id")
        );
    }
}
