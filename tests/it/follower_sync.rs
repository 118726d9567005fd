//! Stories: an admin syncs an Official Account's followers; people known from a Mini Program
//! become one user with both identities; followers who left are marked; a sync stopped by
//! WeChat's quota carries on from where it stopped; one sync per app at a time.

use serde_json::json;

use crate::common::*;
use crate::merge::MERGE_EVENTS;
use crate::on_both_backends;

on_both_backends!(
    followers_known_from_a_mini_program_become_one_user_with_both_identities,
    a_full_sync_marks_followers_who_left_as_unsubscribed,
    a_sync_stopped_by_wechats_quota_pauses_and_carries_on_from_its_page,
    only_admins_sync_and_one_sync_runs_per_app,
    a_scheduled_sync_starts_by_itself,
    a_sync_ends_once_and_never_marks_from_a_list_cut_short,
    every_past_sync_is_reachable_a_page_at_a_time,
);

async fn followers_known_from_a_mini_program_become_one_user_with_both_identities(
    backend: Backend,
) {
    let app = TestApp::start_driven(backend, |_| {}).await;
    // p0 and p1 logged into Mini Program A; p2 opened the OA's page (snsapi_base: no unionid,
    // so a user of its own) and also logged into the Mini Program.
    let p0 = app.login_mp(MP_A, "p0").await;
    app.login_mp(MP_A, "p1").await;
    let p2_oa = app.login_oa("p2", "snsapi_base").await;
    let p2_mp = app.login_mp(MP_A, "p2").await;
    assert_ne!(p2_oa["user"]["id"], p2_mp["user"]["id"]);
    // Five people follow the OA: p0..p4.
    app.add_followers("p", 0, 5).await;

    let sync = app.start_sync().await;
    assert_eq!(sync["appId"], OA);
    assert_eq!(sync["requestedBy"], "WECHAT_IDENTITY_ADMIN_KEY");
    let done = app.synced(sync["id"].as_str().unwrap(), "COMPLETED").await;
    assert_eq!(done["followersSeen"], 5, "{done:#}");
    assert_eq!(done["total"], 5);
    assert_eq!(done["pages"], 1);
    // p3 and p4 are new people; p2's OA user is merged into her Mini Program user.
    assert_eq!(done["usersCreated"], 2, "{done:#}");
    assert_eq!(done["usersMerged"], 1, "{done:#}");
    assert_eq!(done["errors"], 0);
    assert!(done["startedAt"].is_string() && done["finishedAt"].is_string());

    let unionid = p0["user"]["unionid"].as_str().unwrap();
    let user = app.user_by_unionid(unionid).await;
    assert_eq!(user["officialAccountIdentities"][0]["subscribed"], true);
    assert_eq!(user["id"], p0["user"]["id"]);
    assert_eq!(user["miniProgramIdentities"][0]["appId"], MP_A);

    let p2 = app
        .user_by_unionid(p2_mp["user"]["unionid"].as_str().unwrap())
        .await;
    assert_eq!(p2["id"], p2_mp["user"]["id"]);
    assert_eq!(p2["officialAccountIdentities"].as_array().unwrap().len(), 1);
    let events = app.gql_ok(Some(ADMIN_KEY), MERGE_EVENTS, json!({})).await;
    let events = events["mergeEvents"]["edges"].as_array().unwrap().clone();
    assert!(
        events.iter().any(|e| e["node"]["reason"] == "FOLLOWER_SYNC"
            && e["node"]["merged"]["id"] == p2_oa["user"]["id"]
            && e["node"]["survivor"]["id"] == p2_mp["user"]["id"]),
        "{events:#?}"
    );
    // Syncing again changes nobody: same people, nobody new, no merge.
    let again = app.start_sync().await;
    assert_ne!(again["id"], sync["id"]);
    let again = app.synced(again["id"].as_str().unwrap(), "COMPLETED").await;
    assert_eq!(again["usersCreated"], 0);
    assert_eq!(again["usersMerged"], 0);
    assert_eq!(again["followersSeen"], 5);
}

async fn a_full_sync_marks_followers_who_left_as_unsubscribed(backend: Backend) {
    let app = TestApp::start_driven(backend, |_| {}).await;
    app.add_followers("q", 0, 3).await;
    let first = app.start_sync().await;
    app.synced(first["id"].as_str().unwrap(), "COMPLETED").await;
    // q1 leaves, and WeChat's event about it never arrives.
    let left = app
        .sandbox_post(
            "/unfollow",
            json!({ "appId": OA, "user": "q1", "silent": true }),
        )
        .await
        .1;
    let second = app.start_sync().await;
    let second = app
        .synced(second["id"].as_str().unwrap(), "COMPLETED")
        .await;
    assert_eq!(second["followersSeen"], 2);
    assert_eq!(second["unsubscribed"], 1, "{second:#}");
    let unionid = left["unionid"].as_str().unwrap();
    let user = app.user_by_unionid(unionid).await;
    assert_eq!(user["officialAccountIdentities"][0]["subscribed"], false);
    assert_eq!(app.count("follower_sync_seen").await, 0);
}

async fn a_sync_stopped_by_wechats_quota_pauses_and_carries_on_from_its_page(backend: Backend) {
    let app = TestApp::start_driven(backend, |_| {}).await;
    app.add_followers("r", 0, 25).await;
    let (status, _) = app
        .sandbox_post("/followers", json!({ "appId": OA, "pageSize": 10 }))
        .await;
    assert_eq!(status, 200);
    // The second page answers 45009 (the daily quota) once.
    app.fault(json!({ "path": "/cgi-bin/user/get", "errcode": 45009, "after": 1 }))
        .await;
    let sync = app.start_sync().await;
    let id = sync["id"].as_str().unwrap();
    let paused = app.synced(id, "PAUSED").await;
    assert_eq!(paused["pages"], 1, "{paused:#}");
    assert_eq!(paused["followersSeen"], 10);
    assert!(
        paused["lastError"].as_str().unwrap().contains("45009"),
        "{paused:#}"
    );
    // It carries on by itself once the pause is over (and not before).
    assert_eq!(app.run_jobs().await, 0, "ran again before the pause ended");
    app.run_jobs_after_waits().await;
    let done = app.sync(id).await;
    assert_eq!(done["status"], "COMPLETED", "{done:#}");
    assert_eq!(done["pages"], 3, "{done:#}");
    assert_eq!(done["followersSeen"], 25);
    assert_eq!(done["usersCreated"], 25);
    assert!(done["lastError"].is_null());
    // Page one was not fetched again: three pages and the empty one that ends the list were
    // served (the refused call is not counted).
    let calls = app.sandbox_stats(OA).await["followerCalls"].clone();
    assert_eq!(calls["userGet"], 4, "{calls}");
    assert_eq!(calls["batchget"], 3, "{calls}");
}

async fn only_admins_sync_and_one_sync_runs_per_app(backend: Backend) {
    let app = TestApp::start_driven(backend, |_| {}).await;
    let start = "mutation($a: String!) { syncOfficialAccountFollowers(appId: $a) { id } }";
    let body = app.gql(Some(SERVICE_KEY), start, json!({ "a": OA })).await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    let body = app.gql(None, start, json!({ "a": OA })).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    let body = app.gql(Some(ADMIN_KEY), start, json!({ "a": MP_A })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    let before = app.written().await;
    let body = app
        .gql(Some(ADMIN_KEY), start, json!({ "a": "wxnope" }))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert_eq!(app.written().await, before);

    // While the first sync is pending, starting again returns it.
    app.add_followers("s", 0, 2).await;
    let first = app.start_sync().await;
    let second = app.start_sync().await;
    assert_eq!(first["id"], second["id"]);
    let list = app
        .gql_ok(
            Some(ADMIN_KEY),
            "query($a: String!) { wechatFollowerSyncs(appId: $a, first: 5) { nodes { id status } } }",
            json!({ "a": OA }),
        )
        .await;
    let nodes = &list["wechatFollowerSyncs"]["nodes"];
    assert_eq!(nodes.as_array().unwrap().len(), 1);
    let body = app
        .gql(
            Some(ADMIN_KEY),
            "query($a: String!) { wechatFollowerSyncs(appId: $a, first: 101) { nodes { id } } }",
            json!({ "a": OA }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    app.synced(first["id"].as_str().unwrap(), "COMPLETED").await;
}

/// An OA with `follower_sync_interval_secs` is synced with no one asking: the sync completes
/// and records the followers WeChat lists, and the next check finds it recent enough.
async fn a_scheduled_sync_starts_by_itself(backend: Backend) {
    use wechat_identity::config::sandbox_demo_apps;
    use wechat_identity::wechat::sandbox::Sandbox;
    // A sandbox of its own, with followers before the service (and its first check) starts.
    let sandbox = Sandbox::new(&sandbox_demo_apps());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let wechat_url = sandbox.spawn(listener);
    sandbox.add_followers(OA, "sched-", 0, 4).unwrap();
    let app = TestApp::start_driven(backend, |c| {
        c.sandbox = Some(false);
        c.apps = sandbox_demo_apps();
        c.wechat.api_base_url = wechat_url;
        for a in &mut c.apps {
            if a.app_id.as_str() == OA {
                a.follower_sync_interval_secs = Some(3600);
            }
        }
    })
    .await;
    // The jobs run: the purge job's check queues the sync, which runs.
    app.run_jobs().await;
    let list =
        "query($a: String!) { wechatFollowerSyncs(appId: $a) { nodes { id status requestedBy } } }";
    let data = app.gql_ok(Some(ADMIN_KEY), list, json!({ "a": OA })).await;
    let syncs = data["wechatFollowerSyncs"]["nodes"].as_array().unwrap();
    assert_eq!(syncs.len(), 1, "no scheduled sync: {data:#}");
    assert!(syncs[0]["requestedBy"].is_null(), "{data:#}");
    let done = app.sync(syncs[0]["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "COMPLETED", "{done:#}");
    assert_eq!(done["followersSeen"], 4, "{done:#}");
    assert_eq!(done["usersCreated"], 4, "{done:#}");
    assert_eq!(
        app.count("official_account_identities WHERE subscribed")
            .await,
        4
    );
    // One per interval: the next check (the purge's next period) finds this one recent enough.
    assert!(app.run_jobs_after_waits().await >= 1, "the purge ran again");
    let again = app.gql_ok(Some(ADMIN_KEY), list, json!({ "a": OA })).await;
    let nodes = &again["wechatFollowerSyncs"]["nodes"];
    assert_eq!(nodes.as_array().unwrap().len(), 1);
}

async fn a_sync_ends_once_and_never_marks_from_a_list_cut_short(backend: Backend) {
    use wechat_identity::db::models::follower_sync::{FollowerSyncRow, SyncCounts};
    use wechat_identity::types::FollowerSyncId;
    let app = TestApp::start_driven(backend, |_| {}).await;
    app.add_followers("u", 0, 3).await;
    let sync = app.start_sync().await;
    let id = sync["id"].as_str().unwrap().to_owned();
    app.synced(&id, "COMPLETED").await;
    let subscribed = "official_account_identities WHERE subscribed";
    assert_eq!(app.count(subscribed).await, 3);
    let system = app.running.app.identity.system();
    let mut conn = app.db_conn().await;
    let row = FollowerSyncRow::find(&mut conn, &FollowerSyncId::new(&id))
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    // Its job run again after the end (say the runner could not record it): nothing happens,
    // although this run's list is empty.
    let counts = SyncCounts {
        total: Some(0),
        ..SyncCounts::default()
    };
    let again = system.finish_follower_sync(&row, &counts).await.unwrap();
    assert_eq!(again, None);
    assert_eq!(app.count(subscribed).await, 3);

    // A second sync whose list came out shorter than WeChat's count fails, marking nobody.
    let second = app.start_sync().await;
    let second_id = second["id"].as_str().unwrap().to_owned();
    app.synced(&second_id, "COMPLETED").await;
    let mut conn = app.db_conn().await;
    wechat_identity::with_conn!(&mut conn, c => {
        use diesel_async::RunQueryDsl;
        diesel::sql_query(format!(
            "UPDATE follower_syncs SET status = 'running', finished_at = NULL WHERE id = '{second_id}'"
        ))
        .execute(c)
        .await
    })
    .unwrap();
    let row = FollowerSyncRow::find(&mut conn, &FollowerSyncId::new(&second_id))
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    let short = SyncCounts {
        total: Some(3),
        listed: 1,
        ..SyncCounts::default()
    };
    assert!(system.finish_follower_sync(&row, &short).await.is_err());
    assert_eq!(app.count(subscribed).await, 3);
    let failed = app.sync(&second_id).await;
    assert_eq!(failed["status"], "FAILED");
    assert!(
        failed["lastError"]
            .as_str()
            .unwrap()
            .contains("nobody was marked"),
        "{failed:#}"
    );
}

/// Syncs are listed newest first a page at a time, so the oldest stays reachable however many
/// came after it.
async fn every_past_sync_is_reachable_a_page_at_a_time(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_followers("q", 0, 2).await;
    let mut started = Vec::new();
    for _ in 0..3 {
        let sync = app.start_sync().await;
        let id = sync["id"].as_str().unwrap().to_owned();
        app.wait_sync(&id, "COMPLETED", 30).await;
        started.push(id);
    }
    let page = "query($a: String!, $after: String) { wechatFollowerSyncs(appId: $a, first: 2, after: $after) {
        nodes { id } pageInfo { hasNextPage endCursor } } }";
    let (mut listed, mut after) = (Vec::new(), None::<String>);
    loop {
        let data = app
            .gql_ok(Some(ADMIN_KEY), page, json!({ "a": OA, "after": after }))
            .await;
        let syncs = &data["wechatFollowerSyncs"];
        for node in syncs["nodes"].as_array().unwrap() {
            listed.push(node["id"].as_str().unwrap().to_owned());
        }
        if syncs["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = syncs["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    started.reverse();
    assert_eq!(listed, started, "newest first, each once");
    // A service key lists none of them.
    let body = app
        .gql(Some(SERVICE_KEY), page, json!({ "a": OA, "after": null }))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
}
