//! Node.js scripts of `tests/federation` (composition, Apollo Gateway), run from a test: the
//! pinned packages installed once (`npm ci`) when `node_modules` is missing.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

/// `NODE` / `NPM`, or the name on the `PATH`.
fn tool(var: &str, name: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| name.to_owned())
}

/// The Node project of the federation tests.
pub fn federation_project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/federation")
}

/// `npm ci` once if the packages are missing (tests of this binary may get here at once).
fn install_packages() {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let project = federation_project();
    if project.join("node_modules/@apollo/composition").is_dir()
        && project.join("node_modules/@apollo/gateway").is_dir()
    {
        return;
    }
    let status = Command::new(tool("NPM", "npm"))
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&project)
        .status()
        .expect("npm runs");
    assert!(status.success(), "npm ci in tests/federation failed");
}

/// Runs `node <script> <args>…` in `tests/federation` (off the async runtime's threads) with
/// `input` on its stdin, and returns the last line it printed, parsed as JSON; panics with its
/// output if it failed.
pub async fn run_federation_script(
    script: &str,
    args: Vec<String>,
    input: Vec<u8>,
) -> serde_json::Value {
    let script = script.to_owned();
    let output: Output = tokio::task::spawn_blocking(move || {
        install_packages();
        let mut child = Command::new(tool("NODE", "node"))
            .arg(&script)
            .args(&args)
            .current_dir(federation_project())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node runs");
        child.stdin.take().unwrap().write_all(&input).unwrap();
        child.wait_with_output().expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the script failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let answer = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(answer).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
}
