//! Every column of every row of every table (diesel's migrations table aside), read through the
//! database's own catalog so a table or column added later is covered without anyone listing it.
//! Compare two snapshots to show that nothing changed, not even a timestamp.

use std::collections::BTreeMap;

use diesel_async::RunQueryDsl;
use wechat_identity::with_conn;

use super::{Backend, Ctx};

#[derive(diesel::QueryableByName)]
struct Col {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    column_name: String,
}

#[derive(diesel::QueryableByName)]
struct Text {
    #[diesel(sql_type = diesel::sql_types::Text)]
    v: String,
}

const SQLITE_COLUMNS: &str = r#"
    SELECT m.name AS table_name, p.name AS column_name
    FROM sqlite_master AS m, pragma_table_info(m.name) AS p
    WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\'
    ORDER BY m.name, p.cid"#;

const POSTGRES_COLUMNS: &str = "
    SELECT c.table_name::text AS table_name, c.column_name::text AS column_name
    FROM information_schema.columns AS c
    JOIN information_schema.tables AS t
      ON t.table_schema = c.table_schema AND t.table_name = c.table_name
    WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
    ORDER BY c.table_name, c.ordinal_position";

/// All rows of the database, one text each (`table:col=value|col NULL|…`), sorted.
pub async fn snapshot(ctx: &Ctx) -> Vec<String> {
    let sql = match ctx.backend {
        Backend::Sqlite => SQLITE_COLUMNS,
        Backend::Postgres => POSTGRES_COLUMNS,
    };
    let mut conn = ctx.conn().await;
    let cols: Vec<Col> =
        with_conn!(&mut conn, c => diesel::sql_query(sql).load(c).await).expect("the catalog");
    let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for col in cols {
        tables
            .entry(col.table_name)
            .or_default()
            .push(col.column_name);
    }
    let mut rows = Vec::new();
    for (table, columns) in tables {
        if table == "__diesel_schema_migrations" {
            continue;
        }
        let cells: Vec<String> = columns
            .iter()
            .map(|c| format!("COALESCE('{c}=' || CAST(\"{c}\" AS TEXT), '{c} NULL')"))
            .collect();
        let sql = format!(
            "SELECT '{table}:' || {} AS v FROM \"{table}\"",
            cells.join(" || '|' || ")
        );
        let texts: Vec<Text> =
            with_conn!(&mut conn, c => diesel::sql_query(&sql).load(c).await).expect(&sql);
        rows.extend(texts.into_iter().map(|t| t.v));
    }
    rows.sort();
    rows
}
