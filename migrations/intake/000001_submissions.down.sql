DROP TABLE submissions;
DROP FUNCTION notify_submission();
