//! A small Slack Web API client on the reqwest the binary already carries (see the module docs
//! of [`super`] for why not slack-morphism): form-encoded calls with the token in the
//! `Authorization` header, Slack's per-method rate tiers kept before each call, `chat.postMessage`
//! paced per channel, and a 429's `Retry-After` waited out.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::DefaultClock;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// Every call gives up after this long; Slack answers in well under a second.
const HTTP_TIMEOUT: Duration = Duration::from_secs(20);
/// Tries of one call that keeps meeting 429s before it fails.
const MAX_ATTEMPTS: u32 = 4;
/// A 429 without a readable `Retry-After` waits this long; a longer one is capped here so that
/// one call never holds a command for minutes.
const DEFAULT_WAIT: Duration = Duration::from_secs(1);
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Channels whose posting pace is remembered before idle ones are forgotten: at most this many
/// keys of a few dozen bytes each (about 100 KB).
const PACED_CHANNELS: usize = 2048;

type Direct = RateLimiter<NotKeyed, InMemoryState, DefaultClock, NoOpMiddleware>;
type Keyed = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, NoOpMiddleware>;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Slack answered `{"ok": false, "error": code}`; `needed` is the scope a
    /// `missing_scope` names.
    #[error("{method}: {code}")]
    Slack {
        method: &'static str,
        code: String,
        needed: Option<String>,
    },
    /// Still rate-limited after [`MAX_ATTEMPTS`] tries.
    #[error("{0}: still rate-limited after {MAX_ATTEMPTS} tries")]
    RateLimited(&'static str),
    /// An HTTP status that is neither success nor a Slack error (a proxy in front of Slack).
    #[error("{0}: HTTP {1}")]
    Status(&'static str, u16),
    /// Slack could not be reached, or answered something that is not JSON.
    #[error("{0}: {1}")]
    Network(&'static str, String),
}

impl ApiError {
    /// Slack's error code, if Slack gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Slack { code, .. } => Some(code),
            _ => None,
        }
    }

    /// A token Slack will never take again: the bot must stop, not retry.
    pub fn is_auth(&self) -> bool {
        matches!(
            self.code(),
            Some(
                "invalid_auth"
                    | "not_authed"
                    | "token_revoked"
                    | "token_expired"
                    | "account_inactive"
                    | "not_allowed_token_type"
            )
        )
    }
}

/// Slack's documented tiers (calls per minute) for the methods cogbox uses. Each limiter lets a
/// short burst through and then the rest of the minute's share, so that no 60-second window
/// holds more than the tier allows.
fn tier(method: &str) -> (u32, u32) {
    match method {
        // Tier 1 (1+ per minute): a few reconnections in a row go at once, then one a minute.
        "apps.connections.open" => (4, 1),
        // Tier 3 (50+ per minute).
        "chat.update"
        | "conversations.info"
        | "conversations.kick"
        | "conversations.open"
        | "users.conversations" => (10, 40),
        // Tier 4 (100+): users.info, chat.postEphemeral; and auth.test.
        _ => (20, 80),
    }
}

pub struct Api {
    http: reqwest::Client,
    base: String,
    bot_token: SecretString,
    methods: HashMap<&'static str, Direct>,
    /// `chat.postMessage`: about one message a second per channel, as Slack asks.
    channels: Keyed,
    posts: AtomicU64,
    /// 429s met since the last once-a-minute summary.
    pub rate_limited: AtomicU64,
}

/// The methods the adapter calls; a call to any other is a programming error caught by tests.
pub const METHODS: &[&str] = &[
    "auth.test",
    "apps.connections.open",
    "chat.postMessage",
    "chat.postEphemeral",
    "chat.update",
    "conversations.info",
    "conversations.kick",
    "conversations.open",
    "users.conversations",
    "users.info",
];

impl Api {
    pub fn new(base: &str, bot_token: SecretString) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        let methods = METHODS
            .iter()
            .filter(|&&method| method != "chat.postMessage")
            .map(|&method| {
                let (burst, per_minute) = tier(method);
                let quota = Quota::with_period(Duration::from_secs(60) / per_minute)
                    .expect("a non-zero period")
                    .allow_burst(NonZeroU32::new(burst).expect("a non-zero burst"));
                (method, RateLimiter::direct(quota))
            })
            .collect();
        // One message, then one every 1.1 s: never more than five in any five seconds.
        let channel_quota = Quota::with_period(Duration::from_millis(1100))
            .expect("a non-zero period")
            .allow_burst(NonZeroU32::MIN);
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            bot_token,
            methods,
            channels: RateLimiter::keyed(channel_quota),
            posts: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
        })
    }

    /// Calls `method` with the bot token.
    pub async fn call(
        &self,
        method: &'static str,
        params: &[(&str, &str)],
    ) -> Result<Value, ApiError> {
        self.call_as(&self.bot_token, method, params).await
    }

    /// Calls `method` with `token` (the app token for `apps.connections.open`).
    pub async fn call_as(
        &self,
        token: &SecretString,
        method: &'static str,
        params: &[(&str, &str)],
    ) -> Result<Value, ApiError> {
        if method == "chat.postMessage" {
            let channel = params
                .iter()
                .find(|(k, _)| *k == "channel")
                .map(|(_, v)| *v);
            self.pace_channel(channel.unwrap_or_default()).await;
        }
        if let Some(limiter) = self.methods.get(method) {
            limiter.until_ready().await;
        }
        let url = format!("{}/{method}", self.base);
        let mut attempt = 1;
        loop {
            let response = self
                .http
                .post(&url)
                .header(AUTHORIZATION, format!("Bearer {}", token.expose_secret()))
                .form(params)
                .send()
                .await
                .map_err(|e| ApiError::Network(method, e.without_url().to_string()))?;
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                self.rate_limited.fetch_add(1, Ordering::Relaxed);
                if attempt == MAX_ATTEMPTS {
                    return Err(ApiError::RateLimited(method));
                }
                let wait = retry_after(response.headers().get(RETRY_AFTER));
                tracing::info!("slack: {method} rate-limited, waiting {wait:?} as asked");
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            return answer(method, response).await;
        }
    }

    /// Posts to a slash command's or an action's `response_url` (no token: the URL is the
    /// credential).
    pub async fn respond(&self, url: &str, body: &Value) -> Result<(), ApiError> {
        const METHOD: &str = "response_url";
        let response = self
            .http
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(|e| ApiError::Network(METHOD, e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(ApiError::Status(METHOD, response.status().as_u16()));
        }
        Ok(())
    }

    async fn pace_channel(&self, channel: &str) {
        if self.posts.fetch_add(1, Ordering::Relaxed) % 256 == 0
            && self.channels.len() > PACED_CHANNELS
        {
            self.channels.retain_recent();
            self.channels.shrink_to_fit();
        }
        self.channels.until_key_ready(&channel.to_owned()).await;
    }
}

/// `Retry-After` in whole seconds, as Slack sends it.
fn retry_after(header: Option<&reqwest::header::HeaderValue>) -> Duration {
    header
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_WAIT, |s| Duration::from_secs(s).min(MAX_WAIT))
}

async fn answer(method: &'static str, response: reqwest::Response) -> Result<Value, ApiError> {
    let status = response.status();
    let body: Value = match response.json().await {
        Ok(body) => body,
        Err(_) if !status.is_success() => return Err(ApiError::Status(method, status.as_u16())),
        Err(e) => return Err(ApiError::Network(method, format!("not JSON: {e}"))),
    };
    if body["ok"] == true {
        return Ok(body);
    }
    if !status.is_success() && body["error"].is_null() {
        return Err(ApiError::Status(method, status.as_u16()));
    }
    Err(ApiError::Slack {
        method,
        code: body["error"].as_str().unwrap_or("unknown_error").to_owned(),
        needed: body["needed"].as_str().map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_in_whole_seconds_and_capped() {
        let header = |v: &str| reqwest::header::HeaderValue::from_str(v).unwrap();
        assert_eq!(retry_after(Some(&header("3"))), Duration::from_secs(3));
        assert_eq!(retry_after(Some(&header("3600"))), MAX_WAIT);
        assert_eq!(retry_after(Some(&header("soon"))), DEFAULT_WAIT);
        assert_eq!(retry_after(None), DEFAULT_WAIT);
    }

    #[test]
    fn no_minute_holds_more_calls_than_the_tier() {
        for method in METHODS.iter().filter(|m| **m != "chat.postMessage") {
            let (burst, per_minute) = tier(method);
            let limit = match *method {
                "apps.connections.open" => 5,
                "chat.update"
                | "conversations.info"
                | "conversations.kick"
                | "conversations.open"
                | "users.conversations" => 50,
                _ => 100,
            };
            assert!(burst + per_minute <= limit, "{method}");
        }
    }
}
