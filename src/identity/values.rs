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
