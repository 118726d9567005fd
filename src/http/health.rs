//! Health, readiness, metrics and the JWKS.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::HttpState;
use crate::error::ErrorCode;

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

/// `GET /metrics`: Prometheus text (the gauges read from the database at most once a second).
pub(super) async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    if let Ok(public) = state.identity.access(None).await.public() {
        public.refresh_gauges().await;
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
}

/// `GET /healthz/details` (admin API key): each app's last WeChat call and the age of its kept
/// credentials, the job queue, the pool, where rate limits are kept. JSON.
pub(super) async fn details(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    let access = state
        .identity
        .access(headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()))
        .await;
    let details = match access.admin() {
        Ok(admin) => admin.health_details().await,
        Err(e) => Err(e),
    };
    match details {
        Ok(details) => ([(header::CACHE_CONTROL, "no-store")], Json(details)).into_response(),
        Err(e) => {
            let error = crate::error::ApiError::from(e);
            let status = match error.code() {
                ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
                ErrorCode::Forbidden => StatusCode::FORBIDDEN,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            let body = serde_json::json!({"error": {"code": error.code().as_str(), "message": error.message()}});
            (status, Json(body)).into_response()
        }
    }
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
