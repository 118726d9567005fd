//! Faked session-key checks: `GET /wxa/checksession` tells whether a session key is still the
//! person's current one.
//!
//! WeChat gives a person a new session_key on every `wx.login`; in the sandbox a Mini Program
//! code of `POST /codes` is that `wx.login`, so its session key becomes the current one of
//! (app, openid). The check is signed as WeChat's is
//! ([`wechat_client::crypto::session_signature`]); a signature of any other key, or for a person
//! the sandbox knows no key of, is 87009. The sandbox remembers at most [`MAX_SESSION_KEYS`]
//! current keys and forgets the oldest first. Checks with a valid token are counted
//! (`GET /stats`: `checkSessionCalls`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use wechat_client::mini_program::SESSION_KEY_INVALID;
use wechat_client::{AppKind, crypto};

use super::{Refusal, Sandbox, lock};

/// Current session keys, one per (Mini Program, openid), the sandbox remembers at most (the one
/// set longest ago is forgotten first: checking it answers 87009).
pub const MAX_SESSION_KEYS: usize = 200_000;

#[derive(Default)]
struct SessionKeys {
    next_seq: u64,
    /// (app, openid) → (when it was set, the key).
    current: HashMap<(String, String), (u64, String)>,
    /// When each key was set → its (app, openid): the oldest first.
    order: BTreeMap<u64, (String, String)>,
}

/// The session part of the sandbox's state.
#[derive(Default)]
pub(super) struct Sessions {
    keys: Mutex<SessionKeys>,
    calls: Mutex<HashMap<String, u64>>,
}

impl Sandbox {
    /// Makes `session_key` the current key of `openid` in `app_id` (a `wx.login`).
    pub(super) fn set_session_key(&self, app_id: &str, openid: &str, session_key: &str) {
        let mut keys = lock(&self.inner.sessions.keys);
        let keys = &mut *keys;
        let seq = keys.next_seq;
        keys.next_seq += 1;
        let person = (app_id.to_owned(), openid.to_owned());
        if let Some((old, _)) = keys
            .current
            .insert(person.clone(), (seq, session_key.to_owned()))
        {
            keys.order.remove(&old);
        }
        keys.order.insert(seq, person);
        while keys.current.len() > MAX_SESSION_KEYS {
            let Some((_, oldest)) = keys.order.pop_first() else {
                break;
            };
            keys.current.remove(&oldest);
        }
    }

    /// The current session key of `openid` in `app_id`, if the sandbox knows one.
    pub fn session_key(&self, app_id: &str, openid: &str) -> Option<String> {
        lock(&self.inner.sessions.keys)
            .current
            .get(&(app_id.to_owned(), openid.to_owned()))
            .map(|(_, key)| key.clone())
    }

    /// `checksession` calls for `app_id` that presented a valid token.
    pub fn check_session_calls(&self, app_id: &str) -> u64 {
        lock(&self.inner.sessions.calls)
            .get(app_id)
            .copied()
            .unwrap_or_default()
    }
}

#[derive(Deserialize)]
pub(super) struct CheckSessionQuery {
    access_token: Option<String>,
    signature: Option<String>,
    openid: Option<String>,
    sig_method: Option<String>,
}

/// `GET /wxa/checksession`, in WeChat's order: the token (41001, 40001, 42001; 48001 for an
/// Official Account's), the arguments (40097), then the signature (87009).
pub(super) async fn checksession(
    State(sb): State<Sandbox>,
    Query(q): Query<CheckSessionQuery>,
) -> Result<Json<Value>, Refusal> {
    let app_id = sb.app_of_token(q.access_token.as_deref(), AppKind::MiniProgram)?;
    *lock(&sb.inner.sessions.calls)
        .entry(app_id.clone())
        .or_default() += 1;
    let (Some(signature), Some(openid), Some("hmac_sha256")) =
        (q.signature, q.openid, q.sig_method.as_deref())
    else {
        return Err(Refusal(40097, "invalid args"));
    };
    let valid = sb.session_key(&app_id, &openid).is_some_and(|key| {
        crypto::constant_time_eq(
            crypto::session_signature(&key).as_bytes(),
            signature.as_bytes(),
        )
    });
    if !valid {
        return Err(Refusal(SESSION_KEY_INVALID, "invalid signature"));
    }
    Ok(Json(json!({ "errcode": 0, "errmsg": "ok" })))
}
