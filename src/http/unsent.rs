//! Answers a client has not read yet: every response body goes out in bounded chunks (so the
//! connection's write buffer holds a bounded part of it at a time), and the bytes of all bodies
//! not yet fully sent are bounded per client address
//! (`limits.max_unsent_response_bytes_per_ip`): an answer that would take its address past the
//! budget is replaced by a 503 naming the setting. A client that stops reading holds its share
//! until `limits.request_timeout_ms` passes without progress and the connection closes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::{Body as _, Frame, SizeHint};
use serde_json::json;

/// The most of a body handed to the connection at once, in bytes.
const CHUNK: usize = 16 * 1024;

/// Bytes of unsent response bodies per client address, against one budget each.
#[derive(Clone)]
pub(super) struct Unsent {
    held: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max: usize,
}

/// Part of an address's budget, held by one response body until it is sent or dropped.
struct Share {
    unsent: Unsent,
    key: IpAddr,
    bytes: usize,
}

impl Unsent {
    pub(super) fn new(max: usize) -> Self {
        Self {
            held: Arc::default(),
            max,
        }
    }

    /// `bytes` of `key`'s budget, if that many are left (`force`: taken regardless, for bodies
    /// whose size is only known as they stream).
    fn take(&self, key: IpAddr, bytes: usize, force: bool) -> Option<Share> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let now = held.entry(key).or_default();
        if !force && now.saturating_add(bytes) > self.max {
            if *now == 0 {
                held.remove(&key);
            }
            return None;
        }
        *now += bytes;
        Some(Share {
            unsent: self.clone(),
            key,
            bytes,
        })
    }

    /// Bytes `key` holds now.
    #[cfg(test)]
    fn held(&self, key: IpAddr) -> usize {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.get(&key).copied().unwrap_or(0)
    }

    /// `response` with its body sent in chunks against `key`'s budget, or a 503 naming the
    /// setting when the budget cannot take it. `on_done` runs once the body is sent or dropped.
    pub(super) fn send(
        &self,
        key: IpAddr,
        response: Response,
        on_done: impl FnOnce() + Send + 'static,
    ) -> Response {
        let hint = response.body().size_hint();
        let share = match hint.exact() {
            Some(0) => None,
            Some(len) => {
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                match self.take(key, len, false) {
                    Some(share) => Some(share),
                    None => {
                        tracing::warn!(
                            request_id = ?response.headers().get(super::REQUEST_ID),
                            client = %key,
                            bytes = len,
                            max = self.max,
                            "answer refused: its address has too many bytes of answers unsent \
                             (limits.max_unsent_response_bytes_per_ip)"
                        );
                        let mut refusal = self.refusal(&response);
                        if let Some(id) = response.headers().get(super::REQUEST_ID) {
                            refusal.headers_mut().insert(super::REQUEST_ID, id.clone());
                        }
                        return refusal.map(|body| Body::new(Chunked::new(body, None, on_done)));
                    }
                }
            }
            None => self.take(key, 0, true),
        };
        response.map(|body| Body::new(Chunked::new(body, share, on_done)))
    }

    /// The 503 in place of `response`: a GraphQL error when it was JSON, text otherwise.
    fn refusal(&self, response: &Response) -> Response {
        let message = format!(
            "too many bytes of answers are waiting to be read by this client address (at most \
             {} bytes, limits.max_unsent_response_bytes_per_ip); read them, then retry",
            self.max
        );
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        let json = content_type
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let mut refusal = if json {
            let body = json!({ "errors": [{
                "message": message,
                "extensions": { "code": "UNAVAILABLE" },
            }] });
            let mut refusal = (StatusCode::SERVICE_UNAVAILABLE, body.to_string()).into_response();
            if let Some(content_type) = content_type {
                refusal
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, content_type);
            }
            refusal
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, format!("{message}\n")).into_response()
        };
        refusal
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        refusal
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut held = self
            .unsent
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = held.get_mut(&self.key) {
            *n = n.saturating_sub(self.bytes);
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// A body handed out at most [`CHUNK`] bytes at a time, holding its share of the budget until
/// its end (or until it is dropped).
struct Chunked {
    inner: Body,
    pending: Bytes,
    share: Option<Share>,
    on_done: Option<Box<dyn FnOnce() + Send>>,
}

impl Chunked {
    fn new(inner: Body, share: Option<Share>, on_done: impl FnOnce() + Send + 'static) -> Self {
        Self {
            inner,
            pending: Bytes::new(),
            share,
            on_done: Some(Box::new(on_done)),
        }
    }

    fn done(&mut self) {
        self.share = None;
        if let Some(on_done) = self.on_done.take() {
            on_done();
        }
    }
}

impl Drop for Chunked {
    fn drop(&mut self) {
        self.done();
    }
}

impl hyper::body::Body for Chunked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if this.pending.is_empty() {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.done();
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        // A streamed body (no exact size up front) is charged as it comes.
                        if let Some(share) = &mut this.share
                            && this.inner.size_hint().exact().is_none()
                        {
                            let mut held = share
                                .unsent
                                .held
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner);
                            *held.entry(share.key).or_default() += data.len();
                            share.bytes += data.len();
                        }
                        this.pending = data;
                    }
                    Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
                },
            }
        }
        let n = this.pending.len().min(CHUNK);
        Poll::Ready(Some(Ok(Frame::data(this.pending.split_to(n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self.inner.size_hint();
        let pending = self.pending.len() as u64;
        hint.set_lower(hint.lower() + pending);
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper + pending);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;

    use super::*;

    #[tokio::test]
    async fn a_body_holds_its_share_until_sent_and_goes_out_in_chunks() {
        let unsent = Unsent::new(100_000);
        let key: IpAddr = "192.0.2.1".parse().unwrap();
        let big = || Response::new(Body::from(vec![b'x'; 60_000]));
        let first = unsent.send(key, big(), || {});
        assert_eq!(unsent.held(key), 60_000);
        let refused = unsent.send(key, big(), || {});
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        let text = refused.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&text).contains("limits.max_unsent_response_bytes_per_ip"));
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        drop(unsent.send(other, big(), || {}));
        assert_eq!(unsent.held(other), 0, "a dropped body gives its share back");
        let mut body = first.into_body();
        let mut sizes = Vec::new();
        while let Some(frame) = body.frame().await {
            sizes.push(frame.unwrap().into_data().unwrap().len());
        }
        assert_eq!(sizes.iter().sum::<usize>(), 60_000);
        assert!(sizes.iter().all(|n| *n <= CHUNK), "{sizes:?}");
        assert_eq!(unsent.held(key), 0, "a sent body gives its share back");
    }
}
