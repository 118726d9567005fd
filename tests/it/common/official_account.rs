//! The Official Account server side from a test's seat: the sandbox's follower and token
//! controls, follower syncs through GraphQL, and webhook pushes.

use std::time::Duration;

use serde_json::{Value, json};
use wechat_identity::config::SANDBOX_WEBHOOK_TOKEN;
use wechat_identity::wechat::webhook;

use super::{ADMIN_KEY, OA, TestApp, eventually};

/// The fields of a `FollowerSync` tests read.
pub const SYNC_FIELDS: &str = "id appId status requestedBy createdAt startedAt finishedAt total
    pages followersSeen usersCreated usersMerged unsubscribed errors lastError";

impl TestApp {
    /// POSTs JSON to a sandbox control endpoint; returns the status and the JSON answer (Null
    /// for an empty one).
    pub async fn sandbox_post(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}/sandbox/wechat{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `count` synthetic followers of the OA named `{prefix}{from}`… (no events pushed).
    pub async fn add_followers(&self, prefix: &str, from: u64, count: u64) {
        let (status, body) = self
            .sandbox_post(
                "/followers",
                json!({ "appId": OA, "prefix": prefix, "from": from, "count": count }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// The sandbox's counters for an app (`tokens`, `followerCalls`).
    pub async fn sandbox_stats(&self, app_id: &str) -> Value {
        self.http
            .get(format!("{}/sandbox/wechat/stats", self.base))
            .query(&[("appId", app_id)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Starts a follower sync of the OA; returns it.
    pub async fn start_sync(&self) -> Value {
        let q = format!(
            "mutation($a: String!) {{ syncOfficialAccountFollowers(appId: $a) {{ {SYNC_FIELDS} }} }}"
        );
        let data = self.gql_ok(Some(ADMIN_KEY), &q, json!({ "a": OA })).await;
        data["syncOfficialAccountFollowers"].clone()
    }

    /// The sync `id` as it is now.
    pub async fn sync(&self, id: &str) -> Value {
        let q = format!("query($id: ID!) {{ followerSync(id: $id) {{ {SYNC_FIELDS} }} }}");
        let data = self.gql_ok(Some(ADMIN_KEY), &q, json!({ "id": id })).await;
        data["followerSync"].clone()
    }

    /// Runs the due jobs ([`TestApp::run_jobs`]); then sync `id` must have `status`. Returns it.
    pub async fn synced(&self, id: &str, status: &str) -> Value {
        self.run_jobs().await;
        let sync = self.sync(id).await;
        assert_eq!(sync["status"], status, "{sync:#}");
        sync
    }

    /// A service running its own jobs: waits (at most `secs`) until sync `id` has `status`;
    /// returns it.
    pub async fn wait_sync(&self, id: &str, status: &str, secs: u64) -> Value {
        let what = format!("sync {id} is {status}");
        eventually(Duration::from_secs(secs), &what, || async {
            let sync = self.sync(id).await;
            if sync["status"] == status {
                Ok(sync)
            } else {
                Err(sync)
            }
        })
        .await
    }

    /// The user with `unionid` (null if none), with their identities.
    pub async fn user_by_unionid(&self, unionid: &str) -> Value {
        let q = "query($u: String!) { userByUnionid(unionid: $u) { id unionid
            miniProgramIdentities { appId openid }
            officialAccountIdentities { appId openid subscribed } } }";
        let data = self
            .gql_ok(Some(ADMIN_KEY), q, json!({ "u": unionid }))
            .await;
        data["userByUnionid"].clone()
    }

    /// A service running its own jobs: waits (at most 10 s) until `check` holds of the user
    /// with `unionid`.
    pub async fn wait_user(&self, unionid: &str, check: impl Fn(&Value) -> bool) -> Value {
        eventually(Duration::from_secs(10), "the user got there", || async {
            let user = self.user_by_unionid(unionid).await;
            if check(&user) { Ok(user) } else { Err(user) }
        })
        .await
    }

    /// POSTs `body` to the app's webhook with this query; returns status and body.
    pub async fn webhook_post(
        &self,
        app_id: &str,
        query: &[(&str, String)],
        body: String,
    ) -> (u16, String) {
        let res = self
            .http
            .post(format!("{}/wechat/{app_id}/events", self.base))
            .query(query)
            .header("content-type", "text/xml")
            .body(body)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }
}

/// A plaintext-mode query signed with the sandbox apps' webhook token (`age` seconds old).
pub fn signed_query(age: i64) -> Vec<(&'static str, String)> {
    let ts = (chrono::Utc::now().timestamp() - age).to_string();
    let nonce = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let sig = webhook::signature(SANDBOX_WEBHOOK_TOKEN, &ts, &nonce);
    vec![("signature", sig), ("timestamp", ts), ("nonce", nonce)]
}

/// A WeChat event's XML.
pub fn event_xml(openid: &str, event: &str, extra: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[gh_x]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>{extra}</xml>",
        chrono::Utc::now().timestamp()
    )
}
