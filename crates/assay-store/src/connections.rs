//! Connections: stored with the password and the secrets manager's credentials payload encrypted.

use crate::cached::Cached;
use crate::db::{Store, Viewer};
use crate::error::{StoreError, unique_as_conflict};
use crate::users::TeamRef;
use assay_core::connection::{ConnectionSpec, Port, SecretsManager};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

#[derive(Debug, Clone)]
pub struct ConnectionRecord {
    pub id: i64,
    pub spec: ConnectionSpec,
    pub created: DateTime<Utc>,
    /// The datastores using this connection (id and name).
    pub datastores: Vec<TeamRef>,
}

const COLS: &str = "c.id, c.name, c.type, c.host, c.port, c.username, c.password_enc, c.parameters, \
    c.max_parallelization, c.jdbc_fetch_size, c.secrets_manager, c.credentials_enc, c.created, \
    COALESCE((SELECT json_agg(json_build_object('id', d.id, 'name', d.name) ORDER BY d.id) \
              FROM datastores d WHERE d.connection_id = c.id), '[]'::json)";

impl Store {
    fn connection_of(&self, r: &tokio_postgres::Row) -> Result<ConnectionRecord, StoreError> {
        let port: String = r.get(4);
        let port = match port.parse::<u16>() {
            Ok(n) => Port::Number(n),
            Err(_) => Port::Reference(port),
        };
        let password = r
            .get::<_, Option<Vec<u8>>>(6)
            .map(|b| self.cipher.decrypt(&b))
            .transpose()?;
        let parameters: Value = r.get(7);
        let sm: Option<Value> = r.get(10);
        let credentials = r
            .get::<_, Option<Vec<u8>>>(11)
            .map(|b| self.cipher.decrypt(&b))
            .transpose()?;
        let secrets_manager = match sm {
            Some(v) => {
                let g = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
                Some(SecretsManager {
                    login_url: g("login_url"),
                    credentials_payload: credentials,
                    token_jsonpath: g("token_jsonpath").unwrap_or_default(),
                    secret_url: g("secret_url").unwrap_or_default(),
                    token_header_name: g("token_header_name").unwrap_or_default(),
                    data_jsonpath: g("data_jsonpath").unwrap_or_default(),
                })
            }
            None => None,
        };
        let ds: Value = r.get(13);
        let datastores = ds
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| {
                        Some(TeamRef {
                            id: d.get("id")?.as_i64()?,
                            name: d.get("name")?.as_str()?.to_string(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(ConnectionRecord {
            id: r.get(0),
            spec: ConnectionSpec {
                name: r.get(1),
                connector: r.get(2),
                host: r.get(3),
                port,
                username: r.get(5),
                password,
                parameters: match parameters {
                    Value::Object(m) => m,
                    _ => Map::new(),
                },
                max_parallelization: r.get(8),
                jdbc_fetch_size: r.get(9),
                secrets_manager,
            },
            created: r.get(12),
            datastores,
        })
    }

    fn sm_columns(&self, spec: &ConnectionSpec) -> (Option<Value>, Option<Vec<u8>>) {
        match &spec.secrets_manager {
            Some(sm) => (
                Some(serde_json::json!({
                    "login_url": sm.login_url,
                    "token_jsonpath": sm.token_jsonpath,
                    "secret_url": sm.secret_url,
                    "token_header_name": sm.token_header_name,
                    "data_jsonpath": sm.data_jsonpath,
                })),
                sm.credentials_payload
                    .as_deref()
                    .map(|p| self.cipher.encrypt(p)),
            ),
            None => (None, None),
        }
    }

    pub async fn create_connection(
        &self,
        spec: &ConnectionSpec,
    ) -> Result<ConnectionRecord, StoreError> {
        let (sm, creds) = self.sm_columns(spec);
        let password = spec.password.as_deref().map(|p| self.cipher.encrypt(p));
        let c = self.client().await?;
        let row = c
            .q_one(
                "INSERT INTO connections (name, type, host, port, username, password_enc, parameters, \
                   max_parallelization, jdbc_fetch_size, secrets_manager, credentials_enc) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
                &[
                    &spec.name,
                    &spec.connector,
                    &spec.host,
                    &spec.port.as_text(),
                    &spec.username,
                    &password,
                    &Value::Object(spec.parameters.clone()),
                    &spec.max_parallelization,
                    &spec.jdbc_fetch_size,
                    &sm,
                    &creds,
                ],
            )
            .await
            .map_err(|e| unique_as_conflict(e, || format!("a connection named '{}' already exists", spec.name)))?;
        drop(c);
        self.connection(row.get(0)).await
    }

    pub async fn connection(&self, id: i64) -> Result<ConnectionRecord, StoreError> {
        let c = self.client().await?;
        let row = c
            .q_opt(
                &format!("SELECT {COLS} FROM connections c WHERE c.id = $1"),
                &[&id],
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("connection {id} not found")))?;
        self.connection_of(&row)
    }

    pub async fn connection_by_name(
        &self,
        name: &str,
    ) -> Result<Option<ConnectionRecord>, StoreError> {
        let c = self.client().await?;
        let row = c
            .q_opt(
                &format!("SELECT {COLS} FROM connections c WHERE c.name = $1"),
                &[&name],
            )
            .await?;
        row.map(|r| self.connection_of(&r)).transpose()
    }

    /// The ids among `ids` of the datastores `viewer` may see.
    pub async fn visible_datastore_ids(
        &self,
        viewer: &Viewer,
        ids: &[i64],
    ) -> Result<Vec<i64>, StoreError> {
        if viewer.is_admin || ids.is_empty() {
            return Ok(ids.to_vec());
        }
        let c = self.client().await?;
        let rows = c
            .q(
                &format!(
                    "SELECT d.id FROM datastores d WHERE d.id = ANY($3) AND {}",
                    crate::visible!("d.id")
                ),
                &[&viewer.is_admin, &viewer.user_id, &ids],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Lists only the datastores `viewer` may see in `rec.datastores`; returns whether that is all of them.
    async fn restrict(
        &self,
        rec: &mut ConnectionRecord,
        viewer: &Viewer,
    ) -> Result<bool, StoreError> {
        let all: Vec<i64> = rec.datastores.iter().map(|d| d.id).collect();
        let visible = self.visible_datastore_ids(viewer, &all).await?;
        rec.datastores.retain(|d| visible.contains(&d.id));
        Ok(visible.len() == all.len())
    }

    /// A connection as `viewer` sees it: its `datastores` list only those the viewer may see, and one that only
    /// other teams' datastores use is not found (as if it did not exist). The flag says whether the viewer sees
    /// every datastore using it, which changing it, deleting it or testing it with overrides needs.
    pub async fn connection_for(
        &self,
        id: i64,
        viewer: &Viewer,
    ) -> Result<(ConnectionRecord, bool), StoreError> {
        let mut rec = self.connection(id).await?;
        let used = !rec.datastores.is_empty();
        let whole = self.restrict(&mut rec, viewer).await?;
        if used && rec.datastores.is_empty() {
            return Err(StoreError::NotFound(format!("connection {id} not found")));
        }
        Ok((rec, whole))
    }

    /// A page of connections as `viewer` sees them, optionally filtered by a name substring (case-insensitive)
    /// and types: without connections only other teams' datastores use, and with only the viewer's datastores
    /// listed in each.
    pub async fn list_connections_for(
        &self,
        viewer: &Viewer,
        name: Option<&str>,
        types: &[String],
        page: i64,
        size: i64,
    ) -> Result<(Vec<ConnectionRecord>, i64), StoreError> {
        let c = self.client().await?;
        let filter = format!(
            "($3::text IS NULL OR c.name ILIKE '%' || $3 || '%') \
             AND (cardinality($4::text[]) = 0 OR c.type = ANY($4)) \
             AND ($1::bool OR NOT EXISTS (SELECT 1 FROM datastores d WHERE d.connection_id = c.id) \
                  OR EXISTS (SELECT 1 FROM datastores d WHERE d.connection_id = c.id AND {}))",
            crate::visible!("d.id")
        );
        let (rows, total) = crate::db::paged(
            &c,
            COLS,
            "connections c",
            &filter,
            "c.id",
            &[&viewer.is_admin, &viewer.user_id, &name, &types],
            page,
            size,
        )
        .await?;
        drop(c);
        let mut items = rows
            .iter()
            .map(|r| self.connection_of(r))
            .collect::<Result<Vec<_>, _>>()?;
        for rec in &mut items {
            self.restrict(rec, viewer).await?;
        }
        Ok((items, total))
    }

    /// Replaces every stored property with `spec` (the caller merges partial updates first).
    pub async fn update_connection(
        &self,
        id: i64,
        spec: &ConnectionSpec,
    ) -> Result<ConnectionRecord, StoreError> {
        let (sm, creds) = self.sm_columns(spec);
        let password = spec.password.as_deref().map(|p| self.cipher.encrypt(p));
        let c = self.client().await?;
        let n = c
            .exec(
                "UPDATE connections SET name = $2, type = $3, host = $4, port = $5, username = $6, \
                   password_enc = $7, parameters = $8, max_parallelization = $9, jdbc_fetch_size = $10, \
                   secrets_manager = $11, credentials_enc = $12 WHERE id = $1",
                &[
                    &id,
                    &spec.name,
                    &spec.connector,
                    &spec.host,
                    &spec.port.as_text(),
                    &spec.username,
                    &password,
                    &Value::Object(spec.parameters.clone()),
                    &spec.max_parallelization,
                    &spec.jdbc_fetch_size,
                    &sm,
                    &creds,
                ],
            )
            .await
            .map_err(|e| unique_as_conflict(e, || format!("a connection named '{}' already exists", spec.name)))?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("connection {id} not found")));
        }
        drop(c);
        self.connection(id).await
    }

    /// Deletes a connection no datastore uses; otherwise a conflict naming the datastores.
    pub async fn delete_connection(&self, id: i64) -> Result<(), StoreError> {
        let rec = self.connection(id).await?;
        if !rec.datastores.is_empty() {
            let names: Vec<String> = rec
                .datastores
                .iter()
                .map(|d| format!("'{}' (id {})", d.name, d.id))
                .collect();
            return Err(StoreError::Conflict(format!(
                "connection '{}' is used by datastores {}; delete them or move them to another connection first",
                rec.spec.name,
                names.join(", ")
            )));
        }
        let c = self.client().await?;
        c.exec("DELETE FROM connections WHERE id = $1", &[&id])
            .await
            .map_err(|e| {
                if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) {
                    StoreError::Conflict(format!("connection {id} is still used by a datastore"))
                } else {
                    StoreError::Db(e)
                }
            })?;
        Ok(())
    }
}
