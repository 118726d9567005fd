//! Newtypes for every identifier, so an openid can never be passed where a unionid belongs.
//! They are stored as text on both backends (diesel `ToSql`/`FromSql`), so rows and queries
//! carry them too.

use std::fmt;

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize,
            serde::Deserialize, diesel::expression::AsExpression, diesel::deserialize::FromSqlRow,
        )]
        #[serde(transparent)]
        #[diesel(sql_type = Text)]
        pub struct $name(String);

        impl<DB: Backend> ToSql<Text, DB> for $name
        where
            str: ToSql<Text, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                self.0.as_str().to_sql(out)
            }
        }

        impl<DB: Backend> FromSql<Text, DB> for $name
        where
            String: FromSql<Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                String::from_sql(bytes).map(Self)
            }
        }

        impl $name {
            /// Wraps a value already known to be valid (read from our own database or config).
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The identifier as an owned string.
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_newtype!(
    /// A WeChat app id (`wx…`), Mini Program or Official Account.
    AppId
);
id_newtype!(
    /// A person's id inside one WeChat app.
    OpenId
);
id_newtype!(
    /// A person's id across the apps bound to one WeChat Open Platform account.
    UnionId
);
id_newtype!(
    /// Our own, public and stable user id (a UUID).
    UserId
);
id_newtype!(
    /// The row id of a Mini Program or Official Account identity (a UUID).
    IdentityId
);

impl UserId {
    /// A fresh, time-ordered user id (UUIDv7, so ids sort by creation).
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }
}

impl IdentityId {
    /// A fresh, time-ordered identity id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }
}

/// A new time-ordered row id for tables whose ids are never shown as user ids.
pub fn new_row_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The two kinds of WeChat app this service logs people into (the WeChat client's).
pub use wechat_client::AppKind;
