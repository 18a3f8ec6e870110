//! Container and field profiles, kept per profile operation, with the mergeable states for incremental runs.

use crate::cached::Cached;
use crate::db::{Store, Viewer};
use crate::error::StoreError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// A container profile: what is saved, and (inside [`ContainerProfileRecord`]) what is read back.
#[derive(Debug, Clone, Serialize)]
pub struct NewContainerProfile {
    pub operation_id: Option<i64>,
    pub container_id: i64,
    pub records_count: i64,
    pub records_processed: i64,
    pub bytes: Option<i64>,
    pub duration_ms: i64,
    pub partitions: i32,
    pub sampled: bool,
    pub sample_limit: Option<i64>,
    pub incremental: bool,
    pub strategy: Option<String>,
    pub watermark: Option<String>,
    pub increments: i32,
    pub mutations: Option<i64>,
    pub parent_profile_id: Option<i64>,
    pub message: Option<String>,
}

/// A field profile to save: field id, name, finalised metrics and (for full or incremental reads) the state.
#[derive(Debug, Clone)]
pub struct NewFieldProfile {
    pub field_id: Option<i64>,
    pub name: String,
    pub profile: Value,
    pub state: Option<Vec<u8>>,
}

/// A saved container profile: its id, creation time and field count, and the profile itself (flattened in JSON).
#[derive(Debug, Clone, Serialize)]
pub struct ContainerProfileRecord {
    pub id: i64,
    pub created: DateTime<Utc>,
    pub field_count: i32,
    #[serde(flatten)]
    pub profile: NewContainerProfile,
}

#[derive(Debug, Clone, Serialize)]
pub struct FieldProfileRecord {
    pub id: i64,
    pub container_profile_id: i64,
    pub container_id: i64,
    pub field_id: Option<i64>,
    pub name: String,
    pub profile: Value,
    pub created: DateTime<Utc>,
}

const CP_COLS: &str = "p.id, p.operation_id, p.container_id, p.created, p.records_count, p.records_processed, \
    p.field_count, p.bytes, p.duration_ms, p.partitions, p.sampled, p.sample_limit, p.incremental, p.strategy, \
    p.watermark, p.increments, p.parent_profile_id, p.message, p.mutations";

fn cp_of(r: &tokio_postgres::Row) -> ContainerProfileRecord {
    ContainerProfileRecord {
        id: r.get(0),
        created: r.get(3),
        field_count: r.get(6),
        profile: NewContainerProfile {
            operation_id: r.get(1),
            container_id: r.get(2),
            records_count: r.get(4),
            records_processed: r.get(5),
            bytes: r.get(7),
            duration_ms: r.get(8),
            partitions: r.get(9),
            sampled: r.get(10),
            sample_limit: r.get(11),
            incremental: r.get(12),
            strategy: r.get(13),
            watermark: r.get(14),
            increments: r.get(15),
            parent_profile_id: r.get(16),
            message: r.get(17),
            mutations: r.get(18),
        },
    }
}

const VISIBLE: &str = crate::visible!("k.datastore_id");

impl Store {
    /// Saves a container profile and its field profiles in one transaction and makes it the container's latest.
    pub async fn save_profile(
        &self,
        cp: &NewContainerProfile,
        fields: &[NewFieldProfile],
    ) -> Result<i64, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let row = tx
            .q_one(
                "INSERT INTO container_profiles (operation_id, container_id, records_count, records_processed, \
                   field_count, bytes, duration_ms, partitions, sampled, sample_limit, incremental, strategy, \
                   watermark, increments, parent_profile_id, message, mutations) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id",
                &[
                    &cp.operation_id,
                    &cp.container_id,
                    &cp.records_count,
                    &cp.records_processed,
                    &(fields.len() as i32),
                    &cp.bytes,
                    &cp.duration_ms,
                    &cp.partitions,
                    &cp.sampled,
                    &cp.sample_limit,
                    &cp.incremental,
                    &cp.strategy,
                    &cp.watermark,
                    &cp.increments,
                    &cp.parent_profile_id,
                    &cp.message,
                    &cp.mutations,
                ],
            )
            .await?;
        let id: i64 = row.get(0);
        let stmt = tx
            .prepare_cached(
                "INSERT INTO field_profiles (container_profile_id, container_id, field_id, name, profile, state) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .await?;
        for f in fields {
            tx.execute(
                &stmt,
                &[
                    &id,
                    &cp.container_id,
                    &f.field_id,
                    &f.name,
                    &f.profile,
                    &f.state,
                ],
            )
            .await?;
        }
        tx.exec(
            "UPDATE containers SET latest_profile_id = $2 WHERE id = $1",
            &[&cp.container_id, &id],
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The container's latest profile.
    pub async fn latest_profile(
        &self,
        container_id: i64,
    ) -> Result<Option<ContainerProfileRecord>, StoreError> {
        let c = self.client().await?;
        let row = c
            .q_opt(
                &format!(
                    "SELECT {CP_COLS} FROM containers k JOIN container_profiles p ON p.id = k.latest_profile_id \
                     WHERE k.id = $1"
                ),
                &[&container_id],
            )
            .await?;
        Ok(row.as_ref().map(cp_of))
    }

    /// The stored states of a profile, by field name (fields profiled from a sample have none).
    pub async fn profile_states(
        &self,
        profile_id: i64,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .q("SELECT name, state FROM field_profiles WHERE container_profile_id = $1 ORDER BY id", &[&profile_id])
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Profiles of a container, newest first.
    pub async fn container_profiles(
        &self,
        container_id: i64,
        page: i64,
        size: i64,
    ) -> Result<(Vec<ContainerProfileRecord>, i64), StoreError> {
        let c = self.client().await?;
        let args: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&container_id];
        let (rows, total) = crate::db::paged(
            &c,
            CP_COLS,
            "container_profiles p",
            "p.container_id = $1",
            "p.id DESC",
            &args,
            page,
            size,
        )
        .await?;
        Ok((rows.iter().map(cp_of).collect(), total))
    }

    /// Field profiles of one container profile (the latest when `profile_id` is `None`), or of several
    /// containers' latest profiles for a list.
    pub async fn field_profiles(
        &self,
        viewer: &Viewer,
        containers: &[i64],
        datastores: &[i64],
        profile_id: Option<i64>,
        page: i64,
        size: i64,
    ) -> Result<(Vec<FieldProfileRecord>, i64), StoreError> {
        let c = self.client().await?;
        let cond = format!(
            "{VISIBLE} AND (cardinality($3::bigint[]) = 0 OR f.container_id = ANY($3)) \
             AND (cardinality($4::bigint[]) = 0 OR k.datastore_id = ANY($4)) \
             AND (($5::bigint IS NULL AND f.container_profile_id = k.latest_profile_id) OR f.container_profile_id = $5)"
        );
        let from = "field_profiles f JOIN containers k ON k.id = f.container_id";
        let args: [&(dyn tokio_postgres::types::ToSql + Sync); 5] = [
            &viewer.is_admin,
            &viewer.user_id,
            &containers,
            &datastores,
            &profile_id,
        ];
        let cols = "f.id, f.container_profile_id, f.container_id, f.field_id, f.name, f.profile, f.created";
        let (rows, total) = crate::db::paged(
            &c,
            cols,
            from,
            &cond,
            "f.container_id, f.id",
            &args,
            page,
            size,
        )
        .await?;
        let items = rows
            .iter()
            .map(|r| FieldProfileRecord {
                id: r.get(0),
                container_profile_id: r.get(1),
                container_id: r.get(2),
                field_id: r.get(3),
                name: r.get(4),
                profile: r.get(5),
                created: r.get(6),
            })
            .collect();
        Ok((items, total))
    }

    /// One field's profiles across its container's profiles, oldest first: the newest `limit` of them. The caller
    /// has already checked that the container is visible to the user.
    pub async fn field_profile_history(
        &self,
        container_id: i64,
        field: &str,
        limit: i64,
    ) -> Result<Vec<FieldProfileRecord>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .q(
                "SELECT * FROM (SELECT f.id, f.container_profile_id, f.container_id, f.field_id, f.name, f.profile, \
                   f.created FROM field_profiles f WHERE f.container_id = $1 AND f.name = $2 \
                   ORDER BY f.container_profile_id DESC LIMIT $3) h ORDER BY container_profile_id",
                &[&container_id, &field, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| FieldProfileRecord {
                id: r.get(0),
                container_profile_id: r.get(1),
                container_id: r.get(2),
                field_id: r.get(3),
                name: r.get(4),
                profile: r.get(5),
                created: r.get(6),
            })
            .collect())
    }
}
