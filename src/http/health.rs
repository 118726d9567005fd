//! Health, readiness, metrics and the JWKS.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use super::HttpState;

/// `GET /healthz`: the process is up.
pub(super) async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the database answers.
pub(super) async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    match state.identity.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: database");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

/// `GET /metrics`: Prometheus text.
pub(super) async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
}

/// `GET /.well-known/jwks.json`: the public keys that verify our access tokens.
pub(super) async fn jwks(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.identity.jwks().clone()),
    )
}
