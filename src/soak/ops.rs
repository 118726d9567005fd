//! The soak's operations, each what a client of the service does: logins of every kind (new
//! people, returning ones, a second app, the unionid showing up later), refreshes, reads, the
//! OA's webhook pushes and single message sends. Each step goes to the next instance
//! round-robin, so a login started on one instance finishes on another.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;

use super::client::{Client, Fail, timed};
use super::fleet::ADMIN_KEY;
use super::logins::{logged_in, mobile_login, mp_login, oa_login, server_driven, website_login};
use super::people::{People, Rng, name};
use crate::config::{SANDBOX_ENCODING_AES_KEY, SANDBOX_WEBHOOK_TOKEN};
use crate::wechat::sandbox::Sandbox;
use crate::wechat::sandbox::messages::TEMPLATE_SHIPPED;
use crate::wechat::webhook::{self, MsgCrypt};

pub(crate) const MP_A: &str = "wxsandboxminiapp01";
pub(crate) const MP_B: &str = "wxsandboxminiapp02";
pub(crate) const OA: &str = "wxsandboxofficial1";
pub(crate) const UNBOUND: &str = "wxsandboxunbound01";

/// What a login (or a refresh) asks for.
pub(crate) const PAYLOAD: &str = "{ accessToken refreshToken newUser user { id unionid } }";

/// A single `sendWeChatMessage`: its text (unique) and what the service answered.
#[derive(Clone, Debug)]
pub(crate) struct Single {
    pub text: String,
    pub status: Option<String>,
}

/// What the operations share.
pub(crate) struct Ctx {
    pub client: Client,
    pub people: People,
    pub sandbox: Sandbox,
    /// `http://127.0.0.1:p/sandbox/wechat`.
    pub wechat: String,
    pub landing: String,
    pub singles: Mutex<Vec<Single>>,
    single_seq: AtomicU64,
}

impl Ctx {
    pub fn new(client: Client, sandbox: Sandbox, wechat: String, landing: String) -> Self {
        Self {
            client,
            people: People::default(),
            sandbox,
            wechat,
            landing,
            singles: Mutex::new(Vec::new()),
            single_seq: AtomicU64::new(0),
        }
    }
}

/// The operations and how often each is picked (out of their sum).
pub(crate) const MIX: &[(&str, u32)] = &[
    ("mp login new", 10),
    ("mp login returning", 12),
    ("mp login 2nd app", 5),
    ("oa login base new", 5),
    ("oa login userinfo", 6),
    ("oa server-driven", 3),
    ("website login", 3),
    ("mobile app login", 3),
    ("unbound mp login", 2),
    ("refresh", 8),
    ("me", 15),
    ("admin user(id)", 6),
    ("admin users", 3),
    ("webhook subscribe", 5),
    ("webhook unsubscribe", 2),
    ("send message", 2),
];

/// Picks an operation by [`MIX`] and runs it.
pub(crate) async fn run_one(ctx: &Ctx, rng: &mut Rng) {
    let total: u32 = MIX.iter().map(|(_, w)| w).sum();
    let mut roll = (rng.next() % u64::from(total)) as u32;
    let op = MIX
        .iter()
        .find(|(_, w)| {
            if roll < *w {
                true
            } else {
                roll -= w;
                false
            }
        })
        .map_or("me", |(op, _)| *op);
    let people = &ctx.people;
    match op {
        "mp login new" => {
            // Half of them are people the service met elsewhere first (an OA login without a
            // unionid, a follow), who now open the Mini Program.
            let known = match rng.below(2) {
                0 => people.pick(rng, |p| !p.mp_a && (p.oa_base || p.follows)),
                _ => None,
            };
            let i = known.unwrap_or_else(|| people.add());
            mp_login(ctx, op, i, MP_A).await;
        }
        "mp login returning" => match people.pick(rng, |p| p.mp_a) {
            Some(i) => mp_login(ctx, op, i, MP_A).await,
            None => mp_login(ctx, "mp login new", people.add(), MP_A).await,
        },
        "mp login 2nd app" => match people.pick(rng, |p| p.mp_a && !p.mp_b) {
            Some(i) => mp_login(ctx, op, i, MP_B).await,
            None => mp_login(ctx, "mp login new", people.add(), MP_A).await,
        },
        "oa login base new" => oa_login(ctx, op, people.add(), "snsapi_base").await,
        "oa login userinfo" => {
            // The unionid showing up later: people seen without it, with a Mini Program user
            // of their own by now (a merge), else anyone, else someone new.
            let i = people
                .pick(rng, |p| p.oa_base && !p.oa_userinfo && p.mp_a)
                .or_else(|| people.pick(rng, |p| !p.oa_userinfo))
                .unwrap_or_else(|| people.add());
            oa_login(ctx, op, i, "snsapi_userinfo").await;
        }
        "oa server-driven" => {
            let i = people.pick(rng, |p| p.mp_a).unwrap_or_else(|| people.add());
            server_driven(ctx, op, i).await;
        }
        "website login" => {
            let i = people.pick(rng, |p| p.mp_a).unwrap_or_else(|| people.add());
            website_login(ctx, op, i).await;
        }
        "mobile app login" => {
            let i = people.pick(rng, |_| true).unwrap_or_else(|| people.add());
            mobile_login(ctx, op, i).await;
        }
        "unbound mp login" => {
            let i = people.pick(rng, |_| true).unwrap_or_else(|| people.add());
            mp_login(ctx, op, i, UNBOUND).await;
        }
        "refresh" => match people.pick(rng, |p| p.refresh.is_some()) {
            Some(i) => refresh(ctx, op, i).await,
            None => mp_login(ctx, "mp login new", people.add(), MP_A).await,
        },
        "me" => match people.pick(rng, |p| p.access.is_some()) {
            Some(i) => me(ctx, op, i).await,
            None => mp_login(ctx, "mp login new", people.add(), MP_A).await,
        },
        "admin user(id)" => match people.pick(rng, |p| p.user_id.is_some()) {
            Some(i) => admin_user(ctx, op, i).await,
            None => mp_login(ctx, "mp login new", people.add(), MP_A).await,
        },
        "admin users" => admin_users(ctx, op).await,
        "webhook subscribe" => {
            let i = people
                .pick(rng, |p| !p.follows && p.user_id.is_some())
                .unwrap_or_else(|| people.add());
            follow(ctx, op, i, true).await;
        }
        "webhook unsubscribe" => match people.pick(rng, |p| p.follows) {
            Some(i) => follow(ctx, op, i, false).await,
            None => follow(ctx, "webhook subscribe", people.add(), true).await,
        },
        "send message" => match people.pick(rng, |p| p.follows && p.unionid.is_some()) {
            Some(i) => send_message(ctx, op, i).await,
            None => follow(ctx, "webhook subscribe", people.add(), true).await,
        },
        _ => mp_login(ctx, "mp login new", people.add(), MP_A).await,
    }
}

async fn refresh(ctx: &Ctx, op: &'static str, i: usize) {
    let Some(token) = ctx.people.take_refresh(i) else {
        return;
    };
    timed(&ctx.client, op, &[], async {
        let c = &ctx.client;
        let q = format!("mutation($t: String!) {{ refreshSession(refreshToken: $t) {PAYLOAD} }}");
        let payload = c
            .gql(c.pick(), None, &q, json!({ "t": token }), "refreshSession")
            .await?;
        logged_in(ctx, i, &payload);
        Ok(())
    })
    .await;
}

async fn me(ctx: &Ctx, op: &'static str, i: usize) {
    let person = ctx.people.get(i);
    let Some(token) = person.access else { return };
    timed(&ctx.client, op, &[], async {
        let c = &ctx.client;
        let q = "{ me { id unionid miniProgramIdentities { appId } officialAccountIdentities { appId } } }";
        let user = c.gql(c.pick(), Some(&token), q, json!({}), "me").await?;
        ctx.people.answered(i, &user, None, None);
        Ok(())
    })
    .await;
}

async fn admin_user(ctx: &Ctx, op: &'static str, i: usize) {
    let Some(id) = ctx.people.get(i).user_id else {
        return;
    };
    timed(&ctx.client, op, &[], async {
        let c = &ctx.client;
        let q = "query($id: ID!) { user(id: $id) { id unionid mergedInto { id } miniProgramIdentities { appId openid } } }";
        c.gql(c.pick(), Some(ADMIN_KEY), q, json!({ "id": id }), "user")
            .await?;
        Ok(())
    })
    .await;
}

async fn admin_users(ctx: &Ctx, op: &'static str) {
    timed(&ctx.client, op, &[], async {
        let c = &ctx.client;
        let q = "{ users(first: 20, orderBy: CREATED_AT_DESC, filter: { hasUnionid: true }) { edges { node { id unionid officialAccountIdentities { subscribed } } } } }";
        c.gql(c.pick(), Some(ADMIN_KEY), q, json!({}), "users")
            .await?;
        Ok(())
    })
    .await;
}

/// The person follows (or stops following) the OA in WeChat (the sandbox, without its own
/// push), and the soak pushes the event to the next instance, signed and encrypted as WeChat
/// does (safe mode).
async fn follow(ctx: &Ctx, op: &'static str, i: usize, subscribe: bool) {
    timed(&ctx.client, op, &[], async {
        let c = &ctx.client;
        let path = if subscribe { "follow" } else { "unfollow" };
        let body = json!({ "appId": OA, "user": name(i), "silent": true });
        let followed = c
            .sandbox_post(&format!("{}/{path}", ctx.wechat), body)
            .await?;
        let openid = followed["openid"].as_str().unwrap_or_default().to_owned();
        let event = if subscribe {
            "subscribe"
        } else {
            "unsubscribe"
        };
        let (query, body) = signed_push(&openid, event)?;
        let answer = c
            .push(c.pick(), &format!("/wechat/{OA}/events?{query}"), body)
            .await?;
        if answer != "success" {
            return Err(Fail::Other(format!("push answered `{answer}`")));
        }
        ctx.people.update(i, |p| {
            p.follows = subscribe;
            if let Some(u) = followed["unionid"].as_str() {
                p.unionid = Some(u.to_owned());
            }
        });
        Ok(())
    })
    .await;
}

/// A `sendWeChatMessage` to a follower (by unionid) with a text of its own; the refusals a
/// follower who just left (or whose follow is not processed yet) gets are expected.
async fn send_message(ctx: &Ctx, op: &'static str, i: usize) {
    let Some(unionid) = ctx.people.get(i).unionid else {
        return;
    };
    let n = ctx.single_seq.fetch_add(1, Ordering::Relaxed);
    let text = format!("soak-s{n}");
    let expected = ["NOT_FOLLOWING", "NO_IDENTITY", "NOT_FOUND", "UNREACHABLE"];
    timed(&ctx.client, op, &expected, async {
        let c = &ctx.client;
        let q = "mutation($i: SendWeChatMessageInput!) { sendWeChatMessage(input: $i) { id status error { code } } }";
        let data = json!({ "thing1": { "value": text }, "time2": { "value": "15:01" } });
        let input = json!({ "unionid": unionid, "appId": OA, "templateId": TEMPLATE_SHIPPED, "data": data });
        let result = c
            .gql(c.pick(), Some(ADMIN_KEY), q, json!({ "i": input }), "sendWeChatMessage")
            .await;
        let status = result
            .as_ref()
            .ok()
            .and_then(|m| m["status"].as_str().map(str::to_owned));
        ctx.singles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Single {
                text: text.clone(),
                status: status.clone(),
            });
        let message = result?;
        match message["error"]["code"].as_str() {
            Some(code @ ("WECHAT_UNAVAILABLE" | "WECHAT_RATE_LIMITED")) => {
                Err(Fail::Wechat(code.to_owned()))
            }
            Some(code) if status.as_deref() == Some("FAILED") => Err(Fail::Other(code.to_owned())),
            // WeChat did not answer in time (a delay fault): never sent again.
            _ if status.as_deref() == Some("UNCERTAIN") => Err(Fail::Wechat("UNCERTAIN".into())),
            _ => Ok(()),
        }
    })
    .await;
}

/// The query and body of a push of `event` from `openid` to the OA's webhook, in safe mode.
fn signed_push(openid: &str, event: &str) -> Result<(String, String), Fail> {
    let now = chrono::Utc::now().timestamp();
    let xml = format!(
        "<xml><ToUserName><![CDATA[gh_sandbox0000]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event></xml>"
    );
    let timestamp = now.to_string();
    let nonce = crate::crypto::hex(&crate::crypto::random_bytes::<5>());
    let crypt =
        MsgCrypt::new(SANDBOX_ENCODING_AES_KEY, OA).map_err(|e| Fail::Other(e.to_string()))?;
    let encrypt = crypt.encrypt(&xml, &crate::crypto::random_bytes::<16>());
    let msg_signature = webhook::msg_signature(SANDBOX_WEBHOOK_TOKEN, &timestamp, &nonce, &encrypt);
    let signature = webhook::signature(SANDBOX_WEBHOOK_TOKEN, &timestamp, &nonce);
    let mut url = reqwest::Url::parse("http://x/").map_err(|e| Fail::Other(e.to_string()))?;
    url.query_pairs_mut()
        .append_pair("signature", &signature)
        .append_pair("timestamp", &timestamp)
        .append_pair("nonce", &nonce)
        .append_pair("encrypt_type", "aes")
        .append_pair("msg_signature", &msg_signature);
    let body = format!("<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>");
    Ok((url.query().unwrap_or_default().to_owned(), body))
}

/// A query parameter of `url`.
pub(crate) fn query_param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
