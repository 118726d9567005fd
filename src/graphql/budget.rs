//! The per-request budget of costly root fields: aliases make one request ask for the same
//! field thousands of times, and some fields cost a WeChat call (logins) or a stored row (OA
//! states). Counted on the parsed document before the schema runs it, so an over-budget
//! request is refused before any resolver runs: nothing is called, nothing is written.
//!
//! (Not a schema extension: any extension puts every field of every request through
//! async-graphql's hook chain, which cost the login benchmark about a tenth of its speed.)

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Pos, ServerError, ServerResult};

use super::error::code;

/// Root fields that issue a session (each login calls WeChat).
pub const LOGIN_FIELDS: &[&str] = &[
    "loginWithMiniProgram",
    "loginWithOfficialAccount",
    "redeemLoginTicket",
    "refreshSession",
];

/// Root fields that store an OA web-authorization state.
pub const STATE_FIELDS: &[&str] = &["officialAccountAuthorizeUrl"];

/// At most `logins` login fields and `states` state fields per operation.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// `limits.logins_per_request`.
    pub logins: usize,
    /// `limits.states_per_request`.
    pub states: usize,
}

/// Fragment spreads are followed this deep (validation, which runs later, refuses cycles).
const MAX_FRAGMENT_DEPTH: usize = 8;
/// Selections looked at per operation at most, so fragments spreading each other many times
/// cannot make the count itself expensive.
const MAX_VISITS: usize = 100_000;

/// What [`count`] found.
#[derive(Default)]
struct Found {
    count: usize,
    first: Option<Pos>,
    visits: usize,
}

/// Counts the root fields of `set` named in `names` (fragments followed).
fn count(
    doc: &ExecutableDocument,
    set: &SelectionSet,
    names: &[&str],
    depth: usize,
    found: &mut Found,
) {
    for selection in &set.items {
        found.visits += 1;
        if found.visits > MAX_VISITS {
            return;
        }
        match &selection.node {
            Selection::Field(field) if names.contains(&field.node.name.node.as_str()) => {
                found.count += 1;
                found.first.get_or_insert(field.pos);
            }
            Selection::InlineFragment(fragment) if depth < MAX_FRAGMENT_DEPTH => {
                count(
                    doc,
                    &fragment.node.selection_set.node,
                    names,
                    depth + 1,
                    found,
                );
            }
            Selection::FragmentSpread(spread) if depth < MAX_FRAGMENT_DEPTH => {
                if let Some(fragment) = doc.fragments.get(&spread.node.fragment_name.node) {
                    count(
                        doc,
                        &fragment.node.selection_set.node,
                        names,
                        depth + 1,
                        found,
                    );
                }
            }
            _ => {}
        }
    }
}

fn refuse(message: String, pos: Option<Pos>) -> ServerError {
    let mut error = ServerError::new(message, pos);
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", code::BAD_USER_INPUT);
    error.extensions = Some(extensions);
    error
}

impl Budget {
    /// The budget of `limits`.
    pub fn of(limits: &crate::config::Limits) -> Self {
        Self {
            logins: limits.logins_per_request,
            states: limits.states_per_request,
        }
    }

    /// Parses `request`'s document (kept in the request, so the schema does not parse it
    /// again) and checks it. A document that does not parse is left for the schema to report.
    pub fn check_request(&self, request: &mut async_graphql::Request) -> ServerResult<()> {
        match request.parsed_query() {
            Ok(doc) => self.check(doc),
            Err(_) => Ok(()),
        }
    }

    fn check(&self, doc: &ExecutableDocument) -> ServerResult<()> {
        let budgets: [(&[&str], usize, &str, &str); 2] = [
            (
                LOGIN_FIELDS,
                self.logins,
                "login mutation",
                "limits.logins_per_request",
            ),
            (
                STATE_FIELDS,
                self.states,
                "officialAccountAuthorizeUrl field",
                "limits.states_per_request",
            ),
        ];
        for (_, operation) in doc.operations.iter() {
            for (names, max, what, key) in budgets {
                let mut found = Found::default();
                count(
                    doc,
                    &operation.node.selection_set.node,
                    names,
                    0,
                    &mut found,
                );
                if found.count > max {
                    return Err(refuse(
                        format!(
                            "at most {max} {what}{} per request ({key}); this request has {} \
                             (aliases count): send them one request at a time",
                            if max == 1 { "" } else { "s" },
                            found.count
                        ),
                        found.first,
                    ));
                }
            }
        }
        Ok(())
    }
}

/// How many times each costly root field appears (for tests and logs).
pub fn costly_fields(doc: &ExecutableDocument) -> HashMap<&'static str, usize> {
    let mut out = HashMap::new();
    for name in LOGIN_FIELDS.iter().chain(STATE_FIELDS) {
        let mut total = 0;
        for (_, operation) in doc.operations.iter() {
            let mut found = Found::default();
            count(
                doc,
                &operation.node.selection_set.node,
                &[name],
                0,
                &mut found,
            );
            total += found.count;
        }
        out.insert(*name, total);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(q: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(q).unwrap()
    }

    #[test]
    fn aliases_and_fragments_all_count() {
        let d = doc(
            "mutation { a: loginWithMiniProgram(input: {appId: \"x\", code: \"y\"}) { newUser } \
                     ...F ... on Mutation { c: refreshSession(refreshToken: \"t\") { newUser } } } \
                     fragment F on Mutation { b: loginWithOfficialAccount(input: {appId: \"x\", code: \"y\", state: \"s\"}) { newUser } }",
        );
        let counts = costly_fields(&d);
        assert_eq!(counts["loginWithMiniProgram"], 1);
        assert_eq!(counts["loginWithOfficialAccount"], 1);
        assert_eq!(counts["refreshSession"], 1);
        let budget = Budget {
            logins: 1,
            states: 5,
        };
        let err = budget.check(&d).unwrap_err();
        assert!(
            err.message.contains("limits.logins_per_request"),
            "{}",
            err.message
        );
        assert!(err.message.contains("has 3"), "{}", err.message);
    }

    #[test]
    fn a_cyclic_fragment_does_not_hang() {
        let d = doc(
            "query { ...A } fragment A on Query { officialAccountAuthorizeUrl(appId: \"a\", redirectUri: \"b\") ...A }",
        );
        assert_eq!(
            costly_fields(&d)["officialAccountAuthorizeUrl"],
            MAX_FRAGMENT_DEPTH
        );
        // Ten spreads of a fragment that spreads itself ten times: 10^8 paths, bounded work.
        let spreads = "...B ".repeat(10);
        let d = doc(&format!(
            "query {{ {spreads} }} fragment B on Query {{ apps {{ appId }} {spreads} }}"
        ));
        let (_, operation) = d.operations.iter().next().unwrap();
        let mut found = Found::default();
        count(
            &d,
            &operation.node.selection_set.node,
            LOGIN_FIELDS,
            0,
            &mut found,
        );
        assert!(found.visits > MAX_VISITS, "the walk reached its bound");
        assert!(
            found.visits <= MAX_VISITS + MAX_FRAGMENT_DEPTH + 1,
            "and stopped there"
        );
    }
}
