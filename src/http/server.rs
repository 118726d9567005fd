//! The HTTP/1.1 server loop: a cap on concurrent connections (in all, per client address,
//! and a share kept for addresses holding few: `connections`), a cap on the request head's size
//! and header count, a deadline for each request's headers (shorter near the cap) and for each
//! write to a client that stops reading, a budget for answers not yet read (`unsent`), and a
//! shutdown that lets in-flight requests finish within a grace period and then closes whatever
//! is left.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_io_timeout::TimeoutStream;
use tower::ServiceExt as _;

use super::connections::Connections;
use super::unsent::Unsent;
use crate::config::Limits;
use crate::rate_limit::ip_key;

/// Serves `router` on `listener` until `shutdown` resolves, within `limits`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: &Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let admission = Connections::new(limits);
    let unsent = Unsent::new(limits.max_unsent_response_bytes_per_ip);
    let proxies = Arc::new(limits.trusted_proxy_nets());
    let write_timeout = Duration::from_millis(limits.request_timeout_ms);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms))
        // Enforced while reading: past either, hyper answers 431 and closes the connection.
        .max_header_size(limits.max_header_bytes)
        .max_headers(limits.max_headers);
    tokio::pin!(shutdown);
    let mut full_logged = false;
    loop {
        while connections.try_join_next().is_some() {}
        // At the cap, stop accepting: new connections wait in the kernel's backlog.
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if !full_logged {
                    tracing::warn!(
                        max = limits.max_connections,
                        "connection limit reached (limits.max_connections); new connections wait"
                    );
                    full_logged = true;
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors or similar: wait instead of spinning.
                    tracing::error!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        full_logged = false;
        // Trusted proxies carry many clients: the per-address rules are for everyone else.
        let peer_ip = peer.ip().to_canonical();
        let key = (!proxies.iter().any(|net| net.contains(&peer_ip))).then(|| ip_key(peer_ip));
        let admitted = match admission.admit(key) {
            Ok(admitted) => admitted,
            Err(refused) => {
                tracing::debug!(%peer, "connection closed: {}", refused.reason());
                continue; // dropping the stream closes it
            }
        };
        let _ = stream.set_nodelay(true);
        // A client that stops reading cannot hold its connection: a write that makes no
        // progress for this long fails, and the connection closes.
        let mut stream = TimeoutStream::new(stream);
        stream.set_write_timeout(Some(write_timeout));
        // Since when the connection has been waiting for a request's headers (None: a request
        // is being answered), for the header timeout that shrinks under load.
        let (waiting, waiting_rx) = watch::channel(Some(tokio::time::Instant::now()));
        let waiting = Arc::new(waiting);
        let service = {
            let (router, unsent, proxies) = (router.clone(), unsent.clone(), proxies.clone());
            hyper::service::service_fn(move |mut request: axum::http::Request<Incoming>| {
                waiting.send_replace(None);
                request.extensions_mut().insert(ConnectInfo(peer));
                let client = ip_key(client_ip(peer.ip(), request.headers(), &proxies));
                let (router, unsent, waiting) = (router.clone(), unsent.clone(), waiting.clone());
                async move {
                    let response = router.oneshot(request).await?;
                    let sent = move || {
                        waiting.send_replace(Some(tokio::time::Instant::now()));
                    };
                    Ok::<_, Infallible>(unsent.send(client, response, sent))
                }
            })
        };
        let connection = http.serve_connection(TokioIo::new(Box::pin(stream)), service);
        let connection = graceful.watch(connection);
        let admission = admission.clone();
        connections.spawn(async move {
            tokio::select! {
                result = connection => if let Err(e) = result {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                },
                timeout = admission.header_overdue(waiting_rx) => {
                    // hyper closes it itself at the full timeout; this is the shorter one.
                    if admission.is_shortened(timeout) {
                        tracing::debug!(
                            %peer,
                            timeout_ms = timeout.as_millis() as u64,
                            "connection closed: no request headers within the header timeout, \
                             shortened near limits.max_connections (limits.header_read_timeout_ms, \
                             limits.header_read_timeout_under_load_ms)"
                        );
                    }
                }
            }
            drop(slot);
            drop(admitted);
        });
    }
    drop(listener);
    let grace = Duration::from_millis(limits.shutdown_grace_ms);
    tracing::info!(
        in_flight = connections.len(),
        "no longer accepting connections; finishing requests in flight"
    );
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!(
                open = connections.len(),
                grace_ms = limits.shutdown_grace_ms,
                "shutdown grace period over (limits.shutdown_grace_ms); closing the remaining connections"
            );
        }
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// The client's address: the peer, unless the peer is a trusted proxy, in which case the
/// right-most `X-Forwarded-For` address that is not itself a trusted proxy.
pub fn client_ip(
    peer: std::net::IpAddr,
    headers: &axum::http::HeaderMap,
    trusted: &[ipnet::IpNet],
) -> std::net::IpAddr {
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|net| net.contains(ip));
    // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d.
    let peer = peer.to_canonical();
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        match hop.trim().parse::<std::net::IpAddr>() {
            Ok(ip) => {
                let ip = ip.to_canonical();
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            // Garbage in the chain: believe nothing left of it.
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "1.1.1.1, 203.0.113.9, 10.0.0.2".parse().unwrap(),
        );
        let proxy: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        let stranger: std::net::IpAddr = "198.51.100.4".parse().unwrap();
        // Via our proxies: the right-most address they did not add themselves.
        assert_eq!(
            client_ip(proxy, &headers, &trusted),
            "203.0.113.9".parse::<std::net::IpAddr>().unwrap()
        );
        // From anyone else the header is the client's own claim: ignored.
        assert_eq!(client_ip(stranger, &headers, &trusted), stranger);
        assert_eq!(client_ip(proxy, &headers, &[]), proxy);
        // The proxy seen through a dual-stack listener is still the proxy.
        let mapped: std::net::IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(
            client_ip(mapped, &headers, &trusted),
            "203.0.113.9".parse::<std::net::IpAddr>().unwrap()
        );
        headers.insert("x-forwarded-for", "nonsense".parse().unwrap());
        assert_eq!(client_ip(proxy, &headers, &trusted), proxy);
    }
}
