-- Entries appended since 000012 have MACs that cover seq: an older binary's
-- `clinical audit verify` reports the first of them as edited.
DROP INDEX IF EXISTS audit_log_seq;
ALTER TABLE audit_log DROP COLUMN IF EXISTS seq;
