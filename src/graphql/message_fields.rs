//! The message fields of the query and mutation roots: send to a user (or many), templates,
//! subscribe permissions, and reading messages and bulk jobs.

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object};

use super::access;
use super::error::{ApiError, gql};
use super::message_inputs::{
    RegisterMessageTemplateInput, SendMessageInput, SendMessagesInput, SubscribeAnswer,
    SubscribeAnswerInput, user_id,
};
use super::messages::{Message, MessageJob, MessageStatus, MessageTemplate, SubscribePermission};
use super::paging::Page;
use crate::db::models::message::MessageFilter;
use crate::identity::messages::bulk::Recipients;
use crate::identity::messages::templates::NewTemplate;
use crate::identity::messages::{Recipient, SendInput};
use crate::types::{AppId, JobId, MessageId};
use crate::wechat::messages::Channel;

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
    #[graphql(complexity = "super::paging::page_weight(first) * child_complexity + 1")]
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
            app_id: app_id.map(|a| AppId::new(crate::identity::truncate(&a, 64))),
            status: status.map(Into::into),
            job_id: job_id.map(|j| JobId::new(crate::identity::truncate(&j, 64))),
        };
        let rows = reader
            .messages(
                &filter,
                page.after.as_deref().map(MessageId::new).as_ref(),
                page.limit(),
            )
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
        let (routes, idempotency_key) = input.message.routes().map_err(bad)?;
        let row = messenger
            .send_message(SendInput {
                recipient,
                routes,
                idempotency_key,
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
        let (routes, idempotency_key) = input.message.routes().map_err(bad)?;
        let job = messenger
            .send_messages(recipients, routes, idempotency_key.as_deref())
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
    #[graphql(complexity = "answers.len() * child_complexity + 1")]
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
