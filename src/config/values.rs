//! Serde glue for config values that are not plain scalars: secrets (read leniently, always
//! printed masked), owner ids and human durations.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::core::{ChannelId, UserId, duration};

/// What `cogbox check` prints in place of a secret.
pub const MASK: &str = "<hidden>";

/// A secret such as a token. Env values that are all digits (`COGBOX_TELEGRAM__TOKEN=12345`)
/// arrive as numbers and are taken as text; an empty value means "not set".
pub fn de_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    struct SecretVisitor;
    impl Visitor<'_> for SecretVisitor {
        type Value = Option<SecretString>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok((!v.is_empty()).then(|| SecretString::from(v)))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            self.visit_str(&v.to_string())
        }
    }
    d.deserialize_any(SecretVisitor)
}

pub fn ser_secret<S: Serializer>(secret: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => s.serialize_str(MASK),
        None => s.serialize_none(),
    }
}

pub fn de_owners<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<UserId>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| s.parse().map_err(de::Error::custom))
        .collect()
}

pub fn ser_owners<S: Serializer>(owners: &[UserId], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(owners.iter().map(UserId::to_string))
}

/// A duration written as in chat commands: `10s`, `5m`, `1h30m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        duration::parse(&text)
            .map(HumanDuration)
            .map_err(de::Error::custom)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&duration::format(self.0))
    }
}

/// How often a periodic job runs, written like a [`HumanDuration`]; `""` turns the job off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval(pub Option<Duration>);

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text.trim().is_empty() {
            return Ok(Self(None));
        }
        duration::parse(text.trim())
            .map(|d| Self(Some(d)))
            .map_err(|e| de::Error::custom(format!("{e}, or \"\" to turn the job off")))
    }
}

impl Serialize for Interval {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.map(duration::format).unwrap_or_default())
    }
}

/// An optional `platform:id` channel; `""` means none.
pub fn de_channel<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ChannelId>, D::Error> {
    let text = String::deserialize(d)?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    text.trim().parse().map(Some).map_err(de::Error::custom)
}

pub fn ser_channel<S: Serializer>(channel: &Option<ChannelId>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&channel.map(|c| c.to_string()).unwrap_or_default())
}

/// A socket address, with an example in the error rather than "invalid socket address syntax".
pub fn de_socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<std::net::SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(|_| {
        de::Error::custom(format!(
            "\"{text}\" is not an address like 127.0.0.1:8443 or [::]:8443"
        ))
    })
}

/// What the bot is shown doing under its name on Discord, written as a phrase:
/// `"watching for /help"`, `"playing chess"`, `"listening to music"`, `"competing in a quiz"`,
/// or `""` for nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presence(pub Option<(ActivityKind, String)>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivityKind {
    Playing,
    Watching,
    ListeningTo,
    CompetingIn,
}

impl ActivityKind {
    /// Each kind with the words that introduce it, as Discord's client shows them.
    const WORDS: [(Self, &'static str); 4] = [
        (Self::Playing, "playing"),
        (Self::Watching, "watching"),
        (Self::ListeningTo, "listening to"),
        (Self::CompetingIn, "competing in"),
    ];

    fn words(self) -> &'static str {
        Self::WORDS
            .iter()
            .find(|(kind, _)| *kind == self)
            .map_or("", |(_, words)| words)
    }
}

/// Discord's limit on an activity's name.
const MAX_ACTIVITY: usize = 128;

impl FromStr for Presence {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self(None));
        }
        let found = ActivityKind::WORDS.iter().find_map(|(kind, words)| {
            let head = text.get(..words.len())?;
            let rest = &text[words.len()..];
            (head.eq_ignore_ascii_case(words) && rest.starts_with(char::is_whitespace))
                .then(|| (*kind, rest.trim().to_owned()))
        });
        match found {
            Some((_, name)) if name.chars().count() > MAX_ACTIVITY => Err(format!(
                "\"{name}\" is longer than Discord's {MAX_ACTIVITY} characters"
            )),
            Some(activity) => Ok(Self(Some(activity))),
            None => Err(format!(
                "\"{text}\" must start with playing, watching, listening to or competing in \
                 (e.g. \"watching for /help\"), or be \"\" for none"
            )),
        }
    }
}

impl fmt::Display for Presence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some((kind, name)) => write!(f, "{} {name}", kind.words()),
            None => Ok(()),
        }
    }
}

impl<'de> Deserialize<'de> for Presence {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

impl Serialize for Presence {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::PlatformKind;

    #[test]
    fn presence_phrases_round_trip() {
        for (text, kind, name) in [
            ("watching for /help", ActivityKind::Watching, "for /help"),
            ("Playing  chess", ActivityKind::Playing, "chess"),
            ("listening to lo-fi", ActivityKind::ListeningTo, "lo-fi"),
            ("competing in a quiz", ActivityKind::CompetingIn, "a quiz"),
            (
                "Playing İstanbul Ünlü",
                ActivityKind::Playing,
                "İstanbul Ünlü",
            ),
        ] {
            let presence: Presence = text.parse().unwrap();
            assert_eq!(presence, Presence(Some((kind, name.into()))), "{text}");
            assert_eq!(presence.to_string().parse::<Presence>(), Ok(presence));
        }
        assert_eq!("".parse::<Presence>(), Ok(Presence(None)));
        assert_eq!(Presence(None).to_string(), "");
    }

    #[test]
    fn a_bad_presence_says_what_is_expected() {
        for bad in [
            "dancing",
            "watching",
            "listening music",
            "playingchess",
            "pläying x",
        ] {
            assert!(
                bad.parse::<Presence>()
                    .unwrap_err()
                    .contains("must start with playing, watching"),
                "{bad}"
            );
        }
        let long = format!("playing {}", "x".repeat(129));
        assert!(long.parse::<Presence>().unwrap_err().contains("128"));
        let longest = format!("playing {}", "é".repeat(128));
        assert!(longest.parse::<Presence>().is_ok(), "128 characters fit");
    }

    #[derive(Debug, Deserialize)]
    struct Keys {
        #[serde(default, deserialize_with = "de_secret")]
        secret: Option<SecretString>,
        #[serde(default, deserialize_with = "de_channel")]
        channel: Option<ChannelId>,
    }

    fn keys(value: serde_json::Value) -> Result<Keys, String> {
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    /// The environment gives numbers for values of digits only (`COGBOX_…_SECRET=12345`).
    #[test]
    fn secrets_are_text_even_when_the_environment_makes_them_numbers() {
        use secrecy::ExposeSecret;
        for (value, text) in [
            (serde_json::json!("abc"), Some("abc")),
            (serde_json::json!(12345), Some("12345")),
            (serde_json::json!(-12345), Some("-12345")),
            (serde_json::json!(""), None),
        ] {
            let secret = keys(serde_json::json!({ "secret": value })).unwrap().secret;
            assert_eq!(secret.as_ref().map(|s| s.expose_secret()), text);
        }
        let error = keys(serde_json::json!({"secret": true})).unwrap_err();
        assert!(error.contains("expected a string"), "{error}");
    }

    #[test]
    fn a_channel_is_platform_and_id_and_empty_is_none() {
        let channel = |text: &str| keys(serde_json::json!({ "channel": text })).map(|k| k.channel);
        assert_eq!(
            channel(" telegram:-100123 "),
            Ok(Some(ChannelId::new(PlatformKind::Telegram, -100_123)))
        );
        assert_eq!(channel(""), Ok(None));
        assert!(channel("nowhere").is_err());
    }
}
