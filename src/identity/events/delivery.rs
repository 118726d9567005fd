//! Delivering user events to endpoints, the Standard Webhooks way: a POST of the event's body
//! with `webhook-id` (the event id, the same on every retry), `webhook-timestamp` (Unix
//! seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed with
//! the endpoint's `whsec_` secret. A 2xx answer delivers it; anything else (or no answer within
//! `events.timeout_ms`) is retried after `events.retry_initial_secs`, doubling up to
//! `events.retry_max_secs`, until `events.give_up_after_secs` after the event: then the delivery
//! is `failed` and its endpoint marked failing. The answer's body is never read. Redirects are
//! not followed, and unless `events.allow_private_networks` the host is resolved here and
//! refused if any address is private (so a name cannot be pointed inside later).
//!
//! One run of the job (`jobs/event_delivery.rs`, leased: one instance at a time) serves every
//! endpoint with due deliveries at once, each `events.concurrency` at a time; per user only the
//! oldest pending delivery is due, so a user's events arrive in order.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt as _;

use super::body;
use crate::db::models::event_delivery::{Attempt, EventDeliveryRow};
use crate::db::models::event_endpoint::EventEndpointRow;
use crate::db::models::now;
use crate::db::models::user_event::UserEventRow;
use crate::identity::IdentityError;
use crate::identity::access::System;

/// The signature header's value for this delivery (Standard Webhooks, `v1`).
pub fn signature(secret: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let signed = hmac::sign(&key, format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(signed.as_ref()))
}

/// Whether an address is one an endpoint may not use without `events.allow_private_networks`:
/// loopback, private, link-local, unspecified, shared (CGNAT), multicast, documentation, and
/// IPv6 unique-local and link-local (and IPv4 mapped into IPv6 as such).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            o[0] >= 240
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let embedded = |hi: u16, lo: u16| {
                IpAddr::V4(std::net::Ipv4Addr::from(
                    (u32::from(hi) << 16) | u32::from(lo),
                ))
            };
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            // NAT64 (64:ff9b::/96, 64:ff9b:1::/48) and 6to4 (2002::/16) reach IPv4 addresses.
            if s[0] == 0x64 && s[1] == 0xff9b {
                return is_private(embedded(s[6], s[7])) || s[2] != 0;
            }
            if s[0] == 0x2002 {
                return is_private(embedded(s[1], s[2]));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
        }
    }
}

/// Resolves names for deliveries, refusing private addresses (see [`is_private`]).
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() || addrs.iter().any(|a| is_private(a.ip())) {
                return Err(format!("{host} resolves to a private address").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The HTTP client deliveries go out with: no redirects, no proxy, the timeout, and (unless
/// private networks are allowed) the resolver that refuses private addresses.
pub fn client(timeout: Duration, allow_private: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent("wechat-identity-webhooks");
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    builder.build().expect("the delivery client builds")
}

/// What one run of the delivery job did.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeliveryRun {
    /// Deliveries that arrived.
    pub delivered: usize,
    /// Attempts that failed (to be retried or given up).
    pub failed: usize,
}

impl System {
    /// Delivers what is due to every endpoint (see the module docs).
    pub async fn deliver_events(&self) -> Result<DeliveryRun, IdentityError> {
        let at = now();
        let due = EventDeliveryRow::endpoints_due(&mut self.db.conn().await?, at).await?;
        let runs = futures_util::future::join_all(due.iter().map(|e| self.deliver_to(e))).await;
        let mut run = DeliveryRun::default();
        for r in runs {
            let (delivered, failed) = r?;
            run.delivered += delivered;
            run.failed += failed;
        }
        Ok(run)
    }

    /// Delivers what is due to one endpoint, a batch at a time, until nothing is due, the run's
    /// share is sent, or a whole batch failed (the endpoint looks down: its retries wait).
    async fn deliver_to(&self, endpoint_id: &str) -> Result<(usize, usize), IdentityError> {
        let endpoint = EventEndpointRow::find(&mut self.db.conn().await?, endpoint_id).await?;
        let Some(endpoint) = endpoint.filter(|e| e.enabled) else {
            return Ok((0, 0));
        };
        let secret = self.endpoint_secret(&endpoint)?;
        let config = &self.config.events;
        let (mut delivered, mut failed) = (0, 0);
        while delivered + failed < config.per_run {
            let batch = (config.per_run - delivered - failed).min(100) as i64;
            let due = EventDeliveryRow::due(&mut self.db.conn().await?, endpoint_id, now(), batch)
                .await?;
            if due.is_empty() {
                break;
            }
            let fewest = due.iter().map(|(d, _)| d.attempts).min().unwrap_or(0);
            let (endpoint, secret) = (&endpoint, secret.as_slice());
            let results: Vec<bool> = futures_util::stream::iter(due)
                .map(|(d, e)| async move { self.attempt(endpoint, secret, &d, &e).await })
                .buffer_unordered(config.concurrency)
                .collect::<Vec<Result<bool, IdentityError>>>()
                .await
                .into_iter()
                .collect::<Result<_, _>>()?;
            let ok = results.iter().filter(|ok| **ok).count();
            delivered += ok;
            failed += results.len() - ok;
            // Several users' deliveries all failed: the endpoint looks down (one that refuses
            // one event only does not hold up the others).
            if ok == 0 && results.len() > 1 {
                // The endpoint looks down: nothing more is tried before its earliest retry.
                let until = now() + chrono::Duration::seconds(retry_delay(config, fewest) as i64);
                EventEndpointRow::pause(&mut self.db.conn().await?, endpoint_id, until).await?;
                break;
            }
        }
        Ok((delivered, failed))
    }

    /// One attempt at one delivery, recorded; whether it arrived.
    async fn attempt(
        &self,
        endpoint: &EventEndpointRow,
        secret: &[u8],
        delivery: &EventDeliveryRow,
        event: &UserEventRow,
    ) -> Result<bool, IdentityError> {
        let body = body(event);
        let timestamp = chrono::Utc::now().timestamp();
        let allowed = self
            .config
            .events
            .private_networks_allowed(self.config.sandbox_enabled());
        if !allowed && literal_private(&endpoint.url) {
            let at = now();
            let attempt = Attempt {
                at,
                response_status: None,
                error: Some(
                    "the URL names a private address (events.allow_private_networks is off)",
                ),
                retry_at: None,
            };
            let mut conn = self.db.conn().await?;
            EventDeliveryRow::record(&mut conn, &endpoint.id, delivery.event_seq, &attempt).await?;
            crate::metrics::event_delivery("failed");
            return Ok(false);
        }
        let sent = self
            .event_client
            .post(&endpoint.url)
            .header("content-type", "application/json")
            .header("webhook-id", &event.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                signature(secret, &event.id, timestamp, &body),
            )
            .body(body)
            .send()
            .await;
        let at = now();
        let (status, error) = match sent {
            Ok(answer) if answer.status().is_success() => (Some(answer.status().as_u16()), None),
            Ok(answer) => (
                Some(answer.status().as_u16()),
                Some(format!(
                    "the endpoint answered HTTP {}",
                    answer.status().as_u16()
                )),
            ),
            Err(e) => (None, Some(transport_error(&e))),
        };
        let config = &self.config.events;
        let retry_at = error.as_ref().and_then(|_| {
            let delay = retry_delay(config, delivery.attempts);
            let next = at + chrono::Duration::seconds(delay as i64);
            let give_up =
                event.created_at + chrono::Duration::seconds(config.give_up_after_secs as i64);
            // The last try is at the deadline itself.
            (at < give_up).then_some(next.min(give_up))
        });
        let attempt = Attempt {
            at,
            response_status: status.map(i32::from),
            error: error.as_deref(),
            retry_at,
        };
        let mut conn = self.db.conn().await?;
        EventDeliveryRow::record(&mut conn, &endpoint.id, delivery.event_seq, &attempt).await?;
        let outcome = match (&error, retry_at) {
            (None, _) => "delivered",
            (Some(_), Some(_)) => "retry",
            (Some(error), None) => {
                let why = format!("gave up on event {} after its retries: {error}", event.id);
                EventEndpointRow::mark_failing(&mut conn, &endpoint.id, &why, at).await?;
                tracing::warn!(endpoint = %endpoint.id, event = %event.id, %error, "gave up delivering a user event");
                "failed"
            }
        };
        crate::metrics::event_delivery(outcome);
        Ok(error.is_none())
    }
}

/// The wait after a delivery's `attempts`-th failure (the first: 0): doubling from
/// `events.retry_initial_secs`, at most `events.retry_max_secs`.
fn retry_delay(config: &crate::config::EventsConfig, attempts: i32) -> u64 {
    let doubling = 1u64 << attempts.clamp(0, 20);
    config
        .retry_initial_secs
        .saturating_mul(doubling)
        .min(config.retry_max_secs)
}

/// The address a host names when it is one written out (`10.0.0.1`, `[::1]`), not a name.
pub fn literal_ip(host: &str) -> Option<IpAddr> {
    host.trim_matches(|c| c == '[' || c == ']').parse().ok()
}

/// Whether the URL's host is a private address written out (reqwest does not resolve those).
fn literal_private(url: &str) -> bool {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().and_then(literal_ip))
        .is_some_and(is_private)
}

/// What went wrong on the way, in words an admin can act on (no URL, no body).
fn transport_error(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "no answer within events.timeout_ms"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_redirect() {
        "the endpoint redirected (redirects are not followed)"
    } else {
        "the request failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {}", crate::identity::truncate(&cause, 200))
    }
}

#[cfg(test)]
mod tests {
    use super::is_private;

    #[test]
    fn private_addresses_are_refused_in_every_spelling() {
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "198.18.0.1",
            "192.0.0.8",
            "240.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "fec0::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "2002:a00:1::1",
            "2002:7f00:1::1",
            "ff02::1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "203.0.114.1",
            "2606:4700::1111",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }
}
