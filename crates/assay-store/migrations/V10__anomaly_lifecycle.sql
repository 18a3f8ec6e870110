-- One anomaly across scans: when its finding was last seen, how many scans found it, and how many times it came
-- back after it had been resolved.
ALTER TABLE anomalies ADD COLUMN last_seen timestamptz;
UPDATE anomalies SET last_seen = created;
ALTER TABLE anomalies ALTER COLUMN last_seen SET DEFAULT now(), ALTER COLUMN last_seen SET NOT NULL;
ALTER TABLE anomalies ADD COLUMN times_seen integer NOT NULL DEFAULT 1;
ALTER TABLE anomalies ADD COLUMN recurrences integer NOT NULL DEFAULT 0;
