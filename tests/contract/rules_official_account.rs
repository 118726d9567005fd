//! Official Account sightings: a login stores its scope and the `/sns/userinfo` profile; a
//! follower (a sync or a follow event) makes and updates identities with the follow state,
//! merges like a login does, and is not a login.

use wechat_identity::db::models::merge_event::MergeReason;
use wechat_identity::db::models::official_account_identity::OfficialAccountProfile;
use wechat_identity::db::models::user::ProfileFill;
use wechat_identity::wechat::official_account::OauthScope;

use crate::common::seed::{self, Kind, mp_login, now_us, sight, unionid};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    an_official_account_login_stores_its_scope_and_profile,
    followers_make_and_update_identities_without_logging_in,
    a_follower_sync_that_brings_a_unionid_merges,
);

async fn followers_make_and_update_identities_without_logging_in(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let followed = now_us() - chrono::Duration::days(3);
    let first = sight(
        &ctx,
        OA,
        "o-hal",
        None,
        Kind::Follower(true, Some(followed)),
        None,
    )
    .await
    .unwrap();
    assert!(first.new_user, "a follower nobody knew is a new user");
    let i = ctx.oa_identities().await.remove(0);
    assert_eq!(i.user_id, first.user.id);
    assert_eq!((i.subscribed, i.subscribed_at), (true, Some(followed)));
    assert_eq!(
        (i.last_login_at, i.scope.clone(), i.unionid.clone()),
        (None, None, None)
    );

    // Unfollows: the state follows; still never logged in.
    let unfollowed = sight(&ctx, OA, "o-hal", None, Kind::Follower(false, None), None)
        .await
        .unwrap();
    assert_eq!(
        (unfollowed.user.id.clone(), unfollowed.new_user),
        (first.user.id.clone(), false)
    );
    let i = ctx.oa_identities().await.remove(0);
    assert_eq!(
        (i.subscribed, i.subscribed_at, i.last_login_at),
        (false, None, None)
    );

    // Logs in, then a sync sees them following again (with their unionid now).
    sight(
        &ctx,
        OA,
        "o-hal",
        None,
        Kind::OaLogin(OauthScope::Base, None),
        None,
    )
    .await
    .unwrap();
    let logged_in = ctx.oa_identities().await.remove(0);
    let login_at = logged_in.last_login_at.expect("a login time");
    assert!(
        !logged_in.subscribed,
        "a login leaves the follow state alone"
    );
    let refollowed = now_us();
    let synced = sight(
        &ctx,
        OA,
        "o-hal",
        Some("uHal"),
        Kind::Follower(true, Some(refollowed)),
        None,
    )
    .await
    .unwrap();
    assert_eq!(synced.user.id, first.user.id);
    let i = ctx.oa_identities().await.remove(0);
    assert_eq!((i.subscribed, i.subscribed_at), (true, Some(refollowed)));
    assert_eq!(i.last_login_at, Some(login_at), "a sync is not a login");
    assert_eq!(i.scope.as_deref(), Some("snsapi_base"), "kept");
    assert_eq!(i.unionid, Some(unionid("uHal")));
    assert_eq!(
        ctx.user(&first.user.id).await.unionid,
        Some(unionid("uHal")),
        "X takes U"
    );
    assert_eq!(ctx.count("users").await, 1);
    assert_eq!(
        ctx.count("sessions").await,
        0,
        "a sighting opens no session"
    );
}

async fn a_follower_sync_that_brings_a_unionid_merges(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let x = sight(&ctx, OA, "o-ivy", None, Kind::Follower(true, None), None)
        .await
        .unwrap()
        .user;
    let y = mp_login(&ctx, MP_A, "o-ivy-mp", Some("uIvy"), "k")
        .await
        .unwrap()
        .user;
    let mut conn = ctx.conn().await;
    let s = seed::session(&mut conn, &x.id, None, "h-ivy")
        .await
        .unwrap();
    let synced = sight(
        &ctx,
        OA,
        "o-ivy",
        Some("uIvy"),
        Kind::Follower(true, None),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        (synced.user.id.clone(), synced.new_user),
        (y.id.clone(), false)
    );
    assert_eq!(ctx.user(&x.id).await.merged_into, Some(y.id.clone()));
    let i = ctx.oa_identities().await.remove(0);
    assert_eq!(
        (i.user_id.clone(), i.unionid.clone()),
        (y.id.clone(), Some(unionid("uIvy")))
    );
    assert_eq!(i.last_login_at, None);
    assert_eq!(ctx.sessions().await[0].id, s);
    assert_eq!(ctx.sessions().await[0].user_id, y.id);
    let events = ctx.merge_events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        (&events[0].survivor_id, &events[0].merged_id),
        (&y.id, &x.id)
    );
    assert_eq!(events[0].reason, MergeReason::FollowerSync);
    assert_eq!(events[0].actor.as_deref(), Some(OA));
}

async fn an_official_account_login_stores_its_scope_and_profile(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let profile = OfficialAccountProfile {
        nickname: Some("Gus".into()),
        avatar_url: Some("https://a.example/gus.png".into()),
        sex: Some(1),
        province: Some("Zhejiang".into()),
        city: Some("Hangzhou".into()),
        country: Some("CN".into()),
    };
    let fill = ProfileFill {
        nickname: profile.nickname.clone(),
        avatar_url: profile.avatar_url.clone(),
        phone_number: None,
        phone_number_verified_at: None,
    };
    let kind = Kind::OaLogin(OauthScope::UserInfo, Some(&profile));
    let first = sight(&ctx, OA, "o-gus", Some("uGus"), kind, Some(&fill))
        .await
        .unwrap();
    assert!(first.new_user);
    assert_eq!(first.user.nickname.as_deref(), Some("Gus"));
    let user = ctx.user(&first.user.id).await;
    assert_eq!(
        (user.nickname, user.avatar_url.clone()),
        (Some("Gus".into()), profile.avatar_url.clone())
    );
    assert_eq!(user.unionid, Some(unionid("uGus")));
    let i = ctx.oa_identities().await.remove(0);
    assert_eq!(i.scope.as_deref(), Some("snsapi_userinfo"));
    assert_eq!(
        (i.nickname.as_deref(), i.sex, i.city.as_deref()),
        (Some("Gus"), Some(1), Some("Hangzhou"))
    );
    assert_eq!(
        (i.province.as_deref(), i.country.as_deref()),
        (Some("Zhejiang"), Some("CN"))
    );
    assert!(i.last_login_at.is_some());
    assert_eq!((i.subscribed, i.subscribed_at), (false, None));

    // A silent login later: the scope follows, the profiles stay; a fill never overwrites.
    let other = ProfileFill {
        nickname: Some("Other".into()),
        ..Default::default()
    };
    let again = sight(
        &ctx,
        OA,
        "o-gus",
        None,
        Kind::OaLogin(OauthScope::Base, None),
        Some(&other),
    )
    .await
    .unwrap();
    assert_eq!(again.user.nickname.as_deref(), Some("Gus"));
    let j = ctx.oa_identities().await.remove(0);
    assert_eq!(j.scope.as_deref(), Some("snsapi_base"));
    assert_eq!(
        (j.nickname.as_deref(), j.city.as_deref()),
        (Some("Gus"), Some("Hangzhou"))
    );
    assert!(j.last_login_at > i.last_login_at);
    assert_eq!(
        ctx.user(&first.user.id).await.nickname.as_deref(),
        Some("Gus")
    );
}
