//! Message templates registered per app: the channel they go out on and their keywords, which
//! every send's data is checked against before WeChat is called.

use crate::identity::audit::AuditAction;
use chrono::NaiveDateTime;

use super::{Failure, FailureCode, MAX_TEMPLATES_PER_APP};
use crate::db::models::message_template::TemplateRow;
use crate::db::models::now;
use crate::identity::access::{Admin, Reader, System};
use crate::identity::{IdentityError, Parts, truncate};
use crate::types::{AppId, TemplateId};
use crate::wechat::messages::{Channel, DROPPED_KEYWORDS, KeywordType, MAX_TEMPLATE_FIELDS};

/// A registered template.
#[derive(Clone, Debug)]
pub struct Template {
    /// The app that sends it.
    pub app_id: AppId,
    /// WeChat's template id.
    pub template_id: TemplateId,
    /// Its channel.
    pub channel: Channel,
    /// Subscribe templates: long-term permissions.
    pub long_term: bool,
    /// Its keywords and their types, in order.
    pub fields: Vec<(String, KeywordType)>,
    /// The admin key that registered it.
    pub registered_by: String,
    /// First registered.
    pub created_at: NaiveDateTime,
    /// Last registered.
    pub updated_at: NaiveDateTime,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredField {
    key: String,
    #[serde(rename = "type")]
    ty: KeywordType,
}

impl Template {
    fn from_row(row: TemplateRow) -> Result<Self, IdentityError> {
        let fields: Vec<StoredField> = serde_json::from_str(&row.fields)
            .map_err(|e| IdentityError::Internal(format!("stored template fields: {e}")))?;
        Ok(Template {
            channel: Channel::parse(&row.channel)
                .ok_or_else(|| IdentityError::Internal("stored template channel".into()))?,
            app_id: row.app_id,
            template_id: row.template_id,
            long_term: row.long_term,
            fields: fields.into_iter().map(|f| (f.key, f.ty)).collect(),
            registered_by: row.registered_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// Checks a template id: 1-64 characters of A-Z a-z 0-9 `_ -`.
pub fn check_template_id(id: &str) -> Result<(), IdentityError> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(IdentityError::BadInput(
            "templateId must be 1-64 characters of A-Z, a-z, 0-9, _ and -".into(),
        ));
    }
    Ok(())
}

/// What an admin registers.
#[derive(Clone, Debug)]
pub struct NewTemplate {
    /// The app.
    pub app_id: String,
    /// WeChat's template id.
    pub template_id: String,
    /// Its channel.
    pub channel: Channel,
    /// Long-term subscribe permissions.
    pub long_term: bool,
    /// Keywords and types.
    pub fields: Vec<(String, KeywordType)>,
}

impl Parts {
    /// The registered template `template_id` of `app_id`, if any.
    pub(in crate::identity) async fn find_template(
        &self,
        app_id: &AppId,
        template_id: &TemplateId,
    ) -> Result<Option<Template>, IdentityError> {
        let mut conn = self.db.conn().await?;
        TemplateRow::find(&mut conn, app_id, template_id)
            .await?
            .map(Template::from_row)
            .transpose()
    }

    /// The registered template, or TEMPLATE_NOT_REGISTERED.
    pub(in crate::identity) async fn template(
        &self,
        app_id: &str,
        template_id: &str,
    ) -> Result<Template, IdentityError> {
        check_template_id(template_id)?;
        let (app, template) = (AppId::new(app_id), TemplateId::new(template_id));
        self.find_template(&app, &template).await?.ok_or_else(|| {
            IdentityError::Message(Box::new(Failure::new(
                FailureCode::TemplateNotRegistered,
                format!(
                    "template `{template_id}` is not registered for `{}` (registerWeChatMessageTemplate)",
                    truncate(app_id, 64)
                ),
            )))
        })
    }
}

impl System {
    /// Registers `new`, unless it is registered already (sandbox mode's demo templates).
    pub async fn register_missing_template(
        &self,
        new: NewTemplate,
        by: &str,
    ) -> Result<(), IdentityError> {
        let row = self.template_row(new, by)?;
        let mut conn = self.db.conn().await?;
        Ok(TemplateRow::insert_missing(&mut conn, &row).await?)
    }
}

impl Parts {
    fn template_row(&self, new: NewTemplate, by: &str) -> Result<TemplateRow, IdentityError> {
        let app = self.app(&new.app_id, new.channel.app_kind())?;
        check_template_id(&new.template_id)?;
        if new.fields.is_empty() || new.fields.len() > MAX_TEMPLATE_FIELDS {
            return Err(IdentityError::BadInput(format!(
                "a template has 1 to {MAX_TEMPLATE_FIELDS} fields"
            )));
        }
        for (i, (key, _)) in new.fields.iter().enumerate() {
            let well_formed = !key.is_empty()
                && key.len() <= 32
                && key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !well_formed {
                return Err(IdentityError::BadInput(format!(
                    "field key `{}` must be 1-32 characters of a-z, 0-9 and _ (like thing1)",
                    truncate(key, 32)
                )));
            }
            if DROPPED_KEYWORDS.contains(&key.as_str()) {
                return Err(IdentityError::BadInput(format!(
                    "field `{key}`: WeChat no longer shows `first` and `remark` since May 2023"
                )));
            }
            if new.fields[..i].iter().any(|(k, _)| k == key) {
                return Err(IdentityError::BadInput(format!(
                    "field `{key}` appears twice"
                )));
            }
        }
        if new.long_term && !new.channel.needs_permission() {
            return Err(IdentityError::BadInput(
                "longTerm applies to subscribe templates only".into(),
            ));
        }
        let fields: Vec<StoredField> = new
            .fields
            .into_iter()
            .map(|(key, ty)| StoredField { key, ty })
            .collect();
        let at = now();
        Ok(TemplateRow {
            app_id: app.app_id.clone(),
            template_id: TemplateId::new(new.template_id),
            channel: new.channel.as_str().to_owned(),
            long_term: new.long_term,
            fields: serde_json::to_string(&fields)
                .map_err(|e| IdentityError::Internal(e.to_string()))?,
            registered_by: by.to_owned(),
            created_at: at,
            updated_at: at,
        })
    }
}

/// A template the sandbox offers: (app kind, template id, channel, keywords).
pub type SandboxTemplate = (
    crate::types::AppKind,
    &'static str,
    Channel,
    [(&'static str, KeywordType); 2],
);

/// The message templates the sandbox offers.
pub const SANDBOX_TEMPLATES: [SandboxTemplate; 3] = [
    (
        crate::types::AppKind::OfficialAccount,
        crate::wechat::sandbox::messages::TEMPLATE_SHIPPED,
        Channel::OfficialAccountTemplate,
        [("thing1", KeywordType::Thing), ("time2", KeywordType::Time)],
    ),
    (
        crate::types::AppKind::OfficialAccount,
        crate::wechat::sandbox::messages::TEMPLATE_OA_NOTICE,
        Channel::OfficialAccountSubscribe,
        [("thing1", KeywordType::Thing), ("date2", KeywordType::Date)],
    ),
    (
        crate::types::AppKind::MiniProgram,
        crate::wechat::sandbox::messages::TEMPLATE_MP_ORDER,
        Channel::MiniProgramSubscribe,
        [
            ("thing1", KeywordType::Thing),
            ("amount2", KeywordType::Amount),
        ],
    ),
];

impl System {
    /// Sandbox mode: registers the sandbox's demo templates for its apps (a registration an
    /// admin changed is kept).
    pub async fn register_sandbox_templates(&self) -> Result<(), IdentityError> {
        for app in &self.config.apps {
            for (kind, template_id, channel, fields) in SANDBOX_TEMPLATES {
                if kind != app.kind {
                    continue;
                }
                let new = NewTemplate {
                    app_id: app.app_id.as_str().to_owned(),
                    template_id: template_id.to_owned(),
                    channel,
                    long_term: false,
                    fields: fields.iter().map(|(k, t)| ((*k).to_owned(), *t)).collect(),
                };
                self.register_missing_template(new, "sandbox").await?;
            }
        }
        Ok(())
    }
}

impl Admin<'_> {
    /// Registers a template for an app (or replaces its registration): at most
    /// [`MAX_TEMPLATES_PER_APP`] per app.
    pub async fn register_template(&self, new: NewTemplate) -> Result<Template, IdentityError> {
        let row = self.identity.template_row(new, self.name)?;
        let mut conn = self.db.conn().await?;
        let exists = TemplateRow::find(&mut conn, &row.app_id, &row.template_id)
            .await?
            .is_some();
        if !exists && TemplateRow::count(&mut conn, &row.app_id).await? >= MAX_TEMPLATES_PER_APP {
            return Err(IdentityError::BadInput(format!(
                "an app has at most {MAX_TEMPLATES_PER_APP} templates"
            )));
        }
        TemplateRow::upsert(&mut conn, &row).await?;
        let stored = TemplateRow::find(&mut conn, &row.app_id, &row.template_id)
            .await?
            .ok_or_else(|| IdentityError::Internal("template vanished".into()))?;
        tracing::info!(app = %row.app_id, template = %row.template_id, key = self.name, "message template registered");
        let details = serde_json::json!({"appId": row.app_id, "templateId": row.template_id});
        self.audit(self.name, AuditAction::RegisterTemplate, None, details)
            .await;
        Template::from_row(stored)
    }
}

impl Reader<'_> {
    /// The registered templates of `app_id`, or of every configured app, by app and template
    /// id: at most [`MAX_TEMPLATES_PER_APP`] per app, which registration never exceeds, so the
    /// list is whole (one statement per app).
    pub async fn templates(&self, app_id: Option<&str>) -> Result<Vec<Template>, IdentityError> {
        let mut apps: Vec<&AppId> = match app_id {
            Some(a) => vec![&self.any_app(a)?.app_id],
            None => self.apps().iter().map(|a| &a.app_id).collect(),
        };
        apps.sort_unstable();
        let mut conn = self.db.conn().await?;
        let mut templates = Vec::new();
        for app in apps {
            for row in TemplateRow::list(&mut conn, Some(app), MAX_TEMPLATES_PER_APP).await? {
                templates.push(Template::from_row(row)?);
            }
        }
        Ok(templates)
    }
}
