-- A search of the staff app is a POST (its text may be a name or a date of
-- birth, which never goes in a URL) answered with 303 to
-- /submissions?search=<id>, so Back and reload work without "Confirm Form
-- Resubmission". The id is 256 random bits; only its SHA-256 is kept, with
-- the session it belongs to (it works for no other session and goes when
-- the session ends) and the search sealed under a key derived from the
-- clinical secret key (AES-GCM, bound to the session and the id). Kept one
-- hour at most.
CREATE TABLE saved_searches (
  id_hash      bytea       PRIMARY KEY CHECK (length(id_hash) = 32),
  session_hash bytea       NOT NULL REFERENCES staff_sessions (token_hash) ON DELETE CASCADE,
  sealed       bytea       NOT NULL CHECK (octet_length(sealed) <= 4096),
  expires_at   timestamptz NOT NULL
);
CREATE INDEX saved_searches_session ON saved_searches (session_hash);
CREATE INDEX saved_searches_expires_at ON saved_searches (expires_at);

REVOKE ALL ON saved_searches FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON saved_searches TO airlock_clinical_app;
