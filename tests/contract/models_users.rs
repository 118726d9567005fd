//! `users`: insert, find, lock, page, unionid and profile writes, tombstones.

use wechat_identity::db::models::user::{ProfileFill, UserListFilter, UserRow};
use wechat_identity::db::{Conn, DbError, Race, transaction};
use wechat_identity::types::{UnionId, UserId};

use crate::common::seed::{self, unionid};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    users_are_inserted_found_locked_and_paged,
    unionid_and_profile_writes_never_overwrite,
    find_live_follows_tombstones_and_mark_merged_repoints_older_ones,
    a_second_live_user_with_one_unionid_is_a_named_race,
);

fn ids(rows: &[UserRow]) -> Vec<UserId> {
    rows.iter().map(|u| u.id.clone()).collect()
}

async fn users_are_inserted_found_locked_and_paged(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    let a = seed::user(&mut conn, Some("uA"), Some("Ann")).await;
    let b = seed::user(&mut conn, None, None).await;
    let c = seed::user(&mut conn, Some("uC"), None).await;
    let d = seed::user(&mut conn, None, None).await;
    assert_eq!(a.unionid, Some(unionid("uA")));
    assert_eq!(a.nickname.as_deref(), Some("Ann"));
    assert!(a.merged_into.is_none());
    assert_eq!(a.created_at, a.updated_at);
    assert!(
        a.id < b.id && b.id < c.id && c.id < d.id,
        "ids sort by creation"
    );

    let found = UserRow::find(&mut conn, &b.id).await.unwrap().unwrap();
    assert_eq!((found.id, found.unionid), (b.id.clone(), None));
    assert!(
        UserRow::find(&mut conn, &UserId::new("nobody"))
            .await
            .unwrap()
            .is_none()
    );
    let mut many = ids(
        &UserRow::find_many(&mut conn, &[c.id.clone(), a.id.clone()])
            .await
            .unwrap(),
    );
    many.sort();
    assert_eq!(many, [a.id.clone(), c.id.clone()]);
    let by_u = UserRow::find_live_by_unionid(&mut conn, &unionid("uC"))
        .await
        .unwrap();
    assert_eq!(by_u.map(|u| u.id), Some(c.id.clone()));
    assert!(
        UserRow::find_live_by_unionid(&mut conn, &unionid("uX"))
            .await
            .unwrap()
            .is_none()
    );
    drop(conn);

    // Locked inside a transaction: the row as it is.
    let locked = transaction(&ctx.db, async |conn: &mut Conn| -> Result<_, DbError> {
        UserRow::find_for_update(conn, &c.id).await
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(locked.unionid, Some(unionid("uC")));

    // Turn d into a tombstone of c, then page.
    let mut conn = ctx.conn().await;
    UserRow::mark_merged(&mut conn, &d.id, &c.id).await.unwrap();
    let live = UserListFilter::default();
    let all = UserListFilter {
        identity_on: Vec::new(),
        include_merged: true,
        has_unionid: None,
        ..UserListFilter::default()
    };
    let page = |after: Option<UserId>, limit, filter: UserListFilter| {
        let db = ctx.db.clone();
        async move {
            let mut conn = db.conn().await.unwrap();
            ids(&UserRow::page(&mut conn, after.as_ref(), limit, &filter)
                .await
                .unwrap())
        }
    };
    assert_eq!(
        page(None, 10, live.clone()).await,
        [a.id.clone(), b.id.clone(), c.id.clone()]
    );
    assert_eq!(
        page(None, 10, all.clone()).await,
        ids(&[a.clone(), b.clone(), c.clone(), d.clone()])
    );
    assert_eq!(
        page(None, 2, live.clone()).await,
        [a.id.clone(), b.id.clone()]
    );
    assert_eq!(
        page(Some(b.id.clone()), 2, all.clone()).await,
        [c.id.clone(), d.id.clone()]
    );
    assert_eq!(page(Some(d.id.clone()), 2, all).await, Vec::<UserId>::new());
    let with_u = UserListFilter {
        identity_on: Vec::new(),
        include_merged: false,
        has_unionid: Some(true),
        ..UserListFilter::default()
    };
    assert_eq!(page(None, 10, with_u).await, [a.id.clone(), c.id.clone()]);
    let without_u = UserListFilter {
        identity_on: Vec::new(),
        include_merged: true,
        has_unionid: Some(false),
        ..UserListFilter::default()
    };
    assert_eq!(
        page(None, 10, without_u).await,
        [b.id.clone(), d.id.clone()]
    );
}

async fn unionid_and_profile_writes_never_overwrite(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    let x = seed::user(&mut conn, None, Some("Xavier")).await;
    UserRow::set_unionid(&mut conn, &x.id, &unionid("u1"))
        .await
        .unwrap();
    UserRow::set_unionid(&mut conn, &x.id, &unionid("u2"))
        .await
        .unwrap();
    let after = ctx.user(&x.id).await;
    assert_eq!(
        after.unionid,
        Some(unionid("u1")),
        "a unionid once set stays"
    );
    assert!(after.updated_at >= x.updated_at);

    let fill = ProfileFill {
        nickname: Some("Other".into()),
        avatar_url: Some("https://a.example/x.png".into()),
        phone_number: Some(String::new()),
        phone_number_verified_at: None,
    };
    let change = after.filled(&fill).expect("the avatar is empty");
    assert_eq!(change.nickname, None, "a set nickname is kept");
    assert_eq!(
        change.avatar_url.as_deref(),
        Some("https://a.example/x.png")
    );
    assert_eq!(change.phone_number, None, "an empty value fills nothing");
    UserRow::apply_profile(&mut conn, &x.id, &change)
        .await
        .unwrap();
    let filled = ctx.user(&x.id).await;
    assert_eq!(filled.nickname.as_deref(), Some("Xavier"));
    assert_eq!(
        filled.avatar_url.as_deref(),
        Some("https://a.example/x.png")
    );
    assert_eq!(filled.phone_number, None);
    assert!(filled.filled(&fill).is_none(), "nothing left to fill");
}

async fn find_live_follows_tombstones_and_mark_merged_repoints_older_ones(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    let z = seed::user(&mut conn, Some("uZ"), None).await;
    let x = seed::user(&mut conn, None, None).await;
    let y = seed::user(&mut conn, None, None).await;
    UserRow::mark_merged(&mut conn, &z.id, &x.id).await.unwrap();
    assert_eq!(ctx.user(&z.id).await.merged_into, Some(x.id.clone()));
    let live = UserRow::find_live(&mut conn, &z.id).await.unwrap().unwrap();
    assert_eq!(live.id, x.id);

    // X merged into Y: Z, merged into X before, now points at Y too (one hop to a live user).
    UserRow::mark_merged(&mut conn, &x.id, &y.id).await.unwrap();
    assert_eq!(ctx.user(&x.id).await.merged_into, Some(y.id.clone()));
    assert_eq!(ctx.user(&z.id).await.merged_into, Some(y.id.clone()));
    assert!(ctx.user(&y.id).await.merged_into.is_none());
    for id in [&x.id, &y.id, &z.id] {
        let live = UserRow::find_live(&mut conn, id).await.unwrap().unwrap();
        assert_eq!(live.id, y.id, "the live user behind {id}");
    }
    assert!(
        UserRow::find_live(&mut conn, &UserId::new("nobody"))
            .await
            .unwrap()
            .is_none()
    );
    // The tombstone keeps its unionid for history, but holds it no more.
    assert_eq!(ctx.user(&z.id).await.unionid, Some(unionid("uZ")));
    assert!(
        UserRow::find_live_by_unionid(&mut conn, &unionid("uZ"))
            .await
            .unwrap()
            .is_none()
    );
    let taker = seed::user(&mut conn, Some("uZ"), None).await;
    let found = UserRow::find_live_by_unionid(&mut conn, &unionid("uZ"))
        .await
        .unwrap();
    assert_eq!(found.map(|u| u.id), Some(taker.id));
}

async fn a_second_live_user_with_one_unionid_is_a_named_race(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    seed::user(&mut conn, Some("uR"), None).await;
    let err = wechat_identity::db::models::user::UserRow::insert(
        &mut conn,
        &wechat_identity::db::models::user::UserRow::new(
            UserId::generate(),
            Some(UnionId::new("uR")),
            wechat_identity::db::models::now(),
        ),
    )
    .await
    .expect_err("one live user per unionid");
    assert_eq!(err.race(), Some(Race::Constraint("users_live_unionid")));
    assert_eq!(ctx.count("users").await, 1);
}
