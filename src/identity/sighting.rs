//! The one entry for every sighting of a WeChat identity: a Mini Program login, an Official
//! Account login, a follower in a sync, a webhook event, a phone number shared. [`record`] finds
//! the identity (locked), applies the identity rules ([`super::rules::resolve`]), keeps a unionid
//! once on record, writes the identity row of its kind, fills the user's empty profile fields
//! and stores a verified phone number (merging on it when configured: [`super::phone::apply`]),
//! all inside the caller's transaction. Nothing else writes identity rows for a sighting.

use chrono::NaiveDateTime;

use super::IdentityError;
use super::events::{self, Change, IdentityKey};
use super::phone::PhoneSighting;
use super::rules::{self, MergeReason, Resolved};
use crate::db::Conn;
use crate::db::models::app_login_identity::{AppLogin, AppLoginKind};
use crate::db::models::identity::IdentityRef;
use crate::db::models::mini_program_identity::{MiniProgramIdentityRow, MiniProgramLogin};
use crate::db::models::now;
use crate::db::models::official_account_identity::{
    OfficialAccountIdentityRow, OfficialAccountProfile, OfficialAccountSeen,
};
use crate::db::models::user::ProfileFill;
use crate::types::{AppId, AppKind, IdentityId, OpenId, UnionId, UserId};
use crate::wechat::official_account::OauthScope;

/// One sighting of (app, openid, unionid?, profile?, follow state?).
#[derive(Clone, Debug)]
pub struct Sighting<'a> {
    /// The app it was seen in.
    pub app_id: &'a AppId,
    /// The person's openid there.
    pub openid: &'a OpenId,
    /// The unionid WeChat reported with it, if any.
    pub unionid: Option<&'a UnionId>,
    /// What brought it (recorded on a merge it causes).
    pub reason: MergeReason,
    /// Profile fields for the user's empty ones.
    pub profile: Option<&'a ProfileFill>,
    /// A phone number WeChat vouched for (the phone button, or legacy `encryptedData`).
    pub phone: Option<PhoneSighting<'a>>,
    /// How it was seen, with what only that kind of sighting tells.
    pub seen: Seen<'a>,
}

/// How an identity was seen.
#[derive(Clone, Debug)]
pub enum Seen<'a> {
    /// A Mini Program login, with the new session_key (sealed).
    MiniProgramLogin {
        /// The sealed session_key.
        session_key: &'a str,
    },
    /// A known Mini Program identity shared its phone number (`linkPhoneNumber`): the identity
    /// row does not change.
    MiniProgramPhone,
    /// An Official Account web authorization.
    OfficialAccountLogin {
        /// The scope granted.
        scope: OauthScope,
        /// The identity's profile from `/sns/userinfo` (`snsapi_userinfo` only).
        profile: Option<&'a OfficialAccountProfile>,
    },
    /// A website (QR-code) or mobile-app (SDK) login, with the nickname and avatar
    /// `/sns/userinfo` gave (WeChat's placeholders already dropped).
    AppLogin {
        /// Which kind of app.
        kind: AppLoginKind,
        /// The nickname, if a real one.
        nickname: Option<&'a str>,
        /// The avatar, if a real one.
        avatar_url: Option<&'a str>,
    },
    /// An Official Account follower (a sync or a follow event).
    Follower {
        /// Whether the person follows the account now.
        subscribed: bool,
        /// When they followed.
        subscribed_at: Option<NaiveDateTime>,
    },
}

impl<'a> Seen<'a> {
    /// A website or mobile-app login as its table's row takes it (an empty profile for other
    /// kinds, which never ask).
    fn app_login<'b>(
        &'b self,
        user_id: &'b UserId,
        unionid: Option<&'b UnionId>,
        at: NaiveDateTime,
    ) -> AppLogin<'b> {
        let (nickname, avatar_url) = match self {
            Seen::AppLogin {
                nickname,
                avatar_url,
                ..
            } => (*nickname, *avatar_url),
            _ => (None, None),
        };
        AppLogin {
            user_id,
            unionid,
            at,
            nickname,
            avatar_url,
        }
    }

    /// The kind of app this sighting belongs to.
    pub fn kind(&self) -> AppKind {
        match self {
            Seen::MiniProgramLogin { .. } | Seen::MiniProgramPhone => AppKind::MiniProgram,
            Seen::OfficialAccountLogin { .. } | Seen::Follower { .. } => AppKind::OfficialAccount,
            Seen::AppLogin { kind, .. } => kind.app_kind(),
        }
    }
}

/// Records a sighting (see the module docs); returns the live user the identity belongs to.
pub async fn record(conn: &mut Conn, s: &Sighting<'_>) -> Result<Resolved, IdentityError> {
    let kind = s.seen.kind();
    let row = IdentityRef::find_by_openid(conn, kind, s.app_id, s.openid).await?;
    let resolved = rules::resolve(
        conn,
        row.as_ref(),
        s.unionid,
        s.reason,
        s.app_id.as_str(),
        s.profile,
    )
    .await?;
    // A unionid once on record stays (resolve refused any other).
    let unionid = row.as_ref().and_then(|r| r.unionid.as_ref()).or(s.unionid);
    let id = match &row {
        Some(row) => {
            update(conn, s, &row.id, &resolved, unionid).await?;
            row.id.clone()
        }
        None => {
            let id = insert(conn, s, &resolved, unionid).await?;
            let identity = IdentityKey {
                id: &id,
                app_id: s.app_id,
                kind,
                openid: s.openid,
            };
            let user = &resolved.user.id;
            events::emit(
                conn,
                Change::Linked {
                    user,
                    identity,
                    unionid,
                },
            )
            .await?;
            id
        }
    };
    if let Seen::OfficialAccountLogin {
        profile: Some(profile),
        ..
    } = &s.seen
    {
        if !profile.is_empty() {
            OfficialAccountIdentityRow::set_profile(conn, &id, profile).await?;
        }
    }
    let user = match s.profile {
        Some(fill) => rules::fill_profile(conn, resolved.user, fill).await?,
        None => resolved.user,
    };
    let (user, merged) = match s.phone {
        Some(phone) => super::phone::apply(conn, user, phone, s.app_id).await?,
        None => (user, false),
    };
    // A user this sighting created and then merged into the number's holder is no new user.
    Ok(Resolved {
        user,
        new_user: resolved.new_user && !merged,
        merged: resolved.merged || merged,
    })
}

async fn update(
    conn: &mut Conn,
    s: &Sighting<'_>,
    id: &IdentityId,
    resolved: &Resolved,
    unionid: Option<&UnionId>,
) -> Result<(), IdentityError> {
    let user_id = &resolved.user.id;
    let at = now();
    match &s.seen {
        Seen::MiniProgramLogin { session_key } => {
            let login = MiniProgramLogin {
                user_id,
                unionid,
                session_key,
                last_login_at: at,
            };
            MiniProgramIdentityRow::record_login(conn, id, &login).await?;
        }
        Seen::MiniProgramPhone => {}
        Seen::AppLogin { kind, .. } => {
            let login = s.seen.app_login(user_id, unionid, at);
            kind.record_login(conn, id, &login).await?;
        }
        Seen::OfficialAccountLogin { scope, .. } => {
            let seen = OfficialAccountSeen {
                user_id,
                unionid,
                scope: Some(scope.as_str()),
                last_login_at: Some(at),
                subscribed: None,
                subscribed_at: None,
            };
            OfficialAccountIdentityRow::record_seen(conn, id, &seen).await?;
        }
        Seen::Follower {
            subscribed,
            subscribed_at,
        } => {
            let seen = OfficialAccountSeen {
                user_id,
                unionid,
                scope: None,
                last_login_at: None,
                subscribed: Some(*subscribed),
                subscribed_at: Some(*subscribed_at),
            };
            OfficialAccountIdentityRow::record_seen(conn, id, &seen).await?;
        }
    }
    Ok(())
}

async fn insert(
    conn: &mut Conn,
    s: &Sighting<'_>,
    resolved: &Resolved,
    unionid: Option<&UnionId>,
) -> Result<IdentityId, IdentityError> {
    let id = IdentityId::generate();
    let at = now();
    let (user_id, app_id, openid) = (resolved.user.id.clone(), s.app_id.clone(), s.openid.clone());
    let unionid = unionid.cloned();
    // An Official Account identity is a login (with its scope and time) or a follower (with its
    // follow state).
    let (scope, last_login_at, subscribed, subscribed_at) = match &s.seen {
        Seen::MiniProgramLogin { session_key } => {
            let row = MiniProgramIdentityRow {
                id: id.clone(),
                user_id,
                app_id,
                openid,
                unionid,
                session_key: Some((*session_key).to_owned()),
                created_at: at,
                last_login_at: at,
            };
            MiniProgramIdentityRow::insert(conn, &row).await?;
            return Ok(id);
        }
        Seen::AppLogin { kind, .. } => {
            let login = s.seen.app_login(&user_id, unionid.as_ref(), at);
            kind.insert(conn, &id, (&app_id, &openid), &login).await?;
            return Ok(id);
        }
        // The identity was found before its number was asked for; an unlink took it since.
        Seen::MiniProgramPhone => {
            return Err(IdentityError::Conflict(
                "the Mini Program identity moved while its phone number was linked; retry".into(),
            ));
        }
        Seen::OfficialAccountLogin { scope, .. } => {
            (Some(scope.as_str().to_owned()), Some(at), false, None)
        }
        Seen::Follower {
            subscribed,
            subscribed_at,
        } => (None, None, *subscribed, *subscribed_at),
    };
    let row = OfficialAccountIdentityRow {
        id: id.clone(),
        user_id,
        app_id,
        openid,
        unionid,
        scope,
        subscribed,
        subscribed_at,
        // The profile of a login is written by `record`, after the row.
        nickname: None,
        avatar_url: None,
        sex: None,
        province: None,
        city: None,
        country: None,
        created_at: at,
        last_login_at,
    };
    OfficialAccountIdentityRow::insert(conn, &row).await?;
    Ok(id)
}
