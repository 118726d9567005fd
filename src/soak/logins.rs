//! The logins of every kind, as a frontend runs them: each step to the next instance, so a
//! flow started on one instance finishes on another.

use serde_json::{Value, json};

use super::client::{Fail, timed};
use super::ops::{Ctx, MP_A, OA, PAYLOAD, UNBOUND, query_param};
use super::people::name;
use crate::wechat::sandbox::CodeRequest;

const WEBSITE: &str = "wxsandboxwebsite01";
const MOBILE: &str = "wxsandboxmobile001";

/// A code from the soak's sandbox (what `wx.login` or WeChat's page hands the frontend).
fn code(ctx: &Ctx, request: &CodeRequest) -> Result<String, Fail> {
    ctx.sandbox
        .issue_code(request)
        .map_err(|e| Fail::Other(format!("sandbox code: {e}")))
}

/// Keeps what a login answered for person `i`.
pub(crate) fn logged_in(ctx: &Ctx, i: usize, payload: &Value) {
    ctx.people.answered(
        i,
        &payload["user"],
        payload["accessToken"].as_str(),
        payload["refreshToken"].as_str(),
    );
}

pub(crate) async fn mp_login(ctx: &Ctx, op: &'static str, i: usize, app: &'static str) {
    timed(&ctx.client, op, &[], async {
        let code = code(ctx, &CodeRequest::new(app, &name(i)))?;
        let q = format!(
            "mutation($i: LoginWithMiniProgramInput!) {{ loginWithMiniProgram(input: $i) {PAYLOAD} }}"
        );
        let vars = json!({ "i": { "appId": app, "code": code } });
        let c = &ctx.client;
        let payload = c.gql(c.pick(), None, &q, vars, "loginWithMiniProgram").await?;
        if app == UNBOUND {
            // Another user (WeChat sends no unionid there): not this person's tokens.
            return Ok(());
        }
        logged_in(ctx, i, &payload);
        ctx.people.update(i, |p| match app {
            MP_A => p.mp_a = true,
            _ => p.mp_b = true,
        });
        Ok(())
    })
    .await;
}

/// The embedded OA flow: `startOfficialAccountLogin` on one instance, WeChat's code,
/// `loginWithOfficialAccount` on the next.
pub(crate) async fn oa_login(ctx: &Ctx, op: &'static str, i: usize, scope: &'static str) {
    timed(&ctx.client, op, &[], async {
        let c = &ctx.client;
        let q = "mutation($i: StartOfficialAccountLoginInput!) { startOfficialAccountLogin(input: $i) { authorizeUrl } }";
        let graphql_scope = scope.to_ascii_uppercase();
        let vars = json!({ "i": { "appId": OA, "redirectUri": "https://h5.example.com/soak", "scope": graphql_scope } });
        let start = c.gql(c.pick(), None, q, vars, "startOfficialAccountLogin").await?;
        let url = start["authorizeUrl"].as_str().unwrap_or_default();
        let state = query_param(url, "state").ok_or_else(|| Fail::Other("no state".into()))?;
        let code = code(ctx, &CodeRequest::official_account(OA, &name(i), scope))?;
        let q = format!(
            "mutation($i: LoginWithOfficialAccountInput!) {{ loginWithOfficialAccount(input: $i) {PAYLOAD} }}"
        );
        let vars = json!({ "i": { "appId": OA, "code": code, "state": state } });
        let payload = c.gql(c.pick(), None, &q, vars, "loginWithOfficialAccount").await?;
        logged_in(ctx, i, &payload);
        ctx.people.update(i, |p| match scope {
            "snsapi_base" => p.oa_base = true,
            _ => p.oa_userinfo = true,
        });
        Ok(())
    })
    .await;
}

/// The server-driven OA flow: our `/authorize` (a cookie), WeChat's page (approve), our
/// callback on the same instance (a ticket), `redeemLoginTicket` on the next.
pub(crate) async fn server_driven(ctx: &Ctx, op: &'static str, i: usize) {
    timed(&ctx.client, op, &[], async {
        let c = &ctx.client;
        let instance = c.pick();
        let mut start = reqwest::Url::parse(&format!(
            "{}/auth/official-account/{OA}/authorize",
            instance.base
        ))
        .map_err(|e| Fail::Other(e.to_string()))?;
        start
            .query_pairs_mut()
            .append_pair("scope", "snsapi_userinfo")
            .append_pair("returnTo", &ctx.landing);
        let (to_wechat, cookie) = c.get_redirect(Some(instance), start.as_str(), None).await?;
        let cookie = cookie.ok_or_else(|| Fail::Other("no binding cookie".into()))?;
        let approve = format!(
            "{}&user={}&action=allow",
            to_wechat.trim_end_matches("#wechat_redirect"),
            name(i)
        );
        let (to_callback, _) = c.get_redirect(None, &approve, None).await?;
        let (back, _) = c
            .get_redirect(Some(instance), &to_callback, Some(&cookie))
            .await?;
        if let Some(error) = query_param(&back, "error") {
            return Err(match error.as_str() {
                "WECHAT_UNAVAILABLE" | "WECHAT_RATE_LIMITED" => Fail::Wechat(error),
                "INTERNAL" | "UNAVAILABLE" | "TIMEOUT" => Fail::Server(error),
                _ => Fail::Other(error),
            });
        }
        let ticket = query_param(&back, "ticket").ok_or_else(|| Fail::Other("no ticket".into()))?;
        let q = format!("mutation($t: String!) {{ redeemLoginTicket(ticket: $t) {PAYLOAD} }}");
        let payload = c
            .gql(
                c.pick(),
                None,
                &q,
                json!({ "t": ticket }),
                "redeemLoginTicket",
            )
            .await?;
        logged_in(ctx, i, &payload);
        ctx.people.update(i, |p| p.oa_userinfo = true);
        Ok(())
    })
    .await;
}

pub(crate) async fn website_login(ctx: &Ctx, op: &'static str, i: usize) {
    timed(&ctx.client, op, &[], async {
        let c = &ctx.client;
        let q = "mutation($i: StartWebsiteLoginInput!) { startWebsiteLogin(input: $i) { state } }";
        // The QR code sends the whole page there: it must be on `official_account_login.return_to`.
        let vars = json!({ "i": { "appId": WEBSITE, "redirectUri": ctx.landing } });
        let start = c.gql(c.pick(), None, q, vars, "startWebsiteLogin").await?;
        let state = start["state"].as_str().unwrap_or_default().to_owned();
        let code = code(ctx, &CodeRequest::new(WEBSITE, &name(i)))?;
        let q = format!(
            "mutation($i: LoginWithWebsiteInput!) {{ loginWithWebsite(input: $i) {PAYLOAD} }}"
        );
        let vars = json!({ "i": { "appId": WEBSITE, "code": code, "state": state } });
        let payload = c.gql(c.pick(), None, &q, vars, "loginWithWebsite").await?;
        logged_in(ctx, i, &payload);
        Ok(())
    })
    .await;
}

pub(crate) async fn mobile_login(ctx: &Ctx, op: &'static str, i: usize) {
    timed(&ctx.client, op, &[], async {
        let c = &ctx.client;
        let code = code(ctx, &CodeRequest::new(MOBILE, &name(i)))?;
        let q = format!(
            "mutation($i: LoginWithMobileAppInput!) {{ loginWithMobileApp(input: $i) {PAYLOAD} }}"
        );
        let vars = json!({ "i": { "appId": MOBILE, "code": code } });
        let payload = c
            .gql(c.pick(), None, &q, vars, "loginWithMobileApp")
            .await?;
        logged_in(ctx, i, &payload);
        Ok(())
    })
    .await;
}
