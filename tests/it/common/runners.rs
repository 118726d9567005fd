//! Job runners of their own (no service) on a database of their own, for the runner tests
//! (`jobs.rs`, `wake.rs`): a scratch database, the settings, starting and stopping a runner, and
//! reading a job.

use std::time::Duration;

use tempfile::TempDir;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use wechat_identity::config::JobsConfig;
use wechat_identity::db::Db;
use wechat_identity::jobs::{self, JobRow, JobStatus, Runner};
use wechat_identity::types::JobId;

use super::{Backend, eventually, pg_admin, pg_admin_url};

/// A fresh, empty database (dropped at the end on PostgreSQL).
pub(crate) struct Scratch {
    url: String,
    _dir: TempDir,
    pg: Option<String>,
}

impl Scratch {
    pub(crate) fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => Scratch {
                url: format!("sqlite://{}", dir.path().join("jobs.db").display()),
                _dir: dir,
                pg: None,
            },
            Backend::Postgres => {
                let name = format!("wi_jobs_{}", uuid::Uuid::new_v4().simple());
                pg_admin(format!("CREATE DATABASE {name}"));
                let mut url = reqwest::Url::parse(&pg_admin_url()).unwrap();
                url.set_path(&name);
                Scratch {
                    url: url.to_string(),
                    _dir: dir,
                    pg: Some(name),
                }
            }
        }
    }

    /// A pool of its own: each runner gets one, as each instance of the service would.
    pub(crate) async fn db(&self) -> Db {
        Db::connect(&self.url, 4).await.expect("database opens")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(name) = self.pg.take() {
            pg_admin(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

pub(crate) fn settings(instance: &str, lease_secs: u64) -> JobsConfig {
    JobsConfig {
        poll_interval_ms: 20,
        lease_secs,
        max_concurrent: 2,
        max_attempts: 3,
        retry_backoff_ms: 100,
        instance_id: Some(instance.to_owned()),
    }
}

/// A running runner and the switch that stops it.
pub(crate) struct Started {
    stop: watch::Sender<bool>,
    pub(crate) task: JoinHandle<()>,
}

pub(crate) fn start(runner: Runner) -> Started {
    let (stop, stopped) = watch::channel(false);
    Started {
        stop,
        task: runner.spawn(stopped),
    }
}

impl Started {
    /// Shuts it down the way the service does, and waits for it.
    pub(crate) async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the runner stops")
            .unwrap();
    }
}

pub(crate) async fn job(db: &Db, id: &JobId) -> JobRow {
    jobs::find(db, id).await.unwrap().expect("the job exists")
}

/// The job, if it has `status`; otherwise what it is.
pub(crate) async fn status_is(db: &Db, id: &JobId, status: JobStatus) -> Result<JobRow, JobRow> {
    let row = job(db, id).await;
    if row.status == status {
        Ok(row)
    } else {
        Err(row)
    }
}

/// Waits (at most `secs`) until job `id` has `status`.
pub(crate) async fn until_status(db: &Db, id: &JobId, status: JobStatus, secs: u64) -> JobRow {
    let what = format!("job {id} is {status:?}");
    eventually(Duration::from_secs(secs), &what, || {
        status_is(db, id, status)
    })
    .await
}
