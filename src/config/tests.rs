//! Configuration tests.
use super::*;
use crate::types::{AppId, AppKind};

#[test]
fn secrets_never_print() {
    let mut c = Config::default();
    c.apps.push(AppConfig {
        kind: AppKind::MiniProgram,
        app_id: AppId::new("wx1234567890"),
        secret: Secret::new("topsecretvalue"),
        name: "A".into(),
        open_platform: true,
        token: Some(Secret::new("webhooktokenvalue")),
        encoding_aes_key: None,
        require_encryption: None,
        access_token_api: AccessTokenApi::Stable,
        follower_sync_interval_secs: None,
        message_rate_per_sec: None,
        js_sdk_domains: Vec::new(),
    });
    let printed = format!("{c:?}");
    assert!(!printed.contains("topsecretvalue"), "{printed}");
    assert!(printed.contains("<redacted>"));
}

#[test]
fn bad_keys_are_named() {
    let err = Config::from_toml("listen = 5").unwrap_err();
    assert!(err.contains("listen"), "{err}");
    let mut c = Config::default();
    c.apply_env(|k| (k == "WECHAT_IDENTITY_JWT_ALGORITHM").then(|| "RS999".to_string()))
        .map(|_| ())
        .unwrap_err();
    c.jwt.algorithm = JwtAlgorithm::HS256;
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("jwt.hs256_secret"), "{err}");
}

#[test]
fn the_example_config_parses_and_validates() {
    let text = include_str!("../../config.example.toml");
    let mut c = Config::from_toml(text).unwrap();
    c.finish().unwrap();
    assert!(!c.sandbox_enabled(), "real apps configured: sandbox off");
    assert_eq!(c.apps.len(), 2);
    assert_eq!(c.api_keys[0].role, ApiKeyRole::Admin);
    let mut dup = Config::from_toml(text).unwrap();
    dup.apps.push(dup.apps[0].clone());
    let err = dup.finish().unwrap_err().to_string();
    assert!(err.contains("apps[2].app_id"), "{err}");
}

#[test]
fn js_sdk_domains_are_host_names_of_official_accounts() {
    let text = include_str!("../../config.example.toml");
    let example = Config::from_toml(text).unwrap();
    assert_eq!(example.apps[1].js_sdk_domains, ["h5.example.com"]);
    let check = |i: usize, domains: &[&str]| {
        let mut c = Config::from_toml(text).unwrap();
        c.apps[i].js_sdk_domains = domains.iter().map(|d| (*d).to_owned()).collect();
        c.finish().map_err(|e| e.to_string())
    };
    check(1, &["h5.example.com", "M.Example.com", "127.0.0.1"]).unwrap();
    let err = check(0, &["h5.example.com"]).unwrap_err();
    assert!(err.contains("apps[0].js_sdk_domains"), "{err}");
    assert!(err.contains("only Official Accounts"), "{err}");
    for bad in [
        "https://h5.example.com",
        "h5.example.com:8443",
        "h5.example.com/shop",
        "*.example.com",
        "",
        "h5..example.com",
        "-h5.example.com",
    ] {
        let err = check(1, &["ok.example.com", bad]).unwrap_err();
        assert!(err.contains("apps[1].js_sdk_domains[1]"), "{bad}: {err}");
    }
    let many: Vec<String> = (0..21).map(|i| format!("h{i}.example.com")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert!(check(1, &many).unwrap_err().contains("at most 20"));
}

#[test]
fn no_apps_means_sandbox_with_demo_apps() {
    let mut c = Config::default();
    c.finish().unwrap();
    assert!(c.sandbox_enabled());
    assert_eq!(c.apps.len(), 7);
    assert_eq!(c.apps.iter().filter(|a| !a.open_platform).count(), 2);
}

#[test]
fn official_account_login_keys_are_checked_and_named() {
    let mut c = Config::default();
    c.official_account_login.return_to = vec!["https://h5.example.com/".into(), "h5".into()];
    let err = c.finish().unwrap_err().to_string();
    assert!(err.contains("official_account_login.return_to[1]"), "{err}");
    let mut c = Config {
        public_url: Some("id.example.com".into()),
        sandbox: Some(true),
        ..Config::default()
    };
    let err = c.finish().unwrap_err().to_string();
    assert!(err.contains("public_url"), "{err}");
    let mut c = Config {
        sandbox: Some(true),
        ..Config::default()
    };
    c.apply_env(|k| match k {
        "WECHAT_IDENTITY_RETURN_TO" => Some("https://a.example/, https://b.example/x".into()),
        "WECHAT_IDENTITY_PUBLIC_URL" => Some("https://id.example.com/".into()),
        _ => None,
    })
    .unwrap();
    c.finish().unwrap();
    assert_eq!(c.return_to_rules().len(), 2);
    assert_eq!(c.public_url(), "https://id.example.com");
}

#[test]
fn the_example_config_spells_out_the_default_limits() {
    let c = Config::from_toml(include_str!("../../config.example.toml")).unwrap();
    let d = Config::default();
    assert_eq!(c.rate_limits.login, d.rate_limits.login);
    assert_eq!(c.rate_limits.authorize, d.rate_limits.authorize);
    assert_eq!(c.rate_limits.ticket, d.rate_limits.ticket);
    assert_eq!(c.rate_limits.refresh, d.rate_limits.refresh);
    assert_eq!(c.rate_limits.js_sdk, d.rate_limits.js_sdk);
    assert_eq!(c.limits.max_body_bytes, d.limits.max_body_bytes);
    assert_eq!(c.limits.logins_per_request, d.limits.logins_per_request);
    assert_eq!(c.jobs.poll_interval_ms, d.jobs.poll_interval_ms);
    assert_eq!(c.jobs.lease_secs, d.jobs.lease_secs);
    assert_eq!(c.jobs.max_concurrent, d.jobs.max_concurrent);
    assert_eq!(c.jobs.max_attempts, d.jobs.max_attempts);
    assert_eq!(c.jobs.retry_backoff_ms, d.jobs.retry_backoff_ms);
    let (g, dg) = (&c.graphql, &d.graphql);
    assert_eq!(
        (g.introspection, g.graphiql, g.max_depth, g.max_complexity),
        (
            dg.introspection,
            dg.graphiql,
            dg.max_depth,
            dg.max_complexity
        )
    );
    assert_eq!(g.execution_timeout_ms, dg.execution_timeout_ms);
    assert_eq!(
        (g.persisted_queries, g.persisted_queries_cache_bytes),
        (dg.persisted_queries, dg.persisted_queries_cache_bytes)
    );
}

#[test]
fn bad_graphql_settings_are_named() {
    let sandboxed = || Config {
        sandbox: Some(true),
        ..Config::default()
    };
    let mut c = sandboxed();
    c.graphql.execution_timeout_ms = c.limits.request_timeout_ms + 1;
    let err = c.finish().unwrap_err().to_string();
    assert!(err.contains("graphql.execution_timeout_ms"), "{err}");
    let mut c = sandboxed();
    c.graphql.max_depth = 0;
    let err = c.finish().unwrap_err().to_string();
    assert!(err.contains("graphql.max_depth"), "{err}");
    let err = Config::from_toml("[graphql]\nintrospections = false").unwrap_err();
    assert!(err.contains("introspections"), "{err}");
}

#[test]
fn bad_job_settings_are_named() {
    type Spoil = fn(&mut Config);
    let bad: [(&str, Spoil); 4] = [
        ("jobs.lease_secs", |c| c.jobs.lease_secs = 0),
        ("jobs.max_concurrent", |c| c.jobs.max_concurrent = 0),
        ("jobs.poll_interval_ms", |c| c.jobs.poll_interval_ms = 0),
        ("jobs.instance_id", |c| {
            c.jobs.instance_id = Some(" ".into())
        }),
    ];
    for (key, spoil) in bad {
        let mut c = Config::default();
        spoil(&mut c);
        let err = c.finish().unwrap_err().to_string();
        assert!(err.contains(key), "{err}");
    }
    let c = Config::from_toml("[jobs]\nmax_concurrent = 4\ninstance_id = \"id-1\"").unwrap();
    assert_eq!(c.jobs.max_concurrent, 4);
    assert_eq!(c.jobs.lease_secs, 60, "unset keys keep their defaults");
    assert!(
        Config::from_toml("[jobs]\nlease = 5").is_err(),
        "unknown keys are refused"
    );
}

#[test]
fn no_apps_and_no_sandbox_refuses_to_start_outside_a_local_sqlite() {
    let mut pg = Config {
        database_url: Some(Secret::new("postgres://db.internal/identity")),
        ..Config::default()
    };
    let err = pg.finish().unwrap_err().to_string();
    assert!(
        err.contains("`apps`") && err.contains("sandbox = true"),
        "{err}"
    );
    let mut public = Config {
        listen: "0.0.0.0:8080".parse().unwrap(),
        ..Config::default()
    };
    assert!(public.finish().is_err());
    let mut asked = Config {
        listen: "0.0.0.0:8080".parse().unwrap(),
        sandbox: Some(true),
        ..Config::default()
    };
    asked.finish().unwrap();
    assert_eq!(asked.sandbox_mode, Some(SandboxMode::Asked));
    let mut local = Config::default();
    local.finish().unwrap();
    assert_eq!(local.sandbox_mode, Some(SandboxMode::Default));
    // Behind a proxy on the same host it is a deployment, not a local start.
    let mut proxied = Config {
        public_url: Some("https://id.example.com".into()),
        ..Config::default()
    };
    assert!(proxied.finish().is_err());
    let mut proxied = Config::default();
    proxied.limits.trusted_proxies = vec!["127.0.0.1".into()];
    assert!(proxied.finish().is_err());
}

#[test]
fn bad_limits_are_named() {
    let mut c = Config {
        sandbox: Some(true),
        ..Config::default()
    };
    c.limits.trusted_proxies = vec!["10.0.0.0/8".into(), "proxy.internal".into()];
    let err = c.finish().unwrap_err().to_string();
    assert!(err.contains("limits.trusted_proxies[1]"), "{err}");
    let mut c = Config::default();
    c.rate_limits.login.per_ip.burst = 0;
    let err = c.finish().unwrap_err().to_string();
    assert!(err.contains("rate_limits.login.per_ip.burst"), "{err}");
}

#[test]
fn federation_expose_is_read_and_an_unknown_field_stops_the_start() {
    let c = Config::from_toml("[federation]\nexpose = [\"users\"]\n").unwrap();
    assert_eq!(c.federation.expose, ["users"]);
    let bad = crate::graphql::published(&["usrs".to_owned()]).unwrap_err();
    assert!(bad.contains("`usrs` is not a root field"), "{bad}");
}
