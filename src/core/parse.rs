//! The text front end shared by the console, Telegram and Discord prefix commands:
//! `/name@bot args` is split off, then the arguments are tokenized (double quotes group words)
//! and bound to the command's parameters with precise errors.

use super::args::{Args, Value};
use super::spec::{CommandSpec, ParamKind};

/// A message that looks like a command, before the command is known.
#[derive(Debug, PartialEq, Eq)]
pub struct CommandLine<'a> {
    /// Lower-cased command name without prefix.
    pub name: String,
    /// `bot` in Telegram's `/cmd@bot`: the adapter ignores commands meant for another bot.
    pub addressee: Option<&'a str>,
    pub args: &'a str,
}

/// Whether `prefix` can start text commands: 1-5 characters, no spaces, and not `/` (slash
/// commands own it). The error is a sentence for the user.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty()
        || prefix.chars().count() > 5
        || prefix.contains(char::is_whitespace)
        || prefix == "/"
    {
        return Err(format!(
            "\"{prefix}\" must be 1-5 characters without spaces and not \"/\""
        ));
    }
    Ok(())
}

/// Splits `"/roll@cogbox 2d6"` after one of `prefixes`. `None` means "not a command".
pub fn command_line<'a>(text: &'a str, prefixes: &[&str]) -> Option<CommandLine<'a>> {
    let text = text.trim_start();
    let rest = prefixes.iter().find_map(|p| text.strip_prefix(p))?;
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let (head, args) = rest.split_at(end);
    let (name, addressee) = match head.split_once('@') {
        Some((name, bot)) => (name, Some(bot)),
        None => (head, None),
    };
    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    Some(CommandLine {
        name: name.to_lowercase(),
        addressee,
        args: args.trim(),
    })
}

/// One token and where it starts in the argument text (so a rest parameter can take the text
/// verbatim from there).
struct Token {
    text: String,
    start: usize,
}

fn tokenize(input: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(start, ch)) = chars.peek() {
        if ch.is_whitespace() {
            chars.next();
            continue;
        }
        let mut text = String::new();
        if ch == '"' {
            chars.next();
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, escaped)) => text.push(escaped),
                        None => break,
                    },
                    c => text.push(c),
                }
            }
            if !closed {
                return Err("a quote is not closed".into());
            }
        } else {
            while let Some(&(_, c)) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                text.push(c);
                chars.next();
            }
        }
        tokens.push(Token { text, start });
    }
    Ok(tokens)
}

/// Binds the argument text to `spec`'s parameters. Errors are one sentence for the user, to be
/// shown after the command name; a usage line in one starts with `prefix`.
pub fn bind(spec: &CommandSpec, input: &str, prefix: &str) -> Result<Args, String> {
    let tokens = tokenize(input)?;
    let mut values = Vec::with_capacity(spec.params.len());
    let mut next = 0;
    for (i, param) in spec.params.iter().enumerate() {
        let Some(token) = tokens.get(next) else {
            if param.required {
                return Err(format!(
                    "missing <{}> (usage: {})",
                    param.name,
                    spec.usage(prefix)
                ));
            }
            continue;
        };
        // An optional parameter the word cannot be (`/ban @x spamming` has no duration) is
        // skipped, and the word goes to the next one.
        let skippable =
            !param.required && param.kind != ParamKind::Rest && i + 1 < spec.params.len();
        if skippable && !param.fits(&token.text) {
            continue;
        }
        let value = if param.kind == ParamKind::Rest {
            next = tokens.len();
            param.check(Value::Text(unquote_rest(&input[token.start..])))?
        } else {
            next += 1;
            param.parse_word(&token.text)?
        };
        values.push((param.name, value));
    }
    if let Some(extra) = tokens.get(next) {
        return Err(format!(
            "unexpected \"{}\" (usage: {})",
            extra.text,
            spec.usage(prefix)
        ));
    }
    Ok(Args::new(values))
}

/// Binds options a platform already typed (Discord slash options) to `spec`, through the same
/// checks as typed text: a client may enforce bounds, but nothing here trusts it to.
pub fn bind_options(
    spec: &CommandSpec,
    mut options: Vec<(String, Value)>,
    prefix: &str,
) -> Result<Args, String> {
    let mut values = Vec::with_capacity(spec.params.len());
    for param in &spec.params {
        match options.iter().position(|(name, _)| name == param.name) {
            Some(at) => {
                let (_, value) = options.swap_remove(at);
                let value = match (&param.kind, value) {
                    // Choices and numbers may arrive as text from a platform that lacks the type.
                    (ParamKind::Choice(_), Value::Text(t)) => param.parse_word(&t)?,
                    (
                        ParamKind::Integer { .. } | ParamKind::Duration { .. } | ParamKind::User,
                        Value::Text(t),
                    ) => param.parse_word(t.trim())?,
                    (_, value) => param.check(value)?,
                };
                values.push((param.name, value));
            }
            None if param.required => {
                return Err(format!(
                    "missing <{}> (usage: {})",
                    param.name,
                    spec.usage(prefix)
                ));
            }
            None => {}
        }
    }
    if let Some((name, _)) = options.first() {
        return Err(format!(
            "unexpected option \"{name}\" (usage: {})",
            spec.usage(prefix)
        ));
    }
    Ok(Args::new(values))
}

/// A rest parameter keeps the user's spacing, but a rest that is one quoted phrase loses its quotes.
fn unquote_rest(rest: &str) -> String {
    let rest = rest.trim();
    match tokenize(rest) {
        Ok(tokens) if tokens.len() == 1 && rest.starts_with('"') => tokens[0].text.clone(),
        _ => rest.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::core::args::UserRef;
    use crate::core::ids::Raw;

    #[test]
    fn splits_prefix_name_and_addressee() {
        let line = command_line("  /Roll@CogBot  2d6 + 1", &["/", "!"]).unwrap();
        assert_eq!(
            line,
            CommandLine {
                name: "roll".into(),
                addressee: Some("CogBot"),
                args: "2d6 + 1"
            }
        );
        assert_eq!(command_line("!ping", &["/", "!"]).unwrap().name, "ping");
        assert_eq!(command_line("hello /ping", &["/"]), None);
        assert_eq!(command_line("/", &["/"]), None);
        assert_eq!(command_line("/path/to/file", &["/"]), None);
    }

    fn mute() -> CommandSpec {
        CommandSpec::new("mute", "Mute")
            .param("user", "Who", ParamKind::User)
            .param(
                "duration",
                "How long",
                ParamKind::Duration {
                    max: Duration::from_secs(86_400),
                },
            )
            .optional("reason", "Why", ParamKind::Rest)
    }

    #[test]
    fn binds_typed_values_and_keeps_rest_verbatim() {
        let args = bind(&mute(), "<@!42> 1h30m  spamming  links", "/").unwrap();
        assert_eq!(args.user("user"), Some(&UserRef::Id(Raw::Number(42))));
        assert_eq!(args.duration("duration"), Some(Duration::from_secs(5400)));
        assert_eq!(args.text("reason"), Some("spamming  links"));
        let args = bind(&mute(), "@alice 5m \"one phrase\"", "/").unwrap();
        assert_eq!(args.user("user"), Some(&UserRef::Name("alice".into())));
        assert_eq!(args.text("reason"), Some("one phrase"));
        assert_eq!(bind(&mute(), "123 5m", "/").unwrap().text("reason"), None);
    }

    #[test]
    fn slack_mentions_name_members_by_their_word_ids() {
        for text in ["<@U024BE7LH|bob> 5m", "<@U024BE7LH> 5m"] {
            let args = bind(&mute(), text, "/").unwrap();
            let Some(UserRef::Id(id)) = args.user("user") else {
                panic!("{text}: not an id");
            };
            assert_eq!(id.word(), Some("U024BE7LH"), "{text}");
        }
        for not_a_user in [
            "<!channel> 5m",
            "<#C024BE7LH|general> 5m",
            "<@u024be7lh> 5m",
        ] {
            assert!(bind(&mute(), not_a_user, "/").is_err(), "{not_a_user}");
        }
    }

    #[test]
    fn typed_options_pass_the_same_checks_as_text() {
        let text = |s: &str| Value::Text(s.into());
        let options = vec![
            ("reason".into(), text("spam")),
            ("user".into(), Value::User(UserRef::Id(Raw::Number(7)))),
            ("duration".into(), text("10m")),
        ];
        let args = bind_options(&mute(), options, "/").unwrap();
        assert_eq!(args.user("user"), Some(&UserRef::Id(Raw::Number(7))));
        assert_eq!(args.duration("duration"), Some(Duration::from_secs(600)));
        assert_eq!(args.text("reason"), Some("spam"));
        let too_long = vec![
            ("user".into(), Value::User(UserRef::Id(Raw::Number(7)))),
            (
                "duration".into(),
                Value::Duration(Duration::from_secs(90_000)),
            ),
        ];
        assert!(
            bind_options(&mute(), too_long, "/")
                .unwrap_err()
                .contains("between 1s and 1d")
        );
        let missing = vec![("user".into(), Value::User(UserRef::Id(Raw::Number(7))))];
        assert!(
            bind_options(&mute(), missing, "/")
                .unwrap_err()
                .starts_with("missing <duration>")
        );
        let extra = vec![
            ("user".into(), Value::User(UserRef::Id(Raw::Number(7)))),
            ("duration".into(), text("1m")),
            ("evil".into(), text("x")),
        ];
        assert!(
            bind_options(&mute(), extra, "/")
                .unwrap_err()
                .starts_with("unexpected option \"evil\"")
        );
        let count =
            CommandSpec::new("n", "n").param("count", "c", ParamKind::Integer { min: 1, max: 10 });
        assert!(
            bind_options(&count, vec![("count".into(), Value::Int(11))], "/")
                .unwrap_err()
                .contains("not 11")
        );
    }

    #[test]
    fn an_optional_typed_parameter_is_skipped_only_for_words_of_another_kind() {
        let ban = CommandSpec::new("ban", "Ban")
            .param("user", "Who", ParamKind::User)
            .optional(
                "duration",
                "How long",
                ParamKind::Duration {
                    max: Duration::from_secs(86_400),
                },
            )
            .optional("reason", "Why", ParamKind::Rest);
        let args = bind(&ban, "@a spamming links", "/").unwrap();
        assert_eq!(
            (args.duration("duration"), args.text("reason")),
            (None, Some("spamming links"))
        );
        let args = bind(&ban, "@a 2h spamming", "/").unwrap();
        assert_eq!(
            (args.duration("duration"), args.text("reason")),
            (Some(Duration::from_secs(7200)), Some("spamming"))
        );
        assert!(
            bind(&ban, "@a 2d spamming", "/")
                .unwrap_err()
                .contains("\"2d\" is too long (at most 1d)"),
            "a duration out of range is an error, never a reason"
        );
        assert!(bind(&ban, "@a 0s", "/").unwrap_err().contains("zero"));
        let last =
            CommandSpec::new("x", "x").optional("n", "n", ParamKind::Integer { min: 1, max: 9 });
        assert!(
            bind(&last, "many", "/")
                .unwrap_err()
                .contains("not a whole number"),
            "nothing to skip to"
        );
    }

    #[test]
    fn a_reply_may_leave_the_user_out_but_a_named_user_still_wins() {
        let ban = CommandSpec::new("ban", "Ban")
            .param("user", "Who", ParamKind::User)
            .optional(
                "duration",
                "How long",
                ParamKind::Duration {
                    max: Duration::from_secs(86_400),
                },
            )
            .optional("reason", "Why", ParamKind::Rest)
            .targets_reply();
        assert!(
            bind(&ban, "spam", "/")
                .unwrap_err()
                .contains("is not a user"),
            "not a reply"
        );
        let reply = ban.for_reply().unwrap();
        let args = bind(&reply, "spam links", "/").unwrap();
        assert_eq!(
            (args.user("user"), args.text("reason")),
            (None, Some("spam links"))
        );
        let args = bind(&reply, "2h", "/").unwrap();
        assert_eq!(
            (args.user("user"), args.duration("duration")),
            (None, Some(Duration::from_secs(7200)))
        );
        let args = bind(&reply, "@bob spam", "/").unwrap();
        assert_eq!(args.user("user"), Some(&UserRef::Name("bob".into())));
        assert!(bind(&reply, "", "/").unwrap().user("user").is_none());
        let warn = CommandSpec::new("warn", "Warn")
            .param("user", "Who", ParamKind::User)
            .param("reason", "Why", ParamKind::Rest)
            .targets_reply();
        assert!(
            bind(&warn.for_reply().unwrap(), "", "/")
                .unwrap_err()
                .starts_with("missing <reason>"),
            "a required parameter after the left-out user is still required"
        );
        assert_eq!(mute().for_reply(), None, "only specs that ask for it");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(
            bind(&mute(), "@a", "/").unwrap_err(),
            "missing <duration> (usage: /mute <user> <duration> [reason])"
        );
        assert!(
            bind(&mute(), "bob 5m", "/")
                .unwrap_err()
                .contains("\"bob\" is not a user")
        );
        assert!(
            bind(&mute(), "@a 2d", "/")
                .unwrap_err()
                .contains("\"2d\" is too long (at most 1d)")
        );
        // Told the parameter's own bound, not the year that bounds every duration.
        assert!(
            bind(&mute(), "@a 400d", "/")
                .unwrap_err()
                .contains("\"400d\" is too long (at most 1d)")
        );
        assert!(
            bind(&mute(), "@a \"5m", "/")
                .unwrap_err()
                .contains("quote is not closed")
        );
        let count = CommandSpec::new("n", "n")
            .param("count", "c", ParamKind::Integer { min: 1, max: 100 })
            .optional("mode", "m", ParamKind::Choice(&["fast", "slow"]));
        assert_eq!(
            bind(&count, "7 FAST", "/").unwrap().text("mode"),
            Some("fast")
        );
        assert!(
            bind(&count, "x", "/")
                .unwrap_err()
                .contains("\"x\" is not a whole number")
        );
        assert!(
            bind(&count, "101", "/")
                .unwrap_err()
                .contains("between 1 and 100, not 101")
        );
        assert!(
            bind(&count, "99999999999999999999999", "/")
                .unwrap_err()
                .contains("out of range")
        );
        assert!(
            bind(&count, "5 medium", "/")
                .unwrap_err()
                .contains("not one of: fast, slow")
        );
        assert!(
            bind(&count, "5 fast extra", "/")
                .unwrap_err()
                .contains("unexpected \"extra\"")
        );
    }
}
