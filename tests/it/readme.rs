//! The README's walk-throughs, run the way a newcomer runs them: the binary in sandbox mode on
//! SQLite (as `cargo run` starts it), and the README's shell block pasted whole into bash.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN_KEY: &str = "readme-admin-key-0123456789abcdef";

/// The service binary in sandbox mode on a fresh data dir and a free loopback port; killed
/// when dropped.
struct Service {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Service {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut command = Command::new(env!("CARGO_BIN_EXE_wechat-identity"));
        for (key, _) in std::env::vars() {
            if key.starts_with("WECHAT_IDENTITY_") || key == "DATABASE_URL" {
                command.env_remove(key);
            }
        }
        let child = command
            .current_dir(dir.path())
            .env("WECHAT_IDENTITY_LISTEN", &addr)
            .env("WECHAT_IDENTITY_DATA_DIR", dir.path().join("data"))
            .env("WECHAT_IDENTITY_ADMIN_KEY", ADMIN_KEY)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let service = Service {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !service.ready() {
            assert!(Instant::now() < deadline, "the service never got ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        service
    }

    fn ready(&self) -> bool {
        Command::new("curl")
            .args(["-sf", &format!("http://{}/readyz", self.addr)])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first ```sh block after `heading_text` in the README.
fn readme_block(heading_text: &str) -> String {
    let readme = include_str!("../../README.md");
    let from = readme
        .find(heading_text)
        .unwrap_or_else(|| panic!("the README says {heading_text:?}"));
    let block = &readme[from..];
    let start = block.find("```sh\n").expect("a shell block") + "```sh\n".len();
    let end = block[start..].find("```").expect("the block ends") + start;
    block[start..end].to_owned()
}

/// "Messages to a user": the follow and the send, pasted as one block, deliver the message.
#[test]
fn the_messages_walkthrough_works_pasted_as_one_block() {
    let script = readme_block("In the sandbox, in two commands");
    assert!(script.contains("127.0.0.1:8080"), "{script}");
    let service = Service::start();
    let script = script.replace("127.0.0.1:8080", &service.addr);
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("WECHAT_IDENTITY_ADMIN_KEY", ADMIN_KEY)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("the send answers JSON ({e}): {stdout}"));
    assert!(answer.get("errors").is_none(), "{answer:#}");
    assert_eq!(
        answer["data"]["sendMessage"]["status"], "SENT",
        "{answer:#}"
    );
    assert_eq!(
        answer["data"]["sendMessage"]["channel"], "OFFICIAL_ACCOUNT_TEMPLATE",
        "{answer:#}"
    );
}
