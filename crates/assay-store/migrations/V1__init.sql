-- The metadata store of Assay: users, teams, tokens, connections, datastores, catalog and operations.

CREATE TABLE settings (
    key   text PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    name          text NOT NULL,
    email         text,
    password_hash text,
    role          text NOT NULL CHECK (role IN ('Admin', 'Member')),
    created       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE teams (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    description text,
    created     timestamptz NOT NULL DEFAULT now()
);
INSERT INTO teams (name, description) VALUES ('Public', 'Visible to every user');

CREATE TABLE team_members (
    team_id bigint NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, user_id)
);

CREATE TABLE api_tokens (
    id         bigserial PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       text NOT NULL,
    created    timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz
);

CREATE TABLE connections (
    id                  bigserial PRIMARY KEY,
    name                text NOT NULL UNIQUE,
    type                text NOT NULL,
    host                text NOT NULL,
    port                text NOT NULL,
    username            text NOT NULL,
    password_enc        bytea,
    parameters          jsonb NOT NULL DEFAULT '{}',
    max_parallelization integer,
    jdbc_fetch_size     integer,
    -- secrets manager settings without the credentials payload, which is kept encrypted beside it
    secrets_manager     jsonb,
    credentials_enc     bytea,
    created             timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE datastores (
    id                              bigserial PRIMARY KEY,
    name                            text NOT NULL UNIQUE,
    connection_id                   bigint NOT NULL REFERENCES connections (id) ON DELETE RESTRICT,
    database                        text NOT NULL,
    schema                          text NOT NULL,
    description                     text,
    enrichment_only                 boolean NOT NULL DEFAULT false,
    enrichment_prefix               text,
    enrichment_source_record_limit  bigint NOT NULL DEFAULT 10,
    high_count_rollup_threshold     bigint NOT NULL DEFAULT 10,
    enrichment_remediation_strategy text NOT NULL DEFAULT 'none',
    enrich_datastore_id             bigint REFERENCES datastores (id) ON DELETE SET NULL,
    created                         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX datastores_connection ON datastores (connection_id);

CREATE TABLE datastore_teams (
    datastore_id bigint NOT NULL REFERENCES datastores (id) ON DELETE CASCADE,
    team_id      bigint NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    PRIMARY KEY (datastore_id, team_id)
);

CREATE TABLE containers (
    id                          bigserial PRIMARY KEY,
    datastore_id                bigint NOT NULL REFERENCES datastores (id) ON DELETE CASCADE,
    name                        text NOT NULL,
    table_type                  text NOT NULL,
    row_estimate                bigint,
    primary_key                 jsonb NOT NULL DEFAULT '[]',
    incremental_candidates      jsonb NOT NULL DEFAULT '[]',
    incremental_identifier_type text,
    incremental_field_name      text,
    incremental_checkpoint      text,
    remarks                     text,
    deleted_at                  timestamptz,
    created                     timestamptz NOT NULL DEFAULT now(),
    last_synced                 timestamptz,
    UNIQUE (datastore_id, name)
);

CREATE TABLE fields (
    id              bigserial PRIMARY KEY,
    container_id    bigint NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    name            text NOT NULL,
    ordinal         integer NOT NULL,
    native_type     text NOT NULL,
    type            text NOT NULL,
    nullable        boolean NOT NULL,
    sequence_backed boolean NOT NULL DEFAULT false,
    remarks         text,
    deleted_at      timestamptz,
    created         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (container_id, name)
);

CREATE TABLE operations (
    id                bigserial PRIMARY KEY,
    type              text NOT NULL,
    datastore_id      bigint NOT NULL REFERENCES datastores (id) ON DELETE CASCADE,
    params            jsonb NOT NULL DEFAULT '{}',
    result            text NOT NULL DEFAULT 'queued'
                      CHECK (result IN ('queued', 'running', 'success', 'failure', 'aborted')),
    message           text,
    detail            text,
    status            jsonb NOT NULL DEFAULT '{}',
    triggered_by      text NOT NULL,
    triggered_by_user bigint REFERENCES users (id) ON DELETE SET NULL,
    abort_requested   boolean NOT NULL DEFAULT false,
    aborted_by        text,
    worker            text,
    heartbeat         timestamptz,
    created           timestamptz NOT NULL DEFAULT now(),
    start_time        timestamptz,
    end_time          timestamptz
);
CREATE INDEX operations_queue ON operations (id) WHERE result = 'queued';
CREATE INDEX operations_datastore ON operations (datastore_id, created DESC);
