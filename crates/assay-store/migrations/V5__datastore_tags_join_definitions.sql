-- Tags on datastores (the API's global_tags), for the datastore list's tag filter and config exports.
ALTER TABLE datastores ADD COLUMN tags jsonb NOT NULL DEFAULT '[]';

-- The definition a computed container was made from when it is not a plain query (a computed join: its two
-- containers, keys, join type, prefixes and clauses); its generated query is kept in `query`.
ALTER TABLE containers ADD COLUMN definition jsonb;
