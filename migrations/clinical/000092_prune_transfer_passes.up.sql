-- transfer_passes gains a row for every pass that changed something: at a
-- steady 500 submissions a second, passes follow each other and that is
-- about ten rows a second. transfer prunes the log of ordinary passes
-- through this function, which is all it may delete: only passes that
-- completed and merely moved rows (no quarantine, no expiry), and never
-- younger than 30 days whatever it asks. Failed and interrupted passes,
-- quarantines and expiries stay in the log for good (transfer status sums
-- the expiries).
CREATE FUNCTION prune_transfer_passes(keep interval) RETURNS bigint
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
  n bigint;
BEGIN
  IF keep IS NULL OR keep < interval '30 days' THEN
    keep := interval '30 days';
  END IF;
  WITH old AS (
    SELECT id FROM public.transfer_passes
    WHERE outcome = 'ok' AND finished_at < now() - keep
      AND quarantined = 0 AND expired = 0 AND quarantine_expired = 0
    ORDER BY id LIMIT 10000)
  DELETE FROM public.transfer_passes WHERE id IN (SELECT id FROM old);
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;
REVOKE ALL ON FUNCTION prune_transfer_passes(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION prune_transfer_passes(interval) TO airlock_clinical_transfer;
