//! `/graphql`: reads the request (JSON, at most `limits.max_body_bytes`), authenticates the
//! caller from the `Authorization` header, attaches per-request data (caller, client info,
//! DataLoader) and runs the schema.

use std::net::SocketAddr;

use async_graphql::dataloader::DataLoader;
use async_graphql::http::GraphiQLSource;
use async_graphql_axum::GraphQLResponse;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};

use super::HttpState;
use crate::graphql::budget::Budget;
use crate::graphql::error::ErrorCode;
use crate::graphql::loaders::DbLoader;

pub(super) async fn post_graphql(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match read_request(&state, &headers, body).await {
        Ok(request) => execute(&state, peer, &headers, request)
            .await
            .into_response(),
        Err((status, message)) => {
            let mut response = error_response(message);
            *response.status_mut() = status;
            response
        }
    }
}

/// The request in a POST body: JSON (`application/json`), within `limits.max_body_bytes`.
async fn read_request(
    state: &HttpState,
    headers: &HeaderMap,
    body: Body,
) -> Result<async_graphql::Request, (StatusCode, String)> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "POST /graphql takes `content-type: application/json`".into(),
        ));
    }
    let max = state.identity.config().limits.max_body_bytes;
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than {max} bytes (limits.max_body_bytes)"),
        )
    };
    if super::declared_length(headers).is_some_and(|len| len > max as u64) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, max).await.map_err(|e| {
        let inner = e.into_inner();
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(inner.as_ref());
        while let Some(error) = source {
            if error.is::<http_body_util::LengthLimitError>() {
                return too_large();
            }
            source = error.source();
        }
        (
            StatusCode::BAD_REQUEST,
            "the request body could not be read".into(),
        )
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            format!("the body is not a GraphQL request in JSON: {e}"),
        )
    })
}

pub(super) async fn get_graphql(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let has_query = uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("query=")));
    if has_query {
        return match async_graphql::http::parse_query_string(uri.query().unwrap_or_default()) {
            Ok(request) if is_mutation(&request) => {
                error_response("mutations must be sent with POST".into())
            }
            Ok(request) => execute(&state, peer, &headers, request)
                .await
                .into_response(),
            Err(e) => error_response(format!("bad GraphQL GET request: {e}")),
        };
    }
    match () {
        _ if wants_html => {
            Html(GraphiQLSource::build().endpoint("/graphql").finish()).into_response()
        }
        _ => error_response("GET /graphql needs a `query` parameter".into()),
    }
}

/// Whether the request's document holds a mutation (refused over GET: a link must not log in).
fn is_mutation(request: &async_graphql::Request) -> bool {
    async_graphql::parser::parse_query(&request.query).is_ok_and(|doc| {
        doc.operations
            .iter()
            .any(|(_, op)| op.node.ty == async_graphql::parser::types::OperationType::Mutation)
    })
}

fn error_response(message: String) -> Response {
    let mut response =
        async_graphql::Response::from_errors(vec![async_graphql::ServerError::new(message, None)]);
    fill_codes(&mut response);
    GraphQLResponse::from(response).into_response()
}

async fn execute(
    state: &HttpState,
    peer: SocketAddr,
    headers: &HeaderMap,
    request: async_graphql::Request,
) -> GraphQLResponse {
    let access = state
        .identity
        .access(headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()));
    let client = state.client_info(peer, headers);
    let loader = DataLoader::new(DbLoader(access.related()), tokio::spawn);
    let mut request = request.data(access).data(client).data(loader);
    if let Err(error) = Budget::of(&state.identity.config().limits).check_request(&mut request) {
        let mut response = async_graphql::Response::from_errors(vec![error]);
        fill_codes(&mut response);
        return response.into();
    }
    let mut response = state.schema.execute(request).await;
    fill_codes(&mut response);
    response.into()
}

/// Errors raised by the GraphQL engine itself (parse, validation, argument coercion) are the
/// client's: give them BAD_USER_INPUT so every error has a code.
fn fill_codes(response: &mut async_graphql::Response) {
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", ErrorCode::BadUserInput.as_str());
        }
    }
}
