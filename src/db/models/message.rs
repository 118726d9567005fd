//! `messages`: every message addressed to a user, sent alone or by a bulk job, with how it went.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::messages as m;
use crate::db::{Conn, DbError};
use crate::types::UserId;
use crate::with_conn;

crate::mirror::mirrored_enum! {
    /// Where a message stands; stored lowercase.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum MessageStatus mirrored_by message_status_variants {
        /// A bulk job's message, not sent yet.
        Queued,
        /// Handed to WeChat; its answer is not recorded yet.
        Sending,
        /// WeChat accepted it; its delivery report has not come yet.
        Sent,
        /// WeChat reported it reached the person.
        Delivered,
        /// Refused (by us or WeChat) or not delivered (see `error`).
        Failed,
        /// The service stopped, or WeChat did not answer, while WeChat had it: it may or may not
        /// have reached the person, and is never sent again (nobody gets a second copy).
        Uncertain,
    }
}

impl MessageStatus {
    /// Every status.
    pub const ALL: [MessageStatus; 6] = [
        Self::Queued,
        Self::Sending,
        Self::Sent,
        Self::Delivered,
        Self::Failed,
        Self::Uncertain,
    ];

    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Uncertain => "uncertain",
        }
    }

    /// From its stored form (unknown: failed).
    pub fn parse(s: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .unwrap_or(Self::Failed)
    }
}

/// A row of `messages`.
#[derive(Clone, Debug, Queryable, Insertable)]
#[diesel(table_name = m)]
pub struct MessageRow {
    /// UUID (v7: ordered by creation).
    pub id: String,
    /// The user it is addressed to (the survivor if the one asked for was merged).
    pub user_id: UserId,
    /// The app it went out on.
    pub app_id: Option<String>,
    /// The person's openid there.
    pub openid: Option<String>,
    /// The channel (`wechat::messages::Channel`).
    pub channel: Option<String>,
    /// The template.
    pub template_id: Option<String>,
    /// See [`MessageStatus`].
    pub status: String,
    /// The request of a single send (JSON); empty for a bulk job's messages.
    pub content: String,
    /// WeChat's msgid.
    pub wechat_msg_id: Option<String>,
    /// Our error code (`NOT_FOLLOWING`, ...).
    pub error_code: Option<String>,
    /// WeChat's errcode.
    pub wechat_errcode: Option<i64>,
    /// What went wrong, for people.
    pub error: Option<String>,
    /// `{api key name}:{key}`.
    pub idempotency_key: Option<String>,
    /// The bulk job that sends it.
    pub job_id: Option<String>,
    /// When it was asked for.
    pub created_at: NaiveDateTime,
    /// When WeChat reported it delivered (or not).
    pub delivered_at: Option<NaiveDateTime>,
}

/// Where a message went and how (written when it is routed, sent or refused).
#[derive(Clone, Debug, Default, AsChangeset)]
#[diesel(table_name = m, treat_none_as_null = true)]
pub struct Outcome {
    /// The app.
    pub app_id: Option<String>,
    /// The openid.
    pub openid: Option<String>,
    /// The channel.
    pub channel: Option<String>,
    /// The template.
    pub template_id: Option<String>,
    /// The new status.
    pub status: String,
    /// WeChat's msgid.
    pub wechat_msg_id: Option<String>,
    /// Our error code.
    pub error_code: Option<String>,
    /// WeChat's errcode.
    pub wechat_errcode: Option<i64>,
    /// The error.
    pub error: Option<String>,
}

/// What `messages` lists by.
#[derive(Clone, Debug, Default)]
pub struct MessageFilter {
    /// Addressed to this user.
    pub user_id: Option<UserId>,
    /// Went out on this app.
    pub app_id: Option<String>,
    /// In this status.
    pub status: Option<MessageStatus>,
    /// Sent by this bulk job.
    pub job_id: Option<String>,
}

impl MessageRow {
    /// The parsed status.
    pub fn status(&self) -> MessageStatus {
        MessageStatus::parse(&self.status)
    }

    /// Stores a new message; false if its idempotency key is taken (the caller reads that one).
    pub async fn insert(conn: &mut Conn, row: &MessageRow) -> Result<bool, DbError> {
        let q = diesel::insert_into(m::table)
            .values(row)
            .on_conflict_do_nothing();
        Ok(with_conn!(conn, c => q.execute(c).await)? == 1)
    }

    /// Stores a bulk job's new messages (those of users it addressed already are skipped).
    pub async fn insert_queued(conn: &mut Conn, rows: &[MessageRow]) -> Result<usize, DbError> {
        match conn {
            Conn::Postgres(c) => {
                let q = diesel::insert_into(m::table)
                    .values(rows)
                    .on_conflict_do_nothing();
                Ok(q.execute(&mut **c).await?)
            }
            // diesel-async has no multi-row insert on SQLite; rows go one by one (in the
            // caller's transaction, which is what costs on SQLite).
            Conn::Sqlite(c) => {
                let mut n = 0;
                for row in rows {
                    let q = diesel::insert_into(m::table)
                        .values(row)
                        .on_conflict_do_nothing();
                    n += q.execute(&mut **c).await?;
                }
                Ok(n)
            }
        }
    }

    /// The message with this id.
    pub async fn find(conn: &mut Conn, id: &str) -> Result<Option<Self>, DbError> {
        let q = m::table.find(id);
        Ok(with_conn!(conn, c => q.first::<Self>(c).await.optional())?)
    }

    /// The message stored under this (scoped) idempotency key.
    pub async fn find_by_key(conn: &mut Conn, key: &str) -> Result<Option<Self>, DbError> {
        let q = m::table.filter(m::idempotency_key.eq(key));
        Ok(with_conn!(conn, c => q.first::<Self>(c).await.optional())?)
    }

    /// The oldest `limit` messages of a job in `status`.
    pub async fn of_job(
        conn: &mut Conn,
        job_id: &str,
        status: MessageStatus,
        limit: i64,
    ) -> Result<Vec<Self>, DbError> {
        let q = m::table
            .filter(m::job_id.eq(job_id))
            .filter(m::status.eq(status.as_str()))
            .order(m::id.asc())
            .limit(limit);
        Ok(with_conn!(conn, c => q.load::<Self>(c).await)?)
    }

    /// Moves a job's messages from `from` to `to`; how many.
    pub async fn move_job(
        conn: &mut Conn,
        job_id: &str,
        from: MessageStatus,
        to: MessageStatus,
    ) -> Result<usize, DbError> {
        let q = diesel::update(
            m::table
                .filter(m::job_id.eq(job_id))
                .filter(m::status.eq(from.as_str())),
        )
        .set(m::status.eq(to.as_str()));
        Ok(with_conn!(conn, c => q.execute(c).await)?)
    }

    /// Marks these messages `sending` if they are still `from`; how many were.
    pub async fn mark_sending(
        conn: &mut Conn,
        ids: &[String],
        from: MessageStatus,
    ) -> Result<usize, DbError> {
        let q = diesel::update(
            m::table
                .filter(m::id.eq_any(ids))
                .filter(m::status.eq(from.as_str())),
        )
        .set(m::status.eq(MessageStatus::Sending.as_str()));
        Ok(with_conn!(conn, c => q.execute(c).await)?)
    }

    /// Writes where a message went and how, if it is still in status `from` (a delivery report
    /// may have come first); whether it was.
    pub async fn record_if(
        conn: &mut Conn,
        id: &str,
        from: MessageStatus,
        outcome: &Outcome,
    ) -> Result<bool, DbError> {
        let q = diesel::update(m::table.find(id).filter(m::status.eq(from.as_str()))).set(outcome);
        Ok(with_conn!(conn, c => q.execute(c).await)? == 1)
    }

    /// Single sends (not a bulk job's) still `sending` since before `before` — their request
    /// died between the call and the write of its answer — become `uncertain`; how many.
    pub async fn expire_sending(conn: &mut Conn, before: NaiveDateTime) -> Result<usize, DbError> {
        let q = diesel::update(
            m::table
                .filter(m::job_id.is_null())
                .filter(m::status.eq(MessageStatus::Sending.as_str()))
                .filter(m::created_at.lt(before)),
        )
        .set(m::status.eq(MessageStatus::Uncertain.as_str()));
        Ok(with_conn!(conn, c => q.execute(c).await)?)
    }

    /// A failed job's messages still `queued` fail with `code`, those `sending` become
    /// `uncertain`.
    pub async fn close_job(
        conn: &mut Conn,
        job_id: &str,
        code: &str,
        error: &str,
    ) -> Result<(), DbError> {
        let q = diesel::update(
            m::table
                .filter(m::job_id.eq(job_id))
                .filter(m::status.eq(MessageStatus::Queued.as_str())),
        )
        .set((
            m::status.eq(MessageStatus::Failed.as_str()),
            m::error_code.eq(code),
            m::error.eq(error),
        ));
        with_conn!(conn, c => q.execute(c).await)?;
        Self::move_job(
            conn,
            job_id,
            MessageStatus::Sending,
            MessageStatus::Uncertain,
        )
        .await?;
        Ok(())
    }

    /// Frees a message's idempotency key (its send surely did nothing, so a retry may send).
    pub async fn release_key(conn: &mut Conn, id: &str) -> Result<(), DbError> {
        let q = diesel::update(m::table.find(id)).set(m::idempotency_key.eq(None::<String>));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// A job's messages by (status, error code): how many of each.
    pub async fn job_counts(
        conn: &mut Conn,
        job_id: &str,
    ) -> Result<Vec<(String, Option<String>, i64)>, DbError> {
        let q = m::table
            .filter(m::job_id.eq(job_id))
            .group_by((m::status, m::error_code))
            .select((m::status, m::error_code, diesel::dsl::count_star()));
        Ok(with_conn!(conn, c => q.load::<(String, Option<String>, i64)>(c).await)?)
    }

    /// Messages by `filter`, newest first, after the cursor `before` (an id), at most `limit`.
    pub async fn list(
        conn: &mut Conn,
        filter: &MessageFilter,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Self>, DbError> {
        Ok(with_conn!(conn, c => {
            let mut q = m::table.order(m::id.desc()).limit(limit).into_boxed();
            if let Some(u) = &filter.user_id {
                q = q.filter(m::user_id.eq(u.clone()));
            }
            if let Some(a) = &filter.app_id {
                q = q.filter(m::app_id.eq(a.clone()));
            }
            if let Some(s) = filter.status {
                q = q.filter(m::status.eq(s.as_str()));
            }
            if let Some(j) = &filter.job_id {
                q = q.filter(m::job_id.eq(j.clone()));
            }
            if let Some(b) = before {
                q = q.filter(m::id.lt(b.to_owned()));
            }
            q.load::<Self>(c).await
        })?)
    }
}
