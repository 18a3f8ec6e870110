//! The runner against a real metadata store: it stops when told to, and when the sender of its shutdown signal
//! is dropped (a host that forgets to say stop), instead of spinning on a closed channel.

use assay_ops::Context;
use assay_store::Store;
use assay_store::crypto::Cipher;
use assay_testkit::TestPg;
use std::time::Duration;

async fn context() -> Context {
    assay_secrets::install_crypto_provider();
    let pg = TestPg::shared();
    let db = pg.create_database("opsrunner").await;
    let store = Store::open(&pg.superuser_url(&db), Cipher::from_key(&[7; 32]))
        .await
        .expect("open the store");
    Context::new(store, assay_secrets::Resolver::default())
}

#[tokio::test]
async fn the_runner_stops_when_told_and_when_its_sender_is_dropped() {
    let ctx = context().await;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let runner = assay_ops::runner::spawn(ctx.clone(), rx);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!runner.is_finished(), "an idle runner waits for work");
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), runner)
        .await
        .expect("the runner stops when told")
        .unwrap();

    let (stop, rx) = tokio::sync::watch::channel(false);
    let runner = assay_ops::runner::spawn(ctx, rx);
    drop(stop);
    tokio::time::timeout(Duration::from_secs(5), runner)
        .await
        .expect("the runner stops when its sender is gone")
        .unwrap();
}
