//! The faked Mini Program API.

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Sandbox, apply_fault, wechat_error};
use crate::types::AppKind;

#[derive(Deserialize)]
pub(super) struct Jscode2SessionQuery {
    appid: Option<String>,
    secret: Option<String>,
    js_code: Option<String>,
    grant_type: Option<String>,
}

/// `GET /sns/jscode2session`.
pub(super) async fn jscode2session(
    State(sb): State<Sandbox>,
    Query(q): Query<Jscode2SessionQuery>,
) -> Response {
    if let Some(response) = apply_fault(&sb, "/sns/jscode2session").await {
        return response;
    }
    let (Some(appid), Some(secret)) = (q.appid, q.secret) else {
        return Json(wechat_error(41002, "appid missing")).into_response();
    };
    let Some(code) = q.js_code.filter(|c| !c.is_empty()) else {
        return Json(wechat_error(41008, "missing code")).into_response();
    };
    if q.grant_type.as_deref() != Some("authorization_code") {
        return Json(wechat_error(40002, "invalid grant_type")).into_response();
    }
    if let Err((errcode, errmsg)) = sb.check_app(&appid, &secret, AppKind::MiniProgram) {
        return Json(wechat_error(errcode, errmsg)).into_response();
    }
    match sb.redeem_code(&appid, &code) {
        Ok(issued) => {
            let mut body =
                serde_json::json!({ "openid": issued.openid, "session_key": issued.session_key });
            if let Some(unionid) = issued.unionid {
                body["unionid"] = unionid.into();
            }
            Json(body).into_response()
        }
        Err((errcode, errmsg)) => Json(wechat_error(errcode, errmsg)).into_response(),
    }
}
