// Integration tests run on PostgreSQL too when TEST_DATABASE_URL is set at build time; without
// it the PostgreSQL variants are compiled as ignored, so a run never reports them as passed.
// Likewise the browser test needs chromedriver and Chromium (Debian's chromium-driver and
// chromium, or CHROMEDRIVER / CHROMIUM naming them).
use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(test_postgres)");
    println!("cargo::rustc-check-cfg=cfg(test_browser)");
    println!("cargo::rerun-if-env-changed=TEST_DATABASE_URL");
    println!("cargo::rerun-if-env-changed=CHROMEDRIVER");
    println!("cargo::rerun-if-env-changed=CHROMIUM");
    if std::env::var_os("TEST_DATABASE_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=test_postgres");
    }
    let found = |var: &str, default: &str| {
        let path = std::env::var(var).unwrap_or_else(|_| default.to_owned());
        Path::new(&path).is_file()
    };
    if found("CHROMEDRIVER", "/usr/bin/chromedriver") && found("CHROMIUM", "/usr/bin/chromium") {
        println!("cargo::rustc-cfg=test_browser");
    }
}
