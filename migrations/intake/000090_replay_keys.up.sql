-- Each rendered HTML form, and each Idempotency-Key of the JSON and FHIR
-- APIs, stores at most one submission (docs/intake.md, "Sending twice").
-- intake derives a row's id, receipt and correction code from an HMAC (under
-- a key only intake holds) of the form, the rendered form's token or the
-- client's key, and the validated answers, so a repeat of the same request
-- makes the same row id and meets the id's unique index. replay_key is the
-- HMAC of the form and the token or key alone: the same token or key with
-- other answers makes another id but the same replay_key, and is refused.
--
-- DEFERRABLE (checked at the end of the statement) while the id's index is
-- checked at once: a true repeat always fails on submissions_id_key, and
-- only a different body fails on submissions_replay_key, so intake tells
-- the two apart by the constraint's name with INSERT privilege alone
-- (INSERT ... ON CONFLICT (id) would need SELECT on id).
ALTER TABLE submissions ADD COLUMN replay_key bytea CHECK (length(replay_key) = 32);
ALTER TABLE submissions ADD CONSTRAINT submissions_replay_key UNIQUE (replay_key) DEFERRABLE INITIALLY IMMEDIATE;

-- Once transfer has moved a row, its replay key must keep working: a repeat
-- arriving later (a phone that was offline, a client retrying the next day)
-- would otherwise be stored again (clinical would then drop it as already
-- delivered), and a reused key with other answers would be accepted. The
-- key and id are kept here for seven days after the row leaves. Hashes and
-- ids only, never content; nobody but these two triggers reads or writes it.
CREATE TABLE submission_replays (
  replay_key bytea       PRIMARY KEY CHECK (length(replay_key) = 32),
  id         uuid        NOT NULL,
  gone_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX submission_replays_gone_at ON submission_replays (gone_at);
REVOKE ALL ON submission_replays FROM PUBLIC;

-- Both functions run as the owner (SECURITY DEFINER): pg_temp is listed
-- last in their search_path and every table is schema-qualified, or a login
-- could put a temporary view named submission_replays in front of the real
-- table and run its own code as the owner.
CREATE FUNCTION remember_replay_keys() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
  -- Purge first, so a stale entry for a reused key is replaced, not kept
  -- by the conflict and then purged, which would leave no tombstone.
  DELETE FROM public.submission_replays WHERE gone_at < now() - interval '7 days';
  INSERT INTO public.submission_replays (replay_key, id)
    SELECT replay_key, id FROM gone WHERE replay_key IS NOT NULL
    ON CONFLICT (replay_key) DO UPDATE SET id = EXCLUDED.id, gone_at = EXCLUDED.gone_at;
  RETURN NULL;
END $$;
CREATE TRIGGER submissions_remember_replay_keys AFTER DELETE ON submissions
  REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION remember_replay_keys();

-- A row whose replay key belongs to a submission already moved: the same id
-- is a repeat, refused as the id's unique index would refuse it (intake
-- shows the receipt it derives again); another id is the same key with
-- other answers, refused as the replay key's unique constraint would.
-- An AFTER constraint trigger, not a BEFORE trigger: it runs after the
-- insert has waited for any transfer DELETE of the same id or key in
-- flight, and reads with a fresh snapshot, so a repeat racing the move
-- meets the tombstone that DELETE wrote (a BEFORE trigger looked first and
-- let the repeat through once the DELETE committed).
CREATE FUNCTION check_replay_key() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
  earlier uuid;
BEGIN
  SELECT r.id INTO earlier FROM public.submission_replays r
    WHERE r.replay_key = NEW.replay_key AND r.gone_at >= now() - interval '7 days';
  IF NOT FOUND THEN
    RETURN NULL;
  ELSIF earlier = NEW.id THEN
    RAISE EXCEPTION 'submission already stored and moved'
      USING ERRCODE = 'unique_violation', CONSTRAINT = 'submissions_id_key',
            TABLE = 'submissions', SCHEMA = 'public';
  END IF;
  RAISE EXCEPTION 'replay key already used for another submission'
    USING ERRCODE = 'unique_violation', CONSTRAINT = 'submissions_replay_key',
          TABLE = 'submissions', SCHEMA = 'public';
END $$;
CREATE CONSTRAINT TRIGGER submissions_check_replay_key AFTER INSERT ON submissions
  FOR EACH ROW WHEN (NEW.replay_key IS NOT NULL) EXECUTE FUNCTION check_replay_key();
REVOKE ALL ON FUNCTION remember_replay_keys(), check_replay_key() FROM PUBLIC;
