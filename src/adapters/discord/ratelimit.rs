//! Discord's REST rate limits, kept by cogbox itself where serenity's own limiter cannot run
//! (see `relay.rs`): a window per route from the `X-RateLimit-*` headers of every response,
//! and the `retry_after` of every 429, global or not.
//!
//! Routes are keyed by method and path rather than by Discord's `X-RateLimit-Bucket` hashes:
//! routes that share a bucket are then limited separately, and the occasional extra 429 this
//! allows is waited out like any other.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode};
use tokio::time::Instant;

/// A 429 whose wait cannot be read waits this long.
const FALLBACK_WAIT: Duration = Duration::from_secs(1);
/// Windows remembered before the expired ones are dropped.
const TIDY_ABOVE: usize = 1024;

#[derive(Default)]
pub struct Limiter {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Window>,
    /// Set by a global 429: no call at all goes out before this.
    global_until: Option<Instant>,
}

/// What Discord last said about a route: this many calls left until `reset_at`.
#[derive(Clone, Copy, Debug)]
struct Window {
    remaining: u32,
    reset_at: Instant,
}

impl Limiter {
    /// Waits until a call on `route` may go out, and counts it against the route's window.
    pub async fn acquire(&self, route: &str) {
        while let Some(until) = self.reserve(route, Instant::now()) {
            tokio::time::sleep_until(until).await;
        }
    }

    /// `None` when the call may go now (and is counted), else when to ask again.
    fn reserve(&self, route: &str, now: Instant) -> Option<Instant> {
        let mut state = self.lock();
        if let Some(until) = state.global_until.filter(|until| *until > now) {
            return Some(until);
        }
        match state.routes.get_mut(route) {
            Some(window) if window.reset_at > now => {
                if window.remaining == 0 {
                    return Some(window.reset_at);
                }
                window.remaining -= 1;
                None
            }
            _ => None,
        }
    }

    /// Learns from the response to a call on `route`. For a 429, returns how long Discord asked
    /// to wait; the next [`acquire`](Self::acquire) on the route waits that long.
    pub fn learn(
        &self,
        route: &str,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Option<Duration> {
        let now = Instant::now();
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        let mut state = self.lock();
        if let (Some(remaining), Some(reset_after)) = (
            number("x-ratelimit-remaining"),
            number("x-ratelimit-reset-after"),
        ) {
            let window = Window {
                remaining: remaining.max(0.0) as u32,
                reset_at: now + seconds(reset_after).unwrap_or(FALLBACK_WAIT),
            };
            state.routes.insert(route.to_owned(), window);
        }
        if state.routes.len() > TIDY_ABOVE {
            state.routes.retain(|_, window| window.reset_at > now);
        }
        if status != StatusCode::TOO_MANY_REQUESTS {
            return None;
        }
        // The body's `retry_after` has millisecond precision; the header is whole seconds.
        let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let wait = json["retry_after"]
            .as_f64()
            .or_else(|| number("retry-after"))
            .and_then(seconds)
            .unwrap_or(FALLBACK_WAIT);
        let global = json["global"].as_bool() == Some(true)
            || headers
                .get("x-ratelimit-global")
                .is_some_and(|v| v == "true");
        if global {
            state.global_until = Some(now + wait);
        } else {
            let window = Window {
                remaining: 0,
                reset_at: now + wait,
            };
            state.routes.insert(route.to_owned(), window);
        }
        Some(wait)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a cache of Discord's answers: a panic mid-update leaves nothing invalid.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn seconds(value: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(value.max(0.0)).ok()
}

/// The key a call is limited by: its method and path, with the ids that do not get limits of
/// their own blanked out. Discord limits each channel, guild and webhook separately (the
/// "major parameters"); a message id or a member id shares its route's limit.
pub fn route(method: &Method, path: &str) -> String {
    let mut key = method.as_str().to_owned();
    let (mut previous, mut before) = ("", "");
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let shown = match (before, previous) {
            (_, "channels" | "guilds" | "webhooks") | ("webhooks", _) => segment,
            // An interaction's id and token are new for every interaction.
            (_, "interactions") => ":id",
            ("interactions", _) => ":token",
            _ if segment.bytes().all(|b| b.is_ascii_digit()) => ":id",
            _ => segment,
        };
        key.push('/');
        key.push_str(shown);
        (before, previous) = (previous, segment);
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (axum::http::HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn routes_keep_only_major_ids() {
        let post = Method::POST;
        assert_eq!(
            route(&post, "/api/v10/channels/123/messages"),
            "POST/api/v10/channels/123/messages"
        );
        assert_eq!(
            route(&Method::DELETE, "/api/v10/channels/123/messages/456"),
            "DELETE/api/v10/channels/123/messages/:id"
        );
        assert_eq!(
            route(&Method::PATCH, "/api/v10/guilds/1/members/2"),
            "PATCH/api/v10/guilds/1/members/:id"
        );
        assert_eq!(
            route(&post, "/api/v10/interactions/99/tok-en/callback"),
            "POST/api/v10/interactions/:id/:token/callback"
        );
        assert_eq!(
            route(&Method::PATCH, "/api/v10/webhooks/7/tok/messages/@original"),
            "PATCH/api/v10/webhooks/7/tok/messages/@original"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_exhausted_window_waits_for_its_reset() {
        let limiter = Limiter::default();
        let start = Instant::now();
        limiter.acquire("r").await;
        let spent = headers(&[
            ("x-ratelimit-remaining", "1"),
            ("x-ratelimit-reset-after", "2.5"),
        ]);
        assert_eq!(limiter.learn("r", StatusCode::OK, &spent, b""), None);
        limiter.acquire("r").await;
        assert_eq!(Instant::now(), start, "one call was left");
        limiter.acquire("other").await;
        assert_eq!(Instant::now(), start, "other routes are not held up");
        limiter.acquire("r").await;
        assert_eq!(Instant::now() - start, Duration::from_millis(2500));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_holds_its_route_for_retry_after() {
        let limiter = Limiter::default();
        let start = Instant::now();
        let body =
            br#"{"message": "You are being rate limited.", "retry_after": 0.75, "global": false}"#;
        let wait = limiter.learn(
            "r",
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[("retry-after", "1")]),
            body,
        );
        assert_eq!(wait, Some(Duration::from_millis(750)), "the body is exact");
        limiter.acquire("other").await;
        assert_eq!(Instant::now(), start);
        limiter.acquire("r").await;
        assert_eq!(Instant::now() - start, Duration::from_millis(750));
    }

    #[tokio::test(start_paused = true)]
    async fn a_global_429_holds_every_route() {
        let limiter = Limiter::default();
        let start = Instant::now();
        let wait = limiter.learn(
            "r",
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[("retry-after", "3"), ("x-ratelimit-global", "true")]),
            b"not json",
        );
        assert_eq!(
            wait,
            Some(Duration::from_secs(3)),
            "the header when the body fails"
        );
        limiter.acquire("another").await;
        assert_eq!(Instant::now() - start, Duration::from_secs(3));
    }
}
