//! What the connector's tests share: a connection to the shared test cluster as a given role, and its
//! resolved parameters.

use assay_core::connection::{ConnectionSpec, Port};
use assay_postgres::{ConnectParams, Endpoint};
use assay_secrets::Resolver;
use assay_testkit::TestPg;
use serde_json::Map;

pub fn spec(user: &str, password: &str) -> ConnectionSpec {
    ConnectionSpec {
        name: "t".into(),
        connector: "postgresql".into(),
        host: "127.0.0.1".into(),
        port: Port::Number(TestPg::shared().port()),
        username: user.into(),
        password: Some(password.into()),
        parameters: Map::new(),
        max_parallelization: None,
        jdbc_fetch_size: None,
        secrets_manager: None,
    }
}

pub async fn params(spec: &ConnectionSpec, db: &str) -> ConnectParams {
    Endpoint {
        connection: spec,
        database: db,
    }
    .resolve(&Resolver::default())
    .await
    .unwrap()
}
