-- The search column is no longer computed by the database: transfer sends
-- each submission's words (shared/textsearch, the same split the list uses
-- for what staff type) and the row stores array_to_tsvector of them. Running
-- Postgres' text parser on every delivered row was most of the cost of an
-- insert (docs/transfer.md). Rows delivered before keep the vector the
-- parser made; their plain words are found as before.
ALTER TABLE submissions ALTER COLUMN search DROP EXPRESSION;

-- Fallback for a row inserted without words (by the database owner, or by a
-- transfer older than this migration): the same split in SQL, letters and
-- digits, lower-cased, each word cut to 64 characters (textsearch.MaxWordRunes). The trigger fires only then, so a delivery that
-- carries its words pays nothing for it.
CREATE FUNCTION submission_words(a jsonb) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT pg_catalog.array_to_tsvector(coalesce(pg_catalog.array_agg(DISTINCT pg_catalog.left(w, 64)), '{}'))
  FROM pg_catalog.regexp_split_to_table(pg_catalog.lower((
         SELECT pg_catalog.left(coalesce(pg_catalog.string_agg(
                  coalesce(v ->> 'valueString', v -> 'valueCoding' ->> 'display', v ->> 'valueDate',
                           v -> 'valueAttachment' ->> 'title', ''), ' '), ''), 100000)
         FROM pg_catalog.jsonb_each(CASE WHEN pg_catalog.jsonb_typeof(a) = 'object' THEN a ELSE '{}'::jsonb END) AS e(k, vals),
              pg_catalog.jsonb_array_elements(CASE WHEN pg_catalog.jsonb_typeof(vals) = 'array' THEN vals ELSE '[]'::jsonb END) AS v)),
         '[^[:alnum:]]+') AS w
  WHERE w <> ''
$$;

CREATE FUNCTION submissions_search_fallback() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  NEW.search := public.submission_words(NEW.answers);
  RETURN NEW;
END
$$;
CREATE TRIGGER submissions_search_fallback BEFORE INSERT ON submissions
  FOR EACH ROW WHEN (NEW.search IS NULL) EXECUTE FUNCTION submissions_search_fallback();
