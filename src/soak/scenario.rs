//! The soak's events beside the traffic: WeChat's faults injected now and then, one follower
//! sync, one bulk send, and the instance killed with SIGKILL and started again.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::client::Fail;
use super::fleet::ADMIN_KEY;
use super::ops::{Ctx, OA};
use crate::wechat::sandbox::messages::TEMPLATE_SHIPPED;

/// The text of the bulk send (how its messages are told apart in the sandbox's log).
pub(crate) const BULK_TEXT: &str = "soak-bulk";

/// Faults injected, by what they were (`path errcode` / `path delay`), in calls.
#[derive(Default)]
pub(crate) struct Faults {
    pub injected: Mutex<BTreeMap<String, u32>>,
}

impl Faults {
    pub fn total(&self) -> u32 {
        lock(&self.injected).values().sum()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Injects a fault into the sandbox (`POST /faults`): `count` calls of `path` answer `errcode`,
/// or wait `delay_ms` first, after letting `after` calls through.
pub(crate) async fn inject(
    ctx: &Ctx,
    faults: &Faults,
    path: &str,
    fault: Fault,
    count: u32,
    after: u32,
) -> Result<(), String> {
    let (what, body) = match fault {
        Fault::Errcode(e) => (
            format!("{path} errcode {e}"),
            json!({ "path": path, "errcode": e, "count": count, "after": after }),
        ),
        Fault::Delay(ms) => (
            format!("{path} delay {ms} ms"),
            json!({ "path": path, "delayMs": ms, "count": count, "after": after }),
        ),
    };
    ctx.client
        .sandbox_post(&format!("{}/faults", ctx.wechat), body)
        .await
        .map_err(|e| format!("injecting a fault: {e:?}"))?;
    *lock(&faults.injected).entry(what).or_default() += count;
    Ok(())
}

/// A fault: WeChat's error, or a delay longer than the service's WeChat timeout.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Fault {
    Errcode(i64),
    Delay(u64),
}

/// The faults the injector cycles through on the login and webhook paths (the sync's and the
/// bulk send's come with them): WeChat busy (-1), the API quota (45009), and a delay past the
/// service's timeout.
pub(crate) fn cycle(delay_ms: u64) -> Vec<(&'static str, Fault, u32)> {
    vec![
        ("/sns/jscode2session", Fault::Errcode(-1), 2),
        ("/sns/oauth2/access_token", Fault::Errcode(45009), 1),
        ("/sns/jscode2session", Fault::Delay(delay_ms), 1),
        ("/sns/userinfo", Fault::Errcode(-1), 1),
        ("/sns/jscode2session", Fault::Errcode(45009), 1),
        ("/sns/oauth2/access_token", Fault::Delay(delay_ms), 1),
        ("/cgi-bin/user/info", Fault::Errcode(-1), 1),
        ("/cgi-bin/message/template/send", Fault::Errcode(-1), 1),
        ("/cgi-bin/message/template/send", Fault::Delay(delay_ms), 1),
    ]
}

/// An admin call on the first live instance that answers (the scenario's own calls: they
/// must get through an instance being down).
pub(crate) async fn admin(
    ctx: &Ctx,
    query: &str,
    variables: Value,
    field: &str,
) -> Result<Value, String> {
    let mut last = String::new();
    for _ in 0..ctx.client.fleet.instances.len() * 2 {
        let instance = ctx.client.pick();
        match ctx
            .client
            .gql(instance, Some(ADMIN_KEY), query, variables.clone(), field)
            .await
        {
            Ok(v) => return Ok(v),
            Err(Fail::Down) => continue,
            Err(e) => last = format!("{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!("{field}: {last}"))
}

/// Registers the bulk send's template with the service (the sandbox knows it already).
pub(crate) async fn register_template(ctx: &Ctx) -> Result<(), String> {
    let q = "mutation($i: RegisterWeChatMessageTemplateInput!) { registerWeChatMessageTemplate(input: $i) { templateId } }";
    let input = json!({ "appId": OA, "templateId": TEMPLATE_SHIPPED, "channel": "OFFICIAL_ACCOUNT_TEMPLATE",
        "fields": [{ "key": "thing1", "type": "THING" }, { "key": "time2", "type": "TIME" }] });
    admin(
        ctx,
        q,
        json!({ "i": input }),
        "registerWeChatMessageTemplate",
    )
    .await?;
    Ok(())
}

/// People whose unionid only the follower sync shows: each logs into the OA with
/// `snsapi_base` (a user without a unionid) and into the Mini Program (another user, with it);
/// no operation picks them afterwards, so the sync is what merges them.
const SYNC_MERGES: usize = 20;

/// The follower sync: `SYNC_MERGES` people prepared for it, then the soak's people so far and
/// 1,000 it has not met yet (who log in later) follow the OA (`p0`, `p1`, …), with faults on
/// the follower API (45009 pauses the sync, -1 fails a page that is tried again); returns its
/// id and the number of followers.
pub(crate) async fn start_sync(ctx: &Ctx, faults: &Faults) -> Result<(String, u64), String> {
    for _ in 0..SYNC_MERGES {
        let i = ctx.people.add_reserved();
        super::logins::oa_login(ctx, "oa login base new", i, "snsapi_base").await;
        super::logins::mp_login(ctx, "mp login new", i, super::ops::MP_A).await;
    }
    let followers = ctx.people.len() as u64 + 1000;
    ctx.sandbox.add_followers(OA, "p", 0, followers)?;
    inject(
        ctx,
        faults,
        "/cgi-bin/user/info/batchget",
        Fault::Errcode(45009),
        1,
        3,
    )
    .await?;
    inject(ctx, faults, "/cgi-bin/user/get", Fault::Errcode(-1), 1, 0).await?;
    let q = "mutation($a: String!) { syncOfficialAccountFollowers(appId: $a) { id } }";
    let sync = admin(ctx, q, json!({ "a": OA }), "syncOfficialAccountFollowers").await?;
    Ok((
        sync["id"].as_str().unwrap_or_default().to_owned(),
        followers,
    ))
}

/// The follower sync as it stands.
pub(crate) async fn sync_status(ctx: &Ctx, id: &str) -> Result<Value, String> {
    let q = "query($id: ID!) { wechatFollowerSync(id: $id) { status pages followersSeen usersCreated usersMerged errors lastError } }";
    admin(ctx, q, json!({ "id": id }), "wechatFollowerSync").await
}

/// The bulk send to every user with an OA identity, with faults on its send API; its job id.
pub(crate) async fn start_bulk(
    ctx: &Ctx,
    faults: &Faults,
    delay_ms: u64,
) -> Result<String, String> {
    let q = "mutation($i: SendWeChatMessagesInput!) { sendWeChatMessages(input: $i) { id } }";
    let data = json!({ "thing1": { "value": BULK_TEXT }, "time2": { "value": "15:01" } });
    let input = json!({ "filter": {}, "appId": OA, "templateId": TEMPLATE_SHIPPED, "data": data, "idempotencyKey": "soak-bulk" });
    let job = admin(ctx, q, json!({ "i": input }), "sendWeChatMessages").await?;
    let path = "/cgi-bin/message/template/send";
    inject(ctx, faults, path, Fault::Errcode(-1), 2, 100).await?;
    inject(ctx, faults, path, Fault::Errcode(45009), 1, 300).await?;
    inject(ctx, faults, path, Fault::Delay(delay_ms), 1, 500).await?;
    Ok(job["id"].as_str().unwrap_or_default().to_owned())
}

/// The bulk job as it stands.
pub(crate) async fn bulk_status(ctx: &Ctx, id: &str) -> Result<Value, String> {
    let q = "query($id: ID!) { wechatMessageJob(id: $id) { status total queued sending sent delivered failed uncertain } }";
    admin(ctx, q, json!({ "id": id }), "wechatMessageJob").await
}

/// Kills an instance with SIGKILL and starts it again on its port after `down_for`: the one
/// holding the lease of a running follower sync or bulk job if one does within `look_for` (its
/// job must be resumed elsewhere; a job paused by WeChat's quota is held by nobody), else
/// `fallback`. Returns what happened, for the report.
pub(crate) async fn kill_and_restart(
    ctx: &Ctx,
    database_url: &str,
    (fallback, look_for): (usize, Duration),
    down_for: Duration,
) -> Result<String, String> {
    let fleet = &ctx.client.fleet;
    let looking = Instant::now();
    let holder = loop {
        let owners = super::checks::running_job_owners(database_url).await?;
        let holder = fleet.instances.iter().find_map(|i| {
            let tag = format!("-{}-", i.pid());
            owners
                .iter()
                .find(|(_, owner)| owner.contains(&tag))
                .map(|(kind, _)| (i.index, kind.clone()))
        });
        if holder.is_some() || looking.elapsed() >= look_for {
            break holder;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (victim, why) = match holder {
        Some((index, kind)) => (index, format!("it held the running {kind} job")),
        None => (fallback, "no job was running".to_owned()),
    };
    // WeChat's own pushes (delivery reports) go to an instance that stays up.
    let target = (victim + 1) % fleet.instances.len();
    ctx.sandbox.set_push_target(&fleet.instances[target].base);
    let pid = fleet.instances[victim].pid();
    fleet.kill(victim).await?;
    let killed_at = Instant::now();
    tokio::time::sleep(down_for).await;
    fleet.restart(victim).await?;
    Ok(format!(
        "instance {victim} (pid {pid}) SIGKILLed ({why}); up again (pid {}) {:.1} s later",
        fleet.instances[victim].pid(),
        killed_at.elapsed().as_secs_f64()
    ))
}
