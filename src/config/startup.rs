//! Start-up checks: configurations that start but would not work in production. Each is a
//! loud warning, or with `strict = true` a refusal to start.

use std::net::{IpAddr, SocketAddr};

use super::Config;

impl Config {
    /// What is unfit for production in this configuration, listening on `listen` (the bound
    /// address). Sandbox mode is for trying the service: nothing is checked there.
    pub fn startup_warnings(&self, listen: SocketAddr) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.sandbox_enabled() || self.apps.is_empty() {
            return warnings;
        }
        // What the callbacks would name: the listen address (loopback for "every address").
        let own = if listen.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], listen.port()))
        } else {
            listen
        };
        match &self.public_url {
            None => warnings.push(format!(
                "public_url is not set: the Official Account and website login callbacks would \
                 name this instance's own address (http://{own}), which neither browsers nor \
                 WeChat reach; set public_url (or WECHAT_IDENTITY_PUBLIC_URL) to the URL behind \
                 your load balancer"
            )),
            Some(url) if is_loopback_url(url) && !listen.ip().is_loopback() => {
                warnings.push(format!(
                    "public_url ({url}) is a loopback address while the service listens on \
                     {listen}: browsers and WeChat elsewhere cannot follow the login callbacks; \
                     set public_url to the URL they reach"
                ));
            }
            Some(_) => {}
        }
        warnings
    }
}

/// Whether `url`'s host is `localhost` or a loopback address.
fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_are_recognised() {
        for url in [
            "http://localhost:8080",
            "http://127.0.0.1",
            "https://[::1]:8443/x",
            "http://LOCALHOST",
        ] {
            assert!(is_loopback_url(url), "{url}");
        }
        for url in [
            "https://id.example.com",
            "http://10.0.0.5:8080",
            "https://[2001:db8::1]",
        ] {
            assert!(!is_loopback_url(url), "{url}");
        }
    }
}
