//! Admins register, change, list and delete event endpoints, and read their deliveries. An
//! endpoint's URL is checked here (http or https, at most 2 KiB, no credentials in it, and no
//! private address unless `events.allow_private_networks`); its secret (`whsec_` and 24 random
//! bytes in base64) is shown once, at registration, and kept sealed with the master key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::UserEventType;
use super::delivery::{is_private, literal_ip};
use crate::crypto::random_bytes;
use crate::db::models::event_delivery::EventDeliveryRow;
use crate::db::models::event_endpoint::{EndpointChange, EventEndpointRow, MAX_ENDPOINTS};
use crate::db::models::now;
use crate::db::models::user_event::UserEventRow;
use crate::db::{Conn, transaction};
use crate::identity::access::Admin;
use crate::identity::audit::{self, AuditAction};
use crate::identity::{IdentityError, Parts};

/// The longest endpoint URL.
pub const MAX_URL_LEN: usize = 2048;

/// The longest description.
pub const MAX_DESCRIPTION_LEN: usize = 500;

/// What an update asks for (`None`: unchanged).
#[derive(Default)]
pub struct EndpointUpdate {
    /// New URL.
    pub url: Option<String>,
    /// New event types.
    pub events: Option<Vec<UserEventType>>,
    /// New description.
    pub description: Option<String>,
    /// Enable (also clears a failing mark) or disable.
    pub enabled: Option<bool>,
}

impl Parts {
    /// The endpoint's signing key (the bytes its `whsec_` secret encodes).
    pub(crate) fn endpoint_secret(
        &self,
        endpoint: &EventEndpointRow,
    ) -> Result<Vec<u8>, IdentityError> {
        let sealed = self
            .sealer
            .open(&endpoint.secret, secret_context(&endpoint.id).as_bytes())
            .map_err(|_| {
                IdentityError::Internal(format!("endpoint {}'s secret does not open", endpoint.id))
            })?;
        let text = String::from_utf8(sealed).unwrap_or_default();
        text.strip_prefix("whsec_")
            .and_then(|b64| STANDARD.decode(b64).ok())
            .ok_or_else(|| IdentityError::Internal("an endpoint secret is malformed".into()))
    }

    /// Checks an endpoint URL (see the module docs); the host is resolved when it is a name.
    async fn check_url(&self, url: &str) -> Result<(), IdentityError> {
        let bad = |why: &str| IdentityError::BadInput(format!("url: {why}"));
        if url.len() > MAX_URL_LEN {
            return Err(bad("at most 2048 characters"));
        }
        let parsed = reqwest::Url::parse(url).map_err(|_| bad("not an absolute URL"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad("must be http or https"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad(
                "must not carry credentials (the signature authenticates us)",
            ));
        }
        let allowed = self
            .config
            .events
            .private_networks_allowed(self.config.sandbox_enabled());
        let Some(host) = parsed.host_str() else {
            return Err(bad("has no host"));
        };
        let private = match literal_ip(host) {
            _ if allowed => false,
            Some(ip) => is_private(ip),
            None => {
                let port = parsed.port_or_known_default().unwrap_or(443);
                let lookup = tokio::net::lookup_host((host, port));
                match tokio::time::timeout(std::time::Duration::from_secs(5), lookup).await {
                    Ok(Ok(addrs)) => {
                        let addrs: Vec<_> = addrs.collect();
                        addrs.is_empty() || addrs.iter().any(|a| is_private(a.ip()))
                    }
                    _ => return Err(bad("the host does not resolve")),
                }
            }
        };
        if private {
            return Err(bad(
                "points at a private, loopback or link-local address (set events.allow_private_networks to allow)",
            ));
        }
        Ok(())
    }
}

/// The URL as the audit log keeps it: no query string (it may carry a token).
fn without_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

fn secret_context(id: &str) -> String {
    format!("event-endpoint:{id}")
}

fn check_events(events: &[UserEventType]) -> Result<String, IdentityError> {
    if events.is_empty() {
        return Err(IdentityError::BadInput(
            "events: name at least one event type".into(),
        ));
    }
    let mut names: Vec<&str> = events.iter().map(|e| e.wire()).collect();
    names.sort_unstable();
    names.dedup();
    Ok(EventEndpointRow::events_column(names))
}

fn check_description(description: Option<&str>) -> Result<(), IdentityError> {
    match description {
        Some(d) if d.chars().count() > MAX_DESCRIPTION_LEN => Err(IdentityError::BadInput(
            format!("description: at most {MAX_DESCRIPTION_LEN} characters"),
        )),
        _ => Ok(()),
    }
}

fn not_found(id: &str) -> IdentityError {
    IdentityError::NotFound(format!(
        "event endpoint `{}` does not exist",
        crate::identity::truncate(id, 64)
    ))
}

impl Admin<'_> {
    /// Registers an endpoint; returns it and its secret (`whsec_…`, shown this once). At most
    /// [`MAX_ENDPOINTS`] (CONFLICT beyond).
    pub async fn register_event_endpoint(
        &self,
        url: &str,
        events: &[UserEventType],
        description: Option<&str>,
    ) -> Result<(EventEndpointRow, String), IdentityError> {
        let events = check_events(events)?;
        check_description(description)?;
        self.check_url(url).await?;
        let id = uuid::Uuid::now_v7().to_string();
        let secret = format!("whsec_{}", STANDARD.encode(random_bytes::<24>()));
        let at = now();
        let row = EventEndpointRow {
            secret: self
                .sealer
                .seal(secret.as_bytes(), secret_context(&id).as_bytes()),
            id,
            url: url.to_owned(),
            events,
            description: description.map(str::to_owned),
            enabled: true,
            failing_since: None,
            last_error: None,
            created_by: self.name.to_owned(),
            created_at: at,
            updated_at: at,
            paused_until: None,
        };
        let actor = self.name;
        transaction(&self.db, async |conn: &mut Conn| -> Result<_, IdentityError> {
            if !EventEndpointRow::insert(conn, &row).await? {
                return Err(IdentityError::Conflict(format!(
                    "at most {MAX_ENDPOINTS} event endpoints; delete one first"
                )));
            }
            let details = json!({"endpointId": row.id, "url": without_query(&row.url), "events": row.event_types().collect::<Vec<_>>()});
            audit::record(conn, actor, AuditAction::RegisterEventEndpoint, None, details).await?;
            Ok(())
        })
        .await?;
        Ok((row, secret))
    }

    /// Changes an endpoint; enabling it clears its failing mark. NOT_FOUND if unknown.
    pub async fn update_event_endpoint(
        &self,
        id: &str,
        update: EndpointUpdate,
    ) -> Result<EventEndpointRow, IdentityError> {
        let events = update.events.as_deref().map(check_events).transpose()?;
        check_description(update.description.as_deref())?;
        if let Some(url) = &update.url {
            self.check_url(url).await?;
        }
        let enable = update.enabled == Some(true);
        let change = EndpointChange {
            url: update.url,
            events,
            description: update.description,
            enabled: update.enabled,
            failing_since: enable.then_some(None),
            last_error: enable.then_some(None),
            updated_at: Some(now()),
        };
        let actor = self.name;
        transaction(&self.db, async |conn: &mut Conn| -> Result<_, IdentityError> {
            if !EventEndpointRow::update(conn, id, &change).await? {
                return Err(not_found(id));
            }
            let row = EventEndpointRow::find(conn, id).await?.ok_or_else(|| not_found(id))?;
            let details = json!({"endpointId": id, "url": without_query(&row.url), "events": row.event_types().collect::<Vec<_>>(), "enabled": row.enabled});
            audit::record(conn, actor, AuditAction::UpdateEventEndpoint, None, details).await?;
            Ok(row)
        })
        .await
    }

    /// Deletes an endpoint and its deliveries. NOT_FOUND if unknown.
    pub async fn delete_event_endpoint(&self, id: &str) -> Result<bool, IdentityError> {
        let actor = self.name;
        transaction(
            &self.db,
            async |conn: &mut Conn| -> Result<_, IdentityError> {
                if !EventEndpointRow::delete(conn, id).await? {
                    return Err(not_found(id));
                }
                let details = json!({"endpointId": id});
                audit::record(conn, actor, AuditAction::DeleteEventEndpoint, None, details).await?;
                Ok(true)
            },
        )
        .await
    }

    /// Every endpoint (at most [`MAX_ENDPOINTS`]), oldest first.
    pub async fn event_endpoints(&self) -> Result<Vec<EventEndpointRow>, IdentityError> {
        Ok(EventEndpointRow::all(&mut self.db.conn().await?).await?)
    }

    /// Up to `limit` deliveries to the endpoint `id` (with `status` only, when given) after the
    /// event `after` (its `seq`), oldest first. NOT_FOUND if the endpoint is unknown.
    pub async fn event_deliveries(
        &self,
        id: &str,
        status: Option<&str>,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<(EventDeliveryRow, UserEventRow)>, IdentityError> {
        let mut conn = self.db.conn().await?;
        if EventEndpointRow::find(&mut conn, id).await?.is_none() {
            return Err(not_found(id));
        }
        Ok(EventDeliveryRow::page(&mut conn, id, status, after, limit).await?)
    }
}
