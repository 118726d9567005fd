//! Mini Program login: `wx.login` code → `jscode2session` → one transaction that applies the
//! identity rules, records the identity and opens a session.

use crate::auth::sessions;
use crate::db::models::user::ProfileFill;
use crate::db::{Conn, transaction};
use crate::rate_limit::Action;
use crate::types::{AppKind, OpenId, UnionId};
use crate::wechat::mini_program::{DecryptError, UserData, decrypt_user_data};

use crate::identity::mini_program_data::EncryptedData;
use crate::identity::phone::{PhoneNumber, PhoneSighting, check_phone_code};

use super::refuse_disabled;
use crate::identity::access::Public;
use crate::identity::rules::MergeReason;
use crate::identity::sighting::{self, Seen, Sighting};
use crate::identity::values::LoginOutcome;
use crate::identity::{ClientInfo, IdentityError, Parts, check_code, check_wechat_id};

/// A Mini Program login request.
#[derive(Clone, Debug)]
pub struct MiniProgramLogin {
    /// The Mini Program.
    pub app_id: String,
    /// The `wx.login` code.
    pub code: String,
    /// Optional `encryptedData` (user info or phone number) from the same session.
    pub encrypted_data: Option<String>,
    /// Its iv.
    pub iv: Option<String>,
    /// Optional code from the phone button (`getPhoneNumber`): the login also stores the
    /// person's number, verified.
    pub phone_code: Option<String>,
}

impl Public<'_> {
    /// Logs a person into a Mini Program. Costs one WeChat call (two with a phone code, which
    /// is exchanged at most once however often it is submitted) and one database transaction;
    /// bad input fails before either, and a failed call writes nothing.
    pub async fn login_with_mini_program(
        &self,
        input: &MiniProgramLogin,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, IdentityError> {
        crate::identity::count_login("mini_program", self.mini_program_login(input, client)).await
    }
}

impl Parts {
    async fn mini_program_login(
        &self,
        input: &MiniProgramLogin,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, IdentityError> {
        let app = self.app(&input.app_id, AppKind::MiniProgram)?;
        check_code(&input.code)?;
        let encrypted = match (&input.encrypted_data, &input.iv) {
            (None, None) => None,
            (Some(data), Some(iv)) => {
                let encrypted = EncryptedData { data, iv };
                encrypted.check()?;
                Some(encrypted)
            }
            _ => {
                return Err(IdentityError::BadInput(
                    "encryptedData and iv go together".into(),
                ));
            }
        };
        if let Some(phone_code) = &input.phone_code {
            check_phone_code(phone_code)?;
        }
        // Only well-formed logins take from the limits: each of them calls WeChat.
        self.rate_limit(Action::Login, client, Some(&input.app_id))
            .await?;

        let session = self.wechat.code_to_session(app, &input.code).await;
        crate::metrics::apps::record(app.app_id.as_str(), &session);
        let session = session.inspect_err(|e| {
            tracing::info!(app = %app.app_id, errcode = e.errcode(), error = %e, "code exchange failed");
        })?;
        check_wechat_id("openid", &session.openid)?;
        if let Some(u) = &session.unionid {
            check_wechat_id("unionid", u)?;
        }
        let user_data = match encrypted {
            None => None,
            Some(e) => Some(
                decrypt_user_data(&session.session_key, e.data, e.iv, app.app_id.as_str())
                    .map_err(|e| match e {
                        DecryptError::WrongApp => IdentityError::BadInput(e.to_string()),
                        // One answer for bad padding and for no JSON: no padding oracle.
                        DecryptError::Undecryptable | DecryptError::NotUserData => {
                            IdentityError::BadInput(
                                "encryptedData and iv do not decrypt to WeChat's data with this \
                                 login's session key (was it produced in this login's session?)"
                                    .into(),
                            )
                        }
                    })?,
            ),
        };
        let data_unionid = user_data.as_ref().and_then(|d| d.union_id.clone());
        if let Some(u) = &data_unionid {
            check_wechat_id("unionid", u)?;
        }
        let unionid = session.unionid.clone().or(data_unionid).map(UnionId::new);
        let openid = OpenId::new(session.openid);
        // The phone button's number, or else the legacy encryptedData's: both vouched for.
        let number = match &input.phone_code {
            Some(phone_code) => Some(self.phone_number(app, &openid, phone_code).await?),
            None => user_data.as_ref().and_then(legacy_phone_number),
        };
        let fill = user_data.map(|d| ProfileFill {
            nickname: d.nick_name,
            avatar_url: d.avatar_url,
            ..ProfileFill::default()
        });
        let context = format!("{}:{}", app.app_id, openid);
        let sealed_key = self
            .sealer
            .seal(session.session_key.as_bytes(), context.as_bytes());
        let sighting = Sighting {
            app_id: &app.app_id,
            openid: &openid,
            unionid: unionid.as_ref(),
            reason: MergeReason::Login,
            profile: fill.as_ref(),
            phone: number.as_ref().map(|number| PhoneSighting {
                number,
                merge: self.config.identity.merge_on_phone_number,
            }),
            seen: Seen::MiniProgramLogin {
                session_key: &sealed_key,
            },
        };
        if let Some(outcome) = self.returning_login(&sighting, None, client).await? {
            return Ok(outcome);
        }
        transaction(
            &self.db,
            async |conn: &mut Conn| -> Result<_, IdentityError> {
                self.log_in(conn, &sighting, client).await
            },
        )
        .await
    }

    /// Records a login's sighting and opens a session for its user, inside the caller's
    /// transaction.
    pub(in crate::identity) async fn log_in(
        &self,
        conn: &mut Conn,
        sighting: &Sighting<'_>,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, IdentityError> {
        let resolved = sighting::record(conn, sighting).await?;
        refuse_disabled(&resolved.user)?;
        let login = (None, Some(sighting.app_id));
        let tokens = sessions::create(conn, &self.tokens, &resolved.user.id, login, client).await?;
        Ok(LoginOutcome {
            user: resolved.user,
            new_user: resolved.new_user,
            tokens,
        })
    }
}

/// The number in legacy `encryptedData` (`getPhoneNumber` before base library 2.21.2), in
/// E.164: from `countryCode` and `purePhoneNumber` when WeChat sent them, else `phoneNumber`.
fn legacy_phone_number(data: &UserData) -> Option<PhoneNumber> {
    match (&data.country_code, &data.pure_phone_number) {
        (Some(cc), Some(pure)) => PhoneNumber::from_parts(cc, pure),
        _ => data.phone_number.as_deref().and_then(PhoneNumber::parse),
    }
}
