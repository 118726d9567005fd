//! HTTP: the router, GraphQL over POST/GET (GraphiQL, vendored, for browsers), JWKS, OIDC
//! discovery, token introspection and revocation, health and metrics, the server-driven
//! Official Account login, and the sandbox (with its login demo) when it is on.

mod bounded_cache;
mod connections;
mod demo;
mod documents;
mod graphiql;
mod graphql;
mod graphql_wire;
mod health;
mod oa_auth;
mod oauth2;
mod observe;
mod persisted;
mod server;
mod unsent;
mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use documents::Documents;
pub use observe::REQUEST_ID;
pub use persisted::PersistedQueries;
pub use server::{client_ip, serve};

use crate::graphql::AppSchema;
use crate::identity::{ClientInfo, Identity};
use crate::wechat::sandbox::{self, Sandbox};

/// What every handler needs.
#[derive(Clone)]
pub struct HttpState {
    /// The GraphQL schema.
    pub schema: AppSchema,
    /// The identity service.
    pub identity: Identity,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    /// Automatic persisted queries' cache (None: `graphql.persisted_queries` is off).
    pub persisted: Option<Arc<PersistedQueries>>,
    /// Parsed documents by query text (`graphql.document_cache_bytes`).
    pub documents: Arc<Documents>,
    /// The SDL `_service` answers (admin and service fields `@inaccessible`).
    pub published: Arc<crate::graphql::published::Published>,
}

impl HttpState {
    /// Who is calling from where: the client address (through trusted proxies) and user agent.
    pub fn client_info(&self, peer: SocketAddr, headers: &HeaderMap) -> ClientInfo {
        ClientInfo {
            user_agent: headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(256).collect()),
            ip: Some(client_ip(peer.ip(), headers, &self.trusted_proxies)),
        }
    }
}

/// The service's router; the sandbox is nested under `/sandbox/wechat` when given.
pub fn router(state: HttpState, sandbox: Option<&Sandbox>) -> Router {
    let mut router = Router::new()
        .route(
            "/graphql",
            get(graphql::get_graphql).post(graphql::post_graphql),
        )
        .route("/.well-known/jwks.json", get(health::jwks))
        .route("/.well-known/openid-configuration", get(oauth2::discovery))
        .route(
            "/oauth2/introspect",
            post(oauth2::introspect).layer(DefaultBodyLimit::max(oauth2::MAX_FORM_BYTES)),
        )
        .route(
            "/oauth2/revoke",
            post(oauth2::revoke).layer(DefaultBodyLimit::max(oauth2::MAX_FORM_BYTES)),
        )
        .route("/healthz", get(health::healthz))
        .route("/healthz/details", get(health::details))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/auth/{flow}/{app_id}/authorize", get(oa_auth::authorize))
        .route("/auth/{flow}/{app_id}/callback", get(oa_auth::callback))
        .route(
            "/wechat/{app_id}/events",
            get(webhook::verify).post(webhook::push),
        );
    if sandbox.is_some() {
        router = router.route(demo::PATH, get(demo::page));
    }
    if state.identity.config().graphql.graphiql {
        router = router.route(
            &format!("{}/{{file}}", graphiql::PREFIX),
            get(graphiql::asset),
        );
    }
    let max_body = state.identity.config().limits.max_body_bytes;
    let timeout_ms = state.identity.config().limits.request_timeout_ms;
    let proxies = state.trusted_proxies.clone();
    let mut router = router.with_state(state);
    if let Some(sandbox) = sandbox {
        router = router.nest(sandbox::MOUNT, sandbox.router());
    }
    router
        // Extractors that buffer (JSON, bytes) stop here; `/graphql` reads its body itself and
        // answers 413 with a GraphQL error.
        .layer(DefaultBodyLimit::max(max_body))
        // A whole request, body included, gets this long; a client trickling its body is cut
        // off with 408.
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            bounded(max_body, timeout_ms, request, next)
        }))
        // Outermost: the access log and the request metrics see every answer.
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            observe::observe(proxies.clone(), request, next)
        }))
}

/// The body length a request declares (`Content-Length`), if it declares one.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Refuses a body declared larger than `max_body` (413 naming the limit), then runs the
/// request, or answers 408 naming the limit once `timeout_ms` have passed.
async fn bounded(max_body: usize, timeout_ms: u64, request: Request, next: Next) -> Response {
    let declared = declared_length(request.headers());
    // `/graphql` answers this itself, as a GraphQL error.
    if declared.is_some_and(|len| len > max_body as u64) && request.uri().path() != "/graphql" {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            [(header::CONNECTION, "close")],
            format!("request body is larger than {max_body} bytes (limits.max_body_bytes)\n"),
        )
            .into_response();
    }
    match tokio::time::timeout(Duration::from_millis(timeout_ms), next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            [(header::CONNECTION, "close")],
            format!("the request took longer than {timeout_ms} ms (limits.request_timeout_ms)\n"),
        )
            .into_response(),
    }
}
