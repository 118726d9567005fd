//! The `jobs` queue, continued: a one-per-key job that works through whatever is pending, asked
//! for again while it runs (work arrived after its last look), runs once more when it ends,
//! instead of leaving that work to a sweep a minute later.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use wechat_identity::db::Db;
use wechat_identity::db::models::job::JobStatus;
use wechat_identity::db::queue::{self, JobSpec};
use wechat_identity::jobs::{Job, JobContext, JobError, JobOutcome};

use crate::common::*;
use crate::models_jobs::{Runs, row, runner};
use crate::on_both_backends;

on_both_backends!(a_job_asked_for_while_it_runs_runs_once_more);

/// Works through a subject's pending work; asked for again while running, it runs again.
#[derive(Serialize, Deserialize)]
struct Drain {
    subject: String,
}

impl JobSpec for Drain {
    const KIND: &'static str = "drain";
    const RERUN_IF_ASKED_WHILE_RUNNING: bool = true;

    fn dedup_key(&self) -> Option<String> {
        Some(self.subject.clone())
    }
}

/// Its first run sees new work arrive (the job is asked for again) after its last look.
struct RunDrain {
    db: Db,
    runs: Runs,
}

impl Job for RunDrain {
    type Spec = Drain;

    async fn run(&self, job: Drain, ctx: &mut JobContext) -> Result<JobOutcome, JobError> {
        let first = {
            let mut runs = self.runs.lock().unwrap();
            runs.push(("a", ctx.id().to_owned(), ctx.attempt()));
            runs.len() == 1
        };
        if first {
            // The run has looked; now work arrives, and whoever stored it asks for the job.
            let again = queue::enqueue(&self.db, &job)
                .await
                .map_err(JobError::retry)?;
            assert_eq!(&again.id, ctx.id(), "the running job, not a second one");
            assert!(again.status == JobStatus::Running);
        }
        Ok(JobOutcome::Done)
    }
}

async fn a_job_asked_for_while_it_runs_runs_once_more(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let runs: Runs = Arc::default();
    let drain = RunDrain {
        db: ctx.db.clone(),
        runs: runs.clone(),
    };
    let a = runner(&ctx, "a", drain).await;
    let job = Drain {
        subject: "app1".into(),
    };
    let queued = queue::enqueue(&ctx.db, &job).await.unwrap();

    // The run that was asked for again is queued once more, due at once: the runner takes it
    // in the same pass. The second run sees nothing new; the job completes and stays so.
    assert_eq!(a.run_pending().await.unwrap(), 2);
    let done = row(&ctx, &queued.id).await;
    assert_eq!((done.status, done.rerun), (JobStatus::Completed, false));
    assert_eq!(a.run_pending().await.unwrap(), 0);
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 2);
    assert!(
        runs.iter().all(|r| r.1 == queued.id),
        "one job, run twice: {runs:?}"
    );
    assert_eq!(runs[1].2, 1, "the rerun is a first attempt, not a retry");
}
