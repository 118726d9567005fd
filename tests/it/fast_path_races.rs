//! PostgreSQL only: a returning Mini Program login that meets a concurrent merge. A merge locks
//! the users first and then moves their identities; a login locks (the full path) or updates
//! (the fast path) the identity first and then needs the user. When the two cross, PostgreSQL
//! breaks the deadlock by aborting one of them. The full path runs in `db::transaction`, which
//! runs a deadlocked transaction again, so the person is logged in; the fast path's statement
//! must be settled the same way.

use std::time::Duration;

use diesel_async::SimpleAsyncConnection;
use serde_json::Value;

use crate::common::*;

/// Logs `person` in again while the harness runs a merge-like transaction on their user: it
/// locks the user, waits until the login is blocked on it, then updates the identity (as a
/// merge moving it would) and commits. Like a merge in `db::transaction`, it runs again when
/// PostgreSQL aborts it: the login it deadlocked with may, running again itself, take the
/// identity first and deadlock with it a second time. Returns the service, the person's user
/// id, the login's response and how the merge's first update ended.
async fn login_across_a_merge(fast_path: bool) -> (TestApp, String, Value, FirstUpdate) {
    let app = TestApp::start_with(Backend::Postgres, move |c| {
        c.database_fast_path = fast_path;
        c.rate_limits.enabled = false;
    })
    .await;
    let first = app.login_mp(MP_A, "zoe").await;
    let x = first["user"]["id"].as_str().unwrap().to_owned();
    let code = app.code(MP_A, "zoe").await;
    let mut conn = app.db_conn().await;
    let lock_user = format!("BEGIN; SELECT id FROM users WHERE id = '{x}' FOR UPDATE;");
    let move_identity =
        format!("UPDATE mini_program_identities SET user_id = user_id WHERE user_id = '{x}'");
    wechat_identity::with_conn!(&mut conn, c => c.batch_execute(&lock_user).await).unwrap();
    let merge = async {
        // Only once the login waits for the user's lock: PostgreSQL looks for a deadlock in
        // whichever transaction has waited `deadlock_timeout` first, so it aborts the login.
        let login_waits = "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_stat_activity \
            WHERE datname = current_database() AND wait_event_type = 'Lock') \
            THEN RAISE EXCEPTION 'not yet'; END IF; END $$";
        eventually(
            Duration::from_secs(20),
            "the login waits for the user",
            || async {
                let mut watcher = app.db_conn().await;
                wechat_identity::with_conn!(&mut watcher, c => c.batch_execute(login_waits).await)
            },
        )
        .await;
        let started = std::time::Instant::now();
        let mut moved =
            wechat_identity::with_conn!(&mut conn, c => c.batch_execute(&move_identity).await);
        let first = FirstUpdate {
            waited: started.elapsed(),
            error: moved.as_ref().err().map(|e| e.to_string()),
        };
        for _ in 0..8 {
            if moved.is_ok() {
                break;
            }
            wechat_identity::with_conn!(&mut conn, c => c.batch_execute("ROLLBACK").await).unwrap();
            wechat_identity::with_conn!(&mut conn, c => c.batch_execute(&lock_user).await).unwrap();
            moved =
                wechat_identity::with_conn!(&mut conn, c => c.batch_execute(&move_identity).await);
        }
        moved.expect("the merge commits in the end");
        wechat_identity::with_conn!(&mut conn, c => c.batch_execute("COMMIT").await).unwrap();
        first
    };
    let (body, first) = tokio::join!(app.login_mp_code(MP_A, &code), merge);
    (app, x, body, first)
}

/// The login and the merge deadlock, and the login still succeeds: as the same person, with a
/// token that works.
async fn logs_in_across_a_merge(fast_path: bool) {
    let (app, x, body, first) = login_across_a_merge(fast_path).await;
    assert!(
        first.met_a_deadlock(),
        "the merge and the login deadlocked ({:?}, {:?})",
        first.waited,
        first.error
    );
    assert!(
        body.get("errors").is_none(),
        "and the login ran again: {body:#}"
    );
    let login = &body["data"]["loginWithMiniProgram"];
    assert_eq!(
        login["user"]["id"],
        x.as_str(),
        "zoe is still zoe: {body:#}"
    );
    assert_eq!(login["newUser"], false, "{body:#}");
    let me = app.me(login["accessToken"].as_str().unwrap()).await;
    assert_eq!(me["data"]["me"]["id"], x.as_str(), "{me:#}");
    assert_eq!(
        me["data"]["me"]["miniProgramIdentities"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "one identity, not a second one made by the login run again: {me:#}"
    );
}

/// How the merge's first update ended.
struct FirstUpdate {
    waited: Duration,
    error: Option<String>,
}

impl FirstUpdate {
    /// The update and the login deadlocked: PostgreSQL aborted the login, after the update had
    /// waited for it, or (when the login, running again, took the identity first) the update.
    fn met_a_deadlock(&self) -> bool {
        match &self.error {
            None => self.waited >= Duration::from_millis(200),
            Some(e) => e.starts_with("deadlock detected"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(test_postgres),
    ignore = "set TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn the_full_path_runs_a_login_again_after_a_deadlock_with_a_merge() {
    logs_in_across_a_merge(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(test_postgres),
    ignore = "set TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn the_fast_path_runs_a_login_again_after_a_deadlock_with_a_merge() {
    logs_in_across_a_merge(true).await;
}
