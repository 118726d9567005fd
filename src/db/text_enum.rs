//! Enums stored in text columns: [`text_enum!`] declares one with the name each variant is
//! stored under, and reads back only those names.

/// A stored text that names no variant of the enum it was read as.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a {of}")]
pub struct UnknownText {
    /// The enum.
    pub of: &'static str,
    /// The text.
    pub text: String,
}

/// Declares an enum stored as text, each variant under a fixed name (`Queued = "queued",`):
/// `as_str`, `FromStr` and `Display` by those names, `ALL`, and diesel's `ToSql`/`FromSql` for
/// text columns on SQLite and PostgreSQL. A stored text that is none of the names is an error
/// when the row is read (the query fails), never a silent default.
///
/// With `mirrored_by $mirror` the enum is declared through [`crate::mirror::mirrored_enum!`],
/// so the GraphQL enum takes its variants and docs from this one.
macro_rules! text_enum {
    (
        $(#[$meta:meta])* $vis:vis enum $name:ident mirrored_by $mirror:ident {
            $($(#[doc = $doc:literal])* $variant:ident = $text:literal,)*
        }
    ) => {
        $crate::mirror::mirrored_enum! {
            $(#[$meta])*
            #[derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)]
            #[diesel(sql_type = diesel::sql_types::Text)]
            $vis enum $name mirrored_by $mirror { $($(#[doc = $doc])* $variant,)* }
        }
        $crate::db::text_enum::text_enum! { @impl $name { $($variant = $text,)* } }
    };
    (
        $(#[$meta:meta])* $vis:vis enum $name:ident {
            $($(#[doc = $doc:literal])* $variant:ident = $text:literal,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)]
        #[diesel(sql_type = diesel::sql_types::Text)]
        $vis enum $name { $($(#[doc = $doc])* $variant,)* }
        $crate::db::text_enum::text_enum! { @impl $name { $($variant = $text,)* } }
    };
    (@impl $name:ident { $($variant:ident = $text:literal,)* }) => {
        impl $name {
            /// Every variant, in the order declared.
            pub const ALL: [Self; [$($text),*].len()] = [$(Self::$variant),*];

            /// The name it is stored under.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::db::text_enum::UnknownText;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($text => Ok(Self::$variant),)*
                    _ => Err($crate::db::text_enum::UnknownText {
                        of: stringify!($name),
                        text: text.to_owned(),
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl<DB: diesel::backend::Backend> diesel::serialize::ToSql<diesel::sql_types::Text, DB>
            for $name
        where
            str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, DB>,
            ) -> diesel::serialize::Result {
                self.as_str().to_sql(out)
            }
        }

        impl<DB: diesel::backend::Backend> diesel::deserialize::FromSql<diesel::sql_types::Text, DB>
            for $name
        where
            String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                Ok(String::from_sql(bytes)?.parse::<Self>()?)
            }
        }
    };
}
pub(crate) use text_enum;
