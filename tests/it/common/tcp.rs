//! Raw TCP clients for the server-loop tests: connections from other loopback addresses
//! (127.0.0.2 … are distinct client addresses on Linux), half-sent requests, answers read to
//! the end or not at all, and the service binary run on its own so its RSS can be read.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::eventually;

/// A connection to `base` (`http://host:port`) from the loopback address `from`; `recv_buffer`
/// shrinks its receive buffer (a client that reads little).
pub async fn connect_from(base: &str, from: &str, recv_buffer: Option<u32>) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    socket
        .bind(format!("{from}:0").parse().unwrap())
        .unwrap_or_else(|e| panic!("binding {from}: {e}"));
    let addr = base.trim_start_matches("http://").parse().unwrap();
    socket.connect(addr).await.unwrap()
}

/// Writes `text`, ignoring a connection the server already closed.
pub async fn send(stream: &mut TcpStream, text: &[u8]) {
    let _ = stream.write_all(text).await;
}

/// Reads until the server closes the connection (or resets it); returns what it sent.
pub async fn read_to_close(stream: &mut TcpStream, within: Duration) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => panic!(
                "the server did not close the connection within {within:?}; got {:?}",
                String::from_utf8_lossy(&out)
            ),
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads an answer's head (status line and headers) and no more than that of its body.
pub async fn read_head(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while !out.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut byte))
            .await
            .expect("an answer's head in time")
            .unwrap();
        assert!(
            n > 0,
            "closed before the head: {:?}",
            String::from_utf8_lossy(&out)
        );
        out.push(byte[0]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the server still holds `stream` open (it has not closed or reset it).
pub fn is_open(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 1];
    matches!(stream.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// The service binary with a clean environment (no WECHAT_IDENTITY_* or DATABASE_URL from
/// outside) and no stdin.
pub fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wechat-identity"));
    for (key, _) in std::env::vars() {
        if key.starts_with("WECHAT_IDENTITY_") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    command.stdin(Stdio::null());
    command
}

/// The service binary, started on its own (sandbox mode, a fresh SQLite file unless told
/// otherwise) so that its RSS and its log are its own; killed on drop.
pub struct Service {
    child: Child,
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// Where its stdout goes ([`Service::start_logged`]).
    log: Option<std::path::PathBuf>,
    _dir: tempfile::TempDir,
}

impl Service {
    /// Starts the binary with `config` (TOML, may be empty) and waits until it is ready.
    pub async fn start(config: &str) -> Self {
        Self::start_with_env(config, &[]).await
    }

    /// Like [`Service::start`], with these environment variables too.
    pub async fn start_with_env(config: &str, env: &[(&str, &str)]) -> Self {
        Self::launch(config, env, false).await
    }

    /// Like [`Service::start_with_env`], logging at `info` (its stdout, not a terminal: JSON by
    /// default) into a file [`Service::log`] reads.
    pub async fn start_logged(config: &str, env: &[(&str, &str)]) -> Self {
        Self::launch(config, env, true).await
    }

    /// What it has logged so far ([`Service::start_logged`]).
    pub fn log(&self) -> String {
        let path = self.log.as_ref().expect("started with start_logged");
        std::fs::read_to_string(path).unwrap()
    }

    async fn launch(config: &str, env: &[(&str, &str)], logged: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let file = dir.path().join("config.toml");
        std::fs::write(&file, config).unwrap();
        let log = logged.then(|| dir.path().join("service.log"));
        let stdout = match &log {
            Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
            None => Stdio::null(),
        };
        let child = binary()
            .arg("--config")
            .arg(&file)
            .env("WECHAT_IDENTITY_LISTEN", format!("127.0.0.1:{port}"))
            .env("WECHAT_IDENTITY_DATA_DIR", dir.path().join("data"))
            .env("RUST_LOG", if logged { "info" } else { "warn" })
            .envs(env.iter().copied())
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let service = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        };
        let http = reqwest::Client::new();
        eventually(Duration::from_secs(60), "the service is ready", || async {
            match http.get(format!("{}/readyz", service.base)).send().await {
                Ok(res) if res.status().is_success() => Ok(()),
                other => Err(other.map(|res| res.status())),
            }
        })
        .await;
        service
    }

    /// Its resident set size (VmRSS), in bytes.
    pub fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status");
        kb * 1024
    }

    /// The bytes waiting in the service's receive queues for connections from `from`
    /// (`/proc/net/tcp`), so a test knows when the service has read what it was sent.
    pub fn unread_from(&self, from: &str) -> u64 {
        let port = self
            .base
            .rsplit(':')
            .next()
            .unwrap()
            .parse::<u16>()
            .unwrap();
        let local = format!("0100007F:{port:04X}");
        let octets: Vec<u8> = from.split('.').map(|o| o.parse().unwrap()).collect();
        let remote = format!(
            "{:02X}{:02X}{:02X}{:02X}:",
            octets[3], octets[2], octets[1], octets[0]
        );
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        table
            .lines()
            .skip(1)
            .filter_map(|line| {
                let cols: Vec<&str> = line.split_whitespace().collect();
                (cols.get(1) == Some(&local.as_str()) && cols.get(2)?.starts_with(&remote))
                    .then(|| cols.get(4)?.split(':').nth(1))
                    .flatten()
                    .and_then(|rx| u64::from_str_radix(rx, 16).ok())
            })
            .sum()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
