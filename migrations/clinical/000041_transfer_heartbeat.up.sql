-- A pass that did nothing (nothing moved, quarantined, expired or marked) is
-- not written to transfer_passes: a NOTIFY from any intake login triggers a
-- pass, and recording each made ~300k rows a day. Liveness is kept instead
-- in this one row, updated at most once a minute by idle passes, so
-- `transfer status`'s last_pass_at (and its alert) still sees an idle worker.
CREATE TABLE IF NOT EXISTS transfer_heartbeat (
  only_row     boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
  last_pass_at timestamptz NOT NULL
);
REVOKE ALL ON transfer_heartbeat FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON transfer_heartbeat TO airlock_clinical_transfer;
