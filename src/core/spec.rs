//! Commands declared as data. One [`CommandSpec`] drives every front end: the text parser
//! (console, Telegram, Discord prefix), Discord slash registration and Telegram's command menu.

use std::fmt::Write as _;
use std::time::Duration;

/// What an invoker must be allowed to do. Each platform adapter maps these onto its own
/// permission system (Discord permission bits, Telegram administrator rights).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    BanMembers,
    KickMembers,
    MuteMembers,
    ManageMessages,
    ManageSettings,
    /// Listed in `bot.owners`: decided by cogbox's config, not by any platform.
    Owner,
}

/// Where a command may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Anywhere,
    /// Only inside a community (a Discord guild, a Telegram group), never in a direct chat.
    Community,
}

/// The type of one parameter, with the bounds every front end enforces.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamKind {
    /// A member: a mention (`<@123>`, `@name`) or a numeric id.
    User,
    Integer {
        min: i64,
        max: i64,
    },
    /// A human duration such as `10m` or `2h30m`, at most `max`.
    Duration {
        max: Duration,
    },
    /// One word, or a quoted phrase.
    Word,
    /// Everything after the preceding parameters, verbatim; only allowed last.
    Rest,
    /// One of a fixed set of lower-case words.
    Choice(&'static [&'static str]),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub kind: ParamKind,
    pub required: bool,
}

/// A command: its name, help text, parameters and the gate in front of it.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub params: Vec<ParamSpec>,
    pub capability: Option<Capability>,
    pub cooldown: Option<Duration>,
    pub scope: Scope,
    /// Whether the first [`ParamKind::User`] parameter may be left out in a reply, meaning the
    /// author of the replied-to message (how Telegram group admins moderate).
    pub targets_reply: bool,
    /// Run by buttons (`/vote` under a poll): left out of `/help` and the platforms' command
    /// menus, where it would only puzzle members, though it still answers when typed.
    pub buttons_only: bool,
}

impl CommandSpec {
    pub fn new(name: &'static str, description: &'static str) -> Self {
        Self {
            name,
            description,
            params: Vec::new(),
            capability: None,
            cooldown: None,
            scope: Scope::Anywhere,
            targets_reply: false,
            buttons_only: false,
        }
    }

    pub fn param(mut self, name: &'static str, description: &'static str, kind: ParamKind) -> Self {
        self.params.push(ParamSpec {
            name,
            description,
            kind,
            required: true,
        });
        self
    }

    pub fn optional(
        mut self,
        name: &'static str,
        description: &'static str,
        kind: ParamKind,
    ) -> Self {
        self.params.push(ParamSpec {
            name,
            description,
            kind,
            required: false,
        });
        self
    }

    pub fn requires(mut self, capability: Capability) -> Self {
        self.capability = Some(capability);
        self
    }

    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = Some(cooldown);
        self
    }

    pub fn community_only(mut self) -> Self {
        self.scope = Scope::Community;
        self
    }

    /// See [`CommandSpec::targets_reply`].
    pub fn targets_reply(mut self) -> Self {
        self.targets_reply = true;
        self
    }

    /// See [`CommandSpec::buttons_only`].
    pub fn buttons_only(mut self) -> Self {
        self.buttons_only = true;
        self
    }

    /// This spec as it binds a command sent as a reply: with [`CommandSpec::targets_reply`],
    /// its user parameter becomes optional (`/ban spam` bans the replied-to author, while
    /// `/ban @bob spam` still bans bob). `None` when nothing changes.
    pub fn for_reply(&self) -> Option<Self> {
        if !self.targets_reply {
            return None;
        }
        let mut relaxed = self.clone();
        let user = relaxed
            .params
            .iter_mut()
            .find(|p| p.kind == ParamKind::User)?;
        user.required = false;
        Some(relaxed)
    }

    /// `/mute <user> <duration> [reason]`, after the platform's `prefix`
    /// ([`Platform::command_prefix`](super::Platform::command_prefix)).
    pub fn usage(&self, prefix: &str) -> String {
        let mut out = format!("{prefix}{}", self.name);
        for p in &self.params {
            let _ = if p.required {
                write!(out, " <{}>", p.name)
            } else {
                write!(out, " [{}]", p.name)
            };
        }
        out
    }

    /// Checks the rules of both Discord and Telegram, so a spec that passes registers on both.
    pub fn validate(&self) -> Result<(), String> {
        let here = |msg: String| format!("command /{}: {msg}", self.name);
        check_name(self.name).map_err(here)?;
        check_description(self.description).map_err(here)?;
        if self.params.len() > 25 {
            return Err(here("at most 25 parameters".into()));
        }
        let mut seen_optional = false;
        for (i, p) in self.params.iter().enumerate() {
            let here = |msg: String| here(format!("parameter {}: {msg}", p.name));
            check_name(p.name).map_err(here)?;
            check_description(p.description).map_err(here)?;
            if self.params[..i].iter().any(|q| q.name == p.name) {
                return Err(here("appears twice".into()));
            }
            if p.required && seen_optional {
                return Err(here(
                    "a required parameter cannot follow an optional one".into(),
                ));
            }
            seen_optional |= !p.required;
            match &p.kind {
                ParamKind::Rest if i + 1 != self.params.len() => {
                    return Err(here("a rest-of-line parameter must be the last".into()));
                }
                ParamKind::Integer { min, max } if min > max => {
                    return Err(here(format!("min {min} is above max {max}")));
                }
                ParamKind::Choice(choices) => {
                    if choices.is_empty() || choices.len() > 25 {
                        return Err(here("needs 1 to 25 choices".into()));
                    }
                    for c in *choices {
                        check_name(c).map_err(|e| here(format!("choice {c}: {e}")))?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Names satisfy both platforms: `^[a-z0-9_]{1,32}$`.
fn check_name(name: &str) -> Result<(), String> {
    let ok = (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!("name \"{name}\" must be 1-32 of a-z, 0-9, _"))
    }
}

/// Discord allows 1-100 characters, Telegram 1-256: the tighter rule wins.
fn check_description(text: &str) -> Result<(), String> {
    let len = text.chars().count();
    if (1..=100).contains(&len) {
        Ok(())
    } else {
        Err(format!("description must be 1-100 characters, has {len}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> CommandSpec {
        CommandSpec::new("mute", "Mute a member")
            .param("user", "Who", ParamKind::User)
            .param(
                "duration",
                "How long",
                ParamKind::Duration {
                    max: Duration::from_secs(60),
                },
            )
            .optional("reason", "Why", ParamKind::Rest)
    }

    #[test]
    fn usage_marks_optional_params() {
        assert_eq!(spec().usage("/"), "/mute <user> <duration> [reason]");
        assert_eq!(
            spec().usage("/cogbox "),
            "/cogbox mute <user> <duration> [reason]"
        );
    }

    #[test]
    fn validation_catches_each_rule() {
        assert_eq!(spec().validate(), Ok(()));
        let bad_name = CommandSpec::new("Mute", "x");
        assert!(bad_name.validate().unwrap_err().contains("a-z"));
        let long = CommandSpec::new("x", Box::leak("y".repeat(101).into_boxed_str()));
        assert!(
            long.validate()
                .unwrap_err()
                .contains("1-100 characters, has 101")
        );
        let order = CommandSpec::new("x", "x")
            .optional("a", "a", ParamKind::Word)
            .param("b", "b", ParamKind::Word);
        assert!(order.validate().unwrap_err().contains("cannot follow"));
        let rest = CommandSpec::new("x", "x")
            .param("a", "a", ParamKind::Rest)
            .param("b", "b", ParamKind::Word);
        assert!(rest.validate().unwrap_err().contains("must be the last"));
        let twice = CommandSpec::new("x", "x")
            .param("a", "a", ParamKind::Word)
            .param("a", "a", ParamKind::Word);
        assert!(twice.validate().unwrap_err().contains("appears twice"));
        let range =
            CommandSpec::new("x", "x").param("n", "n", ParamKind::Integer { min: 5, max: 1 });
        assert!(range.validate().unwrap_err().contains("above max"));
        let choice = CommandSpec::new("x", "x").param("c", "c", ParamKind::Choice(&["Up"]));
        assert!(choice.validate().unwrap_err().contains("choice Up"));
    }
}
