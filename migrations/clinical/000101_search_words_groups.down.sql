-- Back to 000100's submission_words (top-level answers only).
CREATE OR REPLACE FUNCTION submission_words(a jsonb) RETURNS tsvector
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
