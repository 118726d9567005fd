//! What other teams' middleware expects of a token issuer: the discovery document
//! (`/.well-known/openid-configuration`, listing only what this service has), token
//! introspection (RFC 7662, `POST /oauth2/introspect`, for admin and service keys) and
//! revocation (RFC 7009, `POST /oauth2/revoke`, a user's own refresh token). Both POST routes
//! take `application/x-www-form-urlencoded` bodies of at most [`MAX_FORM_BYTES`].

use std::net::SocketAddr;

use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::HttpState;
use crate::error::ApiError;
use crate::identity::IdentityError;
use crate::identity::values::Revocation;

/// The largest introspection or revocation body.
pub const MAX_FORM_BYTES: usize = 8 * 1024;

/// The form both POST routes take.
#[derive(Deserialize)]
pub(super) struct TokenForm {
    token: Option<String>,
    /// Accepted and not needed: the token's form tells which kind it is.
    #[allow(dead_code)]
    token_type_hint: Option<String>,
}

/// `GET /.well-known/openid-configuration`: where the keys are and what can be asked about
/// tokens. This service is not an authorization server for other clients (no authorization or
/// token endpoint, no ID tokens): the document lists only what exists.
pub(super) async fn discovery(State(state): State<HttpState>) -> Response {
    let base = state.identity.config().public_url();
    let public = state.identity.access(None).await;
    let issuer = match public.public() {
        Ok(public) => public.issuer().to_owned(),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    // No authorization or token endpoint and no ID tokens, so none of their fields; the
    // access tokens' algorithm is each key's `alg` in the JWKS.
    let document = serde_json::json!({
        "issuer": issuer,
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "introspection_endpoint": format!("{base}/oauth2/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
        "revocation_endpoint": format!("{base}/oauth2/revoke"),
        "revocation_endpoint_auth_methods_supported": ["none"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "jti", "sid", "app_id", "app_kind"],
    });
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(document),
    )
        .into_response()
}

/// `POST /oauth2/introspect` with an admin or service key (`Authorization: Bearer <key>`, or
/// `Basic` with the key as the password, as OAuth clients send `client_secret_basic`): RFC
/// 7662's answer for `token`. Anyone else gets 401.
pub(super) async fn introspect(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let candidates = headers
        .get(header::AUTHORIZATION)
        .map(api_keys_of)
        .unwrap_or_default();
    let mut access = state
        .identity
        .access(candidates.first().map(Vec::as_slice))
        .await;
    for other in candidates.iter().skip(1) {
        if access.reader().is_ok() {
            break;
        }
        access = state.identity.access(Some(other)).await;
    }
    let unauthorized = || {
        oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "introspection needs `Authorization: Bearer <admin or service API key>`",
        )
    };
    if access.reader().is_err() {
        return unauthorized();
    }
    let token = match token_of(form) {
        Ok(token) => token,
        Err(refused) => return *refused,
    };
    let client = state.client_info(peer, &headers);
    match access.introspect(&token, &client).await {
        Ok(answer) => no_store(Json(answer).into_response()),
        Err(IdentityError::Auth(_)) => unauthorized(),
        Err(e) => failed(e),
    }
}

/// `POST /oauth2/revoke`: ends the login of a refresh token (RFC 7009: 200 whether or not it
/// was live; an access token is `unsupported_token_type`).
pub(super) async fn revoke(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let token = match token_of(form) {
        Ok(token) => token,
        Err(refused) => return *refused,
    };
    let client = state.client_info(peer, &headers);
    let access = state.identity.access(None).await;
    let revoked = match access.public() {
        Ok(public) => public.revoke_token(&token, &client).await,
        Err(e) => Err(e),
    };
    match revoked {
        Ok(Revocation::Done) => no_store(StatusCode::OK.into_response()),
        Ok(Revocation::UnsupportedTokenType) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_token_type",
            "this endpoint revokes refresh tokens; an access token ends with its login",
        ),
        Err(e) => failed(e),
    }
}

/// The `Authorization` values to try, as the API reads them: `Basic base64(name:key)` becomes
/// `Bearer key` — the key as sent, then form-decoded if that differs (RFC 6749 has clients
/// form-encode it; many send it raw, and a key may hold `+`, `/` or `%`); anything else stays as
/// it is (and is refused if it is no key).
fn api_keys_of(value: &HeaderValue) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let basic = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, b64)| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|pair| String::from_utf8(pair).ok())
        .and_then(|pair| pair.split_once(':').map(|(_, key)| key.to_owned()));
    let Some(raw) = basic else {
        return vec![value.as_bytes().to_vec()];
    };
    let decoded = percent_encoding::percent_decode_str(&raw.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|k| k.into_owned())
        .filter(|k| *k != raw);
    std::iter::once(raw)
        .chain(decoded)
        .map(|key| format!("Bearer {key}").into_bytes())
        .collect()
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An OAuth error body (`{"error", "error_description"}`).
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = no_store(
        (
            status,
            Json(serde_json::json!({ "error": error, "error_description": description })),
        )
            .into_response(),
    );
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// The form's `token`, or the refusal of a body that is not a form, is larger than
/// [`MAX_FORM_BYTES`] (413) or has no token.
fn token_of(form: Result<Form<TokenForm>, FormRejection>) -> Result<String, Box<Response>> {
    match form {
        Ok(Form(TokenForm {
            token: Some(token), ..
        })) => Ok(token),
        Ok(_) => Err(Box::new(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`token` is missing",
        ))),
        Err(rejection) => Err(Box::new(form_refused(&rejection))),
    }
}

/// A body that is not a form, or is larger than [`MAX_FORM_BYTES`] (413).
fn form_refused(rejection: &FormRejection) -> Response {
    let status = rejection.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return oauth_error(status, "invalid_request", "the body is larger than 8 KiB");
    }
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "the body must be application/x-www-form-urlencoded with `token`",
    )
}

/// A refusal from the identity layer: rate limits (429 with `Retry-After`), the database.
fn failed(error: IdentityError) -> Response {
    let api = ApiError::from(error);
    let status = api.code().http_status();
    let mut response = oauth_error(
        status,
        if status == StatusCode::TOO_MANY_REQUESTS {
            "slow_down"
        } else {
            "temporarily_unavailable"
        },
        api.message(),
    );
    if let Some(secs) = api.retry_after_secs() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}
