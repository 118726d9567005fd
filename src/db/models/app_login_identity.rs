//! `website_identities` and `mobile_app_identities`: a person in a website app (QR-code login)
//! or a mobile app (the WeChat SDK), keyed by (app_id, openid). Both kinds are only ever seen
//! in a login, and keep the same columns: the row types are written once
//! ([`app_login_identity!`]). What they share with the other kinds is in [`super::identity`].

/// A row type of an app-login identity table, with its login changeset and queries.
macro_rules! app_login_identity {
    ($(#[$doc:meta])* $row:ident, $t:ident, $table:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, diesel::Queryable, diesel::Identifiable, diesel::Insertable)]
        #[diesel(table_name = crate::db::schema::$t)]
        pub struct $row {
            /// Row id.
            pub id: crate::types::IdentityId,
            /// The owning user.
            pub user_id: crate::types::UserId,
            /// The app.
            pub app_id: crate::types::AppId,
            /// The person's openid in that app.
            pub openid: crate::types::OpenId,
            /// The unionid WeChat reported, if any.
            pub unionid: Option<crate::types::UnionId>,
            /// Nickname from `/sns/userinfo` at the latest login that had one.
            pub nickname: Option<String>,
            /// Avatar from `/sns/userinfo` at the latest login that had one.
            pub avatar_url: Option<String>,
            /// First sighting.
            pub created_at: chrono::NaiveDateTime,
            /// Latest login.
            pub last_login_at: chrono::NaiveDateTime,
        }

        impl $row {
            #[doc = concat!("Inserts an identity into `", $table, "`.")]
            pub async fn insert(
                conn: &mut crate::db::Conn,
                row: &Self,
            ) -> Result<(), crate::db::DbError> {
                super::insert(conn, crate::db::schema::$t::table, row).await
            }

            /// Records a login of the identity `id`: its live user, the unionid to keep, the
            /// time, and the profile fields WeChat gave (`None` leaves a stored one alone).
            pub async fn record_login(
                conn: &mut crate::db::Conn,
                id: &crate::types::IdentityId,
                login: &super::app_login_identity::AppLogin<'_>,
            ) -> Result<(), crate::db::DbError> {
                use crate::db::schema::$t as t;
                use diesel::prelude::*;
                use diesel_async::RunQueryDsl;
                // One statement: a profile field WeChat did not give (`None`) is left alone.
                let q = diesel::update(t::table.find(id)).set((
                    t::user_id.eq(login.user_id),
                    t::unionid.eq(login.unionid),
                    t::last_login_at.eq(login.at),
                    login.nickname.map(|n| t::nickname.eq(n)),
                    login.avatar_url.map(|a| t::avatar_url.eq(a)),
                ));
                crate::with_conn!(conn, c => q.execute(c).await)?;
                Ok(())
            }
        }

        use crate::db::schema::$t;
        super::identity::identity_reads!($row, $t);
    };
}

/// A login of a known website or mobile-app identity.
#[derive(Clone, Copy, Debug)]
pub struct AppLogin<'a> {
    /// The live user.
    pub user_id: &'a crate::types::UserId,
    /// The unionid to keep (never another one than on record).
    pub unionid: Option<&'a crate::types::UnionId>,
    /// Now.
    pub at: chrono::NaiveDateTime,
    /// The nickname WeChat gave, if a real one.
    pub nickname: Option<&'a str>,
    /// The avatar WeChat gave, if a real one.
    pub avatar_url: Option<&'a str>,
}

app_login_identity!(
    /// A row of `website_identities`: a person in a website app (QR-code login).
    WebsiteIdentityRow,
    website_identities,
    "website_identities"
);

app_login_identity!(
    /// A row of `mobile_app_identities`: a person in a mobile app (the WeChat SDK's login).
    MobileAppIdentityRow,
    mobile_app_identities,
    "mobile_app_identities"
);

/// The kinds stored here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppLoginKind {
    /// A website app (`website_identities`).
    Website,
    /// A mobile app (`mobile_app_identities`).
    MobileApp,
}

impl AppLoginKind {
    /// The app kind.
    pub fn app_kind(self) -> crate::types::AppKind {
        match self {
            AppLoginKind::Website => crate::types::AppKind::Website,
            AppLoginKind::MobileApp => crate::types::AppKind::MobileApp,
        }
    }

    /// Records a login of the identity `id`, in this kind's table.
    pub async fn record_login(
        self,
        conn: &mut crate::db::Conn,
        id: &crate::types::IdentityId,
        login: &AppLogin<'_>,
    ) -> Result<(), crate::db::DbError> {
        match self {
            AppLoginKind::Website => WebsiteIdentityRow::record_login(conn, id, login).await,
            AppLoginKind::MobileApp => MobileAppIdentityRow::record_login(conn, id, login).await,
        }
    }

    /// Inserts the identity `id` of `openid` in `app_id`, first seen at `login`, into this
    /// kind's table.
    pub async fn insert(
        self,
        conn: &mut crate::db::Conn,
        id: &crate::types::IdentityId,
        (app_id, openid): (&crate::types::AppId, &crate::types::OpenId),
        login: &AppLogin<'_>,
    ) -> Result<(), crate::db::DbError> {
        macro_rules! row {
            ($row:ident) => {
                $row {
                    id: id.clone(),
                    user_id: login.user_id.clone(),
                    app_id: app_id.clone(),
                    openid: openid.clone(),
                    unionid: login.unionid.cloned(),
                    nickname: login.nickname.map(str::to_owned),
                    avatar_url: login.avatar_url.map(str::to_owned),
                    created_at: login.at,
                    last_login_at: login.at,
                }
            };
        }
        match self {
            AppLoginKind::Website => {
                WebsiteIdentityRow::insert(conn, &row!(WebsiteIdentityRow)).await
            }
            AppLoginKind::MobileApp => {
                MobileAppIdentityRow::insert(conn, &row!(MobileAppIdentityRow)).await
            }
        }
    }
}
