DROP TABLE audit_log, transfer_passes, quarantine, submissions;
