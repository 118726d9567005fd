//! Limits that keep one caller from hurting everyone else: request size and time, connections,
//! per-request WeChat-call budgets, rate limits, table bounds and the shutdown deadline.

use serde::Deserialize;
use smart_default::SmartDefault;

use super::{ConfigError, Secret, invalid};

/// HTTP and per-request limits (`[limits]`).
#[derive(Clone, Debug, Deserialize, SmartDefault)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body accepted on any route, in bytes (`/graphql` answers 413 with a
    /// GraphQL error body past it).
    #[default(64 * 1024)]
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's headers, in milliseconds.
    #[default(10_000)]
    pub header_read_timeout_ms: u64,
    /// How long one request may take as a whole (body included), in milliseconds.
    #[default(30_000)]
    pub request_timeout_ms: u64,
    /// Connections served at once; past it new connections wait in the kernel's backlog.
    #[default(1024)]
    pub max_connections: usize,
    /// Connections one client address may hold open (IPv6: per /64; trusted proxies exempt);
    /// past it its new connections are closed at once.
    #[default(256)]
    pub max_connections_per_ip: usize,
    /// Share of `max_connections` kept for addresses holding fewer than `few_connections_per_ip`
    /// connections, in percent: an address holding more may open another only while fewer than
    /// the rest are open (its new connections are closed at once otherwise).
    #[default(25)]
    pub reserved_connections_percent: u8,
    /// An address holding fewer connections than this may use the reserved share of
    /// `max_connections` (`reserved_connections_percent`).
    #[default(8)]
    pub few_connections_per_ip: usize,
    /// Near `max_connections`, a connection still sending its headers is closed sooner: past
    /// half the cap the header timeout shrinks from `header_read_timeout_ms` toward this, in ms.
    #[default(1_000)]
    pub header_read_timeout_under_load_ms: u64,
    /// Largest request head (request line and headers) read, in bytes; past it the answer is 431
    /// and the connection closes, before any more of it is buffered.
    #[default(16 * 1024)]
    pub max_header_bytes: usize,
    /// Most headers one request may carry; past it the answer is 431.
    #[default(100)]
    pub max_headers: usize,
    /// Bytes of response bodies not yet sent that one client address may hold at once (IPv6:
    /// per /64; through trusted proxies, per forwarded client); an answer that would take it
    /// past this is replaced by a 503 naming the setting.
    #[default(16 * 1024 * 1024)]
    pub max_unsent_response_bytes_per_ip: usize,
    /// On shutdown, how long in-flight requests (and running jobs) may run before the rest are
    /// closed (jobs: queued again from their checkpoints), in ms.
    #[default(10_000)]
    pub shutdown_grace_ms: u64,
    /// Login mutations (`loginWithMiniProgram`, `loginWithOfficialAccount`, `loginWithWebsite`,
    /// `loginWithMobileApp`, `redeemLoginTicket`, `refreshSession`) allowed in one GraphQL
    /// request, aliases included.
    #[default(1)]
    pub logins_per_request: usize,
    /// `startOfficialAccountLogin` and `startWebsiteLogin` fields (and the deprecated
    /// `officialAccountAuthorizeUrl`; each stores a state) allowed in one GraphQL request,
    /// aliases included.
    #[default(5)]
    pub states_per_request: usize,
    /// OA web-authorization states stored per app, at most, at any moment and on any number of
    /// instances, so anonymous callers cannot grow the table without bound: each app's states
    /// take this many slots in turn, and a new state replaces the one issued this many states
    /// before it (a unique index on the slot is the bound).
    #[default(10_000)]
    pub max_live_states_per_app: u32,
    /// How often expired states and login tickets are purged (the `purge_expired` job, on one
    /// instance at a time), in seconds.
    #[default(60)]
    pub purge_interval_secs: u64,
    /// How long a request waits for a database connection when the pool is exhausted, in ms;
    /// past it the caller gets a retryable `UNAVAILABLE` (HTTP 503 on the routes).
    #[default(5_000)]
    pub pool_wait_ms: u64,
    /// Root fields that may call WeChat's server API or start a job (`wechatAccessToken`,
    /// `syncOfficialAccountFollower`, `syncOfficialAccountFollowers`, `sendWeChatMessage`,
    /// `sendWeChatMessages`, `wechatJsSdkConfig`; and `recordWeChatSubscribeConsent`) allowed in
    /// one GraphQL request, aliases included.
    #[default(5)]
    pub wechat_fields_per_request: usize,
    /// A webhook push whose `timestamp` is further than this from now is refused, in seconds.
    #[default(300)]
    pub webhook_freshness_secs: u64,
    /// Processed webhook events are kept this long (then purged), in seconds.
    #[default(604_800)]
    pub webhook_retention_secs: u64,
    /// How long a webhook push waits for its event to be processed before answering WeChat
    /// `success`, in milliseconds (the event is stored first and processed by the job runner
    /// either way; at most 4,000: WeChat gives up after 5 s). 0: answer at once.
    #[default(1_000)]
    pub webhook_answer_wait_ms: u64,
    /// Proxies whose `X-Forwarded-For` is believed (addresses or CIDR blocks); the client is the
    /// right-most address not among them. Empty: the peer address is the client.
    pub trusted_proxies: Vec<String>,
}

/// One token bucket: `burst` at once, refilled at `per_second`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    /// How many may come at once.
    pub burst: u32,
    /// How many per second come back (may be fractional, e.g. 0.5).
    pub per_second: f64,
}

impl Bucket {
    const fn new(burst: u32, per_second: f64) -> Self {
        Self { burst, per_second }
    }
}

/// Limits for one kind of action, per client address and per app.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ActionLimit {
    /// Per client address (IPv6: per /64).
    pub per_ip: Bucket,
    /// Per WeChat app (none for actions without an app).
    #[serde(default)]
    pub per_app: Option<Bucket>,
}

/// Rate limits (`[rate_limits]`), enforced by each instance on its own.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// Whether rate limits apply at all (benchmarks turn them off).
    pub enabled: bool,
    /// `loginWithMiniProgram` and `loginWithOfficialAccount` (each calls WeChat).
    pub login: ActionLimit,
    /// `startOfficialAccountLogin` (and the deprecated `officialAccountAuthorizeUrl`) and
    /// `GET /auth/official-account/{appId}/authorize` (each stores a state).
    pub authorize: ActionLimit,
    /// `redeemLoginTicket`.
    pub ticket: ActionLimit,
    /// `refreshSession`.
    pub refresh: ActionLimit,
    /// `wechatJsSdkConfig` (a page load each: it signs with the app's shared `jsapi_ticket`).
    pub js_sdk: ActionLimit,
    /// `POST /oauth2/introspect`; `per_app` is the bucket of each API key.
    pub introspect: ActionLimit,
    /// `POST /oauth2/revoke`.
    pub revoke: ActionLimit,
    /// Keep every bucket in this Redis (`redis://host:port/db`), so that every instance using
    /// it shares one limit; unset: each instance keeps its own. Unreachable: each instance
    /// falls back to its own buckets (logged, `wechat_identity_rate_limit_redis_up` 0).
    pub redis_url: Option<Secret>,
    /// The prefix of the keys in Redis.
    pub redis_prefix: String,
    /// How long a check waits for Redis before it uses the instance's own buckets.
    pub redis_timeout_ms: u64,
}

impl Default for RateLimits {
    fn default() -> Self {
        // Per address: 100 at once, 5 a second after that, so a carrier NAT's burst of 100
        // logins in 10 s passes, a flood of hundreds a second is refused, and an address is
        // whole again 20 s after its flood stops.
        let per_ip = Bucket::new(100, 5.0);
        Self {
            enabled: true,
            login: ActionLimit {
                per_ip,
                per_app: Some(Bucket::new(1000, 100.0)),
            },
            authorize: ActionLimit {
                per_ip,
                per_app: Some(Bucket::new(1000, 100.0)),
            },
            ticket: ActionLimit {
                per_ip,
                per_app: None,
            },
            refresh: ActionLimit {
                per_ip,
                per_app: None,
            },
            // Every page load of an Official Account's H5 pages asks for one: twice the
            // logins' room per address, and an app's pages may be busy.
            js_sdk: ActionLimit {
                per_ip: Bucket::new(200, 10.0),
                per_app: Some(Bucket::new(5000, 500.0)),
            },
            // A gateway asks for each call it forwards unless it caches the answers: room for
            // a busy one per key, from one address or a few.
            introspect: ActionLimit {
                per_ip: Bucket::new(1000, 200.0),
                per_app: Some(Bucket::new(1000, 200.0)),
            },
            revoke: ActionLimit {
                per_ip,
                per_app: None,
            },
            redis_url: None,
            redis_prefix: "wechat-identity:rl:".into(),
            redis_timeout_ms: 100,
        }
    }
}

impl Limits {
    /// Checks the limits; errors name the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("limits.max_body_bytes", self.max_body_bytes as u64),
            ("limits.header_read_timeout_ms", self.header_read_timeout_ms),
            ("limits.request_timeout_ms", self.request_timeout_ms),
            ("limits.max_connections", self.max_connections as u64),
            (
                "limits.max_connections_per_ip",
                self.max_connections_per_ip as u64,
            ),
            (
                "limits.few_connections_per_ip",
                self.few_connections_per_ip as u64,
            ),
            (
                "limits.header_read_timeout_under_load_ms",
                self.header_read_timeout_under_load_ms,
            ),
            ("limits.max_headers", self.max_headers as u64),
            (
                "limits.max_unsent_response_bytes_per_ip",
                self.max_unsent_response_bytes_per_ip as u64,
            ),
            ("limits.logins_per_request", self.logins_per_request as u64),
            ("limits.states_per_request", self.states_per_request as u64),
            (
                "limits.max_live_states_per_app",
                u64::from(self.max_live_states_per_app),
            ),
            ("limits.purge_interval_secs", self.purge_interval_secs),
            ("limits.pool_wait_ms", self.pool_wait_ms),
            ("limits.webhook_freshness_secs", self.webhook_freshness_secs),
            (
                "limits.wechat_fields_per_request",
                self.wechat_fields_per_request as u64,
            ),
            ("limits.webhook_retention_secs", self.webhook_retention_secs),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(invalid(key, "must be positive"));
            }
        }
        if self.webhook_answer_wait_ms > 4_000 {
            return Err(invalid(
                "limits.webhook_answer_wait_ms",
                "must be at most 4000 (WeChat gives up on an answer after 5 s)",
            ));
        }
        if self.max_body_bytes > 64 * 1024 * 1024 {
            return Err(invalid("limits.max_body_bytes", "must be at most 64 MiB"));
        }
        self.validate_connections()?;
        for (i, proxy) in self.trusted_proxies.iter().enumerate() {
            if parse_net(proxy).is_none() {
                return Err(invalid(
                    format!("limits.trusted_proxies[{i}]"),
                    format!("`{proxy}` is not an address or CIDR block like 10.0.0.0/8"),
                ));
            }
        }
        Ok(())
    }

    /// Checks the connection and header limits; errors name the key.
    fn validate_connections(&self) -> Result<(), ConfigError> {
        if self.reserved_connections_percent > 90 {
            return Err(invalid(
                "limits.reserved_connections_percent",
                "must be at most 90",
            ));
        }
        if self.header_read_timeout_under_load_ms > self.header_read_timeout_ms {
            return Err(invalid(
                "limits.header_read_timeout_under_load_ms",
                "must be at most limits.header_read_timeout_ms",
            ));
        }
        if !(1024..=256 * 1024).contains(&self.max_header_bytes) {
            return Err(invalid(
                "limits.max_header_bytes",
                "must be between 1024 and 262144",
            ));
        }
        if self.max_headers > 1000 {
            return Err(invalid("limits.max_headers", "must be at most 1000"));
        }
        Ok(())
    }

    /// The parsed `trusted_proxies` (validated at start).
    pub fn trusted_proxy_nets(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|p| parse_net(p))
            .collect()
    }
}

/// An address (a /32 or /128) or a CIDR block.
fn parse_net(text: &str) -> Option<ipnet::IpNet> {
    text.parse::<ipnet::IpNet>().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

impl RateLimits {
    /// Checks every bucket; errors name the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.redis_url {
            let url = url.expose();
            if !url.starts_with("redis://") || url.len() > 2048 || redis::Client::open(url).is_err()
            {
                return Err(invalid(
                    "rate_limits.redis_url",
                    "must be a redis:// URL (TLS to Redis is not built in)",
                ));
            }
        }
        if !(1..=10_000).contains(&self.redis_timeout_ms) {
            return Err(invalid(
                "rate_limits.redis_timeout_ms",
                "must be between 1 and 10000",
            ));
        }
        if self.redis_prefix.len() > 128 {
            return Err(invalid(
                "rate_limits.redis_prefix",
                "must be at most 128 bytes",
            ));
        }
        let actions = [
            ("login", &self.login),
            ("authorize", &self.authorize),
            ("ticket", &self.ticket),
            ("refresh", &self.refresh),
            ("js_sdk", &self.js_sdk),
            ("introspect", &self.introspect),
            ("revoke", &self.revoke),
        ];
        for (name, action) in actions {
            let buckets = [("per_ip", Some(action.per_ip)), ("per_app", action.per_app)];
            for (which, bucket) in buckets {
                let Some(bucket) = bucket else { continue };
                if bucket.burst == 0 {
                    return Err(invalid(
                        format!("rate_limits.{name}.{which}.burst"),
                        "must be at least 1",
                    ));
                }
                if !(bucket.per_second.is_finite()
                    && (0.001..=1_000_000.0).contains(&bucket.per_second))
                {
                    return Err(invalid(
                        format!("rate_limits.{name}.{which}.per_second"),
                        "must be between 0.001 and 1000000",
                    ));
                }
            }
        }
        Ok(())
    }
}
