//! Relay's `Node`: users and identities by id (`node`, `nodes`). Ids are the rows' UUIDs, one
//! id space across tables (each table makes its own UUIDv7s, which never repeat), so an id
//! needs no type prefix and stays the id every other field shows.

use async_graphql::{Context, ID, Interface};

use super::access;
use super::app_login::{MobileAppIdentity, WebsiteIdentity};
use super::compiled::{self, Compiled};
use super::error::{ApiError, gql};
use super::types::{MiniProgramIdentity, OfficialAccountIdentity, User};
use crate::identity::nodes::MAX_NODES;
use crate::identity::values::NodeRow;

/// An object with a global id: `node(id)` finds it again.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "The object's global id."))]
pub enum Node {
    /// A user.
    User(User),
    /// A Mini Program identity.
    MiniProgramIdentity(MiniProgramIdentity),
    /// An Official Account identity.
    OfficialAccountIdentity(OfficialAccountIdentity),
    /// A website identity.
    WebsiteIdentity(WebsiteIdentity),
    /// A mobile-app identity.
    MobileAppIdentity(MobileAppIdentity),
}

impl From<NodeRow> for Node {
    fn from(row: NodeRow) -> Self {
        match row {
            NodeRow::User(u) => Node::User(User(u)),
            NodeRow::MiniProgram(i) => Node::MiniProgramIdentity(MiniProgramIdentity(i)),
            NodeRow::OfficialAccount(i) => {
                Node::OfficialAccountIdentity(OfficialAccountIdentity(i))
            }
            NodeRow::Website(i) => Node::WebsiteIdentity(WebsiteIdentity(i)),
            NodeRow::MobileApp(i) => Node::MobileAppIdentity(MobileAppIdentity(i)),
        }
    }
}

/// The objects of `ids` (null where none), checked like every read: admin/service keys see
/// all, a user token itself and its identities (anything else: FORBIDDEN).
pub async fn nodes(
    ctx: &Context<'_>,
    ids: &[ID],
) -> async_graphql::Result<Vec<Option<Compiled<Node>>>> {
    if ids.len() > MAX_NODES {
        return Err(gql(ApiError::bad_input(format!(
            "ids: at most {MAX_NODES} at once"
        ))));
    }
    let ids = ids
        .iter()
        .map(|id| {
            uuid::Uuid::parse_str(id)
                .map(|_| id.to_string())
                .map_err(|_| {
                    gql(ApiError::bad_input(format!(
                        "{:?} is not an id",
                        id.as_str()
                    )))
                })
        })
        .collect::<async_graphql::Result<Vec<String>>>()?;
    let access = access::access(ctx);
    // Users only, through the compiled path; an id that is not a user's (an identity's, or
    // none) leaves the whole list to the rows below.
    if let Some(shape) = compiled::uncounted_user_shape(ctx)
        && let Some(users) = access.nodes_json(&ids, &shape).await.map_err(gql)?
    {
        compiled::count(ctx, true);
        return Ok(users
            .into_iter()
            .map(|json| Some(Compiled::Json(json)))
            .collect());
    }
    compiled::count(ctx, false);
    let rows = access.nodes(&ids).await.map_err(gql)?;
    Ok(rows
        .into_iter()
        .map(|r| r.map(|r| Compiled::Resolved(Node::from(r))))
        .collect())
}
