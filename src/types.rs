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
id_newtype!(
    /// A WeChat message template's id (`templateId`, registered per app).
    TemplateId
);
id_newtype!(
    /// The id WeChat gave a message it accepted (`msgid`), per app.
    WechatMsgId
);
id_newtype!(
    /// A message's id (a UUID).
    MessageId
);
id_newtype!(
    /// A background job's id (a UUID).
    JobId
);
id_newtype!(
    /// A follower sync's id (a UUID).
    FollowerSyncId
);
id_newtype!(
    /// A stored webhook event's id (a UUID).
    WebhookEventId
);
id_newtype!(
    /// A merge event's id (a UUID).
    MergeEventId
);
id_newtype!(
    /// A session's id (a UUID, the `sid` of its access tokens); a rotation family is named by
    /// its first session's id.
    SessionId
);
id_newtype!(
    /// The random part of an Official Account web-authorization `state` (hex).
    OauthStateId
);

/// `generate()` for the ids this service makes up itself.
macro_rules! generated_id {
    ($($name:ident),*) => {
        $(
            impl $name {
                /// A fresh, time-ordered id (UUIDv7, so ids sort by creation).
                pub fn generate() -> Self {
                    Self(uuid::Uuid::now_v7().to_string())
                }
            }
        )*
    };
}
generated_id!(
    UserId,
    IdentityId,
    MessageId,
    JobId,
    FollowerSyncId,
    WebhookEventId,
    MergeEventId,
    SessionId
);

/// The two kinds of WeChat app this service logs people into (the WeChat client's).
pub use wechat_client::AppKind;
