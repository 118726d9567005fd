//! Injected faults: what the next calls of the faked API do instead of answering (`POST
//! /faults` adds them, the API router's middleware applies them).

use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{Refusal, Sandbox, lock};

/// An injected fault for the next `remaining` API calls (optionally only on one path).
#[derive(Clone, Debug)]
pub(super) struct Fault {
    pub(super) path: Option<String>,
    pub(super) errcode: Option<i64>,
    pub(super) delay: Duration,
    /// Run the call (WeChat accepts it), then hold the answer this long.
    pub(super) reply_delay: Duration,
    pub(super) malformed: bool,
    pub(super) remaining: u32,
    /// Matching calls to let through first.
    pub(super) skip: u32,
}

impl Sandbox {
    /// Takes the next fault that applies to `path`, if any.
    fn take_fault(&self, path: &str) -> Option<Fault> {
        let mut faults = lock(&self.inner.faults);
        let i = faults
            .iter()
            .position(|f| f.path.as_deref().is_none_or(|p| p == path))?;
        if faults[i].skip > 0 {
            faults[i].skip -= 1;
            return None;
        }
        let fault = faults[i].clone();
        faults[i].remaining -= 1;
        if faults[i].remaining == 0 {
            faults.remove(i);
        }
        Some(fault)
    }
}

/// Answers a call of the faked API with the pending fault for its path, if there is one (after
/// the fault's delay); otherwise, or when the fault is only a delay, runs the call (and holds
/// its answer for the fault's reply delay: the call took effect, its caller does not know yet).
pub(super) async fn apply_fault(
    State(sandbox): State<Sandbox>,
    request: Request,
    next: Next,
) -> Response {
    let Some(fault) = sandbox.take_fault(request.uri().path()) else {
        return next.run(request).await;
    };
    if !fault.delay.is_zero() {
        tokio::time::sleep(fault.delay).await;
    }
    if fault.malformed {
        return ([("content-type", "application/json")], "{\"openid\": \"o").into_response();
    }
    match fault.errcode {
        Some(errcode) => Refusal(errcode, "sandbox injected fault").into_response(),
        None => {
            let answer = next.run(request).await;
            tokio::time::sleep(fault.reply_delay).await;
            answer
        }
    }
}
