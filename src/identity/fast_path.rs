//! PostgreSQL only: a returning user's login — Mini Program, or Official Account without a
//! profile (`snsapi_base`, or `snsapi_userinfo` that brought none) — in one statement (one round
//! trip, one implicit transaction) instead of six to eight, when nothing needs deciding. It
//! applies only to a sighting that [`super::sighting::record`] would settle without a choice: the
//! identity exists, its unionid agrees with WeChat's (or WeChat sent none), and its user is live
//! with the same unionid; there is no profile to fill. Then the full path would re-attach the
//! identity to the same user, keep the same unionid, store the session_key (Mini Program) or the
//! scope (Official Account, whose state it also spends) and the time, and open a session — which
//! is what the statement ([`FastLogin`]) does. Otherwise it changes nothing and the full path
//! runs. A test runs both paths over every starting state and compares what they leave behind
//! (`tests/it/fast_path.rs`; `fast_path_races.rs` for a merge running at the same time;
//! `official_account_login.rs` for the Official Account's state).
//!
//! One race differs in effect: when a merge moves an Official Account identity between the
//! statement's snapshot and its row lock, the statement has spent the state but not logged in;
//! the full path then refuses the spent state and the person starts the login again.

use super::sighting::{Seen, Sighting};
use super::values::LoginOutcome;
use super::{ClientInfo, IdentityError, Parts};
use crate::auth::sessions::PendingSession;
use crate::db::Backend;
use crate::db::models::fast_login::{FastLogin, FastSeen};
use crate::metrics;
use crate::types::OauthStateId;

impl Parts {
    /// The fast path for `sighting` (an Official Account login's with the id of the state it
    /// spends), or `None` when the full path must run.
    pub(super) async fn returning_login(
        &self,
        sighting: &Sighting<'_>,
        state_id: Option<&OauthStateId>,
        client: &ClientInfo,
    ) -> Result<Option<LoginOutcome>, IdentityError> {
        let seen = match (&sighting.seen, state_id) {
            (Seen::MiniProgramLogin { session_key }, None) => FastSeen::MiniProgram { session_key },
            (
                Seen::OfficialAccountLogin {
                    scope,
                    profile: None,
                },
                Some(state_id),
            ) => FastSeen::OfficialAccount {
                scope: scope.as_str(),
                state_id,
            },
            _ => return Ok(None),
        };
        if !self.fast_path
            || sighting.profile.is_some()
            || sighting.phone.is_some()
            || self.db.backend() != Backend::Postgres
        {
            return Ok(None);
        }
        let pending = PendingSession::generate(&self.tokens);
        let ip = client.ip.map(|ip| ip.to_string());
        let fast = FastLogin {
            at: pending.created_at,
            seen,
            app_id: sighting.app_id,
            openid: sighting.openid,
            unionid: sighting.unionid,
            session_id: &pending.id,
            token_hash: &pending.token_hash,
            expires_at: pending.expires_at,
            user_agent: client.user_agent.as_deref(),
            ip: ip.as_deref(),
        };
        let found = match fast.run(&mut self.db.conn().await?).await {
            Ok(found) => found,
            // A deadlock with a concurrent merge (or another race): the full path decides, and
            // runs again if it loses too. The statement changed nothing.
            Err(e) if e.race().is_some() => {
                tracing::debug!(race = ?e.race(), "fast login lost a race; taking the full path");
                None
            }
            Err(e) => return Err(e.into()),
        };
        if found.is_some() {
            metrics::transaction("commit");
        }
        Ok(found.map(|user| LoginOutcome {
            tokens: pending.into_tokens(&self.tokens, &user.id, None, Some(sighting.app_id)),
            user,
            new_user: false,
        }))
    }
}
