//! `linkPhoneNumber`: a logged-in user shares their number from the Mini Program's phone
//! button; a sighting of their identity there that brings a verified number.

use super::PhoneSighting;
use crate::db::models::user::UserRow;
use crate::db::{Conn, transaction};
use crate::identity::access::SelfUser;
use crate::identity::rules::MergeReason;
use crate::identity::sighting::{self, Seen, Sighting};
use crate::identity::{ClientInfo, IdentityError};
use crate::rate_limit::Action;
use crate::types::AppKind;

impl SelfUser<'_> {
    /// Exchanges `phone_code` (at most once; see [`super::exchange`]) for the caller's number
    /// and stores it on their user, verified; with `identity.merge_on_phone_number`, merges
    /// them into another user WeChat vouched for the same number on. Returns the user as it is
    /// afterwards. Takes from the login rate limits; one WeChat call at most.
    pub async fn link_phone_number(
        &self,
        app_id: &str,
        phone_code: &str,
        client: &ClientInfo,
    ) -> Result<UserRow, IdentityError> {
        let app = self.app(app_id, AppKind::MiniProgram)?;
        super::check_phone_code(phone_code)?;
        self.rate_limit(Action::Login, client, Some(app_id)).await?;
        let identity = self.own_mini_program_identity(app).await?;
        let number = self.phone_number(app, &identity.openid, phone_code).await?;
        let sighting = Sighting {
            app_id: &app.app_id,
            openid: &identity.openid,
            unionid: None,
            reason: MergeReason::PhoneNumber,
            profile: None,
            phone: Some(PhoneSighting {
                number: &number,
                merge: self.config.identity.merge_on_phone_number,
            }),
            seen: Seen::MiniProgramPhone,
        };
        let resolved = transaction(
            &self.db,
            async |conn: &mut Conn| -> Result<_, IdentityError> {
                sighting::record(conn, &sighting).await
            },
        )
        .await?;
        Ok(resolved.user)
    }
}
