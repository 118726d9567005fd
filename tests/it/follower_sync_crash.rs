//! Stories: the instance running a follower sync dies (its task and the job's simply gone), at a
//! page boundary or in the middle of a page (some of its chunks committed, its checkpoint not
//! written); another instance resumes the sync, and the counters an admin reads are exactly what
//! the sync did: every follower seen once, every user it created and every merge it caused
//! counted once, nobody twice in the database.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use wechat_identity::config::{Config, Secret, sandbox_demo_apps};
use wechat_identity::wechat::sandbox::{CodeRequest, Sandbox};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    a_sync_killed_at_a_page_boundary_resumes_elsewhere_with_exact_counters,
    a_sync_killed_mid_page_resumes_elsewhere_with_exact_counters,
);

/// Followers `c0`… in the sandbox's list order.
const FOLLOWERS: u64 = 600;
/// A page of `user/get`: chunks of 100, 100 and 50 for `batchget`.
const PAGE: u64 = 250;
/// Followers who logged into Mini Program A before: the sync attaches them to their user.
const KNOWN_FROM_MP: [u64; 5] = [5, 120, 260, 380, 480];
/// Followers who opened the OA's page (snsapi_base: no unionid, a user of their own) and also
/// logged into Mini Program A: the sync merges the two users.
const TWO_USERS: [u64; 4] = [20, 270, 400, 470];

async fn a_sync_killed_at_a_page_boundary_resumes_elsewhere_with_exact_counters(backend: Backend) {
    // The third page's `user/get` hangs: two pages are done and checkpointed.
    let fault = json!({ "path": "/cgi-bin/user/get", "delayMs": 60_000, "after": 2 });
    killed_and_resumed(backend, fault, 2 * PAGE, true).await;
}

async fn a_sync_killed_mid_page_resumes_elsewhere_with_exact_counters(backend: Backend) {
    // The second page's third `batchget` hangs: its first two chunks are committed (their users
    // created, their merges done), its checkpoint is not written.
    let fault = json!({ "path": "/cgi-bin/user/info/batchget", "delayMs": 60_000, "after": 5 });
    killed_and_resumed(backend, fault, PAGE + 200, false).await;
}

/// Two instances on one database and one sandbox (outside both). The first starts a sync with
/// `fault` injected and dies once the sync has listed `listed_at_kill` followers (and, with
/// `checkpointed`, saved the checkpoint of that page); the second finishes the sync.
async fn killed_and_resumed(
    backend: Backend,
    fault: Value,
    listed_at_kill: u64,
    checkpointed: bool,
) {
    let sandbox = Sandbox::new(&sandbox_demo_apps());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let wechat_url = sandbox.spawn(listener);
    let instance = |db: Option<(String, String)>| {
        let wechat_url = wechat_url.clone();
        move |c: &mut Config| {
            c.sandbox = Some(false);
            c.apps = sandbox_demo_apps();
            c.wechat.api_base_url = wechat_url;
            // One chunk at a time, so that "the first two chunks" is what committed.
            c.wechat.follower_sync_concurrency = 1;
            c.jobs.lease_secs = 2;
            c.jobs.poll_interval_ms = 100;
            if let Some((url, key)) = db {
                c.database_url = Some(Secret::new(url));
                c.wechat.session_key_encryption_key = Some(Secret::new(key));
            }
        }
    };
    let a = TestApp::start_with(backend, instance(None)).await;

    // The starting state, through the first instance's API.
    let code = |app_id: &str, user: String, scope: Option<&str>| {
        let mut req = CodeRequest::new(app_id, &user);
        req.scope = scope.map(str::to_owned);
        sandbox.issue_code(&req).unwrap()
    };
    for i in KNOWN_FROM_MP.iter().chain(&TWO_USERS) {
        let body = a
            .login_mp_code(MP_A, &code(MP_A, format!("c{i}"), None))
            .await;
        assert!(body.get("errors").is_none(), "{body:#}");
    }
    for i in TWO_USERS {
        let (_, state) = a.authorize_url(OA, "SNSAPI_BASE").await;
        let oa_code = code(OA, format!("c{i}"), Some("snsapi_base"));
        let body = a.login_oa_code(OA, &oa_code, &state).await;
        assert!(body.get("errors").is_none(), "{body:#}");
        assert!(body["data"]["loginWithOfficialAccount"]["user"]["unionid"].is_null());
    }
    let users_before = a.count("users").await;
    assert_eq!(
        users_before,
        (KNOWN_FROM_MP.len() + 2 * TWO_USERS.len()) as i64
    );

    sandbox.add_followers(OA, "c", 0, FOLLOWERS).unwrap();
    let control = |path: &'static str, body: Value| {
        let (http, url) = (a.http.clone(), format!("{wechat_url}{path}"));
        async move {
            let res = http.post(url).json(&body).send().await.unwrap();
            assert!(res.status().is_success(), "{path}: {}", res.status());
        }
    };
    control("/followers", json!({ "appId": OA, "pageSize": PAGE })).await;
    control("/faults", fault).await;

    let sync = a.start_sync().await;
    let id = sync["id"].as_str().unwrap().to_owned();
    let listed = format!("follower_sync_seen WHERE sync_id = '{id}'");
    let saved = format!(
        "jobs WHERE checkpoint LIKE '%\"pages\":{}%'",
        listed_at_kill / PAGE
    );
    eventually(
        Duration::from_secs(60),
        "the sync got to the kill",
        || async {
            a.count(&listed).await == listed_at_kill as i64
                && (!checkpointed || a.count(&saved).await == 1)
        },
    )
    .await;
    a.running.handle.abort();
    // A dead process's connections close, and the database rolls back what they held open. In
    // this process the aborted instance's pool still holds them: check every one out once, so
    // the pool drops those left inside a transaction (as it does at checkout).
    let access = a.running.app.identity.access(None).await;
    let public = access.public().unwrap();
    let pings = (0..8).map(|_| public.ping());
    futures_util::future::join_all(pings).await;
    // The sync is still running, and what committed is counted already, checkpoint or not.
    let at_kill = format!(
        "follower_syncs WHERE id = '{id}' AND status = 'running' \
         AND followers_seen = {listed_at_kill}"
    );
    assert_eq!(a.count(&at_kill).await, 1);

    let key = std::fs::read_to_string(a.dir.path().join("session-key-encryption.key")).unwrap();
    let b = TestApp::start_with(backend, instance(Some((a.database_url.clone(), key)))).await;
    let done = b.wait_sync(&id, "COMPLETED", 90).await;

    // The truth, from the follower list and the starting state.
    let known: BTreeSet<u64> = KNOWN_FROM_MP.iter().chain(&TWO_USERS).copied().collect();
    let created = FOLLOWERS - known.len() as u64;
    assert_eq!(done["followersSeen"], FOLLOWERS, "{done:#}");
    assert_eq!(done["usersCreated"], created, "{done:#}");
    assert_eq!(done["usersMerged"], TWO_USERS.len(), "{done:#}");
    assert_eq!(done["errors"], 0, "{done:#}");
    assert_eq!(done["pages"], FOLLOWERS.div_ceil(PAGE), "{done:#}");
    assert_eq!(done["total"], FOLLOWERS, "{done:#}");
    assert_eq!(done["unsubscribed"], 0, "{done:#}");

    // Nobody twice: one OA identity per follower, one live user per person, the merged users
    // left as tombstones. (Read through the first instance's harness handle: the second test
    // app's own is on a database of its own.)
    assert_eq!(
        a.count("official_account_identities").await,
        FOLLOWERS as i64
    );
    assert_eq!(
        a.count("(SELECT DISTINCT openid FROM official_account_identities) AS o")
            .await,
        FOLLOWERS as i64
    );
    assert_eq!(
        a.count("users WHERE merged_into IS NULL").await,
        FOLLOWERS as i64
    );
    assert_eq!(
        a.count("users").await,
        users_before + created as i64,
        "users the sync created"
    );
    assert_eq!(
        a.count("users WHERE merged_into IS NOT NULL").await,
        TWO_USERS.len() as i64
    );
    assert_eq!(a.count("mini_program_identities").await, known.len() as i64);
    drop(a);
}
