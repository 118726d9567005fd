//! What an operator watches, read in a few aggregate statements: the job queue by kind and
//! status, webhook pushes not yet processed, outbound event deliveries waiting or given up, and
//! the age of each app's kept WeChat credentials. Read by `/metrics` (at most once a second)
//! and `/healthz/details`.

use chrono::NaiveDateTime;
use diesel::dsl::{count_star, min};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::{event_deliveries, jobs, webhook_events, wechat_access_tokens};
use crate::db::{Conn, DbError};
use crate::with_conn;

/// Jobs of one kind in one status.
#[derive(Clone, Debug, serde::Serialize)]
pub struct JobCount {
    /// The job kind.
    pub kind: String,
    /// `queued`, `running`, `paused` or `failed`.
    pub status: String,
    /// How many.
    pub count: i64,
    /// The earliest `run_at` among them.
    #[serde(skip)]
    pub earliest_run_at: Option<NaiveDateTime>,
}

/// An app's kept credential and when it was fetched.
#[derive(Clone, Debug)]
pub struct KeptAge {
    /// The app.
    pub app_id: String,
    /// `access_token` or `jsapi_ticket`.
    pub kind: String,
    /// When it was fetched (None: never, or refused since).
    pub fetched_at: Option<NaiveDateTime>,
    /// When it expires.
    pub expires_at: Option<NaiveDateTime>,
}

/// The snapshot.
#[derive(Clone, Debug, Default)]
pub struct Operations {
    /// Jobs not completed, by kind and status.
    pub jobs: Vec<JobCount>,
    /// Webhook pushes stored and not processed yet.
    pub webhook_pending: i64,
    /// Event deliveries by status (`pending`, `failed`; delivered ones are not counted).
    pub deliveries: Vec<(String, i64)>,
    /// Kept credentials.
    pub kept: Vec<KeptAge>,
}

impl Operations {
    /// Reads the snapshot.
    pub async fn read(conn: &mut Conn) -> Result<Self, DbError> {
        let live = ["queued", "running", "paused", "failed"];
        let jobs_q = jobs::table
            .filter(jobs::status.eq_any(live))
            .group_by((jobs::kind, jobs::status))
            .select((jobs::kind, jobs::status, count_star(), min(jobs::run_at)));
        let rows: Vec<(String, String, i64, Option<NaiveDateTime>)> =
            with_conn!(conn, c => jobs_q.load(c).await)?;
        let webhook_q = webhook_events::table
            .filter(webhook_events::processed_at.is_null())
            .select(count_star());
        let webhook_pending: i64 = with_conn!(conn, c => webhook_q.get_result(c).await)?;
        // One count per status, each on its partial index.
        let mut deliveries = Vec::with_capacity(2);
        for status in ["pending", "failed"] {
            let q = event_deliveries::table
                .filter(event_deliveries::status.eq(status))
                .select(count_star());
            let count: i64 = with_conn!(conn, c => q.get_result(c).await)?;
            deliveries.push((status.to_owned(), count));
        }
        let kept_q = wechat_access_tokens::table.select((
            wechat_access_tokens::app_id,
            wechat_access_tokens::kind,
            wechat_access_tokens::fetched_at,
            wechat_access_tokens::expires_at,
        ));
        let kept: Vec<(String, String, Option<NaiveDateTime>, Option<NaiveDateTime>)> =
            with_conn!(conn, c => kept_q.load(c).await)?;
        Ok(Self {
            jobs: rows
                .into_iter()
                .map(|(kind, status, count, earliest_run_at)| JobCount {
                    kind,
                    status,
                    count,
                    earliest_run_at,
                })
                .collect(),
            webhook_pending,
            deliveries,
            kept: kept
                .into_iter()
                .map(|(app_id, kind, fetched_at, expires_at)| KeptAge {
                    app_id,
                    kind,
                    fetched_at,
                    expires_at,
                })
                .collect(),
        })
    }
}
