//! Events mode: one axum listener at `[slack.events] listen` with the three request URLs the
//! manifest declares. Every request is checked before anything else looks at it: a declared
//! or actual body over the cap is 413, an unsigned, stale or forged one 401, a malformed
//! timestamp 400 ([`super::signature`]); then a body that is not what the route takes is 400.
//! A valid request is answered at once (Slack waits 3 s) and handled on its own task. Each
//! request needs an intake slot before its body is read; without one, or while stopping, an
//! event is 503 and Slack retries it, while a command (answered "busy" to its caller) or a
//! button press, which Slack never retries, is answered 200 and dropped.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State as AxumState};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::inbound::{Inbound, Inbox, busy};
use super::signature::{MAX_BODY, Rejection, SIGNATURE_HEADER, TIMESTAMP_HEADER, Verifier};
use crate::adapters::{Intake, Launch, StartError};
use crate::config::SlackEventsConfig;
use crate::core::State;

struct Listener<S> {
    verifier: Verifier,
    inbox: Arc<Inbox<S>>,
    intake: Intake,
    tracker: TaskTracker,
    cancel: CancellationToken,
}

/// Which of the three request URLs a request came to.
#[derive(Clone, Copy)]
enum Route {
    Events,
    Commands,
    Interactive,
}

/// Binds the listener and starts serving.
pub async fn start<S: State>(
    config: &SlackEventsConfig,
    verifier: Verifier,
    inbox: Arc<Inbox<S>>,
    intake: Intake,
    launch: &Launch<S>,
) -> Result<(), StartError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError::Config(format!("slack.events.listen {}: {e}", config.listen)))?;
    let state = Arc::new(Listener {
        verifier,
        inbox,
        intake,
        tracker: launch.tracker.clone(),
        cancel: launch.cancel.clone(),
    });
    let app = router(state);
    let cancel = launch.cancel.clone();
    tracing::info!("slack: events listener on {}", config.listen);
    launch.watch("slack events server", async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await
        {
            tracing::error!("slack: events server failed: {e}");
        }
    });
    Ok(())
}

fn router<S: State>(state: Arc<Listener<S>>) -> Router {
    let at = |route: Route| {
        move |AxumState(state): AxumState<Arc<Listener<S>>>, request: Request| {
            receive(state, route, request)
        }
    };
    Router::new()
        .route("/slack/events", post(at(Route::Events)))
        .route("/slack/commands", post(at(Route::Commands)))
        .route("/slack/interactive", post(at(Route::Interactive)))
        .with_state(state)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn rejected(rejection: Rejection) -> Response {
    let status = StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::BAD_REQUEST);
    (status, format!("{rejection:?}")).into_response()
}

async fn receive<S: State>(state: Arc<Listener<S>>, route: Route, request: Request) -> Response {
    let headers = request.headers().clone();
    let declared = header(&headers, CONTENT_LENGTH.as_str()).and_then(|v| v.parse().ok());
    if let Err(rejection) = Verifier::check_length(declared) {
        return rejected(rejection);
    }
    // The slot is taken before the body is read, so at most `limits.max_in_flight` bodies
    // (256 KiB each) are in memory at once, forged ones included. Without one, an event gets
    // no 200, so Slack retries it; a command or a press, which Slack never retries, is
    // answered now (a command as busy, to its caller alone) and dropped.
    let slot = match state.intake.try_take() {
        Some(slot) if !state.cancel.is_cancelled() => slot,
        _ => {
            return match route {
                Route::Events => {
                    (StatusCode::SERVICE_UNAVAILABLE, [(RETRY_AFTER, "1")]).into_response()
                }
                Route::Commands => {
                    let body = busy().to_string();
                    ([(CONTENT_TYPE, "application/json")], body).into_response()
                }
                Route::Interactive => StatusCode::OK.into_response(),
            };
        }
    };
    let Ok(body) = to_bytes(Body::new(request.into_body()), MAX_BODY).await else {
        return rejected(Rejection::TooLarge);
    };
    let checked = state.verifier.verify(
        header(&headers, TIMESTAMP_HEADER),
        header(&headers, SIGNATURE_HEADER),
        &body,
        unix_now(),
    );
    if let Err(rejection) = checked {
        return rejected(rejection);
    }
    let form = header(&headers, CONTENT_TYPE.as_str())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    let inbound = match parse(route, &body, form) {
        Ok(Parsed::Challenge(challenge)) => {
            let body = json!({ "challenge": challenge }).to_string();
            return ([(CONTENT_TYPE, "application/json")], body).into_response();
        }
        Ok(Parsed::Ignored) => return StatusCode::OK.into_response(),
        Ok(Parsed::Inbound(inbound)) => inbound,
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    let inbox = Arc::clone(&state.inbox);
    state
        .tracker
        .spawn(async move { inbox.handle(inbound, slot).await });
    StatusCode::OK.into_response()
}

enum Parsed {
    /// `url_verification`: Slack checks the request URL by this.
    Challenge(String),
    /// Well formed, but nothing cogbox answers (an event type it does not use).
    Ignored,
    Inbound(Inbound),
}

/// What a verified body holds, or why it is not a request this route takes.
fn parse(route: Route, body: &[u8], form: bool) -> Result<Parsed, &'static str> {
    match route {
        Route::Events => {
            let event: Value = serde_json::from_slice(body).map_err(|_| "not JSON")?;
            match event["type"].as_str() {
                Some("url_verification") => event["challenge"]
                    .as_str()
                    .map(|c| Parsed::Challenge(c.to_owned()))
                    .ok_or("no challenge"),
                Some("event_callback") if event["event"].is_object() => {
                    Ok(Parsed::Inbound(Inbound::Event(event)))
                }
                Some("event_callback") => Err("no event"),
                Some(_) => Ok(Parsed::Ignored),
                None => Err("no type"),
            }
        }
        Route::Commands => {
            let fields = form_fields(body, form)?;
            for needed in ["command", "user_id", "channel_id", "team_id"] {
                if !fields.get(needed).is_some_and(Value::is_string) {
                    return Err("not a slash command");
                }
            }
            Ok(Parsed::Inbound(Inbound::Command(Value::Object(fields))))
        }
        Route::Interactive => {
            let fields = form_fields(body, form)?;
            let payload = fields
                .get("payload")
                .and_then(Value::as_str)
                .ok_or("no payload")?;
            let payload: Value = serde_json::from_str(payload).map_err(|_| "payload not JSON")?;
            if !payload["type"].is_string() {
                return Err("payload without a type");
            }
            Ok(Parsed::Inbound(Inbound::Interaction(payload)))
        }
    }
}

/// A form body as a JSON object of strings.
fn form_fields(body: &[u8], form: bool) -> Result<Map<String, Value>, &'static str> {
    if !form {
        return Err("not form-encoded");
    }
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|_| "malformed form")?;
    Ok(pairs
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(parsed: Result<Parsed, &'static str>) -> String {
        match parsed {
            Ok(Parsed::Challenge(c)) => format!("challenge {c}"),
            Ok(Parsed::Ignored) => "ignored".into(),
            Ok(Parsed::Inbound(Inbound::Command(_))) => "command".into(),
            Ok(Parsed::Inbound(Inbound::Event(_))) => "event".into(),
            Ok(Parsed::Inbound(Inbound::Interaction(_))) => "interaction".into(),
            Err(why) => format!("400 {why}"),
        }
    }

    #[test]
    fn each_route_takes_only_its_own_kind_of_body() {
        let events = |body: &str| kind(parse(Route::Events, body.as_bytes(), false));
        assert_eq!(
            events(r#"{"type":"url_verification","challenge":"abc"}"#),
            "challenge abc"
        );
        assert_eq!(events(r#"{"type":"event_callback","event":{}}"#), "event");
        assert_eq!(events(r#"{"type":"event_callback"}"#), "400 no event");
        assert_eq!(events(r#"{"type":"app_rate_limited"}"#), "ignored");
        assert_eq!(events("{not json"), "400 not JSON");

        let command = "command=%2Fcogbox&text=roll+2d6&user_id=U1&channel_id=C1&team_id=T1";
        assert_eq!(
            kind(parse(Route::Commands, command.as_bytes(), true)),
            "command"
        );
        assert_eq!(
            kind(parse(Route::Commands, command.as_bytes(), false)),
            "400 not form-encoded"
        );
        assert_eq!(
            kind(parse(Route::Commands, b"text=roll", true)),
            "400 not a slash command"
        );

        let press = "payload=%7B%22type%22%3A%22block_actions%22%7D";
        assert_eq!(
            kind(parse(Route::Interactive, press.as_bytes(), true)),
            "interaction"
        );
        assert_eq!(
            kind(parse(Route::Interactive, b"payload=%7Bnope", true)),
            "400 payload not JSON"
        );
        assert_eq!(
            kind(parse(Route::Interactive, b"x=1", true)),
            "400 no payload"
        );
    }
}
