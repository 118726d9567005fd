//! The `wechat-identity` binary: `serve` (default), `migrate`, `schema`, the benches, the soak.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: a GraphQL answer is thousands of small allocations, and
/// glibc's allocator took about a third of the service's CPU on a page of 100 users (perf).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use wechat_identity::config::{Config, LogFormat, SandboxMode};

#[derive(Parser)]
#[command(
    name = "wechat-identity",
    version,
    about = "GraphQL identity service for WeChat Mini Programs and Official Accounts"
)]
struct Cli {
    /// TOML configuration file; WECHAT_IDENTITY_* env variables and DATABASE_URL override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Measure login throughput against the in-process sandbox.
    Bench(wechat_identity::bench::login::BenchArgs),
    /// Measure a follower sync of many sandbox followers.
    BenchFollowers(wechat_identity::bench::followers::FollowerBenchArgs),
    /// How soon a follow pushed to the webhook is a user (the job runner's wake-up).
    BenchFollow(wechat_identity::bench::follow::FollowBenchArgs),
    /// Bulk and single message sends to sandbox followers, and a bulk job killed and resumed.
    BenchMessages(wechat_identity::bench::messages::MessageBenchArgs),
    /// Read throughput on PostgreSQL beside PostGraphile v4 on the same data (needs wrk, Node.js).
    BenchReads(wechat_identity::bench::reads::ReadBenchArgs),
    /// A bounded soak: several instances on one PostgreSQL, mixed traffic with WeChat faults
    /// and an instance killed half-way; checks the data at the end (non-zero exit on a failure).
    Soak(wechat_identity::soak::SoakArgs),
    /// The access-token signing keys in the database.
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Sign with a new key from now on (every instance within `jwt.key_reload_secs`); the
    /// previous keys verify until the tokens they signed have expired. At most once a minute.
    Rotate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Schema) = cli.command {
        print!("{}", wechat_identity::graphql::sdl());
        return ExitCode::SUCCESS;
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The benches print their figures on stdout; their services log (access lines included)
    // on stderr.
    let to_stderr = !matches!(
        cli.command,
        None | Some(Command::Serve | Command::Migrate | Command::Keys { .. })
    );
    init_logs(config.log.format(), to_stderr);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config).await,
            Command::Migrate => {
                wechat_identity::db::Db::connect(&config.database_url(), 1)
                    .await
                    .map_err(|e| e.to_string())?;
                tracing::info!("migrations applied");
                Ok(())
            }
            Command::Keys {
                action: KeysCommand::Rotate,
            } => rotate_keys(config).await,
            Command::Bench(args) => wechat_identity::bench::login::run(args)
                .await
                .map_err(|e| e.to_string()),
            Command::BenchFollowers(args) => wechat_identity::bench::followers::run(args).await,
            Command::BenchFollow(args) => wechat_identity::bench::follow::run(args).await,
            Command::BenchMessages(args) => wechat_identity::bench::messages::run(args).await,
            Command::BenchReads(args) => wechat_identity::bench::reads::run(args).await,
            Command::Soak(args) => wechat_identity::soak::run(args).await,
            Command::Schema => unreachable!("handled above"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stdout (or stderr) at `RUST_LOG`'s level (default `info`): one JSON object per line
/// (the request's span fields included: its request id and trace id), or text with colours
/// only on a terminal.
fn init_logs(format: LogFormat, to_stderr: bool) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,wechat_identity=info".into());
    let terminal = if to_stderr {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let writer =
        tracing_subscriber::fmt::writer::BoxMakeWriter::new(move || -> Box<dyn std::io::Write> {
            if to_stderr {
                Box::new(std::io::stderr())
            } else {
                Box::new(std::io::stdout())
            }
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .flatten_event(true)
            .init(),
        LogFormat::Text => builder
            .with_ansi(terminal && std::env::var_os("NO_COLOR").is_none())
            .init(),
    }
}

/// `keys rotate`: the same rotation as the `rotateSigningKey` mutation, on the configured
/// database; prints the new key's id.
async fn rotate_keys(config: Config) -> Result<(), String> {
    let app = wechat_identity::app::App::build(config)
        .await
        .map_err(|e| e.to_string())?;
    let rotation = app
        .identity
        .system()
        .rotate_signing_key()
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "new signing key {}; the previous keys verify until {} UTC",
        rotation.kid, rotation.previous_retire_after
    );
    Ok(())
}

async fn serve(config: Config) -> Result<(), String> {
    let sandbox = config.sandbox_mode;
    let loopback = config.listen.ip().is_loopback();
    let apps: Vec<String> = config
        .apps
        .iter()
        .map(|a| format!("{} ({})", a.app_id, a.name))
        .collect();
    let mini_program = config
        .apps
        .iter()
        .find(|a| a.kind == wechat_identity::types::AppKind::MiniProgram)
        .map_or_else(|| "<appId>".to_owned(), |a| a.app_id.to_string());
    let backend = if config.database_url().starts_with("sqlite://") {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    let admin_key_set = !config.api_keys.is_empty();
    let running = wechat_identity::app::start(config, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    let base = format!("http://{}", running.addr);
    tracing::info!("wechat-identity listening on {base} ({backend})");
    tracing::info!("GraphiQL: {base}/graphql");
    match sandbox {
        None => tracing::info!("WeChat apps: {}", apps.join(", ")),
        Some(SandboxMode::Default) => tracing::info!(
            "sandbox mode: no WeChat apps configured, so a fake WeChat runs at {base}/sandbox/wechat \
             with demo apps wxsandboxminiapp01, wxsandboxminiapp02 (Mini Programs), wxsandboxofficial1 \
             (Official Account) bound to one open platform, and wxsandboxunbound01 (unbound Mini Program)"
        ),
        Some(SandboxMode::Asked) => tracing::info!(
            "sandbox mode (sandbox = true): a fake WeChat runs at {base}/sandbox/wechat and stands in \
             for WeChat for these apps: {}",
            apps.join(", ")
        ),
    }
    if sandbox == Some(SandboxMode::Asked) || (sandbox.is_some() && !loopback) {
        tracing::warn!(
            "SANDBOX MODE IS ON: anyone who can reach {base}/sandbox can mint login codes for any \
             openid/unionid and so log in as anyone; never expose it to users or use real data"
        );
    }
    if sandbox.is_some() {
        tracing::info!(
            "get a login code: curl -s -X POST {base}/sandbox/wechat/codes -H 'content-type: application/json' \
             -d '{{\"appId\":\"{mini_program}\",\"user\":\"alice\"}}'"
        );
        tracing::info!(
            "then in GraphiQL: mutation {{ loginWithMiniProgram(input: {{appId: \"{mini_program}\", code: \"<code>\"}}) {{ accessToken user {{ id unionid }} }} }}"
        );
        tracing::info!("Official Account login in a browser: {base}/sandbox/login-demo");
    }
    if !admin_key_set {
        tracing::info!(
            "no API keys configured: set WECHAT_IDENTITY_ADMIN_KEY (24+ characters) to query users as an admin"
        );
    }
    running
        .handle
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
