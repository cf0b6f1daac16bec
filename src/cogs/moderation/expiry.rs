//! The end of a timed mute or ban: a durable scheduler job per action, so it is lifted on every
//! platform (a Discord ban has no end date of its own) even when cogbox was stopped across the
//! expiry. The lift is a case of its own (one however often it is retried), made on behalf of
//! the moderator who acted.
//!
//! A lift whose every attempt failed (the platform was down for hours) would leave the member
//! muted or banned for good, so the periodic `expiries` job ([`catch_up`]) starts it again, for
//! actions that ended within [`CATCH_UP_FOR`].

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Audited, audited_case};
use crate::core::{CommunityId, Member, ModAction, UserId};
use crate::services::Services;
use crate::services::cases::{CaseAction, NewCase, TimedAction};
use crate::services::scheduler::{JobContext, JobError, JobState, Scheduler};

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

/// How long after its end a timed action that was never lifted is still lifted by
/// [`catch_up`]: long enough for any outage, short enough that a lift the platform refuses
/// for good (the member left) is not tried for ever.
pub const CATCH_UP_FOR: chrono::TimeDelta = chrono::TimeDelta::days(3);

pub fn register(scheduler: &Scheduler) {
    scheduler.register(LIFT, lift);
    scheduler.on_expiry("moderation: timed actions never lifted", catch_up);
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
    let timed = TimedAction {
        case: done.case,
        community: done.community,
        action: CaseAction::of(action),
        actor: done.actor.clone(),
        target: done.target.clone(),
    };
    schedule_lift(services, &timed, &ends, at).await
}

async fn schedule_lift(
    services: &Services,
    timed: &TimedAction,
    ends: &ModAction,
    at: DateTime<Utc>,
) -> Result<(), crate::services::StoreError> {
    let lift = Lift {
        platform: timed.community.platform.as_str().into(),
        community: timed.community.raw_text(),
        actor: timed.actor.id.raw_text(),
        actor_name: timed.actor.name.clone(),
        target: timed.target.id.raw_text(),
        target_name: timed.target.name.clone(),
        action: ends.verb().into(),
        case: timed.case,
    };
    let payload = serde_json::to_value(lift).unwrap_or(Value::Null);
    services.scheduler.schedule(LIFT, at, payload).await?;
    Ok(())
}

/// The most lift jobs read to tell which overdue actions are already being lifted; there is
/// one per timed action in progress.
const LIFTS_READ: usize = 10_000;

/// Starts again the lift of every timed action that ended within [`CATCH_UP_FOR`] and was
/// never lifted, unless a lift of it is still waiting or running.
async fn catch_up(ctx: JobContext, _: Value) -> Result<(), JobError> {
    let services = &ctx.services;
    let now = services.clock.now();
    let overdue = services.cases.overdue(now - CATCH_UP_FOR, now).await?;
    if overdue.is_empty() {
        return Ok(());
    }
    let waiting: HashSet<i64> = services
        .scheduler
        .list(LIFT, None, LIFTS_READ)
        .await?
        .into_iter()
        .filter(|job| job.state != JobState::Failed)
        .filter_map(|job| job.payload["case"].as_i64())
        .collect();
    for timed in overdue.iter().filter(|t| !waiting.contains(&t.case)) {
        let ends = match timed.action {
            CaseAction::Mute => ModAction::Unmute,
            _ => ModAction::Unban,
        };
        tracing::info!(
            case = timed.case,
            "lifting a timed {} that was never lifted",
            timed.action.as_str()
        );
        schedule_lift(services, timed, &ends, now).await?;
    }
    Ok(())
}

async fn lift(ctx: JobContext, payload: Value) -> Result<(), JobError> {
    let invalid = |e: String| JobError::Invalid(format!("{LIFT}: {e}"));
    let lift: Lift = serde_json::from_value(payload).map_err(|e| invalid(e.to_string()))?;
    let services = &ctx.services;
    if services.cases.superseded(lift.case).await? {
        tracing::info!(case = lift.case, "not lifted: a later case replaced it");
        return Ok(());
    }
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
            None,
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::cogs::moderation::audited;
    use crate::core::{ManualClock, PlatformKind, Platforms};
    use crate::services::Store;
    use crate::services::cases::Outcome;
    use crate::services::scheduler::JobId;
    use serde_json::json;

    fn member(raw: i64, name: &str) -> Member {
        Member {
            id: UserId::new(PlatformKind::Discord, raw),
            name: name.into(),
            is_bot: false,
        }
    }

    fn services(now: DateTime<Utc>) -> Arc<Services> {
        Arc::new(Services::new(
            Store::in_memory().unwrap(),
            Vec::new(),
            Arc::new(ManualClock::new(now)),
            Arc::new(Platforms::default()),
        ))
    }

    fn case(action: CaseAction, target: i64) -> NewCase {
        NewCase {
            community: CommunityId::new(PlatformKind::Discord, 10),
            action,
            actor: member(1, "@mod"),
            target: member(target, "@bob"),
            reason: None,
            duration: Some(Duration::from_secs(600)),
        }
    }

    /// The lift jobs waiting, as (case, action, due).
    async fn lifts(services: &Services) -> Vec<(i64, String, DateTime<Utc>)> {
        let jobs = services.scheduler.list(LIFT, None, 10).await.unwrap();
        let mut lifts: Vec<_> = jobs
            .into_iter()
            .map(|j| {
                (
                    j.payload["case"].as_i64().unwrap(),
                    j.payload["action"].as_str().unwrap().to_owned(),
                    j.due,
                )
            })
            .collect();
        lifts.sort();
        lifts
    }

    /// A timed mute or ban is lifted by a job due at its end: the periodic catch-up would lift
    /// it too, but only at its next run, so without the job a 10-minute mute could last hours.
    #[tokio::test]
    async fn a_timed_mute_or_ban_schedules_its_lift_at_its_end_and_other_actions_none() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let services = services(now);
        let end = now + chrono::Duration::minutes(10);
        let ten = Duration::from_secs(600);
        let actions = [
            (ModAction::Mute(ten), Some("unmute")),
            (ModAction::Ban(Some(ten)), Some("unban")),
            (ModAction::Ban(None), None),
            (ModAction::Kick, None),
        ];
        for (n, (action, lift)) in actions.into_iter().enumerate() {
            let case = case(CaseAction::of(&action), 2 + n as i64);
            let done = audited(&services, case).await.unwrap();
            schedule(&services, &done, &action, end).await.unwrap();
            let jobs = services.scheduler.list(LIFT, None, 10).await.unwrap();
            let scheduled = jobs.iter().find(|j| j.payload["case"] == done.case);
            match lift {
                Some(verb) => {
                    let job = scheduled.unwrap_or_else(|| panic!("no lift for {action:?}"));
                    assert_eq!((job.due, job.payload["action"].as_str()), (end, Some(verb)));
                    assert_eq!(job.payload["target"], (2 + n).to_string());
                }
                None => assert!(scheduled.is_none(), "{action:?} ends by itself or never"),
            }
        }
    }

    /// A lift of a mute or ban that a later case replaced does nothing: a longer `/mute` after
    /// a short one, a permanent `/ban` after a timed one, or an `/unmute` already done. A later
    /// action that failed replaces nothing. (No platform is connected here: a lift that goes
    /// ahead fails for want of one.)
    #[tokio::test]
    async fn a_lift_of_an_action_a_later_case_replaced_does_nothing() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let services = services(now);
        let cases = &services.cases;
        let ctx = || JobContext {
            services: Arc::clone(&services),
            id: JobId(0),
            attempt: 1,
            due: now,
        };
        let lift_of = |case: i64, target: i64, action: &str| {
            json!({"platform": "discord", "community": "10", "actor": "1", "actor_name": "@mod",
                   "target": target.to_string(), "target_name": "@bob", "action": action,
                   "case": case})
        };
        let taken = |action, target, outcome| async move {
            let id = cases.open(case(action, target), now).await.unwrap();
            cases.finish(id, outcome).await.unwrap();
            id
        };
        let failed = || Outcome::Failed("refused".into());
        for (n, (first, later, outcome, lifted)) in [
            (CaseAction::Mute, CaseAction::Mute, Outcome::Done, false),
            (CaseAction::Ban, CaseAction::Ban, Outcome::Done, false),
            (CaseAction::Mute, CaseAction::Unmute, Outcome::Done, false),
            (CaseAction::Ban, CaseAction::Ban, failed(), true),
            (CaseAction::Mute, CaseAction::Unmute, failed(), true),
            (CaseAction::Mute, CaseAction::Ban, Outcome::Done, true),
        ]
        .into_iter()
        .enumerate()
        {
            let target = 2 + n as i64;
            let id = taken(first, target, Outcome::Done).await;
            taken(later, target, outcome.clone()).await;
            let verb = if first == CaseAction::Mute {
                "unmute"
            } else {
                "unban"
            };
            let result = lift(ctx(), lift_of(id, target, verb)).await;
            assert_eq!(
                result.is_err(),
                lifted,
                "{first:?} then {later:?} ({outcome:?})"
            );
        }
        let alone = taken(CaseAction::Mute, 1, Outcome::Done).await;
        assert!(lift(ctx(), lift_of(alone, 1, "unmute")).await.is_err());
    }

    /// The catch-up lifts what ended without a lift (its job lost, or the action from before
    /// cogbox scheduled lifts): only within [`CATCH_UP_FOR`], and never twice.
    #[tokio::test]
    async fn the_catch_up_lifts_each_timed_action_that_ended_unlifted_once() {
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let now = start + chrono::Duration::days(4);
        let services = services(now);
        let cases = &services.cases;
        let mut opened = Vec::new();
        for (n, (action, at)) in [
            (CaseAction::Mute, now - chrono::Duration::hours(1)),
            (CaseAction::Ban, now - chrono::Duration::days(2)),
            (CaseAction::Mute, now - chrono::Duration::hours(2)),
            (CaseAction::Ban, start),
        ]
        .into_iter()
        .enumerate()
        {
            let id = cases.open(case(action, 2 + n as i64), at).await.unwrap();
            cases.finish(id, Outcome::Done).await.unwrap();
            opened.push(id);
        }
        // The third is being lifted already.
        let waiting = now + chrono::Duration::minutes(5);
        let job = json!({"case": opened[2], "action": "unmute"});
        services
            .scheduler
            .schedule(LIFT, waiting, job)
            .await
            .unwrap();
        let ctx = || JobContext {
            services: Arc::clone(&services),
            id: JobId(0),
            attempt: 1,
            due: now,
        };
        catch_up(ctx(), Value::Null).await.unwrap();
        let expected = [
            (opened[0], "unmute".to_owned(), now),
            (opened[1], "unban".to_owned(), now),
            (opened[2], "unmute".to_owned(), waiting),
        ];
        assert_eq!(
            lifts(&services).await,
            expected,
            "the 4-day-old ban is left"
        );
        catch_up(ctx(), Value::Null).await.unwrap();
        assert_eq!(lifts(&services).await, expected, "nothing is lifted twice");
    }
}
