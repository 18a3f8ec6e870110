-- Volume and freshness: a measurement series per container, and the tracking settings (a container's NULL takes
-- its datastore's default).
CREATE TABLE observability_measurements (
    id                     bigserial PRIMARY KEY,
    container_id           bigint NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    measurement_time       timestamptz NOT NULL DEFAULT now(),
    row_count              bigint,
    size_bytes             bigint,
    -- the source's cumulative inserts + updates + deletes of the table when measured (statistics counters)
    modifications          bigint,
    last_modification_time timestamptz,
    -- how the row count was taken: exact count, profile, scan or catalog estimate
    method                 text NOT NULL,
    operation_id           bigint REFERENCES operations (id) ON DELETE SET NULL,
    created                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX observability_measurements_container
    ON observability_measurements (container_id, measurement_time DESC, id DESC);

ALTER TABLE containers
    ADD COLUMN volumetric_tracking_enabled boolean,
    ADD COLUMN freshness_tracking_enabled boolean,
    ADD COLUMN automate_volumetric_checks boolean,
    ADD COLUMN automate_freshness_checks boolean;

ALTER TABLE datastores
    ADD COLUMN default_volumetric_tracking_enabled boolean NOT NULL DEFAULT true,
    ADD COLUMN default_freshness_tracking_enabled boolean NOT NULL DEFAULT true,
    ADD COLUMN default_automate_volumetric_checks boolean NOT NULL DEFAULT false,
    ADD COLUMN default_automate_freshness_checks boolean NOT NULL DEFAULT false;
