//! `wechat-identity bench`: concurrent Mini Program logins against the in-process sandbox.

/// Bench options.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {}

/// Runs the benchmark.
pub async fn run(_args: BenchArgs) -> Result<(), String> {
    Err("not yet".into())
}
