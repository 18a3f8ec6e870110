-- Computed containers and fields, global tags, check templates.

ALTER TABLE containers ADD COLUMN query text;
ALTER TABLE containers ADD COLUMN description text;
ALTER TABLE containers ADD COLUMN tags jsonb NOT NULL DEFAULT '[]';
ALTER TABLE containers ADD COLUMN additional_metadata jsonb NOT NULL DEFAULT '{}';

-- a computed field is also a row of `fields` (so checks can name it); this holds its definition
CREATE TABLE computed_fields (
    id                  bigserial PRIMARY KEY,
    container_id        bigint NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    name                text NOT NULL,
    transformation      text NOT NULL,
    source_fields       jsonb NOT NULL DEFAULT '[]',
    properties          jsonb NOT NULL DEFAULT '{}',
    additional_metadata jsonb NOT NULL DEFAULT '{}',
    -- the SQL expression the definition compiles to
    expression          text NOT NULL,
    created             timestamptz NOT NULL DEFAULT now(),
    updated             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (container_id, name)
);

CREATE TABLE global_tags (
    name            text PRIMARY KEY,
    type            text NOT NULL DEFAULT 'global',
    color           text,
    description     text,
    category        text,
    weight_modifier integer NOT NULL DEFAULT 0 CHECK (weight_modifier BETWEEN -10 AND 10),
    created         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE check_templates (
    id                    bigserial PRIMARY KEY,
    rule_type             text NOT NULL,
    description           text NOT NULL DEFAULT '',
    coverage              double precision,
    filter                text,
    properties            jsonb NOT NULL DEFAULT '{}',
    tags                  jsonb NOT NULL DEFAULT '[]',
    template_locked       boolean NOT NULL DEFAULT false,
    additional_metadata   jsonb NOT NULL DEFAULT '{}',
    anomaly_message_field text,
    created               timestamptz NOT NULL DEFAULT now()
);
