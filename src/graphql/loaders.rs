//! Per-request batching: one query loads the identities of every user on a page, or every
//! user (identity) a federation `_entities` call or `usersByIds` names. Loads go through the
//! request's [`Related`] handle, like every other read.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;

use crate::db::models::app_login_identity::{MobileAppIdentityRow, WebsiteIdentityRow};
use crate::db::models::mini_program_identity::MiniProgramIdentityRow;
use crate::db::models::official_account_identity::OfficialAccountIdentityRow;
use crate::db::models::user::UserRow;
use crate::identity::IdentityError;
use crate::identity::access::Related;
use crate::types::{AppId, OpenId, UserId};

/// Loads users, and identities of every kind by user id or by key.
pub struct DbLoader(pub Related);

/// Mini Program identities of a user (key: user id).
#[derive(Clone, Hash, PartialEq, Eq)]
pub struct MiniProgramIdentitiesOf(pub UserId);

/// Official Account identities of a user (key: user id).
#[derive(Clone, Hash, PartialEq, Eq)]
pub struct OfficialAccountIdentitiesOf(pub UserId);

/// Website identities of a user (key: user id).
#[derive(Clone, Hash, PartialEq, Eq)]
pub struct WebsiteIdentitiesOf(pub UserId);

/// Mobile-app identities of a user (key: user id).
#[derive(Clone, Hash, PartialEq, Eq)]
pub struct MobileAppIdentitiesOf(pub UserId);

/// A user by id.
#[derive(Clone, Hash, PartialEq, Eq)]
pub struct UserById(pub UserId);

/// A Mini Program identity by its key (app id, openid).
#[derive(Clone, Hash, PartialEq, Eq)]
pub struct MiniProgramIdentityByKey(pub AppId, pub OpenId);

/// An Official Account identity by its key (app id, openid).
#[derive(Clone, Hash, PartialEq, Eq)]
pub struct OfficialAccountIdentityByKey(pub AppId, pub OpenId);

/// A website identity by its key (app id, openid).
#[derive(Clone, Hash, PartialEq, Eq)]
pub struct WebsiteIdentityByKey(pub AppId, pub OpenId);

/// A mobile-app identity by its key (app id, openid).
#[derive(Clone, Hash, PartialEq, Eq)]
pub struct MobileAppIdentityByKey(pub AppId, pub OpenId);

/// The rows of every key's user, grouped by the key (every key present, maybe empty).
fn group<K: std::hash::Hash + Eq + Clone, V>(
    keys: &[K],
    rows: Vec<V>,
    key_of: impl Fn(&V) -> K,
) -> HashMap<K, Vec<V>> {
    let mut map: HashMap<K, Vec<V>> = keys.iter().map(|k| (k.clone(), Vec::new())).collect();
    for row in rows {
        map.entry(key_of(&row)).or_default().push(row);
    }
    map
}

/// Implements a loader of one kind of identity rows by user id, through `Related::$read`.
macro_rules! identities_loader {
    ($key:ident, $row:ty, $read:ident) => {
        impl Loader<$key> for DbLoader {
            type Value = Vec<$row>;
            type Error = Arc<IdentityError>;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, Self::Value>, Self::Error> {
                let ids: Vec<UserId> = keys.iter().map(|k| k.0.clone()).collect();
                let rows = self.0.$read(&ids).await?;
                Ok(group(keys, rows, |r| $key(r.user_id.clone())))
            }
        }
    };
}

identities_loader!(
    MiniProgramIdentitiesOf,
    MiniProgramIdentityRow,
    mini_program_identities
);
identities_loader!(
    OfficialAccountIdentitiesOf,
    OfficialAccountIdentityRow,
    official_account_identities
);
identities_loader!(WebsiteIdentitiesOf, WebsiteIdentityRow, website_identities);
identities_loader!(
    MobileAppIdentitiesOf,
    MobileAppIdentityRow,
    mobile_app_identities
);

impl Loader<UserById> for DbLoader {
    type Value = UserRow;
    type Error = Arc<IdentityError>;

    async fn load(&self, keys: &[UserById]) -> Result<HashMap<UserById, Self::Value>, Self::Error> {
        let ids: Vec<UserId> = keys.iter().map(|k| k.0.clone()).collect();
        let rows = self.0.users(&ids).await?;
        Ok(rows
            .into_iter()
            .map(|u| (UserById(u.id.clone()), u))
            .collect())
    }
}

/// Sorted, without repeats.
fn distinct<T: Ord + Clone>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut items: Vec<T> = items.collect();
    items.sort();
    items.dedup();
    items
}

/// Implements a loader of one kind of identity by its key (app id, openid), through
/// `Related::$read`: one query for every key of the batch.
macro_rules! identity_by_key_loader {
    ($key:ident, $row:ty, $read:ident) => {
        impl Loader<$key> for DbLoader {
            type Value = $row;
            type Error = Arc<IdentityError>;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, Self::Value>, Self::Error> {
                let apps = distinct(keys.iter().map(|k| k.0.clone()));
                let openids = distinct(keys.iter().map(|k| k.1.clone()));
                let rows = self.0.$read(&apps, &openids).await?;
                Ok(rows
                    .into_iter()
                    .map(|r| ($key(r.app_id.clone(), r.openid.clone()), r))
                    .collect())
            }
        }
    };
}

identity_by_key_loader!(
    MiniProgramIdentityByKey,
    MiniProgramIdentityRow,
    mini_program_identities_by_key
);
identity_by_key_loader!(
    OfficialAccountIdentityByKey,
    OfficialAccountIdentityRow,
    official_account_identities_by_key
);
identity_by_key_loader!(
    WebsiteIdentityByKey,
    WebsiteIdentityRow,
    website_identities_by_key
);
identity_by_key_loader!(
    MobileAppIdentityByKey,
    MobileAppIdentityRow,
    mobile_app_identities_by_key
);
