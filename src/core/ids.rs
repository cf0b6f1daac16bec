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
    Slack,
}

impl PlatformKind {
    pub const ALL: [PlatformKind; 4] = [Self::Console, Self::Discord, Self::Telegram, Self::Slack];

    /// The lower-case name used in config (`discord:123`) and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Console => "console",
            Self::Discord => "discord",
            Self::Telegram => "telegram",
            Self::Slack => "slack",
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
                format!("unknown platform \"{s}\" (expected console, discord, telegram or slack)")
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

/// An id within its platform: a number (Discord snowflakes, Telegram ids, console users) or a
/// word (Slack's `U024BE7LH`, `C024BE7LH`, `T024BE7LH`). Both are kept exactly, inline, so that
/// ids stay `Copy` and cheap to hash as cache and rate-limit keys.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Raw {
    /// Discord snowflakes (u64) are stored bit for bit in the i64, which is what SQLite's
    /// INTEGER holds; Telegram ids are already i64.
    Number(i64),
    Word(Word),
}

/// Longest word id: Slack's are 9 to 11 characters today, and Slack warns they may grow
/// (to 21); a longer one is refused with an error rather than cut or hashed.
pub const MAX_WORD: usize = 23;

/// A word id: 1 to [`MAX_WORD`] upper-case ASCII letters and digits, as Slack writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Word {
    len: u8,
    bytes: [u8; MAX_WORD],
}

impl Word {
    pub fn new(word: &str) -> Result<Self, String> {
        let valid = !word.is_empty()
            && word.len() <= MAX_WORD
            && word
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !valid {
            return Err(format!(
                "\"{word}\" is not a word id (1 to {MAX_WORD} capital letters and digits)"
            ));
        }
        let mut bytes = [0; MAX_WORD];
        bytes[..word.len()].copy_from_slice(word.as_bytes());
        Ok(Self {
            len: word.len() as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII letters and digits are ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl Raw {
    /// The number, for platforms whose ids are numbers; `None` for a word.
    pub fn number(self) -> Option<i64> {
        match self {
            Self::Number(n) => Some(n),
            Self::Word(_) => None,
        }
    }

    /// The word, for platforms whose ids are words; `None` for a number.
    pub fn word(&self) -> Option<&str> {
        match self {
            Self::Number(_) => None,
            Self::Word(w) => Some(w.as_str()),
        }
    }
}

impl fmt::Display for Raw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Word(w) => f.write_str(w.as_str()),
        }
    }
}

impl fmt::Debug for Raw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Numbers as JSON numbers and words as strings: reminders stored before word ids existed
/// read back unchanged.
impl serde::Serialize for Raw {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Number(n) => s.serialize_i64(*n),
            Self::Word(w) => s.serialize_str(w.as_str()),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Raw {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Number(i64),
            Word(String),
        }
        match Stored::deserialize(d)? {
            Stored::Number(n) => Ok(Self::Number(n)),
            Stored::Word(w) => Word::new(&w)
                .map(Self::Word)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// A platform-qualified id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id<K> {
    pub platform: PlatformKind,
    pub raw: Raw,
    kind: PhantomData<K>,
}

impl<K> Id<K> {
    /// A numeric id (Discord, Telegram, console).
    pub const fn new(platform: PlatformKind, raw: i64) -> Self {
        Self::from_raw(platform, Raw::Number(raw))
    }

    pub const fn from_raw(platform: PlatformKind, raw: Raw) -> Self {
        Self {
            platform,
            raw,
            kind: PhantomData,
        }
    }

    /// A word id (Slack).
    pub fn word(platform: PlatformKind, word: &str) -> Result<Self, String> {
        Word::new(word).map(|w| Self::from_raw(platform, Raw::Word(w)))
    }

    /// The id within its platform as text: what the database's TEXT id columns hold.
    pub fn raw_text(&self) -> String {
        self.raw.to_string()
    }

    /// The inverse of [`Id::raw_text`], for ids read back from the database: a word on
    /// platforms whose ids are words, else a number.
    pub fn from_raw_text(platform: &str, raw: &str) -> Result<Self, String> {
        let platform: PlatformKind = platform.parse()?;
        let parsed = match platform {
            PlatformKind::Slack => Word::new(raw).map(Raw::Word).ok(),
            _ => raw.parse().map(Raw::Number).ok(),
        };
        parsed
            .map(|raw| Self::from_raw(platform, raw))
            .ok_or_else(|| format!("\"{raw}\" is not a stored {platform} id"))
    }
}

impl<K> fmt::Display for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.platform, self.raw)
    }
}

impl<K> FromStr for Id<K> {
    type Err = String;
    /// Parses the `platform:id` form used in `bot.owners`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (platform, raw) = s.split_once(':').ok_or_else(|| {
            format!("\"{s}\" is not of the form platform:id (e.g. discord:80351110224678912)")
        })?;
        let platform = platform.parse()?;
        let raw = match platform {
            PlatformKind::Console => Raw::Number(console_user_raw(raw)),
            PlatformKind::Discord => raw
                .parse::<u64>()
                .map(|n| Raw::Number(n as i64))
                .map_err(|_| format!("\"{raw}\" is not a Discord id (a number)"))?,
            PlatformKind::Telegram => raw
                .parse::<i64>()
                .map(Raw::Number)
                .map_err(|_| format!("\"{raw}\" is not a Telegram id (a number)"))?,
            PlatformKind::Slack => Word::new(raw).map(Raw::Word).map_err(|_| {
                format!("\"{raw}\" is not a Slack id (like U024BE7LH, from the member's profile)")
            })?,
        };
        Ok(Self::from_raw(platform, raw))
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
        let slack = UserId::word(PlatformKind::Slack, "U024BE7LH").unwrap();
        assert_eq!(UserId::from_raw_text("slack", &slack.raw_text()), Ok(slack));
        assert!(
            UserId::from_raw_text("slack", "123").is_ok(),
            "digits are a word too"
        );
        assert!(UserId::from_raw_text("slack", "u024be7lh").is_err());
    }

    #[test]
    fn word_ids_are_kept_exactly_and_refused_past_their_limit() {
        let longest = "W".repeat(MAX_WORD);
        assert_eq!(Word::new(&longest).unwrap().as_str(), longest);
        assert!(Word::new(&format!("{longest}X")).is_err(), "never cut");
        assert!(Word::new("").is_err());
        assert!(Word::new("U02 4").is_err());
        let (a, b) = (Word::new("U1").unwrap(), Word::new("U10").unwrap());
        assert_ne!(a, b, "the length is part of the id");
    }

    #[test]
    fn numbers_serialize_as_numbers_and_words_as_strings() {
        let number: Raw = serde_json::from_str("-100123").unwrap();
        assert_eq!(
            number,
            Raw::Number(-100123),
            "payloads from before word ids"
        );
        let word: Raw = serde_json::from_str("\"C024BE7LH\"").unwrap();
        assert_eq!(word.word(), Some("C024BE7LH"));
        assert_eq!(serde_json::to_string(&word).unwrap(), "\"C024BE7LH\"");
        assert_eq!(serde_json::to_string(&number).unwrap(), "-100123");
        assert!(serde_json::from_str::<Raw>("\"no\"").is_err());
    }

    #[test]
    fn owner_ids_parse_per_platform() {
        let d: UserId = "discord:18446744073709551615".parse().unwrap();
        assert_eq!(
            d.raw,
            Raw::Number(-1),
            "a full-width snowflake keeps its bits"
        );
        let t: UserId = "telegram:-100123".parse().unwrap();
        assert_eq!(
            (t.platform, t.raw),
            (PlatformKind::Telegram, Raw::Number(-100123))
        );
        let c: UserId = "console:Alice".parse().unwrap();
        assert_eq!(c.raw, Raw::Number(console_user_raw("alice")));
        let s: UserId = "slack:U024BE7LH".parse().unwrap();
        assert_eq!(
            (s.platform, s.raw.word()),
            (PlatformKind::Slack, Some("U024BE7LH"))
        );
        assert_eq!(s.to_string(), "slack:U024BE7LH");
        assert!(
            "slack:bob"
                .parse::<UserId>()
                .unwrap_err()
                .contains("not a Slack id")
        );
        assert!(
            "matrix:1"
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
