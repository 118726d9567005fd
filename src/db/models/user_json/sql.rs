//! The pieces of a compiled statement's text: a column's value as JSON, an object of them.

use super::{Dialect, Kind};

/// A column's value as JSON text (never NULL).
pub(super) fn value(d: Dialect, column: &str, kind: Kind) -> String {
    match (kind, d) {
        (Kind::Text, Dialect::Postgres) => format!("coalesce(to_json({column})::text, 'null')"),
        (Kind::Text, Dialect::Sqlite) => format!("json_quote({column})"),
        (Kind::Bool, _) => format!("(CASE WHEN {column} THEN 'true' ELSE 'false' END)"),
        (Kind::Int, Dialect::Postgres) => format!("coalesce({column}::text, 'null')"),
        (Kind::Int, Dialect::Sqlite) => format!("coalesce(CAST({column} AS TEXT), 'null')"),
        // chrono's to_rfc3339: no fraction when it is 0, else 3 digits when they suffice, else
        // 6 (PostgreSQL keeps microseconds). The colons are quoted text of the pattern, so the
        // statement holds no `:name` (which pgbench would take for a variable).
        (Kind::Time, Dialect::Postgres) => format!(
            "(CASE WHEN {column} IS NULL THEN 'null' ELSE '\"' || \
             to_char({column}, 'YYYY-MM-DD\"T\"HH24\":\"MI\":\"SS') || \
             (CASE WHEN to_char({column}, 'US') = '000000' THEN '' \
             WHEN to_char({column}, 'US') LIKE '%000' THEN '.' || to_char({column}, 'MS') \
             ELSE '.' || to_char({column}, 'US') END) || '+00' || chr(58) || '00\"' END)"
        ),
        // SQLite keeps diesel's text (`%F %T%.f`: the same fraction digits chrono prints).
        (Kind::Time, Dialect::Sqlite) => format!(
            "(CASE WHEN {column} IS NULL THEN 'null' ELSE '\"' || replace({column}, ' ', 'T') \
             || '+00:00\"' END)"
        ),
    }
}

/// `'{"a":' || A || ',"b":' || B || '}'` over `(key, value expression)` pairs; `null` when
/// nothing is selected (what the resolvers answer for an object with no fields).
pub(super) fn object(parts: Vec<(&str, String)>) -> String {
    if parts.is_empty() {
        return "'null'".into();
    }
    let mut sql = String::from("('{");
    for (i, (key, value)) in parts.into_iter().enumerate() {
        assert!(
            !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "a response key is a GraphQL name"
        );
        if i > 0 {
            sql.push_str(" || ',");
        }
        sql.push('"');
        sql.push_str(key);
        sql.push_str("\":' || ");
        sql.push_str(&value);
    }
    sql.push_str(" || '}')");
    sql
}
