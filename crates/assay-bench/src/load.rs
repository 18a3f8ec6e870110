//! `assay-bench load`: the API under load. An in-process Assay server (the same router, runner and store as
//! `assay serve`) over a metadata database in the benchmark's cluster serves `--clients` concurrent API clients
//! for `--seconds`, each doing a fixed mix of reads (datastore list and get, containers, checks, anomalies,
//! operations, field profiles) and check edits (a PUT of a check's description, then of another check's
//! properties), while scans of the large `orders` table run back to back. It reports the requests, every
//! non-2xx answer by route kind and status, latency percentiles per route kind, whether every edit landed, and
//! the scan's wall time under load against the same scan without load (measured before and after, in the same
//! run). Then it builds a large catalog (`--datastores` datastores of `--tables` tables, with checks and
//! finished operations) and times the list pages of the API and the web UI's datastore cards page.

use anyhow::{Context, Result, bail};
use assay_core::catalog::{DiscoveredColumn, DiscoveredTable, FieldType, TableKind};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The knobs of one run.
pub struct Opts {
    pub clients: usize,
    pub seconds: u64,
    pub rows: i64,
    pub datastores: usize,
    pub tables: usize,
    pub page_reps: usize,
    /// Pause of each client between two requests (0: back to back, the stress case).
    pub think_ms: u64,
}

/// The route kinds of the mix, in the order a client cycles through them (one edit in eight requests).
const MIX: [&str; 8] = [
    "datastores.list",
    "datastores.get",
    "containers.list",
    "checks.put",
    "checks.list",
    "anomalies.list",
    "operations.list",
    "field_profiles.list",
];

/// An HTTP client of the in-process server, authenticated as the bootstrap admin.
#[derive(Clone)]
pub(super) struct Http {
    root: String,
    token: String,
    client: reqwest::Client,
}

/// One answer: status, body and the time from sending to the last byte.
struct Answer {
    status: u16,
    body: Value,
    ms: f64,
}

impl Http {
    fn fresh(&self) -> Http {
        Http {
            client: reqwest::Client::new(),
            ..self.clone()
        }
    }

    /// One request. A load client does not parse what it reads unless the status is an error (`parse` false),
    /// so that the load generator, which shares the machine with the server, costs as little CPU as it can.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        parse: bool,
    ) -> Result<Answer> {
        let t0 = Instant::now();
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.root))
            .bearer_auth(&self.token)
            .header("Cookie", format!("assay_session={}", self.token));
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        let body = if parse || !(200..300).contains(&status) {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        } else {
            Value::Null
        };
        Ok(Answer { status, body, ms })
    }

    async fn get(&self, path: &str) -> Result<Answer> {
        self.call(reqwest::Method::GET, path, None, true).await
    }

    /// A request that must succeed; returns its body.
    async fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let m = method.clone();
        let a = self.call(method, path, body.as_ref(), true).await?;
        if !(200..300).contains(&a.status) {
            bail!("{m} {path} answered {}: {}", a.status, a.body);
        }
        Ok(a.body)
    }

    /// A GET that must succeed; returns its body.
    pub(super) async fn get_ok(&self, path: &str) -> Result<Value> {
        self.ok(reqwest::Method::GET, path, None).await
    }

    pub(super) async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.ok(reqwest::Method::POST, path, Some(body)).await
    }

    /// Runs an operation to its end; returns the server's own wall time (end minus start) and the operation.
    async fn operation(&self, body: Value) -> Result<(f64, Value)> {
        let op = self.post("/api/operations/run", body).await?;
        let id = op["id"].as_i64().context("the operation has an id")?;
        loop {
            let op = self
                .ok(reqwest::Method::GET, &format!("/api/operations/{id}"), None)
                .await?;
            if !op["end_time"].is_null() {
                if op["result"] != "success" {
                    bail!(
                        "operation {id} ended as {}: {}",
                        op["result"],
                        op["message"]
                    );
                }
                let t = |k: &str| {
                    op[k]
                        .as_str()
                        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                        .with_context(|| format!("operation {id} has a {k}"))
                };
                let secs = (t("end_time")? - t("start_time")?)
                    .num_microseconds()
                    .unwrap_or(0) as f64
                    / 1e6;
                return Ok((secs, op));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The server: store, state, runner and listener in this process; stopped when dropped.
pub(super) struct Server {
    pub(super) http: Http,
    pub(super) state: assay_server::AppState,
    _stop: tokio::sync::watch::Sender<bool>,
}

pub(super) async fn start_server(meta_conninfo: &str) -> Result<Server> {
    let key: [u8; 32] = {
        let mut k = [0u8; 32];
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        for (i, b) in seed.bytes().enumerate() {
            k[i % 32] ^= b.rotate_left((i / 32) as u32);
        }
        k
    };
    let store =
        assay_store::Store::open(meta_conninfo, assay_store::crypto::Cipher::from_key(&key))
            .await?;
    let state = assay_server::AppState::new(store)
        .await
        .map_err(|e| anyhow::anyhow!("server state: {e:?}"))?;
    let (_, token) = assay_server::auth::bootstrap_admin(&state)
        .await
        .map_err(|e| anyhow::anyhow!("bootstrap admin: {e:?}"))?
        .context("a fresh metadata database has no admin yet")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, rx) = tokio::sync::watch::channel(false);
    assay_ops::runner::spawn(state.ops.clone(), rx.clone());
    let mut rx2 = rx;
    tokio::spawn(assay_server::serve(listener, state.clone(), async move {
        let _ = rx2.wait_for(|v| *v).await;
    }));
    Ok(Server {
        http: Http {
            root: format!("http://{addr}"),
            token,
            client: reqwest::Client::new(),
        },
        state,
        _stop: stop,
    })
}

/// `key=value` connection string for `database` with the credentials of `url`.
pub(super) fn conninfo(url: &str, database: &str) -> Result<String> {
    let p = super::params_of(url)?;
    let q = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"));
    Ok(format!(
        "host={} port={} user={} password={} dbname={} sslmode=disable",
        q(&p.host),
        p.port,
        q(&p.user),
        q(p.password.as_deref().unwrap_or("")),
        q(database)
    ))
}

/// What one client saw.
#[derive(Default)]
struct ClientLog {
    latency: BTreeMap<&'static str, Vec<f64>>,
    /// `kind status` (or `kind transport`) → count.
    errors: BTreeMap<String, u64>,
    samples: Vec<String>,
    edits: u64,
    /// The last description this client wrote to its own check and the last `value` it wrote to its
    /// neighbour's check.
    last_description: Option<String>,
    last_value: Option<i64>,
}

struct Fixture {
    datastore: i64,
    orders: i64,
    /// Client `i` edits the description of `edit_checks[i]` and the properties of `edit_checks[i + 1]`.
    edit_checks: Vec<i64>,
}

async fn client_loop(
    i: usize,
    http: Http,
    fx: Arc<Fixture>,
    stop: Arc<AtomicBool>,
    think: Duration,
) -> ClientLog {
    let mut log = ClientLog::default();
    let n = fx.edit_checks.len();
    let mut k = i;
    while !stop.load(Ordering::Relaxed) {
        if !think.is_zero() {
            tokio::time::sleep(think).await;
        }
        let kind = MIX[k % MIX.len()];
        k += 1;
        let (method, path, body, edit) = match kind {
            "datastores.list" => (
                reqwest::Method::GET,
                "/api/datastores".to_string(),
                None,
                None,
            ),
            "datastores.get" => (
                reqwest::Method::GET,
                format!("/api/datastores/{}", fx.datastore),
                None,
                None,
            ),
            "containers.list" => (
                reqwest::Method::GET,
                format!("/api/containers?datastore={}", fx.datastore),
                None,
                None,
            ),
            "checks.list" => (
                reqwest::Method::GET,
                format!("/api/quality-checks?datastore={}&size=50", fx.datastore),
                None,
                None,
            ),
            "anomalies.list" => (
                reqwest::Method::GET,
                format!("/api/anomalies?datastore={}", fx.datastore),
                None,
                None,
            ),
            "operations.list" => (
                reqwest::Method::GET,
                format!("/api/operations?datastore={}", fx.datastore),
                None,
                None,
            ),
            "field_profiles.list" => (
                reqwest::Method::GET,
                format!("/api/containers/{}/field-profiles", fx.orders),
                None,
                None,
            ),
            _ => {
                log.edits += 1;
                if log.edits % 2 == 1 {
                    let d = format!("client {i} edit {}", log.edits);
                    (
                        reqwest::Method::PUT,
                        format!("/api/quality-checks/{}", fx.edit_checks[i]),
                        Some(json!({"description": d})),
                        Some((Some(d), None)),
                    )
                } else {
                    let v = 1000 + (i as i64) * 1_000_000 + log.edits as i64;
                    (
                        reqwest::Method::PUT,
                        format!("/api/quality-checks/{}", fx.edit_checks[(i + 1) % n]),
                        Some(json!({"properties": {"value": v}})),
                        Some((None, Some(v))),
                    )
                }
            }
        };
        match http.call(method, &path, body.as_ref(), false).await {
            Ok(a) if (200..300).contains(&a.status) => {
                log.latency.entry(kind).or_default().push(a.ms);
                match edit {
                    Some((Some(d), _)) => log.last_description = Some(d),
                    Some((_, Some(v))) => log.last_value = Some(v),
                    _ => {}
                }
            }
            Ok(a) => {
                log.latency.entry(kind).or_default().push(a.ms);
                *log.errors
                    .entry(format!("{kind} {}", a.status))
                    .or_default() += 1;
                if log.samples.len() < 3 {
                    log.samples
                        .push(format!("{kind} {path}: {} {}", a.status, a.body));
                }
            }
            Err(e) => {
                *log.errors.entry(format!("{kind} transport")).or_default() += 1;
                if log.samples.len() < 3 {
                    log.samples.push(format!("{kind} {path}: {e}"));
                }
            }
        }
    }
    log
}

fn percentiles(mut v: Vec<f64>) -> Value {
    if v.is_empty() {
        return json!({"count": 0});
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1];
    let r = |x: f64| (x * 100.0).round() / 100.0;
    json!({"count": v.len(), "p50_ms": r(at(0.50)), "p95_ms": r(at(0.95)), "p99_ms": r(at(0.99)),
           "max_ms": r(v[v.len() - 1])})
}

/// The ten checks of the scan benchmark and one check per client to edit, through the API; returns the latter.
async fn create_checks(http: &Http, orders: i64, clients: usize) -> Result<Vec<i64>> {
    let statuses = [
        "pending",
        "paid",
        "shipped",
        "delivered",
        "cancelled",
        "returned",
    ];
    let checks = [
        ("notNull", "id", json!({})),
        ("notNull", "customer_id", json!({})),
        ("notNull", "created_at", json!({})),
        ("between", "amount", json!({"min": -1000, "max": 10000})),
        ("between", "quantity", json!({"min": 0, "max": 100})),
        (
            "matchesPattern",
            "email",
            json!({"pattern": "^[^@\\s]+@[^@\\s]+\\.[a-z]+$"}),
        ),
        ("unique", "id", json!({})),
        ("expectedValues", "status", json!({"list": statuses})),
        ("minValue", "amount", json!({"value": -1000})),
        ("maxValue", "amount", json!({"value": 10000})),
    ];
    for (rule, field, props) in checks {
        http.post(
            "/api/quality-checks",
            json!({"container_id": orders, "rule": rule, "fields": [field], "properties": props,
                   "description": format!("{rule} on {field}")}),
        )
        .await?;
    }
    // the checks the clients edit: scanned with the others, always passing
    let mut ids = Vec::new();
    for i in 0..clients {
        let c = http
            .post(
                "/api/quality-checks",
                json!({"container_id": orders, "rule": "maxValue", "fields": ["quantity"],
                       "properties": {"value": 1000}, "description": format!("edited by client {i}")}),
            )
            .await?;
        ids.push(c["id"].as_i64().context("a check id")?);
    }
    Ok(ids)
}

async fn load_phase(url: &str, o: &Opts, server: &Server) -> Result<(Value, i64)> {
    let http = &server.http;
    let p = super::params_of(url)?;
    let conn = http
        .post(
            "/api/connections",
            json!({"type": "postgresql", "name": "bench", "host": p.host, "port": p.port,
                   "username": p.user, "password": p.password}),
        )
        .await?;
    let connection = conn["id"].as_i64().context("a connection id")?;
    let ds = http
        .post(
            "/api/datastores",
            json!({"name": "orders", "connection_id": connection, "database": p.database, "schema": "public",
                   "trigger_sync": false}),
        )
        .await?;
    let datastore = ds["id"].as_i64().context("a datastore id")?;
    http.operation(json!({"datastore_id": datastore, "type": "sync"}))
        .await?;
    let listing = http
        .ok(
            reqwest::Method::GET,
            &format!("/api/containers/listing?datastore={datastore}"),
            None,
        )
        .await?;
    let orders = listing
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == "orders"))
        .and_then(|c| c["id"].as_i64())
        .context("the sync found public.orders")?;
    eprintln!("profiling orders");
    let (profile_s, _) = http
        .operation(json!({"datastore_id": datastore, "type": "profile"}))
        .await?;
    let edit_checks = create_checks(http, orders, o.clients.max(1)).await?;
    let scan = json!({"datastore_id": datastore, "type": "scan", "container_names": ["orders"]});
    eprintln!("scanning without load");
    // one warm-up scan; the scan's own time then varies by a tenth from run to run on a small machine, so four
    // runs before the load and four after it make the unloaded median
    http.operation(scan.clone()).await?;
    let mut unloaded = Vec::new();
    for _ in 0..4 {
        unloaded.push(http.operation(scan.clone()).await?.0);
    }

    eprintln!("{} clients for {} s while scans run", o.clients, o.seconds);
    let fx = Arc::new(Fixture {
        datastore,
        orders,
        edit_checks: edit_checks.clone(),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..o.clients)
        .map(|i| {
            tokio::spawn(client_loop(
                i,
                http.fresh(),
                fx.clone(),
                stop.clone(),
                Duration::from_millis(o.think_ms),
            ))
        })
        .collect();
    let mut loaded = Vec::new();
    while loaded.is_empty() || t0.elapsed() < Duration::from_secs(o.seconds) {
        loaded.push(http.operation(scan.clone()).await?.0);
    }
    stop.store(true, Ordering::Relaxed);
    let mut logs = Vec::new();
    for t in tasks {
        logs.push(t.await?);
    }
    let window = t0.elapsed().as_secs_f64();
    for _ in 0..4 {
        unloaded.push(http.operation(scan.clone()).await?.0);
    }

    // every client's last description and last value must be what the checks hold now
    let mut lost = Vec::new();
    for (j, id) in edit_checks.iter().enumerate() {
        let c = http
            .ok(
                reqwest::Method::GET,
                &format!("/api/quality-checks/{id}"),
                None,
            )
            .await?;
        if let Some(d) = &logs[j].last_description
            && c["description"] != *d
        {
            lost.push(format!(
                "check {id}: description {} instead of {d:?}",
                c["description"]
            ));
        }
        let writer = (j + o.clients - 1) % o.clients;
        if let Some(v) = logs[writer].last_value
            && c["properties"]["value"] != json!(v)
        {
            lost.push(format!(
                "check {id}: value {} instead of {v}",
                c["properties"]["value"]
            ));
        }
    }

    let mut latency: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut samples = Vec::new();
    let mut edits = 0;
    for l in logs {
        for (k, v) in l.latency {
            latency.entry(k).or_default().extend(v);
        }
        for (k, n) in l.errors {
            *errors.entry(k).or_default() += n;
        }
        samples.extend(l.samples);
        edits += l.edits;
    }
    let requests: usize = latency.values().map(Vec::len).sum();
    let all: Vec<f64> = latency.values().flatten().copied().collect();
    let error_count: u64 = errors.values().sum();
    let (um, lm) = (
        super::median(unloaded.clone()),
        super::median(loaded.clone()),
    );
    samples.truncate(10);
    Ok((
        json!({
            "clients": o.clients,
            "think_ms": o.think_ms,
            "window_s": window,
            "requests": requests,
            "requests_per_s": requests as f64 / window,
            "errors": error_count,
            "errors_by_kind_and_status": errors,
            "error_samples": samples,
            "edits": edits,
            "lost_updates": lost,
            "latency_all": percentiles(all),
            "latency_by_kind": latency.into_iter().map(|(k, v)| (k.to_string(), percentiles(v))).collect::<BTreeMap<_, _>>(),
            "profile_s": profile_s,
            "scan_unloaded_s": unloaded,
            "scan_loaded_s": loaded,
            "scan_unloaded_median_s": um,
            "scan_loaded_median_s": lm,
            "ratio_scan_loaded_to_unloaded": lm / um,
        }),
        connection,
    ))
}

/// `n` tables of eight columns as a sync would discover them.
fn synthetic_tables(n: usize) -> Vec<DiscoveredTable> {
    let col = |ordinal: i32, name: &str, native: &str, ft: FieldType, typname: &str, cat: &str| {
        DiscoveredColumn {
            name: name.into(),
            ordinal,
            native_type: native.into(),
            field_type: ft,
            typname: typname.into(),
            typcategory: cat.into(),
            nullable: ordinal > 1,
            sequence_backed: ordinal == 1,
            remarks: None,
        }
    };
    (0..n)
        .map(|t| DiscoveredTable {
            name: format!("table_{t:03}"),
            kind: TableKind::Table,
            row_estimate: Some(10_000 * (t as i64 + 1)),
            primary_key: vec!["id".into()],
            columns: vec![
                col(1, "id", "bigint", FieldType::Integral, "int8", "N"),
                col(
                    2,
                    "customer_id",
                    "integer",
                    FieldType::Integral,
                    "int4",
                    "N",
                ),
                col(3, "status", "text", FieldType::String, "text", "S"),
                col(
                    4,
                    "amount",
                    "numeric(12,2)",
                    FieldType::Fractional,
                    "numeric",
                    "N",
                ),
                col(5, "email", "text", FieldType::String, "text", "S"),
                col(6, "ship_date", "date", FieldType::Date, "date", "D"),
                col(
                    7,
                    "created_at",
                    "timestamp without time zone",
                    FieldType::Timestamp,
                    "timestamp",
                    "D",
                ),
                col(
                    8,
                    "updated_at",
                    "timestamp with time zone",
                    FieldType::Timestamp,
                    "timestamptz",
                    "D",
                ),
            ],
            remarks: None,
        })
        .collect()
}

async fn catalog_phase(
    url: &str,
    meta: &str,
    o: &Opts,
    server: &Server,
    connection: i64,
) -> Result<Value> {
    let http = &server.http;
    let t0 = Instant::now();
    let tables = synthetic_tables(o.tables);
    let kinds = vec!["table".to_string(), "view".to_string()];
    let mut ids = Vec::new();
    for d in 0..o.datastores {
        let ds = http
            .post(
                "/api/datastores",
                json!({"name": format!("catalog_{d:03}"), "connection_id": connection, "database": "postgres",
                       "schema": format!("s{d:03}"), "trigger_sync": false}),
            )
            .await?;
        let id = ds["id"].as_i64().context("a datastore id")?;
        server
            .state
            .store
            .apply_sync(id, &tables, false, &kinds, false, false)
            .await?;
        ids.push(id);
    }
    // checks and finished operations, as months of use leave them: two checks per table, twenty operations per
    // datastore
    let m = super::client(&conninfo(url, meta)?).await?;
    m.execute(
        "INSERT INTO quality_checks (container_id, rule_type, description, fields, properties, status, last_editor) \
         SELECT k.id, r.rule, r.rule || ' on ' || r.field, jsonb_build_array(r.field), r.props, 'Active', 'admin' \
         FROM containers k CROSS JOIN (VALUES ('notNull', 'id', '{}'::jsonb), \
                                              ('between', 'amount', '{\"min\": 0, \"max\": 1000}'::jsonb)) r(rule, field, props) \
         WHERE k.datastore_id = ANY($1)",
        &[&ids],
    )
    .await?;
    m.execute(
        "INSERT INTO operations (type, datastore_id, result, message, triggered_by, created, start_time, end_time) \
         SELECT (ARRAY['sync', 'profile', 'scan'])[1 + n % 3], d, 'success', 'done', 'admin', \
                now() - (n || ' hours')::interval, now() - (n || ' hours')::interval, \
                now() - (n || ' hours')::interval + interval '1 minute' \
         FROM unnest($1::bigint[]) d CROSS JOIN generate_series(1, 20) n",
        &[&ids],
    )
    .await?;
    // five anomalies per table, one in five of them still open
    m.execute(
        "INSERT INTO anomalies (uuid, datastore_id, container_id, type, status, anomalous_records_count, fingerprint, \
           message, archived_at) \
         SELECT md5(k.id::text || '-' || n)::uuid, k.datastore_id, k.id, 'shape', \
                CASE WHEN n % 5 = 0 THEN 'Active' ELSE 'Resolved' END, n, md5(k.id::text || '/' || n), \
                'amount is out of range in ' || n || ' rows', CASE WHEN n % 5 = 0 THEN NULL ELSE now() END \
         FROM containers k CROSS JOIN generate_series(1, 5) n WHERE k.datastore_id = ANY($1)",
        &[&ids],
    )
    .await?;
    m.execute(
        "INSERT INTO anomaly_checks (anomaly_id, check_id, message) \
         SELECT a.id, q.id, 'amount is out of range' FROM anomalies a \
         JOIN quality_checks q ON q.container_id = a.container_id AND q.rule_type = 'between' \
         WHERE a.datastore_id = ANY($1)",
        &[&ids],
    )
    .await?;
    m.batch_execute("ANALYZE").await?;
    let build_s = t0.elapsed().as_secs_f64();
    let count = |sql: &'static str| {
        let m = &m;
        async move { Ok::<i64, anyhow::Error>(m.query_one(sql, &[]).await?.get(0)) }
    };
    let sizes = json!({
        "datastores": count("SELECT count(*) FROM datastores").await?,
        "containers": count("SELECT count(*) FROM containers").await?,
        "fields": count("SELECT count(*) FROM fields").await?,
        "checks": count("SELECT count(*) FROM quality_checks").await?,
        "operations": count("SELECT count(*) FROM operations").await?,
        "anomalies": count("SELECT count(*) FROM anomalies").await?,
    });
    let mid = ids.get(ids.len() / 2).copied().unwrap_or_default();
    let pages = [
        "/api/datastores".to_string(),
        format!("/api/datastores/{mid}"),
        format!("/api/containers?datastore={mid}"),
        format!("/api/containers/listing?datastore={mid}"),
        "/api/containers".to_string(),
        "/api/quality-checks".to_string(),
        format!("/api/quality-checks?datastore={mid}"),
        "/api/anomalies".to_string(),
        format!("/api/anomalies?datastore={mid}"),
        "/api/operations".to_string(),
        format!("/api/operations?datastore={mid}"),
        "/datastores".to_string(),
    ];
    let mut out = BTreeMap::new();
    for page in pages {
        let mut v = Vec::new();
        let mut bytes = 0;
        for rep in 0..o.page_reps + 3 {
            let a = http.get(&page).await?;
            if a.status != 200 {
                bail!("GET {page} answered {}: {}", a.status, a.body);
            }
            bytes = a.body.to_string().len();
            if rep >= 3 {
                v.push(a.ms);
            }
        }
        let mut p = percentiles(v);
        p["bytes"] = json!(bytes);
        out.insert(page, p);
    }
    Ok(json!({"tables_per_datastore": o.tables, "build_s": build_s, "store": sizes, "pages": out}))
}

/// The whole benchmark against the server at `url` (a superuser URL; `public.orders` is made if absent).
pub async fn run(url: &str, o: &Opts) -> Result<()> {
    let su = super::client(url).await?;
    super::ensure_orders(&su, o.rows).await?;
    su.batch_execute("VACUUM ANALYZE public.orders").await?;
    let meta = format!("assay_load_{}", std::process::id());
    su.batch_execute(&format!("CREATE DATABASE {meta}")).await?;
    let result = async {
        let server = start_server(&conninfo(url, &meta)?).await?;
        let (load, connection) = load_phase(url, o, &server).await?;
        let catalog = if o.datastores > 0 {
            eprintln!(
                "building a catalog of {} datastores x {} tables",
                o.datastores, o.tables
            );
            catalog_phase(url, &meta, o, &server, connection).await?
        } else {
            Value::Null
        };
        drop(server);
        Ok::<_, anyhow::Error>(
            json!({"rows": o.rows, "seconds": o.seconds, "load": load, "catalog": catalog,
                                      "peak_rss_mb": super::peak_rss_mb()}),
        )
    }
    .await;
    let _ = su
        .batch_execute(&format!("DROP DATABASE IF EXISTS {meta} WITH (FORCE)"))
        .await;
    println!("{}", serde_json::to_string_pretty(&result?)?);
    Ok(())
}
