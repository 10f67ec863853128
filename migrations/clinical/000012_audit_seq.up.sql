-- The audit chain's entry number. seq is 1 for the first entry and the
-- previous entry's seq + 1 for every next one, assigned under the append lock
-- inside the appending transaction, so it has no gaps. Ids do: they come from
-- a sequence, which loses a value to every rolled-back append and may jump
-- after a crash. MACs of new entries cover seq, and `clinical audit verify`
-- reports a gap or a changed number as a break. Entries written before this
-- migration keep their MACs (which do not cover seq) and are numbered by
-- their place in the chain.
--
-- The column allows NULL only so that an INSERT that does not name it (the
-- grant tests write such rows) is not refused; the app never writes one, and
-- verify reports an entry without seq as a break.
ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS seq bigint CHECK (seq > 0);
UPDATE audit_log SET seq = numbered.n
FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM audit_log) AS numbered
WHERE audit_log.id = numbered.id AND audit_log.seq IS NULL;
-- One entry per number: a writer that somehow skipped the lock fails instead
-- of forking the chain.
CREATE UNIQUE INDEX IF NOT EXISTS audit_log_seq ON audit_log (seq);
