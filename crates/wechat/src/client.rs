//! The HTTP client: timeouts, errcode handling, and logging without secrets.

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::{AppCredentials, WechatError};

/// Told of every call to WeChat ([`CallReport`]); the service counts them in its metrics.
pub type CallObserver = fn(&CallReport);

/// One call to WeChat, as the observer hears of it.
#[derive(Clone, Debug)]
pub struct CallReport {
    /// The call's name (`jscode2session`).
    pub endpoint: &'static str,
    /// `ok`, `unavailable`, `rate_limited`, `code_invalid` or `rejected`.
    pub outcome: &'static str,
    /// WeChat's errcode, when it sent one other than 0.
    pub errcode: Option<i64>,
    /// Why there is no errcode on a failure: `transport` (no answer), `http` (an HTTP error
    /// status), `malformed` (an answer we cannot read).
    pub failure: Option<&'static str>,
    /// From sending the request to having read the answer.
    pub elapsed: Duration,
}

/// What went wrong on the way to WeChat, for logs: the kind (`dns`, `refused`, `connect`,
/// `tls`, `timeout`, `body`, `request`) and the whole chain of causes, without the URL.
pub fn transport_cause(e: &reqwest::Error) -> (&'static str, String) {
    let mut chain = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = source {
        let text = error.to_string();
        if chain.last() != Some(&text) {
            chain.push(text);
        }
        source = error.source();
    }
    let all = chain.join(": ").to_ascii_lowercase();
    let kind = if e.is_timeout() || all.contains("timed out") {
        "timeout"
    } else if all.contains("dns") || all.contains("lookup") || all.contains("resolve") {
        "dns"
    } else if all.contains("refused") {
        "refused"
    } else if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
        "tls"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    };
    (kind, chain.join(": "))
}

/// A client for WeChat's API at a configurable base URL.
#[derive(Clone)]
pub struct WechatClient {
    http: reqwest::Client,
    base_url: String,
    observer: Option<CallObserver>,
}

impl WechatClient {
    /// A client for `base_url` (no trailing slash needed) with a per-request timeout.
    pub fn new(base_url: &str, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .pool_max_idle_per_host(64)
            .build()
            .expect("the TLS backend initializes");
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            observer: None,
        }
    }

    /// This client, telling `observer` of every call it makes.
    pub fn observed_by(self, observer: CallObserver) -> Self {
        Self {
            observer: Some(observer),
            ..self
        }
    }

    /// The base URL this client calls.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `GET {base}{path}?{query}`, decoded as `T` unless WeChat answers with an errcode.
    /// `endpoint` names the call in logs and metrics; the query (it holds secrets) is never logged.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, WechatError> {
        let request = self
            .http
            .get(format!("{}{}", self.base_url, path))
            .query(query);
        self.send(endpoint, request).await
    }

    /// `POST {base}{path}?{query}` with a JSON body, decoded like [`Self::get`]. Neither the
    /// query (it holds the access token) nor the body is logged.
    pub(crate) async fn post_json<T: DeserializeOwned, B: serde::Serialize + ?Sized>(
        &self,
        endpoint: &'static str,
        path: &str,
        query: &[(&str, &str)],
        body: &B,
    ) -> Result<T, WechatError> {
        let request = self
            .http
            .post(format!("{}{}", self.base_url, path))
            .query(query)
            .json(body);
        self.send(endpoint, request).await
    }

    /// Exchanges a login code, as both kinds of app do: `GET {path}` with the app's id and
    /// secret, the code as `code_param` and `grant_type=authorization_code`.
    pub(crate) async fn exchange_code<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        path: &str,
        app: &dyn AppCredentials,
        (code_param, code): (&str, &str),
    ) -> Result<T, WechatError> {
        let query = [
            ("appid", app.app_id()),
            ("secret", app.secret()),
            (code_param, code),
            ("grant_type", "authorization_code"),
        ];
        self.get(endpoint, path, &query).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, WechatError> {
        let started = std::time::Instant::now();
        let mut failure = None;
        let result = self.send_inner(endpoint, request, &mut failure).await;
        let (outcome, errcode) = match &result {
            Ok(_) => {
                failure = None;
                ("ok", None)
            }
            Err(WechatError::Unavailable { errcode, .. }) => ("unavailable", *errcode),
            Err(WechatError::RateLimited { errcode }) => ("rate_limited", Some(*errcode)),
            Err(WechatError::CodeInvalid { errcode, .. }) => ("code_invalid", Some(*errcode)),
            Err(WechatError::Rejected { errcode, .. }) => ("rejected", Some(*errcode)),
        };
        if let Some(observe) = self.observer {
            observe(&CallReport {
                endpoint,
                outcome,
                errcode,
                failure: if errcode.is_none() { failure } else { None },
                elapsed: started.elapsed(),
            });
        }
        result
    }

    /// The host this client calls (for logs: never the path or query).
    fn host(&self) -> &str {
        let rest = self
            .base_url
            .split_once("://")
            .map_or(&*self.base_url, |(_, r)| r);
        rest.split('/').next().unwrap_or_default()
    }

    async fn send_inner<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        request: reqwest::RequestBuilder,
        failure: &mut Option<&'static str>,
    ) -> Result<T, WechatError> {
        *failure = Some("transport");
        let host = self.host();
        let response = request.send().await.map_err(|e| {
            // Strip the URL: its query carries the app secret.
            let e = e.without_url();
            let (cause, chain) = transport_cause(&e);
            tracing::warn!(endpoint, host, cause, error = %chain, "WeChat request failed");
            let reason = if e.is_connect() {
                crate::error::UNREACHABLE
            } else {
                "WeChat did not answer in time"
            };
            WechatError::Unavailable {
                reason: reason.into(),
                errcode: None,
            }
        })?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| {
            let (cause, chain) = transport_cause(&e.without_url());
            tracing::warn!(endpoint, host, cause, error = %chain, "WeChat response body failed");
            WechatError::Unavailable {
                reason: "WeChat response was cut off".into(),
                errcode: None,
            }
        })?;
        if !status.is_success() {
            *failure = Some("http");
            tracing::warn!(endpoint, host, %status, "WeChat answered with an HTTP error");
            return Err(WechatError::Unavailable {
                reason: format!("WeChat answered HTTP {status}"),
                errcode: None,
            });
        }
        *failure = Some("malformed");
        decode(endpoint, &body)
    }
}

/// Decodes a WeChat JSON body: `errcode` ≠ 0 is an error, anything unparsable is "unavailable".
fn decode<T: DeserializeOwned>(endpoint: &'static str, body: &[u8]) -> Result<T, WechatError> {
    let malformed = |detail: String| {
        tracing::warn!(endpoint, detail, "malformed response from WeChat");
        WechatError::Unavailable {
            reason: "WeChat sent a malformed response".into(),
            errcode: None,
        }
    };
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| malformed(e.to_string()))?;
    if let Some(errcode) = value.get("errcode").and_then(serde_json::Value::as_i64) {
        if errcode != 0 {
            let errmsg = value
                .get("errmsg")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("");
            tracing::info!(endpoint, errcode, errmsg, "WeChat returned an error");
            return Err(WechatError::from_errcode(errcode, errmsg));
        }
    }
    serde_json::from_value(value).map_err(|e| malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Ok1 {
        openid: String,
    }

    #[test]
    fn errcodes_map_to_errors() {
        let e = decode::<Ok1>(
            "t",
            br#"{"errcode":40163,"errmsg":"code been used, rid: 1"}"#,
        )
        .unwrap_err();
        assert!(matches!(e, WechatError::CodeInvalid { errcode: 40163, .. }));
        let e = decode::<Ok1>("t", br#"{"errcode":-1,"errmsg":"system error"}"#).unwrap_err();
        assert!(matches!(
            e,
            WechatError::Unavailable {
                errcode: Some(-1),
                ..
            }
        ));
        let e = decode::<Ok1>(
            "t",
            br#"{"errcode":45011,"errmsg":"api minute-quota reach limit"}"#,
        )
        .unwrap_err();
        assert!(matches!(e, WechatError::RateLimited { errcode: 45011 }));
        let e = decode::<Ok1>("t", b"{\"openid\": ").unwrap_err();
        assert!(matches!(e, WechatError::Unavailable { errcode: None, .. }));
        assert_eq!(
            decode::<Ok1>("t", br#"{"errcode":0,"openid":"o1"}"#)
                .unwrap()
                .openid,
            "o1"
        );
        assert_eq!(
            decode::<Ok1>("t", br#"{"openid":"o2"}"#).unwrap().openid,
            "o2"
        );
    }
}
