-- A withdrawn result may be in intake although clinical still said
-- "published": transfer inserts it into intake first and records that here
-- second, and may crash in between. Marking every withdrawal in_intake makes
-- transfer's next pass delete it from intake (if there) and tombstone it, so
-- a withdrawn link never stays live. A trigger, not a grant: the app role
-- must not be able to clear in_intake and so keep a link alive.
CREATE FUNCTION results_withdrawn_in_intake() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  IF NEW.state = 'withdrawn' AND OLD.state IS DISTINCT FROM 'withdrawn' THEN
    NEW.in_intake := true;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER results_withdrawn_in_intake BEFORE UPDATE OF state ON results
  FOR EACH ROW EXECUTE FUNCTION results_withdrawn_in_intake();
