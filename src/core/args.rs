//! Typed argument values, produced by the text parser or by a platform's structured options
//! (Discord slash options), and checked against the same [`ParamSpec`] either way.

use std::time::Duration;

use super::duration;
use super::error::CommandError;
use super::ids::{Raw, Word};
use super::spec::{ParamKind, ParamSpec};

/// A member named in a command, as the invoker gave it. Platforms resolve names when a handler
/// needs the member ([`crate::core::Platform::resolve_user`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserRef {
    /// A platform id: from a mention (`<@123>`, `<@U024BE7LH>`), a plain number or a
    /// structured option.
    Id(Raw),
    /// A username without the `@`.
    Name(String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    User(UserRef),
    Int(i64),
    Duration(Duration),
    Text(String),
}

/// The bound arguments of one invocation, by parameter name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Args(Vec<(&'static str, Value)>);

impl Args {
    pub fn new(values: Vec<(&'static str, Value)>) -> Self {
        Self(values)
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Some(Value::Int(n)) => Some(*n),
            _ => None,
        }
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(Value::Text(t)) => Some(t),
            _ => None,
        }
    }

    pub fn duration(&self, name: &str) -> Option<Duration> {
        match self.get(name) {
            Some(Value::Duration(d)) => Some(*d),
            _ => None,
        }
    }

    pub fn user(&self, name: &str) -> Option<&UserRef> {
        match self.get(name) {
            Some(Value::User(u)) => Some(u),
            _ => None,
        }
    }

    /// A required text argument; its absence is a bug in the spec, not the user's fault.
    pub fn req_text(&self, name: &str) -> Result<&str, CommandError> {
        self.text(name).ok_or_else(|| missing(name))
    }

    pub fn req_int(&self, name: &str) -> Result<i64, CommandError> {
        self.int(name).ok_or_else(|| missing(name))
    }

    pub fn req_user(&self, name: &str) -> Result<&UserRef, CommandError> {
        self.user(name).ok_or_else(|| missing(name))
    }

    pub fn req_duration(&self, name: &str) -> Result<Duration, CommandError> {
        self.duration(name).ok_or_else(|| missing(name))
    }
}

fn missing(name: &str) -> CommandError {
    CommandError::internal(format!("required argument {name} was not bound"))
}

impl ParamSpec {
    /// Turns one word the user typed into this parameter's value, or says why it can't.
    pub fn parse_word(&self, word: &str) -> Result<Value, String> {
        match &self.kind {
            ParamKind::User => parse_user(word).map(Value::User),
            ParamKind::Integer { .. } => {
                let n = word.parse::<i64>().map_err(|e| match e.kind() {
                    std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                        format!("<{}> is out of range", self.name)
                    }
                    _ => format!("\"{word}\" is not a whole number"),
                })?;
                self.check(Value::Int(n))
            }
            ParamKind::Duration { max } => duration::parse_at_most(word, *max).map(Value::Duration),
            ParamKind::Word | ParamKind::Rest => self.check(Value::Text(word.to_owned())),
            ParamKind::Choice(_) => self.check(Value::Text(word.to_lowercase())),
        }
    }

    /// Whether `word` has the shape of this parameter's kind, in range or not: `2d` is a
    /// duration (perhaps too long), `spam` is not.
    pub fn fits(&self, word: &str) -> bool {
        let digits = |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit());
        match &self.kind {
            ParamKind::User => parse_user(word).is_ok(),
            ParamKind::Integer { .. } => digits(word.strip_prefix('-').unwrap_or(word)),
            ParamKind::Duration { .. } => {
                word.starts_with(|c: char| c.is_ascii_digit())
                    && word.ends_with(|c: char| c.is_ascii_alphabetic())
            }
            ParamKind::Word | ParamKind::Rest => true,
            ParamKind::Choice(choices) => choices.contains(&word.to_lowercase().as_str()),
        }
    }

    /// Checks a value against this parameter's kind and bounds. Structured options from a
    /// platform pass through here too: a client may enforce min/max, but nothing trusts it.
    pub fn check(&self, value: Value) -> Result<Value, String> {
        let out_of_range = |shown: String, lo: String, hi: String| {
            Err(format!(
                "<{}> must be between {lo} and {hi}, not {shown}",
                self.name
            ))
        };
        match (&self.kind, value) {
            (ParamKind::User, v @ Value::User(_)) => Ok(v),
            (ParamKind::Integer { min, max }, Value::Int(n)) => {
                if (*min..=*max).contains(&n) {
                    Ok(Value::Int(n))
                } else {
                    out_of_range(n.to_string(), min.to_string(), max.to_string())
                }
            }
            (ParamKind::Duration { max }, Value::Duration(d)) => {
                if d <= *max {
                    Ok(Value::Duration(d))
                } else {
                    out_of_range(duration::format(d), "1s".into(), duration::format(*max))
                }
            }
            (ParamKind::Word | ParamKind::Rest, Value::Text(t)) => {
                if t.chars().count() > MAX_TEXT {
                    Err(format!(
                        "<{}> is longer than {MAX_TEXT} characters",
                        self.name
                    ))
                } else {
                    Ok(Value::Text(t))
                }
            }
            (ParamKind::Choice(choices), Value::Text(t)) => {
                if choices.contains(&t.as_str()) {
                    Ok(Value::Text(t))
                } else {
                    Err(format!("\"{t}\" is not one of: {}", choices.join(", ")))
                }
            }
            (kind, value) => Err(format!("<{}> expects {kind:?}, got {value:?}", self.name)),
        }
    }
}

/// Longest text argument: Discord's 2000-character message limit, whatever the platform.
pub const MAX_TEXT: usize = 2000;

/// `<@123>` and `<@!123>` (Discord mentions), `<@U024BE7LH>` and `<@U024BE7LH|name>` (Slack's),
/// `@name`, or a bare number.
fn parse_user(word: &str) -> Result<UserRef, String> {
    let mention = word
        .strip_prefix("<@")
        .and_then(|w| w.strip_suffix('>'))
        .map(|w| w.trim_start_matches('!'));
    if let Some(id) = mention.or(Some(word)).and_then(|w| w.parse::<u64>().ok()) {
        return Ok(UserRef::Id(Raw::Number(id as i64)));
    }
    let slack_id = mention.map(|m| m.split_once('|').map_or(m, |(id, _)| id));
    if let Some(Ok(id)) = slack_id.map(Word::new) {
        return Ok(UserRef::Id(Raw::Word(id)));
    }
    match word.strip_prefix('@') {
        Some(name)
            if !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '.') =>
        {
            Ok(UserRef::Name(name.to_owned()))
        }
        _ => Err(format!(
            "\"{word}\" is not a user (mention them, e.g. @name)"
        )),
    }
}
