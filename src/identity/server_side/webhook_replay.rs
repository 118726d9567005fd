//! Replays of signed webhook queries. A push's `signature` covers its token, timestamp and
//! nonce — not its body (in plaintext mode nothing signs the body) and not the app (apps may
//! share a token). So each accepted push's signed query is stored in the database with its app
//! and a digest of its body (`webhook_signed_queries`), where every instance sees it and a
//! restart does not forget it, for as long as its timestamp can pass the freshness check
//! (`limits.webhook_freshness_secs`). The same query again is refused with another body or on
//! another app; with the same body on the same app it is WeChat retrying, accepted (the event
//! store deduplicates it).
//!
//! Every push that passed its checks is recorded, encrypted ones too: their query, replayed as
//! plaintext to an app that accepts plaintext and shares the token, is refused as well. Rows
//! are written only for pushes the token signed (nobody else can make one) and purged by the
//! `purge_expired` job once expired (twice the window after their timestamp, which is within a
//! window of their arrival), so the table holds at most the pushes of three windows.

use chrono::TimeDelta;

use super::webhook::{PushQuery, Refused};
use crate::config::AppConfig;
use crate::db::models::Claim;
use crate::db::models::now;
use crate::db::models::webhook_signed_query::WebhookSignedQueryRow;
use crate::identity::access::System;
use crate::identity::{IdentityError, Parts};

impl Parts {
    /// Records the signed query of a push that passed every other check, or refuses it as a
    /// replay: seen before on another app, or with another body (see the module docs).
    pub(in crate::identity) async fn check_replay(
        &self,
        app: &AppConfig,
        q: &PushQuery,
        body: &str,
    ) -> Result<(), Refused> {
        let (Some(signature), Some(timestamp), Some(nonce)) =
            (&q.signature, &q.timestamp, &q.nonce)
        else {
            return Err(Refused::Unauthorized(
                "signature, timestamp and nonce are required".into(),
            ));
        };
        // Checked fresh already: within the window of now.
        let ts: i64 = timestamp
            .parse()
            .map_err(|_| Refused::Unauthorized("timestamp is not a number".into()))?;
        let window = i64::try_from(self.config.limits.webhook_freshness_secs).unwrap_or(i64::MAX);
        // Kept until the timestamp is a whole window past failing the freshness check, so a
        // purge never races a push that was checked a moment before.
        let expires_at = chrono::DateTime::from_timestamp(ts, 0)
            .map(|t| t.naive_utc())
            .and_then(|t| t.checked_add_signed(TimeDelta::try_seconds(window.saturating_mul(2))?))
            .ok_or_else(|| Refused::Unauthorized("timestamp is out of range".into()))?;
        let row = WebhookSignedQueryRow {
            signature: signature.clone(),
            push_timestamp: timestamp.clone(),
            nonce: nonce.clone(),
            app_id: app.app_id.clone(),
            body_sha256: crate::crypto::sha256_hex(body.as_bytes()),
            seen_at: now(),
            expires_at,
        };
        let mut conn = self.db.conn().await?;
        let claim = WebhookSignedQueryRow::claim(&mut conn, &row).await?;
        drop(conn);
        let Claim::Seen(seen) = claim else {
            return Ok(());
        };
        let why = if seen.app_id != row.app_id {
            "on another app"
        } else if seen.body_sha256 != row.body_sha256 {
            "with another message"
        } else {
            return Ok(());
        };
        tracing::warn!(app = %app.app_id, "webhook push refused as a replay: its signed query came {why} before");
        Err(Refused::Unauthorized(format!(
            "this signed query came {why} before: refused as a replay"
        )))
    }
}

impl System {
    /// Deletes the expired signed queries of past pushes (the purge job); how many.
    pub async fn purge_webhook_signed_queries(&self) -> Result<usize, IdentityError> {
        let mut conn = self.db.conn().await?;
        Ok(WebhookSignedQueryRow::purge_expired(&mut conn, now()).await?)
    }
}
