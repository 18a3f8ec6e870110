//! The throwaway PostgreSQL cluster for integration tests.

use assay_store::cluster::{Cluster, ClusterOptions};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

pub const SUPERUSER_PASSWORD: &str = "superpw";

/// A second loopback address the cluster also listens on, allowed in pg_hba like 127.0.0.1 but absent from the
/// server certificate (which names only `localhost` and 127.0.0.1): `verify-full` must refuse it, `verify-ca`
/// must accept it.
pub const UNCERTIFIED_HOST: &str = "127.0.0.2";

/// A running test cluster. Roles that tests log in with must be members of `dq_allowed` (see pg_hba below),
/// except `dq_nohba` (no pg_hba entry), `dq_rejected` (a reject line) and `dq_sslonly` (hostssl only).
pub struct TestPg {
    pub cluster: Cluster,
    /// PEM of the CA that signed the server certificate.
    pub ca_pem: String,
    pub ca_path: PathBuf,
}

impl TestPg {
    /// The cluster shared by every test of this binary.
    pub fn shared() -> &'static TestPg {
        static PG: OnceLock<TestPg> = OnceLock::new();
        PG.get_or_init(|| TestPg::start().expect("start the test PostgreSQL cluster"))
    }

    /// A second cluster, configured like the shared one, that only its caller uses: a test may stop and start it
    /// (`cluster.stop_immediate()`, `cluster.start()`) without touching the shared cluster where metadata stores
    /// live. Stopped and removed when the binary exits.
    pub fn start_private() -> TestPg {
        TestPg::start().expect("start a private test PostgreSQL cluster")
    }

    fn start() -> Result<TestPg, String> {
        let dir = std::env::temp_dir().join(crate::unique("assay-test-pg"));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        make_certificates(&dir)?;
        let hba = vec![
            "local all postgres scram-sha-256".to_string(),
            "host all dq_rejected 127.0.0.1/32 reject".to_string(),
            "host all postgres 127.0.0.1/32 scram-sha-256".to_string(),
            "hostssl all dq_sslonly 127.0.0.1/32 scram-sha-256".to_string(),
            "host all +dq_allowed 127.0.0.1/32 scram-sha-256".to_string(),
            format!("host all +dq_allowed {UNCERTIFIED_HOST}/32 scram-sha-256"),
            "# dq_ghost never exists: logging in as it fails authentication (28P01) like a wrong password".to_string(),
            "host all dq_ghost 127.0.0.1/32 scram-sha-256".to_string(),
            "# any role outside dq_allowed (dq_nohba) matches no line: 'no pg_hba.conf entry' (28000)".to_string(),
        ];
        let opts = ClusterOptions {
            dir: dir.clone(),
            superuser_password: SUPERUSER_PASSWORD.to_string(),
            hba: Some(hba),
            extra_conf: vec![
                format!("listen_addresses = '127.0.0.1,{UNCERTIFIED_HOST}'"),
                "track_commit_timestamp = on".into(),
                "fsync = off".into(),
                "synchronous_commit = off".into(),
                "full_page_writes = off".into(),
                "max_connections = 200".into(),
                "ssl = on".into(),
                format!("ssl_cert_file = '{}'", dir.join("server.crt").display()),
                format!("ssl_key_file = '{}'", dir.join("server.key").display()),
            ],
        };
        let cluster = Cluster::open_or_init(&opts).map_err(|e| e.to_string())?;
        cluster.hand_over(&dir).map_err(|e| e.to_string())?;
        cluster.start().map_err(|e| e.to_string())?;
        let stopper = cluster.clone();
        crate::at_exit(move || {
            let _ = stopper.stop_immediate();
            let _ = std::fs::remove_dir_all(&stopper.dir);
        });
        let ca_path = dir.join("ca.crt");
        let ca_pem = std::fs::read_to_string(&ca_path).map_err(|e| e.to_string())?;
        let pg = TestPg {
            cluster,
            ca_pem,
            ca_path,
        };
        pg.exec_blocking(
            "postgres",
            "CREATE ROLE dq_allowed NOLOGIN; \
             CREATE ROLE dq_nohba LOGIN PASSWORD 'nohbapw'; \
             CREATE ROLE dq_rejected LOGIN PASSWORD 'rejectedpw' IN ROLE dq_allowed; \
             CREATE ROLE dq_sslonly LOGIN PASSWORD 'sslonlypw';",
        )?;
        Ok(pg)
    }

    pub fn port(&self) -> u16 {
        self.cluster.port
    }

    pub fn superuser_url(&self, db: &str) -> String {
        self.cluster.superuser_url(db)
    }

    /// A superuser session on `db`.
    pub async fn superuser(&self, db: &str) -> tokio_postgres::Client {
        let (client, conn) =
            tokio_postgres::connect(&self.superuser_url(db), tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("superuser connect to {db}: {e}"));
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
    }

    /// Creates a fresh database and returns its name.
    pub async fn create_database(&self, prefix: &str) -> String {
        let name = crate::unique(prefix);
        self.superuser("postgres")
            .await
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create test database");
        name
    }

    /// Creates a login role allowed by pg_hba (member of `dq_allowed`). The statement carries the password's
    /// SCRAM verifier, not the password, so a test that searches the logs for it finds only what Assay logged.
    pub async fn create_role(&self, name: &str, password: &str) {
        let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
        self.superuser("postgres")
            .await
            .batch_execute(&format!(
                "CREATE ROLE \"{name}\" LOGIN PASSWORD '{verifier}' IN ROLE dq_allowed"
            ))
            .await
            .expect("create test role");
    }

    fn exec_blocking(&self, db: &str, sql: &str) -> Result<(), String> {
        let url = self.superuser_url(db);
        let sql = sql.to_string();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                client.batch_execute(&sql).await.map_err(|e| e.to_string())
            })
        })
        .join()
        .map_err(|_| "fixture thread panicked".to_string())?
    }
}

/// A CA and a server certificate for localhost/127.0.0.1 signed by it (rustls refuses a self-signed leaf); not
/// for [`UNCERTIFIED_HOST`].
pub(crate) fn make_certificates(dir: &std::path::Path) -> Result<(), String> {
    let run = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=assay-test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ])?;
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ])?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| e.to_string())?;
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.crt",
    ])?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}
