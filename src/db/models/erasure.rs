//! What an erasure (`deleteUser`) removes besides the user rows: every row that holds the
//! person's identities, logins, consents, phone claims, webhook pushes and message content.
//! Ids, times and merge links stay (see [`super::user::UserRow::erase`]).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::{
    follower_sync_seen, login_tickets, messages, mini_program_identities, mobile_app_identities,
    official_account_identities, phone_code_exchanges, sessions, subscribe_permissions,
    webhook_events, website_identities,
};
use crate::db::{Conn, DbError};
use crate::types::UserId;
use crate::with_conn;

/// Deletes the identities of `users` (every kind) and what is keyed by their openids; blanks
/// their messages' content; deletes their sessions and login tickets. Returns the openids of
/// the identities that went.
pub async fn erase_person(conn: &mut Conn, users: &[UserId]) -> Result<Vec<String>, DbError> {
    let mut keys: Vec<(String, String)> = Vec::new();
    macro_rules! take {
        ($t:ident) => {{
            let q = diesel::delete($t::table.filter($t::user_id.eq_any(users)))
                .returning(($t::app_id, $t::openid));
            let taken: Vec<(String, String)> = with_conn!(conn, c => q.get_results(c).await)?;
            keys.extend(taken);
        }};
    }
    take!(mini_program_identities);
    take!(official_account_identities);
    take!(website_identities);
    take!(mobile_app_identities);
    let openids: Vec<&str> = keys.iter().map(|(_, o)| o.as_str()).collect();
    // Openids are unique to their app (28 characters WeChat picks per app), so the openid alone
    // names the person's rows.
    let q = diesel::delete(
        subscribe_permissions::table.filter(subscribe_permissions::openid.eq_any(&openids)),
    );
    with_conn!(conn, c => q.execute(c).await)?;
    let q = diesel::delete(
        phone_code_exchanges::table.filter(phone_code_exchanges::openid.eq_any(&openids)),
    );
    with_conn!(conn, c => q.execute(c).await)?;
    let q = diesel::delete(webhook_events::table.filter(webhook_events::openid.eq_any(&openids)));
    with_conn!(conn, c => q.execute(c).await)?;
    let q = diesel::delete(
        follower_sync_seen::table.filter(follower_sync_seen::openid.eq_any(&openids)),
    );
    with_conn!(conn, c => q.execute(c).await)?;
    let q = diesel::update(messages::table.filter(messages::user_id.eq_any(users))).set((
        messages::content.eq("{}"),
        messages::openid.eq(None::<String>),
        messages::error.eq(None::<String>),
    ));
    with_conn!(conn, c => q.execute(c).await)?;
    let q = diesel::delete(sessions::table.filter(sessions::user_id.eq_any(users)));
    with_conn!(conn, c => q.execute(c).await)?;
    let q = diesel::delete(login_tickets::table.filter(login_tickets::user_id.eq_any(users)));
    with_conn!(conn, c => q.execute(c).await)?;
    Ok(keys.into_iter().map(|(_, openid)| openid).collect())
}
