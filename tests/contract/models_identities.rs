//! Both identity tables: the shared functions of `IdentityRef` and what each kind's module adds.

use wechat_identity::db::models::identity::IdentityRef;
use wechat_identity::db::models::mini_program_identity::{
    MiniProgramIdentityRow, MiniProgramLogin,
};
use wechat_identity::db::models::official_account_identity::{
    OfficialAccountIdentityRow, OfficialAccountProfile, OfficialAccountSeen,
};
use wechat_identity::db::{Conn, DbError, Race, transaction};
use wechat_identity::types::{AppKind, IdentityId};

use crate::common::seed::{self, app, openid, unionid};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    identities_of_both_kinds_are_found_locked_moved_and_counted,
    a_second_identity_with_one_key_is_a_named_race,
    kind_modules_record_logins_sightings_and_profiles,
);

async fn identities_of_both_kinds_are_found_locked_moved_and_counted(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    let x = seed::user(&mut conn, Some("uX"), None).await;
    let y = seed::user(&mut conn, None, None).await;
    let mp = seed::mp_identity(&mut conn, &x.id, MP_A, "o-mp-x", Some("uX")).await;
    let mp2 = seed::mp_identity(&mut conn, &x.id, MP_B, "o-mp2-x", None).await;
    let oa = seed::oa_identity(&mut conn, &x.id, "o-oa-x", None).await;
    drop(conn);

    // Found by key, per kind, locked in a transaction; the other kind's table has no such key.
    let (found, other_kind, by_id, missing) =
        transaction(&ctx.db, async |conn: &mut Conn| -> Result<_, DbError> {
            let found = IdentityRef::find_by_openid(
                conn,
                AppKind::MiniProgram,
                &app(MP_A),
                &openid("o-mp-x"),
            )
            .await?;
            let other = IdentityRef::find_by_openid(
                conn,
                AppKind::OfficialAccount,
                &app(MP_A),
                &openid("o-mp-x"),
            )
            .await?;
            let by_id = IdentityRef::find(conn, &oa).await?;
            let missing = IdentityRef::find(conn, &IdentityId::new("nope")).await?;
            Ok((found, other, by_id, missing))
        })
        .await
        .unwrap();
    assert_eq!(
        found,
        Some(IdentityRef {
            id: mp.clone(),
            user_id: x.id.clone(),
            unionid: Some(unionid("uX")),
        })
    );
    assert_eq!(other_kind, None);
    let (kind, by_id) = by_id.expect("the OA identity by id");
    assert_eq!(kind, AppKind::OfficialAccount);
    assert_eq!(
        (by_id.id, by_id.user_id, by_id.unionid),
        (oa.clone(), x.id.clone(), None)
    );
    assert_eq!(missing, None);

    let mut conn = ctx.conn().await;
    let (k, r) = IdentityRef::find(&mut conn, &mp2).await.unwrap().unwrap();
    assert_eq!((k, r.user_id), (AppKind::MiniProgram, x.id.clone()));
    assert_eq!(
        IdentityRef::count_for_user(&mut conn, &x.id).await.unwrap(),
        3
    );
    assert_eq!(
        IdentityRef::count_for_user(&mut conn, &y.id).await.unwrap(),
        0
    );

    // One moves (an unlink), then all the rest (a merge), of both kinds.
    IdentityRef::move_one(&mut conn, AppKind::MiniProgram, &mp2, &y.id)
        .await
        .unwrap();
    assert_eq!(
        IdentityRef::count_for_user(&mut conn, &x.id).await.unwrap(),
        2
    );
    assert_eq!(
        IdentityRef::count_for_user(&mut conn, &y.id).await.unwrap(),
        1
    );
    let owners: Vec<_> = ctx
        .mp_identities()
        .await
        .into_iter()
        .map(|i| (i.id, i.user_id))
        .collect();
    assert_eq!(
        owners,
        [(mp.clone(), x.id.clone()), (mp2.clone(), y.id.clone())]
    );
    IdentityRef::move_all(&mut conn, &x.id, &y.id)
        .await
        .unwrap();
    assert_eq!(
        IdentityRef::count_for_user(&mut conn, &x.id).await.unwrap(),
        0
    );
    assert_eq!(
        IdentityRef::count_for_user(&mut conn, &y.id).await.unwrap(),
        3
    );
    assert!(ctx.mp_identities().await.iter().all(|i| i.user_id == y.id));
    assert!(ctx.oa_identities().await.iter().all(|i| i.user_id == y.id));

    // The kinds' readers, oldest first.
    let mps = MiniProgramIdentityRow::for_users(&mut conn, std::slice::from_ref(&y.id))
        .await
        .unwrap();
    assert_eq!(
        mps.iter().map(|i| i.id.clone()).collect::<Vec<_>>(),
        [mp, mp2]
    );
    assert_eq!(
        mps[0].unionid,
        Some(unionid("uX")),
        "a move keeps the unionid"
    );
    let oas = OfficialAccountIdentityRow::for_users(&mut conn, &[x.id.clone(), y.id.clone()])
        .await
        .unwrap();
    assert_eq!(oas.iter().map(|i| i.id.clone()).collect::<Vec<_>>(), [oa]);
}

async fn a_second_identity_with_one_key_is_a_named_race(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    let x = seed::user(&mut conn, None, None).await;
    seed::mp_identity(&mut conn, &x.id, MP_A, "o-dup", None).await;
    seed::oa_identity(&mut conn, &x.id, "o-dup", None).await;
    // Same openid in another app, or in the other table: different keys.
    seed::mp_identity(&mut conn, &x.id, MP_B, "o-dup", None).await;
    let err = MiniProgramIdentityRow::insert(&mut conn, &seed::mp_row(&x.id, MP_A, "o-dup", None))
        .await
        .expect_err("duplicate key");
    assert_eq!(
        err.race(),
        Some(Race::Constraint(
            "mini_program_identities_app_id_openid_key"
        ))
    );
    let err = OfficialAccountIdentityRow::insert(
        &mut conn,
        &OfficialAccountIdentityRow {
            subscribed: false,
            subscribed_at: None,
            ..seed::oa_row(&x.id, "o-dup", None)
        },
    )
    .await
    .expect_err("duplicate key");
    assert_eq!(
        err.race(),
        Some(Race::Constraint(
            "official_account_identities_app_id_openid_key"
        ))
    );
    assert_eq!(ctx.count("mini_program_identities").await, 2);
    assert_eq!(ctx.count("official_account_identities").await, 1);
}

async fn kind_modules_record_logins_sightings_and_profiles(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    let x = seed::user(&mut conn, None, None).await;
    let y = seed::user(&mut conn, None, None).await;
    let mp = seed::mp_identity(&mut conn, &x.id, MP_A, "o-k", Some("uK")).await;
    let before = ctx.mp_identities().await.remove(0);
    let at = seed::now_us();
    let u = unionid("uK");
    let login = MiniProgramLogin {
        user_id: &y.id,
        unionid: Some(&u),
        session_key: "sealed-2",
        last_login_at: at,
    };
    MiniProgramIdentityRow::record_login(&mut conn, &mp, &login)
        .await
        .unwrap();
    let after = ctx.mp_identities().await.remove(0);
    assert_eq!(after.user_id, y.id);
    assert_eq!(after.unionid, Some(u.clone()));
    assert_eq!(after.session_key.as_deref(), Some("sealed-2"));
    assert_eq!(after.last_login_at, at);
    assert_eq!(after.created_at, before.created_at);

    // OA: a follower sighting sets only what it tells; None leaves a column alone.
    let oa = seed::oa_identity(&mut conn, &x.id, "o-k-oa", None).await;
    let seeded = ctx.oa_identities().await.remove(0);
    assert!(seeded.subscribed && seeded.subscribed_at.is_some());
    let seen = OfficialAccountSeen {
        user_id: &x.id,
        unionid: Some(&u),
        scope: Some("snsapi_base"),
        last_login_at: Some(at),
        subscribed: None,
        subscribed_at: None,
    };
    OfficialAccountIdentityRow::record_seen(&mut conn, &oa, &seen)
        .await
        .unwrap();
    let row = ctx.oa_identities().await.remove(0);
    assert_eq!(row.unionid, Some(u.clone()));
    assert_eq!(row.scope.as_deref(), Some("snsapi_base"));
    assert_eq!(row.last_login_at, Some(at));
    assert_eq!(
        (row.subscribed, row.subscribed_at),
        (true, seeded.subscribed_at)
    );
    let unfollow = OfficialAccountSeen {
        user_id: &x.id,
        unionid: Some(&u),
        scope: None,
        last_login_at: None,
        subscribed: Some(false),
        subscribed_at: Some(None),
    };
    OfficialAccountIdentityRow::record_seen(&mut conn, &oa, &unfollow)
        .await
        .unwrap();
    let row = ctx.oa_identities().await.remove(0);
    assert_eq!((row.subscribed, row.subscribed_at), (false, None));
    assert_eq!(row.scope.as_deref(), Some("snsapi_base"), "kept");
    assert_eq!(row.last_login_at, Some(at), "kept");

    let profile = OfficialAccountProfile {
        nickname: Some("Kay".into()),
        city: Some("Hangzhou".into()),
        sex: Some(2),
        ..Default::default()
    };
    OfficialAccountIdentityRow::set_profile(&mut conn, &oa, &profile)
        .await
        .unwrap();
    let more = OfficialAccountProfile {
        country: Some("CN".into()),
        ..Default::default()
    };
    OfficialAccountIdentityRow::set_profile(&mut conn, &oa, &more)
        .await
        .unwrap();
    let row = ctx.oa_identities().await.remove(0);
    assert_eq!(row.nickname.as_deref(), Some("Kay"));
    assert_eq!(row.city.as_deref(), Some("Hangzhou"));
    assert_eq!(row.country.as_deref(), Some("CN"));
    assert_eq!(row.sex, Some(2));
    assert_eq!((row.avatar_url, row.province), (None, None));
}
