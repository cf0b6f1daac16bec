//! Serde glue for config values that are not plain scalars: secrets (read leniently, always
//! printed masked), owner ids and human durations.

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::core::{UserId, duration};

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

/// A socket address, with an example in the error rather than "invalid socket address syntax".
pub fn de_socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<std::net::SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(|_| {
        de::Error::custom(format!(
            "\"{text}\" is not an address like 127.0.0.1:8443 or [::]:8443"
        ))
    })
}
