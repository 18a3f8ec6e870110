//! Computed containers (a query over the source) and computed fields (an expression over a container's row),
//! container settings and tags, global tags, and check templates.

use crate::cached::Cached;
use crate::db::Store;
use crate::error::{StoreError, unique_as_conflict};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

/// A column of a computed container or a computed field, as the source describes it.
#[derive(Debug, Clone)]
pub struct NewField {
    pub name: String,
    pub native_type: String,
    pub field_type: String,
    pub typname: String,
    pub typcategory: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ComputedField {
    pub id: i64,
    pub container_id: i64,
    pub name: String,
    pub transformation: String,
    pub source_fields: Value,
    pub properties: Value,
    pub additional_metadata: Value,
    pub expression: String,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GlobalTag {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub color: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub weight_modifier: i32,
    pub created: DateTime<Utc>,
}

fn field_of(r: &tokio_postgres::Row) -> ComputedField {
    ComputedField {
        id: r.get(0),
        container_id: r.get(1),
        name: r.get(2),
        transformation: r.get(3),
        source_fields: r.get(4),
        properties: r.get(5),
        additional_metadata: r.get(6),
        expression: r.get(7),
        created: r.get(8),
        updated: r.get(9),
    }
}

const CF_COLS: &str = "id, container_id, name, transformation, source_fields, properties, additional_metadata, \
    expression, created, updated";

async fn upsert_fields(
    tx: &deadpool_postgres::Transaction<'_>,
    container_id: i64,
    fields: &[NewField],
    first_ordinal: i32,
) -> Result<(), StoreError> {
    for (i, f) in fields.iter().enumerate() {
        tx.exec(
            "INSERT INTO fields (container_id, name, ordinal, native_type, type, nullable, typname, typcategory) \
             VALUES ($1, $2, $3, $4, $5, true, $6, $7) \
             ON CONFLICT (container_id, name) DO UPDATE SET ordinal = EXCLUDED.ordinal, \
               native_type = EXCLUDED.native_type, type = EXCLUDED.type, typname = EXCLUDED.typname, \
               typcategory = EXCLUDED.typcategory, deleted_at = NULL",
            &[
                &container_id,
                &f.name,
                &(first_ordinal + i as i32),
                &f.native_type,
                &f.field_type,
                &f.typname,
                &f.typcategory,
            ],
        )
        .await?;
    }
    Ok(())
}

impl Store {
    /// Creates a computed table with its fields.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_computed_container(
        &self,
        datastore_id: i64,
        name: &str,
        query: &str,
        description: Option<&str>,
        tags: &[String],
        metadata: &Value,
        definition: Option<&Value>,
        fields: &[NewField],
    ) -> Result<i64, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let id: i64 = tx
            .q_one(
                "INSERT INTO containers (datastore_id, name, table_type, query, description, tags, additional_metadata, \
                   definition, last_synced) VALUES ($1, $2, 'computed_table', $3, $4, $5, $6, $7, now()) RETURNING id",
                &[&datastore_id, &name, &query, &description, &json!(tags), metadata, &definition],
            )
            .await
            .map_err(|e| unique_as_conflict(e, || format!("the datastore already has a container named '{name}'")))?
            .get(0);
        upsert_fields(&tx, id, fields, 1).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Changes a computed table's name and query; fields that are gone are marked missing.
    pub async fn update_computed_container(
        &self,
        id: i64,
        name: &str,
        query: &str,
        definition: Option<&Value>,
        fields: &[NewField],
    ) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.exec(
            "UPDATE containers SET name = $2, query = $3, definition = $4, last_synced = now() WHERE id = $1",
            &[&id, &name, &query, &definition],
        )
        .await
        .map_err(|e| {
            unique_as_conflict(e, || {
                format!("the datastore already has a container named '{name}'")
            })
        })?;
        upsert_fields(&tx, id, fields, 1).await?;
        let names: Vec<String> = fields.iter().map(|f| f.name.clone()).collect();
        tx.exec(
            "UPDATE fields SET deleted_at = now() WHERE container_id = $1 AND deleted_at IS NULL \
               AND NOT name = ANY($2) \
               AND NOT EXISTS (SELECT 1 FROM computed_fields cf WHERE cf.container_id = $1 AND cf.name = fields.name)",
            &[&id, &names],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The fields of a container that active checks use (for `force_drop_fields`).
    pub async fn fields_in_use(&self, container_id: i64) -> Result<Vec<String>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .q(
                "SELECT DISTINCT f.value #>> '{}' FROM quality_checks q, jsonb_array_elements(q.fields) f \
                 WHERE q.container_id = $1 AND q.deleted_at IS NULL",
                &[&container_id],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Sets a container's description and tags (any kind of container).
    pub async fn update_container_info(
        &self,
        id: i64,
        description: Option<&str>,
        tags: Option<&[String]>,
    ) -> Result<(), StoreError> {
        let c = self.client().await?;
        let n = c
            .exec(
                "UPDATE containers SET description = coalesce($2, description), tags = coalesce($3, tags) WHERE id = $1",
                &[&id, &description, &tags.map(|t| json!(t))],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("container {id} not found")));
        }
        Ok(())
    }

    pub async fn delete_container(&self, id: i64) -> Result<(), StoreError> {
        let c = self.client().await?;
        let n = c
            .exec("DELETE FROM containers WHERE id = $1", &[&id])
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("container {id} not found")));
        }
        Ok(())
    }

    pub async fn computed_fields(
        &self,
        container_id: i64,
    ) -> Result<Vec<ComputedField>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .q(
                &format!(
                    "SELECT {CF_COLS} FROM computed_fields WHERE container_id = $1 ORDER BY id"
                ),
                &[&container_id],
            )
            .await?;
        Ok(rows.iter().map(field_of).collect())
    }

    pub async fn computed_field(&self, id: i64) -> Result<ComputedField, StoreError> {
        let c = self.client().await?;
        let row = c
            .q_opt(
                &format!("SELECT {CF_COLS} FROM computed_fields WHERE id = $1"),
                &[&id],
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("computed field {id} not found")))?;
        Ok(field_of(&row))
    }

    /// Creates or replaces (`id`) a computed field and its row in `fields`.
    #[allow(clippy::too_many_arguments)]
    pub async fn save_computed_field(
        &self,
        id: Option<i64>,
        container_id: i64,
        name: &str,
        transformation: &str,
        source_fields: &Value,
        properties: &Value,
        metadata: &Value,
        expression: &str,
        field: &NewField,
    ) -> Result<i64, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let conflict = |e| {
            unique_as_conflict(e, || {
                format!("the container already has a field named '{name}'")
            })
        };
        let saved: i64 = match id {
            None => tx
                .q_one(
                    "INSERT INTO computed_fields (container_id, name, transformation, source_fields, properties, \
                       additional_metadata, expression) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    &[&container_id, &name, &transformation, source_fields, properties, metadata, &expression],
                )
                .await
                .map_err(conflict)?
                .get(0),
            Some(id) => {
                let old: String = tx
                    .q_one("SELECT name FROM computed_fields WHERE id = $1", &[&id])
                    .await?
                    .get(0);
                tx.exec(
                    "UPDATE computed_fields SET name = $2, transformation = $3, source_fields = $4, properties = $5, \
                       additional_metadata = $6, expression = $7, updated = now() WHERE id = $1",
                    &[&id, &name, &transformation, source_fields, properties, metadata, &expression],
                )
                .await
                .map_err(conflict)?;
                if old != name {
                    tx.exec(
                        "DELETE FROM fields WHERE container_id = $1 AND name = $2",
                        &[&container_id, &old],
                    )
                    .await?;
                }
                id
            }
        };
        let next: i32 = tx
            .q_one(
                "SELECT coalesce(max(ordinal), 0) + 1 FROM fields WHERE container_id = $1 AND name <> $2",
                &[&container_id, &name],
            )
            .await?
            .get(0);
        upsert_fields(&tx, container_id, std::slice::from_ref(field), next).await?;
        tx.commit().await?;
        Ok(saved)
    }

    pub async fn delete_computed_field(&self, id: i64) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let row = tx
            .q_opt(
                "DELETE FROM computed_fields WHERE id = $1 RETURNING container_id, name",
                &[&id],
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("computed field {id} not found")))?;
        let (container, name): (i64, String) = (row.get(0), row.get(1));
        tx.exec(
            "DELETE FROM fields WHERE container_id = $1 AND name = $2",
            &[&container, &name],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn create_tag(&self, t: &GlobalTag) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.exec(
            "INSERT INTO global_tags (name, type, color, description, category, weight_modifier) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &t.name,
                &t.kind,
                &t.color,
                &t.description,
                &t.category,
                &t.weight_modifier,
            ],
        )
        .await
        .map_err(|e| unique_as_conflict(e, || format!("a tag named '{}' exists", t.name)))?;
        Ok(())
    }

    pub async fn tags(&self, page: i64, size: i64) -> Result<(Vec<GlobalTag>, i64), StoreError> {
        let c = self.client().await?;
        let (rows, total) = crate::db::paged(
            &c,
            "name, type, color, description, category, weight_modifier, created",
            "global_tags",
            "true",
            "name",
            &[],
            page,
            size,
        )
        .await?;
        Ok((rows.iter().map(tag_of).collect(), total))
    }

    pub async fn tag(&self, name: &str) -> Result<GlobalTag, StoreError> {
        let c = self.client().await?;
        let row = c
            .q_opt(
                "SELECT name, type, color, description, category, weight_modifier, created FROM global_tags WHERE name = $1",
                &[&name],
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("tag '{name}' not found")))?;
        Ok(tag_of(&row))
    }

    pub async fn delete_tag(&self, name: &str) -> Result<(), StoreError> {
        let c = self.client().await?;
        if c.exec("DELETE FROM global_tags WHERE name = $1", &[&name])
            .await?
            == 0
        {
            return Err(StoreError::NotFound(format!("tag '{name}' not found")));
        }
        Ok(())
    }

    /// Creates a check template; returns its id.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_template(
        &self,
        rule_type: &str,
        description: &str,
        coverage: Option<f64>,
        filter: Option<&str>,
        properties: &Value,
        tags: &[String],
        locked: bool,
        metadata: &Value,
    ) -> Result<i64, StoreError> {
        let c = self.client().await?;
        Ok(c.q_one(
            "INSERT INTO check_templates (rule_type, description, coverage, filter, properties, tags, template_locked, \
               additional_metadata) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            &[&rule_type, &description, &coverage, &filter, properties, &json!(tags), &locked, metadata],
        )
        .await?
        .get(0))
    }

    /// Every check template, as export rows.
    pub async fn templates(&self) -> Result<Vec<Value>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .q(
                "SELECT jsonb_build_object('id', id, 'created', created, 'description', description, 'rule_type', \
                   rule_type, 'properties', properties::text, 'template_checks_count', 0, 'template_locked', \
                   template_locked) FROM check_templates ORDER BY id",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

fn tag_of(r: &tokio_postgres::Row) -> GlobalTag {
    GlobalTag {
        name: r.get(0),
        kind: r.get(1),
        color: r.get(2),
        description: r.get(3),
        category: r.get(4),
        weight_modifier: r.get(5),
        created: r.get(6),
    }
}
