//! The README's walk-throughs, run the way a newcomer runs them: the binary in sandbox mode on
//! SQLite (as `cargo run` starts it), and the README's shell block pasted whole into bash.

use std::process::Command;

use crate::common::tcp::Service;

const ADMIN_KEY: &str = "readme-admin-key-0123456789abcdef";

/// The first ```sh block after `heading_text` in the README.
fn readme_block(heading_text: &str) -> String {
    let readme = include_str!("../../README.md");
    let from = readme
        .find(heading_text)
        .unwrap_or_else(|| panic!("the README says {heading_text:?}"));
    let block = &readme[from..];
    let start = block.find("```sh\n").expect("a shell block") + "```sh\n".len();
    let end = block[start..].find("```").expect("the block ends") + start;
    block[start..end].to_owned()
}

/// The README's block after `heading_text`, pasted whole into bash against the binary started
/// as the README starts it (`cargo run` with no config; `env` in the environment of both): the
/// JSON the block's last command prints (after whatever the commands before it printed).
async fn run_pasted(heading_text: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let mut answers = run_pasted_all(heading_text, env).await;
    answers
        .pop()
        .expect("the block's last command answers JSON")
}

/// Like [`run_pasted`]: every JSON answer the block printed, in order.
async fn run_pasted_all(heading_text: &str, env: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let script = readme_block(heading_text);
    assert!(script.contains("http://127.0.0.1:8080"), "{script}");
    let service = Service::start_with_env("", env).await;
    let script = script.replace("http://127.0.0.1:8080", &service.base);
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Each command's JSON, one after another (curl adds no line break).
    let answers: Result<Vec<serde_json::Value>, _> = serde_json::Deserializer::from_str(&stdout)
        .into_iter()
        .collect();
    answers.unwrap_or_else(|e| panic!("the block's commands answer JSON ({e}): {stdout}"))
}

/// "Quick start": the login code kept in `$CODE` and the login with it, pasted as one block,
/// log alice in (no placeholder code to replace by hand).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_start_login_works_pasted_as_one_block() {
    let answer = run_pasted("Get a login code for the sandbox user `alice`", &[]).await;
    assert!(answer.get("errors").is_none(), "{answer:#}");
    let login = &answer["data"]["loginWithMiniProgram"];
    assert!(login["accessToken"].is_string(), "{answer:#}");
    assert_eq!(login["newUser"], true, "{answer:#}");
    assert!(login["user"]["unionid"].is_string(), "{answer:#}");
}

/// "Messages to a user": the follow and the send, pasted as one block, deliver the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_messages_walkthrough_works_pasted_as_one_block() {
    let env = [("WECHAT_IDENTITY_ADMIN_KEY", ADMIN_KEY)];
    let answer = run_pasted("In the sandbox, in two commands", &env).await;
    assert!(answer.get("errors").is_none(), "{answer:#}");
    assert!(
        crate::messages::sent_or_delivered(&answer["data"]["sendWeChatMessage"]["status"]),
        "{answer:#}"
    );
    assert_eq!(
        answer["data"]["sendWeChatMessage"]["channel"], "OFFICIAL_ACCOUNT_TEMPLATE",
        "{answer:#}"
    );
}

/// "Mini Program": the phone button and the login, pasted as one block, store the number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_walkthrough_works_pasted_as_one_block() {
    let answer = run_pasted("alice's phone button and her login in one go", &[]).await;
    let user = &answer["data"]["loginWithMiniProgram"]["user"];
    assert_eq!(user["phoneNumber"], "+8613800138000", "{answer:#}");
    assert!(user["phoneNumberVerifiedAt"].is_string(), "{answer:#}");
}

/// "JS-SDK": the demo page's config and WeChat's check of it, pasted as one block, pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_js_sdk_walkthrough_works_pasted_as_one_block() {
    let answer = run_pasted("the demo page's config and WeChat's check of it", &[]).await;
    assert_eq!(answer, serde_json::json!({ "ok": true }));
}

/// "Tokens other teams can trust": the login, introspection, revocation and introspection again,
/// pasted as one block, end with the token inactive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_introspection_walkthrough_works_pasted_as_one_block() {
    let env = [("WECHAT_IDENTITY_ADMIN_KEY", ADMIN_KEY)];
    let answers = run_pasted_all("view of alice's token before and after", &env).await;
    // The discovery document, alice's live token, and the same token after the revocation.
    assert_eq!(answers.len(), 3, "{answers:#?}");
    assert!(
        answers[0]["issuer"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    assert_eq!(answers[1]["active"], true, "{answers:#?}");
    assert_eq!(answers[1]["client_id"], "wxsandboxminiapp01");
    assert_eq!(answers[2], serde_json::json!({ "active": false }));
}

/// "Other systems hear about people": alice logs in, is disabled and refused, and the feed
/// tells it, pasted as one block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disable_walkthrough_works_pasted_as_one_block() {
    let env = [("WECHAT_IDENTITY_ADMIN_KEY", ADMIN_KEY)];
    let answers = run_pasted_all(
        "is disabled, is refused, and the feed tells the story",
        &env,
    )
    .await;
    assert_eq!(answers.len(), 3, "{answers:#?}");
    assert_eq!(
        answers[0]["data"]["disableUser"]["disabledReason"],
        "under review"
    );
    assert_eq!(
        answers[1]["errors"][0]["extensions"]["code"],
        "USER_DISABLED"
    );
    let types: Vec<&str> = answers[2]["data"]["userEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["user.created", "identity.linked", "user.disabled"]);
}
