//! Routing a message to a person and sending it: the part a single send and a bulk job share.
//!
//! A message names routes in order of preference (one app, template and data each). For every
//! recipient `reach` looks up, in one query per route for a whole batch of users,
//! whether the person can be reached there: an identity in that app, following the OA (template
//! messages) or holding a subscribe permission (subscribe channels). [`pick`] takes the first
//! reachable route, or says why none is; `attempt` spends a one-time permission,
//! calls WeChat, and on WeChat's own "not following" / "no permission" (43004, 43101) records
//! what it learnt and tries the next reachable route.

use std::collections::{BTreeMap, HashMap};

use super::{Failure, FailureCode};
use crate::config::AppConfig;
use crate::db::models::identity::Addressee;
use crate::db::models::message::{MessageStatus, Outcome};
use crate::db::models::message_template::{PermissionKey, PermissionRow};
use crate::db::models::now;
use crate::identity::{IdentityError, Parts};
use crate::types::{AppId, MessageId, OpenId, TemplateId, UserId, WechatMsgId};
use crate::wechat::WechatError;
use crate::wechat::messages::{Channel, Outgoing, Target};

/// A route checked against its registered template: ready to send.
#[derive(Clone, Debug)]
pub struct CheckedRoute {
    /// The app.
    pub app: AppConfig,
    /// The template.
    pub template_id: TemplateId,
    /// The template's channel.
    pub channel: Channel,
    /// The keyword values.
    pub data: BTreeMap<String, String>,
    /// Where the message opens.
    pub target: Target,
}

/// What is known of one person on one route.
#[derive(Clone, Debug, Default)]
pub struct Reach {
    /// Their openid in the route's app (none: no identity there).
    pub openid: Option<OpenId>,
    /// Official Accounts: following.
    pub subscribed: bool,
    /// Subscribe channels: a permission holds.
    pub permitted: bool,
}

impl Reach {
    /// Why this route cannot reach the person (none: it can).
    fn refusal(&self, route: &CheckedRoute) -> Option<Failure> {
        let app = route.app.app_id.as_str();
        if self.openid.is_none() {
            return Some(Failure::new(
                FailureCode::NoIdentity,
                format!(
                    "the user has no identity on `{app}`: they never followed it or logged in there"
                ),
            ));
        }
        if route.channel == Channel::OfficialAccountTemplate && !self.subscribed {
            return Some(Failure::new(
                FailureCode::NotFollowing,
                format!("the user does not follow the Official Account `{app}`"),
            ));
        }
        if route.channel.needs_permission() && !self.permitted {
            return Some(Failure::new(
                FailureCode::NoSubscribePermission,
                format!(
                    "the user holds no subscribe permission for template `{}` on `{app}`",
                    route.template_id
                ),
            ));
        }
        None
    }
}

/// The first route from `from` on that can reach the person, or why none can.
pub fn pick(routes: &[CheckedRoute], reach: &[Reach], from: usize) -> Result<usize, Failure> {
    let mut why = Vec::new();
    for (i, (route, r)) in routes.iter().zip(reach).enumerate().skip(from) {
        match r.refusal(route) {
            None => return Ok(i),
            Some(f) => why.push(f),
        }
    }
    Err(match why.len() {
        1 => why.remove(0),
        _ => Failure::new(
            FailureCode::Unreachable,
            format!(
                "no channel can reach the user: {}",
                why.iter()
                    .map(|f| f.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ),
    })
}

impl Parts {
    /// What each route knows of each of these users (one query per route, plus one for
    /// permissions on subscribe routes).
    pub(super) async fn reach(
        &self,
        routes: &[CheckedRoute],
        users: &[UserId],
    ) -> Result<HashMap<UserId, Vec<Reach>>, IdentityError> {
        let mut out: HashMap<UserId, Vec<Reach>> = users
            .iter()
            .map(|u| (u.clone(), vec![Reach::default(); routes.len()]))
            .collect();
        let mut conn = self.db.conn().await?;
        for (i, route) in routes.iter().enumerate() {
            let kind = route.channel.app_kind();
            let found = Addressee::on_app(&mut conn, kind, &route.app.app_id, users).await?;
            let permitted: Vec<OpenId> = if route.channel.needs_permission() {
                let openids: Vec<OpenId> = found.iter().map(|a| a.openid.clone()).collect();
                PermissionRow::for_openids(
                    &mut conn,
                    &route.app.app_id,
                    &route.template_id,
                    &openids,
                )
                .await?
                .into_iter()
                .filter(|p| p.long_term || p.one_time > 0)
                .map(|p| p.openid)
                .collect()
            } else {
                Vec::new()
            };
            for a in found {
                if let Some(reaches) = out.get_mut(&a.user_id) {
                    reaches[i] = Reach {
                        permitted: permitted.contains(&a.openid),
                        openid: Some(a.openid),
                        subscribed: a.subscribed,
                    };
                }
            }
        }
        Ok(out)
    }

    /// Sends on the first reachable route from `first` (already picked), falling back to the
    /// next reachable one when WeChat says the person cannot be reached there. How it ended.
    pub(super) async fn attempt(
        &self,
        routes: &[CheckedRoute],
        reach: &mut [Reach],
        first: usize,
        message_id: &MessageId,
    ) -> Outcome {
        let mut i = first;
        loop {
            let route = &routes[i];
            // `pick` takes only routes with an openid.
            let openid = reach[i].openid.clone().unwrap_or_else(|| OpenId::new(""));
            let (outcome, learnt) = self.send_on(route, &openid, message_id).await;
            match learnt {
                Some(FailureCode::NotFollowing) => reach[i].subscribed = false,
                Some(FailureCode::NoSubscribePermission) => reach[i].permitted = false,
                _ => return outcome,
            }
            match pick(routes, reach, i + 1) {
                Ok(next) => i = next,
                Err(_) => return outcome,
            }
        }
    }

    /// One send on one route: spends a one-time permission first (given back if WeChat surely
    /// did not send). The outcome, and what WeChat said of the person if it refused them.
    async fn send_on(
        &self,
        route: &CheckedRoute,
        openid: &OpenId,
        message_id: &MessageId,
    ) -> (Outcome, Option<FailureCode>) {
        let key = PermissionKey {
            app_id: &route.app.app_id,
            openid,
            template_id: &route.template_id,
        };
        let mut outcome = route.placed(Some(openid), MessageStatus::Sent);
        let fail = |outcome: Outcome, f: Failure| Outcome {
            status: MessageStatus::Failed,
            error_code: Some(f.code.as_str().to_owned()),
            wechat_errcode: f.wechat_errcode,
            error: Some(f.message),
            ..outcome
        };
        // The token first: failing to get one sends nothing (a transient failure, not an
        // uncertain send), and spends no permission.
        if let Err(e) = self.access_tokens.token(&route.app).await {
            let mut f = Failure::from_error(&e);
            if !f.code.is_transient() {
                f.code = FailureCode::WechatUnavailable;
            }
            return (fail(outcome, f), None);
        }
        if route.channel.needs_permission() {
            match self.spend_permission(key).await {
                Ok(true) => {}
                Ok(false) => {
                    let f = Failure::new(
                        FailureCode::NoSubscribePermission,
                        "the subscribe permission was spent by another send".to_owned(),
                    );
                    return (fail(outcome, f), Some(FailureCode::NoSubscribePermission));
                }
                Err(e) => return (fail(outcome, Failure::from_error(&e)), None),
            }
        }
        let message = Outgoing {
            openid: openid.as_str(),
            template_id: route.template_id.as_str(),
            data: &route.data,
            target: &route.target,
            client_msg_id: Some(message_id.as_str()),
        };
        let sent = self
            .access_tokens
            .call(&route.app, |token| {
                let message = message.clone();
                async move {
                    self.wechat
                        .send_message(&token, route.channel, &message)
                        .await
                }
            })
            .await;
        match sent {
            Ok(sent) => {
                outcome.status = MessageStatus::Sent;
                outcome.wechat_msg_id = sent.msg_id().map(WechatMsgId::new);
                (outcome, None)
            }
            Err(e) => {
                let failure = Failure::from_error(&e);
                let not_done = match &e {
                    IdentityError::Wechat(w) => w.surely_not_done(),
                    _ => true,
                };
                if route.channel.needs_permission() && not_done {
                    self.return_permission(key, failure.code).await;
                }
                if !not_done {
                    // A timeout or a cut-off answer: WeChat may have sent it. Never sent again.
                    let mut uncertain = fail(outcome, failure);
                    uncertain.status = MessageStatus::Uncertain;
                    uncertain.error = Some(
                        "WeChat did not answer in time; the message may have been sent and is not sent again".into(),
                    );
                    return (uncertain, None);
                }
                if failure.code == FailureCode::NotFollowing {
                    self.forget_follow(&route.app.app_id, openid).await;
                }
                let learnt = matches!(
                    failure.code,
                    FailureCode::NotFollowing | FailureCode::NoSubscribePermission
                )
                .then_some(failure.code);
                (fail(outcome, failure), learnt)
            }
        }
    }

    /// WeChat says the person does not follow: record it (through the sighting function, like
    /// an `unsubscribe` event), so the next send is refused before calling WeChat.
    async fn forget_follow(&self, app_id: &AppId, openid: &OpenId) {
        let Some(app) = self.config.app(app_id.as_str()) else {
            return;
        };
        let info = crate::wechat::server_api::FollowerInfo {
            subscribe: 0,
            openid: openid.as_str().to_owned(),
            unionid: None,
            subscribe_time: None,
        };
        let reason = crate::identity::rules::MergeReason::Webhook;
        if let Err(e) = self.record_followers(app, &[info], reason, None).await {
            tracing::warn!(app = %app_id, error = %e, "could not record that a person stopped following");
        }
    }
}

impl CheckedRoute {
    /// A message placed on this route for `openid`, in `status`.
    pub fn placed(&self, openid: Option<&OpenId>, status: MessageStatus) -> Outcome {
        Outcome {
            app_id: Some(self.app.app_id.clone()),
            openid: openid.cloned(),
            channel: Some(self.channel.as_str().to_owned()),
            template_id: Some(self.template_id.clone()),
            ..Outcome::new(status)
        }
    }
}

impl Failure {
    /// The failure a send's error means for the message.
    pub fn from_error(e: &IdentityError) -> Self {
        let IdentityError::Wechat(w) = e else {
            tracing::error!(error = %e, "a message could not be sent");
            let code = match e {
                // The database was busy or down: nothing was sent.
                IdentityError::Db(_) => FailureCode::WechatUnavailable,
                _ => FailureCode::Internal,
            };
            return Failure::new(
                code,
                "the service failed before sending; see its log".to_owned(),
            );
        };
        let errcode = w.errcode();
        let code = match w {
            WechatError::RateLimited { .. } => FailureCode::WechatRateLimited,
            WechatError::Unavailable { .. } => FailureCode::WechatUnavailable,
            _ => match errcode {
                Some(43004) => FailureCode::NotFollowing,
                Some(43101) => FailureCode::NoSubscribePermission,
                Some(40037 | 40036) => FailureCode::TemplateInvalid,
                Some(47001 | 47003) => FailureCode::InvalidMessageData,
                _ => FailureCode::WechatRejected,
            },
        };
        let message = match code {
            FailureCode::NotFollowing => {
                "WeChat says the person does not follow the Official Account".to_owned()
            }
            FailureCode::NoSubscribePermission => {
                "WeChat says the person holds no subscribe permission for this template".to_owned()
            }
            FailureCode::TemplateInvalid => {
                "WeChat does not know this template for this app".to_owned()
            }
            FailureCode::InvalidMessageData => {
                "WeChat refused the data for this template".to_owned()
            }
            _ => w.to_string(),
        };
        Failure {
            code,
            message,
            wechat_errcode: errcode,
            message_id: None,
        }
    }
}

/// The time, for permission bookkeeping.
pub(super) fn at() -> chrono::NaiveDateTime {
    now()
}
