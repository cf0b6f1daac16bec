//! Members as Slack writes them into text: `<@U123|name>` in slash-command text (the manifest
//! sets `should_escape`) and `<@U123>` in events. Both name the same member by id.

/// A member named in text: their id, and the name Slack put beside it, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mention<'a> {
    pub id: &'a str,
    pub name: Option<&'a str>,
}

/// Reads one word as a mention, or `None` if it is not one.
pub fn parse(word: &str) -> Option<Mention<'_>> {
    let inner = word.strip_prefix("<@")?.strip_suffix('>')?;
    let (id, name) = match inner.split_once('|') {
        Some((id, name)) => (id, Some(name).filter(|n| !n.is_empty())),
        None => (inner, None),
    };
    is_user_id(id).then_some(Mention { id, name })
}

/// `U…` (or `W…` in Enterprise Grid) followed by upper-case letters and digits.
pub fn is_user_id(id: &str) -> bool {
    id.len() <= 32 && is_id(id, &['U', 'W'])
}

/// `C…`, `G…` or `D…` followed by upper-case letters and digits.
fn is_channel_id(id: &str) -> bool {
    is_id(id, &['C', 'G', 'D'])
}

/// Slack's id shape: one of `kinds`, then at least two more upper-case letters or digits.
fn is_id(id: &str, kinds: &[char]) -> bool {
    id.len() >= 3
        && id.starts_with(kinds)
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// `text` without the labels Slack writes beside what it links, whose `|` would otherwise
/// split a poll's options (`poll Kick <@U123|tom>? | yes | no`): a member or channel keeps
/// its id (`<@U123>`, `<#C123>`, which commands take), a link becomes its bare address, and
/// anything else is left as it was.
pub fn without_labels(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let Some(end) = tail.find('>') else {
            rest = tail;
            break;
        };
        let markup = &tail[..=end];
        let target = markup[1..end].split('|').next().unwrap_or_default();
        match markup.as_bytes()[1..].first() {
            Some(b'@') if parse(markup).is_some() => out.push_str(&format!("<{target}>")),
            Some(b'#') if is_channel_id(&target[1..]) => out.push_str(&format!("<{target}>")),
            _ if target.contains("://") || target.starts_with("mailto:") => out.push_str(target),
            _ => out.push_str(markup),
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The command in an `app_mention`'s text: what follows the bot's own mention at the start.
/// `None` when the text does not start by mentioning the bot (`hey <@BOT> roll` is chatter).
pub fn after_bot_mention<'a>(text: &'a str, bot_user: &str) -> Option<&'a str> {
    let text = text.trim_start();
    let first = text.split_whitespace().next()?;
    let mention = parse(first)?;
    (mention.id == bot_user).then(|| text[first.len()..].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_slack_mention_forms_name_the_member() {
        assert_eq!(
            parse("<@U024BE7LH|bob>"),
            Some(Mention {
                id: "U024BE7LH",
                name: Some("bob")
            })
        );
        assert_eq!(
            parse("<@U024BE7LH>"),
            Some(Mention {
                id: "U024BE7LH",
                name: None
            })
        );
        assert_eq!(parse("<@W0ENTERPR>").map(|m| m.id), Some("W0ENTERPR"));
        assert_eq!(parse("<@U024BE7LH|>").and_then(|m| m.name), None);
    }

    #[test]
    fn other_words_are_not_mentions() {
        for word in [
            "U024BE7LH",
            "@bob",
            "<#C024BE7LH|general>",
            "<!channel>",
            "<!here>",
            "<@S0GROUP1|admins>",
            "<@u024be7lh>",
            "<@U024BE7LH",
            "<@>",
            "<@U1>",
            "<@U024BE7LH|bob> ",
        ] {
            assert_eq!(parse(word), None, "{word}");
        }
    }

    #[test]
    fn labels_are_dropped_from_mentions_channels_and_links_and_nothing_else_changes() {
        assert_eq!(
            without_labels("poll Kick <@U024BE7LH|tom>? | yes | no"),
            "poll Kick <@U024BE7LH>? | yes | no"
        );
        assert_eq!(
            without_labels("<@U1AAA|a><@W2BBB|b> <@U3CCC>"),
            "<@U1AAA><@W2BBB> <@U3CCC>"
        );
        assert_eq!(
            without_labels("poll Where? | <#C0GENERAL|general> | <#C0RANDOM1|random>"),
            "poll Where? | <#C0GENERAL> | <#C0RANDOM1>"
        );
        assert_eq!(
            without_labels(
                "remind 1h read <https://x.example/a?b=1|x.example> and <mailto:a@b.c|a@b.c>"
            ),
            "remind 1h read https://x.example/a?b=1 and mailto:a@b.c"
        );
        for kept in [
            "a | b",
            "<@S0GROUP1|admins>",
            "<#general|x>",
            "<@U024BE7LH|tom",
            "ab <@U024BE7LH|tom",
            "<@",
            "x <@|y> z",
        ] {
            assert_eq!(without_labels(kept), kept);
        }
    }

    #[test]
    fn an_app_mention_is_a_command_only_when_it_starts_with_the_bot() {
        assert_eq!(
            after_bot_mention("<@U0BOT1> roll 2d6", "U0BOT1"),
            Some("roll 2d6")
        );
        assert_eq!(
            after_bot_mention("  <@U0BOT1>   help ", "U0BOT1"),
            Some("help")
        );
        assert_eq!(after_bot_mention("<@U0BOT1>", "U0BOT1"), Some(""));
        assert_eq!(after_bot_mention("hey <@U0BOT1> roll", "U0BOT1"), None);
        assert_eq!(after_bot_mention("<@U0OTHER> roll", "U0BOT1"), None);
        assert_eq!(after_bot_mention("", "U0BOT1"), None);
    }
}
