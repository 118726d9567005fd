//! A bulk job's progress as callers see it: the job, its request, and its messages counted by
//! outcome.

use super::FailureCode;
use super::bulk::BulkPayload;
use crate::db::models::job::JobRow;
use crate::db::models::message::{MessageRow, MessageStatus};
use crate::identity::{IdentityError, Parts};

/// A bulk job and its messages by outcome.
#[derive(Clone, Debug)]
pub struct MessageJob {
    /// The job.
    pub job: JobRow,
    /// The request.
    pub payload: BulkPayload,
    /// (status, failure code, how many).
    pub counts: Vec<(MessageStatus, Option<FailureCode>, i64)>,
}

impl Parts {
    /// The job with its messages counted by outcome; a failed job's unsent messages are
    /// closed as `JOB_FAILED` first.
    pub(super) async fn message_job_view(&self, job: JobRow) -> Result<MessageJob, IdentityError> {
        let payload = crate::db::queue::spec::<BulkPayload>(&job)
            .map_err(|e| IdentityError::Internal(format!("bulk payload: {e}")))?
            .ok_or_else(|| IdentityError::Internal(format!("job {} is no bulk send", job.id)))?;
        let mut conn = self.db.conn().await?;
        if job.status == crate::db::models::job::JobStatus::Failed {
            // Its messages not sent will not be: they fail with the job (once; idempotent).
            let why = job.last_error.as_deref().unwrap_or("the bulk job failed");
            let code = FailureCode::JobFailed.as_str();
            MessageRow::close_job(&mut conn, &job.id, code, why).await?;
        }
        let counts = MessageRow::job_counts(&mut conn, &job.id)
            .await?
            .into_iter()
            .map(|(s, code, n)| (s, code.as_deref().map(FailureCode::parse), n))
            .collect();
        Ok(MessageJob {
            job,
            payload,
            counts,
        })
    }
}
