//! Values the access handles hand out or hold, shared by `access.rs` and the modules that
//! implement the handles' methods (a leaf: it imports no module of `identity`).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::auth::IssuedTokens;
use crate::db::models::app_login_identity::{MobileAppIdentityRow, WebsiteIdentityRow};
use crate::db::models::mini_program_identity::MiniProgramIdentityRow;
use crate::db::models::official_account_identity::OfficialAccountIdentityRow;
use crate::db::models::user::UserRow;
use crate::types::UserId;

/// A successful login.
#[derive(Clone)]
pub struct LoginOutcome {
    /// The live user.
    pub user: UserRow,
    /// Whether the user was created by this login.
    pub new_user: bool,
    /// Our tokens.
    pub tokens: IssuedTokens,
}

/// A row found by id.
#[derive(Clone, Debug)]
pub enum NodeRow {
    /// A user (live, or a tombstone).
    User(UserRow),
    /// A Mini Program identity.
    MiniProgram(MiniProgramIdentityRow),
    /// An Official Account identity.
    OfficialAccount(OfficialAccountIdentityRow),
    /// A website identity.
    Website(WebsiteIdentityRow),
    /// A mobile-app identity.
    MobileApp(MobileAppIdentityRow),
}

impl NodeRow {
    /// The id of the row.
    pub fn id(&self) -> &str {
        match self {
            NodeRow::User(u) => u.id.as_str(),
            NodeRow::MiniProgram(i) => i.id.as_str(),
            NodeRow::OfficialAccount(i) => i.id.as_str(),
            NodeRow::Website(i) => i.id.as_str(),
            NodeRow::MobileApp(i) => i.id.as_str(),
        }
    }

    /// Whether the user `me` may see it: itself, a user merged into it, its identities.
    pub fn belongs_to(&self, me: &UserId) -> bool {
        match self {
            NodeRow::User(u) => &u.id == me || u.merged_into.as_ref() == Some(me),
            NodeRow::MiniProgram(i) => &i.user_id == me,
            NodeRow::OfficialAccount(i) => &i.user_id == me,
            NodeRow::Website(i) => &i.user_id == me,
            NodeRow::MobileApp(i) => &i.user_id == me,
        }
    }
}

/// Identities read ahead for a page of users (by [`Related::prefetch_identities`]), handed out
/// once each to the batched reads that ask for them.
#[derive(Default)]
pub struct Prefetched {
    pub(super) mini_program: Memo<MiniProgramIdentityRow>,
    pub(super) official_account: Memo<OfficialAccountIdentityRow>,
    pub(super) website: Memo<WebsiteIdentityRow>,
    pub(super) mobile_app: Memo<MobileAppIdentityRow>,
}

/// Rows read ahead, by user id.
pub(super) type Memo<R> = Mutex<HashMap<UserId, Vec<R>>>;

/// Stores `rows` under each of `ids` (an empty list for ids without rows).
pub(super) fn remember<R>(
    memo: &Memo<R>,
    ids: &[UserId],
    rows: Vec<R>,
    user: impl Fn(&R) -> &UserId,
) {
    let mut memo = memo.lock().unwrap_or_else(|p| p.into_inner());
    for id in ids {
        memo.insert(id.clone(), Vec::new());
    }
    for row in rows {
        memo.entry(user(&row).clone()).or_default().push(row);
    }
}

/// Takes the remembered rows of `ids`; returns them and the ids that were not remembered.
pub(super) fn recall<R>(memo: &Memo<R>, ids: &[UserId]) -> (Vec<R>, Vec<UserId>) {
    let mut memo = memo.lock().unwrap_or_else(|p| p.into_inner());
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    for id in ids {
        match memo.remove(id) {
            Some(found) => rows.extend(found),
            None => missing.push(id.clone()),
        }
    }
    (rows, missing)
}

/// A login of a user, as the user (or an admin) sees it: one per login, however often it was
/// refreshed.
#[derive(Clone, Debug)]
pub struct LoginSession {
    /// The login's id (the `sid` of its access tokens; `endSession` takes it).
    pub id: crate::types::SessionId,
    /// When the person logged in.
    pub created_at: chrono::NaiveDateTime,
    /// When the login last got tokens (the login, or its latest refresh).
    pub last_used_at: chrono::NaiveDateTime,
    /// The client's `User-Agent` then.
    pub user_agent: Option<String>,
    /// The client's address then.
    pub ip: Option<String>,
    /// The app the person logged in through.
    pub app_id: Option<crate::types::AppId>,
    /// Whether the caller's access token belongs to this login.
    pub current: bool,
}

/// What introspection (RFC 7662) says of a token: inactive, or what it is and whose.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Introspection {
    /// Whether the token is live: signed by us (or stored, for a refresh token), unexpired, and
    /// its login not ended.
    pub active: bool,
    /// `Bearer` for an access token (RFC 6749's token types); none for a refresh token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    /// Which of ours it is: `access` or `refresh`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_use: Option<&'static str>,
    /// The user (for a refresh token, the live user it now belongs to).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The login.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The app the login came through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// That app's kind (`mini_program`, `official_account`, `website`, `mobile_app`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_kind: Option<String>,
    /// Expiry (seconds since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Issue time (seconds since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience (access tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// The token's id (access tokens issued since tokens had one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// What `POST /oauth2/revoke` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// Done, or there was nothing to revoke (RFC 7009 answers both alike).
    Done,
    /// An access token: this service revokes refresh tokens (a login's access tokens end with
    /// it).
    UnsupportedTokenType,
}
