//! The one way operations and requests reach a datastore's source: resolve its connection (with the secrets
//! manager's `${key}` values, looked up anew each time this is called, never cached) and open a session.
//! Operations resolve once when they start and open every session of the run with those values, so a run
//! reads with one set of credentials from start to end; each request that needs the source resolves again.

use crate::{Context, OpsError};
use assay_postgres::ConnectParams;
use assay_store::connections::ConnectionRecord;
use assay_store::datastores::DatastoreRecord;

/// A datastore's connection parameters, with every `${key}` resolved through the secrets manager.
pub async fn resolve(ctx: &Context, ds: &DatastoreRecord) -> Result<ConnectParams, OpsError> {
    Ok(resolve_with_connection(ctx, ds).await?.0)
}

/// [`resolve`], also returning the stored connection (for its settings, such as `max_parallelization`).
pub async fn resolve_with_connection(
    ctx: &Context,
    ds: &DatastoreRecord,
) -> Result<(ConnectParams, ConnectionRecord), OpsError> {
    let conn = ctx.store.connection(ds.connection_id).await?;
    let params = assay_postgres::Endpoint {
        connection: &conn.spec,
        database: &ds.spec.database,
    }
    .resolve(&ctx.resolver)
    .await
    .map_err(|e| unreachable(ds, e))?;
    Ok((params, conn))
}

/// Resolves the datastore's connection and opens a session on its database, as the role may write.
pub async fn open(
    ctx: &Context,
    ds: &DatastoreRecord,
) -> Result<(tokio_postgres::Client, ConnectParams), OpsError> {
    let params = resolve(ctx, ds).await?;
    let client = params.connect().await.map_err(|e| unreachable(ds, e))?;
    Ok((client, params))
}

/// Resolves the datastore's connection and opens a read-only session (UTC, JIT off, the source-session
/// timeouts): how profiles, scans, computed containers and materialize read.
pub async fn open_read_only(
    ctx: &Context,
    ds: &DatastoreRecord,
) -> Result<(tokio_postgres::Client, ConnectParams), OpsError> {
    let params = resolve(ctx, ds).await?;
    let client = params
        .connect_read_only()
        .await
        .map_err(|e| unreachable(ds, e))?;
    Ok((client, params))
}

fn unreachable(ds: &DatastoreRecord, e: assay_postgres::PgError) -> OpsError {
    OpsError::Source(format!(
        "cannot connect to datastore '{}': {e}",
        ds.spec.name
    ))
}
