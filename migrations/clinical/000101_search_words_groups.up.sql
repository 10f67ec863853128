-- submission_words, the fallback that fills the search words of a row
-- inserted without them (000100), also reads the answers inside the
-- instances of repeating groups, as textsearch.AnswerWords now does.
CREATE OR REPLACE FUNCTION submission_words(a jsonb) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT pg_catalog.array_to_tsvector(coalesce(pg_catalog.array_agg(DISTINCT pg_catalog.left(w, 64)), '{}'))
  FROM pg_catalog.regexp_split_to_table(pg_catalog.lower((
         SELECT pg_catalog.left(coalesce(pg_catalog.string_agg(t #>> '{}', ' '), ''), 100000)
         FROM pg_catalog.jsonb_path_query(CASE WHEN pg_catalog.jsonb_typeof(a) = 'object' THEN a ELSE '{}'::jsonb END,
           'strict $.** ? (@.type() == "object") ? (exists(@.valueString) || exists(@.valueDate) || exists(@.valueCoding.display) || exists(@.valueAttachment.title))') AS v(o),
         LATERAL (SELECT coalesce(o -> 'valueString', o -> 'valueCoding' -> 'display', o -> 'valueDate', o -> 'valueAttachment' -> 'title') AS t) x
         WHERE pg_catalog.jsonb_typeof(t) = 'string')),
         '[^[:alnum:]]+') AS w
  WHERE w <> ''
$$;
