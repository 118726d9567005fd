//! Writing the starting state of a test: rows through the model functions, and sightings
//! through `sighting::record` inside `transaction` (the way every login, sync and webhook event
//! records one).

use chrono::NaiveDateTime;
use wechat_identity::db::models::mini_program_identity::MiniProgramIdentityRow;
use wechat_identity::db::models::now;
use wechat_identity::db::models::official_account_identity::{
    OfficialAccountIdentityRow, OfficialAccountProfile,
};
use wechat_identity::db::models::session::{NewSession, SessionRow};
use wechat_identity::db::models::user::{ProfileFill, UserRow};
use wechat_identity::db::{Conn, transaction};
use wechat_identity::identity::IdentityError;
use wechat_identity::identity::rules::{MergeReason, Resolved};
use wechat_identity::identity::sighting::{self, Seen, Sighting};
use wechat_identity::types::{AppId, IdentityId, OpenId, SessionId, UnionId, UserId};
use wechat_identity::wechat::official_account::OauthScope;

use super::Ctx;

pub fn app(id: &str) -> AppId {
    AppId::new(id)
}

pub fn openid(id: &str) -> OpenId {
    OpenId::new(id)
}

pub fn unionid(id: &str) -> UnionId {
    UnionId::new(id)
}

/// A user row with this unionid and nickname.
pub async fn user(conn: &mut Conn, unionid: Option<&str>, nickname: Option<&str>) -> UserRow {
    let new = UserRow {
        nickname: nickname.map(str::to_owned),
        ..UserRow::new(UserId::generate(), unionid.map(UnionId::new), now())
    };
    UserRow::insert(conn, &new).await.expect("insert user")
}

/// A Mini Program identity row of `user` (not stored yet).
pub fn mp_row(
    user: &UserId,
    app_id: &str,
    open_id: &str,
    union_id: Option<&str>,
) -> MiniProgramIdentityRow {
    MiniProgramIdentityRow {
        id: IdentityId::generate(),
        user_id: user.clone(),
        app_id: app(app_id),
        openid: openid(open_id),
        unionid: union_id.map(unionid),
        session_key: Some("sealed-seed".into()),
        created_at: now(),
        last_login_at: now(),
    }
}

/// A Mini Program identity row of `user`.
pub async fn mp_identity(
    conn: &mut Conn,
    user: &UserId,
    app_id: &str,
    open_id: &str,
    union_id: Option<&str>,
) -> IdentityId {
    let row = mp_row(user, app_id, open_id, union_id);
    MiniProgramIdentityRow::insert(conn, &row)
        .await
        .expect("insert mini program identity");
    row.id
}

/// An Official Account identity row of `user`, a follower never seen logging in (not stored
/// yet).
pub fn oa_row(user: &UserId, open_id: &str, union_id: Option<&str>) -> OfficialAccountIdentityRow {
    OfficialAccountIdentityRow {
        id: IdentityId::generate(),
        user_id: user.clone(),
        app_id: app(super::OA),
        openid: openid(open_id),
        unionid: union_id.map(unionid),
        scope: None,
        subscribed: true,
        subscribed_at: Some(now()),
        nickname: None,
        avatar_url: None,
        sex: None,
        province: None,
        city: None,
        country: None,
        created_at: now(),
        last_login_at: None,
    }
}

/// An Official Account identity row of `user` (a follower never seen logging in).
pub async fn oa_identity(
    conn: &mut Conn,
    user: &UserId,
    open_id: &str,
    union_id: Option<&str>,
) -> IdentityId {
    let row = oa_row(user, open_id, union_id);
    OfficialAccountIdentityRow::insert(conn, &row)
        .await
        .expect("insert official account identity");
    row.id
}

/// A session of `user` in `family` (its own id when `None`) with this token hash; returns its id.
pub async fn session(
    conn: &mut Conn,
    user: &UserId,
    family: Option<&SessionId>,
    token_hash: &str,
) -> Result<SessionId, wechat_identity::db::DbError> {
    let id = SessionId::generate();
    let at = now();
    SessionRow::insert(
        conn,
        &NewSession {
            id: &id,
            user_id: user,
            family: family.unwrap_or(&id),
            token_hash,
            expires_at: at + chrono::Duration::days(30),
            created_at: at,
            user_agent: Some("contract"),
            ip: Some("127.0.0.1"),
            app_id: None,
        },
    )
    .await?;
    Ok(id)
}

/// What kind of sighting [`sight`] records.
#[derive(Clone, Debug)]
pub enum Kind<'a> {
    /// A Mini Program login with this sealed session_key.
    MpLogin(&'a str),
    /// An Official Account login with this scope and `/sns/userinfo` profile.
    OaLogin(OauthScope, Option<&'a OfficialAccountProfile>),
    /// An Official Account follower.
    Follower(bool, Option<NaiveDateTime>),
}

/// Records one sighting of (`app_id`, `open_id`, `union_id`) in a transaction of its own.
pub async fn sight(
    ctx: &Ctx,
    app_id: &str,
    open_id: &str,
    union_id: Option<&str>,
    kind: Kind<'_>,
    fill: Option<&ProfileFill>,
) -> Result<Resolved, IdentityError> {
    let (a, o, u) = (app(app_id), openid(open_id), union_id.map(unionid));
    let seen = match kind {
        Kind::MpLogin(key) => Seen::MiniProgramLogin { session_key: key },
        Kind::OaLogin(scope, profile) => Seen::OfficialAccountLogin { scope, profile },
        Kind::Follower(subscribed, subscribed_at) => Seen::Follower {
            subscribed,
            subscribed_at,
        },
    };
    let reason = match seen {
        Seen::Follower { .. } => MergeReason::FollowerSync,
        _ => MergeReason::Login,
    };
    let s = Sighting {
        app_id: &a,
        openid: &o,
        unionid: u.as_ref(),
        reason,
        profile: fill,
        phone: None,
        seen,
    };
    transaction(
        &ctx.db,
        async |conn: &mut Conn| -> Result<_, IdentityError> { sighting::record(conn, &s).await },
    )
    .await
}

/// A Mini Program login of (`app_id`, `open_id`, `union_id`) with session_key `key`.
pub async fn mp_login(
    ctx: &Ctx,
    app_id: &str,
    open_id: &str,
    union_id: Option<&str>,
    key: &str,
) -> Result<Resolved, IdentityError> {
    sight(ctx, app_id, open_id, union_id, Kind::MpLogin(key), None).await
}

/// Now, to the microsecond (what both backends store), so it compares equal after a round trip.
pub fn now_us() -> NaiveDateTime {
    use chrono::Timelike;
    let at = now();
    at.with_nanosecond(at.nanosecond() / 1000 * 1000).unwrap()
}
