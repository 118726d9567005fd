//! Stories of deliveries: an endpoint that was down gets every event once it is back, none
//! twice, in order per user; a merge waits for its source's events; an endpoint that hangs or
//! redirects fails, is given up and marked, and a disabled one gets nothing; two instances
//! deliver each event once between them.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::common::receiver::{Answer, Received, Receiver};
use crate::common::*;
use crate::on_both_backends;
use crate::user_events::{deliver, deliveries, feed, register};

on_both_backends!(
    an_endpoint_that_was_down_gets_every_event,
    a_merge_waits_for_its_sources_events,
    a_delivery_that_hangs_or_redirects_fails_and_is_given_up,
    two_instances_deliver_each_event_once_between_them,
);

async fn an_endpoint_that_was_down_gets_every_event(backend: Backend) {
    let app = TestApp::start_driven(backend, |_| {}).await;
    let hooks = Receiver::start().await;
    let (endpoint, _) = register(&app, &hooks.url).await;
    hooks.set_down(true);
    for who in ["ann", "ben", "cat"] {
        app.login_mp(MP_A, who).await;
    }
    deliver(&app).await;
    assert!(hooks.refused() > 0, "the endpoint was tried while down");
    assert!(hooks.received().is_empty());
    let pending = deliveries(&app, &endpoint, "PENDING").await;
    assert_eq!(pending.len(), 6, "three users, each created and linked");
    let tried = pending.iter().find(|d| d["attempts"] == 1).unwrap();
    assert_eq!(tried["responseStatus"], 503);
    assert_eq!(tried["lastError"], "the endpoint answered HTTP 503");
    assert!(tried["nextAttemptAt"].is_string());

    // Down for a while: every retry fails, and later events queue behind them.
    deliver(&app).await;
    app.login_mp(MP_A, "dan").await;
    hooks.set_down(false);
    deliver(&app).await;
    deliver(&app).await;
    let got = hooks.received();
    let ids: Vec<&str> = got.iter().map(|r| r.id.as_str()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), 8, "every event arrived: {ids:?}");
    assert_eq!(ids.len(), unique.len(), "none twice");
    let feed_ids: HashSet<String> = feed(&app)
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(feed_ids, unique.iter().map(|s| s.to_string()).collect());
    // Per user: created before linked.
    for r in got.iter().filter(|r| r.json()["type"] == "identity.linked") {
        let user = r.json()["data"]["userId"].clone();
        let created = got
            .iter()
            .position(|c| c.json()["type"] == "user.created" && c.json()["data"]["userId"] == user)
            .unwrap();
        let linked = got.iter().position(|c| c.id == r.id).unwrap();
        assert!(created < linked, "a user's events arrive in order");
    }
    assert_eq!(deliveries(&app, &endpoint, "DELIVERED").await.len(), 8);
}

async fn a_delivery_that_hangs_or_redirects_fails_and_is_given_up(backend: Backend) {
    let app = TestApp::start_driven(backend, |c| {
        c.events.timeout_ms = 2000;
        c.events.give_up_after_secs = 0;
    })
    .await;
    let hooks = Receiver::start().await;
    let elsewhere = Receiver::start().await;
    let (endpoint, _) = register(&app, &hooks.url).await;
    let endpoint_q = "{ eventEndpoints { status lastError failingSince } }";

    hooks.set_answer(Answer::Slow(6000));
    app.login_mp(MP_A, "alice").await;
    deliver(&app).await;
    let failed = &deliveries(&app, &endpoint, "FAILED").await[0];
    assert!(
        failed["lastError"]
            .as_str()
            .unwrap()
            .starts_with("no answer within events.timeout_ms"),
        "{failed}"
    );
    assert!(failed["responseStatus"].is_null());
    assert!(
        failed["nextAttemptAt"].is_null(),
        "given up: no next attempt"
    );
    let shown = app.gql_ok(Some(ADMIN_KEY), endpoint_q, json!({})).await;
    assert_eq!(shown["eventEndpoints"][0]["status"], "FAILING");
    assert!(
        shown["eventEndpoints"][0]["lastError"]
            .as_str()
            .unwrap()
            .contains("gave up")
    );

    // A redirect is not followed: the endpoint's answer is the failure.
    hooks.set_answer(Answer::Redirect(elsewhere.url.clone()));
    app.login_mp(MP_A, "bob").await;
    deliver(&app).await;
    let failed = deliveries(&app, &endpoint, "FAILED").await;
    let errors: Vec<&str> = failed
        .iter()
        .filter_map(|d| d["lastError"].as_str())
        .collect();
    assert!(
        errors.contains(&"the endpoint answered HTTP 307"),
        "{errors:?}"
    );
    assert!(
        elsewhere.received().is_empty(),
        "the redirect was not followed"
    );

    // Enabled again, it is active; new events reach it.
    let q = "mutation($id: ID!) { updateEventEndpoint(id: $id, input: {enabled: true}) { status lastError } }";
    let on = app
        .gql_ok(Some(ADMIN_KEY), q, json!({ "id": endpoint }))
        .await;
    assert_eq!(on["updateEventEndpoint"]["status"], "ACTIVE");
    assert!(on["updateEventEndpoint"]["lastError"].is_null());
    hooks.set_answer(Answer::Ok);
    let cat = app.login_mp(MP_A, "cat").await["user"]["id"].clone();
    deliver(&app).await;
    let of_cat = |got: &[Received]| {
        got.iter()
            .filter(|r| r.json()["data"]["userId"] == cat)
            .count()
    };
    assert_eq!(of_cat(&hooks.received()), 2, "cat's creation and identity");
    let before = hooks.received().len();
    // Switched off, it gets nothing, not even what was queued before.
    app.login_mp(MP_A, "dan").await;
    let q =
        "mutation($id: ID!) { updateEventEndpoint(id: $id, input: {enabled: false}) { status } }";
    app.gql_ok(Some(ADMIN_KEY), q, json!({ "id": endpoint }))
        .await;
    app.login_mp(MP_A, "eve").await;
    deliver(&app).await;
    assert_eq!(
        hooks.received().len(),
        before,
        "nothing for a disabled endpoint"
    );
}

async fn two_instances_deliver_each_event_once_between_them(backend: Backend) {
    let fast = |c: &mut wechat_identity::config::Config| {
        // The receiver is on loopback (the second instance is not in sandbox mode).
        c.events.allow_private_networks = Some(true);
        c.events.poll_ms = 20;
        c.jobs.poll_interval_ms = 20;
    };
    let a = TestApp::start_with(backend, fast).await;
    let same = a.same_deployment();
    let b = TestApp::start_with(backend, |c| {
        same(c);
        fast(c);
    })
    .await;
    let hooks = Receiver::start().await;
    register(&a, &hooks.url).await;
    // Twenty people log in, half through each instance; both instances' runners deliver.
    for i in 0..20 {
        // WeChat (the sandbox) is the first instance's; the login goes to either.
        let code = a.code(MP_A, &format!("person{i}")).await;
        let app = if i % 2 == 0 { &a } else { &b };
        let login = app.login_mp_code(MP_A, &code).await;
        assert!(login["errors"].is_null(), "{login}");
    }
    let got = eventually(
        std::time::Duration::from_secs(20),
        "every event arrived",
        || async { Some(hooks.received()).filter(|got| got.len() >= 40) },
    )
    .await;
    // A moment more: nothing arrives twice.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let got_now = hooks.received();
    assert_eq!(got_now.len(), got.len());
    let ids: HashSet<&str> = got_now.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 40, "each of the 40 events");
    assert_eq!(got_now.len(), 40, "none twice");
}

async fn a_merge_waits_for_its_sources_events(backend: Backend) {
    let app = TestApp::start_driven(backend, |_| {}).await;
    let hooks = Receiver::start().await;
    register(&app, &hooks.url).await;
    let b1 = app.login_oa("bob", "snsapi_base").await["user"]["id"].clone();
    let b1 = b1.as_str().unwrap().to_owned();
    // The endpoint refuses B1's own events for now (not the merge, which names him as its
    // source): they stay pending.
    hooks.set_answer(Answer::RefuseContaining(format!("\"userId\":\"{b1}\"")));
    let b2 = app.login_mp(MP_A, "bob").await["user"]["id"].clone();
    app.login_oa("bob", "snsapi_userinfo").await;
    deliver(&app).await;
    let got: Vec<Value> = hooks.received().iter().map(Received::json).collect();
    assert!(
        got.iter().any(|b| b["data"]["userId"] == b2),
        "B2's own events went out"
    );
    assert!(
        !got.iter().any(|b| b["type"] == "user.merged"),
        "the merge waits for B1's events: {got:#?}"
    );
    hooks.set_answer(Answer::Ok);
    deliver(&app).await;
    let got: Vec<Value> = hooks.received().iter().map(Received::json).collect();
    let merge = got.iter().position(|b| b["type"] == "user.merged").unwrap();
    let of_b1: Vec<usize> = (0..got.len())
        .filter(|i| got[*i]["data"]["userId"] == b1.as_str())
        .collect();
    assert_eq!(of_b1.len(), 2);
    assert!(
        of_b1.iter().all(|i| *i < merge),
        "B1's events before the merge"
    );
}
