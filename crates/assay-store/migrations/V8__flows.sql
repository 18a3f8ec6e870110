-- Flows: notifications. A flow has a trigger, filters and actions (webhook, Slack, Teams, e-mail); the secret
-- parts of its actions (URLs, signing secrets, SMTP passwords) are one AES-GCM encrypted JSON document.
CREATE TABLE flows (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    description text,
    trigger     jsonb NOT NULL,
    filters     jsonb NOT NULL DEFAULT '{}',
    actions     jsonb NOT NULL DEFAULT '[]',
    secrets_enc bytea,
    active      boolean NOT NULL DEFAULT true,
    created_by  text NOT NULL,
    created     timestamptz NOT NULL DEFAULT now(),
    updated     timestamptz NOT NULL DEFAULT now()
);

-- The outbox. Rows are written by triggers in the transaction that ends an operation or changes an anomaly's
-- status, so an event exists exactly when its cause committed; `txid` groups the status changes of one request
-- into one message. Nothing is written while no flow is active.
CREATE TABLE flow_events (
    id            bigserial PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('operation_ended', 'anomaly_status_changed')),
    operation_id  bigint REFERENCES operations (id) ON DELETE CASCADE,
    anomaly_id    bigint REFERENCES anomalies (id) ON DELETE CASCADE,
    old_status    text,
    new_status    text,
    txid          bigint NOT NULL DEFAULT txid_current(),
    created       timestamptz NOT NULL DEFAULT now(),
    dispatched_at timestamptz
);
CREATE INDEX flow_events_pending ON flow_events (id) WHERE dispatched_at IS NULL;

CREATE FUNCTION assay_operation_ended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM flows WHERE active) THEN
        INSERT INTO flow_events (kind, operation_id) VALUES ('operation_ended', NEW.id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER operations_ended AFTER UPDATE OF end_time ON operations
    FOR EACH ROW WHEN (OLD.end_time IS NULL AND NEW.end_time IS NOT NULL)
    EXECUTE FUNCTION assay_operation_ended();

CREATE FUNCTION assay_anomaly_status_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM flows WHERE active) THEN
        INSERT INTO flow_events (kind, anomaly_id, old_status, new_status)
            VALUES ('anomaly_status_changed', NEW.id, OLD.status, NEW.status);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER anomalies_status_changed AFTER UPDATE OF status ON anomalies
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION assay_anomaly_status_changed();

-- One execution of a flow per event (or group of events) it matched, and one delivery per action of it, with
-- its attempts. A delivery keeps its id across retries, so a receiver that sees a message twice can tell.
CREATE TABLE flow_executions (
    id        bigserial PRIMARY KEY,
    flow_id   bigint NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    event_id  bigint NOT NULL REFERENCES flow_events (id) ON DELETE CASCADE,
    trigger   text NOT NULL,
    summary   text NOT NULL,
    message   jsonb NOT NULL,
    created   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (flow_id, event_id)
);

CREATE TABLE action_executions (
    id              bigserial PRIMARY KEY,
    execution_id    bigint NOT NULL REFERENCES flow_executions (id) ON DELETE CASCADE,
    action_index    integer NOT NULL,
    action_type     text NOT NULL,
    delivery_id     uuid NOT NULL UNIQUE,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_result     text,
    created         timestamptz NOT NULL DEFAULT now(),
    updated         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (execution_id, action_index)
);
CREATE INDEX action_executions_due ON action_executions (next_attempt_at) WHERE status = 'pending';

CREATE TABLE action_attempts (
    action_execution_id bigint NOT NULL REFERENCES action_executions (id) ON DELETE CASCADE,
    attempt             integer NOT NULL,
    at                  timestamptz NOT NULL DEFAULT now(),
    ok                  boolean NOT NULL,
    -- an HTTP status or an SMTP reply code
    code                integer,
    message             text NOT NULL,
    PRIMARY KEY (action_execution_id, attempt)
);
