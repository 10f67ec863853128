DROP TRIGGER IF EXISTS submissions_check_replay_key ON submissions;
DROP TRIGGER IF EXISTS submissions_remember_replay_keys ON submissions;
DROP FUNCTION IF EXISTS check_replay_key();
DROP FUNCTION IF EXISTS remember_replay_keys();
DROP TABLE IF EXISTS submission_replays;
ALTER TABLE submissions DROP CONSTRAINT IF EXISTS submissions_replay_key;
ALTER TABLE submissions DROP COLUMN IF EXISTS replay_key;
