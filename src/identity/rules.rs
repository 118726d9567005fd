//! The rules of DESIGN.md "Identity rules", in one place, for every kind of sighting.
//!
//! Given the user X that an identity (app, openid) already belongs to (if any) and the unionid U
//! WeChat reported (if any), [`resolve`] decides which live user the identity belongs to now:
//! - no U: X, or a new user;
//! - U, no X: the live user Y owning U, or a new user with U;
//! - U, X has no unionid and no Y: X takes U;
//! - U, X ≠ Y: X is merged into Y (identities, sessions move; Y's empty profile is filled;
//!   X becomes a tombstone; a merge event is recorded);
//! - X already has another unionid: refused, nothing changes.
//!
//! Races (two sightings of one new unionid at once) are settled by the unique index on live
//! users' unionids: the loser's transaction fails and is run again, and then finds Y.

use crate::db::Conn;
use crate::db::models::merge_event::MergeEventRow;
use crate::db::models::mini_program_identity::MiniProgramIdentityRow;
use crate::db::models::now;
use crate::db::models::official_account_identity::OfficialAccountIdentityRow;
use crate::db::models::session::SessionRow;
use crate::db::models::user::{NewUser, ProfileFill, UserRow};
use crate::metrics;
use crate::types::{UnionId, UserId, new_row_id};

use super::IdentityError;

/// Why a merge happened (stored in `merge_events.reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeReason {
    /// A login brought the unionid.
    Login,
    /// A follower sync brought it.
    FollowerSync,
    /// A webhook event brought it.
    Webhook,
    /// An admin asked for it.
    Admin,
    /// An admin moved one identity to a new user.
    Unlink,
}

impl MergeReason {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MergeReason::Login => "login",
            MergeReason::FollowerSync => "follower_sync",
            MergeReason::Webhook => "webhook",
            MergeReason::Admin => "admin",
            MergeReason::Unlink => "unlink",
        }
    }

    /// The reason stored as `name`, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        [
            MergeReason::Login,
            MergeReason::FollowerSync,
            MergeReason::Webhook,
            MergeReason::Admin,
            MergeReason::Unlink,
        ]
        .into_iter()
        .find(|r| r.as_str() == name)
    }
}

/// The identity as it is on record before this sighting.
#[derive(Clone, Debug)]
pub struct Existing {
    /// Its user.
    pub user_id: String,
    /// The unionid on the identity row.
    pub unionid: Option<String>,
}

/// The outcome of [`resolve`].
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The live user the identity belongs to now.
    pub user: UserRow,
    /// Whether that user was created by this sighting.
    pub new_user: bool,
}

/// Decides the live user for a sighting (see the module docs). Runs inside the caller's
/// transaction; the caller then writes the identity row with `user.id`. `actor` is recorded on
/// a merge event (the app whose sighting brought the unionid).
pub async fn resolve(
    conn: &mut Conn,
    existing: Option<&Existing>,
    unionid: Option<&UnionId>,
    reason: MergeReason,
    actor: &str,
) -> Result<Resolved, IdentityError> {
    if let (Some(existing), Some(u)) = (existing, unionid) {
        if let Some(known) = existing.unionid.as_deref().filter(|k| *k != u.as_str()) {
            return Err(conflict(&existing.user_id, known, u));
        }
    }
    let x = match existing {
        Some(e) => Some(lock_live(conn, &e.user_id).await?),
        None => None,
    };
    let Some(u) = unionid else {
        return match x {
            Some(user) => Ok(Resolved {
                user,
                new_user: false,
            }),
            None => create_user(conn, None).await,
        };
    };
    if let Some(x) = &x {
        match x.unionid.as_deref() {
            Some(known) if known == u.as_str() => {
                return Ok(Resolved {
                    user: x.clone(),
                    new_user: false,
                });
            }
            Some(known) => return Err(conflict(&x.id, known, u)),
            None => {}
        }
    }
    let y = UserRow::find_live_by_unionid(conn, u.as_str()).await?;
    match (x, y) {
        (None, Some(y)) => Ok(Resolved {
            user: y,
            new_user: false,
        }),
        (None, None) => create_user(conn, Some(u)).await,
        (Some(mut x), None) => {
            UserRow::set_unionid(conn, &x.id, u.as_str()).await?;
            x.unionid = Some(u.as_str().to_owned());
            Ok(Resolved {
                user: x,
                new_user: false,
            })
        }
        (Some(x), Some(y)) => {
            let y = lock_live(conn, &y.id).await?;
            let user = merge(conn, &x, &y, reason, Some(actor)).await?;
            Ok(Resolved {
                user,
                new_user: false,
            })
        }
    }
}

/// Merges `source` into `target`: moves identities and sessions, fills the target's empty
/// profile fields, turns the source into a tombstone and records a merge event. Returns the
/// target as it is afterwards. Both must be live; the caller checked their unionids.
pub async fn merge(
    conn: &mut Conn,
    source: &UserRow,
    target: &UserRow,
    reason: MergeReason,
    actor: Option<&str>,
) -> Result<UserRow, IdentityError> {
    MiniProgramIdentityRow::move_all(conn, &source.id, &target.id).await?;
    OfficialAccountIdentityRow::move_all(conn, &source.id, &target.id).await?;
    SessionRow::move_all(conn, &source.id, &target.id).await?;
    let fill = ProfileFill {
        nickname: source.nickname.clone(),
        avatar_url: source.avatar_url.clone(),
        phone_number: source.phone_number.clone(),
    };
    if let Some(change) = target.filled(&fill) {
        UserRow::apply_profile(conn, &target.id, &change).await?;
    }
    UserRow::mark_merged(conn, &source.id, &target.id).await?;
    MergeEventRow::insert(
        conn,
        &MergeEventRow {
            id: new_row_id(),
            survivor_id: target.id.clone(),
            merged_id: source.id.clone(),
            reason: reason.as_str().to_owned(),
            actor: actor.map(str::to_owned),
            created_at: now(),
            identity_id: None,
        },
    )
    .await?;
    metrics::merge(reason.as_str());
    tracing::info!(survivor = %target.id, merged = %source.id, reason = reason.as_str(), "merged users");
    UserRow::find(conn, &target.id).await?.ok_or_else(|| {
        IdentityError::Internal(format!("user {} vanished during a merge", target.id))
    })
}

/// Fills a user's empty profile fields (never overwrites); returns the user as it is afterwards.
pub async fn fill_profile(
    conn: &mut Conn,
    user: UserRow,
    fill: &ProfileFill,
) -> Result<UserRow, IdentityError> {
    let Some(change) = user.filled(fill) else {
        return Ok(user);
    };
    UserRow::apply_profile(conn, &user.id, &change).await?;
    Ok(UserRow {
        nickname: change.nickname.or(user.nickname),
        avatar_url: change.avatar_url.or(user.avatar_url),
        phone_number: change.phone_number.or(user.phone_number),
        ..user
    })
}

/// The live user behind `id`, locked for this transaction.
pub(crate) async fn lock_live(conn: &mut Conn, id: &str) -> Result<UserRow, IdentityError> {
    let user = UserRow::find_for_update(conn, id).await?.ok_or_else(|| {
        IdentityError::Internal(format!("user {id} of an identity does not exist"))
    })?;
    match &user.merged_into {
        Some(survivor) => UserRow::find_for_update(conn, survivor)
            .await?
            .ok_or_else(|| IdentityError::Internal(format!("survivor {survivor} does not exist"))),
        None => Ok(user),
    }
}

/// Creates a user (with the unionid, if given).
pub(crate) async fn create_user(
    conn: &mut Conn,
    unionid: Option<&UnionId>,
) -> Result<Resolved, IdentityError> {
    let id = UserId::generate();
    let at = now();
    let user = UserRow::insert(
        conn,
        &NewUser {
            id: id.as_str(),
            unionid: unionid.map(UnionId::as_str),
            nickname: None,
            avatar_url: None,
            created_at: at,
            updated_at: at,
        },
    )
    .await?;
    Ok(Resolved {
        user,
        new_user: true,
    })
}

pub(crate) fn conflict(user_id: &str, known: &str, got: &UnionId) -> IdentityError {
    tracing::warn!(
        user = user_id,
        known,
        got = got.as_str(),
        "unionid conflict refused"
    );
    // The caller may be anyone logging in: the log has the ids, the message none.
    IdentityError::Conflict(
        "this WeChat account belongs to a user with another unionid; refusing to re-point it"
            .into(),
    )
}
