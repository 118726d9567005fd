//! Each app's last call to WeChat, for `/healthz/details`: recorded where the app is known
//! (login code exchanges, the token manager's calls and refreshes). One entry per configured
//! app, so the map stays as small as the configuration.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// How an app's last call to WeChat went.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastCall {
    /// When it ended.
    pub at: DateTime<Utc>,
    /// Whether WeChat answered without an error.
    pub ok: bool,
    /// WeChat's errcode, when it sent one.
    pub errcode: Option<i64>,
    /// What went wrong (no secrets: the error's message).
    pub error: Option<String>,
}

static LAST: Mutex<BTreeMap<String, LastCall>> = Mutex::new(BTreeMap::new());

/// Records how a call made for `app_id` ended.
pub fn record<T>(app_id: &str, result: &Result<T, wechat_client::WechatError>) {
    let call = LastCall {
        at: Utc::now(),
        // A login code refused is the caller's, not the app's: WeChat answered.
        ok: matches!(
            result,
            Ok(_) | Err(wechat_client::WechatError::CodeInvalid { .. })
        ),
        errcode: result.as_ref().err().and_then(|e| e.errcode()),
        error: result.as_ref().err().map(ToString::to_string),
    };
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    match last.get_mut(app_id) {
        Some(entry) => *entry = call,
        None => {
            last.insert(app_id.to_owned(), call);
        }
    }
}

/// The app's last call, if this instance made one.
pub fn last_call(app_id: &str) -> Option<LastCall> {
    LAST.lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(app_id)
        .cloned()
}
