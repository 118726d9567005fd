//! The harness's "nothing written" check can fail: it sees a login, one column of one row
//! changed behind the service's back, NULL turned into text, and tables and columns added after
//! the check was written; it ignores only the states it is documented to ignore.

use crate::common::*;

/// The rows only in `before`, and the rows only in `after`.
fn changed(before: &Written, after: &Written) -> (Vec<String>, Vec<String>) {
    let gone = before.0.iter().filter(|r| !after.0.contains(r)).cloned();
    let came = after.0.iter().filter(|r| !before.0.contains(r)).cloned();
    (gone.collect(), came.collect())
}

/// Asserts that exactly one row of `table` changed from `before` to `after`, and that the
/// new row shows `shown`.
fn one_row_changed(before: &Written, after: &Written, table: &str, shown: &str) {
    let (gone, came) = changed(before, after);
    assert!(
        gone.len() == 1 && came.len() == 1,
        "one row should have changed: gone {gone:#?}, came {came:#?}"
    );
    assert!(gone[0].starts_with(&format!("{table}:")), "{gone:?}");
    assert!(came[0].starts_with(&format!("{table}:")), "{came:?}");
    assert!(came[0].contains(shown), "{shown} in {came:?}");
}

async fn written_sees_every_change(backend: Backend) {
    let app = TestApp::start(backend).await;
    let fresh = app.written().await;
    assert!(fresh.is_empty(), "a fresh database: {fresh:?}");

    // Issuing a state is the documented exception: not a change of anyone's data.
    app.authorize_url(OA, "SNSAPI_BASE").await;
    assert_eq!(app.count("oauth_states").await, 1);
    assert_eq!(app.written().await, fresh);

    // A login writes a user, an identity and a session.
    let auth = app.login_mp(MP_A, "hana").await;
    let token = auth["accessToken"].as_str().unwrap();
    let logged_in = app.written().await;
    for table in ["users:", "mini_program_identities:", "sessions:"] {
        assert!(
            logged_in.0.iter().any(|r| r.starts_with(table)),
            "{table} in {logged_in:#?}"
        );
    }

    // One column of one row, which the old hand-kept column list did not have.
    assert_eq!(app.count("sessions").await, 1);
    app.exec("UPDATE sessions SET user_agent = 'set behind the service''s back'")
        .await;
    let agent_set = app.written().await;
    one_row_changed(
        &logged_in,
        &agent_set,
        "sessions",
        "user_agent=set behind the service's back",
    );

    // NULL and a text are told apart, even a text that looks like a marker.
    assert!(app.me(token).await["data"]["me"]["phoneNumber"].is_null());
    app.exec("UPDATE users SET phone_number = '-'").await;
    assert_eq!(app.me(token).await["data"]["me"]["phoneNumber"], "-");
    let phone_set = app.written().await;
    one_row_changed(&agent_set, &phone_set, "users", "phone_number=-|");

    // A state once used is compared like any other row.
    app.exec("UPDATE oauth_states SET used_at = expires_at")
        .await;
    let used = app.written().await;
    let (gone, came) = changed(&phone_set, &used);
    assert!(gone.is_empty(), "{gone:?}");
    assert!(
        came.len() == 1 && came[0].starts_with("oauth_states:"),
        "{came:?}"
    );
    app.exec("UPDATE oauth_states SET return_to = 'https://h5.example.com/elsewhere'")
        .await;
    one_row_changed(
        &used,
        &app.written().await,
        "oauth_states",
        "return_to=https://h5.example.com/elsewhere",
    );

    // A column added later is covered without anyone listing it: it shows, NULL, in every row
    // of its table, and a value put into it shows.
    let before = app.written().await;
    app.exec("ALTER TABLE users ADD COLUMN note TEXT").await;
    let added = app.written().await;
    one_row_changed(&before, &added, "users", "|note NULL");
    app.exec("UPDATE users SET note = 'later'").await;
    one_row_changed(&added, &app.written().await, "users", "|note=later");

    // So is a table added later.
    let before = app.written().await;
    app.exec("CREATE TABLE audit_log (id TEXT PRIMARY KEY NOT NULL, what TEXT)")
        .await;
    assert_eq!(app.written().await, before, "an empty table adds no rows");
    app.exec("INSERT INTO audit_log (id, what) VALUES ('a1', NULL)")
        .await;
    let (gone, came) = changed(&before, &app.written().await);
    assert!(gone.is_empty(), "{gone:?}");
    assert_eq!(came, ["audit_log:id=a1|what NULL"]);

    // Except the job runner's table, the other documented exception.
    let before = app.written().await;
    app.exec(
        "INSERT INTO jobs (id, kind, key, payload, status, run_at, created_at, updated_at) \
         VALUES ('j1', 'test', 'test-j1', '{}', 'queued', '2030-01-01 00:00:00', \
         '2030-01-01 00:00:00', '2030-01-01 00:00:00')",
    )
    .await;
    assert_eq!(app.written().await, before);
}

crate::on_both_backends!(written_sees_every_change);
