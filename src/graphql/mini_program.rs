//! What a logged-in person does with their own Mini Program identity: share the number behind
//! the phone button (`linkPhoneNumber`), open data only their session_key decrypts
//! (`decryptMiniProgramData`), and set the nickname and avatar they typed in
//! (`updateMyProfile`).

use async_graphql::{Context, InputObject, Json, Object};

use super::access;
use super::error::gql;
use super::types::User;
use crate::identity::mini_program_data::EncryptedData;
use crate::identity::profile::ProfileEdit;

/// `linkPhoneNumber` input.
#[derive(InputObject)]
pub struct LinkPhoneNumberInput {
    /// The Mini Program's app id.
    pub app_id: String,
    /// The one-time `code` the phone button (`<button open-type="getPhoneNumber">`, base
    /// library 2.21.2 or later) gave the page.
    pub phone_code: String,
}

/// `decryptMiniProgramData` input.
#[derive(InputObject)]
pub struct DecryptMiniProgramDataInput {
    /// The Mini Program's app id.
    pub app_id: String,
    /// The `encryptedData` a WeChat API gave the page (base64, at most 8 KiB).
    pub encrypted_data: String,
    /// The `iv` that came with it (base64 of 16 bytes).
    pub iv: String,
}

/// `updateMyProfile` input: each field given replaces the one on record.
#[derive(InputObject)]
pub struct UpdateMyProfileInput {
    /// The nickname from `<input type="nickname">`: 1-64 characters.
    pub nickname: Option<String>,
    /// The avatar from `<button open-type="chooseAvatar">`, once the page uploaded it: an
    /// absolute https URL of at most 1024 characters.
    pub avatar_url: Option<String>,
}

/// The mutations a user runs on their own Mini Program identity and profile.
pub struct MiniProgramMutation;

#[Object]
impl MiniProgramMutation {
    /// Stores the number behind a phone-button `code` on the calling user, in E.164
    /// (`phoneNumber`), verified (`phoneNumberVerifiedAt`). WeChat charges for each exchange:
    /// the same code sent again by the same person is answered without asking WeChat twice; once
    /// exchanged for one Mini Program identity, from anyone else it is WECHAT_CODE_INVALID. WECHAT_QUOTA_EXHAUSTED when the app's paid quota is
    /// used up. With `identity.merge_on_phone_number`, another user holding the same verified
    /// number is merged with this one (reason PHONE_NUMBER). Returns the user. NOT_FOUND when
    /// the caller has no identity in the Mini Program. One phone exchange per request;
    /// rate-limited like logins.
    /// The user itself.
    async fn link_phone_number(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The Mini Program and the phone button's code.")]
        input: LinkPhoneNumberInput,
    ) -> async_graphql::Result<Option<User>> {
        access::self_user(ctx)?
            .link_phone_number(&input.app_id, &input.phone_code, &access::client_info(ctx))
            .await
            .map(|u| Some(User(u)))
            .map_err(gql)
    }

    /// Decrypts `encryptedData` that only the caller's session_key in the Mini Program opens
    /// (share tickets, WeRun) and returns its JSON object, after checking that its `watermark`
    /// names the app. Nothing is stored. BAD_USER_INPUT when the data was altered or is not from
    /// the caller's session; SESSION_KEY_EXPIRED when the session_key on record is stale (the
    /// page called `wx.login` since): call `wx.login`, log in again, and get the data anew.
    /// Rate-limited like logins.
    /// The user itself.
    async fn decrypt_mini_program_data(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The Mini Program, the data and its iv.")]
        input: DecryptMiniProgramDataInput,
    ) -> async_graphql::Result<Option<Json<serde_json::Value>>> {
        let data = EncryptedData {
            data: &input.encrypted_data,
            iv: &input.iv,
        };
        access::self_user(ctx)?
            .decrypt_mini_program_data(&input.app_id, data, &access::client_info(ctx))
            .await
            .map(|v| Some(Json(v)))
            .map_err(gql)
    }

    /// Sets the calling user's nickname and/or avatar, as the person typed or chose them in
    /// the Mini Program (WeChat no longer hands profiles out). WeChat's placeholders (the
    /// nickname "微信用户", the grey default avatar) never replace a value. Returns the user.
    /// The user itself.
    async fn update_my_profile(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The fields to set.")] input: UpdateMyProfileInput,
    ) -> async_graphql::Result<Option<User>> {
        let edit = ProfileEdit {
            nickname: input.nickname,
            avatar_url: input.avatar_url,
        };
        access::self_user(ctx)?
            .update_my_profile(&edit)
            .await
            .map(|u| Some(User(u)))
            .map_err(gql)
    }
}
