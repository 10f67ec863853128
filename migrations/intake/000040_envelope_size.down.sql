ALTER TABLE submissions DROP CONSTRAINT submissions_envelope_size;
