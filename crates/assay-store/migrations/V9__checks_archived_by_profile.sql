-- An inferred check the profile archived (no longer inferred, or failed on the newest rows) comes back when a
-- later profile infers it again; one a user archived stays archived.
ALTER TABLE quality_checks ADD COLUMN archived_by_profile boolean NOT NULL DEFAULT false;
