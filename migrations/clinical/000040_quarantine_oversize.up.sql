-- A row too large to read (over the intake schema's envelope bound, stored
-- before that bound existed or by the database owner) is quarantined without
-- its envelope: the envelope column is left empty and the row is identified
-- by the envelope's size and SHA-256, computed by the intake database.
-- Every quarantined row records both, so any can be matched against a copy.
ALTER TABLE quarantine ADD COLUMN IF NOT EXISTS envelope_size bigint;
ALTER TABLE quarantine ADD COLUMN IF NOT EXISTS envelope_sha256 bytea;
