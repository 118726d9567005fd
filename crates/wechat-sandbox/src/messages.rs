//! Faked message sending, as WeChat does it: Official Account template messages
//! (`POST /cgi-bin/message/template/send`, to followers), OA subscribe notifications
//! (`/cgi-bin/message/subscribe/bizsend`) and Mini Program subscribe messages
//! (`/cgi-bin/message/subscribe/send`), both to holders of a consent.
//!
//! Each app knows its templates (demo ones from the start, more by `POST /templates`); data is
//! checked with WeChat's keyword rules ([`wechat_client::messages::check_data`], 47003). A
//! consent is per (app, openid, template): one-time ones are counted (each accept adds one, a
//! send spends one), a long-term one is not spent (a reject clears it). After a send WeChat
//! pushes the delivery result to the service's webhook, and so does the sandbox (after its
//! answer, unless `POST /message-settings` turned pushes off); `POST /consents` records a
//! person's answer to the consent popup and pushes it. `GET /messages` lists what was sent.
//!
//! Every call with a valid token counts, refused ones too (`GET /stats`: `messageCalls`), and
//! against the app's daily quota of that API (45009 past it). A `client_msg_id` repeated for the
//! same person within 10 minutes sends nothing again and answers the first msgid.

mod api;
mod control;
mod send;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use serde::{Deserialize, Serialize};
use wechat_client::AppKind;
use wechat_client::messages::KeywordType;

use super::{Sandbox, SandboxApp, lock};

pub use api::{MAX_PENDING_PUSHES, consent_xml, subscribe_sent_xml, template_finished_xml};
pub(super) use api::{bizsend, subscribe_send, template_send};
pub use control::{
    ConsentRequest, DEFAULT_LIST_LIMIT, MAX_KEY_LEN, MAX_LIST_LIMIT, MAX_USERS_PER_SETTINGS,
    MessageSettings, MessagesQuery, TemplateField, TemplateRequest,
};
pub(super) use control::{add_template, list_messages, record_consent, settings};

/// The demo template message of every sandbox Official Account (`thing1` THING, `time2` TIME).
pub const TEMPLATE_SHIPPED: &str = "sandboxtpl-shipped";
/// The demo subscribe notification of every sandbox Official Account (`thing1` THING, `date2`
/// DATE).
pub const TEMPLATE_OA_NOTICE: &str = "sandboxtpl-oa-notice";
/// The demo subscribe message of every sandbox Mini Program (`thing1` THING, `amount2` AMOUNT).
pub const TEMPLATE_MP_ORDER: &str = "sandboxtpl-mp-order";

/// Messages the sandbox keeps listed at most, all apps together (the oldest are dropped from
/// `GET /messages`; its totals keep counting).
pub const MAX_MESSAGES: usize = 500_000;
/// Calls per app, API and (sandbox) day unless `POST /message-settings` says otherwise.
pub const DEFAULT_DAILY_QUOTA: u64 = 1_000_000;
/// Templates an app may have at most.
pub const MAX_TEMPLATES_PER_APP: usize = 100;
/// (app, person, template) consents the sandbox holds at most.
pub const MAX_CONSENTS: usize = 1_000_000;
/// People an app may have blocked at most.
pub const MAX_BLOCKED: usize = 100_000;
/// How long WeChat ignores a repeated `client_msg_id` of one person (10 minutes).
pub const CLIENT_MSG_ID_TTL_SECS: i64 = 600;
/// `client_msg_id`s remembered at most (the oldest are forgotten first).
pub const MAX_CLIENT_MSG_IDS: usize = 100_000;

/// What a template is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateKind {
    /// An Official Account template message (to followers).
    Template,
    /// A subscribe notification or message (to holders of a consent).
    Subscribe,
}

/// One of the faked send APIs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendApi {
    /// `/cgi-bin/message/template/send`.
    TemplateSend,
    /// `/cgi-bin/message/subscribe/bizsend`.
    Bizsend,
    /// `/cgi-bin/message/subscribe/send`.
    SubscribeSend,
}

impl SendApi {
    fn index(self) -> usize {
        self as usize
    }

    /// The kind of app whose token the API takes.
    fn app_kind(self) -> AppKind {
        match self {
            SendApi::SubscribeSend => AppKind::MiniProgram,
            _ => AppKind::OfficialAccount,
        }
    }

    /// The kind of template it sends.
    fn template_kind(self) -> TemplateKind {
        match self {
            SendApi::TemplateSend => TemplateKind::Template,
            _ => TemplateKind::Subscribe,
        }
    }
}

/// Calls of the send APIs per app (`GET /stats`: `messageCalls`).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MessageCalls {
    /// `template/send` calls.
    pub template_send: u64,
    /// `subscribe/bizsend` calls.
    pub bizsend: u64,
    /// `subscribe/send` calls.
    pub subscribe_send: u64,
}

/// A Mini Program page a message opens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MiniProgramLink {
    /// The Mini Program.
    pub appid: String,
    /// Its page.
    #[serde(default)]
    pub pagepath: String,
}

/// A message the sandbox delivered (`GET /messages`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivered {
    /// The msgid answered.
    pub msgid: u64,
    /// The API it was sent with.
    pub api: SendApi,
    /// The person's openid.
    pub touser: String,
    /// The template.
    pub template_id: String,
    /// The keyword values.
    pub data: BTreeMap<String, String>,
    /// Template messages: the web page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Subscribe sends: the page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// The Mini Program page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miniprogram: Option<MiniProgramLink>,
    /// `success`, or `failed:user block` for a person who blocked the app.
    pub status: String,
    /// When (Unix seconds, sandbox clock).
    pub sent_at: i64,
}

/// `GET /messages`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageList {
    /// Messages of the app (to `touser`, if asked) ever delivered.
    pub total: u64,
    /// Distinct people among them.
    pub recipients: u64,
    /// The last ones, oldest first.
    pub messages: Vec<Delivered>,
}

struct Template {
    kind: TemplateKind,
    fields: Vec<(String, KeywordType)>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Consent {
    one_time: u32,
    long_term: bool,
}

/// (app, openid, template) or (app, openid, client_msg_id).
type Key = (String, String, String);

struct AppMessages {
    id: Arc<str>,
    kind: AppKind,
    templates: HashMap<String, Template>,
    push_events: bool,
    /// Openids of the people who blocked the app.
    blocked: HashSet<String>,
    daily_quota: u64,
    quota_day: u64,
    used_today: [u64; 3],
    calls: MessageCalls,
    total: u64,
    recipients: HashMap<String, u64>,
    log: VecDeque<Delivered>,
}

impl AppMessages {
    fn new(id: &str, kind: AppKind) -> Self {
        let field = |key: &str, ty| (key.to_owned(), ty);
        let mut templates = HashMap::new();
        let mut add = |id: &str, kind, fields| {
            templates.insert(id.to_owned(), Template { kind, fields });
        };
        match kind {
            AppKind::OfficialAccount => {
                add(
                    TEMPLATE_SHIPPED,
                    TemplateKind::Template,
                    vec![
                        field("thing1", KeywordType::Thing),
                        field("time2", KeywordType::Time),
                    ],
                );
                add(
                    TEMPLATE_OA_NOTICE,
                    TemplateKind::Subscribe,
                    vec![
                        field("thing1", KeywordType::Thing),
                        field("date2", KeywordType::Date),
                    ],
                );
            }
            AppKind::MiniProgram => add(
                TEMPLATE_MP_ORDER,
                TemplateKind::Subscribe,
                vec![
                    field("thing1", KeywordType::Thing),
                    field("amount2", KeywordType::Amount),
                ],
            ),
            // Websites and mobile apps send no WeChat messages.
            AppKind::Website | AppKind::MobileApp => {}
        }
        Self {
            id: id.into(),
            kind,
            templates,
            push_events: true,
            blocked: HashSet::new(),
            daily_quota: DEFAULT_DAILY_QUOTA,
            quota_day: 0,
            used_today: [0; 3],
            calls: MessageCalls::default(),
            total: 0,
            recipients: HashMap::new(),
            log: VecDeque::new(),
        }
    }
}

struct State {
    apps: HashMap<String, AppMessages>,
    consents: HashMap<Key, Consent>,
    /// The app of each listed message, oldest first (to drop the oldest of all in O(1)).
    order: VecDeque<Arc<str>>,
    max_messages: usize,
    next_msgid: u64,
    /// The msgid sent for each `client_msg_id`, and when it expires.
    client_msg_ids: HashMap<Key, (u64, i64)>,
    /// When each remembered `client_msg_id` expires, oldest first.
    client_msg_expiry: VecDeque<(i64, Key)>,
}

/// The message part of the sandbox's state.
pub(super) struct Messages {
    state: std::sync::Mutex<State>,
    /// Delivery pushes spawned and not finished.
    pending_pushes: AtomicUsize,
    /// Delivery pushes dropped because too many were pending.
    pub(super) pushes_dropped: std::sync::atomic::AtomicU64,
    /// Delivery pushes under way at once at most.
    push_slots: tokio::sync::Semaphore,
}

impl Messages {
    pub(super) fn new(apps: &HashMap<String, SandboxApp>) -> Self {
        let real_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        Self {
            state: std::sync::Mutex::new(State {
                apps: apps
                    .iter()
                    .map(|(id, app)| (id.clone(), AppMessages::new(id, app.kind)))
                    .collect(),
                consents: HashMap::new(),
                order: VecDeque::new(),
                max_messages: MAX_MESSAGES,
                // Unique across restarts of the sandbox (a service keeps msgids it was given),
                // and below 2^53 so JavaScript reads them exactly.
                next_msgid: real_ms.saturating_mul(1000),
                client_msg_ids: HashMap::new(),
                client_msg_expiry: VecDeque::new(),
            }),
            pending_pushes: AtomicUsize::new(0),
            pushes_dropped: std::sync::atomic::AtomicU64::new(0),
            push_slots: tokio::sync::Semaphore::new(api::PUSH_CONCURRENCY),
        }
    }
}

impl Sandbox {
    /// What the send APIs were asked for `app_id`.
    /// Delivery pushes dropped so far because [`MAX_PENDING_PUSHES`] were waiting.
    pub fn pushes_dropped(&self) -> u64 {
        self.inner
            .messages
            .pushes_dropped
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Delivery pushes spawned and not finished yet (each one's event is stored, or was
    /// refused, once it finished).
    pub fn pushes_pending(&self) -> usize {
        self.inner
            .messages
            .pending_pushes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// What the message APIs were asked for `app_id`.
    pub fn message_calls(&self, app_id: &str) -> MessageCalls {
        lock(&self.inner.messages.state)
            .apps
            .get(app_id)
            .map(|a| a.calls)
            .unwrap_or_default()
    }

    /// Whether delivery pushes go to `app_id`'s webhook: a push target is set, and the app has
    /// not turned them off.
    fn pushes_events(&self, app_id: &str) -> bool {
        self.has_push_target()
            && lock(&self.inner.messages.state)
                .apps
                .get(app_id)
                .is_some_and(|a| a.push_events)
    }

    /// The messages of `app_id` (to `touser`, if given): the last `limit`, oldest first.
    pub fn delivered(
        &self,
        app_id: &str,
        touser: Option<&str>,
        limit: usize,
    ) -> Option<MessageList> {
        let state = lock(&self.inner.messages.state);
        let app = state.apps.get(app_id)?;
        let (total, recipients) = match touser {
            Some(t) => {
                let n = app.recipients.get(t).copied().unwrap_or(0);
                (n, u64::from(n > 0))
            }
            None => (app.total, app.recipients.len() as u64),
        };
        let mut messages: Vec<Delivered> = app
            .log
            .iter()
            .rev()
            .filter(|m| touser.is_none_or(|t| m.touser == t))
            .take(limit)
            .cloned()
            .collect();
        messages.reverse();
        Some(MessageList {
            total,
            recipients,
            messages,
        })
    }

    #[cfg(test)]
    pub(super) fn set_max_messages(&self, max: usize) {
        lock(&self.inner.messages.state).max_messages = max;
    }
}
