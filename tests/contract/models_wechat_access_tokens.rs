//! `wechat_access_tokens`: what the token manager keeps per app and kind (the access token, an
//! Official Account's `jsapi_ticket`). A refresh is leased by one instance at a time, stored only
//! under its lease, and a value is invalidated only while it is the stored one — each kind of an
//! app on its own row, so a ticket's refresh never holds up the token's, nor the reverse.

use chrono::Duration;
use wechat_identity::db::Conn;
use wechat_identity::db::models::wechat_access_token::{AccessTokenRow, Kept, StoredToken};

use crate::common::seed::{self, app};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    each_kind_of_an_app_is_leased_and_stored_on_its_own,
    a_value_is_invalidated_only_while_it_is_the_stored_one,
);

/// A value to store, fetched now and living two hours.
fn value<'a>(sealed: &'a str, hash: &'a str) -> StoredToken<'a> {
    let now = seed::now_us();
    StoredToken {
        sealed,
        hash,
        expires_at: now + Duration::hours(2),
        fetched_at: now,
        forced: None,
    }
}

/// Takes the lease of `OA`'s `kind` for `owner` for a minute; whether it was taken.
async fn lease(conn: &mut Conn, kind: Kept, owner: &str) -> bool {
    let now = seed::now_us();
    let until = now + Duration::minutes(1);
    AccessTokenRow::lease_refresh(conn, (&app(OA), kind), owner, now, until)
        .await
        .unwrap()
}

async fn find(conn: &mut Conn, kind: Kept) -> AccessTokenRow {
    AccessTokenRow::find(conn, &app(OA), kind)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no {kind} row"))
}

async fn each_kind_of_an_app_is_leased_and_stored_on_its_own(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    assert!(lease(&mut conn, Kept::AccessToken, "a").await);
    // The ticket's lease is free while the token's is held, and held once taken.
    assert!(!lease(&mut conn, Kept::AccessToken, "b").await);
    assert!(lease(&mut conn, Kept::JsapiTicket, "b").await);
    assert!(!lease(&mut conn, Kept::JsapiTicket, "a").await);
    // Only the lease holder stores, and storing releases the lease.
    let ticket = value("sealed-ticket", "ticket-hash");
    let row = (&app(OA), Kept::JsapiTicket);
    assert!(
        !AccessTokenRow::store(&mut conn, row, "a", &ticket)
            .await
            .unwrap()
    );
    assert!(
        AccessTokenRow::store(&mut conn, row, "b", &ticket)
            .await
            .unwrap()
    );
    let stored = find(&mut conn, Kept::JsapiTicket).await;
    assert_eq!(stored.kind, Kept::JsapiTicket);
    assert_eq!(stored.token.as_deref(), Some("sealed-ticket"));
    assert_eq!(stored.refresh_owner, None);
    assert_eq!(stored.refreshes, 1);
    // The token's row is untouched: still leased by `a`, nothing stored.
    let token = find(&mut conn, Kept::AccessToken).await;
    assert_eq!(token.refresh_owner.as_deref(), Some("a"));
    assert_eq!(token.token, None);
    assert_eq!(ctx.count("wechat_access_tokens").await, 2);
}

async fn a_value_is_invalidated_only_while_it_is_the_stored_one(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    for (kind, hash) in [
        (Kept::AccessToken, "same-hash"),
        (Kept::JsapiTicket, "same-hash"),
    ] {
        assert!(lease(&mut conn, kind, "a").await);
        let stored = value("sealed", hash);
        let row = (&app(OA), kind);
        assert!(
            AccessTokenRow::store(&mut conn, row, "a", &stored)
                .await
                .unwrap()
        );
    }
    let now = seed::now_us();
    let token = (&app(OA), Kept::AccessToken);
    assert!(
        !AccessTokenRow::invalidate(&mut conn, token, "other-hash", now)
            .await
            .unwrap()
    );
    assert!(
        AccessTokenRow::invalidate(&mut conn, token, "same-hash", now)
            .await
            .unwrap()
    );
    let refused = find(&mut conn, Kept::AccessToken).await;
    assert_eq!(refused.expires_at, Some(now));
    assert_eq!(refused.failed_hash.as_deref(), Some("same-hash"));
    // The ticket with the same hash is another row: still valid.
    let ticket = find(&mut conn, Kept::JsapiTicket).await;
    assert!(ticket.expires_at.unwrap() > now);
    assert_eq!(ticket.failed_hash, None);
}
