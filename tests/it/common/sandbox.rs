//! The sandbox's own endpoints (the fake WeChat): login codes and injected faults.

use serde_json::{Value, json};

use super::{OA, TestApp};

impl TestApp {
    /// A sandbox login code; `extra` may override openid/unionid/sessionKey/scope/ttlSeconds.
    pub async fn code_with(&self, app_id: &str, user: &str, extra: Value) -> String {
        let mut body = json!({ "appId": app_id, "user": user });
        if let Value::Object(extra) = extra {
            body.as_object_mut().unwrap().extend(extra);
        }
        let res = self
            .http
            .post(format!("{}/sandbox/wechat/codes", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        let v: Value = res.json().await.unwrap();
        v["code"].as_str().unwrap().to_owned()
    }

    pub async fn code(&self, app_id: &str, user: &str) -> String {
        self.code_with(app_id, user, json!({})).await
    }

    /// An OA web-authorization code for `user` with `scope` (`snsapi_base`/`snsapi_userinfo`).
    pub async fn oa_code(&self, user: &str, scope: &str) -> String {
        self.code_with(OA, user, json!({ "scope": scope })).await
    }

    /// Injects a fault into the sandbox's next WeChat API call(s).
    pub async fn fault(&self, fault: Value) {
        let res = self
            .http
            .post(format!("{}/sandbox/wechat/faults", self.base))
            .json(&fault)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
    }
}
