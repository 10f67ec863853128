DROP FUNCTION IF EXISTS prune_transfer_passes(interval);
