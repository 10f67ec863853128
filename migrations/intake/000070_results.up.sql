-- One-time results (docs/results.md): documents the clinic publishes for a
-- patient, sealed at stage 2 under a key derived from a token that exists
-- only in the patient's link. This database holds the sealed bytes and the
-- SHA-256 of the token as the lookup key, never the token, a key or a
-- plaintext: the title is sealed too.
DO $$ BEGIN
  CREATE ROLE airlock_intake_results NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

CREATE TABLE results (
  token_hash          bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
  sealed_title        bytea       NOT NULL,
  sealed              bytea       NOT NULL,
  size                bigint      NOT NULL CHECK (size >= 0),
  birth_date_required boolean     NOT NULL,
  expires_at          timestamptz NOT NULL,
  delivered_at        timestamptz NOT NULL DEFAULT now(),
  -- wrong dates of birth so far; the fifth uses the link up
  failures            integer     NOT NULL DEFAULT 0 CHECK (failures >= 0)
);
CREATE INDEX results_expires_at ON results (expires_at);

-- What became of a link that is gone, by its token hash, so a later request
-- answers 410 (used, expired, withdrawn) rather than 404 (never issued).
-- Transfer also reads the reason to tell the clinic. Hashes only.
CREATE TABLE result_tombstones (
  token_hash bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
  reason     text        NOT NULL CHECK (reason IN ('downloaded', 'locked', 'expired', 'withdrawn')),
  at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX result_tombstones_at ON result_tombstones (at);

REVOKE ALL ON results, result_tombstones FROM PUBLIC;
-- The intake server (its login holds this role beside airlock_intake_writer):
-- find a result by its token hash, count a wrong date of birth, and delete
-- it when it is consumed, leaving a tombstone. Nothing on submissions.
GRANT SELECT, DELETE ON results TO airlock_intake_results;
GRANT UPDATE (failures) ON results TO airlock_intake_results;
GRANT SELECT, INSERT ON result_tombstones TO airlock_intake_results;
-- The worker carries results in, expires and withdraws them (leaving a
-- tombstone), learns from the tombstones what became of the others, and
-- prunes old tombstones. It never changes a stored result.
GRANT SELECT (token_hash, expires_at), INSERT, DELETE ON results TO airlock_intake_transfer;
GRANT SELECT, INSERT, DELETE ON result_tombstones TO airlock_intake_transfer;
GRANT SELECT ON schema_migrations TO airlock_intake_results;
