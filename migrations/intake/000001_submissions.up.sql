-- Roles are cluster-wide: create them once, tolerate a concurrent creator.
DO $$ BEGIN
  CREATE ROLE airlock_intake_writer NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
DO $$ BEGIN
  CREATE ROLE airlock_intake_transfer NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

-- Nobody but the owner creates objects here (Postgres 15 does this by
-- default; say it so older servers behave the same).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- One sealed submission per row. Only ciphertext and the minimum metadata
-- transfer needs; no IP address, no answers. seq is the succession number.
CREATE TABLE submissions (
  seq         bigserial   PRIMARY KEY,
  id          uuid        NOT NULL UNIQUE,
  form_id     text        NOT NULL CHECK (length(form_id) BETWEEN 1 AND 64),
  form_version text       NOT NULL CHECK (length(form_version) <= 64),
  key_id      text        NOT NULL CHECK (length(key_id) = 16),
  received_at timestamptz NOT NULL,
  envelope    bytea       NOT NULL,
  mac         bytea       NOT NULL CHECK (length(mac) = 32)
);
CREATE INDEX submissions_received_at ON submissions (received_at);

-- Wake transfer on every insert. The payload is always empty: a NOTIFY must
-- never carry data.
CREATE FUNCTION notify_submission() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('airlock_submission', '');
  RETURN NULL;
END $$;
CREATE TRIGGER submissions_notify AFTER INSERT ON submissions
  FOR EACH STATEMENT EXECUTE FUNCTION notify_submission();

REVOKE ALL ON submissions FROM PUBLIC;
REVOKE ALL ON SEQUENCE submissions_seq_seq FROM PUBLIC;
-- The public-facing server may add rows and nothing else: it can never read,
-- change or delete what it (or anyone) stored.
GRANT INSERT ON submissions TO airlock_intake_writer;
GRANT USAGE ON SEQUENCE submissions_seq_seq TO airlock_intake_writer;
-- The worker reads and deletes; it can never add or alter a row.
GRANT SELECT, DELETE ON submissions TO airlock_intake_transfer;
-- Every Airlock role may read the schema version, so a binary can refuse a
-- database older than itself.
GRANT SELECT ON schema_migrations TO airlock_intake_writer, airlock_intake_transfer;
