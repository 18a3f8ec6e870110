-- Profiles (one container profile per container per profile operation, one field profile per column) and
-- quality checks (inferred by profiles for now; authored ones arrive with the checks API).

ALTER TABLE fields ADD COLUMN typname text NOT NULL DEFAULT 'text';
ALTER TABLE fields ADD COLUMN typcategory text NOT NULL DEFAULT 'S';

CREATE TABLE container_profiles (
    id                  bigserial PRIMARY KEY,
    operation_id        bigint REFERENCES operations (id) ON DELETE CASCADE,
    container_id        bigint NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    created             timestamptz NOT NULL DEFAULT now(),
    records_count       bigint NOT NULL,
    records_processed   bigint NOT NULL,
    field_count         integer NOT NULL,
    bytes               bigint,
    duration_ms         bigint NOT NULL,
    partitions          integer NOT NULL,
    sampled             boolean NOT NULL,
    sample_limit        bigint,
    incremental         boolean NOT NULL,
    strategy            text,
    watermark           text,
    increments          integer NOT NULL DEFAULT 0,
    -- updates + deletes the source had counted when this profile was taken (drift detection)
    mutations           bigint,
    parent_profile_id   bigint REFERENCES container_profiles (id) ON DELETE SET NULL,
    message             text
);
CREATE INDEX container_profiles_container ON container_profiles (container_id, id DESC);

CREATE TABLE field_profiles (
    id                   bigserial PRIMARY KEY,
    container_profile_id bigint NOT NULL REFERENCES container_profiles (id) ON DELETE CASCADE,
    container_id         bigint NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    field_id             bigint REFERENCES fields (id) ON DELETE SET NULL,
    name                 text NOT NULL,
    profile              jsonb NOT NULL,
    -- the mergeable state, kept for incremental profiles (absent for sampled profiles)
    state                bytea,
    created              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX field_profiles_profile ON field_profiles (container_profile_id);

ALTER TABLE containers ADD COLUMN latest_profile_id bigint REFERENCES container_profiles (id) ON DELETE SET NULL;

CREATE TABLE quality_checks (
    id                  bigserial PRIMARY KEY,
    container_id        bigint NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    rule_type           text NOT NULL,
    description         text NOT NULL DEFAULT '',
    fields              jsonb NOT NULL DEFAULT '[]',
    coverage            double precision,
    filter              text,
    properties          jsonb NOT NULL DEFAULT '{}',
    status              text NOT NULL DEFAULT 'Active'
                        CHECK (status IN ('Active', 'Draft', 'Invalid', 'Discarded')),
    -- true while the profile manages it; editing properties, coverage, filter or fields makes it authored
    inferred            boolean NOT NULL DEFAULT false,
    inference_key       text,
    tags                jsonb NOT NULL DEFAULT '[]',
    additional_metadata jsonb NOT NULL DEFAULT '{}',
    created             timestamptz NOT NULL DEFAULT now(),
    updated             timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    last_editor         text,
    UNIQUE (container_id, inference_key)
);
CREATE INDEX quality_checks_container ON quality_checks (container_id);
