-- Stage-2 staff app: accounts, sessions, login throttling, review notes,
-- search, supersession, erasure and retention.

-- Staff accounts. A staff member holds a set of roles; admin manages staff
-- and sees no patient data unless also clinician or viewer. Any account
-- created or changed (roles, credentials) waits, status 'pending', for an
-- active admin other than the account and other than whoever asked for the
-- change (requested_by) to approve it.
CREATE TABLE staff (
  id                   bigserial   PRIMARY KEY,
  email                text        NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
  roles                text[]      NOT NULL CHECK (roles <@ ARRAY['admin', 'clinician', 'viewer'] AND cardinality(roles) > 0),
  status               text        NOT NULL CHECK (status IN ('pending', 'active', 'disabled')),
  -- argon2id in the PHC string format, parameters included.
  password_hash        text        NOT NULL,
  -- a one-time password from `staff add` or an admin must be replaced at first login
  must_change_password boolean     NOT NULL DEFAULT true,
  -- AES-256-GCM under a key derived from CLINICAL_SECRET_KEY (not in this database)
  totp_secret_enc      bytea       NOT NULL,
  totp_enrolled        boolean     NOT NULL DEFAULT false,
  -- the highest TOTP time step accepted: a code is good once (RFC 6238 5.2)
  totp_last_step       bigint      NOT NULL DEFAULT 0,
  created_at           timestamptz NOT NULL DEFAULT now(),
  requested_by         bigint      REFERENCES staff (id),
  approved_by          bigint      REFERENCES staff (id),
  approved_at          timestamptz
);
CREATE UNIQUE INDEX staff_email ON staff (email);

-- Sessions: only the SHA-256 of the cookie token is stored. stage 'enrol'
-- is a first login that may only set its password and confirm its TOTP.
CREATE TABLE staff_sessions (
  token_hash   bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
  staff_id     bigint      NOT NULL REFERENCES staff (id),
  stage        text        NOT NULL CHECK (stage IN ('enrol', 'full')),
  created_at   timestamptz NOT NULL,
  last_seen_at timestamptz NOT NULL
);
CREATE INDEX staff_sessions_staff ON staff_sessions (staff_id);

-- Failed logins for throttling, keyed by HMACs of the account name and of
-- the client address (neither stored in clear).
CREATE TABLE login_failures (
  id          bigserial   PRIMARY KEY,
  account_key bytea       NOT NULL,
  addr_key    bytea       NOT NULL,
  at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_account ON login_failures (account_key, at);
CREATE INDEX login_failures_addr ON login_failures (addr_key, at);

-- Review notes on a submission: clinical content, erased with it.
CREATE TABLE submission_notes (
  id            bigserial   PRIMARY KEY,
  submission_id bigint      NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
  staff_id      bigint      NOT NULL REFERENCES staff (id),
  at            timestamptz NOT NULL DEFAULT now(),
  body          text        NOT NULL CHECK (length(body) BETWEEN 1 AND 10000)
);
CREATE INDEX submission_notes_submission ON submission_notes (submission_id, id);

-- A corrected submission is kept, marked with the id of the one that
-- supersedes it, and hidden from the default list.
ALTER TABLE submissions ADD COLUMN IF NOT EXISTS superseded_by bigint;
ALTER TABLE submissions ADD COLUMN status_changed_at timestamptz;

-- Full-text search over the answers' text (strings, choice labels, dates,
-- attachment titles; never attachment data, which could be megabytes). The
-- 'simple' configuration lower-cases without stemming, which suits names.
CREATE FUNCTION submission_search(a jsonb) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT pg_catalog.to_tsvector('pg_catalog.simple'::regconfig, left(coalesce(pg_catalog.string_agg(
           coalesce(v ->> 'valueString', v -> 'valueCoding' ->> 'display', v ->> 'valueDate',
                    v -> 'valueAttachment' ->> 'title', ''), ' '), ''), 100000))
  FROM pg_catalog.jsonb_each(CASE WHEN pg_catalog.jsonb_typeof(a) = 'object' THEN a ELSE '{}'::jsonb END) AS e(k, vals),
       pg_catalog.jsonb_array_elements(CASE WHEN pg_catalog.jsonb_typeof(vals) = 'array' THEN vals ELSE '[]'::jsonb END) AS v
$$;
ALTER TABLE submissions ADD COLUMN search tsvector GENERATED ALWAYS AS (public.submission_search(answers)) STORED;

-- The list's indexes (docs/clinical.md explains them). Every list query
-- hides superseded rows and pages by (received_at, id).
CREATE INDEX submissions_list ON submissions (received_at, id) WHERE superseded_by IS NULL;
CREATE INDEX submissions_list_status ON submissions (status, received_at, id) WHERE superseded_by IS NULL;
CREATE INDEX submissions_list_form_status ON submissions (form_id, status, received_at, id) WHERE superseded_by IS NULL;
CREATE INDEX submissions_search ON submissions USING gin (search);

-- Erasure and retention delete submissions, which the app's login may not
-- do directly: these functions are the only way, and each deletes exactly
-- what it says (one submission; done submissions older than a cutoff).
CREATE FUNCTION erase_submission(sub_id bigint) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
  WITH gone AS (DELETE FROM public.submissions WHERE id = sub_id RETURNING id)
  SELECT count(*) = 1 FROM gone
$$;
CREATE FUNCTION retention_delete_done(cutoff timestamptz, max_rows integer) RETURNS SETOF bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
  DELETE FROM public.submissions WHERE id IN (
    SELECT id FROM public.submissions
    WHERE status = 'done' AND coalesce(status_changed_at, received_at) < cutoff
    ORDER BY id LIMIT max_rows)
  RETURNING id
$$;

REVOKE ALL ON staff, staff_sessions, login_failures, submission_notes FROM PUBLIC;
REVOKE ALL ON SEQUENCE staff_id_seq, login_failures_id_seq, submission_notes_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION erase_submission(bigint), retention_delete_done(timestamptz, integer) FROM PUBLIC;

-- The staff app: accounts are never deleted (the audit log names them),
-- only disabled; sessions and throttling rows come and go.
GRANT SELECT, INSERT ON staff TO airlock_clinical_app;
GRANT UPDATE (roles, status, password_hash, must_change_password, totp_secret_enc, totp_enrolled,
              totp_last_step, requested_by, approved_by, approved_at) ON staff TO airlock_clinical_app;
GRANT SELECT, INSERT, DELETE ON staff_sessions TO airlock_clinical_app;
GRANT UPDATE (last_seen_at) ON staff_sessions TO airlock_clinical_app;
GRANT SELECT, INSERT, DELETE ON login_failures TO airlock_clinical_app;
GRANT SELECT, INSERT ON submission_notes TO airlock_clinical_app;
GRANT USAGE ON SEQUENCE staff_id_seq, login_failures_id_seq, submission_notes_id_seq TO airlock_clinical_app;
GRANT UPDATE (status_changed_at) ON submissions TO airlock_clinical_app;
GRANT EXECUTE ON FUNCTION erase_submission(bigint), retention_delete_done(timestamptz, integer) TO airlock_clinical_app;
