//! The webhook: an axum route at `<public path>/webhook/<path token>` that only Telegram can
//! drive. A wrong path is 404, a missing or wrong secret header 401 (both compared in constant
//! time), an oversized body 413, a body that is no update 400; a valid update is answered 200
//! at once and handled on its own task, if there is a free intake slot. Without one, or once
//! the bot is stopping, it is 503 with `Retry-After`: Telegram keeps the update and delivers it
//! again. The webhook is left set on shutdown, so updates queue at Telegram while the bot
//! restarts.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, Request, State as AxumState};
use axum::http::{
    HeaderMap, StatusCode,
    header::{CONTENT_LENGTH, RETRY_AFTER},
};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use teloxide::Bot;
use teloxide::payloads::SetWebhookSetters;
use teloxide::requests::Requester;
use teloxide::types::Update;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::allowed_updates;
use super::updates::Inbox;
use crate::adapters::{Intake, Launch, StartError};
use crate::config::WebhookConfig;
use crate::core::State;

/// Updates are a few kilobytes; anything near this is not from Telegram.
pub const MAX_BODY: usize = 256 * 1024;
const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

struct Hook<S> {
    path_token: String,
    secret: SecretString,
    inbox: Arc<Inbox<S>>,
    intake: Intake,
    tracker: TaskTracker,
    cancel: CancellationToken,
}

/// Binds the listener, registers the webhook with Telegram and starts serving.
pub async fn start<S: State>(
    bot: &Bot,
    config: &WebhookConfig,
    inbox: Arc<Inbox<S>>,
    intake: Intake,
    launch: &Launch<S>,
) -> Result<(), StartError> {
    let (Some(public), Some(secret)) = (config.public_url.as_deref(), config.secret_token.clone())
    else {
        return Err(StartError::Config(
            "telegram webhook mode needs telegram.webhook.public_url and secret_token".into(),
        ));
    };
    let path_token = path_token(&secret);
    let public = public.trim_end_matches('/');
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| {
            StartError::Config(format!("telegram.webhook.listen {}: {e}", config.listen))
        })?;
    let url = format!("{public}/webhook/{path_token}")
        .parse()
        .map_err(|e| {
            StartError::Config(format!("telegram.webhook.public_url \"{public}\": {e}"))
        })?;
    bot.set_webhook(url)
        .secret_token(secret.expose_secret().to_owned())
        .allowed_updates(allowed_updates())
        .drop_pending_updates(config.drop_pending_updates)
        .await
        .map_err(|e| StartError::Failed(format!("telegram: setWebhook failed: {e}")))?;

    let hook = Hook {
        path_token,
        secret,
        inbox,
        intake,
        tracker: launch.tracker.clone(),
        cancel: launch.cancel.clone(),
    };
    let app = router(public_path(public), hook);
    let cancel = launch.cancel.clone();
    tracing::info!("telegram: webhook listening on {}", config.listen);
    launch.watch("telegram webhook server", async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await
        {
            tracing::error!("telegram: webhook server failed: {e}");
        }
    });
    Ok(())
}

/// The path part of the public URL, which a reverse proxy passes on unchanged.
fn public_path(public: &str) -> &str {
    let rest = public.split_once("://").map_or(public, |(_, rest)| rest);
    rest.find('/').map_or("", |at| &rest[at..])
}

/// A second secret in the path, derived from the header secret so there is nothing more to
/// configure: requests that do not know it get 404 before anything else is looked at.
fn path_token(secret: &SecretString) -> String {
    let mut input = b"cogbox webhook path\0".to_vec();
    input.extend_from_slice(secret.expose_secret().as_bytes());
    let digest = ring::digest::digest(&ring::digest::SHA256, &input);
    digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn router<S: State>(prefix: &str, hook: Hook<S>) -> Router {
    Router::new()
        .route(&format!("{prefix}/webhook/{{token}}"), post(receive::<S>))
        .with_state(Arc::new(hook))
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

async fn receive<S: State>(
    AxumState(hook): AxumState<Arc<Hook<S>>>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    if let Err(status) = accept(&hook, &token, request.headers()) {
        return status.into_response();
    }
    // No slot, no 200: an update answered 200 is one the bot has promised to handle.
    let slot = match hook.intake.try_take() {
        Some(slot) if !hook.cancel.is_cancelled() => slot,
        _ => return come_back_later(),
    };
    let Ok(body) = to_bytes(Body::new(request.into_body()), MAX_BODY).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let Ok(update) = serde_json::from_slice::<Update>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    hook.inbox.observe(&update).await;
    let inbox = Arc::clone(&hook.inbox);
    hook.tracker
        .spawn(async move { inbox.handle(update, slot).await });
    StatusCode::OK.into_response()
}

/// Full, or stopping: Telegram keeps the update and tries again.
fn come_back_later() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, [(RETRY_AFTER, "1")]).into_response()
}

/// Everything checked before the body is read.
fn accept<S>(hook: &Hook<S>, token: &str, headers: &HeaderMap) -> Result<(), StatusCode> {
    if !same(token.as_bytes(), hook.path_token.as_bytes()) {
        return Err(StatusCode::NOT_FOUND);
    }
    let given = headers
        .get(SECRET_HEADER)
        .map_or(&b""[..], |v| v.as_bytes());
    if !same(given, hook.secret.expose_secret().as_bytes()) {
        return Err(StatusCode::UNAUTHORIZED);
    }
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|len| len > MAX_BODY) {
        return Err(StatusCode::PAYLOAD_TOO_LARGE);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_token_is_stable_secret_dependent_and_url_safe() {
        let a = path_token(&"secret-one".into());
        assert_eq!(a, path_token(&"secret-one".into()));
        assert_ne!(a, path_token(&"secret-two".into()));
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn the_route_keeps_the_public_path() {
        assert_eq!(public_path("https://bot.example.com"), "");
        assert_eq!(public_path("https://bot.example.com/tg"), "/tg");
    }

    /// A hook in front of a bot with no commands, whose Telegram is nowhere.
    fn hook(cancel: CancellationToken) -> Arc<Hook<NoCommands>> {
        let quota = crate::core::RateQuota {
            commands: std::num::NonZeroU32::new(10).unwrap(),
            window: std::time::Duration::from_secs(1),
        };
        let dispatcher = crate::core::Dispatcher::new(vec![], Arc::new(NoCommands), quota).unwrap();
        let bot = Bot::new("1:test").set_api_url("http://127.0.0.1:9".parse().unwrap());
        let platform =
            super::super::platform::TelegramPlatform::new(bot, teloxide::types::UserId(1));
        let secret: SecretString = "hook-secret".into();
        Arc::new(Hook {
            path_token: path_token(&secret),
            secret,
            inbox: Arc::new(Inbox::new(
                Arc::new(dispatcher),
                Arc::new(platform),
                "bot".into(),
            )),
            intake: Intake::new("telegram", 4),
            tracker: TaskTracker::new(),
            cancel,
        })
    }

    struct NoCommands;

    #[async_trait::async_trait]
    impl State for NoCommands {
        fn is_owner(&self, _: crate::core::UserId) -> bool {
            false
        }
        async fn cog_enabled(
            &self,
            _: crate::core::CommunityId,
            _: &str,
        ) -> Result<bool, crate::core::BoxError> {
            Ok(true)
        }
    }

    async fn post(hook: &Arc<Hook<NoCommands>>) -> Response {
        let update = r#"{"update_id": 7, "message": {"message_id": 1, "date": 0,
            "chat": {"id": 5, "type": "private", "first_name": "A"},
            "from": {"id": 5, "is_bot": false, "first_name": "A"}, "text": "hello"}}"#;
        let request = Request::builder()
            .method("POST")
            .header(SECRET_HEADER, "hook-secret")
            .body(Body::from(update))
            .unwrap();
        let token = hook.path_token.clone();
        receive(AxumState(Arc::clone(hook)), Path(token), request).await
    }

    #[tokio::test]
    async fn once_the_bot_is_stopping_updates_are_left_with_telegram() {
        let cancel = CancellationToken::new();
        let hook = hook(cancel.clone());
        assert_eq!(post(&hook).await.status(), StatusCode::OK);
        cancel.cancel();
        let refused = post(&hook).await;
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            refused.headers()[RETRY_AFTER],
            "1",
            "Telegram sends it again"
        );
        hook.tracker.close();
        hook.tracker.wait().await;
    }
}
