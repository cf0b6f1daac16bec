//! A REST relay on 127.0.0.1, used when `discord.api_url` is not Discord itself.
//!
//! serenity only honours `HttpBuilder::proxy` with its own ratelimiter switched off (the
//! ratelimiter builds every request without the proxy), and then it neither waits nor retries
//! on a 429, nor keeps the response headers that say how long to wait. So serenity is pointed
//! at this relay, and the relay forwards each call to `api_url` through [`Limiter`], which
//! sees every response: calls wait for their route's window, and a 429 is waited out and the
//! call retried, as serenity's own limiter would.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;

use super::queue::Tally;
use super::ratelimit::{self, Limiter};

/// How many 429s one call waits out before the last one is handed to serenity.
const MAX_RETRIES: u32 = 3;
/// A call Discord asks to hold for longer than this fails instead: a caller waiting minutes
/// for a chat reply is worse off than one told it failed.
const MAX_WAIT: Duration = Duration::from_secs(60);

pub struct Relay {
    listener: TcpListener,
    shared: Arc<Shared>,
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    limits: Limiter,
    /// 429s are counted for the once-a-minute summary, not logged one by one.
    tally: Arc<Tally>,
}

impl Relay {
    /// Listens on a free loopback port for calls to forward to `upstream` (e.g.
    /// `http://127.0.0.1:8080`, no trailing slash needed).
    pub async fn bind(
        upstream: &str,
        client: reqwest::Client,
        tally: Arc<Tally>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client,
            limits: Limiter::default(),
            tally,
        });
        Ok(Self { listener, shared })
    }

    /// What serenity is given as its proxy.
    pub fn url(&self) -> std::io::Result<String> {
        Ok(format!("http://{}", self.listener.local_addr()?))
    }

    /// Forwards calls until `done` resolves, then finishes the calls in flight.
    pub async fn serve(self, done: impl Future<Output = ()> + Send + 'static) {
        let app = Router::new().fallback(forward).with_state(self.shared);
        if let Err(e) = axum::serve(self.listener, app)
            .with_graceful_shutdown(done)
            .await
        {
            tracing::error!("discord: the REST relay stopped: {e}");
        }
    }
}

async fn forward(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let route = ratelimit::route(&method, uri.path());
    let target = format!(
        "{}{}",
        shared.upstream,
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let headers = without_framing(headers);
    let mut retries = 0;
    loop {
        shared.limits.acquire(&route).await;
        let sent = shared
            .client
            .request(method.clone(), &target)
            .headers(headers.clone())
            .body(body.clone())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => return (StatusCode::BAD_GATEWAY, format!("relay: {e}")).into_response(),
        };
        let (status, response_headers) = (response.status(), response.headers().clone());
        let response_body = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => return (StatusCode::BAD_GATEWAY, format!("relay: {e}")).into_response(),
        };
        match shared
            .limits
            .learn(&route, status, &response_headers, &response_body)
        {
            Some(wait) if retries < MAX_RETRIES && wait <= MAX_WAIT => {
                retries += 1;
                shared.tally.throttled.fetch_add(1, Ordering::Relaxed);
                // Not the route: webhook routes carry an interaction's token.
                tracing::debug!(%method, "discord: rate limited; retrying in {wait:?}");
            }
            _ => {
                let mut out = (status, response_body).into_response();
                out.headers_mut().extend(without_framing(response_headers));
                return out;
            }
        }
    }
}

/// Drops the headers that describe one hop's connection and body framing: each side of the
/// relay sets its own.
fn without_framing(mut headers: HeaderMap) -> HeaderMap {
    for name in [
        header::HOST,
        header::CONNECTION,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
    ] {
        headers.remove(name);
    }
    headers
}
