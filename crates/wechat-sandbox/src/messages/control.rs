//! Control endpoints of the message APIs: `POST /templates`, `/consents`, `/message-settings`
//! and `GET /messages`. Each refuses unbounded or malformed input with 400.

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use wechat_client::messages::{KeywordType, MAX_TEMPLATE_FIELDS};

use super::TemplateKind;
use super::api::consent_xml;
use super::send::{ConsentAnswer, SettingsChange};
use crate::control::bad_request;
use crate::{PushMode, Sandbox};

/// Messages `GET /messages` lists unless `limit` says otherwise.
pub const DEFAULT_LIST_LIMIT: usize = 100;
/// The largest `limit` of `GET /messages`.
pub const MAX_LIST_LIMIT: usize = 10_000;
/// People one `POST /message-settings` may block and unblock at most.
pub const MAX_USERS_PER_SETTINGS: usize = 1000;
/// Longest keyword name of a template.
pub const MAX_KEY_LEN: usize = 32;

/// `POST /templates`: adds or replaces a template of an app.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateRequest {
    /// The app.
    pub app_id: String,
    /// 1-64 characters of A-Z, a-z, 0-9, `_ -`.
    pub template_id: String,
    /// `template` (Official Accounts only) or `subscribe`.
    pub kind: String,
    /// The keywords, 1-20.
    #[serde(default)]
    pub fields: Vec<TemplateField>,
}

/// One keyword of a template.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateField {
    /// Its name (`thing1`): 1-32 characters of A-Z, a-z, 0-9, `_`.
    pub key: String,
    /// Its type, as [`KeywordType`] names it (`THING`).
    #[serde(rename = "type")]
    pub keyword_type: String,
}

/// `POST /consents`: a person's answer to the consent popup (or, `change`, in their settings).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsentRequest {
    /// The app (either kind).
    pub app_id: String,
    /// The sandbox person.
    pub user: String,
    /// A subscribe template of the app.
    pub template_id: String,
    /// Accept (default) or reject.
    #[serde(default = "yes")]
    pub accept: bool,
    /// Accept for good rather than once.
    #[serde(default)]
    pub long_term: bool,
    /// Record the answer without pushing the event.
    #[serde(default)]
    pub silent: bool,
    /// From the settings page (`subscribe_msg_change_event`); a reject there clears every
    /// consent of the person for the template (an accept counts as in the popup).
    #[serde(default)]
    pub change: bool,
    /// How the event is pushed.
    #[serde(default)]
    pub mode: PushMode,
}

fn yes() -> bool {
    true
}

/// `POST /message-settings`: an app's delivery pushes, blocked people and daily quota.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageSettings {
    /// The app.
    pub app_id: String,
    /// Push delivery results and consent events (default on).
    pub push_events: Option<bool>,
    /// People who block the app from now on (template messages to them fail).
    #[serde(default)]
    pub block: Vec<String>,
    /// People who no longer do.
    #[serde(default)]
    pub unblock: Vec<String>,
    /// Calls per send API and day from now on.
    pub daily_quota: Option<u64>,
}

/// `GET /messages`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagesQuery {
    /// The app.
    pub app_id: String,
    /// Only messages to this openid.
    pub touser: Option<String>,
    /// The last this many (default 100, at most 10,000).
    pub limit: Option<usize>,
}

/// Checks a template id: 1-64 characters of A-Z, a-z, 0-9, `_ -`.
fn check_template_id(id: &str) -> Result<(), String> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err("templateId must be 1-64 characters of A-Z, a-z, 0-9, _ -".into());
    }
    Ok(())
}

fn template_fields(fields: &[TemplateField]) -> Result<Vec<(String, KeywordType)>, String> {
    if fields.is_empty() || fields.len() > MAX_TEMPLATE_FIELDS {
        return Err(format!("a template has 1-{MAX_TEMPLATE_FIELDS} fields"));
    }
    let mut out: Vec<(String, KeywordType)> = Vec::with_capacity(fields.len());
    for f in fields {
        if f.key.is_empty()
            || f.key.len() > MAX_KEY_LEN
            || !f
                .key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(format!(
                "a field key is 1-{MAX_KEY_LEN} characters of A-Z, a-z, 0-9, _"
            ));
        }
        if out.iter().any(|(k, _)| *k == f.key) {
            return Err(format!("field `{}` is given twice", f.key));
        }
        let ty = serde_json::from_value(serde_json::Value::String(f.keyword_type.clone()))
            .map_err(|_| {
                format!(
                    "field `{}`: type must be a keyword type like THING, TIME, DATE, AMOUNT",
                    f.key
                )
            })?;
        out.push((f.key.clone(), ty));
    }
    Ok(out)
}

pub(crate) async fn add_template(
    State(sb): State<Sandbox>,
    Json(req): Json<TemplateRequest>,
) -> Response {
    let kind = match req.kind.as_str() {
        "template" => TemplateKind::Template,
        "subscribe" => TemplateKind::Subscribe,
        _ => return bad_request("kind must be `template` or `subscribe`".into()),
    };
    let checked = check_template_id(&req.template_id)
        .and_then(|()| template_fields(&req.fields))
        .and_then(|fields| sb.put_template(&req.app_id, &req.template_id, kind, fields));
    match checked {
        Ok(replaced) => Json(serde_json::json!({
            "appId": req.app_id,
            "templateId": req.template_id,
            "kind": kind,
            "replaced": replaced,
        }))
        .into_response(),
        Err(message) => bad_request(message),
    }
}

pub(crate) async fn record_consent(
    State(sb): State<Sandbox>,
    Json(req): Json<ConsentRequest>,
) -> Response {
    if let Err(message) = check_template_id(&req.template_id) {
        return bad_request(message);
    }
    let answer = if req.accept {
        ConsentAnswer::Accept {
            long_term: req.long_term,
        }
    } else {
        ConsentAnswer::Reject { change: req.change }
    };
    let (openid, consent) =
        match sb.answer_consent(&req.app_id, &req.user, &req.template_id, answer) {
            Ok(answered) => answered,
            Err(message) => return bad_request(message),
        };
    let pushed = if req.silent || !sb.pushes_events(&req.app_id) {
        serde_json::Value::Null
    } else {
        let xml = consent_xml(
            &openid,
            sb.unix_now(),
            &req.template_id,
            req.accept,
            req.change,
        );
        match sb.push(&req.app_id, &xml, req.mode).await {
            Ok(p) => serde_json::json!(p),
            Err(e) => serde_json::json!({ "error": e }),
        }
    };
    Json(serde_json::json!({
        "openid": openid,
        "oneTime": consent.one_time,
        "longTerm": consent.long_term,
        "pushed": pushed,
    }))
    .into_response()
}

pub(crate) async fn settings(
    State(sb): State<Sandbox>,
    Json(req): Json<MessageSettings>,
) -> Response {
    if req.block.len() + req.unblock.len() > MAX_USERS_PER_SETTINGS {
        return bad_request(format!(
            "block and unblock name at most {MAX_USERS_PER_SETTINGS} people per call"
        ));
    }
    let change = SettingsChange {
        push_events: req.push_events,
        block: &req.block,
        unblock: &req.unblock,
        daily_quota: req.daily_quota,
    };
    match sb.change_settings(&req.app_id, change) {
        Ok(now) => Json(now).into_response(),
        Err(message) => bad_request(message),
    }
}

pub(crate) async fn list_messages(
    State(sb): State<Sandbox>,
    Query(q): Query<MessagesQuery>,
) -> Response {
    let limit = q.limit.unwrap_or(DEFAULT_LIST_LIMIT);
    if limit > MAX_LIST_LIMIT {
        return bad_request(format!("limit must be at most {MAX_LIST_LIMIT}"));
    }
    if q.touser.as_ref().is_some_and(|t| t.len() > 64) {
        return bad_request("touser must be at most 64 characters".into());
    }
    match sb.delivered(&q.app_id, q.touser.as_deref(), limit) {
        Some(list) => Json(list).into_response(),
        None => bad_request(format!("unknown appId `{}`", q.app_id)),
    }
}
