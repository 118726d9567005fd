//! `sessions`, `merge_events`, `oauth_states` and `login_tickets`.

use chrono::Duration;
use wechat_identity::db::models::login_ticket::LoginTicketRow;
use wechat_identity::db::models::merge_event::MergeEventRow;
use wechat_identity::db::models::merge_event::MergeReason;
use wechat_identity::db::models::now;
use wechat_identity::db::models::oauth_state::OauthStateRow;
use wechat_identity::db::models::session::{Owner, SessionRow};
use wechat_identity::db::{Conn, DbError, transaction};
use wechat_identity::types::{AppId, MergeEventId, OauthStateId, SessionId, UserId};

use crate::common::seed;
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    sessions_are_locked_revoked_and_moved,
    merge_events_page_by_user_and_after,
    oauth_states_take_slots_are_purged_and_used_once,
    login_tickets_are_found_used_once_and_purged,
);

async fn lock_active(ctx: &Ctx, owner: Owner<'_>) -> usize {
    transaction(&ctx.db, async |conn: &mut Conn| -> Result<_, DbError> {
        SessionRow::lock_active(conn, owner).await
    })
    .await
    .unwrap()
}

async fn lock_login(ctx: &Ctx, family: &SessionId) -> usize {
    transaction(&ctx.db, async |conn: &mut Conn| -> Result<_, DbError> {
        SessionRow::lock_login(conn, family).await
    })
    .await
    .unwrap()
}

async fn sessions_are_locked_revoked_and_moved(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    let x = seed::user(&mut conn, None, None).await;
    let y = seed::user(&mut conn, None, None).await;
    let s1 = seed::session(&mut conn, &x.id, None, "h1").await.unwrap();
    let s2 = seed::session(&mut conn, &x.id, Some(&s1), "h2")
        .await
        .unwrap();
    let s3 = seed::session(&mut conn, &x.id, None, "h3").await.unwrap();
    let s4 = seed::session(&mut conn, &y.id, None, "h4").await.unwrap();

    assert_eq!(lock_active(&ctx, Owner::Family(&s1)).await, 2);
    assert_eq!(lock_login(&ctx, &s1).await, 2, "a login: its live sessions");
    assert_eq!(lock_login(&ctx, &s3).await, 1);
    assert_eq!(lock_active(&ctx, Owner::User(&x.id)).await, 3);
    assert_eq!(lock_active(&ctx, Owner::User(&y.id)).await, 1);
    let found = SessionRow::find_by_hash(&mut conn, "h2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.id.as_str(), found.family.as_str()),
        (s2.as_str(), s1.as_str())
    );
    assert_eq!(found.user_agent.as_deref(), Some("contract"));
    assert!(
        SessionRow::find_by_hash(&mut conn, "nope")
            .await
            .unwrap()
            .is_none()
    );

    // Rotation: s1 replaced by s2, once.
    let at = seed::now_us();
    assert!(
        SessionRow::revoke(&mut conn, &s1, Some(&s2), at)
            .await
            .unwrap()
    );
    assert!(!SessionRow::revoke(&mut conn, &s1, None, at).await.unwrap());
    let s1_row = SessionRow::find_by_hash(&mut conn, "h1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            s1_row.revoked_at,
            s1_row.replaced_by.as_ref().map(SessionId::as_str)
        ),
        (Some(at), Some(s2.as_str()))
    );
    assert_eq!(lock_active(&ctx, Owner::Family(&s1)).await, 1);

    // A family, then a user.
    assert_eq!(
        SessionRow::revoke_family(&mut conn, &s1, at).await.unwrap(),
        1
    );
    assert_eq!(
        SessionRow::revoke_family(&mut conn, &s1, at).await.unwrap(),
        0
    );
    assert_eq!(lock_active(&ctx, Owner::User(&x.id)).await, 1, "s3 only");
    assert_eq!(
        SessionRow::revoke_user(&mut conn, &x.id, at).await.unwrap(),
        1
    );
    assert_eq!(lock_active(&ctx, Owner::User(&x.id)).await, 0);
    assert_eq!(
        lock_active(&ctx, Owner::User(&y.id)).await,
        1,
        "y's untouched"
    );
    let rows = ctx.sessions().await;
    let state: Vec<_> = rows
        .iter()
        .map(|s| (s.id.clone(), s.revoked_at.is_some()))
        .collect();
    assert_eq!(
        state,
        [
            (s1.clone(), true),
            (s2.clone(), true),
            (s3.clone(), true),
            (s4.clone(), false)
        ]
    );
    assert!(
        rows[1].replaced_by.is_none(),
        "revoke_family sets no replacement"
    );

    // A merge moves every session, revoked or not, as it is.
    assert_eq!(
        SessionRow::move_all(&mut conn, &x.id, &y.id).await.unwrap(),
        3
    );
    let moved = ctx.sessions().await;
    assert!(moved.iter().all(|s| s.user_id == y.id));
    assert_eq!(
        moved.iter().map(|s| s.revoked_at).collect::<Vec<_>>(),
        rows.iter().map(|s| s.revoked_at).collect::<Vec<_>>()
    );
    assert_eq!(lock_active(&ctx, Owner::User(&y.id)).await, 1);
}

async fn merge_events_page_by_user_and_after(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    let mut users = Vec::new();
    for _ in 0..5 {
        users.push(seed::user(&mut conn, None, None).await.id);
    }
    let [a, b, c, d, e] = <[UserId; 5]>::try_from(users).unwrap();
    let pairs = [
        (&a, &b, MergeReason::Login),
        (&a, &c, MergeReason::Admin),
        (&d, &a, MergeReason::FollowerSync),
        (&e, &d, MergeReason::Unlink),
    ];
    let mut ids = Vec::new();
    for (survivor, merged, reason) in pairs {
        let id = MergeEventId::generate();
        MergeEventRow::insert(
            &mut conn,
            &MergeEventRow {
                id: id.clone(),
                survivor_id: survivor.clone(),
                merged_id: merged.clone(),
                reason,
                actor: Some(format!("actor-{reason}")),
                created_at: now(),
                identity_id: None,
            },
        )
        .await
        .unwrap();
        ids.push(id);
    }
    let page = async |user: Option<&UserId>,
                      after: Option<&MergeEventId>,
                      limit: i64|
           -> Vec<MergeEventId> {
        let mut conn = ctx.conn().await;
        let rows = MergeEventRow::page(&mut conn, user, after, limit)
            .await
            .unwrap();
        rows.into_iter().map(|r| r.id).collect()
    };
    assert_eq!(page(None, None, 10).await, ids);
    assert_eq!(page(None, None, 2).await, ids[..2]);
    assert_eq!(page(None, Some(&ids[1]), 10).await, ids[2..]);
    assert_eq!(
        page(Some(&a), None, 10).await,
        ids[..3],
        "as survivor or as merged"
    );
    assert_eq!(page(Some(&a), Some(&ids[0]), 1).await, ids[1..2]);
    assert_eq!(page(Some(&b), None, 10).await, ids[..1]);
    assert_eq!(page(Some(&d), None, 10).await, ids[2..]);
    assert!(page(Some(&e), Some(&ids[3]), 10).await.is_empty());
    let all = MergeEventRow::page(&mut conn, None, None, 10)
        .await
        .unwrap();
    assert_eq!(all[2].reason, MergeReason::FollowerSync);
    assert_eq!(all[2].actor.as_deref(), Some("actor-follower_sync"));
    assert_eq!((&all[2].survivor_id, &all[2].merged_id), (&d, &a));
}

fn state(id: &str, app: &str, created_minutes_ago: i64, ttl_minutes: i64) -> OauthStateRow {
    let created = now() - Duration::minutes(created_minutes_ago);
    OauthStateRow {
        id: OauthStateId::new(id),
        app_id: AppId::new(app),
        scope: "snsapi_base".into(),
        return_to: None,
        browser_binding: None,
        code_challenge: None,
        created_at: created,
        expires_at: created + Duration::minutes(ttl_minutes),
        used_at: None,
        slot: None,
    }
}

async fn oauth_states_take_slots_are_purged_and_used_once(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    for row in [
        state("s1", OA, 40, 60),
        state("s2", OA, 30, 60),
        state("s3", OA, 20, 60),
        state("s4", OA, 10, 60),
        state("other", "wxotheroa", 50, 60),
        state("expired", "wxotheroa", 90, 10),
    ] {
        OauthStateRow::insert(&mut conn, &row).await.unwrap();
    }
    assert!(
        OauthStateRow::mark_used(&mut conn, &OauthStateId::new("s2"), now())
            .await
            .unwrap()
    );
    assert!(
        !OauthStateRow::mark_used(&mut conn, &OauthStateId::new("s2"), now())
            .await
            .unwrap(),
        "used once"
    );
    assert!(
        !OauthStateRow::mark_used(&mut conn, &OauthStateId::new("nope"), now())
            .await
            .unwrap()
    );
    let used = OauthStateRow::find(&mut conn, &OauthStateId::new("s2"))
        .await
        .unwrap()
        .unwrap();
    assert!(used.used_at.is_some());

    // Slots: a state stored in a taken slot of its app replaces the one there; other slots
    // and other apps' slots stay.
    let app = AppId::new(OA);
    let other = AppId::new("wxotheroa");
    assert_eq!(
        OauthStateRow::count_issued(&mut conn, &app).await.unwrap(),
        1
    );
    assert_eq!(
        OauthStateRow::count_issued(&mut conn, &app).await.unwrap(),
        2
    );
    assert_eq!(
        OauthStateRow::count_issued(&mut conn, &other)
            .await
            .unwrap(),
        1
    );
    let in_slot = |id: &str, app: &str, slot: i64| OauthStateRow {
        slot: Some(slot),
        ..state(id, app, 0, 60)
    };
    for row in [
        in_slot("a0", OA, 0),
        in_slot("a1", OA, 1),
        in_slot("b0", "wxotheroa", 0),
        in_slot("a0-again", OA, 0),
    ] {
        OauthStateRow::store_in_slot(&mut conn, &row).await.unwrap();
    }
    assert!(
        OauthStateRow::find(&mut conn, &OauthStateId::new("a0"))
            .await
            .unwrap()
            .is_none()
    );
    let replaced = OauthStateRow::find(&mut conn, &OauthStateId::new("a0-again"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((replaced.app_id, replaced.slot), (app.clone(), Some(0)));
    for kept in ["a1", "b0", "s1", "s2", "s3", "s4", "other", "expired"] {
        assert!(
            OauthStateRow::find(&mut conn, &OauthStateId::new(kept))
                .await
                .unwrap()
                .is_some(),
            "{kept}"
        );
    }
    // A lowered cap: the slots beyond it go, unslotted states stay.
    assert_eq!(
        OauthStateRow::purge_beyond_slots(&mut conn, 1)
            .await
            .unwrap(),
        1
    );
    assert!(
        OauthStateRow::find(&mut conn, &OauthStateId::new("a1"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(ctx.count("oauth_states").await, 8);

    assert_eq!(
        OauthStateRow::purge_expired(&mut conn, now())
            .await
            .unwrap(),
        1
    );
    assert!(
        OauthStateRow::find(&mut conn, &OauthStateId::new("expired"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        OauthStateRow::purge_expired(&mut conn, now() + Duration::hours(2))
            .await
            .unwrap(),
        7
    );
    assert_eq!(ctx.count("oauth_states").await, 0);
}

async fn login_tickets_are_found_used_once_and_purged(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    let x = seed::user(&mut conn, None, None).await;
    let at = seed::now_us();
    for (hash, ttl) in [("t-live", 2), ("t-old", -1)] {
        LoginTicketRow::insert(
            &mut conn,
            &LoginTicketRow {
                token_hash: hash.into(),
                user_id: x.id.clone(),
                new_user: hash == "t-live",
                code_challenge: Some("challenge".into()),
                created_at: at,
                expires_at: at + Duration::minutes(ttl),
                used_at: None,
                app_id: None,
            },
        )
        .await
        .unwrap();
    }
    let t = LoginTicketRow::find(&mut conn, "t-live")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (t.user_id, t.new_user, t.used_at),
        (x.id.clone(), true, None)
    );
    assert_eq!(t.code_challenge.as_deref(), Some("challenge"));
    assert!(
        LoginTicketRow::find(&mut conn, "nope")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        LoginTicketRow::mark_used(&mut conn, "t-live", at)
            .await
            .unwrap()
    );
    assert!(
        !LoginTicketRow::mark_used(&mut conn, "t-live", at)
            .await
            .unwrap(),
        "once"
    );
    assert_eq!(
        LoginTicketRow::find(&mut conn, "t-live")
            .await
            .unwrap()
            .unwrap()
            .used_at,
        Some(at)
    );
    assert_eq!(
        LoginTicketRow::purge_expired(&mut conn, now())
            .await
            .unwrap(),
        1
    );
    assert!(
        LoginTicketRow::find(&mut conn, "t-old")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(ctx.count("login_tickets").await, 1);
}
