-- Accepted corrections stay as superseded_by; links, verification and the
-- code hashes are dropped (an older binary supersedes on a receipt alone).
REVOKE UPDATE (superseded_by, superseded_at, correction_accepted_at, correction_accepted_by) ON submissions
  FROM airlock_clinical_app;
REVOKE UPDATE (corrects_id, correction_verified) ON submissions FROM airlock_clinical_transfer;
REVOKE SELECT (submitted_at, corrects_id, correction_verified) ON submissions FROM airlock_clinical_transfer;
GRANT UPDATE (superseded_by, superseded_at) ON submissions TO airlock_clinical_transfer;
DROP TABLE IF EXISTS correction_codes;
DROP TRIGGER IF EXISTS submissions_superseded_at ON submissions;
DROP FUNCTION IF EXISTS submissions_superseded_at();
DROP INDEX IF EXISTS submissions_corrects_id;
DROP INDEX IF EXISTS submissions_superseded_by;
ALTER TABLE submissions
  DROP CONSTRAINT IF EXISTS submissions_accepted,
  DROP CONSTRAINT IF EXISTS submissions_linked_verified,
  DROP CONSTRAINT IF EXISTS submissions_not_self,
  DROP CONSTRAINT IF EXISTS submissions_superseded_by_fkey,
  DROP COLUMN IF EXISTS correction_accepted_by,
  DROP COLUMN IF EXISTS correction_accepted_at,
  DROP COLUMN IF EXISTS correction_verified,
  DROP COLUMN IF EXISTS corrects_id;
