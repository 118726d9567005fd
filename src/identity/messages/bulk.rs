//! One message to many users: a `bulk_messages` job on the job runner.
//!
//! The job first lists its recipients into `messages` as `queued` rows, a page of users at a
//! time (the checkpoint is the last user id listed; a unique (job, user) index makes a page
//! listed twice harmless). Then it sends them in batches: one query per route finds how each
//! person of the batch can be reached, the refused are recorded at once, and the rest are sent
//! `messages.bulk_concurrency` at a time within the app's rate (`messages.send_rate_per_sec`):
//! each is claimed (`queued` → `sending`, a conditional update only one runner can win) right
//! before its call, and its outcome written right after.
//!
//! After a crash the job carries on from its checkpoint; messages left `sending` (at most
//! `bulk_concurrency`: those in flight) become `uncertain` and are never sent again, so nobody
//! gets a second copy. WeChat's quota (45009) or a WeChat outage puts the messages it refused
//! back in the queue and pauses the job.

use crate::identity::audit::AuditAction;
use std::time::Duration;

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};

use super::RouteInput;
pub use super::progress::MessageJob;
use super::route::{CheckedRoute, Reach, pick};
use crate::db::models::job::JobRow;
use crate::db::models::message::{MessageRow, MessageStatus, Outcome};
use crate::db::models::now;
use crate::db::models::user::{UserListFilter, UserRow};
use crate::db::queue::{JobSpec, enqueue, find_same, spec};
use crate::db::{Conn, transaction};
use crate::identity::access::{Messenger, System};
use crate::identity::{IdentityError, Parts};
use crate::types::{JobId, MessageId, UserId};

/// User ids one bulk send may list (more: use a filter).
pub const MAX_USER_IDS: usize = 1000;
/// Users listed per page.
const LIST_PAGE: i64 = 1000;

/// Which users a bulk send goes to.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Recipients {
    /// These users (merged ids reach their survivors; each person once).
    UserIds(Vec<UserId>),
    /// Live users with an identity on one of the routes' apps, and (when given) with or
    /// without a unionid.
    Filter {
        /// With (true) or without (false) a unionid.
        has_unionid: Option<bool>,
    },
}

/// A bulk job: one per idempotency key of an API key (key
/// `bulk_messages:{requestedBy}:{idempotencyKey}`), or one per call without one.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkPayload {
    /// Who.
    pub recipients: Recipients,
    /// What, and how to reach them.
    pub routes: Vec<RouteInput>,
    /// The API key that asked.
    pub requested_by: String,
    /// The caller's idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl JobSpec for BulkPayload {
    const KIND: &'static str = "bulk_messages";

    fn dedup_key(&self) -> Option<String> {
        let key = self.idempotency_key.as_ref()?;
        Some(format!("{}:{key}", self.requested_by))
    }
}

impl BulkPayload {
    /// Whether `other` asks for the same send: to whom, what and how.
    fn same_send(&self, other: &Self) -> bool {
        let what = |p: &Self| serde_json::to_value((&p.recipients, &p.routes)).ok();
        what(self) == what(other)
    }
}

/// A bulk job's checkpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkCheckpoint {
    /// Every recipient is listed.
    pub listed: bool,
    /// The last user id listed.
    pub cursor: Option<UserId>,
}

/// How a batch went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchEnd {
    /// More to send.
    More,
    /// Nothing left.
    Done,
    /// WeChat's quota or an outage: carry on after this long.
    Pause(Duration),
}

impl Messenger<'_> {
    /// Starts a bulk send; the same `idempotency_key` returns the job it started first.
    pub async fn send_messages(
        &self,
        recipients: Recipients,
        routes: Vec<RouteInput>,
        idempotency_key: Option<&str>,
    ) -> Result<MessageJob, IdentityError> {
        self.check_routes(&routes).await?;
        if let Recipients::UserIds(ids) = &recipients {
            if ids.is_empty() || ids.len() > MAX_USER_IDS {
                return Err(IdentityError::BadInput(format!(
                    "give 1 to {MAX_USER_IDS} userIds, or a filter"
                )));
            }
        }
        if idempotency_key.is_some_and(|k| k.is_empty() || k.len() > 128) {
            return Err(IdentityError::BadInput(
                "idempotencyKey must be 1-128 characters".into(),
            ));
        }
        let payload = BulkPayload {
            recipients,
            routes,
            requested_by: self.name.to_owned(),
            idempotency_key: idempotency_key.map(str::to_owned),
        };
        let job = match find_same(&self.db, &payload).await? {
            Some(job) => {
                let first = spec::<BulkPayload>(&job).ok().flatten();
                if !first.is_some_and(|first| first.same_send(&payload)) {
                    return Err(IdentityError::Conflict(
                        "idempotencyKey was used for another bulk send; use a new key".into(),
                    ));
                }
                job
            }
            None => enqueue(&self.db, &payload).await?,
        };
        tracing::info!(job = %job.id, key = self.name, "bulk message job started");
        let details = serde_json::json!({"jobId": job.id});
        self.audit(self.name, AuditAction::SendMessages, None, details)
            .await;
        self.identity.message_job_view(job).await
    }

    /// A bulk job by id.
    pub async fn message_job(&self, id: &str) -> Result<Option<MessageJob>, IdentityError> {
        let mut conn = self.db.conn().await?;
        let job = JobRow::find(&mut conn, &JobId::new(id)).await?;
        drop(conn);
        match job {
            Some(job) if job.kind == BulkPayload::KIND => {
                Ok(Some(self.identity.message_job_view(job).await?))
            }
            _ => Ok(None),
        }
    }
}

/// How one message of a batch went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
    /// Sent or refused: recorded.
    Done,
    /// WeChat's quota or an outage, nothing sent: queued again.
    Again,
    /// Another runner had claimed it (or it was handled already).
    Skipped,
}

impl Parts {
    /// One message of a batch: claimed (`queued` → `sending`, with where it goes) right before
    /// its call, within the app's rate, and its outcome written right after, so a crash leaves
    /// at most the messages in flight `uncertain`, and two runners never both send one.
    async fn bulk_send_one(
        &self,
        routes: &[CheckedRoute],
        id: MessageId,
        mut reach: Vec<Reach>,
        first: usize,
    ) -> Result<Sent, IdentityError> {
        let route = &routes[first];
        if let Some(limit) = self.send_limits.get(route.app.app_id.as_str()) {
            limit.until_ready().await;
        }
        let placed = route.placed(reach[first].openid.as_ref(), MessageStatus::Sending);
        let mut conn = self.db.conn().await?;
        if !MessageRow::record_if(&mut conn, &id, MessageStatus::Queued, &placed).await? {
            return Ok(Sent::Skipped);
        }
        drop(conn);
        let outcome = self.attempt(routes, &mut reach, first, &id).await;
        let again = outcome.is_transient_failure();
        let write = if again {
            Outcome::new(MessageStatus::Queued)
        } else {
            outcome
        };
        let mut conn = self.db.conn().await?;
        MessageRow::record_if(&mut conn, &id, MessageStatus::Sending, &write).await?;
        Ok(if again { Sent::Again } else { Sent::Done })
    }
}

impl System {
    /// A (re)started bulk job: its messages left `sending` by a run that died become
    /// `uncertain` (never sent again); its routes, checked again.
    pub async fn bulk_resume(
        &self,
        job_id: &JobId,
        payload: &BulkPayload,
    ) -> Result<Vec<CheckedRoute>, IdentityError> {
        let mut conn = self.db.conn().await?;
        let n = MessageRow::move_job(
            &mut conn,
            job_id,
            MessageStatus::Sending,
            MessageStatus::Uncertain,
        )
        .await?;
        drop(conn);
        if n > 0 {
            tracing::warn!(
                job = %job_id,
                messages = n,
                "a bulk job resumed after a crash: messages in flight then are marked uncertain, not sent again"
            );
        }
        self.check_routes(&payload.routes).await
    }
}

impl System {
    /// Lists the next page of recipients as queued messages; whether more are left.
    pub async fn bulk_list_page(
        &self,
        job_id: &JobId,
        payload: &BulkPayload,
        routes: &[CheckedRoute],
        cp: &mut BulkCheckpoint,
    ) -> Result<bool, IdentityError> {
        let mut conn = self.db.conn().await?;
        // Each listed user, and whether a message may go to them (not a disabled user).
        let users: Vec<(UserId, bool)> = match &payload.recipients {
            Recipients::UserIds(ids) => {
                let mut live: Vec<(UserId, bool)> = Vec::with_capacity(ids.len());
                for id in ids {
                    if let Some(u) = UserRow::find_live(&mut conn, id).await? {
                        if u.deleted_at.is_none() {
                            live.push((u.id, u.disabled_at.is_none()));
                        }
                    }
                }
                live.sort();
                live.dedup();
                live
            }
            Recipients::Filter { has_unionid } => {
                let filter = UserListFilter {
                    include_merged: false,
                    has_unionid: *has_unionid,
                    identity_on: routes
                        .iter()
                        .map(|r| (r.channel.app_kind(), r.app.app_id.clone()))
                        .collect(),
                    ..UserListFilter::default()
                };
                UserRow::page(&mut conn, cp.cursor.as_ref(), LIST_PAGE, &filter)
                    .await?
                    .into_iter()
                    .map(|u| (u.id, u.disabled_at.is_none()))
                    .collect()
            }
        };
        drop(conn);
        let at = now();
        let rows: Vec<MessageRow> = users
            .iter()
            .filter(|(_, reachable)| *reachable)
            .map(|(user_id, _)| MessageRow {
                id: MessageId::generate(),
                user_id: user_id.clone(),
                app_id: None,
                openid: None,
                channel: None,
                template_id: None,
                status: MessageStatus::Queued,
                content: String::new(),
                wechat_msg_id: None,
                error_code: None,
                wechat_errcode: None,
                error: None,
                idempotency_key: None,
                job_id: Some(job_id.clone()),
                created_at: at,
                delivered_at: None,
            })
            .collect();
        transaction(&self.db, async |conn: &mut Conn| {
            MessageRow::insert_queued(conn, &rows).await
        })
        .await?;
        let whole = matches!(payload.recipients, Recipients::UserIds(_));
        cp.cursor = users.last().map(|(u, _)| u.clone()).or(cp.cursor.take());
        cp.listed = whole || (users.len() as i64) < LIST_PAGE;
        Ok(!cp.listed)
    }
}

impl System {
    /// Sends the job's next batch of queued messages.
    pub async fn bulk_send_batch(
        &self,
        job_id: &JobId,
        routes: &[CheckedRoute],
    ) -> Result<BatchEnd, IdentityError> {
        let settings = &self.config.messages;
        let mut conn = self.db.conn().await?;
        let mut batch = MessageRow::of_job(
            &mut conn,
            job_id,
            MessageStatus::Queued,
            settings.bulk_batch as i64,
        )
        .await?;
        if batch.is_empty() {
            return Ok(BatchEnd::Done);
        }
        drop(conn);
        let mut reach = self
            .reach_following_merges(job_id, routes, &mut batch)
            .await?;
        let mut refused = Vec::new();
        let mut to_send = Vec::new();
        for m in &batch {
            let r = reach
                .remove(&m.user_id)
                .unwrap_or_else(|| vec![Reach::default(); routes.len()]);
            match pick(routes, &r, 0) {
                Ok(first) => to_send.push((m.id.clone(), r, first)),
                Err(f) => refused.push((
                    m.id.clone(),
                    Outcome {
                        app_id: Some(routes[0].app.app_id.clone()),
                        channel: Some(routes[0].channel.as_str().to_owned()),
                        template_id: Some(routes[0].template_id.clone()),
                        error_code: Some(f.code.as_str().to_owned()),
                        error: Some(f.message),
                        ..Outcome::new(MessageStatus::Failed)
                    },
                )),
            }
        }
        transaction(&self.db, async |conn: &mut Conn| {
            for (id, outcome) in &refused {
                MessageRow::record_if(conn, id, MessageStatus::Queued, outcome).await?;
            }
            Ok::<_, IdentityError>(())
        })
        .await?;
        let ended: Vec<Result<Sent, IdentityError>> = futures_util::stream::iter(to_send)
            .map(|(id, r, first)| self.bulk_send_one(routes, id, r, first))
            .buffer_unordered(settings.bulk_concurrency.max(1))
            .collect()
            .await;
        let mut pause = false;
        for sent in ended {
            pause |= sent? == Sent::Again;
        }
        if pause {
            let wait = Duration::from_secs(self.config.wechat.quota_pause_secs);
            tracing::warn!(
                job = %job_id,
                wait_secs = wait.as_secs(),
                "bulk job paused: WeChat's quota or an outage"
            );
            return Ok(BatchEnd::Pause(wait));
        }
        Ok(BatchEnd::More)
    }
}
