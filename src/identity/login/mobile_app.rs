//! A mobile app's login (移动应用): the WeChat SDK's `SendAuth` (scope `snsapi_userinfo`) hands
//! the app a code, which the app sends here. No state: the code comes straight from the SDK to
//! the app, not through a browser.

use crate::db::{Conn, transaction};
use crate::identity::access::Public;
use crate::identity::values::LoginOutcome;
use crate::identity::{ClientInfo, IdentityError, check_code};
use crate::rate_limit::Action;
use crate::types::AppKind;

impl Public<'_> {
    /// Logs a person into the mobile app `app_id` with the SDK's `code`: the code exchange, the
    /// profile, one transaction that records the sighting and opens a session. Bad input fails
    /// before any WeChat call; a failed call writes nothing.
    pub async fn login_with_mobile_app(
        &self,
        app_id: &str,
        code: &str,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, IdentityError> {
        let login = async {
            let app = self.app(app_id, AppKind::MobileApp)?;
            check_code(code)?;
            self.rate_limit(Action::Login, client, Some(app_id)).await?;
            let seen = self.oauth_exchange(app, code).await?;
            let fill = seen.fill();
            let sighting = seen.sighting(&app.app_id, fill.as_ref());
            transaction(
                &self.db,
                async |conn: &mut Conn| -> Result<_, IdentityError> {
                    self.log_in(conn, &sighting, client).await
                },
            )
            .await
        };
        crate::identity::count_login("mobile_app", login).await
    }
}
