//! Faked Mini Program phone numbers: `POST /phone-codes` hands out the code a `getPhoneNumber`
//! button gives a Mini Program, `POST /wxa/business/getuserphonenumber` exchanges it (with the
//! app's access token) for the number.
//!
//! A sandbox user has a stable number of their own ([`default_phone_number`]) unless the request
//! names one. Codes live 5 minutes ([`CODE_TTL`]) on the sandbox clock and are single use; an
//! exchange with an unknown, used or expired code, or another app's, is 40029. The sandbox counts
//! every exchange that presented a valid token, refused ones too, and the numbers it handed out
//! (`GET /stats`: `phoneNumberCalls`): each of those costs money at WeChat, which answers
//! 1400001 once the app's quota is spent (tests inject it as a fault).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wechat_client::{AppKind, crypto};

use super::{CODE_TTL, MAX_CODES, Refusal, Sandbox, check_user, lock};

/// The country code of a phone code unless the request names one (China).
pub const DEFAULT_COUNTRY_CODE: &str = "86";

/// `POST /phone-codes`: the code a `getPhoneNumber` button hands the Mini Program `appId` for
/// `user`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PhoneCodeRequest {
    /// The Mini Program.
    pub app_id: String,
    /// The sandbox user's name (`alice`).
    pub user: String,
    /// The number without the country code, 4-14 digits (default: the user's own,
    /// [`default_phone_number`]).
    pub phone_number: Option<String>,
    /// The country code, 1-3 digits (default [`DEFAULT_COUNTRY_CODE`]).
    pub country_code: Option<String>,
}

impl PhoneCodeRequest {
    /// A request for `user`'s own number in `app_id`.
    pub fn new(app_id: &str, user: &str) -> Self {
        Self {
            app_id: app_id.into(),
            user: user.into(),
            phone_number: None,
            country_code: None,
        }
    }
}

/// Calls of `getuserphonenumber` per app (`GET /stats`: `phoneNumberCalls`).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PhoneNumberCalls {
    /// Calls that presented a valid token of the app, whatever became of their code.
    pub calls: u64,
    /// Numbers handed out (each one costs money at WeChat).
    pub paid: u64,
}

/// A code handed out by `POST /phone-codes`.
#[derive(Clone, Debug)]
struct PhoneCode {
    app_id: String,
    pure_phone_number: String,
    country_code: String,
    expires_at: Instant,
    used: bool,
}

/// The phone part of the sandbox's state.
#[derive(Default)]
pub(super) struct Phones {
    codes: Mutex<HashMap<String, PhoneCode>>,
    issued: AtomicU64,
    calls: Mutex<HashMap<String, PhoneNumberCalls>>,
}

/// The number a sandbox user has unless a phone code names another: a Chinese mobile number,
/// `13` and nine digits derived from the name (the same in every app).
pub fn default_phone_number(user: &str) -> String {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("phone:{user}").as_bytes(),
    );
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    format!("13{:09}", u64::from_be_bytes(first) % 1_000_000_000)
}

/// Whether `s` is `min..=max` ASCII digits.
fn digits(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

impl Sandbox {
    /// Issues a phone code (what `POST /phone-codes` does): `appId` must be a Mini Program.
    pub fn issue_phone_code(&self, req: &PhoneCodeRequest) -> Result<String, String> {
        match self.inner.apps.get(&req.app_id) {
            Some(app) if app.kind == AppKind::MiniProgram => {}
            Some(_) => return Err(format!("`{}` is not a sandbox Mini Program", req.app_id)),
            None => return Err(format!("unknown appId `{}`", req.app_id)),
        }
        check_user(&req.user)?;
        let pure_phone_number = match &req.phone_number {
            Some(n) if digits(n, 4, 14) => n.clone(),
            Some(_) => return Err("phoneNumber must be 4-14 digits".into()),
            None => default_phone_number(&req.user),
        };
        let country_code = match &req.country_code {
            Some(c) if digits(c, 1, 3) => c.clone(),
            Some(_) => return Err("countryCode must be 1-3 digits".into()),
            None => DEFAULT_COUNTRY_CODE.to_owned(),
        };
        let code = crypto::hex(&crypto::random_bytes::<32>());
        let now = self.now();
        let mut codes = lock(&self.inner.phones.codes);
        // Forget long-expired codes now and then (not on every call: the map can be large).
        if self.inner.phones.issued.fetch_add(1, Ordering::Relaxed) % 1024 == 1023
            || codes.len() >= MAX_CODES
        {
            codes.retain(|_, c| c.expires_at + Duration::from_secs(60) > now);
        }
        if codes.len() >= MAX_CODES {
            return Err(format!(
                "the sandbox holds {MAX_CODES} unexpired phone codes already; use or let some \
                 expire"
            ));
        }
        codes.insert(
            code.clone(),
            PhoneCode {
                app_id: req.app_id.clone(),
                pure_phone_number,
                country_code,
                expires_at: now + CODE_TTL,
                used: false,
            },
        );
        Ok(code)
    }

    /// Takes a phone code for `app_id`: single use, expiring; 40029 otherwise, whatever is wrong.
    fn redeem_phone_code(&self, app_id: &str, code: &str) -> Result<PhoneCode, Refusal> {
        let now = self.now();
        let mut codes = lock(&self.inner.phones.codes);
        match codes.get_mut(code) {
            Some(c) if c.app_id == app_id && !c.used && c.expires_at > now => {
                c.used = true;
                Ok(c.clone())
            }
            _ => Err(Refusal(40029, "invalid code")),
        }
    }

    /// What `getuserphonenumber` was asked for `app_id`.
    pub fn phone_number_calls(&self, app_id: &str) -> PhoneNumberCalls {
        lock(&self.inner.phones.calls)
            .get(app_id)
            .copied()
            .unwrap_or_default()
    }

    fn count_phone_call(&self, app_id: &str, f: impl FnOnce(&mut PhoneNumberCalls)) {
        f(lock(&self.inner.phones.calls)
            .entry(app_id.into())
            .or_default());
    }
}

pub(super) async fn issue_phone_code(
    State(sb): State<Sandbox>,
    Json(req): Json<PhoneCodeRequest>,
) -> Response {
    match sb.issue_phone_code(&req) {
        Ok(code) => Json(json!({ "code": code })).into_response(),
        Err(message) => super::control::bad_request(message),
    }
}

#[derive(Deserialize)]
pub(super) struct TokenQuery {
    access_token: Option<String>,
}

#[derive(Deserialize)]
struct PhoneNumberBody {
    code: Option<String>,
}

/// `POST /wxa/business/getuserphonenumber`, in WeChat's order: the token (41001, 40001, 42001;
/// 48001 for an Official Account's), the body (47001), then the code (40029).
pub(super) async fn getuserphonenumber(
    State(sb): State<Sandbox>,
    Query(q): Query<TokenQuery>,
    body: Bytes,
) -> Result<Json<Value>, Refusal> {
    let app_id = sb.app_of_token(q.access_token.as_deref(), AppKind::MiniProgram)?;
    sb.count_phone_call(&app_id, |c| c.calls += 1);
    let body: PhoneNumberBody =
        serde_json::from_slice(&body).map_err(|_| Refusal(47001, "data format error"))?;
    let code = body
        .code
        .filter(|c| !c.is_empty())
        .ok_or(Refusal(41008, "missing code"))?;
    let phone = sb.redeem_phone_code(&app_id, &code)?;
    sb.count_phone_call(&app_id, |c| c.paid += 1);
    let phone_number = if phone.country_code == DEFAULT_COUNTRY_CODE {
        phone.pure_phone_number.clone()
    } else {
        format!("+{} {}", phone.country_code, phone.pure_phone_number)
    };
    Ok(Json(json!({
        "errcode": 0,
        "errmsg": "ok",
        "phone_info": {
            "phoneNumber": phone_number,
            "purePhoneNumber": phone.pure_phone_number,
            "countryCode": phone.country_code,
            "watermark": { "appid": app_id, "timestamp": sb.unix_now() },
        },
    })))
}
