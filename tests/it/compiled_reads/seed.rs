//! The people of the differential test, made through the real flows on instance A: logins in
//! every kind of app, a unionid that shows up late (a merge), an admin merge, a disabled and an
//! erased user, a phone number, nicknames that JSON must escape, and followers for paging.

use serde_json::{Value, json};

use crate::common::flows::landing;
use crate::common::*;
use crate::merge::id;

pub const WEBSITE: &str = "wxsandboxwebsite01";
pub const MOBILE: &str = "wxsandboxmobile001";

/// Nicknames a person may type (`updateMyProfile`): quotes, backslashes, a slash, HTML,
/// scripts, a family emoji (ZWJ sequence), combining marks, U+2028/U+2029, a zero-width
/// space and a BOM.
pub const NICKNAMES: [&str; 4] = [
    "O'Brien \"the quote\" \\ back\\slash / </script> 100%_off",
    "张伟 🐼 👨\u{200d}👩\u{200d}👧 ẞ e\u{301}",
    "line\u{2028}sep\u{2029}end <b>&amp;</b>",
    "zero\u{200b}width \u{feff}bom ﷽ 𝕏",
];

pub struct Seed {
    pub alice: String,
    pub alice_token: String,
    pub alice_unionid: String,
    /// Alice's identity in Mini Program A: row id and openid.
    pub alice_mp: String,
    pub alice_mp_openid: String,
    /// Bob: his OA user (`bob_old`, no unionid) merged into his Mini Program user when the
    /// unionid showed up; `bob_old_token` was issued before the merge.
    pub bob: String,
    pub bob_old: String,
    pub bob_old_token: String,
    pub bob_unionid: String,
    /// Carol: her unbound Mini Program user merged by an admin into her Mini Program A user.
    pub carol: String,
    pub carol_old: String,
    pub dave: String,
    pub erin: String,
    pub frank: String,
    pub grace: String,
    pub grace_created_at: String,
    pub odd: Vec<String>,
    pub control: String,
    pub henry: String,
    pub fans: usize,
}

async fn admin(app: &TestApp, query: &str, variables: Value) -> Value {
    app.gql_ok(Some(ADMIN_KEY), query, variables).await
}

fn token(login: &Value) -> String {
    login["accessToken"].as_str().unwrap().to_owned()
}

/// The embedded website login, then the mobile app's: `user`'s id.
async fn website_and_mobile(app: &TestApp, user: &str) -> String {
    let start = app
        .gql_ok(
            None,
            "mutation($i: StartWebsiteLoginInput!) { startWebsiteLogin(input: $i) { state } }",
            json!({ "i": { "appId": WEBSITE, "redirectUri": landing(app) } }),
        )
        .await;
    let code = app.code(WEBSITE, user).await;
    let web = app
        .gql_ok(
            None,
            "mutation($i: LoginWithWebsiteInput!) { loginWithWebsite(input: $i) { user { id } } }",
            json!({ "i": { "appId": WEBSITE, "code": code,
                "state": start["startWebsiteLogin"]["state"] } }),
        )
        .await;
    let code = app.code(MOBILE, user).await;
    let mobile = app
        .gql_ok(
            None,
            "mutation($i: LoginWithMobileAppInput!) { loginWithMobileApp(input: $i) { user { id } } }",
            json!({ "i": { "appId": MOBILE, "code": code } }),
        )
        .await;
    let web = web["loginWithWebsite"]["user"]["id"].clone();
    assert_eq!(web, mobile["loginWithMobileApp"]["user"]["id"]);
    web.as_str().unwrap().to_owned()
}

/// Seeds instance `app` on `backend` (its jobs run by the test: [`TestApp::start_driven`]).
pub async fn seed(app: &TestApp, backend: Backend) -> Seed {
    // Alice: both Mini Programs, the Official Account with her profile; her own nickname.
    let alice_login = app.login_mp(MP_A, "alice").await;
    app.login_mp(MP_B, "alice").await;
    let oa = app.login_oa("alice", "snsapi_userinfo").await;
    let alice = id(&alice_login);
    assert_eq!(id(&oa), alice);
    let alice_token = token(&alice_login);
    let changed = app
        .update_profile(&alice_token, json!({ "nickname": "Alice \"A\" 🐼" }))
        .await;
    assert!(changed.get("errors").is_none(), "{changed:#}");
    let ids = admin(
        app,
        "query($id: ID!) { user(id: $id) { unionid miniProgramIdentities { id appId openid } } }",
        json!({ "id": alice }),
    )
    .await;
    let mp = &ids["user"]["miniProgramIdentities"][0];
    assert_eq!(mp["appId"], MP_A);

    // Bob: the OA silently (no unionid), then Mini Program A, then the OA with his profile:
    // the unionid shows up and his first user is merged into the second.
    let bob_old_login = app.login_oa("bob", "snsapi_base").await;
    let bob = id(&app.login_mp(MP_A, "bob").await);
    let merged = app.login_oa("bob", "snsapi_userinfo").await;
    assert_eq!(id(&merged), bob);
    let bob_unionid = merged["user"]["unionid"].as_str().unwrap().to_owned();

    // Carol: an admin merges her unbound Mini Program user into her Mini Program A user.
    let carol_old = id(&app.login_mp(MP_UNBOUND, "carol").await);
    let carol = id(&app.login_mp(MP_A, "carol").await);
    admin(
        app,
        "mutation($s: ID!, $t: ID!) { mergeUsers(sourceId: $s, targetId: $t) { id } }",
        json!({ "s": carol_old, "t": carol }),
    )
    .await;

    // Dave is disabled with a reason; Erin is erased.
    let dave = id(&app.login_mp(MP_B, "dave").await);
    admin(
        app,
        "mutation($id: ID!, $r: String) { disableUser(id: $id, reason: $r) { id } }",
        json!({ "id": dave, "r": "spam \"bot\" \\ 🤖\nsecond line" }),
    )
    .await;
    let erin = id(&app.login_mp(MP_A, "erin").await);
    app.login_oa("erin", "snsapi_userinfo").await;
    admin(
        app,
        "mutation($id: ID!) { deleteUser(id: $id) { id } }",
        json!({ "id": erin }),
    )
    .await;

    // Frank shares his phone number at login.
    let code = app.code(MP_A, "frank").await;
    let phone = app
        .phone_code(MP_A, "frank", json!({ "phoneNumber": "13800138000" }))
        .await;
    let body = app
        .login_mp_input(json!({ "appId": MP_A, "code": code, "phoneCode": phone }))
        .await;
    assert!(body.get("errors").is_none(), "{body:#}");
    let frank = body["data"]["loginWithMiniProgram"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Grace: a website and a mobile app.
    let grace = website_and_mobile(app, "grace").await;
    let grace_created_at = admin(
        app,
        "query($id: ID!) { user(id: $id) { createdAt } }",
        json!({ "id": grace }),
    )
    .await["user"]["createdAt"]
        .as_str()
        .unwrap()
        .to_owned();

    // Nicknames JSON must escape, typed in; a control character is refused there.
    let mut odd = Vec::new();
    for (n, nickname) in NICKNAMES.iter().enumerate() {
        let login = app.login_mp(MP_B, &format!("odd{n}")).await;
        let input = json!({ "nickname": nickname,
            "avatarUrl": format!("https://cdn.example.com/头像/{n}.png?a=1&b='\"x\"'") });
        let changed = app.update_profile(&token(&login), input).await;
        assert!(changed.get("errors").is_none(), "{changed:#}");
        odd.push(id(&login));
    }
    let refused = app
        .update_profile(&token(&alice_login), json!({ "nickname": "bell\u{7}" }))
        .await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused:#}");
    // …but WeChat's profile may carry them (the sandbox's names cannot: written here).
    let control = id(&app.login_oa("ctl", "snsapi_userinfo").await);
    let chr = match backend {
        Backend::Sqlite => "char",
        Backend::Postgres => "chr",
    };
    let text = format!(
        "'Ctl' || {chr}(1) || 'bell' || {chr}(7) || 'tab' || {chr}(9) || {chr}(10) || {chr}(31) || {chr}(127) || {chr}(133)"
    );
    app.exec(&format!(
        "UPDATE users SET nickname = {text} WHERE id = '{control}';
         UPDATE official_account_identities SET nickname = {text}, city = {text} WHERE user_id = '{control}';"
    ))
    .await;
    // Henry opens the OA's page silently: an identity that does not follow.
    let henry = id(&app.login_oa("henry", "snsapi_base").await);

    // Followers for paging: a sync makes a user per follower.
    let fans = 22;
    app.add_followers("fan", 0, fans).await;
    let sync = app.start_sync().await;
    app.synced(sync["id"].as_str().unwrap(), "COMPLETED").await;

    Seed {
        alice,
        alice_token,
        alice_unionid: ids["user"]["unionid"].as_str().unwrap().to_owned(),
        alice_mp: mp["id"].as_str().unwrap().to_owned(),
        alice_mp_openid: mp["openid"].as_str().unwrap().to_owned(),
        bob,
        bob_old: id(&bob_old_login),
        bob_old_token: token(&bob_old_login),
        bob_unionid,
        carol,
        carol_old,
        dave,
        erin,
        frank,
        grace,
        grace_created_at,
        odd,
        control,
        henry,
        fans: fans as usize,
    }
}
