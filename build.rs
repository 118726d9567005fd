// Integration tests run on PostgreSQL too when TEST_DATABASE_URL is set at build time; without
// it the PostgreSQL variants are compiled as ignored, so a run never reports them as passed.
// Likewise the browser test needs chromedriver and Chromium (Debian's chromium-driver and
// chromium, or CHROMEDRIVER / CHROMIUM naming them), and the federation gateway test Node.js and
// npm (NODE / NPM naming them, or on the PATH).
use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(test_postgres)");
    println!("cargo::rustc-check-cfg=cfg(test_browser)");
    println!("cargo::rustc-check-cfg=cfg(test_node)");
    println!("cargo::rerun-if-env-changed=TEST_DATABASE_URL");
    println!("cargo::rerun-if-env-changed=CHROMEDRIVER");
    println!("cargo::rerun-if-env-changed=CHROMIUM");
    println!("cargo::rerun-if-env-changed=NODE");
    println!("cargo::rerun-if-env-changed=NPM");
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
    let on_path = |var: &str, name: &str| match std::env::var_os(var) {
        Some(path) => Path::new(&path).is_file(),
        None => std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file())),
    };
    if on_path("NODE", "node") && on_path("NPM", "npm") {
        println!("cargo::rustc-cfg=test_node");
    }
}
