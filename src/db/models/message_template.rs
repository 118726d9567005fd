//! `message_templates` and `subscribe_permissions`: the templates admins registered per app,
//! and the subscribe permissions people gave for them.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::{message_templates as t, subscribe_permissions as p};
use crate::db::{Conn, DbError};
use crate::with_conn;

/// A row of `message_templates`.
#[derive(Clone, Debug, Queryable, Insertable)]
#[diesel(table_name = t)]
pub struct TemplateRow {
    /// The app that sends it.
    pub app_id: String,
    /// WeChat's template id.
    pub template_id: String,
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
        app_id: &str,
        template_id: &str,
    ) -> Result<Option<Self>, DbError> {
        let q = t::table.find((app_id, template_id));
        Ok(with_conn!(conn, c => q.first::<Self>(c).await.optional())?)
    }

    /// The templates of an app (all apps: none), at most `limit`.
    pub async fn list(
        conn: &mut Conn,
        app_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Self>, DbError> {
        Ok(with_conn!(conn, c => {
            let mut q = t::table
                .order((t::app_id.asc(), t::template_id.asc()))
                .limit(limit)
                .into_boxed();
            if let Some(a) = app_id {
                q = q.filter(t::app_id.eq(a.to_owned()));
            }
            q.load::<Self>(c).await
        })?)
    }

    /// How many templates an app has.
    pub async fn count(conn: &mut Conn, app_id: &str) -> Result<i64, DbError> {
        let q = t::table.filter(t::app_id.eq(app_id)).count();
        Ok(with_conn!(conn, c => q.get_result::<i64>(c).await)?)
    }
}

/// A row of `subscribe_permissions`.
#[derive(Clone, Debug, Queryable, Insertable, AsChangeset)]
#[diesel(table_name = p, treat_none_as_null = true)]
pub struct PermissionRow {
    /// The app.
    pub app_id: String,
    /// The person there.
    pub openid: String,
    /// The template.
    pub template_id: String,
    /// One-time accepts not spent yet.
    pub one_time: i32,
    /// A long-term permission holds.
    pub long_term: bool,
    /// Who reported last: `webhook` or `client`.
    pub last_source: String,
    /// When the last accept was reported.
    pub last_accept_at: Option<NaiveDateTime>,
    /// Last change.
    pub updated_at: NaiveDateTime,
}

impl PermissionRow {
    /// The permission of (app, openid, template), locked for update on PostgreSQL.
    pub async fn find_locked(
        conn: &mut Conn,
        app_id: &str,
        openid: &str,
        template_id: &str,
    ) -> Result<Option<Self>, DbError> {
        let key = (app_id, openid, template_id);
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
        app_id: &str,
        template_id: &str,
        openids: &[String],
    ) -> Result<Vec<Self>, DbError> {
        let q = p::table
            .filter(p::app_id.eq(app_id))
            .filter(p::template_id.eq(template_id))
            .filter(p::openid.eq_any(openids));
        Ok(with_conn!(conn, c => q.load::<Self>(c).await)?)
    }

    /// Spends one one-time permission unless a long-term one holds; whether one was there.
    pub async fn spend(
        conn: &mut Conn,
        app_id: &str,
        openid: &str,
        template_id: &str,
    ) -> Result<bool, DbError> {
        let row = p::table.find((app_id, openid, template_id));
        let long = row.filter(p::long_term.eq(true)).select(p::app_id);
        if with_conn!(conn, c => long.first::<String>(c).await.optional())?.is_some() {
            return Ok(true);
        }
        let q = diesel::update(row.filter(p::one_time.gt(0))).set(p::one_time.eq(p::one_time - 1));
        Ok(with_conn!(conn, c => q.execute(c).await)? == 1)
    }

    /// Gives back a one-time permission WeChat did not use (it refused the send).
    pub async fn refund(
        conn: &mut Conn,
        app_id: &str,
        openid: &str,
        template_id: &str,
    ) -> Result<(), DbError> {
        let q = diesel::update(
            p::table
                .find((app_id, openid, template_id))
                .filter(p::long_term.eq(false)),
        )
        .set(p::one_time.eq(p::one_time + 1));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// WeChat says the person holds no permission: clears it.
    pub async fn clear(
        conn: &mut Conn,
        app_id: &str,
        openid: &str,
        template_id: &str,
        at: NaiveDateTime,
    ) -> Result<(), DbError> {
        let q = diesel::update(p::table.find((app_id, openid, template_id))).set((
            p::one_time.eq(0),
            p::long_term.eq(false),
            p::updated_at.eq(at),
        ));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }
}
