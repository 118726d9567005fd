//! Waking the job runner when work arrives, instead of at its next poll: [`Db::job_queued`]
//! resolves when a job was queued through this pool ([`crate::db::queue::enqueue`] calls
//! [`Db::wake_jobs`] after its commit) or, on PostgreSQL, by another instance: `enqueue` sends
//! `NOTIFY` on [`CHANNEL`] in its transaction (delivered at commit), and [`Db::listen_for_jobs`]
//! holds one connection that `LISTEN`s and wakes this process's runner. The runner's poll stays
//! as the fallback (a lost connection, a job that becomes due later).

use std::time::Duration;

use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use futures_util::StreamExt as _;
use tokio::sync::{Notify, watch};

use super::{Db, PgConn};

/// The PostgreSQL notification channel of queued jobs.
pub const CHANNEL: &str = "wechat_identity_jobs";

/// How often the listening connection is checked (a dead one is replaced).
const CHECK_EVERY: Duration = Duration::from_secs(30);
/// The pause before connecting again after a failure.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The runner's alarm, shared by every clone of one [`Db`].
pub(super) struct Wake {
    notify: Notify,
    /// PostgreSQL: the database to listen on.
    url: Option<String>,
}

impl Wake {
    pub(super) fn new(url: Option<&str>) -> Self {
        Self {
            notify: Notify::new(),
            url: url.map(str::to_owned),
        }
    }
}

impl Db {
    /// Tells this process's job runner that a job was queued (a wake-up is kept until the
    /// runner next waits, so none is lost).
    pub fn wake_jobs(&self) {
        self.wake.notify.notify_one();
    }

    /// Resolves at the next [`Db::wake_jobs`] (or at once if one came since the last wait).
    pub async fn job_queued(&self) {
        self.wake.notify.notified().await;
    }

    /// PostgreSQL: until `stopped` turns true, listens for jobs queued by any instance and wakes
    /// this one's runner; reconnects after a failure. SQLite: returns at once (one process per
    /// file is the embedded case; the in-process wake-up covers it).
    pub async fn listen_for_jobs(&self, mut stopped: watch::Receiver<bool>) {
        let Some(url) = self.wake.url.clone() else {
            return;
        };
        loop {
            tokio::select! {
                () = self.listen_once(&url) => {}
                _ = stopped.wait_for(|stop| *stop) => return,
            }
            tokio::select! {
                () = tokio::time::sleep(RETRY_AFTER) => {}
                _ = stopped.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// One listening connection, until it fails.
    async fn listen_once(&self, url: &str) {
        let mut conn = match PgConn::establish(url).await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "cannot connect to listen for queued jobs; the runner polls meanwhile");
                return;
            }
        };
        if let Err(e) = conn.batch_execute(&format!("LISTEN {CHANNEL}")).await {
            tracing::warn!(error = %e, "LISTEN for queued jobs failed; the runner polls meanwhile");
            return;
        }
        loop {
            {
                let notifications = conn.notifications_stream();
                let mut notifications = std::pin::pin!(notifications);
                let deadline = tokio::time::sleep(CHECK_EVERY);
                tokio::pin!(deadline);
                loop {
                    tokio::select! {
                        n = notifications.next() => match n {
                            Some(Ok(_)) => self.wake_jobs(),
                            Some(Err(e)) => {
                                tracing::warn!(error = %e, "listening for queued jobs failed; connecting again");
                                return;
                            }
                            None => return,
                        },
                        () = &mut deadline => break,
                    }
                }
            }
            if let Err(e) = conn.batch_execute("SELECT 1").await {
                tracing::warn!(error = %e, "the connection listening for queued jobs is gone; connecting again");
                return;
            }
        }
    }
}
