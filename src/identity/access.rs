//! Access sealed by type. The HTTP layer turns each request's `Authorization` header into one
//! [`Access`] ([`Identity::access`]); a resolver asks it for the handle its field needs and gets
//! either the handle or the error the caller sees (UNAUTHENTICATED, FORBIDDEN):
//!
//! | handle | who | may |
//! |---|---|---|
//! | [`Public`] | anyone (no credentials needed, so bad ones are not refused) | log in, refresh, log out with a refresh token |
//! | [`Reader`] | admin and service API keys | read every user |
//! | [`Admin`] | admin API keys | merge, unlink, read the merge history, register templates |
//! | [`Messenger`] | admin and service API keys | send messages to users |
//! | [`SelfUser`] | a user's access token | read and log out itself |
//! | [`Related`] | any caller, for relations of what it was shown, and for lookups checked against [`Access::read_scope`] | batched reads by user id and by identity key |
//!
//! Two handles answer to no caller and are not on [`Access`]: [`Webhook`]
//! ([`Identity::webhook`], for the webhook route: WeChat's pushes, checked by signature) and
//! [`System`] ([`Identity::system`], for the job runner and `app.rs`: the jobs, purges and
//! start-up work). Only `http/webhook.rs`, `app.rs` and `jobs/` hold an [`Identity`]; the
//! GraphQL schema's data does not.
//!
//! Handles are made only here, and the identity layer's data is reachable only through them, so
//! a resolver that skips the check has nothing to read with. It does not compile:
//!
//! ```compile_fail
//! # async fn resolver(identity: &wechat_identity::identity::Identity) {
//! let mut conn = identity.db.conn().await; // the database is private to the identity layer
//! # }
//! ```
//!
//! ```compile_fail
//! # fn resolver(identity: &wechat_identity::identity::Identity) {
//! // Handles are made by `Access` only, from authenticated credentials.
//! let reader = wechat_identity::identity::access::Reader(identity);
//! # }
//! ```
//!
//! Job and webhook work is not on [`Identity`] itself but on [`System`] and [`Webhook`]:
//!
//! ```compile_fail
//! # async fn resolver(identity: &wechat_identity::identity::Identity) {
//! identity.purge_expired().await; // a job's work: `System::purge_expired`
//! # }
//! ```
//!
//! A resolver has only the request's [`Access`], and a handle derefs to the layer's parts, not to
//! [`Identity`], so no handle leads to the system or webhook handles or their work:
//!
//! ```compile_fail
//! # fn resolver(access: &wechat_identity::identity::access::Access) {
//! let system = access.admin().unwrap().system(); // `system()` is on `Identity` only
//! # }
//! ```
//!
//! ```compile_fail
//! # async fn resolver(access: &wechat_identity::identity::access::Access) {
//! let sent = access.messenger().unwrap().bulk_send_batch("j", &[]).await; // `System` only
//! # }
//! ```
//!
//! ```compile_fail
//! # async fn resolver(access: &wechat_identity::identity::access::Access) {
//! let q = wechat_identity::identity::server_side::webhook::PushQuery::default();
//! let stored = access.public().unwrap().receive_push("wx", &q, "").await; // `Webhook` only
//! # }
//! ```
//!
//! ```compile_fail
//! # fn resolver(access: &wechat_identity::identity::access::Access) {
//! let reader = access.reader().unwrap();
//! let identity: &wechat_identity::identity::Identity = &reader; // it derefs to `Parts`
//! # }
//! ```
//!
//! ```compile_fail
//! # fn resolver(identity: &wechat_identity::identity::Identity) {
//! // The system handle is made by `Identity::system` only.
//! let system = wechat_identity::identity::access::System(identity.clone());
//! # }
//! ```

use super::values::{LoginOutcome, NodeRow, Prefetched};
use super::{ClientInfo, Identity, IdentityError, Parts};
use crate::auth::sessions;
use crate::auth::{AuthError, Caller, Role};
use crate::db::models::user::UserRow;
use crate::rate_limit::Action;
use crate::types::UserId;
use std::sync::Arc;

/// One request's caller, as the identity layer lets it act.
pub struct Access {
    pub(super) identity: Identity,
    caller: Result<Caller, AuthError>,
    /// A user token's live user, read once per request (see [`Access::read_scope`]).
    me: tokio::sync::OnceCell<UserRow>,
}

/// Whose users and identities a caller may read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadScope {
    /// Everyone's (admin and service API keys).
    Everyone,
    /// One live user's, with the tombstones merged into it (a user token).
    Only(UserId),
}

impl ReadScope {
    /// Whether what belongs to the live user `owner` may be shown (`None`: nothing was found).
    /// A user token is refused anything but itself, found or not, so it learns nothing about
    /// other ids.
    pub fn check(&self, owner: Option<&UserId>) -> Result<(), IdentityError> {
        match self {
            ReadScope::Everyone => Ok(()),
            ReadScope::Only(me) if owner == Some(me) => Ok(()),
            ReadScope::Only(_) => Err(AuthError::Forbidden("a user may only read itself").into()),
        }
    }
}

impl Identity {
    /// The access of a request with this `Authorization` header value (`Bearer <access token |
    /// API key>`; none: anonymous). An access token must verify and its login be live (checked
    /// against the sessions, see `sessions`). Bad credentials are kept and refused on first use.
    pub async fn access(&self, authorization: Option<&[u8]>) -> Access {
        let caller = self.authenticate(authorization).await;
        Access {
            identity: self.clone(),
            caller,
            me: tokio::sync::OnceCell::new(),
        }
    }

    /// WeChat's pushes to an app's webhook route (`/wechat/{appId}/events`): checked by
    /// signature, not by an `Authorization` header.
    pub fn webhook(&self) -> Webhook<'_> {
        Webhook(self)
    }

    /// The service's own work — the job runner's jobs, the periodic chores, start-up — done on
    /// nobody's behalf and checked against nobody. For `app.rs` and `jobs/` only; a request
    /// acts through [`Identity::access`] (like lldap's loudly named `unsafe_get_handler`, this
    /// is the one way past the handles, kept out of every resolver's reach).
    pub fn system(&self) -> System {
        System(self.clone())
    }
}

pub(super) fn need_credentials() -> IdentityError {
    AuthError::Unauthenticated("this field needs `Authorization: Bearer <token>`").into()
}

impl Access {
    /// Who is calling (an error if the credentials were bad).
    pub fn caller(&self) -> Result<&Caller, IdentityError> {
        self.caller.as_ref().map_err(|e| e.clone().into())
    }

    /// What anyone may do. Needs no credentials, so bad ones do not stand in the way (a client
    /// refreshing after its access token expired still sends that token).
    pub fn public(&self) -> Result<Public<'_>, IdentityError> {
        Ok(Public(&self.identity))
    }

    /// Reads of every user (admin and service API keys).
    pub fn reader(&self) -> Result<Reader<'_>, IdentityError> {
        match self.caller()? {
            Caller::ApiKey { .. } => Ok(Reader(&self.identity)),
            Caller::User { .. } => {
                Err(AuthError::Forbidden("needs an admin or service API key").into())
            }
            Caller::Anonymous => Err(need_credentials()),
        }
    }

    /// Admin actions (admin API keys).
    pub fn admin(&self) -> Result<Admin<'_>, IdentityError> {
        match self.caller()? {
            Caller::ApiKey {
                name,
                role: Role::Admin,
            } => Ok(Admin {
                identity: &self.identity,
                name,
            }),
            Caller::ApiKey { .. } | Caller::User { .. } => {
                Err(AuthError::Forbidden("needs an admin API key").into())
            }
            Caller::Anonymous => Err(need_credentials()),
        }
    }

    /// Sending messages to users (admin and service API keys).
    pub fn messenger(&self) -> Result<Messenger<'_>, IdentityError> {
        match self.caller()? {
            Caller::ApiKey { name, .. } => Ok(Messenger {
                identity: &self.identity,
                name,
            }),
            Caller::User { .. } => {
                Err(AuthError::Forbidden("needs an admin or service API key").into())
            }
            Caller::Anonymous => Err(need_credentials()),
        }
    }

    /// The calling user acting on itself (user access tokens).
    pub fn self_user(&self) -> Result<SelfUser<'_>, IdentityError> {
        match self.caller()? {
            Caller::User { user_id, .. } => Ok(SelfUser {
                identity: &self.identity,
                user_id,
            }),
            Caller::ApiKey { .. } => Err(AuthError::Forbidden("needs a user access token").into()),
            Caller::Anonymous => Err(need_credentials()),
        }
    }

    /// Batched reads of the relations of objects this caller was already shown.
    pub fn related(&self) -> Related {
        Related(self.identity.clone(), Default::default())
    }

    /// Whose data this caller may read: everyone's for admin/service keys, its own live user's
    /// for a user token (read once per request), UNAUTHENTICATED for anonymous callers.
    pub async fn read_scope(&self) -> Result<ReadScope, IdentityError> {
        match self.caller()? {
            Caller::ApiKey { .. } => Ok(ReadScope::Everyone),
            Caller::User { .. } => {
                let me = self
                    .me
                    .get_or_try_init(|| async { self.self_user()?.live_user().await })
                    .await?;
                Ok(ReadScope::Only(me.id.clone()))
            }
            Caller::Anonymous => Err(need_credentials()),
        }
    }

    /// A user by id: any user for admin/service keys (a merged id answers the tombstone); for a
    /// user token, only itself (or a tombstone merged into it).
    pub async fn user(&self, id: &UserId) -> Result<Option<UserRow>, IdentityError> {
        let scope = self.read_scope().await?;
        let user = Reader(&self.identity).user(id).await?;
        scope.check(user.as_ref().map(UserRow::live_id))?;
        Ok(user)
    }

    /// Users and identities by id (see [`Reader::nodes`]): anything for admin/service keys; for a
    /// user token only itself, users merged into it and its identities — any other id, found or
    /// not, is FORBIDDEN.
    pub async fn nodes(&self, ids: &[String]) -> Result<Vec<Option<NodeRow>>, IdentityError> {
        if let Caller::User { .. } = self.caller()? {
            let me = self.self_user()?.live_user().await?;
            let nodes = Reader(&self.identity).nodes(ids).await?;
            if nodes
                .iter()
                .all(|n| n.as_ref().is_some_and(|n| n.belongs_to(&me.id)))
            {
                return Ok(nodes);
            }
            return Err(
                AuthError::Forbidden("a user may only read itself and its identities").into(),
            );
        }
        self.reader()?.nodes(ids).await
    }
}

/// What anyone may do: log in (`mini_program`, `official_account`, `oauth_state`), refresh and
/// log out with a refresh token.
pub struct Public<'a>(pub(super) &'a Identity);

impl Public<'_> {
    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), IdentityError> {
        Ok(self.db.ping().await?)
    }

    /// Our public signing keys (for `/.well-known/jwks.json`).
    pub fn jwks(&self) -> Arc<serde_json::Value> {
        self.tokens.jwks()
    }

    /// The `iss` of our access tokens (for `/.well-known/openid-configuration`).
    pub fn issuer(&self) -> &str {
        self.tokens.issuer()
    }

    /// Exchanges a refresh token for new tokens (rate-limited per address); see
    /// [`sessions::refresh`].
    pub async fn refresh_session(
        &self,
        refresh_token: &str,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, IdentityError> {
        self.rate_limit(Action::Refresh, client, None).await?;
        let refreshed = sessions::refresh(&self.db, &self.tokens, refresh_token, client).await;
        if let Err(sessions::SessionError::Reused) = refreshed {
            self.live_logins.forget();
        }
        let (user, tokens) = refreshed?;
        Ok(LoginOutcome {
            user,
            new_user: false,
            tokens,
        })
    }

    /// Ends the login a refresh token belongs to; see [`sessions::logout`].
    pub async fn logout(&self, refresh_token: &str) -> Result<bool, IdentityError> {
        let ended = sessions::logout(&self.db, refresh_token).await?;
        if ended {
            self.live_logins.forget();
        }
        Ok(ended)
    }
}

/// Reads of every user (admin and service API keys; see `reads`).
pub struct Reader<'a>(pub(super) &'a Identity);

/// Admin actions (admin API keys; see `admin`), recorded with the key's name as the actor.
pub struct Admin<'a> {
    pub(super) identity: &'a Identity,
    pub(super) name: &'a str,
}

/// Sending messages to users (admin and service API keys; see `messages`), recorded with the
/// key's name.
pub struct Messenger<'a> {
    pub(super) identity: &'a Identity,
    pub(super) name: &'a str,
}

/// The calling user (user access tokens; see `reads`).
pub struct SelfUser<'a> {
    pub(super) identity: &'a Identity,
    pub(super) user_id: &'a UserId,
}

impl SelfUser<'_> {
    /// Ends every login of this user (and of users merged into it); returns how many were
    /// active.
    pub async fn logout_everywhere(&self) -> Result<usize, IdentityError> {
        let ended = sessions::logout_everywhere(&self.db, self.user_id)
            .await?
            .unwrap_or(0);
        if ended > 0 {
            self.live_logins.forget();
        }
        Ok(ended)
    }
}

/// Batched reads of the relations (identities, owners, survivors) of objects a caller was already
/// shown through one of the other handles (see `reads`). Clones share what was prefetched.
#[derive(Clone)]
pub struct Related(pub(super) Identity, pub(super) Arc<Prefetched>);

/// WeChat's pushes to the webhook route (see `webhook`): verified by each app's token and
/// signature, stored, and left to the job runner.
pub struct Webhook<'a>(pub(super) &'a Identity);

/// The service's own work (see [`Identity::system`]): the jobs (webhook events, follower
/// syncs, bulk messages), the periodic purges, the sandbox's templates at start.
#[derive(Clone)]
pub struct System(pub(super) Identity);

/// Every handle works with the identity service's parts (private to this layer), never with
/// [`Identity`] itself: a handle cannot be turned into another one.
macro_rules! derefs_to_parts {
    ($($handle:ty => |$h:ident| $identity:expr),+ $(,)?) => {$(
        impl std::ops::Deref for $handle {
            type Target = Parts;

            fn deref(&self) -> &Parts {
                let $h = self;
                $identity
            }
        }
    )+};
}

derefs_to_parts!(
    Public<'_> => |h| h.0,
    Reader<'_> => |h| h.0,
    Admin<'_> => |h| h.identity,
    Messenger<'_> => |h| h.identity,
    SelfUser<'_> => |h| h.identity,
    Related => |h| &h.0,
    Webhook<'_> => |h| h.0,
    System => |h| &h.0,
);
