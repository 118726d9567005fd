//! What a federation gateway is shown (`[federation]`).

use serde::Deserialize;

/// Federation settings (`[federation]`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FederationConfig {
    /// Root fields to publish to gateways besides the end-user ones (`me`, the logins, …):
    /// `_service { sdl }` marks every other root field `@inaccessible`, so a supergraph's
    /// clients cannot call it. Each name added here is callable by **every client of every
    /// gateway that composes this subgraph**, with the rights of whatever `Authorization` the
    /// gateway forwards: publish an admin or service field only if the gateway forwards its
    /// callers' own credentials and never a key of its own. Names must be root fields
    /// (`users`, `wechatAccessToken`, …); an unknown name stops the start.
    pub expose: Vec<String>,
}
