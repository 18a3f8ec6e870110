-- Authored checks, scans and anomalies.

ALTER TABLE quality_checks ADD COLUMN anomaly_message_field text;
ALTER TABLE quality_checks ADD COLUMN owner_id bigint REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE quality_checks ADD COLUMN weight integer NOT NULL DEFAULT 1;
ALTER TABLE quality_checks ADD COLUMN last_asserted timestamptz;
ALTER TABLE quality_checks ADD COLUMN is_passing boolean;
-- why a check is Invalid (its SQL failed at run time)
ALTER TABLE quality_checks ADD COLUMN status_message text;

-- one row per container per scan
CREATE TABLE container_scans (
    id                bigserial PRIMARY KEY,
    operation_id      bigint NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    container_id      bigint NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    created           timestamptz NOT NULL DEFAULT now(),
    result            text NOT NULL CHECK (result IN ('success', 'failure', 'aborted')),
    message           text,
    incremental       boolean NOT NULL,
    records_processed bigint NOT NULL DEFAULT 0,
    anomaly_count     bigint NOT NULL DEFAULT 0,
    checks_run        integer NOT NULL DEFAULT 0,
    checks_failed     integer NOT NULL DEFAULT 0,
    checkpoint        text,
    duration_ms       bigint NOT NULL DEFAULT 0,
    UNIQUE (operation_id, container_id)
);
CREATE INDEX container_scans_container ON container_scans (container_id, id DESC);

-- the measurements of each check in each scan (history for volumetric and metric checks)
CREATE TABLE check_metrics (
    id                 bigserial PRIMARY KEY,
    operation_id       bigint NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    check_id           bigint NOT NULL REFERENCES quality_checks (id) ON DELETE CASCADE,
    container_id       bigint NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    created            timestamptz NOT NULL DEFAULT now(),
    passed             boolean,
    asserted_records   bigint NOT NULL DEFAULT 0,
    anomalous_records  bigint NOT NULL DEFAULT 0,
    value              double precision,
    message            text
);
CREATE INDEX check_metrics_check ON check_metrics (check_id, id DESC);
CREATE INDEX check_metrics_operation ON check_metrics (operation_id);

CREATE TABLE anomalies (
    id                      bigserial PRIMARY KEY,
    uuid                    uuid NOT NULL UNIQUE,
    operation_id            bigint REFERENCES operations (id) ON DELETE CASCADE,
    datastore_id            bigint NOT NULL REFERENCES datastores (id) ON DELETE CASCADE,
    container_id            bigint NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    type                    text NOT NULL CHECK (type IN ('record', 'shape')),
    status                  text NOT NULL DEFAULT 'Active'
                            CHECK (status IN ('Active', 'Acknowledged', 'Resolved', 'Invalid', 'Duplicate', 'Discarded')),
    anomalous_records_count bigint NOT NULL DEFAULT 1,
    fingerprint             text NOT NULL,
    fingerprint_source      bigint REFERENCES anomalies (id) ON DELETE SET NULL,
    message                 text,
    description             text,
    tags                    jsonb NOT NULL DEFAULT '[]',
    assignee_ids            jsonb NOT NULL DEFAULT '[]',
    -- offending rows as JSON objects, bounded by the source record limit
    source_records          jsonb NOT NULL DEFAULT '[]',
    source_enriched         boolean NOT NULL DEFAULT false,
    weight                  integer NOT NULL DEFAULT 1,
    created                 timestamptz NOT NULL DEFAULT now(),
    updated                 timestamptz NOT NULL DEFAULT now(),
    archived_at             timestamptz,
    CHECK ((status IN ('Active', 'Acknowledged')) = (archived_at IS NULL))
);
CREATE INDEX anomalies_container ON anomalies (container_id, id DESC);
CREATE INDEX anomalies_fingerprint ON anomalies (container_id, fingerprint);
CREATE INDEX anomalies_operation ON anomalies (operation_id);

CREATE TABLE anomaly_checks (
    anomaly_id bigint NOT NULL REFERENCES anomalies (id) ON DELETE CASCADE,
    check_id   bigint NOT NULL REFERENCES quality_checks (id) ON DELETE CASCADE,
    message    text NOT NULL,
    PRIMARY KEY (anomaly_id, check_id)
);
CREATE INDEX anomaly_checks_check ON anomaly_checks (check_id);
