ALTER TABLE quarantine DROP COLUMN IF EXISTS envelope_sha256;
ALTER TABLE quarantine DROP COLUMN IF EXISTS envelope_size;
