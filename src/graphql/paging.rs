//! Relay connections over keyset windows: page size (`first` or `last`), opaque cursors that
//! carry a row's sort key (so pages stay put when rows are added), `hasNextPage` and
//! `hasPreviousPage`.
//!
//! A cursor is base64url(`{kind}:{key}`): `kind` names the connection and its order, so a
//! cursor of another connection or order is refused; `key` is what the connection needs to
//! find its place again (an id, or a sort value and an id).

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{ObjectType, OutputType};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::error::{ApiError, gql};

/// The largest page a connection returns.
pub const MAX_PAGE: i32 = 100;

/// The page size when neither `first` nor `last` is given.
const DEFAULT_PAGE: i32 = 20;

/// What a page of `size` (`first` or `last`; none: the default) weighs in a query's complexity:
/// the rows it can answer (within 1..=[`MAX_PAGE`]; other sizes are refused when it runs).
pub fn page_weight(size: Option<i32>) -> usize {
    size.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE) as usize
}

/// A checked page request: its size, the keys it starts after and ends before, and whether
/// it is the end of that window (`last`) rather than its start.
pub struct Page<K = String> {
    kind: &'static str,
    size: usize,
    /// The key of the row the page starts after.
    pub after: Option<K>,
    /// The key of the row the page ends before.
    pub before: Option<K>,
    /// `last`: the page is the end of the window (rows are read backwards).
    pub from_end: bool,
}

/// The paging arguments of a connection field, as given.
#[derive(Default)]
pub struct PageArgs<'a> {
    /// `first`.
    pub first: Option<i32>,
    /// `after`.
    pub after: Option<&'a str>,
    /// `last`.
    pub last: Option<i32>,
    /// `before`.
    pub before: Option<&'a str>,
}

/// The key of a cursor whose key is a row id (a UUID).
pub fn uuid_key(key: &str) -> Option<String> {
    uuid::Uuid::parse_str(key).ok().map(|_| key.to_owned())
}

impl Page<String> {
    /// A forward page over rows keyed by their id (`first`, `after`).
    pub fn parse(
        kind: &'static str,
        first: Option<i32>,
        after: Option<&str>,
    ) -> async_graphql::Result<Self> {
        let args = PageArgs {
            first,
            after,
            ..PageArgs::default()
        };
        Page::parse_keyed(kind, &args, uuid_key)
    }
}

impl<K> Page<K> {
    /// Checks the sizes (`first` or `last`, 1..=100, not both; default `first: 20`) and
    /// decodes the cursors (of this `kind`, their keys by `key`).
    pub fn parse_keyed(
        kind: &'static str,
        args: &PageArgs<'_>,
        key: impl Fn(&str) -> Option<K>,
    ) -> async_graphql::Result<Self> {
        let (size, from_end) = match (args.first, args.last) {
            (Some(_), Some(_)) => {
                return Err(gql(ApiError::bad_input("give first or last, not both")));
            }
            (first, None) => (first.unwrap_or(DEFAULT_PAGE), false),
            (None, Some(last)) => (last, true),
        };
        if !(1..=MAX_PAGE).contains(&size) {
            let name = if from_end { "last" } else { "first" };
            return Err(gql(ApiError::bad_input(format!(
                "{name} must be 1..={MAX_PAGE}"
            ))));
        }
        let decode = |name: &str, cursor: Option<&str>| {
            cursor
                .map(|cursor| {
                    URL_SAFE_NO_PAD
                        .decode(cursor)
                        .ok()
                        .and_then(|b| String::from_utf8(b).ok())
                        .and_then(|s| s.strip_prefix(kind)?.strip_prefix(':').and_then(&key))
                        .ok_or_else(|| {
                            gql(ApiError::bad_input(format!(
                                "{name} is not a cursor from this connection (and order)"
                            )))
                        })
                })
                .transpose()
        };
        Ok(Self {
            kind,
            size: size as usize,
            after: decode("after", args.after)?,
            before: decode("before", args.before)?,
            from_end,
        })
    }

    /// How many rows to load: one more than the page, to learn whether another page follows.
    pub fn limit(&self) -> i64 {
        self.size as i64 + 1
    }

    /// The connection over `rows` (as loaded with [`Page::limit`]), each row's cursor key its
    /// `id`.
    pub fn connection<T, N: OutputType>(
        &self,
        rows: Vec<T>,
        id: impl Fn(&T) -> &str,
        node: impl Fn(T) -> N,
    ) -> Connection<String, N> {
        self.connection_with(rows, |row| id(row).to_owned(), node, EmptyFields)
    }

    /// The connection over `rows` (as loaded with [`Page::limit`]; from the end backwards for a
    /// `last` page), each row's cursor key from `key`, with the connection's own `fields`.
    pub fn connection_with<T, N: OutputType, E: ObjectType>(
        &self,
        rows: Vec<T>,
        key: impl Fn(&T) -> String,
        node: impl Fn(T) -> N,
        fields: E,
    ) -> Connection<String, N, E> {
        let (rows, has_previous, has_next) = self.window(rows);
        let mut connection = Connection::with_additional_fields(has_previous, has_next, fields);
        connection.edges.extend(rows.into_iter().map(|row| {
            let cursor = self.cursor(&key(&row));
            Edge::new(cursor, node(row))
        }));
        connection
    }

    /// The page's rows of `rows` (as loaded with [`Page::limit`]) in the page's order, and
    /// whether a page comes before and after it.
    pub fn window<T>(&self, mut rows: Vec<T>) -> (Vec<T>, bool, bool) {
        let more = rows.len() > self.size;
        rows.truncate(self.size);
        // Forward: rows before `after` exist (it was a row); backward: rows after `before` do.
        if self.from_end {
            rows.reverse();
            (rows, more, self.before.is_some())
        } else {
            (rows, self.after.is_some(), more)
        }
    }

    /// The cursor of the row whose key is `key`.
    pub fn cursor(&self, key: &str) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.kind, key))
    }
}
