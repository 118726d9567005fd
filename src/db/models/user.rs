//! `users`: one row per person; merged users stay as tombstones pointing at the survivor.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::lock::for_update;
use crate::db::schema::users;
use crate::db::{Conn, DbError};
use crate::types::{UnionId, UserId};
use crate::wechat::profile::{is_placeholder_avatar, is_placeholder_nickname};
use crate::with_conn;

/// A row of `users`, as read and as inserted.
#[derive(Clone, Debug, Queryable, QueryableByName, Identifiable, Insertable)]
#[diesel(table_name = users)]
pub struct UserRow {
    /// Public id.
    pub id: UserId,
    /// The unionid, unique among live users.
    pub unionid: Option<UnionId>,
    /// Display name.
    pub nickname: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Phone number (with country code).
    pub phone_number: Option<String>,
    /// The survivor this user was merged into, if it is a tombstone.
    pub merged_into: Option<UserId>,
    /// Creation time (UTC).
    pub created_at: NaiveDateTime,
    /// Last change (UTC).
    pub updated_at: NaiveDateTime,
    /// When WeChat last vouched for `phone_number` (the phone button); null if it never did.
    pub phone_number_verified_at: Option<NaiveDateTime>,
    /// When an admin disabled the user (its logins are refused); null if enabled.
    pub disabled_at: Option<NaiveDateTime>,
    /// Why (the admin's words).
    pub disabled_reason: Option<String>,
    /// When the user was erased (`deleteUser`): a tombstone with no personal data.
    pub deleted_at: Option<NaiveDateTime>,
}

/// Profile fields that fill a user's empty ones (never overwrite); `None` leaves a column alone.
#[derive(Clone, Debug, Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct ProfileFill {
    /// Display name.
    pub nickname: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Phone number (E.164).
    pub phone_number: Option<String>,
    /// When WeChat vouched for that phone number (only together with it).
    pub phone_number_verified_at: Option<NaiveDateTime>,
}

pub use super::user_list::UserListFilter;

impl UserRow {
    /// A new live user with this id and unionid, no profile yet, created at `at`.
    pub fn new(id: UserId, unionid: Option<UnionId>, at: NaiveDateTime) -> UserRow {
        UserRow {
            id,
            unionid,
            nickname: None,
            avatar_url: None,
            phone_number: None,
            merged_into: None,
            created_at: at,
            updated_at: at,
            phone_number_verified_at: None,
            disabled_at: None,
            disabled_reason: None,
            deleted_at: None,
        }
    }

    /// The live user this row stands for: its survivor if it was merged, else itself.
    pub fn live_id(&self) -> &UserId {
        self.merged_into.as_ref().unwrap_or(&self.id)
    }

    /// The user with this id, tombstone or live.
    pub async fn find(conn: &mut Conn, id: &UserId) -> Result<Option<UserRow>, DbError> {
        let q = users::table.find(id);
        Ok(with_conn!(conn, c => q.first::<UserRow>(c).await.optional())?)
    }

    /// The live user behind this id: the user itself, or the survivor it was merged into.
    pub async fn find_live(conn: &mut Conn, id: &UserId) -> Result<Option<UserRow>, DbError> {
        match UserRow::find(conn, id).await? {
            Some(UserRow {
                merged_into: Some(survivor),
                ..
            }) => UserRow::find(conn, &survivor).await,
            found => Ok(found),
        }
    }

    /// Of `ids`, those merged into another user, with the user each was merged into.
    pub async fn merged_of(
        conn: &mut Conn,
        ids: &[UserId],
    ) -> Result<Vec<(UserId, UserId)>, DbError> {
        let q = users::table
            .filter(users::id.eq_any(ids))
            .filter(users::merged_into.is_not_null())
            .select((users::id, users::merged_into.assume_not_null()));
        Ok(with_conn!(conn, c => q.load(c).await)?)
    }

    /// The user with this id, locked until the transaction ends (row lock on PostgreSQL; SQLite's
    /// `BEGIN IMMEDIATE` already holds the write lock).
    pub async fn find_for_update(conn: &mut Conn, id: &UserId) -> Result<Option<UserRow>, DbError> {
        let q = for_update(users::table.find(id).limit(1));
        Ok(with_conn!(conn, c => q.get_result::<UserRow>(c).await.optional())?)
    }

    /// Several users by id, in no particular order.
    pub async fn find_many(conn: &mut Conn, ids: &[UserId]) -> Result<Vec<UserRow>, DbError> {
        let q = users::table.filter(users::id.eq_any(ids));
        Ok(with_conn!(conn, c => q.load::<UserRow>(c).await)?)
    }

    /// The live (not merged) user holding this unionid.
    pub async fn find_live_by_unionid(
        conn: &mut Conn,
        unionid: &UnionId,
    ) -> Result<Option<UserRow>, DbError> {
        let q = users::table
            .filter(users::unionid.eq(unionid))
            .filter(users::merged_into.is_null())
            .filter(users::deleted_at.is_null());
        Ok(with_conn!(conn, c => q.first::<UserRow>(c).await.optional())?)
    }

    /// Inserts a user and returns it as stored (one statement: `RETURNING`, on both backends).
    pub async fn insert(conn: &mut Conn, row: &UserRow) -> Result<UserRow, DbError> {
        let q = diesel::insert_into(users::table).values(row);
        Ok(with_conn!(conn, c => q.get_result::<UserRow>(c).await)?)
    }

    /// Sets the unionid of a user that has none.
    pub async fn set_unionid(
        conn: &mut Conn,
        id: &UserId,
        unionid: &UnionId,
    ) -> Result<(), DbError> {
        let q = diesel::update(users::table.find(id).filter(users::unionid.is_null())).set((
            users::unionid.eq(unionid),
            users::updated_at.eq(super::now()),
        ));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// What `fill` would fill of this user's empty profile fields (None: nothing). WeChat's
    /// placeholders (the nickname "微信用户", the grey avatar) fill nothing: they are no profile.
    /// A phone number comes with its verification time.
    pub fn filled(&self, fill: &ProfileFill) -> Option<ProfileFill> {
        let pick = |mine: &Option<String>,
                    theirs: &Option<String>,
                    placeholder: fn(&str) -> bool| match (mine, theirs) {
            (None, Some(v)) if !v.is_empty() && !placeholder(v) => Some(v.clone()),
            _ => None,
        };
        let phone_number = pick(&self.phone_number, &fill.phone_number, |_| false);
        let change = ProfileFill {
            nickname: pick(&self.nickname, &fill.nickname, is_placeholder_nickname),
            avatar_url: pick(&self.avatar_url, &fill.avatar_url, is_placeholder_avatar),
            phone_number_verified_at: phone_number.as_ref().and(fill.phone_number_verified_at),
            phone_number,
        };
        (change.nickname.is_some() || change.avatar_url.is_some() || change.phone_number.is_some())
            .then_some(change)
    }

    /// The live user, other than `except`, holding `phone` as a number WeChat vouched for (the
    /// oldest, if several do).
    pub async fn find_live_by_verified_phone(
        conn: &mut Conn,
        phone: &str,
        except: &UserId,
    ) -> Result<Option<UserRow>, DbError> {
        let q = users::table
            .filter(users::phone_number.eq(phone))
            .filter(users::phone_number_verified_at.is_not_null())
            .filter(users::merged_into.is_null())
            .filter(users::id.ne(except))
            .order((users::created_at.asc(), users::id.asc()))
            .limit(1);
        Ok(with_conn!(conn, c => q.first::<UserRow>(c).await.optional())?)
    }

    /// Sets the user's phone number, vouched for by WeChat at `at`.
    pub async fn set_verified_phone(
        conn: &mut Conn,
        id: &UserId,
        phone: &str,
        at: NaiveDateTime,
    ) -> Result<(), DbError> {
        let q = diesel::update(users::table.find(id)).set((
            users::phone_number.eq(phone),
            users::phone_number_verified_at.eq(at),
            users::updated_at.eq(at),
        ));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// Writes the non-empty fields of `change` (computed by [`UserRow::filled`]).
    pub async fn apply_profile(
        conn: &mut Conn,
        id: &UserId,
        change: &ProfileFill,
    ) -> Result<(), DbError> {
        let q =
            diesel::update(users::table.find(id)).set((change, users::updated_at.eq(super::now())));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// Turns `id` into a tombstone pointing at `survivor`, and re-points older tombstones of `id`
    /// at `survivor` too, so `merged_into` always names a live user.
    pub async fn mark_merged(
        conn: &mut Conn,
        id: &UserId,
        survivor: &UserId,
    ) -> Result<(), DbError> {
        let now = super::now();
        let q = diesel::update(users::table.find(id))
            .set((users::merged_into.eq(survivor), users::updated_at.eq(now)));
        with_conn!(conn, c => q.execute(c).await)?;
        let q = diesel::update(users::table.filter(users::merged_into.eq(id)))
            .set((users::merged_into.eq(survivor), users::updated_at.eq(now)));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// Disables (`Some(reason)`, the time `at`) or enables (`None`) the user; false if it is
    /// not there.
    pub async fn set_disabled(
        conn: &mut Conn,
        id: &UserId,
        disabled: Option<(&str, NaiveDateTime)>,
    ) -> Result<bool, DbError> {
        let q = diesel::update(users::table.find(id)).set((
            users::disabled_at.eq(disabled.map(|(_, at)| at)),
            users::disabled_reason.eq(disabled.map(|(reason, _)| reason)),
            users::updated_at.eq(super::now()),
        ));
        Ok(with_conn!(conn, c => q.execute(c).await)? == 1)
    }

    /// Erases the personal data of these users (a person and its tombstones): profile, phone and
    /// unionid blanked, `deleted_at` set; ids, times and merge links stay.
    pub async fn erase(conn: &mut Conn, ids: &[UserId], at: NaiveDateTime) -> Result<(), DbError> {
        let q = diesel::update(users::table.filter(users::id.eq_any(ids))).set((
            users::unionid.eq(None::<UnionId>),
            users::nickname.eq(None::<String>),
            users::avatar_url.eq(None::<String>),
            users::phone_number.eq(None::<String>),
            users::phone_number_verified_at.eq(None::<NaiveDateTime>),
            users::disabled_reason.eq(None::<String>),
            users::deleted_at.eq(at),
            users::updated_at.eq(at),
        ));
        with_conn!(conn, c => q.execute(c).await)?;
        Ok(())
    }

    /// The ids of the tombstones merged into `id`.
    pub async fn merged_into_ids(conn: &mut Conn, id: &UserId) -> Result<Vec<UserId>, DbError> {
        let q = users::table
            .filter(users::merged_into.eq(id))
            .select(users::id);
        Ok(with_conn!(conn, c => q.load::<UserId>(c).await)?)
    }
}
