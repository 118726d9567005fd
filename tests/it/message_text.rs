//! Message text WeChat would mangle: a keyword value with any control character or a Unicode
//! line/paragraph separator is refused with INVALID_MESSAGE_DATA before anything is sent or
//! stored (WeChat's May 2023 rule: no line breaks in keyword values).

use serde_json::json;

use crate::common::*;
use crate::messages::{SHIPPED, shipped_data};
use crate::on_both_backends;

on_both_backends!(line_breaks_and_control_characters_are_refused_and_nothing_is_sent,);

async fn line_breaks_and_control_characters_are_refused_and_nothing_is_sent(backend: Backend) {
    let app = TestApp::start_driven(backend, |_| {}).await;
    let (carol, openid) = app.follower_user("carol").await;
    let calls = app.message_calls(OA).await;
    let messages = app.count("messages").await;
    let written = app.written().await;
    for c in [
        '\n', '\r', '\t', '\u{b}', '\u{c}', '\0', '\u{85}', '\u{1b}', '\u{2028}', '\u{2029}',
    ] {
        for (thing, time) in [
            (format!("已发货{c}请查收"), "15:01".to_owned()),
            ("已发货".to_owned(), format!("15:01{c}")),
        ] {
            let data = json!({ "thing1": { "value": thing }, "time2": { "value": time } });
            let res = app
                .send(json!({ "userId": carol["id"], "appId": OA, "templateId": SHIPPED, "data": data }))
                .await;
            assert_eq!(
                error_code(&res),
                "INVALID_MESSAGE_DATA",
                "U+{:04X}: {res:#}",
                u32::from(c)
            );
            let message = res["errors"][0]["message"].as_str().unwrap();
            assert!(
                message.contains(&format!("U+{:04X}", u32::from(c))),
                "{message}"
            );
        }
    }
    assert_eq!(app.message_calls(OA).await, calls, "WeChat was called");
    assert_eq!(app.count("messages").await, messages, "a message row");
    assert_eq!(
        app.written().await,
        written,
        "refused text changed something"
    );
    let delivered = app.delivered(OA, Some(&openid)).await;
    assert_eq!(delivered["total"], 0, "{delivered:#}");

    // Plain text still goes out (and is what the sandbox received).
    let res = app
        .send(json!({ "userId": carol["id"], "appId": OA, "templateId": SHIPPED, "data": shipped_data() }))
        .await;
    assert!(res.get("errors").is_none(), "{res:#}");
    let delivered = app.delivered(OA, Some(&openid)).await;
    assert_eq!(delivered["total"], 1, "{delivered:#}");
    assert_eq!(delivered["messages"][0]["data"]["thing1"], "您的订单已发货");
}
