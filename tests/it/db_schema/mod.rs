//! The migrations of both backends make exactly the tables and columns `src/db/schema.rs`
//! declares: same tables, same columns, same nullability, a matching type. Column order is not
//! compared (diesel names every column it reads or writes). Nullability is the catalog's, read
//! by `TestApp::catalog`: on SQLite a non-INTEGER PRIMARY KEY column not declared NOT NULL
//! counts as nullable, because SQLite does let it hold NULL (see common/db.rs).

mod parse;

use std::collections::BTreeMap;

use crate::common::*;
use parse::{Declaration, Declared, parse_schema};

/// The diesel schema, read when the test runs (it changes as tables are added).
fn schema_rs() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/db/schema.rs");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The catalog types a diesel SQL type may have: as SQLite's migrations declare them, and as
/// PostgreSQL's information_schema names them. None for a type this test does not know yet.
fn catalog_types(backend: Backend, diesel_type: &str) -> Option<&'static [&'static str]> {
    Some(match (backend, diesel_type) {
        (Backend::Sqlite, "Text") => &["TEXT"],
        (Backend::Sqlite, "Timestamp") => &["TIMESTAMP"],
        (Backend::Sqlite, "Bool") => &["BOOLEAN"],
        (Backend::Sqlite, "Integer") => &["INTEGER"],
        // INTEGER is SQLite's 64-bit integer too, and the one type an autoincrementing key (an
        // alias of the rowid: `INTEGER PRIMARY KEY AUTOINCREMENT`) may be declared with.
        (Backend::Sqlite, "BigInt") => &["BIGINT", "INTEGER"],
        (Backend::Postgres, "Text") => &["text"],
        (Backend::Postgres, "Timestamp") => &["timestamp without time zone"],
        (Backend::Postgres, "Bool") => &["boolean"],
        (Backend::Postgres, "Integer") => &["integer"],
        (Backend::Postgres, "BigInt") => &["bigint"],
        _ => return None,
    })
}

/// Every difference between what schema.rs declares and what the catalog lists, one line each,
/// naming the table and column.
fn differences(backend: Backend, declared: &Declaration, catalog: &[Column]) -> Vec<String> {
    let mut migrated: BTreeMap<&str, Vec<&Column>> = BTreeMap::new();
    for column in catalog {
        if column.table != "__diesel_schema_migrations" {
            migrated.entry(&column.table).or_default().push(column);
        }
    }
    let mut out = Vec::new();
    for table in declared.keys() {
        if !migrated.contains_key(table.as_str()) {
            out.push(format!(
                "table {table}: in schema.rs, not made by the migrations"
            ));
        }
    }
    for (table, columns) in &migrated {
        let Some(declared) = declared.get(*table) else {
            out.push(format!(
                "table {table}: made by the migrations, not in schema.rs"
            ));
            continue;
        };
        for d in declared {
            let Some(c) = columns.iter().find(|c| c.name == d.name) else {
                out.push(format!(
                    "{table}.{}: in schema.rs, not made by the migrations",
                    d.name
                ));
                continue;
            };
            if d.nullable != c.nullable {
                let says = |nullable| if nullable { "nullable" } else { "NOT NULL" };
                out.push(format!(
                    "{table}.{}: schema.rs says {}, the migrations make it {}",
                    d.name,
                    says(d.nullable),
                    says(c.nullable)
                ));
            }
            match catalog_types(backend, &d.sql_type) {
                None => out.push(format!(
                    "{table}.{}: no catalog type known for diesel's {}; add it to this test",
                    d.name, d.sql_type
                )),
                Some(types) if !types.iter().any(|t| t.eq_ignore_ascii_case(&c.sql_type)) => out
                    .push(format!(
                        "{table}.{}: schema.rs says {}, the migrations make it {} (expected {})",
                        d.name,
                        d.sql_type,
                        c.sql_type,
                        types.join(" or ")
                    )),
                Some(_) => {}
            }
        }
        for c in columns {
            if !declared.iter().any(|d| d.name == c.name) {
                out.push(format!(
                    "{table}.{}: made by the migrations, not in schema.rs",
                    c.name
                ));
            }
        }
    }
    out
}

async fn migrations_match_schema_rs(backend: Backend) {
    let declared = parse_schema(&schema_rs());
    assert!(
        declared.contains_key("users") && declared.values().all(|c| !c.is_empty()),
        "schema.rs parsed into tables with columns: {declared:#?}"
    );
    let app = TestApp::start(backend).await;
    let catalog = app.catalog().await;

    let found = differences(backend, &declared, &catalog);
    assert!(
        found.is_empty(),
        "{backend:?} migrations and src/db/schema.rs differ:\n{}",
        found.join("\n")
    );

    // The comparison itself can fail: a column or table schema.rs lost or gained, a
    // nullability or a type changed there, are each named.
    let (table, columns) = declared.iter().next().unwrap();
    let column = &columns[0];
    let mut changed = declared.clone();
    changed.get_mut(table).unwrap().remove(0);
    assert_eq!(
        differences(backend, &changed, &catalog),
        [format!(
            "{table}.{}: made by the migrations, not in schema.rs",
            column.name
        )]
    );
    let mut changed = declared.clone();
    changed.get_mut(table).unwrap()[0].nullable ^= true;
    let other = if column.sql_type == "BigInt" {
        "Text"
    } else {
        "BigInt"
    };
    changed.get_mut(table).unwrap()[0].sql_type = other.into();
    assert_eq!(differences(backend, &changed, &catalog).len(), 2);
    let mut changed = declared.clone();
    changed.get_mut(table).unwrap().push(Declared {
        name: "later".into(),
        sql_type: "Text".into(),
        nullable: true,
    });
    assert_eq!(
        differences(backend, &changed, &catalog),
        [format!(
            "{table}.later: in schema.rs, not made by the migrations"
        )]
    );
    let mut changed = declared.clone();
    changed.insert("later".into(), columns.clone());
    assert_eq!(
        differences(backend, &changed, &catalog),
        ["table later: in schema.rs, not made by the migrations"]
    );
}

crate::on_both_backends!(migrations_match_schema_rs);
