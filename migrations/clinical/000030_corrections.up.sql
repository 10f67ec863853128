-- Corrections need the submitter's correction code, and a clinician accepts
-- a correction before it supersedes anything (docs/transfer.md and
-- docs/clinical.md, "Corrections").
--
-- Supersessions made before this migration were made on a receipt alone,
-- which every staff account and every export shows: none of them can be
-- trusted. Every submission is current again; each such correction keeps
-- the receipt it named (corrects_receipt) and is shown as "correction not
-- verified" beside it.
UPDATE submissions SET superseded_by = NULL, superseded_at = NULL WHERE superseded_by IS NOT NULL;

-- corrects_id: the submission a correction is linked to, set by transfer
-- only when the presented code's hash matches the original's and the
-- correction's sealed submission time is newer. correction_verified stays
-- true once linked, also when the original is erased later (corrects_id is
-- then NULL). A clinician's acceptance (correction_accepted_*) is what sets
-- superseded_by on the original. Erasing either row never leaves the other
-- pointing at an erased row.
ALTER TABLE submissions
  ADD COLUMN corrects_id bigint REFERENCES submissions (id) ON DELETE SET NULL,
  ADD COLUMN correction_verified boolean NOT NULL DEFAULT false,
  ADD COLUMN correction_accepted_at timestamptz,
  ADD COLUMN correction_accepted_by bigint REFERENCES staff (id),
  ADD CONSTRAINT submissions_superseded_by_fkey FOREIGN KEY (superseded_by) REFERENCES submissions (id) ON DELETE SET NULL,
  ADD CONSTRAINT submissions_not_self CHECK (superseded_by <> id AND corrects_id <> id),
  ADD CONSTRAINT submissions_linked_verified CHECK (corrects_id IS NULL OR correction_verified),
  ADD CONSTRAINT submissions_accepted CHECK ((correction_accepted_at IS NULL) = (correction_accepted_by IS NULL)
                                             AND (correction_accepted_at IS NULL OR correction_verified));
CREATE INDEX submissions_corrects_id ON submissions (corrects_id) WHERE corrects_id IS NOT NULL;
CREATE INDEX submissions_superseded_by ON submissions (superseded_by) WHERE superseded_by IS NOT NULL;

-- superseded_at goes with superseded_by, also when erasing the superseding
-- row clears superseded_by (ON DELETE SET NULL).
CREATE FUNCTION submissions_superseded_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.superseded_by IS NULL THEN
    NEW.superseded_at := NULL;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER submissions_superseded_at BEFORE UPDATE OF superseded_by ON submissions
  FOR EACH ROW EXECUTE FUNCTION submissions_superseded_at();

-- The correction-code hashes, kept at stage 2 for linking only: the hash of
-- each submission's own code (NULL for rows sealed before codes existed,
-- which cannot be corrected) and, for a correction, the hash of the code it
-- presented. Only the worker reads them; the staff app has no grant at all,
-- so no page and no export can show one. Erased with their submission.
CREATE TABLE correction_codes (
  submission_id      bigint PRIMARY KEY REFERENCES submissions (id) ON DELETE CASCADE,
  code_hash          bytea  CHECK (length(code_hash) = 32),
  corrects_code_hash bytea  CHECK (length(corrects_code_hash) = 32)
);
REVOKE ALL ON correction_codes FROM PUBLIC;
GRANT SELECT, INSERT ON correction_codes TO airlock_clinical_transfer;

-- The worker links; it no longer supersedes.
REVOKE UPDATE (superseded_by, superseded_at) ON submissions FROM airlock_clinical_transfer;
GRANT SELECT (submitted_at, corrects_id, correction_verified) ON submissions TO airlock_clinical_transfer;
GRANT UPDATE (corrects_id, correction_verified) ON submissions TO airlock_clinical_transfer;

-- A clinician accepts a correction: the app marks the current version
-- superseded and the correction accepted, and carries status and notes over.
GRANT UPDATE (superseded_by, superseded_at, correction_accepted_at, correction_accepted_by) ON submissions
  TO airlock_clinical_app;
