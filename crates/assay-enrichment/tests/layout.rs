//! The enrichment tables against a real PostgreSQL, written by a role that has only USAGE and CREATE on its
//! schema: creation, versions and migration from an older layout, refusal of foreign, newer and altered
//! tables, one-transaction writes that replace their own rows, permission errors with the GRANT, and drops that
//! touch only Assay's tables.

use assay_enrichment::EnrichmentError;
use assay_enrichment::layout::{self, SCAN_TABLES};
use assay_enrichment::write::{ContainerWrite, FailedRow, MetricRow, RecordRow, ScanRow, write};
use assay_testkit::TestPg;
use serde_json::json;

async fn setup(
    name: &str,
) -> (
    String,
    String,
    tokio_postgres::Client,
    tokio_postgres::Client,
) {
    let pg = TestPg::shared();
    let db = pg.create_database(name).await;
    let role = assay_testkit::unique("enr");
    pg.create_role(&role, "enrpw").await;
    let su = pg.superuser(&db).await;
    su.batch_execute(&format!(
        "CREATE SCHEMA enrich; GRANT USAGE, CREATE ON SCHEMA enrich TO {role}"
    ))
    .await
    .unwrap();
    let (c, conn) = tokio_postgres::connect(
        &format!("postgresql://{role}:enrpw@127.0.0.1:{}/{db}", pg.port()),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    (db, role, su, c)
}

async fn count(su: &tokio_postgres::Client, table: &str, op: i64) -> i64 {
    su.query_one(
        &format!("SELECT count(*) FROM enrich.{table} WHERE operation_id = $1"),
        &[&op],
    )
    .await
    .unwrap()
    .get(0)
}

fn sample(op: i64) -> ContainerWrite {
    ContainerWrite {
        scan: ScanRow {
            operation_id: op,
            datastore_id: 1,
            container_id: 7,
            datastore_name: "shop".into(),
            container_name: "orders".into(),
            incremental: false,
            records_processed: 100,
            source_record_limit: 10,
            max_records_analyzed: -1,
            anomaly_count: 2,
            start_time: "2026-11-25T10:00:00Z".into(),
            end_time: "2026-11-25T10:00:01Z".into(),
            result: "success".into(),
            message: None,
        },
        metrics: vec![
            MetricRow {
                check_id: 1,
                result: "failed",
                details: Some("x".into()),
                asserted: 100,
                anomalous: 2,
            },
            MetricRow {
                check_id: 2,
                result: "passed",
                details: None,
                asserted: 100,
                anomalous: 0,
            },
        ],
        failed: ["u1", "u2"]
            .iter()
            .map(|u| FailedRow {
                check_id: 1,
                anomaly_uuid: u.to_string(),
                message: "The value total = -1 fails notNegative".into(),
                rule_type: "notNegative".into(),
                tags: vec!["finance".into()],
                properties: json!({}),
                description: "total is never negative".into(),
                fields: vec!["total".into()],
                metadata: json!({"k": "v"}),
                anomalous_records_count: 1,
                fingerprint: "f".into(),
                detected_time: "2026-11-25T10:00:01Z".into(),
            })
            .collect(),
        records: vec![
            RecordRow {
                anomaly_uuid: "u1".into(),
                record: json!({"id": 1, "total": -1}),
            },
            RecordRow {
                anomaly_uuid: "u2".into(),
                record: json!({"id": 2, "total": -5}),
            },
        ],
        remediation: None,
    }
}

#[tokio::test]
async fn tables_are_created_versioned_and_migrated_from_an_older_layout() {
    let (_db, role, su, mut c) = setup("enrlayout").await;
    let tx = c.transaction().await.unwrap();
    layout::ensure(&tx, "enrich", "_shop", &role).await.unwrap();
    tx.commit().await.unwrap();
    let reg = layout::registered(&c, "enrich", "_shop").await.unwrap();
    assert_eq!(reg.len(), 4);
    assert!(
        reg.iter().all(|r| r.2 == layout::VERSION && r.1 == "scan"),
        "{reg:?}"
    );
    let ix: i64 = su
        .query_one("SELECT count(*) FROM pg_indexes WHERE schemaname = 'enrich' AND tablename LIKE '\\_shop\\_%'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        ix, 11,
        "lookup keys are indexed (10), plus the registry key"
    );

    // a fixture of the version-1 layout (before quality_check_fields, quality_check_metadata and
    // _qualytics_source_partition existed), with a row in it
    let tx = c.transaction().await.unwrap();
    layout::ensure_registry(&tx, "enrich", "_old", &role)
        .await
        .unwrap();
    for t in SCAN_TABLES {
        let name = layout::table_name("_old", t.suffix);
        layout::create(&tx, "enrich", &name, t.cols, t.indexes, 1)
            .await
            .unwrap();
        layout::register(&tx, "enrich", "_old", &name, "scan", 1)
            .await
            .unwrap();
    }
    tx.execute("INSERT INTO enrich._old_failed_checks (quality_check_id, anomaly_uuid, operation_id) VALUES (1, 'kept', 1)", &[])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let has = |col: &'static str| {
        let su = &su;
        async move {
            su.query_opt(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = 'enrich' AND table_name = '_old_failed_checks' AND column_name = $1",
                &[&col],
            )
            .await
            .unwrap()
            .is_some()
        }
    };
    assert!(!has("quality_check_fields").await);
    let w = write(&mut c, "enrich", "_old", &role, &sample(5))
        .await
        .unwrap();
    assert_eq!(w.failed_checks, 2);
    assert!(
        has("quality_check_fields").await && has("quality_check_metadata").await,
        "migrated with ALTER TABLE"
    );
    let reg = layout::registered(&c, "enrich", "_old").await.unwrap();
    assert!(reg.iter().all(|r| r.2 == layout::VERSION), "{reg:?}");
    let kept: i64 = su
        .query_one(
            "SELECT count(*) FROM enrich._old_failed_checks WHERE anomaly_uuid = 'kept'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, 1, "migration keeps the rows");
    let fields: String = su
        .query_one(
            "SELECT quality_check_fields FROM enrich._old_failed_checks WHERE anomaly_uuid = 'u1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(fields, "total");
}

#[tokio::test]
async fn foreign_newer_and_hand_altered_tables_are_refused() {
    let (_db, role, su, mut c) = setup("enrrefuse").await;
    su.batch_execute("CREATE TABLE enrich._mine_scan_operations (x int)")
        .await
        .unwrap();
    let e = write(&mut c, "enrich", "_mine", &role, &sample(1))
        .await
        .unwrap_err();
    assert!(matches!(e, EnrichmentError::Unmanaged { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("_mine_scan_operations exists but Assay did not create it"),
        "{e}"
    );
    let x: i64 = su
        .query_one("SELECT count(*) FROM enrich._mine_scan_operations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(x, 0, "the foreign table is untouched");

    write(&mut c, "enrich", "_ok", &role, &sample(1))
        .await
        .unwrap();
    c.batch_execute("ALTER TABLE enrich._ok_source_records ALTER COLUMN context TYPE varchar(10)")
        .await
        .unwrap();
    let e = write(&mut c, "enrich", "_ok", &role, &sample(2))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains(
            "column context of _ok_source_records is character varying(10), expected text"
        ),
        "{e}"
    );
    assert_eq!(
        count(&su, "_ok_scan_operations", 2).await,
        0,
        "nothing written"
    );

    write(&mut c, "enrich", "_new", &role, &sample(1))
        .await
        .unwrap();
    c.batch_execute("UPDATE enrich._new_assay_schema SET schema_version = 99")
        .await
        .unwrap();
    let e = write(&mut c, "enrich", "_new", &role, &sample(2))
        .await
        .unwrap_err();
    assert!(matches!(e, EnrichmentError::Newer { found: 99, .. }), "{e}");
}

#[tokio::test]
async fn writes_are_one_transaction_and_replace_their_own_rows() {
    let (_db, role, su, mut c) = setup("enrwrite").await;
    let w = write(&mut c, "enrich", "_shop", &role, &sample(1))
        .await
        .unwrap();
    assert_eq!((w.metrics, w.failed_checks, w.source_records), (2, 2, 2));
    // the same operation again replaces its rows
    write(&mut c, "enrich", "_shop", &role, &sample(1))
        .await
        .unwrap();
    for (t, n) in [
        ("_shop_scan_operations", 1),
        ("_shop_check_metrics", 2),
        ("_shop_failed_checks", 2),
        ("_shop_source_records", 2),
    ] {
        assert_eq!(count(&su, t, 1).await, n, "{t}");
    }
    let rec: String = su
        .query_one(
            "SELECT record FROM enrich._shop_source_records WHERE anomaly_uuid = 'u2'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&rec).unwrap(),
        json!({"id": 2, "total": -5})
    );

    // without INSERT on one table the whole write rolls back and says which GRANT fixes it
    c.batch_execute("REVOKE INSERT ON enrich._shop_source_records FROM CURRENT_USER")
        .await
        .unwrap();
    let e = write(&mut c, "enrich", "_shop", &role, &sample(2))
        .await
        .unwrap_err();
    assert!(matches!(e, EnrichmentError::Permission { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA \"enrich\""),
        "{e}"
    );
    for t in [
        "_shop_scan_operations",
        "_shop_check_metrics",
        "_shop_failed_checks",
    ] {
        assert_eq!(count(&su, t, 2).await, 0, "{t} has no partial rows");
    }
    c.batch_execute("GRANT INSERT ON enrich._shop_source_records TO CURRENT_USER")
        .await
        .unwrap();
    write(&mut c, "enrich", "_shop", &role, &sample(2))
        .await
        .unwrap();
    assert_eq!(count(&su, "_shop_scan_operations", 2).await, 1);

    // without CREATE on the schema a new prefix cannot be set up
    su.batch_execute(&format!("REVOKE CREATE ON SCHEMA enrich FROM {role}"))
        .await
        .unwrap();
    let e = write(&mut c, "enrich", "_fresh", &role, &sample(3))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("GRANT USAGE, CREATE ON SCHEMA \"enrich\""),
        "{e}"
    );
}

#[tokio::test]
async fn dropping_removes_exactly_the_tables_assay_created() {
    let (_db, role, su, mut c) = setup("enrdrop").await;
    write(&mut c, "enrich", "_shop", &role, &sample(1))
        .await
        .unwrap();
    c.batch_execute("CREATE TABLE enrich._shop_mine (x int); CREATE TABLE enrich.other (x int)")
        .await
        .unwrap();
    let tx = c.transaction().await.unwrap();
    let dropped = layout::drop_all(&tx, "enrich", "_shop", &role)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(dropped.len(), 5, "{dropped:?}");
    let left: Vec<String> = su
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'enrich' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, vec!["_shop_mine".to_string(), "other".to_string()]);
}
