//! Faked Official Account followers: `GET /cgi-bin/user/get`, `GET /cgi-bin/user/info`,
//! `POST /cgi-bin/user/info/batchget`, and the control endpoints that make people follow
//! (`POST /follow`, `/unfollow`, which also push the event to the service's webhook) or add
//! synthetic followers in bulk (`POST /followers`, no events).
//!
//! A follower is a sandbox person: the openid and unionid are derived as for logins, so a
//! follower who logged into a bound Mini Program has the same unionid there. Followers are
//! listed in the order they followed; `next_openid` is the last openid of the previous page.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use wechat_client::AppKind;
use wechat_client::server_api::{BATCHGET_MAX, FOLLOWERS_PER_PAGE};

use super::{Refusal, Sandbox, check_user, derive_id, lock};

/// Followers one Official Account may have in the sandbox (its memory stays bounded).
pub const MAX_FOLLOWERS: usize = 1_000_000;

/// One follower.
#[derive(Clone, Debug)]
pub(super) struct Follower {
    pub(super) openid: String,
    pub(super) unionid: Option<String>,
    pub(super) subscribe_time: i64,
}

#[derive(Default)]
struct FollowerList {
    /// `user/get`'s page size (WeChat: 10,000; tests make it small to get several pages).
    page_size: Option<usize>,
    next_seq: u64,
    by_seq: BTreeMap<u64, Follower>,
    by_openid: HashMap<String, u64>,
}

/// Calls to the follower API per app (`GET /stats`).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FollowerCalls {
    /// `user/get` pages served.
    pub user_get: u64,
    /// `user/info` answers.
    pub user_info: u64,
    /// `user/info/batchget` answers.
    pub batchget: u64,
}

/// The follower part of the sandbox's state.
#[derive(Default)]
pub(super) struct Followers {
    lists: std::sync::Mutex<HashMap<String, FollowerList>>,
    calls: std::sync::Mutex<HashMap<String, FollowerCalls>>,
}

impl Sandbox {
    /// `user` follows `app_id` now (again, if they had); the follower as listed.
    pub(super) fn add_follower(&self, app_id: &str, user: &str) -> Result<Follower, String> {
        let follower = self.follower_of(app_id, user)?;
        let mut lists = lock(&self.inner.followers.lists);
        let list = lists.entry(app_id.into()).or_default();
        if let Some(seq) = list.by_openid.remove(&follower.openid) {
            list.by_seq.remove(&seq);
        }
        if list.by_seq.len() >= MAX_FOLLOWERS {
            return Err(format!(
                "an app has at most {MAX_FOLLOWERS} sandbox followers"
            ));
        }
        let seq = list.next_seq;
        list.next_seq += 1;
        list.by_openid.insert(follower.openid.clone(), seq);
        list.by_seq.insert(seq, follower.clone());
        Ok(follower)
    }

    /// `count` people named `{prefix}{from}`… follow `app_id` (no events pushed).
    pub fn add_followers(
        &self,
        app_id: &str,
        prefix: &str,
        from: u64,
        count: u64,
    ) -> Result<(), String> {
        for i in from..from.saturating_add(count) {
            self.add_follower(app_id, &format!("{prefix}{i}"))?;
        }
        Ok(())
    }

    /// `user` stops following `app_id`; the follower they were, if they were one.
    pub(super) fn remove_follower(&self, app_id: &str, user: &str) -> Result<Follower, String> {
        let follower = self.follower_of(app_id, user)?;
        let mut lists = lock(&self.inner.followers.lists);
        let list = lists.entry(app_id.into()).or_default();
        if let Some(seq) = list.by_openid.remove(&follower.openid) {
            list.by_seq.remove(&seq);
        }
        Ok(follower)
    }

    /// Whether `openid` follows `app_id` now.
    pub(super) fn is_follower(&self, app_id: &str, openid: &str) -> bool {
        lock(&self.inner.followers.lists)
            .get(app_id)
            .is_some_and(|l| l.by_openid.contains_key(openid))
    }

    /// The follower `user` would be in `app_id`, following now.
    fn follower_of(&self, app_id: &str, user: &str) -> Result<Follower, String> {
        let app = self
            .inner
            .apps
            .get(app_id)
            .filter(|a| a.kind == AppKind::OfficialAccount)
            .ok_or_else(|| format!("`{app_id}` is not a sandbox Official Account"))?;
        check_user(user)?;
        Ok(Follower {
            openid: derive_id("openid", app_id, user),
            unionid: app
                .open_platform
                .as_deref()
                .map(|platform| derive_id("unionid", platform, user)),
            subscribe_time: self.unix_now(),
        })
    }

    /// What the follower API was asked for `app_id`.
    pub fn follower_calls(&self, app_id: &str) -> FollowerCalls {
        lock(&self.inner.followers.calls)
            .get(app_id)
            .copied()
            .unwrap_or_default()
    }

    fn count_call(&self, app_id: &str, f: impl FnOnce(&mut FollowerCalls)) {
        f(lock(&self.inner.followers.calls)
            .entry(app_id.into())
            .or_default());
    }

    fn info(&self, app_id: &str, openid: &str) -> serde_json::Value {
        let lists = lock(&self.inner.followers.lists);
        let follower = lists
            .get(app_id)
            .and_then(|l| l.by_openid.get(openid).and_then(|s| l.by_seq.get(s)));
        match follower {
            Some(f) => {
                let mut v = serde_json::json!({
                    "subscribe": 1,
                    "openid": f.openid,
                    "nickname": "",
                    "language": "zh_CN",
                    "subscribe_time": f.subscribe_time,
                    "subscribe_scene": "ADD_SCENE_SEARCH",
                });
                if let Some(unionid) = &f.unionid {
                    v["unionid"] = unionid.clone().into();
                }
                v
            }
            None => serde_json::json!({ "subscribe": 0, "openid": openid }),
        }
    }
}

/// Checks the access token and that its app is an Official Account.
fn official_account(sb: &Sandbox, token: Option<&str>) -> Result<String, Refusal> {
    let token = token.ok_or(Refusal(41001, "access_token missing"))?;
    let app_id = sb
        .check_access_token(token)
        .map_err(|(errcode, errmsg)| Refusal(errcode, errmsg))?;
    match sb.inner.apps.get(&app_id) {
        Some(app) if app.kind == AppKind::OfficialAccount => Ok(app_id),
        _ => Err(Refusal(48001, "api unauthorized")),
    }
}

#[derive(Deserialize)]
pub(super) struct UserGetQuery {
    access_token: Option<String>,
    #[serde(default)]
    next_openid: String,
}

/// `GET /cgi-bin/user/get`: up to 10,000 followers after `next_openid`.
pub(super) async fn user_get(
    State(sb): State<Sandbox>,
    Query(q): Query<UserGetQuery>,
) -> Result<Json<Value>, Refusal> {
    let app_id = official_account(&sb, q.access_token.as_deref())?;
    sb.count_call(&app_id, |c| c.user_get += 1);
    let lists = lock(&sb.inner.followers.lists);
    let Some(list) = lists.get(&app_id) else {
        return Ok(Json(
            serde_json::json!({ "total": 0, "count": 0, "next_openid": "" }),
        ));
    };
    let from = if q.next_openid.is_empty() {
        0
    } else {
        match list.by_openid.get(&q.next_openid) {
            Some(seq) => seq + 1,
            None => return Err(Refusal(40003, "invalid openid")),
        }
    };
    let page: Vec<&str> = list
        .by_seq
        .range(from..)
        .take(list.page_size.unwrap_or(FOLLOWERS_PER_PAGE))
        .map(|(_, f)| f.openid.as_str())
        .collect();
    let next = page.last().copied().unwrap_or_default();
    let mut body = serde_json::json!({
        "total": list.by_seq.len(),
        "count": page.len(),
        "next_openid": next,
    });
    if !page.is_empty() {
        body["data"] = serde_json::json!({ "openid": page });
    }
    Ok(Json(body))
}

#[derive(Deserialize)]
pub(super) struct UserInfoQuery {
    access_token: Option<String>,
    openid: Option<String>,
}

/// `GET /cgi-bin/user/info`: one person (the unionid only for followers).
pub(super) async fn user_info(
    State(sb): State<Sandbox>,
    Query(q): Query<UserInfoQuery>,
) -> Result<Json<Value>, Refusal> {
    let app_id = official_account(&sb, q.access_token.as_deref())?;
    let Some(openid) = q.openid.filter(|o| !o.is_empty() && o.len() <= 64) else {
        return Err(Refusal(40003, "invalid openid"));
    };
    sb.count_call(&app_id, |c| c.user_info += 1);
    Ok(Json(sb.info(&app_id, &openid)))
}

#[derive(Deserialize)]
pub(super) struct BatchQuery {
    access_token: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct BatchBody {
    #[serde(default)]
    user_list: Vec<BatchEntry>,
}

#[derive(Deserialize)]
pub(super) struct BatchEntry {
    openid: String,
}

/// `POST /cgi-bin/user/info/batchget`: up to 100 people.
pub(super) async fn batchget(
    State(sb): State<Sandbox>,
    Query(q): Query<BatchQuery>,
    Json(body): Json<BatchBody>,
) -> Result<Json<Value>, Refusal> {
    let app_id = official_account(&sb, q.access_token.as_deref())?;
    if body.user_list.is_empty() || body.user_list.len() > BATCHGET_MAX {
        return Err(Refusal(45033, "user_list size out of range (1-100)"));
    }
    sb.count_call(&app_id, |c| c.batchget += 1);
    let list: Vec<_> = body
        .user_list
        .iter()
        .map(|e| sb.info(&app_id, &e.openid))
        .collect();
    Ok(Json(serde_json::json!({ "user_info_list": list })))
}

/// `POST /followers`: `count` synthetic followers named `{prefix}{from}` … (people like any
/// other: one who logs into a bound Mini Program gets the same unionid). No events are pushed.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddFollowers {
    /// The Official Account.
    pub app_id: String,
    /// Name prefix of the people (default `follower-`).
    #[serde(default)]
    pub prefix: Option<String>,
    /// First number.
    #[serde(default)]
    pub from: u64,
    /// How many (at most 1,000,000 in all per app).
    #[serde(default)]
    pub count: u64,
    /// `user/get`'s page size for this app from now on (1..=10,000; WeChat's is 10,000).
    #[serde(default)]
    pub page_size: Option<usize>,
}

pub(super) async fn add_followers(
    State(sb): State<Sandbox>,
    Json(req): Json<AddFollowers>,
) -> Response {
    let prefix = req.prefix.as_deref().unwrap_or("follower-");
    if prefix.len() > 32 || req.count > MAX_FOLLOWERS as u64 {
        return super::control::bad_request(format!(
            "count must be at most {MAX_FOLLOWERS} and prefix at most 32 characters"
        ));
    }
    if let Some(size) = req.page_size {
        if !(1..=FOLLOWERS_PER_PAGE).contains(&size) {
            return super::control::bad_request(format!(
                "pageSize must be 1..={FOLLOWERS_PER_PAGE}"
            ));
        }
        let mut lists = lock(&sb.inner.followers.lists);
        lists.entry(req.app_id.clone()).or_default().page_size = Some(size);
    }
    if let Err(message) = sb.add_followers(&req.app_id, prefix, req.from, req.count) {
        return super::control::bad_request(message);
    }
    let total = lock(&sb.inner.followers.lists)
        .get(&req.app_id)
        .map_or(0, |l| l.by_seq.len());
    Json(serde_json::json!({ "total": total })).into_response()
}
