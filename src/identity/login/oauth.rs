//! What WeChat's OAuth logins share — an Official Account's web authorization, a website's QR
//! code, a mobile app's SDK login: the code exchange (`/sns/oauth2/access_token`), the profile
//! (`/sns/userinfo`) when the scope shows it, and the sighting it makes, of the app's kind.

use crate::config::AppConfig;
use crate::db::models::app_login_identity::AppLoginKind;
use crate::db::models::official_account_identity::OfficialAccountProfile;
use crate::db::models::user::ProfileFill;
use crate::identity::rules::MergeReason;
use crate::identity::sighting::{Seen, Sighting};
use crate::identity::{IdentityError, Parts, check_wechat_id};
use crate::types::{AppId, AppKind, OpenId, UnionId};
use crate::wechat::WechatError;
use crate::wechat::official_account::OauthScope;
use crate::wechat::profile::{is_placeholder_avatar, is_placeholder_nickname};

/// What WeChat told us about the person in one OAuth login.
pub(super) struct OauthSighting {
    kind: AppKind,
    openid: OpenId,
    unionid: Option<UnionId>,
    scope: OauthScope,
    profile: Option<OfficialAccountProfile>,
}

impl OauthSighting {
    /// The user-level profile fields this login brought.
    pub(super) fn fill(&self) -> Option<ProfileFill> {
        self.profile.as_ref().map(|p| ProfileFill {
            nickname: p.nickname.clone(),
            avatar_url: p.avatar_url.clone(),
            ..ProfileFill::default()
        })
    }

    /// As a sighting of `app_id` (with `fill` from [`Self::fill`]).
    pub(super) fn sighting<'a>(
        &'a self,
        app_id: &'a AppId,
        fill: Option<&'a ProfileFill>,
    ) -> Sighting<'a> {
        let app_login = |kind| Seen::AppLogin {
            kind,
            nickname: self.profile.as_ref().and_then(|p| p.nickname.as_deref()),
            avatar_url: self.profile.as_ref().and_then(|p| p.avatar_url.as_deref()),
        };
        Sighting {
            app_id,
            openid: &self.openid,
            unionid: self.unionid.as_ref(),
            reason: MergeReason::Login,
            profile: fill,
            phone: None,
            seen: match self.kind {
                AppKind::Website => app_login(AppLoginKind::Website),
                AppKind::MobileApp => app_login(AppLoginKind::MobileApp),
                AppKind::OfficialAccount | AppKind::MiniProgram => Seen::OfficialAccountLogin {
                    scope: self.scope,
                    profile: self.profile.as_ref(),
                },
            },
        }
    }
}

impl Parts {
    /// Exchanges the code and, when the scope shows it, fetches the profile. Refuses snapshot
    /// users, and a website or mobile-app login whose scope shows no profile (WeChat grants
    /// `snsapi_login` and `snsapi_userinfo` there). Writes nothing.
    pub(super) async fn oauth_exchange(
        &self,
        app: &AppConfig,
        code: &str,
    ) -> Result<OauthSighting, IdentityError> {
        let token = self.wechat.oauth_access_token(app, code).await;
        crate::metrics::apps::record(app.app_id.as_str(), &token);
        let token = token.inspect_err(|e| {
            tracing::info!(app = %app.app_id, errcode = e.errcode(), error = %e, "code exchange failed");
        })?;
        if token.is_snapshot_user() {
            tracing::info!(app_id = %app.app_id, "OA login by a snapshot (virtual) user refused");
            return Err(IdentityError::SnapshotUser);
        }
        check_wechat_id("openid", &token.openid)?;
        let scope = token.granted();
        if app.kind != AppKind::OfficialAccount && !scope.shows_profile() {
            tracing::warn!(app_id = %app.app_id, scope = scope.as_str(), "an app login without a profile scope");
            return Err(IdentityError::Wechat(WechatError::Unavailable {
                reason: format!(
                    "WeChat granted `{}` to a {}",
                    scope.as_str(),
                    app.kind.name()
                ),
                errcode: None,
            }));
        }
        let (unionid, profile) = if scope.shows_profile() {
            let info = self
                .wechat
                .oauth_userinfo(&token.access_token, &token.openid)
                .await;
            crate::metrics::apps::record(app.app_id.as_str(), &info);
            let info = info.inspect_err(|e| {
                tracing::info!(app = %app.app_id, errcode = e.errcode(), error = %e, "profile read failed");
            })?;
            if info.openid != token.openid {
                tracing::warn!(app_id = %app.app_id, "userinfo answered for another openid");
                return Err(IdentityError::Wechat(WechatError::Unavailable {
                    reason: "WeChat sent a profile for another person".into(),
                    errcode: None,
                }));
            }
            // WeChat's placeholders are no profile: they never replace one on record.
            let profile = OfficialAccountProfile {
                nickname: info
                    .nickname
                    .filter(|s| !s.is_empty() && !is_placeholder_nickname(s)),
                avatar_url: info
                    .headimgurl
                    .filter(|s| !s.is_empty() && !is_placeholder_avatar(s)),
                sex: info.sex,
                province: info.province.filter(|s| !s.is_empty()),
                city: info.city.filter(|s| !s.is_empty()),
                country: info.country.filter(|s| !s.is_empty()),
            };
            (info.unionid.or(token.unionid.clone()), Some(profile))
        } else {
            (token.unionid.clone(), None)
        };
        if let Some(u) = &unionid {
            check_wechat_id("unionid", u)?;
        }
        Ok(OauthSighting {
            kind: app.kind,
            openid: OpenId::new(token.openid),
            unionid: unionid.map(UnionId::new),
            scope,
            profile,
        })
    }
}
