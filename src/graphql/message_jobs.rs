//! Bulk sends in GraphQL: `WeChatMessageJob`, its status and its messages counted by outcome.

use async_graphql::{Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::messages::{WeChatMessageErrorCode, WeChatMessageStatus};
use crate::db::models::job::JobStatus;
use crate::db::models::message::MessageStatus as Status;
use crate::identity::messages::bulk::MessageJob as Job;

/// How many messages of a bulk job ended one way.
#[derive(SimpleObject)]
pub struct WeChatMessageOutcomeCount {
    /// Their status.
    pub status: WeChatMessageStatus,
    /// Their error code; null for messages that did not fail.
    pub code: Option<WeChatMessageErrorCode>,
    /// How many.
    pub count: i64,
}

/// Where a bulk job stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum WeChatMessageJobStatus {
    /// Waiting for a runner: not started yet, or waiting out WeChat's quota (45009) or an
    /// outage, the messages WeChat refused back in the queue (`wechat.quota_pause_secs`).
    Queued,
    /// Listing the recipients or sending.
    Running,
    /// Paused by the service's operator; it carries on from where it was when resumed.
    Paused,
    /// Every recipient was handled.
    Completed,
    /// Gave up (see `lastError`); its messages not sent fail with JOB_FAILED.
    Failed,
}

/// A bulk send with its progress, shown as `WeChatMessageJob`.
pub struct WeChatMessageJob(pub Job);

impl WeChatMessageJob {
    fn count(&self, status: Status) -> i64 {
        self.0
            .counts
            .iter()
            .filter(|(s, ..)| *s == status)
            .map(|(.., n)| n)
            .sum()
    }
}

/// One message to many users (`sendWeChatMessages`), sent by the job runner, and how far it got.
#[Object]
impl WeChatMessageJob {
    /// Job id (`wechatMessages(jobId)` lists its messages).
    async fn id(&self) -> ID {
        ID(self.0.job.id.to_string())
    }
    /// Where it stands.
    async fn status(&self) -> WeChatMessageJobStatus {
        match self.0.job.status {
            JobStatus::Queued => WeChatMessageJobStatus::Queued,
            JobStatus::Running => WeChatMessageJobStatus::Running,
            JobStatus::Paused => WeChatMessageJobStatus::Paused,
            JobStatus::Completed => WeChatMessageJobStatus::Completed,
            JobStatus::Failed => WeChatMessageJobStatus::Failed,
        }
    }
    /// The name of the API key that started it.
    async fn requested_by(&self) -> &str {
        &self.0.payload.requested_by
    }
    /// Recipients listed so far (all of them once listing is done).
    async fn total(&self) -> i64 {
        self.0.counts.iter().map(|(.., n)| n).sum()
    }
    /// Not sent yet.
    async fn queued(&self) -> i64 {
        self.count(Status::Queued)
    }
    /// Handed to WeChat, its answer not recorded yet.
    async fn sending(&self) -> i64 {
        self.count(Status::Sending)
    }
    /// Accepted by WeChat, delivery not reported yet.
    async fn sent(&self) -> i64 {
        self.count(Status::Sent)
    }
    /// Reported delivered.
    async fn delivered(&self) -> i64 {
        self.count(Status::Delivered)
    }
    /// Refused (by us or WeChat) or not delivered.
    async fn failed(&self) -> i64 {
        self.count(Status::Failed)
    }
    /// In flight when the service stopped, or unanswered by WeChat: never sent again.
    async fn uncertain(&self) -> i64 {
        self.count(Status::Uncertain)
    }
    /// Its messages counted by status and error code (one entry per pair that occurs).
    async fn outcomes(&self) -> Vec<WeChatMessageOutcomeCount> {
        self.0
            .counts
            .iter()
            .map(|(status, code, count)| WeChatMessageOutcomeCount {
                status: (*status).into(),
                code: code.map(Into::into),
                count: *count,
            })
            .collect()
    }
    /// When it was started.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.job.created_at.and_utc()
    }
    /// When it completed or failed; null while it runs.
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.job.finished_at.map(|t| t.and_utc())
    }
    /// Why its last run failed (a failed run is retried, up to `jobs.max_attempts` runs); null
    /// if none did.
    async fn last_error(&self) -> Option<&str> {
        self.0.job.last_error.as_deref()
    }
}
