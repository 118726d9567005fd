//! The sandbox pushes to the service's webhook as WeChat does: `POST /follow` and `/unfollow`
//! change a person's follow state and push the `subscribe` / `unsubscribe` event; `POST /push`
//! pushes any message (a Mini Program message, `TEMPLATESENDJOBFINISH`, ...). Each push is
//! signed with the app's webhook token and, in compatible and safe mode, encrypted with its
//! EncodingAESKey, to `{target}/wechat/{appId}/events` (the target is the service: set by
//! sandbox mode, or by a test with [`Sandbox::set_push_target`]).

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use wechat_client::crypto;
use wechat_client::webhook::{self, MsgCrypt};

use super::{App, Sandbox, lock};

/// How long a push may take.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest XML `POST /push` takes.
pub const MAX_PUSH_XML: usize = 16 * 1024;

/// What the sandbox needs to push for the apps.
pub(super) struct Push {
    target: std::sync::Mutex<Option<String>>,
    keys: HashMap<String, (Option<String>, Option<String>)>,
    http: reqwest::Client,
}

impl Push {
    pub(super) fn new(apps: &[App]) -> Self {
        let keys = apps
            .iter()
            .map(|a| {
                let keys = (a.webhook_token.clone(), a.encoding_aes_key.clone());
                (a.app_id.clone(), keys)
            })
            .collect();
        let http = reqwest::Client::builder()
            .timeout(PUSH_TIMEOUT)
            .build()
            .expect("the TLS backend initializes");
        Self {
            target: std::sync::Mutex::new(None),
            keys,
            http,
        }
    }
}

/// How a push is wrapped.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PushMode {
    /// The app's own choice: safe mode when it has an EncodingAESKey, plaintext otherwise.
    #[default]
    Auto,
    /// Plain XML, `signature` only.
    Plaintext,
    /// Plain fields and `Encrypt` in one body.
    Compatible,
    /// `Encrypt` only.
    Safe,
}

/// What came back from the service.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Pushed {
    /// HTTP status (0: not delivered).
    pub status: u16,
    /// The body it answered (`success`).
    pub body: String,
}

impl Sandbox {
    /// Where pushes go: the service's base URL (`http://127.0.0.1:8080`).
    pub fn set_push_target(&self, base_url: &str) {
        *lock(&self.inner.push.target) = Some(base_url.trim_end_matches('/').to_owned());
    }

    /// Whether the sandbox knows where to push.
    pub(super) fn has_push_target(&self) -> bool {
        lock(&self.inner.push.target).is_some()
    }

    /// Pushes `xml` to the app's webhook, signed (and encrypted) as WeChat does.
    pub async fn push(&self, app_id: &str, xml: &str, mode: PushMode) -> Result<Pushed, String> {
        let target = lock(&self.inner.push.target)
            .clone()
            .ok_or("no push target: the sandbox does not know the service's URL")?;
        let (token, key) = self
            .inner
            .push
            .keys
            .get(app_id)
            .ok_or_else(|| format!("unknown appId `{app_id}`"))?;
        let token = token.as_deref().ok_or("the app has no webhook token")?;
        let mode = match (mode, key) {
            (PushMode::Auto, Some(_)) => PushMode::Safe,
            (PushMode::Auto, None) => PushMode::Plaintext,
            (m, _) => m,
        };
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            .to_string();
        let nonce = crypto::hex(&crypto::random_bytes::<5>());
        let mut query = vec![
            ("signature", webhook::signature(token, &timestamp, &nonce)),
            ("timestamp", timestamp.clone()),
            ("nonce", nonce.clone()),
        ];
        let body = if mode == PushMode::Plaintext {
            xml.to_owned()
        } else {
            let key = key.as_deref().ok_or("the app has no EncodingAESKey")?;
            let crypt = MsgCrypt::new(key, app_id).map_err(|e| e.to_string())?;
            let encrypt = crypt.encrypt(xml, &crypto::random_bytes::<16>());
            let msg_signature = webhook::msg_signature(token, &timestamp, &nonce, &encrypt);
            query.push(("encrypt_type", "aes".into()));
            query.push(("msg_signature", msg_signature));
            let inner = if mode == PushMode::Compatible {
                xml.trim()
                    .trim_start_matches("<xml>")
                    .trim_end_matches("</xml>")
                    .to_owned()
            } else {
                String::new()
            };
            format!("<xml>{inner}<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
        };
        let response = self
            .inner
            .push
            .http
            .post(format!("{target}/wechat/{app_id}/events"))
            .query(&query)
            .header("content-type", "text/xml")
            .body(body)
            .send()
            .await;
        match response {
            Ok(r) => {
                let status = r.status().as_u16();
                let body = r.text().await.unwrap_or_default();
                Ok(Pushed { status, body })
            }
            Err(e) => Ok(Pushed {
                status: 0,
                body: e.without_url().to_string(),
            }),
        }
    }
}

/// A follow event's XML.
pub fn event_xml(openid: &str, create_time: i64, event: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[gh_sandbox0000]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event></xml>"
    )
}

/// `POST /follow` and `/unfollow`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FollowRequest {
    /// The Official Account.
    pub app_id: String,
    /// The sandbox person.
    pub user: String,
    /// How the event is pushed.
    #[serde(default)]
    pub mode: PushMode,
    /// Change the follow state without pushing the event (as if the push was lost).
    #[serde(default)]
    pub silent: bool,
}

/// `POST /push`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PushRequest {
    /// The app.
    pub app_id: String,
    /// The message XML.
    pub xml: String,
    /// How it is pushed.
    #[serde(default)]
    pub mode: PushMode,
}

async fn follow_or_unfollow(sb: Sandbox, req: FollowRequest, follow: bool) -> Response {
    let changed = if follow {
        sb.add_follower(&req.app_id, &req.user)
    } else {
        sb.remove_follower(&req.app_id, &req.user)
    };
    let follower = match changed {
        Ok(f) => f,
        Err(message) => return super::control::bad_request(message),
    };
    let event = if follow { "subscribe" } else { "unsubscribe" };
    let xml = event_xml(&follower.openid, sb.unix_now(), event);
    let pushed = if req.silent {
        serde_json::Value::Null
    } else {
        match sb.push(&req.app_id, &xml, req.mode).await {
            Ok(p) => serde_json::json!(p),
            Err(e) => serde_json::json!({ "error": e }),
        }
    };
    Json(serde_json::json!({
        "openid": follower.openid,
        "unionid": follower.unionid,
        "pushed": pushed,
    }))
    .into_response()
}

pub(super) async fn follow(State(sb): State<Sandbox>, Json(req): Json<FollowRequest>) -> Response {
    follow_or_unfollow(sb, req, true).await
}

pub(super) async fn unfollow(
    State(sb): State<Sandbox>,
    Json(req): Json<FollowRequest>,
) -> Response {
    follow_or_unfollow(sb, req, false).await
}

pub(super) async fn push(State(sb): State<Sandbox>, Json(req): Json<PushRequest>) -> Response {
    if req.xml.len() > MAX_PUSH_XML {
        return super::control::bad_request(format!("xml must be at most {MAX_PUSH_XML} bytes"));
    }
    match sb.push(&req.app_id, &req.xml, req.mode).await {
        Ok(p) => Json(p).into_response(),
        Err(message) => super::control::bad_request(message),
    }
}
