//! Access in resolvers. The HTTP layer turns the caller into one [`Access`] per request
//! (`Identity::access`); a resolver asks here for the handle its field needs ([`public`],
//! [`reader`], [`admin`], [`messenger`], [`self_user`]) and gets it or the GraphQL error the caller sees. The
//! handles are the only way to the identity data (see `crate::identity::access`).

use async_graphql::Context;

use super::error::gql;
use crate::identity::ClientInfo;
use crate::identity::access::{Access, Admin, Messenger, Public, Reader, SelfUser};

/// The request's access (attached by the HTTP layer to every request).
pub fn access<'a>(ctx: &Context<'a>) -> &'a Access {
    ctx.data_unchecked::<Access>()
}

/// The client's user agent and address.
pub fn client_info(ctx: &Context<'_>) -> ClientInfo {
    ctx.data_opt::<ClientInfo>().cloned().unwrap_or_default()
}

/// What anyone may do (no credentials needed).
pub fn public<'a>(ctx: &Context<'a>) -> async_graphql::Result<Public<'a>> {
    access(ctx).public().map_err(gql)
}

/// Reads of every user, or FORBIDDEN / UNAUTHENTICATED.
pub fn reader<'a>(ctx: &Context<'a>) -> async_graphql::Result<Reader<'a>> {
    access(ctx).reader().map_err(gql)
}

/// Admin actions, or FORBIDDEN / UNAUTHENTICATED.
pub fn admin<'a>(ctx: &Context<'a>) -> async_graphql::Result<Admin<'a>> {
    access(ctx).admin().map_err(gql)
}

/// Sending messages (admin and service keys), or FORBIDDEN / UNAUTHENTICATED.
pub fn messenger<'a>(ctx: &Context<'a>) -> async_graphql::Result<Messenger<'a>> {
    access(ctx).messenger().map_err(gql)
}

/// The calling user, or FORBIDDEN (API keys) / UNAUTHENTICATED.
pub fn self_user<'a>(ctx: &Context<'a>) -> async_graphql::Result<SelfUser<'a>> {
    access(ctx).self_user().map_err(gql)
}
