//! Access control: a resolver first asks the context for a handle narrowed to what the caller
//! may do ([`Reader`] for admin/service API keys, [`Admin`] for admin keys, [`SelfUser`] for a
//! user token), so forgetting a check means having nothing to query with.

use async_graphql::Context;

use super::error::{ApiError, gql};
use crate::auth::{AuthError, Caller, Role};
use crate::db::models::user::UserRow;
use crate::identity::{ClientInfo, Identity};

/// The caller of this request, as authenticated by the HTTP layer (or why it failed).
pub struct RequestAuth(pub Result<Caller, AuthError>);

/// The identity service in the schema's data.
pub fn identity<'a>(ctx: &Context<'a>) -> &'a Identity {
    ctx.data_unchecked::<Identity>()
}

/// The client's user agent and address.
pub fn client_info(ctx: &Context<'_>) -> ClientInfo {
    ctx.data_opt::<ClientInfo>().cloned().unwrap_or_default()
}

/// The authenticated caller; a bad token is UNAUTHENTICATED even where none is needed.
pub fn caller<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Caller> {
    match ctx.data_opt::<RequestAuth>() {
        Some(RequestAuth(Ok(caller))) => Ok(caller),
        Some(RequestAuth(Err(e))) => Err(gql(e.clone())),
        None => Ok(&Caller::Anonymous),
    }
}

/// May read every user and identity (admin and service API keys).
pub struct Reader<'a> {
    /// The service to read through.
    pub identity: &'a Identity,
}

/// May do everything (admin API keys).
pub struct Admin<'a> {
    /// The service.
    pub identity: &'a Identity,
    /// The key's name, recorded as the actor of admin actions.
    pub name: &'a str,
}

/// A user acting on itself (user access tokens).
pub struct SelfUser<'a> {
    /// The service.
    pub identity: &'a Identity,
    /// The token's subject (may be a merged user; resolve with [`SelfUser::live_user`]).
    pub user_id: &'a str,
}

fn need_credentials() -> async_graphql::Error {
    gql(ApiError::new(
        super::error::code::UNAUTHENTICATED,
        "this field needs `Authorization: Bearer <token>`",
    ))
}

/// A handle to read all users, or FORBIDDEN / UNAUTHENTICATED.
pub fn reader<'a>(ctx: &Context<'a>) -> async_graphql::Result<Reader<'a>> {
    match caller(ctx)? {
        Caller::ApiKey { .. } => Ok(Reader {
            identity: identity(ctx),
        }),
        Caller::User { .. } => Err(gql(AuthError::Forbidden(
            "needs an admin or service API key",
        ))),
        Caller::Anonymous => Err(need_credentials()),
    }
}

/// A handle for admin actions, or FORBIDDEN / UNAUTHENTICATED.
pub fn admin<'a>(ctx: &Context<'a>) -> async_graphql::Result<Admin<'a>> {
    match caller(ctx)? {
        Caller::ApiKey {
            name,
            role: Role::Admin,
        } => Ok(Admin {
            identity: identity(ctx),
            name,
        }),
        Caller::ApiKey { .. } | Caller::User { .. } => {
            Err(gql(AuthError::Forbidden("needs an admin API key")))
        }
        Caller::Anonymous => Err(need_credentials()),
    }
}

/// A handle for the calling user, or FORBIDDEN (API keys) / UNAUTHENTICATED.
pub fn self_user<'a>(ctx: &Context<'a>) -> async_graphql::Result<SelfUser<'a>> {
    match caller(ctx)? {
        Caller::User { user_id, .. } => Ok(SelfUser {
            identity: identity(ctx),
            user_id: user_id.as_str(),
        }),
        Caller::ApiKey { .. } => Err(gql(AuthError::Forbidden("needs a user access token"))),
        Caller::Anonymous => Err(need_credentials()),
    }
}

impl SelfUser<'_> {
    /// The live user behind the token (the survivor, if the token's user was merged).
    pub async fn live_user(&self) -> async_graphql::Result<UserRow> {
        let mut conn = self.identity.db.conn().await.map_err(gql)?;
        UserRow::find_live(&mut conn, self.user_id)
            .await
            .map_err(gql)?
            .ok_or_else(|| {
                gql(AuthError::Unauthenticated(
                    "the token's user no longer exists",
                ))
            })
    }
}
