//! Flows, their outbox and their deliveries. Events are written by triggers of the metadata store in the
//! transaction that ends an operation or changes an anomaly's status (migration V8), so an event exists exactly
//! when its cause committed. A dispatcher claims pending events (`FOR UPDATE SKIP LOCKED`), turns each into one
//! execution per matching flow and one delivery per action, and marks the events dispatched, in one transaction.
//! Deliveries are claimed with a lease (their next attempt moved past the delivery timeout), so a server killed
//! mid-delivery leaves the delivery to be retried by any server once the lease passes; each attempt is recorded.

use crate::cached::Cached;
use crate::db::Store;
use crate::error::StoreError;
use assay_core::flow::{Action, FlowSpec};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct FlowRecord {
    pub id: i64,
    pub spec: FlowSpec,
    /// The actions as shown: without their URLs and secrets.
    pub actions_shown: Value,
    /// The secrets manager as shown: without its credentials payload.
    pub secrets_manager_shown: Option<Value>,
    pub created_by: String,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

/// A pending event of the outbox.
#[derive(Debug, Clone)]
pub struct FlowEvent {
    pub id: i64,
    pub kind: String,
    pub operation_id: Option<i64>,
    pub anomaly_id: Option<i64>,
    pub old_status: Option<String>,
    pub new_status: Option<String>,
    pub txid: i64,
}

/// An execution to create for a flow that matched events: its trigger, a one-line summary and the message.
pub struct NewExecution {
    pub flow_id: i64,
    pub event_id: i64,
    pub trigger: String,
    pub summary: String,
    pub message: Value,
    pub action_types: Vec<String>,
}

/// A delivery claimed for an attempt.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub flow_id: i64,
    pub execution_id: i64,
    pub action_index: i32,
    pub action_type: String,
    pub delivery_id: uuid::Uuid,
    pub attempts: i32,
    pub message: Value,
}

const FLOW_COLS: &str = "id, name, description, trigger, filters, actions, secrets_enc, active, created_by, created, updated";

impl Store {
    fn flow_of(&self, r: &tokio_postgres::Row) -> Result<FlowRecord, StoreError> {
        let shown: Value = r.get(5);
        let enc: Option<Vec<u8>> = r.get(6);
        let doc: Value = match enc {
            Some(b) => serde_json::from_str(&self.cipher.decrypt(&b)?)
                .map_err(|e| StoreError::Crypto(format!("stored flow secrets: {e}")))?,
            None => json!({}),
        };
        let secrets = &doc["actions"];
        let secrets_manager: Option<assay_core::connection::SecretsManager> =
            serde_json::from_value(doc["secrets_manager"].clone()).unwrap_or(None);
        let secrets_manager_shown = secrets_manager.as_ref().map(|sm| {
            let mut v = json!(sm);
            if let Some(m) = v.as_object_mut() {
                m.remove("credentials_payload");
                m.insert(
                    "credentials_payload_set".into(),
                    json!(sm.credentials_payload.is_some()),
                );
            }
            v
        });
        let actions = shown
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, a)| Action::join(a, &secrets[i]))
            .collect();
        let spec = FlowSpec {
            name: r.get(1),
            description: r.get(2),
            trigger: serde_json::from_value(r.get(3))
                .map_err(|e| StoreError::Invalid(format!("stored flow trigger: {e}")))?,
            filters: serde_json::from_value(r.get(4)).unwrap_or_default(),
            actions,
            active: r.get(7),
            secrets_manager,
        };
        Ok(FlowRecord {
            id: r.get(0),
            spec,
            actions_shown: shown,
            secrets_manager_shown,
            created_by: r.get(8),
            created: r.get(9),
            updated: r.get(10),
        })
    }

    fn split(&self, spec: &FlowSpec) -> (Value, Vec<u8>) {
        let (shown, secrets): (Vec<Value>, Vec<Value>) =
            spec.actions.iter().map(Action::secrets).unzip();
        let doc = json!({"actions": secrets, "secrets_manager": spec.secrets_manager});
        (Value::Array(shown), self.cipher.encrypt(&doc.to_string()))
    }

    pub async fn create_flow(&self, spec: &FlowSpec, by: &str) -> Result<i64, StoreError> {
        let (shown, enc) = self.split(spec);
        let c = self.client().await?;
        let row = c
            .q_one(
                "INSERT INTO flows (name, description, trigger, filters, actions, secrets_enc, active, created_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                &[
                    &spec.name,
                    &spec.description,
                    &json!(spec.trigger),
                    &json!(spec.filters),
                    &shown,
                    &enc,
                    &spec.active,
                    &by,
                ],
            )
            .await
            .map_err(|e| taken(e, &spec.name))?;
        Ok(row.get(0))
    }

    pub async fn update_flow(&self, id: i64, spec: &FlowSpec) -> Result<(), StoreError> {
        let (shown, enc) = self.split(spec);
        let c = self.client().await?;
        let n = c
            .exec(
                "UPDATE flows SET name = $2, description = $3, trigger = $4, filters = $5, actions = $6, \
                   secrets_enc = $7, active = $8, updated = now() WHERE id = $1",
                &[
                    &id,
                    &spec.name,
                    &spec.description,
                    &json!(spec.trigger),
                    &json!(spec.filters),
                    &shown,
                    &enc,
                    &spec.active,
                ],
            )
            .await
            .map_err(|e| taken(e, &spec.name))?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("flow {id} not found")));
        }
        Ok(())
    }

    pub async fn delete_flow(&self, id: i64) -> Result<(), StoreError> {
        let c = self.client().await?;
        if c.exec("DELETE FROM flows WHERE id = $1", &[&id]).await? == 0 {
            return Err(StoreError::NotFound(format!("flow {id} not found")));
        }
        Ok(())
    }

    pub async fn flow(&self, id: i64) -> Result<FlowRecord, StoreError> {
        let c = self.client().await?;
        let row = c
            .q_opt(
                &format!("SELECT {FLOW_COLS} FROM flows WHERE id = $1"),
                &[&id],
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("flow {id} not found")))?;
        self.flow_of(&row)
    }

    pub async fn list_flows(
        &self,
        page: i64,
        size: i64,
    ) -> Result<(Vec<FlowRecord>, i64), StoreError> {
        let c = self.client().await?;
        let (rows, total) =
            crate::db::paged(&c, FLOW_COLS, "flows", "true", "id", &[], page, size).await?;
        let flows = rows
            .iter()
            .map(|r| self.flow_of(r))
            .collect::<Result<_, _>>()?;
        Ok((flows, total))
    }

    pub async fn active_flows(&self) -> Result<Vec<FlowRecord>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .q(
                &format!("SELECT {FLOW_COLS} FROM flows WHERE active ORDER BY id"),
                &[],
            )
            .await?;
        rows.iter().map(|r| self.flow_of(r)).collect()
    }

    /// Claims up to `limit` pending events, oldest first, lets `plan` decide the executions they make, and
    /// writes those executions (one delivery per action) and marks the events dispatched, in one transaction.
    /// Another server's dispatcher skips the rows this one holds.
    pub async fn dispatch_events<F>(&self, limit: i64, plan: F) -> Result<usize, StoreError>
    where
        F: AsyncFnOnce(Vec<FlowEvent>) -> Result<Vec<NewExecution>, StoreError>,
    {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let rows = tx
            .q(
                "SELECT id, kind, operation_id, anomaly_id, old_status, new_status, txid FROM flow_events \
                 WHERE dispatched_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                &[&limit],
            )
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let events: Vec<FlowEvent> = rows
            .iter()
            .map(|r| FlowEvent {
                id: r.get(0),
                kind: r.get(1),
                operation_id: r.get(2),
                anomaly_id: r.get(3),
                old_status: r.get(4),
                new_status: r.get(5),
                txid: r.get(6),
            })
            .collect();
        let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
        let executions = plan(events).await?;
        for x in &executions {
            let row = tx
                .q_opt(
                    "INSERT INTO flow_executions (flow_id, event_id, trigger, summary, message) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING id",
                    &[&x.flow_id, &x.event_id, &x.trigger, &x.summary, &x.message],
                )
                .await?;
            let Some(row) = row else { continue };
            let execution: i64 = row.get(0);
            for (i, kind) in x.action_types.iter().enumerate() {
                tx.exec(
                    "INSERT INTO action_executions (execution_id, action_index, action_type, delivery_id) \
                     VALUES ($1, $2, $3, $4)",
                    &[&execution, &(i as i32), kind, &uuid::Uuid::new_v4()],
                )
                .await?;
            }
        }
        tx.exec(
            "UPDATE flow_events SET dispatched_at = now() WHERE id = ANY($1)",
            &[&ids],
        )
        .await?;
        tx.commit().await?;
        Ok(ids.len())
    }

    /// Claims up to `limit` due deliveries, moving their next attempt `lease_seconds` ahead so no other server
    /// takes them while this one tries (and so a killed server's delivery is retried once the lease passes).
    pub async fn claim_deliveries(
        &self,
        limit: i64,
        lease_seconds: f64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .q(
                "WITH due AS (SELECT id FROM action_executions WHERE status = 'pending' AND next_attempt_at <= now() \
                   ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED) \
                 UPDATE action_executions a SET next_attempt_at = now() + make_interval(secs => $2), updated = now() \
                 FROM due, flow_executions x WHERE a.id = due.id AND x.id = a.execution_id \
                 RETURNING a.id, x.flow_id, a.execution_id, a.action_index, a.action_type, a.delivery_id, a.attempts, \
                   x.message",
                &[&limit, &lease_seconds],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Delivery {
                id: r.get(0),
                flow_id: r.get(1),
                execution_id: r.get(2),
                action_index: r.get(3),
                action_type: r.get(4),
                delivery_id: r.get(5),
                attempts: r.get(6),
                message: r.get(7),
            })
            .collect())
    }

    /// Records one attempt of a delivery: delivered; or failed, to be tried again after `retry_in` seconds, or
    /// for good (`retry_in` is `None`).
    pub async fn record_attempt(
        &self,
        id: i64,
        ok: bool,
        code: Option<i32>,
        message: &str,
        retry_in: Option<f64>,
    ) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let attempt: i32 = tx
            .q_one(
                "UPDATE action_executions SET attempts = attempts + 1, last_result = $2, updated = now(), \
                   status = CASE WHEN $3 THEN 'delivered' WHEN $4::float8 IS NULL THEN 'failed' ELSE 'pending' END, \
                   next_attempt_at = CASE WHEN $4::float8 IS NULL THEN next_attempt_at \
                                          ELSE now() + make_interval(secs => $4) END \
                 WHERE id = $1 RETURNING attempts",
                &[&id, &message, &ok, &retry_in],
            )
            .await?
            .get(0);
        tx.exec(
            "INSERT INTO action_attempts (action_execution_id, attempt, ok, code, message) VALUES ($1, $2, $3, $4, $5)",
            &[&id, &attempt, &ok, &code, &message],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A flow's executions, newest first, each with its deliveries and their attempts.
    pub async fn flow_executions(
        &self,
        flow_id: i64,
        page: i64,
        size: i64,
    ) -> Result<(Vec<Value>, i64), StoreError> {
        let c = self.client().await?;
        let cols = "jsonb_build_object('id', x.id, 'flow_id', x.flow_id, 'trigger', x.trigger, 'summary', x.summary, \
            'created', x.created, 'actions', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', a.id, \
              'action_index', a.action_index, 'type', a.action_type, 'delivery_id', a.delivery_id, 'status', a.status, \
              'attempts', a.attempts, 'last_result', a.last_result, 'next_attempt_at', \
              CASE WHEN a.status = 'pending' THEN a.next_attempt_at END, \
              'history', (SELECT coalesce(jsonb_agg(jsonb_build_object('attempt', t.attempt, 'at', t.at, 'ok', t.ok, \
                'code', t.code, 'message', t.message) ORDER BY t.attempt), '[]') FROM action_attempts t \
                WHERE t.action_execution_id = a.id)) ORDER BY a.action_index), '[]') \
              FROM action_executions a WHERE a.execution_id = x.id))";
        let (rows, total) = crate::db::paged(
            &c,
            cols,
            "flow_executions x",
            "x.flow_id = $1",
            "x.id DESC",
            &[&flow_id],
            page,
            size,
        )
        .await?;
        Ok((rows.iter().map(|r| r.get(0)).collect(), total))
    }

    /// How many deliveries wait for an attempt, and how many events wait for the dispatcher.
    pub async fn flow_backlog(&self) -> Result<(i64, i64), StoreError> {
        let c = self.client().await?;
        let r = c
            .q_one(
                "SELECT (SELECT count(*) FROM action_executions WHERE status = 'pending'), \
                        (SELECT count(*) FROM flow_events WHERE dispatched_at IS NULL)",
                &[],
            )
            .await?;
        Ok((r.get(0), r.get(1)))
    }
}

fn taken(e: tokio_postgres::Error, name: &str) -> StoreError {
    if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
        StoreError::Conflict(format!("a flow named '{name}' exists; choose another name"))
    } else {
        e.into()
    }
}
