//! Buckets kept in Redis (`rate_limits.redis_url`), so that every instance using the same Redis
//! shares one limit. One round trip per check: a Lua script runs GCRA (the algorithm `governor`
//! runs in memory) over the caller's buckets on Redis's own clock, and takes from them only if
//! every one of them has room. Each key expires when its bucket is full again.
//!
//! Redis unreachable or slower than `rate_limits.redis_timeout_ms`: the check answers `None`
//! and the caller uses the instance's own buckets; Redis is not asked again for
//! [`RETRY_AFTER`], so an outage costs one timeout per few seconds, not one per request.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

use crate::config::Bucket;

/// How long the instance keeps to its own buckets after Redis failed.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// GCRA over `KEYS` (ARGV: each key's emission interval in ms and burst). Returns `{0, 0}` when
/// every bucket had room (all are taken from), else `{i, ms}`: bucket `i` (1-based) is empty
/// for `ms` more milliseconds (none is taken from).
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local tats = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local next_tat = tat + interval
  local allow_at = next_tat - burst * interval
  if now < allow_at then
    return {i, math.ceil(allow_at - now)}
  end
  tats[i] = next_tat
end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], tats[i], 'PX', math.max(1, math.ceil(tats[i] - now)))
end
return {0, 0}
";

/// One bucket to take from: its key (without the prefix) and its size.
pub struct SharedBucket {
    /// `login:ip:203.0.113.7`.
    pub key: String,
    /// Its burst and rate.
    pub bucket: Bucket,
}

/// The Redis all instances share.
pub struct Shared {
    client: redis::Client,
    prefix: String,
    timeout: Duration,
    script: redis::Script,
    connection: tokio::sync::Mutex<Option<ConnectionManager>>,
    /// Until when Redis is not asked (after a failure).
    resting_until: Mutex<Option<Instant>>,
    /// Whether the last check reached Redis ([`UNTRIED`], [`UP`], [`DOWN`]), for the log's
    /// transitions and health.
    state: AtomicU8,
}

/// No check has asked Redis yet.
const UNTRIED: u8 = 0;
/// The last check reached Redis.
const UP: u8 = 1;
/// The last check could not.
const DOWN: u8 = 2;

impl Shared {
    /// Buckets in the Redis at `url`, keys starting with `prefix`. Connects on first use.
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("rate_limits.redis_url: {e}"))?;
        Ok(Self {
            client,
            prefix: prefix.to_owned(),
            timeout,
            script: redis::Script::new(GCRA),
            connection: tokio::sync::Mutex::new(None),
            resting_until: Mutex::new(None),
            state: AtomicU8::new(UNTRIED),
        })
    }

    /// `redis` (the last check reached it), `redis-unreachable` (it could not) or
    /// `redis-untried` (no check has asked it yet).
    pub fn state(&self) -> &'static str {
        match self.state.load(Ordering::Relaxed) {
            UP => "redis",
            DOWN => "redis-unreachable",
            _ => "redis-untried",
        }
    }

    /// Takes one from each of `buckets` if all have room: `Some(Ok(()))`; `Some(Err((i,
    /// wait)))` when bucket `i` has none for `wait`; `None` when Redis could not answer in
    /// time (use the instance's own buckets).
    pub async fn take(&self, buckets: &[SharedBucket]) -> Option<Result<(), (usize, Duration)>> {
        if self.resting() {
            return None;
        }
        match tokio::time::timeout(self.timeout, self.run(buckets)).await {
            Ok(Ok((0, _))) => {
                self.reached();
                Some(Ok(()))
            }
            Ok(Ok((i, ms))) => {
                self.reached();
                let index = usize::try_from(i - 1).unwrap_or_default();
                Some(Err((index, Duration::from_millis(ms.max(0) as u64))))
            }
            Ok(Err(e)) => {
                self.failed(&e.to_string()).await;
                None
            }
            Err(_) => {
                self.failed(&format!(
                    "no answer within {:?} (rate_limits.redis_timeout_ms)",
                    self.timeout
                ))
                .await;
                None
            }
        }
    }

    async fn run(&self, buckets: &[SharedBucket]) -> redis::RedisResult<(i64, i64)> {
        let mut connection = {
            let mut held = self.connection.lock().await;
            match &*held {
                Some(c) => c.clone(),
                None => {
                    let c = ConnectionManager::new(self.client.clone()).await?;
                    *held = Some(c.clone());
                    c
                }
            }
        };
        let mut invocation = self.script.prepare_invoke();
        for b in buckets {
            let interval_ms = 1000.0 / b.bucket.per_second;
            invocation
                .key(format!("{}{}", self.prefix, b.key))
                .arg(interval_ms)
                .arg(b.bucket.burst);
        }
        invocation.invoke_async(&mut connection).await
    }

    fn resting(&self) -> bool {
        let mut resting = self.resting_until.lock().unwrap_or_else(|p| p.into_inner());
        match *resting {
            Some(until) if Instant::now() < until => true,
            Some(_) => {
                *resting = None;
                false
            }
            None => false,
        }
    }

    fn reached(&self) {
        let before = self.state.swap(UP, Ordering::Relaxed);
        if before != UP {
            if before == DOWN {
                tracing::info!(
                    "rate limits: Redis answers again; every instance shares the limits"
                );
            }
            crate::metrics::rate_limit_redis(true);
        }
    }

    async fn failed(&self, error: &str) {
        *self.resting_until.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Instant::now() + RETRY_AFTER);
        // A connection that timed out may be stuck: the next try opens a new one (unless a
        // check is connecting right now: then that one decides).
        if let Ok(mut held) = self.connection.try_lock() {
            *held = None;
        }
        crate::metrics::rate_limit_redis(false);
        if self.state.swap(DOWN, Ordering::Relaxed) != DOWN {
            tracing::warn!(
                error,
                retry_secs = RETRY_AFTER.as_secs(),
                "rate limits: Redis unreachable (rate_limits.redis_url); this instance uses its own buckets until it answers"
            );
        }
    }
}
