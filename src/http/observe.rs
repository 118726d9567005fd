//! Every request, observed: a request id (the client's `x-request-id` when it is a plain token
//! of at most 128 characters, else a new one; returned in the response), the W3C `traceparent`'s
//! trace id, both on a span around the request (so every log line it causes carries them, the
//! enqueue of its jobs too), one access-log line when it ends (method, route, status,
//! duration, GraphQL operation, client address, request id — never a body, header value,
//! token or variable), and the request-duration histograms by route and status and by GraphQL
//! operation.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

use super::server::client_ip;
use crate::metrics::BoundedLabel;

/// The request-id header.
pub const REQUEST_ID: &str = "x-request-id";

/// The operation a GraphQL request ran, put on its response by the handler for this layer.
#[derive(Clone, Debug)]
pub struct GraphqlOperation {
    /// Its name, bounded (`anonymous` without one; past the first 100 names, `other`).
    pub name: String,
    /// `query`, `mutation`, `subscription`, or `unknown` (it did not parse).
    pub kind: &'static str,
}

impl GraphqlOperation {
    /// An operation that did not parse or is not in its document.
    pub fn unknown() -> Self {
        Self {
            name: "unknown".to_owned(),
            kind: "unknown",
        }
    }

    /// The label of a request's operation name.
    pub fn new(name: Option<&str>, kind: &'static str) -> Self {
        static NAMES: BoundedLabel = BoundedLabel::new(100);
        Self {
            name: name.map_or_else(|| "anonymous".to_owned(), |n| NAMES.label(n)),
            kind,
        }
    }
}

/// The client's request id, if it is one we repeat: 1 to 128 of `[A-Za-z0-9._:-]`.
fn given_request_id(request: &Request) -> Option<String> {
    let value = request.headers().get(REQUEST_ID)?.to_str().ok()?;
    let plain = (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    plain.then(|| value.to_owned())
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`, not all zeros).
fn trace_id(request: &Request) -> Option<String> {
    let value = request.headers().get("traceparent")?.to_str().ok()?;
    let mut parts = value.split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0');
    valid.then(|| trace.to_owned())
}

/// The method as a label: the standard ones, else `OTHER`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}

/// The layer (outermost: it sees the body-size and timeout refusals too).
pub async fn observe(proxies: Arc<Vec<ipnet::IpNet>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id =
        given_request_id(&request).unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let trace_id = trace_id(&request);
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| client_ip(peer.ip(), request.headers(), &proxies));
    // At ERROR level so that no filter turns it off: a warning logged at `RUST_LOG=warn`
    // still names its request.
    let span = tracing::error_span!(
        "request",
        request_id = %request_id,
        trace_id = tracing::field::Empty,
    );
    if let Some(trace) = &trace_id {
        span.record("trace_id", trace.as_str());
    }
    let mut line = AccessLine {
        started,
        method,
        route,
        client,
        request_id,
        trace_id,
        answered: false,
    };
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&line.request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let operation = response.extensions().get::<GraphqlOperation>();
    line.log(response.status().as_u16(), operation);
    response
}

/// What the access line says; logged when the answer is ready, or, if the request is dropped
/// first (the client went away, shutdown), with status 499 when it is dropped.
struct AccessLine {
    started: Instant,
    method: &'static str,
    route: String,
    client: Option<std::net::IpAddr>,
    request_id: String,
    trace_id: Option<String>,
    answered: bool,
}

impl AccessLine {
    fn log(&mut self, status: u16, operation: Option<&GraphqlOperation>) {
        self.answered = true;
        let elapsed = self.started.elapsed();
        crate::metrics::http_request(self.method, self.route.clone(), status, elapsed);
        if let Some(op) = operation {
            crate::metrics::graphql_operation(op.name.clone(), op.kind, elapsed);
        }
        tracing::info!(
            target: "wechat_identity::access",
            method = self.method,
            route = %self.route,
            status,
            duration_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3,
            operation = operation.map(|op| op.name.as_str()),
            operation_type = operation.map(|op| op.kind),
            client = self.client.map(tracing::field::display),
            request_id = %self.request_id,
            trace_id = self.trace_id.as_deref(),
            "request"
        );
    }
}

impl Drop for AccessLine {
    fn drop(&mut self) {
        if !self.answered {
            // nginx's "client closed request": no answer was sent.
            self.log(499, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: &str, value: &str) -> Request {
        axum::http::Request::builder()
            .header(name, value)
            .body(axum::body::Body::empty())
            .unwrap()
    }

    #[test]
    fn request_ids_are_repeated_only_when_plain_and_short() {
        assert_eq!(
            given_request_id(&with(REQUEST_ID, "abc-123:x.y_z")).as_deref(),
            Some("abc-123:x.y_z")
        );
        assert_eq!(given_request_id(&with(REQUEST_ID, "a b")), None);
        assert_eq!(given_request_id(&with(REQUEST_ID, &"a".repeat(129))), None);
    }

    #[test]
    fn trace_ids_come_from_well_formed_traceparents() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            trace_id(&with("traceparent", good)).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f35-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert_eq!(trace_id(&with("traceparent", bad)), None, "{bad}");
        }
    }
}
