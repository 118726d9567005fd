//! Stories of taking a person out: an admin disables a user under review (every way in is
//! refused, then works again once enabled), erases one on request (no personal data is left in
//! any column of any table, and their next login is a new user), and the audit log says who did
//! what.

use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;
use crate::user_events::{deliver, feed, register};

on_both_backends!(
    a_disabled_user_is_refused_everywhere_until_enabled,
    a_deleted_person_leaves_no_personal_data,
    the_audit_log_names_who_did_what,
    an_erased_identity_leaves_the_events_of_the_user_it_left,
);

use crate::messages::SHIPPED;

const DISABLE: &str = "mutation($id: ID!, $r: String) { disableUser(id: $id, reason: $r) { id disabledAt disabledReason } }";
const ENABLE: &str = "mutation($id: ID!) { enableUser(id: $id) { id disabledAt disabledReason } }";
const DELETE: &str = "mutation($id: ID!) { deleteUser(id: $id) { id deletedAt unionid nickname
    phoneNumber miniProgramIdentities { id } officialAccountIdentities { id } } }";
const AUDIT: &str = "query($f: AuditEventFilter) { auditEvents(first: 100, filter: $f) {
    edges { node { action actor userId details } } } }";

fn code(body: &Value) -> Value {
    body["errors"][0]["extensions"]["code"].clone()
}

async fn a_disabled_user_is_refused_everywhere_until_enabled(backend: Backend) {
    let app = TestApp::start_driven(backend, |c| c.jwt.revocation_check_secs = 0).await;
    let alice = app.login_mp(MP_A, "alice").await;
    let id = alice["user"]["id"].as_str().unwrap().to_owned();
    let token = alice["accessToken"].as_str().unwrap().to_owned();
    assert!(app.me(&token).await["errors"].is_null());

    let disabled = app
        .gql_ok(
            Some(ADMIN_KEY),
            DISABLE,
            json!({ "id": id, "r": "chargeback under review" }),
        )
        .await;
    assert_eq!(
        disabled["disableUser"]["disabledReason"],
        "chargeback under review"
    );
    assert!(disabled["disableUser"]["disabledAt"].is_string());
    // Her access token, her refresh token, a new login of every kind she has: refused.
    assert_eq!(code(&app.me(&token).await), "UNAUTHENTICATED");
    let refresh = "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken } }";
    let refused = app
        .gql(None, refresh, json!({ "t": alice["refreshToken"] }))
        .await;
    assert!(refused["errors"].is_array(), "{refused}");
    let code_a = app.code(MP_A, "alice").await;
    assert_eq!(
        code(&app.login_mp_code(MP_A, &code_a).await),
        "USER_DISABLED"
    );
    // Messages to her are refused.
    let send = "mutation($i: SendWeChatMessageInput!) { sendWeChatMessage(input: $i) { id } }";
    let input = json!({ "userId": id, "appId": OA, "templateId": SHIPPED,
        "data": crate::messages::shipped_data() });
    let sent = app
        .gql(Some(SERVICE_KEY), send, json!({ "i": input }))
        .await;
    assert_eq!(code(&sent), "USER_DISABLED");
    // A service key cannot, an unknown user is NOT_FOUND.
    let as_service = app
        .gql(Some(SERVICE_KEY), DISABLE, json!({ "id": id }))
        .await;
    assert_eq!(code(&as_service), "FORBIDDEN");
    let unknown = json!({ "id": "0193a1c2-0000-7000-8000-000000000000" });
    assert_eq!(
        code(&app.gql(Some(ADMIN_KEY), DISABLE, unknown.clone()).await),
        "NOT_FOUND"
    );
    assert_eq!(
        code(&app.gql(Some(ADMIN_KEY), ENABLE, unknown).await),
        "NOT_FOUND"
    );

    let enabled = app
        .gql_ok(Some(ADMIN_KEY), ENABLE, json!({ "id": id }))
        .await;
    assert!(enabled["enableUser"]["disabledAt"].is_null());
    let again = app.login_mp(MP_A, "alice").await;
    assert_eq!(
        again["user"]["id"],
        id.as_str(),
        "the same user logs in again"
    );
    let types: Vec<Value> = feed(&app).await.iter().map(|e| e["type"].clone()).collect();
    assert!(types.contains(&json!("user.disabled")) && types.contains(&json!("user.enabled")));
}

/// Rows, in any column of any table, whose text contains `needle`.
async fn holding(app: &TestApp, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for column in app.catalog().await {
        if column.table == "__diesel_schema_migrations" {
            continue;
        }
        let test = match backend_of(app).await {
            true => "strpos(CAST(\"{c}\" AS TEXT), '{n}') > 0",
            false => "instr(CAST(\"{c}\" AS TEXT), '{n}') > 0",
        };
        let condition = test.replace("{c}", &column.name).replace("{n}", needle);
        let sql = format!("\"{}\" WHERE {condition}", column.table);
        if app.count(&sql).await > 0 {
            found.push(format!("{}.{}", column.table, column.name));
        }
    }
    found
}

/// Whether the service runs on PostgreSQL.
async fn backend_of(app: &TestApp) -> bool {
    app.database_url.starts_with("postgres")
}

async fn a_deleted_person_leaves_no_personal_data(backend: Backend) {
    let app = TestApp::start_driven(backend, |_| {}).await;
    let hooks = crate::common::receiver::Receiver::start().await;
    register(&app, &hooks.url).await;
    // Bob in two apps under one unionid, a silent OA visit merged in later, his nickname from
    // the OA profile, and a phone number WeChat vouched for.
    let b1 = app.login_oa("bob", "snsapi_base").await;
    let bob = app.login_mp(MP_A, "bob").await;
    app.login_oa("bob", "snsapi_userinfo").await;
    let token = bob["accessToken"].as_str().unwrap();
    let phone_code = app
        .phone_code(MP_A, "bob", json!({ "phoneNumber": "13912345678" }))
        .await;
    let linked = app.link_phone(Some(token), MP_A, &phone_code).await;
    assert!(linked["errors"].is_null(), "{linked}");
    let q = "query($id: ID!) { user(id: $id) { unionid nickname phoneNumber
        miniProgramIdentities { openid } officialAccountIdentities { openid } } }";
    let id = bob["user"]["id"].as_str().unwrap().to_owned();
    let before = app.gql_ok(Some(ADMIN_KEY), q, json!({ "id": id })).await["user"].clone();
    let mut personal: Vec<String> = vec![
        before["unionid"].as_str().unwrap().to_owned(),
        before["nickname"].as_str().unwrap().to_owned(),
        "13912345678".to_owned(),
    ];
    for kind in ["miniProgramIdentities", "officialAccountIdentities"] {
        personal.push(before[kind][0]["openid"].as_str().unwrap().to_owned());
    }
    assert_eq!(before["nickname"], "Bob");
    for needle in &personal {
        assert!(
            !holding(&app, needle).await.is_empty(),
            "{needle} is stored before"
        );
    }

    // Deleting the tombstone's id deletes the person.
    let b1_id = b1["user"]["id"].as_str().unwrap();
    let gone = app
        .gql_ok(Some(ADMIN_KEY), DELETE, json!({ "id": b1_id }))
        .await["deleteUser"]
        .clone();
    assert_eq!(gone["id"], id.as_str());
    assert!(gone["deletedAt"].is_string());
    for field in ["unionid", "nickname", "phoneNumber"] {
        assert!(gone[field].is_null(), "{field}: {gone}");
    }
    assert_eq!(gone["miniProgramIdentities"], json!([]));
    deliver(&app).await;
    for needle in &personal {
        assert_eq!(
            holding(&app, needle).await,
            Vec::<String>::new(),
            "{needle} is gone"
        );
    }
    let deleted = feed(&app)
        .await
        .into_iter()
        .find(|e| e["type"] == "user.deleted")
        .unwrap();
    assert_eq!(deleted["userId"], id.as_str());
    assert_eq!(
        deleted["data"]["deletedIds"].as_array().unwrap().len(),
        2,
        "tombstone included"
    );
    assert!(
        hooks
            .received()
            .iter()
            .any(|r| r.json()["type"] == "user.deleted")
    );

    // Lists skip him unless asked; his next login is a new user.
    let list = "query($d: Boolean!) { users(first: 100, filter: {includeDeleted: $d}) { edges { node { id } } } }";
    let ids = |v: &Value| {
        v["users"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["id"].clone())
            .collect::<Vec<_>>()
    };
    let listed = ids(&app
        .gql_ok(Some(ADMIN_KEY), list, json!({ "d": false }))
        .await);
    assert!(!listed.contains(&json!(id)));
    let listed = ids(&app
        .gql_ok(Some(ADMIN_KEY), list, json!({ "d": true }))
        .await);
    assert!(listed.contains(&json!(id)));
    let as_service = app.gql(Some(SERVICE_KEY), list, json!({ "d": true })).await;
    assert_eq!(
        code(&as_service),
        "FORBIDDEN",
        "who was erased is for admins"
    );
    let back = app.login_mp(MP_A, "bob").await;
    assert_eq!(back["newUser"], true);
    assert_ne!(back["user"]["id"], id.as_str());
    assert_eq!(
        code(&app.gql(Some(ADMIN_KEY), DISABLE, json!({ "id": id })).await),
        "CONFLICT"
    );
    // Nothing merges into (or out of) the tombstone.
    let merge = "mutation($s: ID!, $t: ID!) { mergeUsers(sourceId: $s, targetId: $t) { id } }";
    let into = json!({ "s": back["user"]["id"], "t": id });
    assert_eq!(
        code(&app.gql(Some(ADMIN_KEY), merge, into).await),
        "CONFLICT"
    );
}

async fn the_audit_log_names_who_did_what(backend: Backend) {
    let app = TestApp::start_driven(backend, |_| {}).await;
    let a = app.login_mp(MP_A, "alice").await["user"]["id"].clone();
    let u = app.login_mp(MP_UNBOUND, "alice").await["user"]["id"].clone();
    let merge = "mutation($s: ID!, $t: ID!) { mergeUsers(sourceId: $s, targetId: $t) { id } }";
    app.gql_ok(Some(ADMIN_KEY), merge, json!({ "s": u, "t": a }))
        .await;
    app.gql_ok(
        Some(ADMIN_KEY),
        "mutation($u: ID!) { revokeSessions(userId: $u) }",
        json!({ "u": a }),
    )
    .await;
    app.gql_ok(
        Some(SERVICE_KEY),
        "query($a: String!) { wechatAccessToken(appId: $a) { expiresAt } }",
        json!({ "a": OA }),
    )
    .await;
    app.gql_ok(Some(ADMIN_KEY), DISABLE, json!({ "id": a, "r": "review" }))
        .await;

    let all = app.gql_ok(Some(ADMIN_KEY), AUDIT, json!({})).await;
    let entries: Vec<Value> = all["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "DISABLE_USER",
            "ACCESS_TOKEN_SERVED",
            "REVOKE_SESSIONS",
            "MERGE_USERS"
        ],
        "newest first"
    );
    assert_eq!(entries[0]["actor"], "WECHAT_IDENTITY_ADMIN_KEY");
    assert_eq!(entries[1]["actor"], "reporting", "the service key's name");
    assert_eq!(entries[3]["userId"], a);
    assert_eq!(entries[3]["details"]["sourceId"], u);
    assert_eq!(entries[1]["details"], json!({ "appId": OA }));
    let text = all.to_string();
    assert!(!text.contains("accessToken\":\"") && !text.contains(ADMIN_KEY));
    // Filters: by action, actor and user.
    let only = app
        .gql_ok(
            Some(ADMIN_KEY),
            AUDIT,
            json!({ "f": { "actor": "reporting" } }),
        )
        .await;
    assert_eq!(only["auditEvents"]["edges"].as_array().unwrap().len(), 1);
    let only = app
        .gql_ok(
            Some(ADMIN_KEY),
            AUDIT,
            json!({ "f": { "action": "MERGE_USERS", "userId": a } }),
        )
        .await;
    assert_eq!(only["auditEvents"]["edges"].as_array().unwrap().len(), 1);
    // Admins only.
    let denied = app.gql(Some(SERVICE_KEY), AUDIT, json!({})).await;
    assert_eq!(code(&denied), "FORBIDDEN");
}

async fn an_erased_identity_leaves_the_events_of_the_user_it_left(backend: Backend) {
    let app = TestApp::start_driven(backend, |_| {}).await;
    // Carol in the unbound Mini Program (no unionid), merged by an admin into her other user,
    // then unlinked again onto a user of its own: the unlink's event is filed under the user
    // the identity left, and names its openid.
    let c1 = app.login_mp(MP_UNBOUND, "carol").await["user"]["id"].clone();
    let c2 = app.login_mp(MP_A, "carol").await["user"]["id"].clone();
    let merge = "mutation($s: ID!, $t: ID!) { mergeUsers(sourceId: $s, targetId: $t) { id } }";
    app.gql_ok(Some(ADMIN_KEY), merge, json!({ "s": c1, "t": c2 }))
        .await;
    let q = "query($id: ID!) { user(id: $id) { miniProgramIdentities { id appId openid } } }";
    let user = app.gql_ok(Some(ADMIN_KEY), q, json!({ "id": c2 })).await;
    let unbound = user["user"]["miniProgramIdentities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["appId"] == MP_UNBOUND)
        .unwrap()
        .clone();
    let openid = unbound["openid"].as_str().unwrap().to_owned();
    let unlink = "mutation($i: ID!) { unlinkIdentity(identityId: $i) { id } }";
    let fresh = app
        .gql_ok(Some(ADMIN_KEY), unlink, json!({ "i": unbound["id"] }))
        .await["unlinkIdentity"]["id"]
        .clone();
    let unlinked = feed(&app)
        .await
        .into_iter()
        .find(|e| e["type"] == "identity.unlinked")
        .unwrap();
    assert_eq!(unlinked["userId"], c2);
    assert_eq!(unlinked["data"]["openid"], openid.as_str());
    assert_eq!(unlinked["data"]["newUserId"], fresh);

    app.gql_ok(Some(ADMIN_KEY), DELETE, json!({ "id": fresh }))
        .await;
    assert_eq!(
        holding(&app, &openid).await,
        Vec::<String>::new(),
        "{openid} is gone"
    );
    // Carol's other user keeps its own events.
    let kept = feed(&app).await;
    assert!(
        kept.iter()
            .any(|e| e["type"] == "user.merged" && e["data"]["survivorId"] == c2)
    );
}
