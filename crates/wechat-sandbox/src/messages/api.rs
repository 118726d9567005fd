//! The faked send APIs over HTTP, and the delivery results pushed after them.
//!
//! A body is taken as bytes and read here, so a malformed one gets WeChat's 47001 rather than
//! an HTTP error. The push follows the answer: it waits until the answer's body is gone (sent,
//! or the caller hung up), then goes to the app's webhook like any other push.

use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use serde::Deserialize;
use wechat_client::AppKind;
use wechat_client::messages::MAX_TEMPLATE_FIELDS;

use super::send::{Refused, SendRequest};
use super::{MiniProgramLink, SendApi};
use crate::{PushMode, Refusal, Sandbox, wechat_error};

/// Delivery pushes under way at once at most.
pub(super) const PUSH_CONCURRENCY: usize = 8;
/// Delivery pushes waiting at most (past it one is dropped, logged at debug).
pub const MAX_PENDING_PUSHES: usize = 100_000;
/// Longest `touser` taken.
const MAX_TOUSER: usize = 64;
/// Longest `url` / `page` / `pagepath` taken.
const MAX_LINK: usize = 1024;

#[derive(Deserialize)]
pub(crate) struct TokenQuery {
    access_token: Option<String>,
}

/// A send body as WeChat takes it (fields a given API does not know are ignored, as WeChat does).
#[derive(Deserialize)]
struct SendBody {
    touser: Option<String>,
    template_id: Option<String>,
    url: Option<String>,
    page: Option<String>,
    miniprogram: Option<MiniProgramLink>,
    client_msg_id: Option<String>,
    miniprogram_state: Option<String>,
    lang: Option<String>,
    #[serde(default)]
    data: serde_json::Value,
}

/// `POST /cgi-bin/message/template/send`.
pub(crate) async fn template_send(
    State(sb): State<Sandbox>,
    Query(q): Query<TokenQuery>,
    body: Bytes,
) -> Response {
    send(&sb, SendApi::TemplateSend, q.access_token.as_deref(), &body)
}

/// `POST /cgi-bin/message/subscribe/bizsend`.
pub(crate) async fn bizsend(
    State(sb): State<Sandbox>,
    Query(q): Query<TokenQuery>,
    body: Bytes,
) -> Response {
    send(&sb, SendApi::Bizsend, q.access_token.as_deref(), &body)
}

/// `POST /cgi-bin/message/subscribe/send`.
pub(crate) async fn subscribe_send(
    State(sb): State<Sandbox>,
    Query(q): Query<TokenQuery>,
    body: Bytes,
) -> Response {
    send(
        &sb,
        SendApi::SubscribeSend,
        q.access_token.as_deref(),
        &body,
    )
}

/// One send, in WeChat's order: the token (41001, 40001, 42001; 48001 for the other kind of
/// app), the daily quota (45009), the body (47001, 40003), then the rules of
/// [`Sandbox::accept_send`].
fn send(sb: &Sandbox, api: SendApi, token: Option<&str>, body: &[u8]) -> Response {
    let app_id = match sb.app_of_token(token, api.app_kind()) {
        Ok(app_id) => app_id,
        Err(refusal) => return refusal.into_response(),
    };
    let accepted = sb
        .charge_message_call(&app_id, api)
        .and_then(|()| parse(api, body))
        .and_then(|req| {
            let follows = api == SendApi::TemplateSend && sb.is_follower(&app_id, &req.touser);
            let (touser, template_id) = (req.touser.clone(), req.template_id.clone());
            let accepted = sb.accept_send(&app_id, api, req, follows)?;
            Ok((accepted, touser, template_id))
        });
    let (accepted, touser, template_id) = match accepted {
        Ok(a) => a,
        Err((errcode, errmsg)) => return wechat_error(errcode, &errmsg),
    };
    let answer =
        serde_json::json!({ "errcode": 0, "errmsg": "ok", "msgid": accepted.msgid }).to_string();
    if accepted.repeated || !sb.pushes_events(&app_id) {
        return ([(CONTENT_TYPE, "application/json")], answer).into_response();
    }
    let now = sb.unix_now();
    let xml = match api {
        SendApi::TemplateSend => {
            template_finished_xml(&touser, now, accepted.msgid, accepted.status)
        }
        _ => subscribe_sent_xml(&touser, now, &template_id, accepted.msgid),
    };
    // The push waits for the answer's body to be dropped, which drops this sender.
    let (answered, when_answered) = tokio::sync::oneshot::channel::<()>();
    let body = Body::from(answer).map_frame(move |frame| {
        let _answered = &answered;
        frame
    });
    sb.spawn_push(app_id, xml, when_answered);
    ([(CONTENT_TYPE, "application/json")], Body::new(body)).into_response()
}

/// Reads a send body; WeChat's errcode for what is wrong with it.
fn parse(api: SendApi, body: &[u8]) -> Result<SendRequest, Refused> {
    let invalid = |what: &str| (47003, format!("argument invalid! {what}"));
    let b: SendBody =
        serde_json::from_slice(body).map_err(|_| (47001, "data format error".to_owned()))?;
    let touser = b
        .touser
        .filter(|t| !t.is_empty() && t.chars().count() <= MAX_TOUSER)
        .ok_or_else(|| (40003, "invalid openid".to_owned()))?;
    let template_id = b
        .template_id
        .filter(|t| !t.is_empty() && t.len() <= 128)
        .ok_or_else(|| (40037, "invalid template_id".to_owned()))?;
    if b.data
        .as_object()
        .is_some_and(|d| d.len() > MAX_TEMPLATE_FIELDS)
    {
        return Err(invalid(&format!(
            "data has more than {MAX_TEMPLATE_FIELDS} keywords"
        )));
    }
    let long = |s: &Option<String>| s.as_ref().is_some_and(|s| s.len() > MAX_LINK);
    if long(&b.url) || long(&b.page) {
        return Err((40039, "invalid url size".to_owned()));
    }
    if let Some(link) = &b.miniprogram {
        if link.appid.is_empty() || link.appid.len() > 64 || link.pagepath.len() > MAX_LINK {
            return Err(invalid("miniprogram.appid or miniprogram.pagepath"));
        }
    }
    if b.client_msg_id.as_ref().is_some_and(|c| c.len() > 64) {
        return Err(invalid("client_msg_id is longer than 64 characters"));
    }
    if api == SendApi::SubscribeSend {
        if let Some(state) = &b.miniprogram_state {
            if !["developer", "trial", "formal"].contains(&state.as_str()) {
                return Err(invalid(
                    "miniprogram_state must be developer, trial or formal",
                ));
            }
        }
        if let Some(lang) = &b.lang {
            if !["zh_CN", "en_US", "zh_HK", "zh_TW"].contains(&lang.as_str()) {
                return Err(invalid("lang must be zh_CN, en_US, zh_HK or zh_TW"));
            }
        }
    }
    let template = api == SendApi::TemplateSend;
    Ok(SendRequest {
        touser,
        template_id,
        data: b.data,
        url: b.url.filter(|_| template),
        page: b.page.filter(|_| !template),
        miniprogram: b.miniprogram.filter(|_| api != SendApi::SubscribeSend),
        client_msg_id: b.client_msg_id.filter(|_| template),
    })
}

impl Sandbox {
    /// The app of an access token, which must be of `kind` (48001 otherwise).
    pub(crate) fn app_of_token(
        &self,
        token: Option<&str>,
        kind: AppKind,
    ) -> Result<String, Refusal> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or(Refusal(41001, "access_token missing"))?;
        let app_id = self
            .check_access_token(token)
            .map_err(|(errcode, errmsg)| Refusal(errcode, errmsg))?;
        match self.inner.apps.get(&app_id) {
            Some(app) if app.kind == kind => Ok(app_id),
            _ => Err(Refusal(48001, "api unauthorized")),
        }
    }

    /// Pushes `xml` to the app's webhook once `after` resolves, in the background; failures are
    /// logged at debug.
    fn spawn_push(&self, app_id: String, xml: String, after: tokio::sync::oneshot::Receiver<()>) {
        let pending = &self.inner.messages.pending_pushes;
        if pending.fetch_add(1, Ordering::Relaxed) >= MAX_PENDING_PUSHES {
            pending.fetch_sub(1, Ordering::Relaxed);
            self.inner
                .messages
                .pushes_dropped
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                app_id,
                "sandbox: too many delivery pushes pending, one dropped"
            );
            return;
        }
        let sb = self.clone();
        tokio::spawn(async move {
            let _ = after.await;
            let slot = sb.inner.messages.push_slots.acquire().await;
            match sb.push(&app_id, &xml, PushMode::Auto).await {
                Ok(p) if p.status == 200 => {}
                Ok(p) => {
                    tracing::debug!(app_id, status = p.status, body = %p.body, "sandbox: delivery push refused");
                }
                Err(e) => tracing::debug!(app_id, error = %e, "sandbox: delivery push not sent"),
            }
            drop(slot);
            sb.inner
                .messages
                .pending_pushes
                .fetch_sub(1, Ordering::Relaxed);
        });
    }
}

// The ids put in CDATA below are the sandbox's own (derived openids, checked template ids),
// so none holds `]]>`.

fn event_envelope(openid: &str, create_time: i64, event: &str, rest: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[gh_sandbox0000]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>{rest}</xml>"
    )
}

/// The `TEMPLATESENDJOBFINISH` event of a template message.
pub fn template_finished_xml(openid: &str, create_time: i64, msgid: u64, status: &str) -> String {
    event_envelope(
        openid,
        create_time,
        "TEMPLATESENDJOBFINISH",
        &format!("<MsgID>{msgid}</MsgID><Status><![CDATA[{status}]]></Status>"),
    )
}

/// The `subscribe_msg_sent_event` of a delivered subscribe message.
pub fn subscribe_sent_xml(openid: &str, create_time: i64, template_id: &str, msgid: u64) -> String {
    event_envelope(
        openid,
        create_time,
        "subscribe_msg_sent_event",
        &format!(
            "<SubscribeMsgSentEvent><List><TemplateId><![CDATA[{template_id}]]></TemplateId><MsgID><![CDATA[{msgid}]]></MsgID><ErrorCode>0</ErrorCode><ErrorStatus><![CDATA[success]]></ErrorStatus></List></SubscribeMsgSentEvent>"
        ),
    )
}

/// The `subscribe_msg_popup_event` (or, `change`, `subscribe_msg_change_event`) of an answer.
pub fn consent_xml(
    openid: &str,
    create_time: i64,
    template_id: &str,
    accept: bool,
    change: bool,
) -> String {
    let status = if accept { "accept" } else { "reject" };
    let (event, list, scene) = if change {
        ("subscribe_msg_change_event", "SubscribeMsgChangeEvent", "")
    } else {
        (
            "subscribe_msg_popup_event",
            "SubscribeMsgPopupEvent",
            "<PopupScene>0</PopupScene>",
        )
    };
    event_envelope(
        openid,
        create_time,
        event,
        &format!(
            "<{list}><List><TemplateId><![CDATA[{template_id}]]></TemplateId><SubscribeStatusString><![CDATA[{status}]]></SubscribeStatusString>{scene}</List></{list}>"
        ),
    )
}
