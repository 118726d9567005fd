//! The per-request budget of costly root fields: aliases make one request ask for the same
//! field thousands of times, and some fields cost a WeChat call (logins) or a stored row (OA
//! states). Counted on the parsed document before the schema runs it, so an over-budget
//! request is refused before any resolver runs: nothing is called, nothing is written.
//!
//! (Not a schema extension: any extension puts every field of every request through
//! async-graphql's hook chain, which cost the login benchmark about a tenth of its speed.)

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Field};
use async_graphql::{Pos, Positioned, ServerError, ServerResult, Variables};
use async_graphql_value::{ConstValue, Value};

use super::error::{ErrorCode, refuse, refuse_with};
use super::walk::{Counter, MAX_NESTING, MAX_VISITS, Uncountable};
use super::weights::{self, INTROSPECTION_FIELDS, Weighing};

/// Root fields that issue a session (each login calls WeChat).
pub const LOGIN_FIELDS: &[&str] = &[
    "loginWithMiniProgram",
    "loginWithOfficialAccount",
    "loginWithWebsite",
    "loginWithMobileApp",
    "redeemLoginTicket",
    "refreshSession",
];

/// Root fields that store an OA web-authorization state (the deprecated query included).
pub const STATE_FIELDS: &[&str] = &[
    "startOfficialAccountLogin",
    "officialAccountAuthorizeUrl",
    "startWebsiteLogin",
];

/// Root fields that may call WeChat's server API (a token or ticket refresh, a follower lookup,
/// a send), start a job, or write a user's subscribe permissions.
pub const WECHAT_FIELDS: &[&str] = &[
    "wechatAccessToken",
    "syncOfficialAccountFollower",
    "syncOfficialAccountFollowers",
    "sendWeChatMessage",
    "sendWeChatMessages",
    "recordWeChatSubscribeConsent",
    "decryptMiniProgramData",
    "wechatJsSdkConfig",
];

/// Root fields that may exchange a phone code (paid at WeChat): `linkPhoneNumber`, and
/// `loginWithMiniProgram` when its input has a `phoneCode`. At most
/// [`PHONE_EXCHANGES_PER_REQUEST`] per request.
pub const PHONE_FIELDS: &[&str] = &["linkPhoneNumber", "loginWithMiniProgram"];

/// Phone exchanges allowed in one request, aliases included.
pub const PHONE_EXCHANGES_PER_REQUEST: usize = 1;

/// Root fields that write the caller's own profile: one per request (aliases would make one
/// request thousands of writes of one row).
pub const PROFILE_FIELDS: &[&str] = &["updateMyProfile"];

/// Root fields that end logins or change the signing keys: one per request (aliases would make
/// one request thousands of lookups and transactions).
pub const SESSION_FIELDS: &[&str] = &["logout", "endSession", "revokeSessions", "rotateSigningKey"];

/// Root fields that take a person out or change where events go (an endpoint's URL is
/// resolved): one per request.
pub const PEOPLE_FIELDS: &[&str] = &[
    "disableUser",
    "enableUser",
    "deleteUser",
    "registerEventEndpoint",
    "updateEventEndpoint",
    "deleteEventEndpoint",
];

/// At most `logins` login fields, `states` state fields and `wechat` server-side fields per
/// operation, no introspection when it is off, and the schema fields and `_entities` weighed
/// (see [`super::weights`]).
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// `limits.logins_per_request`.
    pub logins: usize,
    /// `limits.states_per_request`.
    pub states: usize,
    /// `limits.wechat_fields_per_request`.
    pub wechat: usize,
    /// `graphql.introspection`.
    pub introspection: bool,
    /// `graphql.introspection_fields_per_request`.
    pub introspection_fields: usize,
    /// `graphql.max_complexity` (what `_entities` weighs is held against it).
    pub max_complexity: usize,
    /// `graphql.public_sdl`.
    pub public_sdl: bool,
}

impl Budget {
    /// What the schema's built-in fields may weigh under this budget.
    fn weighing(&self) -> Weighing {
        Weighing {
            introspection_fields: self.introspection_fields,
            max_complexity: self.max_complexity,
        }
    }

    /// The budget of `config` (`[limits]` and `graphql.introspection`).
    pub fn of(config: &crate::config::Config) -> Self {
        let limits = &config.limits;
        Self {
            logins: limits.logins_per_request,
            states: limits.states_per_request,
            wechat: limits.wechat_fields_per_request,
            introspection: config.graphql.introspection,
            introspection_fields: config.graphql.introspection_fields_per_request,
            max_complexity: config.graphql.max_complexity,
            public_sdl: config.graphql.public_sdl,
        }
    }

    /// Parses `request`'s document (kept in the request, so the schema does not parse it
    /// again) and checks it, and that `access` may read the SDL if it asks for it. A document
    /// that does not parse is left for the schema to report.
    pub fn check_request(
        &self,
        request: &mut async_graphql::Request,
        access: &crate::identity::access::Access,
    ) -> ServerResult<()> {
        let variables = std::mem::take(&mut request.variables);
        let checked = match request.parsed_query() {
            Ok(doc) => self
                .check(doc, &variables)
                .and_then(|()| weights::check_sdl_access(doc, self.public_sdl, access)),
            Err(_) => Ok(()),
        };
        request.variables = variables;
        checked
    }

    fn check(&self, doc: &ExecutableDocument, variables: &Variables) -> ServerResult<()> {
        let budgets: [(&[&str], usize, &str, &str); 6] = [
            (
                LOGIN_FIELDS,
                self.logins,
                "login mutation",
                "limits.logins_per_request",
            ),
            (
                STATE_FIELDS,
                self.states,
                "login state field",
                "limits.states_per_request",
            ),
            (
                WECHAT_FIELDS,
                self.wechat,
                "WeChat server-side field",
                "limits.wechat_fields_per_request",
            ),
            (PROFILE_FIELDS, 1, "profile update", "one per request"),
            (
                SESSION_FIELDS,
                1,
                "session or key change",
                "one per request",
            ),
            (
                PEOPLE_FIELDS,
                1,
                "user or endpoint change",
                "one per request",
            ),
        ];
        for (_, operation) in doc.operations.iter() {
            if !self.introspection {
                let mut counter = Counter::new(doc, INTROSPECTION_FIELDS);
                // Too deep or too large to count: the budgets below refuse it all the same.
                if counter
                    .count(&operation.node.selection_set.node, 0)
                    .is_ok_and(|n| n > 0)
                {
                    return Err(refuse_with(
                        ErrorCode::Forbidden,
                        "introspection is turned off on this server (graphql.introspection)".into(),
                        counter.first,
                    ));
                }
            }
            weights::check(
                &self.weighing(),
                doc,
                &operation.node.selection_set.node,
                variables,
            )?;
            for (names, max, what, key) in budgets {
                let mut counter = Counter::new(doc, names);
                let found = counter
                    .count(&operation.node.selection_set.node, 0)
                    .map_err(|why| {
                        refuse(
                            match why {
                                Uncountable::TooDeep => format!(
                                    "fragments nest more than {MAX_NESTING} deep at the root of the operation"
                                ),
                                Uncountable::TooLarge => format!(
                                    "the operation has more than {MAX_VISITS} root selections"
                                ),
                            },
                            Some(operation.pos),
                        )
                    })?;
                if found > max {
                    return Err(over(max, what, key, found, counter.first));
                }
            }
            // A variable the request leaves out takes its default from the operation.
            let mut given = variables.clone();
            for def in &operation.node.variable_definitions {
                let name = &def.node.name.node;
                if let (None, Some(default)) = (given.get(name), &def.node.default_value) {
                    given.insert(name.clone(), default.node.clone());
                }
            }
            let mut weigh =
                |field: &Positioned<Field>| Ok(usize::from(exchanges_phone(field, &given)));
            let mut phone = Counter::weighed(doc, PHONE_FIELDS, &mut weigh);
            let found = phone
                .count(&operation.node.selection_set.node, 0)
                .unwrap_or(0);
            if found > PHONE_EXCHANGES_PER_REQUEST {
                return Err(over(
                    PHONE_EXCHANGES_PER_REQUEST,
                    "phone exchange",
                    "`linkPhoneNumber`, or `loginWithMiniProgram` with a `phoneCode`",
                    found,
                    phone.first,
                ));
            }
        }
        Ok(())
    }
}

/// The refusal of a request with `found` fields of a kind allowed `max` times.
fn over(max: usize, what: &str, key: &str, found: usize, first: Option<Pos>) -> ServerError {
    refuse(
        format!(
            "at most {max} {what}{} per request ({key}); this request has {found} \
             (aliases and fragments count): send them one request at a time",
            if max == 1 { "" } else { "s" },
        ),
        first,
    )
}

/// Whether a `linkPhoneNumber` or `loginWithMiniProgram` field exchanges a phone code: the
/// former always, the latter when its `input` (literal or variable) has a non-null `phoneCode`.
fn exchanges_phone(field: &Positioned<Field>, variables: &Variables) -> bool {
    if field.node.name.node == "linkPhoneNumber" {
        return true;
    }
    let given = |v: Option<&ConstValue>| v.is_some_and(|v| !matches!(v, ConstValue::Null));
    match field.node.get_argument("input").map(|v| &v.node) {
        Some(Value::Object(input)) => match input.get("phoneCode") {
            Some(Value::Variable(name)) => given(variables.get(name)),
            Some(v) => !matches!(v, Value::Null),
            None => false,
        },
        Some(Value::Variable(name)) => match variables.get(name) {
            Some(ConstValue::Object(input)) => given(input.get("phoneCode")),
            _ => false,
        },
        _ => false,
    }
}

/// How many times each costly root field appears (None: too deep or too large to count).
pub fn costly_fields(doc: &ExecutableDocument) -> Option<HashMap<&'static str, usize>> {
    let mut out = HashMap::new();
    for name in LOGIN_FIELDS.iter().chain(STATE_FIELDS).chain(WECHAT_FIELDS) {
        let mut total = 0;
        for (_, operation) in doc.operations.iter() {
            let names = [*name];
            let mut counter = Counter::new(doc, &names);
            total += counter.count(&operation.node.selection_set.node, 0).ok()?;
        }
        out.insert(*name, total);
    }
    Some(out)
}

/// The defaults, for unit tests.
#[cfg(test)]
pub(super) const TEST_BUDGET: Budget = Budget {
    logins: 1,
    states: 5,
    wechat: 5,
    introspection: true,
    introspection_fields: 3,
    max_complexity: 5000,
    public_sdl: false,
};

#[cfg(test)]
#[path = "budget_tests.rs"]
mod tests;
