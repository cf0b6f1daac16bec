//! `/remind`, `/reminders`, `/unremind`: each reminder is a scheduler job owned by the member
//! who asked, so it survives restarts and is delivered where it was asked (or, if that chat
//! is out of reach, by direct message).

use std::time::Duration;

use chrono::DateTime;
use serde_json::Value;

use super::super::{Ctx, stored};
use crate::core::{
    ChannelId, CommandError, CommandResult, PlatformError, PlatformKind, Reply, UserId, duration,
};
use crate::services::reminders::{KIND, MAX_PER_USER, Reminder, list, owner};
use crate::services::scheduler::{JobContext, JobError, JobId, Scheduler};

/// The longest wait a reminder takes.
pub const MAX_WAIT: Duration = Duration::from_secs(365 * 86_400);
pub const MAX_TEXT_CHARS: usize = 500;

fn message(reminder: &Reminder) -> Reply {
    Reply::text(format!("Reminder for {}: {}", reminder.name, reminder.text))
}

pub async fn remind(ctx: Ctx) -> CommandResult {
    let wait = ctx.args.req_duration("duration")?;
    let text = ctx.args.req_text("text")?.trim();
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(CommandError::usage(format!(
            "a reminder is at most {MAX_TEXT_CHARS} characters"
        )));
    }
    let author = &ctx.invocation.author;
    let scheduler = &ctx.state.scheduler;
    let waiting = scheduler
        .list(KIND, Some(&owner(author.id)), MAX_PER_USER)
        .await
        .map_err(stored)?;
    if waiting.len() >= MAX_PER_USER {
        return Err(CommandError::Denied(format!(
            "you have {MAX_PER_USER} reminders waiting already; {} one first",
            ctx.typed("unremind")
        )));
    }
    let reminder = Reminder {
        platform: ctx.invocation.platform().as_str().to_owned(),
        channel: ctx.invocation.channel.raw,
        community: ctx.invocation.community.map(|c| c.raw),
        user: author.id.raw,
        name: author.name.clone(),
        text: text.to_owned(),
    };
    let due = ctx.state.clock.now() + chrono::Duration::from_std(wait).unwrap_or_default();
    let payload = serde_json::to_value(&reminder).expect("a reminder serializes");
    let id = scheduler
        .schedule_for(&owner(author.id), KIND, due, payload)
        .await
        .map_err(stored)?;
    Ok(Reply::text(format!(
        "I'll remind you in {} (reminder #{id}).",
        duration::format(wait)
    )))
}

/// The caller's reminders asked for in this chat's community (or in direct chats, there).
pub async fn reminders(ctx: Ctx) -> CommandResult {
    let now = ctx.state.clock.now();
    let here = ctx.invocation.community.map(|c| c.raw);
    let mine = list(&ctx.state.scheduler, ctx.invocation.author.id)
        .await
        .map_err(stored)?;
    let lines: Vec<String> = mine
        .iter()
        .filter(|(_, r)| r.community == here)
        .map(|(job, r)| {
            let left = (job.due - now).to_std().unwrap_or_default();
            format!(
                "#{} in {}: {}",
                job.id,
                duration::format(round_up(left)),
                r.text
            )
        })
        .collect();
    if lines.is_empty() {
        return Ok(Reply::text(format!(
            "You have no reminders here. Set one with {}.",
            ctx.typed("remind 10m tea")
        )));
    }
    Ok(Reply::text(lines.join("\n")).title("Your reminders"))
}

pub async fn unremind(ctx: Ctx) -> CommandResult {
    let id = ctx.args.req_int("id")?;
    let author = ctx.invocation.author.id;
    if ctx
        .state
        .scheduler
        .cancel_owned(&owner(author), JobId(id))
        .await
        .map_err(stored)?
    {
        Ok(Reply::text(format!("Reminder #{id} cancelled.")))
    } else {
        Err(CommandError::usage(format!("you have no reminder #{id}")))
    }
}

/// Whole minutes, rounded up, so "in 10m" stays "10m" for the minute after it was set.
fn round_up(wait: Duration) -> Duration {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Duration::from_secs(secs.div_ceil(60) * 60)
}

/// Delivers a reminder that fell due: in the chat it was asked in; if the platform refuses
/// that (the bot left the group), to the member directly. A failure to reach the platform at
/// all is retried by the scheduler.
pub async fn deliver(ctx: JobContext, payload: Value) -> Result<(), JobError> {
    let reminder: Reminder =
        serde_json::from_value(payload).map_err(|e| JobError::Invalid(format!("reminder: {e}")))?;
    let kind: PlatformKind = reminder.platform.parse().map_err(JobError::Invalid)?;
    let platform = ctx.platform(kind)?;
    let message = message(&reminder);
    let channel = ChannelId::from_raw(kind, reminder.channel);
    match platform.send(channel, &message).await {
        Ok(()) => Ok(()),
        Err(PlatformError::Refused(why)) => {
            tracing::info!(%channel, "reminder: {why}; sending it by direct message");
            let user = UserId::from_raw(kind, reminder.user);
            Ok(platform.direct_message(user, &message).await?)
        }
        Err(e) => Err(e.into()),
    }
}

/// The job kind that closes a poll when its time is up.
pub const CLOSE_POLL: &str = "poll_close";

/// Closes the poll in the payload and posts its final counts where it was asked. Only this job
/// closes polls, so a retry (the post failed) posts them then; a channel that refuses the
/// post (the bot was removed) is not asked again.
pub async fn close_poll(ctx: JobContext, payload: Value) -> Result<(), JobError> {
    let id = payload["poll"]
        .as_i64()
        .ok_or_else(|| JobError::Invalid(format!("poll_close: no poll in {payload}")))?;
    let platform_kind = payload["platform"]
        .as_str()
        .and_then(|p| p.parse::<PlatformKind>().ok())
        .ok_or_else(|| JobError::Invalid(format!("poll_close: no platform in {payload}")))?;
    // The platform first: a poll closed while its platform was unreachable would never be
    // announced.
    let platform = ctx.platform(platform_kind)?;
    let Some(poll) = ctx.services.polls.close(id).await? else {
        return Ok(());
    };
    let now = DateTime::max(ctx.services.clock.now(), ctx.due);
    let reply = super::poll::render(&poll, now);
    match platform.send(poll.channel, &reply).await {
        Err(PlatformError::Refused(why)) => {
            tracing::warn!(poll = id, "the poll's result was not posted: {why}");
            Ok(())
        }
        posted => Ok(posted?),
    }
}

/// The scheduled work of the fun cog, registered once at start-up.
pub fn register(scheduler: &Scheduler) {
    scheduler.register(KIND, deliver);
    scheduler.register(CLOSE_POLL, close_poll);
}
