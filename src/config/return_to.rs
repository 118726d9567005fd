//! The `returnTo` allow-list of the server-driven OA login: no open redirects.

use reqwest::Url;

/// One allow-list entry: a scheme, host and port that must match exactly, and a path that the
/// `returnTo` path must equal or lie under (`/app` allows `/app` and `/app/...`, not `/apple`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnToRule {
    scheme: String,
    host: String,
    port: Option<u16>,
    path: String,
}

impl ReturnToRule {
    /// Parses an entry such as `https://h5.example.com/app/`; the error says what is wrong.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let url = Url::parse(entry).map_err(|e| format!("`{entry}` is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("`{entry}` must be an http:// or https:// URL"));
        }
        let Some(host) = url.host_str() else {
            return Err(format!("`{entry}` has no host"));
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("`{entry}` must not carry credentials"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("`{entry}` must not have a query or fragment"));
        }
        Ok(Self {
            scheme: url.scheme().to_owned(),
            host: host.to_ascii_lowercase(),
            port: url.port_or_known_default(),
            path: url.path().trim_end_matches('/').to_owned(),
        })
    }

    /// Whether `url` (already parsed and normalized) is allowed by this entry.
    pub fn allows(&self, url: &Url) -> bool {
        let path = url.path();
        url.scheme() == self.scheme
            && url.host_str().map(str::to_ascii_lowercase).as_deref() == Some(self.host.as_str())
            && url.port_or_known_default() == self.port
            && (path == self.path
                || path
                    .strip_prefix(self.path.as_str())
                    .is_some_and(|rest| rest.starts_with('/')))
    }
}

/// Checks `return_to` against the allow-list: an absolute http(s) URL without credentials that an
/// entry allows. Returns the normalized URL, or a message safe to show.
pub fn check_return_to(rules: &[ReturnToRule], return_to: &str) -> Result<Url, String> {
    if return_to.is_empty() || return_to.len() > 2048 {
        return Err("returnTo must be 1-2048 characters".into());
    }
    let url = Url::parse(return_to).map_err(|_| "returnTo is not an absolute URL".to_owned())?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("returnTo must not carry credentials".into());
    }
    if url
        .query_pairs()
        .any(|(k, _)| matches!(k.as_ref(), "ticket" | "error" | "error_description"))
    {
        return Err("returnTo must not carry ticket, error or error_description parameters".into());
    }
    if !rules.iter().any(|rule| rule.allows(&url)) {
        return Err("returnTo is not on this service's allow-list".into());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(entries: &[&str]) -> Vec<ReturnToRule> {
        entries
            .iter()
            .map(|e| ReturnToRule::parse(e).unwrap())
            .collect()
    }

    #[test]
    fn allows_only_the_listed_origin_and_path() {
        let r = rules(&[
            "https://h5.example.com/app/",
            "http://127.0.0.1:8080/sandbox",
        ]);
        for ok in [
            "https://h5.example.com/app/",
            "https://h5.example.com/app",
            "https://h5.example.com/app/login?x=1#top",
            "https://H5.EXAMPLE.COM:443/app/a/b",
            "http://127.0.0.1:8080/sandbox/login-demo",
        ] {
            assert!(check_return_to(&r, ok).is_ok(), "{ok}");
        }
        for bad in [
            "https://h5.example.com/apple",
            "https://h5.example.com/",
            "https://h5.example.com.evil.com/app/",
            "https://evil.com/app/",
            "http://h5.example.com/app/",
            "https://h5.example.com:8443/app/",
            "https://user:pw@h5.example.com/app/",
            "https://h5.example.com/app/../admin",
            "//evil.com/app/",
            "/app/",
            "javascript:alert(1)//h5.example.com/app/",
            "http://127.0.0.1:8081/sandbox/login-demo",
            "https://h5.example.com/app/?ticket=forged",
            "https://h5.example.com/app/?x=1&error=ACCESS_DENIED",
            "",
        ] {
            assert!(check_return_to(&r, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn entries_are_checked() {
        assert!(ReturnToRule::parse("ftp://x/").is_err());
        assert!(ReturnToRule::parse("https://x/?a=1").is_err());
        assert!(ReturnToRule::parse("not a url").is_err());
        assert!(ReturnToRule::parse("https://u:p@x/").is_err());
    }
}
