//! Validation of the whole configuration at start; errors name the bad key.

use std::collections::HashSet;

use super::{AppConfig, Config, ConfigError, JwtAlgorithm, ReturnToRule, invalid};
use crate::types::AppKind;

impl Config {
    /// Checks every key; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = self.database_url();
        if !(url.starts_with("sqlite://")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database_url",
                "must start with sqlite:// or postgres://",
            ));
        }
        if self.database_pool_size == 0 {
            return Err(invalid("database_pool_size", "must be at least 1"));
        }
        if !(self.wechat.api_base_url.starts_with("http://")
            || self.wechat.api_base_url.starts_with("https://"))
        {
            return Err(invalid(
                "wechat.api_base_url",
                "must be an http:// or https:// URL",
            ));
        }
        if !(self.wechat.open_base_url.starts_with("http://")
            || self.wechat.open_base_url.starts_with("https://"))
        {
            return Err(invalid(
                "wechat.open_base_url",
                "must be an http:// or https:// URL",
            ));
        }
        if let Some(url) = &self.public_url {
            match reqwest::Url::parse(url) {
                Ok(u)
                    if matches!(u.scheme(), "http" | "https")
                        && u.host().is_some()
                        && u.query().is_none()
                        && u.fragment().is_none() => {}
                _ => {
                    return Err(invalid(
                        "public_url",
                        format!("`{url}` is not an http(s) base URL like https://id.example.com"),
                    ));
                }
            }
        }
        for (i, entry) in self.official_account_login.return_to.iter().enumerate() {
            if let Err(message) = ReturnToRule::parse(entry) {
                return Err(invalid(
                    format!("official_account_login.return_to[{i}]"),
                    message,
                ));
            }
        }
        if !(10..=3600).contains(&self.official_account_login.state_ttl_secs) {
            return Err(invalid(
                "official_account_login.state_ttl_secs",
                "must be 10..=3600",
            ));
        }
        if !(5..=600).contains(&self.official_account_login.ticket_ttl_secs) {
            return Err(invalid(
                "official_account_login.ticket_ttl_secs",
                "must be 5..=600",
            ));
        }
        if !(1..=32).contains(&self.wechat.follower_sync_concurrency) {
            return Err(invalid(
                "wechat.follower_sync_concurrency",
                "must be 1..=32",
            ));
        }
        if !(1..=64).contains(&self.messages.bulk_concurrency) {
            return Err(invalid("messages.bulk_concurrency", "must be 1..=64"));
        }
        if !(1..=1000).contains(&self.messages.bulk_batch) {
            return Err(invalid("messages.bulk_batch", "must be 1..=1000"));
        }
        let events = &self.events;
        if !(1..=3650).contains(&events.retention_days) {
            return Err(invalid("events.retention_days", "must be 1..=3650"));
        }
        if !(1..=3650).contains(&events.audit_retention_days) {
            return Err(invalid("events.audit_retention_days", "must be 1..=3650"));
        }
        if !(100..=60_000).contains(&events.timeout_ms) {
            return Err(invalid("events.timeout_ms", "must be 100..=60000"));
        }
        if !(1..=64).contains(&events.concurrency) {
            return Err(invalid("events.concurrency", "must be 1..=64"));
        }
        if !(1..=100_000).contains(&events.per_run) || !(10..=60_000).contains(&events.poll_ms) {
            return Err(invalid(
                "events.per_run / events.poll_ms",
                "must be 1..=100000 / 10..=60000",
            ));
        }
        if self.wechat.quota_pause_secs == 0 {
            return Err(invalid("wechat.quota_pause_secs", "must be positive"));
        }
        if self.wechat.timeout_ms == 0 {
            return Err(invalid("wechat.timeout_ms", "must be positive"));
        }
        if self.jwt.access_ttl_secs < 30 {
            return Err(invalid("jwt.access_ttl_secs", "must be at least 30"));
        }
        if self.jwt.refresh_ttl_secs < self.jwt.access_ttl_secs {
            return Err(invalid(
                "jwt.refresh_ttl_secs",
                "must be at least jwt.access_ttl_secs",
            ));
        }
        if self.jwt.refresh_reuse_grace_secs > 60 {
            return Err(invalid(
                "jwt.refresh_reuse_grace_secs",
                "must be at most 60 (a stolen token is usable this long)",
            ));
        }
        if self.jwt.revocation_check_secs > 60 {
            return Err(invalid(
                "jwt.revocation_check_secs",
                "must be at most 60 (an ended login's tokens work this long)",
            ));
        }
        if !(1..=300).contains(&self.jwt.key_reload_secs) {
            return Err(invalid("jwt.key_reload_secs", "must be 1..=300"));
        }
        if self
            .jwt
            .issuer
            .as_deref()
            .is_some_and(|i| i.is_empty() || i.len() > 512)
        {
            return Err(invalid("jwt.issuer", "must be 1..=512 characters"));
        }
        if self.jwt.algorithm == JwtAlgorithm::HS256 {
            match &self.jwt.hs256_secret {
                Some(s) if s.expose().len() >= 32 => {}
                _ => {
                    return Err(invalid(
                        "jwt.hs256_secret",
                        "HS256 needs a secret of at least 32 bytes",
                    ));
                }
            }
        }
        self.limits.validate()?;
        self.graphql.validate(self.limits.request_timeout_ms)?;
        self.rate_limits.validate()?;
        self.validate_jobs()?;
        let mut seen = HashSet::new();
        for (i, app) in self.apps.iter().enumerate() {
            let id = app.app_id.as_str();
            if id.len() < 4
                || id.len() > 64
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(invalid(
                    format!("apps[{i}].app_id"),
                    format!("`{id}` is not a WeChat app id"),
                ));
            }
            if !seen.insert(id) {
                return Err(invalid(
                    format!("apps[{i}].app_id"),
                    format!("`{id}` is listed twice"),
                ));
            }
            if app.secret.expose().is_empty() {
                return Err(invalid(format!("apps[{i}].secret"), "must not be empty"));
            }
            validate_server_settings(i, app)?;
        }
        for (i, key) in self.api_keys.iter().enumerate() {
            if key.key.expose().len() < 24 {
                return Err(invalid(
                    format!("api_keys[{i}].key ({})", key.name),
                    "must be at least 24 characters",
                ));
            }
        }
        Ok(())
    }

    /// Checks `[jobs]`.
    fn validate_jobs(&self) -> Result<(), ConfigError> {
        let jobs = &self.jobs;
        if !(10..=60_000).contains(&jobs.poll_interval_ms) {
            return Err(invalid("jobs.poll_interval_ms", "must be 10..=60000"));
        }
        if !(1..=86_400).contains(&jobs.lease_secs) {
            return Err(invalid("jobs.lease_secs", "must be 1..=86400"));
        }
        if !(1..=64).contains(&jobs.max_concurrent) {
            return Err(invalid("jobs.max_concurrent", "must be 1..=64"));
        }
        if !(1..=100).contains(&jobs.max_attempts) {
            return Err(invalid("jobs.max_attempts", "must be 1..=100"));
        }
        if !(1..=3_600_000).contains(&jobs.retry_backoff_ms) {
            return Err(invalid("jobs.retry_backoff_ms", "must be 1..=3600000"));
        }
        let bad_id = |id: &String| id.trim().is_empty() || id.len() > 100;
        if jobs.instance_id.as_ref().is_some_and(bad_id) {
            return Err(invalid(
                "jobs.instance_id",
                "must be 1 to 100 characters (or unset: host name, process id and a random suffix)",
            ));
        }
        Ok(())
    }
}

/// The webhook and server-API settings of one app (see [`AppConfig`]).
fn validate_server_settings(i: usize, app: &AppConfig) -> Result<(), ConfigError> {
    if let Some(token) = &app.token {
        let t = token.expose();
        if t.len() < 3 || t.len() > 32 || !t.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid(
                format!("apps[{i}].token"),
                "must be 3-32 letters and digits (as WeChat's console requires)",
            ));
        }
    }
    if let Some(key) = &app.encoding_aes_key {
        if wechat_client::webhook::MsgCrypt::new(key.expose(), app.app_id.as_str()).is_err() {
            return Err(invalid(
                format!("apps[{i}].encoding_aes_key"),
                "must be the 43-character EncodingAESKey from WeChat's console",
            ));
        }
    }
    if app.require_encryption == Some(true) && app.encoding_aes_key.is_none() {
        return Err(invalid(
            format!("apps[{i}].require_encryption"),
            "needs apps[].encoding_aes_key",
        ));
    }
    let pushes = matches!(app.kind, AppKind::MiniProgram | AppKind::OfficialAccount);
    if !pushes && (app.token.is_some() || app.encoding_aes_key.is_some()) {
        return Err(invalid(
            format!("apps[{i}].token"),
            "websites and mobile apps have no message push (webhook): only Mini Programs and \
             Official Accounts take a token and an EncodingAESKey",
        ));
    }
    if app.follower_sync_interval_secs.is_some() && app.kind != AppKind::OfficialAccount {
        return Err(invalid(
            format!("apps[{i}].follower_sync_interval_secs"),
            "only Official Accounts have followers",
        ));
    }
    if app.follower_sync_interval_secs.is_some_and(|s| s < 60) {
        return Err(invalid(
            format!("apps[{i}].follower_sync_interval_secs"),
            "must be at least 60",
        ));
    }
    validate_js_sdk_domains(i, app)
}

/// JS-safe domains registered for an app's pages: at most [`MAX_JS_SDK_DOMAINS`].
pub const MAX_JS_SDK_DOMAINS: usize = 20;

/// `apps[].js_sdk_domains`: Official Accounts only, each a host name (see [`AppConfig`]).
fn validate_js_sdk_domains(i: usize, app: &AppConfig) -> Result<(), ConfigError> {
    if app.js_sdk_domains.is_empty() {
        return Ok(());
    }
    let key = format!("apps[{i}].js_sdk_domains");
    if app.kind != AppKind::OfficialAccount {
        return Err(invalid(
            key,
            "only Official Accounts have JS-SDK pages (wx.config)",
        ));
    }
    if app.js_sdk_domains.len() > MAX_JS_SDK_DOMAINS {
        return Err(invalid(
            key,
            format!("at most {MAX_JS_SDK_DOMAINS} domains"),
        ));
    }
    for (j, domain) in app.js_sdk_domains.iter().enumerate() {
        if !is_host_name(domain) {
            return Err(invalid(
                format!("apps[{i}].js_sdk_domains[{j}]"),
                format!(
                    "`{}` is not a host name like h5.example.com (no scheme, port or path)",
                    domain.chars().take(64).collect::<String>()
                ),
            ));
        }
    }
    Ok(())
}

/// A DNS host name (or an IPv4 address): dot-separated labels of 1-63 letters, digits and
/// inner hyphens, 253 characters at most.
fn is_host_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}
