//! `GET/POST /wechat/{appId}/events`: the webhook WeChat calls (an Official Account's server URL,
//! a Mini Program's message push). The checks and the storing are the identity layer's
//! (the [`Webhook`](crate::identity::access::Webhook) handle); this answers WeChat: the
//! `echostr` or `success` (once the job runner has processed the event, or after
//! `limits.webhook_answer_wait_ms` at most), 401 for a push that does
//! not check out (nothing stored), 404 for an unknown app, 400 for a signed body that is no
//! WeChat message.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::HttpState;
use crate::identity::server_side::webhook::{PushQuery, Refused};

/// `GET`: URL verification.
pub async fn verify(
    State(state): State<HttpState>,
    Path(app_id): Path<String>,
    Query(q): Query<PushQuery>,
) -> Response {
    match state.identity.webhook().verify_webhook_url(&app_id, &q) {
        Ok(echostr) => text(StatusCode::OK, echostr),
        Err(refused) => refusal(&app_id, refused),
    }
}

/// `POST`: a message or event.
pub async fn push(
    State(state): State<HttpState>,
    Path(app_id): Path<String>,
    Query(q): Query<PushQuery>,
    body: String,
) -> Response {
    match state
        .identity
        .webhook()
        .receive_push(&app_id, &q, &body)
        .await
    {
        Ok(_) => text(StatusCode::OK, "success".into()),
        Err(refused) => refusal(&app_id, refused),
    }
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

fn refusal(app_id: &str, refused: Refused) -> Response {
    let status = match &refused {
        Refused::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        Refused::NotFound(_) => StatusCode::NOT_FOUND,
        Refused::BadRequest(_) => StatusCode::BAD_REQUEST,
        Refused::Identity(_) => {
            let Refused::Identity(e) = refused else {
                unreachable!()
            };
            let api = crate::error::ApiError::from(e);
            return text(api.code().http_status(), format!("{}\n", api.message()));
        }
    };
    tracing::info!(app = %crate::identity::truncate(app_id, 64), %status, reason = %refused, "webhook push refused");
    text(status, format!("{refused}\n"))
}
