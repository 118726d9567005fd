//! The event webhook (`/wechat/{appId}/events`), WeChat's "server URL" of an Official Account or
//! a Mini Program's message push.
//!
//! [`Webhook::receive_push`] checks a push — `signature` always (also in plaintext mode, which
//! several SDKs skip), the timestamp within `limits.webhook_freshness_secs`, in safe mode
//! `msg_signature` and the appid inside the ciphertext, and refuses plaintext where the app
//! requires encryption, and refuses a signed query seen before with another body or on another
//! app (`webhook_replay`) — then stores it once per dedupe key and hands it to the
//! `webhook_events` job. Nothing is stored for a refused push. WeChat gets its `success` at
//! once; [`System::process_webhook_events`] does the work later: `subscribe` and `SCAN` fetch
//! the person's unionid (`user/info`) and record a sighting with reason WEBHOOK,
//! `unsubscribe` records that they stopped following; template and subscribe-message results
//! and subscribe permissions go to the messages' bookkeeping (`messages::notices`); other
//! messages are only stored.

use std::time::Duration;

use chrono::TimeDelta;

use super::followers::unix_time;
use crate::config::AppConfig;
use crate::db::models::now;
use crate::db::models::official_account_identity::OfficialAccountIdentityRow;
use crate::db::models::webhook_event::WebhookEventRow;
use crate::db::queue::{JobSpec, enqueue};
use crate::identity::access::{System, Webhook};
use crate::identity::rules::MergeReason;
use crate::identity::{IdentityError, Parts};
use crate::types::{AppId, AppKind, OpenId, WebhookEventId};
use crate::wechat::WechatError;
use crate::wechat::server_api::FollowerInfo;
use crate::wechat::webhook::{self, Envelope, MsgCrypt, WebhookError};

/// The job that processes an app's stored events, one per app (key `webhook_events:{appId}`).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEventsPayload {
    /// The app whose events it processes.
    pub app_id: AppId,
}

impl JobSpec for WebhookEventsPayload {
    const KIND: &'static str = "webhook_events";

    fn dedup_key(&self) -> Option<String> {
        Some(self.app_id.to_string())
    }

    // An event stored after the running job's last look would otherwise wait for the purge
    // job's sweep (a minute): found in `bench-follow`, one follow in 200 at 59 s.
    const RERUN_IF_ASKED_WHILE_RUNNING: bool = true;
}

/// Processing attempts of one event before it is given up on (kept, with its error).
pub const MAX_EVENT_ATTEMPTS: i32 = 5;

/// The query WeChat puts on a push.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct PushQuery {
    /// sha1 of the sorted token, timestamp and nonce.
    pub signature: Option<String>,
    /// Unix seconds.
    pub timestamp: Option<String>,
    /// Random.
    pub nonce: Option<String>,
    /// URL verification: echo this back.
    pub echostr: Option<String>,
    /// `aes` in compatible and safe mode.
    pub encrypt_type: Option<String>,
    /// Safe mode: sha1 over the `Encrypt` value too.
    pub msg_signature: Option<String>,
}

/// Why a push was refused; the HTTP layer answers 401 for [`Refused::Unauthorized`].
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Bad or missing signature, stale timestamp, bad ciphertext, plaintext where encryption is
    /// required, or an app without a webhook token.
    #[error("{0}")]
    Unauthorized(String),
    /// Unknown app.
    #[error("{0}")]
    NotFound(String),
    /// Signed, but not a message WeChat would send.
    #[error("{0}")]
    BadRequest(String),
    /// The database failed.
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

impl From<crate::db::DbError> for Refused {
    fn from(e: crate::db::DbError) -> Self {
        Refused::Identity(e.into())
    }
}

impl Webhook<'_> {
    /// URL verification (`GET`): the `echostr` to echo if the signature checks out.
    pub fn verify_webhook_url(&self, app_id: &str, q: &PushQuery) -> Result<String, Refused> {
        let app = self.webhook_app(app_id)?;
        self.check_signature(app, q)?;
        q.echostr
            .clone()
            .filter(|e| !e.is_empty() && e.len() <= 128)
            .ok_or_else(|| Refused::BadRequest("echostr missing".into()))
    }
}

impl Webhook<'_> {
    /// A push (`POST`): checked, stored once, handed to the job runner (see the module docs).
    /// Whether it was new (a retry of a stored push is acknowledged and not stored again).
    pub async fn receive_push(
        &self,
        app_id: &str,
        q: &PushQuery,
        body: &str,
    ) -> Result<bool, Refused> {
        let app = self.webhook_app(app_id)?;
        let token = self.check_signature(app, q)?;
        let xml = self.open_body(app, token, q, body)?;
        let envelope = Envelope::parse(&xml).map_err(|e| Refused::BadRequest(e.to_string()))?;
        // Last, so that nothing is stored for a push refused by any other check.
        self.check_replay(app, q, body).await?;
        let row = WebhookEventRow {
            id: WebhookEventId::generate(),
            app_id: app.app_id.clone(),
            dedupe_key: webhook::dedupe_key(&envelope),
            msg_type: envelope.msg_type.clone(),
            event: envelope.event.clone(),
            openid: OpenId::new(&envelope.from_user),
            event_at: unix_time(envelope.create_time).unwrap_or_else(now),
            payload: xml,
            received_at: now(),
            processed_at: None,
            attempts: 0,
            error: None,
        };
        let mut conn = self.db.conn().await?;
        let new = WebhookEventRow::insert_new(&mut conn, &row).await?;
        drop(conn);
        if new {
            self.enqueue_webhook_events(&app.app_id).await?;
            self.await_processed(&row.id).await?;
        }
        Ok(new)
    }
}

impl Parts {
    /// Waits (at most `limits.webhook_answer_wait_ms`) until the job runner has processed the
    /// event, so that WeChat's `success` usually means it is done: a follow pushed is a user
    /// by the time the push is answered. Past the wait the push is answered anyway; the event
    /// is processed all the same.
    async fn await_processed(&self, id: &WebhookEventId) -> Result<(), IdentityError> {
        let wait = Duration::from_millis(self.config.limits.webhook_answer_wait_ms);
        let deadline = tokio::time::Instant::now() + wait;
        let mut pause = Duration::from_millis(2);
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + pause)).await;
            let mut conn = self.db.conn().await?;
            if WebhookEventRow::is_processed(&mut conn, id).await? {
                return Ok(());
            }
            pause = (pause * 2).min(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Queues the app's `webhook_events` job. One per app: a queued one is kept; a running one
    /// is asked to run once more when it ends, since its last look for pending events may have
    /// come before this event was stored (the purge job's sweep remains the fallback).
    async fn enqueue_webhook_events(&self, app_id: &AppId) -> Result<(), IdentityError> {
        let job = WebhookEventsPayload {
            app_id: app_id.clone(),
        };
        enqueue(&self.db, &job).await?;
        Ok(())
    }

    fn webhook_app(&self, app_id: &str) -> Result<&AppConfig, Refused> {
        self.config.app(app_id).ok_or_else(|| {
            Refused::NotFound(format!(
                "unknown app `{}`",
                crate::identity::truncate(app_id, 64)
            ))
        })
    }

    /// Checks `signature` (and the timestamp's freshness); the app's token that signed it.
    fn check_signature<'a>(&self, app: &'a AppConfig, q: &PushQuery) -> Result<&'a str, Refused> {
        let unauthorized = |m: &str| Refused::Unauthorized(m.into());
        let token = app.token.as_ref().ok_or_else(|| {
            unauthorized("the app has no webhook token configured (apps[].token)")
        })?;
        let (Some(signature), Some(timestamp), Some(nonce)) =
            (&q.signature, &q.timestamp, &q.nonce)
        else {
            return Err(unauthorized("signature, timestamp and nonce are required"));
        };
        if nonce.len() > 64 || timestamp.len() > 20 {
            return Err(unauthorized("timestamp or nonce too long"));
        }
        let ts: i64 = timestamp
            .parse()
            .map_err(|_| unauthorized("timestamp is not a number"))?;
        let window = self.config.limits.webhook_freshness_secs;
        if now().and_utc().timestamp().abs_diff(ts) > window {
            return Err(Refused::Unauthorized(format!(
                "timestamp is more than {window} s away (limits.webhook_freshness_secs)"
            )));
        }
        if !webhook::verify_signature(token.expose(), timestamp, nonce, signature) {
            return Err(unauthorized("signature does not match"));
        }
        Ok(token.expose())
    }

    /// The message XML: the body itself in plaintext mode, the decrypted `Encrypt` otherwise.
    fn open_body(
        &self,
        app: &AppConfig,
        token: &str,
        q: &PushQuery,
        body: &str,
    ) -> Result<String, Refused> {
        let unauthorized = |e: WebhookError| Refused::Unauthorized(e.to_string());
        if q.encrypt_type.as_deref() != Some("aes") {
            if app.requires_encryption() {
                return Err(Refused::Unauthorized(
                    "this app accepts encrypted pushes only (compatible or safe mode; apps[].require_encryption)".into(),
                ));
            }
            return Ok(body.to_owned());
        }
        let key = app.encoding_aes_key.as_ref().ok_or_else(|| {
            Refused::Unauthorized("the app has no EncodingAESKey (apps[].encoding_aes_key)".into())
        })?;
        let fields = webhook::parse_fields(body).map_err(unauthorized)?;
        let encrypt = fields
            .get("Encrypt")
            .ok_or_else(|| Refused::Unauthorized("Encrypt missing".into()))?;
        let (Some(msg_signature), Some(timestamp), Some(nonce)) =
            (&q.msg_signature, &q.timestamp, &q.nonce)
        else {
            return Err(Refused::Unauthorized("msg_signature is required".into()));
        };
        if !webhook::verify_msg_signature(token, timestamp, nonce, encrypt, msg_signature) {
            return Err(Refused::Unauthorized("msg_signature does not match".into()));
        }
        let crypt = MsgCrypt::new(key.expose(), app.app_id.as_str()).map_err(unauthorized)?;
        crypt.decrypt(encrypt).map_err(unauthorized)
    }
}

impl System {
    /// Processes an app's stored events in order (the `webhook_events` job); how many.
    pub async fn process_webhook_events(&self, app_id: &AppId) -> Result<usize, IdentityError> {
        let Some(app) = self.config.app(app_id.as_str()) else {
            // The app left the configuration: its events will never be processed.
            let mut conn = self.db.conn().await?;
            for event in WebhookEventRow::pending(&mut conn, app_id, 1000).await? {
                let error = Some("the app is no longer configured");
                WebhookEventRow::record_attempt(&mut conn, &event.id, Some(now()), error).await?;
            }
            return Ok(0);
        };
        let mut done = 0;
        loop {
            let mut conn = self.db.conn().await?;
            let batch = WebhookEventRow::pending(&mut conn, app_id, 100).await?;
            drop(conn);
            if batch.is_empty() {
                return Ok(done);
            }
            for event in &batch {
                let result = self.process_event(app, event).await;
                let mut conn = self.db.conn().await?;
                match result {
                    Ok(()) => {
                        WebhookEventRow::record_attempt(&mut conn, &event.id, Some(now()), None)
                            .await?;
                        done += 1;
                    }
                    // WeChat's quota, or WeChat or the database failing for a while: the job
                    // tries again later; the event keeps its place and its attempts.
                    Err(
                        e @ (IdentityError::Wechat(
                            WechatError::RateLimited { .. } | WechatError::Unavailable { .. },
                        )
                        | IdentityError::Db(_)),
                    ) => return Err(e),
                    Err(e) => {
                        let give_up = event.attempts + 1 >= MAX_EVENT_ATTEMPTS;
                        let message = e.to_string();
                        tracing::warn!(app = %app_id, event = %event.id, error = %message, give_up, "webhook event failed");
                        let processed = give_up.then(now);
                        WebhookEventRow::record_attempt(
                            &mut conn,
                            &event.id,
                            processed,
                            Some(&message),
                        )
                        .await?;
                        if !give_up {
                            return Err(e);
                        }
                    }
                }
            }
        }
    }
}

impl Parts {
    async fn process_event(
        &self,
        app: &AppConfig,
        event: &WebhookEventRow,
    ) -> Result<(), IdentityError> {
        if event.msg_type != "event" {
            return Ok(());
        }
        let Ok(()) = crate::identity::check_wechat_id("openid", event.openid.as_str()) else {
            return Ok(());
        };
        // Delivery reports and subscribe permissions, for both kinds of app.
        self.apply_message_notices(app, event).await?;
        if app.kind != AppKind::OfficialAccount {
            return Ok(());
        }
        match event.event.as_deref() {
            Some("subscribe" | "SCAN") => {
                let openid = event.openid.as_str();
                let info = self
                    .access_tokens
                    .call(app, |token| async move {
                        self.wechat.follower_info(&token, openid).await
                    })
                    .await?;
                self.record_followers(app, &[info], MergeReason::Webhook, None)
                    .await?;
            }
            Some("unsubscribe") => {
                let mut conn = self.db.conn().await?;
                let known =
                    OfficialAccountIdentityRow::find(&mut conn, &app.app_id, &event.openid).await?;
                drop(conn);
                if known.is_some() {
                    let info = FollowerInfo {
                        subscribe: 0,
                        openid: event.openid.as_str().to_owned(),
                        unionid: None,
                        subscribe_time: None,
                    };
                    self.record_followers(app, &[info], MergeReason::Webhook, None)
                        .await?;
                }
            }
            // Delivery results and subscribe permissions were applied above; other events and
            // messages are only stored.
            _ => {}
        }
        Ok(())
    }
}

impl System {
    /// Queues the `webhook_events` job of every app with pending events (the purge job's
    /// sweep: a push stored while its app's job was finishing is not left behind).
    pub async fn requeue_pending_webhook_events(&self) -> Result<usize, IdentityError> {
        let mut conn = self.db.conn().await?;
        let apps = WebhookEventRow::apps_pending(&mut conn).await?;
        drop(conn);
        for app_id in &apps {
            self.enqueue_webhook_events(app_id).await?;
        }
        Ok(apps.len())
    }
}

impl System {
    /// Deletes processed webhook events older than `limits.webhook_retention_secs` (the purge
    /// job); how many.
    pub async fn purge_webhook_events(&self) -> Result<usize, IdentityError> {
        let keep = TimeDelta::seconds(self.config.limits.webhook_retention_secs as i64);
        let mut conn = self.db.conn().await?;
        Ok(WebhookEventRow::purge_processed(&mut conn, now() - keep).await?)
    }
}
