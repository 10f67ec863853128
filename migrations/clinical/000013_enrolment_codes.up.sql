-- Enrolment is delivered to the person, not to an admin (docs/clinical.md,
-- "Enrolment"). A new or reset account has no password and no TOTP secret
-- (password_hash '' and totp_secret_enc empty, which log nobody in); the
-- person enrols with two one-time codes: 'create', shown to whoever created
-- or reset the account, and 'approve', shown to the different admin who
-- approved it. Only an HMAC of each code is stored (under a key derived from
-- CLINICAL_SECRET_KEY, which this database never sees); each expires and is
-- deleted when used.
CREATE TABLE staff_enrolment_codes (
  staff_id   bigint      NOT NULL REFERENCES staff (id),
  kind       text        NOT NULL CHECK (kind IN ('create', 'approve')),
  code_hash  bytea       NOT NULL CHECK (length(code_hash) = 32),
  -- the admin shown the code; NULL for `clinical staff add`
  issued_by  bigint      REFERENCES staff (id),
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (staff_id, kind)
);

-- Accounts created by earlier versions that never enrolled keep a one-time
-- password and a TOTP secret an admin was shown: take both away, so they
-- enrol the new way (an admin resets them).
UPDATE staff SET password_hash = '', totp_secret_enc = '\x'::bytea WHERE NOT totp_enrolled;

REVOKE ALL ON staff_enrolment_codes FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON staff_enrolment_codes TO airlock_clinical_app;
