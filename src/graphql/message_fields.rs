//! The message fields of the query and mutation roots: send to a user (or many), templates,
//! subscribe permissions, and reading messages and bulk jobs.

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object};

use super::access;
use super::error::{ApiError, gql};
use super::message_inputs::{
    RegisterWeChatMessageTemplateInput, SendWeChatMessageInput, SendWeChatMessagesInput,
    WeChatSubscribeAnswer, WeChatSubscribeAnswerInput, user_id,
};
use super::message_jobs::WeChatMessageJob;
use super::messages::{
    WeChatMessage, WeChatMessageStatus, WeChatMessageTemplate, WeChatSubscribePermission,
};
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
    /// A message by id; null if there is none.
    /// Admin or service.
    async fn wechat_message(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The message's id.")] id: ID,
    ) -> async_graphql::Result<Option<WeChatMessage>> {
        let row = access::reader(ctx)?.message(&id).await.map_err(gql)?;
        Ok(row.map(WeChatMessage))
    }

    /// Messages, newest first, a page of 1-100 at a time (default 20), filtered by every
    /// argument given.
    /// Admin or service.
    #[allow(clippy::too_many_arguments)] // one per filter and the page, as GraphQL takes them
    #[graphql(complexity = "super::paging::page_weight(first) * child_complexity + 1")]
    async fn wechat_messages(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only messages to this user (a merged id: to its survivor).")]
        user_id: Option<ID>,
        #[graphql(desc = "Only messages on this app.")] app_id: Option<String>,
        #[graphql(desc = "Only messages that stand here.")] status: Option<WeChatMessageStatus>,
        #[graphql(desc = "Only this bulk job's messages.")] job_id: Option<ID>,
        #[graphql(desc = "Page size, 1-100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<Option<Connection<String, WeChatMessage>>> {
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
        Ok(Some(page.connection(
            rows,
            |m| m.id.as_str(),
            WeChatMessage,
        )))
    }

    /// The templates registered for `appId`, or for every configured app, by app and template
    /// id: the whole list, at most 200 per app (`registerWeChatMessageTemplate` refuses more).
    /// Admin or service.
    async fn wechat_message_templates(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only this app's templates.")] app_id: Option<String>,
    ) -> async_graphql::Result<Option<Vec<WeChatMessageTemplate>>> {
        let rows = access::reader(ctx)?
            .templates(app_id.as_deref())
            .await
            .map_err(gql)?;
        Ok(Some(rows.into_iter().map(WeChatMessageTemplate).collect()))
    }

    /// A bulk send by id, with its progress; null if there is none.
    /// Admin or service.
    async fn wechat_message_job(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The job's id (`WeChatMessageJob.id`).")] id: ID,
    ) -> async_graphql::Result<Option<WeChatMessageJob>> {
        let job = access::messenger(ctx)?
            .message_job(&crate::identity::truncate(&id, 64))
            .await
            .map_err(gql)?;
        Ok(job.map(WeChatMessageJob))
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
    /// Sends a message to a *user*: their identity on the app is found through the merged
    /// view, and the app's API for the template's channel is called. Refused before any WeChat
    /// call when the person has no identity there (NO_IDENTITY), does not follow the account
    /// (NOT_FOLLOWING), holds no subscribe permission (NO_SUBSCRIBE_PERMISSION), or the data
    /// does not fit the template (INVALID_MESSAGE_DATA); WeChat's refusals map to the same
    /// codes with `wechatErrcode`. A refusal of a person is recorded as a failed message,
    /// named by `extensions.messageId`. Counts against `limits.wechat_fields_per_request`.
    /// Admin or service.
    #[graphql(name = "sendWeChatMessage")]
    async fn send_wechat_message(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "To whom, what, and on which app.")] input: SendWeChatMessageInput,
    ) -> async_graphql::Result<Option<WeChatMessage>> {
        let messenger = access::messenger(ctx)?;
        let recipient = match (&input.user_id, input.unionid) {
            (Some(id), None) => Recipient::UserId(user_id(id)),
            (None, Some(u)) => Recipient::Unionid(crate::identity::truncate(&u, 64)),
            _ => return Err(bad("give userId or unionid (not both)")),
        };
        let routes = input.message.routes().map_err(bad)?;
        let row = messenger
            .send_message(SendInput {
                recipient,
                routes,
                idempotency_key: input.idempotency_key,
            })
            .await
            .map_err(gql)?;
        Ok(Some(WeChatMessage(row)))
    }

    /// Sends one message to many users on the job runner, at the app's rate
    /// (`messages.send_rate_per_sec`); resumable after a crash without sending anyone a second
    /// copy. `wechatMessageJob(id)` reports progress. Counts against
    /// `limits.wechat_fields_per_request`.
    /// Admin or service.
    #[graphql(name = "sendWeChatMessages")]
    async fn send_wechat_messages(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "To whom, what, and on which app.")] input: SendWeChatMessagesInput,
    ) -> async_graphql::Result<Option<WeChatMessageJob>> {
        let messenger = access::messenger(ctx)?;
        let recipients = match (input.user_ids, input.filter) {
            (Some(ids), None) => Recipients::UserIds(ids.iter().map(user_id).collect()),
            (None, Some(f)) => Recipients::Filter {
                has_unionid: f.has_unionid,
            },
            _ => return Err(bad("give userIds or filter (not both)")),
        };
        let routes = input.message.routes().map_err(bad)?;
        let job = messenger
            .send_messages(recipients, routes, input.idempotency_key.as_deref())
            .await
            .map_err(gql)?;
        Ok(Some(WeChatMessageJob(job)))
    }

    /// Registers a message template for an app, or replaces its registration; at most 200 per
    /// app. Sent data is checked against its keywords and WeChat's rules for their types.
    /// Admin.
    #[graphql(name = "registerWeChatMessageTemplate")]
    async fn register_wechat_message_template(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The template and its keywords.")]
        input: RegisterWeChatMessageTemplateInput,
    ) -> async_graphql::Result<Option<WeChatMessageTemplate>> {
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
        Ok(Some(WeChatMessageTemplate(template)))
    }

    /// A logged-in Mini Program user reports what `wx.requestSubscribeMessage` answered:
    /// accepts add a one-time permission (or hold a long-term one). Returns the permissions of
    /// the templates answered, as they now stand. Counts against
    /// `limits.wechat_fields_per_request`.
    /// The user itself.
    #[graphql(
        name = "recordWeChatSubscribeConsent",
        complexity = "answers.len() * child_complexity + 1"
    )]
    async fn record_wechat_subscribe_consent(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The Mini Program that asked.")] app_id: String,
        #[graphql(desc = "Its answers, 1 to 10, one per template.")] answers: Vec<
            WeChatSubscribeAnswerInput,
        >,
    ) -> async_graphql::Result<Option<Vec<WeChatSubscribePermission>>> {
        let answers: Vec<(String, bool)> = answers
            .into_iter()
            .map(|a| (a.template_id, a.answer == WeChatSubscribeAnswer::Accept))
            .collect();
        let rows = access::self_user(ctx)?
            .record_subscribe_consents(&app_id, &answers)
            .await
            .map_err(gql)?;
        Ok(Some(rows.into_iter().map(|(_, p)| p.into()).collect()))
    }
}
