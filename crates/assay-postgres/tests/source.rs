//! The connector against a real PostgreSQL: each troubleshooting row provoked for real, TLS modes, the seed's
//! GRANT scripts run verbatim and then preflighted, and catalog discovery.

mod common;

use assay_core::connection::{ConnectionSpec, Port};
use assay_postgres::preflight::{self, Role};
use assay_postgres::{ConnectParams, PgError, catalog};
use assay_testkit::TestPg;
use assay_testkit::pg::UNCERTIFIED_HOST;
use common::{params, spec};
use serde_json::{Value, json};

async fn connect_err(spec: &ConnectionSpec, db: &str) -> assay_postgres::Diagnosis {
    match params(spec, db).await.connect().await {
        Err(PgError::Connect(d)) => *d,
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("connected but should not have"),
    }
}

#[tokio::test]
async fn wrong_password_is_28p01() {
    let pg = TestPg::shared();
    let db = pg.create_database("auth").await;
    pg.create_role("tp_auth", "rightpw").await;
    let d = connect_err(&spec("tp_auth", "wrongpw"), &db).await;
    assert_eq!(d.code, "28P01");
    assert!(
        d.message.contains("password authentication failed"),
        "{}",
        d.message
    );
    assert!(d.fix.contains("\\du"), "{}", d.fix);
    // a role that does not exist fails the same way, and the advice says so
    let d = connect_err(&spec("dq_ghost", "x"), &db).await;
    assert_eq!(d.code, "28P01");
    assert!(d.reasons.iter().any(|r| r.contains("role does not exist")));
}

#[tokio::test]
async fn pg_hba_no_entry_reject_and_ssl_only_are_28000() {
    let d = connect_err(&spec("dq_nohba", "nohbapw"), "postgres").await;
    assert_eq!(d.code, "28000");
    assert!(d.message.contains("no pg_hba.conf entry"), "{}", d.message);
    assert!(
        d.fix.contains("pg_hba.conf") && d.fix.contains("reload"),
        "{}",
        d.fix
    );
    let d = connect_err(&spec("dq_rejected", "rejectedpw"), "postgres").await;
    assert_eq!(d.code, "28000");
    assert!(d.message.contains("rejects connection"), "{}", d.message);
    let mut ssl_only = spec("dq_sslonly", "sslonlypw");
    ssl_only
        .parameters
        .insert("sslmode".into(), json!("disable"));
    let d = connect_err(&ssl_only, "postgres").await;
    assert_eq!(d.code, "28000");
    assert!(d.reasons.iter().any(|r| r.contains("SSL required")));
    // with TLS the same role gets in (or fails on auth only, not on pg_hba)
    ssl_only
        .parameters
        .insert("sslmode".into(), json!("require"));
    match params(&ssl_only, "postgres").await.connect().await {
        Ok(_) => {}
        Err(e) => panic!("sslmode=require should pass pg_hba's hostssl line: {e}"),
    }
}

#[tokio::test]
async fn missing_database_is_3d000() {
    let pg = TestPg::shared();
    pg.create_role("tp_nodb", "pw").await;
    let d = connect_err(&spec("tp_nodb", "pw"), "no_such_database").await;
    assert_eq!(d.code, "3D000");
    assert!(d.fix.contains("no_such_database"));
}

#[tokio::test]
async fn refused_unknown_host_and_timeout_are_named() {
    let mut s = spec("x", "y");
    s.port = Port::Number(assay_testkit::free_port().unwrap());
    assert_eq!(connect_err(&s, "postgres").await.code, "connection_refused");
    let mut s = spec("x", "y");
    s.host = "no-such-host.invalid".into();
    assert_eq!(connect_err(&s, "postgres").await.code, "unknown_host");
    // a listener that never answers the startup packet
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut s = spec("x", "y");
    s.port = Port::Number(listener.local_addr().unwrap().port());
    s.parameters.insert("connect_timeout".into(), json!("1"));
    s.parameters.insert("sslmode".into(), json!("disable"));
    let d = connect_err(&s, "postgres").await;
    assert_eq!(d.code, "timeout", "{d}");
}

#[tokio::test]
async fn tls_modes_verify_the_certificate() {
    let pg = TestPg::shared();
    pg.create_role("tp_tls", "pw").await;
    let mut s = spec("tp_tls", "pw");
    s.parameters.insert("sslmode".into(), json!("verify-full"));
    // without our CA the chain is not trusted
    let d = connect_err(&s, "postgres").await;
    assert_eq!(d.code, "tls", "{d}");
    assert_eq!(d.cause, "the TLS handshake failed", "{d}");
    assert!(d.message.contains("UnknownIssuer"), "{d}");
    s.parameters.insert(
        "sslrootcert".into(),
        json!(pg.ca_path.display().to_string()),
    );
    // with it, verify-full accepts the address the certificate names
    let client = params(&s, "postgres").await.connect().await.unwrap();
    assert_eq!(
        session_tls_and_address(&client).await,
        (true, "127.0.0.1".into())
    );
    // the same server at an address the certificate does not name: the chain is trusted, the name is not, and
    // verify-full refuses it for exactly that reason
    s.host = UNCERTIFIED_HOST.into();
    let d = connect_err(&s, "postgres").await;
    assert_eq!(d.code, "tls", "{d}");
    assert_eq!(d.cause, "the TLS handshake failed", "{d}");
    assert!(
        d.message.contains("not valid for name") && d.message.contains(UNCERTIFIED_HOST),
        "{d}"
    );
    assert!(!d.message.contains("UnknownIssuer"), "{d}");
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("name does not match the host")),
        "{d}"
    );
    // verify-ca checks the chain only, so the same address is accepted, over TLS
    s.parameters.insert("sslmode".into(), json!("verify-ca"));
    let client = params(&s, "postgres").await.connect().await.unwrap();
    assert_eq!(
        session_tls_and_address(&client).await,
        (true, UNCERTIFIED_HOST.into())
    );
    // and still refuses a chain it cannot trust
    s.parameters.remove("sslrootcert");
    let d = connect_err(&s, "postgres").await;
    assert_eq!(d.code, "tls", "{d}");
    assert!(d.message.contains("UnknownIssuer"), "{d}");
}

/// Whether the session runs over TLS, and the server address it reached.
async fn session_tls_and_address(client: &tokio_postgres::Client) -> (bool, String) {
    let row = client
        .query_one(
            "SELECT ssl, host(inet_server_addr()) FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

fn seed_script(template: &str, db: &str, schema: &str, password: &str) -> String {
    template
        .replace("<database_name>", db)
        .replace("<schema_name>", schema)
        .replace("<password>", password)
}

const SEED_READ_ONLY: &str = "\
-- Create a dedicated read-only role
CREATE ROLE qualytics_read_role LOGIN PASSWORD '<password>';
-- Grant connection and schema access
GRANT CONNECT ON DATABASE <database_name> TO qualytics_read_role;
GRANT USAGE ON SCHEMA <schema_name> TO qualytics_read_role;
-- Grant read access to all existing and future tables
GRANT SELECT ON ALL TABLES IN SCHEMA <schema_name> TO qualytics_read_role;
GRANT SELECT ON ALL SEQUENCES IN SCHEMA <schema_name> TO qualytics_read_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA <schema_name> GRANT SELECT ON TABLES TO qualytics_read_role;";

const SEED_READ_WRITE: &str = "\
-- Create a dedicated read-write role
CREATE ROLE qualytics_readwrite_role LOGIN PASSWORD '<password>';
-- Grant connection, schema access, and table creation
GRANT CONNECT ON DATABASE <database_name> TO qualytics_readwrite_role;
GRANT USAGE, CREATE ON SCHEMA <schema_name> TO qualytics_readwrite_role;
-- Grant full data manipulation on all existing and future tables
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA <schema_name> TO qualytics_readwrite_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA <schema_name> GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO qualytics_readwrite_role;";

/// The seed's role scripts, verbatim, on a shop database; the roles are then let through pg_hba.
#[tokio::test]
async fn seed_roles_pass_and_fail_preflight_as_documented() {
    let pg = TestPg::shared();
    let db = pg.create_database("seed").await;
    let su = pg.superuser(&db).await;
    su.batch_execute(
        "CREATE SCHEMA sales; CREATE SCHEMA enrich; \
         CREATE TABLE sales.orders (id serial PRIMARY KEY, total numeric, placed_at timestamptz); \
         CREATE TABLE sales.customers (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text); \
         CREATE TABLE enrich.existing (id int);",
    )
    .await
    .unwrap();
    su.batch_execute(&format!("REVOKE ALL ON DATABASE \"{db}\" FROM PUBLIC"))
        .await
        .unwrap();
    su.batch_execute(&seed_script(
        SEED_READ_ONLY,
        &format!("\"{db}\""),
        "sales",
        "readpw",
    ))
    .await
    .unwrap();
    su.batch_execute(&seed_script(
        SEED_READ_WRITE,
        &format!("\"{db}\""),
        "enrich",
        "writepw",
    ))
    .await
    .unwrap();
    su.batch_execute("GRANT dq_allowed TO qualytics_read_role, qualytics_readwrite_role")
        .await
        .unwrap();

    // read-only role: passes as a source
    let p = params(&spec("qualytics_read_role", "readpw"), &db).await;
    let client = p.connect().await.unwrap();
    let report = preflight::run(&client, &p, "sales", Role::Source)
        .await
        .unwrap();
    assert!(report.missing.is_empty(), "{report:?}");
    assert!(report.passed());
    // ... and fails as an enrichment store, with the GRANTs that fix it
    let report = preflight::run(&client, &p, "sales", Role::Enrichment)
        .await
        .unwrap();
    assert!(!report.passed());
    let privileges: Vec<&str> = report
        .missing
        .iter()
        .map(|m| m.privilege.as_str())
        .collect();
    assert!(privileges.contains(&"CREATE"), "{privileges:?}");
    assert!(
        privileges.contains(&"INSERT, UPDATE, DELETE"),
        "{privileges:?}"
    );
    assert!(
        report
            .grants
            .contains(&"GRANT CREATE ON SCHEMA \"sales\" TO \"qualytics_read_role\";".to_string())
    );
    assert!(report.grants.contains(
        &"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA \"sales\" TO \"qualytics_read_role\";"
            .to_string()
    ));
    // the read-only role cannot use the enrichment schema at all
    let report = preflight::run(&client, &p, "enrich", Role::Source)
        .await
        .unwrap();
    assert!(
        report
            .grants
            .iter()
            .any(|g| g == "GRANT USAGE ON SCHEMA \"enrich\" TO \"qualytics_read_role\";")
    );

    // read-write role: passes as an enrichment store
    let p = params(&spec("qualytics_readwrite_role", "writepw"), &db).await;
    let client = p.connect().await.unwrap();
    let report = preflight::run(&client, &p, "enrich", Role::Enrichment)
        .await
        .unwrap();
    assert!(report.missing.is_empty(), "{report:?}");

    // a new table without grants and no default privileges for it: SELECT is missing, and reported per table
    su.batch_execute(
        "CREATE TABLE sales.late (x int); REVOKE SELECT ON sales.late FROM qualytics_read_role",
    )
    .await
    .unwrap();
    let p = params(&spec("qualytics_read_role", "readpw"), &db).await;
    let client = p.connect().await.unwrap();
    let report = preflight::run(&client, &p, "sales", Role::Source)
        .await
        .unwrap();
    assert_eq!(report.missing.len(), 1, "{report:?}");
    assert_eq!(report.missing[0].object, "table \"sales\".\"late\"");
    assert_eq!(
        report.grants,
        vec!["GRANT SELECT ON ALL TABLES IN SCHEMA \"sales\" TO \"qualytics_read_role\";"]
    );
    // reading it gives 42501 "permission denied for table", classified with the seed's fix
    let err = client
        .query("SELECT * FROM sales.late", &[])
        .await
        .unwrap_err();
    let d = assay_postgres::connect::query_error(&err, &p);
    let d = d.diagnosis().unwrap();
    assert_eq!(d.code, "42501");
    assert!(
        d.fix.contains("GRANT SELECT ON ALL TABLES IN SCHEMA"),
        "{}",
        d.fix
    );
    // without USAGE on the schema: 42501 "permission denied for schema"
    su.batch_execute("REVOKE USAGE ON SCHEMA sales FROM qualytics_read_role")
        .await
        .unwrap();
    let err = client
        .query("SELECT * FROM sales.orders", &[])
        .await
        .unwrap_err();
    let d = assay_postgres::connect::query_error(&err, &p);
    assert!(d.diagnosis().unwrap().fix.contains("GRANT USAGE ON SCHEMA"));
    // without CONNECT on the database: connecting fails with the GRANT CONNECT fix
    su.batch_execute(&format!(
        "REVOKE CONNECT ON DATABASE \"{db}\" FROM qualytics_read_role"
    ))
    .await
    .unwrap();
    let d = connect_err(&spec("qualytics_read_role", "readpw"), &db).await;
    assert_eq!(d.code, "42501");
    assert!(
        d.fix
            .contains(&format!("GRANT CONNECT ON DATABASE \"{db}\"")),
        "{}",
        d.fix
    );
}

#[tokio::test]
async fn enrichment_role_without_create_hits_permission_denied_to_create() {
    let pg = TestPg::shared();
    let db = pg.create_database("nocreate").await;
    pg.create_role("tp_nocreate", "pw").await;
    let su = pg.superuser(&db).await;
    su.batch_execute("CREATE SCHEMA e; GRANT USAGE ON SCHEMA e TO tp_nocreate")
        .await
        .unwrap();
    let p = params(&spec("tp_nocreate", "pw"), &db).await;
    let client = p.connect().await.unwrap();
    let report = preflight::run(&client, &p, "e", Role::Enrichment)
        .await
        .unwrap();
    assert_eq!(
        report.grants[0],
        "GRANT CREATE ON SCHEMA \"e\" TO \"tp_nocreate\";"
    );
    let err = client
        .batch_execute("CREATE TABLE e._assay_x (id int)")
        .await
        .unwrap_err();
    let d = assay_postgres::connect::query_error(&err, &p);
    let d = d.diagnosis().unwrap();
    assert_eq!(d.code, "42501");
    assert!(
        d.message.contains("permission denied for schema"),
        "{}",
        d.message
    );
}

#[tokio::test]
async fn catalog_discovers_tables_views_keys_and_incremental_fields() {
    let pg = TestPg::shared();
    let db = pg.create_database("cat").await;
    let su = pg.superuser(&db).await;
    su.batch_execute(
        "CREATE SCHEMA \"Shop; \"\"x\"\"\"; SET search_path = \"Shop; \"\"x\"\"\"; \
         CREATE TYPE mood AS ENUM ('ok', 'sad'); \
         CREATE TABLE orders (id bigserial PRIMARY KEY, customer text NOT NULL, total numeric(10,2), \
           status mood, tags text[], updated_at timestamptz, created date); \
         CREATE TABLE lines (order_id bigint, line int, PRIMARY KEY (order_id, line)); \
         ALTER TABLE orders DROP COLUMN created; \
         CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100; \
         CREATE MATERIALIZED VIEW totals AS SELECT sum(total) AS s FROM orders; \
         CREATE TABLE events (at timestamptz NOT NULL, v int) PARTITION BY RANGE (at); \
         CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01'); \
         COMMENT ON TABLE orders IS 'all orders'; ANALYZE orders;",
    )
    .await
    .unwrap();
    let p = ConnectParams {
        host: "127.0.0.1".into(),
        port: pg.port(),
        user: "postgres".into(),
        password: Some(assay_testkit::pg::SUPERUSER_PASSWORD.into()),
        database: db.clone(),
        sslmode: "disable".into(),
        sslrootcert: None,
        connect_timeout: std::time::Duration::from_secs(5),
        application_name: "test".into(),
    };
    let client = p.connect().await.unwrap();
    let snap = catalog::discover(&client, &p, "Shop; \"x\"").await.unwrap();
    assert!(snap.commit_timestamps);
    let names: Vec<(&str, &str)> = snap
        .tables
        .iter()
        .map(|t| (t.name.as_str(), t.kind.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("big_orders", "view"),
            ("events", "partitioned_table"),
            ("lines", "table"),
            ("orders", "table"),
            ("totals", "materialized_view")
        ]
    );
    let orders = snap.tables.iter().find(|t| t.name == "orders").unwrap();
    assert_eq!(orders.primary_key, ["id"]);
    assert_eq!(orders.row_estimate, Some(0));
    assert_eq!(orders.remarks.as_deref(), Some("all orders"));
    let cols: Vec<Value> = orders
        .columns
        .iter()
        .map(|c| {
            json!([
                c.name,
                c.native_type,
                c.field_type.as_str(),
                c.nullable,
                c.sequence_backed
            ])
        })
        .collect();
    assert_eq!(
        cols,
        [
            json!(["id", "bigint", "Integral", false, true]),
            json!(["customer", "text", "String", false, false]),
            json!(["total", "numeric(10,2)", "Fractional", true, false]),
            json!(["status", "\"Shop; \"\"x\"\"\".mood", "String", true, false]),
            json!(["tags", "text[]", "Array", true, false]),
            json!([
                "updated_at",
                "timestamp with time zone",
                "Timestamp",
                true,
                false
            ]),
        ]
    );
    let lines = snap.tables.iter().find(|t| t.name == "lines").unwrap();
    assert_eq!(lines.primary_key, ["order_id", "line"]);
    // system schemas are refused and never listed
    assert!(matches!(
        catalog::discover(&client, &p, "pg_catalog").await,
        Err(PgError::SystemSchema(_))
    ));
    let schemas = catalog::list_schemas(&client, &p).await.unwrap();
    assert!(
        schemas.contains(&"public".to_string()) && schemas.contains(&"Shop; \"x\"".to_string())
    );
    assert!(
        !schemas
            .iter()
            .any(|s| s.starts_with("pg_") || s == "information_schema"),
        "{schemas:?}"
    );
    assert!(matches!(
        catalog::discover(&client, &p, "nope").await,
        Err(PgError::SchemaMissing { .. })
    ));
}
