//! `wechat-identity bench`: concurrent `loginWithMiniProgram`, `me` and `loginWithOfficialAccount`
//! calls over HTTP against a service running in this process with the in-process sandbox, on a
//! fresh database per backend. Prints calls/s, p50/p99 latency, and WeChat calls and DB
//! transactions per call.

use super::*;

/// Bench options.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Databases to measure: `sqlite` (a temp file) and/or a PostgreSQL server URL, on which a
    /// fresh database is created and dropped afterwards.
    #[arg(long = "database", default_values_t = vec!["sqlite".to_string()])]
    databases: Vec<String>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Distinct users (the new-user phase logs each in once).
    #[arg(long, default_value_t = 2000)]
    users: usize,
    /// Returning-user logins (spread over the users).
    #[arg(long, default_value_t = 20000)]
    logins: usize,
    /// Database pool size.
    #[arg(long, default_value_t = 16)]
    pool_size: usize,
    /// Register one event endpoint (a receiver in this process, on loopback) for every event
    /// type before the phases, and report how many events it got.
    #[arg(long)]
    event_endpoint: bool,
}

const OA_LOGIN: &str = "mutation($input: LoginWithOfficialAccountInput!) { loginWithOfficialAccount(input: $input) { accessToken refreshToken newUser user { id } } }";

/// Users whose access tokens the `me` phase reads with (each read again and again, as a
/// client does within its token's life).
const ME_READERS: usize = 200;

/// `{ me { id } }` calls, `args.logins` of them, spread over [`ME_READERS`] users' access tokens
/// (logged in here, one after another, before the phase).
async fn me_reads(
    client: &reqwest::Client,
    endpoint: &str,
    args: &BenchArgs,
    issue: &impl Fn(usize) -> Result<Login, String>,
) -> Result<Vec<Login>, String> {
    let mut tokens = Vec::new();
    for i in 0..ME_READERS.min(args.users) {
        let answer = send_json(client.post(endpoint).json(&issue(i)?.body)).await?;
        let token = answer["data"]["loginWithMiniProgram"]["accessToken"]
            .as_str()
            .ok_or_else(|| format!("login for the me phase failed: {answer}"))?;
        tokens.push(token.to_owned());
    }
    Ok((0..args.logins)
        .map(|i| {
            Login::as_user(
                "{ me { id } }",
                "me",
                "id",
                tokens[i % tokens.len()].clone(),
            )
        })
        .collect())
}

/// Runs the benchmark.
pub async fn run(args: BenchArgs) -> Result<(), String> {
    println!(
        "bench: loginWithMiniProgram, `me` and loginWithOfficialAccount over HTTP, {} concurrent clients, {} users, {} returning logins",
        args.concurrency, args.users, args.logins
    );
    for database in &args.databases {
        bench_one(&args, database).await?;
    }
    Ok(())
}

async fn bench_one(args: &BenchArgs, database: &str) -> Result<(), String> {
    let dir = tempfile_dir()?;
    let (url, cleanup) = fresh_database(&dir, database).await?;
    let backend = backend_name(database);
    let (running, stop) = start_service(&dir, url, args.pool_size, |config| {
        // States for every returning OA login are issued before the phase starts.
        config.limits.max_live_states_per_app = u32::try_from(args.logins + args.users)
            .unwrap_or(u32::MAX)
            .max(config.limits.max_live_states_per_app);
        config.limits.max_connections = config.limits.max_connections.max(args.concurrency * 4);
        add_admin_key(config);
    })
    .await?;
    let receiver = match args.event_endpoint {
        true => Some(super::events::Receiver::register(&running.app.identity, ADMIN_KEY).await?),
        false => None,
    };
    let sandbox = running.app.sandbox.clone().ok_or("sandbox not running")?;
    let endpoint = format!("http://{}/graphql", running.addr);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .map_err(|e| e.to_string())?;

    let user_name = |i: usize| format!("bench-user-{i}");
    let issue = |i: usize| {
        sandbox
            .issue_code(&CodeRequest::new(APP, &user_name(i)))
            .map(mp_login)
    };
    let new_logins: Vec<Login> = (0..args.users).map(issue).collect::<Result<_, _>>()?;
    let phase = Phase::run(&client, &endpoint, new_logins, args.concurrency).await;
    phase.print(backend, "MP new users");
    let returning: Vec<Login> = (0..args.logins)
        .map(|i| issue(i % args.users))
        .collect::<Result<_, _>>()?;
    let phase = Phase::run(&client, &endpoint, returning, args.concurrency).await;
    phase.print(backend, "MP returning");
    let me_reads = me_reads(&client, &endpoint, args, &issue).await?;
    let phase = Phase::run(&client, &endpoint, me_reads, args.concurrency).await;
    phase.print(backend, "me (user token)");

    // Official Account: new people with snsapi_userinfo (code exchange + /sns/userinfo), then
    // returning ones with the silent snsapi_base. States are issued beforehand, as
    // `startOfficialAccountLogin` does before the person goes to WeChat.
    let identity = &running.app.identity;
    let oa_login = |i: usize, scope: OauthScope| {
        let sandbox = sandbox.clone();
        async move {
            let start = identity
                .access(None)
                .await
                .public()
                .map_err(|e| e.to_string())?
                .official_account_authorize_url(
                    OA,
                    "https://h5.example.com/",
                    scope,
                    None,
                    &Default::default(),
                )
                .await
                .map_err(|e| e.to_string())?;
            let state = start
                .url
                .split("state=")
                .nth(1)
                .and_then(|rest| rest.split('#').next())
                .ok_or("no state in the authorize URL")?
                .to_owned();
            let code = sandbox.issue_code(&CodeRequest::official_account(
                OA,
                &format!("bench-oa-user-{i}"),
                scope.as_str(),
            ))?;
            Ok::<_, String>(Login {
                body: serde_json::json!({ "query": OA_LOGIN, "variables": { "input": { "appId": OA, "code": code, "state": state } } }),
                field: "loginWithOfficialAccount",
                bearer: None,
                expect: "accessToken",
            })
        }
    };
    let mut new_logins = Vec::with_capacity(args.users);
    for i in 0..args.users {
        new_logins.push(oa_login(i, OauthScope::UserInfo).await?);
    }
    let phase = Phase::run(&client, &endpoint, new_logins, args.concurrency).await;
    phase.print(backend, "OA new userinfo");
    let mut returning = Vec::with_capacity(args.logins);
    for i in 0..args.logins {
        returning.push(oa_login(i % args.users, OauthScope::Base).await?);
    }
    let phase = Phase::run(&client, &endpoint, returning, args.concurrency).await;
    phase.print(backend, "OA returning base");
    if let Some(receiver) = receiver {
        receiver.report(&running.app.identity).await?;
    }

    stop_service(running, stop, database, cleanup, &dir).await
}
