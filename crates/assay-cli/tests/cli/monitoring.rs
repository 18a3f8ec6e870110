//! The seed flow's schedules and flows steps: a schedule created with a scan's typed parameters, changed,
//! disabled and deleted; a flow written in a file whose URL and secret come from the environment, tested and
//! executed on a sync; the volume measurements of a `measure` operation, listed.

use crate::common::*;
use serde_json::json;
use std::path::Path;
use std::process::Command;

pub async fn schedules_and_flows(home: &Path, src: &str) {
    let home = home.to_path_buf();
    // schedules: created with the typed parameters of a scan, changed, disabled, deleted
    let out = ok(
        &home,
        &[
            "schedules",
            "create",
            "--name",
            "nightly",
            "--datastore-id",
            src,
            "--type",
            "scan",
            "--preset",
            "daily",
            "--incremental",
            "true",
        ],
    );
    assert!(out.starts_with("Created schedule"), "{out}");
    let listed: serde_json::Value = serde_json::from_str(&ok(
        &home,
        &[
            "schedules",
            "list",
            "--datastore-id",
            src,
            "--format",
            "json",
        ],
    ))
    .unwrap();
    let sched = &listed[0];
    assert_eq!(sched["cron"], "0 0 * * *", "{listed}");
    assert_eq!(sched["incremental"], true, "{listed}");
    assert_eq!(
        sched["archive_duplicate_anomalies"], true,
        "a scan's defaults: {listed}"
    );
    let sid = sched["id"].to_string();
    ok(
        &home,
        &["schedules", "update", "--id", &sid, "--cron", "0 3 * * *"],
    );
    let got: serde_json::Value =
        serde_json::from_str(&ok(&home, &["schedules", "get", "--id", &sid])).unwrap();
    assert_eq!(
        (got["cron"].clone(), got["incremental"].clone()),
        (json!("0 3 * * *"), json!(true)),
        "{got}"
    );
    assert!(ok(&home, &["schedules", "disable", "--id", &sid]).contains("disabled"));
    let out = assay(
        &home,
        &["schedules", "update", "--id", &sid, "--cron", "whenever"],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cron"));
    ok(&home, &["schedules", "delete", "--id", &sid]);
    let listed: serde_json::Value = serde_json::from_str(&ok(
        &home,
        &[
            "schedules",
            "list",
            "--datastore-id",
            src,
            "--format",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(listed, json!([]));
    // flows: written in a file whose URL and secret come from the environment, tested, executed on a sync
    let rx = assay_testkit::Receiver::start().await;
    let file = tmp("cli-flow").join("flow.yaml");
    std::fs::write(
        &file,
        "name: cli alerts\ntrigger:\n  type: operation\n  operation_types: [sync]\nactions:\n  \
         - type: webhook\n    url: ${CLI_HOOK_URL}\n    secret: ${CLI_HOOK_SECRET}\n",
    )
    .unwrap();
    let flow_secret = "cli-flow-signing-secret-77";
    let out = Command::new(BIN)
        .args(["flows", "create", "--file", file.to_str().unwrap()])
        .env("ASSAY_CONFIG_HOME", &home)
        .env("CLI_HOOK_URL", rx.url("/cli"))
        .env("CLI_HOOK_SECRET", flow_secret)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fid = text
        .strip_prefix("Created flow ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("{text}"))
        .to_string();
    let shown = ok(&home, &["flows", "get", "--id", &fid]);
    assert!(
        shown.contains("cli alerts")
            && !shown.contains(flow_secret)
            && !shown.contains(&rx.addr.to_string()),
        "{shown}"
    );
    assert!(ok(&home, &["flows", "test", "--id", &fid]).contains("delivered"));
    let got = rx.wait_for(1, 10).await;
    assert_eq!(
        got[0].header("x-assay-signature"),
        Some(
            format!(
                "sha256={}",
                assay_ops::flows::sign(flow_secret, &got[0].body)
            )
            .as_str()
        )
    );
    ok(&home, &["operations", "sync", "--datastore-id", src]);
    rx.wait_for(2, 20).await;
    let mut listed = String::new();
    for _ in 0..50 {
        listed = ok(&home, &["flows", "executions", "--id", &fid]);
        if listed.contains("delivered") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        listed.contains("webhook") && listed.contains("delivered"),
        "{listed}"
    );
    assert!(ok(&home, &["flows", "deactivate", "--id", &fid]).contains("deactivated"));
    ok(&home, &["flows", "delete", "--id", &fid]);
    assert!(!ok(&home, &["flows", "list"]).contains("cli alerts"));

    // volume and freshness: a measure operation, and the container's measurements (the syncs measured too)
    let out = ok(&home, &["operations", "measure", "--datastore-id", src]);
    assert!(
        out.contains("Successfully finished measure operation"),
        "{out}"
    );
    let listed: serde_json::Value = serde_json::from_str(&ok(
        &home,
        &[
            "containers",
            "list",
            "--datastore-id",
            src,
            "--format",
            "json",
        ],
    ))
    .unwrap();
    let orders = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "orders")
        .unwrap()["id"]
        .to_string();
    let out = ok(&home, &["containers", "measurements", "--id", &orders]);
    let mut lines = out.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "MEASUREMENT_TIME",
            "ROW_COUNT",
            "SIZE_BYTES",
            "LAST_MODIFICATION_TIME",
            "METHOD"
        ],
        "{out}"
    );
    let rows: Vec<&str> = lines.collect();
    assert!(
        rows.len() >= 2,
        "a sync and the measure operation measured: {out}"
    );
    assert!(rows.iter().any(|r| r.contains("exact count")), "{out}");
}
