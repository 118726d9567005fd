//! `messages`: one message per idempotency key, status moves that happen only from the status
//! named (a claim, a send's answer, a crash's `uncertain`), a bulk job's rows, listing, and a
//! status the code does not know. WeChat's delivery reports: `models_message_reports`.

use chrono::Duration;
use wechat_identity::db::models::message::{MessageFilter, MessageRow, MessageStatus, Outcome};
use wechat_identity::types::{JobId, MessageId, TemplateId, UserId, WechatMsgId};

use crate::common::seed::{self, app, openid};
use crate::common::*;
use crate::on_both_backends;

use MessageStatus::{Failed, Queued, Sending, Sent, Uncertain};

on_both_backends!(
    a_message_is_stored_once_per_idempotency_key,
    a_single_send_moves_only_from_the_status_named,
    a_bulk_jobs_messages_are_listed_once_claimed_once_and_closed,
    messages_are_listed_by_filter_newest_first,
    an_unknown_status_is_refused_and_never_read_as_another,
);

pub const TEMPLATE_CHANNEL: &str = "official_account_template";
pub const SUBSCRIBE_CHANNEL: &str = "mini_program_subscribe";

/// A single send's message to `user`, routed to o-1 on the OA with tpl-1.
pub fn message(user: &UserId, status: MessageStatus) -> MessageRow {
    MessageRow {
        id: MessageId::generate(),
        user_id: user.clone(),
        app_id: Some(app(OA)),
        openid: Some(openid("o-1")),
        channel: Some(TEMPLATE_CHANNEL.into()),
        template_id: Some(TemplateId::new("tpl-1")),
        status,
        content: "{}".into(),
        wechat_msg_id: None,
        error_code: None,
        wechat_errcode: None,
        error: None,
        idempotency_key: None,
        job_id: None,
        created_at: seed::now_us(),
        delivered_at: None,
    }
}

/// A bulk job's message to `user`, not routed yet.
fn queued(job: &JobId, user: &UserId) -> MessageRow {
    MessageRow {
        app_id: None,
        openid: None,
        channel: None,
        template_id: None,
        content: String::new(),
        job_id: Some(job.clone()),
        ..message(user, Queued)
    }
}

/// Where `message` routes, in `status`.
fn routed(status: MessageStatus) -> Outcome {
    Outcome {
        app_id: Some(app(OA)),
        openid: Some(openid("o-1")),
        channel: Some(TEMPLATE_CHANNEL.into()),
        template_id: Some(TemplateId::new("tpl-1")),
        ..Outcome::new(status)
    }
}

fn owned(ids: &[&MessageId]) -> Vec<MessageId> {
    ids.iter().map(|&id| id.clone()).collect()
}

pub async fn status_of(ctx: &Ctx, id: &MessageId) -> MessageStatus {
    let mut conn = ctx.conn().await;
    let row = MessageRow::find(&mut conn, id).await.unwrap();
    row.expect("the message exists").status
}

async fn a_message_is_stored_once_per_idempotency_key(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    let user = UserId::generate();
    let keyed = |content: &str| MessageRow {
        idempotency_key: Some("svc:k1".into()),
        content: content.into(),
        ..message(&user, Sending)
    };
    let (first, second) = (keyed("first"), keyed("second"));
    assert!(MessageRow::insert(&mut conn, &first).await.unwrap());
    assert!(
        !MessageRow::insert(&mut conn, &second).await.unwrap(),
        "the key is taken"
    );
    let found = MessageRow::find_by_key(&mut conn, "svc:k1").await.unwrap();
    assert_eq!(
        found.map(|m| (m.id, m.content)),
        Some((first.id.clone(), "first".into()))
    );
    assert!(
        MessageRow::find(&mut conn, &second.id)
            .await
            .unwrap()
            .is_none()
    );

    // Read back as written, typed.
    let stored = MessageRow::find(&mut conn, &first.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            &stored.user_id,
            &stored.app_id,
            &stored.openid,
            &stored.template_id
        ),
        (&user, &first.app_id, &first.openid, &first.template_id)
    );
    assert_eq!(
        (stored.status, stored.created_at),
        (Sending, first.created_at)
    );

    // Without a key, never a conflict.
    for _ in 0..2 {
        assert!(
            MessageRow::insert(&mut conn, &message(&user, Failed))
                .await
                .unwrap()
        );
    }

    // A released key (the send surely did nothing) may be used again; the first message stays.
    MessageRow::release_key(&mut conn, &first.id).await.unwrap();
    assert!(
        MessageRow::find_by_key(&mut conn, "svc:k1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(MessageRow::insert(&mut conn, &second).await.unwrap());
    let found = MessageRow::find_by_key(&mut conn, "svc:k1").await.unwrap();
    assert_eq!(found.map(|m| m.id), Some(second.id));
    assert_eq!(ctx.count("messages").await, 4);
}

async fn a_single_send_moves_only_from_the_status_named(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    let user = UserId::generate();
    let m = message(&user, Sending);
    MessageRow::insert(&mut conn, &m).await.unwrap();
    let answer = Outcome {
        wechat_msg_id: Some(WechatMsgId::new("w-1")),
        ..routed(Sent)
    };
    assert!(
        MessageRow::record_if(&mut conn, &m.id, Sending, &answer)
            .await
            .unwrap()
    );
    let late = Outcome {
        error_code: Some("WECHAT_UNAVAILABLE".into()),
        ..routed(Failed)
    };
    assert!(
        !MessageRow::record_if(&mut conn, &m.id, Sending, &late)
            .await
            .unwrap(),
        "no longer sending: nothing written"
    );
    let stored = MessageRow::find(&mut conn, &m.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.wechat_msg_id, stored.error_code),
        (Sent, Some(WechatMsgId::new("w-1")), None)
    );

    // A single send still SENDING past the cut-off died while WeChat had it: UNCERTAIN. A newer
    // one, and a bulk job's (its job resumes it), stay SENDING.
    let long_ago = seed::now_us() - Duration::minutes(20);
    let died = MessageRow {
        created_at: long_ago,
        ..message(&user, Sending)
    };
    let bulk = MessageRow {
        created_at: long_ago,
        ..queued(&JobId::generate(), &user)
    };
    let recent = message(&user, Sending);
    for row in [&died, &bulk, &recent] {
        MessageRow::insert(&mut conn, row).await.unwrap();
    }
    let bulk_claim = routed(Sending);
    assert!(
        MessageRow::record_if(&mut conn, &bulk.id, Queued, &bulk_claim)
            .await
            .unwrap()
    );
    let cut_off = seed::now_us() - Duration::minutes(10);
    assert_eq!(
        MessageRow::expire_sending(&mut conn, cut_off)
            .await
            .unwrap(),
        1
    );
    assert_eq!(status_of(&ctx, &died.id).await, Uncertain);
    assert_eq!(status_of(&ctx, &bulk.id).await, Sending);
    assert_eq!(status_of(&ctx, &recent.id).await, Sending);
    assert_eq!(status_of(&ctx, &m.id).await, Sent);
}

async fn a_bulk_jobs_messages_are_listed_once_claimed_once_and_closed(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    let (job, other_job) = (JobId::generate(), JobId::generate());
    let users: Vec<UserId> = (0..4).map(|_| UserId::generate()).collect();
    let rows: Vec<MessageRow> = users.iter().map(|u| queued(&job, u)).collect();
    assert_eq!(
        MessageRow::insert_queued(&mut conn, &rows).await.unwrap(),
        4
    );
    let listed_again: Vec<MessageRow> = users.iter().map(|u| queued(&job, u)).collect();
    assert_eq!(
        MessageRow::insert_queued(&mut conn, &listed_again)
            .await
            .unwrap(),
        0,
        "each user once per job"
    );
    let elsewhere = queued(&other_job, &users[0]);
    assert_eq!(
        MessageRow::insert_queued(&mut conn, &[elsewhere])
            .await
            .unwrap(),
        1
    );
    let ids = |rows: Vec<MessageRow>| rows.into_iter().map(|m| m.id).collect::<Vec<_>>();
    let all: Vec<MessageId> = rows.iter().map(|m| m.id.clone()).collect();
    let batch = MessageRow::of_job(&mut conn, &job, Queued, 10)
        .await
        .unwrap();
    assert_eq!(ids(batch), all, "oldest first, this job's only");
    let batch = MessageRow::of_job(&mut conn, &job, Queued, 2)
        .await
        .unwrap();
    assert_eq!(ids(batch), all[..2]);

    // A claim (QUEUED → SENDING) is won once.
    let claim = routed(Sending);
    assert!(
        MessageRow::record_if(&mut conn, &all[0], Queued, &claim)
            .await
            .unwrap()
    );
    assert!(
        !MessageRow::record_if(&mut conn, &all[0], Queued, &claim)
            .await
            .unwrap()
    );
    assert_eq!(
        MessageRow::mark_sending(&mut conn, &all[1..3], Queued)
            .await
            .unwrap(),
        2
    );

    // The run dies with three in flight; on resume they become UNCERTAIN, never sent again.
    let moved = MessageRow::move_job(&mut conn, &job, Sending, Uncertain).await;
    assert_eq!(moved.unwrap(), 3);
    assert!(
        MessageRow::of_job(&mut conn, &job, Sending, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(status_of(&ctx, &all[0]).await, Uncertain);

    // The job fails: what is still queued fails with it, what is sending becomes uncertain.
    MessageRow::record_if(&mut conn, &all[1], Uncertain, &routed(Sending))
        .await
        .unwrap();
    MessageRow::close_job(&mut conn, &job, "JOB_FAILED", "gave up")
        .await
        .unwrap();
    let last = MessageRow::find(&mut conn, &all[3]).await.unwrap().unwrap();
    assert_eq!(
        (
            last.status,
            last.error_code.as_deref(),
            last.error.as_deref()
        ),
        (Failed, Some("JOB_FAILED"), Some("gave up"))
    );
    let mut counts = MessageRow::job_counts(&mut conn, &job).await.unwrap();
    counts.sort_by_key(|(status, ..)| status.as_str());
    assert_eq!(
        counts,
        [(Failed, Some("JOB_FAILED".into()), 1), (Uncertain, None, 3)]
    );
    let other = MessageRow::job_counts(&mut conn, &other_job).await.unwrap();
    assert_eq!(other, [(Queued, None, 1)], "another job's untouched");
}

async fn messages_are_listed_by_filter_newest_first(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    let (u1, u2, job) = (UserId::generate(), UserId::generate(), JobId::generate());
    let m1 = message(&u1, Sent);
    let m2 = MessageRow {
        app_id: Some(app(MP_A)),
        ..message(&u1, Failed)
    };
    let m3 = MessageRow {
        job_id: Some(job.clone()),
        ..message(&u2, Sent)
    };
    let m4 = queued(&job, &UserId::generate());
    for row in [&m1, &m2, &m3, &m4] {
        MessageRow::insert(&mut conn, row).await.unwrap();
    }
    let list = async |filter: MessageFilter, before: Option<&MessageId>, limit: i64| {
        let mut conn = ctx.conn().await;
        let rows = MessageRow::list(&mut conn, &filter, before, limit)
            .await
            .unwrap();
        rows.into_iter().map(|m| m.id).collect::<Vec<_>>()
    };
    let [m1, m2, m3, m4] = [m1.id, m2.id, m3.id, m4.id];
    let all = MessageFilter::default();
    assert_eq!(
        list(all.clone(), None, 10).await,
        owned(&[&m4, &m3, &m2, &m1])
    );
    assert_eq!(list(all.clone(), None, 1).await, owned(&[&m4]));
    assert_eq!(list(all.clone(), Some(&m3), 10).await, owned(&[&m2, &m1]));
    let by_user = MessageFilter {
        user_id: Some(u1),
        ..all.clone()
    };
    assert_eq!(list(by_user, None, 10).await, owned(&[&m2, &m1]));
    let by_app = MessageFilter {
        app_id: Some(app(OA)),
        ..all.clone()
    };
    assert_eq!(
        list(by_app, None, 10).await,
        owned(&[&m3, &m1]),
        "a queued message has no app yet"
    );
    let by_status = MessageFilter {
        status: Some(Sent),
        ..all.clone()
    };
    assert_eq!(list(by_status, None, 10).await, owned(&[&m3, &m1]));
    let by_job = MessageFilter {
        job_id: Some(job),
        ..all
    };
    assert_eq!(list(by_job, Some(&m4), 10).await, owned(&[&m3]));
}

async fn an_unknown_status_is_refused_and_never_read_as_another(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let m = message(&UserId::generate(), Sent);
    MessageRow::insert(&mut ctx.conn().await, &m).await.unwrap();
    let update = format!(
        "UPDATE messages SET status = 'bounced' WHERE id = '{}'",
        m.id
    );
    assert!(
        ctx.sql(&[&update]).await.is_err(),
        "the table's CHECK refuses it"
    );
    assert_eq!(status_of(&ctx, &m.id).await, Sent);

    // Stored anyway (a newer build's status, read by this one): reading the row is an error
    // naming it, not a message in some other status.
    ctx.store_unchecked("messages", "status", m.id.as_str(), "bounced")
        .await;
    let mut conn = ctx.conn().await;
    let err = MessageRow::find(&mut conn, &m.id).await.unwrap_err();
    let why = causes(&err);
    assert!(why.contains("`bounced` is not a MessageStatus"), "{why}");
    let listed = MessageRow::list(&mut conn, &MessageFilter::default(), None, 10).await;
    assert!(listed.is_err());
}
