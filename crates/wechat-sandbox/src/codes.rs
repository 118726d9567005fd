//! Login codes: issued by `POST /codes` (or the approval page), redeemed once by the faked
//! code exchanges; and the app check those exchanges make first.

use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use wechat_client::AppKind;
use wechat_client::crypto;

use super::{
    CODE_TTL, CodeRequest, IssuedCode, MAX_CODE_TTL_SECS, MAX_CODES, Refusal, Sandbox, check_user,
    derive_id, lock,
};

/// The query of a code exchange, as both kinds of app send it (`/sns/jscode2session`,
/// `/sns/oauth2/access_token`), but for the code, whose name differs.
#[derive(Deserialize)]
pub(super) struct CodeExchange {
    appid: Option<String>,
    secret: Option<String>,
    grant_type: Option<String>,
}

impl Sandbox {
    /// A code exchange checked like WeChat, in WeChat's order (41002 without appid or secret,
    /// 41008 without a code, 40002 for another grant type, then the app, then the code); the
    /// app id and the code taken.
    pub(super) fn exchange_code(
        &self,
        kind: fn(AppKind) -> bool,
        q: CodeExchange,
        code: Option<String>,
    ) -> Result<(String, IssuedCode), Refusal> {
        let (Some(appid), Some(secret)) = (q.appid, q.secret) else {
            return Err(Refusal(41002, "appid missing"));
        };
        let Some(code) = code.filter(|c| !c.is_empty()) else {
            return Err(Refusal(41008, "missing code"));
        };
        if q.grant_type.as_deref() != Some("authorization_code") {
            return Err(Refusal(40002, "invalid grant_type"));
        }
        self.check_app(&appid, &secret, kind)?;
        let issued = self.redeem_code(&appid, &code)?;
        Ok((appid, issued))
    }

    /// Issues a login code (what `POST /codes` does). Mini Program codes are for
    /// `jscode2session`, and each is a `wx.login`: its session key becomes the person's current
    /// one (`/wxa/checksession`). Official Account codes carry a scope (default `snsapi_base`).
    pub fn issue_code(&self, req: &CodeRequest) -> Result<String, String> {
        let app = self
            .inner
            .apps
            .get(&req.app_id)
            .ok_or_else(|| format!("unknown appId `{}`", req.app_id))?;
        check_user(&req.user)?;
        for (name, value) in [
            ("openid", &req.openid),
            ("unionid", &req.unionid),
            ("sessionKey", &req.session_key),
        ] {
            if value.as_ref().is_some_and(|v| v.len() > 128) {
                return Err(format!("{name} must be at most 128 characters"));
            }
        }
        // Each kind's scopes, the first its default.
        let scopes: &[&str] = match app.kind {
            AppKind::MiniProgram => &[],
            AppKind::OfficialAccount => &["snsapi_base", "snsapi_userinfo"],
            AppKind::Website => &["snsapi_login"],
            AppKind::MobileApp => &["snsapi_userinfo"],
        };
        let scope = match (scopes.first(), req.scope.as_deref()) {
            (None, None) => None,
            (None, Some(_)) => return Err("scope is not for Mini Program codes".into()),
            (Some(default), None) => Some((*default).to_owned()),
            (Some(_), Some(s)) if scopes.contains(&s) => Some(s.to_owned()),
            (Some(_), Some(_)) => {
                return Err(format!("scope must be one of {}", scopes.join(", ")));
            }
        };
        if req.snapshot_user && app.kind != AppKind::OfficialAccount {
            return Err("snapshotUser is for Official Account codes".into());
        }
        let openid = match &req.openid {
            Some(o) => o.clone(),
            // A snapshot user is a virtual person with an openid of its own.
            None if req.snapshot_user => derive_id("snapshot-openid", &req.app_id, &req.user),
            None => derive_id("openid", &req.app_id, &req.user),
        };
        let unionid = match &req.unionid {
            Some(u) => Some(u.clone()),
            None if req.snapshot_user => None,
            None => app
                .open_platform
                .as_ref()
                .map(|platform| derive_id("unionid", platform, &req.user)),
        };
        let session_key = req
            .session_key
            .clone()
            .unwrap_or_else(|| STANDARD.encode(crypto::random_bytes::<16>()));
        let code = crypto::hex(&crypto::random_bytes::<16>());
        let ttl = match req.ttl_seconds {
            None => CODE_TTL,
            Some(secs @ 0..=MAX_CODE_TTL_SECS) => Duration::from_secs(secs),
            Some(_) => return Err(format!("ttlSeconds must be 0..={MAX_CODE_TTL_SECS}")),
        };
        // A Mini Program code is a `wx.login`: its key becomes the person's current one.
        let login =
            (app.kind == AppKind::MiniProgram).then(|| (openid.clone(), session_key.clone()));
        let now = self.now();
        let mut codes = lock(&self.inner.codes);
        // Forget long-expired codes now and then (not on every call: the map can be large).
        if self.inner.issued.fetch_add(1, Ordering::Relaxed) % 1024 == 1023
            || codes.len() >= MAX_CODES
        {
            codes.retain(|_, c| c.expires_at + Duration::from_secs(60) > now);
        }
        if codes.len() >= MAX_CODES {
            return Err(format!(
                "the sandbox holds {MAX_CODES} unexpired codes already; use or let some expire"
            ));
        }
        codes.insert(
            code.clone(),
            IssuedCode {
                app_id: req.app_id.clone(),
                user: req.user.clone(),
                openid,
                unionid,
                session_key,
                // WeChat sends the unionid with the token for every scope that shows the
                // person (not snsapi_base); a test may force it with an explicit unionid.
                unionid_in_token: scope.as_deref().is_some_and(|s| s != "snsapi_base")
                    || req.unionid.is_some(),
                scope,
                snapshot: req.snapshot_user,
                expires_at: now + ttl,
                used: false,
            },
        );
        drop(codes);
        if let Some((openid, session_key)) = login {
            self.set_session_key(&req.app_id, &openid, &session_key);
        }
        Ok(code)
    }

    /// Checks `appid` and `secret` like WeChat: 40013 for an unknown app, 40125 for a bad secret.
    fn check_app(
        &self,
        appid: &str,
        secret: &str,
        kind: impl Fn(AppKind) -> bool,
    ) -> Result<(), Refusal> {
        match self.inner.apps.get(appid) {
            Some(app) if !kind(app.kind) => Err(Refusal(40013, "invalid appid")),
            Some(app) if crypto::constant_time_eq(app.secret.as_bytes(), secret.as_bytes()) => {
                Ok(())
            }
            Some(_) => Err(Refusal(40125, "invalid appsecret")),
            None => Err(Refusal(40013, "invalid appid")),
        }
    }

    /// Checks `appid` and `secret` of an app of any kind (the token calls).
    pub(super) fn check_app_secret(&self, appid: &str, secret: &str) -> Result<(), super::Refusal> {
        self.check_app(appid, secret, |_| true)
    }

    /// Takes a code for `appid`: single use, expiring. WeChat's errcodes otherwise (an expired
    /// Mini Program code is 40029, an expired OA code 42003, as WeChat answers).
    pub(super) fn redeem_code(&self, appid: &str, code: &str) -> Result<IssuedCode, Refusal> {
        let now = self.now();
        let mut codes = lock(&self.inner.codes);
        match codes.get_mut(code) {
            Some(c) if c.app_id != appid => Err(Refusal(40029, "invalid code")),
            Some(c) if c.used => Err(Refusal(40163, "code been used")),
            Some(c) if c.expires_at <= now && c.scope.is_some() => {
                Err(Refusal(42003, "code expired"))
            }
            Some(c) if c.expires_at <= now => Err(Refusal(40029, "invalid code")),
            Some(c) => {
                c.used = true;
                Ok(c.clone())
            }
            None => Err(Refusal(40029, "invalid code")),
        }
    }
}
