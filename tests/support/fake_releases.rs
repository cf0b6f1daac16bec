//! A fake GitHub Releases API for `cogbox update` tests, on `127.0.0.1:<ephemeral port>`.
//!
//! ```text
//! FakeReleases::start("owner/name") -> FakeReleases     // serves that one repository
//! fake.api_url() -> String                              // replaces https://api.github.com
//! fake.publish("v0.2.0", vec![("cogbox-0.2.0-<target>.tar.gz".into(), bytes)])
//! fake.cut_downloads_short()                            // asset bodies break off halfway
//! fake.downloads() -> usize                             // asset bodies served (even cut short)
//! ```
//!
//! It answers what a client of the real API sends, with GitHub's shapes:
//! `GET /repos/{owner}/{repo}/releases` (newest first), `/releases/latest`,
//! `/releases/tags/{tag}`, and `/releases/assets/{id}`, which gives the asset's JSON unless the
//! request asks for `Accept: application/octet-stream`, and then redirects (302) to the file, as
//! GitHub redirects to its storage. As on GitHub, a request without a `User-Agent` is refused
//! with 403, and an unknown repository, tag or asset is 404 `Not Found`. A cut-short download
//! announces the whole `Content-Length` and then drops the connection halfway, as a broken
//! network does. Not modelled: drafts, pagination past the first page, rate limits.
//!
//! The server runs on a thread of its own, so tests that run the real binary can stay blocking.

use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

struct Release {
    tag: String,
    /// (asset id, file name, contents)
    assets: Vec<(u64, String, Bytes)>,
}

#[derive(Default)]
struct ServerState {
    base: String,
    /// `/repos/{owner}/{repo}/releases`
    prefix: String,
    /// Oldest first, as published.
    releases: Vec<Release>,
    next_asset: u64,
    cut_short: bool,
    downloads: usize,
}

type Shared = Arc<Mutex<ServerState>>;

pub struct FakeReleases {
    api_url: String,
    state: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FakeReleases {
    /// Serves the releases of `repository` (`owner/name`) until dropped.
    pub fn start(repository: &str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fake releases");
        listener.set_nonblocking(true).expect("non-blocking socket");
        let api_url = format!("http://{}", listener.local_addr().expect("local address"));
        let prefix = format!("/repos/{repository}/releases");
        let state: Shared = Arc::new(Mutex::new(ServerState {
            base: api_url.clone(),
            prefix: prefix.clone(),
            next_asset: 1,
            ..ServerState::default()
        }));
        let app = Router::new()
            .route(&prefix, get(list))
            .route(&format!("{prefix}/latest"), get(latest))
            .route(&format!("{prefix}/tags/{{tag}}"), get(by_tag))
            .route(&format!("{prefix}/assets/{{id}}"), get(asset))
            .route("/download/{id}", get(download))
            .fallback(|| async { not_found() })
            .layer(axum::middleware::from_fn(user_agent_required))
            .with_state(Arc::clone(&state));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the fake releases");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("fake releases server");
            });
        });
        Self {
            api_url,
            state,
            stop: Some(stop),
        }
    }

    /// Base URL to use instead of `https://api.github.com`.
    pub fn api_url(&self) -> String {
        self.api_url.clone()
    }

    /// Publishes a release, newer than those before it, with these assets.
    pub fn publish(&self, tag: &str, assets: Vec<(String, Vec<u8>)>) {
        let mut state = lock(&self.state);
        let assets = assets
            .into_iter()
            .map(|(name, bytes)| {
                let id = state.next_asset;
                state.next_asset += 1;
                (id, name, Bytes::from(bytes))
            })
            .collect();
        state.releases.push(Release {
            tag: tag.to_owned(),
            assets,
        });
    }

    /// From now on every asset download breaks off halfway.
    pub fn cut_downloads_short(&self) {
        lock(&self.state).cut_short = true;
    }

    /// How many asset bodies were served, whole or cut short.
    pub fn downloads(&self) -> usize {
        lock(&self.state).downloads
    }
}

impl Drop for FakeReleases {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, ServerState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({
            "message": "Not Found",
            "documentation_url": "https://docs.github.com/rest",
            "status": "404",
        })),
    )
        .into_response()
}

/// GitHub refuses API requests that do not say who is calling.
async fn user_agent_required(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.headers().contains_key(header::USER_AGENT) {
        next.run(request).await
    } else {
        (
            StatusCode::FORBIDDEN,
            "Request forbidden by administrative rules. Please make sure your request has a \
             User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required).",
        )
            .into_response()
    }
}

fn asset_json(state: &ServerState, (id, name, bytes): &(u64, String, Bytes)) -> Value {
    json!({
        "url": format!("{}{}/assets/{id}", state.base, state.prefix),
        "browser_download_url": format!("{}/download/{id}", state.base),
        "id": id,
        "name": name,
        "label": "",
        "state": "uploaded",
        "content_type": "application/gzip",
        "size": bytes.len(),
        "digest": null,
    })
}

fn release_json(state: &ServerState, release: &Release) -> Value {
    json!({
        "tag_name": release.tag,
        "name": release.tag,
        "draft": false,
        "prerelease": false,
        "created_at": "2026-01-01T00:00:00Z",
        "published_at": "2026-01-01T00:00:00Z",
        "html_url": format!("{}/releases/tag/{}", state.base, release.tag),
        "body": "",
        "assets": release
            .assets
            .iter()
            .map(|a| asset_json(state, a))
            .collect::<Vec<_>>(),
    })
}

async fn list(State(state): State<Shared>) -> Response {
    let state = lock(&state);
    let releases: Vec<Value> = state
        .releases
        .iter()
        .rev()
        .map(|r| release_json(&state, r))
        .collect();
    axum::Json(releases).into_response()
}

async fn latest(State(state): State<Shared>) -> Response {
    let state = lock(&state);
    match state.releases.last() {
        Some(release) => axum::Json(release_json(&state, release)).into_response(),
        None => not_found(),
    }
}

async fn by_tag(State(state): State<Shared>, Path(tag): Path<String>) -> Response {
    let state = lock(&state);
    match state.releases.iter().find(|r| r.tag == tag) {
        Some(release) => axum::Json(release_json(&state, release)).into_response(),
        None => not_found(),
    }
}

fn find_asset(state: &ServerState, id: u64) -> Option<&(u64, String, Bytes)> {
    state
        .releases
        .iter()
        .flat_map(|r| &r.assets)
        .find(|(asset, _, _)| *asset == id)
}

/// The asset's metadata, or a redirect to its file for `Accept: application/octet-stream`.
async fn asset(State(state): State<Shared>, Path(id): Path<u64>, headers: HeaderMap) -> Response {
    let state = lock(&state);
    let Some(found) = find_asset(&state, id) else {
        return not_found();
    };
    let wants_file = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/octet-stream"));
    if wants_file {
        (
            StatusCode::FOUND,
            [(header::LOCATION, format!("{}/download/{id}", state.base))],
        )
            .into_response()
    } else {
        axum::Json(asset_json(&state, found)).into_response()
    }
}

async fn download(State(state): State<Shared>, Path(id): Path<u64>) -> Response {
    let mut state = lock(&state);
    let Some((_, _, bytes)) = find_asset(&state, id).cloned() else {
        return not_found();
    };
    state.downloads += 1;
    let length = bytes.len();
    let body = if state.cut_short {
        use futures_util::StreamExt as _;
        let half = bytes.slice(..length / 2);
        // The headers and the first half go out before the connection drops.
        let dropped = futures_util::stream::once(async {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            Err(std::io::Error::other("connection dropped"))
        });
        Body::from_stream(futures_util::stream::iter([Ok(half)]).chain(dropped))
    } else {
        Body::from(bytes)
    };
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, length.to_string()),
        ],
        body,
    )
        .into_response()
}
