//! A private PostgreSQL cluster for a metadata store that tests stop and start again.

use assay_store::cluster::{Cluster, ClusterOptions};

/// A private PostgreSQL cluster for the metadata store (it gets restarted), removed when dropped.
pub struct MetaCluster(pub Cluster);

impl MetaCluster {
    pub fn start() -> MetaCluster {
        let dir = std::env::temp_dir().join(assay_testkit::unique("assay-restart-meta"));
        let opts = ClusterOptions {
            dir: dir.clone(),
            superuser_password: "metapw".into(),
            hba: None,
            extra_conf: vec!["fsync = off".into()],
        };
        let c = Cluster::open_or_init(&opts).expect("init the metadata cluster");
        c.hand_over(&dir).unwrap();
        c.start().expect("start the metadata cluster");
        MetaCluster(c)
    }
}

impl MetaCluster {
    /// A started cluster with the empty database `assay` for a metadata store.
    pub async fn with_store_database() -> MetaCluster {
        let cluster = MetaCluster::start();
        let (admin, conn) =
            tokio_postgres::connect(&cluster.0.superuser_url("postgres"), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(conn);
        admin.batch_execute("CREATE DATABASE assay").await.unwrap();
        cluster
    }

    /// Stops the cluster (a fast shutdown), off the async runtime.
    pub async fn down(&self) {
        let c = self.0.clone();
        tokio::task::spawn_blocking(move || c.stop())
            .await
            .unwrap()
            .unwrap();
    }

    /// Starts it again.
    pub async fn up(&self) {
        let c = self.0.clone();
        tokio::task::spawn_blocking(move || c.start())
            .await
            .unwrap()
            .unwrap();
    }
}

impl Drop for MetaCluster {
    fn drop(&mut self) {
        let _ = self.0.stop_immediate();
        let _ = std::fs::remove_dir_all(&self.0.dir);
    }
}
