//! Health, readiness, metrics and the JWKS.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::HttpState;

/// `GET /healthz`: the process is up.
pub(super) async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the database answers.
pub(super) async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    let access = state.identity.access(None).await;
    let ready = match access.public() {
        Ok(public) => public.ping().await,
        Err(e) => Err(e),
    };
    match ready {
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
pub(super) async fn jwks(State(state): State<HttpState>) -> Response {
    match state.identity.access(None).await.public() {
        Ok(public) => (
            // A minute: a key rotated in signs at once, and a verifier that does not fetch the
            // set again on an unknown `kid` sees it within a minute.
            [(header::CACHE_CONTROL, "public, max-age=60")],
            Json((*public.jwks()).clone()),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "no public access");
            (StatusCode::INTERNAL_SERVER_ERROR, "keys unavailable").into_response()
        }
    }
}
