//! `messages`: every message addressed to a user, sent alone or by a bulk job, with how it went.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::messages as m;
use crate::db::{Conn, DbError};
use crate::types::{AppId, JobId, MessageId, OpenId, TemplateId, UserId, WechatMsgId};
use crate::with_conn;

crate::db::text_enum::text_enum! {
    /// Where a message stands.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum MessageStatus mirrored_by message_status_variants {
        /// A bulk job's message, not sent yet.
        Queued = "queued",
        /// Handed to WeChat; its answer is not recorded yet.
        Sending = "sending",
        /// WeChat accepted it; its delivery report has not come yet.
        Sent = "sent",
        /// WeChat reported it reached the person.
        Delivered = "delivered",
        /// Refused (by us or WeChat) or not delivered (see `error`).
        Failed = "failed",
        /// The service stopped, or WeChat did not answer, while WeChat had it: it may or may not
        /// have reached the person, and is never sent again (nobody gets a second copy).
        Uncertain = "uncertain",
    }
}

/// A row of `messages`.
#[derive(Clone, Debug, Queryable, Insertable)]
#[diesel(table_name = m)]
pub struct MessageRow {
    /// UUID (v7: ordered by creation).
    pub id: MessageId,
    /// The user it is addressed to (the survivor if the one asked for was merged).
    pub user_id: UserId,
    /// The app it went out on.
    pub app_id: Option<AppId>,
    /// The person's openid there.
    pub openid: Option<OpenId>,
    /// The channel (`wechat::messages::Channel`).
    pub channel: Option<String>,
    /// The template.
    pub template_id: Option<TemplateId>,
    /// Where it stands.
    pub status: MessageStatus,
    /// The request of a single send (JSON); empty for a bulk job's messages.
    pub content: String,
    /// WeChat's msgid.
    pub wechat_msg_id: Option<WechatMsgId>,
    /// Our error code (`NOT_FOLLOWING`, ...).
    pub error_code: Option<String>,
    /// WeChat's errcode.
    pub wechat_errcode: Option<i64>,
    /// What went wrong, for people.
    pub error: Option<String>,
    /// `{api key name}:{key}`.
    pub idempotency_key: Option<String>,
    /// The bulk job that sends it.
    pub job_id: Option<JobId>,
    /// When it was asked for.
    pub created_at: NaiveDateTime,
    /// When WeChat reported it delivered (or not).
    pub delivered_at: Option<NaiveDateTime>,
}

/// Where a message went and how (written when it is routed, sent or refused).
#[derive(Clone, Debug, AsChangeset)]
#[diesel(table_name = m, treat_none_as_null = true)]
pub struct Outcome {
    /// The app.
    pub app_id: Option<AppId>,
    /// The openid.
    pub openid: Option<OpenId>,
    /// The channel.
    pub channel: Option<String>,
    /// The template.
    pub template_id: Option<TemplateId>,
    /// The new status.
    pub status: MessageStatus,
    /// WeChat's msgid.
    pub wechat_msg_id: Option<WechatMsgId>,
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
    pub app_id: Option<AppId>,
    /// In this status.
    pub status: Option<MessageStatus>,
    /// Sent by this bulk job.
    pub job_id: Option<JobId>,
}

impl Outcome {
    /// Only the status (every other column NULL).
    pub fn new(status: MessageStatus) -> Self {
        Self {
            app_id: None,
            openid: None,
            channel: None,
            template_id: None,
            status,
            wechat_msg_id: None,
            error_code: None,
            wechat_errcode: None,
            error: None,
        }
    }
}

impl MessageRow {
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
    pub async fn find(conn: &mut Conn, id: &MessageId) -> Result<Option<Self>, DbError> {
        let q = m::table.find(id);
        Ok(with_conn!(conn, c => q.first::<Self>(c).await.optional())?)
    }

    /// The message stored under this (scoped) idempotency key.
    pub async fn find_by_key(conn: &mut Conn, key: &str) -> Result<Option<Self>, DbError> {
        let q = m::table.filter(m::idempotency_key.eq(key));
        Ok(with_conn!(conn, c => q.first::<Self>(c).await.optional())?)
    }

    /// Whether job `job_id` has a message for `user_id`.
    pub async fn job_has_user(
        conn: &mut Conn,
        job_id: &JobId,
        user_id: &UserId,
    ) -> Result<bool, DbError> {
        let q = m::table
            .filter(m::job_id.eq(job_id))
            .filter(m::user_id.eq(user_id))
            .select(m::id)
            .limit(1);
        Ok(with_conn!(conn, c => q.first::<MessageId>(c).await.optional())?.is_some())
    }

    /// Addresses a queued message to `user_id` instead (its user was merged into that one).
    pub async fn readdress(
        conn: &mut Conn,
        id: &MessageId,
        user_id: &UserId,
    ) -> Result<(), DbError> {
        let q = diesel::update(
            m::table
                .find(id)
                .filter(m::status.eq(MessageStatus::Queued)),
        )
        .set(m::user_id.eq(user_id));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// The oldest `limit` messages of a job in `status`.
    pub async fn of_job(
        conn: &mut Conn,
        job_id: &JobId,
        status: MessageStatus,
        limit: i64,
    ) -> Result<Vec<Self>, DbError> {
        let q = m::table
            .filter(m::job_id.eq(job_id))
            .filter(m::status.eq(status))
            .order(m::id.asc())
            .limit(limit);
        Ok(with_conn!(conn, c => q.load::<Self>(c).await)?)
    }

    /// Moves a job's messages from `from` to `to`; how many.
    pub async fn move_job(
        conn: &mut Conn,
        job_id: &JobId,
        from: MessageStatus,
        to: MessageStatus,
    ) -> Result<usize, DbError> {
        let q = diesel::update(
            m::table
                .filter(m::job_id.eq(job_id))
                .filter(m::status.eq(from)),
        )
        .set(m::status.eq(to));
        Ok(with_conn!(conn, c => q.execute(c).await)?)
    }

    /// Marks these messages `sending` if they are still `from`; how many were.
    pub async fn mark_sending(
        conn: &mut Conn,
        ids: &[MessageId],
        from: MessageStatus,
    ) -> Result<usize, DbError> {
        let q = diesel::update(
            m::table
                .filter(m::id.eq_any(ids))
                .filter(m::status.eq(from)),
        )
        .set(m::status.eq(MessageStatus::Sending));
        Ok(with_conn!(conn, c => q.execute(c).await)?)
    }

    /// Writes where a message went and how, if it is still in status `from` (a delivery report
    /// may have come first); whether it was.
    pub async fn record_if(
        conn: &mut Conn,
        id: &MessageId,
        from: MessageStatus,
        outcome: &Outcome,
    ) -> Result<bool, DbError> {
        let q = diesel::update(m::table.find(id).filter(m::status.eq(from))).set(outcome);
        let written = with_conn!(conn, c => q.execute(c).await)? == 1;
        if written
            && !matches!(
                outcome.status,
                MessageStatus::Queued | MessageStatus::Sending
            )
        {
            crate::metrics::message(outcome.status.as_str(), 1);
        }
        Ok(written)
    }

    /// Single sends (not a bulk job's) still `sending` since before `before` — their request
    /// died between the call and the write of its answer — become `uncertain`; how many.
    pub async fn expire_sending(conn: &mut Conn, before: NaiveDateTime) -> Result<usize, DbError> {
        let q = diesel::update(
            m::table
                .filter(m::job_id.is_null())
                .filter(m::status.eq(MessageStatus::Sending))
                .filter(m::created_at.lt(before)),
        )
        .set(m::status.eq(MessageStatus::Uncertain));
        let n = with_conn!(conn, c => q.execute(c).await)?;
        crate::metrics::message(MessageStatus::Uncertain.as_str(), n as u64);
        Ok(n)
    }

    /// A failed job's messages still `queued` fail with `code`, those `sending` become
    /// `uncertain`.
    pub async fn close_job(
        conn: &mut Conn,
        job_id: &JobId,
        code: &str,
        error: &str,
    ) -> Result<(), DbError> {
        let q = diesel::update(
            m::table
                .filter(m::job_id.eq(job_id))
                .filter(m::status.eq(MessageStatus::Queued)),
        )
        .set((
            m::status.eq(MessageStatus::Failed),
            m::error_code.eq(code),
            m::error.eq(error),
        ));
        let failed = with_conn!(conn, c => q.execute(c).await)?;
        crate::metrics::message(MessageStatus::Failed.as_str(), failed as u64);
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
    pub async fn release_key(conn: &mut Conn, id: &MessageId) -> Result<(), DbError> {
        let q = diesel::update(m::table.find(id)).set(m::idempotency_key.eq(None::<String>));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// A job's messages by (status, error code): how many of each.
    pub async fn job_counts(
        conn: &mut Conn,
        job_id: &JobId,
    ) -> Result<Vec<(MessageStatus, Option<String>, i64)>, DbError> {
        let q = m::table
            .filter(m::job_id.eq(job_id))
            .group_by((m::status, m::error_code))
            .select((m::status, m::error_code, diesel::dsl::count_star()));
        Ok(with_conn!(conn, c => q.load::<(MessageStatus, Option<String>, i64)>(c).await)?)
    }

    /// Messages by `filter`, newest first, after the cursor `before` (an id), at most `limit`.
    pub async fn list(
        conn: &mut Conn,
        filter: &MessageFilter,
        before: Option<&MessageId>,
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
                q = q.filter(m::status.eq(s));
            }
            if let Some(j) = &filter.job_id {
                q = q.filter(m::job_id.eq(j.clone()));
            }
            if let Some(b) = before {
                q = q.filter(m::id.lt(b.clone()));
            }
            q.load::<Self>(c).await
        })?)
    }
}
