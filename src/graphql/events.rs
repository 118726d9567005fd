//! User events to other systems: the endpoints admins register (`registerEventEndpoint`,
//! `eventEndpoints`, `updateEventEndpoint`, `deleteEventEndpoint`), their deliveries
//! (`eventDeliveries`), and the feed for teams that poll (`userEvents`).

use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::access;
use super::error::gql;
use super::paging::{Page, PageArgs};
use super::types::utc;
use crate::db::models::event_delivery::EventDeliveryRow;
use crate::db::models::event_endpoint::EventEndpointRow;
use crate::db::models::user_event::UserEventRow;
use crate::error::ApiError;
use crate::identity::events::UserEventType as Kind;
use crate::identity::events::endpoints::EndpointUpdate;

super::graphql_mirror!(
    /// A kind of user event (on the wire and in the feed spelled `user.created`, …).
    pub enum UserEventType mirrors crate::identity::events::UserEventType {
    UserCreated,
    UserUpdated,
    UserMerged,
    UserDisabled,
    UserEnabled,
    UserDeleted,
    IdentityLinked,
    IdentityUnlinked,
}
);

/// Where an endpoint stands.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventEndpointStatus {
    /// Events are queued for it and delivered.
    Active,
    /// A delivery was given up after its retries (`lastError` says why); new events are still
    /// queued and delivered. `updateEventEndpoint(enabled: true)` clears the mark.
    Failing,
    /// Switched off: no events are queued for it.
    Disabled,
}

/// Where a delivery stands.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventDeliveryStatus {
    /// Not delivered yet: waiting for its turn or its next retry.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up after `events.give_up_after_secs` (24 hours) of retries.
    Failed,
}

impl EventDeliveryStatus {
    fn as_str(self) -> &'static str {
        match self {
            EventDeliveryStatus::Pending => "pending",
            EventDeliveryStatus::Delivered => "delivered",
            EventDeliveryStatus::Failed => "failed",
        }
    }
}

/// An endpoint user events are POSTed to (Standard Webhooks).
pub struct EventEndpoint(pub EventEndpointRow);

/// An endpoint user events are POSTed to (Standard Webhooks), registered by an admin.
#[Object]
impl EventEndpoint {
    /// Its id.
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// Where events are POSTed.
    async fn url(&self) -> &str {
        &self.0.url
    }
    /// The event types it takes.
    async fn events(&self) -> Vec<UserEventType> {
        self.0
            .event_types()
            .filter_map(Kind::from_wire)
            .map(UserEventType::from)
            .collect()
    }
    /// What the admin wrote about it.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// Whether events are queued for it.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// Active, failing or disabled.
    async fn status(&self) -> EventEndpointStatus {
        match (self.0.enabled, self.0.failing_since) {
            (false, _) => EventEndpointStatus::Disabled,
            (true, Some(_)) => EventEndpointStatus::Failing,
            (true, None) => EventEndpointStatus::Active,
        }
    }
    /// Since when a delivery was given up (null unless failing).
    async fn failing_since(&self) -> Option<DateTime<Utc>> {
        self.0.failing_since.map(utc)
    }
    /// Why the last given-up delivery failed (never a response body).
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// The API key that registered it.
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    /// When it was registered.
    async fn created_at(&self) -> DateTime<Utc> {
        utc(self.0.created_at)
    }
    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        utc(self.0.updated_at)
    }
}

/// A registered endpoint with its signing secret, shown this once.
#[derive(SimpleObject)]
pub struct RegisteredEventEndpoint {
    /// The endpoint.
    pub endpoint: EventEndpoint,
    /// The signing secret (`whsec_` and base64): verify `webhook-signature` with it. Shown
    /// only here; register the endpoint again to get another.
    pub secret: String,
}

/// One user event, as the feed and the deliveries show it.
pub struct UserEvent(pub UserEventRow);

/// One user event: what the feed (`userEvents`) lists and an endpoint is sent.
#[Object]
impl UserEvent {
    /// The event's id: `webhook-id` on every delivery of it.
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// The type as on the wire (`user.merged`).
    #[graphql(name = "type")]
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    /// The user it is about (a merge's survivor).
    async fn user_id(&self) -> ID {
        ID(self.0.user_id.to_string())
    }
    /// When it happened.
    async fn at(&self) -> DateTime<Utc> {
        utc(self.0.created_at)
    }
    /// The event's `data`, as delivered (see the README's event catalogue).
    async fn data(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_str(&self.0.data).unwrap_or_default())
    }
}

/// One event's delivery to one endpoint.
pub struct EventDelivery(pub EventDeliveryRow, pub UserEventRow);

/// One event's delivery to one endpoint (`eventDeliveries`).
#[Object]
impl EventDelivery {
    /// The event.
    async fn event(&self) -> UserEvent {
        UserEvent(self.1.clone())
    }
    /// Pending, delivered or failed.
    async fn status(&self) -> EventDeliveryStatus {
        match self.0.status.as_str() {
            "delivered" => EventDeliveryStatus::Delivered,
            "failed" => EventDeliveryStatus::Failed,
            _ => EventDeliveryStatus::Pending,
        }
    }
    /// Attempts so far.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    /// When it was last tried.
    async fn last_attempt_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_attempt_at.map(utc)
    }
    /// When it is tried next (pending only).
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        (self.0.status == "pending").then(|| utc(self.0.next_attempt_at))
    }
    /// The HTTP status the endpoint last answered; null if it did not answer.
    async fn response_status(&self) -> Option<i32> {
        self.0.response_status
    }
    /// Why the last attempt failed (the status, or what went wrong on the way).
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// When it was delivered.
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at.map(utc)
    }
}

/// `registerEventEndpoint` input.
#[derive(InputObject)]
pub struct RegisterEventEndpointInput {
    /// Where to POST events: http or https, at most 2 KiB, no private or loopback address
    /// (unless `events.allow_private_networks`).
    pub url: String,
    /// The event types it takes (at least one).
    pub events: Vec<UserEventType>,
    /// A note for admins (at most 500 characters).
    pub description: Option<String>,
}

/// `updateEventEndpoint` input: what is given changes.
#[derive(InputObject)]
pub struct UpdateEventEndpointInput {
    /// A new URL (checked as at registration).
    pub url: Option<String>,
    /// New event types (at least one).
    pub events: Option<Vec<UserEventType>>,
    /// A new note.
    pub description: Option<String>,
    /// Switch it on (also clears a failing mark) or off.
    pub enabled: Option<bool>,
}

fn seq_key(key: &str) -> Option<i64> {
    key.parse().ok().filter(|n| *n >= 0)
}

fn endpoint_id(id: &ID) -> async_graphql::Result<&str> {
    if id.len() > 64 {
        return Err(gql(ApiError::bad_input("id is at most 64 characters")));
    }
    Ok(id.as_str())
}

/// The events queries.
#[derive(Default)]
pub struct EventsQuery;

#[Object]
impl EventsQuery {
    /// The registered event endpoints (at most 20), oldest first.
    /// Admin.
    async fn event_endpoints(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<Vec<EventEndpoint>>> {
        let rows = access::admin(ctx)?.event_endpoints().await.map_err(gql)?;
        Ok(Some(rows.into_iter().map(EventEndpoint).collect()))
    }

    /// An endpoint's deliveries, oldest event first, 1-100 at a time (default 20); only those
    /// with `status` when given. An unknown endpoint is NOT_FOUND.
    /// Admin.
    #[graphql(complexity = "super::paging::page_weight(first) * child_complexity + 1")]
    async fn event_deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint's id.")] endpoint_id: ID,
        #[graphql(desc = "Only deliveries in this state.")] status: Option<EventDeliveryStatus>,
        #[graphql(desc = "Page size, 1-100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<Option<Connection<String, EventDelivery>>> {
        let admin = access::admin(ctx)?;
        let args = PageArgs {
            first,
            after: after.as_deref(),
            ..PageArgs::default()
        };
        let page = Page::parse_keyed("deliveries", &args, seq_key)?;
        let rows = admin
            .event_deliveries(
                self::endpoint_id(&endpoint_id)?,
                status.map(EventDeliveryStatus::as_str),
                page.after,
                page.limit(),
            )
            .await
            .map_err(gql)?;
        Ok(Some(page.connection_with(
            rows,
            |(d, _)| d.event_seq.to_string(),
            |(d, e)| EventDelivery(d, e),
            async_graphql::connection::EmptyFields,
        )))
    }

    /// User events in the order they happened, 1-100 at a time (default 20), kept for
    /// `events.retention_days` (30): the same events endpoints get, for teams that poll. The
    /// cursor is stable: an `endCursor` read later continues exactly where it stopped.
    /// Admin or service.
    #[graphql(complexity = "super::paging::page_weight(first) * child_complexity + 1")]
    async fn user_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1-100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<Option<Connection<String, UserEvent>>> {
        let reader = access::reader(ctx)?;
        let args = PageArgs {
            first,
            after: after.as_deref(),
            ..PageArgs::default()
        };
        let page = Page::parse_keyed("user_events", &args, seq_key)?;
        let rows = reader
            .user_events(page.after, page.limit())
            .await
            .map_err(gql)?;
        Ok(Some(page.connection_with(
            rows,
            |e| e.position.unwrap_or_default().to_string(),
            UserEvent,
            async_graphql::connection::EmptyFields,
        )))
    }
}

/// The events mutations.
#[derive(Default)]
pub struct EventsMutation;

#[Object]
impl EventsMutation {
    /// Registers an endpoint for user events (at most 20; CONFLICT beyond). Returns it with its
    /// signing secret, shown only here. One per request with the other user and endpoint
    /// changes.
    /// Admin.
    async fn register_event_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint.")] input: RegisterEventEndpointInput,
    ) -> async_graphql::Result<Option<RegisteredEventEndpoint>> {
        let admin = access::admin(ctx)?;
        let events: Vec<Kind> = input.events.into_iter().map(Kind::from).collect();
        let (row, secret) = admin
            .register_event_endpoint(&input.url, &events, input.description.as_deref())
            .await
            .map_err(gql)?;
        Ok(Some(RegisteredEventEndpoint {
            endpoint: EventEndpoint(row),
            secret,
        }))
    }

    /// Changes an endpoint; enabling it clears its failing mark. An unknown id is NOT_FOUND.
    /// One per request with the other user and endpoint changes.
    /// Admin.
    async fn update_event_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint's id.")] id: ID,
        #[graphql(desc = "What changes.")] input: UpdateEventEndpointInput,
    ) -> async_graphql::Result<Option<EventEndpoint>> {
        let admin = access::admin(ctx)?;
        let update = EndpointUpdate {
            url: input.url,
            events: input
                .events
                .map(|e| e.into_iter().map(Kind::from).collect()),
            description: input.description,
            enabled: input.enabled,
        };
        let row = admin
            .update_event_endpoint(endpoint_id(&id)?, update)
            .await
            .map_err(gql)?;
        Ok(Some(EventEndpoint(row)))
    }

    /// Deletes an endpoint and its deliveries (pending ones are not sent). An unknown id is
    /// NOT_FOUND. One per request with the other user and endpoint changes.
    /// Admin.
    async fn delete_event_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint's id.")] id: ID,
    ) -> async_graphql::Result<Option<bool>> {
        let admin = access::admin(ctx)?;
        let deleted = admin
            .delete_event_endpoint(endpoint_id(&id)?)
            .await
            .map_err(gql)?;
        Ok(Some(deleted))
    }
}
