REVOKE DELETE ON quarantine FROM airlock_clinical_transfer;
REVOKE UPDATE (superseded_by, superseded_at) ON submissions FROM airlock_clinical_transfer;
REVOKE SELECT (receipt, form_id, superseded_by, corrects_receipt) ON submissions FROM airlock_clinical_transfer;
DROP INDEX IF EXISTS transfer_passes_expiries, transfer_passes_ok_finished, quarantine_quarantined_at, submissions_corrects_receipt;
ALTER TABLE transfer_passes
  DROP COLUMN IF EXISTS quarantine_expired,
  DROP COLUMN IF EXISTS superseded,
  DROP COLUMN IF EXISTS unknown_form,
  DROP COLUMN IF EXISTS outcome;
-- superseded_by belongs to 000002 (the staff app's list depends on it).
ALTER TABLE submissions DROP COLUMN IF EXISTS corrects_receipt, DROP COLUMN IF EXISTS superseded_at;
