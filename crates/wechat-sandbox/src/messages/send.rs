//! WeChat's rules for a send, a consent and the message settings, applied to the sandbox's
//! state under one lock (no HTTP here).

use wechat_client::AppKind;
use wechat_client::messages::{KeywordType, check_data};

use super::{
    AppMessages, CLIENT_MSG_ID_TTL_SECS, Consent, Delivered, MAX_BLOCKED, MAX_CLIENT_MSG_IDS,
    MAX_CONSENTS, MAX_TEMPLATES_PER_APP, MiniProgramLink, SendApi, State, Template, TemplateKind,
};
use crate::{Sandbox, check_user, derive_id, lock};

/// A WeChat refusal with a message of its own (`argument invalid! data.thing1 …`).
pub(super) type Refused = (i64, String);

fn refused(errcode: i64, errmsg: &str) -> Refused {
    (errcode, errmsg.to_owned())
}

/// A send request as parsed from its body.
#[derive(Debug, Default)]
pub(super) struct SendRequest {
    pub(super) touser: String,
    pub(super) template_id: String,
    pub(super) data: serde_json::Value,
    pub(super) url: Option<String>,
    pub(super) page: Option<String>,
    pub(super) miniprogram: Option<MiniProgramLink>,
    pub(super) client_msg_id: Option<String>,
}

/// A send WeChat took.
#[derive(Debug)]
pub(super) struct Accepted {
    pub(super) msgid: u64,
    /// What the delivery push says (`success`, `failed:user block`).
    pub(super) status: &'static str,
    /// A repeat of a `client_msg_id` seen in the last 10 minutes: nothing sent again.
    pub(super) repeated: bool,
}

/// The consents of one person for one template, after an answer.
#[derive(Clone, Copy, Debug)]
pub(super) struct ConsentState {
    pub(super) one_time: u32,
    pub(super) long_term: bool,
}

impl Sandbox {
    /// Counts a call of `api` by `app_id` and charges it to the app's daily quota of that API
    /// (45009 past it).
    pub(super) fn charge_message_call(&self, app_id: &str, api: SendApi) -> Result<(), Refused> {
        let day = self.day();
        let mut state = lock(&self.inner.messages.state);
        let app = state
            .apps
            .get_mut(app_id)
            .ok_or_else(|| refused(48001, "api unauthorized"))?;
        let calls = &mut app.calls;
        match api {
            SendApi::TemplateSend => calls.template_send += 1,
            SendApi::Bizsend => calls.bizsend += 1,
            SendApi::SubscribeSend => calls.subscribe_send += 1,
        }
        if app.quota_day != day {
            app.quota_day = day;
            app.used_today = [0; 3];
        }
        let used = &mut app.used_today[api.index()];
        if *used >= app.daily_quota {
            return Err(refused(45009, "reach max api daily quota limit"));
        }
        *used += 1;
        Ok(())
    }

    /// Applies WeChat's rules to a send (40037 template, 43004 not following, 47003 data, 43101
    /// no consent, in that order) and records it; `follows`: whether `touser` follows the app.
    pub(super) fn accept_send(
        &self,
        app_id: &str,
        api: SendApi,
        req: SendRequest,
        follows: bool,
    ) -> Result<Accepted, Refused> {
        let now = self.unix_now();
        let mut guard = lock(&self.inner.messages.state);
        let state = &mut *guard;
        let app = state
            .apps
            .get(app_id)
            .ok_or_else(|| refused(48001, "api unauthorized"))?;
        let template = app
            .templates
            .get(&req.template_id)
            .filter(|t| t.kind == api.template_kind())
            .ok_or_else(|| refused(40037, "invalid template_id"))?;
        if api == SendApi::TemplateSend && !follows {
            return Err(refused(43004, "require subscribe"));
        }
        let data = check_data(&template.fields, &req.data)
            .map_err(|why| (47003, format!("argument invalid! {why}")))?;
        if let Some(client_msg_id) = &req.client_msg_id {
            forget_expired(state, now, MAX_CLIENT_MSG_IDS);
            let key = (app_id.to_owned(), req.touser.clone(), client_msg_id.clone());
            if let Some((msgid, _)) = state.client_msg_ids.get(&key) {
                return Ok(Accepted {
                    msgid: *msgid,
                    status: "success",
                    repeated: true,
                });
            }
        }
        if api.template_kind() == TemplateKind::Subscribe {
            let key = (
                app_id.to_owned(),
                req.touser.clone(),
                req.template_id.clone(),
            );
            let consent = state.consents.get_mut(&key);
            match consent {
                Some(c) if c.long_term => {}
                Some(c) if c.one_time > 0 => {
                    c.one_time -= 1;
                    if c.one_time == 0 {
                        state.consents.remove(&key);
                    }
                }
                _ => return Err(refused(43101, "user refuse to accept the msg")),
            }
        }
        let msgid = state.next_msgid;
        state.next_msgid += 1;
        if let Some(client_msg_id) = req.client_msg_id {
            let key = (app_id.to_owned(), req.touser.clone(), client_msg_id);
            let expires = now + CLIENT_MSG_ID_TTL_SECS;
            state.client_msg_ids.insert(key.clone(), (msgid, expires));
            state.client_msg_expiry.push_back((expires, key));
        }
        // `state.apps` was borrowed for the template; look the app up again to record.
        let Some(app) = state.apps.get_mut(app_id) else {
            return Err(refused(48001, "api unauthorized"));
        };
        let status = if api == SendApi::TemplateSend && app.blocked.contains(&req.touser) {
            "failed:user block"
        } else {
            "success"
        };
        app.total += 1;
        *app.recipients.entry(req.touser.clone()).or_default() += 1;
        app.log.push_back(Delivered {
            msgid,
            api,
            touser: req.touser,
            template_id: req.template_id,
            data,
            url: req.url,
            page: req.page,
            miniprogram: req.miniprogram,
            status: status.to_owned(),
            sent_at: now,
        });
        state.order.push_back(app.id.clone());
        drop_oldest(state);
        Ok(Accepted {
            msgid,
            status,
            repeated: false,
        })
    }

    /// Records `user`'s answer for `template_id` of `app_id`: an accept adds a one-time
    /// consent (or makes it long-term), a reject clears the long-term one (from the settings
    /// page, `change`, the one-time ones too). The openid and the consents after it.
    pub(super) fn answer_consent(
        &self,
        app_id: &str,
        user: &str,
        template_id: &str,
        answer: ConsentAnswer,
    ) -> Result<(String, ConsentState), String> {
        check_user(user)?;
        let openid = derive_id("openid", app_id, user);
        let mut guard = lock(&self.inner.messages.state);
        let state = &mut *guard;
        let app = state
            .apps
            .get(app_id)
            .ok_or_else(|| format!("unknown appId `{app_id}`"))?;
        if !app
            .templates
            .get(template_id)
            .is_some_and(|t| t.kind == TemplateKind::Subscribe)
        {
            return Err(format!(
                "`{template_id}` is not a subscribe template of `{app_id}`"
            ));
        }
        let key = (app_id.to_owned(), openid.clone(), template_id.to_owned());
        if !state.consents.contains_key(&key) && state.consents.len() >= MAX_CONSENTS {
            return Err(format!("the sandbox holds {MAX_CONSENTS} consents already"));
        }
        let consent = state.consents.entry(key.clone()).or_default();
        match answer {
            ConsentAnswer::Accept { long_term: true } => consent.long_term = true,
            ConsentAnswer::Accept { long_term: false } => {
                consent.one_time = consent.one_time.saturating_add(1);
            }
            ConsentAnswer::Reject { change } => {
                consent.long_term = false;
                if change {
                    consent.one_time = 0;
                }
            }
        }
        let Consent {
            one_time,
            long_term,
        } = *consent;
        if one_time == 0 && !long_term {
            state.consents.remove(&key);
        }
        Ok((
            openid,
            ConsentState {
                one_time,
                long_term,
            },
        ))
    }

    /// Adds or replaces a template of `app_id`; whether it replaced one.
    pub(super) fn put_template(
        &self,
        app_id: &str,
        template_id: &str,
        kind: TemplateKind,
        fields: Vec<(String, KeywordType)>,
    ) -> Result<bool, String> {
        let mut state = lock(&self.inner.messages.state);
        let app = state
            .apps
            .get_mut(app_id)
            .ok_or_else(|| format!("unknown appId `{app_id}`"))?;
        if app.kind == AppKind::MiniProgram && kind == TemplateKind::Template {
            return Err("a Mini Program has subscribe templates only".into());
        }
        let replaced = app.templates.contains_key(template_id);
        if !replaced && app.templates.len() >= MAX_TEMPLATES_PER_APP {
            return Err(format!(
                "an app has at most {MAX_TEMPLATES_PER_APP} templates"
            ));
        }
        app.templates
            .insert(template_id.to_owned(), Template { kind, fields });
        Ok(replaced)
    }

    /// Changes `app_id`'s message settings; the settings after it.
    pub(super) fn change_settings(
        &self,
        app_id: &str,
        change: SettingsChange<'_>,
    ) -> Result<SettingsNow, String> {
        for user in change.block.iter().chain(change.unblock) {
            check_user(user)?;
        }
        let mut state = lock(&self.inner.messages.state);
        let app: &mut AppMessages = state
            .apps
            .get_mut(app_id)
            .ok_or_else(|| format!("unknown appId `{app_id}`"))?;
        let openid = |user: &String| derive_id("openid", app_id, user);
        for user in change.unblock {
            app.blocked.remove(&openid(user));
        }
        let new: Vec<String> = change
            .block
            .iter()
            .map(openid)
            .filter(|o| !app.blocked.contains(o))
            .collect();
        if app.blocked.len() + new.len() > MAX_BLOCKED {
            return Err(format!(
                "an app may have at most {MAX_BLOCKED} blocked people"
            ));
        }
        app.blocked.extend(new);
        if let Some(push_events) = change.push_events {
            app.push_events = push_events;
        }
        if let Some(quota) = change.daily_quota {
            app.daily_quota = quota;
        }
        Ok(SettingsNow {
            push_events: app.push_events,
            blocked: app.blocked.len(),
            daily_quota: app.daily_quota,
        })
    }
}

/// A person's answer to a consent popup (or in their settings).
#[derive(Clone, Copy, Debug)]
pub(super) enum ConsentAnswer {
    Accept { long_term: bool },
    Reject { change: bool },
}

/// What `POST /message-settings` changes.
pub(super) struct SettingsChange<'a> {
    pub(super) push_events: Option<bool>,
    pub(super) block: &'a [String],
    pub(super) unblock: &'a [String],
    pub(super) daily_quota: Option<u64>,
}

/// An app's message settings.
#[derive(Clone, Copy, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SettingsNow {
    pub(super) push_events: bool,
    pub(super) blocked: usize,
    pub(super) daily_quota: u64,
}

/// Forgets the `client_msg_id`s that expired, and the oldest past `max`.
fn forget_expired(state: &mut State, now: i64, max: usize) {
    let State {
        client_msg_ids,
        client_msg_expiry,
        ..
    } = state;
    while let Some((expires, _)) = client_msg_expiry.front() {
        if *expires > now && client_msg_expiry.len() < max {
            break;
        }
        if let Some((expires, key)) = client_msg_expiry.pop_front() {
            if client_msg_ids.get(&key).is_some_and(|(_, e)| *e == expires) {
                client_msg_ids.remove(&key);
            }
        }
    }
}

/// Drops the oldest listed messages of all apps past the limit.
fn drop_oldest(state: &mut State) {
    let State {
        apps,
        order,
        max_messages,
        ..
    } = state;
    while order.len() > *max_messages {
        let Some(app_id) = order.pop_front() else {
            break;
        };
        if let Some(app) = apps.get_mut(&*app_id) {
            app.log.pop_front();
        }
    }
}
