DO $$ BEGIN
  CREATE ROLE airlock_clinical_app NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
DO $$ BEGIN
  CREATE ROLE airlock_clinical_transfer NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

-- Nobody but the owner creates objects here (Postgres 15 does this by
-- default; say it so older servers behave the same).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- Stage-2 submissions: plaintext by design, minimised to the carried items.
-- intake_id makes delivery idempotent; succession is intake's sequence number.
CREATE TABLE submissions (
  id             bigserial   PRIMARY KEY,
  intake_id      uuid        NOT NULL UNIQUE,
  succession     bigint      NOT NULL,
  receipt        text        NOT NULL UNIQUE,
  form_id        text        NOT NULL,
  form_version   text        NOT NULL,
  key_id         text        NOT NULL,
  submitted_at   timestamptz NOT NULL,
  received_at    timestamptz NOT NULL,
  transferred_at timestamptz NOT NULL DEFAULT now(),
  answers        jsonb       NOT NULL,
  status         text        NOT NULL DEFAULT 'new'
                 CHECK (status IN ('new', 'in_review', 'done', 'archived'))
);
CREATE INDEX submissions_succession ON submissions (succession);
CREATE INDEX submissions_form_received ON submissions (form_id, received_at);

-- Rows transfer could not deliver (bad MAC, bad envelope, broken binding,
-- invalid answers), kept as they were found with the reason, never opened
-- again automatically. digest makes quarantining idempotent across crashes.
CREATE TABLE quarantine (
  id             bigserial   PRIMARY KEY,
  digest         bytea       NOT NULL UNIQUE,
  reason         text        NOT NULL,
  intake_seq     bigint      NOT NULL,
  intake_id      uuid        NOT NULL,
  form_id        text        NOT NULL,
  form_version   text        NOT NULL,
  key_id         text        NOT NULL,
  received_at    timestamptz NOT NULL,
  envelope       bytea       NOT NULL,
  mac            bytea       NOT NULL,
  quarantined_at timestamptz NOT NULL DEFAULT now()
);

-- The transfer operations log: counts per pass, never content.
CREATE TABLE transfer_passes (
  id          bigserial   PRIMARY KEY,
  started_at  timestamptz NOT NULL,
  finished_at timestamptz NOT NULL,
  moved       integer     NOT NULL,
  quarantined integer     NOT NULL,
  duplicates  integer     NOT NULL,
  expired     integer     NOT NULL,
  unknown_key integer     NOT NULL
);

-- The audit log: an HMAC chain keyed by CLINICAL_SECRET_KEY, which the
-- database never sees. Entries hold ids and actions, never patient content.
CREATE TABLE audit_log (
  id       bigint      PRIMARY KEY,
  at       timestamptz NOT NULL,
  actor    text        NOT NULL,
  action   text        NOT NULL,
  target   text        NOT NULL,
  detail   text        NOT NULL, -- JSON, kept as the exact bytes the MAC covers
  prev_mac bytea       NOT NULL,
  mac      bytea       NOT NULL
);
CREATE SEQUENCE audit_log_id_seq OWNED BY audit_log.id;

REVOKE ALL ON submissions, quarantine, transfer_passes, audit_log FROM PUBLIC;
REVOKE ALL ON SEQUENCE submissions_id_seq, quarantine_id_seq, transfer_passes_id_seq, audit_log_id_seq FROM PUBLIC;

-- The staff app reads submissions and moves them through review; the audit
-- log is append-only for it.
GRANT SELECT ON submissions TO airlock_clinical_app;
GRANT UPDATE (status) ON submissions TO airlock_clinical_app;
GRANT SELECT, INSERT ON audit_log TO airlock_clinical_app;
GRANT USAGE ON SEQUENCE audit_log_id_seq TO airlock_clinical_app;

-- The worker delivers; it reads only what idempotency and status need.
GRANT SELECT (id, intake_id, succession), INSERT ON submissions TO airlock_clinical_transfer;
GRANT SELECT, INSERT ON quarantine, transfer_passes TO airlock_clinical_transfer;
GRANT USAGE ON SEQUENCE submissions_id_seq, quarantine_id_seq, transfer_passes_id_seq TO airlock_clinical_transfer;
-- Every Airlock role may read the schema version, so a binary can refuse a
-- database older than itself.
GRANT SELECT ON schema_migrations TO airlock_clinical_app, airlock_clinical_transfer;
