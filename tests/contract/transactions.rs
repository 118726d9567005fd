//! `db::transaction`: commits on Ok, rolls back on Err, runs the closure again only when it lost
//! a named race (`RACE_CONSTRAINTS`), and so settles concurrent first sightings.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use wechat_identity::db::models::now;
use wechat_identity::db::models::user::UserRow;
use wechat_identity::db::tx::MAX_ATTEMPTS;
use wechat_identity::db::{Conn, DbError, Race, transaction};
use wechat_identity::identity::IdentityError;
use wechat_identity::identity::rules::MergeReason;
use wechat_identity::identity::sighting::{self, Seen, Sighting};
use wechat_identity::types::{UnionId, UserId};
use wechat_identity::with_conn;

use crate::common::seed::{self, app, openid, unionid};
use crate::common::snapshot::snapshot;
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    a_unique_violation_that_is_no_race_is_returned_at_once,
    a_named_race_is_run_again_up_to_the_limit,
    two_first_sightings_of_one_new_unionid_make_one_user,
    two_first_sightings_of_one_new_openid_make_one_identity,
    a_rolled_back_transaction_leaves_nothing,
    an_exhausted_pool_is_a_retryable_unavailable,
    a_transaction_cut_off_midway_releases_its_locks_at_once,
);

fn is_unique_violation(e: &DbError) -> bool {
    matches!(
        e,
        DbError::Query(DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            _
        ))
    )
}

async fn a_unique_violation_that_is_no_race_is_returned_at_once(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let attempts = AtomicU32::new(0);
    let result = transaction(&ctx.db, async |conn: &mut Conn| -> Result<(), DbError> {
        attempts.fetch_add(1, SeqCst);
        let u = seed::user(conn, None, None).await;
        seed::session(conn, &u.id, None, "same-hash").await?;
        seed::session(conn, &u.id, None, "same-hash").await?;
        Ok(())
    })
    .await;
    let err = result.expect_err("two sessions with one token hash");
    assert!(is_unique_violation(&err), "{err:?}");
    assert_eq!(err.race(), None);
    assert_eq!(attempts.load(SeqCst), 1, "not run again");
    assert_eq!(
        (ctx.count("users").await, ctx.count("sessions").await),
        (0, 0),
        "rolled back"
    );

    // A duplicate primary key: the same.
    let mut conn = ctx.conn().await;
    let taken = seed::user(&mut conn, None, None).await.id;
    let attempts = AtomicU32::new(0);
    let result = transaction(
        &ctx.db,
        async |conn: &mut Conn| -> Result<UserRow, DbError> {
            attempts.fetch_add(1, SeqCst);
            let new = UserRow {
                nickname: Some("dup".into()),
                ..UserRow::new(taken.clone(), None, now())
            };
            UserRow::insert(conn, &new).await
        },
    )
    .await;
    let err = result.expect_err("a duplicate user id");
    assert!(is_unique_violation(&err) && err.race().is_none(), "{err:?}");
    assert_eq!(attempts.load(SeqCst), 1);
    assert_eq!(ctx.users().await.len(), 1);
    assert_eq!(ctx.users().await[0].nickname, None);
}

async fn insert_holder(conn: &mut Conn, u: &str) -> Result<UserRow, DbError> {
    let new = UserRow::new(UserId::generate(), Some(UnionId::new(u)), now());
    UserRow::insert(conn, &new).await
}

async fn a_named_race_is_run_again_up_to_the_limit(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    seed::user(&mut ctx.conn().await, Some("uHeld"), None).await;
    // Lost once (as if a concurrent sighting took uHeld first), then settled.
    let attempts = AtomicU32::new(0);
    let user = transaction(
        &ctx.db,
        async |conn: &mut Conn| -> Result<UserRow, DbError> {
            let n = attempts.fetch_add(1, SeqCst);
            insert_holder(conn, if n == 0 { "uHeld" } else { "uNew" }).await
        },
    )
    .await
    .expect("settled on the second run");
    assert_eq!(attempts.load(SeqCst), 2);
    assert_eq!(user.unionid, Some(unionid("uNew")));
    assert_eq!(ctx.count("users").await, 2);

    // Never settled: run MAX_ATTEMPTS times, then the race comes back.
    let attempts = AtomicU32::new(0);
    let err = transaction(
        &ctx.db,
        async |conn: &mut Conn| -> Result<UserRow, DbError> {
            attempts.fetch_add(1, SeqCst);
            insert_holder(conn, "uHeld").await
        },
    )
    .await
    .expect_err("always lost");
    assert_eq!(attempts.load(SeqCst), MAX_ATTEMPTS);
    assert_eq!(err.race(), Some(Race::Constraint("users_live_unionid")));
    assert_eq!(ctx.count("users").await, 2);
}

/// PostgreSQL: waits (up to 10 s) until another session on this database waits for a lock.
async fn until_someone_waits(ctx: &Ctx) {
    use diesel::sql_types::BigInt;
    let q = diesel::select(diesel::dsl::sql::<BigInt>(
        "(SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock')",
    ));
    eventually(
        Duration::from_secs(10),
        "a session waits for a lock",
        || async {
            let mut conn = ctx.conn().await;
            let waiting: i64 =
            with_conn!(&mut conn, c => diesel_async::RunQueryDsl::get_result(q.clone(), c).await)
                .unwrap();
            waiting > 0
        },
    )
    .await;
}

/// One first sighting, run so that two of them race: on PostgreSQL both wait at `start` inside
/// their transactions, and whoever records first commits only once the other is blocked on its
/// insert, so the other loses a named race for sure. (SQLite runs them one after the other.)
async fn racing_login(
    ctx: &Ctx,
    start: &tokio::sync::Barrier,
    attempts: &AtomicU32,
    app_id: &str,
    open_id: &str,
    union_id: Option<&str>,
) -> Result<UserId, IdentityError> {
    let (a, o, u) = (app(app_id), openid(open_id), union_id.map(unionid));
    let s = Sighting {
        app_id: &a,
        openid: &o,
        unionid: u.as_ref(),
        reason: MergeReason::Login,
        profile: None,
        phone: None,
        seen: Seen::MiniProgramLogin { session_key: "k" },
    };
    let mine = AtomicU32::new(0);
    let postgres = ctx.backend == Backend::Postgres;
    transaction(
        &ctx.db,
        async |conn: &mut Conn| -> Result<UserId, IdentityError> {
            attempts.fetch_add(1, SeqCst);
            let first = mine.fetch_add(1, SeqCst) == 0;
            if first && postgres {
                start.wait().await;
            }
            let resolved = sighting::record(conn, &s).await?;
            if first && postgres {
                until_someone_waits(ctx).await;
            }
            Ok(resolved.user.id)
        },
    )
    .await
}

async fn two_first_sightings_of_one_new_unionid_make_one_user(backend: Backend) {
    let ctx = Ctx::with_pool(backend, 6).await;
    let start = tokio::sync::Barrier::new(2);
    let attempts = AtomicU32::new(0);
    let (a, b) = tokio::join!(
        racing_login(&ctx, &start, &attempts, MP_A, "o-mo-a", Some("uMo")),
        racing_login(&ctx, &start, &attempts, MP_B, "o-mo-b", Some("uMo")),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b, "one user");
    let expected = if backend == Backend::Postgres { 3 } else { 2 };
    assert_eq!(attempts.load(SeqCst), expected, "the loser ran once more");
    let users = ctx.users().await;
    assert_eq!(users.len(), 1);
    assert_eq!(
        (users[0].id.clone(), users[0].unionid.clone()),
        (a.clone(), Some(unionid("uMo")))
    );
    let ids = ctx.mp_identities().await;
    assert_eq!(ids.len(), 2);
    assert!(
        ids.iter()
            .all(|i| i.user_id == a && i.unionid == Some(unionid("uMo")))
    );
    assert_eq!(ctx.count("merge_events").await, 0);
}

async fn two_first_sightings_of_one_new_openid_make_one_identity(backend: Backend) {
    let ctx = Ctx::with_pool(backend, 6).await;
    let start = tokio::sync::Barrier::new(2);
    let attempts = AtomicU32::new(0);
    let (a, b) = tokio::join!(
        racing_login(&ctx, &start, &attempts, MP_A, "o-ned", None),
        racing_login(&ctx, &start, &attempts, MP_A, "o-ned", None),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b, "one user");
    let expected = if backend == Backend::Postgres { 3 } else { 2 };
    assert_eq!(attempts.load(SeqCst), expected, "the loser ran once more");
    let users = ctx.users().await;
    assert_eq!(users.len(), 1, "the loser's user was rolled back");
    assert_eq!(
        (users[0].id.clone(), users[0].unionid.clone()),
        (a.clone(), None)
    );
    let ids = ctx.mp_identities().await;
    assert_eq!(ids.len(), 1);
    assert_eq!(
        (ids[0].user_id.clone(), ids[0].openid.as_str()),
        (a, "o-ned")
    );
}

async fn a_rolled_back_transaction_leaves_nothing(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let empty = snapshot(&ctx).await;
    // A fresh database holds only the first signing key, made at start.
    assert!(
        empty.len() == 1 && empty[0].starts_with("signing_keys:"),
        "{empty:?}"
    );
    let attempts = AtomicU32::new(0);
    let s = Sighting {
        app_id: &app(MP_A),
        openid: &openid("o-oz"),
        unionid: Some(&unionid("uOz")),
        reason: MergeReason::Login,
        profile: None,
        phone: None,
        seen: Seen::MiniProgramLogin { session_key: "k" },
    };
    let result = transaction(
        &ctx.db,
        async |conn: &mut Conn| -> Result<(), IdentityError> {
            attempts.fetch_add(1, SeqCst);
            let resolved = sighting::record(conn, &s).await?;
            seed::session(conn, &resolved.user.id, None, "h-oz").await?;
            assert_eq!(
                UserRow::find(conn, &resolved.user.id).await?.map(|u| u.id),
                Some(resolved.user.id)
            );
            Err(IdentityError::BadInput("changed my mind".into()))
        },
    )
    .await;
    assert!(matches!(result, Err(IdentityError::BadInput(ref m)) if m == "changed my mind"));
    assert_eq!(attempts.load(SeqCst), 1);
    assert_eq!(snapshot(&ctx).await, empty, "nothing left behind");
}

/// With every connection taken, a caller waits `pool_wait` and then gets a retryable
/// UNAVAILABLE (503 on the HTTP routes), not INTERNAL and not an endless wait.
async fn an_exhausted_pool_is_a_retryable_unavailable(backend: Backend) {
    let ctx = Ctx::with_pool(backend, 1).await;
    let db = ctx.db.clone().with_pool_wait(Duration::from_millis(200));
    let held = db.conn().await.expect("the one connection");
    let started = std::time::Instant::now();
    let err = match db.conn().await {
        Ok(_) => panic!("a second connection from a pool of one"),
        Err(e) => e,
    };
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "waited the pool wait"
    );
    assert!(matches!(err, DbError::Pool(_)), "{err:?}");
    let api = wechat_identity::error::ApiError::from(err);
    assert_eq!(api.code(), wechat_identity::error::ErrorCode::Unavailable);
    assert!(api.code().retryable());
    assert_eq!(api.code().http_status().as_u16(), 503);
    drop(held);
    assert!(db.conn().await.is_ok(), "the connection is free again");
}

/// A transaction whose future is dropped midway (a request cut off by its timeout, a task
/// aborted) closes its connection, so the database rolls it back at once: another instance can
/// write the same row right away. (Returned to the pool instead, the connection would hold its
/// locks — SQLite's write lock, PostgreSQL's row lock — until its next checkout, which in an
/// idle pool never comes.)
async fn a_transaction_cut_off_midway_releases_its_locks_at_once(backend: Backend) {
    use diesel_async::RunQueryDsl;
    let ctx = Ctx::new(backend).await;
    let user = seed::user(&mut ctx.conn().await, None, Some("before")).await;
    let set_nickname = |nickname: &str| {
        format!(
            "UPDATE users SET nickname = '{nickname}' WHERE id = '{}'",
            user.id
        )
    };
    let (written, wrote) = tokio::sync::oneshot::channel();
    let db = ctx.db.clone();
    let update = set_nickname("cut-off");
    let cut_off = tokio::spawn(async move {
        let written = std::sync::Mutex::new(Some(written));
        transaction(&db, async |conn: &mut Conn| -> Result<(), DbError> {
            with_conn!(conn, c => diesel::sql_query(update.as_str()).execute(c).await)?;
            if let Some(written) = written.lock().unwrap().take() {
                let _ = written.send(());
            }
            std::future::pending::<()>().await;
            Ok(())
        })
        .await
    });
    wrote.await.expect("the first transaction wrote");
    cut_off.abort();
    assert!(cut_off.await.unwrap_err().is_cancelled());

    // Another instance: its own pool on the same database, and a bounded wait.
    let other = wechat_identity::db::Db::connect(&ctx.url, 1).await.unwrap();
    let update = set_nickname("after");
    let second = tokio::time::timeout(
        Duration::from_secs(5),
        transaction(&other, async |conn: &mut Conn| -> Result<usize, DbError> {
            Ok(with_conn!(conn, c => diesel::sql_query(update.as_str()).execute(c).await)?)
        }),
    )
    .await
    .expect("the row is still locked by the cut-off transaction 5 s later");
    assert_eq!(second.unwrap(), 1);
    let row = UserRow::find(&mut ctx.conn().await, &user.id)
        .await
        .unwrap();
    assert_eq!(
        row.unwrap().nickname.as_deref(),
        Some("after"),
        "the cut-off write rolled back"
    );
}
