-- Schedules: an operation of a datastore run on a cron expression (UTC) or a fixed interval. Each due instant is
-- claimed once by inserting (schedule, instant) into schedule_instants: the primary key makes the claim exactly
-- once however many servers share the store, and the claim, the queued operation and the instant's outcome are
-- one transaction, so an instant is either queued, recorded as skipped, or not claimed at all.
CREATE TABLE schedules (
    id               bigserial PRIMARY KEY,
    name             text NOT NULL,
    datastore_id     bigint NOT NULL REFERENCES datastores (id) ON DELETE CASCADE,
    type             text NOT NULL CHECK (type IN ('sync', 'profile', 'scan', 'export', 'materialize')),
    params           jsonb NOT NULL DEFAULT '{}',
    cron             text,
    interval_seconds bigint CHECK (interval_seconds > 0),
    enabled          boolean NOT NULL DEFAULT true,
    -- instants count from here: the creation, or the last change of the cadence or of enabled
    anchor           timestamptz NOT NULL DEFAULT now(),
    created_by       text NOT NULL,
    created          timestamptz NOT NULL DEFAULT now(),
    updated          timestamptz NOT NULL DEFAULT now(),
    CHECK ((cron IS NULL) <> (interval_seconds IS NULL)),
    UNIQUE (datastore_id, name)
);

CREATE TABLE schedule_instants (
    schedule_id  bigint NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    instant      timestamptz NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('queued', 'skipped')),
    operation_id bigint REFERENCES operations (id) ON DELETE SET NULL,
    reason       text,
    fired_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule_id, instant)
);

ALTER TABLE operations ADD COLUMN schedule_id bigint REFERENCES schedules (id) ON DELETE SET NULL;
CREATE INDEX operations_schedule_unfinished ON operations (schedule_id)
    WHERE schedule_id IS NOT NULL AND result IN ('queued', 'running');
