//! GraphQL's side of the error layer ([`crate::error`]): every error a resolver returns carries
//! a stable `extensions.code`; WeChat failures also carry `extensions.wechatErrcode`, rate
//! limits `extensions.retryAfter`, a refused message `extensions.messageId` (the message recorded
//! with its failure).

use async_graphql::{Pos, ServerError};

pub use crate::error::{ApiError, ErrorCode};

/// The GraphQL error a client sees.
impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        let mut error = async_graphql::Error::new(e.message());
        let mut extensions = async_graphql::ErrorExtensionValues::default();
        extensions.set("code", e.code().as_str());
        if let Some(errcode) = e.wechat_errcode() {
            extensions.set("wechatErrcode", errcode);
        }
        if let Some(id) = e.message_id() {
            extensions.set("messageId", id);
        }
        if let Some(secs) = e.retry_after_secs() {
            extensions.set("retryAfter", secs);
        }
        error.extensions = Some(extensions);
        error
    }
}

/// Converts any layer's error into the GraphQL error the client sees.
pub fn gql(e: impl Into<ApiError>) -> async_graphql::Error {
    e.into().into()
}

/// A request refused before it runs: BAD_USER_INPUT with `message`, at `pos`.
pub(super) fn refuse(message: String, pos: Option<Pos>) -> ServerError {
    refuse_with(ErrorCode::BadUserInput, message, pos)
}

pub(super) fn refuse_with(code: ErrorCode, message: String, pos: Option<Pos>) -> ServerError {
    let mut error = ServerError::new(message, pos);
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", code.as_str());
    error.extensions = Some(extensions);
    error
}
