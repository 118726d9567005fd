//! What a handler sees of the job it runs besides its payload: its checkpoint, and the lease.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{JobError, JobSpec};
use crate::db::Db;
use crate::db::models::job::JobRow;
use crate::db::models::now;
use crate::types::JobId;

/// The job a handler runs, as claimed, and its lease.
pub struct JobContext {
    db: Db,
    row: JobRow,
    /// The claim token (`lease_owner`) that fences every write.
    token: String,
    lease: Duration,
}

impl JobContext {
    pub(crate) fn new(db: Db, row: JobRow, token: String, lease: Duration) -> Self {
        Self {
            db,
            row,
            token,
            lease,
        }
    }

    /// The job's id.
    pub fn id(&self) -> &JobId {
        &self.row.id
    }

    /// Its kind.
    pub fn kind(&self) -> &str {
        &self.row.kind
    }

    /// Its key.
    pub fn key(&self) -> &str {
        &self.row.key
    }

    /// Which run this is (1 for the first; counts runs that failed or died since the job was
    /// queued or last rescheduled).
    pub fn attempt(&self) -> u32 {
        u32::try_from(self.row.attempts).unwrap_or(0)
    }

    /// The payload as `J` (the runner hands it to the handler of `J::KIND`); a payload that does
    /// not parse fails the job: another run would not do better.
    pub(super) fn payload<J: JobSpec>(&self) -> Result<J, JobError> {
        serde_json::from_str(&self.row.payload)
            .map_err(|e| JobError::Fatal(format!("the job's payload does not parse: {e}")))
    }

    /// The last checkpoint saved (by this run, or by an earlier one that died or failed).
    pub fn checkpoint<T: DeserializeOwned>(&self) -> Result<Option<T>, JobError> {
        self.row
            .checkpoint
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| JobError::Fatal(format!("the job's checkpoint does not parse: {e}")))
    }

    /// Saves a checkpoint (a run that picks the job up after a crash starts from it) and
    /// renews the lease. [`JobError::LeaseLost`] when this runner no longer holds the job:
    /// return it (`?`), another runner carries on.
    pub async fn save_checkpoint<T: Serialize>(&mut self, checkpoint: &T) -> Result<(), JobError> {
        let text = serde_json::to_string(checkpoint)
            .map_err(|e| JobError::Fatal(format!("the checkpoint does not serialize: {e}")))?;
        let at = now();
        let mut conn = self.db.conn().await?;
        let held = JobRow::save_checkpoint(
            &mut conn,
            &self.row.id,
            &self.token,
            &text,
            self.until(),
            at,
        )
        .await?;
        if !held {
            return Err(JobError::LeaseLost);
        }
        self.row.checkpoint = Some(text);
        Ok(())
    }

    /// Renews the lease now (the runner also does every third of it while the handler runs);
    /// [`JobError::LeaseLost`] when this runner no longer holds the job.
    pub async fn renew_lease(&self) -> Result<(), JobError> {
        let mut conn = self.db.conn().await?;
        if JobRow::renew(&mut conn, &self.row.id, &self.token, self.until(), now()).await? {
            Ok(())
        } else {
            Err(JobError::LeaseLost)
        }
    }

    /// The checkpoint as stored, for the runner's final write.
    pub(crate) fn into_checkpoint(self) -> Option<String> {
        self.row.checkpoint
    }

    fn until(&self) -> chrono::NaiveDateTime {
        now() + chrono::Duration::from_std(self.lease).unwrap_or_default()
    }
}
