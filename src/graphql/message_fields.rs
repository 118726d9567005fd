//! The message fields of the query and mutation roots: send to a user (or many), templates,
//! subscribe permissions, and reading messages and bulk jobs.

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Json, Object};

use super::access;
use super::error::{ApiError, gql};
use super::messages::{
    Message, MessageJob, MessageRouteInput, MessageStatus, MessageTemplate, MiniProgramPageInput,
    SubscribePermission, TemplateField, routes, user_id,
};
use super::paging::Page;
use crate::db::models::message::MessageFilter;
use crate::identity::messages::bulk::Recipients;
use crate::identity::messages::templates::NewTemplate;
use crate::identity::messages::{Recipient, SendInput};
use crate::wechat::messages::Channel;

/// `sendMessage` input: to whom (`userId` or `unionid`), and one route (`appId`, `templateId`,
/// `data`, `url`, `miniProgram`) or `channels`.
#[derive(InputObject)]
pub struct SendMessageInput {
    /// The user (a merged user's old id reaches the survivor).
    pub user_id: Option<ID>,
    /// Or the live user with this unionid.
    pub unionid: Option<String>,
    /// The app to send on.
    pub app_id: Option<String>,
    /// A template registered for that app.
    pub template_id: Option<String>,
    /// WeChat-shaped data: `{"thing1": {"value": "…"}}`.
    pub data: Option<Json<serde_json::Value>>,
    /// A web page the message opens.
    pub url: Option<String>,
    /// A Mini Program page the message opens.
    pub mini_program: Option<MiniProgramPageInput>,
    /// Instead of one route: up to 5, in order of preference; the first that can reach the
    /// person is used (`Message.channel` says which).
    pub channels: Option<Vec<MessageRouteInput>>,
    /// The same key (per API key) returns the first message instead of sending again.
    pub idempotency_key: Option<String>,
}

/// Which users `sendMessages` goes to.
#[derive(InputObject, Default)]
pub struct MessageRecipientFilter {
    /// Only users with (true) or without (false) a unionid.
    pub has_unionid: Option<bool>,
}

/// `sendMessages` input: `userIds` (at most 1,000) or `filter` (live users with an identity on
/// one of the routes' apps), and the message as in `sendMessage`.
#[derive(InputObject)]
pub struct SendMessagesInput {
    /// These users.
    pub user_ids: Option<Vec<ID>>,
    /// Or every user that matches.
    pub filter: Option<MessageRecipientFilter>,
    /// The app to send on.
    pub app_id: Option<String>,
    /// A template registered for that app.
    pub template_id: Option<String>,
    /// WeChat-shaped data.
    pub data: Option<Json<serde_json::Value>>,
    /// A web page the message opens.
    pub url: Option<String>,
    /// A Mini Program page the message opens.
    pub mini_program: Option<MiniProgramPageInput>,
    /// Routes in order of preference, instead of one.
    pub channels: Option<Vec<MessageRouteInput>>,
    /// The same key (per API key) returns the job it started first.
    pub idempotency_key: Option<String>,
}

/// `registerMessageTemplate` input.
#[derive(InputObject)]
pub struct RegisterMessageTemplateInput {
    /// The app that sends it.
    pub app_id: String,
    /// WeChat's template id (from the app's console).
    pub template_id: String,
    /// Its channel (it must fit the app's kind).
    pub channel: super::messages::MessageChannel,
    /// Its keywords with their types (at most 20).
    pub fields: Vec<TemplateField>,
    /// Subscribe templates: long-term permissions (not spent by a send).
    #[graphql(default)]
    pub long_term: bool,
}

/// What `wx.requestSubscribeMessage` answered for one template.
#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq)]
pub enum SubscribeAnswer {
    /// Accepted.
    Accept,
    /// Rejected.
    Reject,
    /// Banned by WeChat for this person.
    Ban,
    /// Filtered by WeChat (the template's title repeats another).
    Filter,
}

/// One answer of `wx.requestSubscribeMessage`.
#[derive(InputObject)]
pub struct SubscribeAnswerInput {
    /// The template.
    pub template_id: String,
    /// The answer.
    pub answer: SubscribeAnswer,
}

fn one_route(
    app_id: Option<String>,
    template_id: Option<String>,
    data: Option<Json<serde_json::Value>>,
    url: Option<String>,
    mini_program: Option<MiniProgramPageInput>,
) -> Option<MessageRouteInput> {
    if app_id.is_none() && template_id.is_none() && data.is_none() {
        return None;
    }
    Some(MessageRouteInput {
        app_id: app_id.unwrap_or_default(),
        template_id: template_id.unwrap_or_default(),
        data: data.unwrap_or(Json(serde_json::Value::Null)),
        url,
        mini_program,
    })
}

fn bad(message: &str) -> async_graphql::Error {
    gql(ApiError::bad_input(message))
}

/// Message queries (merged into the query root).
#[derive(Default)]
pub struct MessageQuery;

#[Object]
impl MessageQuery {
    /// A message by id (admin and service keys).
    async fn message(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Message>> {
        let row = access::reader(ctx)?.message(&id).await.map_err(gql)?;
        Ok(row.map(Message))
    }

    /// Messages, newest first, a page at a time (admin and service keys).
    #[allow(clippy::too_many_arguments)] // one per filter and the page, as GraphQL takes them
    async fn messages(
        &self,
        ctx: &Context<'_>,
        user_id: Option<ID>,
        app_id: Option<String>,
        status: Option<MessageStatus>,
        #[graphql(desc = "A bulk job's messages.")] job_id: Option<ID>,
        #[graphql(desc = "Page size, 1-100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Message>> {
        let reader = access::reader(ctx)?;
        let page = Page::parse("message", first, after.as_deref())?;
        let filter = MessageFilter {
            user_id: user_id.as_ref().map(user_id_of),
            app_id: app_id.map(|a| crate::identity::truncate(&a, 64)),
            status: status.map(Into::into),
            job_id: job_id.map(|j| crate::identity::truncate(&j, 64)),
        };
        let rows = reader
            .messages(&filter, page.after.as_deref(), page.limit())
            .await
            .map_err(gql)?;
        Ok(page.connection(rows, |m| m.id.as_str(), Message))
    }

    /// The templates registered for an app (every app: none). Admin and service keys.
    async fn message_templates(
        &self,
        ctx: &Context<'_>,
        app_id: Option<String>,
    ) -> async_graphql::Result<Vec<MessageTemplate>> {
        let rows = access::reader(ctx)?
            .templates(app_id.as_deref())
            .await
            .map_err(gql)?;
        Ok(rows.into_iter().map(MessageTemplate).collect())
    }

    /// A bulk send by id (admin and service keys).
    async fn message_job(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<MessageJob>> {
        let job = access::messenger(ctx)?
            .message_job(&crate::identity::truncate(&id, 64))
            .await
            .map_err(gql)?;
        Ok(job.map(MessageJob))
    }
}

fn user_id_of(id: &ID) -> crate::types::UserId {
    user_id(id)
}

/// Message mutations (merged into the mutation root).
#[derive(Default)]
pub struct MessageMutation;

#[Object]
impl MessageMutation {
    /// Sends a message to a *user* (admin and service keys): their identity on the app is found
    /// through the merged view, and the app's API for the template's channel is called. Refused
    /// before any WeChat call when the person has no identity there (NO_IDENTITY), does not
    /// follow the account (NOT_FOLLOWING), holds no subscribe permission
    /// (NO_SUBSCRIBE_PERMISSION), or the data does not fit the template
    /// (INVALID_MESSAGE_DATA); WeChat's refusals map to the same codes with `wechatErrcode`.
    /// A refusal of a person is recorded as a failed message, named by `extensions.messageId`.
    async fn send_message(
        &self,
        ctx: &Context<'_>,
        input: SendMessageInput,
    ) -> async_graphql::Result<Message> {
        let messenger = access::messenger(ctx)?;
        let recipient = match (&input.user_id, input.unionid) {
            (Some(id), None) => Recipient::UserId(user_id(id)),
            (None, Some(u)) => Recipient::Unionid(crate::identity::truncate(&u, 64)),
            _ => return Err(bad("give userId or unionid (not both)")),
        };
        let one = one_route(
            input.app_id,
            input.template_id,
            input.data,
            input.url,
            input.mini_program,
        );
        let routes = routes(one, input.channels).map_err(bad)?;
        let row = messenger
            .send_message(SendInput {
                recipient,
                routes,
                idempotency_key: input.idempotency_key,
            })
            .await
            .map_err(gql)?;
        Ok(Message(row))
    }

    /// Sends one message to many users on the job runner (admin and service keys), at the
    /// app's rate (`messages.send_rate_per_sec`); resumable after a crash without sending
    /// anyone a second copy. `messageJob(id)` reports progress.
    async fn send_messages(
        &self,
        ctx: &Context<'_>,
        input: SendMessagesInput,
    ) -> async_graphql::Result<MessageJob> {
        let messenger = access::messenger(ctx)?;
        let recipients = match (input.user_ids, input.filter) {
            (Some(ids), None) => Recipients::UserIds(ids.iter().map(user_id).collect()),
            (None, Some(f)) => Recipients::Filter {
                has_unionid: f.has_unionid,
            },
            _ => return Err(bad("give userIds or filter (not both)")),
        };
        let one = one_route(
            input.app_id,
            input.template_id,
            input.data,
            input.url,
            input.mini_program,
        );
        let routes = routes(one, input.channels).map_err(bad)?;
        let job = messenger
            .send_messages(recipients, routes, input.idempotency_key.as_deref())
            .await
            .map_err(gql)?;
        Ok(MessageJob(job))
    }

    /// Registers a message template for an app, or replaces its registration (admin). Sent
    /// data is checked against its keywords and WeChat's rules for their types.
    async fn register_message_template(
        &self,
        ctx: &Context<'_>,
        input: RegisterMessageTemplateInput,
    ) -> async_graphql::Result<MessageTemplate> {
        let new = NewTemplate {
            app_id: input.app_id,
            template_id: input.template_id,
            channel: Channel::from(input.channel),
            long_term: input.long_term,
            fields: input
                .fields
                .into_iter()
                .map(|f| (f.key, f.ty.into()))
                .collect(),
        };
        let template = access::admin(ctx)?
            .register_template(new)
            .await
            .map_err(gql)?;
        Ok(MessageTemplate(template))
    }

    /// A logged-in Mini Program user reports what `wx.requestSubscribeMessage` answered (user
    /// access tokens). Accepts add a one-time permission (or hold a long-term one); the
    /// permissions as they now stand.
    async fn record_subscribe_consent(
        &self,
        ctx: &Context<'_>,
        app_id: String,
        answers: Vec<SubscribeAnswerInput>,
    ) -> async_graphql::Result<Vec<SubscribePermission>> {
        let answers: Vec<(String, bool)> = answers
            .into_iter()
            .map(|a| (a.template_id, a.answer == SubscribeAnswer::Accept))
            .collect();
        let rows = access::self_user(ctx)?
            .record_subscribe_consents(&app_id, &answers)
            .await
            .map_err(gql)?;
        Ok(rows.into_iter().map(|(_, p)| p.into()).collect())
    }
}
