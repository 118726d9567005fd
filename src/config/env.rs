//! `WECHAT_IDENTITY_*` and `DATABASE_URL` overrides.

use std::path::PathBuf;

use super::{ApiKeyConfig, ApiKeyRole, Config, ConfigError, JwtAlgorithm, Secret, invalid};

impl Config {
    /// Applies `WECHAT_IDENTITY_*` and `DATABASE_URL` overrides read through `var`.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = var("WECHAT_IDENTITY_LISTEN") {
            self.listen = v.parse().map_err(|_| {
                invalid(
                    "WECHAT_IDENTITY_LISTEN",
                    format!("`{v}` is not an address like 127.0.0.1:8080"),
                )
            })?;
        }
        if let Some(v) = var("WECHAT_IDENTITY_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = var("DATABASE_URL").or_else(|| var("WECHAT_IDENTITY_DATABASE_URL")) {
            self.database_url = Some(Secret::new(v));
        }
        if let Some(v) = var("WECHAT_IDENTITY_SANDBOX") {
            self.sandbox = Some(parse_bool("WECHAT_IDENTITY_SANDBOX", &v)?);
        }
        if let Some(v) = var("WECHAT_IDENTITY_WECHAT_API_BASE_URL") {
            self.wechat.api_base_url = v;
        }
        if let Some(v) = var("WECHAT_IDENTITY_WECHAT_OPEN_BASE_URL") {
            self.wechat.open_base_url = v;
        }
        if let Some(v) = var("WECHAT_IDENTITY_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = var("WECHAT_IDENTITY_RETURN_TO") {
            self.official_account_login.return_to = list(&v);
        }
        if let Some(v) = var("WECHAT_IDENTITY_SESSION_KEY_ENCRYPTION_KEY") {
            self.wechat.session_key_encryption_key = Some(Secret::new(v));
        }
        if let Some(v) = var("WECHAT_IDENTITY_JWT_ALGORITHM") {
            self.jwt.algorithm = match v.as_str() {
                "EdDSA" => JwtAlgorithm::EdDSA,
                "HS256" => JwtAlgorithm::HS256,
                _ => {
                    return Err(invalid(
                        "WECHAT_IDENTITY_JWT_ALGORITHM",
                        "must be EdDSA or HS256",
                    ));
                }
            };
        }
        if let Some(v) = var("WECHAT_IDENTITY_JWT_ISSUER") {
            self.jwt.issuer = Some(v);
        }
        if let Some(v) = var("WECHAT_IDENTITY_JWT_HS256_SECRET") {
            self.jwt.hs256_secret = Some(Secret::new(v));
        }
        if let Some(v) = var("WECHAT_IDENTITY_JWT_PRIVATE_KEY_FILE") {
            self.jwt.private_key_file = Some(PathBuf::from(v));
        }
        if let Some(v) = var("WECHAT_IDENTITY_TRUSTED_PROXIES") {
            self.limits.trusted_proxies = list(&v);
        }
        if let Some(v) = var("WECHAT_IDENTITY_RATE_LIMITS") {
            self.rate_limits.enabled = parse_bool("WECHAT_IDENTITY_RATE_LIMITS", &v)?;
        }
        if let Some(v) = var("WECHAT_IDENTITY_RATE_LIMITS_REDIS_URL") {
            self.rate_limits.redis_url = Some(Secret::new(v));
        }
        if let Some(v) = var("WECHAT_IDENTITY_STRICT") {
            self.strict = parse_bool("WECHAT_IDENTITY_STRICT", &v)?;
        }
        if let Some(v) = var("WECHAT_IDENTITY_LOG_FORMAT") {
            self.log.format = Some(match v.as_str() {
                "json" => super::LogFormat::Json,
                "text" => super::LogFormat::Text,
                _ => {
                    return Err(invalid(
                        "WECHAT_IDENTITY_LOG_FORMAT",
                        format!("`{v}` is not `json` or `text`"),
                    ));
                }
            });
        }
        if let Some(v) = var("WECHAT_IDENTITY_ADMIN_KEY") {
            self.api_keys.push(ApiKeyConfig {
                name: "WECHAT_IDENTITY_ADMIN_KEY".into(),
                role: ApiKeyRole::Admin,
                key: Secret::new(v),
            });
        }
        Ok(())
    }
}

/// A comma-separated list, entries trimmed, empty ones dropped.
fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_bool(key: &str, v: &str) -> Result<bool, ConfigError> {
    match v {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(key, format!("`{v}` is not a boolean"))),
    }
}
