-- Transfer operations: supersession of corrected submissions, the
-- quarantine's own retention, and fuller pass records. Columns another
-- migration may also add are added IF NOT EXISTS.

-- "Only current data": a submission whose corrects-receipt answer names an
-- earlier receipt (of the same form) supersedes it. The earlier row is kept,
-- marked with the id of the row that supersedes it and when; the staff list
-- hides it by default. corrects_receipt is the receipt the row names, kept so
-- an original delivered after its correction (it waited under a key transfer
-- did not hold yet) is still marked.
ALTER TABLE submissions ADD COLUMN IF NOT EXISTS superseded_by bigint;
ALTER TABLE submissions ADD COLUMN IF NOT EXISTS superseded_at timestamptz;
ALTER TABLE submissions ADD COLUMN IF NOT EXISTS corrects_receipt text;
CREATE INDEX IF NOT EXISTS submissions_corrects_receipt ON submissions (corrects_receipt)
  WHERE corrects_receipt IS NOT NULL;

-- Quarantined rows are deleted after TRANSFER_QUARANTINE_RETENTION.
CREATE INDEX IF NOT EXISTS quarantine_quarantined_at ON quarantine (quarantined_at);

-- Every pass is recorded, also one that failed or was interrupted half-way
-- (what it did before stopping is real and counted). Counts only.
ALTER TABLE transfer_passes
  ADD COLUMN IF NOT EXISTS outcome text NOT NULL DEFAULT 'ok' CHECK (outcome IN ('ok', 'interrupted', 'failed')),
  ADD COLUMN IF NOT EXISTS unknown_form integer NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS superseded integer NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS quarantine_expired integer NOT NULL DEFAULT 0;
-- A pass is recorded every minute or so: status and metrics read these two
-- indexes, not the whole log.
CREATE INDEX IF NOT EXISTS transfer_passes_ok_finished ON transfer_passes (finished_at) WHERE outcome = 'ok';
CREATE INDEX IF NOT EXISTS transfer_passes_expiries ON transfer_passes (expired, quarantine_expired)
  WHERE expired > 0 OR quarantine_expired > 0;

-- The worker marks supersession: it finds the earlier row by receipt and
-- form and follows an existing chain, so it reads those columns (never the
-- answers) and may set only the two supersession columns. It deletes
-- quarantined rows past their retention.
GRANT SELECT (receipt, form_id, superseded_by, corrects_receipt) ON submissions TO airlock_clinical_transfer;
GRANT UPDATE (superseded_by, superseded_at) ON submissions TO airlock_clinical_transfer;
GRANT DELETE ON quarantine TO airlock_clinical_transfer;
