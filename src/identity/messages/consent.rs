//! The subscribe-permission ledger: per (app, openid, template), one-time accepts not yet spent
//! and whether a long-term permission holds.
//!
//! Filled from the webhook (`subscribe_msg_popup_event`, `subscribe_msg_change_event`) and from
//! a logged-in Mini Program user reporting what `wx.requestSubscribeMessage` returned. One popup
//! reported both ways counts once: an accept from one source answered within [`PAIRING`] of an
//! accept from the other (WeChat's CreateTime for pushes) is taken as the same popup. One-time accepts are spent by a send (given back when
//! WeChat surely did not send); a reject in the settings page (a change event), or WeChat's own
//! 43101, clears the permission.

use std::time::Duration;

use super::route::at;
use super::templates::Template;
use super::{FailureCode, MAX_CONSENTS_PER_CALL};
use crate::db::models::message_template::{ConsentSource, PermissionKey, PermissionRow};
use crate::db::{Conn, transaction};
use crate::identity::access::SelfUser;
use crate::identity::{IdentityError, Parts};
use crate::types::AppKind;
use crate::wechat::messages::Channel;

/// An accept from the other source within this long is the same popup.
pub const PAIRING: Duration = Duration::from_secs(60);

/// One-time accepts kept at most per (person, template).
pub const MAX_ONE_TIME: i32 = 100;

/// A person's answer for one template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Consent {
    /// accept (else reject, ban or filter).
    pub accepted: bool,
    /// Made in the settings page (a change event), not a popup.
    pub change: bool,
}

impl Parts {
    /// Records a person's answer for a template of an app (long-term if the registered
    /// template says so); the permission as it now stands.
    pub(in crate::identity) async fn record_consent(
        &self,
        key: PermissionKey<'_>,
        consent: Consent,
        source: ConsentSource,
        answered_at: chrono::NaiveDateTime,
    ) -> Result<PermissionRow, IdentityError> {
        let long_term_template = self
            .find_template(key.app_id, key.template_id)
            .await?
            .is_some_and(|t| t.long_term);
        transaction(&self.db, async |conn: &mut Conn| {
            let now = at();
            let mut row = PermissionRow::find_locked(conn, key)
                .await?
                .unwrap_or_else(|| PermissionRow {
                    app_id: key.app_id.clone(),
                    openid: key.openid.clone(),
                    template_id: key.template_id.clone(),
                    one_time: 0,
                    long_term: false,
                    last_source: source,
                    last_accept_at: None,
                    updated_at: now,
                });
            if consent.accepted {
                // The other source's report of the same popup: answered within PAIRING of it
                // (whether or not a send spent the permission since).
                let paired = row.last_source != source
                    && row.last_accept_at.is_some_and(|t| {
                        let apart = answered_at.signed_duration_since(t).abs();
                        apart.to_std().unwrap_or_default() <= PAIRING
                    });
                if long_term_template {
                    row.long_term = true;
                } else if !paired {
                    row.one_time = (row.one_time + 1).min(MAX_ONE_TIME);
                }
                // A paired report closes the pair: the next accept is a new popup.
                row.last_accept_at = (!paired).then_some(answered_at);
            } else {
                row.long_term = false;
                if consent.change {
                    row.one_time = 0;
                }
            }
            row.last_source = source;
            row.updated_at = now;
            PermissionRow::save(conn, &row).await?;
            Ok::<_, IdentityError>(row)
        })
        .await
    }

    /// Spends a permission of (app, openid, template) for a send; whether one was there.
    pub(super) async fn spend_permission(
        &self,
        key: PermissionKey<'_>,
    ) -> Result<bool, IdentityError> {
        let mut conn = self.db.conn().await?;
        Ok(PermissionRow::spend(&mut conn, key).await?)
    }

    /// After a send failed: WeChat's 43101 clears the permission; any other refusal gives the
    /// spent one-time permission back.
    pub(super) async fn return_permission(&self, key: PermissionKey<'_>, code: FailureCode) {
        let result = async {
            let mut conn = self.db.conn().await?;
            if code == FailureCode::NoSubscribePermission {
                PermissionRow::clear(&mut conn, key, at()).await
            } else {
                PermissionRow::refund(&mut conn, key).await
            }
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(app = %key.app_id, error = %e, "could not update a subscribe permission");
        }
    }
}

impl SelfUser<'_> {
    /// Records what `wx.requestSubscribeMessage` answered the calling user in the Mini Program
    /// `app_id` (template id → accept / reject / ban / filter). Only templates registered for
    /// that Mini Program count; the user must have logged in there.
    pub async fn record_subscribe_consents(
        &self,
        app_id: &str,
        answers: &[(String, bool)],
    ) -> Result<Vec<(Template, PermissionRow)>, IdentityError> {
        let app = self.app(app_id, AppKind::MiniProgram)?;
        if answers.is_empty() || answers.len() > MAX_CONSENTS_PER_CALL {
            return Err(IdentityError::BadInput(format!(
                "give 1 to {MAX_CONSENTS_PER_CALL} answers"
            )));
        }
        if answers
            .iter()
            .enumerate()
            .any(|(i, (t, _))| answers[..i].iter().any(|(u, _)| u == t))
        {
            return Err(IdentityError::BadInput(
                "each templateId may be answered once per call".into(),
            ));
        }
        let me = self.live_user().await?;
        let mut conn = self.db.conn().await?;
        let found = crate::db::models::identity::Addressee::on_app(
            &mut conn,
            AppKind::MiniProgram,
            &app.app_id,
            std::slice::from_ref(&me.id),
        )
        .await?;
        drop(conn);
        let Some(me_there) = found.into_iter().next() else {
            return Err(IdentityError::BadInput(format!(
                "the user has not logged into `{}`",
                app.app_id
            )));
        };
        // Every answer is checked before any is recorded.
        let mut templates = Vec::with_capacity(answers.len());
        for (template_id, _) in answers {
            let template = self.template(app_id, template_id).await?;
            if template.channel != Channel::MiniProgramSubscribe {
                return Err(IdentityError::BadInput(format!(
                    "template `{template_id}` is not a Mini Program subscribe message"
                )));
            }
            templates.push(template);
        }
        let mut out = Vec::with_capacity(answers.len());
        for ((_, accepted), template) in answers.iter().zip(templates) {
            let consent = Consent {
                accepted: *accepted,
                change: false,
            };
            let key = PermissionKey {
                app_id: &app.app_id,
                openid: &me_there.openid,
                template_id: &template.template_id,
            };
            let row = self
                .identity
                .record_consent(key, consent, ConsentSource::Client, at())
                .await?;
            out.push((template, row));
        }
        Ok(out)
    }
}
