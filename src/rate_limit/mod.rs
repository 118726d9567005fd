//! Rate limits per client address and per WeChat app, for the actions an anonymous caller can
//! repeat: logins (each calls WeChat), state creation (each stores a row), ticket redemption,
//! refresh and JS-SDK configs. Built on `governor` (GCRA token buckets, keyed by address in a concurrent map).
//!
//! Without `rate_limits.redis_url` each instance enforces its own limits in memory: behind a
//! load balancer with N instances an address gets up to N times the configured rate. With it,
//! the buckets are kept in Redis (`shared`) and every instance takes from the same ones; while
//! Redis cannot be reached, each instance falls back to its own.

mod shared;

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::{ActionLimit, Bucket, RateLimits};
use shared::{Shared, SharedBucket};

/// What a caller is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// A login mutation (calls WeChat).
    Login,
    /// Creating an OA web-authorization state.
    Authorize,
    /// Redeeming a server-driven login ticket.
    Ticket,
    /// Refreshing a session.
    Refresh,
    /// A JS-SDK config for a page (`wechatJsSdkConfig`).
    JsSdk,
    /// `POST /oauth2/introspect`: its second bucket is per API key, not per app.
    Introspect,
    /// `POST /oauth2/revoke`.
    Revoke,
}

impl Action {
    /// The config section naming this action's limits.
    pub fn config_key(self) -> &'static str {
        match self {
            Action::Login => "rate_limits.login",
            Action::Authorize => "rate_limits.authorize",
            Action::Ticket => "rate_limits.ticket",
            Action::Refresh => "rate_limits.refresh",
            Action::JsSdk => "rate_limits.js_sdk",
            Action::Introspect => "rate_limits.introspect",
            Action::Revoke => "rate_limits.revoke",
        }
    }

    /// What the second bucket is kept per: an app, or (introspection) an API key.
    fn subject(self) -> &'static str {
        match self {
            Action::Introspect => "per_key",
            _ => "per_app",
        }
    }
}

/// A refusal: which limit, and when to try again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limited {
    /// The limit, as the configuration names it (`rate_limits.login.per_ip`).
    pub limit: String,
    /// Whole seconds until a retry can pass (at least 1).
    pub retry_after_secs: u64,
}

struct ActionLimiter {
    limit: ActionLimit,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    /// One bucket per configured app, or API key for [`Action::Introspect`] (keys never come
    /// from the caller).
    per_app: HashMap<String, DefaultDirectRateLimiter>,
}

/// The limiters of one instance.
pub struct Limiter {
    enabled: bool,
    actions: [ActionLimiter; 7],
    clock: DefaultClock,
    /// The buckets in Redis, when `rate_limits.redis_url` is set.
    shared: Option<Shared>,
}

fn quota(bucket: Bucket) -> Quota {
    let period = Duration::from_secs_f64(1.0 / bucket.per_second).max(Duration::from_nanos(1));
    let burst = NonZeroU32::new(bucket.burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl ActionLimiter {
    fn new(limit: &ActionLimit, app_ids: &[&str]) -> Self {
        let per_app = match limit.per_app {
            Some(bucket) => app_ids
                .iter()
                .map(|id| ((*id).to_owned(), RateLimiter::direct(quota(bucket))))
                .collect(),
            None => HashMap::new(),
        };
        Self {
            limit: *limit,
            per_ip: RateLimiter::keyed(quota(limit.per_ip)),
            per_app,
        }
    }
}

/// The key of an address: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its /64, which one
/// subscriber usually holds whole.
pub fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

impl Limiter {
    /// Limiters for `config`, with a per-app bucket for each of `app_ids` and a per-key one for
    /// each API key name of `key_names`; kept in Redis when `rate_limits.redis_url` is set.
    pub fn new(config: &RateLimits, app_ids: &[&str], key_names: &[&str]) -> Self {
        let shared = config
            .redis_url
            .as_ref()
            .filter(|_| config.enabled)
            .and_then(|url| {
                let timeout = Duration::from_millis(config.redis_timeout_ms);
                Shared::new(url.expose(), &config.redis_prefix, timeout)
                    .inspect_err(|e| tracing::error!(error = %e, "rate limits: Redis not used"))
                    .ok()
            });
        Self {
            shared,
            enabled: config.enabled,
            actions: [
                ActionLimiter::new(&config.login, app_ids),
                ActionLimiter::new(&config.authorize, app_ids),
                ActionLimiter::new(&config.ticket, app_ids),
                ActionLimiter::new(&config.refresh, app_ids),
                ActionLimiter::new(&config.js_sdk, app_ids),
                ActionLimiter::new(&config.introspect, key_names),
                ActionLimiter::new(&config.revoke, app_ids),
            ],
            clock: DefaultClock::default(),
        }
    }

    fn limiter(&self, action: Action) -> &ActionLimiter {
        &self.actions[match action {
            Action::Login => 0,
            Action::Authorize => 1,
            Action::Ticket => 2,
            Action::Refresh => 3,
            Action::JsSdk => 4,
            Action::Introspect => 5,
            Action::Revoke => 6,
        }]
    }

    /// Where the buckets are kept: `redis`, `redis-unreachable` (this instance's own, until
    /// Redis answers), `redis-untried` (no limited request yet) or `local`.
    pub fn backend(&self) -> &'static str {
        match &self.shared {
            Some(shared) => shared.state(),
            None => "local",
        }
    }

    /// Takes one `action` for a caller at `ip` (unknown: only the per-app limit applies) on
    /// `app_id` (unknown apps have no bucket: they are refused elsewhere; for
    /// [`Action::Introspect`], the API key's name). In Redis when configured and reachable,
    /// else in this instance's own buckets.
    pub async fn check(
        &self,
        action: Action,
        ip: Option<IpAddr>,
        app_id: Option<&str>,
    ) -> Result<(), Limited> {
        if !self.enabled {
            return Ok(());
        }
        let Some(shared) = &self.shared else {
            return self.check_local(action, ip, app_id);
        };
        let limiter = self.limiter(action);
        let mut buckets = Vec::with_capacity(2);
        let mut names = Vec::with_capacity(2);
        if let Some(ip) = ip {
            buckets.push(SharedBucket {
                key: format!("{}:ip:{}", action.config_key(), ip_key(ip)),
                bucket: limiter.limit.per_ip,
            });
            names.push("per_ip");
        }
        // Only configured apps (and keys) have a bucket: a caller cannot make keys up.
        if let (Some(id), Some(bucket)) = (app_id, limiter.limit.per_app) {
            if limiter.per_app.contains_key(id) {
                buckets.push(SharedBucket {
                    key: format!("{}:{}:{id}", action.config_key(), action.subject()),
                    bucket,
                });
                names.push(action.subject());
            }
        }
        if buckets.is_empty() {
            return Ok(());
        }
        match shared.take(&buckets).await {
            Some(Ok(())) => Ok(()),
            Some(Err((i, wait))) => Err(Limited {
                limit: format!("{}.{}", action.config_key(), names[i.min(names.len() - 1)]),
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            }),
            None => self.check_local(action, ip, app_id),
        }
    }

    /// [`Self::check`] in this instance's own buckets.
    fn check_local(
        &self,
        action: Action,
        ip: Option<IpAddr>,
        app_id: Option<&str>,
    ) -> Result<(), Limited> {
        let limiter = self.limiter(action);
        let refuse = |which: &str, not_until: governor::NotUntil<_>| Limited {
            limit: format!("{}.{which}", action.config_key()),
            retry_after_secs: not_until
                .wait_time_from(self.clock.now())
                .as_secs_f64()
                .ceil()
                .max(1.0) as u64,
        };
        if let Some(ip) = ip {
            limiter
                .per_ip
                .check_key(&ip_key(ip))
                .map_err(|n| refuse("per_ip", n))?;
        }
        if let Some(bucket) = app_id.and_then(|id| limiter.per_app.get(id)) {
            bucket.check().map_err(|n| refuse(action.subject(), n))?;
        }
        Ok(())
    }

    /// Forgets addresses whose buckets are full again, so the maps stay as small as the set of
    /// recently active addresses (called periodically).
    pub fn forget_idle(&self) {
        for limiter in &self.actions {
            limiter.per_ip.retain_recent();
            limiter.per_ip.shrink_to_fit();
        }
    }

    /// How many addresses are tracked (all actions).
    pub fn tracked_addresses(&self) -> usize {
        self.actions.iter().map(|l| l.per_ip.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(burst: u32, per_second: f64) -> RateLimits {
        let action = ActionLimit {
            per_ip: Bucket { burst, per_second },
            per_app: Some(Bucket {
                burst: burst * 2,
                per_second,
            }),
        };
        RateLimits {
            enabled: true,
            login: action,
            authorize: action,
            ticket: action,
            refresh: action,
            js_sdk: action,
            introspect: action,
            revoke: action,
            ..RateLimits::default()
        }
    }

    #[test]
    fn an_address_gets_its_burst_then_a_retry_time() {
        let l = Limiter::new(&limits(3, 0.5), &["wxapp"], &[]);
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        for _ in 0..3 {
            l.check_local(Action::Login, Some(ip), Some("wxapp"))
                .unwrap();
        }
        let refused = l
            .check_local(Action::Login, Some(ip), Some("wxapp"))
            .unwrap_err();
        assert_eq!(refused.limit, "rate_limits.login.per_ip");
        assert_eq!(refused.retry_after_secs, 2);
        // Other addresses and other actions have buckets of their own.
        l.check_local(Action::Login, Some("203.0.113.8".parse().unwrap()), None)
            .unwrap();
        l.check_local(Action::Refresh, Some(ip), None).unwrap();
    }

    #[test]
    fn the_app_bucket_is_shared_by_every_address_and_ipv6_counts_per_64() {
        let l = Limiter::new(&limits(2, 0.01), &["wxapp"], &[]);
        for i in 0..4 {
            let ip: IpAddr = format!("2001:db8:0:{i}::1").parse().unwrap();
            l.check_local(Action::Authorize, Some(ip), Some("wxapp"))
                .unwrap();
        }
        let refused = l
            .check_local(
                Action::Authorize,
                Some("2001:db8:0:9::1".parse().unwrap()),
                Some("wxapp"),
            )
            .unwrap_err();
        assert_eq!(refused.limit, "rate_limits.authorize.per_app");
        // Two addresses of one /64 share a bucket.
        let a: IpAddr = "2001:db8:1:1::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:1::ffff".parse().unwrap();
        l.check_local(Action::Ticket, Some(a), None).unwrap();
        l.check_local(Action::Ticket, Some(b), None).unwrap();
        assert!(l.check_local(Action::Ticket, Some(a), None).is_err());
    }

    #[tokio::test]
    async fn disabled_limits_refuse_nothing() {
        let mut config = limits(1, 0.001);
        config.enabled = false;
        let l = Limiter::new(&config, &[], &[]);
        let ip: IpAddr = "198.51.100.1".parse().unwrap();
        for _ in 0..100 {
            l.check(Action::Login, Some(ip), None).await.unwrap();
        }
    }
}
