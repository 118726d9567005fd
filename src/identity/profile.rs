//! `updateMyProfile`: the nickname and avatar a person types in. Since 2022-11 WeChat hands
//! Mini Programs no profile (`getUserProfile` answers the grey avatar and "微信用户"); pages
//! collect them with the fill-in components (`<input type="nickname">`,
//! `<button open-type="chooseAvatar">`) and send them here. What the person chose replaces what
//! is on record, except WeChat's placeholders, which never replace anything (nor fill anything,
//! in any sighting: [`UserRow::filled`]).

use super::IdentityError;
use super::access::SelfUser;
use super::events;
use super::rules::lock_live;
use crate::db::models::user::{ProfileFill, UserRow};
use crate::db::{Conn, transaction};
use crate::wechat::profile::{is_placeholder_avatar, is_placeholder_nickname};

/// Characters a nickname may have.
pub const MAX_NICKNAME_CHARS: usize = 64;
/// Characters an avatar URL may have.
pub const MAX_AVATAR_URL_CHARS: usize = 1024;

/// A profile edit: each field given replaces the one on record.
#[derive(Clone, Debug, Default)]
pub struct ProfileEdit {
    /// The nickname (1-64 characters, no control characters).
    pub nickname: Option<String>,
    /// The avatar: an absolute `https` URL of at most 1024 characters.
    pub avatar_url: Option<String>,
}

impl ProfileEdit {
    /// Checks the fields; returns what to write (placeholders dropped).
    fn change(&self) -> Result<ProfileFill, IdentityError> {
        if self.nickname.is_none() && self.avatar_url.is_none() {
            return Err(IdentityError::BadInput(
                "give nickname or avatarUrl (or both)".into(),
            ));
        }
        if let Some(n) = &self.nickname {
            let chars = n.chars().count();
            if n.trim().is_empty() || chars > MAX_NICKNAME_CHARS || n.chars().any(char::is_control)
            {
                return Err(IdentityError::BadInput(format!(
                    "nickname must be 1-{MAX_NICKNAME_CHARS} characters, not only spaces, \
                     without control characters"
                )));
            }
        }
        if let Some(url) = &self.avatar_url {
            let ok = url.len() <= MAX_AVATAR_URL_CHARS
                && reqwest::Url::parse(url)
                    .is_ok_and(|u| u.scheme() == "https" && u.host_str().is_some())
                && !url.chars().any(|c| c.is_control() || c.is_whitespace());
            if !ok {
                return Err(IdentityError::BadInput(format!(
                    "avatarUrl must be an absolute https URL of at most {MAX_AVATAR_URL_CHARS} \
                     characters"
                )));
            }
        }
        Ok(ProfileFill {
            nickname: self
                .nickname
                .clone()
                .filter(|n| !is_placeholder_nickname(n)),
            avatar_url: self
                .avatar_url
                .clone()
                .filter(|u| !is_placeholder_avatar(u)),
            ..ProfileFill::default()
        })
    }
}

impl SelfUser<'_> {
    /// Sets the caller's nickname and/or avatar (see the module docs); returns the user as it
    /// is afterwards. Bad input changes nothing.
    pub async fn update_my_profile(&self, edit: &ProfileEdit) -> Result<UserRow, IdentityError> {
        let change = edit.change()?;
        transaction(
            &self.db,
            async |conn: &mut Conn| -> Result<_, IdentityError> {
                let user = lock_live(conn, self.user_id).await?;
                if change.nickname.is_none() && change.avatar_url.is_none() {
                    return Ok(user);
                }
                UserRow::apply_profile(conn, &user.id, &change).await?;
                events::emit(conn, events::Change::updated(&user.id, &change)).await?;
                UserRow::find(conn, &user.id)
                    .await?
                    .ok_or_else(|| IdentityError::Internal(format!("user {} vanished", user.id)))
            },
        )
        .await
    }
}
