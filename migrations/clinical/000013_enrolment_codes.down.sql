-- Accounts waiting to enrol stay unable to log in with an older binary
-- (their password hash is empty): reset them after downgrading.
DROP TABLE IF EXISTS staff_enrolment_codes;
