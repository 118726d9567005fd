//! Relay connections over id-ordered rows: page size, opaque cursors, `hasNextPage`.

use async_graphql::OutputType;
use async_graphql::connection::{Connection, Edge};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::error::{ApiError, gql};

/// The largest page a connection returns.
pub const MAX_PAGE: i32 = 100;

/// A checked page request: its size, and the row id it starts after.
pub struct Page {
    kind: &'static str,
    first: usize,
    /// The id of the last row of the previous page.
    pub after: Option<String>,
}

impl Page {
    /// Checks `first` (1..=100, default 20) and decodes `after` (a cursor of this `kind`).
    pub fn parse(
        kind: &'static str,
        first: Option<i32>,
        after: Option<&str>,
    ) -> async_graphql::Result<Self> {
        let first = first.unwrap_or(20);
        if !(1..=MAX_PAGE).contains(&first) {
            return Err(gql(ApiError::bad_input(format!(
                "first must be 1..={MAX_PAGE}"
            ))));
        }
        let after = after
            .map(|cursor| {
                URL_SAFE_NO_PAD
                    .decode(cursor)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|s| s.strip_prefix(&format!("{kind}:")).map(str::to_owned))
                    .filter(|id| uuid::Uuid::parse_str(id).is_ok())
                    .ok_or_else(|| {
                        gql(ApiError::bad_input(
                            "after is not a cursor from this connection",
                        ))
                    })
            })
            .transpose()?;
        Ok(Self {
            kind,
            first: first as usize,
            after,
        })
    }

    /// How many rows to load: one more than the page, to learn whether another page follows.
    pub fn limit(&self) -> i64 {
        self.first as i64 + 1
    }

    /// The connection over `rows` (as loaded with [`Page::limit`]).
    pub fn connection<T, N: OutputType>(
        &self,
        mut rows: Vec<T>,
        id: impl Fn(&T) -> &str,
        node: impl Fn(T) -> N,
    ) -> Connection<String, N> {
        let has_next = rows.len() > self.first;
        rows.truncate(self.first);
        let mut connection = Connection::new(self.after.is_some(), has_next);
        connection.edges.extend(rows.into_iter().map(|row| {
            let cursor = URL_SAFE_NO_PAD.encode(format!("{}:{}", self.kind, id(&row)));
            Edge::new(cursor, node(row))
        }));
        connection
    }
}
