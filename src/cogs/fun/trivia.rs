//! `/trivia`: a question from `assets/trivia.txt` with its answers as buttons; the first member
//! to press the right one scores a point in this community, and each member has one try.

use std::sync::LazyLock;

use super::super::{Ctx, stored};
use crate::core::{CommandError, CommandResult, Reply};
use crate::services::trivia::{Answer, Round};

/// The questions, one a line: `question|right|wrong|wrong|wrong`. Embedded, ~25 KB.
const SOURCE: &str = include_str!("../../../assets/trivia.txt");
/// Answers per question, so buttons 1 to 4.
pub const ANSWERS: usize = 4;
/// How many players `/trivia scores` lists.
const TOP: usize = 10;

pub struct Question {
    pub text: &'static str,
    /// The right answer first, as in the file.
    pub answers: [&'static str; ANSWERS],
}

/// Parsed once, on first use; a malformed line is a bug caught by the tests below.
pub static QUESTIONS: LazyLock<Vec<Question>> = LazyLock::new(|| {
    SOURCE
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let mut parts = line.split('|');
            let text = parts.next()?;
            let answers: Vec<&str> = parts.collect();
            Some(Question {
                text,
                answers: answers.try_into().ok()?,
            })
        })
        .collect()
});

impl Question {
    /// The answers in button order when the right one is on button `correct` (0-based): the
    /// wrong ones keep their order around it.
    pub fn shown(&self, correct: usize) -> Vec<&'static str> {
        let mut shown: Vec<&str> = self.answers[1..].to_vec();
        shown.insert(correct.min(shown.len()), self.answers[0]);
        shown
    }
}

pub async fn trivia(ctx: Ctx) -> CommandResult {
    let community = super::super::community(&ctx)?;
    if ctx.args.text("scores").is_some() {
        let top = ctx.state.trivia.top(community, TOP).await.map_err(stored)?;
        if top.is_empty() {
            let hint = format!("Nobody has scored yet. Try {}.", ctx.typed("trivia"));
            return Ok(Reply::text(hint).title("Trivia scores"));
        }
        let lines: Vec<String> = top
            .iter()
            .enumerate()
            .map(|(i, (name, points))| format!("{}. {name}: {points}", i + 1))
            .collect();
        return Ok(Reply::text(lines.join("\n")).title("Trivia scores"));
    }
    let question = fastrand::usize(..QUESTIONS.len());
    let correct = fastrand::usize(..ANSWERS);
    let now = ctx.state.clock.now();
    let round = Round { question, correct };
    let id = ctx
        .state
        .trivia
        .start(community, round, now)
        .await
        .map_err(stored)?;
    let mut reply = Reply::text(QUESTIONS[question].text).title(format!("Trivia #{id}"));
    for (i, answer) in QUESTIONS[question].shown(correct).into_iter().enumerate() {
        reply = reply.button(answer, format!("/answer {id} {}", i + 1));
    }
    Ok(reply)
}

pub async fn answer(ctx: Ctx) -> CommandResult {
    let community = super::super::community(&ctx)?;
    let id = ctx.args.req_int("question")?;
    // The parameter's bounds keep the choice within 1..=ANSWERS.
    let choice = ctx.args.req_int("answer")? as usize - 1;
    let trivia = &ctx.state.trivia;
    let Some(round) = trivia.round(community, id).await.map_err(stored)? else {
        return Err(CommandError::Denied(format!(
            "there is no trivia question #{id} here (questions last a day)"
        )));
    };
    let question = QUESTIONS
        .get(round.question)
        .ok_or_else(|| CommandError::internal("a stored trivia question is out of range"))?;
    let author = &ctx.invocation.author;
    let pressed = question.shown(round.correct)[choice];
    match trivia
        .answer(community, id, author.id, author.name.clone(), choice)
        .await
        .map_err(stored)?
    {
        Ok(Answer::Won { points }) => Ok(Reply::text(format!(
            "{}\n{} got it: {pressed}. ({points} {})",
            question.text,
            author.name,
            if points == 1 { "point" } else { "points" }
        ))
        .title(format!("Trivia #{id}"))
        .button("Another question", "/trivia")
        .replacing()),
        Ok(Answer::Wrong) => Err(CommandError::Denied(format!(
            "{pressed} is not it, {}; that was your one try at #{id}",
            author.name
        ))),
        Err(refused) => Err(CommandError::Denied(refused.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_a_question_with_four_distinct_answers() {
        let lines = SOURCE
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count();
        assert_eq!(QUESTIONS.len(), lines, "a malformed line was skipped");
        assert!(QUESTIONS.len() >= 300, "a few hundred questions");
        for q in QUESTIONS.iter() {
            let mut answers = q.answers.to_vec();
            answers.sort();
            answers.dedup();
            assert_eq!(answers.len(), ANSWERS, "{}", q.text);
            assert!(
                q.answers
                    .iter()
                    .all(|a| !a.trim().is_empty() && a.len() <= 60),
                "{}",
                q.text
            );
        }
        let mut texts: Vec<&str> = QUESTIONS.iter().map(|q| q.text).collect();
        texts.sort();
        texts.dedup();
        assert_eq!(texts.len(), QUESTIONS.len(), "a question appears twice");
    }

    #[test]
    fn the_right_answer_sits_on_its_button() {
        let q = Question {
            text: "?",
            answers: ["right", "w1", "w2", "w3"],
        };
        for correct in 0..ANSWERS {
            assert_eq!(q.shown(correct)[correct], "right");
            assert_eq!(q.shown(correct).len(), ANSWERS);
        }
        assert_eq!(q.shown(2), ["w1", "w2", "right", "w3"]);
    }
}
