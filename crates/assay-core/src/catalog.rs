//! Catalog objects found by a sync: tables and views (containers), their columns (fields), primary keys and
//! incremental-field candidates, plus the mapping of PostgreSQL types to Assay's field types.

use serde::{Deserialize, Serialize};

/// The kind of relation a container is. The API's `container_type` is `table` or `view`; `table_type` is this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    Table,
    PartitionedTable,
    View,
    MaterializedView,
    ForeignTable,
    /// A container defined by a query over the source (not a relation of the catalog).
    ComputedTable,
}

impl TableKind {
    /// From `pg_class.relkind`.
    pub fn from_relkind(relkind: &str) -> Option<Self> {
        match relkind {
            "r" => Some(Self::Table),
            "p" => Some(Self::PartitionedTable),
            "v" => Some(Self::View),
            "m" => Some(Self::MaterializedView),
            "f" => Some(Self::ForeignTable),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::PartitionedTable => "partitioned_table",
            Self::View => "view",
            Self::MaterializedView => "materialized_view",
            Self::ForeignTable => "foreign_table",
            Self::ComputedTable => "computed_table",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Table,
            Self::PartitionedTable,
            Self::View,
            Self::MaterializedView,
            Self::ForeignTable,
            Self::ComputedTable,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
    /// The API's coarse `container_type`: views and materialized views are `view`, the rest `table`.
    pub fn container_type(self) -> &'static str {
        match self {
            Self::View | Self::MaterializedView => "view",
            Self::ComputedTable => "computed_table",
            _ => "table",
        }
    }
}

/// Assay's field types (the Qualytics `FieldType` enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FieldType {
    Unknown,
    Integral,
    Fractional,
    Boolean,
    String,
    Date,
    Timestamp,
    Array,
    Struct,
    MapType,
}

impl FieldType {
    /// Maps a PostgreSQL type (`pg_type.typname`, and `typtype`/`typcategory` for enums, composites and arrays).
    pub fn from_postgres(typname: &str, typtype: &str, typcategory: &str) -> Self {
        if typcategory == "A" {
            return Self::Array;
        }
        match typtype {
            "c" => return Self::Struct,
            "e" => return Self::String,
            _ => {}
        }
        match typname {
            "int2" | "int4" | "int8" | "oid" | "xid" => Self::Integral,
            "numeric" | "float4" | "float8" | "money" => Self::Fractional,
            "bool" => Self::Boolean,
            "text" | "varchar" | "bpchar" | "char" | "name" | "uuid" | "citext" | "inet"
            | "cidr" | "macaddr" | "json" | "jsonb" | "xml" | "bytea" | "time" | "timetz"
            | "interval" | "bit" | "varbit" => Self::String,
            "date" => Self::Date,
            "timestamp" | "timestamptz" => Self::Timestamp,
            "hstore" => Self::MapType,
            _ => Self::Unknown,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "Unknown",
            Self::Integral => "Integral",
            Self::Fractional => "Fractional",
            Self::Boolean => "Boolean",
            Self::String => "String",
            Self::Date => "Date",
            Self::Timestamp => "Timestamp",
            Self::Array => "Array",
            Self::Struct => "Struct",
            Self::MapType => "MapType",
        }
    }
}

/// How an incremental scan or profile finds new rows of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IncrementalStrategy {
    /// A timestamp or date column (`last-modified`).
    LastModified(String),
    /// An integer key fed by a sequence or identity (`batch-value`).
    BatchValue(String),
    /// `pg_xact_commit_timestamp(xmin)` (`postgresql`), with `track_commit_timestamp = on`.
    CommitTimestamp,
}

impl IncrementalStrategy {
    /// `(incremental_identifier_type, incremental_field_name)` as the API shows them.
    pub fn api_pair(&self) -> (&'static str, Option<&str>) {
        match self {
            Self::LastModified(f) => ("last-modified", Some(f)),
            Self::BatchValue(f) => ("batch-value", Some(f)),
            Self::CommitTimestamp => ("postgresql", None),
        }
    }
}

/// A column as read from the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveredColumn {
    pub name: String,
    pub ordinal: i32,
    /// `format_type(atttypid, atttypmod)`, e.g. `character varying(40)`.
    pub native_type: String,
    pub field_type: FieldType,
    /// Base type name (`pg_type.typname`, domains resolved) and category, for reading values.
    pub typname: String,
    pub typcategory: String,
    pub nullable: bool,
    /// Fed by a sequence (serial) or an identity.
    pub sequence_backed: bool,
    pub remarks: Option<String>,
}

/// A table or view as read from the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveredTable {
    pub name: String,
    pub kind: TableKind,
    /// `pg_class.reltuples`; `None` when never analysed.
    pub row_estimate: Option<i64>,
    pub primary_key: Vec<String>,
    pub columns: Vec<DiscoveredColumn>,
    pub remarks: Option<String>,
}

impl DiscoveredTable {
    /// Incremental-field candidates, best first: timestamp/date columns whose names say "updated" or "modified"
    /// first, other timestamps next, then sequence-backed integer keys, then commit timestamps when tracked.
    pub fn incremental_candidates(&self, commit_timestamps: bool) -> Vec<IncrementalStrategy> {
        let mut out = Vec::new();
        let is_time =
            |c: &&DiscoveredColumn| matches!(c.field_type, FieldType::Timestamp | FieldType::Date);
        let modified_like = |n: &str| {
            let n = n.to_ascii_lowercase();
            ["updated", "modified", "changed", "_ts", "last_"]
                .iter()
                .any(|k| n.contains(k))
        };
        let times: Vec<_> = self.columns.iter().filter(is_time).collect();
        for c in times.iter().filter(|c| modified_like(&c.name)) {
            out.push(IncrementalStrategy::LastModified(c.name.clone()));
        }
        for c in times.iter().filter(|c| !modified_like(&c.name)) {
            out.push(IncrementalStrategy::LastModified(c.name.clone()));
        }
        for c in self
            .columns
            .iter()
            .filter(|c| c.sequence_backed && c.field_type == FieldType::Integral)
        {
            out.push(IncrementalStrategy::BatchValue(c.name.clone()));
        }
        if commit_timestamps && matches!(self.kind, TableKind::Table | TableKind::PartitionedTable)
        {
            out.push(IncrementalStrategy::CommitTimestamp);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ft: FieldType, seq: bool) -> DiscoveredColumn {
        DiscoveredColumn {
            name: name.into(),
            ordinal: 1,
            native_type: String::new(),
            field_type: ft,
            typname: String::new(),
            typcategory: String::new(),
            nullable: true,
            sequence_backed: seq,
            remarks: None,
        }
    }

    #[test]
    fn maps_postgres_types() {
        assert_eq!(
            FieldType::from_postgres("int8", "b", "N"),
            FieldType::Integral
        );
        assert_eq!(
            FieldType::from_postgres("numeric", "b", "N"),
            FieldType::Fractional
        );
        assert_eq!(
            FieldType::from_postgres("timestamptz", "b", "D"),
            FieldType::Timestamp
        );
        assert_eq!(
            FieldType::from_postgres("_int4", "b", "A"),
            FieldType::Array
        );
        assert_eq!(
            FieldType::from_postgres("mood", "e", "E"),
            FieldType::String
        );
        assert_eq!(
            FieldType::from_postgres("point", "b", "G"),
            FieldType::Unknown
        );
    }

    #[test]
    fn ranks_incremental_candidates() {
        let t = DiscoveredTable {
            name: "orders".into(),
            kind: TableKind::Table,
            row_estimate: None,
            primary_key: vec!["id".into()],
            columns: vec![
                col("id", FieldType::Integral, true),
                col("created_at", FieldType::Timestamp, false),
                col("updated_at", FieldType::Timestamp, false),
                col("qty", FieldType::Integral, false),
            ],
            remarks: None,
        };
        assert_eq!(
            t.incremental_candidates(true),
            vec![
                IncrementalStrategy::LastModified("updated_at".into()),
                IncrementalStrategy::LastModified("created_at".into()),
                IncrementalStrategy::BatchValue("id".into()),
                IncrementalStrategy::CommitTimestamp,
            ]
        );
        let mut v = t.clone();
        v.kind = TableKind::View;
        assert!(
            !v.incremental_candidates(true)
                .contains(&IncrementalStrategy::CommitTimestamp)
        );
    }
}
