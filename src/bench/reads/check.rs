//! The check before a read is measured: our service and each PostGraphile answer the same users
//! for the same requests, so that none is benchmarking an error.

use serde_json::Value;

use super::KEY;

/// Why a scenario's answers could not be compared, or how they differ.
pub enum Refused {
    /// Our service answered with an error.
    Ours(String),
    /// The peer answered with an error.
    Theirs(String),
    /// Both answered, with different users.
    Differ(String),
}

/// Sends the first bodies of a scenario to our service (`ours`, `our_bodies`) and a peer
/// (`theirs`, `their_bodies`, called `label` in messages) and compares the users they answer
/// (ids, unionids and both identity lists' openids).
pub async fn same_data(
    client: &reqwest::Client,
    (ours, our_bodies): (&str, &[String]),
    (theirs, their_bodies): (&str, &[String]),
    label: &str,
) -> Result<String, Refused> {
    let mut users = 0;
    for (mine, other) in our_bodies.iter().zip(their_bodies).take(3) {
        let post = |endpoint: &str, body: &str, key: Option<&str>| {
            let mut request = client
                .post(endpoint)
                .header("content-type", "application/json")
                .body(body.to_owned());
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            async move {
                let v = crate::bench::send_json(request).await?;
                match v.get("errors") {
                    Some(e) => Err(e[0]["message"]
                        .as_str()
                        .map_or_else(|| e.to_string(), str::to_owned)),
                    None => Ok(canonical_users(&v["data"])),
                }
            }
        };
        let a = post(ours, mine, Some(KEY)).await.map_err(Refused::Ours)?;
        let b = post(theirs, other, None).await.map_err(Refused::Theirs)?;
        if a != b || a.is_empty() {
            return Err(Refused::Differ(format!("ours {a:?}, {label}'s {b:?}")));
        }
        users += a.len();
    }
    Ok(format!("3 requests, {users} users with their identities"))
}

/// Every user object in an answer, as (id, unionid, Mini Program openids, OA openids), sorted.
fn canonical_users(data: &Value) -> Vec<(String, String, Vec<String>, Vec<String>)> {
    fn openids(list: &Value) -> Vec<String> {
        let mut v: Vec<String> = list
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| i["openid"].to_string())
            .collect();
        v.sort();
        v
    }
    fn walk(v: &Value, out: &mut Vec<(String, String, Vec<String>, Vec<String>)>) {
        match v {
            Value::Object(o) if o.contains_key("miniProgramIdentities") => out.push((
                o["id"].to_string(),
                o["unionid"].to_string(),
                openids(&o["miniProgramIdentities"]),
                openids(&o["officialAccountIdentities"]),
            )),
            Value::Object(o) => o.values().for_each(|v| walk(v, out)),
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(data, &mut out);
    out.sort();
    out
}
