//! `/graphql`: reads the request (a JSON POST body of at most `limits.max_body_bytes`, or GET's
//! parameters for queries), authenticates the caller from the `Authorization` header, attaches
//! per-request data (caller, client info, DataLoader), checks the budget and runs the schema
//! within `graphql.execution_timeout_ms`; the answer is at most `graphql.max_response_bytes`. The wire protocol (media types, status codes) is
//! `graphql_wire`; a browser's GET gets GraphiQL (`graphiql`).

use std::net::SocketAddr;
use std::time::Duration;

use async_graphql::dataloader::DataLoader;
use async_graphql::parser::types::OperationType;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;

use super::graphql_wire::{MediaType, Refusal, WireRequest, reply};
use super::observe::GraphqlOperation;
use super::{HttpState, graphiql};
use crate::config::GraphqlConfig;
use crate::graphql::budget::Budget;
use crate::graphql::compiled::{self, Reads};
use crate::graphql::error::ErrorCode;
use crate::graphql::loaders::DbLoader;

pub(super) async fn post_graphql(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(media) = MediaType::negotiate(&headers) else {
        return not_acceptable();
    };
    let wire = match read_body(&state, &headers, body).await {
        Ok(bytes) => WireRequest::from_json(&bytes),
        Err(refusal) => Err(refusal),
    };
    match wire {
        Ok(wire) => execute(&state, peer, &headers, media, wire, false).await,
        Err(refusal) => refusal.reply(media),
    }
}

/// The body of a POST: JSON (`application/json`), within `limits.max_body_bytes`.
async fn read_body(
    state: &HttpState,
    headers: &HeaderMap,
    body: Body,
) -> Result<axum::body::Bytes, Refusal> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(Refusal::http(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "POST /graphql takes `content-type: application/json`",
        ));
    }
    let max = state.identity.config().limits.max_body_bytes;
    let too_large = || {
        Refusal::http(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than {max} bytes (limits.max_body_bytes)"),
        )
    };
    if super::declared_length(headers).is_some_and(|len| len > max as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, max).await.map_err(|e| {
        let inner = e.into_inner();
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(inner.as_ref());
        while let Some(error) = source {
            if error.is::<http_body_util::LengthLimitError>() {
                return too_large();
            }
            source = error.source();
        }
        Refusal::http(
            StatusCode::BAD_REQUEST,
            "the request body could not be read",
        )
    })
}

pub(super) async fn get_graphql(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let has_query = uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("query=")));
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if !has_query && wants_html && state.identity.config().graphql.graphiql {
        return graphiql::page();
    }
    let Some(media) = MediaType::negotiate(&headers) else {
        return not_acceptable();
    };
    match WireRequest::from_uri(&uri) {
        Ok(wire) => execute(&state, peer, &headers, media, wire, true).await,
        Err(refusal) => refusal.reply(media),
    }
}

/// 406, in `application/json` (the client named no type we can answer in).
fn not_acceptable() -> Response {
    Refusal::http(
        StatusCode::NOT_ACCEPTABLE,
        "`Accept` names no type this endpoint answers in: application/graphql-response+json or \
         application/json (UTF-8)",
    )
    .reply(MediaType::Json)
}

/// The operation `request` selects: its name and type (`None`: the document does not parse,
/// or names no operation it holds, or holds several and names none).
fn selected_operation(
    request: &mut async_graphql::Request,
) -> Option<(Option<String>, OperationType)> {
    let name = request.operation_name.clone();
    let doc = request.parsed_query().ok()?;
    let mut operations = doc.operations.iter();
    let selected = match &name {
        Some(name) => operations.find(|(n, _)| n.is_some_and(|n| n.as_str() == name)),
        None => operations
            .next()
            .filter(|_| doc.operations.iter().count() == 1),
    };
    selected.map(|(n, op)| (n.map(|n| n.to_string()), op.node.ty))
}

/// Whether the operation `request` selects is a mutation (refused over GET: a link must not
/// log in or change anything). A document that does not parse is left for the schema.
fn selects_mutation(request: &mut async_graphql::Request) -> bool {
    if let Some((_, ty)) = selected_operation(request) {
        return ty == OperationType::Mutation;
    }
    // Ambiguous: the schema refuses it unless it is a mutation we cannot tell apart.
    request.parsed_query().is_ok_and(|doc| {
        doc.operations
            .iter()
            .any(|(_, op)| op.node.ty == OperationType::Mutation)
    })
}

/// The operation's labels for the metrics and the access log.
fn operation_labels(request: &mut async_graphql::Request) -> GraphqlOperation {
    match selected_operation(request) {
        Some((name, ty)) => {
            let kind = match ty {
                OperationType::Query => "query",
                OperationType::Mutation => "mutation",
                OperationType::Subscription => "subscription",
            };
            GraphqlOperation::new(name.as_deref(), kind)
        }
        // Not in the document (or no document): the client's name is not admitted as a label.
        None => GraphqlOperation::unknown(),
    }
}

async fn execute(
    state: &HttpState,
    peer: SocketAddr,
    headers: &HeaderMap,
    media: MediaType,
    wire: WireRequest,
    over_get: bool,
) -> Response {
    let mut request = match wire.into_request(state.persisted.as_deref()) {
        Ok(request) => request,
        Err(refusal) => return refusal.reply(media),
    };
    state.documents.attach(&mut request);
    let operation = operation_labels(&mut request);
    let mut response = execute_request(state, peer, headers, media, request, over_get).await;
    response.extensions_mut().insert(operation);
    response
}

async fn execute_request(
    state: &HttpState,
    peer: SocketAddr,
    headers: &HeaderMap,
    media: MediaType,
    mut request: async_graphql::Request,
    over_get: bool,
) -> Response {
    if over_get && selects_mutation(&mut request) {
        return Refusal::mutation_over_get().reply(media);
    }
    let config = state.identity.config();
    let max_bytes = config.graphql.max_response_bytes;
    let access = state
        .identity
        .access(headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()))
        .await;
    if let Err(error) = Budget::of(config).check_request(&mut request, &access) {
        let refused = async_graphql::Response::from_errors(vec![error]);
        return reply(media, refused, max_bytes);
    }
    if !config.graphql.introspection {
        request = request.disable_introspection();
    }
    // The root fields in the order asked (the engine inserts them as they complete).
    let operation_name = request.operation_name.take();
    let variables = std::mem::take(&mut request.variables);
    let root_keys = match request.parsed_query() {
        Ok(doc) => compiled::root_keys(doc, operation_name.as_deref(), &variables),
        Err(_) => Vec::new(),
    };
    request.operation_name = operation_name;
    request.variables = variables;
    let client = state.client_info(peer, headers);
    let loader = DataLoader::new(DbLoader(access.related()), |f| {
        tokio::spawn(tracing::Instrument::in_current_span(f))
    });
    let reads = Reads::new(config.graphql.compiled_reads);
    let request = request.data(access).data(client).data(loader).data(reads);
    let limit = config.graphql.execution_timeout_ms;
    let asks_sdl = request.query.contains("_service");
    match tokio::time::timeout(Duration::from_millis(limit), state.schema.execute(request)).await {
        Ok(mut response) => {
            if asks_sdl {
                state.published.answer(&mut response);
            }
            compiled::order_root(&mut response.data, &root_keys);
            explain_errors(&mut response, &config.graphql);
            reply(media, response, max_bytes)
        }
        Err(_) => Refusal::graphql(
            ErrorCode::Timeout,
            format!(
                "the request ran longer than {limit} ms (graphql.execution_timeout_ms) and was \
                 stopped"
            ),
        )
        .reply(media),
    }
}

/// Errors raised by the GraphQL engine itself (parse, validation, argument coercion) are the
/// client's: give them BAD_USER_INPUT so every error has a code; the engine's depth and
/// complexity refusals name the limit and its setting.
fn explain_errors(response: &mut async_graphql::Response, limits: &GraphqlConfig) {
    for error in &mut response.errors {
        match error.message.as_str() {
            "Query is nested too deep." => {
                error.message = format!(
                    "the query nests deeper than {} levels (graphql.max_depth)",
                    limits.max_depth
                );
            }
            "Query is too complex." => {
                error.message = format!(
                    "the query's complexity is over {} (graphql.max_complexity; each selected \
                     field counts 1, a list field times its page size)",
                    limits.max_complexity
                );
            }
            _ => {}
        }
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", ErrorCode::BadUserInput.as_str());
        }
    }
}
