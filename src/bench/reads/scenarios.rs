//! The reads of `bench-reads`, each as our GraphQL query, PostGraphile v4's and v5's, and
//! the floor's SQL statements, over a spread of seeded users.

use serde_json::{Value, json};

use super::KEY;
use super::floor::{Read, floor_statements};
use crate::bench::gql;

/// The fields asked of a user in every scenario, ours and PostGraphile's (whose relations are
/// aliased to our names).
const OURS: &str = "fragment U on User { id unionid nickname createdAt miniProgramIdentities { id appId openid unionid } officialAccountIdentities { id appId openid subscribed } }";
const V4: &str = "fragment U on User { id unionid nickname createdAt miniProgramIdentities: miniProgramIdentitiesByUserIdList { id appId openid unionid } officialAccountIdentities: officialAccountIdentitiesByUserIdList { id appId openid subscribed } }";
/// v5's amber preset names the primary key `rowId` (`id` is the global Node id): aliased back.
const V5: &str = "fragment U on User { id: rowId unionid nickname createdAt miniProgramIdentities: miniProgramIdentitiesByUserIdList { id: rowId appId openid unionid } officialAccountIdentities: officialAccountIdentitiesByUserIdList { id: rowId appId openid subscribed } }";

/// One read, as our query, PostGraphile v4's and v5's, with the request bodies wrk cycles
/// through, and the floor's statements (pgbench draws among them).
pub struct Scenario {
    pub key: &'static str,
    pub name: &'static str,
    pub ours: Vec<String>,
    /// PostGraphile v4's and v5's bodies, in that order.
    pub peers: [Vec<String>; 2],
    pub floor: Vec<String>,
}

fn bodies(query: &str, fragment: &str, variables: impl Iterator<Item = Value>) -> Vec<String> {
    let query = format!("{query} {fragment}");
    variables
        .map(|v| json!({ "query": query, "variables": v }).to_string())
        .collect()
}

/// The five reads, with request bodies over a spread of seeded users.
pub async fn scenarios(
    client: &reqwest::Client,
    ours: &str,
    url: &str,
) -> Result<Vec<Scenario>, String> {
    let sample = sample_users(url, 2000).await?;
    let ids = || sample.iter().map(|(id, _)| id.clone());
    let unionids = || sample.iter().filter_map(|(_, u)| u.clone());
    // Page starts: the cursors of our first pages, and the `id > last id` twin of PostGraphile
    // and the floor.
    let mut pages: Vec<(Value, Value)> = vec![(Value::Null, json!(""))];
    let walk = "query($after: String) { users(first: 100, after: $after) { edges { node { id } } pageInfo { endCursor } } }";
    for _ in 0..100 {
        let after = pages.last().map_or(Value::Null, |p| p.0.clone());
        let data = gql(client, ours, Some(KEY), walk, json!({ "after": after })).await?;
        let page = &data["users"];
        let last = page["edges"]
            .as_array()
            .and_then(|e| e.last())
            .map(|e| e["node"]["id"].clone());
        match (page["pageInfo"]["endCursor"].clone(), last) {
            (cursor @ Value::String(_), Some(id)) => pages.push((cursor, id)),
            _ => break,
        }
    }
    let batches: Vec<Vec<String>> = sample
        .chunks(50)
        .map(|c| c.iter().map(|(id, _)| id.clone()).collect())
        .collect();
    let (id_list, unionid_list): (Vec<String>, Vec<String>) =
        (ids().collect(), unionids().collect());
    let afters: Vec<Option<&str>> = pages
        .iter()
        .map(|p| p.1.as_str().filter(|a| !a.is_empty()))
        .collect();
    let floor = |reads: Vec<Read>| floor_statements(&reads, OURS);
    Ok(vec![
        Scenario {
            key: "a",
            name: "user(id) + identities",
            ours: bodies("query($id: ID!) { user(id: $id) { ...U } }", OURS, ids().map(|id| json!({ "id": id }))),
            peers: [
                bodies("query($id: String!) { user: userById(id: $id) { ...U } }", V4, ids().map(|id| json!({ "id": id }))),
                bodies("query($id: String!) { user: userByRowId(rowId: $id) { ...U } }", V5, ids().map(|id| json!({ "id": id }))),
            ],
            floor: floor(id_list.iter().map(|id| Read::UserById(id)).collect())?,
        },
        Scenario {
            key: "b",
            name: "userByUnionid",
            ours: bodies("query($u: String!) { userByUnionid(unionid: $u) { ...U } }", OURS, unionids().map(|u| json!({ "u": u }))),
            peers: [
                bodies("query($u: String!) { allUsersList(condition: {unionid: $u, mergedInto: null}, first: 1) { ...U } }", V4, unionids().map(|u| json!({ "u": u }))),
                bodies("query($u: String!) { allUsersList(condition: {unionid: $u, mergedInto: null}, first: 1) { ...U } }", V5, unionids().map(|u| json!({ "u": u }))),
            ],
            floor: floor(unionid_list.iter().map(|u| Read::UserByUnionid(u)).collect())?,
        },
        Scenario {
            key: "c",
            name: "page of 100 users",
            ours: bodies("query($after: String) { users(first: 100, after: $after) { edges { cursor node { ...U } } pageInfo { hasNextPage endCursor } } }", OURS, pages.iter().map(|p| json!({ "after": p.0 }))),
            peers: [
                bodies("query($after: String!) { allUsers(first: 100, orderBy: PRIMARY_KEY_ASC, condition: {mergedInto: null}, filter: {id: {greaterThan: $after}}) { edges { cursor node { ...U } } pageInfo { hasNextPage endCursor } } }", V4, pages.iter().map(|p| json!({ "after": p.1 }))),
                bodies("query($after: String!) { allUsers(first: 100, orderBy: PRIMARY_KEY_ASC, condition: {mergedInto: null}, filter: {rowId: {greaterThan: $after}}) { edges { cursor node { ...U } } pageInfo { hasNextPage endCursor } } }", V5, pages.iter().map(|p| json!({ "after": p.1 }))),
            ],
            floor: floor(afters.iter().map(|&after| Read::Page { after, first: 100 }).collect())?,
        },
        Scenario {
            key: "d",
            name: "_entities, 50 users",
            ours: bodies("query($r: [_Any!]!) { _entities(representations: $r) { ... on User { ...U } } }", OURS, batches.iter().map(|b| json!({ "r": b.iter().map(|id| json!({ "__typename": "User", "id": id })).collect::<Vec<_>>() }))),
            peers: [
                bodies("query($ids: [String!]!) { allUsersList(filter: {id: {in: $ids}}) { ...U } }", V4, batches.iter().map(|b| json!({ "ids": b }))),
                bodies("query($ids: [String!]!) { allUsersList(filter: {rowId: {in: $ids}}) { ...U } }", V5, batches.iter().map(|b| json!({ "ids": b }))),
            ],
            floor: floor(batches.iter().map(|b| Read::Entities(b)).collect())?,
        },
        // A selection outside the compiled subset (`mergedInto` is the resolvers' alone): every
        // build answers it on the resolvers, so ours against `--external` builds says whether
        // such reads got slower. Not asked of the peers; no floor (no compiled statement).
        Scenario {
            key: "e",
            name: "user(id) + mergedInto",
            ours: bodies("query($id: ID!) { user(id: $id) { ...U mergedInto { id } } }", OURS, ids().map(|id| json!({ "id": id }))),
            peers: [Vec::new(), Vec::new()],
            floor: Vec::new(),
        },
    ])
}

/// `n` users spread over the table: (id, unionid).
async fn sample_users(url: &str, n: usize) -> Result<Vec<(String, Option<String>)>, String> {
    use diesel::sql_types::{Nullable, Text};
    use diesel_async::{AsyncConnection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        id: String,
        #[diesel(sql_type = Nullable<Text>)]
        unionid: Option<String>,
    }
    let mut conn = crate::db::PgConn::establish(url)
        .await
        .map_err(|e| e.to_string())?;
    let rows: Vec<Row> = diesel::sql_query(format!(
        "SELECT id, unionid FROM users WHERE merged_into IS NULL ORDER BY md5(id) LIMIT {n}"
    ))
    .load(&mut conn)
    .await
    .map_err(|e| e.to_string())?;
    Ok(rows.into_iter().map(|r| (r.id, r.unionid)).collect())
}
