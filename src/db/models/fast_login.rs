//! PostgreSQL only: the statement behind the identity layer's fast path for a returning user's
//! login, Mini Program or Official Account (`identity::fast_path`, which says when it applies
//! and how it is tested to decide like the full path). It records the login and opens the
//! session only when the identity exists, its unionid agrees with WeChat's, and its user is live
//! with the same unionid (and, for an Official Account, the login's state is still unused, which
//! it spends); otherwise it changes nothing and returns no row.

use chrono::NaiveDateTime;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Nullable, Text, Timestamp, Untyped};
use diesel_async::RunQueryDsl;

use super::user::UserRow;
use crate::db::{Conn, DbError};
use crate::types::{AppId, OauthStateId, OpenId, SessionId, UnionId};

/// What a login writes on its identity, by kind.
#[derive(Clone, Copy, Debug)]
pub enum FastSeen<'a> {
    /// A Mini Program login: the new sealed session_key.
    MiniProgram {
        /// The sealed session_key.
        session_key: &'a str,
    },
    /// An Official Account web authorization: its scope, and the state it spends.
    OfficialAccount {
        /// `snsapi_base` or `snsapi_userinfo`.
        scope: &'a str,
        /// The `oauth_states` row the login uses up.
        state_id: &'a OauthStateId,
    },
}

/// The values of one returning-user login.
pub struct FastLogin<'a> {
    /// Now.
    pub at: NaiveDateTime,
    /// What the login writes on the identity.
    pub seen: FastSeen<'a>,
    /// The app.
    pub app_id: &'a AppId,
    /// The openid.
    pub openid: &'a OpenId,
    /// The unionid WeChat sent, if any.
    pub unionid: Option<&'a UnionId>,
    /// The new session's id (also its family).
    pub session_id: &'a SessionId,
    /// SHA-256 of the refresh token.
    pub token_hash: &'a str,
    /// Refresh token expiry.
    pub expires_at: NaiveDateTime,
    /// User agent.
    pub user_agent: Option<&'a str>,
    /// Address.
    pub ip: Option<&'a str>,
}

impl QueryId for FastLogin<'_> {
    type QueryId = ();
    // The SQL text is constant, so the prepared statement is cached by its text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for FastLogin<'_> {
    type SqlType = Untyped;
}

impl QueryFragment<Pg> for FastLogin<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        // u: the identity's user, only if the identity agrees with WeChat's unionid and the user
        // is live with the same one. i and s write only for that user (and i re-checks, under
        // the identity's row lock, that the identity still belongs to it), so a login the full
        // path would refuse or decide otherwise changes nothing here.
        let table = match self.seen {
            FastSeen::MiniProgram { .. } => "mini_program_identities",
            FastSeen::OfficialAccount { .. } => "official_account_identities",
        };
        out.push_sql(
            "WITH u AS (SELECT users.id, users.unionid, users.nickname, users.avatar_url, \
             users.phone_number, users.merged_into, users.created_at, users.updated_at, \
             users.phone_number_verified_at, users.disabled_at, users.disabled_reason, \
             users.deleted_at \
             FROM users JOIN ",
        );
        out.push_sql(table);
        out.push_sql(
            " m ON users.id = m.user_id WHERE users.merged_into IS NULL \
             AND users.disabled_at IS NULL AND m.app_id = ",
        );
        out.push_bind_param::<Text, _>(&self.app_id)?;
        out.push_sql(" AND m.openid = ");
        out.push_bind_param::<Text, _>(&self.openid)?;
        out.push_sql(" AND (");
        out.push_bind_param::<Nullable<Text>, _>(&self.unionid)?;
        out.push_sql("::text IS NULL OR (m.unionid = ");
        out.push_bind_param::<Nullable<Text>, _>(&self.unionid)?;
        out.push_sql(" AND users.unionid = m.unionid)))");
        // st: the state, spent only when u has the user (re-checked unused under its row lock).
        if let FastSeen::OfficialAccount { state_id, .. } = &self.seen {
            out.push_sql(", st AS (UPDATE oauth_states SET used_at = ");
            out.push_bind_param::<Timestamp, _>(&self.at)?;
            out.push_sql(" WHERE id = ");
            out.push_bind_param::<Text, _>(state_id)?;
            out.push_sql(" AND used_at IS NULL AND EXISTS (SELECT 1 FROM u) RETURNING id)");
        }
        out.push_sql(", i AS (UPDATE ");
        out.push_sql(table);
        out.push_sql(" SET last_login_at = ");
        out.push_bind_param::<Timestamp, _>(&self.at)?;
        match &self.seen {
            FastSeen::MiniProgram { session_key } => {
                out.push_sql(", session_key = ");
                out.push_bind_param::<Text, _>(session_key)?;
                out.push_sql(" FROM u");
            }
            FastSeen::OfficialAccount { scope, .. } => {
                out.push_sql(", scope = ");
                out.push_bind_param::<Text, _>(scope)?;
                out.push_sql(" FROM u, st");
            }
        }
        out.push_sql(" WHERE ");
        out.push_sql(table);
        out.push_sql(".user_id = u.id AND app_id = ");
        out.push_bind_param::<Text, _>(&self.app_id)?;
        out.push_sql(" AND openid = ");
        out.push_bind_param::<Text, _>(&self.openid)?;
        out.push_sql(
            " RETURNING user_id), s AS (INSERT INTO sessions \
             (id, user_id, family, token_hash, expires_at, created_at, user_agent, ip, app_id) \
             SELECT ",
        );
        out.push_bind_param::<Text, _>(&self.session_id)?;
        out.push_sql(", i.user_id, ");
        out.push_bind_param::<Text, _>(&self.session_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.token_hash)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.expires_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.at)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&self.user_agent)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&self.ip)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.app_id)?;
        out.push_sql(" FROM i) SELECT u.* FROM u JOIN i ON u.id = i.user_id");
        Ok(())
    }
}

impl FastLogin<'_> {
    /// Runs on PostgreSQL; `None` on SQLite or when the full rules must decide.
    pub async fn run(&self, conn: &mut Conn) -> Result<Option<UserRow>, DbError> {
        match conn {
            Conn::Postgres(c) => Ok(self.load::<UserRow>(&mut **c).await?.into_iter().next()),
            Conn::Sqlite(_) => Ok(None),
        }
    }
}
