//! Permission preflight: checks, with the `has_*_privilege` functions, what a source or an enrichment datastore
//! needs, and lists each missing privilege with the exact `GRANT` that fixes it.

use crate::connect::{ConnectParams, query_error};
use crate::error::PgError;
use crate::ident::{qualified, quote_ident};
use serde::Serialize;

/// What the datastore is used for; an enrichment store needs write privileges too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Source,
    Enrichment,
}

/// One missing privilege.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Missing {
    /// e.g. `SELECT`.
    pub privilege: String,
    /// e.g. `table "public"."orders"`.
    pub object: String,
    /// Blocking problems fail the test; the rest (default privileges) are warnings.
    pub blocking: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub role: String,
    pub database: String,
    pub schema: String,
    pub missing: Vec<Missing>,
    /// The statements that grant what is missing, to run as the schema's owner or a superuser.
    pub grants: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        !self.missing.iter().any(|m| m.blocking)
    }

    /// One paragraph for a test result.
    pub fn summary(&self) -> String {
        if self.missing.is_empty() {
            return format!(
                "role \"{}\" has every privilege it needs on database \"{}\", schema \"{}\"",
                self.role, self.database, self.schema
            );
        }
        let list: Vec<String> = self
            .missing
            .iter()
            .map(|m| {
                format!(
                    "{} on {}{}",
                    m.privilege,
                    m.object,
                    if m.blocking { "" } else { " (warning)" }
                )
            })
            .collect();
        format!(
            "role \"{}\" lacks: {}. To fix, run as the schema owner: {}",
            self.role,
            list.join(", "),
            self.grants.join(" ")
        )
    }
}

const SYSTEM_SCHEMAS: &[&str] = &[
    "pg_catalog",
    "pg_toast",
    "information_schema",
    "pg_internal",
];

/// True for schemas Assay never reads: `pg_catalog`, `pg_toast`, `information_schema`, `pg_internal`, temp schemas.
pub fn is_system_schema(name: &str) -> bool {
    SYSTEM_SCHEMAS.contains(&name)
        || name.starts_with("pg_temp_")
        || name.starts_with("pg_toast_temp_")
}

/// Runs the preflight on an open session.
pub async fn run(
    client: &tokio_postgres::Client,
    params: &ConnectParams,
    schema: &str,
    role: Role,
) -> Result<Report, PgError> {
    if is_system_schema(schema) {
        return Err(PgError::SystemSchema(schema.to_string()));
    }
    let qe = |e: tokio_postgres::Error| query_error(&e, params);
    let row = client
        .query_one(
            "SELECT current_user::text, current_database()::text, \
                    has_database_privilege(current_database(), 'CONNECT'), n.oid, \
                    COALESCE(has_schema_privilege(n.oid, 'USAGE'), false), \
                    COALESCE(has_schema_privilege(n.oid, 'CREATE'), false) \
             FROM (SELECT 1) AS one LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = $1",
            &[&schema],
        )
        .await
        .map_err(qe)?;
    let user: String = row.get(0);
    let database: String = row.get(1);
    let can_connect: bool = row.get(2);
    let Some(schema_oid) = row.get::<_, Option<tokio_postgres::types::Oid>>(3) else {
        return Err(PgError::SchemaMissing {
            database,
            schema: schema.to_string(),
        });
    };
    let usage: bool = row.get(4);
    let create: bool = row.get(5);

    let r = quote_ident(&user);
    let s = quote_ident(schema);
    let mut missing = Vec::new();
    let mut grants = Vec::new();
    let mut add = |privilege: &str, object: String, blocking: bool| {
        missing.push(Missing {
            privilege: privilege.to_string(),
            object,
            blocking,
        });
    };
    if !can_connect {
        add(
            "CONNECT",
            format!("database {}", quote_ident(&database)),
            true,
        );
        grants.push(format!(
            "GRANT CONNECT ON DATABASE {} TO {r};",
            quote_ident(&database)
        ));
    }
    if !usage {
        add("USAGE", format!("schema {s}"), true);
    }
    if role == Role::Enrichment && !create {
        add("CREATE", format!("schema {s}"), true);
    }
    match (usage, role == Role::Enrichment && !create) {
        (false, true) => grants.push(format!("GRANT USAGE, CREATE ON SCHEMA {s} TO {r};")),
        (false, false) => grants.push(format!("GRANT USAGE ON SCHEMA {s} TO {r};")),
        (true, true) => grants.push(format!("GRANT CREATE ON SCHEMA {s} TO {r};")),
        (true, false) => {}
    }

    let relations = client
        .query(
            "SELECT c.relname::text, c.relkind::text, \
                    has_table_privilege(c.oid, 'SELECT'), has_table_privilege(c.oid, 'INSERT'), \
                    has_table_privilege(c.oid, 'UPDATE'), has_table_privilege(c.oid, 'DELETE'), \
                    CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(c.oid, 'SELECT') END \
             FROM pg_catalog.pg_class c \
             WHERE c.relnamespace = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') \
             ORDER BY c.relname",
            &[&schema_oid],
        )
        .await
        .map_err(qe)?;
    let mut table_select = false;
    let mut table_write = false;
    let mut sequence_select = false;
    for row in &relations {
        let name: String = row.get(0);
        let kind: String = row.get(1);
        let object = |what: &str| format!("{what} {}", qualified(schema, &name));
        if kind == "S" {
            if role == Role::Source && !row.get::<_, Option<bool>>(6).unwrap_or(false) {
                add("SELECT", object("sequence"), true);
                sequence_select = true;
            }
            continue;
        }
        let what = if kind == "v" || kind == "m" {
            "view"
        } else {
            "table"
        };
        if !row.get::<_, bool>(2) {
            add("SELECT", object(what), true);
            table_select = true;
        }
        if role == Role::Enrichment && (kind == "r" || kind == "p") {
            let lacking: Vec<&str> = [(3, "INSERT"), (4, "UPDATE"), (5, "DELETE")]
                .into_iter()
                .filter(|(i, _)| !row.get::<_, bool>(*i))
                .map(|(_, p)| p)
                .collect();
            if !lacking.is_empty() {
                add(&lacking.join(", "), object(what), true);
                table_write = true;
            }
        }
    }
    match role {
        Role::Source if table_select => {
            grants.push(format!("GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {r};"))
        }
        Role::Enrichment if table_select || table_write => grants.push(format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {r};"
        )),
        _ => {}
    }
    if sequence_select {
        grants.push(format!(
            "GRANT SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {r};"
        ));
    }

    // Default privileges: do tables created later in this schema reach the role (directly, via a role it is a
    // member of, or via PUBLIC)?
    let defaults = client
        .query(
            "SELECT DISTINCT a.privilege_type::text \
             FROM pg_catalog.pg_default_acl d, LATERAL aclexplode(d.defaclacl) a \
             WHERE d.defaclnamespace = $1 AND d.defaclobjtype = 'r' \
               AND (a.grantee = 0 OR pg_has_role(current_user, a.grantee, 'USAGE'))",
            &[&schema_oid],
        )
        .await
        .map_err(qe)?;
    let have: Vec<String> = defaults.iter().map(|r| r.get(0)).collect();
    let wanted: &[&str] = match role {
        Role::Source => &["SELECT"],
        Role::Enrichment => &["SELECT", "INSERT", "UPDATE", "DELETE"],
    };
    let lacking: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|p| !have.iter().any(|h| h == p))
        .collect();
    if !lacking.is_empty() {
        add(
            &format!("default {}", lacking.join(", ")),
            format!("future tables in schema {s}"),
            false,
        );
        grants.push(format!(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT {} ON TABLES TO {r};",
            wanted.join(", ")
        ));
    }
    Ok(Report {
        role: user,
        database,
        schema: schema.to_string(),
        missing,
        grants,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_schemas_are_recognised() {
        for s in [
            "pg_catalog",
            "pg_toast",
            "information_schema",
            "pg_internal",
            "pg_temp_3",
            "pg_toast_temp_3",
        ] {
            assert!(is_system_schema(s), "{s}");
        }
        assert!(!is_system_schema("public"));
        assert!(!is_system_schema("pg_tempest"));
    }
}
