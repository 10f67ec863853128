-- Appends to the audit log go through the functions below, which fix each
-- entry's number, id and previous MAC themselves; the app's login loses
-- INSERT on audit_log and USAGE on its id sequence. Before, it could insert
-- any row (any id, number, MAC), and one row with a huge id became the head
-- every later append chained from, which failed them all, for good.
--
-- The MAC is keyed by the clinical secret key, which the database never
-- sees, so the app computes it. An append is two calls in one transaction:
--   audit_next()  takes the append lock (held to the end of the
--                 transaction), and returns the next entry's id (from the
--                 sequence), its number (the head's + 1, the head being the
--                 entry with the highest number) and the head's MAC;
--   audit_append(...) inserts the entry after checking that its number and
--                 previous MAC follow the head and its id is the one
--                 audit_next gave this session, above the head's.
-- The app cannot choose the number, the id or the previous MAC, so it can
-- no longer fork, wedge or reorder the chain; a wrong MAC is still its own
-- to write, and `clinical audit verify` reports it.

REVOKE INSERT ON audit_log FROM airlock_clinical_app;
REVOKE USAGE ON SEQUENCE audit_log_id_seq FROM airlock_clinical_app;

CREATE FUNCTION audit_next(OUT next_id bigint, OUT next_seq bigint, OUT prev_mac bytea)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  -- 0x4169726c6f636b02, the append lock (clinical/audit.go auditLockKey)
  PERFORM pg_catalog.pg_advisory_xact_lock(4713424295070755586);
  SELECT l.seq, l.mac INTO next_seq, prev_mac
  FROM public.audit_log l WHERE l.seq IS NOT NULL ORDER BY l.seq DESC LIMIT 1;
  IF NOT FOUND THEN
    next_seq := 0;
    prev_mac := pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex');
  END IF;
  next_seq := next_seq + 1;
  next_id := pg_catalog.nextval('public.audit_log_id_seq');
END $$;

CREATE FUNCTION audit_append(e_id bigint, e_seq bigint, e_at timestamptz, e_actor text, e_action text,
                             e_target text, e_detail text, e_prev_mac bytea, e_mac bytea) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  head_id  bigint := 0;
  head_seq bigint := 0;
  head_mac bytea := pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex');
BEGIN
  PERFORM pg_catalog.pg_advisory_xact_lock(4713424295070755586);
  SELECT l.id, l.seq, l.mac INTO head_id, head_seq, head_mac
  FROM public.audit_log l WHERE l.seq IS NOT NULL ORDER BY l.seq DESC LIMIT 1;
  IF NOT FOUND THEN
    head_id := 0;
    head_seq := 0;
    head_mac := pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex');
  END IF;
  IF e_seq IS DISTINCT FROM head_seq + 1 OR e_prev_mac IS DISTINCT FROM head_mac THEN
    RAISE EXCEPTION 'audit entry must be number % and follow the head''s MAC: call audit_next in the same transaction', head_seq + 1
      USING ERRCODE = 'check_violation';
  END IF;
  -- currval: the id audit_next drew in this session; above the head's, so
  -- ids grow along the chain.
  IF e_id IS DISTINCT FROM pg_catalog.currval('public.audit_log_id_seq') OR e_id <= head_id THEN
    RAISE EXCEPTION 'audit entry id must be the one audit_next gave' USING ERRCODE = 'check_violation';
  END IF;
  IF e_mac IS NULL OR pg_catalog.length(e_mac) <> 32 THEN
    RAISE EXCEPTION 'audit entry MAC must be 32 bytes' USING ERRCODE = 'check_violation';
  END IF;
  INSERT INTO public.audit_log (id, seq, at, actor, action, target, detail, prev_mac, mac)
  VALUES (e_id, e_seq, e_at, e_actor, e_action, e_target, e_detail, e_prev_mac, e_mac);
END $$;

-- audit_head_here returns the detail of the newest entry when this
-- transaction wrote it with this action and target (NULL otherwise). The
-- transaction holds the append lock from its append to its commit, so its
-- entries are the newest.
CREATE FUNCTION audit_head_here(e_action text, e_target text) RETURNS text
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT h.detail FROM (SELECT l.xmin AS x, l.action, l.target, l.detail
                        FROM public.audit_log l WHERE l.seq IS NOT NULL ORDER BY l.seq DESC LIMIT 1) AS h
  WHERE h.x = pg_catalog.pg_current_xact_id()::xid AND h.action = e_action AND h.target = e_target
$$;

-- The two deletion functions delete nothing unaudited: each refuses unless
-- the newest audit entry was written by the same transaction and records
-- exactly this deletion. The entry commits with the deletion or not at all.
CREATE OR REPLACE FUNCTION erase_submission(sub_id bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  gone integer;
BEGIN
  IF public.audit_head_here('submission.erase', 'submission:' || sub_id) IS NULL THEN
    RAISE EXCEPTION 'erase_submission needs its audit entry (submission.erase, submission:%) appended first in the same transaction', sub_id
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  DELETE FROM public.submissions WHERE id = sub_id;
  GET DIAGNOSTICS gone = ROW_COUNT;
  RETURN gone = 1;
END $$;

-- Retention deletes exactly the ids its audit entry lists (detail
-- {"cutoff": RFC 3339, "ids": [...]}), and only if every one of them is done
-- since before the entry's cutoff: otherwise it refuses, so the entry never
-- claims a deletion that did not happen. The old form, which chose the ids
-- itself, is gone.
DROP FUNCTION retention_delete_done(timestamptz, integer);
CREATE FUNCTION retention_delete_audited() RETURNS SETOF bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  detail jsonb := public.audit_head_here('retention.delete', '')::jsonb;
  cutoff timestamptz;
  ids    bigint[];
  gone   bigint[];
BEGIN
  IF detail IS NULL THEN
    RAISE EXCEPTION 'retention_delete_audited needs its audit entry (retention.delete) appended first in the same transaction'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  cutoff := (detail ->> 'cutoff')::timestamptz;
  SELECT coalesce(pg_catalog.array_agg(DISTINCT v::bigint), '{}') INTO ids
  FROM pg_catalog.jsonb_array_elements_text(detail -> 'ids') AS v;
  WITH d AS (DELETE FROM public.submissions
             WHERE id = ANY (ids) AND status = 'done' AND coalesce(status_changed_at, received_at) < cutoff
             RETURNING id)
  SELECT coalesce(pg_catalog.array_agg(d.id), '{}') INTO gone FROM d;
  IF pg_catalog.cardinality(gone) <> pg_catalog.cardinality(ids) THEN
    RAISE EXCEPTION 'retention: % of the % audited submissions are no longer due; nothing deleted',
      pg_catalog.cardinality(ids) - pg_catalog.cardinality(gone), pg_catalog.cardinality(ids)
      USING ERRCODE = 'serialization_failure';
  END IF;
  RETURN QUERY SELECT pg_catalog.unnest(gone);
END $$;

REVOKE ALL ON FUNCTION audit_next(), audit_append(bigint, bigint, timestamptz, text, text, text, text, bytea, bytea),
  audit_head_here(text, text), retention_delete_audited() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_next(), audit_append(bigint, bigint, timestamptz, text, text, text, text, bytea, bytea),
  retention_delete_audited() TO airlock_clinical_app;
