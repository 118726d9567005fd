//! An event endpoint for the benches (`bench --event-endpoint`): a receiver on loopback that
//! counts what it is sent and answers 204, registered for every event type through the admin
//! API, as another team's would be.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::identity::Identity;
use crate::identity::events::UserEventType;

/// The receiver and the endpoint it is registered as.
pub struct Receiver {
    endpoint_id: String,
    received: Arc<AtomicUsize>,
    key: &'static str,
}

impl Receiver {
    /// Starts the receiver and registers it with the admin key `key`.
    pub async fn register(identity: &Identity, key: &'static str) -> Result<Self, String> {
        let received = Arc::new(AtomicUsize::new(0));
        let count = received.clone();
        let route = axum::routing::post(move || {
            let count = count.clone();
            async move {
                count.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let url = format!(
            "http://{}/hooks",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        let router = axum::Router::new().route("/hooks", route);
        tokio::spawn(async move { axum::serve(listener, router).await });
        let access = identity
            .access(Some(format!("Bearer {key}").as_bytes()))
            .await;
        let admin = access.admin().map_err(|e| e.to_string())?;
        let (row, _) = admin
            .register_event_endpoint(&url, UserEventType::ALL, Some("bench"))
            .await
            .map_err(|e| e.to_string())?;
        println!("event endpoint registered for every event type: {url}");
        Ok(Self {
            endpoint_id: row.id,
            received,
            key,
        })
    }

    /// Waits (at most a minute) until nothing is pending for the endpoint, and prints how many
    /// events it received and how long the last ones took after the phases ended.
    pub async fn report(&self, identity: &Identity) -> Result<(), String> {
        let start = Instant::now();
        let access = identity
            .access(Some(format!("Bearer {}", self.key).as_bytes()))
            .await;
        let admin = access.admin().map_err(|e| e.to_string())?;
        loop {
            let pending = admin
                .event_deliveries(&self.endpoint_id, Some("pending"), None, 1)
                .await
                .map_err(|e| e.to_string())?;
            if pending.is_empty() || start.elapsed() > Duration::from_secs(60) {
                let left = if pending.is_empty() { "none" } else { "some" };
                println!(
                    "events: {} delivered to the endpoint; {left} pending {:.1} s after the last phase",
                    self.received.load(Ordering::Relaxed),
                    start.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
