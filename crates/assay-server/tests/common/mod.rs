//! The harness of the API tests: a server on a free port with its own metadata database in the shared test
//! cluster, an admin token, and helpers for requests and fixtures. Logs of every server go to one buffer so
//! tests can check that no secret is ever logged.

#![allow(dead_code)]

pub mod checks;

use assay_server::AppState;
use assay_store::Store;
use assay_store::crypto::Cipher;
use assay_testkit::TestPg;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Everything the servers of this test binary logged.
pub fn logs() -> String {
    String::from_utf8_lossy(&LOG.get_or_init(Default::default).lock().unwrap()).into_owned()
}

static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

struct Sink;
impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.get_or_init(Default::default)
            .lock()
            .unwrap()
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logging() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use tracing_subscriber::Layer;
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        // everything at DEBUG and above, from every target (the fixtures create roles with SCRAM verifiers, so
        // their statements carry no password)
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(|| Sink)
            .with_filter(tracing_subscriber::filter::LevelFilter::DEBUG);
        tracing_subscriber::registry().with(layer).init();
    });
}

pub struct Api {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
    pub state: AppState,
    pub metadata_db: String,
    pub key: [u8; 32],
    _stop: tokio::sync::watch::Sender<bool>,
}

pub struct Resp {
    pub status: u16,
    pub body: Value,
}

impl Api {
    /// A fresh server with its own metadata database.
    pub async fn start() -> Api {
        init_logging();
        let pg = TestPg::shared();
        let db = pg.create_database("meta").await;
        Self::start_on(&db, rand_key()).await
    }

    /// A server on an existing metadata database (a restart).
    pub async fn start_on(db: &str, key: [u8; 32]) -> Api {
        Self::start_with(db, key, Self::test_settings()).await
    }

    /// How the test servers pace operations: schedules in seconds, looked at five times a second, so schedule
    /// tests stay short; notifications retried from 0.3 s and delivered only on this machine.
    pub fn test_settings() -> assay_ops::Settings {
        assay_ops::Settings {
            schedule_tick: std::time::Duration::from_millis(200),
            min_schedule_interval: 1,
            flows_tick: std::time::Duration::from_millis(100),
            retry_base: std::time::Duration::from_millis(300),
            public_url: "http://assay.test".into(),
            // flows written by the fuzzer never reach beyond this machine
            loopback_only: true,
            ..assay_ops::Settings::default()
        }
    }

    /// A server on an existing metadata database with its own pace.
    pub async fn start_with(db: &str, key: [u8; 32], settings: assay_ops::Settings) -> Api {
        init_logging();
        assay_secrets::install_crypto_provider();
        let pg = TestPg::shared();
        let store = Store::open(&pg.superuser_url(db), Cipher::from_key(&key))
            .await
            .expect("open store");
        let mut state = AppState::new(store).await.expect("state");
        state.ops.settings = settings;
        let admin = assay_server::auth::bootstrap_admin(&state)
            .await
            .expect("bootstrap");
        let token = match admin {
            Some((_, t)) => t,
            None => {
                let admin = state
                    .store
                    .user_by_username("admin")
                    .await
                    .unwrap()
                    .unwrap()
                    .0;
                assay_server::auth::issue_token(&state, admin.id, "test", Some(30))
                    .await
                    .unwrap()
                    .1
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, rx) = tokio::sync::watch::channel(false);
        assay_ops::runner::spawn(state.ops.clone(), rx.clone());
        assay_ops::scheduler::spawn(state.ops.clone(), rx.clone());
        assay_ops::flows::spawn(state.ops.clone(), rx.clone());
        let mut rx2 = rx;
        tokio::spawn(assay_server::serve(listener, state.clone(), async move {
            let _ = rx2.wait_for(|v| *v).await;
        }));
        Api {
            base: format!("http://{addr}/api"),
            token,
            http: reqwest::Client::new(),
            state,
            metadata_db: db.to_string(),
            key,
            _stop: stop,
        }
    }

    /// Stops this server as `serve` does on shutdown: its runner stops claiming work and its listener closes.
    /// Returns once its port refuses connections (10 s at most).
    pub async fn stop(self) {
        self._stop
            .send(true)
            .expect("the server still listens for the stop");
        let addr = self
            .base
            .trim_start_matches("http://")
            .trim_end_matches("/api")
            .to_string();
        drop(self);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(&addr).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server at {addr} still accepts connections after its stop");
    }

    pub async fn call_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        let url = format!("{}{path}", self.base);
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(m, &url)
            .header("Content-Type", "application/json");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Resp { status, body }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.call_as(Some(&self.token.clone()), method, path, body)
            .await
    }
    pub async fn get(&self, path: &str) -> Resp {
        self.call("GET", path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.call("POST", path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.call("PUT", path, Some(body)).await
    }

    /// POST that must succeed; returns the body.
    pub async fn ok(&self, path: &str, body: Value) -> Value {
        let r = self.post(path, body).await;
        assert!(
            (200..300).contains(&r.status),
            "POST {path}: {} {}",
            r.status,
            r.body
        );
        r.body
    }

    /// Waits until the operation has an end time; returns it.
    pub async fn wait(&self, op_id: i64) -> Value {
        for _ in 0..300 {
            let op = self.get(&format!("/operations/{op_id}")).await.body;
            if !op["end_time"].is_null() {
                return op;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("operation {op_id} did not finish");
    }

    /// Runs a sync and waits for it.
    pub async fn sync(&self, datastore_id: i64, extra: Value) -> Value {
        let mut body = json!({"datastore_id": datastore_id, "type": "sync"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let op = self.ok("/operations/run", body).await;
        self.wait(op["id"].as_i64().unwrap()).await
    }

    /// A connection body to the test cluster.
    pub fn conn_body(name: &str, user: &str, password: &str) -> Value {
        json!({"type": "postgresql", "name": name, "host": "127.0.0.1", "port": TestPg::shared().port(),
               "username": user, "password": password})
    }
}

pub fn rand_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    let u = format!(
        "{:?}{}",
        std::time::SystemTime::now(),
        assay_testkit::unique("k")
    );
    for (i, b) in u.bytes().enumerate() {
        k[i % 32] ^= b.rotate_left((i / 32) as u32);
    }
    k
}

/// A source database with a `sales` schema, a read-only role with the seed's grants, and a read-write role on
/// an `enrich` schema. Returns (database, reader, writer).
pub async fn shop(prefix: &str) -> (String, String, String) {
    let pg = TestPg::shared();
    let db = pg.create_database(prefix).await;
    let reader = assay_testkit::unique("reader");
    let writer = assay_testkit::unique("writer");
    pg.create_role(&reader, "readerpw").await;
    pg.create_role(&writer, "writerpw").await;
    let su = pg.superuser(&db).await;
    su.batch_execute(&format!(
        "CREATE SCHEMA sales; CREATE SCHEMA enrich;
         CREATE TABLE sales.orders (id bigserial PRIMARY KEY, total numeric, updated_at timestamptz);
         CREATE TABLE sales.customers (id int PRIMARY KEY, email text);
         CREATE VIEW sales.big AS SELECT * FROM sales.orders WHERE total > 100;
         GRANT USAGE ON SCHEMA sales TO {reader};
         GRANT SELECT ON ALL TABLES IN SCHEMA sales TO {reader};
         GRANT SELECT ON ALL SEQUENCES IN SCHEMA sales TO {reader};
         ALTER DEFAULT PRIVILEGES IN SCHEMA sales GRANT SELECT ON TABLES TO {reader};
         GRANT USAGE, CREATE ON SCHEMA enrich TO {writer};
         ALTER DEFAULT PRIVILEGES IN SCHEMA enrich GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {writer};"
    ))
    .await
    .unwrap();
    (db, reader, writer)
}
