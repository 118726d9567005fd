//! Whether an access token's login is still live: its `sid` checked against the sessions table,
//! the answer kept per instance for at most `jwt.revocation_check_secs`. A logout, `endSession`,
//! `revokeSessions` or a refresh-token reuse is therefore refused by every instance within that
//! window (at once by the instance that did it: it forgets what it kept), while a client making
//! many calls with one token costs one statement per window.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::db::models::now;
use crate::db::models::session::SessionRow;
use crate::db::{Db, DbError};

/// Logins remembered at most (an entry is a few dozen bytes): past this, all of them are
/// forgotten at once (the next calls ask the database again), so a full map costs one clearing
/// per this many new logins, never a scan per call.
pub const MAX_REMEMBERED: usize = 100_000;

/// The per-instance memory of which logins are live.
pub struct LiveLogins {
    window: Duration,
    seen: Mutex<HashMap<String, (Instant, bool)>>,
}

impl LiveLogins {
    /// Answers kept for `window` (zero: the database is asked every time).
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the login `sid` is live: from memory if asked within the window, else from the
    /// database.
    pub async fn is_live(&self, db: &Db, sid: &str) -> Result<bool, DbError> {
        if let Some(&(at, live)) = self.seen.lock().expect("live logins").get(sid)
            && at.elapsed() < self.window
        {
            return Ok(live);
        }
        let live = Self::is_live_now(db, sid).await?;
        if !self.window.is_zero() {
            let mut seen = self.seen.lock().expect("live logins");
            if seen.len() >= MAX_REMEMBERED {
                seen.clear();
            }
            seen.insert(sid.to_owned(), (Instant::now(), live));
        }
        Ok(live)
    }

    /// Whether the login `sid` is live, asked of the database now (introspection).
    pub async fn is_live_now(db: &Db, sid: &str) -> Result<bool, DbError> {
        SessionRow::login_is_live(&mut db.conn().await?, sid, now()).await
    }

    /// Forgets every answer: this instance just ended a login. (An answer being read from the
    /// database meanwhile may still be kept, for at most the window.)
    pub fn forget(&self) {
        self.seen.lock().expect("live logins").clear();
    }
}
