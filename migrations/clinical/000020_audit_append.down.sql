DROP FUNCTION IF EXISTS retention_delete_audited();
CREATE OR REPLACE FUNCTION retention_delete_done(cutoff timestamptz, max_rows integer) RETURNS SETOF bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
  DELETE FROM public.submissions WHERE id IN (
    SELECT id FROM public.submissions
    WHERE status = 'done' AND coalesce(status_changed_at, received_at) < cutoff
    ORDER BY id LIMIT max_rows)
  RETURNING id
$$;
REVOKE ALL ON FUNCTION retention_delete_done(timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION retention_delete_done(timestamptz, integer) TO airlock_clinical_app;
CREATE OR REPLACE FUNCTION erase_submission(sub_id bigint) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
  WITH gone AS (DELETE FROM public.submissions WHERE id = sub_id RETURNING id)
  SELECT count(*) = 1 FROM gone
$$;
DROP FUNCTION IF EXISTS audit_head_here(text, text);
DROP FUNCTION IF EXISTS audit_append(bigint, bigint, timestamptz, text, text, text, text, bytea, bytea);
DROP FUNCTION IF EXISTS audit_next();
GRANT INSERT ON audit_log TO airlock_clinical_app;
GRANT USAGE ON SEQUENCE audit_log_id_seq TO airlock_clinical_app;
