//! `sessions`: refresh tokens (stored as hashes), rotated within a family.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::lock::for_update;
use crate::db::schema::sessions;
use crate::db::{Conn, DbError};
use crate::types::{AppId, SessionId, UserId};
use crate::with_conn;

/// Whose sessions.
#[derive(Clone, Copy, Debug)]
pub enum Owner<'a> {
    /// The sessions of one login (a rotation family).
    Family(&'a SessionId),
    /// Every session of a user.
    User(&'a UserId),
}

impl<'a> Owner<'a> {
    /// (family, user): one of them set, for `family = $1 OR user_id = $2`.
    fn keys(self) -> (Option<&'a SessionId>, Option<UserId>) {
        match self {
            Owner::Family(family) => (Some(family), None),
            Owner::User(user) => (None, Some(user.clone())),
        }
    }
}

/// A row of `sessions`.
#[derive(Clone, Debug, Queryable, Identifiable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    /// Session id (also the `sid` claim of access tokens).
    pub id: SessionId,
    /// The user (moved to the survivor on a merge).
    pub user_id: UserId,
    /// Rotation family (its first session's id): every refresh of one login shares it.
    pub family: SessionId,
    /// SHA-256 of the refresh token; the token itself is never stored.
    pub token_hash: String,
    /// When the refresh token stops working.
    pub expires_at: NaiveDateTime,
    /// When it was revoked (rotated, logged out, or reuse detected).
    pub revoked_at: Option<NaiveDateTime>,
    /// The session that replaced it on rotation.
    pub replaced_by: Option<SessionId>,
    /// Issue time.
    pub created_at: NaiveDateTime,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// The client's address.
    pub ip: Option<String>,
    /// The app the login came through (none for logins before apps were recorded).
    pub app_id: Option<AppId>,
}

/// A new row of `sessions`.
#[derive(Debug, Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession<'a> {
    /// Session id.
    pub id: &'a SessionId,
    /// The user.
    pub user_id: &'a UserId,
    /// Rotation family.
    pub family: &'a SessionId,
    /// SHA-256 of the refresh token.
    pub token_hash: &'a str,
    /// Expiry.
    pub expires_at: NaiveDateTime,
    /// Now.
    pub created_at: NaiveDateTime,
    /// User agent.
    pub user_agent: Option<&'a str>,
    /// Address.
    pub ip: Option<&'a str>,
    /// The app the login came through.
    pub app_id: Option<&'a AppId>,
}

/// The active (not revoked) sessions of a family or a user, from [`Owner::keys`]:
/// `family = $1 OR user_id = $2` with one of them NULL, one statement for both owners.
#[diesel::dsl::auto_type(no_type_alias)]
fn active<'a>(family: Option<&'a SessionId>, user: Option<UserId>) -> _ {
    sessions::table
        .filter(sessions::revoked_at.is_null())
        .filter(
            sessions::family
                .nullable()
                .eq(family)
                .or(sessions::user_id.nullable().eq(user)),
        )
}

impl SessionRow {
    /// Inserts a session.
    pub async fn insert(conn: &mut Conn, new: &NewSession<'_>) -> Result<(), DbError> {
        super::insert(conn, sessions::table, new).await
    }

    /// The session whose refresh token hashes to `hash`.
    pub async fn find_by_hash(conn: &mut Conn, hash: &str) -> Result<Option<Self>, DbError> {
        let q = sessions::table.filter(sessions::token_hash.eq(hash));
        Ok(with_conn!(conn, c => q.first::<Self>(c).await.optional())?)
    }

    /// The session with this id.
    pub async fn find(conn: &mut Conn, id: &str) -> Result<Option<Self>, DbError> {
        let q = sessions::table.filter(sessions::id.eq(id));
        Ok(with_conn!(conn, c => q.first::<Self>(c).await.optional())?)
    }

    /// Whether the login of session `id` (its family) still has a session that is neither
    /// revoked nor expired at `at`: what an access token naming `id` as its `sid` needs. One
    /// statement; `id` may be the family's id or any of its sessions'.
    pub async fn login_is_live(
        conn: &mut Conn,
        id: &str,
        at: NaiveDateTime,
    ) -> Result<bool, DbError> {
        let named = diesel::alias!(sessions as named);
        let family = named
            .filter(named.field(sessions::id).eq(id))
            .select(named.field(sessions::family))
            .single_value();
        // A disabled user's logins are not live, even one that raced the disabling.
        let q = diesel::select(diesel::dsl::exists(
            sessions::table
                .inner_join(crate::db::schema::users::table)
                .filter(sessions::family.nullable().eq(family))
                .filter(sessions::revoked_at.is_null())
                .filter(sessions::expires_at.gt(at))
                .filter(crate::db::schema::users::disabled_at.is_null()),
        ));
        Ok(with_conn!(conn, c => q.get_result::<bool>(c).await)?)
    }

    /// A user's sessions that are neither revoked nor expired at `at`, newest first, at most
    /// `limit`.
    pub async fn live_of_user(
        conn: &mut Conn,
        user_id: &UserId,
        at: NaiveDateTime,
        limit: i64,
    ) -> Result<Vec<Self>, DbError> {
        let q = sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::expires_at.gt(at))
            .order((sessions::created_at.desc(), sessions::id.desc()))
            .limit(limit);
        Ok(with_conn!(conn, c => q.load::<Self>(c).await)?)
    }

    /// When each of these logins (families) began: their first sessions' creation times.
    pub async fn login_starts(
        conn: &mut Conn,
        families: &[SessionId],
    ) -> Result<Vec<(SessionId, NaiveDateTime)>, DbError> {
        let q = sessions::table
            .filter(sessions::id.eq_any(families))
            .select((sessions::id, sessions::created_at));
        Ok(with_conn!(conn, c => q.load(c).await)?)
    }

    /// Revokes one session if it is still active; returns whether it was.
    pub async fn revoke(
        conn: &mut Conn,
        id: &SessionId,
        replaced_by: Option<&SessionId>,
        at: NaiveDateTime,
    ) -> Result<bool, DbError> {
        let q = diesel::update(
            sessions::table
                .find(id)
                .filter(sessions::revoked_at.is_null()),
        )
        .set((
            sessions::revoked_at.eq(at),
            sessions::replaced_by.eq(replaced_by),
        ));
        Ok(with_conn!(conn, c => q.execute(c).await)? == 1)
    }

    /// Locks the active sessions of a family (or, with `user`, of a user) until the
    /// transaction ends and returns how many it locked (row locks on PostgreSQL, in id order;
    /// SQLite's `BEGIN IMMEDIATE` already serializes everything). On PostgreSQL a `FOR UPDATE`
    /// that had to wait re-checks only the rows it found, never rows inserted meanwhile: to
    /// count a login's sessions, use [`Self::lock_login`].
    pub async fn lock_active(conn: &mut Conn, owner: Owner<'_>) -> Result<usize, DbError> {
        Ok(Self::lock_rows(conn, owner).await?.len())
    }

    /// [`Self::lock_active`]'s work: the locked sessions' families and expiries.
    async fn lock_rows(
        conn: &mut Conn,
        owner: Owner<'_>,
    ) -> Result<Vec<(SessionId, NaiveDateTime)>, DbError> {
        let (family, user) = owner.keys();
        let q = for_update(
            active(family, user)
                .select((sessions::family, sessions::expires_at))
                .order(sessions::id),
        );
        let rows: Vec<(SessionId, NaiveDateTime)> = with_conn!(conn, c => q.load(c).await)?;
        Ok(rows)
    }

    /// Locks a login (a rotation family) until the transaction ends and returns how many live
    /// sessions it has. Every refresh retry and every logout of the login queues here first, on
    /// one row that always exists: the family's first session, whose id is the family's (sessions
    /// are never deleted). Its live sessions are locked next (so a logout of the whole user waits
    /// too), and only then counted, by a statement of its own: on PostgreSQL that one sees what
    /// the transaction before committed, siblings included, so the count is exact.
    pub async fn lock_login(conn: &mut Conn, family: &SessionId) -> Result<usize, DbError> {
        let q = for_update(sessions::table.find(family).select(sessions::id));
        let _: Vec<SessionId> = with_conn!(conn, c => q.load(c).await)?;
        Self::lock_active(conn, Owner::Family(family)).await?;
        let q = active(Some(family), None).count();
        let n: i64 = with_conn!(conn, c => q.get_result(c).await)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Revokes every active session of a family (refresh-token reuse, logout), locking them
    /// first; returns how many sessions were active.
    pub async fn revoke_family(
        conn: &mut Conn,
        family: &SessionId,
        at: NaiveDateTime,
    ) -> Result<usize, DbError> {
        Self::revoke_all(conn, Owner::Family(family), at).await
    }

    /// Revokes every active session of a user, locking them first; returns how many logins
    /// they belonged to.
    pub async fn revoke_user(
        conn: &mut Conn,
        user_id: &UserId,
        at: NaiveDateTime,
    ) -> Result<usize, DbError> {
        Self::revoke_all(conn, Owner::User(user_id), at).await
    }

    /// Revokes every active session of `owner`, locking them (a family: through
    /// [`Self::lock_login`]) first. Returns the sessions revoked for a family, the logins ended
    /// (still live: refresh token unexpired) for a user.
    async fn revoke_all(
        conn: &mut Conn,
        owner: Owner<'_>,
        at: NaiveDateTime,
    ) -> Result<usize, DbError> {
        let logins = match owner {
            Owner::Family(family) => Self::lock_login(conn, family).await?,
            Owner::User(_) => {
                // Logins still live: a session not revoked whose refresh token has not expired.
                let rows = Self::lock_rows(conn, owner).await?;
                let families: std::collections::HashSet<_> = rows
                    .into_iter()
                    .filter(|(_, expires_at)| *expires_at > at)
                    .map(|(family, _)| family)
                    .collect();
                families.len()
            }
        };
        let (family, user) = owner.keys();
        let q = diesel::update(active(family, user)).set(sessions::revoked_at.eq(at));
        let sessions = with_conn!(conn, c => q.execute(c).await)?;
        Ok(match owner {
            Owner::Family(_) => sessions,
            Owner::User(_) => logins,
        })
    }

    /// Moves every session of `from` to `to` (a merge).
    pub async fn move_all(conn: &mut Conn, from: &UserId, to: &UserId) -> Result<usize, DbError> {
        let q = diesel::update(sessions::table.filter(sessions::user_id.eq(from)))
            .set(sessions::user_id.eq(to));
        Ok(with_conn!(conn, c => q.execute(c).await)?)
    }
}
