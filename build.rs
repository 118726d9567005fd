// Integration tests run on PostgreSQL too when TEST_DATABASE_URL is set at build time; without
// it the PostgreSQL variants are compiled as ignored, so a run never reports them as passed.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(test_postgres)");
    println!("cargo::rerun-if-env-changed=TEST_DATABASE_URL");
    if std::env::var_os("TEST_DATABASE_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=test_postgres");
    }
}
