//! `assay serve`: opens the metadata store (the embedded cluster under `--data-dir`, or `--metadata-url`),
//! creates the admin on first start, and runs the API, the operation runner, the scheduler and the
//! notification dispatcher until Ctrl-C or SIGTERM. Shutdown stops taking requests and work, lets in-flight
//! requests finish, and gives running operations the grace period before they are stopped and queued again.

pub mod config;
mod file;
pub mod key;
mod logs;

pub use config::{Config, ServeArgs};

use anyhow::{Context, Result};
use assay_server::AppState;
use assay_store::Store;
use assay_store::cluster::{Cluster, ClusterOptions};
use assay_store::crypto::Cipher;
use std::net::SocketAddr;
use std::path::Path;
use tokio::sync::watch;

/// A started server.
pub struct Running {
    pub addr: SocketAddr,
    /// The separate metrics listener's address, when one is configured.
    pub metrics_addr: Option<SocketAddr>,

    pub embedded: Option<Cluster>,
    pub first_admin: Option<(String, String)>,
    stop: watch::Sender<bool>,
    http: tokio::task::JoinHandle<std::io::Result<()>>,
    runner: tokio::task::JoinHandle<()>,
    grace: std::time::Duration,
}

impl Running {
    /// Stops taking requests and work, waits for both to wind down (a running operation gets the grace period,
    /// then a while to stop at its next step), then stops the embedded cluster.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(true);
        let _ = self.http.await;
        let wind_down = self.grace + std::time::Duration::from_secs(60);
        if tokio::time::timeout(wind_down, self.runner).await.is_err() {
            tracing::warn!(
                "the running operation did not stop in time; the sweep of another server or of the next start ends it"
            );
        }
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

/// The metadata store's URL: the external one configured, or the embedded cluster's (started here).
pub async fn metadata(args: &Config) -> Result<(Option<Cluster>, String)> {
    Ok(match &args.metadata_url {
        Some(u) => (None, u.clone()),
        None => {
            let (c, u) = embedded_cluster(&args.data_dir).await?;
            (Some(c), u)
        }
    })
}

/// Starts the server on `args.listen` (port 0 picks a free port).
pub async fn start(args: &Config) -> Result<Running> {
    let (embedded, url) = metadata(args).await?;
    let key_file = args.key_file();
    let cipher = Cipher::load_or_create(&key_file)?;
    let store = Store::open(&url, cipher)
        .await
        .context("cannot open the metadata store")?;
    let mut state = AppState::new(store)
        .await
        .map_err(|e| anyhow::anyhow!(e.detail))?;
    state.ops.settings = args.ops_settings();
    state.metrics_token =
        assay_server::metrics::MetricsToken(args.metrics_token.as_deref().map(Into::into));
    let first_admin = assay_server::auth::bootstrap_admin(&state)
        .await
        .map_err(|e| anyhow::anyhow!(e.detail))?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let (stop, stop_rx) = watch::channel(false);
    state.ops.settings.public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let mut metrics_addr = None;
    if let Some(listen) = &args.metrics_listen {
        let metrics = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen} (metrics)"))?;
        metrics_addr = Some(metrics.local_addr()?);
        let mut stopped = stop_rx.clone();
        tokio::spawn(assay_server::serve_metrics(
            metrics,
            state.clone(),
            async move {
                let _ = stopped.wait_for(|v| *v).await;
            },
        ));
    }
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
        metrics_addr,
        embedded,
        first_admin,
        stop,
        http,
        runner,
        grace: args.shutdown_grace,
    })
}

pub async fn run(args: ServeArgs) -> Result<crate::Outcome> {
    let config = Config::resolve(&args).map_err(crate::usage::Usage::from)?;
    logs::init(config.log_format, &config.log_level);
    let running = start(&config).await?;
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
    if let Some(m) = running.metrics_addr {
        println!("Metrics at http://{m}/metrics");
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
