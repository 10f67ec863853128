DROP TABLE IF EXISTS transfer_heartbeat;
