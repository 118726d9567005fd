//! Reading and changing the service's database directly, through the harness's own handle
//! (never the service's internals): row counts, statements that stand in for the passage of
//! time, the catalog of tables and columns, and the "nothing written" snapshot.

use std::collections::BTreeMap;

use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use wechat_identity::db::Backend as DbBackend;

use super::TestApp;

/// diesel's record of the migrations it applied: bookkeeping, not the service's data.
pub const MIGRATIONS_TABLE: &str = "__diesel_schema_migrations";

/// How [`TestApp::written`] treats a table it does not compare in full.
enum Rule {
    /// Only the rows matching this condition are compared.
    OnlyRowsWhere(&'static str),
    /// Not compared at all (if it exists).
    Skip,
}

/// The only exceptions to "every column of every row of every table" in [`TestApp::written`].
/// Any other table, or a column added later, is compared without anyone listing it.
const NOT_COMPARED_IN_FULL: &[(&str, Rule)] = &[
    // Issuing an OA authorization state (and evicting unused ones past the cap) is not a change
    // of anyone's data, and a rejected login may well issue one; the tests rely on that. A state
    // that was used is: once used, every column of it is compared.
    ("oauth_states", Rule::OnlyRowsWhere("used_at IS NOT NULL")),
    // ... nor is counting the states an app issued (it picks the next state's slot).
    ("oauth_state_counters", Rule::Skip),
    // Sandbox mode registers the sandbox's demo message templates when it starts: set-up, not
    // a request's write. Any other registration is compared.
    (
        "message_templates",
        Rule::OnlyRowsWhere("registered_by <> 'sandbox'"),
    ),
    // The background job runner (to come) writes its table on its own schedule, whatever a
    // request did; skipped if the table exists.
    ("jobs", Rule::Skip),
    // The signing key the service makes (or imports) when it starts is set-up; a rotation is
    // seen by the retirement time it gives the keys before it.
    (
        "signing_keys",
        Rule::OnlyRowsWhere("retire_after IS NOT NULL"),
    ),
];

/// One column of one table, as the database's own catalog describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub table: String,
    pub name: String,
    /// The type as the catalog spells it: on SQLite as declared in CREATE TABLE (`TEXT`,
    /// `TIMESTAMP`…), on PostgreSQL information_schema's `data_type` (`text`, `boolean`…).
    pub sql_type: String,
    /// Whether the column can hold NULL.
    pub nullable: bool,
}

/// What the service has written, row by row (see [`TestApp::written`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written(pub Vec<String>);

impl Written {
    /// Nothing at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(diesel::QueryableByName)]
struct CatalogRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    column_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    sql_type: String,
    /// "1" when the catalog says NOT NULL.
    #[diesel(sql_type = diesel::sql_types::Text)]
    not_null: String,
    /// SQLite: the column's position in the primary key, "0" when not in it.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pk: String,
}

/// Every column of every table on SQLite (its own `sqlite_*` tables aside), in column order.
const SQLITE_CATALOG: &str = r#"
    SELECT m.name AS table_name, p.name AS column_name, p.type AS sql_type,
           CAST(p."notnull" AS TEXT) AS not_null, CAST(p.pk AS TEXT) AS pk
    FROM sqlite_master AS m, pragma_table_info(m.name) AS p
    WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\'
    ORDER BY m.name, p.cid"#;

/// Every column of every table of the current schema on PostgreSQL, in column order.
const POSTGRES_CATALOG: &str = "
    SELECT c.table_name::text AS table_name, c.column_name::text AS column_name,
           c.data_type::text AS sql_type,
           CASE WHEN c.is_nullable = 'NO' THEN '1' ELSE '0' END AS not_null, '0' AS pk
    FROM information_schema.columns AS c
    JOIN information_schema.tables AS t
      ON t.table_schema = c.table_schema AND t.table_name = c.table_name
    WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
    ORDER BY c.table_name, c.ordinal_position";

/// `name` as an SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `text` as an SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl TestApp {
    /// Runs SQL statements on the service's database (to stand in for the passage of time).
    pub async fn exec(&self, sql: &str) {
        let mut conn = self.db_conn().await;
        wechat_identity::with_conn!(&mut conn, c => c.batch_execute(sql).await)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Rows in a table, read straight from the database (to check that nothing was written).
    pub async fn count(&self, table: &str) -> i64 {
        use diesel::sql_types::BigInt;
        let q = diesel::select(diesel::dsl::sql::<BigInt>(&format!(
            "(SELECT COUNT(*) FROM {table})"
        )));
        let mut conn = self.db_conn().await;
        wechat_identity::with_conn!(&mut conn, c => q.get_result::<i64>(c).await).unwrap()
    }

    /// Every column of every table, from the database's own catalog (`sqlite_master` and
    /// `pragma_table_info` on SQLite, `information_schema` on PostgreSQL), diesel's
    /// migrations table included; ordered by table name, then as the columns are in the table.
    pub async fn catalog(&self) -> Vec<Column> {
        let backend = self.db.backend();
        let sql = match backend {
            DbBackend::Sqlite => SQLITE_CATALOG,
            DbBackend::Postgres => POSTGRES_CATALOG,
        };
        let mut conn = self.db_conn().await;
        let rows: Vec<CatalogRow> =
            wechat_identity::with_conn!(&mut conn, c => diesel::sql_query(sql).load(c).await)
                .unwrap_or_else(|e| panic!("reading the catalog: {e}"));
        let key_columns = |table: &str| {
            rows.iter()
                .filter(|r| r.table_name == table && r.pk != "0")
                .count()
        };
        let mut columns: Vec<Column> = rows
            .iter()
            .map(|r| {
                // SQLite reports notnull=0 for a primary key column not declared NOT NULL. That
                // is the truth for most of them: for compatibility with old versions, SQLite lets
                // a TEXT (any non-INTEGER) PRIMARY KEY hold NULL, so such a column is reported
                // nullable here, and a schema that says otherwise is told to add NOT NULL. The
                // one exception is a lone INTEGER PRIMARY KEY: it is the rowid, never NULL.
                let rowid = backend == DbBackend::Sqlite
                    && r.pk == "1"
                    && r.sql_type.eq_ignore_ascii_case("INTEGER")
                    && key_columns(&r.table_name) == 1;
                Column {
                    table: r.table_name.clone(),
                    name: r.column_name.clone(),
                    sql_type: r.sql_type.clone(),
                    nullable: r.not_null != "1" && !rowid,
                }
            })
            .collect();
        // Sorted here, not by the database's collation; stable, so column order stays.
        columns.sort_by(|a, b| a.table.cmp(&b.table));
        columns
    }

    /// Everything a failed request must not touch: every column of every row of every table the
    /// catalog lists (so a table or column added later is covered with no one listing it),
    /// except diesel's migrations table and the [`NOT_COMPARED_IN_FULL`] exceptions. Each row is
    /// one text, `table:col=value|col NULL|…` (values as CAST to TEXT, `\` and `|` escaped),
    /// sorted. Compare two of these to see that nothing changed, not even a timestamp.
    pub async fn written(&self) -> Written {
        let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for column in self.catalog().await {
            tables.entry(column.table).or_default().push(column.name);
        }
        let mut rows = Vec::new();
        for (table, columns) in &tables {
            if table == MIGRATIONS_TABLE {
                continue;
            }
            let filter = match NOT_COMPARED_IN_FULL.iter().find(|(t, _)| t == table) {
                None => String::new(),
                Some((_, Rule::OnlyRowsWhere(condition))) => format!(" WHERE {condition}"),
                Some((_, Rule::Skip)) => continue,
            };
            let cells: Vec<String> = columns
                .iter()
                .map(|col| {
                    let value = format!(
                        r"REPLACE(REPLACE(CAST({} AS TEXT), '\', '\\'), '|', '\|')",
                        ident(col)
                    );
                    format!(
                        "COALESCE({} || {value}, {})",
                        literal(&format!("{col}=")),
                        literal(&format!("{col} NULL"))
                    )
                })
                .collect();
            let sql = format!(
                "SELECT {} || {} AS v FROM {}{filter}",
                literal(&format!("{table}:")),
                cells.join(" || '|' || "),
                ident(table)
            );
            rows.extend(self.texts(&sql).await);
        }
        rows.sort();
        Written(rows)
    }

    /// The text column `v` of every row of `sql`.
    async fn texts(&self, sql: &str) -> Vec<String> {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            v: String,
        }
        let mut conn = self.db_conn().await;
        let rows: Vec<Row> =
            wechat_identity::with_conn!(&mut conn, c => diesel::sql_query(sql).load(c).await)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.into_iter().map(|r| r.v).collect()
    }
}
