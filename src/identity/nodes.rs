//! Objects by id for Relay's `node`/`nodes`: users and identities share one id space (UUIDv7s,
//! made independently for each table, never equal), so an id names one row of one table.

use std::collections::HashMap;

use super::IdentityError;
use super::access::Reader;
use super::values::NodeRow;
use crate::db::models::app_login_identity::{MobileAppIdentityRow, WebsiteIdentityRow};
use crate::db::models::mini_program_identity::MiniProgramIdentityRow;
use crate::db::models::official_account_identity::OfficialAccountIdentityRow;
use crate::db::models::user::UserRow;
use crate::types::{IdentityId, UserId};

/// The most ids one `nodes` call may ask for.
pub const MAX_NODES: usize = 100;

impl Reader<'_> {
    /// The row of each id (None where there is none), in the order asked; at most
    /// [`MAX_NODES`] ids. One statement per table still missing ids: at most three.
    pub async fn nodes(&self, ids: &[String]) -> Result<Vec<Option<NodeRow>>, IdentityError> {
        if ids.len() > MAX_NODES {
            return Err(IdentityError::BadInput(format!(
                "at most {MAX_NODES} ids at once"
            )));
        }
        let mut found: HashMap<String, NodeRow> = HashMap::new();
        let missing = |found: &HashMap<String, NodeRow>| -> Vec<String> {
            let mut left: Vec<String> = ids
                .iter()
                .filter(|id| !found.contains_key(*id))
                .cloned()
                .collect();
            left.sort();
            left.dedup();
            left
        };
        let mut conn = self.db.conn().await?;
        let user_ids: Vec<UserId> = missing(&found).into_iter().map(UserId::new).collect();
        if !user_ids.is_empty() {
            for row in UserRow::find_many(&mut conn, &user_ids).await? {
                found.insert(row.id.to_string(), NodeRow::User(row));
            }
        }
        // Each identity table in turn, for the ids no table before it had.
        macro_rules! look_in {
            ($($row:ident => $node:ident),+) => {$(
                let left: Vec<IdentityId> =
                    missing(&found).into_iter().map(IdentityId::new).collect();
                if !left.is_empty() {
                    for row in $row::find_many(&mut conn, &left).await? {
                        found.insert(row.id.to_string(), NodeRow::$node(row));
                    }
                }
            )+};
        }
        look_in!(
            MiniProgramIdentityRow => MiniProgram,
            OfficialAccountIdentityRow => OfficialAccount,
            WebsiteIdentityRow => Website,
            MobileAppIdentityRow => MobileApp
        );
        Ok(ids.iter().map(|id| found.get(id).cloned()).collect())
    }
}
