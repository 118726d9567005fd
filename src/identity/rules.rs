//! The rules of DESIGN.md "Identity rules", in one place, for every kind of sighting.
//!
//! Given the user X that an identity (app, openid) already belongs to (if any) and the unionid U
//! WeChat reported (if any), [`resolve`] decides which live user the identity belongs to now:
//! - no U: X, or a new user;
//! - U, no X: the live user Y owning U, or a new user with U;
//! - U, X has no unionid and no Y: X takes U;
//! - U, X ≠ Y: X is merged into Y ([`merge`]: identities, sessions move; Y's empty profile is
//!   filled; X becomes a tombstone; a merge event is recorded);
//! - X already has another unionid: refused, nothing changes.
//!
//! [`merge`] is the only merge: sightings and admins both use it, so the lock order (user ids
//! ascending), the unionid check and transfer, and the merge event are written once.
//!
//! Races (two sightings of one new unionid at once) are settled by the unique index on live
//! users' unionids: the loser's transaction fails, is run again, and then finds Y.

use crate::db::Conn;
use crate::db::models::identity::IdentityRef;
use crate::db::models::merge_event::MergeEventRow;
use crate::db::models::now;
use crate::db::models::session::SessionRow;
use crate::db::models::user::{ProfileFill, UserRow};
use crate::metrics;
use crate::types::{IdentityId, MergeEventId, UnionId, UserId};

use super::IdentityError;
use super::events::{self, Change};

pub use crate::db::models::merge_event::MergeReason;
pub(crate) use crate::db::models::merge_event::merge_reason_variants;

/// The outcome of [`resolve`].
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The live user the identity belongs to now.
    pub user: UserRow,
    /// Whether that user was created by this sighting.
    pub new_user: bool,
    /// Whether the sighting merged the identity's user into the unionid's.
    pub merged: bool,
}

impl Resolved {
    fn existing(user: UserRow) -> Self {
        Self {
            user,
            new_user: false,
            merged: false,
        }
    }
}

/// Two users to merge, named so they cannot be swapped by accident: `source` becomes a tombstone
/// pointing at `target`.
#[derive(Clone, Copy, Debug)]
pub struct MergePair<'a> {
    /// The user that disappears into the other.
    pub source: &'a UserId,
    /// The user that remains.
    pub target: &'a UserId,
}

/// Decides the live user for a sighting of the identity `existing` (none: first sighting) with
/// the unionid WeChat reported (see the module docs). Runs inside the caller's transaction; the
/// caller then writes the identity row with `user.id`. `actor` is recorded on a merge event
/// (the app whose sighting brought the unionid).
pub(super) async fn resolve(
    conn: &mut Conn,
    existing: Option<&IdentityRef>,
    unionid: Option<&UnionId>,
    reason: MergeReason,
    actor: &str,
    profile: Option<&ProfileFill>,
) -> Result<Resolved, IdentityError> {
    if let (Some(existing), Some(u)) = (existing, unionid) {
        if let Some(known) = existing.unionid.as_ref().filter(|k| *k != u) {
            return Err(conflict(&existing.user_id, known, u));
        }
    }
    let x = match existing {
        Some(e) => Some(lock_live(conn, &e.user_id).await?),
        None => None,
    };
    // Erased while we waited for its lock (its identities go with it): decide again.
    if x.as_ref().is_some_and(|x| x.deleted_at.is_some()) {
        return Err(IdentityError::Db(crate::db::DbError::Raced(
            "the person was erased while seen",
        )));
    }
    let Some(u) = unionid else {
        return match x {
            Some(user) => Ok(Resolved::existing(user)),
            None => create_user(conn, None, profile).await,
        };
    };
    if let Some(x) = &x {
        match &x.unionid {
            Some(known) if known == u => return Ok(Resolved::existing(x.clone())),
            Some(known) => return Err(conflict(&x.id, known, u)),
            None => {}
        }
    }
    let y = UserRow::find_live_by_unionid(conn, u).await?;
    match (x, y) {
        // The identity is new to a known person: lock them (their events are numbered in
        // order). Erased or merged while we waited for the lock: decide again.
        (None, Some(y)) => {
            let y = lock_live(conn, &y.id).await?;
            if y.deleted_at.is_some() || y.unionid.as_ref() != Some(u) {
                return Err(IdentityError::Db(crate::db::DbError::Raced(
                    "the person changed while their new identity was recorded",
                )));
            }
            Ok(Resolved::existing(y))
        }
        (None, None) => create_user(conn, Some(u), profile).await,
        (Some(mut x), None) => {
            UserRow::set_unionid(conn, &x.id, u).await?;
            x.unionid = Some(u.clone());
            Ok(Resolved::existing(x))
        }
        (Some(x), Some(y)) => {
            let pair = MergePair {
                source: &x.id,
                target: &y.id,
            };
            Ok(Resolved {
                merged: true,
                ..Resolved::existing(merge(conn, pair, reason, Some(actor)).await?)
            })
        }
    }
}

/// Merges `pair.source` into `pair.target`: locks both (in id order, so two opposite merges
/// cannot deadlock), refuses tombstones and different unionids, moves identities and sessions,
/// fills the target's empty profile fields, turns the source into a tombstone, gives the target
/// the source's unionid if it has none, and records a merge event. Returns the target as it is
/// afterwards.
pub(super) async fn merge(
    conn: &mut Conn,
    pair: MergePair<'_>,
    reason: MergeReason,
    actor: Option<&str>,
) -> Result<UserRow, IdentityError> {
    if pair.source == pair.target {
        return Err(IdentityError::BadInput(
            "sourceId and targetId are the same user".into(),
        ));
    }
    let (source, target) = if pair.source < pair.target {
        let s = lock_existing_live(conn, pair.source, "source").await?;
        (s, lock_existing_live(conn, pair.target, "target").await?)
    } else {
        let t = lock_existing_live(conn, pair.target, "target").await?;
        (lock_existing_live(conn, pair.source, "source").await?, t)
    };
    if let (Some(s), Some(t)) = (&source.unionid, &target.unionid) {
        if s != t {
            tracing::warn!(source = %source.id, target = %target.id, "merge of users with different unionids refused");
            return Err(IdentityError::Conflict(
                "the users have different unionids: WeChat says they are different people".into(),
            ));
        }
    }
    IdentityRef::move_all(conn, &source.id, &target.id).await?;
    SessionRow::move_all(conn, &source.id, &target.id).await?;
    let fill = ProfileFill {
        nickname: source.nickname.clone(),
        avatar_url: source.avatar_url.clone(),
        phone_number: source.phone_number.clone(),
        phone_number_verified_at: source.phone_number_verified_at,
    };
    if let Some(change) = target.filled(&fill) {
        UserRow::apply_profile(conn, &target.id, &change).await?;
        events::emit(conn, Change::updated(&target.id, &change)).await?;
    }
    // A disabled person stays disabled whichever of their users survives, and no login moved
    // onto a disabled survivor stays live.
    if let (Some(at), None) = (source.disabled_at, target.disabled_at) {
        let reason = source.disabled_reason.as_deref().unwrap_or_default();
        UserRow::set_disabled(conn, &target.id, Some((reason, at))).await?;
        events::emit(
            conn,
            Change::Disabled {
                user: &target.id,
                reason,
            },
        )
        .await?;
    }
    if source.disabled_at.is_some() || target.disabled_at.is_some() {
        SessionRow::revoke_user(conn, &target.id, now()).await?;
    }
    UserRow::mark_merged(conn, &source.id, &target.id).await?;
    if let (Some(u), None) = (&source.unionid, &target.unionid) {
        // The source is a tombstone now, so its unionid is free for the target.
        UserRow::set_unionid(conn, &target.id, u).await?;
    }
    record_event(conn, &target.id, &source.id, reason, actor, None).await?;
    let merged = Change::Merged {
        source: &source.id,
        survivor: &target.id,
        reason,
    };
    events::emit(conn, merged).await?;
    tracing::info!(survivor = %target.id, merged = %source.id, reason = reason.as_str(), "merged users");
    UserRow::find(conn, &target.id).await?.ok_or_else(|| {
        IdentityError::Internal(format!("user {} vanished during a merge", target.id))
    })
}

/// Records a merge (or, with `identity`, an unlink) in the history and counts it.
pub(super) async fn record_event(
    conn: &mut Conn,
    survivor: &UserId,
    merged: &UserId,
    reason: MergeReason,
    actor: Option<&str>,
    identity: Option<&IdentityId>,
) -> Result<(), IdentityError> {
    MergeEventRow::insert(
        conn,
        &MergeEventRow {
            id: MergeEventId::generate(),
            survivor_id: survivor.clone(),
            merged_id: merged.clone(),
            reason,
            actor: actor.map(str::to_owned),
            created_at: now(),
            identity_id: identity.cloned(),
        },
    )
    .await?;
    metrics::merge(reason.as_str());
    Ok(())
}

/// Fills a user's empty profile fields (never overwrites); returns the user as it is afterwards.
pub(super) async fn fill_profile(
    conn: &mut Conn,
    user: UserRow,
    fill: &ProfileFill,
) -> Result<UserRow, IdentityError> {
    let Some(change) = user.filled(fill) else {
        return Ok(user);
    };
    UserRow::apply_profile(conn, &user.id, &change).await?;
    events::emit(conn, Change::updated(&user.id, &change)).await?;
    Ok(UserRow {
        nickname: change.nickname.or(user.nickname),
        avatar_url: change.avatar_url.or(user.avatar_url),
        phone_number_verified_at: change
            .phone_number_verified_at
            .or(user.phone_number_verified_at),
        phone_number: change.phone_number.or(user.phone_number),
        ..user
    })
}

/// The live user behind `id` (the survivor of a tombstone), locked for this transaction.
pub(super) async fn lock_live(conn: &mut Conn, id: &UserId) -> Result<UserRow, IdentityError> {
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

/// Locks a user that must exist and be live; a tombstone is a CONFLICT naming its survivor.
async fn lock_existing_live(
    conn: &mut Conn,
    id: &UserId,
    role: &str,
) -> Result<UserRow, IdentityError> {
    let user = UserRow::find_for_update(conn, id)
        .await?
        .ok_or_else(|| IdentityError::NotFound(format!("{role} user {id} does not exist")))?;
    if let Some(survivor) = &user.merged_into {
        return Err(IdentityError::Conflict(format!(
            "{role} user {id} was already merged into {survivor}"
        )));
    }
    if user.deleted_at.is_some() {
        return Err(IdentityError::Conflict(format!(
            "{role} user {id} was deleted"
        )));
    }
    Ok(user)
}

/// Creates a user (with the unionid, if given).
/// Makes a user with `unionid` and the profile `profile` fills (a sighting's: the user is made
/// with it, so its `user.created` carries it and no update follows).
pub(super) async fn create_user(
    conn: &mut Conn,
    unionid: Option<&UnionId>,
    profile: Option<&ProfileFill>,
) -> Result<Resolved, IdentityError> {
    let mut new = UserRow::new(UserId::generate(), unionid.cloned(), now());
    if let Some(fill) = profile.and_then(|p| new.filled(p)) {
        new.nickname = fill.nickname;
        new.avatar_url = fill.avatar_url;
        new.phone_number = fill.phone_number;
        new.phone_number_verified_at = fill.phone_number_verified_at;
    }
    let user = UserRow::insert(conn, &new).await?;
    let created = Change::Created {
        user: &user.id,
        unionid: user.unionid.as_ref(),
        nickname: user.nickname.as_deref(),
        avatar_url: user.avatar_url.as_deref(),
    };
    events::emit(conn, created).await?;
    Ok(Resolved {
        user,
        new_user: true,
        merged: false,
    })
}

fn conflict(user_id: &UserId, known: &UnionId, got: &UnionId) -> IdentityError {
    tracing::warn!(user = %user_id, %known, %got, "unionid conflict refused");
    // The caller may be anyone logging in: the log has the ids, the message none.
    IdentityError::Conflict(
        "this WeChat account belongs to a user with another unionid; refusing to re-point it"
            .into(),
    )
}
