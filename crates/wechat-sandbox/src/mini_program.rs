//! The faked Mini Program API.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use wechat_client::AppKind;

use super::codes::CodeExchange;
use super::{Refusal, Sandbox};

#[derive(Deserialize)]
pub(super) struct Jscode2SessionQuery {
    #[serde(flatten)]
    exchange: CodeExchange,
    js_code: Option<String>,
}

/// `GET /sns/jscode2session`.
pub(super) async fn jscode2session(
    State(sb): State<Sandbox>,
    Query(q): Query<Jscode2SessionQuery>,
) -> Result<Json<Value>, Refusal> {
    let (_, issued) =
        sb.exchange_code(|kind| kind == AppKind::MiniProgram, q.exchange, q.js_code)?;
    let mut body = json!({ "openid": issued.openid, "session_key": issued.session_key });
    if let Some(unionid) = issued.unionid {
        body["unionid"] = unionid.into();
    }
    Ok(Json(body))
}
