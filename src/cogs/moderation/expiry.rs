//! The end of a timed mute or ban: a durable scheduler job per action, so it is lifted on every
//! platform (a Discord ban has no end date of its own) even when cogbox was stopped across the
//! expiry. The lift is a case of its own (one however often it is retried), made on behalf of
//! the moderator who acted.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Audited, audited_case};
use crate::core::{CommunityId, Member, ModAction, UserId};
use crate::services::Services;
use crate::services::cases::{CaseAction, NewCase};
use crate::services::scheduler::{JobContext, JobError, Scheduler};

/// The job kind, registered at start-up.
pub const LIFT: &str = "moderation.lift";

/// A lift as the job's payload stores it; ids as text, like every table.
#[derive(Debug, Deserialize, Serialize)]
struct Lift {
    platform: String,
    community: String,
    actor: String,
    actor_name: String,
    target: String,
    target_name: String,
    /// `unmute` or `unban`.
    action: String,
    /// The case that ends.
    case: i64,
}

pub fn register(scheduler: &Scheduler) {
    scheduler.register(LIFT, lift);
}

/// Schedules the end of a timed action (case `case`) for `at`; other actions need none.
pub async fn schedule(
    services: &Services,
    done: &Audited,
    action: &ModAction,
    at: DateTime<Utc>,
) -> Result<(), crate::services::StoreError> {
    let ends = match action {
        ModAction::Mute(_) => ModAction::Unmute,
        ModAction::Ban(Some(_)) => ModAction::Unban,
        _ => return Ok(()),
    };
    let lift = Lift {
        platform: done.community.platform.as_str().into(),
        community: done.community.raw_text(),
        actor: done.actor.id.raw_text(),
        actor_name: done.actor.name.clone(),
        target: done.target.id.raw_text(),
        target_name: done.target.name.clone(),
        action: ends.verb().into(),
        case: done.case,
    };
    let payload = serde_json::to_value(lift).unwrap_or(Value::Null);
    services.scheduler.schedule(LIFT, at, payload).await?;
    Ok(())
}

async fn lift(ctx: JobContext, payload: Value) -> Result<(), JobError> {
    let invalid = |e: String| JobError::Invalid(format!("{LIFT}: {e}"));
    let lift: Lift = serde_json::from_value(payload).map_err(|e| invalid(e.to_string()))?;
    let community = CommunityId::from_raw_text(&lift.platform, &lift.community).map_err(invalid)?;
    let member = |id: &str, name: String| {
        UserId::from_raw_text(&lift.platform, id).map(|id| Member {
            id,
            name,
            // Only payments ask; a lift makes none.
            is_bot: false,
        })
    };
    let actor = member(&lift.actor, lift.actor_name.clone()).map_err(invalid)?;
    let target = member(&lift.target, lift.target_name.clone()).map_err(invalid)?;
    let action = match lift.action.as_str() {
        "unmute" => ModAction::Unmute,
        "unban" => ModAction::Unban,
        other => return Err(invalid(format!("cannot lift with \"{other}\""))),
    };
    let platform = ctx.platform(community.platform)?;
    let services = &ctx.services;
    let reason = format!("case #{} expired", lift.case);
    let case = NewCase {
        community,
        action: CaseAction::of(&action),
        actor,
        target,
        reason: Some(reason.clone()),
        duration: None,
    };
    let opened = services
        .cases
        .open_lift(case.clone(), lift.case, services.clock.now())
        .await?;
    // Each attempt is its own audit row: each is a call to the platform.
    let done = audited_case(services, case, Some(opened)).await?;
    let result = platform
        .moderate(
            community,
            done.actor.id,
            &done.target,
            &action,
            Some(&reason),
            None,
        )
        .await;
    done.finish(services, &result).await?;
    result.map(drop).map_err(JobError::from)
}
