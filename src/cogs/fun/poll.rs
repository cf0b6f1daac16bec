//! `/poll`: a question with one button per option, one vote per member (a new press moves the
//! vote), the counts shown on the poll message itself, and an optional closing time.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::super::{Ctx, stored};
use crate::core::{CommandError, CommandResult, Reply, duration};
use crate::services::polls::{NewPoll, Poll};

/// Buttons per message stay readable on a phone, and Discord allows 25.
pub const MAX_OPTIONS: usize = 10;
/// A button label Discord still shows whole.
pub const MAX_OPTION_CHARS: usize = 50;
pub const MAX_QUESTION_CHARS: usize = 200;
/// The longest a poll may stay open.
pub const MAX_OPEN: Duration = Duration::from_secs(30 * 86_400);

/// `[duration] question | option | option…`, checked; the error is a sentence for the user.
pub fn parse(text: &str) -> Result<(Option<Duration>, String, Vec<String>), String> {
    let text = text.trim();
    let (first, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let (open, text) = match duration::parse(first) {
        Ok(open) if open > MAX_OPEN => {
            return Err(format!(
                "a poll stays open at most {}",
                duration::format(MAX_OPEN)
            ));
        }
        Ok(open) => (Some(open), rest),
        Err(_) => (None, text),
    };
    let mut parts = text.split('|').map(str::trim);
    let question = parts.next().unwrap_or_default().to_owned();
    let options: Vec<String> = parts.map(str::to_owned).collect();
    if question.is_empty() || options.len() < 2 || options.iter().any(String::is_empty) {
        return Err("give a question and at least two options, e.g. Lunch? | pizza | sushi".into());
    }
    if options.len() > MAX_OPTIONS {
        return Err(format!("at most {MAX_OPTIONS} options"));
    }
    if question.chars().count() > MAX_QUESTION_CHARS {
        return Err(format!(
            "the question is at most {MAX_QUESTION_CHARS} characters"
        ));
    }
    if options.iter().any(|o| o.chars().count() > MAX_OPTION_CHARS) {
        return Err(format!(
            "an option is at most {MAX_OPTION_CHARS} characters"
        ));
    }
    Ok((open, question, options))
}

/// The poll message: the question, each option's count, the total and when it closes, and a
/// button per option while it is open.
pub fn render(poll: &Poll, now: DateTime<Utc>) -> Reply {
    let mut lines: Vec<String> = poll
        .options
        .iter()
        .zip(&poll.counts)
        .enumerate()
        .map(|(i, (option, count))| format!("{}. {option}: {count}", i + 1))
        .collect();
    let total = poll.total();
    let votes = if total == 1 { "vote" } else { "votes" };
    let open = !poll.closed && poll.closes_at.is_none_or(|at| at > now);
    lines.push(match (open, poll.closes_at) {
        (false, _) => format!("{total} {votes}, closed"),
        (true, None) => format!("{total} {votes}"),
        (true, Some(at)) => {
            // Whole minutes, rounded up, so that the text does not change with every vote.
            let left = (at - now)
                .to_std()
                .unwrap_or_default()
                .as_secs()
                .div_ceil(60)
                * 60;
            format!(
                "{total} {votes}, closes in {}",
                duration::format(Duration::from_secs(left))
            )
        }
    });
    let mut reply =
        Reply::text(lines.join("\n")).title(format!("Poll #{}: {}", poll.id, poll.question));
    if open {
        for (i, option) in poll.options.iter().enumerate() {
            reply = reply.button(option.clone(), format!("/vote {} {}", poll.id, i + 1));
        }
    }
    reply
}

pub async fn poll(ctx: Ctx) -> CommandResult {
    let community = super::super::community(&ctx)?;
    let (open, question, options) =
        parse(ctx.args.req_text("poll")?).map_err(CommandError::Usage)?;
    let now = ctx.state.clock.now();
    let closes_at = open.map(|d| now + chrono::Duration::from_std(d).unwrap_or_default());
    let new = NewPoll {
        community,
        channel: ctx.invocation.channel,
        author: ctx.invocation.author.id,
        question,
        options,
        closes_at,
    };
    let poll = ctx.state.polls.create(new, now).await.map_err(stored)?;
    if let Some(at) = closes_at {
        // Votes stop at `closes_at` whatever happens to this job; it announces the result.
        let payload = serde_json::json!({"poll": poll.id, "platform": community.platform.as_str()});
        ctx.state
            .scheduler
            .schedule(super::remind::CLOSE_POLL, at, payload)
            .await
            .map_err(stored)?;
    }
    Ok(render(&poll, now))
}

pub async fn vote(ctx: Ctx) -> CommandResult {
    let community = super::super::community(&ctx)?;
    let id = ctx.args.req_int("poll")?;
    // The parameter's bounds keep the option within 1..=MAX_OPTIONS.
    let option = ctx.args.req_int("option")? as usize - 1;
    let now = ctx.state.clock.now();
    let voted = ctx
        .state
        .polls
        .vote(community, id, ctx.invocation.author.id, option, now)
        .await
        .map_err(stored)?;
    match voted {
        Ok(poll) => Ok(render(&poll, now).replacing()),
        Err(refused) => Err(CommandError::Denied(refused.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{ChannelId, CommunityId, PlatformKind, reply::MAX_BUTTON_COMMAND};

    #[test]
    fn a_poll_line_takes_an_optional_duration_first() {
        assert_eq!(
            parse("Lunch? | pizza | sushi"),
            Ok((None, "Lunch?".into(), vec!["pizza".into(), "sushi".into()]))
        );
        assert_eq!(
            parse("1h30m Lunch? |pizza|sushi ").map(|p| p.0),
            Ok(Some(Duration::from_secs(5400)))
        );
        for bad in [
            "Lunch?",
            "Lunch? | pizza",
            "| a | b",
            "Lunch? | a || b",
            "1h | a | b",
        ] {
            assert!(
                parse(bad).unwrap_err().contains("at least two options"),
                "{bad}"
            );
        }
        assert_eq!(
            parse("31d Q | a | b").unwrap_err(),
            "a poll stays open at most 30d"
        );
        let eleven = format!("Q{}", " | x".repeat(11));
        assert_eq!(parse(&eleven).unwrap_err(), "at most 10 options");
        let long = format!("Q | a | {}", "x".repeat(51));
        assert_eq!(
            parse(&long).unwrap_err(),
            "an option is at most 50 characters"
        );
    }

    #[test]
    fn the_message_shows_counts_and_buttons_only_while_open() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut poll = Poll {
            id: i64::MAX,
            community: CommunityId::new(PlatformKind::Console, 1),
            channel: ChannelId::new(PlatformKind::Console, 1),
            question: "Lunch?".into(),
            options: vec!["pizza".into(), "sushi".into()],
            counts: vec![1, 0],
            closes_at: Some(now + chrono::Duration::seconds(3599)),
            closed: false,
        };
        let open = render(&poll, now);
        assert_eq!(open.text, "1. pizza: 1\n2. sushi: 0\n1 vote, closes in 1h");
        assert_eq!(open.buttons[1].command, format!("/vote {} 2", i64::MAX));
        assert!(
            open.buttons
                .iter()
                .all(|b| b.command.len() <= MAX_BUTTON_COMMAND)
        );
        let after = now + chrono::Duration::seconds(3600);
        let closed = render(&poll, after);
        assert_eq!(closed.text, "1. pizza: 1\n2. sushi: 0\n1 vote, closed");
        assert!(closed.buttons.is_empty());
        poll.closes_at = None;
        poll.counts = vec![2, 3];
        assert!(render(&poll, now).text.ends_with("\n5 votes"));
    }
}
