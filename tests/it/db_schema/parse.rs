//! Reading `src/db/schema.rs`: the tables and columns of its `diesel::table!` blocks, parsed
//! generically (the file grows as tables are added).

use std::collections::BTreeMap;

/// A column as a `diesel::table!` block declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Declared {
    pub name: String,
    /// The SQL type without `Nullable<…>` or a path: `Text`, `Timestamp`, `Bool`…
    pub sql_type: String,
    pub nullable: bool,
}

/// Tables by name, each with its columns in order.
pub type Declaration = BTreeMap<String, Vec<Declared>>;

/// Rust-ish tokens: identifiers, string literals, `->`, `::`, single punctuation.
fn tokens(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else if c == '"' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push(chars[start..i.min(chars.len())].iter().collect());
        } else if (c == '-' && next == Some('>')) || (c == ':' && next == Some(':')) {
            out.push(chars[i..i + 2].iter().collect());
            i += 2;
        } else {
            out.push(c.to_string());
            i += 1;
        }
    }
    out
}

/// Reads the tables of every `table! { … }` block (`diesel::table!` or a bare `table!`):
/// `[#[sql_name = "…"]] name [(key, …)] { [#[…]] column -> Type, … }`, several tables to a
/// block allowed, `use` lines and other attributes (`#[max_length = …]`) skipped.
pub fn parse_schema(src: &str) -> Declaration {
    let toks = tokens(src);
    let mut tables = Declaration::new();
    let mut i = 0;
    while i + 2 < toks.len() {
        if !(toks[i] == "table" && toks[i + 1] == "!") {
            i += 1;
            continue;
        }
        i += 2;
        let close = matching(&toks, i);
        let mut j = i + 1;
        while j < close {
            match toks[j].as_str() {
                "use" => j = skip_past(&toks, j, ";"),
                _ => {
                    let (sql_name, after) = attributes(&toks, j);
                    j = after;
                    // `schema.table` or `table`; the database name is the last part.
                    let mut name = toks[j].clone();
                    j += 1;
                    while toks[j] == "." {
                        name = toks[j + 1].clone();
                        j += 2;
                    }
                    let name = sql_name.unwrap_or(name);
                    if toks[j] == "(" {
                        j = matching(&toks, j) + 1;
                    }
                    assert_eq!(toks[j], "{", "columns of {name} in schema.rs");
                    let end = matching(&toks, j);
                    let columns = parse_columns(&toks[j + 1..end], &name);
                    assert!(
                        tables.insert(name.clone(), columns).is_none(),
                        "{name} declared twice in schema.rs"
                    );
                    j = end + 1;
                }
            }
        }
        i = close + 1;
    }
    tables
}

/// The columns `col -> Type,` of one table.
fn parse_columns(toks: &[String], table: &str) -> Vec<Declared> {
    let mut columns = Vec::new();
    let mut j = 0;
    while j < toks.len() {
        let (sql_name, after) = attributes(toks, j);
        j = after;
        let name = sql_name.unwrap_or_else(|| toks[j].clone());
        assert_eq!(toks[j + 1], "->", "{table}.{name} in schema.rs");
        j += 2;
        let mut ty = String::new();
        let mut depth = 0;
        while j < toks.len() && !(depth == 0 && toks[j] == ",") {
            match toks[j].as_str() {
                "<" => depth += 1,
                ">" => depth -= 1,
                _ => {}
            }
            ty.push_str(&toks[j]);
            j += 1;
        }
        j += 1;
        let (nullable, inner) = match ty.strip_prefix("Nullable<") {
            Some(rest) => (true, rest.strip_suffix('>').unwrap_or(rest)),
            None => (false, ty.as_str()),
        };
        let sql_type = inner.rsplit("::").next().unwrap_or(inner).to_owned();
        columns.push(Declared {
            name,
            sql_type,
            nullable,
        });
    }
    columns
}

/// Skips `#[…]` attributes from `j`; returns the `sql_name` one names, and where they end.
fn attributes(toks: &[String], mut j: usize) -> (Option<String>, usize) {
    let mut sql_name = None;
    while toks[j] == "#" {
        let end = matching(toks, j + 1);
        if toks[j + 2] == "sql_name" && toks[j + 3] == "=" {
            sql_name = Some(toks[j + 4].trim_matches('"').to_owned());
        }
        j = end + 1;
    }
    (sql_name, j)
}

/// The index of the bracket closing the one at `open`.
fn matching(toks: &[String], open: usize) -> usize {
    let (o, c) = match toks[open].as_str() {
        "{" => ("{", "}"),
        "(" => ("(", ")"),
        "[" => ("[", "]"),
        t => panic!("expected a bracket in schema.rs, found {t:?}"),
    };
    let mut depth = 0;
    for (k, t) in toks.iter().enumerate().skip(open) {
        if t == o {
            depth += 1;
        } else if t == c {
            depth -= 1;
            if depth == 0 {
                return k;
            }
        }
    }
    panic!("unbalanced {o} in schema.rs")
}

/// The index after the next `stop` from `j`.
fn skip_past(toks: &[String], j: usize, stop: &str) -> usize {
    j + toks[j..].iter().position(|t| t == stop).expect(stop) + 1
}

/// The parser reads what `diesel print-schema` writes too: `use` lines, doc comments,
/// attributes, a `sql_name`, a schema path, several tables to a block, full type paths.
#[test]
fn schema_parser_reads_print_schema_output() {
    let src = r#"
        // @generated automatically by Diesel CLI.
        pub mod audit {
            diesel::table! {
                use diesel::sql_types::*;

                /// Things that happened.
                #[sql_name = "audit_events"]
                audit.events (id, at) {
                    id -> BigInt,
                    #[max_length = 64]
                    #[sql_name = "type"]
                    kind -> Nullable<diesel::sql_types::Text>,
                    at -> Timestamp,
                }

                jobs {
                    id -> Integer,
                    done -> Bool,
                }
            }
        }
        table! { more { x -> Nullable<Timestamp>, } }
        diesel::joinable!(a -> b (c));
        diesel::allow_tables_to_appear_in_same_query!(events, jobs,);
    "#;
    let col = |name: &str, sql_type: &str, nullable| Declared {
        name: name.into(),
        sql_type: sql_type.into(),
        nullable,
    };
    let expected = Declaration::from([
        (
            "audit_events".to_owned(),
            vec![
                col("id", "BigInt", false),
                col("type", "Text", true),
                col("at", "Timestamp", false),
            ],
        ),
        (
            "jobs".to_owned(),
            vec![col("id", "Integer", false), col("done", "Bool", false)],
        ),
        ("more".to_owned(), vec![col("x", "Timestamp", true)]),
    ]);
    assert_eq!(parse_schema(src), expected);
}
