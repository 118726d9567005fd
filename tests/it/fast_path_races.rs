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

/// Logs `person` in again while the harness holds a merge-like transaction on their user: it
/// locks the user, waits until the login is blocked on it, then updates the identity (as a
/// merge moving it would) and commits. Returns the login's response.
async fn login_across_a_merge(fast_path: bool) -> (Value, String, Duration) {
    let app = TestApp::start_with(Backend::Postgres, move |c| {
        c.database_fast_path = fast_path;
        c.rate_limits.enabled = false;
    })
    .await;
    let first = app.login_mp(MP_A, "zoe").await;
    let x = first["user"]["id"].as_str().unwrap().to_owned();
    let code = app.code(MP_A, "zoe").await;
    let mut conn = app.db_conn().await;
    wechat_identity::with_conn!(&mut conn, c => c
        .batch_execute(&format!("BEGIN; SELECT id FROM users WHERE id = '{x}' FOR UPDATE;"))
        .await)
    .unwrap();
    let merge = async {
        // Well within PostgreSQL's deadlock_timeout (1 s): the login is waiting for the user.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = std::time::Instant::now();
        let moved = wechat_identity::with_conn!(&mut conn, c => c
            .batch_execute(&format!(
                "UPDATE mini_program_identities SET user_id = user_id WHERE user_id = '{x}'"
            ))
            .await);
        let end = if moved.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let waited = started.elapsed();
        wechat_identity::with_conn!(&mut conn, c => c.batch_execute(end).await).unwrap();
        (end, waited)
    };
    let (body, (end, waited)) = tokio::join!(app.login_mp_code(MP_A, &code), merge);
    (body, end.to_owned(), waited)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(test_postgres),
    ignore = "set TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn the_full_path_runs_a_login_again_after_a_deadlock_with_a_merge() {
    let (body, end, waited) = login_across_a_merge(false).await;
    assert!(
        waited >= Duration::from_millis(500),
        "the merge waited for PostgreSQL to break the deadlock ({waited:?})"
    );
    assert_eq!(end, "COMMIT", "PostgreSQL aborted the login");
    assert!(body.get("errors").is_none(), "and it ran again: {body:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(test_postgres),
    ignore = "set TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn the_fast_path_runs_a_login_again_after_a_deadlock_with_a_merge() {
    let (body, end, waited) = login_across_a_merge(true).await;
    assert!(
        waited >= Duration::from_millis(500),
        "a deadlock ({waited:?})"
    );
    assert_eq!(end, "COMMIT", "PostgreSQL aborted the login");
    assert!(body.get("errors").is_none(), "and it ran again: {body:#}");
}
