//! HTTP: the router, GraphQL over POST/GET (GraphiQL for browsers), JWKS, health and metrics,
//! the server-driven Official Account login, and the sandbox (with its login demo) when it is on.

mod demo;
mod graphql;
mod health;
mod oa_auth;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::auth::ApiKeys;
use crate::graphql::AppSchema;
use crate::identity::Identity;
use crate::wechat::sandbox::{self, Sandbox};

/// What every handler needs.
#[derive(Clone)]
pub struct HttpState {
    /// The GraphQL schema.
    pub schema: AppSchema,
    /// The identity service.
    pub identity: Identity,
    /// API keys for back-end callers.
    pub api_keys: Arc<ApiKeys>,
}

/// The service's router; the sandbox is nested under `/sandbox/wechat` when given.
pub fn router(state: HttpState, sandbox: Option<&Sandbox>) -> Router {
    let mut router = Router::new()
        .route(
            "/graphql",
            get(graphql::get_graphql).post(graphql::post_graphql),
        )
        .route("/.well-known/jwks.json", get(health::jwks))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route(
            "/auth/official-account/{app_id}/authorize",
            get(oa_auth::authorize),
        )
        .route(
            "/auth/official-account/{app_id}/callback",
            get(oa_auth::callback),
        );
    if sandbox.is_some() {
        router = router.route(demo::PATH, get(demo::page));
    }
    let mut router = router.with_state(state);
    if let Some(sandbox) = sandbox {
        router = router.nest(sandbox::MOUNT, sandbox.router());
    }
    router
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
