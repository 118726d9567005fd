//! A push's `signature` covers its token, timestamp and nonce, not its body (in plaintext mode
//! nothing signs the body). So within the freshness window the same signed query must not come
//! with another body: [`ReplayGuard`] remembers each (app, timestamp, nonce) it accepted with a
//! digest of the body, and refuses it with a different one. The same body again is WeChat
//! retrying, which the event store deduplicates. Per process: with several instances a replay
//! sent to another instance is not caught here (encrypted pushes, the default for an app with an
//! EncodingAESKey, sign the message itself).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::webhook::{PushQuery, Refused};
use crate::config::AppConfig;
use crate::types::AppId;

/// Signed queries remembered at most (older ones are forgotten first).
pub const MAX_REMEMBERED: usize = 100_000;

/// (app, timestamp, nonce) → (SHA-256 of the body, when it was first seen).
type Seen = HashMap<(AppId, String, String), (String, Instant)>;

/// See the module docs.
pub struct ReplayGuard {
    seen: Mutex<Seen>,
    window: Duration,
}

impl ReplayGuard {
    /// Remembers queries for twice the freshness window (a timestamp may be that far off).
    pub fn new(freshness: Duration) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            window: freshness * 2,
        }
    }

    /// Refuses a signed query seen before with another body.
    pub fn check(&self, app: &AppConfig, q: &PushQuery, body: &str) -> Result<(), Refused> {
        let (Some(timestamp), Some(nonce)) = (&q.timestamp, &q.nonce) else {
            return Ok(());
        };
        let key = (app.app_id.clone(), timestamp.clone(), nonce.clone());
        let digest = crate::crypto::sha256_hex(body.as_bytes());
        let now = Instant::now();
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() >= MAX_REMEMBERED {
            seen.retain(|_, (_, at)| now.duration_since(*at) < self.window);
        }
        match seen.get(&key) {
            Some((known, _)) if *known != digest => Err(Refused::Unauthorized(
                "this signature came with another message before: refused as a replay".into(),
            )),
            Some(_) => Ok(()),
            None => {
                if seen.len() < MAX_REMEMBERED {
                    seen.insert(key, (digest, now));
                }
                Ok(())
            }
        }
    }
}
