-- One-time results (docs/results.md). A clinician publishes a document for a
-- submission; the app seals it under a key derived from a token shown once
-- and never stored, and keeps the sealed bytes and SHA-256 of the token.
-- Transfer carries it to intake and reports back what became of it.
CREATE TABLE results (
  id                  bigserial   PRIMARY KEY,
  submission_id       bigint      NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
  token_hash          bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
  title               text        NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  content_type        text        NOT NULL,
  sealed_title        bytea       NOT NULL,
  -- the sealed document; cleared once intake holds it, or when it ends
  sealed              bytea,
  size                bigint      NOT NULL CHECK (size >= 0),
  birth_date_required boolean     NOT NULL,
  published_by        text        NOT NULL,
  published_at        timestamptz NOT NULL,
  expires_at          timestamptz NOT NULL,
  state               text        NOT NULL DEFAULT 'published'
                      CHECK (state IN ('published', 'delivered', 'downloaded', 'locked', 'expired', 'withdrawn')),
  state_at            timestamptz NOT NULL,
  -- intake holds the result now (set by transfer when it carries it in,
  -- cleared when it is gone there)
  in_intake           boolean     NOT NULL DEFAULT false
);
CREATE INDEX results_submission ON results (submission_id, id);
CREATE INDEX results_to_carry ON results (id) WHERE state = 'published';
CREATE INDEX results_in_intake ON results (id) WHERE in_intake;

REVOKE ALL ON results FROM PUBLIC;
REVOKE ALL ON SEQUENCE results_id_seq FROM PUBLIC;
-- The staff app publishes, lists and withdraws.
GRANT SELECT, INSERT ON results TO airlock_clinical_app;
GRANT UPDATE (state, state_at, sealed) ON results TO airlock_clinical_app;
GRANT USAGE ON SEQUENCE results_id_seq TO airlock_clinical_app;
-- The worker reads what carrying needs (never the title or type in clear)
-- and records what became of each result.
GRANT SELECT (id, token_hash, sealed_title, sealed, size, birth_date_required, expires_at, state, state_at, in_intake)
  ON results TO airlock_clinical_transfer;
GRANT UPDATE (state, state_at, sealed, in_intake) ON results TO airlock_clinical_transfer;
