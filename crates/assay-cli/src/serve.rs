//! `assay serve`: opens the metadata store (the embedded cluster under `--data-dir`, or `--metadata-url`),
//! creates the admin on first start, and runs the API, the operation runner and the scheduler until Ctrl-C or SIGTERM.

use anyhow::{Context, Result};
use assay_server::AppState;
use assay_store::Store;
use assay_store::cluster::{Cluster, ClusterOptions};
use assay_store::crypto::Cipher;
use clap::Args;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio::sync::watch;

#[derive(Args, Clone)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, env = "ASSAY_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: String,
    /// Where the embedded metadata cluster and the key file live
    #[arg(long, env = "ASSAY_DATA_DIR", default_value = "./assay-data")]
    pub data_dir: PathBuf,
    /// An external PostgreSQL for the metadata (postgresql://user:password@host:port/db)
    #[arg(long, env = "ASSAY_METADATA_URL")]
    pub metadata_url: Option<String>,
    /// The 32-byte key that encrypts stored secrets (default: <data-dir>/secret.key, created when missing)
    #[arg(long, env = "ASSAY_KEY_FILE")]
    pub key_file: Option<PathBuf>,
}

/// A started server.
pub struct Running {
    pub addr: SocketAddr,

    pub embedded: Option<Cluster>,
    pub first_admin: Option<(String, String)>,
    stop: watch::Sender<bool>,
    http: tokio::task::JoinHandle<std::io::Result<()>>,
    runner: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops taking requests and work, waits for both to wind down, then stops the embedded cluster.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(true);
        let _ = self.http.await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(30), self.runner).await;
        if let Some(c) = self.embedded {
            tokio::task::spawn_blocking(move || c.stop()).await??;
        }
        Ok(())
    }
}

/// The embedded metadata cluster under `data_dir/pg`, created and started when needed; returns its URL.
pub async fn embedded_cluster(data_dir: &Path) -> Result<(Cluster, String)> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let pw_file = data_dir.join("pg-password");
    let password = match std::fs::read_to_string(&pw_file) {
        Ok(p) => p.trim().to_string(),
        Err(_) => {
            let bytes: [u8; 24] = rand::random();
            let p: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            std::fs::write(&pw_file, &p)
                .with_context(|| format!("cannot write {}", pw_file.display()))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&pw_file, std::fs::Permissions::from_mode(0o600))?;
            }
            p
        }
    };
    let opts = ClusterOptions {
        dir: data_dir.join("pg"),
        superuser_password: password,
        hba: None,
        extra_conf: vec![],
    };
    let cluster = tokio::task::spawn_blocking(move || -> Result<Cluster> {
        let c = Cluster::open_or_init(&opts)?;
        c.start()?;
        Ok(c)
    })
    .await??;
    let (client, conn) =
        tokio_postgres::connect(&cluster.superuser_url("postgres"), tokio_postgres::NoTls)
            .await
            .context("cannot connect to the embedded metadata cluster")?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = 'assay'", &[])
        .await?
        .is_some();
    if !exists {
        client.batch_execute("CREATE DATABASE assay").await?;
    }
    let url = cluster.superuser_url("assay");
    Ok((cluster, url))
}

/// Starts the server on `args.listen` (port 0 picks a free port).
pub async fn start(args: &ServeArgs) -> Result<Running> {
    let (embedded, url) = match &args.metadata_url {
        Some(u) => (None, u.clone()),
        None => {
            let (c, u) = embedded_cluster(&args.data_dir).await?;
            (Some(c), u)
        }
    };
    let key_file = args
        .key_file
        .clone()
        .unwrap_or_else(|| args.data_dir.join("secret.key"));
    let cipher = Cipher::load_or_create(&key_file)?;
    let store = Store::open(&url, cipher)
        .await
        .context("cannot open the metadata store")?;
    let mut state = AppState::new(store)
        .await
        .map_err(|e| anyhow::anyhow!(e.detail))?;
    let first_admin = assay_server::auth::bootstrap_admin(&state)
        .await
        .map_err(|e| anyhow::anyhow!(e.detail))?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let (stop, stop_rx) = watch::channel(false);
    state.ops.settings.public_url = format!("http://{addr}");
    let runner = assay_ops::runner::spawn(state.ops.clone(), stop_rx.clone());
    // stops with the same signal; an instant it has not claimed is claimed by another server or at restart
    assay_ops::scheduler::spawn(state.ops.clone(), stop_rx.clone());
    // deliveries it did not finish are retried by another server, or by this one after a restart
    assay_ops::flows::spawn(state.ops.clone(), stop_rx.clone());
    let mut http_stop = stop_rx;
    let http = tokio::spawn(assay_server::serve(listener, state.clone(), async move {
        let _ = http_stop.wait_for(|v| *v).await;
    }));
    Ok(Running {
        addr,
        embedded,
        first_admin,
        stop,
        http,
        runner,
    })
}

pub async fn run(args: ServeArgs) -> Result<crate::Outcome> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .init();
    let running = start(&args).await?;
    if let Some((password, token)) = &running.first_admin {
        println!("First start: created the admin user.");
        println!("  username: admin");
        println!("  password: {password}");
        println!("  API token: {token}");
        println!("Save them now; they are not shown again. Use the token with:");
        println!(
            "  assay auth init --url http://{} --token <token>",
            running.addr
        );
    }
    println!(
        "Assay is listening on http://{} (web UI at /, API under /api)",
        running.addr
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    println!("Shutting down…");
    running.shutdown().await?;
    Ok(crate::Outcome::Ok)
}
