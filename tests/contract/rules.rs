//! The identity rules (DESIGN.md "Identity rules"), each through `sighting::record` inside
//! `transaction`, as a login records it.

use wechat_identity::db::models::user::{ProfileFill, UserRow};
use wechat_identity::identity::IdentityError;
use wechat_identity::wechat::official_account::OauthScope;

use crate::common::seed::{self, Kind, mp_login, sight, unionid};
use crate::common::snapshot::snapshot;
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    a_first_sighting_without_unionid_makes_a_user_and_a_return_finds_it,
    a_first_sighting_with_unionid_makes_a_user_that_other_apps_join,
    a_late_unionid_is_taken_by_the_identitys_user,
    a_unionid_owned_by_another_user_merges_into_that_user,
    a_conflicting_unionid_is_refused_and_nothing_changes,
    a_unionid_once_on_record_is_kept,
);

async fn a_first_sighting_without_unionid_makes_a_user_and_a_return_finds_it(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let first = mp_login(&ctx, MP_A, "o-ann", None, "k1").await.unwrap();
    assert!(first.new_user);
    assert_eq!(first.user.unionid, None);
    let users = ctx.users().await;
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].id, first.user.id);
    let ids = ctx.mp_identities().await;
    assert_eq!(ids.len(), 1);
    let i = &ids[0];
    assert_eq!(
        (i.user_id.clone(), i.unionid.clone()),
        (first.user.id.clone(), None)
    );
    assert_eq!((i.app_id.as_str(), i.openid.as_str()), (MP_A, "o-ann"));
    assert_eq!(i.session_key.as_deref(), Some("k1"));
    assert_eq!(
        (ctx.count("sessions").await, ctx.count("merge_events").await),
        (0, 0)
    );

    let again = mp_login(&ctx, MP_A, "o-ann", None, "k2").await.unwrap();
    assert!(!again.new_user);
    assert_eq!(again.user.id, first.user.id);
    assert_eq!(ctx.count("users").await, 1);
    let after = ctx.mp_identities().await.remove(0);
    assert_eq!(
        (after.id.clone(), after.created_at),
        (i.id.clone(), i.created_at)
    );
    assert_eq!(
        after.session_key.as_deref(),
        Some("k2"),
        "the new session_key"
    );
    assert!(
        after.last_login_at > i.last_login_at,
        "the login time moves"
    );
    // The same openid in another Mini Program is another person as far as we know.
    let other = mp_login(&ctx, MP_B, "o-ann", None, "k3").await.unwrap();
    assert!(other.new_user);
    assert_ne!(other.user.id, first.user.id);
    assert_eq!(ctx.count("users").await, 2);
}

async fn a_first_sighting_with_unionid_makes_a_user_that_other_apps_join(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let first = mp_login(&ctx, MP_A, "o-a", Some("uBen"), "k")
        .await
        .unwrap();
    assert!(first.new_user);
    assert_eq!(first.user.unionid, Some(unionid("uBen")));
    let second = mp_login(&ctx, MP_B, "o-b", Some("uBen"), "k")
        .await
        .unwrap();
    assert!(!second.new_user);
    assert_eq!(second.user.id, first.user.id);
    let oa = sight(
        &ctx,
        OA,
        "o-oa",
        Some("uBen"),
        Kind::OaLogin(OauthScope::Base, None),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        (oa.user.id.clone(), oa.new_user),
        (first.user.id.clone(), false)
    );
    let users = ctx.users().await;
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].unionid, Some(unionid("uBen")));
    let mps = ctx.mp_identities().await;
    assert_eq!(mps.len(), 2);
    assert!(
        mps.iter()
            .all(|i| i.user_id == first.user.id && i.unionid == Some(unionid("uBen")))
    );
    let oas = ctx.oa_identities().await;
    assert_eq!(oas.len(), 1);
    assert_eq!(
        (oas[0].user_id.clone(), oas[0].unionid.clone()),
        (first.user.id.clone(), Some(unionid("uBen")))
    );
    assert_eq!(oas[0].scope.as_deref(), Some("snsapi_base"));
    assert!(oas[0].last_login_at.is_some());
    assert!(!oas[0].subscribed, "a login says nothing about following");
    assert_eq!(ctx.count("merge_events").await, 0);
}

async fn a_late_unionid_is_taken_by_the_identitys_user(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let x = mp_login(&ctx, MP_A, "o-cat", None, "k").await.unwrap().user;
    let late = mp_login(&ctx, MP_A, "o-cat", Some("uCat"), "k")
        .await
        .unwrap();
    assert_eq!((late.user.id.clone(), late.new_user), (x.id.clone(), false));
    assert_eq!(late.user.unionid, Some(unionid("uCat")));
    let users = ctx.users().await;
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].unionid, Some(unionid("uCat")));
    assert!(users[0].updated_at > x.updated_at);
    assert_eq!(ctx.mp_identities().await[0].unionid, Some(unionid("uCat")));
    assert_eq!(ctx.count("merge_events").await, 0);
}

async fn a_unionid_owned_by_another_user_merges_into_that_user(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    // X: known without a unionid, with a profile, another identity, sessions, and an older
    // tombstone Z merged into it.
    let x = mp_login(&ctx, MP_A, "o-dan", None, "k").await.unwrap().user;
    let mut conn = ctx.conn().await;
    let x_profile = ProfileFill {
        nickname: Some("Dan X".into()),
        avatar_url: Some("https://a.example/dan.png".into()),
        phone_number: Some("+8613800000000".into()),
        phone_number_verified_at: None,
    };
    UserRow::apply_profile(&mut conn, &x.id, &x_profile)
        .await
        .unwrap();
    let x_oa = seed::oa_identity(&mut conn, &x.id, "o-dan-oa", None).await;
    let s1 = seed::session(&mut conn, &x.id, None, "hx1").await.unwrap();
    let s2 = seed::session(&mut conn, &x.id, None, "hx2").await.unwrap();
    let z = seed::user(&mut conn, None, None).await;
    UserRow::mark_merged(&mut conn, &z.id, &x.id).await.unwrap();
    // Y: owns U through another app, with a nickname of its own and nothing else.
    let y = mp_login(&ctx, MP_B, "o-dan-b", Some("uDan"), "k")
        .await
        .unwrap()
        .user;
    let y_fill = ProfileFill {
        nickname: Some("Dan Y".into()),
        ..Default::default()
    };
    UserRow::apply_profile(&mut conn, &y.id, &y_fill)
        .await
        .unwrap();
    let y_session = seed::session(&mut conn, &y.id, None, "hy").await.unwrap();

    let merged = mp_login(&ctx, MP_A, "o-dan", Some("uDan"), "k2")
        .await
        .unwrap();
    assert_eq!(
        (merged.user.id.clone(), merged.new_user),
        (y.id.clone(), false)
    );

    let x_after = ctx.user(&x.id).await;
    assert_eq!(
        x_after.merged_into,
        Some(y.id.clone()),
        "X is a tombstone of Y"
    );
    assert_eq!(x_after.unionid, None);
    assert_eq!(
        ctx.user(&z.id).await.merged_into,
        Some(y.id.clone()),
        "older tombstones re-pointed"
    );
    let y_after = ctx.user(&y.id).await;
    assert_eq!(y_after.merged_into, None);
    assert_eq!(y_after.unionid, Some(unionid("uDan")));
    assert_eq!(
        y_after.nickname.as_deref(),
        Some("Dan Y"),
        "Y's own nickname is kept"
    );
    assert_eq!(y_after.avatar_url, x_profile.avatar_url, "filled from X");
    assert_eq!(
        y_after.phone_number, x_profile.phone_number,
        "filled from X"
    );
    assert_eq!(
        merged.user.avatar_url, y_after.avatar_url,
        "the returned user is as stored"
    );

    let mps = ctx.mp_identities().await;
    assert_eq!(mps.len(), 2);
    assert!(
        mps.iter()
            .all(|i| i.user_id == y.id && i.unionid == Some(unionid("uDan")))
    );
    assert_eq!(
        mps.iter()
            .find(|i| i.openid.as_str() == "o-dan")
            .unwrap()
            .session_key
            .as_deref(),
        Some("k2")
    );
    let oas = ctx.oa_identities().await;
    assert_eq!(
        (oas[0].id.clone(), oas[0].user_id.clone()),
        (x_oa, y.id.clone()),
        "X's other identities move"
    );
    assert_eq!(oas[0].unionid, None, "moved as it was");
    let sessions = ctx.sessions().await;
    assert_eq!(
        sessions
            .iter()
            .map(|s| (s.id.clone(), s.user_id.clone(), s.revoked_at.is_some()))
            .collect::<Vec<_>>(),
        [
            (s1, y.id.clone(), false),
            (s2, y.id.clone(), false),
            (y_session, y.id.clone(), false)
        ],
        "X's sessions move to Y and keep working"
    );
    let events = ctx.merge_events().await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!((&e.survivor_id, &e.merged_id), (&y.id, &x.id));
    assert_eq!(
        (e.reason.as_str(), e.actor.as_deref()),
        ("login", Some(MP_A)),
        "actor = the app"
    );
    assert_eq!(e.identity_id, None);
    assert_eq!(ctx.count("users").await, 3, "tombstones stay");
}

async fn a_conflicting_unionid_is_refused_and_nothing_changes(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    mp_login(&ctx, MP_A, "o-eve", Some("uEve1"), "k")
        .await
        .unwrap();
    sight(
        &ctx,
        OA,
        "o-eve-oa",
        Some("uEve1"),
        Kind::OaLogin(OauthScope::Base, None),
        None,
    )
    .await
    .unwrap();
    // The user holds uEve1; this identity has no unionid yet.
    let x = ctx.users().await.remove(0);
    seed::mp_identity(&mut ctx.conn().await, &x.id, MP_B, "o-eve-b", None).await;
    let mut conn = ctx.conn().await;
    seed::session(&mut conn, &x.id, None, "h-eve")
        .await
        .unwrap();
    let before = snapshot(&ctx).await;
    let refused = |r: Result<_, IdentityError>| {
        assert!(
            matches!(r, Err(IdentityError::Conflict(_))),
            "CONFLICT, got {r:?}"
        );
    };
    // The identity's own unionid differs.
    refused(mp_login(&ctx, MP_A, "o-eve", Some("uEve2"), "k-new").await);
    refused(
        sight(
            &ctx,
            OA,
            "o-eve-oa",
            Some("uEve2"),
            Kind::OaLogin(OauthScope::UserInfo, None),
            None,
        )
        .await,
    );
    refused(
        sight(
            &ctx,
            OA,
            "o-eve-oa",
            Some("uEve2"),
            Kind::Follower(false, None),
            None,
        )
        .await,
    );
    // The identity has none, its user has another.
    refused(mp_login(&ctx, MP_B, "o-eve-b", Some("uEve2"), "k-new").await);
    assert_eq!(
        snapshot(&ctx).await,
        before,
        "nothing changed, not even a timestamp"
    );
    assert!(
        ctx.users()
            .await
            .iter()
            .all(|u| u.unionid == Some(unionid("uEve1")))
    );
}

async fn a_unionid_once_on_record_is_kept(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let x = mp_login(&ctx, MP_A, "o-fay", Some("uFay"), "k")
        .await
        .unwrap()
        .user;
    let back = mp_login(&ctx, MP_A, "o-fay", None, "k2").await.unwrap();
    assert_eq!((back.user.id.clone(), back.new_user), (x.id.clone(), false));
    let i = ctx.mp_identities().await.remove(0);
    assert_eq!(
        i.unionid,
        Some(unionid("uFay")),
        "kept though WeChat sent none"
    );
    assert_eq!(i.session_key.as_deref(), Some("k2"));
    assert_eq!(ctx.user(&x.id).await.unionid, Some(unionid("uFay")));
    sight(
        &ctx,
        OA,
        "o-fay-oa",
        Some("uFay"),
        Kind::Follower(true, None),
        None,
    )
    .await
    .unwrap();
    sight(
        &ctx,
        OA,
        "o-fay-oa",
        None,
        Kind::OaLogin(OauthScope::Base, None),
        None,
    )
    .await
    .unwrap();
    assert_eq!(ctx.oa_identities().await[0].unionid, Some(unionid("uFay")));
    assert_eq!(ctx.count("users").await, 1);
}
