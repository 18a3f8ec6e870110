-- Indexes of the list pages at catalog scale (hundreds of datastores with thousands of tables, checks, anomalies
-- and operations): a datastore's open anomalies newest first (the anomaly list filtered by datastore and the
-- datastore cards' counts), operations newest first (the operation list), and the sources linked to an
-- enrichment datastore (every datastore record lists them).
CREATE INDEX anomalies_datastore_open ON anomalies (datastore_id, id DESC) WHERE archived_at IS NULL;
CREATE INDEX operations_created ON operations (created DESC, id DESC);
CREATE INDEX datastores_enrichment ON datastores (enrich_datastore_id) WHERE enrich_datastore_id IS NOT NULL;
