//! Writing the starting state of a test: rows through the model functions, and sightings
//! through `sighting::record` inside `transaction` (the way every login, sync and webhook event
//! records one).

use chrono::NaiveDateTime;
use wechat_identity::db::models::mini_program_identity::{
    MiniProgramIdentityRow, NewMiniProgramIdentity,
};
use wechat_identity::db::models::now;
use wechat_identity::db::models::official_account_identity::{
    NewOfficialAccountIdentity, OfficialAccountIdentityRow, OfficialAccountProfile,
};
use wechat_identity::db::models::session::{NewSession, SessionRow};
use wechat_identity::db::models::user::{NewUser, ProfileFill, UserRow};
use wechat_identity::db::{Conn, transaction};
use wechat_identity::identity::IdentityError;
use wechat_identity::identity::rules::{MergeReason, Resolved};
use wechat_identity::identity::sighting::{self, Seen, Sighting};
use wechat_identity::types::{AppId, IdentityId, OpenId, UnionId, UserId, new_row_id};
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
    let id = UserId::generate();
    let u = unionid.map(UnionId::new);
    let at = now();
    UserRow::insert(
        conn,
        &NewUser {
            id: &id,
            unionid: u.as_ref(),
            nickname,
            avatar_url: None,
            created_at: at,
            updated_at: at,
        },
    )
    .await
    .expect("insert user")
}

/// A Mini Program identity row of `user`.
pub async fn mp_identity(
    conn: &mut Conn,
    user: &UserId,
    app_id: &str,
    open_id: &str,
    union_id: Option<&str>,
) -> IdentityId {
    let id = IdentityId::generate();
    let (a, o, u) = (app(app_id), openid(open_id), union_id.map(unionid));
    MiniProgramIdentityRow::insert(
        conn,
        &NewMiniProgramIdentity {
            id: &id,
            user_id: user,
            app_id: &a,
            openid: &o,
            unionid: u.as_ref(),
            session_key: Some("sealed-seed"),
            created_at: now(),
            last_login_at: now(),
        },
    )
    .await
    .expect("insert mini program identity");
    id
}

/// An Official Account identity row of `user` (a follower never seen logging in).
pub async fn oa_identity(
    conn: &mut Conn,
    user: &UserId,
    open_id: &str,
    union_id: Option<&str>,
) -> IdentityId {
    let id = IdentityId::generate();
    let (a, o, u) = (app(super::OA), openid(open_id), union_id.map(unionid));
    OfficialAccountIdentityRow::insert(
        conn,
        &NewOfficialAccountIdentity {
            id: &id,
            user_id: user,
            app_id: &a,
            openid: &o,
            unionid: u.as_ref(),
            scope: None,
            subscribed: true,
            subscribed_at: Some(now()),
            created_at: now(),
            last_login_at: None,
        },
    )
    .await
    .expect("insert official account identity");
    id
}

/// A session of `user` in `family` (its own id when `None`) with this token hash; returns its id.
pub async fn session(
    conn: &mut Conn,
    user: &UserId,
    family: Option<&str>,
    token_hash: &str,
) -> Result<String, wechat_identity::db::DbError> {
    let id = new_row_id();
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
