//! Messages addressed to a *user*, not an openid: the merged user's identity on the right app is
//! found (through the unionid merge), the right WeChat API is called, and what happened is kept.
//!
//! - [`Messenger::send_message`] (admin and service keys): checks the request (registered
//!   templates, data that fits them) before anything else, routes it ([`route`]), records the
//!   message once per idempotency key, sends it, records the outcome.
//! - [`templates`]: templates registered per app; [`consent`]: the subscribe-permission ledger;
//!   [`notices`]: what the webhook's delivery and consent events change; [`bulk`]: one message
//!   to many users on the job runner, resumable without a second copy to anyone.

pub mod bulk;
pub mod consent;
mod failure;
mod merged;
mod notices;
mod progress;
pub mod route;
pub mod templates;

use crate::identity::audit::AuditAction;
use serde::Serialize;

use super::access::{Messenger, Reader, System};
use super::{IdentityError, truncate};
use crate::db::models::message::{MessageFilter, MessageRow, MessageStatus, Outcome};
use crate::db::models::now;
use crate::db::models::user::UserRow;
use crate::types::{MessageId, UserId};
use crate::wechat::messages::{Target, check_data};
pub(crate) use failure::failure_code_variants;
pub use failure::{Failure, FailureCode};
use route::{CheckedRoute, pick};

/// Routes one message may name at most.
pub const MAX_ROUTES: usize = 5;
/// Templates one app may register at most.
pub const MAX_TEMPLATES_PER_APP: i64 = 200;
/// Answers one `recordWeChatSubscribeConsent` call may carry.
pub const MAX_CONSENTS_PER_CALL: usize = 10;
/// Messages listed per page at most.
pub const MAX_MESSAGES_LISTED: i64 = 100;
/// A single send still `sending` after this long died on the way (its answer is unknown).
pub const STUCK_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

/// Who a message is for.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Recipient {
    /// A user id (a merged user's old id reaches the survivor).
    UserId(UserId),
    /// The live user with this unionid.
    Unionid(String),
}

/// One way to reach the person: an app, a registered template, its data, where it opens.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteInput {
    /// The app.
    pub app_id: String,
    /// The template.
    pub template_id: String,
    /// WeChat-shaped data: `{"thing1": {"value": "…"}}`.
    pub data: serde_json::Value,
    /// A web page to open.
    #[serde(default)]
    pub url: Option<String>,
    /// A Mini Program page to open: (appid, page path).
    #[serde(default)]
    pub mini_program: Option<(String, String)>,
}

/// A message to send.
#[derive(Clone, Debug)]
pub struct SendInput {
    /// To whom.
    pub recipient: Recipient,
    /// Ways to reach them, in order of preference.
    pub routes: Vec<RouteInput>,
    /// The same key returns the first message instead of sending again.
    pub idempotency_key: Option<String>,
}

impl crate::identity::Parts {
    /// Checks routes against their registered templates; BAD_USER_INPUT and friends otherwise.
    pub(in crate::identity) async fn check_routes(
        &self,
        routes: &[RouteInput],
    ) -> Result<Vec<CheckedRoute>, IdentityError> {
        if routes.is_empty() || routes.len() > MAX_ROUTES {
            return Err(IdentityError::BadInput(format!(
                "give 1 to {MAX_ROUTES} routes (appId, templateId, data)"
            )));
        }
        let mut checked = Vec::with_capacity(routes.len());
        for r in routes {
            let app = self.any_app(&r.app_id)?.clone();
            let template = self.template(&r.app_id, &r.template_id).await?;
            let data = check_data(&template.fields, &r.data).map_err(|why| {
                IdentityError::Message(Box::new(Failure::new(FailureCode::InvalidMessageData, why)))
            })?;
            let target = check_target(r, template.channel)?;
            checked.push(CheckedRoute {
                app,
                template_id: template.template_id,
                channel: template.channel,
                data,
                target,
            });
        }
        Ok(checked)
    }

    /// The live user a message is for (NOT_FOUND if none).
    async fn recipient(&self, to: &Recipient) -> Result<UserRow, IdentityError> {
        let mut conn = self.db.conn().await?;
        let found = match to {
            Recipient::UserId(id) => UserRow::find_live(&mut conn, id).await?,
            Recipient::Unionid(u) => {
                let u = crate::types::UnionId::new(u);
                UserRow::find_live_by_unionid(&mut conn, &u).await?
            }
        };
        match found {
            Some(user) if user.deleted_at.is_some() => {
                Err(IdentityError::NotFound("no such user".into()))
            }
            Some(user) if user.disabled_at.is_some() => Err(IdentityError::UserDisabled),
            Some(user) => Ok(user),
            None => Err(IdentityError::NotFound("no such user".into())),
        }
    }

    /// Writes a send's outcome on its message (unless a delivery report got there first); the
    /// message as it now stands.
    pub(in crate::identity) async fn record_outcome(
        &self,
        id: &MessageId,
        outcome: &Outcome,
    ) -> Result<MessageRow, IdentityError> {
        let mut conn = self.db.conn().await?;
        MessageRow::record_if(&mut conn, id, MessageStatus::Sending, outcome).await?;
        MessageRow::find(&mut conn, id)
            .await?
            .ok_or_else(|| IdentityError::Internal("a message vanished".into()))
    }
}

fn check_target(
    r: &RouteInput,
    channel: crate::wechat::messages::Channel,
) -> Result<Target, IdentityError> {
    let bad = |m: &str| IdentityError::BadInput(m.to_owned());
    if let Some(url) = &r.url {
        if url.len() > 1024 || !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(bad("url must be an http(s) URL of at most 1024 characters"));
        }
        if channel == crate::wechat::messages::Channel::MiniProgramSubscribe {
            return Err(bad(
                "a Mini Program subscribe message opens a page of the Mini Program: give miniProgram.pagePath, not url",
            ));
        }
    }
    if let Some((appid, path)) = &r.mini_program {
        if appid.is_empty() || appid.len() > 64 || path.len() > 512 {
            return Err(bad(
                "miniProgram needs an appId (≤ 64) and a pagePath (≤ 512 characters)",
            ));
        }
    }
    Ok(Target {
        url: r.url.clone(),
        mini_program: r.mini_program.clone(),
    })
}

impl Messenger<'_> {
    /// Sends one message to a user (see the module docs). A refusal is returned as an error
    /// naming the recorded message (`Failure::message_id`) when one was recorded.
    pub async fn send_message(&self, input: SendInput) -> Result<MessageRow, IdentityError> {
        let sent = self.send_one(input).await?;
        let details = serde_json::json!({"messageId": sent.id, "messages": 1});
        self.audit(
            self.name,
            AuditAction::SendMessages,
            Some(&sent.user_id),
            details,
        )
        .await;
        Ok(sent)
    }

    async fn send_one(&self, input: SendInput) -> Result<MessageRow, IdentityError> {
        let routes = self.check_routes(&input.routes).await?;
        let content =
            serde_json::json!({ "to": input.recipient, "routes": input.routes }).to_string();
        let key = match &input.idempotency_key {
            Some(k) if k.is_empty() || k.len() > 128 => {
                return Err(IdentityError::BadInput(
                    "idempotencyKey must be 1-128 characters".into(),
                ));
            }
            Some(k) => Some(format!("{}:{k}", self.name)),
            None => None,
        };
        if let Some(k) = &key {
            if let Some(first) = self.first_with_key(k).await? {
                return replay(first, &content);
            }
        }
        let user = self.recipient(&input.recipient).await?;
        let mut reach = self
            .reach(&routes, std::slice::from_ref(&user.id))
            .await?
            .remove(&user.id)
            .unwrap_or_default();
        let picked = pick(&routes, &reach, 0);
        // The row names where it goes (openid included) before WeChat is called, so a delivery
        // report that comes before the send's answer is written still finds it.
        let route = &routes[*picked.as_ref().unwrap_or(&0)];
        let openid = picked.as_ref().ok().and_then(|i| reach[*i].openid.clone());
        let placed = route.placed(openid.as_ref(), MessageStatus::Sending);
        let mut row = MessageRow {
            id: MessageId::generate(),
            user_id: user.id.clone(),
            app_id: placed.app_id,
            openid: placed.openid,
            channel: placed.channel,
            template_id: placed.template_id,
            status: placed.status,
            content: content.clone(),
            wechat_msg_id: None,
            error_code: None,
            wechat_errcode: None,
            error: None,
            idempotency_key: key.clone(),
            job_id: None,
            created_at: now(),
            delivered_at: None,
        };
        if let Err(f) = &picked {
            row.status = MessageStatus::Failed;
            row.error_code = Some(f.code.as_str().to_owned());
            row.error = Some(f.message.clone());
        }
        let mut conn = self.db.conn().await?;
        let inserted = MessageRow::insert(&mut conn, &row).await?;
        drop(conn);
        if !inserted {
            // The same key, sent at the same moment: the first one stands.
            let first = self
                .first_with_key(key.as_deref().unwrap_or_default())
                .await?;
            return replay(
                first.ok_or_else(|| IdentityError::Internal("idempotency race".into()))?,
                &content,
            );
        }
        let first = match picked {
            Ok(i) => i,
            Err(mut f) => {
                f.message_id = Some(row.id);
                return Err(IdentityError::Message(Box::new(f)));
            }
        };
        // The send and the write of its outcome run on their own: a request that times out or
        // whose client goes away does not leave the message half done.
        let identity = self.identity.clone();
        let id = row.id.clone();
        let sending = tokio::spawn(tracing::Instrument::in_current_span(async move {
            let outcome = identity.attempt(&routes, &mut reach, first, &id).await;
            let stored = identity.record_outcome(&id, &outcome).await;
            if outcome.is_transient_failure() {
                // WeChat was busy or out of quota and surely sent nothing: the key is free
                // again, so the caller's retry with it sends.
                let mut conn = identity.db.conn().await?;
                MessageRow::release_key(&mut conn, &id).await?;
            }
            stored
        }));
        let stored = match sending.await {
            Ok(stored) => stored?,
            Err(e) => {
                return Err(IdentityError::Internal(format!(
                    "the send task failed: {e}"
                )));
            }
        };
        tracing::info!(message_id = %stored.id, user = %user.id, status = %stored.status, key = self.name, "message sent");
        match Failure::of_row(&stored) {
            Some(f) if stored.status == MessageStatus::Failed => {
                Err(IdentityError::Message(Box::new(f)))
            }
            _ => Ok(stored),
        }
    }

    async fn first_with_key(&self, key: &str) -> Result<Option<MessageRow>, IdentityError> {
        let mut conn = self.db.conn().await?;
        Ok(MessageRow::find_by_key(&mut conn, key).await?)
    }
}

impl Outcome {
    /// Whether the send failed in a way that surely sent nothing and may work later (WeChat's
    /// quota, WeChat unreachable or busy): it may be sent again.
    pub fn is_transient_failure(&self) -> bool {
        self.status == MessageStatus::Failed
            && self
                .error_code
                .as_deref()
                .is_some_and(|c| FailureCode::parse(c).is_transient())
    }
}

/// The first message sent with an idempotency key, as it was answered then; CONFLICT if the key
/// was used for another message.
fn replay(first: MessageRow, content: &str) -> Result<MessageRow, IdentityError> {
    if first.content != content {
        return Err(IdentityError::Conflict(
            "idempotencyKey was used for another message; use a new key".into(),
        ));
    }
    match Failure::of_row(&first) {
        Some(f) if first.status == MessageStatus::Failed => {
            Err(IdentityError::Message(Box::new(f)))
        }
        _ => Ok(first),
    }
}

impl System {
    /// Single sends whose request died between WeChat's call and the write of its answer (still
    /// `sending` after [`STUCK_AFTER`]) become `uncertain` (the purge job); how many.
    pub async fn expire_stuck_messages(&self) -> Result<usize, IdentityError> {
        let mut conn = self.db.conn().await?;
        let before = now() - chrono::Duration::from_std(STUCK_AFTER).unwrap_or_default();
        let n = MessageRow::expire_sending(&mut conn, before).await?;
        if n > 0 {
            tracing::warn!(
                messages = n,
                "messages stuck while sending are marked uncertain"
            );
        }
        Ok(n)
    }
}

impl Reader<'_> {
    /// A message by id.
    pub async fn message(&self, id: &str) -> Result<Option<MessageRow>, IdentityError> {
        let mut conn = self.db.conn().await?;
        Ok(MessageRow::find(&mut conn, &MessageId::new(truncate(id, 64))).await?)
    }

    /// Messages by `filter`, newest first, after the cursor `before`, at most
    /// [`MAX_MESSAGES_LISTED`] (one more is read to tell whether there is a next page).
    pub async fn messages(
        &self,
        filter: &MessageFilter,
        before: Option<&MessageId>,
        limit: i64,
    ) -> Result<Vec<MessageRow>, IdentityError> {
        let mut conn = self.db.conn().await?;
        let limit = limit.clamp(1, MAX_MESSAGES_LISTED + 1);
        let mut filter = filter.clone();
        if let Some(id) = &filter.user_id {
            // A merged user's old id lists the survivor's messages (where sends to it went).
            if let Some(live) = UserRow::find_live(&mut conn, id).await? {
                filter.user_id = Some(live.id);
            }
        }
        Ok(MessageRow::list(&mut conn, &filter, before, limit).await?)
    }
}
