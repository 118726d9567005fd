//! A push's `signature` covers its token, timestamp and nonce, not its body (in plaintext mode
//! nothing signs the body). So within the freshness window the same signed query must not come
//! with another body: [`ReplayGuard`] remembers each (app, timestamp, nonce) it accepted with a
//! digest of the body, and refuses it with a different one. The same body again is WeChat
//! retrying, which the event store deduplicates. Per process: with several instances a replay
//! sent to another instance is not caught here (encrypted pushes, the default for an app with an
//! EncodingAESKey, sign the message itself).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::webhook::{PushQuery, Refused};
use crate::config::AppConfig;
use crate::types::AppId;

/// Signed queries remembered at most (older ones are forgotten first).
pub const MAX_REMEMBERED: usize = 100_000;

/// A signed query: (app, timestamp, nonce).
type Key = (AppId, String, String);

/// What the guard remembers: each key's body digest and when it was seen, and the keys in the
/// order they were seen (so the oldest are forgotten first, in O(1) each).
#[derive(Default)]
struct Seen {
    digests: HashMap<Key, (String, Instant)>,
    order: VecDeque<(Instant, Key)>,
}

/// Remembers the signed queries of accepted plaintext pushes for twice the freshness window
/// (at most [`MAX_REMEMBERED`], the oldest forgotten first).
pub struct ReplayGuard {
    seen: Mutex<Seen>,
    window: Duration,
}

impl ReplayGuard {
    /// A guard for pushes fresh within `freshness`.
    pub fn new(freshness: Duration) -> Self {
        Self {
            seen: Mutex::new(Seen::default()),
            window: freshness * 2,
        }
    }

    /// Refuses a plaintext push whose signed query was seen before with another body.
    /// Encrypted pushes are not checked: their `msg_signature` covers the message itself.
    pub fn check(&self, app: &AppConfig, q: &PushQuery, body: &str) -> Result<(), Refused> {
        if q.encrypt_type.as_deref() == Some("aes") {
            return Ok(());
        }
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
        let Seen { digests, order } = &mut *seen;
        while let Some((at, _)) = order.front() {
            if now.duration_since(*at) < self.window && order.len() < MAX_REMEMBERED {
                break;
            }
            if let Some((at, old)) = order.pop_front() {
                if digests.get(&old).is_some_and(|(_, t)| *t == at) {
                    digests.remove(&old);
                }
            }
        }
        match digests.get(&key) {
            Some((known, _)) if *known != digest => Err(Refused::Unauthorized(
                "this signature came with another message before: refused as a replay".into(),
            )),
            Some(_) => Ok(()),
            None => {
                order.push_back((now, key.clone()));
                digests.insert(key, (digest, now));
                Ok(())
            }
        }
    }
}
