//! `message_templates` and `subscribe_permissions`: the templates admins registered per app,
//! and the subscribe permissions people gave for them.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::{message_templates as t, subscribe_permissions as p};
use crate::db::{Conn, DbError};
use crate::types::{AppId, OpenId, TemplateId};
use crate::with_conn;

/// A row of `message_templates`.
#[derive(Clone, Debug, Queryable, Insertable)]
#[diesel(table_name = t)]
pub struct TemplateRow {
    /// The app that sends it.
    pub app_id: AppId,
    /// WeChat's template id.
    pub template_id: TemplateId,
    /// The channel (`wechat::messages::Channel`).
    pub channel: String,
    /// Subscribe templates: permissions are long-term (not spent by a send).
    pub long_term: bool,
    /// Its keywords, JSON `[{"key":"thing1","type":"THING"}]`.
    pub fields: String,
    /// The admin key that registered it.
    pub registered_by: String,
    /// First registered.
    pub created_at: NaiveDateTime,
    /// Last registered.
    pub updated_at: NaiveDateTime,
}

impl TemplateRow {
    /// Registers a template, or replaces its registration (keeping `created_at`).
    pub async fn upsert(conn: &mut Conn, row: &TemplateRow) -> Result<(), DbError> {
        let q = diesel::insert_into(t::table)
            .values(row)
            .on_conflict((t::app_id, t::template_id))
            .do_update()
            .set((
                t::channel.eq(&row.channel),
                t::long_term.eq(row.long_term),
                t::fields.eq(&row.fields),
                t::registered_by.eq(&row.registered_by),
                t::updated_at.eq(row.updated_at),
            ));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// Registers a template unless it is registered already.
    pub async fn insert_missing(conn: &mut Conn, row: &TemplateRow) -> Result<(), DbError> {
        let q = diesel::insert_into(t::table)
            .values(row)
            .on_conflict_do_nothing();
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// The template `template_id` of `app_id`.
    pub async fn find(
        conn: &mut Conn,
        app_id: &AppId,
        template_id: &TemplateId,
    ) -> Result<Option<Self>, DbError> {
        let q = t::table.find((app_id, template_id));
        Ok(with_conn!(conn, c => q.first::<Self>(c).await.optional())?)
    }

    /// The templates of an app (all apps: none), at most `limit`.
    pub async fn list(
        conn: &mut Conn,
        app_id: Option<&AppId>,
        limit: i64,
    ) -> Result<Vec<Self>, DbError> {
        Ok(with_conn!(conn, c => {
            let mut q = t::table
                .order((t::app_id.asc(), t::template_id.asc()))
                .limit(limit)
                .into_boxed();
            if let Some(a) = app_id {
                q = q.filter(t::app_id.eq(a.clone()));
            }
            q.load::<Self>(c).await
        })?)
    }

    /// How many templates an app has.
    pub async fn count(conn: &mut Conn, app_id: &AppId) -> Result<i64, DbError> {
        let q = t::table.filter(t::app_id.eq(app_id)).count();
        Ok(with_conn!(conn, c => q.get_result::<i64>(c).await)?)
    }
}

crate::db::text_enum::text_enum! {
    /// Who reported a consent.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum ConsentSource {
        /// WeChat's push.
        Webhook = "webhook",
        /// The Mini Program client.
        Client = "client",
    }
}

/// Whose permission for what: the key of `subscribe_permissions`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PermissionKey<'a> {
    /// The app.
    pub app_id: &'a AppId,
    /// The person there.
    pub openid: &'a OpenId,
    /// The template.
    pub template_id: &'a TemplateId,
}

/// A row of `subscribe_permissions`.
#[derive(Clone, Debug, Queryable, Insertable, AsChangeset)]
#[diesel(table_name = p, treat_none_as_null = true)]
pub struct PermissionRow {
    /// The app.
    pub app_id: AppId,
    /// The person there.
    pub openid: OpenId,
    /// The template.
    pub template_id: TemplateId,
    /// One-time accepts not spent yet.
    pub one_time: i32,
    /// A long-term permission holds.
    pub long_term: bool,
    /// Who reported last.
    pub last_source: ConsentSource,
    /// When the last accept was reported.
    pub last_accept_at: Option<NaiveDateTime>,
    /// Last change.
    pub updated_at: NaiveDateTime,
}

impl PermissionKey<'_> {
    /// The key as a tuple of the primary key's columns.
    fn columns(&self) -> (&AppId, &OpenId, &TemplateId) {
        (self.app_id, self.openid, self.template_id)
    }
}

impl PermissionRow {
    /// The key of this row.
    pub fn key(&self) -> PermissionKey<'_> {
        PermissionKey {
            app_id: &self.app_id,
            openid: &self.openid,
            template_id: &self.template_id,
        }
    }

    /// The permission of (app, openid, template), locked for update on PostgreSQL.
    pub async fn find_locked(
        conn: &mut Conn,
        key: PermissionKey<'_>,
    ) -> Result<Option<Self>, DbError> {
        let key = key.columns();
        match conn {
            Conn::Postgres(c) => Ok(p::table
                .find(key)
                .for_update()
                .first::<Self>(&mut **c)
                .await
                .optional()?),
            Conn::Sqlite(c) => Ok(p::table
                .find(key)
                .first::<Self>(&mut **c)
                .await
                .optional()?),
        }
    }

    /// Stores `row` (new or changed).
    pub async fn save(conn: &mut Conn, row: &PermissionRow) -> Result<(), DbError> {
        let q = diesel::insert_into(p::table)
            .values(row)
            .on_conflict((p::app_id, p::openid, p::template_id))
            .do_update()
            .set(row);
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// The permissions of these openids of an app for a template.
    pub async fn for_openids(
        conn: &mut Conn,
        app_id: &AppId,
        template_id: &TemplateId,
        openids: &[OpenId],
    ) -> Result<Vec<Self>, DbError> {
        let q = p::table
            .filter(p::app_id.eq(app_id))
            .filter(p::template_id.eq(template_id))
            .filter(p::openid.eq_any(openids));
        Ok(with_conn!(conn, c => q.load::<Self>(c).await)?)
    }

    /// Spends one one-time permission unless a long-term one holds; whether one was there.
    pub async fn spend(conn: &mut Conn, key: PermissionKey<'_>) -> Result<bool, DbError> {
        let row = p::table.find(key.columns());
        let long = row.filter(p::long_term.eq(true)).select(p::app_id);
        if with_conn!(conn, c => long.first::<AppId>(c).await.optional())?.is_some() {
            return Ok(true);
        }
        let q = diesel::update(row.filter(p::one_time.gt(0))).set(p::one_time.eq(p::one_time - 1));
        Ok(with_conn!(conn, c => q.execute(c).await)? == 1)
    }

    /// Gives back a one-time permission WeChat did not use (it refused the send).
    pub async fn refund(conn: &mut Conn, key: PermissionKey<'_>) -> Result<(), DbError> {
        let q = diesel::update(p::table.find(key.columns()).filter(p::long_term.eq(false)))
            .set(p::one_time.eq(p::one_time + 1));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// WeChat says the person holds no permission: clears it.
    pub async fn clear(
        conn: &mut Conn,
        key: PermissionKey<'_>,
        at: NaiveDateTime,
    ) -> Result<(), DbError> {
        let q = diesel::update(p::table.find(key.columns())).set((
            p::one_time.eq(0),
            p::long_term.eq(false),
            p::updated_at.eq(at),
        ));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }
}
