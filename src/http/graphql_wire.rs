//! GraphQL over HTTP on the wire (the GraphQL-over-HTTP spec): which media type to answer in
//! (`Accept`), what a request carries (a JSON body, or GET parameters), and the status code and
//! body of every answer, refusals before execution included.
//!
//! - `application/graphql-response+json`: a request the GraphQL engine refuses before executing
//!   it (parse, validation, variable coercion, our budget) answers 400 without a `data` entry;
//!   a timeout 503.
//! - `application/json` (also for `*/*` or no `Accept`): every well-formed request answers 200.
//! - Requests that are not well-formed GraphQL-over-HTTP requests (unreadable JSON, no `query`,
//!   wrong content type, too large, a mutation over GET) answer 4xx under both.
//! - No supported media type in `Accept`: 406.
//!
//! Every error carries `extensions.code`.

use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::persisted::PersistedQueries;
use crate::graphql::error::ErrorCode;

/// The media type of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaType {
    /// `application/graphql-response+json`.
    GraphqlResponse,
    /// `application/json`.
    Json,
}

/// `Accept` entries looked at, at most.
const MAX_ACCEPT_ENTRIES: usize = 32;

impl MediaType {
    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        })
    }

    /// The media type `Accept` asks for: the supported one with the highest `q` (the first
    /// listed on a tie); `application/json` without `Accept`; None when it names neither
    /// (nor `*/*`, `application/*`) or only with a charset other than UTF-8.
    pub fn negotiate(headers: &HeaderMap) -> Option<Self> {
        let Some(accept) = headers.get(header::ACCEPT) else {
            return Some(Self::Json);
        };
        let accept = accept.to_str().ok()?;
        if accept.trim().is_empty() {
            return Some(Self::Json);
        }
        let mut best: Option<(f32, Self)> = None;
        for entry in accept.split(',').take(MAX_ACCEPT_ENTRIES) {
            let mut parts = entry.split(';');
            let range = parts.next().unwrap_or_default().trim();
            let mut q = 1.0f32;
            let mut utf8 = true;
            for param in parts {
                let (key, value) = param.split_once('=').unwrap_or((param, ""));
                let value = value.trim().trim_matches('"');
                match key.trim().to_ascii_lowercase().as_str() {
                    "q" => q = value.parse().unwrap_or(0.0),
                    "charset" => {
                        utf8 = matches!(value.to_ascii_lowercase().as_str(), "utf-8" | "utf8")
                    }
                    _ => {}
                }
            }
            let media = if range.eq_ignore_ascii_case("application/graphql-response+json") {
                Self::GraphqlResponse
            } else if ["application/json", "application/*", "*/*"]
                .iter()
                .any(|r| range.eq_ignore_ascii_case(r))
            {
                Self::Json
            } else {
                continue;
            };
            if q > 0.0 && utf8 && best.is_none_or(|(best_q, _)| q > best_q) {
                best = Some((q, media));
            }
        }
        best.map(|(_, media)| media)
    }
}

/// A request answered before the GraphQL engine ran it.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    /// A well-formed GraphQL-over-HTTP request (GraphQL refused it): 200 under
    /// `application/json`, `status` under `application/graphql-response+json`.
    well_formed: bool,
    allow_post_only: bool,
}

impl Refusal {
    /// Not a well-formed request: `status` whatever the media type.
    pub fn http(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code: ErrorCode::BadUserInput,
            message: message.into(),
            well_formed: false,
            allow_post_only: false,
        }
    }

    /// A well-formed request GraphQL refuses with `code` (its HTTP status under
    /// `application/graphql-response+json`, 200 under `application/json`).
    pub fn graphql(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: code.http_status(),
            code,
            message: message.into(),
            well_formed: true,
            allow_post_only: false,
        }
    }

    /// A mutation over GET: 405 with `Allow: POST`.
    pub fn mutation_over_get() -> Self {
        Self {
            allow_post_only: true,
            ..Self::http(
                StatusCode::METHOD_NOT_ALLOWED,
                "mutations must be sent with POST (a link must not change anything)",
            )
        }
    }

    /// The answer, in `media`.
    pub fn reply(self, media: MediaType) -> Response {
        let status = match (self.well_formed, media) {
            (true, MediaType::Json) => StatusCode::OK,
            _ => self.status,
        };
        let body = json!({ "errors": [{
            "message": self.message,
            "extensions": { "code": self.code.as_str() },
        }] });
        let mut response = write(media, status, serde_json::to_vec(&body));
        if self.allow_post_only {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        response
    }
}

/// The answer to an executed (or engine-refused) request, in `media`, at most `max_bytes` of
/// JSON (`graphql.max_response_bytes`): serialized into a buffer that refuses to grow past it,
/// so a larger answer is never built whole, and is replaced by a `RESPONSE_TOO_LARGE` error
/// (HTTP 400 in `application/graphql-response+json`, 200 in `application/json`). The engine
/// refused the request before execution when there is no data and no error has a path (field
/// errors always have one): then there is no `data` entry, and
/// `application/graphql-response+json` answers 400.
pub fn reply(media: MediaType, response: async_graphql::Response, max_bytes: usize) -> Response {
    let refused = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let (status, body) = if refused {
        let status = match media {
            MediaType::GraphqlResponse => StatusCode::BAD_REQUEST,
            MediaType::Json => StatusCode::OK,
        };
        (
            status,
            capped(&json!({ "errors": response.errors }), max_bytes),
        )
    } else {
        (StatusCode::OK, capped(&response, max_bytes))
    };
    match body {
        Ok(body) => {
            let mut answer = write(media, status, Ok(body));
            if !refused {
                answer.headers_mut().extend(response.http_headers);
            }
            answer
        }
        Err(Capped::TooLarge) => Refusal::graphql(
            ErrorCode::ResponseTooLarge,
            format!(
                "the answer is larger than {max_bytes} bytes (graphql.max_response_bytes): ask \
                 for fewer fields or a smaller page"
            ),
        )
        .reply(media),
        Err(Capped::Json(e)) => write(media, status, Err(e)),
    }
}

/// Why [`capped`] gave no bytes.
enum Capped {
    TooLarge,
    Json(serde_json::Error),
}

/// `value` as JSON, or [`Capped::TooLarge`] as soon as it passes `max_bytes`.
fn capped(value: &impl serde::Serialize, max_bytes: usize) -> Result<Vec<u8>, Capped> {
    let mut out = CappedBuffer {
        bytes: Vec::with_capacity(max_bytes.min(16 * 1024)),
        max_bytes,
    };
    match serde_json::to_writer(&mut out, value) {
        Ok(()) => Ok(out.bytes),
        Err(e) if e.is_io() => Err(Capped::TooLarge),
        Err(e) => Err(Capped::Json(e)),
    }
}

/// A buffer that refuses a write that would take it past `max_bytes`.
struct CappedBuffer {
    bytes: Vec<u8>,
    max_bytes: usize,
}

impl std::io::Write for CappedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len().saturating_add(buf.len()) > self.max_bytes {
            return Err(std::io::Error::other("graphql.max_response_bytes"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn write(media: MediaType, status: StatusCode, body: serde_json::Result<Vec<u8>>) -> Response {
    match body {
        Ok(body) => {
            let mut response = (status, body).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, media.content_type());
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "a GraphQL response could not be serialized");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A GraphQL request as it comes over HTTP (a POST body's JSON, or GET's parameters).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireRequest {
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    operation_name: Option<String>,
    #[serde(default)]
    variables: Option<Map<String, Value>>,
    #[serde(default)]
    extensions: Option<Map<String, Value>>,
}

/// GET's parameters: `variables` and `extensions` are JSON text.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

impl WireRequest {
    /// A POST body: a JSON object with `query` (a string), and optionally `operationName`
    /// (a string), `variables` and `extensions` (objects); each may be null.
    pub fn from_json(bytes: &[u8]) -> Result<Self, Refusal> {
        serde_json::from_slice(bytes).map_err(|e| {
            Refusal::http(
                StatusCode::BAD_REQUEST,
                format!(
                    "the body is not a GraphQL request (a JSON object with a string `query`, \
                     optional `operationName`, object `variables` and `extensions`): {e}"
                ),
            )
        })
    }

    /// GET's query string (`variables` and `extensions` as JSON text).
    pub fn from_uri(uri: &Uri) -> Result<Self, Refusal> {
        let bad = |what: String| {
            Refusal::http(
                StatusCode::BAD_REQUEST,
                format!("bad GraphQL GET request: {what}"),
            )
        };
        let Query(params) =
            Query::<GetParams>::try_from_uri(uri).map_err(|e| bad(e.body_text()))?;
        let object = |name: &str, text: Option<String>| -> Result<_, Refusal> {
            text.map(|t| serde_json::from_str::<Option<Map<String, Value>>>(&t))
                .transpose()
                .map(Option::flatten)
                .map_err(|e| bad(format!("`{name}` is not a JSON object: {e}")))
        };
        Ok(Self {
            query: params.query,
            operation_name: params.operation_name,
            variables: object("variables", params.variables)?,
            extensions: object("extensions", params.extensions)?,
        })
    }

    /// The request for the engine, its query filled from (or remembered in) the persisted
    /// queries when it carries `extensions.persistedQuery`.
    pub fn into_request(
        self,
        persisted: Option<&PersistedQueries>,
    ) -> Result<async_graphql::Request, Refusal> {
        let mut query = self.query;
        let extension = self
            .extensions
            .as_ref()
            .and_then(|e| e.get("persistedQuery"));
        PersistedQueries::apply(persisted, extension, &mut query)
            .map_err(|(code, why)| Refusal::graphql(code, why))?;
        let Some(query) = query else {
            return Err(Refusal::http(
                StatusCode::BAD_REQUEST,
                "the request has no `query` (the GraphQL document, a string)",
            ));
        };
        let mut request = async_graphql::Request::new(query);
        if let Some(name) = self.operation_name {
            request = request.operation_name(name);
        }
        if let Some(variables) = self.variables {
            request = request.variables(async_graphql::Variables::from_json(Value::Object(
                variables,
            )));
        }
        Ok(request)
    }
}
