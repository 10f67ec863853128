REVOKE UPDATE (notified) ON submissions FROM airlock_clinical_app;
REVOKE SELECT (notified), UPDATE (notified) ON quarantine FROM airlock_clinical_app;
DROP INDEX IF EXISTS submissions_unnotified;
DROP INDEX IF EXISTS quarantine_unnotified;
ALTER TABLE submissions DROP COLUMN IF EXISTS notified;
ALTER TABLE quarantine DROP COLUMN IF EXISTS notified;
