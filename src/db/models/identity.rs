//! What the identity tables (`mini_program_identities`, `official_account_identities`,
//! `website_identities`, `mobile_app_identities`) share: the same key (app_id, openid), owner,
//! unionid and row id. The identity rules work on
//! [`IdentityRef`] and reach either table through these functions, written once; what only one
//! kind has (a session_key, a follow state, a profile) lives in that kind's module.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::lock::for_update;
use crate::db::{Conn, DbError};
use crate::types::{AppId, AppKind, IdentityId, OpenId, UnionId, UserId};
use crate::with_conn;

/// Expands `$body` with `$t` bound to the identity table of `$kind` (both have the columns the
/// body names).
macro_rules! on_table {
    ($kind:expr, $t:ident => $body:expr) => {
        match $kind {
            AppKind::MiniProgram => {
                use crate::db::schema::mini_program_identities as $t;
                $body
            }
            AppKind::OfficialAccount => {
                use crate::db::schema::official_account_identities as $t;
                $body
            }
            AppKind::Website => {
                use crate::db::schema::website_identities as $t;
                $body
            }
            AppKind::MobileApp => {
                use crate::db::schema::mobile_app_identities as $t;
                $body
            }
        }
    };
}

/// The batch reads every identity row type answers, written once: `identity_reads!(Row, t)`
/// adds `find_many`, `for_keys` and `for_users` to `Row`, the row struct of table module `t`.
macro_rules! identity_reads {
    ($row:ident, $t:ident) => {
        impl $row {
            /// The identities with these row ids, in no particular order.
            pub async fn find_many(
                conn: &mut $crate::db::Conn,
                ids: &[$crate::types::IdentityId],
            ) -> Result<Vec<Self>, $crate::db::DbError> {
                use diesel::prelude::*;
                use diesel_async::RunQueryDsl;
                let q = $t::table.filter($t::id.eq_any(ids));
                Ok($crate::with_conn!(conn, c => q.load::<Self>(c).await)?)
            }

            /// The identities among `app_ids` × `openids` (a superset of the (app, openid) pairs
            /// asked for, found through the unique (app_id, openid) index; callers pick their
            /// pairs).
            pub async fn for_keys(
                conn: &mut $crate::db::Conn,
                app_ids: &[$crate::types::AppId],
                openids: &[$crate::types::OpenId],
            ) -> Result<Vec<Self>, $crate::db::DbError> {
                use diesel::prelude::*;
                use diesel_async::RunQueryDsl;
                let q = $t::table
                    .filter($t::app_id.eq_any(app_ids))
                    .filter($t::openid.eq_any(openids));
                Ok($crate::with_conn!(conn, c => q.load::<Self>(c).await)?)
            }

            /// All identities of these users, oldest first.
            pub async fn for_users(
                conn: &mut $crate::db::Conn,
                user_ids: &[$crate::types::UserId],
            ) -> Result<Vec<Self>, $crate::db::DbError> {
                use diesel::prelude::*;
                use diesel_async::RunQueryDsl;
                let q = $t::table
                    .filter($t::user_id.eq_any(user_ids))
                    .order(($t::created_at.asc(), $t::id.asc()));
                Ok($crate::with_conn!(conn, c => q.load::<Self>(c).await)?)
            }
        }
    };
}
pub(crate) use identity_reads;

/// An identity of any kind, as far as the identity rules care.
#[derive(Clone, Debug, PartialEq, Eq, Queryable)]
pub struct IdentityRef {
    /// Row id.
    pub id: IdentityId,
    /// The owning user.
    pub user_id: UserId,
    /// The unionid WeChat reported, if any.
    pub unionid: Option<UnionId>,
}

impl IdentityRef {
    /// The identity of `openid` in the `kind` app `app_id`, locked until the transaction ends,
    /// so a sighting and an unlink of one identity cannot interleave.
    pub async fn find_by_openid(
        conn: &mut Conn,
        kind: AppKind,
        app_id: &AppId,
        openid: &OpenId,
    ) -> Result<Option<Self>, DbError> {
        Ok(on_table!(kind, t => {
            let q = for_update(
                t::table
                    .filter(t::app_id.eq(app_id))
                    .filter(t::openid.eq(openid))
                    .select((t::id, t::user_id, t::unionid))
                    .limit(1),
            );
            with_conn!(conn, c => q.get_result::<Self>(c).await.optional())
        })?)
    }

    /// The identity with this row id in either table, locked like [`Self::find_by_openid`].
    pub async fn find(
        conn: &mut Conn,
        id: &IdentityId,
    ) -> Result<Option<(AppKind, Self)>, DbError> {
        for kind in AppKind::ALL {
            let found = on_table!(kind, t => {
                let q = for_update(t::table.find(id).select((t::id, t::user_id, t::unionid)).limit(1));
                with_conn!(conn, c => q.get_result::<Self>(c).await.optional())
            })?;
            if let Some(found) = found {
                return Ok(Some((kind, found)));
            }
        }
        Ok(None)
    }

    /// The (app, openid) of the `kind` identity with this row id.
    pub async fn key(
        conn: &mut Conn,
        kind: AppKind,
        id: &IdentityId,
    ) -> Result<Option<(AppId, OpenId)>, DbError> {
        Ok(on_table!(kind, t => {
            let q = t::table.find(id).select((t::app_id, t::openid));
            with_conn!(conn, c => q.first::<(AppId, OpenId)>(c).await.optional())
        })?)
    }

    /// Moves one identity to another user (an unlink).
    pub async fn move_one(
        conn: &mut Conn,
        kind: AppKind,
        id: &IdentityId,
        to: &UserId,
    ) -> Result<(), DbError> {
        on_table!(kind, t => {
            let q = diesel::update(t::table.find(id)).set(t::user_id.eq(to));
            with_conn!(conn, c => q.execute(c).await)
        })?;
        Ok(())
    }

    /// Moves every identity of `from`, of both kinds, to `to` (a merge).
    pub async fn move_all(conn: &mut Conn, from: &UserId, to: &UserId) -> Result<(), DbError> {
        for kind in AppKind::ALL {
            on_table!(kind, t => {
                let q = diesel::update(t::table.filter(t::user_id.eq(from))).set(t::user_id.eq(to));
                with_conn!(conn, c => q.execute(c).await)
            })?;
        }
        Ok(())
    }

    /// How many identities, of both kinds, the user has.
    pub async fn count_for_user(conn: &mut Conn, user_id: &UserId) -> Result<i64, DbError> {
        let mut count = 0;
        for kind in AppKind::ALL {
            count += on_table!(kind, t => {
                let q = t::table.filter(t::user_id.eq(user_id)).count();
                with_conn!(conn, c => q.get_result::<i64>(c).await)
            })?;
        }
        Ok(count)
    }
}

/// A person's identity in one app, as far as sending them a message cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addressee {
    /// The owning user.
    pub user_id: UserId,
    /// Their openid there.
    pub openid: OpenId,
    /// Official Accounts: whether they follow it (Mini Programs: always true).
    pub subscribed: bool,
}

impl Addressee {
    /// The identities of these users in the `kind` app `app_id`.
    pub async fn on_app(
        conn: &mut Conn,
        kind: AppKind,
        app_id: &AppId,
        user_ids: &[UserId],
    ) -> Result<Vec<Self>, DbError> {
        let rows: Vec<(UserId, OpenId, bool)> = match kind {
            AppKind::MiniProgram => {
                use crate::db::schema::mini_program_identities as t;
                let q = t::table
                    .filter(t::app_id.eq(app_id))
                    .filter(t::user_id.eq_any(user_ids))
                    .select((t::user_id, t::openid));
                let pairs: Vec<(UserId, OpenId)> = with_conn!(conn, c => q.load(c).await)?;
                pairs.into_iter().map(|(u, o)| (u, o, true)).collect()
            }
            AppKind::OfficialAccount => {
                use crate::db::schema::official_account_identities as t;
                let q = t::table
                    .filter(t::app_id.eq(app_id))
                    .filter(t::user_id.eq_any(user_ids))
                    .select((t::user_id, t::openid, t::subscribed));
                with_conn!(conn, c => q.load(c).await)?
            }
            // Websites and mobile apps receive no WeChat messages.
            AppKind::Website | AppKind::MobileApp => Vec::new(),
        };
        Ok(rows
            .into_iter()
            .map(|(user_id, openid, subscribed)| Addressee {
                user_id,
                openid,
                subscribed,
            })
            .collect())
    }
}
