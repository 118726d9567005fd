//! Shared by both test suites: a job of numbered steps, checkpointed one by one, whose handler
//! can hang for good after a given step (its runner is then killed or shut down there), and a
//! log of what the runs of every runner did.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use wechat_identity::jobs::{Job, JobContext, JobError, JobOutcome, JobSpec};

/// Steps `1..=steps`; one job per `subject` when given.
#[derive(Serialize, Deserialize)]
pub struct StepsJob {
    pub steps: u32,
    pub subject: Option<String>,
}

impl JobSpec for StepsJob {
    const KIND: &'static str = "steps";

    fn dedup_key(&self) -> Option<String> {
        self.subject.clone()
    }
}

/// What the runs did, across the runners of one test.
#[derive(Clone, Default)]
pub struct StepLog {
    done: Arc<Mutex<Vec<(&'static str, u32)>>>,
    resumed_from: Arc<Mutex<Vec<Option<u32>>>>,
    hanging: Arc<Notify>,
}

impl StepLog {
    /// The handler of runner `instance`; with `hang_after`, it hangs after that step.
    pub fn handler(&self, instance: &'static str, hang_after: Option<u32>) -> Steps {
        Steps {
            instance,
            hang_after,
            log: self.clone(),
        }
    }

    /// Resolves once a handler hangs.
    pub async fn hanging(&self) {
        self.hanging.notified().await;
    }

    /// (runner, step) of every step done, in order.
    pub fn done(&self) -> Vec<(&'static str, u32)> {
        self.done.lock().unwrap().clone()
    }

    /// The checkpoint each run started from.
    pub fn resumed_from(&self) -> Vec<Option<u32>> {
        self.resumed_from.lock().unwrap().clone()
    }
}

/// Runs [`StepsJob`]s from their checkpoint, saving one after every step.
pub struct Steps {
    instance: &'static str,
    hang_after: Option<u32>,
    log: StepLog,
}

impl Job for Steps {
    type Spec = StepsJob;

    async fn run(&self, job: StepsJob, ctx: &mut JobContext) -> Result<JobOutcome, JobError> {
        let from: Option<u32> = ctx.checkpoint()?;
        self.log.resumed_from.lock().unwrap().push(from);
        for step in from.unwrap_or(0) + 1..=job.steps {
            self.log.done.lock().unwrap().push((self.instance, step));
            ctx.save_checkpoint(&step).await?;
            if self.hang_after == Some(step) {
                self.log.hanging.notify_one();
                std::future::pending::<()>().await;
            }
        }
        Ok(JobOutcome::Done)
    }
}
