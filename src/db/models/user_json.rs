//! Users as the API's JSON, built by the database: the compiled read path's statements. A
//! [`UserShape`] (what a query selects of a `User`: response keys and the fields or identity
//! lists under them) becomes one SQL expression over `users` whose value is that user's JSON,
//! byte for byte what the field resolvers would answer; the identity lists are correlated
//! subqueries ordered as the resolvers load them (`created_at`, then `id`).
//!
//! The text is concatenated (`'{"id":' || … || '}'`) rather than built with `json_build_object`:
//! PostgreSQL prints `json` with spaces (`{"a" : 1}`), and the answer must be compact to equal
//! the resolvers'. Values are escaped by the database (`to_json(x)::text` on PostgreSQL,
//! `json_quote(x)` on SQLite, which escape as serde_json does); keys are GraphQL names, which
//! hold only `[_0-9A-Za-z]` (checked again here). Times print as chrono's RFC 3339
//! (`2026-12-05T20:27:51.123+00:00`: 0, 3, 6 or 9 fraction digits, as few as the value needs).

use chrono::NaiveDateTime;
use diesel::sql_types::{Nullable, Text, Timestamp};
use diesel_async::RunQueryDsl;

use crate::db::{Conn, DbError};
use crate::types::{AppKind, UnionId, UserId};
use crate::with_conn;

mod prepared;
mod sql;

pub use prepared::{Limited, MAX_PREPARED, PageJson, admit};
use prepared::{Prepared, admitted};
use sql::{object, value};

/// A `User` field the compiled path answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserField {
    Id,
    Unionid,
    Nickname,
    AvatarUrl,
    PhoneNumber,
    PhoneNumberVerifiedAt,
    DisabledAt,
    DisabledReason,
    DeletedAt,
    CreatedAt,
    UpdatedAt,
}

/// An identity field the compiled path answers (which kinds have which: [`IdentityField::of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdentityField {
    Id,
    AppId,
    Openid,
    Unionid,
    CreatedAt,
    LastLoginAt,
    Subscribed,
    SubscribedAt,
    Nickname,
    AvatarUrl,
    Sex,
    Province,
    City,
    Country,
}

/// What goes under one response key of a user.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum UserPart {
    Typename,
    Field(UserField),
    Identities(AppKind, Vec<(String, IdentityPart)>),
}

/// What goes under one response key of an identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IdentityPart {
    Typename,
    Field(IdentityField),
}

/// What a query selects of a user, in the answer's order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct UserShape(pub Vec<(String, UserPart)>);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Postgres,
    Sqlite,
}

impl Dialect {
    fn of(postgres: bool) -> Self {
        if postgres {
            Dialect::Postgres
        } else {
            Dialect::Sqlite
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Time,
    Bool,
    Int,
}

impl IdentityField {
    /// The field by its GraphQL name on an identity of `kind`; None if that type has none (or
    /// the compiled path does not answer it).
    pub fn of(kind: AppKind, name: &str) -> Option<Self> {
        use IdentityField::*;
        let field = match name {
            "id" => Id,
            "appId" => AppId,
            "openid" => Openid,
            "unionid" => Unionid,
            "createdAt" => CreatedAt,
            "lastLoginAt" => LastLoginAt,
            "nickname" | "avatarUrl" if kind == AppKind::MiniProgram => return None,
            "nickname" => Nickname,
            "avatarUrl" => AvatarUrl,
            _ if kind != AppKind::OfficialAccount => return None,
            "subscribed" => Subscribed,
            "subscribedAt" => SubscribedAt,
            "sex" => Sex,
            "province" => Province,
            "city" => City,
            "country" => Country,
            _ => return None,
        };
        Some(field)
    }

    fn column(self) -> (&'static str, Kind) {
        use IdentityField::*;
        match self {
            Id => ("id", Kind::Text),
            AppId => ("app_id", Kind::Text),
            Openid => ("openid", Kind::Text),
            Unionid => ("unionid", Kind::Text),
            CreatedAt => ("created_at", Kind::Time),
            LastLoginAt => ("last_login_at", Kind::Time),
            Subscribed => ("subscribed", Kind::Bool),
            SubscribedAt => ("subscribed_at", Kind::Time),
            Nickname => ("nickname", Kind::Text),
            AvatarUrl => ("avatar_url", Kind::Text),
            Sex => ("sex", Kind::Int),
            Province => ("province", Kind::Text),
            City => ("city", Kind::Text),
            Country => ("country", Kind::Text),
        }
    }
}

impl UserField {
    /// The field by its GraphQL name; None if `User` has none the compiled path answers.
    pub fn of(name: &str) -> Option<Self> {
        use UserField::*;
        Some(match name {
            "id" => Id,
            "unionid" => Unionid,
            "nickname" => Nickname,
            "avatarUrl" => AvatarUrl,
            "phoneNumber" => PhoneNumber,
            "phoneNumberVerifiedAt" => PhoneNumberVerifiedAt,
            "disabledAt" => DisabledAt,
            "disabledReason" => DisabledReason,
            "deletedAt" => DeletedAt,
            "createdAt" => CreatedAt,
            "updatedAt" => UpdatedAt,
            _ => return None,
        })
    }

    fn column(self) -> (&'static str, Kind) {
        use UserField::*;
        match self {
            Id => ("id", Kind::Text),
            Unionid => ("unionid", Kind::Text),
            Nickname => ("nickname", Kind::Text),
            AvatarUrl => ("avatar_url", Kind::Text),
            PhoneNumber => ("phone_number", Kind::Text),
            PhoneNumberVerifiedAt => ("phone_number_verified_at", Kind::Time),
            DisabledAt => ("disabled_at", Kind::Time),
            DisabledReason => ("disabled_reason", Kind::Text),
            DeletedAt => ("deleted_at", Kind::Time),
            CreatedAt => ("created_at", Kind::Time),
            UpdatedAt => ("updated_at", Kind::Time),
        }
    }
}

fn table_of(kind: AppKind) -> (&'static str, &'static str) {
    match kind {
        AppKind::MiniProgram => ("mini_program_identities", "MiniProgramIdentity"),
        AppKind::OfficialAccount => ("official_account_identities", "OfficialAccountIdentity"),
        AppKind::Website => ("website_identities", "WebsiteIdentity"),
        AppKind::MobileApp => ("mobile_app_identities", "MobileAppIdentity"),
    }
}

impl UserShape {
    /// The expression whose value is the JSON of the row of `users` in scope.
    fn sql(&self, d: Dialect) -> String {
        let parts = self.0.iter().map(|(key, part)| {
            let value = match part {
                UserPart::Typename => "'\"User\"'".to_owned(),
                UserPart::Field(field) => {
                    let (column, kind) = field.column();
                    value(d, &format!("users.{column}"), kind)
                }
                UserPart::Identities(kind, fields) => identities(d, *kind, fields),
            };
            (key.as_str(), value)
        });
        object(parts.collect())
    }
}

/// The JSON list of the user's identities of `kind`, ordered as the resolvers load them.
fn identities(d: Dialect, kind: AppKind, fields: &[(String, IdentityPart)]) -> String {
    let (table, typename) = table_of(kind);
    let parts = fields.iter().map(|(key, part)| {
        let value = match part {
            IdentityPart::Typename => format!("'\"{typename}\"'"),
            IdentityPart::Field(field) => {
                let (column, kind) = field.column();
                value(d, &format!("i.{column}"), kind)
            }
        };
        (key.as_str(), value)
    });
    let object = object(parts.collect());
    match d {
        // Aggregated from a subquery in the index's order (`…_user_order`): an ORDER BY in the
        // aggregate sorts each user's rows again, about a tenth of a page's statement.
        Dialect::Postgres => format!(
            "(SELECT '[' || coalesce(string_agg(o, ','), '') || ']' FROM (SELECT {object} AS o \
             FROM {table} i WHERE i.user_id = users.id ORDER BY i.created_at, i.id) s)"
        ),
        // SQLite promises an aggregate's order only when it is the aggregate's own.
        Dialect::Sqlite => format!(
            "(SELECT '[' || coalesce(string_agg({object}, ',' ORDER BY i.created_at, i.id), '') \
             || ']' FROM {table} i WHERE i.user_id = users.id)"
        ),
    }
}

/// `column` is one of the comma-separated ids in `$1` (ids are UUIDs: no comma or quote).
fn any_of(d: Dialect, column: &str) -> String {
    match d {
        Dialect::Postgres => format!("{column} = ANY(string_to_array($1, ','))"),
        Dialect::Sqlite => format!(
            "{column} IN (SELECT value FROM json_each('[\"' || replace($1, ',', '\",\"') || '\"]'))"
        ),
    }
}

/// A user's JSON, with what access needs to know of it.
#[derive(diesel::QueryableByName, Debug)]
pub struct UserJson {
    /// The id asked for (for lookups that follow merges: before following).
    #[diesel(sql_type = Text)]
    pub asked: String,
    #[diesel(sql_type = Text)]
    pub id: UserId,
    #[diesel(sql_type = Nullable<Text>)]
    pub merged_into: Option<UserId>,
    #[diesel(sql_type = Timestamp)]
    pub created_at: NaiveDateTime,
    #[diesel(sql_type = Text)]
    pub json: String,
}

impl UserJson {
    /// The live user it stands for (itself, or the one it was merged into).
    pub fn live_id(&self) -> &UserId {
        self.merged_into.as_ref().unwrap_or(&self.id)
    }
}

/// The columns every lookup selects besides the JSON.
const HEAD: &str =
    "users.id AS id, users.merged_into AS merged_into, users.created_at AS created_at";

/// The lookups by key, each one statement with one parameter (`$1`).
#[derive(Clone, Copy, Debug)]
pub enum Lookup {
    /// `$1` is a user id: that user, tombstone or live (`user(id)`).
    ById,
    /// `$1` is a unionid: the live, undeleted user holding it (`userByUnionid`).
    LiveByUnionid,
    /// `$1` is user ids joined by commas: each one's user, a merged one as the user it was
    /// merged into (`me`, `usersByIds`, `_entities`).
    FollowingMerges,
    /// `$1` is ids joined by commas: the users among them, tombstones as they are (`nodes`).
    ManyById,
}

impl UserShape {
    /// The text of `lookup`'s statement on PostgreSQL (`postgres`) or SQLite: what the
    /// compiled path sends (`bench-reads` runs the same text under pgbench).
    pub fn statement(&self, lookup: Lookup, postgres: bool) -> String {
        let d = Dialect::of(postgres);
        let json = self.sql(d);
        match lookup {
            Lookup::ById => format!(
                "SELECT users.id AS asked, {HEAD}, {json} AS json FROM users WHERE users.id = $1"
            ),
            Lookup::LiveByUnionid => format!(
                "SELECT users.id AS asked, {HEAD}, {json} AS json FROM users \
                 WHERE users.unionid = $1 AND users.merged_into IS NULL \
                 AND users.deleted_at IS NULL LIMIT 1"
            ),
            Lookup::FollowingMerges => format!(
                "SELECT k.id AS asked, {HEAD}, {json} AS json FROM users k \
                 JOIN users ON users.id = coalesce(k.merged_into, k.id) WHERE {}",
                any_of(d, "k.id")
            ),
            Lookup::ManyById => format!(
                "SELECT users.id AS asked, {HEAD}, {json} AS json FROM users WHERE {}",
                any_of(d, "users.id")
            ),
        }
    }

    /// The users of `ids` (user ids or not: the answer has those that are), tombstones as
    /// they are, in no particular order (`nodes`).
    pub async fn many_by_id(
        &self,
        conn: &mut Conn,
        ids: &[&str],
    ) -> Result<Vec<UserJson>, DbError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.lookup(conn, Lookup::ManyById, &ids.join(",")).await
    }

    async fn lookup(
        &self,
        conn: &mut Conn,
        lookup: Lookup,
        param: &str,
    ) -> Result<Vec<UserJson>, DbError> {
        let sql = self.statement(lookup, matches!(conn, Conn::Postgres(_)));
        if !admitted(&sql) {
            let q = diesel::sql_query(sql).bind::<Text, _>(param);
            return Ok(with_conn!(conn, c => q.load::<UserJson>(c).await)?);
        }
        let (before, after) = sql.split_once("$1").unwrap_or((&sql, ""));
        let q = Prepared {
            before,
            param,
            after,
        };
        Ok(with_conn!(conn, c => q.load::<UserJson>(c).await)?)
    }

    /// The user with this id, tombstone or live (`user(id)`).
    pub async fn by_id(&self, conn: &mut Conn, id: &UserId) -> Result<Option<UserJson>, DbError> {
        Ok(self.lookup(conn, Lookup::ById, id.as_str()).await?.pop())
    }

    /// The live, undeleted user holding `unionid` (`userByUnionid`).
    pub async fn live_by_unionid(
        &self,
        conn: &mut Conn,
        unionid: &UnionId,
    ) -> Result<Option<UserJson>, DbError> {
        let found = self.lookup(conn, Lookup::LiveByUnionid, unionid.as_str());
        Ok(found.await?.pop())
    }

    /// The users behind `ids`, each merged one as the user it was merged into (`me`,
    /// `usersByIds`, `_entities`), in no particular order; `asked` says which id each answers.
    pub async fn following_merges(
        &self,
        conn: &mut Conn,
        ids: &[UserId],
    ) -> Result<Vec<UserJson>, DbError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // User ids are UUIDs (checked where they come in): no comma, quote or backslash.
        let list = ids.iter().map(UserId::as_str).collect::<Vec<_>>().join(",");
        self.lookup(conn, Lookup::FollowingMerges, &list).await
    }

    /// The expression for a query built elsewhere over `users` (the dashboards' page).
    pub(super) fn select_sql(&self, postgres: bool) -> String {
        self.sql(Dialect::of(postgres))
    }
}
