//! User events: what other systems hear about people. Every change they care about writes an
//! event in the change's own transaction ([`emit`]: the transactional outbox), queued for every
//! endpoint subscribed to its type; the `event_delivery` job delivers them by Standard Webhooks
//! (`delivery.rs`), and teams that poll read the same events in order (`feed.rs`). Admins manage
//! the endpoints (`endpoints.rs`).
//!
//! | type | when | `data` |
//! |---|---|---|
//! | `user.created` | a sighting (or an unlink) makes a user | `userId`, `unionid`, `nickname`, `avatarUrl` (the profile it was made with) |
//! | `user.updated` | profile or phone filled or changed | `userId`, `changed` and the new values |
//! | `user.merged` | two users turn out to be one person | `sourceId`, `survivorId`, `reason` |
//! | `user.disabled` / `user.enabled` | an admin's `disableUser` / `enableUser` | `userId`, `reason` |
//! | `user.deleted` | an admin's `deleteUser` | `userId`, `deletedIds` (the tombstones too) |
//! | `identity.linked` | an identity is first seen, or unlinked onto a new user | `userId`, `identityId`, `appId`, `kind`, `openid`, `unionid` |
//! | `identity.unlinked` | an admin's `unlinkIdentity` | `userId` (the user it left), `identityId`, `appId`, `kind`, `openid`, `newUserId` |
//!
//! Per user, events are written under the user's row lock, so their order of writing is the
//! order of the changes; deliveries to one endpoint follow it.

pub mod delivery;
pub mod endpoints;
pub mod feed;

use serde_json::{Value, json};

use crate::db::models::merge_event::MergeReason;
use crate::db::models::now;
use crate::db::models::user::ProfileFill;
use crate::db::models::user_event::{NewUserEvent, UserEventRow};
use crate::db::{Conn, DbError};
use crate::types::{AppId, AppKind, IdentityId, OpenId, UnionId, UserId};

/// The largest `data` an event carries (the body stays under 64 KiB with its envelope);
/// larger data is cut to the user's id and `truncated: true`.
pub const MAX_DATA_BYTES: usize = 60 * 1024;

macro_rules! event_types {
    ($($variant:ident = $wire:literal),+ $(,)?) => {
        /// The kinds of user event.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum UserEventType { $(#[doc = $wire] $variant),+ }

        impl UserEventType {
            /// Every type.
            pub const ALL: &'static [UserEventType] = &[$(UserEventType::$variant),+];

            /// The type as on the wire and in the feed (`user.merged`).
            pub fn wire(self) -> &'static str {
                match self { $(UserEventType::$variant => $wire),+ }
            }

            /// The type of a wire name.
            pub fn from_wire(wire: &str) -> Option<Self> {
                match wire { $($wire => Some(UserEventType::$variant),)+ _ => None }
            }
        }
    };
}

event_types!(
    UserCreated = "user.created",
    UserUpdated = "user.updated",
    UserMerged = "user.merged",
    UserDisabled = "user.disabled",
    UserEnabled = "user.enabled",
    UserDeleted = "user.deleted",
    IdentityLinked = "identity.linked",
    IdentityUnlinked = "identity.unlinked",
);

/// An identity as events name it.
#[derive(Clone, Copy, Debug)]
pub struct IdentityKey<'a> {
    /// The identity's row id.
    pub id: &'a IdentityId,
    /// Its app.
    pub app_id: &'a AppId,
    /// The app's kind.
    pub kind: AppKind,
    /// The person's openid there.
    pub openid: &'a OpenId,
}

/// A change other systems hear about.
#[derive(Clone, Copy, Debug)]
pub enum Change<'a> {
    /// A user was made.
    Created {
        /// The user.
        user: &'a UserId,
        /// Its unionid, if known.
        unionid: Option<&'a UnionId>,
        /// The nickname it was made with, if any.
        nickname: Option<&'a str>,
        /// The avatar it was made with, if any.
        avatar_url: Option<&'a str>,
    },
    /// Profile fields changed (the new values).
    Updated {
        /// The user.
        user: &'a UserId,
        /// Nickname, if it changed.
        nickname: Option<&'a str>,
        /// Avatar, if it changed.
        avatar_url: Option<&'a str>,
        /// Phone number, if it changed.
        phone_number: Option<&'a str>,
    },
    /// `source` was merged into `survivor`.
    Merged {
        /// The tombstone.
        source: &'a UserId,
        /// The user that remains.
        survivor: &'a UserId,
        /// Why.
        reason: MergeReason,
    },
    /// An admin disabled the user.
    Disabled {
        /// The user.
        user: &'a UserId,
        /// The admin's reason.
        reason: &'a str,
    },
    /// An admin enabled the user again.
    Enabled {
        /// The user.
        user: &'a UserId,
    },
    /// An admin erased the person (`ids`: the user and its tombstones).
    Deleted {
        /// The user.
        user: &'a UserId,
        /// Every id of the person.
        ids: &'a [UserId],
    },
    /// An identity now belongs to `user`.
    Linked {
        /// The user.
        user: &'a UserId,
        /// The identity.
        identity: IdentityKey<'a>,
        /// Its unionid, if known.
        unionid: Option<&'a UnionId>,
    },
    /// An admin moved an identity off `user` onto `to`.
    Unlinked {
        /// The user it left.
        user: &'a UserId,
        /// The identity.
        identity: IdentityKey<'a>,
        /// The new user it moved to.
        to: &'a UserId,
    },
}

impl<'a> Change<'a> {
    /// The profile fields `change` wrote.
    pub fn updated(user: &'a UserId, change: &'a ProfileFill) -> Self {
        Change::Updated {
            user,
            nickname: change.nickname.as_deref(),
            avatar_url: change.avatar_url.as_deref(),
            phone_number: change.phone_number.as_deref(),
        }
    }

    /// Its type, the user it is filed under, and its `data`.
    fn parts(&self) -> (UserEventType, &UserId, Value) {
        match *self {
            Change::Created {
                user,
                unionid,
                nickname,
                avatar_url,
            } => (
                UserEventType::UserCreated,
                user,
                json!({"userId": user, "unionid": unionid, "nickname": nickname, "avatarUrl": avatar_url}),
            ),
            Change::Updated {
                user,
                nickname,
                avatar_url,
                phone_number,
            } => {
                let mut data = json!({"userId": user});
                let mut changed = Vec::new();
                for (name, value) in [
                    ("nickname", nickname),
                    ("avatarUrl", avatar_url),
                    ("phoneNumber", phone_number),
                ] {
                    if let Some(value) = value {
                        data[name] = json!(value);
                        changed.push(name);
                    }
                }
                data["changed"] = json!(changed);
                (UserEventType::UserUpdated, user, data)
            }
            Change::Merged {
                source,
                survivor,
                reason,
            } => (
                UserEventType::UserMerged,
                survivor,
                json!({"sourceId": source, "survivorId": survivor, "reason": reason.as_str().to_uppercase()}),
            ),
            Change::Disabled { user, reason } => (
                UserEventType::UserDisabled,
                user,
                json!({"userId": user, "reason": reason}),
            ),
            Change::Enabled { user } => (UserEventType::UserEnabled, user, json!({"userId": user})),
            Change::Deleted { user, ids } => (
                UserEventType::UserDeleted,
                user,
                json!({"userId": user, "deletedIds": ids}),
            ),
            Change::Linked {
                user,
                identity,
                unionid,
            } => {
                let mut data = identity.json(user);
                data["unionid"] = json!(unionid);
                (UserEventType::IdentityLinked, user, data)
            }
            Change::Unlinked { user, identity, to } => {
                let mut data = identity.json(user);
                data["newUserId"] = json!(to);
                (UserEventType::IdentityUnlinked, user, data)
            }
        }
    }
}

impl IdentityKey<'_> {
    fn json(&self, user: &UserId) -> Value {
        json!({
            "userId": user,
            "identityId": self.id,
            "appId": self.app_id,
            "kind": self.kind.as_str().to_uppercase(),
            "openid": self.openid,
        })
    }
}

/// Writes the event of `change` inside the caller's transaction, queued for every endpoint
/// subscribed to its type. The caller holds the user's row lock (or made the user in this
/// transaction), so a user's events are numbered in the order of its changes.
pub async fn emit(conn: &mut Conn, change: Change<'_>) -> Result<(), DbError> {
    let (kind, user, data) = change.parts();
    let data = bounded(&data, user);
    let id = uuid::Uuid::now_v7().to_string();
    let event = NewUserEvent {
        id: &id,
        event_type: kind.wire(),
        user_id: user,
        data: &data,
        created_at: now(),
    };
    let also = match change {
        Change::Merged { source, .. } => Some(source),
        _ => None,
    };
    UserEventRow::insert(conn, &event, also).await?;
    Ok(())
}

/// `data` as stored: its JSON, or, past [`MAX_DATA_BYTES`], only the user's id and
/// `truncated: true` (every body stays under 64 KiB).
fn bounded(data: &Value, user: &UserId) -> String {
    let text = data.to_string();
    if text.len() > MAX_DATA_BYTES {
        return json!({"userId": user, "truncated": true}).to_string();
    }
    text
}

/// The body a delivery POSTs: `{"type", "timestamp", "data"}` (Standard Webhooks' envelope).
pub fn body(event: &UserEventRow) -> String {
    let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
    let timestamp = event
        .created_at
        .and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({"type": event.event_type, "timestamp": timestamp, "data": data}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_past_the_cap_keeps_only_the_user() {
        let user = UserId::new("0193a1c2-0000-7000-8000-000000000001");
        let (kind, _, data) = Change::Disabled {
            user: &user,
            reason: &"x".repeat(MAX_DATA_BYTES),
        }
        .parts();
        assert_eq!(kind.wire(), "user.disabled");
        let stored = bounded(&data, &user);
        assert_eq!(
            serde_json::from_str::<Value>(&stored).unwrap(),
            json!({"userId": user, "truncated": true})
        );
        let (_, _, small) = Change::Enabled { user: &user }.parts();
        assert_eq!(bounded(&small, &user), json!({"userId": user}).to_string());
        for t in UserEventType::ALL {
            assert_eq!(UserEventType::from_wire(t.wire()), Some(*t));
        }
    }

    #[test]
    fn the_signature_is_standard_webhooks_v1() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )
        .unwrap();
        let signature = delivery::signature(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
