//! The faked OAuth API of Official Accounts, websites and mobile apps:
//! `/sns/oauth2/access_token`, `/sns/oauth2/refresh_token`, `/sns/userinfo` and `/sns/auth`.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use wechat_client::AppKind;
use wechat_client::crypto;

use super::codes::CodeExchange;
use super::{OAUTH_ACCESS_TTL, OAUTH_REFRESH_TTL, OauthGrant, Refusal, Sandbox, lock};

/// WeChat's web-authorization tokens look like long opaque strings.
fn new_token() -> String {
    crypto::hex(&crypto::random_bytes::<32>())
}

#[derive(Deserialize)]
pub(super) struct AccessTokenQuery {
    #[serde(flatten)]
    exchange: CodeExchange,
    code: Option<String>,
}

/// `GET /sns/oauth2/access_token`: a code for an access token, a refresh token and the openid
/// (and the unionid with a scope that shows the person: not `snsapi_base`).
pub(super) async fn access_token(
    State(sb): State<Sandbox>,
    Query(q): Query<AccessTokenQuery>,
) -> Result<Json<Value>, Refusal> {
    let (appid, issued) = sb.exchange_code(AppKind::uses_oauth, q.exchange, q.code)?;
    let Some(scope) = issued.scope.clone() else {
        // A Mini Program code: WeChat does not know it here.
        return Err(Refusal(40029, "invalid code"));
    };
    let now = sb.now();
    let grant = OauthGrant {
        app_id: appid,
        user: issued.user.clone(),
        openid: issued.openid.clone(),
        unionid: issued.unionid.clone(),
        scope: scope.clone(),
        expires_at: now + OAUTH_ACCESS_TTL,
    };
    let access = new_token();
    let refresh = new_token();
    lock(&sb.inner.oauth_refresh).insert(
        refresh.clone(),
        OauthGrant {
            expires_at: now + OAUTH_REFRESH_TTL,
            ..grant.clone()
        },
    );
    lock(&sb.inner.oauth_access).insert(access.clone(), grant);
    let mut body = json!({
        "access_token": access,
        "expires_in": OAUTH_ACCESS_TTL.as_secs(),
        "refresh_token": refresh,
        "openid": issued.openid,
        "scope": scope,
    });
    if issued.unionid_in_token {
        if let Some(unionid) = issued.unionid {
            body["unionid"] = unionid.into();
        }
    }
    if issued.snapshot {
        body["is_snapshotuser"] = 1.into();
    }
    Ok(Json(body))
}

#[derive(Deserialize)]
pub(super) struct RefreshQuery {
    appid: Option<String>,
    grant_type: Option<String>,
    refresh_token: Option<String>,
}

/// `GET /sns/oauth2/refresh_token`: a fresh access token for a refresh token (valid 30 days;
/// 40030 unknown, 42002 expired).
pub(super) async fn refresh_token(
    State(sb): State<Sandbox>,
    Query(q): Query<RefreshQuery>,
) -> Result<Json<Value>, Refusal> {
    let Some(appid) = q.appid else {
        return Err(Refusal(41002, "appid missing"));
    };
    if q.grant_type.as_deref() != Some("refresh_token") {
        return Err(Refusal(40002, "invalid grant_type"));
    }
    let Some(token) = q.refresh_token.filter(|t| !t.is_empty()) else {
        return Err(Refusal(41003, "refresh_token missing"));
    };
    let now = sb.now();
    let grant = {
        let refresh = lock(&sb.inner.oauth_refresh);
        match refresh.get(&token) {
            Some(g) if g.app_id != appid => return Err(Refusal(40030, "invalid refresh_token")),
            Some(g) if g.expires_at <= now => return Err(Refusal(42002, "refresh_token timeout")),
            Some(g) => g.clone(),
            None => return Err(Refusal(40030, "invalid refresh_token")),
        }
    };
    let access = new_token();
    let body = json!({
        "access_token": access,
        "expires_in": OAUTH_ACCESS_TTL.as_secs(),
        "refresh_token": token,
        "openid": grant.openid,
        "scope": grant.scope,
    });
    lock(&sb.inner.oauth_access).insert(
        access,
        OauthGrant {
            expires_at: now + OAUTH_ACCESS_TTL,
            ..grant
        },
    );
    Ok(Json(body))
}

#[derive(Deserialize)]
pub(super) struct TokenOpenidQuery {
    access_token: Option<String>,
    openid: Option<String>,
    lang: Option<String>,
}

/// The grant behind a web-authorization access token for `openid`, or WeChat's errcode.
fn grant_for(sb: &Sandbox, q: &TokenOpenidQuery) -> Result<OauthGrant, Refusal> {
    let Some(token) = q.access_token.as_deref().filter(|t| !t.is_empty()) else {
        return Err(Refusal(41001, "access_token missing"));
    };
    let Some(openid) = q.openid.as_deref().filter(|o| !o.is_empty()) else {
        return Err(Refusal(41009, "missing openid"));
    };
    let grant = lock(&sb.inner.oauth_access).get(token).cloned();
    match grant {
        None => Err(Refusal(
            40001,
            "invalid credential, access_token is invalid or not latest",
        )),
        Some(g) if g.expires_at <= sb.now() => Err(Refusal(42001, "access_token expired")),
        Some(g) if g.openid != openid => Err(Refusal(40003, "invalid openid")),
        Some(g) => Ok(g),
    }
}

/// `GET /sns/userinfo`: the profile (and unionid) for a `snsapi_userinfo` or `snsapi_login`
/// token; 48001 for a `snsapi_base` one.
pub(super) async fn userinfo(
    State(sb): State<Sandbox>,
    Query(q): Query<TokenOpenidQuery>,
) -> Result<Json<Value>, Refusal> {
    let grant = grant_for(&sb, &q)?;
    if grant.scope == "snsapi_base" {
        return Err(Refusal(48001, "api unauthorized"));
    }
    if !matches!(q.lang.as_deref(), None | Some("zh_CN" | "zh_TW" | "en")) {
        return Err(Refusal(40078, "invalid lang"));
    }
    Ok(Json(profile(&grant)))
}

/// The sandbox person's profile as `/sns/userinfo` sends it.
fn profile(grant: &OauthGrant) -> Value {
    let digest = crypto::sha256_hex(grant.user.as_bytes());
    let sex = i64::from(digest.as_bytes()[0] % 3);
    let mut nickname = grant.user.clone();
    if let Some(first) = nickname.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    let mut body = json!({
        "openid": grant.openid,
        "nickname": nickname,
        "sex": sex,
        "province": "Guangdong",
        "city": "Shenzhen",
        "country": "CN",
        "headimgurl": format!("https://thirdwx.qlogo.cn/mmopen/sandbox/{}/132", grant.user),
        "privilege": [],
    });
    if let Some(unionid) = &grant.unionid {
        body["unionid"] = unionid.clone().into();
    }
    body
}

/// `GET /sns/auth`: whether a web-authorization access token is valid for `openid`.
pub(super) async fn auth(
    State(sb): State<Sandbox>,
    Query(q): Query<TokenOpenidQuery>,
) -> Result<Json<Value>, Refusal> {
    grant_for(&sb, &q)?;
    Ok(Json(json!({ "errcode": 0, "errmsg": "ok" })))
}
