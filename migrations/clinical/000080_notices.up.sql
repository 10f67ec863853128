-- Content-free notices (CLINICAL_NOTIFY_*): `clinical serve` mails a digest
-- of how many submissions arrived per form and how many rows were
-- quarantined since the last notice. Each row is counted once: the digest
-- marks what it counted in the same transaction that sends it, so two app
-- replicas never count a row twice and a failed send leaves it for the next.
-- Rows already here when notices arrive count as notified (the default true
-- applies to them without rewriting the table); new rows start unnotified.
ALTER TABLE submissions ADD COLUMN IF NOT EXISTS notified boolean NOT NULL DEFAULT true;
ALTER TABLE submissions ALTER COLUMN notified SET DEFAULT false;
CREATE INDEX IF NOT EXISTS submissions_unnotified ON submissions (id) WHERE NOT notified;

ALTER TABLE quarantine ADD COLUMN IF NOT EXISTS notified boolean NOT NULL DEFAULT true;
ALTER TABLE quarantine ALTER COLUMN notified SET DEFAULT false;
CREATE INDEX IF NOT EXISTS quarantine_unnotified ON quarantine (id) WHERE NOT notified;

-- The app may mark rows notified and nothing more; of the quarantine it sees
-- only that flag (never the envelope, reason or ids).
GRANT UPDATE (notified) ON submissions TO airlock_clinical_app;
GRANT SELECT (notified), UPDATE (notified) ON quarantine TO airlock_clinical_app;
