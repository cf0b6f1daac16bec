//! Small games and helpers: ping, dice, coin, magic 8-ball, a chooser, polls and trivia.

mod dice;
mod poll;
mod remind;
mod trivia;

pub use remind::register as register_jobs;

use super::Ctx;
use crate::core::{Cog, Command, CommandError, CommandResult, CommandSpec, ParamKind, Reply};
use crate::services::Services;
use dice::Dice;
use std::time::Duration;

/// The magic 8-ball's answers, one per line; embedded, so the binary needs no files beside it.
const EIGHT_BALL: &str = include_str!("../../../assets/8ball.txt");

/// The most options `/choose` takes: enough for any real choice, few enough to read.
const MAX_CHOICES: usize = 20;

pub fn cog() -> Cog<Services> {
    Cog {
        name: "fun",
        description: "Dice, coins, polls, trivia and other small games",
        commands: vec![
            Command::new(
                CommandSpec::new("ping", "Check that the bot is alive"),
                ping,
            ),
            Command::new(
                CommandSpec::new("roll", "Roll dice, e.g. 2d6 or 1d20+5").param(
                    "dice",
                    "Dice to roll: NdM with an optional +K or -K",
                    ParamKind::Word,
                ),
                roll,
            ),
            Command::new(CommandSpec::new("coinflip", "Flip a coin"), coinflip),
            Command::new(
                CommandSpec::new("8ball", "Ask the magic 8-ball a yes/no question").param(
                    "question",
                    "Your question",
                    ParamKind::Rest,
                ),
                eight_ball,
            ),
            Command::new(
                CommandSpec::new("choose", "Pick one of several options, e.g. tea | coffee").param(
                    "options",
                    "Options separated by |",
                    ParamKind::Rest,
                ),
                choose,
            ),
            Command::new(
                CommandSpec::new("remind", "Remind you of something later, e.g. 10m tea")
                    .param(
                        "duration",
                        "How long from now, e.g. 10m, 2h or 3d",
                        ParamKind::Duration {
                            max: remind::MAX_WAIT,
                        },
                    )
                    .param("text", "What to remind you of", ParamKind::Rest),
                remind::remind,
            ),
            Command::new(
                CommandSpec::new("reminders", "List the reminders you set here"),
                remind::reminders,
            ),
            Command::new(
                CommandSpec::new("unremind", "Cancel one of your reminders").param(
                    "id",
                    "The reminder's number, as the reminders command lists it",
                    ParamKind::Integer {
                        min: 1,
                        max: i64::MAX,
                    },
                ),
                remind::unremind,
            ),
            Command::new(
                CommandSpec::new("poll", "Ask a question with a button per answer")
                    .param(
                        "poll",
                        "[duration] question | option | option..., e.g. 1h Lunch? | pizza | sushi",
                        ParamKind::Rest,
                    )
                    .community_only(),
                poll::poll,
            ),
            Command::new(
                CommandSpec::new("vote", "Vote in a poll (what its buttons do)")
                    .param(
                        "poll",
                        "The poll's number",
                        ParamKind::Integer {
                            min: 1,
                            max: i64::MAX,
                        },
                    )
                    .param(
                        "option",
                        "The option's number",
                        ParamKind::Integer {
                            min: 1,
                            max: poll::MAX_OPTIONS as i64,
                        },
                    )
                    .community_only()
                    .buttons_only(),
                poll::vote,
            ),
            Command::new(
                CommandSpec::new("trivia", "Answer a trivia question, or see the scores")
                    .optional(
                        "scores",
                        "scores to see the table",
                        ParamKind::Choice(&["scores"]),
                    )
                    .community_only()
                    .cooldown(Duration::from_secs(5)),
                trivia::trivia,
            ),
            Command::new(
                CommandSpec::new("answer", "Answer a trivia question (what its buttons do)")
                    .param(
                        "question",
                        "The question's number",
                        ParamKind::Integer {
                            min: 1,
                            max: i64::MAX,
                        },
                    )
                    .param(
                        "answer",
                        "The answer's number",
                        ParamKind::Integer {
                            min: 1,
                            max: trivia::ANSWERS as i64,
                        },
                    )
                    .community_only()
                    .buttons_only(),
                trivia::answer,
            ),
        ],
    }
}

async fn ping(_: Ctx) -> CommandResult {
    Ok(Reply::text("Pong!"))
}

async fn roll(ctx: Ctx) -> CommandResult {
    let dice = Dice::parse(ctx.args.req_text("dice")?).map_err(CommandError::Usage)?;
    let roll = dice.roll(|sides| fastrand::u32(1..=sides));
    Ok(Reply::text(roll.to_string()))
}

async fn coinflip(_: Ctx) -> CommandResult {
    let side = if fastrand::bool() { "Heads." } else { "Tails." };
    Ok(Reply::text(side).button("Flip again", "/coinflip"))
}

async fn eight_ball(_: Ctx) -> CommandResult {
    Ok(Reply::text(format!(
        "🎱 {}",
        fastrand::choice(EIGHT_BALL.lines().collect::<Vec<_>>()).unwrap_or("Ask again later.")
    )))
}

async fn choose(ctx: Ctx) -> CommandResult {
    let options = split_options(ctx.args.req_text("options")?).map_err(CommandError::Usage)?;
    Ok(Reply::text(format!(
        "I choose: {}",
        options[fastrand::usize(..options.len())]
    )))
}

fn split_options(text: &str) -> Result<Vec<&str>, String> {
    let options: Vec<&str> = text.split('|').map(str::trim).collect();
    if options.iter().any(|o| o.is_empty()) || options.len() < 2 {
        return Err("give at least two options separated by |, e.g. tea | coffee".into());
    }
    if options.len() > MAX_CHOICES {
        return Err(format!("at most {MAX_CHOICES} options"));
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_8ball_has_answers_and_no_blank_lines() {
        let answers: Vec<&str> = EIGHT_BALL.lines().collect();
        assert!(answers.len() >= 10);
        assert!(answers.iter().all(|a| !a.trim().is_empty()));
    }

    #[test]
    fn choose_needs_two_real_options() {
        assert_eq!(
            split_options(" tea |coffee | a b "),
            Ok(vec!["tea", "coffee", "a b"])
        );
        for bad in ["tea", "tea |", "| coffee", "a || b"] {
            assert!(
                split_options(bad)
                    .unwrap_err()
                    .contains("at least two options"),
                "{bad}"
            );
        }
        assert_eq!(
            split_options(&vec!["x"; 21].join("|")).unwrap_err(),
            "at most 20 options"
        );
    }
}
