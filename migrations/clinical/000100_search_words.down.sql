DROP TRIGGER submissions_search_fallback ON submissions;
DROP FUNCTION submissions_search_fallback();
DROP FUNCTION submission_words(jsonb);
-- Back to the vector the database computes (the index goes with the column).
ALTER TABLE submissions DROP COLUMN search;
ALTER TABLE submissions ADD COLUMN search tsvector GENERATED ALWAYS AS (public.submission_search(answers)) STORED;
CREATE INDEX submissions_search ON submissions USING gin (search);
