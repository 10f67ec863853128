DROP FUNCTION IF EXISTS retention_delete_done(timestamptz, integer);
DROP FUNCTION IF EXISTS erase_submission(bigint);
DROP INDEX IF EXISTS submissions_search, submissions_list_form_status, submissions_list_status, submissions_list;
ALTER TABLE submissions DROP COLUMN IF EXISTS search, DROP COLUMN IF EXISTS status_changed_at;
DROP FUNCTION IF EXISTS submission_search(jsonb);
DROP TABLE IF EXISTS submission_notes, login_failures, staff_sessions, staff;
