//! Who may hold a connection, and for how long without sending a request: the cap on
//! connections per client address, a share of `limits.max_connections` kept for addresses
//! holding few connections, and a header timeout that shrinks as connections pile up.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::Limits;

/// Why a connection was refused; each names the setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refused {
    /// The address holds `limits.max_connections_per_ip` already.
    PerAddress,
    /// The address holds `limits.few_connections_per_ip` or more, and only the reserved share
    /// (`limits.reserved_connections_percent`) is left.
    Reserved,
}

impl Refused {
    /// What the log says, naming the settings.
    pub(super) fn reason(self) -> &'static str {
        match self {
            Self::PerAddress => {
                "per-address connection limit reached (limits.max_connections_per_ip)"
            }
            Self::Reserved => {
                "the rest of limits.max_connections is kept for addresses holding fewer than \
                 limits.few_connections_per_ip connections (limits.reserved_connections_percent)"
            }
        }
    }
}

/// Open connections, in all and per client address.
#[derive(Default)]
struct Open {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// The server's connections: admits or refuses new ones and knows how loaded it is.
#[derive(Clone)]
pub(super) struct Connections(Arc<Inner>);

struct Inner {
    open: Mutex<Open>,
    /// `open.total` in sixteenths of the cap, so a connection waiting for its headers rechecks
    /// its deadline when the load changes, without waking on every accept.
    level: watch::Sender<usize>,
    max: usize,
    per_ip: usize,
    few: usize,
    /// Addresses holding `few` or more get a connection only while fewer than this are open.
    crowd: usize,
    header_timeout: Duration,
    header_timeout_under_load: Duration,
}

/// One admitted connection; dropping it gives its place back.
pub(super) struct Admitted {
    connections: Connections,
    /// None for a trusted proxy (not counted per address).
    key: Option<IpAddr>,
}

impl Connections {
    pub(super) fn new(limits: &Limits) -> Self {
        let max = limits.max_connections;
        let reserved = max * usize::from(limits.reserved_connections_percent) / 100;
        let header_timeout = Duration::from_millis(limits.header_read_timeout_ms);
        Self(Arc::new(Inner {
            open: Mutex::default(),
            level: watch::Sender::new(0),
            max,
            per_ip: limits.max_connections_per_ip,
            few: limits.few_connections_per_ip,
            crowd: max - reserved,
            header_timeout,
            header_timeout_under_load: header_timeout.min(Duration::from_millis(
                limits.header_read_timeout_under_load_ms,
            )),
        }))
    }

    /// Admits a connection from `key` (None: a trusted proxy, exempt from the per-address
    /// rules), or says which limit refuses it.
    pub(super) fn admit(&self, key: Option<IpAddr>) -> Result<Admitted, Refused> {
        let inner = &self.0;
        let mut open = inner.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = key {
            let held = open.per_address.get(&key).copied().unwrap_or(0);
            if held >= inner.per_ip {
                return Err(Refused::PerAddress);
            }
            if held >= inner.few && open.total >= inner.crowd {
                return Err(Refused::Reserved);
            }
            *open.per_address.entry(key).or_default() += 1;
        }
        open.total += 1;
        inner.publish(open.total);
        Ok(Admitted {
            connections: self.clone(),
            key,
        })
    }

    /// How long a connection may take to send a request's headers now: the full
    /// `limits.header_read_timeout_ms` up to half the cap, shrinking from there toward
    /// `limits.header_read_timeout_under_load_ms` at the cap.
    pub(super) fn header_timeout(&self) -> Duration {
        let inner = &self.0;
        let total = inner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total;
        let half = inner.max / 2;
        if total <= half {
            return inner.header_timeout;
        }
        let over = (total - half).min(inner.max - half) as f64 / (inner.max - half).max(1) as f64;
        let span = inner.header_timeout - inner.header_timeout_under_load;
        inner.header_timeout - span.mul_f64(over)
    }

    /// Resolves when a connection that has been waiting for a request's headers since the
    /// time in `waiting` (None: not waiting) is past the header timeout of the moment; the
    /// timeout that applied is returned.
    pub(super) async fn header_overdue(
        &self,
        mut waiting: watch::Receiver<Option<Instant>>,
    ) -> Duration {
        let mut level = self.0.level.subscribe();
        loop {
            let since = *waiting.borrow_and_update();
            let Some(since) = since else {
                if waiting.changed().await.is_err() {
                    return std::future::pending().await;
                }
                continue;
            };
            let timeout = self.header_timeout();
            let deadline = since + timeout;
            if Instant::now() >= deadline {
                return timeout;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                changed = waiting.changed() => if changed.is_err() {
                    return std::future::pending().await;
                },
                _ = level.changed() => {}
            }
        }
    }

    /// Whether `timeout` is shorter than the configured header timeout (the server is loaded).
    pub(super) fn is_shortened(&self, timeout: Duration) -> bool {
        timeout < self.0.header_timeout
    }
}

impl Inner {
    fn publish(&self, total: usize) {
        let level = total * 16 / self.max.max(1);
        self.level.send_if_modified(|old| {
            let changed = *old != level;
            *old = level;
            changed
        });
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let inner = &self.connections.0;
        let mut open = inner.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = self.key
            && let Some(n) = open.per_address.get_mut(&key)
        {
            *n -= 1;
            if *n == 0 {
                open.per_address.remove(&key);
            }
        }
        open.total -= 1;
        inner.publish(open.total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_connections: 20,
            max_connections_per_ip: 10,
            few_connections_per_ip: 2,
            reserved_connections_percent: 25,
            header_read_timeout_ms: 10_000,
            header_read_timeout_under_load_ms: 1_000,
            ..Limits::default()
        }
    }

    #[test]
    fn busy_addresses_leave_the_reserved_share_to_addresses_holding_few() {
        let connections = Connections::new(&limits());
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "192.0.2.1".parse().unwrap(),
            "192.0.2.2".parse().unwrap(),
            "192.0.2.3".parse().unwrap(),
        );
        let mut held = Vec::new();
        for _ in 0..10 {
            held.push(connections.admit(Some(a)).unwrap());
        }
        assert_eq!(connections.admit(Some(a)).err(), Some(Refused::PerAddress));
        for _ in 0..5 {
            held.push(connections.admit(Some(b)).unwrap());
        }
        // 15 of 20 open: the last 5 are for addresses holding fewer than 2.
        assert_eq!(connections.admit(Some(b)).err(), Some(Refused::Reserved));
        held.push(connections.admit(Some(c)).unwrap());
        held.push(connections.admit(Some(c)).unwrap());
        assert_eq!(connections.admit(Some(c)).err(), Some(Refused::Reserved));
        // A trusted proxy is not an address holding many.
        held.push(connections.admit(None).unwrap());
        held.truncate(5);
        assert!(connections.admit(Some(b)).is_ok(), "places come back");
    }

    #[test]
    fn the_header_timeout_shrinks_past_half_the_cap() {
        let connections = Connections::new(&limits());
        let mut held = Vec::new();
        for _ in 0..10 {
            held.push(connections.admit(None).unwrap());
        }
        assert_eq!(connections.header_timeout(), Duration::from_secs(10));
        for _ in 0..5 {
            held.push(connections.admit(None).unwrap());
        }
        assert_eq!(connections.header_timeout(), Duration::from_millis(5_500));
        for _ in 0..5 {
            held.push(connections.admit(None).unwrap());
        }
        assert_eq!(connections.header_timeout(), Duration::from_secs(1));
    }
}
