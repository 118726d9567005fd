//! Messages addressed to a user, end to end through the sandbox: alice logs into a Mini
//! Program, follows the Official Account (the webhook merges her), and a message to *alice the
//! user* reaches her OA openid; the refusals (no identity, not following, no permission, bad
//! data) come before any WeChat call; idempotency; subscribe permissions from the webhook and
//! from the client; delivery reports; a bulk job, also resumed after its instance died.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    a_message_to_alice_the_user_reaches_her_oa_openid_and_is_delivered,
    refusals_come_before_any_wechat_call_and_are_recorded,
    the_same_idempotency_key_never_sends_twice,
    subscribe_permissions_from_the_webhook_and_the_client_are_spent_by_sends,
    channels_fall_back_to_the_first_that_reaches_the_person,
    templates_are_checked_when_registered,
    a_bulk_send_reaches_every_follower_once_and_reports_progress,
);

pub(crate) const SHIPPED: &str = "sandboxtpl-shipped";
const OA_NOTICE: &str = "sandboxtpl-oa-notice";
const MP_ORDER: &str = "sandboxtpl-mp-order";

const MESSAGE_FIELDS: &str = "id user { id unionid } appId openid channel templateId status
    wechatMsgId error { code message wechatErrcode } jobId createdAt deliveredAt";

pub(crate) fn shipped_data() -> Value {
    json!({ "thing1": { "value": "您的订单已发货" }, "time2": { "value": "2026-11-29 15:01" } })
}

impl TestApp {
    /// `sendMessage` as the service key; the whole response.
    pub(crate) async fn send(&self, input: Value) -> Value {
        let q = format!(
            "mutation($i: SendMessageInput!) {{ sendMessage(input: $i) {{ {MESSAGE_FIELDS} }} }}"
        );
        self.gql(Some(SERVICE_KEY), &q, json!({ "i": input })).await
    }

    /// A message by id.
    async fn message(&self, id: &str) -> Value {
        let q = format!("query($id: ID!) {{ message(id: $id) {{ {MESSAGE_FIELDS} }} }}");
        self.gql_ok(Some(ADMIN_KEY), &q, json!({ "id": id })).await["message"].clone()
    }

    /// What the sandbox delivered on `app_id` (to `touser`, if given).
    pub(crate) async fn delivered(&self, app_id: &str, touser: Option<&str>) -> Value {
        let mut q = vec![("appId", app_id.to_owned()), ("limit", "10000".to_owned())];
        if let Some(t) = touser {
            q.push(("touser", t.to_owned()));
        }
        self.http
            .get(format!("{}/sandbox/wechat/messages", self.base))
            .query(&q)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The sandbox's send-API call counters for an app.
    pub(crate) async fn message_calls(&self, app_id: &str) -> Value {
        self.sandbox_stats(app_id).await["messageCalls"].clone()
    }

    /// Registers the sandbox's template message for the OA (what sandbox mode does by itself).
    async fn register_demo_templates(&self) {
        let q = "mutation($i: RegisterMessageTemplateInput!) { registerMessageTemplate(input: $i) { templateId } }";
        let input = json!({ "appId": OA, "templateId": SHIPPED, "channel": "OFFICIAL_ACCOUNT_TEMPLATE",
            "fields": [{ "key": "thing1", "type": "THING" }, { "key": "time2", "type": "TIME" }] });
        self.gql_ok(Some(ADMIN_KEY), q, json!({ "i": input })).await;
    }

    /// alice (or `user`) logs into Mini Program A and follows the OA; her user once merged
    /// (the follow event processed: a driven service's jobs run).
    pub(crate) async fn follower_user(&self, user: &str) -> (Value, String) {
        let login = self.login_mp(MP_A, user).await;
        let (status, follow) = self
            .sandbox_post("/follow", json!({ "appId": OA, "user": user }))
            .await;
        assert_eq!(status, 200, "{follow}");
        self.run_jobs().await;
        let merged = self
            .user_by_unionid(login["user"]["unionid"].as_str().unwrap())
            .await;
        let subscribed = &merged["officialAccountIdentities"][0]["subscribed"];
        assert_eq!(*subscribed, true, "{merged:#}");
        (merged, follow["openid"].as_str().unwrap().to_owned())
    }
}

async fn a_message_to_alice_the_user_reaches_her_oa_openid_and_is_delivered(backend: Backend) {
    let app = TestApp::start_driven(backend, |_| {}).await;
    let (alice, oa_openid) = app.follower_user("alice").await;
    let res = app
        .send(
            json!({ "userId": alice["id"], "appId": OA, "templateId": SHIPPED,
            "data": shipped_data(), "url": "https://shop.example.com/orders/1" }),
        )
        .await;
    let m = &res["data"]["sendMessage"];
    // SENT, or DELIVERED already if WeChat's report came back through the webhook first.
    assert!(sent_or_delivered(&m["status"]), "{res:#}");
    assert_eq!(
        m["openid"],
        oa_openid.as_str(),
        "sent to her OA openid, not her Mini Program one"
    );
    assert_eq!(m["channel"], "OFFICIAL_ACCOUNT_TEMPLATE");
    assert_eq!(m["user"]["id"], alice["id"]);
    assert!(m["wechatMsgId"].is_string());
    let delivered = app.delivered(OA, Some(&oa_openid)).await;
    assert_eq!(delivered["total"], 1, "{delivered:#}");
    assert_eq!(delivered["messages"][0]["data"]["thing1"], "您的订单已发货");
    assert_eq!(
        delivered["messages"][0]["url"],
        "https://shop.example.com/orders/1"
    );
    // WeChat's TEMPLATESENDJOBFINISH comes back through the webhook.
    app.run_jobs().await;
    let done = app.message(m["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "DELIVERED", "{done:#}");
    assert!(done["deliveredAt"].is_string());

    // By unionid too; and listed for the user, newest first.
    let res = app
        .send(json!({ "unionid": alice["unionid"], "appId": OA, "templateId": SHIPPED, "data": shipped_data() }))
        .await;
    assert!(
        sent_or_delivered(&res["data"]["sendMessage"]["status"]),
        "{res:#}"
    );
    let q = "query($u: ID!) { messages(userId: $u, first: 1) { edges { node { id } } pageInfo { hasNextPage endCursor } } }";
    let page = app
        .gql_ok(Some(ADMIN_KEY), q, json!({ "u": alice["id"] }))
        .await;
    assert_eq!(
        page["messages"]["edges"][0]["node"]["id"],
        res["data"]["sendMessage"]["id"]
    );
    assert_eq!(page["messages"]["pageInfo"]["hasNextPage"], true);
}

async fn refusals_come_before_any_wechat_call_and_are_recorded(backend: Backend) {
    let app = TestApp::start_driven(backend, |_| {}).await;
    let bob = app.login_mp(MP_A, "bob").await["user"].clone();
    let (carol, _) = app.follower_user("carol").await;
    let before = app.message_calls(OA).await;
    let mp_before = app.message_calls(MP_A).await;

    // No identity on the OA: bob never followed it.
    let res = app.send(json!({ "userId": bob["id"], "appId": OA, "templateId": SHIPPED, "data": shipped_data() })).await;
    assert_eq!(error_code(&res), "NO_IDENTITY", "{res:#}");
    let id = res["errors"][0]["extensions"]["messageId"]
        .as_str()
        .unwrap();
    let recorded = app.message(id).await;
    assert_eq!(recorded["status"], "FAILED");
    assert_eq!(recorded["error"]["code"], "NO_IDENTITY");

    // Not following any more.
    app.sandbox_post("/unfollow", json!({ "appId": OA, "user": "carol" }))
        .await;
    app.run_jobs().await;
    let left = app
        .user_by_unionid(carol["unionid"].as_str().unwrap())
        .await;
    assert_eq!(left["officialAccountIdentities"][0]["subscribed"], false);
    let res = app.send(json!({ "userId": carol["id"], "appId": OA, "templateId": SHIPPED, "data": shipped_data() })).await;
    assert_eq!(error_code(&res), "NOT_FOLLOWING", "{res:#}");

    // No subscribe permission (Mini Program subscribe message).
    let res = app
        .send(
            json!({ "userId": bob["id"], "appId": MP_A, "templateId": MP_ORDER,
        "data": { "thing1": { "value": "订单已发货" }, "amount2": { "value": "¥100.00" } } }),
        )
        .await;
    assert_eq!(error_code(&res), "NO_SUBSCRIBE_PERMISSION", "{res:#}");

    // Bad input changes nothing: data that does not fit, an unregistered template.
    let written = app.written().await;
    for (data, template, code) in [
        (
            json!({ "thing1": { "value": "这是一段超过二十个字符的很长很长很长的文字内容" }, "time2": { "value": "15:01" } }),
            SHIPPED,
            "INVALID_MESSAGE_DATA",
        ),
        (
            json!({ "thing1": { "value": "x" }, "time2": { "value": "15:01" }, "first": { "value": "hi" } }),
            SHIPPED,
            "INVALID_MESSAGE_DATA",
        ),
        (
            json!({ "thing1": { "value": "x", "color": "#FF0000" }, "time2": { "value": "15:01" } }),
            SHIPPED,
            "INVALID_MESSAGE_DATA",
        ),
        (shipped_data(), "not-registered", "TEMPLATE_NOT_REGISTERED"),
    ] {
        let res = app
            .send(
                json!({ "userId": carol["id"], "appId": OA, "templateId": template, "data": data }),
            )
            .await;
        assert_eq!(error_code(&res), code, "{res:#}");
    }
    let res = app.send(json!({ "userId": carol["id"], "unionid": "x", "appId": OA, "templateId": SHIPPED, "data": shipped_data() })).await;
    assert_eq!(error_code(&res), "BAD_USER_INPUT");
    assert_eq!(app.written().await, written, "bad input changed something");
    assert_eq!(
        app.message_calls(OA).await,
        before,
        "WeChat was called for a refused message"
    );
    assert_eq!(
        app.message_calls(MP_A).await,
        mp_before,
        "WeChat was called for a refused Mini Program message"
    );

    // WeChat's own refusal maps to the same code: the sandbox says 43004 for a person our
    // records still call a follower (the unfollow push was lost).
    let (dave, _) = app.follower_user("dave").await;
    app.sandbox_post(
        "/unfollow",
        json!({ "appId": OA, "user": "dave", "silent": true }),
    )
    .await;
    let res = app.send(json!({ "userId": dave["id"], "appId": OA, "templateId": SHIPPED, "data": shipped_data() })).await;
    assert_eq!(error_code(&res), "NOT_FOLLOWING", "{res:#}");
    assert_eq!(res["errors"][0]["extensions"]["wechatErrcode"], 43004);
    // ... and what WeChat said is recorded: the next send is refused without a call.
    let calls = app.message_calls(OA).await;
    let res = app.send(json!({ "userId": dave["id"], "appId": OA, "templateId": SHIPPED, "data": shipped_data() })).await;
    assert_eq!(error_code(&res), "NOT_FOLLOWING");
    assert!(res["errors"][0]["extensions"]["wechatErrcode"].is_null());
    assert_eq!(app.message_calls(OA).await, calls);

    // User tokens and anonymous callers cannot send.
    let token = app.login_mp(MP_A, "erin").await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let q = "mutation { sendMessage(input: {userId: \"x\", appId: \"x\", templateId: \"x\", data: {}}) { id } }";
    assert_eq!(
        error_code(&app.gql(Some(&token), q, json!({})).await),
        "FORBIDDEN"
    );
    assert_eq!(
        error_code(&app.gql(None, q, json!({})).await),
        "UNAUTHENTICATED"
    );
}

async fn the_same_idempotency_key_never_sends_twice(backend: Backend) {
    let app = TestApp::start_driven(backend, |_| {}).await;
    let (alice, oa_openid) = app.follower_user("alice").await;
    let input = json!({ "userId": alice["id"], "appId": OA, "templateId": SHIPPED,
        "data": shipped_data(), "idempotencyKey": "order-1-shipped" });
    let (a, b) = tokio::join!(app.send(input.clone()), app.send(input.clone()));
    let again = app.send(input.clone()).await;
    let first = a["data"]["sendMessage"]["id"].clone();
    assert!(first.is_string(), "{a:#}");
    assert_eq!(b["data"]["sendMessage"]["id"], first, "{b:#}");
    assert_eq!(again["data"]["sendMessage"]["id"], first);
    assert_eq!(app.delivered(OA, Some(&oa_openid)).await["total"], 1);
    // The key with another message is a conflict, not a silent second send.
    let mut other = input.clone();
    other["data"]["thing1"]["value"] = json!("另一条");
    assert_eq!(error_code(&app.send(other).await), "CONFLICT");
    // A refused message stays refused under its key.
    let bob = app.login_mp(MP_A, "bob").await["user"].clone();
    let input = json!({ "userId": bob["id"], "appId": OA, "templateId": SHIPPED, "data": shipped_data(), "idempotencyKey": "k2" });
    let first = app.send(input.clone()).await;
    let second = app.send(input).await;
    assert_eq!(error_code(&second), "NO_IDENTITY");
    assert_eq!(
        second["errors"][0]["extensions"]["messageId"],
        first["errors"][0]["extensions"]["messageId"]
    );
    assert_eq!(app.count("messages").await, 2);
}

async fn subscribe_permissions_from_the_webhook_and_the_client_are_spent_by_sends(
    backend: Backend,
) {
    let app = TestApp::start_driven(backend, |_| {}).await;
    let login = app.login_mp(MP_A, "alice").await;
    let alice = login["user"].clone();
    let token = login["accessToken"].as_str().unwrap().to_owned();
    let data = json!({ "thing1": { "value": "订单已发货" }, "amount2": { "value": "¥100.00" } });
    let send = |template: &'static str| {
        app.send(
            json!({ "userId": alice["id"], "appId": MP_A, "templateId": template, "data": data }),
        )
    };
    let calls = || async {
        app.message_calls(MP_A).await["subscribeSend"]
            .as_u64()
            .unwrap()
    };
    // Once the webhook's events are processed, a send with the permission goes out.
    let sent_once_processed = |template: &'static str| {
        let (app, send) = (&app, &send);
        async move {
            app.run_jobs().await;
            let res = send(template).await;
            let status = &res["data"]["sendMessage"]["status"];
            assert!(sent_or_delivered(status), "{res:#}");
            res
        }
    };
    // The popup's accept reaches us through the webhook: one send, then none, with no call.
    let (status, body) = app
        .sandbox_post(
            "/consents",
            json!({ "appId": MP_A, "user": "alice", "templateId": MP_ORDER }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let sent = sent_once_processed(MP_ORDER).await;
    assert_eq!(
        sent["data"]["sendMessage"]["channel"],
        "MINI_PROGRAM_SUBSCRIBE"
    );
    let before = calls().await;
    assert_eq!(
        error_code(&send(MP_ORDER).await),
        "NO_SUBSCRIBE_PERMISSION",
        "a one-time permission is spent"
    );
    assert_eq!(calls().await, before, "no wasted call");

    // One popup reported both ways (the webhook and the client's report of
    // wx.requestSubscribeMessage) counts once: one send, then a refusal without a call.
    // A second popup, so in a later second: WeChat's pushes of events are told apart (and
    // their retries recognised) by sender, CreateTime in seconds and event.
    let second =
        |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let first_popup = second(std::time::SystemTime::now());
    while second(std::time::SystemTime::now()) == first_popup {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.sandbox_post(
        "/consents",
        json!({ "appId": MP_A, "user": "alice", "templateId": MP_ORDER }),
    )
    .await;
    let q = "mutation($a: String!, $t: String!) { recordSubscribeConsent(appId: $a, answers: [{templateId: $t, answer: ACCEPT}]) { templateId oneTime longTerm } }";
    let res = app
        .gql_ok(Some(&token), q, json!({ "a": MP_A, "t": MP_ORDER }))
        .await;
    assert_eq!(res["recordSubscribeConsent"][0]["templateId"], MP_ORDER);
    sent_once_processed(MP_ORDER).await;
    app.run_jobs().await; // the push, if it came second
    let before = calls().await;
    assert_eq!(error_code(&send(MP_ORDER).await), "NO_SUBSCRIBE_PERMISSION");
    assert_eq!(calls().await, before, "the popup was counted twice");

    // The client says accept but WeChat holds no permission (the sandbox never saw one for a
    // second template): WeChat's 43101 clears it, and the next send makes no call.
    let tpl = "tpl-mp-second";
    let fields =
        json!([{ "key": "thing1", "type": "THING" }, { "key": "amount2", "type": "AMOUNT" }]);
    let (status, body) = app
        .sandbox_post(
            "/templates",
            json!({ "appId": MP_A, "templateId": tpl, "kind": "subscribe", "fields": fields }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let reg = "mutation($i: RegisterMessageTemplateInput!) { registerMessageTemplate(input: $i) { templateId } }";
    app.gql_ok(
        Some(ADMIN_KEY),
        reg,
        json!({ "i": { "appId": MP_A, "templateId": tpl,
        "channel": "MINI_PROGRAM_SUBSCRIBE", "fields": fields } }),
    )
    .await;
    let res = app
        .gql_ok(Some(&token), q, json!({ "a": MP_A, "t": tpl }))
        .await;
    assert_eq!(res["recordSubscribeConsent"][0]["oneTime"], 1);
    let res = send(tpl).await;
    assert_eq!(error_code(&res), "NO_SUBSCRIBE_PERMISSION", "{res:#}");
    assert_eq!(res["errors"][0]["extensions"]["wechatErrcode"], 43101);
    let before = calls().await;
    let res = send(tpl).await;
    assert_eq!(error_code(&res), "NO_SUBSCRIBE_PERMISSION");
    assert!(res["errors"][0]["extensions"]["wechatErrcode"].is_null());
    assert_eq!(calls().await, before);

    // Refused, changing nothing: unknown templates, an app alice never logged into, one
    // template answered twice, more fields than the budget; and API keys are not users.
    let written = app.written().await;
    let res = app
        .gql(Some(&token), q, json!({ "a": MP_A, "t": "nope" }))
        .await;
    assert_eq!(error_code(&res), "TEMPLATE_NOT_REGISTERED");
    let res = app
        .gql(Some(&token), q, json!({ "a": MP_B, "t": MP_ORDER }))
        .await;
    assert_eq!(
        error_code(&res),
        "BAD_USER_INPUT",
        "alice never logged into B"
    );
    let twice = "mutation($a: String!, $t: String!) { recordSubscribeConsent(appId: $a, answers: [{templateId: $t, answer: ACCEPT}, {templateId: $t, answer: ACCEPT}]) { oneTime } }";
    assert_eq!(
        error_code(
            &app.gql(Some(&token), twice, json!({ "a": MP_A, "t": MP_ORDER }))
                .await
        ),
        "BAD_USER_INPUT"
    );
    let aliases: String = (0..6)
        .map(|i| format!("a{i}: recordSubscribeConsent(appId: $a, answers: [{{templateId: $t, answer: ACCEPT}}]) {{ oneTime }} "))
        .collect();
    let many = format!("mutation($a: String!, $t: String!) {{ {aliases} }}");
    assert_eq!(
        error_code(
            &app.gql(Some(&token), &many, json!({ "a": MP_A, "t": MP_ORDER }))
                .await
        ),
        "BAD_USER_INPUT"
    );
    assert_eq!(
        error_code(
            &app.gql(Some(ADMIN_KEY), q, json!({ "a": MP_A, "t": MP_ORDER }))
                .await
        ),
        "FORBIDDEN"
    );
    assert_eq!(
        app.written().await,
        written,
        "a refused consent changed something"
    );
}

async fn channels_fall_back_to_the_first_that_reaches_the_person(backend: Backend) {
    let app = TestApp::start_driven(backend, |_| {}).await;
    let (alice, _) = app.follower_user("alice").await;
    let oa_notice = json!({ "appId": OA, "templateId": OA_NOTICE,
        "data": { "thing1": { "value": "会员到期" }, "date2": { "value": "2026年12月1日" } } });
    let template = json!({ "appId": OA, "templateId": SHIPPED, "data": shipped_data() });
    // No subscribe permission on the OA: the template message (she follows) is used.
    let res = app
        .send(json!({ "userId": alice["id"], "channels": [oa_notice, template] }))
        .await;
    assert_eq!(
        res["data"]["sendMessage"]["channel"], "OFFICIAL_ACCOUNT_TEMPLATE",
        "{res:#}"
    );
    // Nothing reaches bob: UNREACHABLE names every reason.
    let bob = app.login_mp(MP_B, "bob").await["user"].clone();
    let res = app
        .send(json!({ "userId": bob["id"], "channels": [oa_notice, template] }))
        .await;
    assert_eq!(error_code(&res), "UNREACHABLE", "{res:#}");
    let msg = res["errors"][0]["message"].as_str().unwrap();
    assert!(msg.contains("no identity"), "{msg}");
}

async fn templates_are_checked_when_registered(backend: Backend) {
    let app = TestApp::start_driven(backend, |_| {}).await;
    let q = "mutation($i: RegisterMessageTemplateInput!) { registerMessageTemplate(input: $i) { appId templateId channel longTerm fields { key type } registeredBy } }";
    let ok = json!({ "appId": OA, "templateId": "tpl-refund", "channel": "OFFICIAL_ACCOUNT_TEMPLATE",
        "fields": [{ "key": "thing1", "type": "THING" }, { "key": "amount2", "type": "AMOUNT" }] });
    let res = app.gql_ok(Some(ADMIN_KEY), q, json!({ "i": ok })).await;
    assert_eq!(
        res["registerMessageTemplate"]["fields"][1]["type"],
        "AMOUNT"
    );
    assert_eq!(
        res["registerMessageTemplate"]["registeredBy"],
        "WECHAT_IDENTITY_ADMIN_KEY"
    );
    let written = app.written().await;
    for bad in [
        json!({ "appId": MP_A, "templateId": "t", "channel": "OFFICIAL_ACCOUNT_TEMPLATE", "fields": [{ "key": "thing1", "type": "THING" }] }),
        json!({ "appId": OA, "templateId": "t", "channel": "OFFICIAL_ACCOUNT_TEMPLATE", "fields": [{ "key": "first", "type": "THING" }] }),
        json!({ "appId": OA, "templateId": "t", "channel": "OFFICIAL_ACCOUNT_TEMPLATE", "fields": [] }),
        json!({ "appId": OA, "templateId": "bad id!", "channel": "OFFICIAL_ACCOUNT_TEMPLATE", "fields": [{ "key": "thing1", "type": "THING" }] }),
        json!({ "appId": OA, "templateId": "t", "channel": "OFFICIAL_ACCOUNT_TEMPLATE", "longTerm": true, "fields": [{ "key": "thing1", "type": "THING" }] }),
    ] {
        let res = app.gql(Some(ADMIN_KEY), q, json!({ "i": bad })).await;
        assert_eq!(error_code(&res), "BAD_USER_INPUT", "{res:#}");
    }
    assert_eq!(app.written().await, written, "bad input changed something");
    assert_eq!(
        error_code(&app.gql(Some(SERVICE_KEY), q, json!({ "i": ok })).await),
        "FORBIDDEN"
    );
    let list = app
        .gql_ok(
            Some(SERVICE_KEY),
            "{ messageTemplates(appId: \"wxsandboxofficial1\") { templateId } }",
            json!({}),
        )
        .await;
    assert_eq!(
        list["messageTemplates"].as_array().unwrap().len(),
        3,
        "{list:#}"
    );
}

async fn a_bulk_send_reaches_every_follower_once_and_reports_progress(backend: Backend) {
    let app = TestApp::start_driven(backend, |_| {}).await;
    app.add_followers("bulk-", 0, 30).await;
    let sync = app.start_sync().await;
    app.synced(sync["id"].as_str().unwrap(), "COMPLETED").await;
    let outsider = app.login_mp(MP_A, "outsider").await["user"].clone();
    let q = "mutation($i: SendMessagesInput!) { sendMessages(input: $i) { id status total } }";
    let input = json!({ "filter": {}, "appId": OA, "templateId": SHIPPED, "data": shipped_data(), "idempotencyKey": "bulk-1" });
    let job = app
        .gql_ok(Some(SERVICE_KEY), q, json!({ "i": input }))
        .await["sendMessages"]
        .clone();
    let again = app
        .gql_ok(Some(SERVICE_KEY), q, json!({ "i": input }))
        .await["sendMessages"]
        .clone();
    assert_eq!(again["id"], job["id"], "the same key returns the same job");
    let done = run_job(&app, job["id"].as_str().unwrap()).await;
    assert_eq!(
        done["total"], 30,
        "only users on the OA are recipients: {done:#}"
    );
    assert_eq!(
        done["sent"].as_i64().unwrap() + done["delivered"].as_i64().unwrap(),
        30,
        "{done:#}"
    );
    let delivered = app.delivered(OA, None).await;
    assert_eq!(delivered["total"], 30);
    assert_eq!(delivered["recipients"], 30);
    // userIds: one who cannot be reached is counted by its code.
    let first_user = app
        .gql_ok(
            Some(ADMIN_KEY),
            "{ users(first: 1) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    let input = json!({ "userIds": [first_user["users"]["edges"][0]["node"]["id"], outsider["id"]], "appId": OA, "templateId": SHIPPED, "data": shipped_data() });
    let job = app
        .gql_ok(Some(SERVICE_KEY), q, json!({ "i": input }))
        .await["sendMessages"]
        .clone();
    let done = run_job(&app, job["id"].as_str().unwrap()).await;
    assert_eq!(done["total"], 2);
    assert!(
        done["outcomes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["code"] == "NO_IDENTITY" && o["count"] == 1),
        "{done:#}"
    );
    // Bounded input.
    let ids: Vec<String> = (0..1001)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let res = app.gql(Some(SERVICE_KEY), q, json!({ "i": { "userIds": ids, "appId": OA, "templateId": SHIPPED, "data": shipped_data() } })).await;
    assert_eq!(error_code(&res), "BAD_USER_INPUT");
}

/// Bulk job `id`, as its caller reads it.
async fn message_job(app: &TestApp, id: &str) -> Value {
    let q = "query($id: ID!) { messageJob(id: $id) { id status total queued sent delivered failed uncertain outcomes { status code count } lastError } }";
    app.gql_ok(Some(SERVICE_KEY), q, json!({ "id": id })).await["messageJob"].clone()
}

/// Runs the due jobs; then bulk job `id` must be completed. Returns it.
async fn run_job(app: &TestApp, id: &str) -> Value {
    app.run_jobs().await;
    let job = message_job(app, id).await;
    assert_eq!(job["status"], "COMPLETED", "{job:#}");
    job
}

/// A service running its own jobs: waits (at most 90 s: a resumed job first waits out its dead
/// runner's lease, on a loaded machine) until bulk job `id` completed; returns it.
async fn wait_job(app: &TestApp, id: &str) -> Value {
    eventually(Duration::from_secs(90), "the job completed", || async {
        let job = message_job(app, id).await;
        assert_ne!(job["status"], "FAILED", "{job:#}");
        if job["status"] == "COMPLETED" {
            Ok(job)
        } else {
            Err(job)
        }
    })
    .await
}

mod a_bulk_job_whose_instance_dies_resumes_elsewhere_and_sends_nobody_a_second_copy {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::a_bulk_job_whose_instance_dies_resumes_elsewhere_and_sends_nobody_a_second_copy(
            crate::common::Backend::Sqlite,
        )
        .await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(test_postgres),
        ignore = "set TEST_DATABASE_URL to run on PostgreSQL"
    )]
    async fn postgres() {
        super::a_bulk_job_whose_instance_dies_resumes_elsewhere_and_sends_nobody_a_second_copy(
            crate::common::Backend::Postgres,
        )
        .await
    }
}

/// Two instances on one database and one sandbox (outside both): the first dies mid-job after
/// WeChat accepted a send but before its answer came back (the sandbox holds the answers of the
/// sends after the first 15), so those messages are stored as being sent when it dies. The
/// second takes the job over once the lease runs out: it must not send them again (they are
/// UNCERTAIN: WeChat may have them), and everybody else gets exactly one copy.
async fn a_bulk_job_whose_instance_dies_resumes_elsewhere_and_sends_nobody_a_second_copy(
    backend: Backend,
) {
    use wechat_identity::config::{Secret, sandbox_demo_apps};
    use wechat_identity::wechat::sandbox::Sandbox;

    const PEOPLE: u64 = 60;
    const BEFORE_THE_HOLD: u64 = 15;
    let sandbox = Sandbox::new(&sandbox_demo_apps());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let wechat_url = sandbox.spawn(listener);
    sandbox.add_followers(OA, "kill-", 0, PEOPLE).unwrap();
    let instance = |url: Option<(String, String)>| {
        let wechat_url = wechat_url.clone();
        move |c: &mut wechat_identity::config::Config| {
            c.sandbox = Some(false);
            c.apps = sandbox_demo_apps();
            c.wechat.api_base_url = wechat_url;
            c.jobs.lease_secs = 2;
            c.jobs.poll_interval_ms = 100;
            c.messages.send_rate_per_sec = 20;
            c.messages.bulk_batch = 10;
            if let Some((url, key)) = url {
                c.database_url = Some(Secret::new(url));
                c.wechat.session_key_encryption_key = Some(Secret::new(key));
            }
        }
    };
    let a = TestApp::start_with(backend, instance(None)).await;
    sandbox.set_push_target(&a.base);
    a.register_demo_templates().await;
    let sync = a.start_sync().await;
    a.wait_sync(sync["id"].as_str().unwrap(), "COMPLETED", 30)
        .await;
    let http = reqwest::Client::new();
    let faults = format!("{wechat_url}/faults");
    let hold = json!({ "path": "/cgi-bin/message/template/send", "after": BEFORE_THE_HOLD,
        "count": PEOPLE, "replyDelayMs": 60_000 });
    let res = http.post(&faults).json(&hold).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let q = "mutation($i: SendMessagesInput!) { sendMessages(input: $i) { id } }";
    let input = json!({ "filter": {}, "appId": OA, "templateId": SHIPPED, "data": shipped_data() });
    let job = a.gql_ok(Some(SERVICE_KEY), q, json!({ "i": input })).await["sendMessages"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Wait until WeChat has accepted a send whose answer it holds, then kill the instance.
    let past_the_hold =
        || async { sandbox.delivered(OA, None, 1).map_or(0, |l| l.total) > BEFORE_THE_HOLD };
    let what = format!("the job got past the first {BEFORE_THE_HOLD} sends");
    eventually(Duration::from_secs(30), &what, past_the_hold).await;
    a.running.handle.abort();
    let res = http.delete(&faults).send().await.unwrap();
    assert!(res.status().is_success());
    let at_kill = sandbox.delivered(OA, None, 1).unwrap().total;
    assert!(at_kill < PEOPLE, "the job finished before the kill");

    let key = std::fs::read_to_string(a.dir.path().join("session-key-encryption.key")).unwrap();
    let b = TestApp::start_with(backend, instance(Some((a.database_url.clone(), key)))).await;
    sandbox.set_push_target(&b.base);
    let done = wait_job(&b, &job).await;
    let list = sandbox.delivered(OA, None, 10_000).unwrap();
    assert_eq!(
        list.total, list.recipients,
        "somebody got a second copy: {done:#}"
    );
    let (sent, delivered, uncertain) = (
        done["sent"].as_u64().unwrap(),
        done["delivered"].as_u64().unwrap(),
        done["uncertain"].as_u64().unwrap(),
    );
    assert_eq!(done["total"], PEOPLE, "{done:#}");
    assert_eq!(sent + delivered + uncertain, PEOPLE, "{done:#}");
    assert!(
        uncertain >= 1,
        "the sends in flight at the kill are uncertain, not sent again: {done:#}"
    );
    // Everyone but the uncertain got their one copy (an uncertain one may or may not have
    // reached WeChat before the kill).
    assert!(
        list.recipients >= sent + delivered && list.recipients <= PEOPLE,
        "{done:#} {}",
        list.recipients
    );
    assert!(uncertain <= 10, "at most one batch is in flight: {done:#}");
    drop(a);
}

/// A send WeChat took: SENT, or DELIVERED already when WeChat's report (pushed to the webhook
/// while the send was answered) was processed first.
pub(crate) fn sent_or_delivered(status: &Value) -> bool {
    status == "SENT" || status == "DELIVERED"
}
