//! Volume and freshness tracking: the measurement series of each container, the tracking settings (a
//! container's own, else its datastore's defaults), the automated checks that hold the learned limits, and the
//! anomalies their judgements raise.

use crate::cached::Cached;
use crate::db::Store;
use crate::error::StoreError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

/// The four settings, in the order of [`Flags::KEYS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Flags {
    pub volumetric_tracking_enabled: bool,
    pub freshness_tracking_enabled: bool,
    pub automate_volumetric_checks: bool,
    pub automate_freshness_checks: bool,
}

impl Flags {
    pub const KEYS: [&'static str; 4] = [
        "volumetric_tracking_enabled",
        "freshness_tracking_enabled",
        "automate_volumetric_checks",
        "automate_freshness_checks",
    ];

    fn of(v: [bool; 4]) -> Flags {
        Flags {
            volumetric_tracking_enabled: v[0],
            freshness_tracking_enabled: v[1],
            automate_volumetric_checks: v[2],
            automate_freshness_checks: v[3],
        }
    }

    /// Tracking of either kind is on.
    pub fn tracking(&self) -> bool {
        self.volumetric_tracking_enabled || self.freshness_tracking_enabled
    }
}

/// A measurement to record.
#[derive(Debug, Clone)]
pub struct NewMeasurement<'a> {
    pub container_id: i64,
    pub row_count: Option<i64>,
    pub size_bytes: Option<i64>,
    pub modifications: Option<i64>,
    pub method: &'a str,
    pub operation_id: Option<i64>,
}

/// A recorded measurement (the `ObservabilityMeasurement` shape, plus how the count was taken).
#[derive(Debug, Clone, Serialize)]
pub struct MeasurementRecord {
    pub id: i64,
    pub container_id: i64,
    pub measurement_time: DateTime<Utc>,
    pub row_count: Option<i64>,
    pub size_bytes: Option<i64>,
    pub last_modification_time: Option<DateTime<Utc>>,
    pub method: String,
    pub operation_id: Option<i64>,
    pub created: DateTime<Utc>,
}

/// Measurements as the judgement reads them.
pub fn series(records: &[MeasurementRecord]) -> Vec<assay_core::observability::Measurement> {
    records
        .iter()
        .map(|m| assay_core::observability::Measurement {
            at: m.measurement_time,
            row_count: m.row_count,
            last_modified: m.last_modification_time,
        })
        .collect()
}

const COLS: &str = "id, container_id, measurement_time, row_count, size_bytes, last_modification_time, method, \
    operation_id, created";

fn measurement_of(r: &tokio_postgres::Row) -> MeasurementRecord {
    MeasurementRecord {
        id: r.get(0),
        container_id: r.get(1),
        measurement_time: r.get(2),
        row_count: r.get(3),
        size_bytes: r.get(4),
        last_modification_time: r.get(5),
        method: r.get(6),
        operation_id: r.get(7),
        created: r.get(8),
    }
}

impl Store {
    /// The settings in force for a container: its own where set, else its datastore's defaults.
    pub async fn observability_flags(&self, container_id: i64) -> Result<Flags, StoreError> {
        let r = self
            .client()
            .await?
            .q_opt(
                "SELECT coalesce(c.volumetric_tracking_enabled, d.default_volumetric_tracking_enabled), \
                        coalesce(c.freshness_tracking_enabled, d.default_freshness_tracking_enabled), \
                        coalesce(c.automate_volumetric_checks, d.default_automate_volumetric_checks), \
                        coalesce(c.automate_freshness_checks, d.default_automate_freshness_checks) \
                 FROM containers c JOIN datastores d ON d.id = c.datastore_id WHERE c.id = $1",
                &[&container_id],
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("container {container_id} not found")))?;
        Ok(Flags::of([r.get(0), r.get(1), r.get(2), r.get(3)]))
    }

    /// A datastore's defaults.
    pub async fn observability_defaults(&self, datastore_id: i64) -> Result<Flags, StoreError> {
        let r = self
            .client()
            .await?
            .q_opt(
                "SELECT default_volumetric_tracking_enabled, default_freshness_tracking_enabled, \
                        default_automate_volumetric_checks, default_automate_freshness_checks \
                 FROM datastores WHERE id = $1",
                &[&datastore_id],
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("datastore {datastore_id} not found")))?;
        Ok(Flags::of([r.get(0), r.get(1), r.get(2), r.get(3)]))
    }

    /// Sets a container's settings (`None` keeps one as it is).
    pub async fn set_container_observability(
        &self,
        container_id: i64,
        v: [Option<bool>; 4],
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .exec(
                "UPDATE containers SET \
                   volumetric_tracking_enabled = coalesce($2, volumetric_tracking_enabled), \
                   freshness_tracking_enabled = coalesce($3, freshness_tracking_enabled), \
                   automate_volumetric_checks = coalesce($4, automate_volumetric_checks), \
                   automate_freshness_checks = coalesce($5, automate_freshness_checks) WHERE id = $1",
                &[&container_id, &v[0], &v[1], &v[2], &v[3]],
            )
            .await?;
        Ok(())
    }

    /// Sets a datastore's defaults (`None` keeps one as it is).
    pub async fn set_observability_defaults(
        &self,
        datastore_id: i64,
        v: [Option<bool>; 4],
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .exec(
                "UPDATE datastores SET \
                   default_volumetric_tracking_enabled = coalesce($2, default_volumetric_tracking_enabled), \
                   default_freshness_tracking_enabled = coalesce($3, default_freshness_tracking_enabled), \
                   default_automate_volumetric_checks = coalesce($4, default_automate_volumetric_checks), \
                   default_automate_freshness_checks = coalesce($5, default_automate_freshness_checks) \
                 WHERE id = $1",
                &[&datastore_id, &v[0], &v[1], &v[2], &v[3]],
            )
            .await?;
        Ok(())
    }

    /// Records a measurement. Its last modification is now when the source's modification counter moved since
    /// the previous measurement (or, without counters, the row count changed), the previous one's otherwise, and
    /// unknown for a container's first measurement.
    pub async fn record_measurement(
        &self,
        m: &NewMeasurement<'_>,
    ) -> Result<MeasurementRecord, StoreError> {
        let row = self
            .client()
            .await?
            .q_one(
                &format!(
                    "INSERT INTO observability_measurements (container_id, row_count, size_bytes, modifications, \
                       method, operation_id, last_modification_time) \
                     SELECT $1, $2, $3, $4, $5, $6, \
                       CASE WHEN p.id IS NULL THEN NULL \
                            WHEN (CASE WHEN $4::int8 IS NOT NULL AND p.modifications IS NOT NULL \
                                       THEN $4::int8 <> p.modifications \
                                       ELSE $2::int8 IS DISTINCT FROM p.row_count END) THEN now() \
                            ELSE p.last_modification_time END \
                     FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT id, modifications, row_count, last_modification_time \
                       FROM observability_measurements WHERE container_id = $1 \
                       ORDER BY measurement_time DESC, id DESC LIMIT 1) p ON true \
                     RETURNING {COLS}"
                ),
                &[
                    &m.container_id,
                    &m.row_count,
                    &m.size_bytes,
                    &m.modifications,
                    &m.method,
                    &m.operation_id,
                ],
            )
            .await?;
        Ok(measurement_of(&row))
    }

    /// A container's measurements, newest first.
    pub async fn measurements(
        &self,
        container_id: i64,
        page: i64,
        size: i64,
    ) -> Result<(Vec<MeasurementRecord>, i64), StoreError> {
        let c = self.client().await?;
        let (rows, total) = crate::db::paged(
            &c,
            COLS,
            "observability_measurements",
            "container_id = $1",
            "measurement_time DESC, id DESC",
            &[&container_id],
            page,
            size,
        )
        .await?;
        Ok((rows.iter().map(measurement_of).collect(), total))
    }

    /// A container's measurements of the last `days` days, oldest first.
    pub async fn measurement_series(
        &self,
        container_id: i64,
        days: i64,
    ) -> Result<Vec<MeasurementRecord>, StoreError> {
        let rows = self
            .client()
            .await?
            .q(
                &format!(
                    "SELECT {COLS} FROM observability_measurements WHERE container_id = $1 \
                     AND measurement_time > now() - $2::int8 * interval '1 day' ORDER BY measurement_time, id"
                ),
                &[&container_id, &days],
            )
            .await?;
        Ok(rows.iter().map(measurement_of).collect())
    }

    /// The newest measurement of each of `containers`.
    pub async fn latest_measurements(
        &self,
        containers: &[i64],
    ) -> Result<Vec<MeasurementRecord>, StoreError> {
        let rows = self
            .client()
            .await?
            .q(
                &format!(
                    "SELECT DISTINCT ON (container_id) {COLS} FROM observability_measurements \
                     WHERE container_id = ANY($1) ORDER BY container_id, measurement_time DESC, id DESC"
                ),
                &[&containers],
            )
            .await?;
        Ok(rows.iter().map(measurement_of).collect())
    }

    /// The automated check `key` (`observability:volumetric` or `observability:freshness`) of a container,
    /// created or updated with the learned limits in `properties`; returns its id.
    pub async fn upsert_automated_check(
        &self,
        container_id: i64,
        key: &str,
        rule: &str,
        properties: &Value,
        description: &str,
    ) -> Result<i64, StoreError> {
        let row = self
            .client()
            .await?
            .q_one(
                "INSERT INTO quality_checks AS q (container_id, rule_type, description, properties, status, \
                   inferred, inference_key, additional_metadata) \
                 VALUES ($1, $2, $3, $4, 'Active', true, $5, $6) \
                 ON CONFLICT (container_id, inference_key) DO UPDATE SET properties = EXCLUDED.properties, \
                   description = EXCLUDED.description, updated = now() \
                 RETURNING id",
                &[
                    &container_id,
                    &rule,
                    &description,
                    properties,
                    &key,
                    &json!({"_assay_automated": true}),
                ],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Raises a shape anomaly of an automated check (one per fingerprint: a repeat updates the open one), or with
    /// `None` resolves the check's open anomalies. Sets the check's passing state either way.
    pub async fn record_observation(
        &self,
        check_id: i64,
        container_id: i64,
        operation_id: Option<i64>,
        finding: Option<(&str, &str)>,
    ) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.exec(
            "UPDATE quality_checks SET last_asserted = now(), is_passing = $2 WHERE id = $1",
            &[&check_id, &finding.is_none()],
        )
        .await?;
        match finding {
            None => {
                tx.exec(
                    "UPDATE anomalies a SET status = 'Resolved', archived_at = now(), updated = now() \
                     WHERE a.status IN ('Active', 'Acknowledged') \
                       AND EXISTS (SELECT 1 FROM anomaly_checks ac WHERE ac.anomaly_id = a.id AND ac.check_id = $1)",
                    &[&check_id],
                )
                .await?;
            }
            Some((fingerprint, message)) => {
                let seen = tx
                    .exec(
                        "UPDATE anomalies SET last_seen = now(), times_seen = times_seen + 1, updated = now() \
                         WHERE container_id = $1 AND fingerprint = $2 AND status IN ('Active', 'Acknowledged')",
                        &[&container_id, &fingerprint],
                    )
                    .await?;
                if seen == 0 {
                    let row = tx
                        .q_one(
                            "INSERT INTO anomalies (uuid, operation_id, datastore_id, container_id, type, status, \
                               anomalous_records_count, fingerprint, message, tags, source_records, weight) \
                             SELECT gen_random_uuid(), $1, k.datastore_id, k.id, 'shape', 'Active', 0, $3, $4, \
                               '[]', '[]', 1 FROM containers k WHERE k.id = $2 RETURNING id",
                            &[&operation_id, &container_id, &fingerprint, &message],
                        )
                        .await?;
                    let id: i64 = row.get(0);
                    tx.exec(
                        "INSERT INTO anomaly_checks (anomaly_id, check_id, message) VALUES ($1, $2, $3)",
                        &[&id, &check_id, &message],
                    )
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
