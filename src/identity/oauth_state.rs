//! Official Account web-authorization `state`s (CSRF protection): random, signed with HMAC and
//! bound to the app, stored with an expiry, single use. A frontend-driven state has no
//! `return_to`; a server-driven one carries where to send the browser afterwards, so neither kind
//! is accepted by the other flow.
//!
//! Wire form: 32 hex characters of id ‖ 32 hex characters of tag (WeChat allows at most 128
//! letters and digits), where tag = HMAC-SHA256(key, id | app_id)[..16].

use chrono::Duration;

use super::{Identity, IdentityError, truncate};
use crate::config::check_return_to;
use crate::crypto;
use crate::db::models::now;
use crate::db::models::oauth_state::OauthStateRow;
use crate::transaction;
use crate::types::AppKind;
use crate::wechat::official_account::{OauthScope, authorize_url};

/// The error every unusable state gets: which check failed is nobody's business but the log's.
fn invalid_state() -> IdentityError {
    IdentityError::BadInput(
        "state is invalid, expired or already used; start the authorization again".into(),
    )
}

/// Checks a `redirectUri` the frontend wants WeChat to send the person back to.
fn check_redirect_uri(redirect_uri: &str) -> Result<(), IdentityError> {
    let ok = redirect_uri.len() <= 1024
        && reqwest::Url::parse(redirect_uri).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.fragment().is_none()
        });
    if ok {
        Ok(())
    } else {
        Err(IdentityError::BadInput(format!(
            "redirectUri `{}` must be an absolute http(s) URL without a fragment, at most 1024 characters",
            truncate(redirect_uri, 64)
        )))
    }
}

impl Identity {
    /// Frontend-driven flow: the authorize URL (with a fresh state) that a page inside WeChat
    /// navigates to; WeChat comes back to `redirect_uri` with `code` and `state`.
    pub async fn official_account_authorize_url(
        &self,
        app_id: &str,
        redirect_uri: &str,
        scope: OauthScope,
    ) -> Result<String, IdentityError> {
        self.app(app_id, AppKind::OfficialAccount)?;
        check_redirect_uri(redirect_uri)?;
        let state = self.issue_state(app_id, scope, None).await?;
        Ok(authorize_url(
            &self.config.wechat.open_base_url,
            app_id,
            redirect_uri,
            scope,
            &state,
        ))
    }

    /// Server-driven flow: where to redirect the browser so that WeChat comes back to our
    /// callback; `return_to` must be on the allow-list.
    pub async fn server_authorize_redirect(
        &self,
        app_id: &str,
        scope: OauthScope,
        return_to: &str,
    ) -> Result<String, IdentityError> {
        self.app(app_id, AppKind::OfficialAccount)?;
        let return_to = check_return_to(&self.config.return_to_rules(), return_to)
            .map_err(IdentityError::BadInput)?;
        let state = self
            .issue_state(app_id, scope, Some(return_to.as_str()))
            .await?;
        Ok(authorize_url(
            &self.config.wechat.open_base_url,
            app_id,
            &self.callback_url(app_id),
            scope,
            &state,
        ))
    }

    /// Our callback URL for the server-driven flow.
    pub fn callback_url(&self, app_id: &str) -> String {
        format!(
            "{}/auth/official-account/{app_id}/callback",
            self.config.public_url()
        )
    }

    async fn issue_state(
        &self,
        app_id: &str,
        scope: OauthScope,
        return_to: Option<&str>,
    ) -> Result<String, IdentityError> {
        let id = crypto::hex(&crypto::random_bytes::<16>());
        let tag = self
            .state_signer
            .tag::<16>(format!("{id}|{app_id}").as_bytes());
        let at = now();
        let ttl = i64::try_from(self.config.official_account_login.state_ttl_secs).unwrap_or(600);
        let row = OauthStateRow {
            id: id.clone(),
            app_id: app_id.to_owned(),
            scope: scope.as_str().to_owned(),
            return_to: return_to.map(str::to_owned),
            created_at: at,
            expires_at: at + Duration::seconds(ttl),
            used_at: None,
        };
        let stored: Result<(), IdentityError> = transaction!(self.db, conn => {
            OauthStateRow::insert(conn, &row).await?;
            Ok(())
        });
        stored?;
        Ok(format!("{id}{}", crypto::hex(&tag)))
    }

    /// Checks a state that came back with a code, before WeChat is called: well formed, signed
    /// for `app_id`, known, unused, unexpired, and of the expected flow. Returns its row; the
    /// login transaction marks it used.
    pub(crate) async fn check_state(
        &self,
        app_id: &str,
        state: &str,
        server_driven: bool,
    ) -> Result<OauthStateRow, IdentityError> {
        if state.len() != 64 || !state.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid_state());
        }
        let (id, tag) = state.split_at(32);
        let tag = crypto::unhex(tag).ok_or_else(invalid_state)?;
        if !self
            .state_signer
            .check(format!("{id}|{app_id}").as_bytes(), &tag)
        {
            tracing::info!(app_id, "OA state with a bad signature refused");
            return Err(invalid_state());
        }
        let mut conn = self.db.conn().await?;
        let row = OauthStateRow::find(&mut conn, id)
            .await?
            .ok_or_else(invalid_state)?;
        if row.app_id != app_id
            || row.used_at.is_some()
            || row.expires_at <= now()
            || row.return_to.is_some() != server_driven
        {
            return Err(invalid_state());
        }
        Ok(row)
    }
}

/// Marks a checked state used inside the login transaction; a concurrent login with the same
/// state loses here and rolls back.
pub(crate) async fn use_state(
    conn: &mut crate::db::Conn,
    row: &OauthStateRow,
) -> Result<(), IdentityError> {
    if OauthStateRow::mark_used(conn, &row.id, now()).await? {
        Ok(())
    } else {
        Err(invalid_state())
    }
}
