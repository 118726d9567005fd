//! Shared by both test suites: waiting for something outside the test's control (a process
//! starting, a browser drawing a page, a connection being seen to close, another session
//! waiting for a lock, a lease running out), by looking again until it is there or a deadline
//! passes. Work the test can drive (the service's jobs) is driven instead, not waited for.

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

/// What a look found: there ([`Ok`]), or not yet, and what it saw instead (shown if the wait
/// times out).
pub trait Look {
    type Value;
    fn found(self) -> Result<Self::Value, String>;
}

impl<T> Look for Option<T> {
    type Value = T;
    fn found(self) -> Result<T, String> {
        self.ok_or_else(|| "nothing yet".to_owned())
    }
}

impl<T, E: Debug> Look for Result<T, E> {
    type Value = T;
    fn found(self) -> Result<T, String> {
        self.map_err(|e| format!("{e:?}"))
    }
}

impl Look for bool {
    type Value = ();
    fn found(self) -> Result<(), String> {
        self.then_some(()).ok_or_else(|| "not yet".to_owned())
    }
}

/// Looks with `check` until it finds what it looks for, and returns that; fails after `within`,
/// saying it waited until `what` and what the last look saw. Looks again after 5 ms, then
/// less and less often, at most every 100 ms.
pub async fn eventually<L: Look, F: Future<Output = L>>(
    within: Duration,
    what: &str,
    mut check: impl FnMut() -> F,
) -> L::Value {
    let deadline = Instant::now() + within;
    let mut pause = Duration::from_millis(5);
    loop {
        let last = match check().await.found() {
            Ok(value) => return value,
            Err(last) => last,
        };
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting until {what}; last look: {last}"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}
