//! The GraphQL client: operations, the login flows a frontend runs, `me`.

use serde_json::{Value, json};

use super::{OA, TestApp};

impl TestApp {
    /// The service's `/metrics` text (HTTP 200 asserted).
    pub async fn scrape_metrics(&self) -> String {
        let res = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.text().await.unwrap()
    }

    /// The JWKS as `/.well-known/jwks.json` serves it.
    pub async fn jwks(&self) -> Value {
        let res = self
            .http
            .get(format!("{}/.well-known/jwks.json", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    /// The key ids the JWKS publishes, in its order.
    pub async fn jwks_kids(&self) -> Vec<String> {
        self.jwks().await["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Runs a GraphQL operation, returns the whole JSON response.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut req = self
            .http
            .post(format!("{}/graphql", self.base))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.expect("graphql request");
        assert_eq!(res.status(), 200);
        res.json().await.expect("graphql JSON")
    }

    /// Like [`gql`], asserting there are no errors, returning `data`.
    pub async fn gql_ok(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = self.gql(token, query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// `loginWithMiniProgram` with a whole input object; returns the whole response.
    pub async fn login_mp_input(&self, input: Value) -> Value {
        self.gql(
            None,
            "mutation($input: LoginWithMiniProgramInput!) { loginWithMiniProgram(input: $input) {
                accessToken tokenType expiresIn refreshToken newUser
                user { id unionid nickname avatarUrl } } }",
            json!({ "input": input }),
        )
        .await
    }

    /// `loginWithMiniProgram` with `code`; returns the whole response.
    pub async fn login_mp_code(&self, app_id: &str, code: &str) -> Value {
        self.login_mp_input(json!({ "appId": app_id, "code": code }))
            .await
    }

    /// Logs `user` into Mini Program `app_id`; returns the AuthPayload.
    pub async fn login_mp(&self, app_id: &str, user: &str) -> Value {
        let code = self.code(app_id, user).await;
        let body = self.login_mp_code(app_id, &code).await;
        assert!(body.get("errors").is_none(), "login failed: {body:#}");
        body["data"]["loginWithMiniProgram"].clone()
    }

    /// `startOfficialAccountLogin` for `app_id`; returns the authorize URL and the state in it.
    pub async fn authorize_url(&self, app_id: &str, scope: &str) -> (String, String) {
        let input = json!({ "appId": app_id, "redirectUri": "https://h5.example.com/oa/landing", "scope": scope });
        let data = self
            .gql_ok(
                None,
                "mutation($i: StartOfficialAccountLoginInput!) {
                    startOfficialAccountLogin(input: $i) { authorizeUrl expiresAt } }",
                json!({ "i": input }),
            )
            .await;
        let url = data["startOfficialAccountLogin"]["authorizeUrl"]
            .as_str()
            .unwrap()
            .to_owned();
        let parsed = reqwest::Url::parse(&url).unwrap();
        let state = parsed
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .expect("a state in the authorize URL");
        (url, state)
    }

    /// `loginWithOfficialAccount`; returns the whole response.
    pub async fn login_oa_code(&self, app_id: &str, code: &str, state: &str) -> Value {
        self.gql(
            None,
            "mutation($input: LoginWithOfficialAccountInput!) { loginWithOfficialAccount(input: $input) {
                accessToken refreshToken newUser user { id unionid nickname avatarUrl } } }",
            json!({ "input": { "appId": app_id, "code": code, "state": state } }),
        )
        .await
    }

    /// Logs `user` into the sandbox Official Account the frontend-driven way (state from
    /// `startOfficialAccountLogin`, code with `scope`); returns the AuthPayload.
    pub async fn login_oa(&self, user: &str, scope: &str) -> Value {
        let gql_scope = if scope == "snsapi_userinfo" {
            "SNSAPI_USERINFO"
        } else {
            "SNSAPI_BASE"
        };
        let (_, state) = self.authorize_url(OA, gql_scope).await;
        let code = self.oa_code(user, scope).await;
        let body = self.login_oa_code(OA, &code, &state).await;
        assert!(body.get("errors").is_none(), "OA login failed: {body:#}");
        body["data"]["loginWithOfficialAccount"].clone()
    }

    /// `me` with a token; returns the whole response.
    pub async fn me(&self, token: &str) -> Value {
        self.gql(
            Some(token),
            "{ me { id unionid nickname avatarUrl phoneNumber mergedInto { id }
                miniProgramIdentities { id appId openid unionid user { id } }
                officialAccountIdentities { id appId openid unionid scope nickname avatarUrl
                    sex province city country user { id } } } }",
            json!({}),
        )
        .await
    }
}
