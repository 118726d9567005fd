//! `message_templates` and `subscribe_permissions`: templates registered per app, and the
//! consent ledger — a permission granted, spent one send at a time until none is left, given
//! back or cleared — keyed by (app, openid, template); and a stored source the code does not
//! know.

use wechat_identity::db::models::message_template::{
    ConsentSource, PermissionKey, PermissionRow, TemplateRow,
};
use wechat_identity::db::{Conn, DbError, transaction};
use wechat_identity::types::{AppId, OpenId, TemplateId};

use crate::common::seed::{self, app, openid};
use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    one_time_permissions_are_spent_one_a_send_until_none_is_left,
    a_long_term_permission_is_never_spent,
    templates_are_registered_replaced_and_listed_per_app,
    an_unknown_consent_source_is_an_error_when_read,
);

/// The ids of one permission.
struct Ids {
    app: AppId,
    openid: OpenId,
    template: TemplateId,
}

impl Ids {
    fn new(app_id: &str, open_id: &str, template: &str) -> Self {
        Ids {
            app: app(app_id),
            openid: openid(open_id),
            template: TemplateId::new(template),
        }
    }

    fn key(&self) -> PermissionKey<'_> {
        PermissionKey {
            app_id: &self.app,
            openid: &self.openid,
            template_id: &self.template,
        }
    }

    /// A grant of `one_time` accepts (and a long-term permission, or not) from `source`.
    fn grant(&self, one_time: i32, long_term: bool, source: ConsentSource) -> PermissionRow {
        let at = seed::now_us();
        PermissionRow {
            app_id: self.app.clone(),
            openid: self.openid.clone(),
            template_id: self.template.clone(),
            one_time,
            long_term,
            last_source: source,
            last_accept_at: Some(at),
            updated_at: at,
        }
    }
}

/// The permission of `key`, read (and locked) in a transaction.
async fn held(ctx: &Ctx, ids: &Ids) -> Option<PermissionRow> {
    transaction(&ctx.db, async |conn: &mut Conn| -> Result<_, DbError> {
        PermissionRow::find_locked(conn, ids.key()).await
    })
    .await
    .unwrap()
}

async fn one_time_permissions_are_spent_one_a_send_until_none_is_left(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    let mine = Ids::new(MP_A, "o-1", "tpl-1");
    assert!(held(&ctx, &mine).await.is_none());
    assert!(
        !PermissionRow::spend(&mut conn, mine.key()).await.unwrap(),
        "nothing granted"
    );

    // Granted twice by the client, then reported again by the webhook: the row is replaced.
    PermissionRow::save(&mut conn, &mine.grant(1, false, ConsentSource::Client))
        .await
        .unwrap();
    PermissionRow::save(&mut conn, &mine.grant(2, false, ConsentSource::Webhook))
        .await
        .unwrap();
    let row = held(&ctx, &mine).await.unwrap();
    assert_eq!(
        (row.one_time, row.long_term, row.last_source),
        (2, false, ConsentSource::Webhook)
    );
    assert_eq!(row.key(), mine.key());
    // Others' permissions, for another template, app or person.
    let others = [
        Ids::new(MP_A, "o-1", "tpl-2"),
        Ids::new(MP_B, "o-1", "tpl-1"),
        Ids::new(MP_A, "o-2", "tpl-1"),
    ];
    for other in &others {
        PermissionRow::save(&mut conn, &other.grant(1, false, ConsentSource::Client))
            .await
            .unwrap();
    }

    // Each send spends one; then none is left, and the others are untouched.
    for left in [1, 0] {
        assert!(PermissionRow::spend(&mut conn, mine.key()).await.unwrap());
        assert_eq!(held(&ctx, &mine).await.unwrap().one_time, left);
    }
    assert!(!PermissionRow::spend(&mut conn, mine.key()).await.unwrap());
    assert_eq!(
        held(&ctx, &mine).await.unwrap().one_time,
        0,
        "never below 0"
    );
    for other in &others {
        assert_eq!(held(&ctx, other).await.unwrap().one_time, 1);
    }

    // WeChat refused the send: the spent accept comes back. WeChat says none is held: cleared.
    PermissionRow::refund(&mut conn, mine.key()).await.unwrap();
    assert_eq!(held(&ctx, &mine).await.unwrap().one_time, 1);
    let at = seed::now_us();
    PermissionRow::clear(&mut conn, mine.key(), at)
        .await
        .unwrap();
    let cleared = held(&ctx, &mine).await.unwrap();
    assert_eq!(
        (cleared.one_time, cleared.long_term, cleared.updated_at),
        (0, false, at)
    );
    assert!(!PermissionRow::spend(&mut conn, mine.key()).await.unwrap());

    // Who of several people may be sent tpl-1 on MP_A: rows of those asked for only.
    let asked = [openid("o-1"), openid("o-2"), openid("o-3")];
    let found = PermissionRow::for_openids(&mut conn, &app(MP_A), &mine.template, &asked)
        .await
        .unwrap();
    let mut found: Vec<(OpenId, i32)> = found.into_iter().map(|p| (p.openid, p.one_time)).collect();
    found.sort();
    assert_eq!(found, [(openid("o-1"), 0), (openid("o-2"), 1)]);
}

async fn a_long_term_permission_is_never_spent(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    let ids = Ids::new(OA, "o-1", "tpl-long");
    PermissionRow::save(&mut conn, &ids.grant(0, true, ConsentSource::Webhook))
        .await
        .unwrap();
    for _ in 0..3 {
        assert!(PermissionRow::spend(&mut conn, ids.key()).await.unwrap());
    }
    PermissionRow::refund(&mut conn, ids.key()).await.unwrap();
    let row = held(&ctx, &ids).await.unwrap();
    assert_eq!(
        (row.one_time, row.long_term),
        (0, true),
        "nothing to give back"
    );
    PermissionRow::clear(&mut conn, ids.key(), seed::now_us())
        .await
        .unwrap();
    assert!(!PermissionRow::spend(&mut conn, ids.key()).await.unwrap());
}

fn template(app_id: &str, id: &str, channel: &str, by: &str) -> TemplateRow {
    let at = seed::now_us();
    TemplateRow {
        app_id: app(app_id),
        template_id: TemplateId::new(id),
        channel: channel.into(),
        long_term: false,
        fields: r#"[{"key":"thing1","type":"THING"}]"#.into(),
        registered_by: by.into(),
        created_at: at,
        updated_at: at,
    }
}

async fn templates_are_registered_replaced_and_listed_per_app(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let mut conn = ctx.conn().await;
    let first = template(OA, "tpl-b", "official_account_template", "admin-1");
    TemplateRow::upsert(&mut conn, &first).await.unwrap();
    let replaced = TemplateRow {
        created_at: seed::now_us() + chrono::Duration::seconds(5),
        updated_at: seed::now_us() + chrono::Duration::seconds(5),
        long_term: true,
        ..template(OA, "tpl-b", "official_account_subscribe", "admin-2")
    };
    TemplateRow::upsert(&mut conn, &replaced).await.unwrap();
    let (oa, tpl_b) = (app(OA), TemplateId::new("tpl-b"));
    let stored = TemplateRow::find(&mut conn, &oa, &tpl_b)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            stored.channel.as_str(),
            stored.long_term,
            stored.registered_by.as_str()
        ),
        ("official_account_subscribe", true, "admin-2")
    );
    assert_eq!(
        (stored.created_at, stored.updated_at),
        (first.created_at, replaced.updated_at),
        "registered first when it was"
    );

    // A registration missing only: one an admin made stays.
    let sandbox = template(OA, "tpl-b", "official_account_template", "sandbox");
    TemplateRow::insert_missing(&mut conn, &sandbox)
        .await
        .unwrap();
    let kept = TemplateRow::find(&mut conn, &oa, &tpl_b)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.registered_by, "admin-2");
    for row in [
        template(OA, "tpl-a", "official_account_template", "sandbox"),
        template(MP_A, "tpl-a", "mini_program_subscribe", "sandbox"),
    ] {
        TemplateRow::insert_missing(&mut conn, &row).await.unwrap();
    }

    let key = |t: &TemplateRow| (t.app_id.to_string(), t.template_id.to_string());
    let of_oa = TemplateRow::list(&mut conn, Some(&oa), 10).await.unwrap();
    assert_eq!(
        of_oa.iter().map(key).collect::<Vec<_>>(),
        [(OA.into(), "tpl-a".into()), (OA.into(), "tpl-b".into())]
    );
    let every = TemplateRow::list(&mut conn, None, 10).await.unwrap();
    assert_eq!(every.len(), 3);
    assert_eq!(
        TemplateRow::list(&mut conn, None, 1).await.unwrap().len(),
        1
    );
    assert_eq!(TemplateRow::count(&mut conn, &oa).await.unwrap(), 2);
    assert_eq!(TemplateRow::count(&mut conn, &app(MP_B)).await.unwrap(), 0);
    let missing = TemplateRow::find(&mut conn, &app(MP_A), &tpl_b)
        .await
        .unwrap();
    assert!(missing.is_none(), "a template is registered per app");
}

async fn an_unknown_consent_source_is_an_error_when_read(backend: Backend) {
    let ctx = Ctx::new(backend).await;
    let ids = Ids::new(MP_A, "o-1", "tpl-1");
    let grant = ids.grant(1, false, ConsentSource::Client);
    PermissionRow::save(&mut ctx.conn().await, &grant)
        .await
        .unwrap();
    let update = "UPDATE subscribe_permissions SET last_source = 'carrier-pigeon'";
    assert_eq!(ctx.sql(&[update]).await.unwrap(), [1]);
    let err = transaction(&ctx.db, async |conn: &mut Conn| -> Result<_, DbError> {
        PermissionRow::find_locked(conn, ids.key()).await
    })
    .await
    .unwrap_err();
    let why = causes(&err);
    assert!(
        why.contains("`carrier-pigeon` is not a ConsentSource"),
        "{why}"
    );
}
