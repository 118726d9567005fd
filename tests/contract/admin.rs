//! Admin merge and unlink through the `Admin` handle of `Identity::access`.

use wechat_identity::db::models::user::{ProfileFill, UserRow};
use wechat_identity::identity::IdentityError;
use wechat_identity::identity::rules::{MergePair, MergeReason};
use wechat_identity::types::{IdentityId, UserId};

use crate::common::seed::{self, unionid};
use crate::common::snapshot::snapshot;
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    admins_merge_in_either_lock_order,
    an_admin_merge_hands_the_unionid_to_the_target,
    admin_merges_that_must_not_happen_are_refused,
    opposite_merges_at_once_end_with_one_merge,
    an_unlink_moves_one_identity_to_a_new_user,
    unlinks_that_must_not_happen_are_refused,
);

async fn merge(ctx: &Ctx, source: &UserId, target: &UserId) -> Result<UserRow, IdentityError> {
    let access = ctx.identity.access(Some(&ctx.admin_auth())).await;
    access
        .admin()?
        .merge_users(MergePair { source, target })
        .await
}

async fn unlink(ctx: &Ctx, id: &IdentityId) -> Result<UserRow, IdentityError> {
    let access = ctx.identity.access(Some(&ctx.admin_auth())).await;
    access.admin()?.unlink_identity(id).await
}

fn is_conflict<T: std::fmt::Debug>(r: &Result<T, IdentityError>) -> bool {
    matches!(r, Err(IdentityError::Conflict(_)))
}

async fn admins_merge_in_either_lock_order(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    let mut users = Vec::new();
    for (n, name) in ["a", "b", "c", "d"].into_iter().enumerate() {
        let u = seed::user(&mut conn, None, (n % 2 == 0).then_some(name)).await;
        seed::mp_identity(&mut conn, &u.id, MP_A, &format!("o-{name}"), None).await;
        seed::session(&mut conn, &u.id, None, &format!("h-{name}"))
            .await
            .unwrap();
        users.push(u.id);
    }
    let [a, b, c, d] = <[UserId; 4]>::try_from(users).unwrap();
    assert!(a < b && c < d);
    // source < target, then source > target.
    let t1 = merge(&ctx, &a, &b).await.unwrap();
    let t2 = merge(&ctx, &d, &c).await.unwrap();
    assert_eq!(
        (t1.id.clone(), t1.nickname.as_deref()),
        (b.clone(), Some("a")),
        "B filled from A"
    );
    assert_eq!(
        (t2.id.clone(), t2.nickname.as_deref()),
        (c.clone(), Some("c")),
        "C keeps its own"
    );
    for (gone, survivor) in [(&a, &b), (&d, &c)] {
        assert_eq!(ctx.user(gone).await.merged_into.as_ref(), Some(survivor));
        assert_eq!(ctx.user(survivor).await.merged_into, None);
    }
    let owners: Vec<UserId> = ctx
        .mp_identities()
        .await
        .into_iter()
        .map(|i| i.user_id)
        .collect();
    assert_eq!(
        owners,
        [b.clone(), b.clone(), c.clone(), c.clone()],
        "by openid o-a..o-d"
    );
    let sessions: Vec<UserId> = ctx
        .sessions()
        .await
        .into_iter()
        .map(|s| s.user_id)
        .collect();
    assert_eq!(sessions, [b.clone(), b.clone(), c.clone(), c.clone()]);
    let events = ctx.merge_events().await;
    let summary: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.survivor_id.clone(),
                e.merged_id.clone(),
                e.reason,
                e.actor.clone(),
            )
        })
        .collect();
    let admin = Some(ADMIN_NAME.to_owned());
    assert_eq!(
        summary,
        [
            (b, a, MergeReason::Admin, admin.clone()),
            (c, d, MergeReason::Admin, admin)
        ]
    );
}

async fn an_admin_merge_hands_the_unionid_to_the_target(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    let s = seed::user(&mut conn, Some("uJo"), None).await;
    seed::mp_identity(&mut conn, &s.id, MP_A, "o-jo", Some("uJo")).await;
    let t = seed::user(&mut conn, None, None).await;
    let fill = ProfileFill {
        phone_number: Some("+8613900000000".into()),
        ..Default::default()
    };
    UserRow::apply_profile(&mut conn, &s.id, &fill)
        .await
        .unwrap();
    let target = merge(&ctx, &s.id, &t.id).await.unwrap();
    assert_eq!(target.unionid, Some(unionid("uJo")));
    assert_eq!(target.phone_number, fill.phone_number);
    let stored = ctx.user(&t.id).await;
    assert_eq!(
        (stored.unionid, stored.phone_number),
        (target.unionid, target.phone_number)
    );
    let tomb = ctx.user(&s.id).await;
    assert_eq!(
        (tomb.merged_into, tomb.unionid),
        (Some(t.id.clone()), Some(unionid("uJo")))
    );
    let live = UserRow::find_live_by_unionid(&mut conn, &unionid("uJo"))
        .await
        .unwrap();
    assert_eq!(live.map(|u| u.id), Some(t.id.clone()));
    // The next sighting of the identity lands on the target, with no second merge.
    let again = seed::mp_login(&ctx, MP_A, "o-jo", Some("uJo"), "k")
        .await
        .unwrap();
    assert_eq!(again.user.id, t.id);
    assert_eq!(ctx.count("merge_events").await, 1);
}

async fn admin_merges_that_must_not_happen_are_refused(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    let p = seed::user(&mut conn, Some("uP"), None).await.id;
    let q = seed::user(&mut conn, Some("uQ"), None).await.id;
    let r = seed::user(&mut conn, None, None).await.id;
    let tomb = seed::user(&mut conn, None, None).await.id;
    UserRow::mark_merged(&mut conn, &tomb, &r).await.unwrap();
    seed::session(&mut conn, &p, None, "h-p").await.unwrap();
    let before = snapshot(&ctx).await;

    assert!(
        is_conflict(&merge(&ctx, &p, &q).await),
        "different unionids"
    );
    assert!(
        is_conflict(&merge(&ctx, &q, &p).await),
        "different unionids"
    );
    assert!(
        is_conflict(&merge(&ctx, &tomb, &p).await),
        "a tombstone source"
    );
    assert!(
        is_conflict(&merge(&ctx, &r, &tomb).await),
        "a tombstone target"
    );
    let same = merge(&ctx, &r, &r).await;
    assert!(matches!(same, Err(IdentityError::BadInput(_))), "{same:?}");
    let nobody = UserId::new("00000000-0000-7000-8000-000000000000");
    let missing = merge(&ctx, &nobody, &r).await;
    assert!(
        matches!(missing, Err(IdentityError::NotFound(_))),
        "{missing:?}"
    );
    // Only admin keys.
    let service = format!("Bearer {SERVICE_KEY}").into_bytes();
    let access = ctx.identity.access(Some(&service)).await;
    assert!(matches!(access.admin().err(), Some(IdentityError::Auth(_))));
    assert!(access.reader().is_ok());
    assert!(matches!(
        ctx.identity.access(None).await.admin().err(),
        Some(IdentityError::Auth(_))
    ));
    assert_eq!(snapshot(&ctx).await, before, "nothing changed");
}

async fn opposite_merges_at_once_end_with_one_merge(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    for round in 0..4 {
        let mut conn = ctx.conn().await;
        let a = seed::user(&mut conn, None, None).await.id;
        let b = seed::user(&mut conn, None, None).await.id;
        seed::mp_identity(&mut conn, &a, MP_A, &format!("o-a{round}"), None).await;
        seed::mp_identity(&mut conn, &b, MP_A, &format!("o-b{round}"), None).await;
        drop(conn);
        let both = async { tokio::join!(merge(&ctx, &a, &b), merge(&ctx, &b, &a)) };
        let (ab, ba) = tokio::time::timeout(std::time::Duration::from_secs(30), both)
            .await
            .expect("no deadlock");
        let (won, lost, survivor, gone) = match (&ab, &ba) {
            (Ok(_), Err(_)) => (&ab, &ba, &b, &a),
            (Err(_), Ok(_)) => (&ba, &ab, &a, &b),
            _ => panic!("exactly one merge succeeds: {ab:?} {ba:?}"),
        };
        assert_eq!(won.as_ref().unwrap().id, *survivor);
        assert!(is_conflict(lost), "the other finds a tombstone: {lost:?}");
        assert_eq!(ctx.user(gone).await.merged_into.as_ref(), Some(survivor));
        assert_eq!(ctx.user(survivor).await.merged_into, None);
        let mut conn = ctx.conn().await;
        let ids =
            wechat_identity::db::models::identity::IdentityRef::count_for_user(&mut conn, survivor);
        assert_eq!(ids.await.unwrap(), 2);
    }
    assert_eq!(ctx.count("merge_events").await, 4, "one per pair");
}

async fn an_unlink_moves_one_identity_to_a_new_user(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    let x = seed::user(&mut conn, Some("uKim"), Some("Kim")).await.id;
    let keep = seed::mp_identity(&mut conn, &x, MP_A, "o-kim", Some("uKim")).await;
    let oa = seed::oa_identity(&mut conn, &x, "o-kim-oa", None).await;
    let s1 = seed::session(&mut conn, &x, None, "h-k1").await.unwrap();
    seed::session(&mut conn, &x, Some(&s1), "h-k2")
        .await
        .unwrap();
    let before_users = ctx.count("users").await;

    let fresh = unlink(&ctx, &oa).await.unwrap();
    assert_ne!(fresh.id, x);
    assert_eq!(
        (fresh.unionid, fresh.nickname, fresh.merged_into),
        (None, None, None)
    );
    assert_eq!(ctx.count("users").await, before_users + 1);
    let oas = ctx.oa_identities().await;
    assert_eq!(
        (oas[0].id.clone(), oas[0].user_id.clone()),
        (oa.clone(), fresh.id.clone())
    );
    let mps = ctx.mp_identities().await;
    assert_eq!(
        (mps[0].id.clone(), mps[0].user_id.clone()),
        (keep, x.clone())
    );
    let old = ctx.user(&x).await;
    assert_eq!(
        (old.merged_into, old.unionid),
        (None, Some(unionid("uKim"))),
        "X stays live"
    );
    assert!(
        ctx.sessions()
            .await
            .iter()
            .all(|s| s.user_id == x && s.revoked_at.is_some()),
        "X's logins end"
    );
    let events = ctx.merge_events().await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (&e.survivor_id, &e.merged_id, e.reason.as_str()),
        (&x, &fresh.id, "unlink")
    );
    assert_eq!(
        (e.actor.as_deref(), e.identity_id.as_ref()),
        (Some(ADMIN_NAME), Some(&oa))
    );
}

async fn unlinks_that_must_not_happen_are_refused(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    let x = seed::user(&mut conn, Some("uLee"), None).await.id;
    let with_u = seed::mp_identity(&mut conn, &x, MP_A, "o-lee", Some("uLee")).await;
    seed::mp_identity(&mut conn, &x, MP_B, "o-lee-b", None).await;
    let y = seed::user(&mut conn, None, None).await.id;
    let only = seed::oa_identity(&mut conn, &y, "o-lone", None).await;
    seed::session(&mut conn, &x, None, "h-lee").await.unwrap();
    let before = snapshot(&ctx).await;
    assert!(
        is_conflict(&unlink(&ctx, &with_u).await),
        "it carries a unionid"
    );
    assert!(
        is_conflict(&unlink(&ctx, &only).await),
        "the user's only identity"
    );
    let missing = unlink(&ctx, &IdentityId::new("no-such-identity")).await;
    assert!(
        matches!(missing, Err(IdentityError::NotFound(_))),
        "{missing:?}"
    );
    assert_eq!(snapshot(&ctx).await, before, "nothing changed");
}
